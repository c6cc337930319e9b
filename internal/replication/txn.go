package replication

import (
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

// layer is a set of pending writes over the store: values by key, and
// whether everything below it was flushed.
type layer struct {
	vals    map[string]storage.Version
	flushed bool
}

func (l *layer) get(key []byte) (storage.Version, bool, bool) {
	if v, ok := l.vals[string(key)]; ok {
		return v, !v.Deleted, true
	}
	if l.flushed {
		return storage.Version{}, false, true
	}
	return storage.Version{}, false, false
}

// Txn is the view a write proposal runs against on the leader: the newest
// state including entries not yet committed (so read-modify-write commands
// never lose updates), plus the writes of earlier proposals in the same
// group-commit batch. Its writes become one log entry, applied atomically.
type Txn struct {
	store *storage.Store
	group *layer // earlier proposals of this batch
	own   layer  // this proposal
	ops   []storage.Op
	nowMs int64
}

// NowMs is the leader's clock for this proposal, in Unix milliseconds. Use it
// for every expiry decision so the entry is self-consistent.
func (t *Txn) NowMs() int64 { return t.nowMs }

// Get returns key's live, unexpired value.
func (t *Txn) Get(key []byte) (engine.Version, bool, error) {
	v, ok, hit := t.own.get(key)
	if !hit {
		v, ok, hit = t.group.get(key)
	}
	if !hit {
		var err error
		v, ok, err = t.store.Get(key, storage.Latest)
		if err != nil {
			return engine.Version{}, false, err
		}
	}
	if !ok || v.Expired(t.nowMs) {
		return engine.Version{}, false, nil
	}
	return asVersion(v), true, nil
}

var _ engine.Txn = (*Txn)(nil)

// asVersion is a stored version as commands see it.
func asVersion(v storage.Version) engine.Version {
	return engine.Version{LSN: v.LSN, Value: v.Value, ExpireAt: v.ExpireAt, Deleted: v.Deleted}
}

// Set stores value under key; expireAtMs 0 means no expiry.
func (t *Txn) Set(key, value []byte, expireAtMs int64) {
	k := append([]byte(nil), key...)
	v := append([]byte{}, value...)
	t.ops = append(t.ops, storage.Op{Kind: storage.OpSet, Key: k, Value: v, ExpireAt: expireAtMs})
	t.own.vals[string(k)] = storage.Version{Value: v, ExpireAt: expireAtMs}
}

// Del removes key (a no-op in the log if it is already absent is the
// caller's choice; Del always writes a tombstone).
func (t *Txn) Del(key []byte) {
	k := append([]byte(nil), key...)
	t.ops = append(t.ops, storage.Op{Kind: storage.OpDel, Key: k})
	t.own.vals[string(k)] = storage.Version{Deleted: true}
}

// FlushAll removes every key.
func (t *Txn) FlushAll() {
	t.ops = append(t.ops, storage.Op{Kind: storage.OpFlush})
	t.own = layer{vals: map[string]storage.Version{}, flushed: true}
}

func (t *Txn) mergeInto(g *layer) {
	if t.own.flushed {
		g.vals = map[string]storage.Version{}
		g.flushed = true
	}
	for k, v := range t.own.vals {
		g.vals[k] = v
	}
}
