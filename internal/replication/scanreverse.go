package replication

import (
	"slices"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

var (
	_ engine.ReverseScanner = (*Reader)(nil)
	_ engine.ReverseScanner = (*Txn)(nil)
)

// ScanReverse calls fn for live, unexpired keys below end (every key when
// end is nil) in descending key order until fn returns false.
func (r *Reader) ScanReverse(end []byte, fn func(key []byte, v engine.Version) bool) error {
	return r.Store.ScanReverse(r.LSN, end, func(k []byte, v storage.Version) bool {
		if v.Expired(r.ClockMs) {
			return true
		}
		return fn(k, asVersion(v))
	})
}

// ScanReverse is Scan backwards: the keys of the proposal's state below
// end (every key when end is nil), newest versions merged with the batch's
// and the proposal's own writes, in descending key order.
func (t *Txn) ScanReverse(end []byte, fn func(key []byte, v engine.Version) bool) error {
	over, flushed := t.overlay()
	keys := make([]string, 0, len(over))
	for k := range over {
		if end == nil || k < string(end) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	stopped := false
	// emit offers fn one key of the overlay; false once fn stops.
	emit := func(k string) bool {
		v := over[k]
		if v.Deleted || v.Expired(t.nowMs) {
			return true
		}
		if !fn([]byte(k), asVersion(v)) {
			stopped = true
		}
		return !stopped
	}
	i := 0
	if !flushed {
		err := t.store.ScanReverse(storage.Latest, end, func(k []byte, v storage.Version) bool {
			for ; i < len(keys) && keys[i] > string(k); i++ {
				if !emit(keys[i]) {
					return false
				}
			}
			if i < len(keys) && keys[i] == string(k) {
				i++
				return emit(string(k)) // the newer write replaces the stored one
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
