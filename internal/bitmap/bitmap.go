// Package bitmap holds the bit arithmetic of Redis's bitmap commands on
// plain byte strings: single bits, population counts and searches over bit
// ranges, bitwise operations between strings, and integer fields of 1 to
// 64 bits with Redis's overflow rules (BITFIELD).
//
// Invariants:
//   - Bits are numbered as Redis numbers them: bit 0 is the most
//     significant bit of byte 0, bit 8 the most significant of byte 1.
//   - A string is an infinite run of zero bits past its end: reads past
//     the end see zeros, and nothing here grows a string (callers size
//     the result, so that they can check it against their limits first).
//   - Functions never modify their inputs except the destination they are
//     given (SetBit, PutUint).
//
// The package is pure: no I/O, no clocks, no allocation beyond results.
package bitmap

import (
	"encoding/binary"
	"math/bits"
)

// Bit returns the bit at offset off of b (0 past the end).
func Bit(b []byte, off uint64) int {
	i := off >> 3
	if i >= uint64(len(b)) {
		return 0
	}
	return int(b[i]>>(7-off&7)) & 1
}

// SetBit sets the bit at offset off of b to v (0 or 1); b must hold it.
func SetBit(b []byte, off uint64, v int) {
	mask := byte(1) << (7 - off&7)
	if v != 0 {
		b[off>>3] |= mask
	} else {
		b[off>>3] &^= mask
	}
}

// Count returns the number of set bits at offsets lo to hi (inclusive) of
// b; none when lo > hi. Offsets past the end count as zeros.
func Count(b []byte, lo, hi uint64) int64 {
	nbits := uint64(len(b)) << 3
	if hi >= nbits {
		if nbits == 0 {
			return 0
		}
		hi = nbits - 1
	}
	if lo > hi {
		return 0
	}
	first, last := lo>>3, hi>>3
	// Count whole bytes, then take away the bits of the edge bytes that lie
	// outside the range.
	n := popcount(b[first : last+1])
	n -= int64(bits.OnesCount8(b[first] & ^(0xff >> (lo & 7))))
	n -= int64(bits.OnesCount8(b[last] & (0x7f >> (hi & 7))))
	return n
}

// popcount counts the set bits of b, eight bytes at a time.
func popcount(b []byte) int64 {
	var n int
	for len(b) >= 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return int64(n)
}

// Pos returns the offset of the first bit equal to bit (0 or 1) at
// offsets lo to hi (inclusive) of b, or -1 when there is none (or lo >
// hi). Offsets past the end read as zeros, so a search for a clear bit in
// a range reaching past the end finds the first offset past it.
func Pos(b []byte, bit int, lo, hi uint64) int64 {
	if lo > hi {
		return -1
	}
	nbits := uint64(len(b)) << 3
	// skip is the byte that holds no wanted bit.
	skip := byte(0)
	if bit == 0 {
		skip = 0xff
	}
	off := lo
	for off <= hi && off < nbits {
		i := off >> 3
		if off&7 == 0 {
			// Whole bytes (and whole words) without a wanted bit are
			// skipped at once.
			j := skipBytes(b[i:], skip)
			if j > 0 {
				off = (i + uint64(j)) << 3
				if off > hi {
					return -1
				}
				continue
			}
		}
		if Bit(b, off) == bit {
			return int64(off)
		}
		if off == hi {
			return -1
		}
		off++
	}
	if off <= hi && bit == 0 {
		return int64(off) // the zeros past the end
	}
	return -1
}

// skipBytes returns how many leading bytes of b equal skip.
func skipBytes(b []byte, skip byte) int {
	word := uint64(skip) * 0x0101010101010101
	n := 0
	for len(b)-n >= 8 && binary.LittleEndian.Uint64(b[n:]) == word {
		n += 8
	}
	for n < len(b) && b[n] == skip {
		n++
	}
	return n
}

// Op is a BITOP operation.
type Op int

// The operations.
const (
	And Op = iota
	Or
	Xor
	Not
)

// Apply computes op over srcs as BITOP does: the result is as long as
// the longest source, shorter sources read as zero-padded. Not takes
// exactly one source (the caller checks); an empty result is nil.
func Apply(op Op, srcs [][]byte) []byte {
	n := 0
	for _, s := range srcs {
		n = max(n, len(s))
	}
	if n == 0 || len(srcs) == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, srcs[0])
	switch op {
	case Not:
		for i := range out {
			out[i] = ^out[i]
		}
	case And:
		for _, s := range srcs[1:] {
			for i := range out {
				if i < len(s) {
					out[i] &= s[i]
				} else {
					out[i] = 0
				}
			}
		}
	case Or:
		for _, s := range srcs[1:] {
			for i, c := range s {
				out[i] |= c
			}
		}
	case Xor:
		for _, s := range srcs[1:] {
			for i, c := range s {
				out[i] ^= c
			}
		}
	}
	return out
}
