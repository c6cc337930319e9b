package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// fsKind is a file system to run a test on. Both matter: the in-memory one
// has no Truncate and so exercises the rewrite-and-rename path, the real one
// uses ftruncate and real fsyncs.
type fsKind struct {
	name string
	make func(t testing.TB) (vfs.FS, string)
}

var fsKinds = []fsKind{
	{"mem", func(testing.TB) (vfs.FS, string) { return vfs.NewMem(), "/wal" }},
	{"disk", func(t testing.TB) (vfs.FS, string) { return vfs.Default, t.TempDir() + "/wal" }},
}

func forEachFS(t *testing.T, f func(t *testing.T, fs vfs.FS, dir string)) {
	for _, k := range fsKinds {
		t.Run(k.name, func(t *testing.T) {
			fs, dir := k.make(t)
			f(t, fs, dir)
		})
	}
}

func mustOpen(t testing.TB, fs vfs.FS, dir string, segBytes int64) *Log {
	t.Helper()
	l, err := Open(dir, Options{FS: fs, SegmentBytes: segBytes})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func reopen(t testing.TB, l *Log, fs vfs.FS, dir string, segBytes int64) *Log {
	t.Helper()
	mustClose(t, l)
	return mustOpen(t, fs, dir, segBytes)
}

// payloadFor is a deterministic payload for lsn whose length varies with
// the LSN, so that an entry read from the wrong place is noticed. salt
// distinguishes payloads rewritten after a TruncateBack.
func payloadFor(lsn uint64, salt byte) []byte {
	// The salt changes the length too, so that entries rewritten after a
	// TruncateBack sit at different offsets than the ones they replace.
	n := int((lsn*7+uint64(salt)*13)%53) + 1
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(lsn) ^ byte(i*31) ^ salt
	}
	return p
}

// appendRange appends LSNs from..to with payloadFor, in batches of up to
// batch entries.
func appendRange(t testing.TB, l *Log, from, to uint64, batch int, salt byte) {
	t.Helper()
	if err := appendRangeErr(l, from, to, batch, salt); err != nil {
		t.Fatal(err)
	}
}

// appendRangeErr is appendRange for goroutines other than the test's.
func appendRangeErr(l *Log, from, to uint64, batch int, salt byte) error {
	for lsn := from; lsn <= to; {
		n := min(uint64(batch), to-lsn+1)
		ps := make([][]byte, n)
		for i := range ps {
			ps[i] = payloadFor(lsn+uint64(i), salt)
		}
		if err := l.AppendBatch(lsn, ps); err != nil {
			return fmt.Errorf("AppendBatch(%d, %d entries): %w", lsn, n, err)
		}
		lsn += n
	}
	return nil
}

type entry struct {
	lsn     uint64
	payload []byte
}

func readAll(t testing.TB, l *Log, from, to uint64, maxBytes int) []entry {
	t.Helper()
	es, err := tryRead(l, from, to, maxBytes)
	if err != nil {
		t.Fatalf("Read(%d, %d, %d): %v", from, to, maxBytes, err)
	}
	return es
}

func tryRead(l *Log, from, to uint64, maxBytes int) ([]entry, error) {
	var es []entry
	err := l.Read(from, to, maxBytes, func(lsn uint64, p []byte) error {
		es = append(es, entry{lsn, slices.Clone(p)})
		return nil
	})
	return es, err
}

// checkEntries verifies that es are exactly from..to with payloadFor(salt
// chosen by saltOf).
func checkEntries(t testing.TB, es []entry, from, to uint64, saltOf func(uint64) byte) {
	t.Helper()
	want := 0
	if to >= from {
		want = int(to - from + 1)
	}
	if len(es) != want {
		t.Fatalf("read %d entries for %d..%d: %s", len(es), from, to, describe(es))
	}
	for i, e := range es {
		lsn := from + uint64(i)
		if e.lsn != lsn {
			t.Fatalf("entry %d has LSN %d, want %d", i, e.lsn, lsn)
		}
		if want := payloadFor(lsn, saltOf(lsn)); !bytes.Equal(e.payload, want) {
			t.Fatalf("LSN %d payload %x, want %x", lsn, e.payload, want)
		}
	}
}

func salt0(uint64) byte { return 0 }

func readFile(t testing.TB, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, fs vfs.FS, path string, b []byte) {
	t.Helper()
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(slices.Clone(b)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// segmentFiles lists the segment names in dir, sorted.
func segmentFiles(t testing.TB, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, n := range names {
		if _, ok := parseSegmentName(n); ok {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	return segs
}

// frameOffsets decodes a segment image into the offsets of its frames.
func frameOffsets(t testing.TB, b []byte) []int {
	t.Helper()
	if len(b) < segHeaderSize {
		t.Fatalf("segment of %d bytes has no header", len(b))
	}
	var offs []int
	for off := segHeaderSize; off < len(b); {
		if len(b)-off < headerSize {
			t.Fatalf("partial header at %d", off)
		}
		offs = append(offs, off)
		off += headerSize + int(binary.LittleEndian.Uint32(b[off:]))
	}
	return offs
}

func checkPositions(t testing.TB, l *Log, first, last uint64) {
	t.Helper()
	if l.FirstLSN() != first || l.LastLSN() != last {
		t.Fatalf("FirstLSN, LastLSN = %d, %d, want %d, %d", l.FirstLSN(), l.LastLSN(), first, last)
	}
}

func describe(es []entry) string {
	var b bytes.Buffer
	for _, e := range es {
		fmt.Fprintf(&b, "%d:%d ", e.lsn, len(e.payload))
	}
	return b.String()
}
