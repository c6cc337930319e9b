package resp

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/node"
)

// step is one command and its expected reply, rendered by fmtReply.
type step struct {
	args []string
	want string
	// own marks replicant-specific expectations (skipped when the table is
	// run against a real Redis, see TestCommandTable).
	own bool
}

// s splits a command line on spaces.
func st(line, want string) step { return step{args: strings.Fields(line), want: want} }

// sa takes explicit arguments (for empty or spaced ones).
func sa(want string, args ...string) step { return step{args: args, want: want} }

func own(s step) step { s.own = true; return s }

const (
	eArity = "(error) ERR wrong number of arguments for '%s' command"
	eInt   = "(error) ERR value is not an integer or out of range"
	eSyn   = "(error) ERR syntax error"
	eFloat = "(error) ERR value is not a valid float"
	eExp   = "(error) ERR invalid expire time in '%s' command"
)

func arity(cmd string) string   { return fmt.Sprintf(eArity, cmd) }
func expTime(cmd string) string { return fmt.Sprintf(eExp, cmd) }

// commandTable holds, per group, a sequence run on an empty database.
func commandGroups() map[string][]step {
	return map[string][]step{
		"set": {
			st("set k v", "OK"),
			st("get k", "v"),
			st("get nokey", "(nil)"),
			st("set k v2 get", "v"),
			st("set k v3 nx", "(nil)"),
			st("set k v3 NX GET", "v2"),
			st("get k", "v2"),
			st("set k2 v xx", "(nil)"),
			st("set k2 v xx get", "(nil)"),
			st("exists k2", ":0"),
			st("set k v4 XX", "OK"),
			st("get k", "v4"),
			st("set k2 v nx get", "(nil)"),
			st("get k2", "v"),
			st("set k v nx xx", eSyn),
			st("set k v ex 0", expTime("set")),
			st("set k v ex -1", expTime("set")),
			st("set k v px 0", expTime("set")),
			st("set k v exat 0", expTime("set")),
			st("set k v ex abc", eInt),
			st("set k v ex 10 px 10", eSyn),
			st("set k v keepttl ex 10", eSyn),
			st("set k v ex 10 keepttl", eSyn),
			st("set k v ex", eSyn),
			st("set k v foo", eSyn),
			st("set k v persist", eSyn),
			st("set k v ex 9223372036854775807", expTime("set")),
			st("set k v px 9223372036854775807", expTime("set")),
			st("set", arity("set")),
			st("set k", arity("set")),
			st("get", arity("get")),
			st("get a b", arity("get")),
			st("SET k v EX 100", "OK"),
			st("ttl k", "~:100"),
			st("set k v2 keepttl", "OK"),
			st("ttl k", "~:100"),
			st("get k", "v2"),
			st("set k v", "OK"),
			st("ttl k", ":-1"),
			st("set k v pxat 1", "OK"),
			st("exists k", ":0"),
			st("set k v exat 99999999999", "OK"),
			st("expiretime k", ":99999999999"),
			st("pexpiretime k", ":99999999999000"),
			st("set k v ex 5 ex 100", "OK"),
			st("ttl k", "~:100"),
			st("set k w get px 100000", "v"),
			st("ttl k", "~:100"),
		},
		"setnx-setex-getset": {
			st("setnx a 1", ":1"),
			st("setnx a 2", ":0"),
			st("get a", "1"),
			st("setnx a", arity("setnx")),
			st("setex b 0 v", expTime("setex")),
			st("setex b -5 v", expTime("setex")),
			st("setex b x v", eInt),
			st("setex b 100 v", "OK"),
			st("ttl b", "~:100"),
			st("get b", "v"),
			st("psetex c 100000 v", "OK"),
			st("ttl c", "~:100"),
			st("psetex c 0 v", expTime("psetex")),
			st("getset a 5", "1"),
			st("getset b 6", "v"),
			st("ttl b", ":-1"),
			st("getset z 1", "(nil)"),
			st("get z", "1"),
			st("getdel a", "5"),
			st("getdel a", "(nil)"),
			st("exists a", ":0"),
			st("getdel", arity("getdel")),
		},
		"getex": {
			st("set g v", "OK"),
			st("getex g", "v"),
			st("getex g ex 100", "v"),
			st("ttl g", "~:100"),
			st("getex g persist", "v"),
			st("ttl g", ":-1"),
			st("getex g px 200000", "v"),
			st("ttl g", "~:200"),
			st("getex g exat 99999999999", "v"),
			st("expiretime g", ":99999999999"),
			st("getex g px 0", expTime("getex")),
			st("getex g ex x", eInt),
			st("getex g ex 10 persist", eSyn),
			st("getex g persist ex 10", eSyn),
			st("getex g keepttl", eSyn),
			st("getex g nx", eSyn),
			st("getex g get", eSyn),
			st("getex nokey ex 10", "(nil)"),
			// Redis reads the expiry only once it found a string.
			st("getex nokey ex -1", "(nil)"),
			st("getex nokey ex x", "(nil)"),
			st("getex nokey px 9223372036854775807", "(nil)"),
			st("getex nokey ex 10 ex", eSyn),
			st("exists nokey", ":0"),
			st("getex g px 9223372036854775807", expTime("getex")),
			st("expiretime g", ":99999999999"),
			st("getex g pxat 1", "v"),
			st("exists g", ":0"),
		},
		"mget-mset": {
			st("mset a 1 b 2", "OK"),
			st("mget a b c", "[1 2 (nil)]"),
			st("mset a", arity("mset")),
			st("mset a 1 b", arity("mset")),
			st("msetnx a 3 c 4", ":0"),
			st("get c", "(nil)"),
			st("msetnx c 3 d 4", ":1"),
			st("mget c d", "[3 4]"),
			st("msetnx c", arity("msetnx")),
			st("mset x 1 x 2", "OK"),
			st("get x", "2"),
			st("mget", arity("mget")),
		},
		"incr": {
			st("incr n", ":1"),
			st("incrby n 10", ":11"),
			st("decr n", ":10"),
			st("decrby n 3", ":7"),
			st("incrby n -10", ":-3"),
			st("incrby n x", eInt),
			st("incrby n 1.5", eInt),
			st("incrby n 9223372036854775808", eInt),
			st("set s abc", "OK"),
			st("incr s", eInt),
			st("set lz 01", "OK"),
			st("incr lz", eInt),
			st("set pl +1", "OK"),
			st("incr pl", eInt),
			sa("OK", "set", "sp", " 1"),
			st("incr sp", eInt),
			st("set big 9223372036854775807", "OK"),
			st("incr big", "(error) ERR increment or decrement would overflow"),
			st("set sm -9223372036854775808", "OK"),
			st("decr sm", "(error) ERR increment or decrement would overflow"),
			st("incrby sm -1", "(error) ERR increment or decrement would overflow"),
			st("get sm", "-9223372036854775808"),
			st("decrby n -9223372036854775808", "(error) ERR decrement would overflow"),
			st("set t 5 ex 100", "OK"),
			st("incr t", ":6"),
			st("ttl t", "~:100"),
			st("incr", arity("incr")),
			st("incrby n", arity("incrby")),
		},
		"incrbyfloat": {
			st("set f 10.50", "OK"),
			st("incrbyfloat f 0.1", "10.6"),
			st("incrbyfloat f -5", "5.6"),
			st("get f", "5.6"),
			st("set f 5.0e3", "OK"),
			st("incrbyfloat f 2.0e2", "5200"),
			st("incrbyfloat nf 1.5", "1.5"),
			st("incrbyfloat f abc", eFloat),
			st("incrbyfloat f 1e", eFloat),
			sa(eFloat, "incrbyfloat", "f", " 1"),
			sa(eFloat, "incrbyfloat", "f", ""),
			st("set s abc", "OK"),
			st("incrbyfloat s 1", eFloat),
			st("incrbyfloat f inf", "(error) ERR increment would produce NaN or Infinity"),
			st("incrbyfloat f nan", eFloat),
			st("set z 0", "OK"),
			st("incrbyfloat z -0", "0"),
			st("set p 0.1", "OK"),
			st("incrbyfloat p 0.2", "0.3"),
			st("set i 3", "OK"),
			st("incrbyfloat i 1", "4"),
			st("set t 1 ex 100", "OK"),
			st("incrbyfloat t 0.5", "1.5"),
			st("ttl t", "~:100"),
			st("incrbyfloat t", arity("incrbyfloat")),
		},
		"append-range": {
			st("append a hello", ":5"),
			st("append a _world", ":11"),
			st("strlen a", ":11"),
			st("strlen none", ":0"),
			st("getrange a 0 4", "hello"),
			st("getrange a -5 -1", "world"),
			st("getrange a 0 -1", "hello_world"),
			st("getrange a 5 3", ""),
			st("getrange a -1 -5", ""),
			st("getrange a 100 200", ""),
			st("getrange a -100 2", "hel"),
			st("getrange a 3 100", "lo_world"),
			st("getrange none 0 -1", ""),
			st("getrange a x 1", eInt),
			st("getrange a 0", arity("getrange")),
			st("substr a 0 1", "he"),
			st("setrange a 6 W", ":11"),
			st("get a", "hello_World"),
			st("setrange a 11 !", ":12"),
			st("get a", "hello_World!"),
			st("setrange s 3 x", ":4"),
			sa("\x00\x00\x00x", "get", "s"),
			st("setrange a -1 x", "(error) ERR offset is out of range"),
			st("setrange a x x", eInt),
			st("setrange a 536870911 xx", "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
			sa(":0", "setrange", "none", "10", ""),
			st("exists none", ":0"),
			sa(":12", "setrange", "a", "100", ""),
			sa(":0", "append", "e", ""),
			st("exists e", ":1"),
			sa(":12", "append", "a", ""),
			st("set t abc px 100000", "OK"),
			st("append t d", ":4"),
			st("setrange t 0 X", ":4"),
			st("get t", "Xbcd"),
			st("ttl t", "~:100"),
		},
		"del-exists-type": {
			st("mset a 1 b 2 c 3", "OK"),
			st("del a b x", ":2"),
			st("del a", ":0"),
			st("del c c", ":1"),
			st("set c 3", "OK"),
			st("exists c c x", ":2"),
			st("unlink c", ":1"),
			st("type c", "none"),
			st("set c 1", "OK"),
			st("type c", "string"),
			st("touch c x", ":1"),
			st("del", arity("del")),
			st("exists", arity("exists")),
			st("type", arity("type")),
		},
		"rename-copy": {
			st("rename x y", "(error) ERR no such key"),
			st("renamenx x y", "(error) ERR no such key"),
			st("set a 1 ex 100", "OK"),
			st("rename a b", "OK"),
			st("exists a", ":0"),
			st("get b", "1"),
			st("ttl b", "~:100"),
			st("rename b b", "OK"),
			st("renamenx b b", ":0"),
			st("set c 2", "OK"),
			st("renamenx b c", ":0"),
			st("renamenx b d", ":1"),
			st("rename d c", "OK"),
			st("get c", "1"),
			st("ttl c", "~:100"),
			st("copy c c", "(error) ERR source and destination objects are the same"),
			st("copy c e", ":1"),
			st("ttl e", "~:100"),
			st("copy c e", ":0"),
			st("set c 9", "OK"),
			st("copy c e replace", ":1"),
			st("get e", "9"),
			own(st("copy c e db 1", "(error) ERR DB index is out of range")),
			st("copy c e db x", eInt),
			st("copy c e foo", eSyn),
			st("copy c e db", eSyn),
			st("copy x e", ":0"),
			st("copy c e db 0 replace", ":1"),
			st("rename a", arity("rename")),
			st("copy a", arity("copy")),
		},
		"expire": {
			st("set k v", "OK"),
			st("expire k 100", ":1"),
			st("ttl k", "~:100"),
			st("expire k 100 nx", ":0"),
			st("expire k 200 xx", ":1"),
			st("ttl k", "~:200"),
			st("expire k 100 gt", ":0"),
			st("expire k 300 GT", ":1"),
			st("expire k 400 lt", ":0"),
			st("expire k 50 lt", ":1"),
			st("ttl k", "~:50"),
			st("pexpire k 60000", ":1"),
			st("ttl k", "~:60"),
			st("expire k 10 nx xx", "(error) ERR NX and XX, GT or LT options at the same time are not compatible"),
			st("expire k 10 gt lt", "(error) ERR GT and LT options at the same time are not compatible"),
			st("expire k 10 foo", "(error) ERR Unsupported option foo"),
			st("expire k x", eInt),
			st("persist k", ":1"),
			st("persist k", ":0"),
			st("persist nokey", ":0"),
			st("ttl k", ":-1"),
			st("pttl k", ":-1"),
			st("expire k 10 xx", ":0"),
			st("expire k 10 gt", ":0"),
			st("expire k 100 lt", ":1"),
			st("ttl k", "~:100"),
			st("expireat k 1", ":1"),
			st("exists k", ":0"),
			st("expire nokey 10", ":0"),
			st("set k v", "OK"),
			st("expire k 0", ":1"),
			st("exists k", ":0"),
			st("set k v", "OK"),
			st("expire k -1", ":1"),
			st("exists k", ":0"),
			st("set k v", "OK"),
			st("pexpire k -100 nx", ":1"),
			st("exists k", ":0"),
			st("set k v", "OK"),
			st("pexpireat k 99999999999000", ":1"),
			st("expiretime k", ":99999999999"),
			st("ttl nokey", ":-2"),
			st("pttl nokey", ":-2"),
			st("expiretime nokey", ":-2"),
			st("pexpiretime nokey", ":-2"),
			st("set k v", "OK"),
			st("expiretime k", ":-1"),
			st("expire k 9223372036854775807", expTime("expire")),
			st("pexpire k 9223372036854775807", expTime("pexpire")),
			st("expireat k 9223372036854775807", expTime("expireat")),
			st("expire k", arity("expire")),
			st("ttl", arity("ttl")),
		},
		"scan-keys": {
			st("mset a1 1 a2 2 b1 3", "OK"),
			st("keys a*", "[a1 a2]"),
			own(st("keys *", "[a1 a2 b1]")),
			own(st("keys [ab]1", "[a1 b1]")),
			st("keys ?2", "[a2]"),
			st("keys z*", "[]"),
			st("dbsize", ":3"),
			st("scan 0 count 100 match b*", "[0 [b1]]"),
			st("scan 0 count 100 match b* type string", "[0 [b1]]"),
			st("scan 0 count 100 type hash", "[0 []]"),
			st("scan 0 count 0", eSyn),
			st("scan 0 count x", eInt),
			st("scan 0 count", eSyn),
			st("scan 0 foo bar", eSyn),
			st("scan x", "(error) ERR invalid cursor"),
			own(st("scan -1", "(error) ERR invalid cursor")),
			own(st("scan 12345", "(error) ERR invalid cursor")),
			st("keys", arity("keys")),
			st("scan", arity("scan")),
			st("flushall", "OK"),
			st("randomkey", "(nil)"),
			st("set only 1", "OK"),
			st("randomkey", "only"),
			st("dbsize x", arity("dbsize")),
			st("randomkey x", arity("randomkey")),
		},
		"flush": {
			st("set a 1", "OK"),
			st("flushall async", "OK"),
			st("dbsize", ":0"),
			st("set a 1", "OK"),
			st("flushdb SYNC", "OK"),
			st("flushall foo", eSyn),
			st("flushall sync async", eSyn),
			st("dbsize", ":0"),
		},
		"connection": {
			st("ping", "PONG"),
			st("ping hi", "hi"),
			st("ping a b", arity("ping")),
			st("echo x", "x"),
			st("echo", arity("echo")),
			st("select 0", "OK"),
			own(st("select 1", "(error) ERR DB index is out of range")),
			st("select x", eInt),
			st("foo a b", "(error) ERR unknown command 'foo', with args beginning with: 'a' 'b' "),
			st("FOO", "(error) ERR unknown command 'FOO', with args beginning with: "),
			st("client setname nm", "OK"),
			st("client getname", "nm"),
			st("client setname", arity("client|setname")),
			sa("(error) ERR Client names cannot contain spaces, newlines or special characters.", "client", "setname", "a b"),
			st("client foo", "(error) ERR unknown subcommand 'foo'. Try CLIENT HELP."),
			st("client", arity("client")),
			st("hello 4", "(error) NOPROTO unsupported protocol version"),
			st("hello 1", "(error) NOPROTO unsupported protocol version"),
			st("hello x", "(error) ERR Protocol version is not an integer or out of range"),
			st("hello 3 foo", "(error) ERR Syntax error in HELLO option 'foo'"),
			st("hello 3 auth a", "(error) ERR Syntax error in HELLO option 'auth'"),
			st("auth x", "(error) ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
			st("auth a b", "(error) WRONGPASS invalid username-password pair or user is disabled."),
			st("auth a b c", eSyn),
			st("auth default x", "OK"),
			st("command foo", "(error) ERR unknown subcommand 'foo'. Try COMMAND HELP."),
			st("wait x 0", eInt),
			st("wait 0 -1", "(error) ERR timeout is negative"),
			st("wait 0 0", ":0"),
			st("wait 0", arity("wait")),
			st("time x", arity("time")),
			st("role x", arity("role")),
		},
		"replicant": {
			own(st("replicant.consistency", "default")),
			own(st("replicant.consistency session", "OK")),
			own(st("replicant.consistency", "session")),
			own(st("replicant.consistency bounded 250", "OK")),
			own(st("replicant.consistency", "bounded:250ms")),
			own(st("replicant.consistency eventual", "OK")),
			own(st("replicant.consistency linearizable", "OK")),
			own(st("replicant.consistency bogus", `(error) ERR unknown consistency "bogus" (want linearizable, session, eventual or bounded:<duration>)`)),
			own(st("replicant.session 1:0", "OK")),
			own(st("replicant.session x", `(error) ERR invalid token "x": want EPOCH:LSN or SITE:LSN,…`)),
			own(st("replicant.session", arity("replicant.session"))),
			// A floor far ahead binds every later read on the connection;
			// TestSessionFloorBindsEveryRead covers that on a connection of
			// its own (this one is shared by every group).
		},
	}
}

// TestCommandTable runs every command group on both protocols. With
// REPLICANT_TEST_REDIS=host:port it runs against that Redis server instead
// (to check the expectations themselves), skipping replicant-only steps.
func TestCommandTable(t *testing.T) { runCommandGroups(t, commandGroups()) }

// runCommandGroups runs each group of steps on an empty database, on both
// protocols, against a fresh replicant or against REPLICANT_TEST_REDIS.
func runCommandGroups(t *testing.T, groups map[string][]step) {
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
				// One connection: steps like SELECT and CLIENT SETNAME
				// are per connection.
				c = ts.client(t, proto, func(o *redis.Options) { o.PoolSize = 1 })
			}
			ctx := context.Background()
			for name, steps := range groups {
				t.Run(name, func(t *testing.T) {
					if got := do(ctx, c, "flushall"); got != "OK" {
						t.Fatalf("flushall: %s", got)
					}
					if got := do(ctx, c, "replicant.consistency", "default"); ref == "" && got != "OK" {
						t.Fatalf("reset consistency: %s", got)
					}
					for i, s := range steps {
						if s.own && ref != "" {
							continue
						}
						args := make([]any, len(s.args))
						for j, a := range s.args {
							args[j] = a
						}
						if got := do(ctx, c, args...); !replyMatches(got, s.want) {
							t.Errorf("step %d %q:\n got %q\nwant %q", i, s.args, got, s.want)
						}
					}
				})
			}
		})
	}
}

// replyMatches compares a reply with an expectation; "~:N" accepts an
// integer from N-2 to N (a TTL read a moment after it was set).
func replyMatches(got, want string) bool {
	if n, ok := strings.CutPrefix(want, "~:"); ok {
		w, err1 := strconv.Atoi(n)
		g, err2 := strconv.Atoi(strings.TrimPrefix(got, ":"))
		return err1 == nil && err2 == nil && strings.HasPrefix(got, ":") && g <= w && g >= w-2
	}
	return got == want
}

// REPLICANT.SESSION sets a floor that every read on the connection honours,
// whatever its consistency level: a floor this node cannot reach fails the
// read instead of serving older state.
func TestSessionFloorBindsEveryRead(t *testing.T) {
	ts := startServer(t, node.Config{ReadTimeout: 200 * time.Millisecond})
	c := ts.client(t, 2, func(o *redis.Options) { o.PoolSize = 1 })
	ctx := context.Background()
	if got := do(ctx, c, "set", "k", "v"); got != "OK" {
		t.Fatalf("set: %s", got)
	}
	for _, step := range [][]any{
		{"replicant.session", "9:999999"},
		{"replicant.consistency", "eventual"},
	} {
		if got := do(ctx, c, step...); got != "OK" {
			t.Fatalf("%v: %s", step, got)
		}
	}
	if got := do(ctx, c, "replicant.token"); got != "9:999999" {
		t.Fatalf("token %s, want the floor 9:999999", got)
	}
	if got := do(ctx, c, "get", "k"); !strings.Contains(got, "TRYAGAIN") || !strings.Contains(got, "not reached") {
		t.Fatalf("eventual GET under an unreachable floor: %s; want TRYAGAIN ... not reached", got)
	}
}
