package datatype

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/replicant-db/replicant/internal/datatype/memstate"
	"github.com/replicant-db/replicant/internal/engine"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{{}, {ID: 1, Len: 1}, {ID: math.MaxUint64, Len: 1 << 62, Head: math.MinInt64}, {ID: 7, Len: 3, Head: -5},
		{ID: 2, Len: 4, LowSet: true, Low: 5}, {ID: 2, Len: 4, HighSet: true, High: math.MaxUint64},
		{ID: 2, Len: 4, LowSet: true, HighSet: true, High: 9}} {
		b := m.Encode()
		got, err := DecodeMeta(b)
		if err != nil || got != m {
			t.Fatalf("DecodeMeta(Encode(%+v)) = %+v, %v", m, got, err)
		}
		// Without bounds the encoding is the first format, byte for byte,
		// so older nodes read it; with them, the second, which they refuse.
		if want := byte(map[bool]int{false: metaFormat, true: metaFormatBounds}[m.LowSet || m.HighSet]); b[0] != want {
			t.Fatalf("Encode(%+v) has format %d, want %d", m, b[0], want)
		}
	}
	bounds := func(tail ...byte) []byte { return append([]byte{2, 1, 1, 0}, tail...) }
	for _, bad := range [][]byte{nil, {}, {2, 1, 1, 0}, {1}, {1, 1}, {1, 1, 1}, {1, 1, 1, 0, 0}, {1, 0x80}, {3, 1, 1, 0},
		bounds(0), bounds(4), bounds(1), bounds(1, 0, 0, 0, 0, 0, 0, 0), bounds(3, 0, 0, 0, 0, 0, 0, 0, 0),
		bounds(2, 0, 0, 0, 0, 0, 0, 0, 0, 9)} {
		if _, err := DecodeMeta(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeMeta(%x) = %v, want ErrCorrupt", bad, err)
		}
	}
}

// TestEncodingsSortAsNumbers: byte order of the encoded keys is numeric
// order, which every range command relies on.
func TestEncodingsSortAsNumbers(t *testing.T) {
	scores := []float64{math.Inf(-1), -math.MaxFloat64, -1e10, -1.5, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 1, 1.5, 1e300, math.Inf(1)}
	for i := 1; i < len(scores); i++ {
		a, b := EncodeScore(scores[i-1]), EncodeScore(scores[i])
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("EncodeScore(%v) >= EncodeScore(%v)", scores[i-1], scores[i])
		}
		if f, _ := DecodeScore(b); f != scores[i] {
			t.Fatalf("DecodeScore(EncodeScore(%v)) = %v", scores[i], f)
		}
	}
	if !bytes.Equal(EncodeScore(math.Copysign(0, -1)), EncodeScore(0)) {
		t.Fatal("-0 and 0 encode differently")
	}
	idx := []int64{math.MinInt64, -1 << 40, -1, 0, 1, 1 << 40, math.MaxInt64}
	for i := 1; i < len(idx); i++ {
		if bytes.Compare(EncodeIndex(idx[i-1]), EncodeIndex(idx[i])) >= 0 {
			t.Fatalf("EncodeIndex(%d) >= EncodeIndex(%d)", idx[i-1], idx[i])
		}
		if got, ok := DecodeIndex(EncodeIndex(idx[i])); !ok || got != idx[i] {
			t.Fatalf("DecodeIndex(EncodeIndex(%d)) = %d", idx[i], got)
		}
	}
}

// hset is a tiny hash write for the tests of the core.
func hset(t *testing.T, st *memstate.State, key string, fields ...string) {
	t.Helper()
	c, err := Open(st, []byte(key), engine.TypeHash)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if _, ok, _ := c.Get(SubField, []byte(f)); !ok {
			c.Meta.Len++
		}
		if err := c.Put(SubField, []byte(f), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
}

func fields(t *testing.T, st *memstate.State, key string) []string {
	t.Helper()
	v, ok, err := Read(st, []byte(key), engine.TypeHash)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return nil
	}
	var out []string
	if err := v.Scan(SubField, nil, func(rest, _ []byte) bool { out = append(out, string(rest)); return true }); err != nil {
		t.Fatal(err)
	}
	if int64(len(out)) != v.Meta.Len {
		t.Fatalf("%s: %d fields, metadata says %d", key, len(out), v.Meta.Len)
	}
	return out
}

func TestCollectionLifecycle(t *testing.T) {
	st := &memstate.State{}
	hset(t, st, "h", "a", "b")
	if got := fields(t, st, "h"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("fields %v", got)
	}
	// Another type at the key.
	if _, _, err := Read(st, []byte("h"), engine.TypeSet); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Read as set: %v", err)
	}
	st.Set([]byte("s"), []byte("x"), 0)
	if _, err := Open(st, []byte("s"), engine.TypeHash); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Open a string as hash: %v", err)
	}
	// Overwritten by a string, created again: the old fields are gone.
	st.Set([]byte("h"), []byte("str"), 0)
	st.Del([]byte("h"))
	hset(t, st, "h", "c")
	if got := fields(t, st, "h"); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after re-creation: fields %v", got)
	}
	// A command that changes nothing writes nothing.
	w := st.Writes
	c, _ := Open(st, []byte("h"), engine.TypeHash)
	if err := c.Save(); err != nil || st.Writes != w {
		t.Fatalf("no-op Save wrote %d keys (%v)", st.Writes-w, err)
	}
	// Emptied: the key goes.
	c, _ = Open(st, []byte("h"), engine.TypeHash)
	c.Delete(SubField, []byte("c"))
	c.Meta.Len--
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Get([]byte("h")); ok {
		t.Fatal("an emptied hash still exists")
	}
}

func TestRenameAndCopy(t *testing.T) {
	st := &memstate.State{}
	hset(t, st, "a", "x", "y")
	v, _, _ := st.Get([]byte("a"))
	if err := Rename(st, []byte("a"), v, []byte("b")); err != nil {
		t.Fatal(err)
	}
	if got := fields(t, st, "b"); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("renamed: %v", got)
	}
	v, _, _ = st.Get([]byte("b"))
	if err := Copy(st, []byte("b"), v, []byte("c")); err != nil {
		t.Fatal(err)
	}
	hset(t, st, "c", "z")
	if got := fields(t, st, "b"); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("the copy's write reached the original: %v", got)
	}
	if got := fields(t, st, "c"); !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("copy: %v", got)
	}
	// Nothing is garbage yet: a sweep deletes nothing.
	sw := sweeperOn(st, 2)
	if n, _, err := sw.Pass(context.Background(), 100); err != nil || n != 0 {
		t.Fatalf("sweep of live collections deleted %d (%v)", n, err)
	}
}

func sweeperOn(st *memstate.State, batch int) *Sweeper {
	return &Sweeper{
		Write: func(_ context.Context, fn func(engine.Txn) error) error { return fn(st) },
		Read:  func(context.Context) (Scanner, error) { return st, nil },
		Batch: batch,
	}
}

// TestSweep: every way a key stops holding its collection leaves elements
// that the sweeper deletes, and only those.
func TestSweep(t *testing.T) {
	st := &memstate.State{Clock: 1000}
	hset(t, st, "deleted", "a", "b", "c")
	hset(t, st, "overwritten", "a")
	hset(t, st, "expired", "a", "b")
	hset(t, st, "renamed", "a")
	hset(t, st, "live", "a", "b", "c", "d", "e")
	st.Del([]byte("deleted"))
	st.Set([]byte("overwritten"), []byte("s"), 0)
	v, _, _ := st.Get([]byte("expired"))
	if err := SetMeta(st, []byte("expired"), v, 500); err != nil {
		t.Fatal(err)
	}
	v, _, _ = st.Get([]byte("renamed"))
	if err := Rename(st, []byte("renamed"), v, []byte("live")); err != nil { // replaces live's hash
		t.Fatal(err)
	}
	sw := sweeperOn(st, 2)
	total := 0
	for range 10 {
		n, more, err := sw.Pass(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if !more && n == 0 {
			break
		}
	}
	// deleted 3 + overwritten 1 + expired 2 + live's old 5.
	if total != 11 {
		t.Fatalf("swept %d element keys, want 11", total)
	}
	if got := fields(t, st, "live"); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("live (renamed into): %v", got)
	}
	// What remains: live's metadata and element and its owner, the
	// string, the expired metadata (the expirer's).
	reserved := 0
	_ = st.Scan(nil, func(k []byte, _ engine.Version) bool {
		if engine.IsReserved(k) {
			reserved++
		}
		return true
	})
	if reserved != 2 {
		t.Fatalf("%d reserved keys left, want 2 (one element, one owner)", reserved)
	}
}
