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
	keys, flushed := t.overlayKeys(func(k string) bool { return end == nil || k < string(end) })
	slices.Sort(keys)
	keys = slices.Compact(keys)
	slices.Reverse(keys)
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
		err := t.store.ScanReverse(storage.Latest, end, func(k []byte, v storage.Version) bool {
			for ; i < len(keys) && keys[i] > string(k); i++ {
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
