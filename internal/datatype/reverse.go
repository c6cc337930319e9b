package datatype

import (
	"bytes"

	"github.com/replicant-db/replicant/internal/engine"
)

// ScanElemsReverse calls fn with the suffix and value of id's elements in
// sub-space sub whose suffix is below before (every element when before is
// nil), in descending key order, until fn returns false or the sub-space
// ends.
//
// Over a Scanner that is an engine.ReverseScanner it reads only what fn
// takes. Over any other it scans the range forward and replays it
// backwards: O(range), the cost every caller documents.
func ScanElemsReverse(s Scanner, id uint64, sub byte, before []byte, fn func(rest, value []byte) bool) error {
	p := ElemPrefix(id, sub)
	var end []byte
	if before == nil {
		// The first key after the sub-space: sub-space bytes are letters,
		// never 0xFF, so the increment does not carry.
		end = append([]byte(nil), p...)
		end[len(end)-1]++
	} else {
		end = append(append([]byte(nil), p...), before...)
	}
	if rs, ok := s.(engine.ReverseScanner); ok {
		return rs.ScanReverse(end, func(k []byte, v engine.Version) bool {
			if !bytes.HasPrefix(k, p) {
				return false
			}
			return fn(k[len(p):], v.Value)
		})
	}
	type kv struct{ rest, value []byte }
	var all []kv
	err := s.Scan(p, func(k []byte, v engine.Version) bool {
		if !bytes.HasPrefix(k, p) || bytes.Compare(k, end) >= 0 {
			return false
		}
		all = append(all, kv{append([]byte(nil), k[len(p):]...), v.Value})
		return true
	})
	if err != nil {
		return err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if !fn(all[i].rest, all[i].value) {
			return nil
		}
	}
	return nil
}
