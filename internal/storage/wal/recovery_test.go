package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// buildLog writes 1..last with payloadFor into segBytes-sized segments,
// syncs and closes it, and returns the segment names.
func buildLog(t *testing.T, fs vfs.FS, dir string, segBytes int64, last uint64, batch int) []string {
	t.Helper()
	l := mustOpen(t, fs, dir, segBytes)
	appendRange(t, l, 1, last, batch, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	return segmentFiles(t, fs, dir)
}

func expectCorruption(t *testing.T, fs vfs.FS, dir, segment string) *CorruptionError {
	t.Helper()
	l, err := Open(dir, Options{FS: fs})
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Open = %v, want a *CorruptionError", err)
	}
	if ce.Segment != segment || ce.Dir != dir {
		t.Fatalf("corruption reported in %s/%s, want %s/%s: %v", ce.Dir, ce.Segment, dir, segment, ce)
	}
	if ce.Error() == "" || ce.Unwrap() == nil {
		t.Fatalf("uninformative error %#v", ce)
	}
	return ce
}

// TestTornTail cuts the last frame of the last segment at every byte and
// checks that Open drops exactly that frame, then keeps working.
func TestTornTail(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		segs := buildLog(t, fs, dir, 1000, 60, 4)
		path := dir + "/" + segs[len(segs)-1]
		img := readFile(t, fs, path)
		offs := frameOffsets(t, img)
		lastStart := offs[len(offs)-1]
		for cut := lastStart; cut < len(img); cut++ {
			writeFile(t, fs, path, img[:cut])
			l := mustOpen(t, fs, dir, 1000)
			checkPositions(t, l, 1, 59)
			if l.SyncedLSN() != 59 {
				t.Fatalf("cut at %d: SyncedLSN %d", cut, l.SyncedLSN())
			}
			if got := len(readFile(t, fs, path)); got != lastStart {
				t.Fatalf("cut at %d: file is %d bytes after recovery, want %d", cut, got, lastStart)
			}
			checkEntries(t, readAll(t, l, 1, 100, 0), 1, 59, salt0)
			mustClose(t, l)
		}
		// The log goes on from the cut.
		l := mustOpen(t, fs, dir, 1000)
		appendRange(t, l, 60, 70, 3, 0)
		l = reopen(t, l, fs, dir, 1000)
		checkEntries(t, readAll(t, l, 1, 100, 0), 1, 70, salt0)
		mustClose(t, l)
	})
}

// TestGarbageTail appends bytes that are not a frame after the last whole
// frame: zeros (a file extended but never written), random bytes, a partial
// header, a frame that fails its checksum.
func TestGarbageTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// Frames appended after the 40 entries of buildLog claim the file was
	// synced up to their end, as frames written after the next Open would.
	// That vouches for nothing past it, so it cannot make a torn tail
	// corruption.
	synced := int64(segHeaderSize)
	for lsn := uint64(1); lsn <= 40; lsn++ {
		synced += int64(headerSize + len(payloadFor(lsn, 0)))
	}
	frame := func(lsn uint64, payload []byte) []byte { return appendFrame(nil, lsn, synced, payload) }
	badCRC := frame(41, []byte("payload"))
	badCRC[5] ^= 1
	wrongLen := frame(41, []byte("payload"))
	wrongLen[0] = 200 // claims more than the file has
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"one zero", make([]byte, 1)},
		{"zero header", make([]byte, headerSize)},
		{"zero page", make([]byte, 4096)},
		{"zero megabyte", make([]byte, 1<<20)},
		{"random 7", random(7)},
		{"random 100", random(100)},
		{"random 64k", random(64 << 10)},
		{"bad checksum", badCRC},
		{"length past the end", wrongLen},
		{"half a frame", frame(41, bytes.Repeat([]byte("x"), 100))[:60]},
		// A hole (an unsynced page lost) followed by intact unsynced frames
		// (a later page that survived): they vouch only for what was
		// synced before them, so all of it goes.
		{"zeros then intact frames", append(append(make([]byte, 100), frame(42, []byte("b"))...), frame(43, []byte("c"))...)},
		{"torn frame then intact frames", append(append(frame(41, []byte("aaaa"))[:20], frame(42, []byte("b"))...), frame(43, []byte("c"))...)},
	} {
		forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
			t.Run(tc.name, func(t *testing.T) {
				segs := buildLog(t, fs, dir, 1<<20, 40, 5)
				path := dir + "/" + segs[len(segs)-1]
				img := readFile(t, fs, path)
				if int64(len(img)) != synced {
					t.Fatalf("segment is %d bytes, expected %d", len(img), synced)
				}
				writeFile(t, fs, path, append(append([]byte(nil), img...), tc.tail...))
				l := mustOpen(t, fs, dir, 1<<20)
				checkPositions(t, l, 1, 40)
				if got := readFile(t, fs, path); !bytes.Equal(got, img) {
					t.Fatalf("recovered file is %d bytes, want the original %d", len(got), len(img))
				}
				appendRange(t, l, 41, 45, 5, 0)
				l = reopen(t, l, fs, dir, 1<<20)
				checkEntries(t, readAll(t, l, 1, 100, 0), 1, 45, salt0)
				mustClose(t, l)
			})
		})
	}
}

// TestTornTailEmptiesSegment covers a last segment whose only frame is torn:
// the segment becomes empty and still says where the log continues.
func TestTornTailEmptiesSegment(t *testing.T) {
	fs := vfs.NewMem()
	segs := buildLog(t, fs, "/wal", segHeaderSize+headerSize+1, 30, 1)
	last := segs[len(segs)-1]
	lastFirst, _ := parseSegmentName(last)
	path := "/wal/" + last
	img := readFile(t, fs, path)
	if len(frameOffsets(t, img)) != 1 {
		t.Skip("layout changed: last segment holds more than one frame")
	}
	writeFile(t, fs, path, img[:len(img)-1])
	l := mustOpen(t, fs, "/wal", 100)
	checkPositions(t, l, 1, lastFirst-1)
	if got := len(readFile(t, fs, path)); got != segHeaderSize {
		t.Fatalf("emptied segment is %d bytes, want just the header", got)
	}
	appendRange(t, l, lastFirst, 40, 2, 0)
	l = reopen(t, l, fs, "/wal", 100)
	checkEntries(t, readAll(t, l, 1, 100, 0), 1, 40, salt0)
	mustClose(t, l)
}

// TestCorruptNonLastSegment flips bits all over a segment that is not the
// last: every such flip must stop Open, since those segments were synced
// before the next one was created and cannot hold a torn write.
func TestCorruptNonLastSegment(t *testing.T) {
	fs := vfs.NewMem()
	segs := buildLog(t, fs, "/wal", 600, 100, 3)
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	for _, target := range []string{segs[0], segs[len(segs)/2], segs[len(segs)-2]} {
		path := "/wal/" + target
		img := readFile(t, fs, path)
		offs := frameOffsets(t, img)
		// Every field of the first, a middle and the last frame, plus a
		// payload byte.
		var positions []int
		for _, o := range []int{offs[0], offs[len(offs)/2], offs[len(offs)-1]} {
			positions = append(positions, o, o+3, o+4, o+7, o+8, o+15, o+16, o+23, o+headerSize)
		}
		for _, pos := range positions {
			for _, bit := range []byte{0x01, 0x80} {
				bad := bytes.Clone(img)
				bad[pos] ^= bit
				writeFile(t, fs, path, bad)
				expectCorruption(t, fs, "/wal", target)
			}
		}
		// A non-last segment cut short, or with junk after its last frame.
		writeFile(t, fs, path, img[:len(img)-1])
		expectCorruption(t, fs, "/wal", target)
		writeFile(t, fs, path, append(bytes.Clone(img), 0))
		expectCorruption(t, fs, "/wal", target)
		writeFile(t, fs, path, img)
	}
	mustClose(t, mustOpen(t, fs, "/wal", 600))
}

// TestCorruptEarlyFrameInLastSegment damages frames of the last segment
// that later frames show to have been synced: that is not a torn write, so
// Open must refuse rather than truncate them (and maybe acknowledged
// entries after them) away. The same damage where no later frame vouches
// for the bytes is indistinguishable from a torn write and is truncated.
func TestCorruptEarlyFrameInLastSegment(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		// Batches of 5, each synced: a frame of batch b records the file
		// synced up to the end of batch b-1, vouching for every frame
		// before its own batch.
		l := mustOpen(t, fs, dir, 1<<20)
		for lsn := uint64(1); lsn <= 50; lsn += 5 {
			appendRange(t, l, lsn, lsn+4, 5, 0)
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		mustClose(t, l)
		segs := segmentFiles(t, fs, dir)
		if len(segs) != 1 {
			t.Fatalf("segments %v", segs)
		}
		path := dir + "/" + segs[0]
		img := readFile(t, fs, path)
		offs := frameOffsets(t, img)
		if len(offs) != 50 {
			t.Fatalf("%d frames", len(offs))
		}
		for _, frame := range []int{0, 1, 20, 44} {
			o := offs[frame]
			for _, pos := range []int{o, o + 1, o + 3, o + 4, o + 8, o + 15, o + 16, o + 23, o + headerSize} {
				bad := bytes.Clone(img)
				bad[pos] ^= 0x10
				writeFile(t, fs, path, bad)
				ce := expectCorruption(t, fs, dir, segs[0])
				if ce.Offset != int64(o) || ce.LSN != uint64(frame)+1 {
					t.Fatalf("frame %d byte %d: reported offset %d LSN %d, want %d %d", frame, pos-o, ce.Offset, ce.LSN, o, frame+1)
				}
			}
		}
		// The last batch was synced too, but no frame came after it to
		// say so: damage there is taken for a torn write.
		for _, frame := range []int{45, 47, 49} {
			bad := bytes.Clone(img)
			bad[offs[frame]+headerSize] ^= 0x10
			writeFile(t, fs, path, bad)
			l := mustOpen(t, fs, dir, 1<<20)
			checkPositions(t, l, 1, uint64(frame))
			checkEntries(t, readAll(t, l, 1, 100, 0), 1, uint64(frame), salt0)
			mustClose(t, l)
		}
	})
}

// TestDamageBelowLaterSyncedOffset damages one frame at a time in a last
// segment written as: 1..20, Sync, 21..30, Sync, 31..35 never synced. A
// damaged frame is corruption exactly when a later intact frame records
// that the file had been synced past it; otherwise it and everything after
// it is dropped, and the warning says how much.
func TestDamageBelowLaterSyncedOffset(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		l := mustOpen(t, fs, dir, 1<<20)
		appendRange(t, l, 1, 20, 4, 0)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		appendRange(t, l, 21, 30, 3, 0)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		appendRange(t, l, 31, 35, 2, 0)
		mustClose(t, l) // without syncing 31..35; the file still has them
		seg := segmentFiles(t, fs, dir)[0]
		path := dir + "/" + seg
		img := readFile(t, fs, path)
		offs := frameOffsets(t, img)
		for lsn := uint64(1); lsn <= 35; lsn++ {
			o := offs[lsn-1]
			bad := bytes.Clone(img)
			bad[o+headerSize] ^= 0x01 // a payload bit: the checksum fails
			writeFile(t, fs, path, bad)
			var logged bytes.Buffer
			l, err := Open(dir, Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			if lsn <= 30 {
				// Synced before 21 (for 1..20) or before 31 (for 21..30).
				var ce *CorruptionError
				if !errors.As(err, &ce) {
					if l != nil {
						l.Close()
					}
					t.Fatalf("damaged LSN %d: Open = %v, want a *CorruptionError", lsn, err)
				}
				if ce.LSN != lsn || ce.Offset != int64(o) || ce.Segment != seg {
					t.Fatalf("damaged LSN %d at %d: reported LSN %d at %s offset %d", lsn, o, ce.LSN, ce.Segment, ce.Offset)
				}
				if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("(LSN %d)", lsn)) || !strings.Contains(msg, "synced up to offset") {
					t.Fatalf("message %q does not name LSN %d and the evidence", msg, lsn)
				}
				if got := readFile(t, fs, path); !bytes.Equal(got, bad) {
					t.Fatalf("damaged LSN %d: Open modified the segment it refused", lsn)
				}
				continue
			}
			if err != nil {
				t.Fatalf("damaged unsynced LSN %d: Open = %v", lsn, err)
			}
			checkPositions(t, l, 1, lsn-1)
			checkEntries(t, readAll(t, l, 1, 100, 0), 1, lsn-1, salt0)
			mustClose(t, l)
			out := logged.String()
			for _, want := range []string{
				"level=WARN",
				fmt.Sprintf("dropped_bytes=%d", len(img)-o),
				fmt.Sprintf("dropped_intact_entries=%d", 35-lsn),
			} {
				if !strings.Contains(out, want) {
					t.Fatalf("damaged LSN %d: log %q lacks %q", lsn, out, want)
				}
			}
		}
	})
}

// TestCorruptWrongLSN puts an intact frame with the wrong LSN in the last
// segment: a torn write cannot produce that, so it is corruption even at
// the end.
func TestCorruptWrongLSN(t *testing.T) {
	fs := vfs.NewMem()
	segs := buildLog(t, fs, "/wal", 1<<20, 10, 10)
	path := "/wal/" + segs[0]
	img := readFile(t, fs, path)
	for _, lsn := range []uint64{5, 10, 12, 1 << 40} {
		writeFile(t, fs, path, appendFrame(bytes.Clone(img), lsn, int64(len(img)), []byte("stale")))
		expectCorruption(t, fs, "/wal", segs[0])
	}
	// The right LSN, but claiming the file was synced beyond the frame's
	// own start: no writer can have known that.
	writeFile(t, fs, path, appendFrame(bytes.Clone(img), 11, int64(len(img))+1, []byte("stale")))
	if ce := expectCorruption(t, fs, "/wal", segs[0]); ce.LSN != 11 || ce.Offset != int64(len(img)) {
		t.Fatalf("reported LSN %d offset %d", ce.LSN, ce.Offset)
	}
}

func TestSegmentGapsAndOverlaps(t *testing.T) {
	setup := func(t *testing.T) (vfs.FS, []string) {
		fs := vfs.NewMem()
		segs := buildLog(t, fs, "/wal", 300, 100, 4)
		if len(segs) < 4 {
			t.Fatalf("only %d segments", len(segs))
		}
		return fs, segs
	}
	t.Run("missing middle segment", func(t *testing.T) {
		fs, segs := setup(t)
		if err := fs.Remove("/wal/" + segs[1]); err != nil {
			t.Fatal(err)
		}
		expectCorruption(t, fs, "/wal", segs[2])
	})
	t.Run("missing first segments is fine", func(t *testing.T) {
		fs, segs := setup(t)
		for _, s := range segs[:2] {
			if err := fs.Remove("/wal/" + s); err != nil {
				t.Fatal(err)
			}
		}
		first, _ := parseSegmentName(segs[2])
		l := mustOpen(t, fs, "/wal", 300)
		checkPositions(t, l, first, 100)
		mustClose(t, l)
	})
	t.Run("overlap", func(t *testing.T) {
		fs, segs := setup(t)
		first, _ := parseSegmentName(segs[2])
		img := readFile(t, fs, "/wal/"+segs[2])
		// The same content under a name one lower: it overlaps the previous
		// segment, and its frames do not match its name either.
		if err := fs.Remove("/wal/" + segs[2]); err != nil {
			t.Fatal(err)
		}
		writeFile(t, fs, "/wal/"+segmentName(first-1), img)
		expectCorruption(t, fs, "/wal", segmentName(first-1))
	})
	t.Run("empty segment in the middle", func(t *testing.T) {
		fs, segs := setup(t)
		writeFile(t, fs, "/wal/"+segs[1], appendSegHeader(nil))
		expectCorruption(t, fs, "/wal", segs[2])
	})
	t.Run("headerless segment in the middle", func(t *testing.T) {
		for _, content := range [][]byte{nil, appendSegHeader(nil)[:5], make([]byte, segHeaderSize)} {
			fs, segs := setup(t)
			writeFile(t, fs, "/wal/"+segs[1], content)
			expectCorruption(t, fs, "/wal", segs[1])
		}
	})
	t.Run("segment named zero", func(t *testing.T) {
		fs := vfs.NewMem()
		if err := fs.MkdirAll("/wal", 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, fs, "/wal/"+segmentName(0), nil)
		expectCorruption(t, fs, "/wal", segmentName(0))
	})
}

func TestOpenIgnoresOtherFilesAndRemovesTemporaries(t *testing.T) {
	fs := vfs.NewMem()
	segs := buildLog(t, fs, "/wal", 1<<20, 10, 10)
	writeFile(t, fs, "/wal/README", []byte("not a segment"))
	writeFile(t, fs, "/wal/"+segs[0]+".tmp", []byte("half a truncation"))
	l := mustOpen(t, fs, "/wal", 0)
	checkPositions(t, l, 1, 10)
	mustClose(t, l)
	names, _ := fs.List("/wal")
	for _, n := range names {
		if n == segs[0]+".tmp" {
			t.Fatal("temporary file left behind")
		}
	}
	if _, err := fs.Stat("/wal/README"); err != nil {
		t.Fatalf("unrelated file touched: %v", err)
	}
}

// TestReopenWithoutClose reads a log whose writer never closed it, as after
// a process crash: the unsynced entries are in the (shared) page cache, and
// Open must fsync them before reporting them synced.
func TestReopenWithoutClose(t *testing.T) {
	fs := vfs.NewCrashableMem()
	l := mustOpen(t, fs, "/wal", 400)
	appendRange(t, l, 1, 100, 7, 0)
	l2 := mustOpen(t, fs, "/wal", 400)
	checkPositions(t, l2, 1, 100)
	if l2.SyncedLSN() != 100 {
		t.Fatalf("SyncedLSN %d", l2.SyncedLSN())
	}
	// Everything l2 calls synced survives a crash now.
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	l3 := mustOpen(t, crashed, "/wal", 400)
	checkEntries(t, readAll(t, l3, 1, 1000, 0), 1, 100, salt0)
	mustClose(t, l3)
	mustClose(t, l2)
	mustClose(t, l)
}

// TestCrash takes crash images of a crashable in-memory file system at
// random points of a run: every entry up to SyncedLSN must survive, and
// whatever survives beyond it must be a correct prefix.
func TestCrash(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for iter := range 60 {
		fs := vfs.NewCrashableMem()
		// Small segments cross many rotations; large ones hold unsynced
		// tails of several 4 KiB blocks, of which a later one may survive
		// while an earlier one is lost.
		segBytes := []int64{500, 16 << 10}[(iter/3)%2]
		l := mustOpen(t, fs, "/wal", segBytes)
		ops := rng.IntN(60) + 1
		for range ops {
			switch rng.IntN(10) {
			case 0:
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
			case 1:
				if err := l.TruncateFront(l.LastLSN() / 2); err != nil {
					t.Fatal(err)
				}
			default:
				n := uint64(rng.IntN(8) + 1)
				if segBytes > 500 {
					n *= 6
				}
				appendRange(t, l, l.LastLSN()+1, l.LastLSN()+n, 8, 0)
			}
		}
		synced, last, first := l.SyncedLSN(), l.LastLSN(), l.FirstLSN()
		pct := []int{0, 50, 100}[iter%3]
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(uint64(iter), 0))})
		// With unsynced blocks kept at random, a later block can survive
		// while an earlier one is lost: a crash, never a reason to refuse.
		l2, err := Open("/wal", Options{FS: crashed, SegmentBytes: segBytes})
		if err != nil {
			t.Fatalf("iteration %d (%d%% unsynced): Open after crash: %v", iter, pct, err)
		}
		if l2.LastLSN() < synced || l2.LastLSN() > last || l2.FirstLSN() > first {
			t.Fatalf("iteration %d: after the crash the log is %d..%d; before it was %d..%d synced to %d",
				iter, l2.FirstLSN(), l2.LastLSN(), first, last, synced)
		}
		if pct == 100 && l2.LastLSN() != last {
			t.Fatalf("iteration %d: lost unsynced entries although every write survived", iter)
		}
		f2 := max(l2.FirstLSN(), first)
		checkEntries(t, readAll(t, l2, f2, 1<<40, 0), f2, l2.LastLSN(), salt0)
		mustClose(t, l2)
		mustClose(t, l)
	}
}

// TestReadDetectsCorruption damages a frame after Open, as bit rot would:
// Read verifies checksums and reports it rather than returning bad data.
func TestReadDetectsCorruption(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		l := mustOpen(t, fs, dir, 0)
		defer mustClose(t, l)
		appendRange(t, l, 1, 100, 10, 0)
		segs := segmentFiles(t, fs, dir)
		path := dir + "/" + segs[0]
		offs := frameOffsets(t, readFile(t, fs, path))
		f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0xff}, int64(offs[70]+headerSize)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		checkEntries(t, readAll(t, l, 1, 70, 0), 1, 70, salt0)
		_, err = tryRead(l, 60, 100, 0)
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.LSN != 71 || ce.Offset != int64(offs[70]) {
			t.Fatalf("Read over a damaged frame: %v", err)
		}
	})
}

// TestTornTailIsLogged checks that dropping a torn tail is not silent.
func TestTornTailIsLogged(t *testing.T) {
	fs := vfs.NewMem()
	segs := buildLog(t, fs, "/wal", 0, 5, 5)
	path := "/wal/" + segs[0]
	writeFile(t, fs, path, append(readFile(t, fs, path), make([]byte, 123)...))
	var buf bytes.Buffer
	l, err := Open("/wal", Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "dropped_bytes=123") {
		t.Fatalf("log output %q", out)
	}
}

// writeSyncedThenUnsynced writes 1..300 synced (1..100, Sync, 101..300,
// Sync) and 301..700 unsynced, several pages' worth, into one segment. It
// returns the log, still open, and the segment's size when it was last
// synced.
func writeSyncedThenUnsynced(t *testing.T, fs vfs.FS, dir string) (*Log, int64) {
	t.Helper()
	l := mustOpen(t, fs, dir, 1<<20)
	appendRange(t, l, 1, 100, 10, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 101, 300, 7, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	st, err := fs.Stat(dir + "/" + segmentName(1))
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 301, 700, 9, 0)
	if segs := segmentFiles(t, fs, dir); len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	return l, st.Size()
}

// TestCrashLaterPageSurvives crashes with unsynced 4 KiB blocks kept at
// random, so that often a later block of the unsynced tail survives while
// an earlier one is lost (left as zeros). Open must always succeed, keep
// every synced entry and drop what follows the hole.
func TestCrashLaterPageSurvives(t *testing.T) {
	fs := vfs.NewCrashableMem()
	l, syncedSize := writeSyncedThenUnsynced(t, fs, "/wal")
	defer mustClose(t, l)
	if size := int64(len(readFile(t, fs, "/wal/"+segmentName(1)))); size < syncedSize+3*4096 {
		t.Fatalf("unsynced tail is only %d bytes", size-syncedSize)
	}
	synced := l.SyncedLSN()
	if synced != 300 {
		t.Fatalf("SyncedLSN %d", synced)
	}
	outOfOrder := 0
	for seed := range 200 {
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(uint64(seed), 99))})
		var logged bytes.Buffer
		l2, err := Open("/wal", Options{FS: crashed, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		if err != nil {
			t.Fatalf("seed %d: Open after a crash: %v", seed, err)
		}
		if l2.LastLSN() < synced || l2.LastLSN() > 700 || l2.SyncedLSN() != l2.LastLSN() {
			t.Fatalf("seed %d: after the crash LastLSN %d SyncedLSN %d; before it SyncedLSN %d", seed, l2.LastLSN(), l2.SyncedLSN(), synced)
		}
		checkEntries(t, readAll(t, l2, 1, 1000, 0), 1, l2.LastLSN(), salt0)
		if strings.Contains(logged.String(), "dropped_intact_entries=") && !strings.Contains(logged.String(), "dropped_intact_entries=0") {
			outOfOrder++
		}
		// The log goes on from where recovery left it, and that survives
		// another crash.
		appendRange(t, l2, l2.LastLSN()+1, l2.LastLSN()+20, 5, 1)
		if err := l2.Sync(); err != nil {
			t.Fatal(err)
		}
		last := l2.LastLSN()
		l3 := mustOpen(t, crashed.CrashClone(vfs.CrashCloneCfg{}), "/wal", 1<<20)
		checkPositions(t, l3, 1, last)
		checkEntries(t, readAll(t, l3, last-19, last, 0), last-19, last, func(uint64) byte { return 1 })
		mustClose(t, l3)
		mustClose(t, l2)
	}
	if outOfOrder == 0 {
		t.Fatal("no crash image had intact frames after a hole; the test does not test what it should")
	}
	t.Logf("%d of 200 crash images had intact unsynced frames after a hole", outOfOrder)
}

// TestLostPageBeforeSurvivingPage builds the image by hand: one page of the
// unsynced tail zeroed, every later byte intact. Open truncates at the first
// frame touching the hole, on both file systems (ftruncate and rewrite).
func TestLostPageBeforeSurvivingPage(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		l, syncedSize := writeSyncedThenUnsynced(t, fs, dir)
		mustClose(t, l)
		path := dir + "/" + segmentName(1)
		img := readFile(t, fs, path)
		offs := frameOffsets(t, img)
		for _, page := range []int64{syncedSize / 4096, syncedSize/4096 + 1, int64(len(img))/4096 - 1} {
			lo, hi := max(page*4096, syncedSize), (page+1)*4096
			bad := bytes.Clone(img)
			clear(bad[lo:hi])
			writeFile(t, fs, path, bad)
			// The frame holding byte lo is the first damaged one.
			k := 0
			for k+1 < len(offs) && int64(offs[k+1]) <= lo {
				k++
			}
			l := mustOpen(t, fs, dir, 1<<20)
			checkPositions(t, l, 1, uint64(k))
			checkEntries(t, readAll(t, l, 1, 1000, 0), 1, uint64(k), salt0)
			mustClose(t, l)
			if got := len(readFile(t, fs, path)); got != offs[k] {
				t.Fatalf("page %d lost: file is %d bytes after recovery, want %d", page, got, offs[k])
			}
		}
	})
}

// TestUnknownFormat checks that Open refuses, without touching them,
// segments that do not start with this format's header: a headerless one
// as the unreleased first format wrote, another version, a damaged magic.
func TestUnknownFormat(t *testing.T) {
	// The unreleased format: u32 length, u32 CRC of LSN and payload, u64
	// LSN, payload; no segment header.
	var old []byte
	for lsn := uint64(1); lsn <= 3; lsn++ {
		p := payloadFor(lsn, 0)
		f := binary.LittleEndian.AppendUint32(nil, uint32(len(p)))
		f = binary.LittleEndian.AppendUint32(f, 0)
		f = binary.LittleEndian.AppendUint64(f, lsn)
		f = append(f, p...)
		binary.LittleEndian.PutUint32(f[4:], crc32.Checksum(f[8:], castagnoli))
		old = append(old, f...)
	}
	version2 := binary.LittleEndian.AppendUint32(segMagic[:], 2)
	badMagic := appendSegHeader(nil)
	badMagic[2] ^= 0x20
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"headerless", old, "not the segment magic"},
		{"version 2", append(version2, appendFrame(nil, 1, segHeaderSize, []byte("x"))...), "format version 2"},
		{"version 2, empty", version2, "format version 2"},
		{"damaged magic", append(badMagic, appendFrame(nil, 1, segHeaderSize, []byte("x"))...), "not the segment magic"},
		{"zero header before frames", append(make([]byte, segHeaderSize), appendFrame(nil, 1, segHeaderSize, []byte("x"))...), "not the segment magic"},
	} {
		for _, where := range []string{"last", "not last"} {
			t.Run(tc.name+"/"+where, func(t *testing.T) {
				fs := vfs.NewMem()
				if err := fs.MkdirAll("/wal", 0o755); err != nil {
					t.Fatal(err)
				}
				if where == "not last" {
					writeFile(t, fs, "/wal/"+segmentName(4), appendSegHeader(nil))
				}
				writeFile(t, fs, "/wal/"+segmentName(1), tc.content)
				l, err := Open("/wal", Options{FS: fs})
				if err == nil {
					l.Close()
					t.Fatal("Open accepted a segment in an unknown format")
				}
				if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), segmentName(1)) {
					t.Fatalf("Open = %v, want ErrUnknownFormat naming the file and saying %q", err, tc.want)
				}
				if got := readFile(t, fs, "/wal/"+segmentName(1)); !bytes.Equal(got, tc.content) {
					t.Fatal("Open modified the segment it refused")
				}
			})
		}
	}
}

// TestInterruptedSegmentCreation covers a crash while a segment was being
// created, before its header was durable: the last segment is shorter than
// a header, or a header's worth of zeros or of a header prefix and zeros. It never held an entry, so Open
// writes it again and the log continues at the LSN its name promises.
func TestInterruptedSegmentCreation(t *testing.T) {
	torn := append(appendSegHeader(nil)[:6], make([]byte, segHeaderSize-6)...)
	for _, content := range [][]byte{nil, appendSegHeader(nil)[:7], {1, 2, 3}, make([]byte, segHeaderSize), torn} {
		forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
			// As if the crash hit the rotation after 50: the segment for 51
			// exists, but not (all of) its header.
			buildLog(t, fs, dir, 300, 50, 4)
			const first = 51
			writeFile(t, fs, dir+"/"+segmentName(first), content)
			var logged bytes.Buffer
			l, err := Open(dir, Options{FS: fs, SegmentBytes: 300, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			if err != nil {
				t.Fatalf("content %x: %v", content, err)
			}
			checkPositions(t, l, 1, 50)
			if !strings.Contains(logged.String(), "level=WARN") {
				t.Fatalf("recreating the segment was not logged: %q", logged.String())
			}
			if got := readFile(t, fs, dir+"/"+segmentName(first)); !bytes.Equal(got, appendSegHeader(nil)) {
				t.Fatalf("segment rewritten as %x", got)
			}
			appendRange(t, l, 51, 60, 3, 0)
			l = reopen(t, l, fs, dir, 300)
			checkEntries(t, readAll(t, l, 1, 100, 0), 1, 60, salt0)
			mustClose(t, l)
		})
	}
}
