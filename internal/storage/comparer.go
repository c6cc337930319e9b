package storage

import (
	"github.com/cockroachdb/pebble/v2"
)

// comparer orders keys bytewise like Pebble's default, and tells Pebble
// where a version key's user-key prefix ends (before the 8-byte ^LSN
// suffix). With that, prefix bloom filters let a read of one key skip every
// sstable that holds no version of it: without them each read probes every
// overlapping L0 file, which dominated write-heavy workloads.
//
// The name is persisted in the database: never change it for an existing
// layout.
var comparer = func() *pebble.Comparer {
	c := *pebble.DefaultComparer
	c.Name = "replicant.keys.v1"
	c.Split = splitKey
	return &c
}()

// splitKey returns the length of a key's prefix: everything but the version
// suffix for a version key (family, escaped key, 0x00 0x01 terminator, then
// 8 bytes), the whole key otherwise. The terminator 0x00 0x01 appears only
// at the end of an escaped key, so prefix-only keys are never mistaken for
// full version keys.
func splitKey(k []byte) int {
	n := len(k)
	if n >= 11 && k[0] == famVersion && k[n-10] == 0x00 && k[n-9] == 0x01 {
		return n - 8
	}
	return n
}
