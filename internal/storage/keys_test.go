package storage

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// keyGen draws byte keys rich in the bytes the escaping treats specially
// (0x00, 0x01, 0x02, 0xFF), which uniform bytes would rarely produce.
func keyGen() *rapid.Generator[[]byte] {
	b := rapid.OneOf(rapid.SampledFrom([]byte{0x00, 0x01, 0x02, 0xFE, 0xFF, 'a'}), rapid.Byte())
	return rapid.SliceOfN(b, 0, 8)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestEscapingPreservesOrder: Scan walks user keys in Pebble key order, so
// the escaped prefix must sort exactly as the raw keys do.
func TestEscapingPreservesOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := keyGen().Draw(t, "a"), keyGen().Draw(t, "b")
		pa, pb := versionPrefix(a), versionPrefix(b)
		if got, want := sign(bytes.Compare(pa, pb)), sign(bytes.Compare(a, b)); got != want {
			t.Fatalf("compare(%x,%x)=%d but compare of prefixes %x,%x = %d", a, b, want, pa, pb, got)
		}
		// versionKeyEnd(prefix) is Get's and Scan's upper bound for one
		// key: above every version of a, at or below every version of any
		// greater key.
		if bytes.Compare(a, b) < 0 {
			end := versionKeyEnd(pa)
			if bytes.Compare(versionKey(a, 0), end) >= 0 {
				t.Fatalf("version of %x at LSN 0 is not below its end bound", a)
			}
			if bytes.Compare(end, versionKey(b, math.MaxUint64)) > 0 {
				t.Fatalf("end bound of %x sorts after a version of greater key %x", a, b)
			}
		}
	})
}

func TestEscapingRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := keyGen().Draw(t, "key")
		rest := rapid.SliceOfN(rapid.Byte(), 0, 9).Draw(t, "rest")
		enc := appendEscaped(nil, k)
		got, r, ok := unescape(append(enc, rest...))
		if !ok || !bytes.Equal(got, k) || !bytes.Equal(r, rest) {
			t.Fatalf("unescape(appendEscaped(%x)+%x) = %x, %x, %v", k, rest, got, r, ok)
		}
		// appendEscaped appends; it must not disturb dst.
		dst := []byte{0xAA, 0xBB}
		if enc2 := appendEscaped(dst, k); !bytes.Equal(enc2[:2], dst) || !bytes.Equal(enc2[2:], enc) {
			t.Fatalf("appendEscaped with non-empty dst = %x", enc2)
		}
		lsn := rapid.Uint64().Draw(t, "lsn")
		pk, pl, ok := parseVersionKey(versionKey(k, lsn))
		if !ok || !bytes.Equal(pk, k) || pl != lsn {
			t.Fatalf("parseVersionKey(versionKey(%x, %d)) = %x, %d, %v", k, lsn, pk, pl, ok)
		}
	})
}

// TestVersionsNeverInterleave sorts the version keys of random keys at
// random LSNs: each key's versions must form one contiguous run, runs in
// key order, newest LSN first inside a run. Otherwise one SeekGE would find
// another key's version (e.g. "a\x00"'s) when looking for "a"'s.
func TestVersionsNeverInterleave(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SliceOfN(keyGen(), 1, 6).Draw(t, "keys")
		lsns := rapid.SliceOfN(rapid.OneOf(rapid.Uint64(), rapid.SampledFrom([]uint64{0, 1, 255, 256, math.MaxUint64})), 1, 5).Draw(t, "lsns")
		type kv struct {
			vk  []byte
			key []byte
			lsn uint64
		}
		var all []kv
		for _, k := range keys {
			for _, l := range lsns {
				all = append(all, kv{versionKey(k, l), k, l})
			}
		}
		slices.SortFunc(all, func(x, y kv) int { return bytes.Compare(x.vk, y.vk) })
		for i := 1; i < len(all); i++ {
			p, c := all[i-1], all[i]
			switch cmp := bytes.Compare(p.key, c.key); {
			case cmp > 0:
				t.Fatalf("version of %x sorts after version of smaller key %x", p.key, c.key)
			case cmp == 0 && p.lsn < c.lsn:
				t.Fatalf("key %x: LSN %d sorts before newer LSN %d", p.key, p.lsn, c.lsn)
			}
		}
	})
}

// TestVersionOrderExamples pins the neighbours that matter most by name.
func TestVersionOrderExamples(t *testing.T) {
	inOrder := []struct {
		key string
		lsn uint64
	}{
		{"", math.MaxUint64},
		{"", 0},
		{"\x00", 5},
		{"a", math.MaxUint64},
		{"a", 7},
		{"a", 0},
		{"a\x00", math.MaxUint64},
		{"a\x00", 0},
		{"a\x00\x00", 3},
		{"a\x00\x01", math.MaxUint64},
		{"a\x00\x01", 1},
		{"a\x00\xff", 1},
		{"a\x01", 9},
		{"a\xff", 9},
		{"b", 1},
	}
	for i := 1; i < len(inOrder); i++ {
		p, c := inOrder[i-1], inOrder[i]
		if bytes.Compare(versionKey([]byte(p.key), p.lsn), versionKey([]byte(c.key), c.lsn)) >= 0 {
			t.Errorf("versionKey(%q,%d) does not sort before versionKey(%q,%d)", p.key, p.lsn, c.key, c.lsn)
		}
	}
}

func TestUnescapeRejectsMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"no terminator", []byte("abc")},
		{"zero at end", []byte("a\x00")},
		{"zero then bad byte", []byte("a\x00\x02")},
		{"escaped zero without terminator", []byte("a\x00\xff")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, _, ok := unescape(tt.in); ok {
				t.Fatalf("unescape(%x) accepted, key %x", tt.in, k)
			}
		})
	}
	for _, bad := range [][]byte{
		nil,
		{famVersion},
		append([]byte{famLog}, versionKey([]byte("k"), 1)[1:]...), // wrong family
		versionKey([]byte("k"), 1)[:11],                           // LSN cut short
		append(versionKey([]byte("k"), 1), 0),                     // extra byte
	} {
		if _, _, ok := parseVersionKey(bad); ok {
			t.Errorf("parseVersionKey(%x) accepted", bad)
		}
	}
}

func TestVersionRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		op   Op
		want Version
	}{
		{"value", Op{Kind: OpSet, Value: []byte("v")}, Version{Value: []byte("v")}},
		{"empty value", Op{Kind: OpSet, Value: nil}, Version{Value: []byte{}}},
		{"expiry", Op{Kind: OpSet, Value: []byte("v"), ExpireAt: 1700000000000}, Version{Value: []byte("v"), ExpireAt: 1700000000000}},
		{"tombstone", Op{Kind: OpDel, Value: []byte("ignored")}, Version{Deleted: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := decodeVersion(encodeVersion(&tt.op))
			if !ok || got.Deleted != tt.want.Deleted || got.ExpireAt != tt.want.ExpireAt || !bytes.Equal(got.Value, tt.want.Value) {
				t.Fatalf("decodeVersion(encodeVersion(%+v)) = %+v, %v; want %+v", tt.op, got, ok, tt.want)
			}
		})
	}
	for _, bad := range [][]byte{nil, {0}, {verTombstone, 0}, {verValue}, {verValue, 0x80}, {9, 0}} {
		if v, ok := decodeVersion(bad); ok {
			t.Errorf("decodeVersion(%x) accepted: %+v", bad, v)
		}
	}
}
