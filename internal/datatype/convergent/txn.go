package convergent

import (
	"maps"
	"slices"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// Txn is an engine.TypedTxn (with the scans package datatype reads
// through) over a mode's engine.CollTxn. Get of a key holding a
// collection shows the metadata of a virtual id; element keys of that id
// read and write the key's crdt.Coll; every Coll the command changed is
// put once by Flush.
type Txn struct {
	inner engine.CollTxn
	ctr   engine.CounterTxn
	sp    space
	err   error // the first failure of a write that cannot return one
}

var (
	_ engine.TypedTxn       = (*Txn)(nil)
	_ engine.ScanTxn        = (*Txn)(nil)
	_ engine.ReverseScanner = (*Txn)(nil)
	_ engine.CounterTxn     = (*Txn)(nil)
	_ datatype.Scanner      = (*Txn)(nil)
	_ engine.Versioned      = versionedTxn{}
)

// NewTxn returns the adapter over tx when tx keeps collections as
// convergent states (an engine.CollTxn, which the modes that are one also
// make an engine.CounterTxn); ok is false otherwise, and then the mode has
// no collections. mode names the mode in errors.
func NewTxn(tx engine.Txn, mode string) (t *Txn, ok bool) {
	ct, ok1 := tx.(engine.CollTxn)
	cnt, ok2 := tx.(engine.CounterTxn)
	if !ok1 || !ok2 {
		return nil, false
	}
	return &Txn{inner: ct, ctr: cnt, sp: newSpace(mode, ct.GetColl)}, true
}

// Run runs fn as one command on tx: through a Txn when tx is a convergent
// mode's (then the collections fn changed are put once fn returns nil),
// on tx itself otherwise.
func Run(tx engine.Txn, mode string, fn func(engine.Txn) error) error {
	t, ok := NewTxn(tx, mode)
	if !ok {
		return fn(tx)
	}
	if err := fn(t.Txn()); err != nil {
		return err
	}
	return t.Flush()
}

// Txn is the transaction commands run on: t, and an engine.Versioned too
// when the mode's transaction is one (multi-leader: WATCH needs it).
func (t *Txn) Txn() engine.Txn {
	if _, ok := t.inner.(engine.Versioned); ok {
		return versionedTxn{t}
	}
	return t
}

// Unwrap is the mode's own transaction.
func (t *Txn) Unwrap() engine.Txn { return t.inner }

// Flush puts every Coll the transaction changed, once each, in key order;
// it returns the first failure of a write that could not return it.
func (t *Txn) Flush() error {
	if t.err != nil {
		return t.err
	}
	for _, k := range slices.Sorted(maps.Keys(t.sp.keys)) {
		if ks := t.sp.keys[k]; ks.dirty {
			t.inner.PutColl([]byte(k), ks.coll)
			ks.dirty = false
		}
	}
	return nil
}

func (t *Txn) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

func (t *Txn) stamp() crdt.Stamp { return t.inner.Stamp() }

func (t *Txn) NowMs() int64 { return t.inner.NowMs() }

// Get reads a user key (a collection as the metadata of its virtual id)
// or an element key.
func (t *Txn) Get(key []byte) (engine.Version, bool, error) {
	if t.err != nil {
		return engine.Version{}, false, t.err
	}
	if engine.IsReserved(key) {
		if id, sub, rest, ok := datatype.ParseElemKey(key); ok {
			v, found, err := t.sp.elemGet(id, sub, rest)
			return engine.Version{Value: v}, found, err
		}
		if datatype.IsOwnerKey(key) {
			return engine.Version{}, false, nil // ids are per transaction: no owners
		}
		return t.inner.Get(key)
	}
	if ks := t.sp.keys[string(key)]; ks != nil && ks.dirty {
		return t.overlay(key, ks)
	}
	v, ok, err := t.inner.Get(key)
	if err != nil || !ok || v.Type == engine.TypeString {
		return v, ok, err
	}
	return t.sp.bind(key, v)
}

// overlay is key as the transaction shows it when it changed key's Coll
// (not yet put): the collection if an entry is live, else the key's
// string, if the mode shows one.
func (t *Txn) overlay(key []byte, ks *keyState) (engine.Version, bool, error) {
	if ct, _, ok := ks.coll.Visible(t.NowMs()); ok {
		typ := engine.Type(ct)
		id := t.sp.bindID(string(key), ks, typ)
		return engine.Version{Type: typ, ExpireAt: ks.coll.ExpireAt(),
			Value: datatype.Meta{ID: id, Len: int64(ks.coll.Len(ct))}.Encode()}, true, nil
	}
	v, ok, err := t.inner.Get(key)
	if err != nil || !ok || v.Type != engine.TypeString {
		return engine.Version{}, false, err
	}
	return v, true, nil
}

// Set writes a string (the mode clears the key's Coll) or, for an element
// key, one field or member.
func (t *Txn) Set(key, value []byte, expireAtMs int64) {
	if t.err != nil {
		return
	}
	if engine.IsReserved(key) {
		if id, sub, rest, ok := datatype.ParseElemKey(key); ok {
			t.elemWrite(id, sub, rest, value, false)
			return
		}
		if datatype.IsOwnerKey(key) {
			return // the sweeper's records: a Coll needs no sweeping
		}
		t.inner.Set(key, value, expireAtMs) // the mode refuses it
		return
	}
	t.sp.release(key)
	t.inner.Set(key, value, expireAtMs)
}

// Del deletes a user key or one element.
//
// A key whose Coll this transaction changed (package datatype deletes a
// collection its command emptied; a DEL after writes in one MULTI) loses
// the entries the transaction sees, by removes, so that a set member added
// elsewhere concurrently survives (add-wins) however the clocks stand; a
// string the key held underneath an older collection stays. Any other key
// is deleted by the mode, which clears its Coll by time.
func (t *Txn) Del(key []byte) {
	if t.err != nil {
		return
	}
	if engine.IsReserved(key) {
		if id, sub, rest, ok := datatype.ParseElemKey(key); ok {
			t.elemWrite(id, sub, rest, nil, true)
			return
		}
		if datatype.IsOwnerKey(key) {
			return
		}
		t.inner.Del(key)
		return
	}
	if ks := t.sp.keys[string(key)]; ks != nil && ks.dirty {
		t.sp.detach(ks, true)
		t.removeAll(ks)
		return
	}
	t.sp.release(key)
	t.inner.Del(key)
}

// removeAll removes every live entry of ks's Coll.
func (t *Txn) removeAll(ks *keyState) {
	for _, ct := range allTypes {
		var members [][]byte
		ks.coll.Range(ct, nil, func(m, _ []byte) bool {
			members = append(members, m)
			return true
		})
		for _, m := range members {
			ks.coll.Remove(ct, m, t.stamp())
		}
	}
	ks.dirty = true
}

// FlushAll is the mode's (both convergent modes refuse it).
func (t *Txn) FlushAll() {
	for k := range t.sp.keys {
		t.sp.release([]byte(k))
	}
	t.inner.FlushAll()
}

// IncrBy is the mode's counter increment; on a key this transaction made a
// collection it is WRONGTYPE, as the mode answers for a stored one.
func (t *Txn) IncrBy(key []byte, delta int64) (int64, error) {
	if t.err != nil {
		return 0, t.err
	}
	if t.showsOwn(key) {
		return 0, datatype.ErrWrongType
	}
	if ks := t.sp.keys[string(key)]; ks != nil && ks.dirty {
		// Emptied here: the mode must see that before it counts.
		t.inner.PutColl(key, ks.coll)
	}
	t.sp.release(key)
	return t.ctr.IncrBy(key, delta)
}

// NewID hands out a virtual id for a collection the command creates.
func (t *Txn) NewID() (uint64, error) {
	return t.sp.newID(&binding{kind: fresh, raw: newRaw()}), nil
}

// SetTyped is package datatype's metadata write: for the id key holds, its
// expiry; for any other id (a new collection, a RENAME or COPY
// destination), a new collection at key made of that id's elements,
// stamped anew after whatever key held is cleared.
func (t *Txn) SetTyped(key []byte, typ engine.Type, value []byte, expireAtMs int64) {
	if t.err != nil {
		return
	}
	if typ == engine.TypeList {
		t.fail(t.sp.listsRefused())
		return
	}
	if _, ok := collType(typ); !ok {
		t.fail(corrupt("key %q: metadata of type %d", key, typ))
		return
	}
	m, err := datatype.DecodeMeta(value)
	if err != nil {
		t.fail(err)
		return
	}
	b := t.sp.ids[m.ID]
	if b == nil {
		t.fail(corrupt("key %q: unknown collection id %d", key, m.ID))
		return
	}
	if b.kind == attached && b.key == string(key) {
		if b.typ != typ {
			t.fail(corrupt("key %q: a %s written as a %s", key, b.typ, typ))
			return
		}
		ks := t.sp.keys[b.key]
		if ks.coll.ExpireAt() != expireAtMs {
			ks.coll.SetExpire(expireAtMs, t.stamp())
		}
		ks.dirty = true
		return
	}
	t.create(key, m.ID, b, typ, expireAtMs)
}

// create makes key a new collection of type typ holding id's elements.
func (t *Txn) create(key []byte, id uint64, b *binding, typ engine.Type, expireAtMs int64) {
	ct, _ := collType(typ)
	// The elements, read before key changes (the id may be key's own).
	type entry struct{ member, value []byte }
	var entries []entry
	switch b.kind {
	case fresh:
		for _, sub := range b.raw.subs() {
			c, derived, ok := subColl(typ, sub)
			if !ok || c != ct {
				t.fail(corrupt("key %q: a new %s with elements in sub-space %q", key, typ, sub))
				return
			}
			if derived {
				continue // the score index follows the members
			}
			b.raw.rangeFrom(sub, nil, func(rest, value []byte) bool {
				entries = append(entries, entry{rest, value})
				return true
			})
		}
	default:
		if b.typ != typ {
			t.fail(corrupt("key %q: a %s written as a %s", key, b.typ, typ))
			return
		}
		t.sp.elems(b).Range(ct, nil, func(m, v []byte) bool {
			entries = append(entries, entry{m, v})
			return true
		})
		if b.kind == attached { // moved from another key that keeps it
			t.sp.keys[b.key].id = 0
		}
	}
	// Whatever key shows goes first: a string or a collection the mode
	// stores is deleted by the mode; one this transaction made is cleared.
	_, found, err := t.Get(key)
	if err != nil {
		t.fail(err)
		return
	}
	if found && !t.showsOwn(key) {
		t.sp.release(key)
		t.inner.Del(key)
	}
	ks, err := t.sp.load(key)
	if err != nil {
		t.fail(err)
		return
	}
	t.sp.detach(ks, true)
	if !ks.coll.IsZero() {
		// Also drops what an expired or deleted collection left.
		ks.coll.Clear(t.stamp())
	}
	for _, e := range entries {
		ks.coll.Put(ct, e.member, e.value, t.stamp())
	}
	if expireAtMs != 0 {
		ks.coll.SetExpire(expireAtMs, t.stamp())
	}
	*b = binding{kind: attached, typ: typ, key: string(key), gen: b.gen + 1}
	ks.id, ks.dirty, ks.settled = id, true, true
}

// showsOwn reports whether key shows a collection this transaction
// changed (not yet put, so not the mode's to delete).
func (t *Txn) showsOwn(key []byte) bool {
	ks := t.sp.keys[string(key)]
	if ks == nil || !ks.dirty {
		return false
	}
	_, _, ok := ks.coll.Visible(t.NowMs())
	return ok
}

// elemWrite writes (or, with del, removes) one element.
func (t *Txn) elemWrite(id uint64, sub byte, rest, value []byte, del bool) {
	if sub == datatype.SubIndex {
		t.fail(t.sp.listsRefused())
		return
	}
	b := t.sp.ids[id]
	if b == nil {
		t.fail(corrupt("element of unknown collection id %d", id))
		return
	}
	b.gen++
	if b.kind == fresh {
		if del {
			b.raw.del(sub, rest)
		} else {
			b.raw.put(sub, rest, value)
		}
		return
	}
	ct, derived, ok := subColl(b.typ, sub)
	if !ok {
		t.fail(corrupt("a %s has no sub-space %q", b.typ, sub))
		return
	}
	if derived {
		return // the score index follows the members
	}
	c := t.sp.elems(b)
	if b.kind == attached {
		ks := t.sp.keys[b.key]
		t.settle(ks, ct)
		ks.dirty = true
	}
	if del {
		c.Remove(ct, rest, t.stamp())
	} else {
		c.Put(ct, rest, value, t.stamp())
	}
}

// settle drops, once, the live entries of the types other than ct: the
// command saw the key as a ct, so entries of another type written
// concurrently elsewhere (hidden by newer ones of ct) go with this write
// rather than resurface when ct's entries are gone.
func (t *Txn) settle(ks *keyState, ct crdt.CollType) {
	if ks.settled {
		return
	}
	ks.settled = true
	for _, o := range allTypes {
		if o != ct && ks.coll.Len(o) > 0 {
			ks.coll.ClearType(o, t.stamp())
		}
	}
}

// Scan lists keys in order: users' keys as the mode shows them, with the
// collections this transaction changed as it shows them; and, from inside
// the element space, the elements of the collections it read.
func (t *Txn) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	if t.err != nil {
		return t.err
	}
	return t.sp.scan(start, t.users, fn)
}

// ScanReverse is Scan in descending order, below end.
func (t *Txn) ScanReverse(end []byte, fn func(key []byte, v engine.Version) bool) error {
	if t.err != nil {
		return t.err
	}
	return t.sp.scanReverse(end, t.users, fn)
}

// users lists user keys in [start, stop) as this transaction shows them.
func (t *Txn) users(start, stop []byte, fn func([]byte, engine.Version) bool) (bool, error) {
	st, ok := t.inner.(engine.ScanTxn)
	if !ok {
		return false, errNoKeyScan
	}
	// The keys this transaction changed, as it shows them, read before
	// the scan: no read runs inside a scan's callback.
	type shown struct {
		k  string
		v  engine.Version
		ok bool
	}
	var over []shown
	for k, ks := range t.sp.keys {
		if ks.dirty && k >= string(start) && (stop == nil || k < string(stop)) {
			v, ok, err := t.overlay([]byte(k), ks)
			if err != nil {
				return false, err
			}
			over = append(over, shown{k, v, ok})
		}
	}
	slices.SortFunc(over, func(a, b shown) int {
		switch {
		case a.k < b.k:
			return -1
		case a.k > b.k:
			return 1
		}
		return 0
	})
	emit := func(s shown) bool { return !s.ok || fn([]byte(s.k), s.v) }
	i := 0
	more, err := bounded(st.Scan)(start, stop, func(k []byte, v engine.Version) bool {
		for ; i < len(over) && over[i].k < string(k); i++ {
			if !emit(over[i]) {
				return false
			}
		}
		if i < len(over) && over[i].k == string(k) {
			i++
			return emit(over[i-1])
		}
		return fn(k, v)
	})
	if err != nil || !more {
		return false, err
	}
	for ; i < len(over); i++ {
		if !emit(over[i]) {
			return false, nil
		}
	}
	return true, nil
}

// versionedTxn is a Txn over a mode's transaction that is an
// engine.Versioned: WATCH asks the mode (every Coll put is a write of the
// key, which the mode's versions show).
type versionedTxn struct{ *Txn }

func (v versionedTxn) StateLSN() uint64 { return v.inner.(engine.Versioned).StateLSN() }

func (v versionedTxn) ChangedSince(key []byte, lsn uint64) (bool, error) {
	return v.inner.(engine.Versioned).ChangedSince(key, lsn)
}
