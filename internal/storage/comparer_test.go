package storage

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// TestSplitKeyProperties checks the contract Pebble needs from Split for
// version keys of arbitrary user keys: the prefix is exactly versionPrefix,
// a prefix-only key is its own prefix, prefixes order like the keys, and a
// prefix sorts before every key carrying it.
func TestSplitKeyProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.SliceOf(rapid.Byte()).Draw(t, "a")
		b := rapid.SliceOf(rapid.Byte()).Draw(t, "b")
		la := rapid.Uint64().Draw(t, "la")
		lb := rapid.Uint64().Draw(t, "lb")
		ka, kb := versionKey(a, la), versionKey(b, lb)
		pa := versionPrefix(a)
		if n := splitKey(ka); !bytes.Equal(ka[:n], pa) {
			t.Fatalf("split(%x) = %d, want prefix %x", ka, n, pa)
		}
		if n := splitKey(pa); n != len(pa) {
			t.Fatalf("a prefix-only key must be its own prefix: split(%x) = %d", pa, n)
		}
		if bytes.Compare(ka, kb) <= 0 && bytes.Compare(ka[:splitKey(ka)], kb[:splitKey(kb)]) > 0 {
			t.Fatalf("prefix order disagrees with key order for %x %x", ka, kb)
		}
		if bytes.Compare(pa, ka) >= 0 {
			t.Fatalf("prefix %x must sort before %x", pa, ka)
		}
	})
	for _, k := range [][]byte{nil, {famLog, 1, 2}, metaKey("applied_lsn"), flushKey(7), expiryKey(5, 6, []byte("k"))} {
		if n := splitKey(k); n != len(k) {
			t.Errorf("non-version key %x split at %d", k, n)
		}
	}
}
