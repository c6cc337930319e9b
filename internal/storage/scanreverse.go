package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ScanReverse calls fn, in descending key order, for every key below end
// (every key when end is nil) with a live version at LSN at, until fn
// returns false. It sees what Scan sees, in the opposite order: the
// sorted-set commands that walk from the highest score (ZREVRANGE,
// ZPOPMAX) read only what they return instead of the whole set.
//
// Walking backwards lands on a key's oldest version first (versions are
// ordered newest first, ^lsn): each key costs a SeekGE to its newest
// version at or below at and a SeekLT past its versions, as Scan's jump
// does when a key's newest versions are above at.
func (s *Store) ScanReverse(at uint64, end []byte, fn func(key []byte, v Version) bool) error {
	done, err := s.reader()
	if err != nil {
		return err
	}
	defer done()
	// Escaping preserves order, so every version of a key below end sorts
	// below end's version prefix, and every version of end at or above it.
	upper := []byte{famVersion + 1}
	if end != nil {
		upper = versionPrefix(end)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: upper})
	if err != nil {
		return s.readErr(err)
	}
	defer it.Close()
	floor := s.flushFloor(at)
	valid := it.Last()
	for valid {
		if s.draining.Load() {
			return ErrReopening
		}
		key, _, ok := parseVersionKey(it.Key())
		if !ok {
			return s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", it.Key())})
		}
		p := versionPrefix(key)
		if it.SeekGE(binary.BigEndian.AppendUint64(p, ^at)) && bytes.HasPrefix(it.Key(), p) {
			_, lsn, _ := parseVersionKey(it.Key())
			v, ok := decodeVersion(it.Value())
			if !ok {
				return s.corrupt(&CorruptionError{Dir: s.dir, LSN: lsn, Err: fmt.Errorf("bad version record for key %q", key)})
			}
			if !v.Deleted && lsn >= floor {
				v.LSN = lsn
				v.Value = append([]byte(nil), v.Value...)
				if !fn(key, v) {
					return nil
				}
			}
		} else if err := it.Error(); err != nil {
			return s.readErr(err)
		}
		valid = it.SeekLT(p)
	}
	return s.readErr(it.Error())
}
