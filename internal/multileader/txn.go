package multileader

import (
	"errors"
	"fmt"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// lsnTxn is the site's write transaction as the single-leader writer
// gives it: it knows the LSN its entry will get.
type lsnTxn interface {
	engine.Txn
	LSN() uint64
}

// txn is what a client command runs against in multi-leader mode. Reads
// decode records; every write becomes a new record stamped by the site's
// hybrid logical clock, and the entry records the site's own position
// (origin key) so that other sites can say how far they applied it.
type txn struct {
	e     *Engine
	tx    lsnTxn
	wrote bool
	err   error
	// seen is the greatest stamp of every record this transaction read:
	// its writes are stamped after it (Stamp).
	seen crdt.Stamp
}

var (
	_ engine.Txn        = (*txn)(nil)
	_ engine.CounterTxn = (*txn)(nil)
	_ engine.Versioned  = (*txn)(nil)
	_ engine.ScanTxn    = (*txn)(nil)
	_ engine.CollTxn    = (*txn)(nil)
)

func (t *txn) NowMs() int64 { return t.tx.NowMs() }

// record returns key's stored record (the zero record if none).
func (t *txn) record(key []byte) (Record, error) {
	r, _, err := t.recordAt(key)
	return r, err
}

// recordAt returns key's stored record and the LSN of its version.
func (t *txn) recordAt(key []byte) (Record, uint64, error) {
	v, ok, err := t.tx.Get(key)
	if err != nil || !ok {
		return Record{}, 0, err
	}
	r, err := DecodeRecord(v.Value)
	if err != nil {
		return Record{}, 0, fmt.Errorf("multileader: key %q: %w", key, err)
	}
	if top := r.Top(); t.seen.Less(top) {
		t.seen = top
	}
	return r, v.LSN, nil
}

// Get returns key's live value as a command sees it: a string's value, or
// a collection's type and expiry.
func (t *txn) Get(key []byte) (engine.Version, bool, error) {
	if IsReserved(key) {
		return engine.Version{}, false, nil
	}
	r, lsn, err := t.recordAt(key)
	if err != nil {
		return engine.Version{}, false, err
	}
	v, ok := r.Version(lsn, t.NowMs())
	return v, ok, nil
}

// GetColl returns key's collection state, shown or not (engine.CollTxn).
// A reserved key has none.
func (t *txn) GetColl(key []byte) (crdt.Coll, error) {
	if IsReserved(key) {
		return crdt.Coll{}, nil
	}
	r, err := t.record(key)
	return r.Coll, err
}

// PutColl stores c as key's collection state; the register and counter
// stay (Record.WithColl).
func (t *txn) PutColl(key []byte, c crdt.Coll) {
	cur, ok := t.writable(key)
	if !ok {
		return
	}
	t.put(key, cur.WithColl(c, t.e.site, t.tx.LSN()))
}

// Stamp returns a new stamp, after every stamp this transaction read
// (engine.CollTxn).
func (t *txn) Stamp() crdt.Stamp {
	s := crdt.Stamp{Time: t.e.clockAfter(t.seen.Time, t.NowMs()), Site: t.e.site}
	t.seen = s
	return s
}

// StateLSN and ChangedSince delegate to the site's transaction: every
// write of a key, a delete included, stores a new record version, so the
// site's versions tell whether a watched key changed.
func (t *txn) StateLSN() uint64 {
	if v, ok := t.tx.(engine.Versioned); ok {
		return v.StateLSN()
	}
	return 0
}

func (t *txn) ChangedSince(key []byte, lsn uint64) (bool, error) {
	v, ok := t.tx.(engine.Versioned)
	if !ok {
		return true, nil // cannot tell: a spurious abort, never a missed one
	}
	return v.ChangedSince(key, lsn)
}

// Scan lists the site transaction's keys as a command sees them: records
// decoded, deleted and expired keys and the reserved prefix left out.
func (t *txn) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	st, ok := t.tx.(engine.ScanTxn)
	if !ok {
		return errors.New("multileader: the site's transaction cannot scan")
	}
	var derr error
	err := st.Scan(start, func(key []byte, v engine.Version) bool {
		if IsReserved(key) {
			return true
		}
		r, err := DecodeRecord(v.Value)
		if err != nil {
			derr = fmt.Errorf("multileader: key %q: %w", key, err)
			return false
		}
		rv, ok := r.Version(v.LSN, t.NowMs())
		if !ok {
			return true
		}
		return fn(key, rv)
	})
	if err != nil {
		return err
	}
	return derr
}

func (t *txn) reserved(key []byte) bool {
	if IsReserved(key) && t.err == nil {
		t.err = &engine.UnsupportedError{Command: "writing a key that starts with \\x00replicant\\x00", Mode: engine.ModeMultiLeader,
			Why: "that prefix holds the site's replication state"}
	}
	return IsReserved(key)
}

// writable returns key's record for a write that replaces it, or false
// when the write must not happen (an earlier error, a reserved key, a
// record that could not be read; t.err says which).
func (t *txn) writable(key []byte) (Record, bool) {
	if t.err != nil || t.reserved(key) {
		return Record{}, false
	}
	cur, err := t.record(key)
	if err != nil {
		t.err = err
		return Record{}, false
	}
	return cur, true
}

func (t *txn) put(key []byte, r Record) {
	t.tx.Set(key, AppendRecord(nil, r), 0)
	t.wrote = true
}

// Set writes value (expiry is kept in the record, not by the store, so
// an expired key keeps its stamp and a late concurrent write cannot
// resurrect an older value on one site but not another).
func (t *txn) Set(key, value []byte, expireAtMs int64) {
	cur, ok := t.writable(key)
	if !ok {
		return
	}
	// No copy of value: the record only lives to be encoded, which copies.
	// The stamp comes after everything the record holds (Stamp), so a
	// local write supersedes what it replaces even if that came from a
	// site whose clock runs ahead.
	next := cur.Set(t.Stamp(), value, expireAtMs)
	next.stampOrigin(t.tx.LSN())
	t.put(key, next)
}

// Del writes a tombstone: deletes must win over older writes arriving late.
func (t *txn) Del(key []byte) {
	cur, ok := t.writable(key)
	if !ok {
		return
	}
	if cur.Reg.Stamp.Time.IsZero() && cur.Counter.Len() == 0 && cur.Coll.IsZero() {
		return // never written here: nothing to delete
	}
	next := cur.Del(t.Stamp())
	next.stampOrigin(t.tx.LSN())
	t.put(key, next)
	t.tx.Set(tombKey(key), nil, 0) // collected once every site has it (gc.go)
}

// FlushAll is refused: a convergent flush would have to delete, on every
// site, exactly the writes the flushing site had seen, which a per-key
// record cannot express without scanning every key into the entry.
func (t *txn) FlushAll() {
	if t.err == nil {
		t.err = &engine.UnsupportedError{Command: "FLUSHALL/FLUSHDB", Mode: engine.ModeMultiLeader,
			Why: "a flush cannot be merged with concurrent writes on other sites; delete keys instead"}
	}
}

// IncrBy adds delta to key's counter under this site's id; a key holding
// a collection answers engine.ErrWrongType.
func (t *txn) IncrBy(key []byte, delta int64) (int64, error) {
	if t.err != nil {
		return 0, t.err
	}
	if t.reserved(key) {
		return 0, t.err
	}
	cur, err := t.record(key)
	if err != nil {
		return 0, err
	}
	next, res, err := cur.IncrBy(t.e.site, t.Stamp(), delta, t.NowMs())
	if err != nil {
		return 0, err // engine.ErrNotInteger, ErrOverflow or engine.ErrWrongType, as the APIs answer them
	}
	if next.Reg.Stamp != cur.Reg.Stamp {
		next.stampOrigin(t.tx.LSN()) // an expired key was deleted first
	}
	t.put(key, next)
	return res, nil
}

// finish records the site's own position in the entry, if it writes.
func (t *txn) finish() error {
	if t.err != nil {
		return t.err
	}
	if t.wrote {
		t.tx.Set(originKey(t.e.site), formatU64(t.tx.LSN()), 0)
	}
	return nil
}
