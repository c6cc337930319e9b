package leaderless

import (
	"cmp"
	"context"
	"math/bits"
	"slices"
	"strings"
	"sync"

	"github.com/replicant-db/replicant/internal/engine"
)

// The anti-entropy index: the Merkle trees' data, kept up to date one
// write at a time instead of rebuilt from a scan of the store for every
// comparison.
//
// For every key the node holds (reserved keys excepted) the index keeps
// its ring position, its entry hash (EntryHash of its current state) and
// its owner set: the members that replicate its position by the current
// ring. Keys are grouped in 4096 equal segments of the circle by
// position, and for every owner set and segment the index keeps the XOR
// of the entry hashes of its keys there. A tree of the whole circle in L
// leaves (L a power of two up to 4096, as the driver asks for) shared by
// two members is then the XOR, per leaf, of the segments of the owner
// sets that include both: no key is touched. Finer trees (a leaf's arc cut
// again) and a leaf's entries come from the keys of the segments the arc
// covers.
//
// The index follows the node's own log: every change to a key's stored
// state is an entry of that log (writes, merges, hints handed over,
// tombstones collected), so replaying the entries after the last one the
// index saw brings it up to date, exactly, whoever wrote them. It is
// brought up to date before each use and once a second, so a replay is
// short. It is built by one scan of the store when first used, and again
// when the log no longer reaches back to where it stopped (log retention)
// or holds a FLUSHALL. When the ring changes, owner sets and segment sums
// are recomputed from the keys (no store access).
//
// Invariants (after catchUp, under mu):
//   - keys holds exactly the store's non-reserved keys at LSN lsn, each
//     with EntryHash of its state there;
//   - sums[s].segs[g] is the XOR of h over keys of owner set s in segment
//     g, and sums[s].keys their number; sets are computed by ring.

// aeSegBits is log2 of the index's segments: also the largest tree the
// fast path answers (aeMaxTreeLeaves must not exceed it).
const aeSegBits = 12

const aeSegments = 1 << aeSegBits

// aeSegOf returns the segment of position pos. It is the leaf of pos in
// the whole circle (0, 0] cut into aeSegments leaves (see LeafOf: offsets
// count from Start+1, so position 0 is the last one).
func aeSegOf(pos uint64) int { return int((pos - 1) >> (64 - aeSegBits)) }

// aeKey is one key in the index.
type aeKey struct {
	pos uint64
	set int32 // owner set; -1 when the ring is empty
	h   Digest
}

// aeOwners is one owner set with its segment sums.
type aeOwners struct {
	members []string // sorted
	keys    int
	segs    map[uint16]Digest // XOR of the set's keys' hashes per segment; absent: none
}

type aeIndex struct {
	mu    sync.Mutex
	built bool
	lsn   uint64 // the store's state at this LSN is indexed

	ring   *Ring
	n      int
	points []int32 // per ring point: the owner set of the positions it takes (-1: not known yet)
	sets   []*aeOwners
	setIDs map[string]int32

	segs [aeSegments]map[string]*aeKey
	keys int
}

// reset empties the index (the ring is kept).
func (ix *aeIndex) reset() {
	ix.built, ix.lsn, ix.keys = false, 0, 0
	ix.segs = [aeSegments]map[string]*aeKey{}
	ix.regroup(ix.ring, ix.n)
}

// setRing makes owner sets follow ring r with n replicas.
func (ix *aeIndex) setRing(r *Ring, n int) {
	if r == ix.ring && n == ix.n && ix.setIDs != nil {
		return
	}
	ix.regroup(r, n)
}

// regroup recomputes every key's owner set and the segment sums.
func (ix *aeIndex) regroup(r *Ring, n int) {
	ix.ring, ix.n = r, n
	ix.points = nil
	if r != nil {
		ix.points = make([]int32, len(r.hashes))
		for i := range ix.points {
			ix.points[i] = -1
		}
	}
	ix.sets, ix.setIDs = nil, map[string]int32{}
	for g := range ix.segs {
		for _, k := range ix.segs[g] {
			k.set = ix.ownerSet(k.pos)
			ix.add(g, k)
		}
	}
}

// ownerSet returns the owner set of position pos, creating it on first use.
func (ix *aeIndex) ownerSet(pos uint64) int32 {
	r := ix.ring
	if r == nil || len(r.hashes) == 0 || ix.n < 1 {
		return -1
	}
	p := r.pointAt(pos)
	if id := ix.points[p]; id >= 0 {
		return id
	}
	var small [8]int32
	idx := r.walk(small[:0], p, ix.n)
	members := make([]string, len(idx))
	for i, m := range idx {
		members[i] = r.members[m]
	}
	slices.Sort(members)
	name := strings.Join(members, "\x00")
	id, ok := ix.setIDs[name]
	if !ok {
		id = int32(len(ix.sets))
		ix.sets = append(ix.sets, &aeOwners{members: members, segs: map[uint16]Digest{}})
		ix.setIDs[name] = id
	}
	ix.points[p] = id
	return id
}

// add counts k (in segment g) in its owner set's sums; remove undoes it.
func (ix *aeIndex) add(g int, k *aeKey) {
	if k.set < 0 {
		return
	}
	s := ix.sets[k.set]
	d := s.segs[uint16(g)]
	xorInto(&d, &k.h)
	s.segs[uint16(g)] = d
	s.keys++
}

func (ix *aeIndex) remove(g int, k *aeKey) {
	if k.set < 0 {
		return
	}
	s := ix.sets[k.set]
	d := s.segs[uint16(g)]
	xorInto(&d, &k.h)
	if d == (Digest{}) {
		// Only an empty segment sums to zero in practice; dropping it
		// keeps the map as small as the data.
		delete(s.segs, uint16(g))
	} else {
		s.segs[uint16(g)] = d
	}
	s.keys--
}

// put records key's state; a nil state removes the key.
func (ix *aeIndex) put(key, state []byte) {
	if len(key) == 0 || isReserved(key) {
		return
	}
	pos := KeyHash(key)
	g := aeSegOf(pos)
	m := ix.segs[g]
	if old, ok := m[string(key)]; ok {
		ix.remove(g, old)
		delete(m, string(key))
		ix.keys--
	}
	if state == nil {
		return
	}
	if m == nil {
		m = map[string]*aeKey{}
		ix.segs[g] = m
	}
	k := &aeKey{pos: pos, set: ix.ownerSet(pos), h: EntryHash(key, state)}
	m[string(key)] = k
	ix.add(g, k)
	ix.keys++
}

// sharedSets returns which owner sets include a and (when not empty) b.
func (ix *aeIndex) sharedSets(a, b string) []bool {
	out := make([]bool, len(ix.sets))
	for i, s := range ix.sets {
		_, okA := slices.BinarySearch(s.members, a)
		okB := b == ""
		if !okB {
			_, okB = slices.BinarySearch(s.members, b)
		}
		out[i] = okA && okB
	}
	return out
}

// count returns how many keys a and b both replicate.
func (ix *aeIndex) count(a, b string) int {
	n := 0
	for i, ok := range ix.sharedSets(a, b) {
		if ok {
			n += ix.sets[i].keys
		}
	}
	return n
}

// leafHashes returns the leaf hashes of the keys in arc that a and b both
// replicate, arc cut into leaves leaves: LeafHashes of those keys.
func (ix *aeIndex) leafHashes(arc Range, leaves int, a, b string) []Digest {
	out := make([]Digest, leaves)
	shared := ix.sharedSets(a, b)
	if arc.Start == 0 && arc.End == 0 && leaves <= aeSegments && leaves&(leaves-1) == 0 {
		// The whole circle from position 0 in a power of two of leaves:
		// leaf i is segments [i*S/L, (i+1)*S/L).
		shift := aeSegBits - bits.TrailingZeros(uint(leaves))
		for i, ok := range shared {
			if !ok {
				continue
			}
			for g, d := range ix.sets[i].segs {
				xorInto(&out[int(g)>>shift], &d)
			}
		}
		return out
	}
	ix.scanArc(arc, func(key string, k *aeKey) {
		if k.set >= 0 && shared[k.set] {
			xorInto(&out[LeafOf(arc, leaves, k.pos)], &k.h)
		}
	})
	return out
}

// entries returns the keys in arc that a and b both replicate (the keys
// copied), in no particular order.
func (ix *aeIndex) entries(arc Range, a, b string) []MerkleEntry {
	shared := ix.sharedSets(a, b)
	var out []MerkleEntry
	ix.scanArc(arc, func(key string, k *aeKey) {
		if k.set >= 0 && shared[k.set] {
			out = append(out, MerkleEntry{Pos: k.pos, Key: []byte(key), Digest: k.h})
		}
	})
	return out
}

// scanArc calls fn for every key in arc.
func (ix *aeIndex) scanArc(arc Range, fn func(key string, k *aeKey)) {
	visit := func(g int) {
		for key, k := range ix.segs[g] {
			if arc.Contains(k.pos) {
				fn(key, k)
			}
		}
	}
	// An arc that covers all but part of one segment (or the whole
	// circle) visits every segment; otherwise those from the one of its
	// first position to the one of its last, wrapping through 0.
	const segLen = uint64(1) << (64 - aeSegBits)
	if arc.End-arc.Start == 0 || arc.End-arc.Start > ^uint64(0)-segLen+1 {
		for g := range ix.segs {
			visit(g)
		}
		return
	}
	first, last := aeSegOf(arc.Start+1), aeSegOf(arc.End)
	for g := first; ; g = (g + 1) % aeSegments {
		visit(g)
		if g == last {
			return
		}
	}
}

// Change is one operation of a node's own log, as the index replays it.
type Change struct {
	Key   []byte
	State []byte // the key's new state; nil: the key was deleted
	Flush bool   // every key was deleted (FLUSHALL)
}

// catchUp brings the index to the node's current state: it replays the
// log entries it has not seen, or rebuilds from a scan when it cannot.
func (ix *aeIndex) catchUp(ctx context.Context, nd Node) error {
	rd := nd.LocalRead()
	to := rd.Token().LSN
	if ix.built && to <= ix.lsn {
		return nil
	}
	if ix.built {
		flushed := false
		err := nd.LocalChanges(ctx, ix.lsn+1, to, func(c Change) error {
			if c.Flush {
				flushed = true
			}
			if !flushed {
				ix.put(c.Key, c.State)
			}
			return nil
		})
		if err == nil && !flushed {
			ix.lsn = to
			return nil
		}
		if ctx.Err() != nil {
			// Partly replayed: start again from a scan.
			ix.reset()
			return ctx.Err()
		}
	}
	// First use, a log that no longer reaches back, or a FLUSHALL.
	ix.reset()
	n := 0
	var cancelled error
	err := rd.Scan(nil, func(key []byte, v engine.Version) bool {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			cancelled = ctx.Err()
			return false
		}
		ix.put(key, v.Value) // put copies what it keeps
		return true
	})
	if err = cmp.Or(cancelled, err); err != nil {
		ix.reset()
		return err
	}
	ix.built, ix.lsn = true, to
	return nil
}
