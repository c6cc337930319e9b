// Package memstate is an in-memory engine.TypedTxn and engine.Reader for
// the tests of packages built on internal/datatype: one map of versions,
// scanned in key order, with expiry judged at a settable clock.
package memstate

import (
	"slices"

	"github.com/replicant-db/replicant/internal/engine"
)

// State is the whole key space. Its zero value is empty and ready.
type State struct {
	vals  map[string]engine.Version
	Clock int64 // NowMs
	next  uint64
	// Writes counts Set, SetTyped and Del calls.
	Writes int
}

var (
	_ engine.TypedTxn       = (*State)(nil)
	_ engine.ScanTxn        = (*State)(nil)
	_ engine.Reader         = (*State)(nil)
	_ engine.ReverseScanner = (*State)(nil)
)

// Get returns key's live, unexpired version.
func (s *State) Get(key []byte) (engine.Version, bool, error) {
	v, ok := s.vals[string(key)]
	if !ok || v.Expired(s.Clock) {
		return engine.Version{}, false, nil
	}
	return v, true, nil
}

func (s *State) put(key []byte, v engine.Version) {
	if s.vals == nil {
		s.vals = map[string]engine.Version{}
	}
	s.Writes++
	s.vals[string(key)] = v
}

// Set stores a string.
func (s *State) Set(key, value []byte, expireAtMs int64) {
	s.put(key, engine.Version{Value: append([]byte{}, value...), ExpireAt: expireAtMs})
}

// SetTyped stores a value of type t.
func (s *State) SetTyped(key []byte, t engine.Type, value []byte, expireAtMs int64) {
	s.put(key, engine.Version{Value: append([]byte{}, value...), ExpireAt: expireAtMs, Type: t})
}

// Del removes key.
func (s *State) Del(key []byte) {
	s.Writes++
	delete(s.vals, string(key))
}

// FlushAll removes every key.
func (s *State) FlushAll() {
	s.Writes++
	clear(s.vals)
}

// NowMs is the state's clock.
func (s *State) NowMs() int64 { return s.Clock }

// NewID hands out ids 1, 2, …
func (s *State) NewID() (uint64, error) {
	s.next++
	return s.next, nil
}

// Token is the zero token.
func (s *State) Token() engine.Token { return engine.Token{} }

// Scan calls fn for live, unexpired keys from start in key order.
func (s *State) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	keys := make([]string, 0, len(s.vals))
	for k := range s.vals {
		if k >= string(start) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := s.vals[k]
		if v.Expired(s.Clock) {
			continue
		}
		if !fn([]byte(k), v) {
			return nil
		}
	}
	return nil
}

// ScanReverse calls fn for live, unexpired keys below end (every key when
// end is nil) in descending key order.
func (s *State) ScanReverse(end []byte, fn func(key []byte, v engine.Version) bool) error {
	keys := make([]string, 0, len(s.vals))
	for k := range s.vals {
		if end == nil || k < string(end) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	for _, k := range keys {
		v := s.vals[k]
		if v.Expired(s.Clock) {
			continue
		}
		if !fn([]byte(k), v) {
			return nil
		}
	}
	return nil
}

// Len is the number of stored keys, reserved ones included.
func (s *State) Len() int { return len(s.vals) }
