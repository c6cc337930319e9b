package datatype

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/replicant-db/replicant/internal/engine"
)

// Sets: SubMember + member → ""; Meta.Len is the number of members.

// SetAdd adds member to the set c; it reports whether it was new.
func SetAdd(c *Coll, member []byte) (bool, error) {
	if c.owned {
		found, err := c.Has(SubMember, member)
		if err != nil || found {
			return false, err
		}
	}
	if err := c.Put(SubMember, member, nil); err != nil {
		return false, err
	}
	c.Meta.Len++
	return true, nil
}

// SetRem removes member from the set c; it reports whether it was there.
func SetRem(c *Coll, member []byte) (bool, error) {
	return remove(c, SubMember, member)
}

// SetPop removes up to k members of the set c chosen at random and
// returns them. The choice is made here, on the leader's write path; the
// log records the deletions, so every replica removes the same members.
// Popping every member deletes the key in O(1) (its element keys are the
// sweeper's).
func SetPop(c *Coll, rng *rand.Rand, k int64) ([][]byte, error) {
	picked, err := c.RandomDistinct(rng, SubMember, k)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(picked))
	for i, e := range picked {
		out[i] = e.Rest
	}
	if int64(len(picked)) >= c.Meta.Len {
		c.Meta.Len = 0
		return out, nil
	}
	for _, e := range picked {
		c.Delete(SubMember, e.Rest)
	}
	c.Meta.Len -= int64(len(picked))
	return out, nil
}

// Has reports whether element rest of sub-space sub exists.
func (v *View) Has(sub byte, rest []byte) (bool, error) {
	_, found, err := v.Get(sub, rest)
	return found, err
}

// SetInter calls fn with each member of the intersection of sets (none
// nil: a missing set makes the intersection empty, which the caller
// knows), in the key order of the smallest set, until fn returns false.
// It walks the smallest set and tests each member in the others.
func SetInter(sets []*View, fn func(member []byte) bool) error {
	if len(sets) == 0 {
		return nil
	}
	sets = slices.Clone(sets)
	slices.SortStableFunc(sets, func(a, b *View) int { return cmp.Compare(a.Meta.Len, b.Meta.Len) })
	w := sets[0].Walk(SubMember, nil)
	for {
		e, ok := w.Next()
		if !ok {
			return w.Err()
		}
		in := true
		for _, o := range sets[1:] {
			if o.Meta.ID == sets[0].Meta.ID {
				continue // the same set named twice
			}
			found, err := o.Has(SubMember, e.Rest)
			if err != nil {
				return err
			}
			if !found {
				in = false
				break
			}
		}
		if in && !fn(e.Rest) {
			return nil
		}
	}
}

// SetUnion returns the members of any of sets (nil ones are missing
// keys), in key order.
func SetUnion(sets []*View) ([][]byte, error) {
	seen := map[string]bool{}
	var out [][]byte
	for _, s := range sets {
		if s == nil {
			continue
		}
		w := s.Walk(SubMember, nil)
		for {
			e, ok := w.Next()
			if !ok {
				break
			}
			if !seen[string(e.Rest)] {
				seen[string(e.Rest)] = true
				out = append(out, e.Rest)
			}
		}
		if err := w.Err(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return out, nil
}

// SetDiff returns the members of sets[0] in none of the others (nil ones
// are missing keys), in key order. It walks the first set and tests each
// member in the others.
func SetDiff(sets []*View) ([][]byte, error) {
	if len(sets) == 0 || sets[0] == nil {
		return nil, nil
	}
	var out [][]byte
	w := sets[0].Walk(SubMember, nil)
	for {
		e, ok := w.Next()
		if !ok {
			return out, w.Err()
		}
		in := false
		for _, o := range sets[1:] {
			if o == nil {
				continue
			}
			found, err := o.Has(SubMember, e.Rest)
			if err != nil {
				return nil, err
			}
			if found {
				in = true
				break
			}
		}
		if !in {
			out = append(out, e.Rest)
		}
	}
}

// StoreSet makes dst a new set (a new id) of members, which are distinct,
// replacing whatever dst held; no members deletes dst. It is the write of
// SINTERSTORE, SUNIONSTORE and SDIFFSTORE, called after the result was
// read (dst may be one of the sources).
func StoreSet(tx engine.Txn, dst []byte, members [][]byte) error {
	_, found, err := tx.Get(dst)
	if err != nil {
		return err
	}
	if found {
		tx.Del(dst)
	}
	if len(members) == 0 {
		return nil
	}
	c, err := Open(tx, dst, engine.TypeSet)
	if err != nil {
		return err
	}
	for _, m := range members {
		if err := c.Put(SubMember, m, nil); err != nil {
			return err
		}
	}
	c.Meta.Len = int64(len(members))
	return c.Save()
}
