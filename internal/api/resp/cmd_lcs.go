package resp

import (
	"context"
	"math"
	"strings"

	"github.com/replicant-db/replicant/internal/engine"
)

// maxLCSTable bounds the memory of LCS's table: Redis's limit (the
// table's bytes may not exceed proto-max-bulk-len), so replicant refuses
// exactly what Redis refuses, with its error.
const maxLCSTable = maxStringLen

const (
	msgLCSNotString = "ERR The specified keys must contain string values"
	msgLCSLenIdx    = "ERR If you want both the length and indexes, please just use IDX."
	msgLCSTooLong   = "ERR String too long for LCS"
	msgLCSMemory    = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
)

// lcsMatch is one common run of an LCS: a[a0..a1] equals b[b0..b1].
type lcsMatch struct{ a0, a1, b0, b1 int }

// lcsTableBytes is the size of LCS's table for strings of n and m bytes
// (4-byte cells, as Redis counts them), saturating instead of overflowing.
func lcsTableBytes(n, m int) uint64 {
	rows, cols := uint64(n)+1, uint64(m)+1
	if rows > math.MaxUint64/4/cols {
		return math.MaxUint64
	}
	return rows * cols * 4
}

// lcsLen is the length of the longest common subsequence of a and b, from
// two rows of the table instead of all of it.
func lcsLen(a, b []byte) int {
	prev, row := make([]uint32, len(b)+1), make([]uint32, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				row[j] = prev[j-1] + 1
			case prev[j] > row[j-1]:
				row[j] = prev[j]
			default:
				row[j] = row[j-1]
			}
		}
		prev, row = row, prev
	}
	return int(prev[len(b)])
}

// lcs computes a longest common subsequence of a and b and its matching
// runs, last run first, choosing among equally long ones as Redis does
// (walking back from the ends, it drops a byte of b unless dropping one
// of a keeps strictly more), so that its answers are Redis's.
func lcs(a, b []byte) (common []byte, runs []lcsMatch) {
	w := len(b) + 1
	t := make([]uint32, (len(a)+1)*w) // t[i*w+j]: LCS length of a[:i], b[:j]
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				t[i*w+j] = t[(i-1)*w+j-1] + 1
			case t[(i-1)*w+j] > t[i*w+j-1]:
				t[i*w+j] = t[(i-1)*w+j]
			default:
				t[i*w+j] = t[i*w+j-1]
			}
		}
	}
	n := int(t[len(a)*w+len(b)])
	common = make([]byte, n)
	var run lcsMatch
	inRun := false
	for i, j := len(a), len(b); i > 0 && j > 0; {
		if a[i-1] == b[j-1] {
			n--
			common[n] = a[i-1]
			i, j = i-1, j-1
			if !inRun {
				run, inRun = lcsMatch{a0: i, a1: i, b0: j, b1: j}, true
			} else {
				// Matches met one after another extend the run
				// backwards.
				run.a0, run.b0 = i, j
			}
			if i == 0 || j == 0 {
				runs = append(runs, run)
			}
			continue
		}
		if inRun {
			runs, inRun = append(runs, run), false
		}
		if t[(i-1)*w+j] > t[i*w+j-1] {
			i--
		} else {
			j--
		}
	}
	return common, runs
}

func (s *Server) cmdLCS(c *client, args [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	var vals [2][]byte
	for i, k := range args[1:3] {
		v, found, err := r.Get(k)
		if err != nil {
			c.backendErr(err)
			return
		}
		if found && v.Type != engine.TypeString {
			// LCS's own wording, not WRONGTYPE (as in Redis).
			c.err(msgLCSNotString)
			return
		}
		vals[i] = v.Value
	}
	a, b := vals[0], vals[1]
	var idx, getLen, withLen bool
	minLen := int64(0)
	for j := 3; j < len(args); j++ {
		switch opt := strings.ToLower(string(args[j])); {
		case opt == "idx":
			idx = true
		case opt == "len":
			getLen = true
		case opt == "withmatchlen":
			withLen = true
		case opt == "minmatchlen" && j+1 < len(args):
			j++
			if minLen, ok = parseInt(args[j]); !ok {
				c.err(msgNotInt)
				return
			}
			minLen = max(minLen, 0)
		default:
			c.err(msgSyntax)
			return
		}
	}
	if idx && getLen {
		c.err(msgLCSLenIdx)
		return
	}
	if len(a) >= math.MaxUint32-1 || len(b) >= math.MaxUint32-1 {
		c.err(msgLCSTooLong)
		return
	}
	table := lcsTableBytes(len(a), len(b))
	if table > maxLCSTable {
		c.err(msgLCSMemory)
		return
	}
	if !idx && getLen {
		c.int(int64(lcsLen(a, b)))
		return
	}
	release, ok := s.reserveTransient(c, int64(table), "LCS")
	if !ok {
		return
	}
	common, runs := lcs(a, b)
	release()
	if !idx {
		c.bulk(common)
		return
	}
	c.mapHeader(2)
	c.bulkString("matches")
	n := 0
	for _, m := range runs {
		if int64(m.a1-m.a0+1) >= minLen {
			n++
		}
	}
	c.array(n)
	for _, m := range runs {
		l := m.a1 - m.a0 + 1
		if int64(l) < minLen {
			continue
		}
		c.array(2 + int(b2i(withLen)))
		c.array(2)
		c.int(int64(m.a0))
		c.int(int64(m.a1))
		c.array(2)
		c.int(int64(m.b0))
		c.int(int64(m.b1))
		if withLen {
			c.int(int64(l))
		}
	}
	c.bulkString("len")
	c.int(int64(len(common)))
}

// reserveTransient charges n bytes of a command's working memory (LCS's
// table) to the request buffer budget for as long as the command runs, so
// that several large computations at once wait for each other instead of
// exhausting the node. Like a command's arguments, a charge larger than
// the budget counts as the whole budget (the command runs alone), and
// waiting is bounded by the budget's limit. Inside EXEC the command runs
// on the engine's write path, which must never wait: there it takes the
// room only if it is free at once. On failure it has answered.
func (s *Server) reserveTransient(c *client, n int64, what string) (release func(), ok bool) {
	b := s.cfg.Budget
	fail := func(err error) (func(), bool) {
		s.budgetRefusals.Add(1)
		c.errorf("OOM command not allowed: no room in the request buffer budget for %s's %d bytes of working memory: %v", what, n, err)
		return nil, false
	}
	switch {
	case b == nil || n < freeCommandBytes:
		return func() {}, true
	case c.exec == nil && c.rd != nil:
		// Charged to the command itself (with what its arguments hold),
		// given back with them once it has run.
		if err := c.rd.charge(c.ctx, n); err != nil {
			return fail(err)
		}
		return func() {}, true
	}
	want := n
	if capacity := b.Capacity(); capacity > 0 {
		want = min(n, capacity-c.exec.held)
	}
	if want <= 0 {
		return func() {}, true // the transaction holds the whole budget: it runs alone
	}
	now, cancel := context.WithCancel(context.Background())
	cancel() // no wait: room now, or a refusal
	if err := b.Acquire(now, want); err != nil {
		return fail(err)
	}
	return func() { b.Release(want) }, true
}
