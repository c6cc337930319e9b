package crdt

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Dot names one write: the Counter-th write to a key that Node coordinated.
// A node numbers its writes to a key 1, 2, 3, … with no gaps, so a version
// vector entry n for Node stands for the dots 1..n of that node.
type Dot struct {
	Node    string
	Counter uint64
}

// Compare orders dots by Node, then Counter.
func (d Dot) Compare(o Dot) int {
	if c := strings.Compare(d.Node, o.Node); c != 0 {
		return c
	}
	switch {
	case d.Counter < o.Counter:
		return -1
	case d.Counter > o.Counter:
		return 1
	}
	return 0
}

// String formats d as "node:counter", the same form as a vector entry.
func (d Dot) String() string { return d.Node + ":" + strconv.FormatUint(d.Counter, 10) }

// in reports whether v's history contains d.
func (d Dot) in(v Vector) bool { return v.Get(d.Node) >= d.Counter }

// Meta is what a write carries besides its value.
type Meta struct {
	// Time is the coordinator's hybrid-logical-clock timestamp of the
	// write. It plays no part in causality; it only picks the Winner
	// among concurrent siblings.
	Time Timestamp
	// Deleted makes the write a tombstone: a sibling that records a
	// delete, so that the delete is ordered against concurrent writes and
	// replicated like one instead of vanishing.
	Deleted bool
}

// Sibling is one version of a key: a write that no other write known here
// has superseded.
type Sibling struct {
	Dot     Dot
	Time    Timestamp
	Deleted bool   // a tombstone; Value is then nil
	Value   []byte // shared, not copied: do not modify
}

// Stamp is the sibling's last-writer-wins stamp: its timestamp qualified
// by the node that coordinated it.
func (s Sibling) Stamp() Stamp { return Stamp{Time: s.Time, Site: s.Dot.Node} }

// same reports whether two siblings are the same write in full.
func (s Sibling) same(o Sibling) bool {
	return s.Dot == o.Dot && s.Time == o.Time && s.Deleted == o.Deleted && bytes.Equal(s.Value, o.Value)
}

// Siblings is the versions of one key, tracked with dotted version vectors
// as in Riak (after Preguiça, Baquero, Almeida et al., "Dotted Version
// Vectors"): every sibling is tagged with the dot of the write that made
// it, and the set carries a causal context, a version vector of every
// write it has seen, kept or superseded.
//
// Invariant: each sibling's dot is in the context. The context is a plain
// version vector (each node's writes 1..n, no gaps) because a coordinator
// numbers its writes from its own stored context and replicas exchange
// whole sets, so knowledge never has holes; a sibling's dot, unlike a
// classic version vector per value, names exactly one write, which is what
// lets concurrent writes through the same node coexist as siblings
// instead of one falsely superseding the other.
//
// A Siblings is an immutable value; the zero Siblings is a key never
// written.
type Siblings struct {
	ctx  Vector
	sibs []Sibling // sorted by dot; dots unique
}

var _ encoding.BinaryAppender = Siblings{}

// Context returns the causal context: every write this set has seen.
// A client that read the set passes it back with its next write
// (REPLICANT.CONTEXT, Replicant-Context) so that the write supersedes
// exactly what the client saw. Its text form is Vector's.
func (s Siblings) Context() Vector { return s.ctx }

// Len is the number of siblings, tombstones included.
func (s Siblings) Len() int { return len(s.sibs) }

// Values returns the siblings, tombstones included, in dot order (node,
// then counter): a deterministic order, the same on every replica.
func (s Siblings) Values() []Sibling { return slices.Clone(s.sibs) }

// Winner returns the sibling with the greatest Stamp (timestamp, then node
// id), the single answer of a plain GET; false when there are no siblings.
// Every replica with the same set picks the same winner. If it is a
// tombstone the key reads as deleted.
func (s Siblings) Winner() (Sibling, bool) {
	if len(s.sibs) == 0 {
		return Sibling{}, false
	}
	w := s.sibs[0]
	for _, x := range s.sibs[1:] {
		// Dots are unique within a set, so the dot settles the (only
		// theoretical) case of one node issuing the same timestamp twice.
		if c := x.Stamp().Compare(w.Stamp()); c > 0 || (c == 0 && x.Dot.Compare(w.Dot) > 0) {
			w = x
		}
	}
	return w, true
}

// Update is a write coordinated by node: value (or a tombstone, when
// meta.Deleted; value is then ignored) written by a client whose causal
// context is ctx, the Context of what it read (empty for a blind write).
//
// The write supersedes exactly the writes in ctx: siblings here that ctx
// contains are dropped, and writes in ctx that have not reached this node
// yet will be dropped when they do, because the new context includes ctx.
// Siblings here that ctx does not contain were concurrent with the write
// and stay, next to it. The new write's dot is one past the highest
// counter of node in this set's context or in ctx, so it is new (see
// below).
//
// Two things are the caller's to guarantee, because no single replica can
// check them:
//   - A node id must never lose its writes to a key and then coordinate
//     again: it would reuse dots, and one of two different writes with the
//     same dot is silently dropped. After losing its data a node needs a
//     new id.
//   - ctx must be a context this key handed out. A context is a claim of
//     what the client saw; one taken from another key, or made up, can
//     claim writes that do not exist yet, and those writes are dropped
//     when they arrive. Hand contexts to clients as opaque tokens of the
//     key they came from.
//
// Update fails only if node's counter would pass math.MaxUint64, which a
// made-up ctx can cause; it panics on a node id that fails ValidID.
func (s Siblings) Update(ctx Vector, node string, value []byte, meta Meta) (Siblings, error) {
	mustValidID(node)
	merged := s.ctx.Merge(ctx)
	n := merged.Get(node)
	if n == math.MaxUint64 {
		return s, fmt.Errorf("crdt: node %q has no dot left after %d for this key", node, n)
	}
	sib := Sibling{Dot: Dot{Node: node, Counter: n + 1}, Time: meta.Time, Deleted: meta.Deleted}
	if !meta.Deleted {
		// Copy: the caller's buffer may be reused, and a Siblings is
		// immutable. Non-nil even when empty, so that "" stays a value.
		sib.Value = append(make([]byte, 0, len(value)), value...)
	}
	out := make([]Sibling, 0, len(s.sibs)+1)
	placed := false
	for _, x := range s.sibs {
		if x.Dot.in(ctx) {
			continue
		}
		if !placed && sib.Dot.Compare(x.Dot) < 0 {
			out = append(out, sib)
			placed = true
		}
		out = append(out, x)
	}
	if !placed {
		out = append(out, sib)
	}
	return Siblings{ctx: merged.Set(node, n+1), sibs: out}, nil
}

// Merge returns the set that knows what s and o know: the union of their
// contexts, and every sibling of either side unless the other side has
// seen its write (it is in the other's context) and no longer holds it,
// which means some write there superseded it. This is how replicas sync
// (read repair, anti-entropy, hinted handoff) and how a coordinator
// combines the R answers of a read. It is commutative, associative and
// idempotent, so replicas converge whatever the order of exchanges.
func (s Siblings) Merge(o Siblings) Siblings {
	out := make([]Sibling, 0, len(s.sibs)+len(o.sibs))
	i, j := 0, 0
	for i < len(s.sibs) || j < len(o.sibs) {
		var c int
		switch {
		case j == len(o.sibs):
			c = -1
		case i == len(s.sibs):
			c = 1
		default:
			c = s.sibs[i].Dot.Compare(o.sibs[j].Dot)
		}
		switch {
		case c < 0:
			if x := s.sibs[i]; !x.Dot.in(o.ctx) {
				out = append(out, x)
			}
			i++
		case c > 0:
			if x := o.sibs[j]; !x.Dot.in(s.ctx) {
				out = append(out, x)
			}
			j++
		default:
			// Both hold the write. A dot names one write, so both
			// copies should be equal; if a reused dot made them
			// differ, pick by content so that the result is still
			// the same whichever side is which.
			out = append(out, pickSame(s.sibs[i], o.sibs[j]))
			i++
			j++
		}
	}
	return Siblings{ctx: s.ctx.Merge(o.ctx), sibs: out}
}

func pickSame(a, b Sibling) Sibling {
	if c := a.Time.Compare(b.Time); c != 0 {
		if c > 0 {
			return a
		}
		return b
	}
	if a.Deleted != b.Deleted {
		if a.Deleted {
			return a
		}
		return b
	}
	if bytes.Compare(a.Value, b.Value) >= 0 {
		return a
	}
	return b
}

// Equal reports whether s and o are the same set: same context, same
// siblings. After merging replicas' answers, a replica whose set is not
// Equal to the merge is stale (read repair).
func (s Siblings) Equal(o Siblings) bool {
	return s.ctx.Equal(o.ctx) && slices.EqualFunc(s.sibs, o.sibs, Sibling.same)
}

// String is a debugging form: the context, then each sibling's dot,
// stamp and value (or "deleted").
func (s Siblings) String() string {
	var b strings.Builder
	b.WriteString("[" + s.ctx.String() + "]")
	for _, x := range s.sibs {
		b.WriteString(" " + x.Dot.String() + "@" + x.Time.String() + "=")
		if x.Deleted {
			b.WriteString("deleted")
		} else {
			b.WriteString(strconv.Quote(string(x.Value)))
		}
	}
	return b.String()
}

const sibDeleted = 1 << 0

// AppendBinary appends s's canonical encoding to b: the tag 'S', the
// context (as in Vector's encoding, without the tag), the number of
// siblings, then per sibling in dot order: its node as an index into the
// context's ids (a sibling's node is always there, so the id is not
// repeated), its counter, its timestamp (TimestampSize bytes), a flags
// byte (bit 0: tombstone) and, for a value, its length and bytes. The
// error is always nil.
func (s Siblings) AppendBinary(b []byte) ([]byte, error) {
	b = s.ctx.appendBody(append(b, tagSiblings))
	b = binary.AppendUvarint(b, uint64(len(s.sibs)))
	k := 0 // siblings are in node order, so the index only moves forward
	for _, x := range s.sibs {
		for s.ctx.e[k].id != x.Dot.Node {
			k++
		}
		b = binary.AppendUvarint(b, uint64(k))
		b = binary.AppendUvarint(b, x.Dot.Counter)
		b, _ = x.Time.AppendBinary(b)
		if x.Deleted {
			b = append(b, sibDeleted)
			continue
		}
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b, nil
}

// DecodeSiblings decodes exactly the bytes AppendBinary produced. Every
// length is checked against the bytes left before anything is allocated or
// sliced, and every invariant is checked (dots in the context and in
// order, counters from 1, no value on a tombstone, no unknown flags,
// minimal varints, no trailing bytes), so corrupt input is an error
// wrapping ErrMalformed and never a panic. Values are copied out of b.
func DecodeSiblings(b []byte) (Siblings, error) {
	d := decoder{b: b}
	d.tag(tagSiblings, "siblings")
	ctx := d.vectorBody()
	// A sibling is at least a tombstone's 15 bytes: node index, counter,
	// timestamp, flags.
	n := d.count("siblings", 1+1+TimestampSize+1)
	var sibs []Sibling
	if n > 0 {
		sibs = make([]Sibling, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.uvarint("sibling node index")
		if d.err == nil && k >= uint64(len(ctx.e)) {
			d.fail("sibling node index %d outside a context of %d ids", k, len(ctx.e))
			break
		}
		var x Sibling
		x.Dot.Counter = d.uvarint("sibling counter")
		if d.err == nil {
			x.Dot.Node = ctx.e[k].id
			if x.Dot.Counter == 0 || x.Dot.Counter > ctx.e[k].n {
				d.fail("sibling dot %v is not in the context %v", x.Dot, ctx)
			}
		}
		ts := d.bytes(TimestampSize, "sibling timestamp")
		if d.err == nil {
			x.Time, _ = DecodeTimestamp(ts)
		}
		switch flags := d.byte("sibling flags"); {
		case d.err != nil:
		case flags&^sibDeleted != 0:
			d.fail("sibling %v has unknown flags %#02x", x.Dot, flags)
		case flags&sibDeleted != 0:
			x.Deleted = true
		default:
			v := d.bytes(d.uvarint("sibling value length"), "sibling value")
			x.Value = append(make([]byte, 0, len(v)), v...)
		}
		if d.err == nil && i > 0 && x.Dot.Compare(sibs[i-1].Dot) <= 0 {
			d.fail("sibling dots out of order (%v after %v)", x.Dot, sibs[i-1].Dot)
		}
		if d.err == nil {
			sibs = append(sibs, x)
		}
	}
	if err := d.end("siblings"); err != nil {
		return Siblings{}, err
	}
	return Siblings{ctx: ctx, sibs: sibs}, nil
}
