package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func write(t tb, s Siblings, ctx Vector, node, value string, wall int64) Siblings {
	t.Helper()
	out, err := s.Update(ctx, node, []byte(value), Meta{Time: ts(wall, 0)})
	if err != nil {
		t.Fatalf("Update(%v, %s, %q): %v", ctx, node, value, err)
	}
	return out
}

func del(t tb, s Siblings, ctx Vector, node string, wall int64) Siblings {
	t.Helper()
	out, err := s.Update(ctx, node, []byte("ignored"), Meta{Time: ts(wall, 0), Deleted: true})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	return out
}

// show lists the siblings as "dot=value" (or "dot=deleted") in order.
func show(s Siblings) string {
	var parts []string
	for _, x := range s.Values() {
		v := string(x.Value)
		if x.Deleted {
			v = "deleted"
		}
		parts = append(parts, x.Dot.String()+"="+v)
	}
	return strings.Join(parts, " ")
}

func winner(s Siblings) string {
	w, ok := s.Winner()
	switch {
	case !ok:
		return "none"
	case w.Deleted:
		return "deleted"
	}
	return string(w.Value)
}

func TestSiblingsConcurrentWritesBecomeSiblings(t *testing.T) {
	// Two clients write blind through different nodes.
	a := write(t, Siblings{}, Vector{}, "a", "x", 100)
	b := write(t, Siblings{}, Vector{}, "b", "y", 200)
	ab, ba := a.Merge(b), b.Merge(a)
	if got := show(ab); got != "a:1=x b:1=y" || !ab.Equal(ba) {
		t.Fatalf("after sync: %s / %s", got, show(ba))
	}
	if got := ab.Context().String(); got != "a:1,b:1" {
		t.Fatalf("context %s", got)
	}
	if winner(ab) != "y" {
		t.Fatalf("winner %s, want the later write", winner(ab))
	}
	// A write with the context that saw both collapses them.
	c := write(t, ab, ab.Context(), "a", "z", 150)
	if got := show(c); got != "a:2=z" {
		t.Fatalf("after a write with the full context: %s", got)
	}
	// …also on a replica that still has the old siblings.
	if got := show(b.Merge(c)); got != "a:2=z" {
		t.Fatalf("stale replica after sync: %s", got)
	}
}

func TestSiblingsSameNodeConcurrency(t *testing.T) {
	// Two clients read the empty key and write through the same node.
	// One version vector per value could not tell these apart; dots can.
	s := write(t, Siblings{}, Vector{}, "a", "x", 1)
	s = write(t, s, Vector{}, "a", "y", 2)
	if got := show(s); got != "a:1=x a:2=y" {
		t.Fatalf("%s", got)
	}
	// A client that read only the first write supersedes only it.
	s = write(t, s, vec(t, "a:1"), "a", "z", 3)
	if got := show(s); got != "a:2=y a:3=z" {
		t.Fatalf("%s", got)
	}
}

func TestSiblingsContextAheadOfCoordinator(t *testing.T) {
	// A client reads x from a, then writes through b, which has not
	// received x yet. x must still go when it reaches b, in either order.
	a := write(t, Siblings{}, Vector{}, "a", "x", 1)
	b := write(t, Siblings{}, a.Context(), "b", "y", 2)
	if got := show(b); got != "b:1=y" {
		t.Fatalf("%s", got)
	}
	if got, got2 := show(b.Merge(a)), show(a.Merge(b)); got != "b:1=y" || got2 != got {
		t.Fatalf("after sync: %s / %s", got, got2)
	}
	// A concurrent write on a that the client did not see survives.
	a = write(t, a, Vector{}, "a", "w", 3)
	if got := show(a.Merge(b)); got != "a:2=w b:1=y" {
		t.Fatalf("%s", got)
	}
}

func TestSiblingsTombstones(t *testing.T) {
	s := write(t, Siblings{}, Vector{}, "a", "x", 10)
	gone := del(t, s, s.Context(), "b", 20)
	if got := show(gone); got != "b:1=deleted" || winner(gone) != "deleted" {
		t.Fatalf("after delete: %s, winner %s", got, winner(gone))
	}
	if w, _ := gone.Winner(); w.Value != nil {
		t.Fatalf("tombstone carries a value: %q", w.Value)
	}
	// A write concurrent with the delete: both stay, the later wins.
	late := write(t, s, s.Context(), "a", "y", 30)
	m := gone.Merge(late)
	if got := show(m); got != "a:2=y b:1=deleted" || winner(m) != "y" {
		t.Fatalf("delete vs later write: %s, winner %s", got, winner(m))
	}
	early := write(t, s, s.Context(), "a", "y", 15)
	if got := winner(gone.Merge(early)); got != "deleted" {
		t.Fatalf("delete vs earlier write: winner %s", got)
	}
	// Ties on time go to the greater node id.
	if got := winner(write(t, Siblings{}, Vector{}, "b", "from b", 5).Merge(write(t, Siblings{}, Vector{}, "a", "from a", 5))); got != "from b" {
		t.Fatalf("tie: winner %s", got)
	}
	if winner(Siblings{}) != "none" {
		t.Fatal("empty set has a winner")
	}
}

func TestSiblingsUpdateEdges(t *testing.T) {
	s := write(t, Siblings{}, Vector{}, "a", "x", 1)
	if _, err := s.Update(vec(t, "a:18446744073709551615"), "a", nil, Meta{}); err == nil {
		t.Fatal("Update past the last dot did not fail")
	}
	// The value is copied, and the empty value is a value, not a delete.
	buf := []byte("abc")
	s2, _ := s.Update(s.Context(), "a", buf, Meta{})
	copy(buf, "zzz")
	if got := show(s2); got != "a:2=abc" {
		t.Fatalf("stored value follows the caller's buffer: %s", got)
	}
	e, _ := s.Update(s.Context(), "a", nil, Meta{})
	if w, ok := e.Winner(); !ok || w.Deleted || w.Value == nil {
		t.Fatalf("empty value: %+v", w)
	}
	// Values returns a copy of the list.
	vs := s2.Values()
	vs[0].Dot.Counter = 99
	if show(s2) != "a:2=abc" {
		t.Fatal("Values exposes the internal list")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Update with an invalid node did not panic")
		}
	}()
	_, _ = s.Update(Vector{}, "a:b", nil, Meta{})
}

func TestDecodeSiblingsRejects(t *testing.T) {
	var zeroTS [TimestampSize]byte
	// A context {a:2, b:1}, then the given siblings.
	enc := func(sibs ...[]byte) []byte {
		b := []byte{'S', 2, 1, 'a', 2, 1, 'b', 1, byte(len(sibs))}
		for _, s := range sibs {
			b = append(b, s...)
		}
		return b
	}
	sib := func(idx, counter, flags byte, value ...byte) []byte {
		b := append([]byte{idx, counter}, zeroTS[:]...)
		b = append(b, flags)
		if flags == 0 {
			b = append(b, byte(len(value)))
			b = append(b, value...)
		}
		return b
	}
	good := enc(sib(0, 1, 0, 'x'), sib(0, 2, 1), sib(1, 1, 0))
	if _, err := DecodeSiblings(good); err != nil {
		t.Fatalf("valid input: %v", err)
	}
	cases := []struct {
		name string
		in   []byte
		why  string
	}{
		{"empty", nil, "truncated"},
		{"wrong tag", append([]byte{'V'}, good[1:]...), "format tag"},
		{"trailing", append(bytes.Clone(good), 0), "trailing"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"node index outside context", enc(sib(2, 1, 0)), "outside a context"},
		{"zero counter", enc(sib(0, 0, 0)), "not in the context"},
		{"dot beyond context", enc(sib(1, 2, 0)), "not in the context"},
		{"unknown flags", enc(sib(0, 1, 2)), "unknown flags"},
		{"out of order", enc(sib(0, 2, 0), sib(0, 1, 0)), "out of order"},
		{"repeated dot", enc(sib(0, 1, 0), sib(0, 1, 0)), "out of order"},
		{"node out of order", enc(sib(1, 1, 0), sib(0, 1, 0)), "out of order"},
		{"value longer than input", append(enc(sib(0, 1, 0))[:9+14], 0, 5, 'x'), "remain"},
		{"huge sibling count", []byte{'S', 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "cannot fit"},
		{"bad context", []byte{'S', 1, 1, 'a', 0, 0}, "zero counter"},
	}
	for _, c := range cases {
		_, err := DecodeSiblings(c.in)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: DecodeSiblings(%x) error = %v, want ErrMalformed mentioning %q", c.name, c.in, err, c.why)
		}
	}
}

// dvvWrite is one write in the model: its dot, what it wrote and the
// context its client passed.
type dvvWrite struct {
	dot     Dot
	value   string
	deleted bool
	ctx     Vector
}

// dvvHistory runs random writes (blind, or with the context of a read
// from any subset of nodes) and syncs between three nodes, and returns the
// nodes' states and every write made.
func dvvHistory(t *rapid.T, tag string) ([]Siblings, []dvvWrite) {
	nodes := []string{"a", "b", "eu"}
	states := make([]Siblings, len(nodes))
	var writes []dvvWrite
	for i := range rapid.IntRange(0, 30).Draw(t, "steps") {
		n := rapid.IntRange(0, len(nodes)-1).Draw(t, "node")
		switch rapid.IntRange(0, 2).Draw(t, "op") {
		case 0, 1:
			// A read merges the answers of some nodes, as a
			// coordinator does with R replies.
			var read Siblings
			for _, k := range rapid.SliceOfNDistinct(rapid.IntRange(0, len(nodes)-1), 0, len(nodes), rapid.ID[int]).Draw(t, "readFrom") {
				read = read.Merge(states[k])
			}
			ctx := read.Context()
			w := dvvWrite{value: fmt.Sprintf("%s%d", tag, i), deleted: rapid.IntRange(0, 4).Draw(t, "del") == 0, ctx: ctx}
			meta := Meta{Time: ts(rapid.Int64Range(0, 20).Draw(t, "time"), 0), Deleted: w.deleted}
			next, err := states[n].Update(ctx, nodes[n], []byte(w.value), meta)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			w.dot = Dot{nodes[n], next.Context().Get(nodes[n])}
			if ctx.Covers(states[n].Context()) && next.Len() != 1 {
				t.Fatalf("step %d: a write that saw everything left %s", i, show(next))
			}
			states[n] = next
			writes = append(writes, w)
		case 2:
			from := rapid.IntRange(0, len(nodes)-1).Draw(t, "from")
			states[n] = states[n].Merge(states[from])
		}
		// Every state is valid: its encoding decodes back to it.
		got, err := DecodeSiblings(mustEncode(t, states[n]))
		if err != nil || !got.Equal(states[n]) {
			t.Fatalf("step %d: round trip of %v: %v, %v", i, states[n], got, err)
		}
	}
	return states, writes
}

// TestSiblingsConvergeToTheUnsupersededWrites: after the nodes exchange
// their states, in any order, they all hold the same set, and it is
// exactly the writes that no write's context saw, with their values. An
// acknowledged write is never lost unless a client that read it replaced
// it, and a replaced write never comes back.
func TestSiblingsConvergeToTheUnsupersededWrites(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		states, writes := dvvHistory(t, "w")
		seen := map[Dot]bool{}
		for _, w := range writes {
			if seen[w.dot] {
				t.Fatalf("dot %v issued twice", w.dot)
			}
			seen[w.dot] = true
		}
		var all Siblings
		for _, i := range rapid.Permutation([]int{0, 1, 2}).Draw(t, "order") {
			all = all.Merge(states[i])
		}
		for i, s := range states {
			if m := s.Merge(all); !m.Equal(all) {
				t.Fatalf("node %d: %v merged with %v is %v", i, s, all, m)
			}
		}
		var want []string
		for _, w := range writes {
			superseded := false
			for _, o := range writes {
				superseded = superseded || w.dot.in(o.ctx)
			}
			if !superseded {
				v := w.value
				if w.deleted {
					v = "deleted"
				}
				want = append(want, w.dot.String()+"="+v)
			}
		}
		slices.Sort(want)
		got := strings.Split(show(all), " ")
		if len(want) == 0 {
			want = []string{""}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("converged to %v, want %v", got, want)
		}
		// The winner is the same from every merge order and is the
		// greatest stamp.
		w, ok := all.Winner()
		for _, x := range all.Values() {
			if x.Stamp().Compare(w.Stamp()) > 0 {
				t.Fatalf("winner %v but %v has a greater stamp", w.Dot, x.Dot)
			}
		}
		if ok != (all.Len() > 0) {
			t.Fatalf("Winner ok=%v with %d siblings", ok, all.Len())
		}
	})
}

func TestSiblingsMergeIsAJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		states, _ := dvvHistory(t, "w")
		a, b, c := states[0], states[1], states[2]
		// Sometimes take c from an unrelated history: its dots collide
		// with a's and b's but carry other values, which only a bug
		// (a node reusing dots) could produce; the laws must hold anyway.
		if rapid.Bool().Draw(t, "foreign") {
			other, _ := dvvHistory(t, "v")
			c = other[rapid.IntRange(0, 2).Draw(t, "which")]
		}
		as := a.String()
		if !a.Merge(b).Equal(b.Merge(a)) || !a.Merge(c).Equal(c.Merge(a)) {
			t.Fatalf("not commutative: %v, %v, %v", a, b, c)
		}
		if !a.Merge(b).Merge(c).Equal(a.Merge(b.Merge(c))) {
			t.Fatalf("not associative: %v, %v, %v", a, b, c)
		}
		if !a.Merge(a).Equal(a) {
			t.Fatalf("not idempotent: %v", a)
		}
		if !bytes.Equal(mustEncode(t, a.Merge(c)), mustEncode(t, c.Merge(a))) {
			t.Fatal("equal states encode differently")
		}
		if a.String() != as {
			t.Fatal("Merge changed its input")
		}
	})
}

func TestDecodeSiblingsNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var in []byte
		if rapid.Bool().Draw(t, "nearValid") {
			states, _ := dvvHistory(t, "w")
			in = mutate(t, mustEncode(t, states[0]))
		} else {
			in = rapid.SliceOfN(rapid.Byte(), 0, 60).Draw(t, "bytes")
		}
		checkCanonical(t, "DecodeSiblings", DecodeSiblings, in)
	})
}

func TestDotOrder(t *testing.T) {
	ds := []Dot{{"b", 1}, {"a", 2}, {"aa", 1}, {"a", 10}, {"a", math.MaxUint64}}
	slices.SortFunc(ds, Dot.Compare)
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	if s := strings.Join(got, " "); s != "a:2 a:10 a:18446744073709551615 aa:1 b:1" {
		t.Fatalf("order %s", s)
	}
}
