package resp

import (
	"strings"
	"testing"
	"time"
)

// TestGlobNestingLimit checks the cases where Redis's star nesting limit
// changes the answer (replies taken from redis-server 7.0.15's KEYS), and
// that the pathological pattern of issue 11 stays fast.
func TestGlobNestingLimit(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, c := range []struct {
		name, pat, str string
		want           bool
	}{
		{"1000 stars", strings.Repeat("*a", 1000), a(1000), true},
		{"1000 stars, longer key", strings.Repeat("*a", 1000), a(60000), true},
		{"1001 stars", strings.Repeat("*a", 1001), a(1001), false},
		{"1001 stars, longer key", strings.Repeat("*a", 1001), a(60000), false},
		{"1000 stars and a trailing one", strings.Repeat("*a", 1000) + "*", a(1001), true},
		{"1001 stars and a trailing one", strings.Repeat("*a", 1001) + "*", a(1001), false},
		{"trailing 1001st star needs no recursion", strings.Repeat("a*", 1001), a(1001), true},
		{"too short for the pattern", strings.Repeat("a*", 1001), a(1000), false},
		{"*? x 50000 on a short key", strings.Repeat("*?", 50000), a(1000), false},
		{"*? x 50000 on a long enough key", strings.Repeat("*?", 50000), a(60000), false},
		{"*? x 900 on a long enough key", strings.Repeat("*?", 900), a(900), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			if got := globMatch([]byte(c.pat), []byte(c.str)); got != c.want {
				t.Errorf("globMatch = %v, want %v", got, c.want)
			}
			// Generous for a loaded machine; the naive backtracking
			// takes minutes on these.
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
