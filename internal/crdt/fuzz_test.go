package crdt

import (
	"testing"
)

// FuzzDecode feeds the same bytes to every decoder and the vector text
// parser. None may panic, and whatever one accepts must re-encode to
// exactly the input (the encodings are canonical). Run it with
//
//	go test -run '^$' -fuzz FuzzDecode ./internal/crdt/
//
// Without -fuzz, `go test` runs only the seeds below.
func FuzzDecode(f *testing.F) {
	v := VectorOf(map[string]uint64{"eu": 120, "us": 98, "n1": 1 << 40})
	c, _ := PNCounter{}.Increment("eu", 7)
	c, _ = c.Increment("us", -3)
	c = c.Reset(c)
	c, _ = c.Increment("eu", 1<<62)
	s, _ := Siblings{}.Update(Vector{}, "a", []byte("x"), Meta{Time: Timestamp{1700000000000, 3}})
	s, _ = s.Update(Vector{}, "b", nil, Meta{Time: Timestamp{1700000000001, 0}, Deleted: true})
	s = s.Merge(Siblings{})
	var co Coll
	co.Put(CollHash, []byte("f"), []byte("v"), Stamp{Time: Timestamp{1700000000000, 1}, Site: "eu"})
	co.Put(CollSet, []byte("m"), nil, Stamp{Time: Timestamp{1700000000000, 2}, Site: "eu"})
	co.Remove(CollSet, []byte("m"), Stamp{Time: Timestamp{1700000000000, 3}, Site: "us"})
	co.SetExpire(1700000009999, Stamp{Time: Timestamp{1700000000000, 4}, Site: "us"})
	for _, seed := range [][]byte{
		mustEncode(f, v), mustEncode(f, Vector{}), []byte(v.String()),
		mustEncode(f, c), mustEncode(f, PNCounter{}),
		mustEncode(f, s), mustEncode(f, Siblings{}),
		mustEncode(f, Timestamp{-1, 7}),
		mustEncode(f, co), mustEncode(f, Coll{}),
		{}, {'S', 0xff}, {'C', 1, 1, 'a', 0xff},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkCanonical(t, "DecodeVector", DecodeVector, b)
		checkCanonical(t, "DecodePNCounter", DecodePNCounter, b)
		checkCanonical(t, "DecodeSiblings", DecodeSiblings, b)
		checkCanonical(t, "DecodeTimestamp", DecodeTimestamp, b)
		checkCanonical(t, "DecodeColl", DecodeColl, b)
		if p, err := ParseVector(string(b)); err == nil {
			if back, err := ParseVector(p.String()); err != nil || !back.Equal(p) {
				t.Fatalf("ParseVector(%q) = %v, which does not parse back: %v", b, p, err)
			}
		}
		// Whatever decodes is a valid state: the operations work on it.
		if p, err := DecodePNCounter(b); err == nil {
			_ = p.Text()
			_, _ = p.Value()
			if !p.Merge(p).Equal(p) {
				t.Fatalf("decoded counter %v is not idempotent", p)
			}
		}
		if x, err := DecodeSiblings(b); err == nil {
			_, _ = x.Winner()
			if !x.Merge(x).Equal(x) {
				t.Fatalf("decoded siblings %v are not idempotent", x)
			}
			if _, err := x.Update(x.Context(), "z", []byte("v"), Meta{}); err != nil && x.Context().Get("z") != 1<<64-1 {
				t.Fatalf("Update on decoded siblings: %v", err)
			}
		}
	})
}
