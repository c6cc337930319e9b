package engine

// ReverseScanner is implemented by the Readers and Txns that can list keys
// in descending order (single-leader's). The sorted-set commands that walk
// from the highest score (ZREVRANGE, ZPOPMAX, ZREVRANK) use it to read only
// what they return; over a Reader or Txn without it they fall back to a
// forward scan of the whole range (internal/datatype).
type ReverseScanner interface {
	// ScanReverse calls fn for live, unexpired keys below end (every key
	// when end is nil) in descending key order until fn returns false.
	ScanReverse(end []byte, fn func(key []byte, v Version) bool) error
}
