package resp

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/node"
	"github.com/replicant-db/replicant/internal/script"
)

// TestScriptTranscripts: byte-exact replies of EVAL, EVALSHA, SCRIPT and
// FUNCTION in RESP2 and RESP3, each checked against Redis 7's own
// answer. With REPLICANT_SCRIPT_REDIS=127.0.0.1:PORT they run against a
// redis-server instead.
func TestScriptTranscripts(t *testing.T) {
	sha := script.SHA1Hex
	type step struct {
		args  []string
		resp2 string
		resp3 string // "" when the same as resp2
	}
	steps := []step{
		{[]string{"set", "s", "abc"}, "+OK\r\n", ""},
		{[]string{"eval", "return {1,2,{3,'x'},nil,4}", "0"}, "*3\r\n:1\r\n:2\r\n*2\r\n:3\r\n$1\r\nx\r\n", ""},
		{[]string{"eval", "return false", "0"}, "$-1\r\n", "_\r\n"},
		{[]string{"eval", "return {double=3.5}", "0"}, "$3\r\n3.5\r\n", ",3.5\r\n"},
		{[]string{"eval", "return {map={a=1}}", "0"}, "*2\r\n$1\r\na\r\n:1\r\n", "%1\r\n$1\r\na\r\n:1\r\n"},
		{[]string{"eval", "redis.setresp(3); return false", "0"}, ":0\r\n", "#f\r\n"},
		{[]string{"eval", "return redis.call('get','nokey')", "0"}, "$-1\r\n", "_\r\n"},
		{[]string{"eval", "return redis.call('set', 'num', 1.5)", "0"}, "+OK\r\n", ""},
		{[]string{"eval", "return redis.call('get', 'num')", "0"}, "$3\r\n1.5\r\n", ""},
		{[]string{"eval", "return KEYS[1]..ARGV[1]", "1", "k", "a"}, "$2\r\nka\r\n", ""},
		{[]string{"eval", "return redis.call('incr','s')", "0"}, "-ERR value is not an integer or out of range script: " + sha("return redis.call('incr','s')") + ", on @user_script:1.\r\n", ""},
		{[]string{"eval", "return redis.pcall('incr','s')", "0"}, "-ERR value is not an integer or out of range\r\n", ""},
		{[]string{"eval", "return redis.call('multi')", "0"}, "-ERR This Redis command is not allowed from script script: " + sha("return redis.call('multi')") + ", on @user_script:1.\r\n", ""},
		{[]string{"eval", "return redis.pcall('nosuch')", "0"}, "-ERR Unknown Redis command called from script\r\n", ""},
		{[]string{"eval", "return redis.pcall('set')", "0"}, "-ERR Wrong number of args calling Redis command from script\r\n", ""},
		{[]string{"eval_ro", "return redis.call('set', 'k', 'v')", "0"}, "-ERR Write commands are not allowed from read-only scripts. script: " + sha("return redis.call('set', 'k', 'v')") + ", on @user_script:1.\r\n", ""},
		{[]string{"eval", "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'v')", "0"}, "-ERR Write commands are not allowed from read-only scripts. script: " + sha("#!lua flags=no-writes\nreturn redis.call('set', 'k', 'v')") + ", on @user_script:2.\r\n", ""},
		{[]string{"eval", "return 1", "-1"}, "-ERR Number of keys can't be negative\r\n", ""},
		{[]string{"eval", "return 1", "2", "a"}, "-ERR Number of keys can't be greater than number of args\r\n", ""},
		{[]string{"eval", "return 1", "abc"}, "-ERR value is not an integer or out of range\r\n", ""},
		{[]string{"eval", "return 1 +", "0"}, "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n", ""},
		{[]string{"evalsha", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"}, "-NOSCRIPT No matching script. Please use EVAL.\r\n", ""},
		{[]string{"script", "load", "return 1"}, "$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n", ""},
		{[]string{"evalsha", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"}, ":1\r\n", ""},
		{[]string{"script", "exists", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0000"}, "*2\r\n:1\r\n:0\r\n", ""},
		{[]string{"script", "flush", "bad"}, "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n", ""},
		{[]string{"script", "flush", "async"}, "+OK\r\n", ""},
		{[]string{"script", "exists", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"}, "*1\r\n:0\r\n", ""},
		{[]string{"script", "kill"}, "-NOTBUSY No scripts in execution right now.\r\n", ""},
		{[]string{"script", "bad"}, "-ERR unknown subcommand 'bad'. Try SCRIPT HELP.\r\n", ""},
		{[]string{"script", "load"}, "-ERR wrong number of arguments for 'script|load' command\r\n", ""},
		{[]string{"function", "load", "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)"}, "$5\r\nmylib\r\n", ""},
		{[]string{"function", "load", "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)"}, "-ERR Library 'mylib' already exists\r\n", ""},
		{[]string{"function", "load", "#!lua name=other\nredis.register_function('myfunc', function() return 1 end)"}, "-ERR Function myfunc already exists\r\n", ""},
		{[]string{"fcall", "myfunc", "0", "hello"}, "$5\r\nhello\r\n", ""},
		{[]string{"fcall_ro", "myfunc", "0", "x"}, "-ERR Can not execute a script with write flag using *_ro command.\r\n", ""},
		{[]string{"fcall", "nosuch", "0"}, "-ERR Function not found\r\n", ""},
		{[]string{"function", "list"}, "*1\r\n*6\r\n$12\r\nlibrary_name\r\n$5\r\nmylib\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*1\r\n*6\r\n$4\r\nname\r\n$6\r\nmyfunc\r\n$11\r\ndescription\r\n$-1\r\n$5\r\nflags\r\n*0\r\n",
			"*1\r\n%3\r\n$12\r\nlibrary_name\r\n$5\r\nmylib\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*1\r\n%3\r\n$4\r\nname\r\n$6\r\nmyfunc\r\n$11\r\ndescription\r\n_\r\n$5\r\nflags\r\n~0\r\n"},
		{[]string{"keys", "*"}, "*2\r\n$1\r\ns\r\n$3\r\nnum\r\n", ""},
		{[]string{"flushall"}, "+OK\r\n", ""},
		{[]string{"dbsize"}, ":0\r\n", ""},
		{[]string{"fcall", "myfunc", "0", "still"}, "$5\r\nstill\r\n", ""},
		{[]string{"function", "delete", "nosuch"}, "-ERR Library not found\r\n", ""},
		{[]string{"function", "load", "#!lua name=y\nredis.register_function('fy', function(k, a) redis.call('set','a','1'); error('after') end)"}, "$1\r\ny\r\n", ""},
		{[]string{"fcall", "fy", "0"}, "-ERR user_function:2: after script: fy, on @user_function:2.\r\n", ""},
		{[]string{"get", "a"}, "$1\r\n1\r\n", ""},
		{[]string{"function", "flush"}, "+OK\r\n", ""},
		{[]string{"function", "list"}, "*0\r\n", ""},
		{[]string{"function", "kill"}, "-NOTBUSY No scripts in execution right now.\r\n", ""},
		{[]string{"flushall"}, "+OK\r\n", ""},
	}
	addr := os.Getenv("REPLICANT_SCRIPT_REDIS")
	if addr == "" {
		addr = startServer(t, node.Config{}).addr
	}
	for _, proto := range []int{2, 3} {
		r := dialRaw(t, addr)
		if proto == 3 {
			r.do("hello", "3")
		}
		r.do("flushall")
		r.do("function", "flush")
		r.do("script", "flush")
		for _, st := range steps {
			want := st.resp2
			if proto == 3 && st.resp3 != "" {
				want = st.resp3
			}
			got := r.do(st.args...)
			if st.args[0] == "keys" {
				got = sortedArray(got)
				want = sortedArray(want)
			}
			if got != want {
				t.Errorf("RESP%d %.80q:\n got %q\nwant %q", proto, st.args, got, want)
			}
		}
	}
}

// sortedArray sorts the bulk elements of a flat array reply (KEYS).
func sortedArray(s string) string {
	head, rest, ok := strings.Cut(s, "\r\n")
	if !ok {
		return s
	}
	parts := strings.SplitAfter(rest, "\r\n")
	var elems []string
	for i := 0; i+1 < len(parts); i += 2 {
		elems = append(elems, parts[i]+parts[i+1])
	}
	for i := range elems {
		for j := i + 1; j < len(elems); j++ {
			if elems[j] < elems[i] {
				elems[i], elems[j] = elems[j], elems[i]
			}
		}
	}
	return head + "\r\n" + strings.Join(elems, "")
}

// TestScriptOneEntry: a script's writes are one log entry; a script that
// writes nothing appends none; one that fails halfway keeps the writes
// before the error (as Redis does), in one entry.
func TestScriptOneEntry(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	lsn := func() uint64 { return ts.n.Store().State().LastLSN }
	before := lsn()
	if err := c.Eval(ctx, "redis.call('set', KEYS[1], 'a') redis.call('incr', KEYS[2]) redis.call('del', 'nosuch') return 1", []string{"x", "y"}).Err(); err != nil {
		t.Fatal(err)
	}
	if got := lsn() - before; got != 1 {
		t.Fatalf("a script of 2 writes appended %d entries, want 1", got)
	}
	before = lsn()
	if v, err := c.Eval(ctx, "return redis.call('get', KEYS[1])", []string{"x"}).Result(); err != nil || v != "a" {
		t.Fatalf("read script: %v %v", v, err)
	}
	if got := lsn() - before; got != 0 {
		t.Fatalf("a read-only script appended %d entries", got)
	}
	before = lsn()
	err := c.Eval(ctx, "redis.call('set', 'h1', '1')\nredis.call('set', 'h2', '2')\nreturn redis.call('incr', 'x')", nil).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "ERR value is not an integer or out of range script:") || !strings.HasSuffix(err.Error(), "on @user_script:3.") {
		t.Fatalf("script failing halfway: %v", err)
	}
	if got := lsn() - before; got != 1 {
		t.Fatalf("a script failing after 2 writes appended %d entries, want 1", got)
	}
	if v := c.MGet(ctx, "h1", "h2").Val(); len(v) != 2 || v[0] != "1" || v[1] != "2" {
		t.Fatalf("writes before the error: %v", v)
	}
	// Inside MULTI: EVAL's writes join the transaction's one entry.
	before = lsn()
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "t1", "1", 0)
		p.Eval(ctx, "return redis.call('incr', 't1')", nil)
		return nil
	})
	if err != nil || cmds[1].(*redis.Cmd).Val() != int64(2) {
		t.Fatalf("EVAL in MULTI: %v %v", cmds, err)
	}
	if got := lsn() - before; got != 1 {
		t.Fatalf("MULTI with EVAL appended %d entries, want 1", got)
	}
}

// TestScriptKill: an endless loop holds the write path; other writers
// get BUSY once it ran past busy-reply-threshold, reads go on, SCRIPT KILL
// from another connection stops it, and it wrote nothing.
func TestScriptKill(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	admin := ts.client(t, 2)
	mustDo(t, admin, "OK", "config", "set", "busy-reply-threshold", "50")
	done := make(chan error, 1)
	go func() {
		runner := redis.NewClient(&redis.Options{Addr: ts.addr, MaxRetries: -1, ReadTimeout: 30 * time.Second})
		defer runner.Close()
		done <- runner.Eval(ctx, "redis.call('set', 'loop', 'x') while true do end", nil).Err()
	}()
	// A write sent before the threshold waits behind the script: the
	// probing client gives up quickly (and closes that connection).
	probe := ts.client(t, 2, func(o *redis.Options) { o.ReadTimeout = 300 * time.Millisecond })
	waitFor(t, 10*time.Second, "writers to get BUSY", func() bool {
		err := probe.Set(ctx, "other", "1", 0).Err()
		return err != nil && err.Error() == "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
	})
	if v, err := admin.Get(ctx, "loop").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("a read while the script runs: %q %v", v, err)
	}
	if err := admin.Do(ctx, "function", "kill").Err(); err == nil || err.Error() != msgBusyScript {
		t.Fatalf("FUNCTION KILL while a script runs: %v", err)
	}
	if err := admin.Do(ctx, "script", "kill").Err(); err != nil {
		t.Fatalf("SCRIPT KILL: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.HasPrefix(err.Error(), "ERR Script killed by user with SCRIPT KILL... script: ") {
			t.Fatalf("killed script answered %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the script still runs 10 s after SCRIPT KILL")
	}
	if n := admin.Exists(ctx, "loop").Val(); n != 0 {
		t.Fatal("a killed script's write was kept")
	}
	mustDo(t, admin, "OK", "set", "after", "1")
	mustDo(t, admin, "(error) NOTBUSY No scripts in execution right now.", "script", "kill")
}

// TestScriptReservedKeys: function libraries live in reserved keys that
// no command shows or reaches.
func TestScriptReservedKeys(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	mustDo(t, c, "lib", "function", "load", "#!lua name=lib\nredis.register_function('f', function() return 1 end)")
	for _, cmd := range [][]any{{"keys", "*"}, {"scan", "0"}, {"dbsize"}, {"randomkey"}} {
		if got := do(ctx, c, cmd...); got != "[]" && got != "[0 []]" && got != ":0" && got != "(nil)" {
			t.Errorf("%v shows %s", cmd, got)
		}
	}
	if err := c.Get(ctx, "\x00replicant\x00fn\x00lib").Err(); err == nil || err.Error() != msgReserved {
		t.Fatalf("GET of a library's key: %v", err)
	}
	if err := c.Eval(ctx, "return redis.call('set', '\\0replicant\\0fn\\0lib', 'x')", nil).Err(); err == nil || !strings.HasPrefix(err.Error(), msgReserved) {
		t.Fatalf("a script writing a library's key: %v", err)
	}
}
