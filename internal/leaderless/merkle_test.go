package leaderless

import (
	"bytes"
	"crypto/sha256"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// merkleArcGen draws an arc: the whole circle, a random (possibly
// wrapping) arc, or a tiny one with fewer positions than leaves.
func merkleArcGen(t *rapid.T) Range {
	switch rapid.IntRange(0, 3).Draw(t, "arcKind") {
	case 0:
		s := rapid.Uint64().Draw(t, "start")
		return Range{Start: s, End: s}
	case 1:
		s := rapid.Uint64().Draw(t, "start")
		return Range{Start: s, End: s + rapid.Uint64Range(1, 40).Draw(t, "tinyLen")}
	default:
		s, e := rapid.Uint64().Draw(t, "start"), rapid.Uint64().Draw(t, "end")
		if s == e {
			e++
		}
		return Range{Start: s, End: e}
	}
}

// merkleDataGen draws distinct keys with states.
func merkleDataGen(t *rapid.T) []StateEntry {
	keys := rapid.SliceOfNDistinct(rapid.SliceOfN(rapid.Byte(), 0, 6), 0, 60,
		func(k []byte) string { return string(k) }).Draw(t, "keys")
	out := make([]StateEntry, len(keys))
	for i, k := range keys {
		out[i] = StateEntry{Key: k, State: rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "state")}
	}
	return out
}

func merkleShuffle(t *rapid.T, in []StateEntry) []StateEntry {
	out := slices.Clone(in)
	for i := len(out) - 1; i > 0; i-- {
		j := rapid.IntRange(0, i).Draw(t, "swap")
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Equal data gives equal trees whatever the order it comes in, and keys
// outside the arc change nothing.
func TestMerkleEqualDataEqualTrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		arc := merkleArcGen(t)
		leaves := rapid.IntRange(1, 300).Draw(t, "leaves")
		data := merkleDataGen(t)
		a := BuildMerkle(arc, leaves, data)
		b := BuildMerkle(arc, leaves, merkleShuffle(t, data))
		if a.Root() != b.Root() || !slices.Equal(a.Leaves(), b.Leaves()) {
			t.Fatalf("the same data in another order gives another tree")
		}
		if d := DiffLeaves(a, b); len(d) != 0 {
			t.Fatalf("equal trees differ in leaves %v", d)
		}
		var in []StateEntry
		for _, en := range data {
			if arc.Contains(KeyHash(en.Key)) {
				in = append(in, en)
			}
		}
		if c := BuildMerkle(arc, leaves, in); c.Root() != a.Root() {
			t.Fatalf("keys outside the arc changed the tree")
		}
	})
}

// One key whose state differs (or that one side lacks) makes exactly its
// own leaf differ, or nothing when it is outside the arc.
func TestMerkleOneDifferingKey(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		arc := merkleArcGen(t)
		leaves := rapid.IntRange(1, 300).Draw(t, "leaves")
		data := merkleDataGen(t)
		other := slices.Clone(data)
		var key []byte
		switch op := rapid.IntRange(0, 2).Draw(t, "op"); {
		case op == 0 && len(data) > 0: // change a state
			i := rapid.IntRange(0, len(data)-1).Draw(t, "changed")
			key = data[i].Key
			other[i] = StateEntry{Key: key, State: append(slices.Clone(data[i].State), 'x')}
		case op == 1 && len(data) > 0: // one side lacks the key
			i := rapid.IntRange(0, len(data)-1).Draw(t, "dropped")
			key = data[i].Key
			other = slices.Delete(other, i, i+1)
		default: // one side has an extra key
			key = rapid.SliceOfN(rapid.Byte(), 7, 7).Draw(t, "extra") // longer than any drawn key: new
			other = append(other, StateEntry{Key: key})
		}
		a, b := BuildMerkle(arc, leaves, data), BuildMerkle(arc, leaves, merkleShuffle(t, other))
		got := DiffLeaves(a, b)
		if !arc.Contains(KeyHash(key)) {
			if len(got) != 0 || a.Root() != b.Root() {
				t.Fatalf("a key outside the arc made leaves %v differ", got)
			}
			return
		}
		want := []int{LeafOf(arc, leaves, KeyHash(key))}
		if !slices.Equal(got, want) || a.Root() == b.Root() {
			t.Fatalf("differing leaves %v, want %v (roots equal: %v)", got, want, a.Root() == b.Root())
		}
		if back := DiffLeaves(b, a); !slices.Equal(back, want) {
			t.Fatalf("DiffLeaves is not symmetric: %v and %v", got, back)
		}
	})
}

// DiffLeaves returns exactly the leaves whose hashes differ, in order.
func TestMerkleDiffLeavesMatchesNaive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 70).Draw(t, "leaves")
		a := make([]Digest, n)
		for i := range a {
			a[i][0] = rapid.Byte().Draw(t, "leaf")
		}
		b := slices.Clone(a)
		for _, i := range rapid.SliceOfN(rapid.IntRange(0, n-1), 0, 8).Draw(t, "mutate") {
			b[i][1]++
		}
		var want []int
		for i := range a {
			if a[i] != b[i] {
				want = append(want, i)
			}
		}
		ta, tb := NewMerkleTree(a), NewMerkleTree(b)
		if got := DiffLeaves(ta, tb); !slices.Equal(got, want) {
			t.Fatalf("DiffLeaves = %v, want %v", got, want)
		}
		if (ta.Root() == tb.Root()) != (len(want) == 0) {
			t.Fatalf("roots equal %v with differing leaves %v", ta.Root() == tb.Root(), want)
		}
	})
	// Trees of different sizes differ everywhere.
	if got := DiffLeaves(NewMerkleTree(make([]Digest, 2)), NewMerkleTree(make([]Digest, 3))); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("DiffLeaves of 2 and 3 leaves = %v", got)
	}
}

// The leaves cut the arc into consecutive sub-arcs: LeafOf agrees with
// LeafArc, the sub-arcs tile the arc, and their sizes differ by at most
// one position.
func TestMerkleLeafArcs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		arc := merkleArcGen(t)
		leaves := rapid.IntRange(1, 300).Draw(t, "leaves")
		var subs []Range
		var total, minLen, maxLen uint64 = 0, math.MaxUint64, 0
		for i := range leaves {
			sub, ok := LeafArc(arc, leaves, i)
			if !ok {
				minLen = 0
				continue
			}
			if len(subs) > 0 && sub.Start != subs[len(subs)-1].End {
				t.Fatalf("leaf %d (%d, %d] does not start where the previous one ends (%d)", i, sub.Start, sub.End, subs[len(subs)-1].End)
			}
			if len(subs) == 0 && sub.Start != arc.Start {
				t.Fatalf("leaf %d starts at %d, the arc at %d", i, sub.Start, arc.Start)
			}
			subs = append(subs, sub)
			l := sub.End - sub.Start
			total += l
			if l != 0 { // 0 is the whole circle (one leaf)
				minLen, maxLen = min(minLen, l), max(maxLen, l)
			}
			for _, h := range []uint64{sub.Start + 1, sub.End, sub.Start + 1 + l/2} {
				if got := LeafOf(arc, leaves, h); got != i {
					t.Fatalf("position %d is in leaf %d's arc (%d, %d], LeafOf says %d", h, i, sub.Start, sub.End, got)
				}
			}
		}
		if subs[len(subs)-1].End != arc.End {
			t.Fatalf("the last leaf ends at %d, the arc at %d", subs[len(subs)-1].End, arc.End)
		}
		if total != arc.End-arc.Start {
			t.Fatalf("leaves add up to %d positions, the arc has %d", total, arc.End-arc.Start)
		}
		if maxLen > 0 && minLen > 0 && maxLen-minLen > 1 {
			t.Fatalf("leaf sizes range from %d to %d", minLen, maxLen)
		}
		// A random position of the arc lies in the leaf LeafOf names.
		h := arc.Start + 1 + rapid.Uint64().Draw(t, "off")%max(arc.End-arc.Start, 1)
		if arc.Start == arc.End {
			h = rapid.Uint64().Draw(t, "pos")
		}
		i := LeafOf(arc, leaves, h)
		if sub, ok := LeafArc(arc, leaves, i); !ok || !sub.Contains(h) {
			t.Fatalf("position %d: LeafOf = %d, whose arc (%d, %d] (ok %v) does not hold it", h, i, sub.Start, sub.End, ok)
		}
	})
}

// The hash is pinned by an independent computation of the documented
// formula: replicas of different versions must agree on it.
func TestMerkleLeafHashFormula(t *testing.T) {
	st := []byte("state")
	ea := sha256.Sum256(append([]byte{1, 'a'}, st...))
	ebc := sha256.Sum256(append([]byte{2, 'b', 'c'}, st...))
	var want Digest
	for i := range want {
		want[i] = ea[i] ^ ebc[i]
	}
	whole := Range{}
	tr := BuildMerkle(whole, 1, []StateEntry{{Key: []byte("bc"), State: st}, {Key: []byte("a"), State: st}})
	if tr.Root() != want {
		t.Fatalf("leaf hash %x, want %x", tr.Root(), want)
	}
	// Two leaves: the root is SHA-256(0x01 ‖ left ‖ right).
	tr2 := BuildMerkle(whole, 2, []StateEntry{{Key: []byte("a"), State: st}})
	l := tr2.Leaves()
	if r := sha256.Sum256(append(append([]byte{1}, l[0][:]...), l[1][:]...)); tr2.Root() != r {
		t.Fatalf("root %x, want %x", tr2.Root(), r)
	}
	var empty Digest
	if i := LeafOf(whole, 2, KeyHash([]byte("a"))); l[1-i] != empty {
		t.Fatalf("an empty leaf hashes to %x, want %x", l[1-i], empty)
	}
	if !bytes.Equal(NewMerkleTree(nil).Leaves()[0][:], empty[:]) {
		t.Fatalf("a tree of no leaves is not one empty leaf")
	}
}
