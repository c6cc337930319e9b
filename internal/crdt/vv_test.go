package crdt

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func vec(t testing.TB, s string) Vector {
	t.Helper()
	v, err := ParseVector(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVectorCompare(t *testing.T) {
	cases := []struct {
		a, b string
		want Ordering
	}{
		{"", "", Equal},
		{"eu:1", "eu:1", Equal},
		{"", "eu:1", Before},
		{"eu:1", "", After},
		{"eu:1", "eu:2", Before},
		{"eu:2,us:1", "eu:2", After},
		{"eu:2", "us:1", Concurrent},
		{"eu:2,us:1", "eu:1,us:2", Concurrent},
		{"a:1,b:1", "aa:1,b:1", Concurrent}, // different ids at the same position
		{"a:1,aa:3", "a:2,aa:3,b:1", Before},
	}
	for _, c := range cases {
		a, b := vec(t, c.a), vec(t, c.b)
		if got := a.Compare(b); got != c.want {
			t.Errorf("%q.Compare(%q) = %v, want %v", c.a, c.b, got, c.want)
		}
		wantCovers := c.want == Equal || c.want == After
		if got := a.Covers(b); got != wantCovers {
			t.Errorf("%q.Covers(%q) = %v, want %v", c.a, c.b, got, wantCovers)
		}
	}
}

func TestParseVector(t *testing.T) {
	ok := []struct{ in, canonical string }{
		{"", ""},
		{"eu:120,us:98", "eu:120,us:98"},
		{"us:98,eu:120", "eu:120,us:98"}, // any order, printed sorted
		{"eu:0,us:5", "us:5"},            // zero means absent
		{"eu:007", "eu:7"},
		{"n-1.x_y:18446744073709551615", "n-1.x_y:18446744073709551615"},
		{"zürich:1", "zürich:1"},
	}
	for _, c := range ok {
		v, err := ParseVector(c.in)
		if err != nil {
			t.Errorf("ParseVector(%q): %v", c.in, err)
			continue
		}
		if got := v.String(); got != c.canonical {
			t.Errorf("ParseVector(%q).String() = %q, want %q", c.in, got, c.canonical)
		}
	}
	bad := []struct{ in, why string }{
		{"eu", "not id:counter"},
		{"eu:", "not an unsigned decimal integer"},
		{":5", "empty id"},
		{"eu:1,", "not id:counter"},
		{",eu:1", "not id:counter"},
		{"eu:1,,us:2", "not id:counter"},
		{"eu:-1", "not an unsigned decimal integer"},
		{"eu:+1", "not an unsigned decimal integer"},
		{"eu:1x", "not an unsigned decimal integer"},
		{"eu:0x10", "not an unsigned decimal integer"},
		{"eu:1_000", "not an unsigned decimal integer"},
		{"eu:18446744073709551616", "larger than"},
		{"eu: 1", "not an unsigned decimal integer"},
		{" eu:1", "contains"},
		{"eu:1, us:2", "contains"},
		{"eu:1:2", "not an unsigned decimal integer"},
		{"eu:1,eu:2", "more than once"},
		{"eu:0,eu:2", "more than once"},
		{"a\x00b:1", "contains"},
		{"\xff:1", "UTF-8"},
		{strings.Repeat("x", MaxIDLen+1) + ":1", "longer than"},
	}
	for _, c := range bad {
		_, err := ParseVector(c.in)
		if !errors.Is(err, ErrInvalidVector) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("ParseVector(%q) error = %v, want ErrInvalidVector mentioning %q", c.in, err, c.why)
		}
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"n1", "eu", "us-east-1", "node_7.prod", "zürich", strings.Repeat("x", MaxIDLen)} {
		if err := ValidID(id); err != nil {
			t.Errorf("ValidID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "a,b", "a:b", "a b", "a\tb", "a\nb", "\x7f", "\xc3", "\u00a0x", strings.Repeat("x", MaxIDLen+1)} {
		if ValidID(id) == nil {
			t.Errorf("ValidID(%q) = nil, want an error", id)
		}
	}
}

func TestVectorInvalidIDPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"Set":      func() { Vector{}.Set("a,b", 1) },
		"Advance":  func() { Vector{}.Advance("", 0) },
		"VectorOf": func() { VectorOf(map[string]uint64{"a:b": 1}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with an invalid id did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestVectorSetAdvance(t *testing.T) {
	v := vec(t, "b:2")
	steps := []struct {
		got  Vector
		want string
	}{
		{v.Set("a", 1), "a:1,b:2"},
		{v.Set("c", 1), "b:2,c:1"},
		{v.Set("b", 1), "b:1"}, // Set lowers
		{v.Set("b", 0), ""},
		{v.Set("a", 0), "b:2"},
		{v.Advance("b", 1), "b:2"}, // Advance never lowers
		{v.Advance("b", 3), "b:3"},
		{v.Advance("a", 4), "a:4,b:2"},
	}
	for i, s := range steps {
		if got := s.got.String(); got != s.want {
			t.Errorf("step %d = %q, want %q", i, got, s.want)
		}
	}
	if v.String() != "b:2" {
		t.Fatalf("operations changed the receiver to %v", v)
	}
}

func TestDecodeVectorRejects(t *testing.T) {
	valid := mustEncode(t, vec(t, "a:1,b:300"))
	cases := []struct {
		name string
		in   []byte
		why  string
	}{
		{"empty", nil, "truncated"},
		{"wrong tag", append([]byte{'C'}, valid[1:]...), "format tag"},
		{"trailing byte", append(bytes.Clone(valid), 0), "trailing"},
		{"truncated", valid[:len(valid)-1], "truncated"},
		{"huge count", []byte{'V', 0xff, 0xff, 0xff, 0xff, 0x0f}, "cannot fit"},
		{"zero counter", []byte{'V', 1, 1, 'a', 0}, "zero counter"},
		{"unsorted", []byte{'V', 2, 1, 'b', 1, 1, 'a', 1}, "out of order"},
		{"repeated id", []byte{'V', 2, 1, 'a', 1, 1, 'a', 2}, "out of order"},
		{"padded varint", []byte{'V', 1, 1, 'a', 0x81, 0x00}, "non-minimal"},
		{"padded count", []byte{'V', 0x80, 0x00}, "non-minimal"},
		{"empty id", []byte{'V', 1, 0, 1, 0}, "empty id"},
		{"id with comma", []byte{'V', 1, 3, 'a', ',', 'b', 1}, "contains"},
		{"id longer than the input", []byte{'V', 1, 9, 'a', 1}, "remain"},
		{"overlong varint", []byte{'V', 1, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "overflowing"},
	}
	for _, c := range cases {
		_, err := DecodeVector(c.in)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: DecodeVector(%x) error = %v, want ErrMalformed mentioning %q", c.name, c.in, err, c.why)
		}
	}
	if v, err := DecodeVector([]byte{'V', 0}); err != nil || !v.IsEmpty() {
		t.Errorf("empty vector: %v, %v", v, err)
	}
}

func TestVectorMergeIsAJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := vectorGen().Draw(t, "a"), vectorGen().Draw(t, "b"), vectorGen().Draw(t, "c")
		as, bs := a.String(), b.String()
		ab := a.Merge(b)
		if !ab.Equal(b.Merge(a)) {
			t.Fatalf("not commutative: %v ⊔ %v", a, b)
		}
		if !ab.Merge(c).Equal(a.Merge(b.Merge(c))) {
			t.Fatalf("not associative: %v, %v, %v", a, b, c)
		}
		if !a.Merge(a).Equal(a) {
			t.Fatalf("not idempotent: %v", a)
		}
		// The least upper bound: above both, below anything above both.
		if !ab.Covers(a) || !ab.Covers(b) {
			t.Fatalf("%v does not cover %v and %v", ab, a, b)
		}
		if c.Covers(a) && c.Covers(b) && !c.Covers(ab) {
			t.Fatalf("%v covers %v and %v but not their merge %v", c, a, b, ab)
		}
		for id, n := range ab.All() {
			if n != max(a.Get(id), b.Get(id)) {
				t.Fatalf("merge[%s] = %d, want max(%d, %d)", id, n, a.Get(id), b.Get(id))
			}
		}
		if !bytes.Equal(mustEncode(t, ab), mustEncode(t, b.Merge(a))) {
			t.Fatalf("equal merges encode differently")
		}
		if a.String() != as || b.String() != bs {
			t.Fatalf("Merge changed its inputs")
		}
	})
}

func TestVectorCompareConsistent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := vectorGen().Draw(t, "a"), vectorGen().Draw(t, "b")
		// Draw b near a sometimes, so Before/After/Equal are common.
		if rapid.Bool().Draw(t, "derive") {
			b = a
			for range rapid.IntRange(0, 2).Draw(t, "changes") {
				b = b.Set(idGen().Draw(t, "id"), counterGen().Draw(t, "n"))
			}
		}
		o := a.Compare(b)
		inverse := map[Ordering]Ordering{Equal: Equal, Before: After, After: Before, Concurrent: Concurrent}
		if b.Compare(a) != inverse[o] {
			t.Fatalf("%v.Compare(%v) = %v but the reverse is %v", a, b, o, b.Compare(a))
		}
		want := Concurrent
		switch ab, ba := a.Covers(b), b.Covers(a); {
		case ab && ba:
			want = Equal
		case ab:
			want = After
		case ba:
			want = Before
		}
		if o != want {
			t.Fatalf("%v.Compare(%v) = %v, Covers says %v", a, b, o, want)
		}
		if (o == Equal) != a.Equal(b) {
			t.Fatalf("Compare %v but Equal %v", o, a.Equal(b))
		}
	})
}

func TestVectorRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := vectorGen().Draw(t, "v")
		enc := mustEncode(t, v)
		got, err := DecodeVector(enc)
		if err != nil || !got.Equal(v) {
			t.Fatalf("DecodeVector(enc %v) = %v, %v", v, got, err)
		}
		txt, err := ParseVector(v.String())
		if err != nil || !txt.Equal(v) {
			t.Fatalf("ParseVector(%q) = %v, %v", v.String(), txt, err)
		}
		var u Vector
		if err := u.UnmarshalText([]byte(v.String())); err != nil || !u.Equal(v) {
			t.Fatalf("UnmarshalText(%q) = %v, %v", v.String(), u, err)
		}
		if !VectorOf(v.Map()).Equal(v) {
			t.Fatalf("VectorOf(Map()) of %v differs", v)
		}
		if v.Len() != len(v.Map()) {
			t.Fatalf("Len = %d, Map has %d", v.Len(), len(v.Map()))
		}
		for id, n := range v.All() {
			if n == 0 || v.Get(id) != n {
				t.Fatalf("All yields %s:%d, Get says %d", id, n, v.Get(id))
			}
		}
	})
}

func TestDecodeVectorNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var in []byte
		if rapid.Bool().Draw(t, "nearValid") {
			in = mutate(t, mustEncode(t, vectorGen().Draw(t, "v")))
		} else {
			in = rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "bytes")
		}
		checkCanonical(t, "DecodeVector", DecodeVector, in)
		s := string(in)
		if v, err := ParseVector(s); err == nil {
			if back, err := ParseVector(v.String()); err != nil || !back.Equal(v) {
				t.Fatalf("ParseVector(%q) = %v, which does not print and parse back: %v", s, v, err)
			}
		}
	})
}

func TestVectorExtremes(t *testing.T) {
	v := vec(t, "a:18446744073709551615")
	if v.Get("a") != math.MaxUint64 || v.Merge(vec(t, "a:1")).Get("a") != math.MaxUint64 {
		t.Fatalf("max counter lost: %v", v)
	}
	if Ordering(9).String() != "Ordering(9)" || Concurrent.String() != "concurrent" {
		t.Fatal("Ordering.String")
	}
}
