package resp

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/node"
)

// srvStep is one step of the server-command table: want is the reply on
// both protocols unless want3 gives RESP3's; own marks replicant's own
// answers (skipped against a real Redis).
type srvStep struct {
	args        []string
	want, want3 string
	own         bool
}

func ss(line, want string) srvStep { return srvStep{args: strings.Fields(line), want: want} }

func ss3(line, want2, want3 string) srvStep {
	return srvStep{args: strings.Fields(line), want: want2, want3: want3}
}

func ssOwn(s srvStep) srvStep { s.own = true; return s }

func cfgErr(arg, why string) string {
	return fmt.Sprintf("(error) ERR CONFIG SET failed (possibly related to argument '%s') - %s", arg, why)
}

// serverSteps are the server and introspection commands, with Redis's
// replies and errors (checked against redis-server with
// REPLICANT_TEST_REDIS=host:port, see TestServerCommandTable).
func serverSteps() map[string][]srvStep {
	long := strings.Repeat("x", 73)
	return map[string][]srvStep{
		"config": {
			ss("config", arity("config")),
			ss("config get", arity("config|get")),
			ss("config set maxclients", arity("config|set")),
			ss("config bla", "(error) ERR unknown subcommand 'bla'. Try CONFIG HELP."),
			ss("config set foo bar", "(error) ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
			ss("config set foo bar maxclients 1", "(error) ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
			ss("config set maxclients 10 foo bar", "(error) ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
			ss("config set maxclients 10 timeout", "(error) ERR syntax error"),
			ss("config set maxclients abc", cfgErr("maxclients", "argument couldn't be parsed into an integer")),
			ss("config set maxclients 0", cfgErr("maxclients", "argument must be between 1 and 4294967295 inclusive")),
			ss("config set databases 3", cfgErr("databases", "can't set immutable config")),
			ss("config set maxclients 100 maxclients 200", cfgErr("maxclients", "duplicate parameter")),
			ss("config set maxclients 100 MAXCLIENTS 200", cfgErr("MAXCLIENTS", "duplicate parameter")),
			ss("config set maxmemory-policy bad", cfgErr("maxmemory-policy", "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction")),
			ssOwn(ss("config set maxmemory-policy allkeys-lru", cfgErr("maxmemory-policy", "replicant never evicts keys: only noeviction is supported"))),
			ss("config set maxmemory-policy noeviction", "OK"),
			ss("config set appendfsync never", cfgErr("appendfsync", "argument(s) must be one of the following: everysec, always, no")),
			ssOwn(ss("config set appendfsync everysec", cfgErr("appendfsync", "replicant fsyncs its log before acknowledging a write: only always is supported"))),
			ss("config set save bad", cfgErr("save", "Invalid save parameters")),
			ss("config set save", arity("config|set")),
			ss("config set timeout -1", cfgErr("timeout", "argument must be between 0 and 2147483647 inclusive")),
			ss("config set timeout x", cfgErr("timeout", "argument couldn't be parsed into an integer")),
			ss("config set maxmemory lots", cfgErr("maxmemory", "argument must be a memory value")),
			ss("config set maxmemory 0", "OK"),
			ss("config set slowlog-log-slower-than -2", cfgErr("slowlog-log-slower-than", "argument must be between -1 and 9223372036854775807 inclusive")),
			ss("config set slowlog-max-len -1", cfgErr("slowlog-max-len", "argument must be between 0 and 9223372036854775807 inclusive")),
			// A refused pair changes nothing, even when others were valid.
			ss("config set timeout 300 maxclients 0", cfgErr("maxclients", "argument must be between 1 and 4294967295 inclusive")),
			ss3("config get timeout", "[timeout 0]", "{timeout=0}"),
			ss("config set timeout 300 maxclients 5000", "OK"),
			ss3("config get timeout", "[timeout 300]", "{timeout=300}"),
			ss3("config get maxclients", "[maxclients 5000]", "{maxclients=5000}"),
			ss3("config get TIMEOUT maxcl*", "[TIMEOUT 300 maxclients 5000]", "{TIMEOUT=300 maxclients=5000}"),
			ss3("config get maxclients MAXCLIENTS", "[maxclients 5000]", "{maxclients=5000}"),
			ss("config set timeout 0 maxclients 10000", "OK"),
			ss3("config get maxmemory-policy", "[maxmemory-policy noeviction]", "{maxmemory-policy=noeviction}"),
			ss3("config get databases", "[databases 16]", "{databases=16}"), // replaced below for replicant
			ss3("config get nosuchparam", "[]", "{}"),
			ss("config rewrite", "(error) ERR The server is running without a config file"),
			ss("config resetstat", "OK"),
			ss("config resetstat x", arity("config|resetstat")),
		},
		"object": {
			ss("set a 1", "OK"),
			ss("set b hello", "OK"),
			ss("set c "+long, "OK"),
			ss("set d 12345", "OK"),
			ss("set e 007", "OK"),
			ss("object encoding a", "int"),
			ss("object encoding b", "embstr"),
			ss("object encoding c", "raw"),
			ss("object encoding e", "embstr"),
			ss("object encoding nokey", "(nil)"),
			ss("object encoding", arity("object|encoding")),
			ss("object freq a", "(error) ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
			ss("object freq nokey", "(nil)"),
			ssOwn(ss("object idletime a", "(error) ERR idle time is not tracked: replicant keeps no access times (reads do not write)")),
			ss("object idletime nokey", "(nil)"),
			ss("object refcount a", ":2147483647"),
			ss("object refcount d", ":1"),
			ss("object refcount b", ":1"),
			ss("object refcount nokey", "(nil)"),
			ss("object bla a", "(error) ERR unknown subcommand 'bla'. Try OBJECT HELP."),
		},
		"memory": {
			ss("set a 1", "OK"),
			ss("set b hello", "OK"),
			ss("set c "+long, "OK"),
			ss("set "+strings.Repeat("k", 40)+" "+strings.Repeat("v", 300), "OK"),
			ss("memory usage a", ":48"),
			ss("memory usage b", ":64"),
			ss("memory usage c", ":128"),
			ss("memory usage "+strings.Repeat("k", 40), ":408"),
			ss("memory usage nokey", "(nil)"),
			ss("memory usage a samples 5", ":48"),
			ss("memory usage a samples", "(error) ERR syntax error"),
			ss("memory usage a foo 1", "(error) ERR syntax error"),
			ss("memory usage", arity("memory|usage")),
			ss("memory doctor extra", arity("memory|doctor")),
			ss("memory bla", "(error) ERR unknown subcommand 'bla'. Try MEMORY HELP."),
		},
		"client": {
			ss("client kill 1.2.3.4:5", "(error) ERR No such client"),
			ss("client kill id 999999", ":0"),
			ss("client kill addr 1.2.3.4:5", ":0"),
			ss("client kill laddr 1.2.3.4:5", ":0"),
			ss("client kill skipme yes", ":0"),
			ss("client kill foo bar", "(error) ERR syntax error"),
			ss("client kill id abc", "(error) ERR client-id should be greater than 0"),
			ss("client kill id 0", "(error) ERR client-id should be greater than 0"),
			ss("client kill type bad", "(error) ERR Unknown client type 'bad'"),
			ss("client kill id 1 skipme maybe", "(error) ERR syntax error"),
			ss("client kill", arity("client|kill")),
			ss("client no-evict on", "OK"),
			ss("client no-evict off", "OK"),
			ss("client no-evict bad", "(error) ERR syntax error"),
			ss("client list type bad", "(error) ERR Unknown client type 'bad'"),
			ss("client list id 999999", ""),
			ss("client list type master", ""),
			ss("client list id x", "(error) ERR Invalid client ID"),
			ss("client list foo", "(error) ERR syntax error"),
			ss("client unblock abc", "(error) ERR value is not an integer or out of range"),
			ss("client unblock 1 foo", "(error) ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
			ss("client unblock abc foo", "(error) ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
			ss("client unblock 999999 timeout", ":0"),
			ss("client unblock 999999", ":0"),
			ss("client unblock 1 timeout x", "(error) ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP."),
			ss("client unblock", arity("client|unblock")),
			// Redis 7.2 (newer than some packaged servers).
			ssOwn(ss("client no-touch on", "OK")),
			ssOwn(ss("client no-touch maybe", "(error) ERR syntax error")),
			ssOwn(ss("client setinfo lib-name mylib", "OK")),
			ssOwn(ss("client setinfo foo x", "(error) ERR Unrecognized option 'foo'")),
		},
		"slowlog": {
			ss("slowlog get abc", "(error) ERR count should be greater than or equal to -1"),
			ss("slowlog get -2", "(error) ERR count should be greater than or equal to -1"),
			ss("slowlog bla", "(error) ERR unknown subcommand 'bla'. Try SLOWLOG HELP."),
			ss("slowlog get 1 2", "(error) ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP."),
			ss("slowlog", arity("slowlog")),
			ss("config set slowlog-log-slower-than 100000000", "OK"),
			ss("slowlog reset", "OK"),
			ss("slowlog len", ":0"),
			ss("slowlog get", "[]"),
			ss("slowlog get -1", "[]"),
			ss("config set slowlog-log-slower-than 10000", "OK"),
		},
		"dbsize": {
			ss("dbsize", ":0"),
			ss("dbsize x", arity("dbsize")),
			ss("mset a 1 b 2 c 3", "OK"),
			ss("dbsize", ":3"),
			ss("set a 2", "OK"),
			ss("dbsize", ":3"),
			ss("del a nokey", ":1"),
			ss("dbsize", ":2"),
			ss("rename b z", "OK"),
			ss("dbsize", ":2"),
			ss("copy z y", ":1"),
			ss("dbsize", ":3"),
			ss("set t v px 100000", "OK"),
			ss("dbsize", ":4"),
			ss("flushall", "OK"),
			ss("dbsize", ":0"),
		},
		"info": {
			ss("info nosuchsection", ""),
		},
	}
}

// TestServerCommandTable runs serverSteps on both protocols, each group
// on one connection after a FLUSHALL. With REPLICANT_TEST_REDIS=host:port
// it runs against that Redis server instead, skipping replicant's own
// steps, to check the expectations themselves.
func TestServerCommandTable(t *testing.T) {
	ref := os.Getenv("REPLICANT_TEST_REDIS")
	var ts *testServer
	if ref == "" {
		ts = startServer(t, node.Config{})
	}
	groups := serverSteps()
	if ref == "" {
		// Redis has 16 databases, replicant one.
		for i, s := range groups["config"] {
			if strings.Join(s.args, " ") == "config get databases" {
				groups["config"][i] = srvStep{args: s.args, want: "[databases 1]", want3: "{databases=1}"}
			}
		}
	}
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			for name, steps := range groups {
				t.Run(name, func(t *testing.T) {
					var c *redis.Client
					if ref != "" {
						c = redis.NewClient(&redis.Options{Addr: ref, Protocol: proto, PoolSize: 1})
						t.Cleanup(func() { c.Close() })
					} else {
						c = ts.client(t, proto, func(o *redis.Options) { o.PoolSize = 1 })
					}
					ctx := context.Background()
					if name == "client" {
						// CLIENT KILL SKIPME counts every other
						// connection: wait until the other groups'
						// closed connections have left the registry
						// (each goroutine notices its EOF on its own).
						deadline := time.Now().Add(10 * time.Second)
						for strings.Count(do(ctx, c, "client", "list"), "id=") > 1 && time.Now().Before(deadline) {
							time.Sleep(10 * time.Millisecond)
						}
					}
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
						want := s.want
						if proto == 3 && s.want3 != "" {
							want = s.want3
						}
						if got := do(ctx, c, args...); got != want {
							t.Errorf("step %d %q:\n got %q\nwant %q", i, s.args, got, want)
						}
					}
				})
			}
		})
	}
}
