package convergent

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// kind says where an id's elements are.
type kind uint8

const (
	// attached: the id is the collection a key holds; its elements are
	// that key's Coll (keyState.coll).
	attached kind = iota
	// fresh: an id from NewID not yet given to a key; its elements are
	// binding.raw, as package datatype wrote them.
	fresh
	// detached: the key that held the id was deleted, overwritten or
	// renamed away in this transaction; binding.coll is its Coll as it was
	// then (RENAME gives it to the destination by SetTyped).
	detached
)

// binding is what one virtual id stands for.
type binding struct {
	kind kind
	typ  engine.Type // the collection's type; unknown (0) while fresh
	key  string      // attached: the key
	coll crdt.Coll   // detached: the elements
	raw  *rawElems   // fresh: the elements
	// gen counts changes of the elements; zidx, the score index derived
	// from a sorted set's members, is valid while zgen == gen.
	gen, zgen uint64
	zidx      [][]byte
}

// keyState is one key's collection as this transaction or reader has
// read it (GetColl) and, in a transaction, changed it.
type keyState struct {
	coll crdt.Coll
	id   uint64 // the id bound to the key's collection; 0 for none
	// dirty: this transaction changed coll; it is put (PutColl) once, when
	// the command's closure returns without error.
	dirty bool
	// settled: a write of this transaction dropped the entries of the
	// types other than the one it wrote (ClearType), once.
	settled bool
}

// space is the virtual element layout of package datatype over the
// collections one transaction or reader has read: shared by Txn and
// Reader.
type space struct {
	mode    string
	getColl func(key []byte) (crdt.Coll, error)
	ids     map[uint64]*binding
	keys    map[string]*keyState
	next    uint64
}

// newSpace allocates nothing more: most commands a reader serves (GET,
// EXISTS) never read a collection, and their maps are made on first use.
func newSpace(mode string, getColl func([]byte) (crdt.Coll, error)) space {
	return space{mode: mode, getColl: getColl}
}

// newID binds a new id to b.
func (s *space) newID(b *binding) uint64 {
	if s.ids == nil {
		s.ids = map[uint64]*binding{}
	}
	s.next++
	s.ids[s.next] = b
	return s.next
}

// collType is t's crdt type; ok is false for a string or a list.
func collType(t engine.Type) (crdt.CollType, bool) {
	switch t {
	case engine.TypeHash, engine.TypeSet, engine.TypeZSet:
		return crdt.CollType(t), true
	}
	return 0, false
}

var allTypes = [...]crdt.CollType{crdt.CollHash, crdt.CollSet, crdt.CollZSet}

// subColl maps a sub-space of a collection of type t to the Coll entries
// that hold it: derived is true for a sorted set's score index (computed
// from the members, never stored); ok is false for a sub-space type t
// does not have.
func subColl(t engine.Type, sub byte) (ct crdt.CollType, derived, ok bool) {
	switch {
	case t == engine.TypeHash && sub == datatype.SubField:
		return crdt.CollHash, false, true
	case t == engine.TypeSet && sub == datatype.SubMember:
		return crdt.CollSet, false, true
	case t == engine.TypeZSet && sub == datatype.SubMember:
		return crdt.CollZSet, false, true
	case t == engine.TypeZSet && sub == datatype.SubScore:
		return crdt.CollZSet, true, true
	}
	return 0, false, false
}

// subsOf are the sub-spaces a collection of type t has, ascending.
func subsOf(t engine.Type) []byte {
	switch t {
	case engine.TypeHash:
		return []byte{datatype.SubField}
	case engine.TypeSet:
		return []byte{datatype.SubMember}
	case engine.TypeZSet:
		return []byte{datatype.SubMember, datatype.SubScore}
	}
	return nil
}

func (s *space) listsRefused() error {
	return &engine.UnsupportedError{Command: "lists (LPUSH, LRANGE, …)", Mode: s.mode,
		Why: "a list's positions written on two nodes at once need a sequence CRDT, which replicant does not have; use a sorted set"}
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", datatype.ErrCorrupt, fmt.Sprintf(format, args...))
}

// load returns key's state, reading its Coll the first time.
func (s *space) load(key []byte) (*keyState, error) {
	if ks := s.keys[string(key)]; ks != nil {
		return ks, nil
	}
	c, err := s.getColl(key)
	if err != nil {
		return nil, err
	}
	ks := &keyState{coll: c}
	if s.keys == nil {
		s.keys = map[string]*keyState{}
	}
	s.keys[string(key)] = ks
	return ks, nil
}

// bind turns v, key's version as the mode shows it (a collection: type
// and expiry, no value), into the version package datatype reads: the
// metadata of a virtual id bound to key, with the live count as length.
func (s *space) bind(key []byte, v engine.Version) (engine.Version, bool, error) {
	ct, ok := collType(v.Type)
	if !ok {
		if v.Type == engine.TypeList {
			return engine.Version{}, false, s.listsRefused()
		}
		return engine.Version{}, false, corrupt("key %q: type %d", key, v.Type)
	}
	ks, err := s.load(key)
	if err != nil {
		return engine.Version{}, false, err
	}
	id := s.bindID(string(key), ks, v.Type)
	v.Value = datatype.Meta{ID: id, Len: int64(ks.coll.Len(ct))}.Encode()
	return v, true, nil
}

// bindID returns the id bound to key's collection of type t, binding a
// new one if needed.
func (s *space) bindID(key string, ks *keyState, t engine.Type) uint64 {
	if b := s.ids[ks.id]; ks.id != 0 && b.typ == t {
		return ks.id
	}
	s.detach(ks, false)
	ks.id = s.newID(&binding{kind: attached, typ: t, key: key})
	return ks.id
}

// detach unbinds key's id, which keeps the elements the key holds now (a
// copy when the key's state stays in use).
func (s *space) detach(ks *keyState, copyColl bool) {
	if ks.id == 0 {
		return
	}
	b := s.ids[ks.id]
	b.kind, b.key, b.coll = detached, "", ks.coll
	if copyColl {
		b.coll = ks.coll.Clone()
	}
	b.gen++
	ks.id = 0
}

// release forgets key's state before a write the mode does itself (a
// string SET, a DEL, an increment): the mode's own state is then the
// truth, and the next read of key reads it again.
func (s *space) release(key []byte) {
	if ks := s.keys[string(key)]; ks != nil {
		s.detach(ks, false)
		delete(s.keys, string(key))
	}
}

// elems returns the Coll holding an attached or detached id's elements.
func (s *space) elems(b *binding) *crdt.Coll {
	if b.kind == attached {
		return &s.keys[b.key].coll
	}
	return &b.coll
}

// elemGet reads one element key.
func (s *space) elemGet(id uint64, sub byte, rest []byte) ([]byte, bool, error) {
	b := s.ids[id]
	if b == nil {
		return nil, false, nil // no collection has it: no elements
	}
	if b.kind == fresh {
		v, ok := b.raw.get(sub, rest)
		return v, ok, nil
	}
	ct, derived, ok := subColl(b.typ, sub)
	if !ok {
		return nil, false, nil
	}
	c := s.elems(b)
	if !derived {
		v, ok := c.Get(ct, rest)
		if ok && v == nil {
			v = []byte{} // a set member's value, as the store returns it
		}
		return v, ok, nil
	}
	// A score index entry exists iff its member has that score.
	if len(rest) < 8 {
		return nil, false, nil
	}
	v, ok := c.Get(ct, rest[8:])
	if !ok {
		return nil, false, nil
	}
	f, err := datatype.ZScoreOf(v)
	if err != nil {
		return nil, false, err
	}
	return []byte{}, bytes.Equal(datatype.EncodeScore(f), rest[:8]), nil
}

// zindex is a sorted set's score index, derived from its members (cached
// until they change).
func (s *space) zindex(b *binding) ([][]byte, error) {
	if b.zidx != nil && b.zgen == b.gen {
		return b.zidx, nil
	}
	c := s.elems(b)
	idx := make([][]byte, 0, c.Len(crdt.CollZSet))
	var derr error
	c.Range(crdt.CollZSet, nil, func(member, value []byte) bool {
		f, err := datatype.ZScoreOf(value)
		if err != nil {
			derr = err
			return false
		}
		idx = append(idx, datatype.ZIndexKey(f, member))
		return true
	})
	if derr != nil {
		return nil, derr
	}
	slices.SortFunc(idx, bytes.Compare)
	b.zidx, b.zgen = idx, b.gen
	return idx, nil
}

// rangeSub calls fn for id's elements of sub-space sub with suffix >= from,
// ascending; it reports whether fn asked for more.
func (s *space) rangeSub(b *binding, sub byte, from []byte, fn func(rest, value []byte) bool) (bool, error) {
	if b.kind == fresh {
		return b.raw.rangeFrom(sub, from, fn), nil
	}
	ct, derived, ok := subColl(b.typ, sub)
	if !ok {
		return true, nil
	}
	if derived {
		idx, err := s.zindex(b)
		if err != nil {
			return false, err
		}
		for i := sort.Search(len(idx), func(i int) bool { return bytes.Compare(idx[i], from) >= 0 }); i < len(idx); i++ {
			if !fn(idx[i], []byte{}) {
				return false, nil
			}
		}
		return true, nil
	}
	more := true
	s.elems(b).Range(ct, from, func(member, value []byte) bool {
		if value == nil {
			value = []byte{}
		}
		more = fn(member, value)
		return more
	})
	return more, nil
}

// rangeSubReverse is rangeSub descending, below before (all when nil).
func (s *space) rangeSubReverse(b *binding, sub byte, before []byte, fn func(rest, value []byte) bool) (bool, error) {
	if b.kind == fresh {
		return b.raw.rangeBefore(sub, before, fn), nil
	}
	ct, derived, ok := subColl(b.typ, sub)
	if !ok {
		return true, nil
	}
	if derived {
		idx, err := s.zindex(b)
		if err != nil {
			return false, err
		}
		hi := len(idx)
		if before != nil {
			hi = sort.Search(len(idx), func(i int) bool { return bytes.Compare(idx[i], before) >= 0 })
		}
		for i := hi - 1; i >= 0; i-- {
			if !fn(idx[i], []byte{}) {
				return false, nil
			}
		}
		return true, nil
	}
	more := true
	s.elems(b).RangeReverse(ct, before, func(member, value []byte) bool {
		if value == nil {
			value = []byte{}
		}
		more = fn(member, value)
		return more
	})
	return more, nil
}

func (s *space) subs(b *binding) []byte {
	if b.kind == fresh {
		return b.raw.subs()
	}
	return subsOf(b.typ)
}

// scanElems lists the virtual element keys from start (inside the element
// space) in key order; it reports whether fn asked for more. The callback
// must not write through the same transaction (package datatype never
// does: see its Walker).
func (s *space) scanElems(start []byte, fn func(k []byte, v engine.Version) bool) (bool, error) {
	for _, id := range slices.Sorted(maps.Keys(s.ids)) {
		b := s.ids[id]
		for _, sub := range s.subs(b) {
			p := datatype.ElemPrefix(id, sub)
			var from []byte
			switch {
			case bytes.Compare(start, p) <= 0:
			case bytes.HasPrefix(start, p):
				from = start[len(p):]
			default:
				continue // start is past every key of this sub-space
			}
			more, err := s.rangeSub(b, sub, from, func(rest, value []byte) bool {
				return fn(append(p[:len(p):len(p)], rest...), engine.Version{Value: value})
			})
			if err != nil || !more {
				return false, err
			}
		}
	}
	return true, nil
}

// scanElemsReverse lists the virtual element keys below end in descending
// key order; it reports whether fn asked for more.
func (s *space) scanElemsReverse(end []byte, fn func(k []byte, v engine.Version) bool) (bool, error) {
	ids := slices.Sorted(maps.Keys(s.ids))
	for i := len(ids) - 1; i >= 0; i-- {
		b := s.ids[ids[i]]
		subs := s.subs(b)
		for j := len(subs) - 1; j >= 0; j-- {
			p := datatype.ElemPrefix(ids[i], subs[j])
			var before []byte // nil: every element
			switch {
			case bytes.Compare(end, p) <= 0:
				continue
			case bytes.HasPrefix(end, p):
				if before = end[len(p):]; len(before) == 0 {
					continue
				}
			}
			more, err := s.rangeSubReverse(b, subs[j], before, func(rest, value []byte) bool {
				return fn(append(p[:len(p):len(p)], rest...), engine.Version{Value: value})
			})
			if err != nil || !more {
				return false, err
			}
		}
	}
	return true, nil
}

// errNoKeyScan: the mode's state cannot list user keys here (a
// leaderless write); a scan that started among the elements just ends.
var errNoKeyScan = errors.New("this mode cannot list keys inside a write")

// userScan lists user keys in [start, stop) (stop nil: no bound) in key
// order; it reports whether fn asked for more.
type userScan func(start, stop []byte, fn func(k []byte, v engine.Version) bool) (bool, error)

// scan is engine.ScanTxn's Scan over users' keys and the virtual
// elements, in key order.
func (s *space) scan(start []byte, users userScan, fn func(k []byte, v engine.Version) bool) error {
	es, ee := datatype.ElemSpace()
	inElems := bytes.Compare(start, es) >= 0 && bytes.Compare(start, ee) < 0
	if bytes.Compare(start, es) < 0 {
		more, err := users(start, es, fn)
		if err != nil || !more {
			return err
		}
		start = es
	}
	if bytes.Compare(start, ee) < 0 {
		more, err := s.scanElems(start, fn)
		if err != nil || !more {
			return err
		}
		start = ee
	}
	_, err := users(start, nil, fn)
	if errors.Is(err, errNoKeyScan) && inElems {
		return nil
	}
	return err
}

// scanReverse is engine.ReverseScanner's ScanReverse over the same keys.
// User keys are listed backwards by replaying a forward scan: only a
// caller that goes on past a collection's elements (none does) pays it.
func (s *space) scanReverse(end []byte, users userScan, fn func(k []byte, v engine.Version) bool) error {
	es, ee := datatype.ElemSpace()
	inElems := end != nil && bytes.Compare(end, es) > 0 && bytes.Compare(end, ee) <= 0
	if end == nil || bytes.Compare(end, ee) > 0 {
		more, err := replay(users, ee, end, fn)
		if err != nil || !more {
			return err
		}
		end = ee
	}
	if bytes.Compare(end, es) > 0 {
		more, err := s.scanElemsReverse(end, fn)
		if err != nil || !more {
			return err
		}
		end = es
	}
	_, err := replay(users, nil, end, fn)
	if errors.Is(err, errNoKeyScan) && inElems {
		return nil
	}
	return err
}

func replay(users userScan, start, stop []byte, fn func(k []byte, v engine.Version) bool) (bool, error) {
	type kv struct {
		k []byte
		v engine.Version
	}
	var all []kv
	if _, err := users(start, stop, func(k []byte, v engine.Version) bool {
		all = append(all, kv{bytes.Clone(k), v})
		return true
	}); err != nil {
		return false, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if !fn(all[i].k, all[i].v) {
			return false, nil
		}
	}
	return true, nil
}

// bounded adapts a Scan to userScan: keys from start, stopping before
// stop.
func bounded(scanFn func(start []byte, fn func([]byte, engine.Version) bool) error) userScan {
	return func(start, stop []byte, fn func([]byte, engine.Version) bool) (bool, error) {
		more := true
		err := scanFn(start, func(k []byte, v engine.Version) bool {
			if stop != nil && bytes.Compare(k, stop) >= 0 {
				return false
			}
			more = fn(k, v)
			return more
		})
		return more && err == nil, err
	}
}
