package resp

import (
	"math/big"
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pat, str string
		want     bool
	}{
		{"*", "anything", true},
		{"*", "", false}, // Redis: only KEYS/SCAN special-case "*"
		{"", "", true},
		{"", "a", false},
		{"a*", "a", true},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"*a", "bca", true},
		{"*a*", "xxaxx", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"a**b", "ab", true},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h??llo", "heello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[a-b]llo", "hcllo", false},
		{"h[b-a]llo", "hallo", true}, // reversed range
		{"h[\\]]llo", "h]llo", true},
		{"h[a\\-z]llo", "h-llo", true},
		{"h[a\\-z]llo", "hbllo", false},
		{"h[]llo", "hallo", false},
		{"[abc", "a", true}, // unterminated class ends at the pattern's end
		{"[abc", "d", false},
		{"a[", "a", false},
		{"\\*", "*", true},
		{"\\*", "a", false},
		{"\\?x", "?x", true},
		{"a\\", "a\\", true},
		{"\\", "\\", true},
		{"*\\*", "abc*", true},
		{"*[0-9]", "key7", true},
		{"*[0-9]", "key", false},
		{"user:*:name", "user:42:name", true},
		{"user:*:name", "user:42:mail", false},
		{"\x00*\xff", "\x00abc\xff", true},
		{"k\r\n*", "k\r\n\x00", true},
		{"a*a*a*a*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"*?", "a", true},
		{"*?", "", false},
		{"?*", "ab", true},
		{"[a-]", "-", false}, // Redis reads "a-]" as a range to ']'
		{"[a-]", "]", true},
		{"[^abc", "d", true},
		{"[^abc", "a", false},
	} {
		if got := globMatch([]byte(c.pat), []byte(c.str)); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pat, c.str, got, c.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"-1", -1, true}, {"123", 123, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"-9223372036854775808", -9223372036854775808, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false}, {"184467440737095516160", 0, false},
		{"", 0, false}, {"-", 0, false}, {"-0", 0, false}, {"01", 0, false}, {"+1", 0, false},
		{" 1", 0, false}, {"1 ", 0, false}, {"1.0", 0, false}, {"1e3", 0, false}, {"0x10", 0, false},
	} {
		got, ok := parseInt([]byte(c.in))
		if ok != c.ok || got != c.want {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestIncrByFloatFormat: results as Redis 7 on x86-64 (80-bit long double,
// "%.17Lf" with trailing zeros removed) prints them.
func TestIncrByFloatFormat(t *testing.T) {
	for _, c := range []struct {
		cur       string
		exists    bool
		incr      string
		want, err string
	}{
		{"10.50", true, "0.1", "10.6", ""},
		{"10.6", true, "-5", "5.6", ""},
		{"5.0e3", true, "2.0e2", "5200", ""},
		{"", false, "1.5", "1.5", ""},
		{"0.1", true, "0.2", "0.3", ""},
		{"0", true, "-0", "0", ""},
		{"-1", true, "1", "0", ""},
		{"1", true, "1e-20", "1", ""},
		{"0", true, "1e-20", "0", ""},
		{"3", true, "0x1p-1", "3.5", ""},
		{"3", true, "0x10", "19", ""},
		{"1", true, ".5", "1.5", ""},
		{"1", true, "2.", "3", ""},
		{"0.3", true, "1e400", "10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880", ""},
		{"1", true, "inf", "", msgNaN},
		{"1", true, "-Infinity", "", msgNaN},
		{"inf", true, "1", "", msgNaN},
		{"1", true, "nan", "", msgNotFloat},
		{"1", true, "1e99999", "", msgNotFloat}, // overflows long double
		{"1", true, "1e-99999", "", msgNotFloat},
		{"1", true, "", "", msgNotFloat},
		{"1", true, " 1", "", msgNotFloat},
		{"1", true, "1 ", "", msgNotFloat},
		{"1", true, "1e", "", msgNotFloat},
		{"1", true, ".", "", msgNotFloat},
		{"1", true, "0x", "", msgNotFloat},
		{"1", true, "1_0", "", msgNotFloat},
		{"1", true, "0b1", "", msgNotFloat},
		{"abc", true, "1", "", msgNotFloat},
		{"1.18e4932", true, "1.18e4932", "", msgNaN},
	} {
		got, err := addLongDouble([]byte(c.cur), c.exists, []byte(c.incr))
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%q + %q: got %q, %v; want error %q", c.cur, c.incr, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%q + %q = %q, %v; want %q", c.cur, c.incr, got, err, c.want)
		}
	}
	// -0.0 prints as "0", as Redis does.
	if got := formatLongDouble(new(big.Float).SetPrec(ldPrec).Neg(new(big.Float))); got != "0" {
		t.Errorf("-0 formats as %q", got)
	}
}

func TestArgsPreview(t *testing.T) {
	if got := argsPreview([][]byte{[]byte("a"), []byte("b")}); got != "'a' 'b' " {
		t.Errorf("%q", got)
	}
	long := []byte(strings.Repeat("x", 300))
	got := argsPreview([][]byte{long, []byte("next")})
	if got != "'"+strings.Repeat("x", 128)+"' " {
		t.Errorf("long arg: %q", got)
	}
}

func TestNewLimits(t *testing.T) {
	for _, tc := range []struct {
		key, value        int
		wantBulk, wantCmd int64
	}{
		{64 << 10, 1 << 20, 3 << 20, 2*(1<<20+64<<10) + 1<<20},
		{0, 0, 2*16<<20 + 1<<20, 2*(16<<20+64<<10) + 1<<20}, // the node's defaults
	} {
		if l := newLimits(tc.key, tc.value); l.maxBulk != tc.wantBulk || l.maxCommand != tc.wantCmd {
			t.Errorf("newLimits(%d, %d) = %+v, want bulk %d, command %d", tc.key, tc.value, l, tc.wantBulk, tc.wantCmd)
		}
	}
}
