package crdt

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
)

// CollType names the kind of a Coll's entries. The numbers are
// engine.Type's, so a mode converts between the two with a cast.
type CollType uint8

// The collection types a Coll can hold. Lists are not among them: a
// sequence whose positions two sites can write at once needs a sequence
// CRDT, which this package does not have.
const (
	CollHash CollType = 1
	CollSet  CollType = 3
	CollZSet CollType = 4
)

// slot maps a type to its index in Coll.clears; -1 for an unknown type.
func (t CollType) slot() int {
	switch t {
	case CollHash:
		return 0
	case CollSet:
		return 1
	case CollZSet:
		return 2
	}
	return -1
}

var collTypes = [...]CollType{CollHash, CollSet, CollZSet}

// Coll is the convergent state of one key's collection in the multi-leader
// and leaderless modes: hash fields, set members and sorted-set members
// (with their scores as values), each type in its own part, all merged by
// Join.
//
// Semantics (docs/design/types-modes.md):
//   - A hash field or a sorted-set member is a last-writer-wins register on
//     its Stamp: a write or a tombstone (Remove) replaces an older one.
//   - A set member is an add-wins observed-remove set element: each add is
//     a dot (its Stamp); Remove deletes the dots it sees; a concurrent add
//     it did not see survives the merge.
//   - Clear (DEL, a string SET over the key, expiry, a type change) is by
//     time: every entry stamped at or before the clear is gone, so a
//     concurrent write stamped later survives it.
//   - The expiry is a last-writer-wins register (SetExpire); a Clear
//     newer than it resets it.
//
// A Coll is a value, but unlike Vector, PNCounter and Siblings it is
// mutable: the pointer-receiver methods change it in place, and a Coll
// copied by assignment shares storage with its original, so Clone before
// changing a copy. Join returns a new Coll that shares no slice it could
// later change with its inputs. Member and value bytes are never changed
// in place; Get and Range return slices that alias the Coll.
type Coll struct {
	clears   [3]Stamp // per type slot: every entry stamped at or before is gone
	exp      Stamp    // the expiry register's stamp
	expireAt int64    // Unix ms, 0 = none
	entries  []collEntry
}

// collEntry is one field or member. Hash and sorted-set entries use stamp,
// value and deleted; set entries use adds and rems.
type collEntry struct {
	t       CollType
	member  []byte
	stamp   Stamp
	value   []byte
	deleted bool
	// adds are the member's live add dots, rems the removed dots that are
	// still newer than the type's clear (kept so that a removed add
	// arriving again by another path stays removed). Both sorted, disjoint.
	adds, rems []Stamp
}

func (e *collEntry) live() bool {
	if e.t == CollSet {
		return len(e.adds) > 0
	}
	return !e.deleted
}

// newest is the stamp of the entry's latest live write.
func (e *collEntry) newest() Stamp {
	if e.t == CollSet {
		return e.adds[len(e.adds)-1]
	}
	return e.stamp
}

func cmpEntryKey(t CollType, member []byte, e *collEntry) int {
	if t != e.t {
		if t < e.t {
			return -1
		}
		return 1
	}
	return bytes.Compare(member, e.member)
}

// find returns the index of (t, member) or where it would be inserted.
func (c *Coll) find(t CollType, member []byte) (int, bool) {
	return slices.BinarySearchFunc(c.entries, member, func(e collEntry, m []byte) int {
		return -cmpEntryKey(t, m, &e)
	})
}

// IsZero reports whether nothing was ever recorded in c.
func (c Coll) IsZero() bool {
	return c.clears == [3]Stamp{} && c.exp == (Stamp{}) && c.expireAt == 0 && len(c.entries) == 0
}

// Clone returns a deep copy of c.
func (c Coll) Clone() Coll {
	out := c
	out.entries = make([]collEntry, len(c.entries))
	for i, e := range c.entries {
		e.member = bytes.Clone(e.member)
		e.value = bytes.Clone(e.value)
		e.adds = slices.Clone(e.adds)
		e.rems = slices.Clone(e.rems)
		out.entries[i] = e
	}
	return out
}

// Top returns the greatest stamp c holds. A writer takes it into its clock
// before stamping a write, so that the write supersedes everything in c.
func (c Coll) Top() Stamp {
	top := c.exp
	up := func(s Stamp) {
		if top.Less(s) {
			top = s
		}
	}
	for _, s := range c.clears {
		up(s)
	}
	for i := range c.entries {
		e := &c.entries[i]
		if e.t == CollSet {
			if len(e.adds) > 0 {
				up(e.adds[len(e.adds)-1])
			}
			if len(e.rems) > 0 {
				up(e.rems[len(e.rems)-1])
			}
			continue
		}
		up(e.stamp)
	}
	return top
}

// ExpireAt is the collection's expiry in Unix ms, 0 for none.
func (c Coll) ExpireAt() int64 { return c.expireAt }

// Visible returns the type the key's collection has at nowMs: of the types
// with live entries, the one whose newest live entry is newest, and that
// entry's stamp (a mode compares it with a string register's stamp: the
// newer one is what the key holds). ok is false when no entry is live or
// the collection has expired.
func (c Coll) Visible(nowMs int64) (t CollType, newest Stamp, ok bool) {
	if c.expireAt != 0 && c.expireAt <= nowMs {
		return 0, Stamp{}, false
	}
	for i := range c.entries {
		e := &c.entries[i]
		if !e.live() {
			continue
		}
		if s := e.newest(); !ok || newest.Less(s) {
			t, newest, ok = e.t, s, true
		}
	}
	return t, newest, ok
}

// Len is the number of live entries of type t.
func (c Coll) Len(t CollType) int {
	n := 0
	for i := range c.typeRange(t) {
		if c.entries[i].live() {
			n++
		}
	}
	return n
}

// typeRange yields the indexes of t's entries.
func (c Coll) typeRange(t CollType) func(func(int) bool) {
	lo, _ := c.find(t, nil)
	return func(yield func(int) bool) {
		for i := lo; i < len(c.entries) && c.entries[i].t == t; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// Get returns member's value if it is live (a set member's value is nil).
func (c Coll) Get(t CollType, member []byte) ([]byte, bool) {
	i, ok := c.find(t, member)
	if !ok || !c.entries[i].live() {
		return nil, false
	}
	return c.entries[i].value, true
}

// Range calls fn for t's live entries with member >= from, ascending, until
// fn returns false.
func (c Coll) Range(t CollType, from []byte, fn func(member, value []byte) bool) {
	i, _ := c.find(t, from)
	for ; i < len(c.entries) && c.entries[i].t == t; i++ {
		if e := &c.entries[i]; e.live() && !fn(e.member, e.value) {
			return
		}
	}
}

// RangeReverse calls fn for t's live entries with member < before (every
// entry when before is nil), descending, until fn returns false.
func (c Coll) RangeReverse(t CollType, before []byte, fn func(member, value []byte) bool) {
	var i int
	if before == nil {
		i, _ = c.find(t+1, nil)
	} else {
		i, _ = c.find(t, before)
	}
	for i--; i >= 0 && c.entries[i].t == t; i-- {
		if e := &c.entries[i]; e.live() && !fn(e.member, e.value) {
			return
		}
	}
}

// entry returns a pointer to (t, member)'s entry, inserting an empty one.
func (c *Coll) entry(t CollType, member []byte) *collEntry {
	i, ok := c.find(t, member)
	if !ok {
		c.entries = slices.Insert(c.entries, i, collEntry{t: t, member: bytes.Clone(member)})
	}
	return &c.entries[i]
}

// Put writes member at stamp at: for a hash or sorted set, the register's
// new value; for a set, an add (a new dot). at must be newer than Top(), as
// a writer's clock makes it; value is copied.
func (c *Coll) Put(t CollType, member, value []byte, at Stamp) {
	if t.slot() < 0 || !c.clears[t.slot()].Less(at) {
		return
	}
	e := c.entry(t, member)
	if t == CollSet {
		e.adds = insertStamp(slices.Clone(e.adds), at)
		return
	}
	if e.stamp.Less(at) {
		e.stamp, e.value, e.deleted = at, bytes.Clone(value), false
	}
}

// Remove deletes member: for a hash or sorted set, a tombstone at stamp at
// (a last-writer-wins delete); for a set, the removal of every add dot c
// holds for it (observed remove: adds c has not seen survive).
func (c *Coll) Remove(t CollType, member []byte, at Stamp) {
	if t.slot() < 0 {
		return
	}
	i, ok := c.find(t, member)
	if t == CollSet {
		if !ok || len(c.entries[i].adds) == 0 {
			return
		}
		e := &c.entries[i]
		e.rems = unionStamps(e.rems, e.adds)
		e.adds = nil
		return
	}
	if !c.clears[t.slot()].Less(at) {
		return
	}
	if !ok {
		// A tombstone for a member c never saw: it must still win over
		// an older write of it that arrives later.
		c.entries = slices.Insert(c.entries, i, collEntry{t: t, member: bytes.Clone(member)})
	}
	if e := &c.entries[i]; e.stamp.Less(at) {
		e.stamp, e.value, e.deleted = at, nil, true
	}
}

// Clear removes every entry, of every type, stamped at or before at, and
// resets an older expiry: the key was deleted, overwritten or expired at at.
func (c *Coll) Clear(at Stamp) {
	for _, t := range collTypes {
		c.raiseClear(t, at)
	}
	if c.exp.Less(at) {
		c.exp, c.expireAt = at, 0
	}
	c.prune()
}

// ClearType is Clear for type t's entries only (the expiry stays): a write
// that settled the key's type drops the other types' entries.
func (c *Coll) ClearType(t CollType, at Stamp) {
	if t.slot() < 0 {
		return
	}
	c.raiseClear(t, at)
	c.prune()
}

func (c *Coll) raiseClear(t CollType, at Stamp) {
	if s := &c.clears[t.slot()]; s.Less(at) {
		*s = at
	}
}

// SetExpire sets the expiry (0 = none) if at is newer than the last one.
func (c *Coll) SetExpire(expireAt int64, at Stamp) {
	if c.exp.Less(at) {
		c.exp, c.expireAt = at, max(expireAt, 0)
	}
}

// prune drops what the clears cover, keeping the invariants the encoding
// checks: every stamp newer than its type's clear, no empty set entry.
func (c *Coll) prune() {
	out := c.entries[:0]
	for _, e := range c.entries {
		clear := c.clears[e.t.slot()]
		if e.t == CollSet {
			e.adds = newerThan(e.adds, clear)
			e.rems = newerThan(e.rems, clear)
			if len(e.adds)+len(e.rems) == 0 {
				continue
			}
		} else if !clear.Less(e.stamp) {
			continue
		}
		out = append(out, e)
	}
	clear(c.entries[len(out):])
	c.entries = out
}

// newerThan returns the stamps of s after floor (a new slice if any go).
func newerThan(s []Stamp, floor Stamp) []Stamp {
	i, _ := slices.BinarySearchFunc(s, floor, Stamp.Compare)
	if i < len(s) && s[i] == floor {
		i++
	}
	if i == 0 {
		return s
	}
	return slices.Clone(s[i:])
}

func insertStamp(s []Stamp, x Stamp) []Stamp {
	i, ok := slices.BinarySearchFunc(s, x, Stamp.Compare)
	if ok {
		return s
	}
	return slices.Insert(s, i, x)
}

// unionStamps merges two sorted stamp lists into a new one.
func unionStamps(a, b []Stamp) []Stamp {
	out := make([]Stamp, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := a[0].Compare(b[0]); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// minusStamps returns the stamps of a not in b (both sorted).
func minusStamps(a, b []Stamp) []Stamp {
	var out []Stamp
	for _, x := range a {
		if _, ok := slices.BinarySearchFunc(b, x, Stamp.Compare); !ok {
			out = append(out, x)
		}
	}
	return out
}

// Join merges two states: commutative, associative and idempotent, so
// replicas that exchange states in any order converge.
func (c Coll) Join(o Coll) Coll {
	var out Coll
	for i := range out.clears {
		out.clears[i] = c.clears[i]
		if c.clears[i].Less(o.clears[i]) {
			out.clears[i] = o.clears[i]
		}
	}
	out.exp, out.expireAt = c.exp, c.expireAt
	if c.exp.Less(o.exp) || (c.exp == o.exp && o.expireAt > c.expireAt) {
		out.exp, out.expireAt = o.exp, o.expireAt
	}
	out.entries = make([]collEntry, 0, max(len(c.entries), len(o.entries)))
	a, b := c.entries, o.entries
	for len(a) > 0 || len(b) > 0 {
		var cmp int
		switch {
		case len(a) == 0:
			cmp = 1
		case len(b) == 0:
			cmp = -1
		default:
			cmp = cmpEntryKey(a[0].t, a[0].member, &b[0])
		}
		switch {
		case cmp < 0:
			out.entries, a = append(out.entries, a[0]), a[1:]
		case cmp > 0:
			out.entries, b = append(out.entries, b[0]), b[1:]
		default:
			out.entries = append(out.entries, joinEntry(a[0], b[0]))
			a, b = a[1:], b[1:]
		}
	}
	out.prune()
	return out
}

func joinEntry(x, y collEntry) collEntry {
	if x.t == CollSet {
		rems := unionStamps(x.rems, y.rems)
		x.adds = minusStamps(unionStamps(x.adds, y.adds), rems)
		x.rems = rems
		return x
	}
	switch c := x.stamp.Compare(y.stamp); {
	case c < 0:
		return y
	case c > 0:
		return x
	}
	// One stamp names one write, so equal stamps carry equal contents;
	// pick deterministically anyway so that even corrupt input converges.
	if x.deleted != y.deleted {
		if x.deleted {
			return x
		}
		return y
	}
	if bytes.Compare(x.value, y.value) >= 0 {
		return x
	}
	return y
}

// Equal reports whether c and o are the same state.
func (c Coll) Equal(o Coll) bool {
	if c.clears != o.clears || c.exp != o.exp || c.expireAt != o.expireAt || len(c.entries) != len(o.entries) {
		return false
	}
	for i := range c.entries {
		x, y := &c.entries[i], &o.entries[i]
		if x.t != y.t || !bytes.Equal(x.member, y.member) || x.stamp != y.stamp || x.deleted != y.deleted ||
			!bytes.Equal(x.value, y.value) || !slices.Equal(x.adds, y.adds) || !slices.Equal(x.rems, y.rems) {
			return false
		}
	}
	return true
}

// Encoding (canonical: AppendBinary of equal values gives equal bytes, and
// DecodeColl accepts nothing else):
//
//	tag 'O'
//	three clears (hash, set, zset), the expiry's stamp: each a stamp
//	expireAt (uvarint)
//	entry count (uvarint), entries in (type, member) order, each:
//	  type (1 byte), member (uvarint length, bytes), then
//	  hash, zset: flags (0 live, 1 deleted), stamp (not zero),
//	              value (uvarint length, bytes; empty when deleted)
//	  set: add count, stamps; removed count, stamps (both ascending)
//
// A stamp is 0x00 for the zero stamp, or 0x01, the timestamp (12 bytes)
// and the site id (uvarint length, bytes).
const tagColl = 'O'

// AppendBinary appends c's encoding to b. The error is always nil.
func (c Coll) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, tagColl)
	for _, s := range c.clears {
		b = appendCollStamp(b, s)
	}
	b = appendCollStamp(b, c.exp)
	b = binary.AppendUvarint(b, uint64(c.expireAt))
	b = binary.AppendUvarint(b, uint64(len(c.entries)))
	for i := range c.entries {
		e := &c.entries[i]
		b = append(b, byte(e.t))
		b = binary.AppendUvarint(b, uint64(len(e.member)))
		b = append(b, e.member...)
		if e.t == CollSet {
			b = appendStampList(b, e.adds)
			b = appendStampList(b, e.rems)
			continue
		}
		var flags byte
		if e.deleted {
			flags = 1
		}
		b = append(b, flags)
		b = appendCollStamp(b, e.stamp)
		b = binary.AppendUvarint(b, uint64(len(e.value)))
		b = append(b, e.value...)
	}
	return b, nil
}

func appendCollStamp(b []byte, s Stamp) []byte {
	if s == (Stamp{}) {
		return append(b, 0)
	}
	b = append(b, 1)
	b, _ = s.Time.AppendBinary(b)
	return appendID(b, s.Site)
}

func appendStampList(b []byte, s []Stamp) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	for _, x := range s {
		b = appendCollStamp(b, x)
	}
	return b
}

func (d *decoder) collStamp(what string) Stamp {
	switch d.byte(what) {
	case 0:
		return Stamp{}
	case 1:
	default:
		d.fail("%s: bad stamp marker", what)
		return Stamp{}
	}
	p := d.bytes(TimestampSize, what)
	if d.err != nil {
		return Stamp{}
	}
	t, err := DecodeTimestamp(p)
	if err != nil {
		d.fail("%s: %v", what, err)
		return Stamp{}
	}
	return Stamp{Time: t, Site: d.id(what + " site")}
}

// minStampSize is the shortest encoded non-zero stamp: marker, timestamp,
// a one-byte id.
const minStampSize = 1 + TimestampSize + 2

func (d *decoder) stampList(what string, floor Stamp) []Stamp {
	n := d.count(what, minStampSize)
	if n == 0 {
		return nil
	}
	out := make([]Stamp, 0, n)
	for range n {
		s := d.collStamp(what)
		if d.err != nil {
			return nil
		}
		if !floor.Less(s) || (len(out) > 0 && !out[len(out)-1].Less(s)) {
			d.fail("%s: stamps not ascending above the clear", what)
			return nil
		}
		out = append(out, s)
	}
	return out
}

// DecodeColl decodes AppendBinary's output. Members and values alias b.
func DecodeColl(b []byte) (Coll, error) {
	d := &decoder{b: b}
	var c Coll
	d.tag(tagColl, "collection")
	for i := range c.clears {
		c.clears[i] = d.collStamp("clear")
	}
	c.exp = d.collStamp("expiry stamp")
	exp := d.uvarint("expiry")
	if d.err == nil && (exp > math.MaxInt64 || (exp != 0 && c.exp == Stamp{})) {
		d.fail("expiry %d without a stamp or out of range", exp)
	}
	c.expireAt = int64(exp)
	n := d.count("entries", 3)
	if n > 0 {
		c.entries = make([]collEntry, 0, n)
	}
	for range n {
		var e collEntry
		e.t = CollType(d.byte("entry type"))
		if d.err == nil && e.t.slot() < 0 {
			d.fail("entry type %d", e.t)
		}
		e.member = d.bytes(d.uvarint("member length"), "member")
		if d.err != nil {
			return Coll{}, d.err
		}
		if k := len(c.entries); k > 0 && cmpEntryKey(e.t, e.member, &c.entries[k-1]) <= 0 {
			d.fail("entries out of order")
			return Coll{}, d.err
		}
		clear := c.clears[e.t.slot()]
		if e.t == CollSet {
			e.adds = d.stampList("adds", clear)
			e.rems = d.stampList("removes", clear)
			if d.err == nil && (len(e.adds)+len(e.rems) == 0 || len(minusStamps(e.adds, e.rems)) != len(e.adds)) {
				d.fail("set member with no dots or with removed adds")
			}
		} else {
			switch d.byte("flags") {
			case 0:
			case 1:
				e.deleted = true
			default:
				d.fail("entry flags")
			}
			e.stamp = d.collStamp("entry stamp")
			if d.err == nil && !clear.Less(e.stamp) {
				d.fail("entry stamp at or below its clear")
			}
			e.value = d.bytes(d.uvarint("value length"), "value")
			if d.err == nil && e.deleted && len(e.value) > 0 {
				d.fail("deleted entry with a value")
			}
		}
		if d.err != nil {
			return Coll{}, d.err
		}
		c.entries = append(c.entries, e)
	}
	if err := d.end("collection"); err != nil {
		return Coll{}, err
	}
	return c, nil
}
