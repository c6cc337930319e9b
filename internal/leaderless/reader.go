package leaderless

import (
	"bytes"
	"context"

	"github.com/replicant-db/replicant/internal/engine"
)

// reader serves GET with a quorum read per key. Scan lists the keys this
// node holds replicas of (no node sees every key; KEYS, SCAN and DBSIZE
// answer for this node's share of the ring).
type reader struct {
	e     *Engine
	ctx   context.Context
	q     Quorum
	nowMs int64
}

func (r *reader) NowMs() int64        { return r.nowMs }
func (r *reader) Token() engine.Token { return engine.Token{} }

func (r *reader) Get(key []byte) (engine.Version, bool, error) {
	if isReserved(key) {
		return engine.Version{}, false, nil // the node's own bookkeeping, never a user key
	}
	st, err := r.e.readKey(r.ctx, key, r.q, true)
	if err != nil {
		return engine.Version{}, false, err
	}
	v, exp, live := st.Visible(r.nowMs)
	if !live {
		return engine.Version{}, false, nil
	}
	return engine.Version{Value: v, ExpireAt: exp}, true, nil
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
		v, exp, live := st.Visible(r.nowMs)
		if !live {
			return true
		}
		return fn(key, engine.Version{LSN: raw.LSN, Value: v, ExpireAt: exp})
	})
	if err != nil {
		return nil, err
	}
	return resume, derr
}
