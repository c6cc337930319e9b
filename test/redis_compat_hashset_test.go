package test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestHashSetCommandsMatchRedis sends the same hash and set commands to
// replicant and to a real redis-server, on RESP2 and RESP3, and requires
// identical replies. Intended differences (docs/redis-compat.md):
//   - the order of a hash's fields and of a set's members (Redis: its
//     tables' or insertion order; replicant: key order, numeric for small
//     integer sets as Redis's intsets) — such replies are compared with
//     their elements sorted (sortedReply);
//   - random choices: only deterministic ones are sent (one element, or a
//     count covering the whole collection);
//   - HSCAN/SSCAN of a large collection pages differently (and its
//     cursors are replicant's own): only compact collections are scanned.
func TestHashSetCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := newProc(t, "n1")
	p.start()
	long := strings.Repeat("v", 100)
	var many []string
	for i := range 300 {
		many = append(many, "m"+strconv.Itoa(i*7))
	}
	var ints []string
	for i := range 40 {
		ints = append(ints, strconv.Itoa(i*i-300))
	}
	cmds := [][]string{
		{"flushall"},
		{"hset", "h", "a", "1", "b", "2", "c", "3"}, {"hset", "h", "a", "1"}, {"hset", "h", "a", "x", "d", "4"},
		{"hset", "h", "a"}, {"hmset", "h", "a", "1", "b"}, {"hmset", "h", "e", "5"},
		{"hget", "h", "a"}, {"hget", "h", "zz"}, {"hget", "nokey", "a"}, {"hmget", "h", "a", "zz", "e"}, {"hmget", "nokey", "a"},
		{"hgetall", "h"}, {"hgetall", "nokey"}, {"hkeys", "h"}, {"hvals", "h"}, {"hlen", "h"}, {"hlen", "nokey"},
		{"hexists", "h", "a"}, {"hexists", "h", "zz"}, {"hstrlen", "h", "a"}, {"hstrlen", "h", "zz"},
		{"hsetnx", "h", "a", "y"}, {"hsetnx", "h", "f", "y"}, {"hdel", "h", "f", "zz"}, {"hdel", "nokey", "a"},
		{"hincrby", "h", "n", "10"}, {"hincrby", "h", "n", "-3"}, {"hincrby", "h", "a", "1"}, {"hincrby", "h", "n", "x"},
		{"hincrby", "h", "n", "9223372036854775807"}, {"hincrbyfloat", "h", "fl", "1.25"}, {"hincrbyfloat", "h", "fl", "3.0e3"},
		{"hincrbyfloat", "h", "a", "1"}, {"hincrbyfloat", "h", "fl", "abc"}, {"hincrbyfloat", "h", "fl", "-inf"},
		{"hincrbyfloat", "h", "fl", "0x1p-2"}, {"hset", "h", "i", "inf"}, {"hincrbyfloat", "h", "i", "1"},
		{"hrandfield", "nokey"}, {"hrandfield", "nokey", "2"}, {"hrandfield", "h", "0"}, {"hrandfield", "h", "100"},
		{"hrandfield", "h", "100", "withvalues"}, {"hrandfield", "h", "1", "bogus"}, {"hrandfield", "h", "x"},
		{"hrandfield", "h", "-4611686018427387904", "withvalues"}, {"hrandfield", "h", "-9223372036854775808"},
		{"hscan", "h", "0"}, {"hscan", "h", "0", "match", "[ab]*"}, {"hscan", "h", "7", "count", "1"},
		{"hscan", "h", "0", "count", "0"}, {"hscan", "h", "bad"}, {"hscan", "nokey", "0"}, {"hscan", "h", "0", "novalues"},
		{"hset", "big", "f", long}, {"hset", "big", "g", "1"}, {"hgetall", "big"}, {"hscan", "big", "0"},
		{"hdel", "h", "a", "b", "c", "d", "e", "n", "fl", "i"}, {"exists", "h"},
		{"sadd", "s", "a", "b", "c"}, {"sadd", "s", "a", "d"}, {"scard", "s"}, {"sismember", "s", "a"}, {"sismember", "s", "zz"},
		{"smismember", "s", "a", "zz"}, {"smembers", "s"}, {"smembers", "nokey"}, {"srem", "s", "d", "zz"},
		{"sadd", "i", "5", "-1", "10", "3"}, {"smembers", "i"}, {"sscan", "i", "0"}, {"sscan", "i", "0", "match", "1*"},
		{"sadd", "ints"}, append([]string{"sadd", "ints"}, ints...), {"smembers", "ints"}, {"sscan", "ints", "0", "count", "3"},
		append([]string{"sadd", "many"}, many...), {"scard", "many"}, {"smembers", "many"}, {"sismember", "many", "m7"},
		{"sinter", "s", "i"}, {"sinter", "s", "s"}, {"sunion", "s", "i"}, {"sunion", "i", "ints"}, {"sdiff", "s", "nokey"},
		{"sdiff", "many", "s"}, {"sinter", "many", "nokey"}, {"sintercard", "2", "many", "many", "limit", "10"},
		{"sintercard", "1", "many"}, {"sintercard", "0", "s"}, {"sintercard", "3", "s"}, {"sintercard", "1", "s", "limit", "-2"},
		{"sinterstore", "d", "i", "ints"}, {"smembers", "d"}, {"sunionstore", "d", "s", "i"}, {"smembers", "d"},
		{"sdiffstore", "d", "many", "many"}, {"exists", "d"}, {"sdiffstore", "s", "s", "nokey"}, {"smembers", "s"},
		{"smove", "s", "t", "a"}, {"smove", "s", "t", "zz"}, {"smove", "nokey", "t", "a"}, {"smove", "s", "s", "b"},
		{"smembers", "t"}, {"srandmember", "t"}, {"srandmember", "t", "5"}, {"srandmember", "t", "-2"}, {"srandmember", "nokey"},
		{"srandmember", "nokey", "3"}, {"srandmember", "t", "x"}, {"spop", "t"}, {"exists", "t"}, {"spop", "nokey", "3"},
		{"spop", "s", "0"}, {"spop", "s", "-3"}, {"spop", "s", "100"}, {"exists", "s"},
		{"set", "str", "x"}, {"hget", "str", "a"}, {"sadd", "str", "a"}, {"smembers", "h2"}, {"hset", "h2", "a", "1"},
		{"sadd", "h2", "x"}, {"scard", "h2"}, {"hlen", "i"}, {"sinter", "nokey", "str"}, {"sunionstore", "d", "h2"},
		{"sunionstore", "str", "i"}, {"smembers", "str"}, {"smove", "i", "h2", "5"}, {"smove", "nokey", "str", "5"},
		{"flushall"},
	}
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			rep, red := dialRESP(t, p.RESP), dialRESP(t, redisAddr)
			if proto == "3" {
				for _, c := range []*respConn{rep, red} {
					if got := c.do("hello", "3"); !strings.HasPrefix(got, "%") {
						t.Fatalf("HELLO 3: %q", got)
					}
				}
			}
			for _, cmd := range cmds {
				want, got := sortedReply(cmd, red.do(cmd...)), sortedReply(cmd, rep.do(cmd...))
				if got != want {
					t.Errorf("%.80q:\nreplicant %.300q\nredis     %.300q", cmd, got, want)
				}
			}
		})
	}
}

// sortedReply sorts the elements of replies whose order Redis leaves to
// its tables (see TestHashSetCommandsMatchRedis): pairs stay together,
// and a SCAN reply's elements are sorted under its cursor.
func sortedReply(cmd []string, reply string) string {
	name := strings.ToLower(cmd[0])
	group := 1
	switch name {
	case "hgetall":
		group = 2
	case "hrandfield":
		// WITHVALUES: flat pairs in RESP2, nested ones in RESP3.
		if _, elems, ok := respSplit(reply); ok && len(cmd) == 4 && len(elems) > 0 && elems[0][0] != '*' {
			group = 2
		}
	case "hscan", "sscan":
		header, elems, ok := respSplit(reply)
		if !ok || len(elems) != 2 {
			return reply
		}
		return header + elems[0] + sortedReply([]string{map[string]string{"hscan": "hgetall", "sscan": "smembers"}[name]}, elems[1])
	case "hkeys", "hvals", "smembers", "sinter", "sunion", "sdiff", "srandmember", "spop":
	default:
		return reply
	}
	header, elems, ok := respSplit(reply)
	if !ok || len(elems)%group != 0 {
		return reply
	}
	var items []string
	for i := 0; i < len(elems); i += group {
		items = append(items, strings.Join(elems[i:i+group], ""))
	}
	slices.Sort(items)
	return header + strings.Join(items, "")
}

// respSplit splits an aggregate reply into its header line and its
// top-level elements, each as sent.
func respSplit(reply string) (header string, elems []string, ok bool) {
	end := strings.Index(reply, "\r\n")
	if end < 0 || !strings.ContainsRune("*~%", rune(reply[0])) {
		return "", nil, false
	}
	header = reply[:end+2]
	for i := end + 2; i < len(reply); {
		j, ok := respEnd(reply, i)
		if !ok {
			return "", nil, false
		}
		elems = append(elems, reply[i:j])
		i = j
	}
	return header, elems, true
}

// respEnd returns where the reply element starting at i ends.
func respEnd(s string, i int) (int, bool) {
	end := strings.Index(s[i:], "\r\n")
	if end < 0 {
		return 0, false
	}
	line := s[i : i+end]
	next := i + end + 2
	n, err := strconv.Atoi(line[1:])
	switch line[0] {
	case '$', '=', '!':
		if err != nil {
			return 0, false
		}
		if n < 0 {
			return next, true
		}
		return next + n + 2, next+n+2 <= len(s)
	case '*', '~', '%', '>':
		if err != nil {
			return 0, false
		}
		if line[0] == '%' {
			n *= 2
		}
		for range max(n, 0) {
			var ok bool
			if next, ok = respEnd(s, next); !ok {
				return 0, false
			}
		}
		return next, true
	}
	return next, true
}

// TestSortedReply keeps the comparison honest: pairs stay pairs, and
// different contents stay different.
func TestSortedReply(t *testing.T) {
	a := "*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n"
	b := "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
	c := "*4\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nb\r\n$1\r\n1\r\n"
	if sortedReply([]string{"hgetall"}, a) != sortedReply([]string{"hgetall"}, b) {
		t.Fatal("the same pairs in another order differ")
	}
	if sortedReply([]string{"hgetall"}, b) == sortedReply([]string{"hgetall"}, c) {
		t.Fatal("other pairs compare equal")
	}
	scan := fmt.Sprintf("*2\r\n$1\r\n0\r\n%s", a)
	if got := sortedReply([]string{"hscan"}, scan); got != "*2\r\n$1\r\n0\r\n"+b {
		t.Fatalf("hscan: %q", got)
	}
}
