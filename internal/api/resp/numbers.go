package resp

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// parseInt parses b as Redis's string2ll does: an optional '-', no '+', no
// leading zeros, no spaces, within int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	i, neg := 0, false
	if b[0] == '-' {
		neg, i = true, 1
		if len(b) == 1 {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var v uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, false
		}
		if v > (math.MaxUint64-uint64(d))/10 {
			return 0, false
		}
		v = v*10 + uint64(d)
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return int64(-v), true //nolint:gosec // two's complement of v <= 2^63
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// Long double emulation for INCRBYFLOAT: Redis computes in x87 extended
// precision (64-bit mantissa) and prints with "%.17Lf", trailing zeros
// removed. big.Float with the same precision and rounding gives the same
// digits.
const (
	ldPrec    = 64
	ldMaxExp  = 16384  // |x| >= 2^16384 overflows
	ldMinExp  = -16444 // |x| < 2^-16445 underflows to zero
	ldMaxText = 5*1024 - 1
)

// parseLongDouble parses s as Redis's string2ld does. inf reports an
// infinite value (valid input, but any arithmetic with it fails).
func parseLongDouble(s []byte) (f *big.Float, inf, ok bool) {
	if len(s) == 0 || len(s) > ldMaxText {
		return nil, false, false
	}
	str := string(s)
	body := str
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		return nil, true, true
	}
	base := 10
	if len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		if !validHexFloat(body[2:]) {
			return nil, false, false
		}
		if !strings.ContainsAny(body, "pP") {
			str += "p0"
		}
		base = 0
	} else if !validDecFloat(body) {
		return nil, false, false
	}
	f, _, err := big.ParseFloat(str, base, ldPrec, big.ToNearestEven)
	if err != nil || f.IsInf() {
		return nil, false, false
	}
	if f.Sign() != 0 {
		e := f.MantExp(nil)
		if e > ldMaxExp || e < ldMinExp {
			return nil, false, false // ERANGE, as strtold reports it
		}
	}
	return f, false, true
}

// validDecFloat accepts digits with an optional '.', then an optional
// exponent: the decimal form strtold accepts.
func validDecFloat(s string) bool {
	return validFloatBody(s, func(c byte) bool { return c >= '0' && c <= '9' }, 'e')
}

// validHexFloat is the same for the hexadecimal form after "0x": hex
// digits, an optional '.', then an optional binary exponent 'p'.
func validHexFloat(s string) bool {
	return validFloatBody(s, func(c byte) bool {
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
	}, 'p')
}

// validFloatBody accepts mantissa digits (at least one, around an
// optional '.') and an optional exponent introduced by exp (either case)
// with an optional sign and at least one decimal digit.
func validFloatBody(s string, digit func(byte) bool, exp byte) bool {
	i, digits := 0, 0
	for i < len(s) && digit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && digit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == exp || s[i] == exp-'a'+'A') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		if n == 0 {
			return false
		}
	}
	return i == len(s)
}

// addLongDouble returns the INCRBYFLOAT result text for cur (nil: key
// missing, 0) plus incr, or a reply error.
func addLongDouble(cur []byte, exists bool, incr []byte) (string, error) {
	v := new(big.Float).SetPrec(ldPrec)
	vInf := false
	if exists {
		f, inf, ok := parseLongDouble(cur)
		if !ok {
			return "", replyError(msgNotFloat)
		}
		if !inf {
			v = f
		}
		vInf = inf
	}
	d, dInf, ok := parseLongDouble(incr)
	if !ok {
		return "", replyError(msgNotFloat)
	}
	if vInf || dInf {
		return "", replyError(msgNaN)
	}
	r := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Add(v, d)
	if r.Sign() != 0 && r.MantExp(nil) > ldMaxExp {
		return "", replyError(msgNaN)
	}
	return formatLongDouble(r), nil
}

// formatLongDouble prints like Redis's ld2string(LD_STR_HUMAN).
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

func formatInt(n int64) []byte { return strconv.AppendInt(nil, n, 10) }
