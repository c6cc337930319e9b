package bitmap

import "math"

// Uint reads the unsigned integer of width bits (1 to 64) stored at bit
// offset off of b, most significant bit first. Bits past the end read as
// zeros.
func Uint(b []byte, off uint64, width int) uint64 {
	var v uint64
	for i := range uint64(width) {
		v = v<<1 | uint64(Bit(b, off+i))
	}
	return v
}

// Int reads the two's complement integer of width bits (1 to 64) stored
// at bit offset off of b.
func Int(b []byte, off uint64, width int) int64 {
	return signExtend(Uint(b, off, width), width)
}

// PutUint stores the low width bits of v at bit offset off of b, most
// significant first; b must hold them.
func PutUint(b []byte, off uint64, width int, v uint64) {
	for i := range uint64(width) {
		SetBit(b, off+i, int(v>>(uint64(width)-1-i))&1)
	}
}

// signExtend reads the low width bits of v as a two's complement number.
func signExtend(v uint64, width int) int64 {
	shift := 64 - width
	return int64(v<<shift) >> shift
}

// Overflow is BITFIELD's overflow behaviour.
type Overflow int

// The behaviours: wrap around (the default), saturate at the type's
// bounds, or fail (the operation does nothing and answers nil).
const (
	Wrap Overflow = iota
	Sat
	Fail
)

// umax is the largest unsigned value of width bits (width < 64).
func umax(width int) uint64 { return 1<<width - 1 }

// smax and smin bound the signed values of width bits.
func smax(width int) int64 { return int64(math.MaxInt64 >> (64 - width)) }
func smin(width int) int64 { return -smax(width) - 1 }

// AddUint adds incr to old, an unsigned field of width bits (1 to 63),
// and returns the new value under ow, or ok false when it overflows under
// Fail.
func AddUint(old uint64, incr int64, width int, ow Overflow) (uint64, bool) {
	hi := umax(width)
	wrapped := (old + uint64(incr)) & hi
	switch {
	case incr >= 0 && uint64(incr) > hi-old:
		return saturate(wrapped, hi, ow)
	case incr < 0 && uint64(-incr) > old:
		// -incr of math.MinInt64 is itself, whose uint64 is 2^63: the
		// right magnitude.
		return saturate(wrapped, 0, ow)
	}
	return old + uint64(incr), true
}

// FitUint is the unsigned field of width bits (1 to 63) that SET stores
// for v under ow: v read as an unsigned 64-bit number, as Redis does, so
// a negative v overflows upwards (it saturates to the maximum).
func FitUint(v int64, width int, ow Overflow) (uint64, bool) {
	hi := umax(width)
	if u := uint64(v); u > hi {
		return saturate(u&hi, hi, ow)
	}
	return uint64(v), true
}

// AddInt adds incr to old, a signed field of width bits (1 to 64), and
// returns the new value under ow, or ok false when it overflows under
// Fail.
func AddInt(old, incr int64, width int, ow Overflow) (int64, bool) {
	sum := old + incr // wraps like the two's complement hardware
	wrapped := signExtend(uint64(sum), width)
	switch {
	case incr > 0 && (sum < old || sum > smax(width)):
		return saturate(wrapped, smax(width), ow)
	case incr < 0 && (sum > old || sum < smin(width)):
		return saturate(wrapped, smin(width), ow)
	}
	return sum, true
}

// FitInt is the signed field of width bits (1 to 64) that SET stores for
// v under ow.
func FitInt(v int64, width int, ow Overflow) (int64, bool) {
	switch {
	case v > smax(width):
		return saturate(signExtend(uint64(v), width), smax(width), ow)
	case v < smin(width):
		return saturate(signExtend(uint64(v), width), smin(width), ow)
	}
	return v, true
}

// saturate picks the result of an overflow: the wrapped value, the bound,
// or nothing.
func saturate[T int64 | uint64](wrapped, bound T, ow Overflow) (T, bool) {
	switch ow {
	case Sat:
		return bound, true
	case Fail:
		return 0, false
	}
	return wrapped, true
}
