package datatype

import (
	"fmt"

	"github.com/replicant-db/replicant/internal/engine"
)

// View is a collection read from one consistent state (a Reader, or a
// write's Txn before it writes).
type View struct {
	s    Scanner
	Key  []byte
	Type engine.Type
	Meta Meta
	// ExpireAt is the collection's expiry (its metadata's), 0 for none.
	ExpireAt int64
}

// Read opens the collection of type t at key for reading: found is false
// when the key does not exist; ErrWrongType when it holds another type.
func Read(s Scanner, key []byte, t engine.Type) (*View, bool, error) {
	v, ok, err := s.Get(key)
	if err != nil || !ok {
		return nil, false, err
	}
	m, _, err := metaOf(key, v, t)
	if err != nil {
		return nil, false, err
	}
	return &View{s: s, Key: key, Type: t, Meta: m, ExpireAt: v.ExpireAt}, true, nil
}

// Get reads one element.
func (v *View) Get(sub byte, rest []byte) ([]byte, bool, error) {
	ver, ok, err := v.s.Get(ElemKey(v.Meta.ID, sub, rest))
	if err != nil || !ok {
		return nil, false, err
	}
	return ver.Value, true, nil
}

// Scan lists elements of sub-space sub from the suffix from (see ScanElems).
func (v *View) Scan(sub byte, from []byte, fn func(rest, value []byte) bool) error {
	return ScanElems(v.s, v.Meta.ID, sub, from, fn)
}

// Coll is a collection opened for writing inside one write command. The
// command reads and changes elements and Meta.Len through it, then calls
// Save, which writes the metadata if it changed (or deletes the key when
// the collection became empty).
type Coll struct {
	View
	tx     engine.TypedTxn
	exists bool // the key held this collection before the command
	orig   Meta
	owned  bool // the id and its owner record exist
	// touched: an element was written or deleted since the last Save, so
	// the metadata is written even if unchanged — a change to a field's
	// value is a change to the key (WATCH sees writes of the key only).
	touched bool
}

// Open opens the collection of type t at key in tx for writing. A key that
// does not exist opens as an empty collection (Exists false), created by
// the first Put. ErrWrongType when the key holds another type;
// ErrUnsupported (wrapped, naming nothing: the caller names the mode) when
// the mode's Txn cannot store collections.
func Open(tx engine.Txn, key []byte, t engine.Type) (*Coll, error) {
	tt, ok := tx.(engine.TypedTxn)
	if !ok {
		return nil, ErrUnsupported
	}
	s, ok := tx.(Scanner)
	if !ok {
		return nil, ErrUnsupported
	}
	c := &Coll{tx: tt, View: View{s: s, Key: append([]byte(nil), key...), Type: t}}
	v, found, err := tx.Get(key)
	if err != nil {
		return nil, err
	}
	if found {
		m, _, err := metaOf(key, v, t)
		if err != nil {
			return nil, err
		}
		c.Meta, c.orig, c.ExpireAt = m, m, v.ExpireAt
		c.exists, c.owned = true, true
	}
	return c, nil
}

// Exists reports whether the collection existed before this command.
func (c *Coll) Exists() bool { return c.exists }

// own gives a new collection its id (and the owner record the sweeper
// reads) before its first element is written.
func (c *Coll) own() error {
	if c.owned {
		return nil
	}
	id, err := c.tx.NewID()
	if err != nil {
		return err
	}
	c.Meta.ID, c.owned = id, true
	c.tx.Set(ownerKey(id), c.Key, 0)
	return nil
}

// Put writes one element (the caller adjusts Meta.Len).
func (c *Coll) Put(sub byte, rest, value []byte) error {
	if err := c.own(); err != nil {
		return err
	}
	c.tx.Set(ElemKey(c.Meta.ID, sub, rest), value, 0)
	c.touched = true
	return nil
}

// Delete removes one element (the caller adjusts Meta.Len).
func (c *Coll) Delete(sub byte, rest []byte) {
	if !c.owned {
		return
	}
	c.tx.Del(ElemKey(c.Meta.ID, sub, rest))
	c.touched = true
}

// Save writes the metadata if the command changed it or an element: the
// key is deleted when the collection became empty (its remaining element
// keys, if any, are the sweeper's), created or updated otherwise, keeping
// its expiry.
func (c *Coll) Save() error {
	switch {
	case c.Meta.Len < 0:
		return fmt.Errorf("%w: key %q: length %d", ErrCorrupt, c.Key, c.Meta.Len)
	case c.Meta.Len == 0:
		if c.exists {
			c.tx.Del(c.Key)
			c.exists = false
		}
	case !c.exists || c.Meta != c.orig || c.touched:
		c.tx.SetTyped(c.Key, c.Type, c.Meta.Encode(), c.ExpireAt)
		c.exists = true
	}
	c.orig, c.touched = c.Meta, false
	return nil
}

// Rename moves the collection v read in tx from its key to dst (whatever
// dst held is replaced), keeping its expiry unless expireAt >= 0 (then
// that one), in O(1): the elements stay under their id, only the metadata
// and the owner record move. It is RENAME's part for collections.
func Rename(tx engine.Txn, src []byte, v engine.Version, dst []byte) error {
	tt, ok := tx.(engine.TypedTxn)
	if !ok {
		return ErrUnsupported
	}
	m, err := DecodeMeta(v.Value)
	if err != nil {
		return fmt.Errorf("key %q: %w", src, err)
	}
	tx.Del(src)
	tt.SetTyped(dst, v.Type, v.Value, v.ExpireAt)
	tx.Set(ownerKey(m.ID), dst, 0)
	return nil
}

// Copy copies the collection v at src to dst under a new id (COPY): every
// element is written again, as Redis's COPY duplicates the value.
func Copy(tx engine.Txn, src []byte, v engine.Version, dst []byte) error {
	tt, ok := tx.(engine.TypedTxn)
	if !ok {
		return ErrUnsupported
	}
	s, ok := tx.(Scanner)
	if !ok {
		return ErrUnsupported
	}
	m, err := DecodeMeta(v.Value)
	if err != nil {
		return fmt.Errorf("key %q: %w", src, err)
	}
	id, err := tt.NewID()
	if err != nil {
		return err
	}
	from, to := idPrefix(m.ID), idPrefix(id)
	type kv struct{ k, v []byte }
	var elems []kv
	err = s.Scan(from, func(k []byte, ev engine.Version) bool {
		if len(k) < len(from) || string(k[:len(from)]) != string(from) {
			return false
		}
		nk := append(append([]byte(nil), to...), k[len(from):]...)
		elems = append(elems, kv{nk, append([]byte(nil), ev.Value...)})
		return true
	})
	if err != nil {
		return err
	}
	for _, e := range elems {
		tx.Set(e.k, e.v, 0)
	}
	nm := m
	nm.ID = id
	tx.Set(ownerKey(id), dst, 0)
	tt.SetTyped(dst, v.Type, nm.Encode(), v.ExpireAt)
	return nil
}

// SetMeta rewrites a collection's metadata with a new expiry (EXPIRE,
// PERSIST, GETEX-like commands on any key): the value and type stay.
func SetMeta(tx engine.Txn, key []byte, v engine.Version, expireAt int64) error {
	tt, ok := tx.(engine.TypedTxn)
	if !ok {
		return ErrUnsupported
	}
	tt.SetTyped(key, v.Type, v.Value, expireAt)
	return nil
}
