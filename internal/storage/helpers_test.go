package storage

import "bytes"

// sameEntry compares entries treating nil and empty byte slices as equal.
func sameEntry(a, b Entry) bool {
	if a.LSN != b.LSN || a.Epoch != b.Epoch || a.Time != b.Time || len(a.Ops) != len(b.Ops) {
		return false
	}
	for i := range a.Ops {
		x, y := a.Ops[i], b.Ops[i]
		if x.Kind != y.Kind || x.ExpireAt != y.ExpireAt || !bytes.Equal(x.Key, y.Key) || !bytes.Equal(x.Value, y.Value) {
			return false
		}
	}
	return true
}
