package resp

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/node"
)

// hsStep is one step of the hash and set tables: the reply on RESP2
// (want) and, where it differs, on RESP3 (want3). sorted compares the
// elements of an array reply in sorted order: Redis lists hashes and
// sets in its tables' orders, replicant in key order, and clients may
// depend on neither.
type hsStep struct {
	args   []string
	want   string
	want3  string
	sorted bool
	own    bool // replicant-only (skipped against a real Redis)
}

func hs(line, want string) hsStep { return hsStep{args: strings.Fields(line), want: want} }

// hs23 expects different replies on RESP2 and RESP3.
func hs23(line, want2, want3 string) hsStep {
	return hsStep{args: strings.Fields(line), want: want2, want3: want3}
}

func unord(s hsStep) hsStep { s.sorted = true; return s }
func hsOwn(s hsStep) hsStep { s.own = true; return s }

const eWrong = "(error) WRONGTYPE Operation against a key holding the wrong kind of value"

// hashSetGroups are the hash and set command tables, each run on an empty
// database on RESP2 and RESP3.
func hashSetGroups() map[string][]hsStep {
	return map[string][]hsStep{
		"hash basics": {
			hs("hset h a 1 b 2", ":2"), hs("hset h a 1", ":0"), hs("hset h a 3 c 4", ":1"),
			hs("hset h x 1 x 2", ":1"), hs("hget h x", "2"), hs("hdel h x", ":1"),
			hs("hget h a", "3"), hs("hget h zz", "(nil)"), hs("hget nokey a", "(nil)"),
			hs("hmget h a zz c", "[3 (nil) 4]"), hs("hmget nokey a b", "[(nil) (nil)]"),
			hs("hlen h", ":3"), hs("hlen nokey", ":0"),
			hs("hexists h a", ":1"), hs("hexists h zz", ":0"), hs("hexists nokey a", ":0"),
			hs("hstrlen h a", ":1"), hs("hstrlen h zz", ":0"), hs("hstrlen nokey a", ":0"),
			unord(hs23("hgetall h", "[2 3 4 a b c]", "{a=3 b=2 c=4}")),
			hs23("hgetall nokey", "[]", "{}"),
			unord(hs("hkeys h", "[a b c]")), unord(hs("hvals h", "[2 3 4]")),
			hs("hkeys nokey", "[]"), hs("hvals nokey", "[]"),
			hs("hsetnx h a x", ":0"), hs("hget h a", "3"), hs("hsetnx h d x", ":1"), hs("hget h d", "x"),
			hs("hsetnx new f v", ":1"), hs("hget new f", "v"),
			hs("hmset h e 5 f 6", "OK"), hs("hlen h", ":6"),
			hs("hdel h a zz e", ":2"), hs("hdel nokey a", ":0"), hs("hdel h zz", ":0"),
			hs("hdel h b c d f", ":4"), hs("exists h", ":0"), hs("hlen h", ":0"),
		},
		"hash arity": {
			hs("hset h", arity("hset")), hs("hset h a", arity("hset")), hs("hset h a 1 b", arity("hset")),
			hs("hmset h a", arity("hmset")), hs("hmset h a 1 b", arity("hmset")),
			hs("hsetnx h a", arity("hsetnx")), hs("hsetnx h a b c", arity("hsetnx")),
			hs("hget h", arity("hget")), hs("hget h a b", arity("hget")), hs("hmget h", arity("hmget")),
			hs("hgetall", arity("hgetall")), hs("hgetall a b", arity("hgetall")), hs("hkeys a b", arity("hkeys")),
			hs("hvals", arity("hvals")), hs("hlen", arity("hlen")), hs("hexists h", arity("hexists")),
			hs("hdel h", arity("hdel")), hs("hincrby h a", arity("hincrby")),
			hs("hincrbyfloat h a", arity("hincrbyfloat")), hs("hstrlen h", arity("hstrlen")),
			hs("hrandfield", arity("hrandfield")), hs("hscan h", arity("hscan")),
		},
		"hash counters": {
			hs("hincrby h n 5", ":5"), hs("hincrby h n -10", ":-5"), hs("hincrby h n x", eInt),
			hs("hincrby h n 1.5", eInt), hs("hset h s str", ":1"),
			hs("hincrby h s 1", "(error) ERR hash value is not an integer"),
			hs("hincrby h big 9223372036854775807", ":9223372036854775807"),
			hs("hincrby h big 1", "(error) ERR increment or decrement would overflow"),
			hs("hincrby h neg -9223372036854775808", ":-9223372036854775808"),
			hs("hincrby h neg -1", "(error) ERR increment or decrement would overflow"),
			hs("hincrby h n 0", ":-5"),
			hs("hincrbyfloat h f 1.5", "1.5"), hs("hincrbyfloat h f 1e2", "101.5"),
			hs("hincrbyfloat h n 0.5", "-4.5"), hs("hincrbyfloat h g 0x10", "16"),
			hs("hincrbyfloat h s 1", "(error) ERR hash value is not a float"),
			hs("hincrbyfloat h f x", eFloat), hs("hincrbyfloat h f inf", "(error) ERR value is NaN or Infinity"),
			hs("hset h i inf", ":1"), hs("hincrbyfloat h i 1", "(error) ERR increment would produce NaN or Infinity"),
			hs("hget h f", "101.5"), hs("hincrbyfloat h f -101.5", "0"),
			{args: []string{"hset", "h", "sp", " 1"}, want: ":1"},
			hs("hincrby h sp 1", "(error) ERR hash value is not an integer"),
			hs("hincrby h sp x", eInt),
		},
		"hash wrong types": {
			hs("set str x", "OK"), hs("sadd st a", ":1"),
			hs("hset str a b", eWrong), hs("hset st a b", eWrong), hs("hmset str a b", eWrong),
			hs("hsetnx str a b", eWrong), hs("hget str a", eWrong), hs("hget st a", eWrong),
			hs("hmget str a", eWrong), hs("hgetall str", eWrong), hs("hkeys st", eWrong), hs("hvals str", eWrong),
			hs("hlen str", eWrong), hs("hexists st a", eWrong), hs("hdel str a", eWrong), hs("hdel st a", eWrong),
			hs("hincrby str a 1", eWrong), hs("hincrbyfloat st a 1", eWrong), hs("hstrlen str a", eWrong),
			hs("hrandfield str", eWrong), hs("hrandfield st 1", eWrong), hs("hrandfield str 0", eWrong),
			hs("hscan str 0", eWrong), hs("hscan st 0 count x", eWrong), hs("get str", "x"),
		},
		"hrandfield": {
			hs("hrandfield nokey", "(nil)"), hs("hrandfield nokey 3", "[]"), hs("hrandfield nokey -3 withvalues", "[]"),
			hs("hset h a 1", ":1"),
			hs("hrandfield h", "a"), hs("hrandfield h 1", "[a]"), hs("hrandfield h 5", "[a]"), hs("hrandfield h -3", "[a a a]"),
			hs23("hrandfield h 5 withvalues", "[a 1]", "[[a 1]]"),
			hs23("hrandfield h -2 WITHVALUES", "[a 1 a 1]", "[[a 1] [a 1]]"),
			hs("hrandfield h 0", "[]"), hs("hrandfield h 0 withvalues", "[]"),
			hs("hrandfield h withvalues", eInt), hs("hrandfield h 1 foo", eSyn), hs("hrandfield h 1 withvalues x", eSyn),
			hs("hrandfield h -9223372036854775808", "(error) "+msgRange),
			hs("hrandfield h -4611686018427387904 withvalues", "(error) ERR value is out of range"),
			hs("hrandfield h 4611686018427387904 withvalues", "(error) ERR value is out of range"),
			hsOwn(hs("hrandfield h -1048577", "(error) "+string(errRandomTooMany))),
			hsOwn(hs("hrandfield h -1048577 withvalues", "(error) "+string(errRandomTooMany))),
		},
		"hscan": {
			hs("hset h a 1 b 2 c 3", ":3"),
			hs("hscan h 0", "[0 [a 1 b 2 c 3]]"), hs("hscan h 5", "[0 [a 1 b 2 c 3]]"),
			hs("hscan h 0 count 1", "[0 [a 1 b 2 c 3]]"), hs("hscan h -1", "[0 [a 1 b 2 c 3]]"),
			hs("hscan h 0 match b", "[0 [b 2]]"), hs("hscan h 0 MATCH [ac] COUNT 2", "[0 [a 1 c 3]]"),
			hs("hscan h 0 count 0", eSyn), hs("hscan h 0 count x", eInt), hs("hscan h x", "(error) ERR invalid cursor"),
			hs("hscan h 18446744073709551616", "(error) ERR invalid cursor"), hs("hscan h 0 foo bar", eSyn),
			hs("hscan h 0 count", eSyn), hs("hscan h 0 novalues", eSyn), hs("hscan h 0 type string", eSyn),
			hs("hscan nokey 0", "[0 []]"), hs("hscan nokey 0 count x", "[0 []]"), hs("hscan nokey x", "(error) ERR invalid cursor"),
		},
		"set basics": {
			hs("sadd s a b c", ":3"), hs("sadd s a d", ":1"), hs("sadd s a", ":0"), hs("scard s", ":4"), hs("scard nokey", ":0"),
			hs("sismember s a", ":1"), hs("sismember s z", ":0"), hs("sismember nokey a", ":0"),
			hs("smismember s a z d", "[:1 :0 :1]"), hs("smismember nokey a", "[:0]"),
			unord(hs("smembers s", "[a b c d]")), hs("smembers nokey", "[]"),
			hs("srem s a zz", ":1"), hs("srem nokey a", ":0"), hs("srem s zz", ":0"), hs("srem s b c d", ":3"),
			hs("exists s", ":0"), hs("scard s", ":0"),
			// Small integer sets list in numeric order, as Redis's intsets.
			hs("sadd n 3 1 2 10 -5", ":5"), hs("smembers n", "[-5 1 2 3 10]"), hs("sunion n", "[-5 1 2 3 10]"),
			hs("sadd s", arity("sadd")), hs("srem s", arity("srem")), hs("sismember s", arity("sismember")),
			hs("smismember s", arity("smismember")), hs("smembers", arity("smembers")), hs("scard a b", arity("scard")),
			hs("spop", arity("spop")), hs("srandmember", arity("srandmember")), hs("smove a b", arity("smove")),
			hs("sinter", arity("sinter")), hs("sunion", arity("sunion")), hs("sdiff", arity("sdiff")),
			hs("sinterstore d", arity("sinterstore")), hs("sunionstore d", arity("sunionstore")),
			hs("sdiffstore d", arity("sdiffstore")), hs("sintercard 1", arity("sintercard")), hs("sscan s", arity("sscan")),
		},
		"set wrong types": {
			hs("set str x", "OK"), hs("hset h f v", ":1"),
			hs("sadd str a", eWrong), hs("sadd h a", eWrong), hs("srem str a", eWrong), hs("sismember h a", eWrong),
			hs("smismember str a", eWrong), hs("smembers h", eWrong), hs("scard str", eWrong),
			hs("spop str", eWrong), hs("spop h 0", eWrong), hs("srandmember str", eWrong), hs("srandmember h 0", eWrong),
			hs("sscan str 0", eWrong), hs("sscan h 0 count x", eWrong),
			hs("sinter nokey str", eWrong), hs("sunion nokey h", eWrong), hs("sdiff nokey str", eWrong),
			hs("sintercard 2 nokey str", eWrong), hs("sinterstore d nokey str", eWrong),
			hs("sunionstore d nokey h", eWrong), hs("sdiffstore d nokey str", eWrong),
		},
		"set algebra": {
			hs("sadd a 1 2 3", ":3"), hs("sadd b 2 3 4", ":3"), hs("sadd c x", ":1"),
			hs("sinter a b", "[2 3]"), hs("sunion a b", "[1 2 3 4]"), hs("sdiff a b", "[1]"), hs("sdiff b a", "[4]"),
			hs("sinter a", "[1 2 3]"), hs("sinter a a", "[1 2 3]"), hs("sdiff a a", "[]"), hs("sinter a b c", "[]"),
			hs("sinter a nokey", "[]"), hs("sunion a nokey", "[1 2 3]"), hs("sdiff a nokey", "[1 2 3]"), hs("sdiff nokey a", "[]"),
			unord(hs("sunion a c", "[1 2 3 x]")),
			hs("sintercard 2 a b", ":2"), hs("sintercard 2 a b limit 1", ":1"), hs("sintercard 2 a b LIMIT 0", ":2"),
			hs("sintercard 1 a limit 1 limit 3", ":3"), hs("sintercard 1 nokey", ":0"), hs("sintercard 2 a nokey", ":0"),
			hs("sintercard 0 a", "(error) ERR numkeys should be greater than 0"),
			hs("sintercard x a", "(error) ERR numkeys should be greater than 0"),
			hs("sintercard 3 a b", "(error) ERR Number of keys can't be greater than number of args"),
			hs("sintercard 1 a limit -1", "(error) ERR LIMIT can't be negative"),
			hs("sintercard 1 a limit x", "(error) ERR LIMIT can't be negative"),
			hs("sintercard 1 a foo", eSyn), hs("sintercard 1 a limit", eSyn),
			hs("sinterstore d a b", ":2"), hs("smembers d", "[2 3]"),
			hs("sunionstore d a b", ":4"), hs("smembers d", "[1 2 3 4]"),
			hs("sdiffstore d a b", ":1"), hs("smembers d", "[1]"),
			hs("sinterstore d a nokey", ":0"), hs("exists d", ":0"), hs("sunionstore d nokey", ":0"), hs("exists d", ":0"),
			hs("set str x", "OK"), hs("expire str 100", ":1"), hs("sunionstore str a", ":3"), hs("smembers str", "[1 2 3]"),
			hs("ttl str", ":-1"), hs("hset h f v", ":1"), hs("sinterstore h a b", ":2"), hs("smembers h", "[2 3]"),
			hs("sdiffstore a a b", ":1"), hs("smembers a", "[1]"), hs("sinterstore a a b", ":0"), hs("exists a", ":0"),
		},
		"spop and srandmember": {
			hs("spop nokey", "(nil)"), hs("spop nokey 2", "[]"), hs("spop nokey 0", "[]"),
			hs("sadd one x", ":1"), hs("spop one 0", "[]"), hs("scard one", ":1"),
			hs("spop one -1", "(error) ERR value is out of range, must be positive"),
			hs("spop one x", "(error) ERR value is out of range, must be positive"), hs("spop one 1 2", eSyn),
			hs("spop one", "x"), hs("exists one", ":0"), hs("sadd one x", ":1"), hs("spop one 5", "[x]"), hs("exists one", ":0"),
			hs("srandmember nokey", "(nil)"), hs("srandmember nokey 2", "[]"), hs("srandmember nokey -2", "[]"),
			hs("sadd one x", ":1"), hs("srandmember one", "x"), hs("srandmember one 3", "[x]"),
			hs("srandmember one -3", "[x x x]"), hs("srandmember one 0", "[]"), hs("srandmember one 1 2", eSyn),
			hs("srandmember one x", eInt), hs("srandmember one -9223372036854775808", "(error) "+msgRange),
			hs("srandmember one 9223372036854775807", "[x]"),
			hsOwn(hs("srandmember one -1048577", "(error) "+string(errRandomTooMany))),
			hs("sadd two 1 2", ":2"), hs("spop two 2", "[1 2]"), hs("exists two", ":0"),
		},
		"smove": {
			hs("sadd src a b c", ":3"), hs("smove src dst a", ":1"), hs("smembers dst", "[a]"),
			hs("smove src dst zz", ":0"), hs("smove nokey dst a", ":0"),
			hs("set str x", "OK"), hs("smove nokey str a", ":0"), hs("smove src str b", eWrong),
			hs("smove src str zz", eWrong), hs("smove str src a", eWrong), hs("scard src", ":2"),
			hs("smove src src b", ":1"), hs("smove src src zz", ":0"), hs("sadd dst b", ":1"),
			hs("smove src dst b", ":1"), hs("smembers dst", "[a b]"), hs("smove src dst c", ":1"),
			hs("exists src", ":0"), hs("scard dst", ":3"),
		},
		"sscan": {
			hs("sadd s 10 3 1 2", ":4"),
			hs("sscan s 0", "[0 [1 2 3 10]]"), hs("sscan s 99 count 1", "[0 [1 2 3 10]]"),
			hs("sscan s 0 match 1*", "[0 [1 10]]"), hs("sscan s 0 count 0", eSyn), hs("sscan s 0 count x", eInt),
			hs("sscan s x", "(error) ERR invalid cursor"), hs("sscan s 0 foo bar", eSyn),
			hs("sscan nokey 0", "[0 []]"), hs("sscan nokey 0 foo", "[0 []]"),
		},
	}
}

// TestHashSetCommandTable runs the hash and set tables on both protocols.
// With REPLICANT_TEST_REDIS=host:port it runs them against that Redis
// instead (to check the expectations), skipping replicant-only steps.
func TestHashSetCommandTable(t *testing.T) {
	ref := os.Getenv("REPLICANT_TEST_REDIS")
	var ts *testServer
	if ref == "" {
		ts = startServer(t, node.Config{})
	}
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			var c *redis.Client
			if ref != "" {
				c = redis.NewClient(&redis.Options{Addr: ref, Protocol: proto, PoolSize: 1})
				t.Cleanup(func() { c.Close() })
			} else {
				c = ts.client(t, proto, func(o *redis.Options) { o.PoolSize = 1 })
			}
			ctx := context.Background()
			for name, steps := range hashSetGroups() {
				t.Run(name, func(t *testing.T) {
					if got := do(ctx, c, "flushall"); got != "OK" {
						t.Fatalf("flushall: %s", got)
					}
					for i, s := range steps {
						if s.own && ref != "" {
							continue
						}
						args := make([]any, len(s.args))
						for j, a := range s.args {
							args[j] = a
						}
						v, err := c.Do(ctx, args...).Result()
						if s.sorted {
							if a, ok := v.([]any); ok {
								slices.SortFunc(a, func(x, y any) int { return strings.Compare(fmtVal(x), fmtVal(y)) })
							}
						}
						want := s.want
						if proto == 3 && s.want3 != "" {
							want = s.want3
						}
						if got := fmtReply(v, err); got != want {
							t.Errorf("step %d %q:\n got %q\nwant %q", i, s.args, got, want)
						}
					}
				})
			}
		})
	}
}

// TestHashSetRESP3Types checks the reply types byte for byte: RESP3 maps
// for HGETALL, sets for SMEMBERS, SINTER, SUNION, SDIFF and SPOP with a
// count, arrays for SRANDMEMBER and HRANDFIELD (pairs nested), nulls.
func TestHashSetRESP3Types(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	if got := r.do("HELLO", "3"); !strings.HasPrefix(got, "%") {
		t.Fatal(got)
	}
	for _, s := range []struct{ args, want string }{
		{"HSET h a 1", ":1\r\n"},
		{"HGETALL h", "%1\r\n$1\r\na\r\n$1\r\n1\r\n"},
		{"HGETALL nokey", "%0\r\n"},
		{"HGET h zz", "_\r\n"},
		{"HMGET h a zz", "*2\r\n$1\r\n1\r\n_\r\n"},
		{"HRANDFIELD nokey", "_\r\n"},
		{"HRANDFIELD h 1 WITHVALUES", "*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"},
		{"HRANDFIELD h -1", "*1\r\n$1\r\na\r\n"},
		{"HINCRBYFLOAT h a 0.5", "$3\r\n1.5\r\n"},
		{"HSCAN h 0", "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$3\r\n1.5\r\n"},
		{"SADD s x", ":1\r\n"},
		{"SMEMBERS s", "~1\r\n$1\r\nx\r\n"},
		{"SMEMBERS nokey", "~0\r\n"},
		{"SINTER s s", "~1\r\n$1\r\nx\r\n"},
		{"SUNION s nokey", "~1\r\n$1\r\nx\r\n"},
		{"SDIFF s nokey", "~1\r\n$1\r\nx\r\n"},
		{"SRANDMEMBER s 2", "*1\r\n$1\r\nx\r\n"},
		{"SRANDMEMBER nokey", "_\r\n"},
		{"SMISMEMBER s x y", "*2\r\n:1\r\n:0\r\n"},
		{"SSCAN s 0", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nx\r\n"},
		{"SPOP nokey 1", "~0\r\n"},
		{"SPOP s 0", "~0\r\n"},
		{"SPOP s 3", "~1\r\n$1\r\nx\r\n"},
		{"SPOP s", "_\r\n"},
	} {
		if got := r.do(strings.Fields(s.args)...); got != s.want {
			t.Errorf("%s: %q want %q", s.args, got, s.want)
		}
	}
}

// TestCollScanWalks: a large hash and set are walked COUNT elements per
// call while elements are added and removed; every element present for
// the whole walk comes exactly once, none that never existed comes, and
// cursors of one family or of SCAN are refused by the other.
func TestCollScanWalks(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	const n = 1000
	fields := make([]any, 0, 2*n)
	members := make([]any, 0, n)
	for i := range n {
		fields = append(fields, fmt.Sprintf("f%04d", i), strconv.Itoa(i))
		members = append(members, fmt.Sprintf("m%04d", i))
	}
	if err := c.HSet(ctx, "h", fields...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.SAdd(ctx, "s", members...).Err(); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []struct{ cmd, key, prefix string }{{"hscan", "h", "f"}, {"sscan", "s", "m"}} {
		t.Run(fam.cmd, func(t *testing.T) {
			seen := map[string]int{}
			cursor := "0"
			for step := 0; ; step++ {
				res, err := c.Do(ctx, fam.cmd, fam.key, cursor, "count", "7").Slice()
				if err != nil {
					t.Fatal(err)
				}
				cursor = res[0].(string)
				elems := res[1].([]any)
				for i := 0; i < len(elems); i++ {
					seen[elems[i].(string)]++
					if fam.cmd == "hscan" {
						i++ // the value
					}
				}
				// Meanwhile: the first 50 elements go, 50 new ones come.
				if step < 50 {
					victim := fmt.Sprintf("%s%04d", fam.prefix, step)
					extra := fmt.Sprintf("%sx%04d", fam.prefix, step)
					if fam.cmd == "hscan" {
						_ = c.HDel(ctx, fam.key, victim).Err()
						_ = c.HSet(ctx, fam.key, extra, "x").Err()
					} else {
						_ = c.SRem(ctx, fam.key, victim).Err()
						_ = c.SAdd(ctx, fam.key, extra).Err()
					}
				}
				if cursor == "0" {
					break
				}
			}
			for i := 50; i < n; i++ {
				if k := fmt.Sprintf("%s%04d", fam.prefix, i); seen[k] != 1 {
					t.Errorf("%s seen %d times", k, seen[k])
				}
			}
			for k, times := range seen {
				if times != 1 {
					t.Errorf("%s seen %d times", k, times)
				}
			}
		})
	}
	// A cursor of the other family, or of SCAN, is not a position here.
	hres, _ := c.Do(ctx, "hscan", "h", "0", "count", "5").Slice()
	mustDo(t, c, "(error) ERR invalid cursor", "sscan", "s", hres[0])
	sres, _ := c.Do(ctx, "scan", "0", "count", "1").Slice()
	mustDo(t, c, "(error) ERR invalid cursor", "hscan", "h", sres[0])
	mustDo(t, c, "(error) ERR invalid cursor", "hscan", "h", "12345")
	// MATCH filters the COUNT examined elements.
	res, err := c.Do(ctx, "hscan", "h", "0", "match", "f01[0-4]*", "count", "100").Slice()
	if err != nil || len(res[1].([]any)) != 2*50 {
		t.Fatalf("HSCAN MATCH: %d elements (%v)", len(res[1].([]any)), err)
	}
}

// TestRandomCommands: the random commands answer members of the
// collection, distinct ones for a positive count; SPOP removes what it
// returns; on small and large (descent) collections.
func TestRandomCommands(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 3)
	ctx := context.Background()
	for _, n := range []int{50, 3000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			key, hkey := fmt.Sprintf("s%d", n), fmt.Sprintf("h%d", n)
			members := make([]any, 0, n)
			fields := make([]any, 0, 2*n)
			in := map[string]bool{}
			for i := range n {
				m := fmt.Sprintf("m%d", i)
				members = append(members, m)
				fields = append(fields, m, "v"+m)
				in[m] = true
			}
			if err := c.SAdd(ctx, key, members...).Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.HSet(ctx, hkey, fields...).Err(); err != nil {
				t.Fatal(err)
			}
			distinct := func(what string, got []string, want int) {
				t.Helper()
				seen := map[string]bool{}
				for _, m := range got {
					if !in[m] || seen[m] {
						t.Fatalf("%s: %q not a member or repeated", what, m)
					}
					seen[m] = true
				}
				if len(got) != want {
					t.Fatalf("%s: %d elements, want %d", what, len(got), want)
				}
			}
			for _, k := range []int64{1, 5, 40, int64(n) / 2, int64(n) + 10} {
				got, err := c.SRandMemberN(ctx, key, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				distinct(fmt.Sprintf("SRANDMEMBER %d", k), got, min(int(k), n))
				fv, err := c.HRandFieldWithValues(ctx, hkey, int(k)).Result()
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, p := range fv {
					if p.Value != "v"+p.Key {
						t.Fatalf("HRANDFIELD WITHVALUES: %q=%q", p.Key, p.Value)
					}
					names = append(names, p.Key)
				}
				distinct(fmt.Sprintf("HRANDFIELD %d", k), names, min(int(k), n))
			}
			rep, err := c.Do(ctx, "srandmember", key, -300).StringSlice()
			if err != nil || len(rep) != 300 {
				t.Fatalf("SRANDMEMBER -300: %d (%v)", len(rep), err)
			}
			for _, m := range rep {
				if !in[m] {
					t.Fatalf("SRANDMEMBER -300: %q", m)
				}
			}
			popped, err := c.SPopN(ctx, key, 7).Result()
			if err != nil {
				t.Fatal(err)
			}
			distinct("SPOP 7", popped, 7)
			for _, m := range popped {
				if ok, _ := c.SIsMember(ctx, key, m).Result(); ok {
					t.Fatalf("SPOP returned %q but it is still a member", m)
				}
			}
			one, err := c.SPop(ctx, key).Result()
			if err != nil || !in[one] {
				t.Fatalf("SPOP: %q %v", one, err)
			}
			if card, _ := c.SCard(ctx, key).Result(); card != int64(n-8) {
				t.Fatalf("SCARD after popping 8: %d", card)
			}
			all, err := c.SPopN(ctx, key, int64(n)).Result()
			if err != nil || len(all) != n-8 {
				t.Fatalf("SPOP all: %d (%v)", len(all), err)
			}
			mustDo(t, c, ":0", "exists", key)
		})
	}
}

// TestHashSetTransactions: collection commands run inside EXEC, each
// seeing the ones before; WATCH sees a changed field value.
func TestHashSetTransactions(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	other := ts.client(t, 2)
	ctx := context.Background()
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, "h", "a", "1")
		p.HIncrBy(ctx, "h", "a", 5)
		p.SAdd(ctx, "s", "x", "y")
		p.SInterStore(ctx, "d", "s", "s")
		p.SMembers(ctx, "d")
		p.HGetAll(ctx, "h")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := cmds[1].(*redis.IntCmd).Val(); v != 6 {
		t.Fatalf("HINCRBY inside EXEC: %d", v)
	}
	if v := cmds[4].(*redis.StringSliceCmd).Val(); !slices.Equal(v, []string{"x", "y"}) {
		t.Fatalf("SMEMBERS of SINTERSTORE's result inside EXEC: %q", v)
	}
	// A field's new value is a change of the key.
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		if err := other.HSet(ctx, "h", "a", "7").Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, "h", "a", "8")
			return nil
		})
		return err
	}, "h")
	if err != redis.TxFailedErr {
		t.Fatalf("EXEC after a watched hash's field changed: %v", err)
	}
	mustDo(t, c, "7", "hget", "h", "a")
	// Setting a field to its value changes nothing: the transaction runs.
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		if err := other.HSet(ctx, "h", "a", "7").Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.SAdd(ctx, "s", "z")
			return nil
		})
		return err
	}, "h")
	if err != nil {
		t.Fatalf("EXEC after an unchanged HSET: %v", err)
	}
}

// TestHashSetLimits: fields and members are keys (the key size limit),
// values are values; a refused command writes nothing. Reserved keys are
// refused, SINTERCARD's included.
func TestHashSetLimits(t *testing.T) {
	ts := startServer(t, node.Config{MaxValueSize: 1 << 10, MaxKeySize: 64})
	c := ts.client(t, 2)
	ctx := context.Background()
	lastLSN := func() uint64 { return ts.n.Store().State().LastLSN }
	mustDo(t, c, ":1", "hset", "h", "a", "1")
	before := lastLSN()
	long := strings.Repeat("k", 65)
	big := strings.Repeat("v", 1025)
	fieldErr := "(error) ERR hash field too large (65 bytes > max 64)"
	memberErr := "(error) ERR set member too large (65 bytes > max 64)"
	valErr := "(error) ERR value too large (1025 bytes > max 1024)"
	for _, s := range []struct {
		args []any
		want string
	}{
		{[]any{"hset", "h", "b", "1", long, "2"}, fieldErr},
		{[]any{"hset", "h", "b", big}, valErr},
		{[]any{"hmset", "h", "b", big}, valErr},
		{[]any{"hsetnx", "h", long, "1"}, fieldErr},
		{[]any{"hincrby", "h", long, "1"}, fieldErr},
		{[]any{"hincrbyfloat", "h", long, "1"}, fieldErr},
		{[]any{"sadd", "s", "x", long}, memberErr},
		{[]any{"smove", "s", "d", long}, memberErr},
		{[]any{"sintercard", "1", "\x00replicant\x00e"}, "(error) " + msgReserved},
		{[]any{"sinter", "\x00replicant\x00e"}, "(error) " + msgReserved},
	} {
		if got := do(ctx, c, s.args...); got != s.want {
			t.Errorf("%s: %q want %q", s.args[0], got, s.want)
		}
	}
	if lastLSN() != before {
		t.Fatalf("refused writes reached the log: LSN %d -> %d", before, lastLSN())
	}
	mustDo(t, c, ":1", "hlen", "h")
}

// TestSortIntset: small integer sets in numeric order; anything else as
// it came.
func TestSortIntset(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"10 -1 2", "-1 2 10"},
		{"10 x 2", "10 x 2"},
		{"10 01 2", "10 01 2"}, // "01" is not an integer to Redis
		{"9223372036854775807 -9223372036854775808", "-9223372036854775808 9223372036854775807"},
		{"", ""},
	} {
		var ms [][]byte
		for _, f := range strings.Fields(c.in) {
			ms = append(ms, []byte(f))
		}
		sortIntset(ms)
		var got []string
		for _, m := range ms {
			got = append(got, string(m))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("sortIntset(%s) = %s, want %s", c.in, strings.Join(got, " "), c.want)
		}
	}
	many := make([][]byte, 513)
	for i := range many {
		many[i] = []byte(strconv.Itoa(513 - i))
	}
	sortIntset(many)
	if string(many[0]) != "513" {
		t.Errorf("a set of 513 integers (no intset) was reordered")
	}
}
