package leaderless

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/replicant-db/replicant/internal/crdt"
)

// State is what a replica stores under a user key: the key's siblings
// (dotted version vectors: concurrent writes are kept side by side) and a
// PN-counter for INCR and friends. Replicas exchange whole states and merge
// them (read repair, the coordinator's fan-out); Merge is a join.
type State struct {
	Sibs    crdt.Siblings
	Counter crdt.PNCounter
}

// Merge joins two states.
func (s State) Merge(o State) State {
	return State{Sibs: s.Sibs.Merge(o.Sibs), Counter: s.Counter.Merge(o.Counter)}
}

// Equal reports whether two states are the same.
func (s State) Equal(o State) bool { return s.Sibs.Equal(o.Sibs) && s.Counter.Equal(o.Counter) }

// IsZero reports whether nothing was ever written.
func (s State) IsZero() bool { return s.Sibs.Len() == 0 && s.Counter.Len() == 0 }

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

// Visible is what a plain GET answers: the winner sibling's value (the
// greatest stamp), plus the counter's increments when the winner holds an
// integer or is a tombstone, as in multi-leader mode. live is false for a
// key deleted, expired or never written.
func (s State) Visible(nowMs int64) (value []byte, expireAt int64, live bool) {
	w, ok := s.Sibs.Winner()
	regLive := false
	if ok && !w.Deleted {
		v, exp, vok := unpackValue(w.Value)
		if vok && (exp == 0 || exp > nowMs) {
			value, expireAt, regLive = v, exp, true
		}
	}
	if !s.Counter.Active() {
		return value, expireAt, regLive
	}
	var base int64
	if regLive {
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return value, expireAt, true // a string wins over concurrent increments
		}
		base = n
	}
	c, err := s.Counter.Value()
	if err != nil {
		return []byte(s.Counter.Text()), expireAt, true
	}
	sum := base + c
	if (c > 0 && sum < base) || (c < 0 && sum > base) {
		return []byte(s.Counter.Text()), expireAt, true
	}
	return strconv.AppendInt(nil, sum, 10), expireAt, true
}

// Siblings lists the live values of the siblings, for REPLICANT.SIBLINGS
// (tombstones and expired values are not shown, but their writes stay in
// the context).
func (s State) Siblings(nowMs int64) [][]byte {
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

// Errors of a counter increment (answered as Redis does).
var (
	ErrNotInteger = errors.New("value is not an integer or out of range")
	ErrOverflow   = errors.New("increment or decrement would overflow")
)

// IncrBy adds delta under replica (the node applying it, the counter
// entry's only writer) and returns the new state and value.
func (s State) IncrBy(replica string, delta int64, nowMs int64) (State, int64, error) {
	v, _, live := s.Visible(nowMs)
	var cur int64
	if live {
		n, err := strconv.ParseInt(string(v), 10, 64)
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

// stateTag starts every encoded state (type and layout version).
const stateTag = 0xB1

// AppendState appends s's encoding: the tag, the siblings' length and
// encoding, then the counter's encoding (empty when never incremented).
func AppendState(b []byte, s State) []byte {
	sb, _ := s.Sibs.AppendBinary(nil) // encoding into a fresh slice cannot fail
	b = append(b, stateTag)
	b = binary.AppendUvarint(b, uint64(len(sb)))
	b = append(b, sb...)
	if s.Counter.Len() > 0 {
		b, _ = s.Counter.AppendBinary(b)
	}
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
	if b[0] != stateTag {
		return s, fmt.Errorf("%w: tag %#x", ErrMalformed, b[0])
	}
	l, n := binary.Uvarint(b[1:])
	if n <= 0 || l > uint64(len(b)-1-n) {
		return s, fmt.Errorf("%w: siblings length", ErrMalformed)
	}
	body := b[1+n : 1+n+int(l)]
	rest := b[1+n+int(l):]
	var err error
	if s.Sibs, err = crdt.DecodeSiblings(body); err != nil {
		return s, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rest) > 0 {
		if s.Counter, err = crdt.DecodePNCounter(rest); err != nil {
			return s, fmt.Errorf("%w: counter: %v", ErrMalformed, err)
		}
	}
	return s, nil
}
