//go:build !unix

package storage

import "sync/atomic"

// allocBloomBits returns words zeroed bit words for b (see the unix
// version, which maps them outside the Go heap).
func allocBloomBits(_ *bloomSet, words int64) []atomic.Uint64 {
	return make([]atomic.Uint64, words)
}
