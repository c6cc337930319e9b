package resp

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/replicant-db/replicant/internal/node"
)

// waitBlocked waits until n clients are blocked on the server.
func waitBlocked(t *testing.T, s *Server, n int64) {
	t.Helper()
	waitFor(t, 10*time.Second, "blocked clients", func() bool { return s.blocked.Load() == n })
}

// async runs a command on its own connection and returns its reply
// (rendered by fmtReply) on a channel.
func async(c *redis.Client, args ...any) <-chan string {
	ch := make(chan string, 1)
	go func() { ch <- do(context.Background(), c, args...) }()
	return ch
}

// reply waits for an async reply.
func reply(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no reply from the blocked client")
		return ""
	}
}

// TestBlockingWoken: each blocking command waits on an empty key and is
// served by a write on another connection, in RESP2 and RESP3.
func TestBlockingWoken(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		for _, tc := range []struct {
			cmd  []any
			push []any // the write that wakes it
			want string
			// after checks the state the served command left.
			after []any
			left  string
			want3 string // RESP3's reply where it differs (doubles)
		}{
			{[]any{"blpop", "a", "b", 0}, []any{"rpush", "b", "x", "y"}, "[b x]", []any{"lrange", "b", 0, -1}, "[y]", ""},
			{[]any{"brpop", "a", "b", 0}, []any{"rpush", "b", "x", "y"}, "[b y]", []any{"lrange", "b", 0, -1}, "[x]", ""},
			{[]any{"blmove", "a", "d", "left", "left", 0}, []any{"lpush", "a", "x"}, "x", []any{"lrange", "d", 0, -1}, "[x]", ""},
			{[]any{"brpoplpush", "a", "d", 0}, []any{"lpush", "a", "x"}, "x", []any{"lrange", "d", 0, -1}, "[x]", ""},
			{[]any{"blmpop", 0, 2, "a", "b", "right", "count", 5}, []any{"rpush", "b", "x", "y"}, "[b [y x]]", []any{"exists", "b"}, ":0", ""},
			{[]any{"blpop", "a", 0}, []any{"lmove", "src", "a", "left", "left"}, "[a s]", []any{"exists", "src"}, ":0", ""},
			{[]any{"bzpopmin", "a", "b", 0}, []any{"zadd", "b", 1, "x", 2, "y"}, "[b x 1]", []any{"zrange", "b", 0, -1}, "[y]", "[b x ,1]"},
			{[]any{"bzpopmax", "a", "b", 0}, []any{"zadd", "b", 1, "x", 2, "y"}, "[b y 2]", []any{"zrange", "b", 0, -1}, "[x]", "[b y ,2]"},
			{[]any{"bzmpop", 0, 2, "a", "b", "max", "count", 5}, []any{"zadd", "b", 1, "x", 2, "y"}, "[b [[y 2] [x 1]]]", []any{"exists", "b"}, ":0", "[b [[y ,2] [x ,1]]]"},
			{[]any{"bzpopmin", "a", 0}, []any{"zadd", "a", "xx", 1, "x"}, "", nil, "", ""}, // not woken: ZADD XX of a missing key adds nothing
			{[]any{"blpop", "a", 0}, []any{"rpushx", "a", "x"}, "", nil, "", ""},           // not woken: RPUSHX of a missing key adds nothing
		} {
			name := strings.Trim(fmt.Sprint(tc.cmd), "[]")
			t.Run(name+"/resp"+string(rune('0'+proto)), func(t *testing.T) {
				c, w := ts.client(t, proto), ts.client(t, proto)
				mustDo(t, w, "OK", "flushall")
				mustDo(t, w, ":1", "rpush", "src", "s")
				ch := async(c, tc.cmd...)
				waitBlocked(t, ts.s, 1)
				do(ctx, w, tc.push...)
				if tc.want == "" {
					// Still blocked: unblock it to end the test.
					mustDo(t, w, ":1", "client", "unblock", blockedID(t, ts.s), "timeout")
					if got := reply(t, ch); got != "(nil)" {
						t.Fatalf("unblocked: %s", got)
					}
					return
				}
				want := tc.want
				if proto == 3 && tc.want3 != "" {
					want = tc.want3
				}
				if got := reply(t, ch); got != want {
					t.Fatalf("woken: %s, want %s", got, want)
				}
				if got := do(ctx, w, tc.after...); got != tc.left {
					t.Fatalf("%v: %s, want %s", tc.after, got, tc.left)
				}
				if n := ts.s.blocks.waiting.Load(); n != 0 {
					t.Fatalf("%d clients still registered", n)
				}
			})
		}
	}
}

// blockedID is the id of the one blocked connection.
func blockedID(t *testing.T, s *Server) int64 {
	t.Helper()
	s.registry.mu.Lock()
	defer s.registry.mu.Unlock()
	for id, c := range s.registry.clients {
		if c.blocking.Load() {
			return int64(id)
		}
	}
	t.Fatal("no blocked client")
	return 0
}

// TestBlockingTimeout: a blocking command times out with the null array
// after its timeout, no earlier, and writes nothing.
func TestBlockingTimeout(t *testing.T) {
	ts := startServer(t, node.Config{})
	for _, args := range [][]string{
		{"blpop", "q", "0.2"},
		{"brpop", "q", "q2", "0.2"},
		{"blmove", "q", "d", "left", "right", "0.2"},
		{"brpoplpush", "q", "d", "0.2"},
		{"blmpop", "0.2", "1", "q", "left"},
		{"bzpopmin", "q", "q2", "0.2"},
		{"bzpopmax", "q", "0.2"},
		{"bzmpop", "0.2", "1", "q", "min"},
	} {
		r := dialRaw(t, ts.addr)
		before := ts.n.Store().State().LastLSN
		start := time.Now()
		if got := r.do(args...); got != "*-1\r\n" {
			t.Errorf("%v: %q", args, got)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("%v answered after %v", args, d)
		}
		if n := ts.n.Store().State().LastLSN - before; n != 0 {
			t.Errorf("%v: %d entries written", args, n)
		}
	}
	if n := ts.s.blocked.Load(); n != 0 {
		t.Fatalf("blocked_clients %d after the timeouts", n)
	}
}

// TestBlockingFIFO: clients blocked on a key are served in the order they
// blocked, whatever other keys they wait on, and before the writer's next
// command runs (as in Redis).
func TestBlockingFIFO(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	w := ts.client(t, 2)
	a, b, c := ts.client(t, 2), ts.client(t, 2), ts.client(t, 2)
	ra := async(a, "blpop", "q2", "q", 0)
	waitBlocked(t, ts.s, 1)
	rb := async(b, "blpop", "q", 0)
	waitBlocked(t, ts.s, 2)
	rc := async(c, "brpop", "q", "q3", 0)
	waitBlocked(t, ts.s, 3)
	// One write of two elements serves the first two; the writer's next
	// command sees them gone.
	pipe := w.Pipeline()
	push := pipe.RPush(ctx, "q", "1", "2")
	llen := pipe.LLen(ctx, "q")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if push.Val() != 2 || llen.Val() != 0 {
		t.Fatalf("RPUSH %d, then LLEN %d: the blocked clients were not served first", push.Val(), llen.Val())
	}
	if got, got2 := reply(t, ra), reply(t, rb); got != "[q 1]" || got2 != "[q 2]" {
		t.Fatalf("first %s, second %s", got, got2)
	}
	mustDo(t, w, ":1", "rpush", "q", "3")
	if got := reply(t, rc); got != "[q 3]" {
		t.Fatalf("third %s", got)
	}
	if n := ts.s.blocked.Load(); n != 0 {
		t.Fatalf("%d still blocked", n)
	}
}

// TestBlockingChain: a served BLMOVE pushes onto a key another client
// waits on, which is then served too; EXEC's writes wake clients.
func TestBlockingChain(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	w := ts.client(t, 2)
	a, b := ts.client(t, 2), ts.client(t, 3)
	ra := async(a, "blpop", "dst", 0)
	waitBlocked(t, ts.s, 1)
	rb := async(b, "blmove", "src", "dst", "right", "left", 0)
	waitBlocked(t, ts.s, 2)
	if _, err := w.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "other", "x", 0)
		p.RPush(ctx, "src", "e")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := reply(t, rb); got != "e" {
		t.Fatalf("BLMOVE: %s", got)
	}
	if got := reply(t, ra); got != "[dst e]" {
		t.Fatalf("BLPOP on BLMOVE's destination: %s", got)
	}
	mustDo(t, w, ":0", "exists", "src", "dst")
}

// TestBlockingUnblock: CLIENT UNBLOCK ends a blocked list command as a
// timeout or with an error; CLIENT LIST and INFO show the blocked client.
func TestBlockingUnblock(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	w := ts.client(t, 2)
	for _, tc := range []struct{ how, want string }{
		{"timeout", "(nil)"},
		{"error", "(error) UNBLOCKED client unblocked via CLIENT UNBLOCK"},
		{"", "(nil)"},
	} {
		c := ts.client(t, 2)
		id := c.ClientID(ctx).Val()
		ch := async(c, "blmove", "q", "d", "left", "left", 0)
		waitBlocked(t, ts.s, 1)
		info := do(ctx, w, "info", "clients")
		if !strings.Contains(info, "blocked_clients:1\r\n") {
			t.Fatalf("INFO clients while blocked:\n%s", info)
		}
		list := do(ctx, w, "client", "list", "id", id)
		if !strings.Contains(list, " flags=b ") || !strings.Contains(list, " cmd=blmove ") {
			t.Fatalf("CLIENT LIST while blocked: %s", list)
		}
		args := []any{"client", "unblock", id}
		if tc.how != "" {
			args = append(args, tc.how)
		}
		mustDo(t, w, ":1", args...)
		if got := reply(t, ch); got != tc.want {
			t.Fatalf("UNBLOCK %s: %s, want %s", tc.how, got, tc.want)
		}
		mustDo(t, w, ":0", args...) // no longer blocked
		waitBlocked(t, ts.s, 0)
		if n := ts.s.blocks.waiting.Load(); n != 0 {
			t.Fatalf("%d clients still registered", n)
		}
		// The connection goes on.
		mustDo(t, c, "PONG", "ping")
	}
}

// TestBlockingConnectionClosed: a client that hangs up while blocked
// leaves no goroutine and no registration behind.
func TestBlockingConnectionClosed(t *testing.T) {
	ts := startServer(t, node.Config{})
	// Served once: the server's own goroutines (its event loop) are up
	// before the count.
	mustDo(t, ts.client(t, 0), "PONG", "ping")
	ignore := goleak.IgnoreCurrent()
	for _, cmd := range [][]string{
		{"BLPOP", "q", "0"},
		{"BLMOVE", "q", "d", "LEFT", "LEFT", "0"},
		{"BLMPOP", "100", "2", "q", "q2", "LEFT"},
	} {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(encode(cmd...)); err != nil {
			t.Fatal(err)
		}
		waitBlocked(t, ts.s, 1)
		nc.Close()
		waitBlocked(t, ts.s, 0)
		waitFor(t, 10*time.Second, "registrations to go", func() bool {
			ts.s.blocks.mu.Lock()
			defer ts.s.blocks.mu.Unlock()
			return ts.s.blocks.waiting.Load() == 0 && len(ts.s.blocks.queues) == 0
		})
	}
	if err := goleak.Find(ignore); err != nil {
		t.Fatal(err)
	}
	// A write to the key afterwards wakes nobody and loses nothing.
	c := ts.client(t, 2)
	mustDo(t, c, ":1", "rpush", "q", "x")
	mustDo(t, c, "[x]", "lrange", "q", "0", "-1")
}

// follower is a node that can be made to stop leading.
type follower struct {
	*node.Node
	demoted atomic.Bool
}

func (f *follower) IsLeader() bool { return !f.demoted.Load() && f.Node.IsLeader() }

// TestBlockingLeadershipLost: clients blocked on a leader that stops
// leading get Redis's UNBLOCKED error instead of waiting forever.
func TestBlockingLeadershipLost(t *testing.T) {
	ts := startServer(t, node.Config{})
	f := &follower{Node: ts.n}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startBackend(t, f, ln)
	r := dialRaw(t, ln.Addr().String())
	r.send(encode("BLPOP", "q", "0"))
	waitBlocked(t, s, 1)
	f.demoted.Store(true)
	got, err := r.readRaw()
	if err != nil {
		t.Fatal(err)
	}
	if want := "-" + msgStateChanged + "\r\n"; got != want {
		t.Fatalf("blocked client on a demoted leader: %q", got)
	}
	waitBlocked(t, s, 0)
}

// TestBlockingPopOneEntry: a served blocking pop is one log entry, and a
// client woken for nothing writes none.
func TestBlockingPopOneEntry(t *testing.T) {
	ts := startServer(t, node.Config{})
	w, a, b := ts.client(t, 2), ts.client(t, 2), ts.client(t, 2)
	ra := async(a, "blpop", "q", 0)
	waitBlocked(t, ts.s, 1)
	before := ts.n.Store().State().LastLSN
	mustDo(t, w, ":2", "rpush", "q", "x", "y")
	if got := reply(t, ra); got != "[q x]" {
		t.Fatal(got)
	}
	if n := ts.n.Store().State().LastLSN - before; n != 2 {
		t.Fatalf("a push and a served pop wrote %d entries, want 2", n)
	}
	// b waits on q2; a write to q2 that leaves it empty wakes b for
	// nothing.
	rb := async(b, "brpop", "q2", 0)
	waitBlocked(t, ts.s, 1)
	before = ts.n.Store().State().LastLSN
	mustDo(t, w, ":0", "rpushx", "q2", "z")
	mustDo(t, w, ":0", "lpushx", "q2", "z")
	if n := ts.n.Store().State().LastLSN - before; n != 0 {
		t.Fatalf("wakes for nothing wrote %d entries", n)
	}
	mustDo(t, w, ":1", "client", "unblock", blockedID(t, ts.s))
	if got := reply(t, rb); got != "(nil)" {
		t.Fatal(got)
	}
}

func TestParseTimeout(t *testing.T) {
	const now = 1_700_000_000_000
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"0", 0, ""},
		{"-0", 0, ""},
		{"0.0", 0, ""},
		{"1", time.Second, ""},
		{"1.5", 1500 * time.Millisecond, ""},
		{"0.0001", time.Millisecond, ""}, // rounded up
		{"1e-9", time.Millisecond, ""},
		{"-0.0001", 0, ""}, // rounds up to 0: forever, as Redis
		{"0x10", 16 * time.Second, ""},
		{"1e3", 1000 * time.Second, ""},
		{"-1", 0, msgTimeoutNeg},
		{"-inf", 0, msgTimeoutNeg},
		{"inf", 0, msgTimeoutRange},
		{"1e100", 0, msgTimeoutRange},
		{"9223372036854775.807", 0, msgTimeoutRange},
		{"9223372036854775", 0, msgTimeoutRange}, // the deadline would overflow
		{"9300000000", 0, ""},                    // beyond a timer: forever
		{"abc", 0, msgTimeoutFloat},
		{"", 0, msgTimeoutFloat},
		{" 1", 0, msgTimeoutFloat},
		{"1 ", 0, msgTimeoutFloat},
		{"nan", 0, msgTimeoutFloat},
		{"1..2", 0, msgTimeoutFloat},
	} {
		got, msg := parseTimeout([]byte(tc.in), now)
		if got != tc.want || msg != tc.err {
			t.Errorf("parseTimeout(%q) = %v, %q; want %v, %q", tc.in, got, msg, tc.want, tc.err)
		}
	}
}

// TestBlockingRegistryServesInOrder drives the registry alone: a writer
// serving a key wakes its clients oldest first, goes on while they take
// something and stops at the first that finds nothing; a client that
// leaves is skipped.
func TestBlockingRegistryServesInOrder(t *testing.T) {
	var r blockRegistry
	var order []string
	stock := 2 // elements available to take
	type client struct {
		name string
		w    *blockWaiter
		done chan struct{}
	}
	run := func(name string, keys ...string) *client {
		bk := make([][]byte, len(keys))
		for i, k := range keys {
			bk[i] = []byte(k)
		}
		c := &client{name: name, w: r.add(bk), done: make(chan struct{})}
		go func() {
			defer close(c.done)
			for range c.w.wake {
				pend := r.take(c.w)
				order = append(order, c.name) // one try runs at a time: serve waits for it
				if stock > 0 {
					stock--
					r.remove(c.w, wakeServed)
					answerWakes(pend, wakeServed)
					return
				}
				answerWakes(pend, wakeEmpty)
			}
		}()
		return c
	}
	a := run("a", "k")
	gone := run("gone", "k")
	b := run("b", "x", "k")
	c := run("c", "k")
	r.remove(gone.w, wakeGone)
	r.serve("k")
	<-a.done
	<-b.done
	if got := strings.Join(order, " "); got != "a b c" {
		t.Fatalf("tries in order %q, want a b c (c finds nothing)", got)
	}
	select {
	case <-c.done:
		t.Fatal("c was served with nothing left")
	default:
	}
	stock = 1
	r.serve("k")
	<-c.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting.Load() != 0 || len(r.queues) != 0 {
		t.Fatalf("after everyone left: %d waiting, %d queues", r.waiting.Load(), len(r.queues))
	}
	close(gone.w.wake)
	<-gone.done
}

// TestBlockingScripts: a script's writes wake blocked clients (alone and
// inside EXEC); inside a script nothing blocks, and the commands Redis
// flags noscript are refused.
func TestBlockingScripts(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	w := ts.client(t, 2)
	const push = "redis.call('rpush', KEYS[1], ARGV[1]) return 1"
	for _, inTx := range []bool{false, true} {
		c := ts.client(t, 2)
		ch := async(c, "blpop", "q", 0)
		waitBlocked(t, ts.s, 1)
		if inTx {
			if _, err := w.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Eval(ctx, push, []string{"q"}, "tx")
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		} else {
			mustDo(t, w, ":1", "eval", push, "1", "q", "plain")
		}
		want := "[q plain]"
		if inTx {
			want = "[q tx]"
		}
		if got := reply(t, ch); got != want {
			t.Fatalf("woken by a script (in EXEC: %v): %s", inTx, got)
		}
	}
	start := time.Now()
	mustDo(t, w, "(nil)", "eval", "return redis.call('blmpop', 0, 1, KEYS[1], 'left')", "1", "q")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("BLMPOP in a script waited %v", d)
	}
	for _, cmd := range []string{"redis.call('blpop', KEYS[1], 0)", "redis.call('blmove', KEYS[1], 'd', 'left', 'left', 0)"} {
		got := do(ctx, w, "eval", "return "+cmd, "1", "q")
		if !strings.Contains(got, "This Redis command is not allowed from script") {
			t.Fatalf("%s: %s", cmd, got)
		}
	}
}
