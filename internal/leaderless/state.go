package leaderless

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// State is what a replica stores under a user key: the key's siblings
// (dotted version vectors: concurrent writes are kept side by side), a
// PN-counter for INCR and friends, and the key's collection (hash, set,
// sorted set) as one convergent value. Replicas exchange whole states and
// merge them (read repair, the coordinator's fan-out, anti-entropy, hints,
// rebalancing); Merge is a join, component by component.
type State struct {
	Sibs    crdt.Siblings
	Counter crdt.PNCounter
	Coll    crdt.Coll
}

// Merge joins two states.
func (s State) Merge(o State) State {
	return State{Sibs: s.Sibs.Merge(o.Sibs), Counter: s.Counter.Merge(o.Counter), Coll: s.Coll.Join(o.Coll)}
}

// Equal reports whether two states are the same.
func (s State) Equal(o State) bool {
	return s.Sibs.Equal(o.Sibs) && s.Counter.Equal(o.Counter) && s.Coll.Equal(o.Coll)
}

// IsZero reports whether nothing was ever written.
func (s State) IsZero() bool { return s.Sibs.Len() == 0 && s.Counter.Len() == 0 && s.Coll.IsZero() }

// Top is the greatest stamp the state holds (its siblings' and its
// collection's): a clock that observed it stamps every later write above
// everything in the state.
func (s State) Top() crdt.Stamp {
	top := s.Coll.Top()
	for _, x := range s.Sibs.Values() {
		if st := x.Stamp(); top.Less(st) {
			top = st
		}
	}
	return top
}

// A sibling's value packs the expiry with the bytes a client wrote:
// uvarint expireAt (Unix ms, 0 = never), then the value.
func packValue(value []byte, expireAt int64) []byte {
	b := binary.AppendUvarint(make([]byte, 0, len(value)+binary.MaxVarintLen64), uint64(max(expireAt, 0)))
	return append(b, value...)
}

func unpackValue(b []byte) (value []byte, expireAt int64, ok bool) {
	e, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, 0, false
	}
	return b[n:], int64(e), true
}

// Lookup is what the key holds at nowMs: a string (Value set), a
// collection (Type set, Value nil, ExpireAt the collection's), or nothing
// (false). The collection side is the type of its newest live entry; the
// string side is the winner sibling (with the counter, see Visible). When
// both are live the newer wins: the winner sibling's stamp against the
// collection's newest entry. A string made of increments alone has no
// stamp, so a live collection wins over it.
func (s State) Lookup(nowMs int64) (engine.Version, bool) {
	value, expireAt, live, stamp := s.str(nowMs)
	if t, newest, ok := s.Coll.Visible(nowMs); ok && !(live && newest.Less(stamp)) {
		return engine.Version{Type: engine.Type(t), ExpireAt: s.Coll.ExpireAt()}, true
	}
	if !live {
		return engine.Version{}, false
	}
	return engine.Version{Value: value, ExpireAt: expireAt}, true
}

// Visible is what a plain GET answers when the key holds a string (see
// Lookup): the winner sibling's value (the greatest stamp), plus the
// counter's increments when the winner holds an integer or is a
// tombstone, as in multi-leader mode. live is false for a key deleted,
// expired, never written, or holding a collection.
func (s State) Visible(nowMs int64) (value []byte, expireAt int64, live bool) {
	v, ok := s.Lookup(nowMs)
	if !ok || v.Type != engine.TypeString {
		return nil, 0, false
	}
	return v.Value, v.ExpireAt, true
}

// str is the string side alone, whatever the collection holds, and the
// stamp of the winner sibling when it is live (the zero Stamp for a value
// made of increments alone).
func (s State) str(nowMs int64) (value []byte, expireAt int64, live bool, stamp crdt.Stamp) {
	w, ok := s.Sibs.Winner()
	regLive := false
	if ok && !w.Deleted {
		v, exp, vok := unpackValue(w.Value)
		if vok && (exp == 0 || exp > nowMs) {
			value, expireAt, regLive, stamp = v, exp, true, w.Stamp()
		}
	}
	if !s.Counter.Active() {
		return value, expireAt, regLive, stamp
	}
	var base int64
	if regLive {
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return value, expireAt, true, stamp // a string wins over concurrent increments
		}
		base = n
	}
	c, err := s.Counter.Value()
	if err != nil {
		return []byte(s.Counter.Text()), expireAt, true, stamp
	}
	sum := base + c
	if (c > 0 && sum < base) || (c < 0 && sum > base) {
		return []byte(s.Counter.Text()), expireAt, true, stamp
	}
	return strconv.AppendInt(nil, sum, 10), expireAt, true, stamp
}

// Siblings lists the live values of the siblings, for REPLICANT.SIBLINGS
// (tombstones and expired values are not shown, but their writes stay in
// the context). A key that holds a collection (Lookup) shows none: its
// string values are hidden behind the newer collection.
func (s State) Siblings(nowMs int64) [][]byte {
	if v, ok := s.Lookup(nowMs); ok && v.Type != engine.TypeString {
		return nil
	}
	var out [][]byte
	for _, x := range s.Sibs.Values() {
		if x.Deleted {
			continue
		}
		v, exp, ok := unpackValue(x.Value)
		if ok && (exp == 0 || exp > nowMs) {
			out = append(out, v)
		}
	}
	return out
}

// Errors of a counter increment (answered as Redis does). A replica
// sends their text back as a refusal.
var (
	ErrNotInteger = errors.New("value is not an integer or out of range")
	ErrOverflow   = errors.New("increment or decrement would overflow")
	ErrWrongType  = errors.New("the key holds a collection")
)

// IncrBy adds delta under replica (the node applying it, the counter
// entry's only writer) and returns the new state and value. A key that
// holds a collection refuses (ErrWrongType): its counter would be hidden
// behind the collection.
func (s State) IncrBy(replica string, delta int64, nowMs int64) (State, int64, error) {
	v, live := s.Lookup(nowMs)
	if live && v.Type != engine.TypeString {
		return s, 0, ErrWrongType
	}
	var cur int64
	if live {
		n, err := strconv.ParseInt(string(v.Value), 10, 64)
		if err != nil {
			return s, 0, ErrNotInteger
		}
		cur = n
	}
	res := cur + delta
	if (delta > 0 && res < cur) || (delta < 0 && res > cur) {
		return s, 0, ErrOverflow
	}
	c, err := s.Counter.Increment(replica, delta)
	if err != nil {
		return s, 0, ErrOverflow
	}
	s.Counter = c
	return s, res, nil
}

// stateTag starts every encoded state without a collection (type and
// layout version); stateCollTag one with a collection. A state without
// one encodes exactly as before collections existed, so stored states,
// hints and Merkle hashes of string keys are unchanged.
const (
	stateTag     = 0xB1
	stateCollTag = 0xB2
)

// AppendState appends s's encoding, which is canonical (equal states
// encode to equal bytes: anti-entropy compares hashes of encodings).
// Without a collection: the tag, the siblings' length and encoding, then
// the counter's encoding (empty when never incremented). With one: the
// collection tag, the siblings' length and encoding, the counter's length
// and encoding, then the collection's encoding.
func AppendState(b []byte, s State) []byte {
	// Encoding into a fresh slice cannot fail: the errors are
	// encoding.BinaryAppender's signature.
	sb, _ := s.Sibs.AppendBinary(nil)
	if s.Coll.IsZero() {
		b = append(b, stateTag)
		b = binary.AppendUvarint(b, uint64(len(sb)))
		b = append(b, sb...)
		if s.Counter.Len() > 0 {
			b, _ = s.Counter.AppendBinary(b)
		}
		return b
	}
	var cb []byte
	if s.Counter.Len() > 0 {
		cb, _ = s.Counter.AppendBinary(nil)
	}
	b = append(b, stateCollTag)
	b = binary.AppendUvarint(b, uint64(len(sb)))
	b = append(b, sb...)
	b = binary.AppendUvarint(b, uint64(len(cb)))
	b = append(b, cb...)
	b, _ = s.Coll.AppendBinary(b)
	return b
}

// ErrMalformed is wrapped by decoding errors.
var ErrMalformed = errors.New("leaderless: malformed state")

// DecodeState decodes AppendState's output; empty input is the zero state.
func DecodeState(b []byte) (State, error) {
	var s State
	if len(b) == 0 {
		return s, nil
	}
	if b[0] != stateTag && b[0] != stateCollTag {
		return s, fmt.Errorf("%w: tag %#x", ErrMalformed, b[0])
	}
	body, rest, ok := cutLength(b[1:])
	if !ok {
		return s, fmt.Errorf("%w: siblings length", ErrMalformed)
	}
	var err error
	if s.Sibs, err = crdt.DecodeSiblings(body); err != nil {
		return s, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	counter := rest
	if b[0] == stateCollTag {
		if counter, rest, ok = cutLength(rest); !ok {
			return s, fmt.Errorf("%w: counter length", ErrMalformed)
		}
	}
	if len(counter) > 0 {
		if s.Counter, err = crdt.DecodePNCounter(counter); err != nil {
			return s, fmt.Errorf("%w: counter: %v", ErrMalformed, err)
		}
	}
	if b[0] == stateCollTag {
		if s.Coll, err = crdt.DecodeColl(rest); err != nil {
			return s, fmt.Errorf("%w: collection: %v", ErrMalformed, err)
		}
		if s.Coll.IsZero() {
			// AppendState writes the plain tag then: accepting this
			// would give one state two encodings.
			return s, fmt.Errorf("%w: collection tag with an empty collection", ErrMalformed)
		}
	}
	return s, nil
}

// cutLength splits a uvarint length and that many bytes off b.
func cutLength(b []byte) (body, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	return b[n : n+int(l)], b[n+int(l):], true
}
