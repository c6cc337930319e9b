//go:build !unix

package storage

// allocRowRing returns n zeroed bytes for c's rings (see the unix version,
// which maps them outside the Go heap).
func allocRowRing(_ *rowCache, n int) []byte { return make([]byte, n) }
