package leaderless

import (
	"bytes"
	"context"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// reader serves GET with a quorum read per key (once per key: a reader
// serves one command, which sees one state of each key it reads). Scan
// lists the keys this node holds replicas of (no node sees every key;
// KEYS, SCAN and DBSIZE answer for this node's share of the ring).
type reader struct {
	e     *Engine
	ctx   context.Context
	q     Quorum
	nowMs int64
	reads map[string]State
}

var _ engine.CollReader = (*reader)(nil)

func (r *reader) NowMs() int64        { return r.nowMs }
func (r *reader) Token() engine.Token { return engine.Token{} }

// state reads key once per reader (a quorum read, with read repair).
func (r *reader) state(key []byte) (State, error) {
	if st, ok := r.reads[string(key)]; ok {
		return st, nil
	}
	st, err := r.e.readKey(r.ctx, key, r.q, true)
	if err != nil {
		return st, err
	}
	if r.reads == nil {
		r.reads = map[string]State{}
	}
	r.reads[string(key)] = st
	return st, nil
}

func (r *reader) Get(key []byte) (engine.Version, bool, error) {
	if isReserved(key) {
		return engine.Version{}, false, nil // the node's own bookkeeping, never a user key
	}
	st, err := r.state(key)
	if err != nil {
		return engine.Version{}, false, err
	}
	v, ok := st.Lookup(r.nowMs)
	return v, ok, nil
}

// GetColl returns key's collection state, live or not (the caller gets its
// own copy).
func (r *reader) GetColl(key []byte) (crdt.Coll, error) {
	if isReserved(key) {
		return crdt.Coll{}, nil
	}
	st, err := r.state(key)
	if err != nil {
		return crdt.Coll{}, err
	}
	return st.Coll.Clone(), nil
}

// Scan skips the reserved prefix (this node's hints and other
// bookkeeping): it stops at the first reserved key and resumes after the
// prefix.
func (r *reader) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	local := r.e.node.LocalRead()
	for {
		resume, err := r.scanFrom(local, start, fn)
		if err != nil || resume == nil {
			return err
		}
		start = resume
	}
}

// reservedEnd is the first key after every reserved key: the prefix with
// its last byte raised by one.
var reservedEnd = func() []byte {
	b := bytes.Clone(reservedPrefix)
	b[len(b)-1]++
	return b
}()

func (r *reader) scanFrom(local engine.Reader, start []byte, fn func(key []byte, v engine.Version) bool) (resume []byte, _ error) {
	var derr error
	err := local.Scan(start, func(key []byte, raw engine.Version) bool {
		if isReserved(key) {
			resume = reservedEnd
			return false
		}
		st, err := DecodeState(raw.Value)
		if err != nil {
			derr = err
			return false
		}
		v, live := st.Lookup(r.nowMs)
		if !live {
			return true
		}
		v.LSN = raw.LSN
		return fn(key, v)
	})
	if err != nil {
		return nil, err
	}
	return resume, derr
}
