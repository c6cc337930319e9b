package leaderless

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// DefaultVNodes is the number of points each member gets on the ring.
//
// Balance, not speed, sets it: with random points a member's share of the
// ring is the sum of its vnodes' arcs, whose relative spread shrinks only
// as 1/sqrt(vnodes). Measured exactly (arc lengths, not sampled keys) over
// 50 sets of member ids, the worst member's share as first owner deviated
// from the fair share 1/k by (median / 90th percentile / max of the 50):
//
//	vnodes   3 members       5 members       10 members
//	128      8% / 16% / 19%  11% / 19% / 25%  16% / 25% / 28%
//	256      6% / 11% / 14%   9% / 12% / 13%  11% / 14% / 18%
//	512      4% /  8% / 12%   6% /  8% / 12%   8% / 12% / 16%
//
// and as any of N=3 replicas by at most 13% and 18% (5 and 10 members) at
// 128, 9% and 11% at 256, 7% and 6% at 512. The most loaded member fills
// up first, so it bounds a cluster's usable capacity; at 128 it is a
// quarter over its share too often. 512 buys a few more percent for twice
// the arcs, and every arc is a unit of work for Ranges, Moves and the
// per-range anti-entropy trees. 256 (also what Cassandra long used with
// random tokens) is the middle; TestRingBalanceAcrossMemberIDs repeats the
// 256 row and the balance tests assert bounds derived from it. The
// hash function hardly matters here: FNV-1a measured the same.
const DefaultVNodes = 256

// ringMaxVNodes bounds vnodes so that a configuration typo cannot make
// NewRing allocate without limit (members × vnodes points); far above any
// useful value, as balance stops improving noticeably long before.
const ringMaxVNodes = 1 << 16

// Ring places keys on members with consistent hashing and virtual nodes.
// Placement is a pure function of the member set (the order of the input
// does not matter) and the number of vnodes.
//
// Each member has vnodes points on a circle of 2^64 positions. Point i of
// member m sits at KeyHash(b), where b is i as 4 big-endian bytes followed
// by the bytes of m; the fixed-width prefix makes the encoding unambiguous
// for any id. A key at position h = KeyHash(key) belongs to the first point
// at or after h, going up and wrapping from 2^64-1 to 0 ("clockwise");
// its preference list is the first n distinct members met from there.
// That is why an arc is half-open as (Start, End]: it is held by the point
// at its End.
//
// If two points land on the same position (a chance of about
// (members×vnodes)²/2^65, 2e-13 for 10 members of 256 vnodes), only the
// one of the member whose id sorts first is kept, so placement stays a
// function of the member set; the other member just has one point less.
//
// Invariants (ring_test.go checks each):
//   - Preference(key, n) holds min(n, members) distinct members; its first
//     is the member of the key's point. Preference followed by Fallbacks
//     lists every member exactly once.
//   - Adding a member changes a key's preference list only by inserting
//     the new member into it (dropping the last one if the list was full);
//     removing one is the reverse. Keys never move between two members
//     that were there before and after.
//   - Ranges(n) tiles the circle: arcs sorted by End, each starting where
//     the previous one ends, the first wrapping around; each arc's Owners
//     are the Preference of every key in it.
//
// A Ring is immutable after NewRing, so it is safe for concurrent use, and
// the zero Ring and a nil *Ring behave as a ring without members. The
// placement (KeyHash and the point encoding) must never change: nodes of
// different versions must agree where every key lives.
type Ring struct {
	vnodes  int
	members []string // sorted; a member is named by its index here
	// hashes and owner are the points in increasing position, as two
	// slices so the binary search touches only positions.
	hashes []uint64
	owner  []int32
}

// NewRing builds the ring of members, each with vnodes points. It fails on
// an empty or duplicate id and on vnodes outside 1..65536 (ring sizes
// come from configuration, so they are checked, not trusted). Zero
// members is a valid, empty ring: it places nothing.
func NewRing(members []string, vnodes int) (*Ring, error) {
	if vnodes < 1 || vnodes > ringMaxVNodes {
		return nil, fmt.Errorf("leaderless: vnodes %d is outside 1..%d", vnodes, ringMaxVNodes)
	}
	if len(members) > math.MaxInt32 {
		// Keeps owner indexes in an int32; unreachable in practice.
		return nil, fmt.Errorf("leaderless: %d ring members are too many", len(members))
	}
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	for i, id := range sorted {
		if id == "" {
			return nil, fmt.Errorf("leaderless: empty member id")
		}
		if i > 0 && sorted[i-1] == id {
			return nil, fmt.Errorf("leaderless: duplicate member id %q", id)
		}
	}
	type point struct {
		hash   uint64
		member int32
	}
	points := make([]point, 0, len(sorted)*vnodes)
	var buf []byte
	for m, id := range sorted {
		for i := range vnodes {
			buf = binary.BigEndian.AppendUint32(buf[:0], uint32(i))
			buf = append(buf, id...)
			points = append(points, point{KeyHash(buf), int32(m)})
		}
	}
	// Ties sort by member index, i.e. by id, so which point survives a
	// collision does not depend on the input order.
	slices.SortFunc(points, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.member, b.member))
	})
	r := &Ring{
		vnodes:  vnodes,
		members: sorted,
		hashes:  make([]uint64, 0, len(points)),
		owner:   make([]int32, 0, len(points)),
	}
	for i, p := range points {
		if i > 0 && points[i-1].hash == p.hash {
			continue
		}
		r.hashes = append(r.hashes, p.hash)
		r.owner = append(r.owner, p.member)
	}
	return r, nil
}

// KeyHash is a key's position on the ring: the first 8 bytes of the
// SHA-256 digest of the key, read as a big-endian integer.
//
// It is part of the cluster's on-the-wire agreement, so it must be the
// same on every machine and in every version (Go's map hash is seeded per
// process and is neither). SHA-256 is chosen over a faster non-cryptographic
// hash (FNV-1a with a finalizer runs ~8 ns against ~80 ns here) because it
// is in every language's standard library, so tools and clients outside
// Go can compute placement, and because it has no structure that
// similar keys ("user:1", "user:2") could line up with. The measured
// balance of the two was the same; the cost is small next to a network
// round trip.
func KeyHash(key []byte) uint64 {
	sum := sha256.Sum256(key)
	return binary.BigEndian.Uint64(sum[:8])
}

// Members returns the member ids, sorted; the caller may keep or change
// the slice.
func (r *Ring) Members() []string {
	if r == nil {
		return nil
	}
	return slices.Clone(r.members)
}

// Preference returns the first n distinct members clockwise from
// KeyHash(key): the replicas of key, the first being its owner. It returns
// fewer when the ring has fewer than n members, and nil when n < 1 or the
// ring is empty.
func (r *Ring) Preference(key []byte, n int) []string {
	return r.prefAt(KeyHash(key), n)
}

// Fallbacks returns, in ring order, the members that come after the first
// n distinct ones clockwise from KeyHash(key): the stand-ins a sloppy
// quorum asks, nearest first, when some of the key's replicas are down.
// Preference(key, n) followed by Fallbacks(key, n) is every member once;
// n < 1 counts as 0.
func (r *Ring) Fallbacks(key []byte, n int) []string {
	if r == nil || len(r.hashes) == 0 {
		return nil
	}
	n = max(n, 0)
	if n >= len(r.members) {
		return nil
	}
	idx := r.walk(nil, r.pointAt(KeyHash(key)), len(r.members))
	if n >= len(idx) {
		return nil
	}
	return r.names(idx[n:])
}

// Owns reports whether member is among the first n distinct members
// clockwise from KeyHash(key), i.e. whether it is one of key's n replicas.
func (r *Ring) Owns(member string, key []byte, n int) bool {
	if r == nil || len(r.hashes) == 0 || n < 1 {
		return false
	}
	m, ok := slices.BinarySearch(r.members, member)
	if !ok {
		return false
	}
	var small [8]int32
	return slices.Contains(r.walk(small[:0], r.pointAt(KeyHash(key)), n), int32(m))
}

// Range is an arc of the hash space (Start, End] with the members that
// hold it for a given n.
//
// A key k is in the arc when Contains(KeyHash(k)). Start > End is the arc
// that wraps around through 2^64-1 and 0; Start == End is the whole circle
// (only ever returned when a single arc covers everything). Arc lengths are
// End-Start in uint64 arithmetic, so the whole circle has length 0 ≡ 2^64.
type Range struct {
	Start, End uint64
	// Owners are the holders in preference order (the first one owns the
	// arc's keys); Owners is never shared with the Ring or another Range.
	Owners []string
}

// Contains reports whether position h lies in the arc (Start, End],
// wrap-around and whole-circle arcs included.
func (rg Range) Contains(h uint64) bool {
	if rg.Start < rg.End {
		return rg.Start < h && h <= rg.End
	}
	// Wraps (or is the whole circle when Start == End): everything above
	// Start and everything up to End.
	return h > rg.Start || h <= rg.End
}

// Ranges returns the whole ring as consecutive arcs, each with its n
// owners in preference order, sorted by End. Adjacent arcs with the same
// owner list (same members in the same order) are merged. The arcs cover
// all 2^64 positions exactly once; the first one is the wrap-around arc
// (Start > End), or the whole circle when there is one arc. An empty ring
// or n < 1 has no holders and gives nil.
func (r *Ring) Ranges(n int) []Range {
	if r == nil || len(r.hashes) == 0 || n < 1 {
		return nil
	}
	owners := make([][]int32, len(r.hashes))
	for i := range r.hashes {
		owners[i] = r.walk(nil, i, n)
	}
	arcs := ringArcs(r.hashes, owners, slices.Equal[[]int32], nil)
	out := make([]Range, len(arcs))
	for i, a := range arcs {
		out[i] = Range{Start: a.start, End: a.end, Owners: r.names(a.label)}
	}
	return out
}

// RangesOf returns the arcs of Ranges(n) that member holds (as any of the
// n replicas), in the same order and with the same Owners. Adjacent arcs
// stay separate when their owner lists differ, as their other replicas
// (the peers to repair with) differ too. An unknown member holds nothing.
func (r *Ring) RangesOf(member string, n int) []Range {
	var out []Range
	for _, rg := range r.Ranges(n) {
		if slices.Contains(rg.Owners, member) {
			out = append(out, rg)
		}
	}
	return out
}

// Move is an arc whose owners change between two rings.
//
// Range.Owners are the arc's owners on the new ring; From are the old
// owners that no longer hold it (they may drop it once the new ones have
// it); To are the new owners that did not hold it (they must receive it).
// Members in From and To keep their preference order.
type Move struct {
	Range    Range
	From, To []string
}

// Moves returns the arcs whose owner set for n replicas differs between r
// and next, sorted by Range.End, adjacent arcs with the same Owners, From
// and To merged. An arc whose owners only change order (a different first
// owner, the same members) is not a move: no data has to travel. A nil
// ring counts as empty, so Moves from an empty ring hands every arc to its
// owners and Moves to one takes every arc from them. n < 1 gives nil.
func (r *Ring) Moves(next *Ring, n int) []Move {
	if n < 1 {
		return nil
	}
	// Owners can only change at a point of either ring, so the union of
	// both point sets cuts the circle into arcs each ring sees as whole.
	bounds := ringUnion(r.positions(), next.positions())
	if len(bounds) == 0 {
		return nil
	}
	type change struct{ owners, from, to []string }
	labels := make([]change, len(bounds))
	for i, b := range bounds {
		before, after := r.prefAt(b, n), next.prefAt(b, n)
		labels[i] = change{after, ringMinus(before, after), ringMinus(after, before)}
	}
	same := func(a, b change) bool {
		return slices.Equal(a.owners, b.owners) && slices.Equal(a.from, b.from) && slices.Equal(a.to, b.to)
	}
	moved := func(c change) bool { return len(c.from) > 0 || len(c.to) > 0 }
	arcs := ringArcs(bounds, labels, same, moved)
	if len(arcs) == 0 {
		return nil
	}
	out := make([]Move, len(arcs))
	for i, a := range arcs {
		out[i] = Move{
			Range: Range{Start: a.start, End: a.end, Owners: a.label.owners},
			From:  a.label.from,
			To:    a.label.to,
		}
	}
	return out
}

// positions returns the ring's point positions, sorted; nil for an empty
// or nil ring.
func (r *Ring) positions() []uint64 {
	if r == nil {
		return nil
	}
	return r.hashes
}

// pointAt returns the index of the first point at or after position h,
// wrapping to the first point past the last. The ring must have points.
func (r *Ring) pointAt(h uint64) int {
	i, _ := slices.BinarySearch(r.hashes, h)
	if i == len(r.hashes) {
		i = 0
	}
	return i
}

// prefAt is Preference for a position instead of a key.
func (r *Ring) prefAt(h uint64, n int) []string {
	if r == nil || len(r.hashes) == 0 || n < 1 {
		return nil
	}
	var small [8]int32
	return r.names(r.walk(small[:0], r.pointAt(h), n))
}

// walk appends to dst (which must be empty) the first n distinct members
// met clockwise from point i, as indexes into r.members. It stops after one
// turn, so it returns fewer when the ring has fewer members.
func (r *Ring) walk(dst []int32, i, n int) []int32 {
	n = min(n, len(r.members))
	// A bit per member: on the stack for up to 256 members, so a lookup
	// allocates only its result.
	var small [4]uint64
	seen := small[:]
	if words := (len(r.members) + 63) / 64; words > len(small) {
		seen = make([]uint64, words)
	}
	for range len(r.hashes) {
		if len(dst) >= n {
			break
		}
		m := r.owner[i]
		if bit := uint64(1) << (m % 64); seen[m/64]&bit == 0 {
			seen[m/64] |= bit
			dst = append(dst, m)
		}
		if i++; i == len(r.hashes) {
			i = 0
		}
	}
	return dst
}

// names turns member indexes into a new slice of ids; nil for none.
func (r *Ring) names(idx []int32) []string {
	if len(idx) == 0 {
		return nil
	}
	out := make([]string, len(idx))
	for i, m := range idx {
		out[i] = r.members[m]
	}
	return out
}

// ringArc is a run of elementary arcs with one label, (start, end].
type ringArc[L any] struct {
	start, end uint64
	label      L
}

// ringArcs cuts the circle at bounds (sorted, distinct, at least one) into
// the elementary arcs (bounds[i-1], bounds[i]], the first wrapping around
// from the last bound, labelled labels[i]. It merges circularly adjacent
// arcs with equal labels, keeps the runs whose label satisfies keep (all
// when keep is nil) and returns them sorted by end. A single run around
// the whole circle is returned as (MaxUint64, MaxUint64]: Start == End
// reads as the whole circle, and code that splits a wrapping arc into
// (Start, MaxUint64] and [0, End] gets everything from it too.
func ringArcs[L any](bounds []uint64, labels []L, equal func(a, b L) bool, keep func(L) bool) []ringArc[L] {
	m := len(bounds)
	prev := func(i int) int { return (i + m - 1) % m }
	// Start at an arc whose label differs from its predecessor's, so that
	// no run is cut in two by the wrap around index 0.
	first := -1
	for i := range m {
		if !equal(labels[i], labels[prev(i)]) {
			first = i
			break
		}
	}
	if first < 0 {
		if keep != nil && !keep(labels[0]) {
			return nil
		}
		return []ringArc[L]{{start: math.MaxUint64, end: math.MaxUint64, label: labels[0]}}
	}
	var out []ringArc[L]
	for c := 0; c < m; {
		i := (first + c) % m
		last := c
		for last+1 < m && equal(labels[(first+last+1)%m], labels[i]) {
			last++
		}
		if keep == nil || keep(labels[i]) {
			out = append(out, ringArc[L]{start: bounds[prev(i)], end: bounds[(first+last)%m], label: labels[i]})
		}
		c = last + 1
	}
	slices.SortFunc(out, func(a, b ringArc[L]) int { return cmp.Compare(a.end, b.end) })
	return out
}

// ringUnion merges two sorted position lists into one without duplicates.
func ringUnion(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var h uint64
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0] < b[0]):
			h, a = a[0], a[1:]
		case len(a) == 0 || b[0] < a[0]:
			h, b = b[0], b[1:]
		default:
			h, a, b = a[0], a[1:], b[1:]
		}
		out = append(out, h)
	}
	return out
}

// ringMinus returns the members of a that are not in b, in a's order; nil
// for none.
func ringMinus(a, b []string) []string {
	var out []string
	for _, m := range a {
		if !slices.Contains(b, m) {
			out = append(out, m)
		}
	}
	return out
}
