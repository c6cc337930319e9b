package bitmap

import (
	"bytes"
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

func TestBitAndSetBit(t *testing.T) {
	b := []byte{0b1000_0001, 0}
	for _, c := range []struct {
		off  uint64
		want int
	}{{0, 1}, {1, 0}, {7, 1}, {8, 0}, {15, 0}, {16, 0}, {1 << 40, 0}} {
		if got := Bit(b, c.off); got != c.want {
			t.Errorf("Bit(%d) = %d, want %d", c.off, got, c.want)
		}
	}
	SetBit(b, 9, 1)
	SetBit(b, 0, 0)
	if !bytes.Equal(b, []byte{0b0000_0001, 0b0100_0000}) {
		t.Errorf("after SetBit: %08b", b)
	}
}

func TestCountAndPos(t *testing.T) {
	b := []byte{0xff, 0xf0, 0x00, 0x0f}
	for _, c := range []struct {
		lo, hi uint64
		count  int64
		pos0   int64
		pos1   int64
	}{
		{0, 31, 16, 12, 0},
		{0, 7, 8, -1, 0},
		{4, 11, 8, -1, 4},
		{12, 27, 0, 12, -1},
		{13, 29, 2, 13, 28},
		{28, 31, 4, -1, 28},
		{28, 100, 4, 32, 28}, // zeros past the end
		{40, 100, 0, 40, -1},
		{5, 4, 0, -1, -1},
		{0, math.MaxUint64, 16, 12, 0},
	} {
		if got := Count(b, c.lo, c.hi); got != c.count {
			t.Errorf("Count(%d, %d) = %d, want %d", c.lo, c.hi, got, c.count)
		}
		if got := Pos(b, 0, c.lo, c.hi); got != c.pos0 {
			t.Errorf("Pos(0, %d, %d) = %d, want %d", c.lo, c.hi, got, c.pos0)
		}
		if got := Pos(b, 1, c.lo, c.hi); got != c.pos1 {
			t.Errorf("Pos(1, %d, %d) = %d, want %d", c.lo, c.hi, got, c.pos1)
		}
	}
	if Count(nil, 0, 100) != 0 || Pos(nil, 1, 0, 100) != -1 || Pos(nil, 0, 3, 100) != 3 {
		t.Error("empty string")
	}
}

// Count and Pos agree with a bit-by-bit model, over strings long enough
// for the word-at-a-time paths.
func TestCountPosModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 40).Draw(t, "len")
		b := make([]byte, n)
		for i := range b {
			b[i] = rapid.SampledFrom([]byte{0, 0xff, 0x01, 0x80, 0x5a}).Draw(t, "byte")
		}
		lo := rapid.Uint64Range(0, uint64(n*8+10)).Draw(t, "lo")
		hi := rapid.Uint64Range(0, uint64(n*8+10)).Draw(t, "hi")
		var count int64
		pos := [2]int64{-1, -1}
		for off := lo; off <= hi; off++ {
			v := Bit(b, off)
			count += int64(v)
			if pos[v] == -1 {
				pos[v] = int64(off)
			}
		}
		if got := Count(b, lo, hi); got != count {
			t.Fatalf("Count(%x, %d, %d) = %d, want %d", b, lo, hi, got, count)
		}
		for bit := range 2 {
			if got := Pos(b, bit, lo, hi); got != pos[bit] {
				t.Fatalf("Pos(%x, %d, %d, %d) = %d, want %d", b, bit, lo, hi, got, pos[bit])
			}
		}
	})
}

func TestApply(t *testing.T) {
	a, b := []byte{0x0f, 0xf0}, []byte{0xff}
	for _, c := range []struct {
		op   Op
		srcs [][]byte
		want []byte
	}{
		{And, [][]byte{a, b}, []byte{0x0f, 0x00}},
		{Or, [][]byte{a, b}, []byte{0xff, 0xf0}},
		{Xor, [][]byte{a, b}, []byte{0xf0, 0xf0}},
		{Not, [][]byte{a}, []byte{0xf0, 0x0f}},
		{And, [][]byte{b, a}, []byte{0x0f, 0x00}},
		{And, [][]byte{a}, a},
		{Or, [][]byte{nil, nil}, nil},
		{Not, [][]byte{nil}, nil},
	} {
		if got := Apply(c.op, c.srcs); !bytes.Equal(got, c.want) {
			t.Errorf("Apply(%d, %x) = %x, want %x", c.op, c.srcs, got, c.want)
		}
	}
	if a[0] != 0x0f || b[0] != 0xff {
		t.Error("Apply modified a source")
	}
}

func TestFields(t *testing.T) {
	b := make([]byte, 3)
	PutUint(b, 4, 8, 0xab)
	if !bytes.Equal(b, []byte{0x0a, 0xb0, 0}) {
		t.Fatalf("PutUint: %x", b)
	}
	if got := Uint(b, 4, 8); got != 0xab {
		t.Errorf("Uint = %#x", got)
	}
	if got := Int(b, 4, 8); got != -85 {
		t.Errorf("Int = %d", got)
	}
	if got := Uint(b, 20, 16); got != 0 { // past the end
		t.Errorf("Uint past the end = %d", got)
	}
	PutUint(b, 0, 1, 1)
	if got := Int(b, 0, 1); got != -1 {
		t.Errorf("i1 = %d", got)
	}
	full := make([]byte, 9)
	PutUint(full, 3, 64, 0x8000_0000_0000_0001)
	if got := Int(full, 3, 64); got != math.MinInt64+1 {
		t.Errorf("i64 = %d", got)
	}
}

func TestOverflow(t *testing.T) {
	for _, c := range []struct {
		name  string
		got   func() (int64, bool)
		want  int64
		wantK bool
	}{
		{"u8 255+1 wrap", u(AddUint(255, 1, 8, Wrap)), 0, true},
		{"u8 255+1 sat", u(AddUint(255, 1, 8, Sat)), 255, true},
		{"u8 255+1 fail", u(AddUint(255, 1, 8, Fail)), 0, false},
		{"u8 5-10 wrap", u(AddUint(5, -10, 8, Wrap)), 251, true},
		{"u8 5-10 sat", u(AddUint(5, -10, 8, Sat)), 0, true},
		{"u8 5-5", u(AddUint(5, -5, 8, Fail)), 0, true},
		{"u63 0+max", u(AddUint(0, math.MaxInt64, 63, Fail)), math.MaxInt64, true},
		{"u63 1+max sat", u(AddUint(1, math.MaxInt64, 63, Sat)), math.MaxInt64, true},
		{"u63 1-min", u(AddUint(1, math.MinInt64, 63, Fail)), 0, false},
		{"u63 0-min wrap", u(AddUint(0, math.MinInt64, 63, Wrap)), 0, true},
		{"set u8 -1 sat", u(FitUint(-1, 8, Sat)), 255, true},
		{"set u8 -1 wrap", u(FitUint(-1, 8, Wrap)), 255, true},
		{"set u8 256 wrap", u(FitUint(256, 8, Wrap)), 0, true},
		{"set u8 200", u(FitUint(200, 8, Fail)), 200, true},
		{"i8 127+1 wrap", s(AddInt(127, 1, 8, Wrap)), -128, true},
		{"i8 127+1 sat", s(AddInt(127, 1, 8, Sat)), 127, true},
		{"i8 -128-1 sat", s(AddInt(-128, -1, 8, Sat)), -128, true},
		{"i8 -128-1 fail", s(AddInt(-128, -1, 8, Fail)), 0, false},
		{"i8 -1+200", s(AddInt(-1, 200, 8, Wrap)), -57, true},
		{"i64 max+max wrap", s(AddInt(math.MaxInt64, math.MaxInt64, 64, Wrap)), -2, true},
		{"i64 max+1 sat", s(AddInt(math.MaxInt64, 1, 64, Sat)), math.MaxInt64, true},
		{"i64 min+min wrap", s(AddInt(math.MinInt64, math.MinInt64, 64, Wrap)), 0, true},
		{"i64 -1+min sat", s(AddInt(-1, math.MinInt64, 64, Sat)), math.MinInt64, true},
		{"i64 -1+max", s(AddInt(-1, math.MaxInt64, 64, Fail)), math.MaxInt64 - 1, true},
		{"i1 0+1 wrap", s(AddInt(0, 1, 1, Wrap)), -1, true},
		{"set i8 200 wrap", s(FitInt(200, 8, Wrap)), -56, true},
		{"set i8 -200 sat", s(FitInt(-200, 8, Sat)), -128, true},
		{"set i64 min", s(FitInt(math.MinInt64, 64, Fail)), math.MinInt64, true},
	} {
		if got, ok := c.got(); got != c.want || ok != c.wantK {
			t.Errorf("%s = %d, %v; want %d, %v", c.name, got, ok, c.want, c.wantK)
		}
	}
}

func u(v uint64, ok bool) func() (int64, bool) { return func() (int64, bool) { return int64(v), ok } }
func s(v int64, ok bool) func() (int64, bool)  { return func() (int64, bool) { return v, ok } }

// The overflow rules agree with exact arithmetic: a result in range is the
// sum; out of range, Wrap keeps the low bits, Sat the nearer bound, Fail
// nothing.
func TestOverflowModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		signed := rapid.Bool().Draw(t, "signed")
		width := rapid.IntRange(1, 64).Draw(t, "width")
		if !signed && width == 64 {
			width = 63
		}
		ow := Overflow(rapid.IntRange(0, 2).Draw(t, "overflow"))
		incr := rapid.OneOf(rapid.Int64(), rapid.Int64Range(-300, 300)).Draw(t, "incr")
		set := rapid.Bool().Draw(t, "set")
		lo, hi := big.NewInt(0), new(big.Int).Lsh(big.NewInt(1), uint(width))
		if signed {
			lo = new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), uint(width-1)))
			hi = new(big.Int).Lsh(big.NewInt(1), uint(width-1))
		}
		hi.Sub(hi, big.NewInt(1))
		var old *big.Int
		if signed {
			old = big.NewInt(rapid.Int64Range(lo.Int64(), hi.Int64()).Draw(t, "old"))
		} else {
			old = new(big.Int).SetUint64(rapid.Uint64Range(0, hi.Uint64()).Draw(t, "old"))
		}
		exact := new(big.Int).Add(old, big.NewInt(incr))
		if set {
			exact = big.NewInt(incr)
			if !signed && incr < 0 {
				exact = new(big.Int).SetUint64(uint64(incr)) // Redis reads it unsigned
			}
		}
		want, wantOK := new(big.Int).Set(exact), true
		if exact.Cmp(lo) < 0 || exact.Cmp(hi) > 0 {
			switch ow {
			case Sat:
				want = hi
				if exact.Cmp(lo) < 0 {
					want = lo
				}
			case Fail:
				wantOK = false
			default:
				mod := new(big.Int).Lsh(big.NewInt(1), uint(width))
				want = new(big.Int).Mod(new(big.Int).Sub(exact, lo), mod)
				want.Add(want, lo)
			}
		}
		var got *big.Int
		var ok bool
		switch {
		case signed && set:
			v, k := FitInt(incr, width, ow)
			got, ok = big.NewInt(v), k
		case signed:
			v, k := AddInt(old.Int64(), incr, width, ow)
			got, ok = big.NewInt(v), k
		case set:
			v, k := FitUint(incr, width, ow)
			got, ok = new(big.Int).SetUint64(v), k
		default:
			v, k := AddUint(old.Uint64(), incr, width, ow)
			got, ok = new(big.Int).SetUint64(v), k
		}
		if ok != wantOK || (ok && got.Cmp(want) != 0) {
			t.Fatalf("signed=%v width=%d set=%v old=%v incr=%d ow=%d: got %v, %v; want %v, %v",
				signed, width, set, old, incr, ow, got, ok, want, wantOK)
		}
	})
}
