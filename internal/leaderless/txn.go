package leaderless

import (
	"context"
	"errors"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// txn is what a client command runs against in leaderless mode: reads are
// quorum reads (remembered, so that a write supersedes exactly what the
// command read: its causal context), writes are collected and sent once
// the command returns without error.
type txn struct {
	e      *Engine
	ctx    context.Context
	q      Quorum
	nowMs  int64
	reads  map[string]State
	writes []write
	err    error
}

type write struct {
	key      []byte
	value    []byte
	deleted  bool
	expireAt int64
}

var (
	_ engine.Txn        = (*txn)(nil)
	_ engine.CounterTxn = (*txn)(nil)
)

func (t *txn) NowMs() int64 { return t.nowMs }

// state reads key once per command (a quorum read).
func (t *txn) state(key []byte) (State, error) {
	if st, ok := t.reads[string(key)]; ok {
		return st, nil
	}
	st, err := t.e.readKey(t.ctx, key, t.q, false)
	if err != nil {
		return st, err
	}
	t.reads[string(key)] = st
	return st, nil
}

func (t *txn) Get(key []byte) (engine.Version, bool, error) {
	if isReserved(key) {
		return engine.Version{}, false, nil // the node's own bookkeeping, never a user key
	}
	for i := len(t.writes) - 1; i >= 0; i-- { // the command's own writes first
		if w := t.writes[i]; string(w.key) == string(key) {
			if w.deleted {
				return engine.Version{}, false, nil
			}
			return engine.Version{Value: w.value, ExpireAt: w.expireAt}, true, nil
		}
	}
	st, err := t.state(key)
	if err != nil {
		return engine.Version{}, false, err
	}
	v, exp, live := st.Visible(t.nowMs)
	if !live {
		return engine.Version{}, false, nil
	}
	return engine.Version{Value: v, ExpireAt: exp}, true, nil
}

// prepare reads key before its first write, so that the write supersedes
// what a quorum shows now (a blind SET would otherwise pile up siblings).
func (t *txn) prepare(key []byte) bool {
	if t.err != nil {
		return false
	}
	if t.reserved(key) {
		return false
	}
	if _, err := t.state(key); err != nil {
		t.err = err
		return false
	}
	return true
}

func (t *txn) Set(key, value []byte, expireAtMs int64) {
	if t.prepare(key) {
		t.record(write{key: append([]byte(nil), key...), value: append([]byte(nil), value...), expireAt: expireAtMs})
	}
}

func (t *txn) Del(key []byte) {
	if t.prepare(key) {
		t.record(write{key: append([]byte(nil), key...), deleted: true})
	}
}

// record keeps the command's last write of each key only: two writes of
// one key (MSET k a k b) sent with the same read context would become
// siblings of each other.
func (t *txn) record(w write) {
	for i := range t.writes {
		if string(t.writes[i].key) == string(w.key) {
			t.writes[i] = w
			return
		}
	}
	t.writes = append(t.writes, w)
}

// reserved refuses a write of a key in the reserved prefix.
func (t *txn) reserved(key []byte) bool {
	if !isReserved(key) {
		return false
	}
	if t.err == nil {
		t.err = &engine.UnsupportedError{Command: "writing a key that starts with \\x00replicant\\x00", Mode: engine.ModeLeaderless,
			Why: "that prefix holds the node's own state (hints)"}
	}
	return true
}

func (t *txn) FlushAll() {
	if t.err == nil {
		t.err = &engine.UnsupportedError{Command: "FLUSHALL/FLUSHDB", Mode: engine.ModeLeaderless,
			Why: "no node sees every key; delete keys instead"}
	}
}

// IncrBy has one replica add delta under its own id (its counter entry
// has one writer, with durable state, so no increment is lost), then
// stores the result on the others.
func (t *txn) IncrBy(key []byte, delta int64) (int64, error) {
	if t.err != nil || t.reserved(key) {
		return 0, t.err
	}
	resp, err := t.e.writeKey(t.ctx, key, t.q, &pb.ReplicaRequest{Op: pb.ReplicaRequest_INCR, Delta: delta})
	if err != nil {
		return 0, err
	}
	switch resp.Refusal {
	case "":
	case ErrNotInteger.Error():
		return 0, engine.ErrNotInteger
	case ErrOverflow.Error():
		return 0, engine.ErrOverflow
	default:
		return 0, errors.New(resp.Refusal)
	}
	return resp.Result, nil
}
