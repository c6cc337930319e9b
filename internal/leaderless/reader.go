package leaderless

import (
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
	st, err := r.e.readKey(r.ctx, key, r.q)
	if err != nil {
		return engine.Version{}, false, err
	}
	v, exp, live := st.Visible(r.nowMs)
	if !live {
		return engine.Version{}, false, nil
	}
	return engine.Version{Value: v, ExpireAt: exp}, true, nil
}

func (r *reader) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	var derr error
	err := r.e.node.LocalRead().Scan(start, func(key []byte, raw engine.Version) bool {
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
		return err
	}
	return derr
}
