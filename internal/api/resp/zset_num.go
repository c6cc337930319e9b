package resp

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/replicant-db/replicant/internal/datatype"
)

// Scores in and out, as Redis 7.2 reads and writes them.

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// strtod reads the longest prefix of b that C's strtod converts (glibc):
// leading white space, a sign, then "inf", "infinity", "nan" with an
// optional "(chars)", a hexadecimal "0x" float or a decimal one. n is the
// bytes consumed (0 when nothing converts); erange reports a finite input
// that overflowed to ±inf or a nonzero one that underflowed to 0.
func strtod(b []byte) (f float64, n int, erange bool) {
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	signAt := i
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	neg := i > signAt && b[signAt] == '-'
	rest := b[i:]
	word := func(w string) bool { return len(rest) >= len(w) && strings.EqualFold(string(rest[:len(w)]), w) }
	switch {
	case word("infinity"):
		return math.Copysign(math.Inf(1), sign(neg)), i + 8, false
	case word("inf"):
		return math.Copysign(math.Inf(1), sign(neg)), i + 3, false
	case word("nan"):
		j := 3
		if j < len(rest) && rest[j] == '(' {
			k := j + 1
			for k < len(rest) && (isAlnum(rest[k]) || rest[k] == '_') {
				k++
			}
			if k < len(rest) && rest[k] == ')' {
				j = k + 1
			}
		}
		return math.NaN(), i + j, false
	}
	if len(rest) >= 2 && rest[0] == '0' && (rest[1] == 'x' || rest[1] == 'X') {
		if m, nonzero := floatBody(rest[2:], isHexDigit, 'p'); m > 0 {
			text := string(b[signAt:i]) + "0x" + string(rest[2:2+m])
			if !strings.ContainsAny(text, "pP") {
				text += "p0"
			}
			f, erange := parseFloatText(text, nonzero)
			return f, i + 2 + m, erange
		}
		// "0x" without hex digits: strtod converts the "0" alone.
		return math.Copysign(0, sign(neg)), i + 1, false
	}
	m, nonzero := floatBody(rest, isDigit, 'e')
	if m == 0 {
		return 0, 0, false
	}
	f, erange = parseFloatText(string(b[signAt:i])+string(rest[:m]), nonzero)
	return f, i + m, erange
}

func sign(neg bool) float64 {
	if neg {
		return -1
	}
	return 1
}

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isHexDigit(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }
func isAlnum(c byte) bool    { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') }

// floatBody measures a float's mantissa (digits around an optional '.',
// at least one) and its optional exponent (exp, either case, a sign, at
// least one decimal digit: else the exponent is not part of the number).
// nonzero reports a nonzero mantissa digit. n is 0 when there is no
// mantissa digit.
func floatBody(s []byte, digit func(byte) bool, exp byte) (n int, nonzero bool) {
	i, digits := 0, 0
	for i < len(s) && digit(s[i]) {
		nonzero = nonzero || s[i] != '0'
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && digit(s[i]) {
			nonzero = nonzero || s[i] != '0'
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && s[i]|0x20 == exp {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i, nonzero
}

// parseFloatText converts a number floatBody accepted (Go's parser
// rounds as glibc's does).
func parseFloatText(text string, nonzero bool) (float64, bool) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !math.IsInf(f, 0) {
		// Unreachable for text floatBody accepted; never a number.
		return math.NaN(), false
	}
	return f, math.IsInf(f, 0) || (f == 0 && nonzero)
}

// parseScore reads a score, increment or weight as Redis's string2d does:
// the whole argument is one number, without leading space, neither NaN nor
// out of range (overflow to infinity, underflow to zero); "inf" and hex
// floats are numbers.
func parseScore(b []byte) (float64, bool) {
	if len(b) == 0 || isCSpace(b[0]) {
		return 0, false
	}
	f, n, erange := strtod(b)
	if n != len(b) || math.IsNaN(f) || erange {
		return 0, false
	}
	return f, true
}

// parseRangeScore reads one end of ZRANGEBYSCORE's interval as Redis's
// zslParseRange does: "(" makes it exclusive, and the rest is what strtod
// reads up to the first zero byte, with none of string2d's checks (so ""
// and "(" are 0, leading space is skipped, 1e400 is inf), NaN refused.
func parseRangeScore(b []byte) (f float64, ex, ok bool) {
	if len(b) > 0 && b[0] == '(' {
		ex, b = true, b[1:]
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	f, n, _ := strtod(b)
	if n != len(b) || math.IsNaN(f) {
		return 0, false, false
	}
	return f, ex, true
}

// parseScoreRange reads ZRANGEBYSCORE's min and max.
func parseScoreRange(min, max []byte) (datatype.ScoreRange, bool) {
	lo, loEx, ok1 := parseRangeScore(min)
	hi, hiEx, ok2 := parseRangeScore(max)
	return datatype.ScoreRange{Min: lo, Max: hi, MinEx: loEx, MaxEx: hiEx}, ok1 && ok2
}

// parseLexBound reads one end of ZRANGEBYLEX's interval: "-", "+", or a
// member after "[" (inclusive) or "(" (exclusive).
func parseLexBound(b []byte) (datatype.LexBound, bool) {
	switch {
	case len(b) == 0:
		return datatype.LexBound{}, false
	case b[0] == '-' && len(b) == 1:
		return datatype.LexBound{Inf: -1, Ex: true}, true
	case b[0] == '+' && len(b) == 1:
		return datatype.LexBound{Inf: 1, Ex: true}, true
	case b[0] == '(':
		return datatype.LexBound{Value: b[1:], Ex: true}, true
	case b[0] == '[':
		return datatype.LexBound{Value: b[1:]}, true
	}
	return datatype.LexBound{}, false
}

func parseLexRange(min, max []byte) (datatype.LexRange, bool) {
	lo, ok1 := parseLexBound(min)
	hi, ok2 := parseLexBound(max)
	return datatype.LexRange{Min: lo, Max: hi}, ok1 && ok2
}

// formatScore writes a score as Redis 7.2's d2string: "inf", "-inf", "0"
// and "-0"; an integer within ±2^62 in full; anything else by the
// shortest digits that read back as the same double, laid out as Redis's
// fpconv_dtoa lays them out — plain integer digits while the exponent is
// below the digit count plus 7, plain decimals while it is above -7 (or
// the point falls within the first 4 digits), scientific "d.ddde+X"
// otherwise, with the exponent's digits unpadded.
//
// Redis computes the digits with Grisu2, which in rare cases gives a
// digit more than the shortest; both read back as the same double.
func formatScore(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	case f == 0:
		if math.Signbit(f) {
			return "-0"
		}
		return "0"
	case f >= -(1<<62) && f <= 1<<62 && f == math.Trunc(f):
		return strconv.FormatInt(int64(f), 10)
	}
	neg := f < 0
	// "d.ddddde±x": the digits, and the decimal exponent of the first.
	e := strconv.FormatFloat(math.Abs(f), 'e', -1, 64)
	mant, exp10, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp10)
	nd := len(digits)
	k := x - (nd - 1) // the value is digits × 10^k
	ax := x
	if ax < 0 {
		ax = -ax
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case k >= 0 && ax < nd+7:
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", k))
	case k < 0 && (k > -7 || ax < 4):
		if point := nd + k; point <= 0 {
			b.WriteString("0.")
			b.WriteString(strings.Repeat("0", -point))
			b.WriteString(digits)
		} else {
			b.WriteString(digits[:point])
			b.WriteByte('.')
			b.WriteString(digits[point:])
		}
	default:
		b.WriteByte(digits[0])
		if nd > 1 {
			b.WriteByte('.')
			b.WriteString(digits[1:])
		}
		b.WriteByte('e')
		if x < 0 {
			b.WriteByte('-')
		} else {
			b.WriteByte('+')
		}
		b.WriteString(strconv.Itoa(ax))
	}
	return b.String()
}
