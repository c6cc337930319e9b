//go:build unix

package storage

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// allocRowRing returns n zeroed bytes for c's rings, mapped outside the Go
// heap (as the presence filter's bits, for the same reason: in the heap
// they would also raise the collector's target by their size). The mapping
// is released once c is unreachable.
func allocRowRing(c *rowCache, n int) []byte {
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n) // no mapping: the heap will do
	}
	runtime.AddCleanup(c, func(m []byte) { _ = unix.Munmap(m) }, mem)
	return mem
}
