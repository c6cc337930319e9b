package leaderless

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// Merkle trees for anti-entropy (pure: no I/O).
//
// Two replicas compare an arc (Start, End] of the hash space by cutting it
// into a number of leaves, equal sub-arcs by ring position (KeyHash), and
// hashing each leaf's keys with their states. The same data gives the same
// hashes on every replica, whatever order it was written or scanned in;
// only the leaves whose hashes differ need their keys exchanged.
//
//	entry    = SHA-256(uvarint(len(key)) ‖ key ‖ state)
//	leaf     = XOR of its entries' hashes (all zero for an empty leaf)
//	interior = SHA-256(0x01 ‖ left ‖ right), or SHA-256(0x01 ‖ left)
//	           for a last child without a sibling
//
// A leaf is a XOR so that it can be kept up to date one write at a time
// (aeindex.go): a key's new state replaces its old hash in O(1), and a
// coarse leaf is the XOR of the finer ones it covers. Each key appears in
// a leaf once, so no two equal hashes cancel; the key's length prefix
// keeps the encoding unambiguous. States are compared by their encoding
// (AppendState is canonical: equal states encode to equal bytes). Only
// leaf hashes cross the wire; the interior nodes serve the local descent
// to the differing leaves.

// Digest is a SHA-256 sum.
type Digest = [sha256.Size]byte

// MaxLeaves bounds the leaves of one tree (a request's cost on the
// replica that answers it is proportional to its leaves plus its keys).
const MaxLeaves = 1 << 16

// StateEntry is a key with its encoded state, as a replica stores it.
type StateEntry struct {
	Key, State []byte
}

// MerkleEntry is a key with the digest of its state and its position on
// the ring.
type MerkleEntry struct {
	Pos    uint64 // KeyHash(Key)
	Key    []byte
	Digest Digest // EntryHash(Key, state)
}

// NewMerkleEntry digests one key and state.
func NewMerkleEntry(key, state []byte) MerkleEntry {
	return MerkleEntry{Pos: KeyHash(key), Key: key, Digest: EntryHash(key, state)}
}

// EntryHash is a key's contribution to its leaf's hash.
func EntryHash(key, state []byte) Digest {
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	h.Write(binary.AppendUvarint(buf[:0], uint64(len(key))))
	h.Write(key)
	h.Write(state)
	var d Digest
	h.Sum(d[:0])
	return d
}

// xorInto sets *d to *d XOR x.
func xorInto(d *Digest, x *Digest) {
	for i := range d {
		d[i] ^= x[i]
	}
}

// arcLen returns the number of positions in arc (Start, End] as a
// 128-bit number hi:lo: hi is 1 only for the whole circle (Start == End,
// 2^64 positions).
func arcLen(arc Range) (hi, lo uint64) {
	if arc.Start == arc.End {
		return 1, 0
	}
	return 0, arc.End - arc.Start
}

// LeafOf returns which of leaves equal sub-arcs of arc holds position h
// (h must lie in arc). Leaf i holds the positions Start+1+off for the
// offsets off with floor(off*leaves/len) == i, len being the arc's length.
func LeafOf(arc Range, leaves int, h uint64) int {
	off := h - arc.Start - 1 // 0 .. len-1
	hi, lo := bits.Mul64(off, uint64(leaves))
	lhi, llo := arcLen(arc)
	if lhi == 1 {
		return int(hi) // divided by 2^64
	}
	// hi < llo because off < llo and leaves < 2^64, so Div64 cannot panic.
	q, _ := bits.Div64(hi, lo, llo)
	return int(q)
}

// leafStart returns the first offset of leaf i: ceil(i*len/leaves), for
// 0 <= i <= leaves (i == leaves gives the arc's length, as a 128-bit
// number).
func leafStart(arc Range, leaves, i int) (hi, lo uint64) {
	lhi, llo := arcLen(arc)
	if i >= leaves {
		return lhi, llo
	}
	var phi, plo uint64
	if lhi == 1 {
		phi, plo = uint64(i), 0
	} else {
		phi, plo = bits.Mul64(uint64(i), llo)
	}
	// phi < i < leaves, so Div64 cannot panic.
	q, r := bits.Div64(phi, plo, uint64(leaves))
	if r != 0 {
		q++ // cannot overflow: q < len <= 2^64 and i < leaves
	}
	return 0, q
}

// LeafArc returns leaf i of arc cut into leaves, as an arc of its own;
// ok is false when the leaf holds no position (more leaves than
// positions). For every h in arc, LeafOf(arc, leaves, h) == i exactly when
// LeafArc(arc, leaves, i) contains h.
func LeafArc(arc Range, leaves, i int) (sub Range, ok bool) {
	_, a := leafStart(arc, leaves, i)
	bhi, b := leafStart(arc, leaves, i+1)
	if bhi == 0 && a == b {
		return Range{}, false
	}
	// Offsets a .. b-1 are positions Start+1+a .. Start+b: the arc
	// (Start+a, Start+b]. For the whole circle cut into one leaf that is
	// (Start, Start], the whole circle again.
	return Range{Start: arc.Start + a, End: arc.Start + b, Owners: arc.Owners}, true
}

// LeafHashes hashes the entries that lie in arc into leaves leaf hashes;
// entries outside arc are ignored, and their order does not matter (the
// slice is not modified).
func LeafHashes(arc Range, leaves int, entries []MerkleEntry) []Digest {
	return leafHashesOf(arc, leaves, bucketEntries(arc, leaves, entries))
}

// bucketEntries returns the entries of each leaf.
func bucketEntries(arc Range, leaves int, entries []MerkleEntry) [][]MerkleEntry {
	buckets := make([][]MerkleEntry, leaves)
	for _, en := range entries {
		if !arc.Contains(en.Pos) {
			continue
		}
		i := LeafOf(arc, leaves, en.Pos)
		buckets[i] = append(buckets[i], en)
	}
	return buckets
}

func leafHashesOf(arc Range, leaves int, buckets [][]MerkleEntry) []Digest {
	out := make([]Digest, leaves)
	for i, b := range buckets {
		out[i] = LeafHash(b)
	}
	return out
}

// LeafHash is the hash of one leaf's entries (each key once, in any
// order).
func LeafHash(entries []MerkleEntry) Digest {
	var d Digest
	for i := range entries {
		xorInto(&d, &entries[i].Digest)
	}
	return d
}

// MerkleTree is a binary hash tree over leaf hashes.
type MerkleTree struct {
	// levels[0] are the leaves; each next level has ceil(len/2) nodes;
	// the last level is the root alone.
	levels [][]Digest
}

// NewMerkleTree builds the tree over leaves (at least one; none counts as
// one empty leaf). The slice is kept, not copied.
func NewMerkleTree(leaves []Digest) *MerkleTree {
	if len(leaves) == 0 {
		leaves = []Digest{LeafHash(nil)}
	}
	t := &MerkleTree{levels: [][]Digest{leaves}}
	for cur := leaves; len(cur) > 1; {
		next := make([]Digest, (len(cur)+1)/2)
		for i := range next {
			h := sha256.New()
			h.Write([]byte{1})
			h.Write(cur[2*i][:])
			if 2*i+1 < len(cur) {
				h.Write(cur[2*i+1][:])
			}
			h.Sum(next[i][:0])
		}
		t.levels = append(t.levels, next)
		cur = next
	}
	return t
}

// BuildMerkle builds the tree of the entries (keys with their encoded
// states) that lie in arc, cut into leaves sub-arcs (1..MaxLeaves).
func BuildMerkle(arc Range, leaves int, entries []StateEntry) *MerkleTree {
	me := make([]MerkleEntry, len(entries))
	for i, en := range entries {
		me[i] = NewMerkleEntry(en.Key, en.State)
	}
	return NewMerkleTree(LeafHashes(arc, leaves, me))
}

// Root is the hash of the whole tree.
func (t *MerkleTree) Root() Digest { return t.levels[len(t.levels)-1][0] }

// Leaves returns the leaf hashes (not a copy).
func (t *MerkleTree) Leaves() []Digest { return t.levels[0] }

// DiffLeaves returns, in increasing order, the leaves whose hashes differ
// between a and b, descending only into subtrees whose hashes differ.
// Trees of different sizes do not describe the same leaves: every leaf of
// the larger one is returned.
func DiffLeaves(a, b *MerkleTree) []int {
	if len(a.levels[0]) != len(b.levels[0]) {
		n := max(len(a.levels[0]), len(b.levels[0]))
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	var out []int
	var walk func(level, i int)
	walk = func(level, i int) {
		if a.levels[level][i] == b.levels[level][i] {
			return
		}
		if level == 0 {
			out = append(out, i)
			return
		}
		for c := 2 * i; c <= 2*i+1 && c < len(a.levels[level-1]); c++ {
			walk(level-1, c)
		}
	}
	walk(len(a.levels)-1, 0)
	return out
}
