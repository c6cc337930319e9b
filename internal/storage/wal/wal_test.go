package wal

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestOpenEmpty(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		l := mustOpen(t, fs, dir, 0)
		checkPositions(t, l, 1, 0)
		if l.SyncedLSN() != 0 {
			t.Fatalf("SyncedLSN = %d", l.SyncedLSN())
		}
		if es := readAll(t, l, 1, 100, 0); len(es) != 0 {
			t.Fatalf("read %v from an empty log", es)
		}
		if got := segmentFiles(t, fs, dir); len(got) != 1 || got[0] != "0000000000000001.log" {
			t.Fatalf("segments %v", got)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		l = reopen(t, l, fs, dir, 0)
		checkPositions(t, l, 1, 0)
		mustClose(t, l)
	})
}

func TestSegmentNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first uint64
		ok    bool
	}{
		{"0000000000000001.log", 1, true},
		{"00000000000003e8.log", 1000, true},
		{"ffffffffffffffff.log", 1<<64 - 1, true},
		{"00000000000003E8.log", 0, false}, // not what segmentName writes
		{"00000000000003e8.log.tmp", 0, false},
		{"3e8.log", 0, false},
		{"000000000000003e8.log", 0, false},
		{"00000000000003e8.sst", 0, false},
		{"0000000000000x01.log", 0, false},
		{"LOCK", 0, false},
	} {
		first, ok := parseSegmentName(tc.name)
		if ok != tc.ok || first != tc.first {
			t.Errorf("parseSegmentName(%q) = %d, %v; want %d, %v", tc.name, first, ok, tc.first, tc.ok)
		}
		if ok && segmentName(first) != tc.name {
			t.Errorf("segmentName(%d) = %q", first, segmentName(first))
		}
	}
}

// TestAppendReadAcrossRotations writes thousands of entries into tiny
// segments and reads every range shape back, before and after reopening.
func TestAppendReadAcrossRotations(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		const segBytes, last = 300, 3000
		l := mustOpen(t, fs, dir, segBytes)
		for lsn, n := uint64(1), 1; lsn <= last; n = n%17 + 1 {
			to := min(lsn+uint64(n)-1, last)
			appendRange(t, l, lsn, to, n, 0)
			if l.LastLSN() != to {
				t.Fatalf("LastLSN = %d after appending through %d", l.LastLSN(), to)
			}
			// Readable at once, before any Sync.
			checkEntries(t, readAll(t, l, lsn, to, 0), lsn, to, salt0)
			lsn = to + 1
		}
		if n := len(segmentFiles(t, fs, dir)); n < 50 {
			t.Fatalf("only %d segments; rotation did not happen", n)
		}
		check := func(l *Log) {
			t.Helper()
			checkEntries(t, readAll(t, l, 1, last, 0), 1, last, salt0)
			for _, r := range [][2]uint64{{1, 1}, {31, 33}, {32, 32}, {64, 200}, {1000, 1000}, {2999, 5000}, {last, last}, {last + 1, last + 10}, {5, 4}} {
				to := min(r[1], last)
				checkEntries(t, readAll(t, l, r[0], r[1], 0), r[0], to, salt0)
			}
		}
		check(l)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if l.SyncedLSN() != last {
			t.Fatalf("SyncedLSN = %d after Sync", l.SyncedLSN())
		}
		l = reopen(t, l, fs, dir, segBytes)
		checkPositions(t, l, 1, last)
		if l.SyncedLSN() != last {
			t.Fatalf("SyncedLSN = %d after reopen", l.SyncedLSN())
		}
		check(l)
		// Appending continues where it left off, in the segment that was
		// active when closed.
		appendRange(t, l, last+1, last+100, 10, 0)
		l = reopen(t, l, fs, dir, 1<<20)
		checkEntries(t, readAll(t, l, 1, last+100, 0), 1, last+100, salt0)
		mustClose(t, l)
	})
}

func TestAppendBatchErrors(t *testing.T) {
	l := mustOpen(t, vfs.NewMem(), "/wal", 0)
	defer mustClose(t, l)
	appendRange(t, l, 1, 10, 10, 0)
	for _, first := range []uint64{0, 1, 10, 12, 1000} {
		err := l.AppendBatch(first, [][]byte{[]byte("x")})
		if !errors.Is(err, ErrNotContiguous) {
			t.Errorf("AppendBatch(%d) = %v, want ErrNotContiguous", first, err)
		}
	}
	if err := l.AppendBatch(11, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	// Errors about the caller's input do not fail the log.
	appendRange(t, l, 11, 12, 2, 0)
	checkPositions(t, l, 1, 12)
}

func TestPayloadLimit(t *testing.T) {
	defer func(old int64) { maxPayload = old }(maxPayload)
	maxPayload = 100
	fs := vfs.NewMem()
	l := mustOpen(t, fs, "/wal", 0)
	if err := l.AppendBatch(1, [][]byte{make([]byte, 50), make([]byte, 101)}); err == nil {
		t.Fatal("a payload over the limit was accepted")
	}
	if err := l.AppendBatch(1, [][]byte{make([]byte, 100)}); err != nil {
		t.Fatalf("a payload at the limit: %v", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)

	// A frame whose length exceeds the limit is garbage to recovery even if
	// its checksum is right: as the tail of the last segment it is dropped.
	path := "/wal/" + segmentName(1)
	img := readFile(t, fs, path)
	long := appendFrame(nil, 2, int64(len(img)), make([]byte, 101))
	writeFile(t, fs, path, append(img, long...))
	l = mustOpen(t, fs, "/wal", 0)
	checkPositions(t, l, 1, 1)
	if got := len(readFile(t, fs, path)); got != len(img) {
		t.Fatalf("segment is %d bytes after recovery, want %d", got, len(img))
	}
	mustClose(t, l)
}

func TestReadMaxBytes(t *testing.T) {
	fs := vfs.NewMem()
	// 100-byte payloads in segments of 10 entries, to cross boundaries.
	l := mustOpen(t, fs, "/wal", 10*(headerSize+100))
	defer mustClose(t, l)
	for lsn := uint64(1); lsn <= 100; lsn += 5 {
		ps := make([][]byte, 5)
		for i := range ps {
			ps[i] = make([]byte, 100)
			ps[i][0] = byte(lsn + uint64(i))
		}
		if err := l.AppendBatch(lsn, ps); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		from, to uint64
		maxBytes int
		want     int
	}{
		{1, 100, 0, 100},
		{1, 100, -1, 100},
		{1, 100, 1, 1}, // at least one entry
		{1, 100, 99, 1},
		{1, 100, 100, 1},
		{1, 100, 199, 1},
		{1, 100, 200, 2},
		{1, 100, 250, 2},
		{8, 100, 500, 5}, // crosses the boundary after LSN 10
		{1, 100, 100 * 100, 100},
		{1, 100, 1 << 30, 100},
		{95, 200, 300, 3},
		{99, 200, 1000, 2},
		{101, 200, 1, 0},
	} {
		t.Run(fmt.Sprintf("%d-%d/%d", tc.from, tc.to, tc.maxBytes), func(t *testing.T) {
			es := readAll(t, l, tc.from, tc.to, tc.maxBytes)
			if len(es) != tc.want {
				t.Fatalf("read %d entries, want %d", len(es), tc.want)
			}
			for i, e := range es {
				if e.lsn != tc.from+uint64(i) || e.payload[0] != byte(e.lsn) {
					t.Fatalf("entry %d is LSN %d with tag %d", i, e.lsn, e.payload[0])
				}
			}
		})
	}
}

func TestReadCallbackError(t *testing.T) {
	l := mustOpen(t, vfs.NewMem(), "/wal", 100)
	defer mustClose(t, l)
	appendRange(t, l, 1, 50, 5, 0)
	stop := errors.New("stop")
	var seen []uint64
	err := l.Read(1, 50, 0, func(lsn uint64, _ []byte) error {
		seen = append(seen, lsn)
		if lsn == 17 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("Read returned %v, want the callback's error as is", err)
	}
	if len(seen) != 17 || seen[16] != 17 {
		t.Fatalf("callback saw %v", seen)
	}
}

// TestTailingReads reads the log the way a follower feed does: repeatedly
// from where the previous read stopped, in small steps and with byte limits,
// while it grows. This goes through the remembered read positions.
func TestTailingReads(t *testing.T) {
	l := mustOpen(t, vfs.NewMem(), "/wal", 2000)
	defer mustClose(t, l)
	next := uint64(1)
	for round := range 300 {
		appendRange(t, l, l.LastLSN()+1, l.LastLSN()+uint64(round%7+1), 3, 0)
		for next <= l.LastLSN() {
			es := readAll(t, l, next, next+uint64(round%5), 60+round%100)
			if len(es) == 0 {
				t.Fatalf("no progress at %d", next)
			}
			checkEntries(t, es, next, next+uint64(len(es))-1, salt0)
			next += uint64(len(es))
		}
	}
	// Several interleaved tailers.
	pos := []uint64{1, 100, 500, 900}
	for range 200 {
		for i := range pos {
			if pos[i] > l.LastLSN() {
				continue
			}
			es := readAll(t, l, pos[i], pos[i]+3, 0)
			checkEntries(t, es, pos[i], min(pos[i]+3, l.LastLSN()), salt0)
			pos[i] += uint64(len(es))
		}
	}
}

func TestTruncateFront(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		const segBytes = 500
		l := mustOpen(t, fs, dir, segBytes)
		appendRange(t, l, 1, 400, 4, 0)
		if err := l.TruncateFront(0); err != nil {
			t.Fatal(err)
		}
		checkPositions(t, l, 1, 400)

		before := segmentFiles(t, fs, dir)
		if err := l.TruncateFront(150); err != nil {
			t.Fatal(err)
		}
		first := l.FirstLSN()
		if first > 151 || first < 100 {
			t.Fatalf("FirstLSN = %d after TruncateFront(150)", first)
		}
		after := segmentFiles(t, fs, dir)
		if after[0] != segmentName(first) || len(after) >= len(before) {
			t.Fatalf("segments %v after truncating %v", after, before)
		}
		if _, err := tryRead(l, first-1, 400, 0); !errors.Is(err, ErrCompacted) {
			t.Fatalf("Read below FirstLSN: %v", err)
		}
		if _, err := tryRead(l, 1, 1, 0); !errors.Is(err, ErrCompacted) {
			t.Fatalf("Read below FirstLSN: %v", err)
		}
		checkEntries(t, readAll(t, l, first, 400, 0), first, 400, salt0)
		if got, want := l.SizeBetween(1, 400), l.SizeBetween(first, 400); got != want {
			t.Fatalf("SizeBetween clamps to FirstLSN: %d vs %d", got, want)
		}

		// Never the active segment, even when everything is covered.
		if err := l.TruncateFront(1000); err != nil {
			t.Fatal(err)
		}
		segs := segmentFiles(t, fs, dir)
		if len(segs) != 1 {
			t.Fatalf("segments %v after truncating everything", segs)
		}
		first = l.FirstLSN()
		checkEntries(t, readAll(t, l, first, 400, 0), first, 400, salt0)
		l = reopen(t, l, fs, dir, segBytes)
		checkPositions(t, l, first, 400)
		checkEntries(t, readAll(t, l, first, 400, 0), first, 400, salt0)
		mustClose(t, l)
	})
}

func TestCloseTwice(t *testing.T) {
	l := mustOpen(t, vfs.NewMem(), "/wal", 0)
	mustClose(t, l)
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"AppendBatch":   l.AppendBatch(1, [][]byte{{1}}),
		"Sync":          l.Sync(),
		"TruncateFront": l.TruncateFront(1),
		"TruncateBack":  l.TruncateBack(0),
		"Reset":         l.Reset(5),
		"Read":          l.Read(1, 1, 0, func(uint64, []byte) error { return nil }),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if l.SizeBetween(1, 10) != 0 {
		t.Error("SizeBetween after Close")
	}
}

func TestTruncateBack(t *testing.T) {
	const segBytes = 400
	// The log holds 1..300 in segments of about ten entries after dropping
	// the first few segments; each case truncates somewhere, appends new
	// payloads and reopens.
	for _, tc := range []struct {
		name string
		lsn  func(l *Log) uint64
	}{
		{"middle of a segment", func(*Log) uint64 { return 205 }},
		{"last of a segment", func(l *Log) uint64 { return segLast(l, 200) }},
		{"first of a segment", func(l *Log) uint64 { return segLast(l, 200) + 1 }},
		{"one before the end", func(l *Log) uint64 { return 299 }},
		{"nothing to remove", func(*Log) uint64 { return 300 }},
		{"everything", func(l *Log) uint64 { return l.FirstLSN() - 1 }},
		{"first entry only", func(l *Log) uint64 { return l.FirstLSN() }},
		{"index point", func(*Log) uint64 { return segFirst(201) + indexStride - 1 }},
	} {
		forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
			t.Run(tc.name, func(t *testing.T) {
				l := mustOpen(t, fs, dir, segBytes)
				appendRange(t, l, 1, 300, 3, 0)
				if err := l.TruncateFront(50); err != nil {
					t.Fatal(err)
				}
				first := l.FirstLSN()
				lsn := tc.lsn(l)
				// Warm the read cache past the cut so a stale position
				// would be used afterwards if not invalidated.
				readAll(t, l, max(first, lsn-min(lsn, 3)), 300, 0)
				if err := l.TruncateBack(lsn); err != nil {
					t.Fatalf("TruncateBack(%d): %v", lsn, err)
				}
				if l.LastLSN() != lsn || l.SyncedLSN() != lsn || l.FirstLSN() != first {
					t.Fatalf("after TruncateBack(%d): first %d last %d synced %d", lsn, l.FirstLSN(), l.LastLSN(), l.SyncedLSN())
				}
				saltOf := func(x uint64) byte {
					if x > lsn {
						return 1
					}
					return 0
				}
				checkEntries(t, readAll(t, l, first, 1000, 0), first, lsn, saltOf)
				appendRange(t, l, lsn+1, 320, 4, 1)
				checkEntries(t, readAll(t, l, first, 1000, 0), first, 320, saltOf)
				for from := first; from <= 320; from += 7 {
					checkEntries(t, readAll(t, l, from, from+5, 0), from, min(from+5, 320), saltOf)
				}
				l = reopen(t, l, fs, dir, segBytes)
				checkPositions(t, l, first, 320)
				checkEntries(t, readAll(t, l, first, 1000, 0), first, 320, saltOf)
				mustClose(t, l)
			})
		})
	}
}

// segFirst is the first LSN of the segment holding lsn in the TestTruncateBack
// layout (3-entry batches of payloadFor into 400-byte segments), computed by
// replaying the rotation rule.
func segFirst(lsn uint64) uint64 {
	first, size := uint64(1), segHeaderSize
	for b := uint64(1); b <= 300; b += 3 {
		if size >= 400 {
			if b > lsn {
				return first
			}
			first, size = b, segHeaderSize
		}
		for x := b; x < b+3; x++ {
			size += headerSize + len(payloadFor(x, 0))
		}
	}
	return first
}

func segLast(l *Log, lsn uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[l.findSeg(lsn)].last
}

// TestReadCacheAfterTruncateBack makes a Read remember a position, then
// rewrites the entries around it with different sizes: the remembered offset
// is meaningless now and must not be used.
func TestReadCacheAfterTruncateBack(t *testing.T) {
	l := mustOpen(t, vfs.NewMem(), "/wal", 0)
	defer mustClose(t, l)
	appendRange(t, l, 1, 100, 100, 0)
	for _, from := range []uint64{1, 20, 45, 61, 70} {
		readAll(t, l, from, from+10, 0) // remembers from+11
	}
	if err := l.TruncateBack(40); err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 41, 100, 7, 9)
	saltOf := func(x uint64) byte {
		if x > 40 {
			return 9
		}
		return 0
	}
	for _, from := range []uint64{12, 31, 56, 72, 81} {
		checkEntries(t, readAll(t, l, from, from+5, 0), from, from+5, saltOf)
	}
	checkEntries(t, readAll(t, l, 1, 100, 0), 1, 100, saltOf)
}

func TestTruncateBackErrors(t *testing.T) {
	l := mustOpen(t, vfs.NewMem(), "/wal", 200)
	defer mustClose(t, l)
	appendRange(t, l, 1, 100, 5, 0)
	if err := l.TruncateFront(50); err != nil {
		t.Fatal(err)
	}
	first := l.FirstLSN()
	if err := l.TruncateBack(first - 2); !errors.Is(err, ErrCompacted) {
		t.Fatalf("TruncateBack below FirstLSN-1: %v", err)
	}
	if err := l.TruncateBack(101); err == nil {
		t.Fatal("TruncateBack past LastLSN succeeded")
	}
	// Neither failed the log.
	appendRange(t, l, 101, 110, 5, 0)
}

func TestReset(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		const segBytes = 300
		l := mustOpen(t, fs, dir, segBytes)
		appendRange(t, l, 1, 100, 7, 0)
		if err := l.Reset(1000); err != nil {
			t.Fatal(err)
		}
		check := func(l *Log, first, last uint64) {
			t.Helper()
			checkPositions(t, l, first, last)
			if l.SyncedLSN() != last {
				t.Fatalf("SyncedLSN = %d, want %d", l.SyncedLSN(), last)
			}
			if _, err := tryRead(l, first-1, first, 0); !errors.Is(err, ErrCompacted) {
				t.Fatalf("Read below the reset point: %v", err)
			}
			checkEntries(t, readAll(t, l, first, 5000, 0), first, last, salt0)
		}
		check(l, 1000, 999)
		if segs := segmentFiles(t, fs, dir); len(segs) != 1 || segs[0] != segmentName(1000) {
			t.Fatalf("segments after Reset: %v", segs)
		}
		l = reopen(t, l, fs, dir, segBytes)
		check(l, 1000, 999)
		appendRange(t, l, 1000, 1100, 9, 0)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		check(l, 1000, 1100)
		l = reopen(t, l, fs, dir, segBytes)
		check(l, 1000, 1100)
		// Backwards too, and onto a name that exists.
		if err := l.Reset(1000); err != nil {
			t.Fatal(err)
		}
		check(l, 1000, 999)
		if err := l.Reset(3); err != nil {
			t.Fatal(err)
		}
		check(l, 3, 2)
		appendRange(t, l, 3, 10, 2, 0)
		l = reopen(t, l, fs, dir, segBytes)
		check(l, 3, 10)
		if err := l.Reset(0); err == nil {
			t.Fatal("Reset(0) succeeded")
		}
		mustClose(t, l)
	})
}

func TestSizeBetween(t *testing.T) {
	l := mustOpen(t, vfs.NewMem(), "/wal", 1000)
	defer mustClose(t, l)
	if got := l.SizeBetween(1, 10); got != 0 {
		t.Fatalf("SizeBetween on an empty log = %d", got)
	}
	appendRange(t, l, 1, 500, 11, 0)
	exact := func(a, b uint64) uint64 {
		var n uint64
		for x := max(a, 1); x <= min(b, 500); x++ {
			n += uint64(headerSize + len(payloadFor(x, 0)))
		}
		return n
	}
	// Exact over whole segments and at index points; within a stride's
	// worth of frames elsewhere.
	if got, want := l.SizeBetween(1, 500), exact(1, 500); got != want {
		t.Fatalf("SizeBetween(1, 500) = %d, want %d", got, want)
	}
	if got, want := l.SizeBetween(0, 1<<40), exact(1, 500); got != want {
		t.Fatalf("SizeBetween(0, big) = %d, want %d", got, want)
	}
	const slack = 2 * indexStride * (headerSize + 53)
	for a := uint64(1); a <= 500; a += 13 {
		for b := a; b <= 520; b += 29 {
			got, want := int64(l.SizeBetween(a, b)), int64(exact(a, b))
			if got < want-slack || got > want+slack {
				t.Fatalf("SizeBetween(%d, %d) = %d, want about %d", a, b, got, want)
			}
		}
	}
	if got := l.SizeBetween(10, 9); got != 0 {
		t.Fatalf("SizeBetween of an empty range = %d", got)
	}
}
