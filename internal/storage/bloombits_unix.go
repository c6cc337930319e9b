//go:build unix

package storage

import (
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// allocBloomBits returns words zeroed bit words for b, mapped outside the
// Go heap. The filter is the store's largest allocation (12.5 MB per 10
// million keys, and twice that while a larger one is built): in the heap
// it also raised the collector's target by its size, so it cost about
// double its size in resident memory. The mapping is released once b is
// unreachable (a rebuilt filter replaces it while readers may still hold
// the old one).
func allocBloomBits(b *bloomSet, words int64) []atomic.Uint64 {
	mem, err := unix.Mmap(-1, 0, int(words*8), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]atomic.Uint64, words) // no mapping: the heap will do
	}
	runtime.AddCleanup(b, func(m []byte) { _ = unix.Munmap(m) }, mem)
	return unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&mem[0])), words)
}
