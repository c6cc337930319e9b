package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// openTestStore opens dir with a small cache (tests open many stores on a
// shared machine) and closes it when the test ends; Close is idempotent, so
// tests may close earlier.
func openTestStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// With the presence filter ready, every test also checks that it
	// never hides a key (presence.go); before, reads and counts seek.
	waitPresence(t, s)
	return s
}

func set(k, v string) Op { return Op{Kind: OpSet, Key: []byte(k), Value: []byte(v)} }

func setEx(k, v string, expireAt int64) Op {
	return Op{Kind: OpSet, Key: []byte(k), Value: []byte(v), ExpireAt: expireAt}
}

func del(k string) Op { return Op{Kind: OpDel, Key: []byte(k)} }
func flushAll() Op    { return Op{Kind: OpFlush} }
func ent(lsn, epoch uint64, ops ...Op) Entry {
	return Entry{LSN: lsn, Epoch: epoch, Time: int64(lsn) * 1000, Ops: ops}
}

// mustAppend appends, waits for durability and fails the test on error.
func mustAppend(t testing.TB, s *Store, o AppendOptions, es ...Entry) {
	t.Helper()
	p, err := s.Append(es, o)
	if err != nil {
		t.Fatalf("Append(%d entries from LSN %d): %v", len(es), es[0].LSN, err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

var applySync = AppendOptions{Apply: true, Sync: true}

// getStr reads key at LSN at and renders the result as "value@lsn" or "-".
func getStr(t testing.TB, s *Store, key string, at uint64) string {
	t.Helper()
	v, ok, err := s.Get([]byte(key), at)
	if err != nil {
		t.Fatalf("Get(%q, %d): %v", key, at, err)
	}
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%s@%d", v.Value, v.LSN)
}

// scanStr renders a scan as "k=v@lsn k=v@lsn".
func scanStr(t testing.TB, s *Store, at uint64, start []byte) string {
	t.Helper()
	var out []string
	err := s.Scan(at, start, func(k []byte, v Version) bool {
		out = append(out, fmt.Sprintf("%s=%s@%d", k, v.Value, v.LSN))
		return true
	})
	if err != nil {
		t.Fatalf("Scan(%d, %q): %v", at, start, err)
	}
	return strings.Join(out, " ")
}

func readAll(t testing.TB, s *Store, from, to uint64) []Entry {
	t.Helper()
	var out []Entry
	if err := s.ReadLog(from, to, 0, func(e Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatalf("ReadLog(%d, %d): %v", from, to, err)
	}
	return out
}

// historyEntries is a small history covering overwrite, delete, expiry and
// FLUSH, including FLUSH mixed with writes in one entry.
func historyEntries() []Entry {
	return []Entry{
		ent(1, 1, set("a", "1")),
		ent(2, 1, set("b", "1")),
		ent(3, 1, set("a", "2")),
		ent(4, 1, del("a")),
		ent(5, 1, setEx("a", "3", 1000)),
		ent(6, 1, flushAll()),
		ent(7, 1, set("b", "2")),
		// Ops of an entry apply in order: c is written after the flush
		// (survives), d before it (is flushed away).
		ent(8, 1, flushAll(), set("c", "1")),
		ent(9, 1, set("d", "1"), flushAll()),
		ent(10, 1, set("a", "4")),
	}
}

func TestGetAtLSN(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync, historyEntries()...)
	tests := []struct {
		key  string
		at   uint64
		want string
	}{
		{"a", 0, "-"},
		{"a", 1, "1@1"},
		{"a", 2, "1@1"}, // newest version at or below 2 is the one from 1
		{"a", 3, "2@3"},
		{"a", 4, "-"}, // tombstone
		{"a", 5, "3@5"},
		{"a", 6, "-"}, // flushed at 6
		{"a", 9, "-"},
		{"a", 10, "4@10"},
		{"a", Latest, "4@10"},
		{"b", 1, "-"},
		{"b", 5, "1@2"}, // a flush at 6 must not hide it from reads at 5
		{"b", 6, "-"},
		{"b", 7, "2@7"},
		{"b", 8, "-"},
		{"c", 7, "-"},
		{"c", 8, "1@8"}, // written after the flush in the same entry
		{"c", 9, "-"},
		{"d", 9, "-"}, // written before the flush in the same entry
		{"d", Latest, "-"},
		{"missing", Latest, "-"},
		{"a\x00", Latest, "-"}, // a neighbour in escaped key space
		{"", Latest, "-"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q@%d", tt.key, tt.at), func(t *testing.T) {
			if got := getStr(t, s, tt.key, tt.at); got != tt.want {
				t.Fatalf("Get(%q, %d) = %s, want %s", tt.key, tt.at, got, tt.want)
			}
		})
	}
}

// TestGetReportsExpiry: the store does not hide expired versions (the
// caller decides with its own clock); it reports ExpireAt and Expired.
func TestGetReportsExpiry(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync, historyEntries()...)
	v, ok, err := s.Get([]byte("a"), 5)
	if err != nil || !ok {
		t.Fatalf("Get(a, 5) = %v, %v", ok, err)
	}
	if v.ExpireAt != 1000 {
		t.Fatalf("ExpireAt = %d, want 1000", v.ExpireAt)
	}
	tests := []struct {
		name     string
		expireAt int64
		now      int64
		want     bool
	}{
		{"no expiry", 0, math.MaxInt64, false},
		{"before", 1000, 999, false},
		{"at the instant", 1000, 1000, true},
		{"after", 1000, 1001, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Version{ExpireAt: tt.expireAt}).Expired(tt.now); got != tt.want {
				t.Fatalf("Expired(%d) with ExpireAt %d = %v", tt.now, tt.expireAt, got)
			}
		})
	}
}

func TestScanAtLSN(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync, historyEntries()...)
	tests := []struct {
		at    uint64
		start []byte
		want  string
	}{
		{0, nil, ""},
		{1, nil, "a=1@1"},
		{2, nil, "a=1@1 b=1@2"},
		{3, nil, "a=2@3 b=1@2"},
		{4, nil, "b=1@2"},
		{5, nil, "a=3@5 b=1@2"},
		{6, nil, ""},
		{7, nil, "b=2@7"},
		{8, nil, "c=1@8"},
		{9, nil, ""},
		{10, nil, "a=4@10"},
		{Latest, nil, "a=4@10"},
		{5, []byte("a"), "a=3@5 b=1@2"}, // start is inclusive
		{5, []byte("b"), "b=1@2"},
		{5, []byte("a\x00"), "b=1@2"}, // between a and b
		{5, []byte(""), "a=3@5 b=1@2"},
		{5, []byte("c"), ""},
		{3, []byte("b"), "b=1@2"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("at%d_from%q", tt.at, tt.start), func(t *testing.T) {
			if got := scanStr(t, s, tt.at, tt.start); got != tt.want {
				t.Fatalf("Scan(%d, %q) = %q, want %q", tt.at, tt.start, got, tt.want)
			}
		})
	}
	t.Run("stops when fn returns false", func(t *testing.T) {
		n := 0
		if err := s.Scan(5, nil, func([]byte, Version) bool { n++; return false }); err != nil || n != 1 {
			t.Fatalf("Scan visited %d keys (err %v), want 1", n, err)
		}
	})
}

// TestScanEscapedKeys checks Scan's key order and skipping over keys whose
// versions are all newer than the read LSN, with keys that differ only in
// the bytes the escaping rewrites.
func TestScanEscapedKeys(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	keys := []string{"a\x01", "", "a\x00\x01", "a", "a\x00", "\x00", "a\xff"}
	var es []Entry
	for i, k := range keys {
		es = append(es, ent(uint64(i+1), 1, set(k, fmt.Sprint(i+1))))
	}
	mustAppend(t, s, applySync, es...)
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	for at := uint64(0); at <= uint64(len(keys)); at++ {
		var want []string
		for _, k := range sorted {
			if i := slices.Index(keys, k); uint64(i+1) <= at {
				want = append(want, k)
			}
		}
		var got []string
		if err := s.Scan(at, nil, func(k []byte, _ Version) bool { got = append(got, string(k)); return true }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Scan at %d = %q, want %q", at, got, want)
		}
	}
	var got []string
	_ = s.Scan(Latest, []byte("a\x00"), func(k []byte, _ Version) bool { got = append(got, string(k)); return true })
	if want := []string{"a\x00", "a\x00\x01", "a\x01", "a\xff"}; !slices.Equal(got, want) {
		t.Errorf("Scan from a\\x00 = %q, want %q", got, want)
	}
}

// TestFollowerAppendThenApply: a follower appends first (received) and
// applies later; versions must stay invisible until applied.
func TestFollowerAppendThenApply(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	mustAppend(t, s, AppendOptions{Sync: true},
		ent(1, 1, set("a", "1")),
		ent(2, 1, set("a", "2"), set("b", "2")),
		ent(3, 1, flushAll()),
		ent(4, 1, set("c", "4")),
	)
	if st := s.State(); st.LastLSN != 4 || st.AppliedLSN != 0 {
		t.Fatalf("after append without apply: %+v", st)
	}
	if got := getStr(t, s, "a", Latest); got != "-" {
		t.Fatalf("unapplied version visible: %s", got)
	}
	if got := scanStr(t, s, Latest, nil); got != "" {
		t.Fatalf("unapplied versions visible in scan: %q", got)
	}
	// Append with Apply would write versions on top of a gap.
	if _, err := s.Append([]Entry{ent(5, 1, set("x", "5"))}, AppendOptions{Apply: true}); err == nil {
		t.Fatal("Append with Apply while entries are unapplied succeeded")
	}
	if err := s.ApplyUpTo(5); err == nil {
		t.Fatal("ApplyUpTo beyond LastLSN succeeded")
	}
	if err := s.ApplyUpTo(2); err != nil {
		t.Fatal(err)
	}
	if got := getStr(t, s, "a", Latest); got != "2@2" {
		t.Fatalf("after ApplyUpTo(2): a = %s", got)
	}
	if err := s.ApplyUpTo(1); err != nil { // already applied: a no-op
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	// Open applies the whole log: a follower that is not a delayed replica
	// would do so next anyway.
	if st := s.State(); st.AppliedLSN != 4 || st.LastLSN != 4 {
		t.Fatalf("after reopen: %+v, want applied 4, last 4", st)
	}
	if err := s.ApplyUpTo(4); err != nil {
		t.Fatal(err)
	}
	// The flush at 3 was applied by the replay at Open; it must hide a and b.
	if got := scanStr(t, s, Latest, nil); got != "c=4@4" {
		t.Fatalf("after ApplyUpTo(4): scan = %q", got)
	}
	if got := scanStr(t, s, 2, nil); got != "a=2@2 b=2@2" {
		t.Fatalf("scan at 2 = %q", got)
	}
	_ = s.Close()
	s = openTestStore(t, dir)
	if st := s.State(); st.AppliedLSN != 4 {
		t.Fatalf("AppliedLSN after second reopen = %d, want 4", st.AppliedLSN)
	}
	if got := scanStr(t, s, Latest, nil); got != "c=4@4" {
		t.Fatalf("after reopen: scan = %q (flush marker lost?)", got)
	}
}

func TestEpochHistory(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	mustAppend(t, s, applySync, ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 2))
	mustAppend(t, s, applySync, ent(6, 4)) // epochs need not be consecutive
	want := []EpochStart{{1, 1}, {2, 3}, {4, 6}}
	if got := s.EpochHistory(); !slices.Equal(got, want) {
		t.Fatalf("EpochHistory = %v, want %v", got, want)
	}
	if st := s.State(); st.LastEpoch != 4 {
		t.Fatalf("LastEpoch = %d", st.LastEpoch)
	}
	epochAt := []struct{ lsn, want uint64 }{{0, 0}, {1, 1}, {2, 1}, {3, 2}, {5, 2}, {6, 4}, {7, 0}, {math.MaxUint64, 0}}
	for _, tt := range epochAt {
		if got := s.EpochAt(tt.lsn); got != tt.want {
			t.Errorf("EpochAt(%d) = %d, want %d", tt.lsn, got, tt.want)
		}
	}

	rejects := []struct {
		name    string
		entries []Entry
		want    error // nil: any error
	}{
		{"lower epoch", []Entry{ent(7, 3)}, nil},
		{"lower epoch later in batch", []Entry{ent(7, 4), ent(8, 3)}, nil},
		{"gap", []Entry{ent(8, 4)}, ErrNotContiguous},
		{"duplicate LSN", []Entry{ent(6, 4)}, ErrNotContiguous},
		{"gap inside batch", []Entry{ent(7, 4), ent(9, 4)}, ErrNotContiguous},
		{"LSN zero", []Entry{ent(0, 4)}, ErrNotContiguous},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			before := s.State()
			_, err := s.Append(tt.entries, applySync)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Append = %v, want error %v", err, tt.want)
			}
			// A rejected batch is all-or-nothing.
			if after := s.State(); after != before {
				t.Fatalf("state changed by a rejected append: %+v -> %+v", before, after)
			}
			if _, err := s.Entry(7); err == nil {
				t.Fatal("entry 7 exists after a rejected append")
			}
		})
	}

	removed, err := s.TruncateSuffix(5)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].LSN != 6 || removed[0].Epoch != 4 {
		t.Fatalf("TruncateSuffix(5) removed %+v", removed)
	}
	if got, want := s.EpochHistory(), []EpochStart{{1, 1}, {2, 3}}; !slices.Equal(got, want) {
		t.Fatalf("after TruncateSuffix(5): history %v, want %v", got, want)
	}
	if st := s.State(); st.LastEpoch != 2 || st.LastLSN != 5 {
		t.Fatalf("after TruncateSuffix(5): %+v", st)
	}
	// The dropped epoch 4 no longer constrains: a new leader of epoch 3
	// may write LSN 6.
	mustAppend(t, s, applySync, ent(6, 3))
	if _, err := s.TruncateSuffix(3); err != nil { // cut exactly at an epoch start: that epoch stays
		t.Fatal(err)
	}
	if got, want := s.EpochHistory(), []EpochStart{{1, 1}, {2, 3}}; !slices.Equal(got, want) {
		t.Fatalf("after TruncateSuffix(3): history %v, want %v", got, want)
	}
	if _, err := s.TruncateSuffix(2); err != nil {
		t.Fatal(err)
	}
	if got, want := s.EpochHistory(), []EpochStart{{1, 1}}; !slices.Equal(got, want) {
		t.Fatalf("after TruncateSuffix(2): history %v, want %v", got, want)
	}
	_ = s.Close()
	s = openTestStore(t, dir)
	if got, want := s.EpochHistory(), []EpochStart{{1, 1}}; !slices.Equal(got, want) {
		t.Fatalf("after reopen: history %v, want %v", got, want)
	}
	if st := s.State(); st.LastEpoch != 1 || st.LastLSN != 2 {
		t.Fatalf("after reopen: %+v", st)
	}
	if _, err := s.TruncateSuffix(0); err != nil {
		t.Fatal(err)
	}
	if h, st := s.EpochHistory(), s.State(); len(h) != 0 || st.LastEpoch != 0 || st.LastLSN != 0 {
		t.Fatalf("after TruncateSuffix(0): history %v, state %+v", h, st)
	}
}

// TestRecovery: everything appended with Sync and waited for is there after
// a clean close and reopen, positions included.
func TestRecovery(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	es := historyEntries()
	for i := range es {
		es[i].Epoch = uint64(1 + i/4)
	}
	mustAppend(t, s, AppendOptions{Apply: true, Sync: true, CommitLSN: 3}, es[:5]...)
	mustAppend(t, s, AppendOptions{Apply: true, Sync: true, CommitLSN: 8}, es[5:]...)
	if err := s.SetCommitLSN(9); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("node_id", []byte("n1")); err != nil {
		t.Fatal(err)
	}
	wantState, wantHist := s.State(), s.EpochHistory()
	wantScan := map[uint64]string{}
	for at := uint64(0); at <= 10; at++ {
		wantScan[at] = scanStr(t, s, at, nil)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestStore(t, dir)
	if st := s.State(); st != wantState {
		t.Fatalf("state after reopen %+v, want %+v", st, wantState)
	}
	if wantState.CommitLSN != 9 || wantState.LastLSN != 10 || wantState.LastEpoch != 3 {
		t.Fatalf("unexpected state before close: %+v", wantState)
	}
	if h := s.EpochHistory(); !slices.Equal(h, wantHist) {
		t.Fatalf("history after reopen %v, want %v", h, wantHist)
	}
	got := readAll(t, s, 1, 10)
	if len(got) != len(es) {
		t.Fatalf("read %d entries after reopen, want %d", len(got), len(es))
	}
	for i := range es {
		if !sameEntry(got[i], es[i]) {
			t.Fatalf("entry %d after reopen = %+v, want %+v", i+1, got[i], es[i])
		}
	}
	for at := uint64(0); at <= 10; at++ {
		if g := scanStr(t, s, at, nil); g != wantScan[at] {
			t.Errorf("scan at %d after reopen = %q, want %q", at, g, wantScan[at])
		}
	}
	if m, err := s.GetMeta("node_id"); err != nil || string(m) != "n1" {
		t.Fatalf("GetMeta after reopen = %q, %v", m, err)
	}
	if m, err := s.GetMeta("absent"); err != nil || m != nil {
		t.Fatalf("GetMeta(absent) = %q, %v", m, err)
	}
}

func TestSetCommitLSN(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync, ent(1, 1), ent(2, 1), ent(3, 1))
	steps := []struct{ set, want uint64 }{
		{2, 2},
		{1, 2}, // never goes back
		{9, 3}, // never beyond LastLSN
		{0, 3},
	}
	for _, st := range steps {
		if err := s.SetCommitLSN(st.set); err != nil {
			t.Fatal(err)
		}
		if got := s.State().CommitLSN; got != st.want {
			t.Fatalf("SetCommitLSN(%d): CommitLSN = %d, want %d", st.set, got, st.want)
		}
	}
	// Append's CommitLSN is clamped to the batch's last LSN too.
	mustAppend(t, s, AppendOptions{Apply: true, Sync: true, CommitLSN: 100}, ent(4, 1))
	if got := s.State().CommitLSN; got != 4 {
		t.Fatalf("CommitLSN after Append(CommitLSN: 100) = %d, want 4", got)
	}
}

// rewriteFrame replaces the frame of lsn in the closed store's log files
// with a frame for frameLSN holding payload, with a valid frame checksum:
// damage the log files themselves cannot see (a buggy writer, or a frame
// of the wrong place), which the records' own checksums and LSNs must
// catch. Segment: 12-byte header; frames: u32 length, u32 CRC-32C of the
// rest, u64 LSN, u64 synced offset, payload (little-endian; see package
// wal's doc.go).
func rewriteFrame(t *testing.T, dir string, lsn, frameLSN uint64, payload []byte) {
	t.Helper()
	const header, frameHeader = 12, 24
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.log"))
	for _, path := range segs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out := append([]byte(nil), b[:header]...)
		found := false
		for off := header; off+frameHeader <= len(b); {
			n := int(binary.LittleEndian.Uint32(b[off:]))
			at := binary.LittleEndian.Uint64(b[off+8:])
			frame := b[off : off+frameHeader+n]
			if at == lsn {
				found = true
				synced := binary.LittleEndian.Uint64(frame[16:])
				frame = binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
				frame = binary.LittleEndian.AppendUint32(frame, 0)
				frame = binary.LittleEndian.AppendUint64(frame, frameLSN)
				frame = binary.LittleEndian.AppendUint64(frame, synced)
				frame = append(frame, payload...)
				binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(frame[8:], crc32.MakeTable(crc32.Castagnoli)))
			}
			out = append(out, frame...)
			off += frameHeader + n
		}
		if found {
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no frame for LSN %d in %v", lsn, segs)
}

// corruptLog closes s, replaces the record at lsn with garbage as a disk
// error or a buggy writer would, and reopens the store (nil and the error
// when Open refuses).
func corruptLog(t *testing.T, s *Store, lsn uint64, garbage []byte) (*Store, error) {
	t.Helper()
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rewriteFrame(t, dir, lsn, lsn, garbage)
	s2, err := Open(dir, Options{CacheBytes: 1 << 20})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = s2.Close() })
	return s2, nil
}

// wantCorruption asserts err is a *CorruptionError for lsn in dir, and
// that its message says both, so an operator knows where to look.
func wantCorruption(t *testing.T, err error, dir string, lsn uint64) {
	t.Helper()
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *CorruptionError", err)
	}
	if ce.Dir != dir || ce.LSN != lsn {
		t.Fatalf("CorruptionError{Dir: %q, LSN: %d}, want %q, %d", ce.Dir, ce.LSN, dir, lsn)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, fmt.Sprintf("LSN %d", lsn)) {
		t.Fatalf("message %q does not name the directory and LSN %d", msg, lsn)
	}
}

func TestCorruption(t *testing.T) {
	valid := func(lsn uint64) []byte { return AppendEntry(nil, &Entry{LSN: lsn, Epoch: 1, Ops: []Op{set("k", "v")}}) }
	garbage := []struct {
		name string
		make func(lsn uint64) []byte
	}{
		{"random bytes", func(uint64) []byte { return []byte("definitely not an entry") }},
		{"empty record", func(uint64) []byte { return nil }},
		{"bit flipped", func(lsn uint64) []byte { b := valid(lsn); b[len(b)/2] ^= 0x04; return b }},
		{"truncated", func(lsn uint64) []byte { b := valid(lsn); return b[:len(b)-2] }},
		{"valid record of another LSN", func(lsn uint64) []byte { return valid(lsn + 100) }},
	}
	for _, g := range garbage {
		t.Run(g.name, func(t *testing.T) {
			t.Run("middle", func(t *testing.T) {
				dir := t.TempDir()
				s := openTestStore(t, dir)
				mustAppend(t, s, applySync, ent(1, 1, set("a", "1")), ent(2, 1, set("a", "2")), ent(3, 1, set("a", "3")), ent(4, 1), ent(5, 1))
				s, err := corruptLog(t, s, 3, g.make(3))
				if err != nil {
					t.Fatalf("Open: %v (a bad record in the middle of applied entries is found by the next reader)", err)
				}
				var seen []uint64
				err = s.ReadLog(1, 5, 0, func(e Entry) error { seen = append(seen, e.LSN); return nil })
				wantCorruption(t, err, dir, 3)
				// Entries before the bad one are delivered, nothing after
				// it: a reader must never skip a record.
				if !slices.Equal(seen, []uint64{1, 2}) {
					t.Fatalf("ReadLog delivered %v before failing, want [1 2]", seen)
				}
				_, err = s.Entry(3)
				wantCorruption(t, err, dir, 3)
				if _, err := s.Entry(2); err != nil {
					t.Fatalf("Entry(2): %v", err)
				}
				// Rolling back over the bad record must not silently lose it.
				_, err = s.TruncateSuffix(2)
				wantCorruption(t, err, dir, 3)
			})
			t.Run("last", func(t *testing.T) {
				dir := t.TempDir()
				s := openTestStore(t, dir)
				mustAppend(t, s, applySync, ent(1, 1, set("a", "1")), ent(2, 1, set("a", "2")))
				// Open checks the newest record.
				_, err := corruptLog(t, s, 2, g.make(2))
				wantCorruption(t, err, dir, 2)
			})
			t.Run("unapplied on a follower", func(t *testing.T) {
				dir := t.TempDir()
				s := openTestStore(t, dir)
				mustAppend(t, s, AppendOptions{Sync: true}, ent(1, 1, set("a", "1")), ent(2, 1, set("a", "2")), ent(3, 1))
				// Open replays the unapplied entries, and meets the bad one.
				_, err := corruptLog(t, s, 2, g.make(2))
				wantCorruption(t, err, dir, 2)
			})
		})
	}
}

// TestMissingLogRecord: a hole in the log (a frame of another LSN where
// one belongs) is corruption too, not the end of the log.
func TestMissingLogRecord(t *testing.T) {
	for _, lsn := range []uint64{2, 4} {
		t.Run(fmt.Sprint(lsn), func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir)
			mustAppend(t, s, applySync, ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			rewriteFrame(t, dir, lsn, lsn+100, AppendEntry(nil, &Entry{LSN: lsn + 100, Epoch: 1}))
			s2, err := Open(dir, Options{CacheBytes: 1 << 20})
			if err == nil {
				_ = s2.Close()
			}
			wantCorruption(t, err, dir, lsn)
		})
	}
}

func TestCompactedAndPrefixTruncation(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	for i := uint64(1); i <= 10; i++ {
		mustAppend(t, s, applySync, ent(i, 1, set(fmt.Sprint("k", i%3), fmt.Sprint(i))))
	}
	if err := s.TruncatePrefix(4); err != nil {
		t.Fatal(err)
	}
	if err := s.TruncatePrefix(2); err != nil { // already gone: a no-op
		t.Fatal(err)
	}
	if got := s.State().FirstLSN; got != 5 {
		t.Fatalf("FirstLSN = %d, want 5", got)
	}
	for _, from := range []uint64{1, 4} {
		if err := s.ReadLog(from, 10, 0, func(Entry) error { return nil }); !errors.Is(err, ErrCompacted) {
			t.Errorf("ReadLog(%d, 10) = %v, want ErrCompacted", from, err)
		}
	}
	if _, err := s.Entry(4); !errors.Is(err, ErrCompacted) {
		t.Errorf("Entry(4) = %v, want ErrCompacted", err)
	}
	if got := readAll(t, s, 5, 10); len(got) != 6 || got[0].LSN != 5 {
		t.Fatalf("ReadLog(5, 10) = %d entries from %d", len(got), got[0].LSN)
	}
	// Data is unaffected by log retention.
	if got := getStr(t, s, "k1", 1); got != "1@1" {
		t.Fatalf("Get(k1, 1) after prefix truncation = %s", got)
	}
	if err := s.TruncatePrefix(11); err == nil {
		t.Fatal("TruncatePrefix beyond AppliedLSN succeeded")
	}
	// A follower may not drop what it has not applied.
	mustAppend(t, s, AppendOptions{Sync: true}, ent(11, 1), ent(12, 1))
	if err := s.TruncatePrefix(11); err == nil {
		t.Fatal("TruncatePrefix of an unapplied entry succeeded")
	}
	if _, err := s.TruncateSuffix(3); !errors.Is(err, ErrCompacted) {
		t.Fatalf("TruncateSuffix below the log start = %v, want ErrCompacted", err)
	}
	_ = s.Close()
	s = openTestStore(t, dir)
	if st := s.State(); st.FirstLSN != 5 || st.LastLSN != 12 || st.AppliedLSN != 12 {
		t.Fatalf("after reopen: %+v", st)
	}
	// Roll back everything still in the log: the log is then empty and
	// LastLSN sits just below FirstLSN, across a reopen too.
	if _, err := s.TruncateSuffix(4); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if st := s.State(); st.FirstLSN != 5 || st.LastLSN != 4 || st.AppliedLSN != 4 {
			t.Fatalf("%s: %+v", when, st)
		}
		if got := scanStr(t, s, Latest, nil); got != "k0=3@3 k1=4@4 k2=2@2" {
			t.Fatalf("%s: scan = %q", when, got)
		}
	}
	check("after TruncateSuffix(4)")
	_ = s.Close()
	s = openTestStore(t, dir)
	check("after reopen")
	mustAppend(t, s, applySync, ent(5, 2, set("k9", "5")))
	if got := readAll(t, s, 5, 5); len(got) != 1 || got[0].Epoch != 2 {
		t.Fatalf("append after emptying the log: %+v", got)
	}
}

func TestTruncateSuffixRemovesWhatEntriesWrote(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	mustAppend(t, s, AppendOptions{Apply: true, Sync: true, CommitLSN: 2},
		ent(1, 1, set("a", "1"), setEx("e", "1", 100)),
		ent(2, 1, set("b", "1")),
		ent(3, 2, set("a", "2"), setEx("e", "2", 200)),
		ent(4, 2, flushAll()),
		ent(5, 2, del("b")),
	)
	mustAppend(t, s, AppendOptions{Sync: true}, ent(6, 2, set("z", "unapplied")))
	removed, err := s.TruncateSuffix(2)
	if err != nil {
		t.Fatal(err)
	}
	var lsns []uint64
	for _, e := range removed {
		lsns = append(lsns, e.LSN)
	}
	if !slices.Equal(lsns, []uint64{3, 4, 5, 6}) {
		t.Fatalf("removed LSNs %v, want [3 4 5 6] oldest first", lsns)
	}
	if !sameEntry(removed[0], ent(3, 2, set("a", "2"), setEx("e", "2", 200))) {
		t.Fatalf("removed[0] = %+v", removed[0])
	}
	check := func(when string) {
		t.Helper()
		if st := s.State(); st.LastLSN != 2 || st.AppliedLSN != 2 || st.CommitLSN != 2 || st.LastEpoch != 1 {
			t.Fatalf("%s: %+v", when, st)
		}
		// The flush at 4 is gone with its marker: older data is live again.
		if got := scanStr(t, s, Latest, nil); got != "a=1@1 b=1@2 e=1@1" {
			t.Fatalf("%s: scan = %q", when, got)
		}
		exp, err := s.Expiring(math.MaxInt64, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(exp) != 1 || string(exp[0].Key) != "e" || exp[0].LSN != 1 || exp[0].ExpireAt != 100 {
			t.Fatalf("%s: expiry index = %+v, want only e@1", when, exp)
		}
	}
	check("after truncation")
	_ = s.Close()
	s = openTestStore(t, dir)
	check("after reopen")
	if removed, err := s.TruncateSuffix(2); err != nil || removed != nil {
		t.Fatalf("TruncateSuffix at LastLSN = %v, %v; want nothing", removed, err)
	}
}

func TestExpiringIndex(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync,
		ent(1, 1, setEx("x", "1", 300)),
		ent(2, 1, setEx("y", "1", 100), set("p", "forever")),
		ent(3, 1, setEx("z\x00", "1", 200)),
	)
	tests := []struct {
		now   int64
		limit int
		want  string
	}{
		{99, 10, ""},
		{100, 10, "y@2"},
		{250, 10, "y@2 z\x00@3"},
		{1000, 10, "y@2 z\x00@3 x@1"}, // soonest first
		{1000, 2, "y@2 z\x00@3"},
	}
	render := func(es []ExpiredKey) string {
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%s@%d", e.Key, e.LSN))
		}
		return strings.Join(out, " ")
	}
	for _, tt := range tests {
		got, err := s.Expiring(tt.now, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if render(got) != tt.want {
			t.Errorf("Expiring(%d, %d) = %q, want %q", tt.now, tt.limit, render(got), tt.want)
		}
	}
	got, _ := s.Expiring(150, 10)
	if err := s.DropExpiring(got); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Expiring(1000, 10); render(got) != "z\x00@3 x@1" {
		t.Fatalf("after DropExpiring: %q", render(got))
	}
}

func TestReadLogMaxBytes(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	for i := uint64(1); i <= 5; i++ {
		mustAppend(t, s, applySync, ent(i, 1, set("k", strings.Repeat("v", 100))))
	}
	tests := []struct {
		maxBytes int
		want     int
	}{
		{0, 5},   // no limit
		{1, 1},   // always at least one entry
		{250, 2}, // stops before the total would pass the limit
		{1 << 20, 5},
	}
	for _, tt := range tests {
		n := 0
		if err := s.ReadLog(1, 5, tt.maxBytes, func(Entry) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != tt.want {
			t.Errorf("ReadLog(maxBytes=%d) delivered %d entries, want %d", tt.maxBytes, n, tt.want)
		}
	}
	stop := errors.New("stop")
	if err := s.ReadLog(1, 5, 0, func(Entry) error { return stop }); err != stop {
		t.Fatalf("ReadLog did not return fn's error: %v", err)
	}
	if err := s.ReadLog(3, 2, 0, func(Entry) error { t.Fatal("called"); return nil }); err != nil {
		t.Fatalf("empty range: %v", err)
	}
	// Entries handed out must not alias Pebble's buffers.
	es := readAll(t, s, 1, 5)
	if string(es[0].Ops[0].Key) != "k" || !bytes.Equal(es[0].Ops[0].Value, bytes.Repeat([]byte("v"), 100)) {
		t.Fatalf("entry 1 changed after the iterator closed: %+v", es[0].Ops[0])
	}
}

// TestReadLogRanges: a range may reach past LastLSN (a follower asking
// for "everything from x", up to math.MaxUint64); only entries that exist
// are delivered, and that is not corruption. ReadLogRaw, the streaming
// variant, must agree with ReadLog.
func TestReadLogRanges(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	for i := uint64(1); i <= 5; i++ {
		mustAppend(t, s, applySync, ent(i, 1, set("k", fmt.Sprint(i))))
	}
	tests := []struct {
		from, to uint64
		want     []uint64
	}{
		{1, 5, []uint64{1, 2, 3, 4, 5}},
		{1, math.MaxUint64, []uint64{1, 2, 3, 4, 5}},
		{3, 100, []uint64{3, 4, 5}},
		{5, 5, []uint64{5}},
		{6, math.MaxUint64, nil},
		{math.MaxUint64, math.MaxUint64, nil},
		{4, 3, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-%d", tt.from, tt.to), func(t *testing.T) {
			var got []uint64
			if err := s.ReadLog(tt.from, tt.to, 0, func(e Entry) error { got = append(got, e.LSN); return nil }); err != nil {
				t.Fatalf("ReadLog: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ReadLog delivered %v, want %v", got, tt.want)
			}
			got = nil
			err := s.ReadLogRaw(tt.from, tt.to, 0, func(lsn uint64, raw []byte) error {
				e, err := DecodeEntry(raw)
				if err != nil || e.LSN != lsn {
					t.Fatalf("raw record at %d: LSN %d, %v", lsn, e.LSN, err)
				}
				got = append(got, lsn)
				return nil
			})
			if err != nil {
				t.Fatalf("ReadLogRaw: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ReadLogRaw delivered %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGCKeepsWhatReadsAtOrAboveFloorSee(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync, historyEntries()...)
	mustAppend(t, s, applySync, ent(11, 1, set("b", "11")), ent(12, 1, del("b")), ent(13, 1, set("a", "13")))
	// Readable states at every LSN >= floor must not change; compute them
	// before each GC and compare after.
	snapshot := func(from uint64) map[uint64]string {
		m := map[uint64]string{}
		for at := from; at <= 13; at++ {
			m[at] = scanStr(t, s, at, nil) + " | " + getStr(t, s, "a", at) + " " + getStr(t, s, "b", at) + " " + getStr(t, s, "c", at) + " " + getStr(t, s, "d", at)
		}
		return m
	}
	countVersions := func() int {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: []byte{famVersion + 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		n := 0
		for it.First(); it.Valid(); it.Next() {
			n++
		}
		return n
	}
	total := countVersions()
	for _, floor := range []uint64{3, 7, 9, 12, 13} {
		before := snapshot(floor)
		n0 := countVersions()
		removed, err := s.GC(floor)
		if err != nil {
			t.Fatal(err)
		}
		if n1 := countVersions(); n0-n1 != removed {
			t.Fatalf("GC(%d) reported %d removed, %d versions actually gone", floor, removed, n0-n1)
		}
		after := snapshot(floor)
		for at := floor; at <= 13; at++ {
			if before[at] != after[at] {
				t.Fatalf("GC(%d) changed the read at %d: %q -> %q", floor, at, before[at], after[at])
			}
		}
	}
	// At floor 13 only a@13 can be seen by anyone; all else is garbage.
	if n := countVersions(); n != 1 {
		t.Fatalf("%d of %d versions left after GC(13), want 1", n, total)
	}
}

func TestClosedStore(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Append", func() error { _, err := s.Append([]Entry{ent(2, 1)}, applySync); return err }},
		{"ApplyUpTo", func() error { return s.ApplyUpTo(1) }},
		{"Get", func() error { _, _, err := s.Get([]byte("a"), Latest); return err }},
		{"Scan", func() error { return s.Scan(Latest, nil, func([]byte, Version) bool { return true }) }},
		{"ReadLog", func() error { return s.ReadLog(1, 1, 0, func(Entry) error { return nil }) }},
		{"Entry", func() error { _, err := s.Entry(1); return err }},
		{"GC", func() error { _, err := s.GC(1); return err }},
		{"TruncatePrefix", func() error { return s.TruncatePrefix(1) }},
		{"TruncateSuffix", func() error { _, err := s.TruncateSuffix(0); return err }},
		{"SetCommitLSN", func() error { return s.SetCommitLSN(1) }},
		{"Sync", func() error { return s.Sync() }},
		{"GetMeta", func() error { _, err := s.GetMeta("x"); return err }},
		{"PutMeta", func() error { return s.PutMeta("x", nil) }},
		{"Expiring", func() error { _, err := s.Expiring(0, 1); return err }},
		{"DropExpiring", func() error { return s.DropExpiring(nil) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", c.name, err)
		}
	}
}

// TestTypedVersions: a value's type survives the write path, the log
// (replayed after a reopen that lost the applied versions is covered by
// the model test's ops), a snapshot install and a reopen, and strings keep
// type 0.
func TestTypedVersions(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	typed := Op{Kind: OpSet, Key: []byte("h"), Value: []byte("meta"), ExpireAt: 99, Type: 1}
	mustAppend(t, s, applySync, ent(1, 1, typed, set("s", "v")))
	check := func(stage string, s *Store) {
		t.Helper()
		for _, c := range []struct {
			key string
			typ uint8
			val string
		}{{"h", 1, "meta"}, {"s", 0, "v"}} {
			v, ok, err := s.Get([]byte(c.key), Latest)
			if err != nil || !ok || v.Type != c.typ || string(v.Value) != c.val {
				t.Fatalf("%s: Get(%s) = %+v, %v, %v; want type %d value %q", stage, c.key, v, ok, err, c.typ, c.val)
			}
		}
		var es []Entry
		err := s.ReadLog(1, 1, 1<<20, func(e Entry) error { es = append(es, e); return nil })
		if err != nil || len(es) != 1 || es[0].Ops[0].Type != 1 || es[0].Ops[1].Type != 0 {
			t.Fatalf("%s: log entry %+v, %v", stage, es, err)
		}
	}
	check("appended", s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	check("reopened", s)

	if err := s.BeginInstall(); err != nil {
		t.Fatal(err)
	}
	if err := s.InstallChunk(5, []KV{{Key: []byte("z"), Value: []byte("m"), Type: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishInstall(5, []EpochStart{{Epoch: 1, FirstLSN: 1}}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Get([]byte("z"), Latest); err != nil || !ok || v.Type != 4 {
		t.Fatalf("installed: %+v, %v, %v", v, ok, err)
	}
}
