package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// scanReverseStr renders a reverse scan as "k=v@lsn k=v@lsn".
func scanReverseStr(t testing.TB, s *Store, at uint64, end []byte) string {
	t.Helper()
	var out []string
	err := s.ScanReverse(at, end, func(k []byte, v Version) bool {
		out = append(out, fmt.Sprintf("%s=%s@%d", k, v.Value, v.LSN))
		return true
	})
	if err != nil {
		t.Fatalf("ScanReverse(%d, %q): %v", at, end, err)
	}
	return strings.Join(out, " ")
}

// TestScanReverseAtLSN: the history of TestScanAtLSN (overwrites, deletes,
// expiry, FLUSHALL, versions above the read LSN), walked backwards below an
// exclusive end.
func TestScanReverseAtLSN(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync, historyEntries()...)
	tests := []struct {
		at   uint64
		end  []byte
		want string
	}{
		{0, nil, ""},
		{1, nil, "a=1@1"},
		{2, nil, "b=1@2 a=1@1"},
		{3, nil, "b=1@2 a=2@3"},
		{4, nil, "b=1@2"},
		{5, nil, "b=1@2 a=3@5"},
		{6, nil, ""},
		{7, nil, "b=2@7"},
		{8, nil, "c=1@8"},
		{9, nil, ""},
		{10, nil, "a=4@10"},
		{Latest, nil, "a=4@10"},
		{5, []byte("b"), "a=3@5"}, // end is exclusive
		{5, []byte("b\x00"), "b=1@2 a=3@5"},
		{5, []byte("a\x00"), "a=3@5"}, // between a and b
		{5, []byte("a"), ""},
		{5, []byte(""), ""},
		{5, []byte("z"), "b=1@2 a=3@5"},
		{3, []byte("c"), "b=1@2 a=2@3"},
		{8, []byte("c"), ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("at%d_below%q", tt.at, tt.end), func(t *testing.T) {
			if got := scanReverseStr(t, s, tt.at, tt.end); got != tt.want {
				t.Fatalf("ScanReverse(%d, %q) = %q, want %q", tt.at, tt.end, got, tt.want)
			}
		})
	}
	t.Run("stops when fn returns false", func(t *testing.T) {
		n := 0
		if err := s.ScanReverse(5, nil, func([]byte, Version) bool { n++; return false }); err != nil || n != 1 {
			t.Fatalf("ScanReverse visited %d keys (err %v), want 1", n, err)
		}
	})
}

// TestScanReverseEscapedKeys: descending key order with keys that differ
// only in the bytes the escaping rewrites, and an end bound among them.
func TestScanReverseEscapedKeys(t *testing.T) {
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
		for _, end := range append([]string{"\xff\xff"}, keys...) {
			var want []string
			for i := len(sorted) - 1; i >= 0; i-- {
				k := sorted[i]
				if j := slices.Index(keys, k); uint64(j+1) <= at && k < end {
					want = append(want, k)
				}
			}
			var got []string
			if err := s.ScanReverse(at, []byte(end), func(k []byte, _ Version) bool { got = append(got, string(k)); return true }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ScanReverse at %d below %q = %q, want %q", at, end, got, want)
			}
		}
	}
}
