package resp

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// zstep is one command and its reply on RESP2 and RESP3 (rendered by
// fmtReply; want3 "" means the same as want2).
type zstep struct {
	args         []string
	want2, want3 string
}

func zs(line, want2, want3 string) zstep { return zstep{strings.Fields(line), want2, want3} }
func z1(line, want string) zstep         { return zs(line, want, "") }

// seedCollection writes a collection of type typ at key straight through
// the engine (the hash and set commands are another family's): members
// become fields or set members.
func seedCollection(t *testing.T, ts *testServer, key string, typ engine.Type, members ...string) {
	t.Helper()
	_, err := ts.n.Write(context.Background(), func(tx engine.Txn) error {
		c, err := datatype.Open(tx, []byte(key), typ)
		if err != nil {
			return err
		}
		sub := datatype.SubMember
		if typ == engine.TypeHash {
			sub = datatype.SubField
		}
		for _, m := range members {
			if _, ok, err := c.Get(sub, []byte(m)); err != nil {
				return err
			} else if !ok {
				c.Meta.Len++
			}
			if err := c.Put(sub, []byte(m), nil); err != nil {
				return err
			}
		}
		return c.Save()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestZSetCommandTable runs the sorted-set commands on both protocols:
// reply shapes (RESP3 doubles, nested pairs, null arrays), Redis 7.2's
// score text (shortest digits, integers in full), ZRANK WITHSCORE,
// WRONGTYPE against a string and against other collection types, sets as
// inputs of ZUNION/ZINTER/ZDIFF, and the reserved key space.
func TestZSetCommandTable(t *testing.T) {
	ts := startServer(t, node.Config{})
	steps := []zstep{
		z1("zadd z 1 a 2 b 3 c", ":3"),
		zs("zrank z b withscore", "[:1 2]", "[:1 ,2]"),
		zs("zrevrank z b WITHSCORE", "[:1 2]", "[:1 ,2]"),
		z1("zrank z nope withscore", "(nil)"),
		z1("zrank nokey a withscore", "(nil)"),
		z1("zrank z a withscores", "(error) ERR syntax error"),
		z1("zrank z a withscore x", "(error) ERR wrong number of arguments for 'zrank' command"),
		z1("zrank z a", ":0"),
		z1("zrevrank z a", ":2"),
		// Score text of Redis 7.2 (redis-server 7.0 prints %.17g).
		z1("zadd f 0.1 a 1e17 b 12345.678901234567 c 1e-7 d 0.000001 e 1.5e300 f -2.5 g 4611686018427387904 h 9223372036854775808 i", ":9"),
		zs("zscore f a", "0.1", ",0.1"),
		zs("zscore f b", "100000000000000000", ",100000000000000000"),
		zs("zscore f c", "1.2345678901234567e+4", ",12345.678901234567"),
		zs("zscore f d", "1e-7", ",0.0000001"),
		zs("zscore f e", "0.000001", ",0.000001"),
		z1("zscan f 0 match [defhi]", "[0 [d 1e-7 e 0.000001 h 4611686018427387904 i 9223372036854776000 f 1.5e+300]]"),
		zs("zincrby f 0.2 a", "0.30000000000000004", ",0.30000000000000004"),
		zs("zincrby f -0 new", "-0", ",-0"),
		zs("zscore f new", "0", ",0"),
		zs("zmscore f g nope", "[-2.5 (nil)]", "[,-2.5 (nil)]"),
		zs("zadd f incr 1 a", "1.3", ",1.3"),
		z1("zadd f nx incr 1 a", "(nil)"),
		zs("zrange z 0 -1 withscores", "[a 1 b 2 c 3]", "[[a ,1] [b ,2] [c ,3]]"),
		zs("zrevrangebyscore z +inf -inf withscores limit 0 1", "[c 3]", "[[c ,3]]"),
		zs("zpopmin z", "[a 1]", "[a ,1]"),
		zs("zpopmax z 1", "[c 3]", "[[c ,3]]"),
		zs("zmpop 1 z min", "[z [[b 2]]]", "[z [[b ,2]]]"),
		z1("zmpop 1 z min", "(nil)"),
		z1("exists z", ":0"),
		z1("zadd rm 1 a 2 b", ":2"),
		zs("zrandmember rm 5 withscores", "[b 2 a 1]", "[[b ,2] [a ,1]]"),
		z1("zscan rm 0", "[0 [a 1 b 2]]"),
		// Another collection type, and sets as inputs.
		z1("zadd h 1 a", "(error) "+msgWrongType),
		z1("zscore h a", "(error) "+msgWrongType),
		z1("zrange h 0 -1", "(error) "+msgWrongType),
		z1("zunion 1 h", "(error) "+msgWrongType),
		z1("zpopmin h", "(error) "+msgWrongType),
		z1("zadd zz 5 a 10 x", ":2"),
		zs("zunion 2 s zz withscores", "[b 1 c 1 a 6 x 10]", "[[b ,1] [c ,1] [a ,6] [x ,10]]"),
		zs("zinter 2 s zz weights 3 1 withscores", "[a 8]", "[[a ,8]]"),
		z1("zdiff 2 s zz", "[b c]"),
		z1("zdiff 2 zz s", "[x]"),
		z1("zintercard 2 s zz", ":1"),
		z1("zunionstore out 1 s", ":3"),
		zs("zrange out 0 -1 withscores", "[a 1 b 1 c 1]", "[[a ,1] [b ,1] [c ,1]]"),
		z1("zrange s 0 -1", "(error) "+msgWrongType),
		// The reserved key space, at fixed and numkeys positions.
		z1("zadd \x00replicant\x00x 1 a", "(error) "+msgReserved),
		z1("zunion 2 zz \x00replicant\x00e", "(error) "+msgReserved),
		z1("zunionstore out 1 \x00replicant\x00e", "(error) "+msgReserved),
		z1("zmpop 1 \x00replicant\x00o min", "(error) "+msgReserved),
	}
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			c := ts.client(t, proto, func(o *redis.Options) { o.PoolSize = 1 })
			ctx := context.Background()
			if got := do(ctx, c, "flushall"); got != "OK" {
				t.Fatal(got)
			}
			seedCollection(t, ts, "h", engine.TypeHash, "a")
			seedCollection(t, ts, "s", engine.TypeSet, "a", "b", "c")
			for i, s := range steps {
				args := make([]any, len(s.args))
				for j, a := range s.args {
					args[j] = a
				}
				want := s.want2
				if proto == 3 && s.want3 != "" {
					want = s.want3
				}
				if got := do(ctx, c, args...); got != want {
					t.Errorf("step %d %q:\n got %q\nwant %q", i, s.args, got, want)
				}
			}
		})
	}
}

// TestZSetBytesOnTheWire checks the exact encodings go-redis would hide:
// RESP3 doubles for inf and -0, a RESP2 null array for ZRANK WITHSCORE
// and ZMPOP, and ZSCAN's scores as bulk strings in RESP3.
func TestZSetBytesOnTheWire(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"zadd", "z", "inf", "a", "-inf", "b"}, ":2\r\n"},
		{[]string{"zscore", "z", "a"}, "$3\r\ninf\r\n"},
		{[]string{"zrank", "z", "nope", "withscore"}, "*-1\r\n"},
		{[]string{"zrank", "z", "nope"}, "$-1\r\n"},
		{[]string{"zmpop", "1", "nokey", "min"}, "*-1\r\n"},
		{[]string{"hello", "3"}, ""},
		{[]string{"zscore", "z", "b"}, ",-inf\r\n"},
		{[]string{"zadd", "z", "1.5e300", "c", "0.1", "d"}, ":2\r\n"},
		{[]string{"zmscore", "z", "c", "d", "nope"}, "*3\r\n,1.5e+300\r\n,0.1\r\n_\r\n"},
		{[]string{"zrem", "z", "c", "d"}, ":2\r\n"},
		{[]string{"zincrby", "y", "-0", "m"}, ",-0\r\n"},
		{[]string{"zrank", "z", "nope", "withscore"}, "_\r\n"},
		{[]string{"zscan", "z", "0"}, "*2\r\n$1\r\n0\r\n*4\r\n$1\r\nb\r\n$4\r\n-inf\r\n$1\r\na\r\n$3\r\ninf\r\n"},
		{[]string{"zpopmin", "z"}, "*2\r\n$1\r\nb\r\n,-inf\r\n"},
	}
	for _, s := range steps {
		r.send(encode(s.args...))
		got, err := r.readRaw()
		if err != nil {
			t.Fatal(err)
		}
		if s.want != "" && got != s.want {
			t.Errorf("%q: got %q, want %q", s.args, got, s.want)
		}
	}
}

// TestZSetLargeSet: ranges, ranks and pops on a set of 1000 members read
// from both ends of the index (the reverse scan) and agree with the order
// of scores; ZSCAN walks it whole in COUNT-sized pages, each member once.
func TestZSetLargeSet(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	const n = 1000
	var members []string
	args := []any{"zadd", "big"}
	for i := range n {
		m := fmt.Sprintf("m%04d", i)
		members = append(members, m)
		args = append(args, strconv.Itoa(i*10), m)
	}
	if got := do(ctx, c, args...); got != ":1000" {
		t.Fatalf("zadd: %s", got)
	}
	checks := []struct{ cmd, want string }{
		{"zrange big -3 -1", "[m0997 m0998 m0999]"},
		{"zrange big 0 2", "[m0000 m0001 m0002]"},
		{"zrevrange big 0 1", "[m0999 m0998]"},
		{"zrevrange big -2 -1", "[m0001 m0000]"},
		{"zrange big 500 501 rev", "[m0499 m0498]"},
		{"zrank big m0998", ":998"},
		{"zrevrank big m0998", ":1"},
		{"zrangebyscore big (9970 +inf", "[m0998 m0999]"},
		{"zrevrangebyscore big +inf -inf limit 0 2", "[m0999 m0998]"},
		{"zrevrangebyscore big 5000 (4980", "[m0500 m0499]"},
		{"zcount big 100 200", ":11"},
		{"zpopmax big 2", "[m0999 9990 m0998 9980]"},
		{"zcard big", ":998"},
		{"zremrangebyrank big -3 -1", ":3"},
		{"zrange big -1 -1", "[m0994]"},
		{"zrandmember big -3", ""},
	}
	for _, ck := range checks {
		got := do(ctx, c, strArgs(ck.cmd)...)
		if ck.want != "" && got != ck.want {
			t.Errorf("%s = %s, want %s", ck.cmd, got, ck.want)
		}
	}
	seen := map[string]int{}
	cursor := "0"
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("ZSCAN does not end")
		}
		res, err := c.Do(ctx, "zscan", "big", cursor, "count", "50").Slice()
		if err != nil {
			t.Fatal(err)
		}
		cursor = res[0].(string)
		items := res[1].([]any)
		if len(items) > 100 {
			t.Fatalf("a page of %d items for COUNT 50", len(items)/2)
		}
		for i := 0; i < len(items); i += 2 {
			seen[items[i].(string)]++
		}
		if cursor == "0" {
			break
		}
	}
	if len(seen) != 995 {
		t.Fatalf("ZSCAN saw %d members, want 995", len(seen))
	}
	for m, k := range seen {
		if k != 1 {
			t.Fatalf("ZSCAN returned %s %d times", m, k)
		}
	}
	if got := do(ctx, c, "zscan", "big", "0", "match", "m00[0-4]*", "count", "2000"); !strings.HasPrefix(got, "[0 [m0000 0 m0001 10") {
		t.Fatalf("ZSCAN MATCH: %.60s", got)
	}
	// Another command's cursor is not ZSCAN's.
	if err := c.Set(ctx, "k1", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "k2", "v", 0)
	_, cur, err := c.Scan(ctx, 0, "", 1).Result()
	if err != nil || cur == 0 {
		t.Fatalf("SCAN: %v %v", cur, err)
	}
	if got := do(ctx, c, "zscan", "big", strconv.FormatUint(cur, 10)); got != "(error) ERR invalid cursor" {
		t.Fatalf("ZSCAN with a SCAN cursor: %s", got)
	}
	// Random members come from the set: distinct for a positive count,
	// as many as asked for a negative one.
	all := map[string]bool{}
	for _, m := range members[:995] {
		all[m] = true
	}
	got, err := c.ZRandMember(ctx, "big", 20).Result()
	if err != nil || len(got) != 20 {
		t.Fatalf("ZRANDMEMBER 20: %v %v", got, err)
	}
	slices.Sort(got)
	if len(slices.Compact(got)) != 20 {
		t.Fatalf("ZRANDMEMBER 20 repeats members: %v", got)
	}
	rep, err := c.Do(ctx, "zrandmember", "big", "-5000").StringSlice()
	if err != nil || len(rep) != 5000 {
		t.Fatalf("ZRANDMEMBER -5000: %d members, %v", len(rep), err)
	}
	for _, m := range append(got, rep...) {
		if !all[m] {
			t.Fatalf("ZRANDMEMBER gave %q, not a member", m)
		}
	}
}

func strArgs(line string) []any {
	var out []any
	for _, f := range strings.Fields(line) {
		out = append(out, f)
	}
	return out
}

// TestZSetInTransactionAndNoOps: sorted-set commands inside MULTI/EXEC see
// the transaction's own writes and become its one entry; a command that
// changes nothing appends no entry; a member above the value limit is
// refused.
func TestZSetInTransactionAndNoOps(t *testing.T) {
	ts := startServer(t, node.Config{MaxValueSize: 64})
	c := ts.client(t, 2, func(o *redis.Options) { o.PoolSize = 1 })
	ctx := context.Background()
	last := func() uint64 { return ts.n.Status().LastLSN }
	if got := do(ctx, c, "zadd", "z", "1", "a"); got != ":1" {
		t.Fatal(got)
	}
	before := last()
	for _, cmd := range []string{"zadd z 1 a", "zadd z nx 5 a", "zadd z xx 1 b", "zrem z nope", "zrem nokey a",
		"zremrangebyscore z 5 6", "zpopmin nokey", "zincrby z 0 a", "zadd z gt 0 a", "zrangestore d nokey 0 -1"} {
		do(ctx, c, strArgs(cmd)...)
	}
	if after := last(); after != before {
		t.Fatalf("commands that changed nothing appended %d entries", after-before)
	}
	if got := do(ctx, c, "zadd", "z", "1", strings.Repeat("x", 65)); !strings.Contains(got, "value too large") {
		t.Fatalf("a member above the value limit: %s", got)
	}
	before = last()
	pipe := c.TxPipeline()
	pipe.ZAdd(ctx, "t", redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"})
	pipe.ZIncrBy(ctx, "t", 5, "a")
	rng := pipe.ZRangeWithScores(ctx, "t", 0, -1)
	pop := pipe.ZPopMin(ctx, "t", 1)
	un := pipe.ZUnionStore(ctx, "u", &redis.ZStore{Keys: []string{"t", "z"}})
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rng.Val()); got != "[{2 b} {6 a}]" {
		t.Fatalf("ZRANGE in EXEC saw %s", got)
	}
	if got := fmt.Sprint(pop.Val(), un.Val()); got != "[{2 b}] 1" {
		t.Fatalf("ZPOPMIN, ZUNIONSTORE in EXEC: %s", got)
	}
	if after := last(); after != before+1 {
		t.Fatalf("the transaction appended %d entries, want 1", after-before)
	}
	if got := do(ctx, c, "zrange", "u", "0", "-1", "withscores"); got != "[a 7]" {
		t.Fatalf("after EXEC: %s", got)
	}
	// WRONGTYPE is one command's error: the others of EXEC still apply,
	// in a transaction that writes and in one that only reads.
	if err := c.Set(ctx, "str", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, cmds := range [][][]any{
		{{"zadd", "str", "1", "a"}, {"zadd", "t", "9", "z"}, {"zrange", "str", "0", "-1"}, {"zcard", "t"}},
		{{"zscore", "str", "a"}, {"zcard", "t"}},
	} {
		pipe := c.TxPipeline()
		var res []*redis.Cmd
		for _, cmd := range cmds {
			res = append(res, pipe.Do(ctx, cmd...))
		}
		_, _ = pipe.Exec(ctx)
		var got []string
		for _, r := range res {
			got = append(got, fmtReply(r.Result()))
		}
		want := "(error) " + msgWrongType + "|:1|(error) " + msgWrongType + "|:2"
		if len(cmds) == 2 {
			want = "(error) " + msgWrongType + "|:2"
		}
		if strings.Join(got, "|") != want {
			t.Fatalf("EXEC with a WRONGTYPE command: %s", strings.Join(got, "|"))
		}
	}
}
