package datatype

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/replicant-db/replicant/internal/engine"
)

// Random choice of elements (SRANDMEMBER, SPOP, HRANDFIELD) without
// loading a large collection.
//
// Elements are keys in sorted order with no index by position, so a
// uniform choice costs a walk to the chosen position. Up to FairLimit
// elements, and whenever the reply is a large share of the collection
// (k ≥ n/scanRatio), choices walk the sub-space once and are exactly
// uniform. Otherwise one choice is a random descent of the elements'
// byte trie (descend): a subtree of at most smallSubtree elements is read
// and chosen from uniformly; above that, every present next byte (and
// "the prefix itself", when it is an element) is equally likely. A
// descent costs about two scans per level of the trie (descend).
//
// The bias: branches are equally likely whatever their sizes, so an
// element in a small branch is chosen more often than 1/n and one in a
// large branch less often. Random ids and hashes come out within a few
// times 1/n (8× at 2,000 random 8-byte members), fixed-width numbers
// within 4×; unpadded sequential numbers are the worst common shape: in
// "user:0" … "user:1999", "user:0" (no children) is chosen one time in
// ten, 200× its share. Removals (SPOP) still take every member
// eventually; samples (SRANDMEMBER) of such sets are skewed.
const (
	// FairLimit is the size up to which choices are exactly uniform.
	FairLimit = 1024
	// scanRatio: k choices out of n walk the whole sub-space when
	// k ≥ n/scanRatio (a seek costs about as much as scanRatio steps).
	scanRatio = 64
	// maxDescent bounds the branching levels of one descent (elements
	// sharing very long prefixes end it early: the first element under
	// the prefix reached is taken).
	maxDescent = 256
	// smallSubtree: a descent reads a subtree of at most this many
	// elements whole and chooses among them uniformly.
	smallSubtree = 32
	// rejectTries bounds the draws of a byte absent from a branching
	// point's range before the next present byte is taken.
	rejectTries = 4
)

// RandomOne returns one element of sub-space sub chosen at random; ok is
// false when the collection is empty.
func (v *View) RandomOne(rng *rand.Rand, sub byte) (e Elem, ok bool, err error) {
	n := v.Meta.Len
	if n <= 0 {
		return Elem{}, false, nil
	}
	if n <= FairLimit {
		e, err := v.nth(sub, rng.Int64N(n))
		return e, err == nil, err
	}
	e, err = v.descend(rng, sub)
	return e, err == nil, err
}

// RandomDistinct returns min(k, Len) distinct elements chosen at random,
// in random order (every element when k ≥ Len, in key order).
func (v *View) RandomDistinct(rng *rand.Rand, sub byte, k int64) ([]Elem, error) {
	n := v.Meta.Len
	switch {
	case k <= 0 || n <= 0:
		return nil, nil
	case k >= n:
		return v.All(sub)
	case n <= FairLimit || k >= n/scanRatio:
		return v.sample(rng, sub, k)
	}
	out := make([]Elem, 0, k)
	seen := make(map[string]bool, k)
	for tries := 4*k + 16; int64(len(out)) < k && tries > 0; tries-- {
		e, err := v.descend(rng, sub)
		if err != nil {
			return nil, err
		}
		if !seen[string(e.Rest)] {
			seen[string(e.Rest)] = true
			out = append(out, e)
		}
	}
	if int64(len(out)) < k {
		// The descent's bias kept returning elements already chosen:
		// fall back to one exact pass.
		return v.sample(rng, sub, k)
	}
	return out, nil
}

// RandomRepeat returns m elements chosen independently at random (an
// element may come several times), in random order.
func (v *View) RandomRepeat(rng *rand.Rand, sub byte, m int64) ([]Elem, error) {
	n := v.Meta.Len
	if m <= 0 || n <= 0 {
		return nil, nil
	}
	if n > FairLimit && m < n/scanRatio {
		out := make([]Elem, 0, m)
		for range m {
			e, err := v.descend(rng, sub)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	// m uniform positions, sorted, then one walk hands out the element
	// at each.
	pos := make([]int64, m)
	for i := range pos {
		pos[i] = rng.Int64N(n)
	}
	slices.Sort(pos)
	out := make([]Elem, 0, m)
	w := v.Walk(sub, nil)
	for t := int64(0); len(out) < len(pos); t++ {
		e, ok := w.Next()
		if !ok {
			return nil, v.short(w.Err(), t)
		}
		for len(out) < len(pos) && pos[len(out)] == t {
			out = append(out, e)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// sample chooses k of the Len elements by one walk (selection sampling:
// each element is taken with probability needed/remaining), then shuffles
// them.
func (v *View) sample(rng *rand.Rand, sub byte, k int64) ([]Elem, error) {
	n := v.Meta.Len
	out := make([]Elem, 0, k)
	w := v.Walk(sub, nil)
	for t := int64(0); int64(len(out)) < k; t++ {
		e, ok := w.Next()
		if !ok {
			return nil, v.short(w.Err(), t)
		}
		if rng.Int64N(n-t) < k-int64(len(out)) {
			out = append(out, e)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// nth returns the element at position i (0-based) in key order.
func (v *View) nth(sub byte, i int64) (Elem, error) {
	w := v.Walk(sub, nil)
	for t := int64(0); ; t++ {
		e, ok := w.Next()
		if !ok {
			return Elem{}, v.short(w.Err(), t)
		}
		if t == i {
			return e, nil
		}
	}
}

// short is the error of a walk that ended after t elements although the
// metadata promised more.
func (v *View) short(err error, t int64) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: key %q: %d elements found, metadata says %d", ErrCorrupt, v.Key, t, v.Meta.Len)
}

// first returns the smallest element at or after the suffix from.
func (v *View) first(sub byte, from []byte) (e Elem, ok bool, err error) {
	err = v.Scan(sub, from, func(rest, value []byte) bool {
		e = Elem{Rest: append([]byte(nil), rest...), Value: append([]byte(nil), value...)}
		ok = true
		return false
	})
	return e, ok, err
}

// under reports whether some element has prefix p and is at or after from.
func (v *View) under(sub byte, p, from []byte) (bool, error) {
	e, ok, err := v.first(sub, from)
	return ok && bytes.HasPrefix(e.Rest, p), err
}

// descend chooses one element by a random walk down the elements' byte
// trie (see the top of this file). Each level costs one forward read of
// at most smallSubtree+1 elements (the chosen branch's head) and, over an
// engine.ReverseScanner, one backward read of a single element (the
// branch's last, which bounds its next bytes): a few scans per level, not
// the dozens a bisection over byte values took.
func (v *View) descend(rng *rand.Rand, sub byte) (Elem, error) {
	head, err := v.head(sub, nil, nil)
	if err != nil {
		return Elem{}, err
	}
	if len(head) == 0 {
		return Elem{}, v.short(nil, 0)
	}
	var p []byte // every element under p is a candidate; head lists the first of them
	for range maxDescent {
		// A small subtree is read whole and chosen from uniformly.
		if len(head) <= smallSubtree {
			return head[rng.IntN(len(head))], nil
		}
		first := head[0]
		var hi int
		if p, hi, err = v.branches(sub, p, first.Rest); err != nil {
			return Elem{}, err
		}
		if hi < 0 {
			return first, nil // p is the only element under p
		}
		// The branches at byte len(p): -1 stands for p itself, an element
		// when first is p.
		lo := -1
		if len(first.Rest) > len(p) {
			lo = int(first.Rest[len(p)])
		}
		var next []Elem
		for try := 0; ; try++ {
			c := lo + rng.IntN(hi-lo+1)
			if c < 0 {
				return first, nil
			}
			// c ≤ hi, a present byte: an element at or after p+c is under p.
			if next, err = v.head(sub, p, append(p[:len(p):len(p)], byte(c))); err != nil {
				return Elem{}, err
			}
			if len(next) == 0 {
				return Elem{}, fmt.Errorf("%w: key %q: no element after a branch the elements showed", ErrCorrupt, v.Key)
			}
			if int(next[0].Rest[len(p)]) == c || try+1 == rejectTries {
				break
			}
		}
		// next[0] is the smallest element of its branch; the branch's
		// elements lead next.
		p = append(p[:len(p):len(p)], next[0].Rest[len(p)])
		k := 0
		for k < len(next) && bytes.HasPrefix(next[k].Rest, p) {
			k++
		}
		head = next[:k]
	}
	return head[0], nil
}

// head returns the elements under p from the suffix from (nil: from p),
// in order, at most smallSubtree+1 of them: all of them when there are
// no more than smallSubtree.
func (v *View) head(sub byte, p, from []byte) ([]Elem, error) {
	if from == nil {
		from = p
	}
	var out []Elem
	err := v.Scan(sub, from, func(rest, value []byte) bool {
		if !bytes.HasPrefix(rest, p) {
			return false
		}
		out = append(out, Elem{Rest: append([]byte(nil), rest...), Value: append([]byte(nil), value...)})
		return len(out) <= smallSubtree
	})
	return out, err
}

// branches extends p to the longest prefix every element under p shares
// (f is the smallest of them, and not the only one) and returns it with
// hi, the largest byte that follows it in an element; -1 when f is p and
// no element extends it. Over an engine.ReverseScanner the largest
// element under p gives both: the elements share what the smallest and
// the largest share. Otherwise both come from seeks (shared, lastBranch).
func (v *View) branches(sub byte, p, f []byte) ([]byte, int, error) {
	if _, ok := v.s.(engine.ReverseScanner); ok {
		var last []byte
		err := ScanElemsReverse(v.s, v.Meta.ID, sub, prefixEnd(p), func(rest, _ []byte) bool {
			last = append([]byte(nil), rest...)
			return false
		})
		if err != nil {
			return nil, 0, err
		}
		if !bytes.HasPrefix(last, p) || bytes.Compare(last, f) <= 0 {
			return p, -1, nil
		}
		n := len(p)
		for n < len(f) && f[n] == last[n] {
			n++
		}
		// last > f shares f[:n] and differs after it, so it is longer.
		return f[:n:n], int(last[n]), nil
	}
	shared, err := v.shared(sub, p, f)
	if err != nil {
		return nil, 0, err
	}
	lo := -1
	if len(f) > len(shared) {
		lo = int(f[len(shared)])
	}
	hi, err := v.lastBranch(sub, shared, lo)
	return shared, hi, err
}

// shared extends p to the longest prefix of f (the smallest element under
// p) that every element under p has, by galloping then bisecting over its
// length: "every element under p has prefix f[:l]" holds exactly when no
// element under p lies at or after the end of f[:l]'s range.
func (v *View) shared(sub byte, p, f []byte) ([]byte, error) {
	all := func(l int) (bool, error) {
		end := prefixEnd(f[:l])
		if end == nil {
			return true, nil
		}
		found, err := v.under(sub, p, end)
		return !found, err
	}
	good, bad := len(p), len(f)+1 // all(good) holds; all(bad) does not (or is past the end)
	for step := 1; good < len(f); step *= 2 {
		l := min(good+step, len(f))
		ok, err := all(l)
		if err != nil {
			return nil, err
		}
		if !ok {
			bad = l
			break
		}
		good = l
	}
	for bad-good > 1 && good < len(f) {
		mid := (good + bad) / 2
		ok, err := all(mid)
		if err != nil {
			return nil, err
		}
		if ok {
			good = mid
		} else {
			bad = mid
		}
	}
	return f[:good:good], nil
}

// lastBranch returns the largest byte b such that an element has prefix
// p+b, searching from lo (a present byte, or -1: none known); -1 when no
// element extends p.
func (v *View) lastBranch(sub byte, p []byte, lo int) (int, error) {
	exists := func(b int) (bool, error) {
		return v.under(sub, p, append(p[:len(p):len(p)], byte(b)))
	}
	if lo < 0 {
		ok, err := exists(0)
		if err != nil || !ok {
			return -1, err
		}
		lo = 0
	}
	good, bad := lo, 256
	for bad-good > 1 {
		mid := (good + bad) / 2
		ok, err := exists(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			good = mid
		} else {
			bad = mid
		}
	}
	return good, nil
}

// prefixEnd is the smallest string greater than every string with prefix
// p, or nil when there is none (p is empty or all 0xff).
func prefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			end := append([]byte(nil), p[:i+1]...)
			end[i]++
			return end
		}
	}
	return nil
}
