package leaderless

import (
	"context"
	"errors"

	"github.com/replicant-db/replicant/internal/crdt"
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
	// seen is the greatest stamp the command read or put (Stamp issues
	// after it), kept as it goes so that Stamp is O(1).
	seen crdt.Stamp
}

// write is the command's last write of one key: a string write (Set or
// Del: the replica stamps it, UPDATE), a new collection state (joined into
// the replicas' states, STORE), or both (a Set or Del that cleared the
// collection it read, or a collection written after a Del).
type write struct {
	key      []byte
	str      bool // a Set or Del
	value    []byte
	deleted  bool
	expireAt int64
	coll     *crdt.Coll // nil: the collection is left as the replicas hold it
}

var (
	_ engine.Txn        = (*txn)(nil)
	_ engine.CounterTxn = (*txn)(nil)
	_ engine.CollTxn    = (*txn)(nil)
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
	t.see(st.Top())
	return st, nil
}

func (t *txn) see(s crdt.Stamp) {
	if t.seen.Less(s) {
		t.seen = s
	}
}

// pending is the command's write of key, nil if none.
func (t *txn) pending(key []byte) *write {
	for i := range t.writes {
		if string(t.writes[i].key) == string(key) {
			return &t.writes[i]
		}
	}
	return nil
}

// view is key's state as the command left it: what it read, with its own
// writes applied (a string write shown by its value alone, since the
// replica that stamps it is not known yet).
func (t *txn) view(key []byte) (State, *write, error) {
	st, err := t.state(key)
	if err != nil {
		return st, nil, err
	}
	w := t.pending(key)
	if w == nil {
		return st, nil, nil
	}
	if w.coll != nil {
		st.Coll = *w.coll
	}
	if w.str {
		st.Sibs, st.Counter = crdt.Siblings{}, crdt.PNCounter{} // replaced (or deleted) by the command
	}
	return st, w, nil
}

func (t *txn) Get(key []byte) (engine.Version, bool, error) {
	if isReserved(key) {
		return engine.Version{}, false, nil // the node's own bookkeeping, never a user key
	}
	st, w, err := t.view(key)
	if err != nil {
		return engine.Version{}, false, err
	}
	if w != nil && w.str && !w.deleted {
		// Set cleared the collection the command had: the value is
		// what the key holds.
		return engine.Version{Value: w.value, ExpireAt: w.expireAt}, true, nil
	}
	v, ok := st.Lookup(t.nowMs)
	return v, ok, nil
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
		t.recordString(write{key: append([]byte(nil), key...), str: true, value: append([]byte(nil), value...), expireAt: expireAtMs})
	}
}

func (t *txn) Del(key []byte) {
	if t.prepare(key) {
		t.recordString(write{key: append([]byte(nil), key...), str: true, deleted: true})
	}
}

// recordString records a Set or Del of w.key. It also clears, at a stamp
// of its own, the collection the command saw under the key (read or
// written): a string or a delete replaces a collection. Entries stamped
// later by writes the command did not see survive the clear, and the key
// shows whichever side is newer (State.Lookup). A key that never held a
// collection gets no collection state.
func (t *txn) recordString(w write) {
	st, _, err := t.view(w.key)
	if err != nil {
		t.err = err
		return
	}
	if !st.Coll.IsZero() {
		c := st.Coll.Clone()
		c.Clear(t.Stamp())
		w.coll = &c
	}
	t.record(w)
}

// record keeps the command's last write of each key only: two writes of
// one key (MSET k a k b) sent with the same read context would become
// siblings of each other.
func (t *txn) record(w write) {
	if p := t.pending(w.key); p != nil {
		*p = w
		return
	}
	t.writes = append(t.writes, w)
}

// GetColl returns key's collection state as the command sees it (read
// once per command, with a quorum read, then the command's own PutColl),
// live or not. The caller gets its own copy.
func (t *txn) GetColl(key []byte) (crdt.Coll, error) {
	if isReserved(key) {
		return crdt.Coll{}, nil // the node's own bookkeeping, never a user key
	}
	st, _, err := t.view(key)
	if err != nil {
		return crdt.Coll{}, err
	}
	return st.Coll.Clone(), nil
}

// PutColl queues c as key's new collection state, sent with the command's
// other writes once it returns: the replicas join it into what they hold
// (a write never overwrites a replica's state). A string value the
// command wrote to key before is replaced by a delete: the command's last
// word on the key is the collection, and a live string stamped by the
// replica after c's entries would hide it.
func (t *txn) PutColl(key []byte, c crdt.Coll) {
	if !t.prepare(key) {
		return
	}
	c = c.Clone()
	t.see(c.Top())
	if p := t.pending(key); p != nil {
		if p.str {
			p.value, p.deleted, p.expireAt = nil, true, 0
		}
		p.coll = &c
		return
	}
	t.writes = append(t.writes, write{key: append([]byte(nil), key...), coll: &c})
}

// Stamp issues a stamp from this node's clock, after observing every stamp
// the command read or wrote, so that what the command writes is newer than
// what it saw.
func (t *txn) Stamp() crdt.Stamp {
	return crdt.Stamp{Time: t.e.nowAfter(t.seen), Site: t.e.node.ID()}
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
// stores the result on the others. The key is read first (a quorum read)
// and what the read saw is merged into the replica before it adds: a
// collection or a non-integer string acknowledged on W replicas is then
// refused even by a replica it has not reached yet.
func (t *txn) IncrBy(key []byte, delta int64) (int64, error) {
	if !t.prepare(key) {
		return 0, t.err
	}
	st, w, err := t.view(key)
	if err != nil {
		return 0, err
	}
	if v, ok := st.Lookup(t.nowMs); ok && v.Type != engine.TypeString {
		return 0, engine.ErrWrongType
	}
	// The replica merges what the command read and the collection it
	// changed (a collection it emptied no longer holds the key).
	sent := t.reads[string(key)]
	if w != nil && w.coll != nil {
		sent.Coll = sent.Coll.Join(*w.coll)
	}
	resp, err := t.e.writeKey(t.ctx, key, t.q, &pb.ReplicaRequest{Op: pb.ReplicaRequest_INCR, Delta: delta,
		State: AppendState(nil, sent)})
	if err != nil {
		return 0, err
	}
	switch resp.Refusal {
	case "":
	case ErrWrongType.Error():
		return 0, engine.ErrWrongType
	case ErrNotInteger.Error():
		return 0, engine.ErrNotInteger
	case ErrOverflow.Error():
		return 0, engine.ErrOverflow
	default:
		return 0, errors.New(resp.Refusal)
	}
	return resp.Result, nil
}
