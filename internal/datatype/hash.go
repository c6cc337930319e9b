package datatype

// Hashes: SubField + field → value; Meta.Len is the number of fields.

// HashSet sets field to value in the hash c; created reports a new field.
// A field that already holds value is left alone (a command that changes
// nothing writes nothing).
func HashSet(c *Coll, field, value []byte) (created bool, err error) {
	var old []byte
	found := false
	if c.owned { // a new hash has no fields to read
		if old, found, err = c.Get(SubField, field); err != nil {
			return false, err
		}
	}
	if found && string(old) == string(value) {
		return false, nil
	}
	if err := c.Put(SubField, field, value); err != nil {
		return false, err
	}
	if !found {
		c.Meta.Len++
	}
	return !found, nil
}

// HashDel removes field from the hash c; it reports whether it was there.
func HashDel(c *Coll, field []byte) (bool, error) {
	return remove(c, SubField, field)
}

// remove deletes element rest of sub-space sub and counts it out.
func remove(c *Coll, sub byte, rest []byte) (bool, error) {
	if !c.owned {
		return false, nil // no id yet: no elements
	}
	_, found, err := c.Get(sub, rest)
	if err != nil || !found {
		return false, err
	}
	c.Delete(sub, rest)
	c.Meta.Len--
	return true, nil
}
