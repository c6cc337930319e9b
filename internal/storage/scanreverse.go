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
// ordered newest first, ^lsn), and each step back is a newer one: the
// newest at or below at is the last seen before a newer one or the next
// key. So a key with one version costs one step, as Scan's costs one seek;
// versions above at (rare: a read behind the newest writes) are skipped
// with a SeekLT.
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
	var raw []byte // the newest visible version's record, copied
	valid := it.Last()
	for valid {
		if s.draining.Load() {
			return ErrReopening
		}
		key, lsn, ok := parseVersionKey(it.Key())
		if !ok {
			return s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", it.Key())})
		}
		p := versionPrefix(key)
		found, foundLSN := false, uint64(0)
		for {
			if lsn > at {
				// This version and every one still ahead are newer than at.
				valid = it.SeekLT(p)
				break
			}
			raw, found, foundLSN = append(raw[:0], it.Value()...), true, lsn
			if valid = it.Prev(); !valid || !bytes.HasPrefix(it.Key(), p) {
				break
			}
			if len(it.Key()) != len(p)+8 {
				return s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", it.Key())})
			}
			lsn = ^binary.BigEndian.Uint64(it.Key()[len(p):])
		}
		if found {
			v, ok := decodeVersion(raw)
			if !ok {
				return s.corrupt(&CorruptionError{Dir: s.dir, LSN: foundLSN, Err: fmt.Errorf("bad version record for key %q", key)})
			}
			if !v.Deleted && foundLSN >= floor {
				v.LSN = foundLSN
				v.Value = append([]byte(nil), v.Value...)
				if !fn(key, v) {
					return nil
				}
			}
		}
	}
	return s.readErr(it.Error())
}
