package resp

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// TestParseScore: scores, increments and weights are read as Redis's
// string2d reads them (the cases were checked against redis-server).
func TestParseScore(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1", 1, true}, {"-1.5", -1.5, true}, {"+5", 5, true}, {".5", 0.5, true}, {"5.", 5, true},
		{"1e2", 100, true}, {"1E+2", 100, true}, {"0x10", 16, true}, {"0X1P3", 8, true}, {"0x1.8", 1.5, true},
		{"0x0p5", 0, true}, {"0e500", 0, true}, {"00.000e-999", 0, true}, {"1e-310", 1e-310, true},
		{"4.9e-324", 5e-324, true}, {"inf", inf, true}, {"+inf", inf, true}, {"-Infinity", -inf, true},
		{"INF", inf, true},
		{"", 0, false}, {" 1", 0, false}, {"\t1", 0, false}, {"1 ", 0, false}, {"1e", 0, false}, {"1e+", 0, false},
		{"1e400", 0, false}, {"-1e400", 0, false}, {"1e-400", 0, false}, {"2e-324", 0, false}, {"0x1p-1080", 0, false},
		{"0x", 0, false}, {"0x.p1", 0, false}, {"0x1p", 0, false}, {"infinit", 0, false}, {"nan", 0, false},
		{"nan(123)", 0, false}, {"1_0", 0, false}, {"1\x00", 0, false}, {"--1", 0, false}, {"e5", 0, false},
		{".e5", 0, false}, {".", 0, false}, {"-", 0, false}, {"1.2.3", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseScore([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseScore(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestParseRangeScore: the ends of ZRANGEBYSCORE are read as Redis's
// zslParseRange reads them, without string2d's checks.
func TestParseRangeScore(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		in     string
		want   float64
		ex, ok bool
	}{
		{"", 0, false, true}, {"(", 0, true, true}, {" 1", 1, false, true}, {"\t2", 2, false, true},
		{"(1e400", inf, true, true}, {"1e-400", 0, false, true}, {"1\x00garbage", 1, false, true},
		{"(\x00", 0, true, true}, {"-inf", -inf, false, true}, {"(+inf", inf, true, true}, {"0x1", 1, false, true},
		{"1 ", 0, false, false}, {"x", 0, false, false}, {"nan", 0, false, false}, {"((1", 0, false, false},
		{" ", 0, false, false}, {"[1", 0, false, false},
	}
	for _, tt := range tests {
		got, ex, ok := parseRangeScore([]byte(tt.in))
		if ok != tt.ok || (ok && (got != tt.want || ex != tt.ex)) {
			t.Errorf("parseRangeScore(%q) = %v, %v, %v; want %v, %v, %v", tt.in, got, ex, ok, tt.want, tt.ex, tt.ok)
		}
	}
}

// TestFormatScore: Redis 7.2's d2string layout of the shortest digits.
func TestFormatScore(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "-0"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"}, {math.NaN(), "nan"},
		{1, "1"}, {-5, "-5"}, {1.5, "1.5"}, {0.1, "0.1"}, {-0.25, "-0.25"}, {100.5, "100.5"}, {123.456, "123.456"},
		{1 << 62, "4611686018427387904"}, {-(1 << 62), "-4611686018427387904"}, {1e18, "1000000000000000000"},
		{1 << 63, "9223372036854776000"}, {1.2345678901234568e20, "123456789012345680000"},
		{1e20, "1e+20"}, {1e22, "1e+22"}, {-1e22, "-1e+22"}, {1.5e300, "1.5e+300"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
		{1e-6, "0.000001"}, {0.000123, "0.000123"}, {1e-7, "1e-7"}, {1.2345e-5, "1.2345e-5"}, {5e-324, "5e-324"},
		{12345.678901234567, "1.2345678901234567e+4"}, {1.0000000000000002, "1.0000000000000002"},
		{0.30000000000000004, "0.30000000000000004"}, {1e-100, "1e-100"}, {-2.5e-105, "-2.5e-105"},
	}
	for _, tt := range tests {
		if got := formatScore(tt.in); got != tt.want {
			t.Errorf("formatScore(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestFormatScoreRoundTrips: every finite score's text reads back (as
// ZADD reads it) as the same double.
func TestFormatScoreRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := math.Float64frombits(rapid.Uint64().Draw(t, "bits"))
		if math.IsNaN(f) {
			t.Skip("NaN is never a score")
		}
		s := formatScore(f)
		got, ok := parseScore([]byte(s))
		if !ok || got != f {
			t.Fatalf("formatScore(%v) = %q, read back as %v, %v", f, s, got, ok)
		}
	})
}
