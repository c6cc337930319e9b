package resp

import (
	"context"
	"strings"
	"testing"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// TestCollectionsRefusedWithoutCollState: in multi-leader and leaderless
// modes, an engine that keeps no collection state (its readers are not
// engine.CollReaders) refuses every collection family with an error
// naming the command, the family and the mode (never a silent empty
// answer), while strings still work.
func TestCollectionsRefusedWithoutCollState(t *testing.T) {
	for _, mode := range []string{engine.ModeMultiLeader, engine.ModeLeaderless} {
		srv := startFake(t, func(n *node.Node) *fakeBackend {
			st := n.Status()
			st.Mode = mode
			return &fakeBackend{Node: n, status: &st}
		})
		r := dialRaw(t, srv)
		for _, c := range []struct{ cmd, noun string }{
			{"HSET h f v", "hashes"}, {"HGET h f", "hashes"},
			{"LPUSH l a", "lists"}, {"LRANGE l 0 -1", "lists"},
			{"SADD s a", "sets"}, {"SMEMBERS s", "sets"},
			{"ZADD z 1 a", "sorted sets"}, {"ZRANGE z 0 -1", "sorted sets"},
		} {
			got := r.do(strings.Fields(c.cmd)...)
			name := strings.ToUpper(strings.Fields(c.cmd)[0])
			want := "-ERR " + name + ": " + c.noun + " are not supported in " + mode + " mode"
			if !strings.HasPrefix(got, want) {
				t.Errorf("%s: %s answered %q, want %q…", mode, c.cmd, got, want)
			}
		}
		if got := r.do("SET", "k", "v"); got != "+OK\r\n" {
			t.Errorf("%s: SET answered %q", mode, got)
		}
	}
}

// TestListsAndBlockingRefusedInConvergentModes: where hashes, sets and
// sorted sets run, lists and the blocking pops are still refused, naming
// the command, the family and the mode, and nothing is written.
func TestListsAndBlockingRefusedInConvergentModes(t *testing.T) {
	for _, mode := range []string{engine.ModeMultiLeader, engine.ModeLeaderless} {
		_, addr := startCollMode(t, mode)
		r := dialRaw(t, addr)
		for _, c := range []struct{ cmd, want string }{
			{"LPUSH l a", "-ERR LPUSH: lists are not supported in " + mode + " mode ("},
			{"RPUSH l a", "-ERR RPUSH: lists are not supported in " + mode + " mode ("},
			{"LRANGE l 0 -1", "-ERR LRANGE: lists are not supported in " + mode + " mode ("},
			{"BLPOP l 0", "-ERR BLPOP: lists are not supported in " + mode + " mode ("},
			{"BLMOVE l m LEFT LEFT 0", "-ERR BLMOVE: lists are not supported in " + mode + " mode ("},
			{"BZPOPMIN z 0", "-ERR BZPOPMIN: blocking pops from sorted sets are not supported in " + mode + " mode ("},
			{"BZPOPMAX z 0", "-ERR BZPOPMAX: blocking pops from sorted sets are not supported in " + mode + " mode ("},
			{"BZMPOP 0 1 z MIN", "-ERR BZMPOP: blocking pops from sorted sets are not supported in " + mode + " mode ("},
		} {
			if got := r.do(strings.Fields(c.cmd)...); !strings.HasPrefix(got, c.want) {
				t.Errorf("%s: %s answered %q, want %q…", mode, c.cmd, got, c.want)
			}
		}
		if got := r.do("DBSIZE"); got != ":0\r\n" {
			t.Errorf("%s: refused commands wrote: DBSIZE %q", mode, got)
		}
	}
}

// TestCollectionsInConvergentModes: hashes, sets and sorted sets served
// through package convergent over an engine whose Txns and Readers keep a
// crdt.Coll per key, with the generic key commands and WRONGTYPE as in
// single-leader mode.
func TestCollectionsInConvergentModes(t *testing.T) {
	const wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
	steps := []struct{ cmd, want string }{
		{"HSET h f 1 g 2", ":2\r\n"},
		{"HSET h f 3", ":0\r\n"},
		{"HGET h f", "$1\r\n3\r\n"},
		{"HGETALL h", "*4\r\n$1\r\nf\r\n$1\r\n3\r\n$1\r\ng\r\n$1\r\n2\r\n"},
		{"HINCRBY h g 5", ":7\r\n"},
		{"HDEL h f nope", ":1\r\n"},
		{"HLEN h", ":1\r\n"},
		{"SADD s a b c", ":3\r\n"},
		{"SREM s b", ":1\r\n"},
		{"SMEMBERS s", "*2\r\n$1\r\na\r\n$1\r\nc\r\n"},
		{"SCARD s", ":2\r\n"},
		{"SISMEMBER s c", ":1\r\n"},
		{"ZADD z 2 b 1 a 3 c", ":3\r\n"},
		{"ZINCRBY z 10 a", "$2\r\n11\r\n"},
		{"ZRANGE z 0 -1 WITHSCORES", "*6\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\na\r\n$2\r\n11\r\n"},
		{"ZREVRANGE z 0 0", "*1\r\n$1\r\na\r\n"},
		{"ZRANGEBYSCORE z 3 +inf", "*2\r\n$1\r\nc\r\n$1\r\na\r\n"},
		{"ZSCORE z c", "$1\r\n3\r\n"},
		{"ZRANK z a", ":2\r\n"},
		{"ZPOPMIN z", "*2\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{"TYPE h", "+hash\r\n"},
		{"TYPE s", "+set\r\n"},
		{"TYPE z", "+zset\r\n"},
		{"GET h", wrong},
		{"SADD h x", wrong},
		{"INCR z", wrong},
		{"HSET s f v", wrong},
		{"SET str v", "+OK\r\n"},
		{"ZADD str 1 a", wrong},
		{"KEYS *", "*4\r\n$1\r\nh\r\n$1\r\ns\r\n$3\r\nstr\r\n$1\r\nz\r\n"},
		{"SCAN 0 TYPE zset", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nz\r\n"},
		{"DBSIZE", ":4\r\n"},
		{"EXPIRE s 100", ":1\r\n"},
		{"TTL s", ":100\r\n"},
		{"PERSIST s", ":1\r\n"},
		{"TTL s", ":-1\r\n"},
		{"RENAME s s2", "+OK\r\n"},
		{"EXISTS s s2", ":1\r\n"},
		{"SMEMBERS s2", "*2\r\n$1\r\na\r\n$1\r\nc\r\n"},
		{"COPY z str REPLACE", ":1\r\n"},
		{"ZRANGE str 0 -1", "*2\r\n$1\r\nc\r\n$1\r\na\r\n"},
		{"SUNIONSTORE u s2 nokey", ":2\r\n"},
		{"SMEMBERS u", "*2\r\n$1\r\na\r\n$1\r\nc\r\n"},
		{"ZUNIONSTORE zu 2 z str", ":2\r\n"},
		{"ZRANGE zu 0 -1 WITHSCORES", "*4\r\n$1\r\nc\r\n$1\r\n6\r\n$1\r\na\r\n$2\r\n22\r\n"},
		{"SPOP s2 5", "*2\r\n$1\r\na\r\n$1\r\nc\r\n"},
		{"EXISTS s2", ":0\r\n"},
		{"DEL h z", ":2\r\n"},
		{"HGETALL h", "*0\r\n"},
		{"SET h plain", "+OK\r\n"},
		{"GET h", "$5\r\nplain\r\n"},
		// More of each family, over one more set of keys.
		{"SADD m1 a b c", ":3\r\n"},
		{"SADD m2 b c d", ":3\r\n"},
		{"SMOVE m1 m2 a", ":1\r\n"},
		{"SINTERCARD 2 m1 m2", ":2\r\n"},
		{"SDIFFSTORE d m2 m1", ":2\r\n"},
		{"SMEMBERS d", "*2\r\n$1\r\na\r\n$1\r\nd\r\n"},
		{"SSCAN m2 0", "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"},
		{"HSET hh a 1 b 2", ":2\r\n"},
		{"HSCAN hh 0", "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{"OBJECT ENCODING hh", "$8\r\nlistpack\r\n"},
		{"ZADD zz 0 a 0 b 0 c 5 x", ":4\r\n"},
		{"ZRANGEBYLEX zz [b +", "*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nx\r\n"},
		{"ZRANGESTORE zr zz 1 2", ":2\r\n"},
		{"ZRANGE zr 0 -1", "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"ZPOPMAX zz", "*2\r\n$1\r\nx\r\n$1\r\n5\r\n"},
		{"ZCARD zz", ":3\r\n"},
	}
	for _, mode := range []string{engine.ModeMultiLeader, engine.ModeLeaderless} {
		b, addr := startCollMode(t, mode)
		r := dialRaw(t, addr)
		for _, st := range steps {
			if got := r.do(strings.Fields(st.cmd)...); got != st.want {
				t.Errorf("%s: %s: got %q, want %q", mode, st.cmd, got, st.want)
			}
		}
		// The element layout is virtual: nothing but the user keys is
		// stored.
		sr, err := b.n.Read(context.Background(), engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
		if err != nil {
			t.Fatal(err)
		}
		_ = sr.Scan(nil, func(k []byte, _ engine.Version) bool {
			if engine.IsReserved(k) {
				t.Errorf("%s: stored %q", mode, k)
			}
			return true
		})
	}
}

// TestCollectionsInMulti: a MULTI's collection commands share one
// adapter: later commands read what earlier ones changed before anything
// is put, WRONGTYPE is a command's own reply, and the result is kept.
func TestCollectionsInMulti(t *testing.T) {
	_, addr := startCollMode(t, engine.ModeMultiLeader)
	r := dialRaw(t, addr)
	for _, st := range []struct{ cmd, want string }{
		{"SADD s x", ":1\r\n"},
		{"MULTI", "+OK\r\n"},
		{"HSET h f v", "+QUEUED\r\n"},
		{"HGETALL h", "+QUEUED\r\n"},
		{"INCR h", "+QUEUED\r\n"},
		{"SREM s x", "+QUEUED\r\n"},
		{"EXISTS s", "+QUEUED\r\n"},
		{"SADD s y", "+QUEUED\r\n"},
		{"RENAME h h2", "+QUEUED\r\n"},
		{"HGET h2 f", "+QUEUED\r\n"},
		{"KEYS *", "+QUEUED\r\n"},
		{"EXEC", "*9\r\n:1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n:0\r\n:1\r\n+OK\r\n$1\r\nv\r\n*2\r\n$2\r\nh2\r\n$1\r\ns\r\n"},
		{"HGETALL h2", "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"},
		{"SMEMBERS s", "*1\r\n$1\r\ny\r\n"},
		{"EXISTS h", ":0\r\n"},
	} {
		if got := r.do(strings.Fields(st.cmd)...); got != st.want {
			t.Errorf("%s: got %q, want %q", st.cmd, got, st.want)
		}
	}
}

// TestReservedKeysRefused: no command reads or writes a key in the
// engines' reserved space, where collections keep their elements, and key
// listings never show them.
func TestReservedKeysRefused(t *testing.T) {
	srv := startFake(t, func(n *node.Node) *fakeBackend { return &fakeBackend{Node: n} })
	r := dialRaw(t, srv)
	rk := string(engine.ReservedPrefix) + "e\x00\x00\x00\x00\x00\x00\x00\x01f"
	for _, cmd := range [][]string{{"SET", rk, "x"}, {"GET", rk}, {"DEL", rk}, {"HSET", rk, "f", "v"}, {"EXISTS", rk}} {
		if got := r.do(cmd...); !strings.HasPrefix(got, "-ERR keys starting with") {
			t.Errorf("%s on a reserved key answered %q", cmd[0], got)
		}
	}
	r.do("HSET", "h", "a", "1", "b", "2")
	r.do("SET", "s", "x")
	for _, c := range []struct{ cmd, want string }{
		{"KEYS *", "*2\r\n$1\r\nh\r\n$1\r\ns\r\n"},
		{"DBSIZE", ":2\r\n"},
		{"SCAN 0 COUNT 100", "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nh\r\n$1\r\ns\r\n"},
		{"SCAN 0 TYPE hash", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nh\r\n"},
		{"TYPE h", "+hash\r\n"},
		{"TYPE s", "+string\r\n"},
		{"GET h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
	} {
		if got := r.do(strings.Fields(c.cmd)...); got != c.want {
			t.Errorf("%s: got %q want %q", c.cmd, got, c.want)
		}
	}
}

// TestCollectionsInScripts: a script's collection commands share the
// script's one adapter; a list command inside it is refused as outside.
func TestCollectionsInScripts(t *testing.T) {
	_, addr := startCollMode(t, engine.ModeMultiLeader)
	r := dialRaw(t, addr)
	for _, st := range []struct {
		args []string
		want string
	}{
		{[]string{"EVAL", "redis.call('HSET', KEYS[1], 'a', '1'); redis.call('SADD', KEYS[2], 'x'); return redis.call('HGETALL', KEYS[1])", "2", "h", "s"},
			"*2\r\n$1\r\na\r\n$1\r\n1\r\n"},
		{[]string{"SMEMBERS", "s"}, "*1\r\n$1\r\nx\r\n"},
		{[]string{"EVAL", "return redis.pcall('LPUSH', KEYS[1], 'x')", "1", "l"},
			"-ERR LPUSH: lists are not supported in multi-leader mode ("},
		{[]string{"EXISTS", "l"}, ":0\r\n"},
	} {
		if got := r.do(st.args...); !strings.HasPrefix(got, st.want) {
			t.Errorf("%s: got %q, want %q", st.args[0], got, st.want)
		}
	}
}
