package wal

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func openPrealloc(t testing.TB, dir string, segBytes, prealloc int64) *Log {
	t.Helper()
	l, err := Open(dir, Options{FS: vfs.Default, SegmentBytes: segBytes, Preallocate: prealloc})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// active returns the active segment and its logical size.
func active(l *Log) (*segment, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.segs[len(l.segs)-1]
	return s, s.size
}

// waitFilled waits until the filler has caught up with the active segment:
// at least half of Preallocate zero-filled past its end, or everything up
// to SegmentBytes.
func waitFilled(t testing.TB, l *Log) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, size := active(l)
		if s.alloc.Load() >= min(size+l.prealloc/2, l.segBytes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("filler did not catch up: alloc %d, size %d, segment bytes %d", s.alloc.Load(), size, l.segBytes)
		}
		time.Sleep(time.Millisecond)
	}
}

// filledLog opens a log in dir with 1 MiB preallocated, appends LSNs
// 1..to in batches, syncs, and waits for the filler to catch up.
func filledLog(t testing.TB, dir string, to uint64, batch int) *Log {
	t.Helper()
	l := openPrealloc(t, dir, 64<<20, 1<<20)
	appendRange(t, l, 1, to, batch, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	waitFilled(t, l)
	return l
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestPreallocKeepsZerosAhead: the filler zero-fills past the end, Open
// keeps that tail for appends, and a log opened without preallocation cuts
// it off as the garbage tail it then is.
func TestPreallocKeepsZerosAhead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	const prealloc = 1 << 20 // filledLog's
	l := filledLog(t, dir, 100, 10)
	seg, size := active(l)
	path := seg.path
	// The filler may still be adding a chunk: alloc counts it only once
	// synced.
	alloc := seg.alloc.Load()
	onDisk := fileSize(t, path)
	if alloc < size+prealloc/2 || onDisk < alloc {
		t.Fatalf("file is %d bytes, log ends at %d, alloc %d: want the file zero-filled at least %d past the end", onDisk, size, alloc, prealloc/2)
	}

	mustClose(t, l)
	l = openPrealloc(t, dir, 64<<20, prealloc)
	checkEntries(t, readAll(t, l, 1, 1000, 0), 1, 100, salt0)
	// The filler, started by Open, may have added zeros since.
	if got := fileSize(t, path); got < onDisk {
		t.Fatalf("Open cut the file from %d to %d bytes; the zeros should stay", onDisk, got)
	}
	if seg, _ := active(l); seg.alloc.Load() < alloc {
		t.Fatalf("after Open alloc = %d, want at least the %d zero-filled before", seg.alloc.Load(), alloc)
	}
	appendRange(t, l, 101, 150, 7, 0)
	mustClose(t, l)

	l = openPrealloc(t, dir, 64<<20, prealloc)
	checkEntries(t, readAll(t, l, 1, 1000, 0), 1, 150, salt0)
	_, size = active(l)
	mustClose(t, l)

	l = mustOpen(t, vfs.Default, dir, 64<<20)
	checkEntries(t, readAll(t, l, 1, 1000, 0), 1, 150, salt0)
	if got := fileSize(t, path); got != size {
		t.Fatalf("without preallocation Open left %d bytes, want the frames' %d", got, size)
	}
	appendRange(t, l, 151, 160, 3, 0)
	l = reopen(t, l, vfs.Default, dir, 64<<20)
	checkEntries(t, readAll(t, l, 1, 1000, 0), 1, 160, salt0)
	mustClose(t, l)
}

// TestPreallocNeverLeavesZerosInRotatedSegments fills every segment to the
// rotation size before the writer gets there: recovery accepts no garbage
// in a segment other than the last, so the filler must never write past
// SegmentBytes.
func TestPreallocNeverLeavesZerosInRotatedSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	const segBytes, prealloc = 64 << 10, 16 << 10
	l := openPrealloc(t, dir, segBytes, prealloc)
	var last uint64
	for last < 6000 {
		appendRange(t, l, last+1, last+20, 20, 0)
		last += 20
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		waitFilled(t, l)
	}
	segs := segmentFiles(t, vfs.Default, dir)
	if len(segs) < 4 {
		t.Fatalf("only %d segments; the test needs rotations", len(segs))
	}
	for _, name := range segs[:len(segs)-1] {
		img := readFile(t, vfs.Default, filepath.Join(dir, name))
		offs := frameOffsets(t, img)
		if len(offs) == 0 {
			t.Fatalf("%s holds no frame", name)
		}
		for _, off := range offs {
			n := headerSize + int(binary.LittleEndian.Uint32(img[off:]))
			if _, ok := decodeFrame(img[off : off+n]); !ok {
				t.Fatalf("%s: bytes at %d of %d are not a frame (zeros past the rotation size?)", name, off, len(img))
			}
		}
	}
	for _, p := range []int64{prealloc, 0} {
		l = func() *Log {
			mustClose(t, l)
			if p == 0 {
				return mustOpen(t, vfs.Default, dir, segBytes)
			}
			return openPrealloc(t, dir, segBytes, p)
		}()
		checkEntries(t, readAll(t, l, 1, last, 0), 1, last, salt0)
	}
	mustClose(t, l)
}

// TestPreallocTruncateBack cuts the log back into its zero-filled segment
// and writes other entries after the cut.
func TestPreallocTruncateBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	l := filledLog(t, dir, 200, 9)
	if err := l.TruncateBack(150); err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 151, 180, 4, 1)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	waitFilled(t, l)
	l.StopPreallocating() // Close would too; the reopen below must find the same
	mustClose(t, l)
	l = openPrealloc(t, dir, 64<<20, 1<<20)
	salt := func(lsn uint64) byte {
		if lsn > 150 {
			return 1
		}
		return 0
	}
	checkEntries(t, readAll(t, l, 1, 1000, 0), 1, 180, salt)
	mustClose(t, l)
}

// TestPreallocTornFrameBeforeZeros: a crash tore the last frame, whose
// unwritten part reads as the filler's zeros. That is a torn write, not the
// end of the zeros: the frame goes, the entries before it stay.
func TestPreallocTornFrameBeforeZeros(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	l := filledLog(t, dir, 50, 5)
	seg, size := active(l)
	path := seg.path
	mustClose(t, l)

	img := readFile(t, vfs.Default, path)
	offs := frameOffsets(t, img[:size])
	lastOff := offs[len(offs)-1]
	cut := lastOff + headerSize/2 // the length and checksum survived, the rest did not
	for i := cut; i < int(size); i++ {
		img[i] = 0
	}
	writeFile(t, vfs.Default, path, img)

	l = openPrealloc(t, dir, 64<<20, 1<<20)
	checkPositions(t, l, 1, 49)
	checkEntries(t, readAll(t, l, 1, 1000, 0), 1, 49, salt0)
	// The torn bytes are cut off, not kept as if they were the zeros
	// (the filler may have written zeros there since).
	if now := readFile(t, vfs.Default, path); len(now) > lastOff {
		for i := lastOff; i < min(cut, len(now)); i++ {
			if now[i] != 0 {
				t.Fatalf("byte %d of the torn frame survived Open: %#x", i, now[i])
			}
		}
	}
	appendRange(t, l, 50, 70, 6, 2)
	l.StopPreallocating()
	mustClose(t, l)
	l = openPrealloc(t, dir, 64<<20, 1<<20)
	checkEntries(t, readAll(t, l, 1, 1000, 0), 1, 70, func(lsn uint64) byte {
		if lsn >= 50 {
			return 2
		}
		return 0
	})
	mustClose(t, l)
}

// TestPreallocOffOnMemFS: the filler needs files of the operating system.
func TestPreallocOffOnMemFS(t *testing.T) {
	l, err := Open("/wal", Options{FS: vfs.NewMem(), Preallocate: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if l.prealloc != 0 || l.fillKick != nil {
		t.Fatalf("filler on for an in-memory file system")
	}
	appendRange(t, l, 1, 10, 3, 0)
	mustClose(t, l)
}

// TestPreallocStillFindsCorruption: with the zero tail accepted as the
// end of the log, damage to synced frames before it is still corruption.
func TestPreallocStillFindsCorruption(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	l := openPrealloc(t, dir, 64<<20, 1<<20)
	for lsn := uint64(1); lsn <= 50; lsn += 5 {
		appendRange(t, l, lsn, lsn+4, 5, 0)
		if err := l.Sync(); err != nil { // later frames vouch for these
			t.Fatal(err)
		}
	}
	waitFilled(t, l)
	seg, size := active(l)
	path := seg.path
	mustClose(t, l)
	img := readFile(t, vfs.Default, path)
	offs := frameOffsets(t, img[:size])
	img[offs[19]+headerSize] ^= 0xff // a payload byte of LSN 20
	writeFile(t, vfs.Default, path, img)
	_, err := Open(dir, Options{FS: vfs.Default, Preallocate: 1 << 20})
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.LSN != 20 {
		t.Fatalf("Open = %v, want a CorruptionError at LSN 20", err)
	}
}

// TestStopPreallocating: once stopped, the filler writes nothing more (a
// store calls it before another instance opens the same files), and
// appends extend the file as without it.
func TestStopPreallocating(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	const prealloc = 64 << 10
	l := openPrealloc(t, dir, 64<<20, prealloc)
	appendRange(t, l, 1, 10, 5, 0)
	waitFilled(t, l)
	l.StopPreallocating()
	seg, _ := active(l)
	alloc := seg.alloc.Load()
	var last uint64 = 10
	for {
		if _, size := active(l); size > alloc+prealloc {
			break
		}
		appendRange(t, l, last+1, last+100, 50, 0)
		last += 100
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	_, size := active(l)
	if got := seg.alloc.Load(); got != alloc {
		t.Fatalf("alloc moved from %d to %d after StopPreallocating", alloc, got)
	}
	if got := fileSize(t, seg.path); got != size {
		t.Fatalf("file is %d bytes, frames end at %d: something wrote past them", got, size)
	}
	l = reopen(t, l, vfs.Default, dir, 64<<20)
	checkEntries(t, readAll(t, l, 1, last, 0), 1, last, salt0)
	mustClose(t, l)
}
