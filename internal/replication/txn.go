package replication

import (
	"bytes"
	"fmt"
	"slices"

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
	ops   []storage.Op
	nowMs int64
	lsn   uint64 // the LSN this proposal's entry gets if it writes
	// The proposal's own writes are read back from ops: most proposals
	// write one key, and a map per proposal was a measurable share of the
	// write path's allocations. A proposal with many ops (a DEL or MSET of
	// thousands of keys reads each key first) gets an index instead of
	// quadratic scans.
	idx     map[string]int // key -> position in ops[:idxUpTo], after flushAt
	idxUpTo int
	flushAt int // 1 + position of the last FLUSH in ops[:idxUpTo]; 0 if none
	ids     int // collection ids handed out (NewID)
}

// indexFrom is how many unindexed ops a lookup scans before indexing.
const indexFrom = 16

// NowMs is the leader's clock for this proposal, in Unix milliseconds. Use it
// for every expiry decision so the entry is self-consistent.
func (t *Txn) NowMs() int64 { return t.nowMs }

// LSN is the LSN this proposal's entry gets if it writes anything: a mode
// that records its own writes' positions in the same entry (multi-leader's
// origins) needs it before the entry exists.
func (t *Txn) LSN() uint64 { return t.lsn }

// Get returns key's live, unexpired value.
func (t *Txn) Get(key []byte) (engine.Version, bool, error) {
	v, ok, hit := t.own(key)
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

// own looks key up in this proposal's writes: (version, live, decided).
func (t *Txn) own(key []byte) (storage.Version, bool, bool) {
	if len(t.ops)-t.idxUpTo > indexFrom {
		t.index()
	}
	for i := len(t.ops) - 1; i >= t.idxUpTo; i-- {
		if v, ok, hit := opVersion(&t.ops[i], key); hit {
			return v, ok, true
		}
	}
	if i, found := t.idx[string(key)]; found {
		v, ok, _ := opVersion(&t.ops[i], key)
		return v, ok, true
	}
	if t.flushAt > 0 {
		return storage.Version{}, false, true
	}
	return storage.Version{}, false, false
}

func (t *Txn) index() {
	if t.idx == nil {
		t.idx = make(map[string]int, len(t.ops))
	}
	for i := t.idxUpTo; i < len(t.ops); i++ {
		op := &t.ops[i]
		if op.Kind == storage.OpFlush {
			clear(t.idx)
			t.flushAt = i + 1
			continue
		}
		t.idx[string(op.Key)] = i
	}
	t.idxUpTo = len(t.ops)
}

// opVersion is what op says about key: (version, live, decided).
func opVersion(op *storage.Op, key []byte) (storage.Version, bool, bool) {
	switch {
	case op.Kind == storage.OpFlush:
		return storage.Version{}, false, true
	case !bytes.Equal(op.Key, key):
		return storage.Version{}, false, false
	case op.Kind == storage.OpDel:
		return storage.Version{Deleted: true}, false, true
	}
	return storage.Version{Value: op.Value, ExpireAt: op.ExpireAt, Type: op.Type}, true, true
}

var _ engine.Txn = (*Txn)(nil)

// asVersion is a stored version as commands see it.
func asVersion(v storage.Version) engine.Version {
	return engine.Version{LSN: v.LSN, Value: v.Value, ExpireAt: v.ExpireAt, Deleted: v.Deleted, Type: engine.Type(v.Type)}
}

var _ engine.Versioned = (*Txn)(nil)

// StateLSN is the newest position this proposal sees: the store's last
// entry (committed or not) and the earlier proposals of its batch.
func (t *Txn) StateLSN() uint64 { return t.lsn - 1 }

// ChangedSince reports whether key was written after lsn: by this
// proposal, by an earlier one of its batch (their entries come after
// everything stored), or by a stored entry, committed or not.
func (t *Txn) ChangedSince(key []byte, lsn uint64) (bool, error) {
	for i := range t.ops {
		if op := &t.ops[i]; op.Kind != storage.OpFlush && bytes.Equal(op.Key, key) {
			return true, nil
		}
	}
	if _, ok := t.group.vals[string(key)]; ok {
		return true, nil
	}
	return t.store.ChangedSince(key, lsn, storage.Latest)
}

var _ engine.ScanTxn = (*Txn)(nil)

// Scan calls fn for the live, unexpired keys of the proposal's state from
// start in key order: the store's newest versions merged with the writes
// of the batch's earlier proposals and of this one.
func (t *Txn) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	keys, flushed := t.overlayKeys(func(k string) bool { return k >= string(start) })
	slices.Sort(keys)
	keys = slices.Compact(keys)
	stopped := false
	// emit offers fn one key of the overlay; false once fn stops.
	emit := func(k string) bool {
		v, live := t.overlayGet(k)
		if !live || v.Expired(t.nowMs) {
			return true
		}
		if !fn([]byte(k), asVersion(v)) {
			stopped = true
		}
		return !stopped
	}
	i := 0
	if !flushed {
		err := t.store.Scan(storage.Latest, start, func(k []byte, v storage.Version) bool {
			for ; i < len(keys) && keys[i] < string(k); i++ {
				if !emit(keys[i]) {
					return false
				}
			}
			if i < len(keys) && keys[i] == string(k) {
				i++
				return emit(keys[i-1]) // the newer write replaces the stored one
			}
			if v.Expired(t.nowMs) {
				return true
			}
			if !fn(k, asVersion(v)) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil || stopped {
			return err
		}
	}
	for ; i < len(keys); i++ {
		if !emit(keys[i]) {
			return nil
		}
	}
	return nil
}

// overlayKeys lists the keys that in reports true for among those the
// batch's earlier proposals and this one wrote (tombstones included, in no
// order, possibly repeated), and whether one of them flushed everything
// stored. It copies no values: a scan is often one pop or one range read
// in a batch of many writes, and the per-scan copy of the batch's writes
// was most of such a command's cost.
func (t *Txn) overlayKeys(in func(string) bool) ([]string, bool) {
	flushed := t.group.flushed
	from := 0 // this proposal's ops after its last FLUSH
	for i := len(t.ops) - 1; i >= 0; i-- {
		if t.ops[i].Kind == storage.OpFlush {
			from, flushed = i+1, true
			break
		}
	}
	var keys []string
	if from == 0 {
		// Without a FLUSH of its own, the earlier proposals' writes show.
		for k := range t.group.vals {
			if in(k) {
				keys = append(keys, k)
			}
		}
	}
	for i := from; i < len(t.ops); i++ {
		if k := string(t.ops[i].Key); in(k) {
			keys = append(keys, k)
		}
	}
	return keys, flushed
}

// overlayGet is the version of a key overlayKeys listed, and whether it
// is live.
func (t *Txn) overlayGet(k string) (storage.Version, bool) {
	key := []byte(k)
	if v, live, hit := t.own(key); hit {
		return v, live
	}
	v, live, _ := t.group.get(key)
	return v, live
}

// Set stores value under key; expireAtMs 0 means no expiry.
func (t *Txn) Set(key, value []byte, expireAtMs int64) {
	k := append([]byte(nil), key...)
	v := append([]byte{}, value...)
	t.ops = append(t.ops, storage.Op{Kind: storage.OpSet, Key: k, Value: v, ExpireAt: expireAtMs})
}

var _ engine.TypedTxn = (*Txn)(nil)

// SetTyped stores a collection's metadata value of type typ under key.
func (t *Txn) SetTyped(key []byte, typ engine.Type, value []byte, expireAtMs int64) {
	k := append([]byte(nil), key...)
	v := append([]byte{}, value...)
	t.ops = append(t.ops, storage.Op{Kind: storage.OpSet, Key: k, Value: v, ExpireAt: expireAtMs, Type: uint8(typ)})
}

// idSeqBits is how many collections one entry may create: an id is the
// entry's LSN and a sequence number within it, unique because an LSN
// names one entry (an LSN reused after a rollback is reused with the
// rolled-back entry's collections gone with it).
const idSeqBits = 20

// NewID returns an identifier for a collection this proposal creates.
func (t *Txn) NewID() (uint64, error) {
	if t.ids >= 1<<idSeqBits {
		return 0, fmt.Errorf("a single write may create at most %d collections", 1<<idSeqBits)
	}
	t.ids++
	return t.lsn<<idSeqBits | uint64(t.ids-1), nil
}

// Del removes key (a no-op in the log if it is already absent is the
// caller's choice; Del always writes a tombstone).
func (t *Txn) Del(key []byte) {
	k := append([]byte(nil), key...)
	t.ops = append(t.ops, storage.Op{Kind: storage.OpDel, Key: k})
}

// FlushAll removes every key.
func (t *Txn) FlushAll() {
	t.ops = append(t.ops, storage.Op{Kind: storage.OpFlush})
}

// mergeInto adds this proposal's writes to the batch's layer, for the
// proposals after it.
func (t *Txn) mergeInto(g *layer) {
	for i := range t.ops {
		op := &t.ops[i]
		switch op.Kind {
		case storage.OpFlush:
			g.vals = map[string]storage.Version{}
			g.flushed = true
		case storage.OpDel:
			g.vals[string(op.Key)] = storage.Version{Deleted: true}
		default:
			g.vals[string(op.Key)] = storage.Version{Value: op.Value, ExpireAt: op.ExpireAt, Type: op.Type}
		}
	}
}
