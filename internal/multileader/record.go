package multileader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// Record is what multi-leader mode stores under a user key: a
// last-writer-wins register (the value a SET wrote, or a DEL's tombstone),
// a PN-counter (the increments of INCR and friends that no SET or DEL has
// reset) and a collection (the fields and members of a hash, set or sorted
// set). Sites exchange whole records and merge them, so a site that
// receives the same record twice, or records in another order, ends in the
// same state (Merge is a join).
//
// A stored record is normalized: a SET or DEL replaces the whole key, so
// when both the register and the collection were ever written, the
// collection holds nothing stamped at or before the register
// (Coll.Clear(Reg.Stamp) changes nothing). A string-only record keeps a
// zero Coll: the clear is implied by the register until a collection
// write or a merge brings entries, and is applied then.
type Record struct {
	Reg     Register
	Counter crdt.PNCounter
	Coll    crdt.Coll
	// CollLSN is the LSN, on its origin site (Coll.Top().Site), of the
	// write that gave Coll its top stamp; 0 when Coll is zero or the
	// write is unknown. A site that has applied that write already knows
	// everything in Coll (gc.go, applyRemote).
	CollLSN uint64
}

// Register is the last-writer-wins part of a record.
type Register struct {
	// Stamp orders writes: (HLC, site). The zero stamp is a register
	// never written (a key that only ever saw increments).
	Stamp crdt.Stamp
	// Prev is the stamp of the register this write replaced on its
	// origin site: a write whose Prev is the stamp a site holds is that
	// value's successor, not a conflict.
	Prev crdt.Stamp
	// OriginLSN is the LSN of the entry that wrote this register on its
	// origin site (Stamp.Site): a site may drop a tombstone once every
	// site has applied its origin up to there (see gc.go).
	OriginLSN uint64
	Deleted   bool
	Value     []byte
	ExpireAt  int64 // Unix ms; 0 = never
}

// Live reports whether the record holds a value at nowMs: a string (a
// register that is neither deleted nor expired, or increments no reset has
// seen) or a collection with a live entry.
func (r Record) Live(nowMs int64) bool {
	_, ok := r.Holds(nowMs)
	return ok
}

// Holds returns what the key holds at nowMs: engine.TypeString for a live
// register or counter, a collection's type for a live collection. When
// both are live, the newer wins: the register's stamp against the
// collection's newest live entry (docs/design/multileader.md). A record
// is normalized, so a live entry is always newer than the register (the
// register's write cleared every older one): a live collection wins. A
// counter's increments carry no stamp of their own, so a key that was
// only ever incremented loses to a concurrent collection write too.
func (r Record) Holds(nowMs int64) (engine.Type, bool) {
	if ct, _, ok := r.Coll.Visible(nowMs); ok {
		return engine.Type(ct), true
	}
	if r.strLive(nowMs) {
		return engine.TypeString, true
	}
	return 0, false
}

// strLive reports whether the string part (register or counter) is live.
func (r Record) strLive(nowMs int64) bool {
	return !r.expired(nowMs) && (r.regLive() || r.Counter.Active())
}

// Version is how a command sees a live record stored at lsn: a string's
// value, or a collection's type and expiry (its entries are read through
// the mode's CollTxn or CollReader).
func (r Record) Version(lsn uint64, nowMs int64) (engine.Version, bool) {
	t, ok := r.Holds(nowMs)
	switch {
	case !ok:
		return engine.Version{}, false
	case t != engine.TypeString:
		return engine.Version{LSN: lsn, Type: t, ExpireAt: r.Coll.ExpireAt()}, true
	}
	return engine.Version{LSN: lsn, Value: r.Value(), ExpireAt: r.Reg.ExpireAt}, true
}

// Top is the greatest stamp the record holds: a local write is stamped
// after it, so that it supersedes everything the record shows.
func (r Record) Top() crdt.Stamp {
	top := r.Reg.Stamp
	if !r.Coll.IsZero() {
		if t := r.Coll.Top(); top.Less(t) {
			top = t
		}
	}
	return top
}

func (r Record) regLive() bool { return !r.Reg.Stamp.Time.IsZero() && !r.Reg.Deleted }

func (r Record) expired(nowMs int64) bool { return r.Reg.ExpireAt != 0 && r.Reg.ExpireAt <= nowMs }

// Value is what a GET answers for a live record. A register holding an
// integer and a counter add up (SET 10 then INCR on two sites gives 12); a
// register holding anything else is the value as written, whatever the
// counter says (a string SET concurrent with an INCR elsewhere wins by
// being a string: documented in docs/design/multileader.md).
func (r Record) Value() []byte {
	if !r.Counter.Active() {
		return r.Reg.Value
	}
	var base int64
	if r.regLive() {
		n, err := strconv.ParseInt(string(r.Reg.Value), 10, 64)
		if err != nil {
			return r.Reg.Value
		}
		base = n
	}
	c, err := r.Counter.Value()
	if err != nil {
		return []byte(r.Counter.Text())
	}
	if s, ok := addInt(base, c); ok {
		return strconv.AppendInt(nil, s, 10)
	}
	return []byte(r.Counter.Text()) // beyond int64: show the counter's exact sum
}

func addInt(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// Set is a local SET (or any command whose result is a new value) at
// stamp (newer than r.Top()): it replaces the register, resets every
// increment it has seen and clears the collection up to stamp. The
// caller sets the origin LSNs (Reg.OriginLSN, and CollLSN if Coll is not
// zero) to its entry's.
func (r Record) Set(stamp crdt.Stamp, value []byte, expireAt int64) Record {
	return Record{
		Reg:     Register{Stamp: stamp, Prev: r.Reg.Stamp, Value: value, ExpireAt: expireAt},
		Counter: r.Counter.Reset(r.Counter),
		Coll:    clearedAt(r.Coll, stamp),
	}
}

// Del is a local DEL at stamp (newer than r.Top()): a tombstone that
// resets what it has seen, collection included. The caller sets the
// origin LSNs as for Set.
func (r Record) Del(stamp crdt.Stamp) Record {
	return Record{
		Reg:     Register{Stamp: stamp, Prev: r.Reg.Stamp, Deleted: true},
		Counter: r.Counter.Reset(r.Counter),
		Coll:    clearedAt(r.Coll, stamp),
	}
}

// WithColl is r after a local collection write by site's entry at lsn:
// c (stamped by the writer's clock, after r.Top()) becomes the collection,
// normalized against the register, and CollLSN names lsn when c's top is
// a stamp site issued (that write is this entry's).
func (r Record) WithColl(c crdt.Coll, site string, lsn uint64) Record {
	prev := r.Coll
	r.Coll = clearedAt(c, r.Reg.Stamp)
	switch top := r.Coll.Top(); {
	case r.Coll.IsZero():
		r.CollLSN = 0
	case !prev.IsZero() && top == prev.Top():
		// The top is an older write's (an SREM stamps nothing new).
	case top.Site == site:
		r.CollLSN = lsn
	default:
		r.CollLSN = collLSN(top, Record{Reg: r.Reg, Coll: prev, CollLSN: r.CollLSN})
	}
	return r
}

// stampOrigin sets the origin LSNs after a local register write (Set,
// Del) by the entry at lsn: the register's, and the collection's, whose
// top the write's clear now is.
func (r *Record) stampOrigin(lsn uint64) {
	r.Reg.OriginLSN = lsn
	if !r.Coll.IsZero() {
		r.CollLSN = lsn
	}
}

// clearedAt is c without what a register write at stamp replaced (a copy:
// c may be shared with the record it came from). A zero Coll stays zero:
// the register implies the clear (see Record).
func clearedAt(c crdt.Coll, stamp crdt.Stamp) crdt.Coll {
	if c.IsZero() || stamp == (crdt.Stamp{}) {
		return c
	}
	c = c.Clone()
	c.Clear(stamp)
	return c
}

// IncrBy is a local INCRBY by site at nowMs: the delta goes into the
// counter under site, so increments on other sites all count. An expired
// record is first deleted at stamp (Redis starts an expired key from 0).
//
// A key holding a collection is not a number: engine.ErrWrongType, which
// the APIs answer as Redis does.
func (r Record) IncrBy(site string, stamp crdt.Stamp, delta int64, nowMs int64) (Record, int64, error) {
	if t, ok := r.Holds(nowMs); ok && t != engine.TypeString {
		return r, 0, engine.ErrWrongType
	}
	if r.expired(nowMs) {
		r = r.Del(stamp)
	}
	var base int64
	if r.regLive() {
		n, err := strconv.ParseInt(string(r.Reg.Value), 10, 64)
		if err != nil {
			return r, 0, engine.ErrNotInteger
		}
		base = n
	}
	c, err := r.Counter.Value()
	if err != nil {
		return r, 0, engine.ErrNotInteger
	}
	cur, ok := addInt(base, c)
	if !ok {
		return r, 0, engine.ErrNotInteger
	}
	res, ok := addInt(cur, delta)
	if !ok {
		return r, 0, engine.ErrOverflow
	}
	ctr, err := r.Counter.Increment(site, delta)
	if err != nil {
		return r, 0, engine.ErrOverflow
	}
	r.Counter = ctr
	return r, res, nil
}

// Conflict is a write that lost to a concurrent one. A side that is a
// collection has its type in WinnerType or LoserType and, in its
// Register, only the stamp of its newest live entry; a string side has
// type engine.TypeString (0) and its register.
type Conflict struct {
	Winner, Loser         Register
	WinnerType, LoserType engine.Type
}

// Merge joins a local and a remote record: the register with the greater
// stamp wins, counters merge, collections join (and are normalized
// against the winning register: see Record). It reports a conflict when
// both registers were written and neither replaced the other knowingly
// (neither's Prev is the other's stamp): concurrent writes, one of which
// is now lost; or when one record holds a string and the other a
// collection written without seeing it (typeClash).
func Merge(local, remote Record) (Record, *Conflict) {
	out := Record{Reg: local.Reg, Counter: local.Counter.Merge(remote.Counter)}
	c := local.Reg.Stamp.Compare(remote.Reg.Stamp)
	if c < 0 {
		out.Reg = remote.Reg
	}
	out.Coll, out.CollLSN = joinColls(local, remote, out.Reg.Stamp)
	if c == 0 || local.Reg.Stamp.Time.IsZero() || remote.Reg.Stamp.Time.IsZero() ||
		remote.Reg.Prev == local.Reg.Stamp || local.Reg.Prev == remote.Reg.Stamp {
		return out, typeClash(local, remote, out)
	}
	if c < 0 {
		return out, &Conflict{Winner: remote.Reg, Loser: local.Reg}
	}
	return out, &Conflict{Winner: local.Reg, Loser: remote.Reg}
}

// joinColls is the collection of a merge whose winning register has stamp
// reg, with its CollLSN.
func joinColls(a, b Record, reg crdt.Stamp) (crdt.Coll, uint64) {
	if a.Coll.IsZero() && b.Coll.IsZero() {
		return crdt.Coll{}, 0
	}
	c := a.Coll.Join(b.Coll) // a new Coll: clearing it changes neither input
	if reg != (crdt.Stamp{}) {
		c.Clear(reg)
	}
	return c, collLSN(c.Top(), a, b)
}

// collLSN is the origin LSN of the write stamped top, as the records
// know it: a collection write (CollLSN) or a register write whose clear
// is the top (Reg.OriginLSN). One stamp names one write, so the
// candidates agree; the largest is taken so that even corrupt input
// merges the same in any order.
func collLSN(top crdt.Stamp, rs ...Record) uint64 {
	var lsn uint64
	for _, r := range rs {
		if !r.Coll.IsZero() && r.Coll.Top() == top {
			lsn = max(lsn, r.CollLSN)
		}
		if r.Reg.Stamp == top {
			lsn = max(lsn, r.Reg.OriginLSN)
		}
	}
	return lsn
}

// typeClash reports a string and a collection written concurrently on one
// key, ignoring expiry as register conflicts do: one record holds a
// string register, the other a collection, the merge holds one of them,
// and neither writer saw the other's write. The collection's writer saw
// the string if it holds the same register (the string was then already
// hidden there); the string's writer saw the collection if its own
// collection state already covers the other's (a SET over a hash clears
// the hash's entries into its record). The second test cannot tell a
// clear that saw an entry from one that is merely newer, so a string that
// wins over an unseen older collection write of a key that held a
// collection before may go unreported.
func typeClash(local, remote, out Record) *Conflict {
	lt, lok := local.Holds(0)
	rt, rok := remote.Holds(0)
	ot, ook := out.Holds(0)
	if !lok || !rok || !ook || (lt == engine.TypeString) == (rt == engine.TypeString) {
		return nil
	}
	str, coll := local, remote
	if rt == engine.TypeString {
		str, coll = remote, local
	}
	if !str.regLive() || coll.Reg.Stamp == str.Reg.Stamp {
		return nil // a counter has no write to name; or no clash
	}
	if !str.Coll.IsZero() && str.Coll.Join(coll.Coll).Equal(str.Coll) {
		return nil
	}
	ct, newest, _ := coll.Coll.Visible(0)
	collSide := Register{Stamp: newest}
	if ot == engine.TypeString {
		return &Conflict{Winner: str.Reg, Loser: collSide, LoserType: engine.Type(ct)}
	}
	return &Conflict{Winner: collSide, WinnerType: engine.Type(ct), Loser: str.Reg}
}

// Equal reports whether two records are the same state.
func (r Record) Equal(o Record) bool {
	return r.Reg.Stamp == o.Reg.Stamp && r.Reg.Prev == o.Reg.Prev && r.Reg.OriginLSN == o.Reg.OriginLSN && r.Reg.Deleted == o.Reg.Deleted &&
		r.Reg.ExpireAt == o.Reg.ExpireAt && bytes.Equal(r.Reg.Value, o.Reg.Value) && r.Counter.Equal(o.Counter) &&
		r.CollLSN == o.CollLSN && r.Coll.Equal(o.Coll)
}

// Encoding: a tag byte and layout version, then
//
//	flags (bit 0 deleted, bit 1 counter present, bit 2 collection present)
//	stamp, prev: timestamp (crdt's 12 bytes), site (uvarint length, bytes)
//	origin LSN (uvarint), expireAt (varint), value (uvarint length, bytes)
//	if a collection is present: CollLSN (uvarint), the collection (uvarint
//	length, crdt encoding)
//	counter (crdt encoding, to the end) if present
//
// A record without a collection encodes as it did before collections
// existed, so stored records and logs from then decode unchanged.
const recordTag = 0xA2 // 0xA1 had no origin LSN (never released)

const (
	flagDeleted = 1 << 0
	flagCounter = 1 << 1
	flagColl    = 1 << 2
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("multileader: malformed record")

// AppendRecord appends r's encoding to b.
func AppendRecord(b []byte, r Record) []byte {
	var flags byte
	if r.Reg.Deleted {
		flags |= flagDeleted
	}
	hasCounter := r.Counter.Len() > 0
	if hasCounter {
		flags |= flagCounter
	}
	hasColl := !r.Coll.IsZero()
	if hasColl {
		flags |= flagColl
	}
	b = append(b, recordTag, flags)
	b = appendStamp(b, r.Reg.Stamp)
	b = appendStamp(b, r.Reg.Prev)
	b = binary.AppendUvarint(b, r.Reg.OriginLSN)
	b = binary.AppendVarint(b, r.Reg.ExpireAt)
	b = binary.AppendUvarint(b, uint64(len(r.Reg.Value)))
	b = append(b, r.Reg.Value...)
	if hasColl {
		b = binary.AppendUvarint(b, r.CollLSN)
		start := len(b)
		b, _ = r.Coll.AppendBinary(b) // appending to a slice cannot fail
		// The length goes before the bytes: encode, then make room.
		n := len(b) - start
		b = slices.Insert(b, start, binary.AppendUvarint(nil, uint64(n))...)
	}
	if hasCounter {
		b, _ = r.Counter.AppendBinary(b) // appending to a slice cannot fail
	}
	return b
}

func appendStamp(b []byte, s crdt.Stamp) []byte {
	b, _ = s.Time.AppendBinary(b)
	b = binary.AppendUvarint(b, uint64(len(s.Site)))
	return append(b, s.Site...)
}

// DecodeRecord decodes an encoded record; the value aliases b.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < 2 || b[0] != recordTag {
		return r, fmt.Errorf("%w: not a record", ErrMalformed)
	}
	flags := b[1]
	if flags&^(flagDeleted|flagCounter|flagColl) != 0 {
		return r, fmt.Errorf("%w: unknown flags %#x", ErrMalformed, flags)
	}
	b = b[2:]
	var err error
	if r.Reg.Stamp, b, err = decodeStamp(b); err != nil {
		return r, err
	}
	if r.Reg.Prev, b, err = decodeStamp(b); err != nil {
		return r, err
	}
	olsn, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) {
		return r, fmt.Errorf("%w: origin LSN", ErrMalformed)
	}
	r.Reg.OriginLSN = olsn
	b = b[n:]
	// Varints must be minimal (no 0x80 0x00 padding): one encoding per
	// record, so that equal records have equal bytes.
	exp, n := binary.Varint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) {
		return r, fmt.Errorf("%w: expiry", ErrMalformed)
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) || l > uint64(len(b)-n) {
		return r, fmt.Errorf("%w: value length", ErrMalformed)
	}
	r.Reg.ExpireAt, r.Reg.Deleted = exp, flags&flagDeleted != 0
	r.Reg.Value = b[n : n+int(l) : n+int(l)]
	b = b[n+int(l):]
	if flags&flagColl != 0 {
		if r.CollLSN, r.Coll, b, err = decodeColl(b); err != nil {
			return r, err
		}
	}
	if flags&flagCounter != 0 {
		if r.Counter, err = crdt.DecodePNCounter(b); err != nil {
			return r, fmt.Errorf("%w: counter: %v", ErrMalformed, err)
		}
	} else if len(b) != 0 {
		return r, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return r, nil
}

// decodeColl decodes a record's collection part: CollLSN, then the
// length-prefixed collection, which must not be zero (a zero collection
// is encoded by leaving the flag off: one encoding per record).
func decodeColl(b []byte) (uint64, crdt.Coll, []byte, error) {
	lsn, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) {
		return 0, crdt.Coll{}, nil, fmt.Errorf("%w: collection LSN", ErrMalformed)
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) || l > uint64(len(b)-n) {
		return 0, crdt.Coll{}, nil, fmt.Errorf("%w: collection length", ErrMalformed)
	}
	c, err := crdt.DecodeColl(b[n : n+int(l) : n+int(l)])
	if err != nil {
		return 0, crdt.Coll{}, nil, fmt.Errorf("%w: collection: %v", ErrMalformed, err)
	}
	if c.IsZero() {
		return 0, crdt.Coll{}, nil, fmt.Errorf("%w: empty collection", ErrMalformed)
	}
	return lsn, c, b[n+int(l):], nil
}

func decodeStamp(b []byte) (crdt.Stamp, []byte, error) {
	var s crdt.Stamp
	if len(b) < crdt.TimestampSize {
		return s, nil, fmt.Errorf("%w: short timestamp", ErrMalformed)
	}
	t, err := crdt.DecodeTimestamp(b[:crdt.TimestampSize])
	if err != nil {
		return s, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	b = b[crdt.TimestampSize:]
	l, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) || l > crdt.MaxIDLen || l > uint64(len(b)-n) {
		return s, nil, fmt.Errorf("%w: site length", ErrMalformed)
	}
	s.Time, s.Site = t, string(b[n:n+int(l)])
	return s, b[n+int(l):], nil
}
