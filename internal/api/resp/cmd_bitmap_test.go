package resp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/api/budget"
	"github.com/replicant-db/replicant/internal/node"
)

const (
	eBitOff  = "(error) ERR bit offset is not an integer or out of range"
	eBitVal  = "(error) ERR bit is not an integer or out of range"
	eBitArg  = "(error) ERR The bit argument must be 1 or 0."
	eBfType  = "(error) ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
	eTooLong = "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)"
)

// bitmapGroups are the bitmap and LCS commands' steps, each group run on
// an empty database (see runCommandGroups; with REPLICANT_TEST_REDIS they
// run against Redis, which is where the expectations come from).
func bitmapGroups() map[string][]step {
	return map[string][]step{
		"setbit-getbit": {
			st("setbit k 7 1", ":0"),
			sa("\x01", "get", "k"),
			st("setbit k 7 1", ":1"),
			st("getbit k 7", ":1"),
			st("getbit k 6", ":0"),
			st("getbit k 100", ":0"),
			st("getbit nokey 0", ":0"),
			st("setbit k 20 1", ":0"),
			sa("\x01\x00\x08", "get", "k"),
			st("setbit k 20 0", ":1"),
			sa("\x01\x00\x00", "get", "k"), // cleared bits keep the length
			st("setbit k 0 0", ":0"),
			st("setbit new 0 0", ":0"),
			sa("\x00", "get", "new"), // a clear bit still creates the key
			st("type k", "string"),
			st("setbit k -1 1", eBitOff),
			st("setbit k x 1", eBitOff),
			st("setbit k 4294967296 1", eBitOff),
			st("setbit k 01 1", eBitOff),
			st("setbit k 0 2", eBitVal),
			st("setbit k 0 -1", eBitVal),
			st("setbit k 0 x", eBitVal),
			st("setbit k x x", eBitOff),
			st("getbit k -1", eBitOff),
			st("getbit k 4294967296", eBitOff),
			st("getbit k 4294967295", ":0"),
			st("set t a ex 100", "OK"),
			st("setbit t 6 1", ":0"),
			st("get t", "c"),
			st("ttl t", "~:100"),
			st("setbit k 0", arity("setbit")),
			st("getbit k", arity("getbit")),
		},
		"bitcount": {
			sa("OK", "set", "k", "\xff\xf0\x00\x0f"),
			st("bitcount k", ":16"),
			st("bitcount k 0 -1", ":16"),
			st("bitcount k 1 1", ":4"),
			st("bitcount k 1 2", ":4"),
			st("bitcount k -1 -1", ":4"),
			st("bitcount k -2 -1", ":4"),
			st("bitcount k -1 -2", ":0"),
			st("bitcount k -100 -200", ":0"),
			st("bitcount k -200 -100", ":8"), // both clamp to byte 0
			st("bitcount k 2 100", ":4"),
			st("bitcount k 5 100", ":0"),
			st("bitcount k 4 11 bit", ":8"),
			st("bitcount k 4 11 BIT", ":8"),
			st("bitcount k 13 29 bit", ":2"),
			st("bitcount k -4 -1 bit", ":4"),
			st("bitcount k 0 0 byte", ":8"),
			st("bitcount k 0", eSyn),
			st("bitcount k 0 1 bits", eSyn),
			st("bitcount k 0 1 bit x", eSyn),
			st("bitcount k a 1", eInt),
			st("bitcount k 0 b", eInt),
			st("bitcount nokey", ":0"),
			st("bitcount nokey 0", ":0"), // Redis 7 looks the key up first
			st("bitcount nokey a b", ":0"),
			sa("OK", "set", "e", ""),
			st("bitcount e", ":0"),
			st("bitcount e 0 -1", ":0"),
			st("bitcount e 0 -1 bit", ":0"),
			st("bitcount", arity("bitcount")),
		},
		"bitpos": {
			sa("OK", "set", "k", "\xff\xf0\x00"),
			st("bitpos k 0", ":12"),
			st("bitpos k 1", ":0"),
			st("bitpos k 1 1", ":8"),
			st("bitpos k 1 2", ":-1"),
			st("bitpos k 0 0 0", ":-1"),
			st("bitpos k 0 0 1", ":12"),
			st("bitpos k 1 -10 -20", ":0"), // no early answer for reversed negatives
			st("bitpos k 1 -1", ":-1"),
			st("bitpos k 0 -1", ":16"),
			st("bitpos k 1 5 100", ":-1"),
			st("bitpos k 1 3 10 bit", ":3"),
			st("bitpos k 0 3 10 bit", ":-1"),
			st("bitpos k 0 3 15 bit", ":12"),
			st("bitpos k 1 12 100 bit", ":-1"),
			st("bitpos k 0 7 4 bit", ":-1"),
			st("bitpos k 1 -12 -1 bit", ":-1"),
			st("bitpos k 0 -12 -1 BIT", ":12"),
			st("bitpos k 0 0 -1 byte", ":12"),
			st("bitpos k 2", eBitArg),
			st("bitpos k -1", eBitArg),
			st("bitpos k x", eInt),
			st("bitpos k 1 a", eInt),
			st("bitpos k 1 0 a", eInt),
			st("bitpos k 1 0 a foo", eSyn), // the unit is read before the end
			st("bitpos k 1 a 0 foo", eInt),
			st("bitpos k 1 0 1 foo", eSyn),
			st("bitpos k 1 0 1 bit x", eSyn),
			st("bitpos k 0 3 bit", eInt),
			sa("OK", "set", "ones", "\xff\xff"),
			st("bitpos ones 0", ":16"),
			st("bitpos ones 0 1", ":16"),
			st("bitpos ones 0 5", ":-1"),
			st("bitpos ones 0 0 -1", ":-1"),
			st("bitpos ones 0 0 100", ":-1"),
			st("bitpos ones 0 0 15 bit", ":-1"),
			st("bitpos ones 1 0 -1", ":0"),
			st("bitpos nokey 0", ":0"),
			st("bitpos nokey 1", ":-1"),
			st("bitpos nokey 1 abc", ":-1"),
			st("bitpos nokey 0 1 2 foo", ":0"),
			st("bitpos nokey 3", eBitArg),
			sa("OK", "set", "e", ""),
			st("bitpos e 0", ":-1"),
			st("bitpos e 1", ":-1"),
			st("bitpos e 0 0", ":-1"),
			st("bitpos k", arity("bitpos")),
		},
		"bitop": {
			sa("OK", "set", "a", "\x0f\xf0"),
			sa("OK", "set", "b", "\xff"),
			st("bitop and d a b", ":2"),
			sa("\x0f\x00", "get", "d"),
			st("bitop or d a b nokey", ":2"),
			sa("\xff\xf0", "get", "d"),
			st("bitop xor d a b", ":2"),
			sa("\xf0\xf0", "get", "d"),
			st("bitop NOT d a", ":2"),
			sa("\xf0\x0f", "get", "d"),
			st("bitop and d a nokey", ":2"),
			sa("\x00\x00", "get", "d"),
			st("bitop and a a", ":2"),
			sa("\x0f\xf0", "get", "a"),
			st("set d x ex 100", "OK"),
			st("bitop or d b", ":1"),
			st("ttl d", ":-1"), // the result has no expiry
			st("bitop and d nokey", ":0"),
			st("exists d", ":0"), // an empty result deletes the destination
			st("set d v", "OK"),
			st("bitop or d nokey nokey2", ":0"),
			st("exists d", ":0"),
			sa("OK", "set", "e", ""),
			st("set d v", "OK"),
			st("bitop xor d e", ":0"),
			st("exists d", ":0"),
			st("bitop not d a b", "(error) ERR BITOP NOT must be called with a single source key."),
			st("bitop foo d a", eSyn),
			st("bitop and d", arity("bitop")),
		},
		"bitfield": {
			st("bitfield k", "[]"),
			st("exists k", ":0"),
			st("bitfield k get u8 0", "[:0]"),
			st("exists k", ":0"),
			st("bitfield k set u8 0 255 get u8 0 get i8 0", "[:0 :255 :-1]"),
			st("bitfield k incrby u8 0 1", "[:0]"),
			st("bitfield k set i8 #1 -100 get i8 8 get u4 #2", "[:0 :-100 :9]"),
			sa("\x00\x9c", "get", "k"),
			st("bitfield k incrby i8 8 -100", "[:56]"),
			st("bitfield k overflow sat incrby i8 8 -200 overflow fail incrby i8 8 -1", "[:-128 (nil)]"),
			st("bitfield k overflow wrap incrby i8 8 -1", "[:127]"),
			st("bitfield k overflow sat set u8 0 -1 get u8 0", "[:0 :255]"),
			st("bitfield k overflow sat set i8 0 -200 get i8 0", "[:-1 :-128]"),
			st("bitfield k overflow wrap set i8 0 200 get i8 0", "[:-128 :-56]"),
			st("bitfield k overflow sat incrby u8 0 -300", "[:0]"),
			st("bitfield k overflow wrap incrby u8 0 -1", "[:255]"),
			st("bitfield k overflow fail incrby u8 0 1 get u8 0", "[(nil) :255]"),
			st("bitfield k set i64 0 1 incrby i64 0 9223372036854775807", "[:-36310271995674624 :-9223372036854775808]"),
			st("bitfield k overflow sat incrby i64 0 -1", "[:-9223372036854775808]"),
			st("bitfield k set u63 1 9223372036854775807 get u63 1 get i64 0", "[:0 :9223372036854775807 :-1]"),
			st("bitfield k overflow fail incrby u63 1 1", "[(nil)]"),
			st("bitfield k get u1 70 get i1 7", "[:0 :-1]"),
			st("bitfield k get u8 #2305843009213693953", "[:255]"), // #n wraps, as in Redis
			st("strlen k", ":8"),
			st("bitfield grow overflow fail set u8 16 999", "[(nil)]"),
			st("strlen grow", ":3"), // the failed write still grew the string
			st("bitfield k get U8 0", eBfType),
			st("bitfield k get u64 0", eBfType),
			st("bitfield k get i65 0", eBfType),
			st("bitfield k get i0 0", eBfType),
			st("bitfield k get u08 0", eBfType),
			st("bitfield k get x8 0", eBfType),
			st("bitfield k get u8 -1", eBitOff),
			st("bitfield k get u8 #-1", eBitOff),
			st("bitfield k get u8 #", eBitOff),
			st("bitfield k get u8 4294967296", eBitOff),
			st("bitfield k set u8 0 x", eInt),
			st("bitfield k set u8 0", eSyn),
			st("bitfield k overflow foo", "(error) ERR Invalid OVERFLOW type specified"),
			st("bitfield k overflow", eSyn),
			st("bitfield k foo", eSyn),
			st("bitfield k get u8 0 get u8 x get u8", eBitOff),
			st("bitfield_ro k get u8 0 get i8 #7", "[:255 :-1]"),
			st("bitfield_ro nokey get u8 0", "[:0]"),
			st("bitfield_ro k", "[]"),
			st("bitfield_ro k get u8 0 overflow sat", "[:255]"),
			st("bitfield_ro k set u8 0 1", "(error) ERR BITFIELD_RO only supports the GET subcommand"),
			st("bitfield_ro k get u8 0 set u8 0 x", eInt), // arguments first
			st("bitfield", arity("bitfield")),
			st("bitfield_ro", arity("bitfield_ro")),
		},
		"lcs": {
			st("mset key1 ohmytext key2 mynewtext", "OK"),
			st("lcs key1 key2", "mytext"),
			st("lcs key1 key2 LEN", ":6"),
			st("lcs key1 key2 len len withmatchlen", ":6"),
			st("lcs key1 key1", "ohmytext"),
			st("lcs key1 nokey", ""),
			st("lcs nokey nokey2 len", ":0"),
			st("lcs key1 key2 len idx", "(error) ERR If you want both the length and indexes, please just use IDX."),
			st("lcs key1 key2 foo", eSyn),
			st("lcs key1 key2 minmatchlen", eSyn),
			st("lcs key1 key2 minmatchlen x", eInt),
			st("lcs nokey nokey2 foo", eSyn),
			st("mset a ABCBDAB b BDCABA", "OK"),
			st("lcs a b", "BDAB"), // Redis's choice among equally long ones
			st("lcs b a", "BCBA"),
			st("lcs key1", arity("lcs")),
		},
	}
}

func TestBitmapCommandTable(t *testing.T) { runCommandGroups(t, bitmapGroups()) }

// TestBitmapCommandInfo: arity, flags, key positions and ACL categories
// as Redis 7's COMMAND INFO gives them; and COMMAND DOCS's group.
func TestBitmapCommandInfo(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	for name, want := range map[string]string{
		"setbit":      ":4 [write denyoom] :1 :1 :1 [@write @bitmap @slow]",
		"getbit":      ":3 [readonly fast] :1 :1 :1 [@read @bitmap @fast]",
		"bitcount":    ":-2 [readonly] :1 :1 :1 [@read @bitmap @slow]",
		"bitpos":      ":-3 [readonly] :1 :1 :1 [@read @bitmap @slow]",
		"bitop":       ":-4 [write denyoom] :2 :-1 :1 [@write @bitmap @slow]",
		"bitfield":    ":-2 [write denyoom] :1 :1 :1 [@write @bitmap @slow]",
		"bitfield_ro": ":-2 [readonly fast] :1 :1 :1 [@read @bitmap @fast]",
		"lcs":         ":-3 [readonly] :1 :2 :1 [@read @string @slow]",
	} {
		mustDo(t, c, "[["+name+" "+want+" [] [] []]]", "command", "info", name)
	}
	mustDo(t, c, "[bitop [summary Performs bitwise operations on multiple strings, and stores the result. since 2.6.0 group bitmap]]", "command", "docs", "bitop")
}

// TestLCSReplies: LCS IDX's map, byte for byte in both protocols (the
// expectations are Redis 7's replies).
func TestLCSReplies(t *testing.T) {
	ts := startServer(t, node.Config{})
	for _, c := range []struct {
		args       string
		resp2      string
		resp3Extra string // the RESP3 reply, when it differs
	}{
		{"lcs key1 key2 idx",
			"*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n",
			"%2\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"},
		{"lcs key1 key2 idx minmatchlen 4 withmatchlen",
			"*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n", ""},
		{"lcs key1 key2 minmatchlen -5 IDX withmatchlen",
			"*4\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n", ""},
		{"lcs nokey nokey2 idx", "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n", ""},
		{"lcs key1 key2", "$6\r\nmytext\r\n", ""},
		{"lcs key1 nokey", "$0\r\n\r\n", ""},
	} {
		for _, proto := range []string{"2", "3"} {
			r := dialRaw(t, ts.addr)
			if proto == "3" {
				r.do("HELLO", "3")
			}
			r.do("MSET", "key1", "ohmytext", "key2", "mynewtext")
			want := c.resp2
			if proto == "3" && c.resp3Extra != "" {
				want = c.resp3Extra
			} else if proto == "3" {
				want = strings.Replace(want, "*4\r\n$7\r\nmatches", "%2\r\n$7\r\nmatches", 1)
			}
			if got := r.do(strings.Fields(c.args)...); got != want {
				t.Errorf("resp%s %s:\n got %q\nwant %q", proto, c.args, got, want)
			}
		}
	}
}

// TestLCSMemoryBound: LCS refuses, with Redis's error, strings whose table
// would pass 512 MiB, before allocating anything; LEN alone works from two
// rows of the table.
func TestLCSMemoryBound(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	mustDo(t, c, "OK", "set", "x", strings.Repeat("a", 12000))
	mustDo(t, c, "OK", "set", "y", strings.Repeat("b", 12000))
	for _, args := range [][]any{{"lcs", "x", "y"}, {"lcs", "x", "y", "len"}, {"lcs", "x", "y", "idx"}} {
		if got := do(ctx, c, args...); got != "(error) ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len" {
			t.Errorf("%v: %s", args, got)
		}
	}
	mustDo(t, c, "OK", "set", "y", strings.Repeat("ab", 2000))
	mustDo(t, c, ":2000", "lcs", "x", "y", "len")
	if got := do(ctx, c, "lcs", "x", "y"); got != strings.Repeat("a", 2000) {
		t.Errorf("lcs: %.40q… (%d bytes)", got, len(got))
	}
}

// TestLCSTableBytes: the bound is computed without overflow.
func TestLCSTableBytes(t *testing.T) {
	for _, c := range []struct {
		n, m int
		want uint64
	}{
		{0, 0, 4},
		{11584, 11584, 11585 * 11585 * 4},
		{1 << 40, 1 << 40, 1<<64 - 1},
	} {
		if got := lcsTableBytes(c.n, c.m); got != c.want {
			t.Errorf("lcsTableBytes(%d, %d) = %d, want %d", c.n, c.m, got, c.want)
		}
	}
	if lcsTableBytes(11584, 11584) > maxLCSTable || lcsTableBytes(11585, 11585) <= maxLCSTable {
		t.Errorf("the bound is not Redis's: strings of 11585 bytes pass 512 MiB, of 11584 do not")
	}
}

// TestLCSLenMatchesTable: the two-row length agrees with the full table.
func TestLCSLenMatchesTable(t *testing.T) {
	for _, p := range [][2]string{{"", ""}, {"a", ""}, {"ohmytext", "mynewtext"}, {"ABCBDAB", "BDCABA"}, {"aaaa", "aa"}, {"xyz", "abc"}} {
		common, _ := lcs([]byte(p[0]), []byte(p[1]))
		if n := lcsLen([]byte(p[0]), []byte(p[1])); n != len(common) {
			t.Errorf("%q %q: lcsLen %d, table %q", p[0], p[1], n, common)
		}
	}
}

// TestBitmapWritesOnlyChanges: a bitmap command that changes nothing
// writes nothing (no log entry); one that does writes one entry, and
// keeps the key's expiry.
func TestBitmapWritesOnlyChanges(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 3)
	mustDo(t, c, "OK", "set", "k", "\x01", "ex", "1000")
	mustDo(t, c, "OK", "set", "d", "\x01")
	for _, s := range []struct {
		args   []any
		want   string
		writes bool
	}{
		{[]any{"setbit", "k", "7", "1"}, ":1", false},
		{[]any{"setbit", "k", "6", "0"}, ":0", false},
		{[]any{"setbit", "k", "6", "1"}, ":0", true},
		{[]any{"setbit", "k", "15", "0"}, ":0", true}, // grows
		{[]any{"bitfield", "k", "get", "u8", "0"}, "[:3]", false},
		{[]any{"bitfield", "k", "set", "u8", "0", "3"}, "[:3]", false},
		{[]any{"bitfield", "k", "overflow", "fail", "incrby", "u8", "0", "255"}, "[(nil)]", false},
		{[]any{"bitfield", "k", "overflow", "fail", "incrby", "u8", "16", "256"}, "[(nil)]", true}, // grows all the same
		{[]any{"bitfield", "k", "incrby", "u2", "6", "1"}, "[:0]", true},
		{[]any{"bitfield", "nokey", "get", "u8", "0"}, "[:0]", false},
		{[]any{"bitop", "and", "nokey", "nokey2"}, ":0", false},
		{[]any{"bitop", "or", "d", "nokey2"}, ":0", true}, // deletes d
		{[]any{"bitop", "or", "d", "nokey2"}, ":0", false},
		{[]any{"setbit", "new", "3", "0"}, ":0", true}, // creates it
	} {
		before := ts.n.Status().LastLSN
		mustDo(t, c, s.want, s.args...)
		if after := ts.n.Status().LastLSN; (after != before) != s.writes {
			t.Errorf("%v: last LSN %d -> %d; want a write: %v", s.args, before, after, s.writes)
		}
	}
	mustDo(t, c, "\x00\x00\x00", "get", "k") // u2 at 6 wrapped from 3 to 0
	if ttl := do(context.Background(), c, "ttl", "k"); !replyMatches(ttl, "~:1000") {
		t.Errorf("TTL after bitmap writes: %s", ttl)
	}
}

// TestBitmapLimits: SETBIT and BITFIELD writes that would grow a string
// past the node's value limit get the error every oversize write gets,
// and write nothing; up to the limit they work.
func TestBitmapLimits(t *testing.T) {
	const maxVal = 1 << 20
	ts := startServer(t, node.Config{MaxValueSize: maxVal})
	c := ts.client(t, 2)
	ctx := context.Background()
	mustDo(t, c, "OK", "set", "small", "x")
	tooBig := fmt.Sprintf("(error) ERR value too large (%d bytes > max %d)", maxVal+1, maxVal)
	before := ts.n.Status().LastLSN
	for _, args := range [][]any{
		{"setbit", "small", 8 * maxVal, "1"},
		{"setbit", "new", 8 * maxVal, "0"},
		{"bitfield", "small", "set", "u8", 8 * maxVal, "1"},
		{"bitfield", "small", "get", "u8", "0", "incrby", "u2", 8*maxVal + 6, "1"},
		{"bitfield", "small", "set", "u16", 8*maxVal - 8, "1"},
		{"setrange", "small", maxVal, "y"},
	} {
		if got := do(ctx, c, args...); got != tooBig {
			t.Errorf("%v: %q", args, got)
		}
	}
	if after := ts.n.Status().LastLSN; after != before {
		t.Errorf("refused writes reached the log: LSN %d -> %d", before, after)
	}
	mustDo(t, c, "[:0]", "bitfield", "small", "get", "u8", 8*maxVal) // reads past the end are zeros
	mustDo(t, c, ":0", "setbit", "small", 8*maxVal-1, "1")
	mustDo(t, c, fmt.Sprint(":", maxVal), "strlen", "small")
	mustDo(t, c, "[:1]", "bitfield", "small", "incrby", "u8", 8*maxVal-8, "0")
	mustDo(t, c, fmt.Sprint(":", maxVal), "bitop", "not", "n", "small") // its result fits
	mustDo(t, c, ":0", "getbit", "n", 8*maxVal-1)
}

// TestLCSBudget: LCS's table is charged to the request buffer budget
// while it computes: without room it waits up to the budget's limit, then
// answers -OOM; inside EXEC (on the engine's write path) it never waits.
// With room it answers, and gives the room back.
func TestLCSBudget(t *testing.T) {
	ts := startServer(t, node.Config{})
	b := budget.New(1<<20, 50*time.Millisecond)
	_, addr := serveWith(t, ts, Config{Budget: b})
	r := dialRaw(t, addr)
	a, bb := strings.Repeat("ab", 300), strings.Repeat("ba", 300) // a 1.4 MB table
	r.do("MSET", "a", a, "b", bb)
	// Others hold all but 64 KiB: room to queue commands, none for the
	// table.
	const others = 1<<20 - 64<<10
	if err := b.Acquire(context.Background(), others); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got := r.do("LCS", "a", "b", "LEN"); got != ":599\r\n" {
		t.Errorf("LCS LEN (two rows, not charged): %q", got)
	}
	if got := r.do("LCS", "a", "b"); !strings.HasPrefix(got, "-OOM ") || time.Since(start) < 50*time.Millisecond {
		t.Errorf("LCS without room: %q after %v", got, time.Since(start))
	}
	r.do("MULTI")
	r.do("SET", "c", "1")
	r.do("LCS", "a", "b", "IDX")
	start = time.Now()
	if got := r.do("EXEC"); !strings.HasPrefix(got, "*2\r\n+OK\r\n-OOM ") || time.Since(start) > 40*time.Millisecond {
		t.Errorf("LCS inside EXEC without room: %q after %v", got, time.Since(start))
	}
	b.Release(others)
	if got := r.do("LCS", "a", "b", "LEN"); got != ":599\r\n" {
		t.Errorf("LCS LEN: %q", got)
	}
	if got := r.do("LCS", "a", "b"); got != fmt.Sprintf("$599\r\n%s\r\n", bb[:599]) {
		t.Errorf("LCS with room: %.40q", got)
	}
	r.do("MULTI")
	r.do("LCS", "a", "b", "IDX", "MINMATCHLEN", "10")
	r.do("SETBIT", "c", "7", "0")
	if got := r.do("EXEC"); got != "*2\r\n*4\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:1\r\n:599\r\n*2\r\n:0\r\n:598\r\n$3\r\nlen\r\n:599\r\n:1\r\n" {
		t.Errorf("LCS and SETBIT inside EXEC: %q", got)
	}
	if used := b.InUse(); used != 0 {
		t.Errorf("%d bytes of the budget still held", used)
	}
}
