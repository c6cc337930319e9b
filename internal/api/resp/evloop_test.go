//go:build linux

package resp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// TestLoopRunsReadsAndSetsInPlace: reads and plain SETs are run by the
// event loop itself, not handed to the connection's goroutine.
func TestLoopRunsReadsAndSetsInPlace(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	before := ts.s.inLoop.Load()
	for i := range 10 {
		if got := r.do("SET", "k", fmt.Sprint(i)); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		if got, want := r.do("GET", "k"), fmt.Sprintf("$1\r\n%d\r\n", i); got != want {
			t.Fatalf("GET: %q, want %q", got, want)
		}
		if got := r.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
	}
	if n := ts.s.inLoop.Load() - before; n != 30 {
		t.Fatalf("the loop ran %d of 30 commands", n)
	}
}

// TestLoopPipelineOrder: a pipeline mixing what the loop runs (SET, GET)
// with what it hands back (INCR, MULTI, a blocking pop) answers in order,
// each command seeing the writes before it.
func TestLoopPipelineOrder(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	cmds := [][]string{
		{"SET", "a", "1"}, {"GET", "a"}, {"SET", "a", "2"}, {"SET", "n", "5"},
		{"INCR", "n"}, {"GET", "a"}, {"GET", "n"},
		{"MULTI"}, {"SET", "a", "3"}, {"GET", "a"}, {"EXEC"},
		{"SET", "a", "4"}, {"RPUSH", "q", "x"}, {"BLPOP", "q", "1"}, {"GET", "a"}, {"PING"},
	}
	want := []string{
		"+OK\r\n", "$1\r\n1\r\n", "+OK\r\n", "+OK\r\n",
		":6\r\n", "$1\r\n2\r\n", "$1\r\n6\r\n",
		"+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*2\r\n+OK\r\n$1\r\n3\r\n",
		"+OK\r\n", ":1\r\n", "*2\r\n$1\r\nq\r\n$1\r\nx\r\n", "$1\r\n4\r\n", "+PONG\r\n",
	}
	var b []byte
	for _, c := range cmds {
		b = append(b, encode(c...)...)
	}
	r.send(b)
	for i, w := range want {
		got, err := r.readRaw()
		if err != nil || got != w {
			t.Fatalf("reply %d (%v) = %q, %v; want %q", i, cmds[i], got, err, w)
		}
	}
}

// TestLoopSplitCommands: commands that arrive a few bytes at a time are
// read whole (by the goroutine, once the loop sees a partial command).
func TestLoopSplitCommands(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	b := append(encode("SET", "key", strings.Repeat("v", 300)), encode("GET", "key")...)
	for i := 0; i < len(b); i += 7 {
		r.send(b[i:min(i+7, len(b))])
	}
	if got, err := r.readRaw(); err != nil || got != "+OK\r\n" {
		t.Fatalf("SET: %q, %v", got, err)
	}
	if got, err := r.readRaw(); err != nil || got != "$300\r\n"+strings.Repeat("v", 300)+"\r\n" {
		t.Fatalf("GET: %q, %v", got, err)
	}
}

// TestLoopRepliesLargerThanTheSocket: replies the socket cannot take at
// once (a client that sends many large GETs before reading) all arrive,
// in order, once the client reads.
func TestLoopRepliesLargerThanTheSocket(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	val := strings.Repeat("x", 8000) // below the direct-write size: the loop buffers it
	if got := r.do("SET", "big", val); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	const n = 800 // 6.4 MB of replies
	var b []byte
	for range n {
		b = append(b, encode("GET", "big")...)
	}
	b = append(b, encode("PING")...)
	go func() { _, _ = r.c.Write(b) }()
	time.Sleep(200 * time.Millisecond) // let the server fill the socket before reading
	for i := range n {
		if got, err := r.readRaw(); err != nil || got != "$8000\r\n"+val+"\r\n" {
			t.Fatalf("GET %d: %d bytes, %v", i, len(got), err)
		}
	}
	if got, err := r.readRaw(); err != nil || got != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", got, err)
	}
}

// TestLoopKillAndTimeoutOfParkedConnections: an idle connection parked in
// the loop is still closed by CLIENT KILL and by CONFIG SET timeout.
func TestLoopKillAndTimeoutOfParkedConnections(t *testing.T) {
	ts := startServer(t, node.Config{})
	victim := dialRaw(t, ts.addr)
	id := strings.TrimSpace(strings.TrimPrefix(victim.do("CLIENT", "ID"), ":"))
	admin := dialRaw(t, ts.addr)
	if got := admin.do("CLIENT", "KILL", "ID", id); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL: %q", got)
	}
	if !victim.closed() {
		t.Fatal("the killed connection stayed open")
	}

	idle := dialRaw(t, ts.addr)
	if got := idle.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	if got := admin.do("CONFIG", "SET", "timeout", "1"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET: %q", got)
	}
	start := time.Now()
	if !idle.closed() {
		t.Fatal("the idle connection stayed open past its timeout")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("closed after %v, timeout 1 s", d)
	}
	// The admin connection idled out too: a new one resets the timeout.
	if got := dialRaw(t, ts.addr).do("CONFIG", "SET", "timeout", "0"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET: %q", got)
	}
}

// hangingWriter's writes are never answered: a write waits until its
// deadline and then fails, as one under a sync policy that cannot commit.
type hangingWriter struct {
	*node.Node
	timeout time.Duration
}

var errHung = errors.New("test: write not committed within the write timeout")

func (h *hangingWriter) hang(ctx context.Context) (engine.Token, error) {
	select {
	case <-time.After(h.timeout):
		return engine.Token{}, errHung
	case <-ctx.Done():
		return engine.Token{}, ctx.Err()
	}
}

func (h *hangingWriter) Write(ctx context.Context, _ func(engine.Txn) error) (engine.Token, error) {
	return h.hang(ctx)
}

func (h *hangingWriter) WriteAsync(ctx context.Context, _ func(engine.Txn) error) func() (engine.Token, error) {
	return func() (engine.Token, error) { return h.hang(ctx) }
}

func (h *hangingWriter) WriteNotify(ctx context.Context, _ func(engine.Txn) error, _ func()) func() (engine.Token, error) {
	return func() (engine.Token, error) { return h.hang(ctx) }
}

// TestLoopWriteUnansweredByItsDeadline: a SET the loop queued and the
// write path never answers gets the write's timeout error once the write
// timeout passes (the loop hands the connection to its goroutine), and
// the connection goes on.
func TestLoopWriteUnansweredByItsDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, node.Config{WriteTimeout: timeout})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startBackend(t, &hangingWriter{Node: ts.n, timeout: timeout}, ln)
	r := dialRaw(t, ln.Addr().String())
	start := time.Now()
	if got := r.do("SET", "k", "v"); !strings.Contains(got, errHung.Error()) {
		t.Fatalf("SET: %q", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("answered after %v", d)
	}
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
}

// TestLoopPipelineLongerThanTheBuffer: a pipeline longer than the read
// buffer whose first buffer-full ends exactly at a command the goroutine
// must run: the rest, left in the socket with no new edge to announce it,
// is still read once the goroutine parks again.
func TestLoopPipelineLongerThanTheBuffer(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	// APPEND, not a write the loop runs itself (writesInLoop).
	one := encode("APPEND", "abc", "x") // 32 bytes: the buffer holds 256
	if len(one) != 32 || readBufSize%len(one) != 0 {
		t.Fatalf("command of %d bytes does not tile the %d-byte buffer", len(one), readBufSize)
	}
	const n = 2 * readBufSize / 32
	r.send(bytes.Repeat(one, n))
	for i := 1; i <= n; i++ {
		if got, err := r.readRaw(); err != nil || got != fmt.Sprintf(":%d\r\n", i) {
			t.Fatalf("APPEND %d: %q, %v", i, got, err)
		}
	}
}

// TestLoopRunsWritesInPlace: each write command of writesInLoop is run
// by the event loop (its handler queues its write instead of waiting),
// and answers as the goroutine's path would, errors included; each is
// counted once in INFO commandstats.
func TestLoopRunsWritesInPlace(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"SET", "s", "abc"}, "+OK\r\n"},
		{[]string{"SET", "a", "1"}, "+OK\r\n"},
		{[]string{"SET", "b", "2"}, "+OK\r\n"},
		{[]string{"SET", "o", "1", "EX", "100"}, "+OK\r\n"},
		{[]string{"SET", "o", "2", "NX"}, "$-1\r\n"},
		{[]string{"SET", "o", "3", "XX", "GET"}, "$1\r\n1\r\n"},
		{[]string{"SET", "o", "4", "EX", "0"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"SETNX", "o", "5"}, ":0\r\n"},
		{[]string{"SETEX", "o", "100", "6"}, "+OK\r\n"},
		{[]string{"PSETEX", "o", "100000", "7"}, "+OK\r\n"},
		{[]string{"GETSET", "o", "8"}, "$1\r\n7\r\n"},
		{[]string{"APPEND", "o", "9"}, ":2\r\n"},
		{[]string{"GETDEL", "o"}, "$2\r\n89\r\n"},
		{[]string{"INCRBYFLOAT", "f", "1.5"}, "$3\r\n1.5\r\n"},
		{[]string{"HSETNX", "hx", "f", "v"}, ":1\r\n"},
		{[]string{"HINCRBY", "hx", "n", "3"}, ":3\r\n"},
		{[]string{"INCR", "n"}, ":1\r\n"},
		{[]string{"INCRBY", "n", "10"}, ":11\r\n"},
		{[]string{"DECR", "n"}, ":10\r\n"},
		{[]string{"DECRBY", "n", "4"}, ":6\r\n"},
		{[]string{"INCR", "s"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"INCRBY", "n", "x"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"LPUSH", "l", "x", "y"}, ":2\r\n"},
		{[]string{"RPUSH", "l", "z"}, ":3\r\n"},
		{[]string{"LPUSHX", "nolist", "z"}, ":0\r\n"},
		{[]string{"RPUSHX", "l", "w"}, ":4\r\n"},
		{[]string{"LPUSH", "s", "x"}, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{[]string{"LPOP", "l"}, "$1\r\ny\r\n"},
		{[]string{"RPOP", "l", "2"}, "*2\r\n$1\r\nw\r\n$1\r\nz\r\n"},
		{[]string{"LPOP", "nolist"}, "$-1\r\n"},
		{[]string{"SADD", "set", "m1", "m2", "m1"}, ":2\r\n"},
		{[]string{"SREM", "set", "m2", "m9"}, ":1\r\n"},
		{[]string{"SPOP", "set"}, "$2\r\nm1\r\n"},
		{[]string{"HSET", "h", "f", "v", "g", "w"}, ":2\r\n"},
		{[]string{"HMSET", "h", "f", "v2"}, "+OK\r\n"},
		{[]string{"HDEL", "h", "g", "nofield"}, ":1\r\n"},
		{[]string{"ZADD", "z", "1", "a", "2", "b", "3", "c"}, ":3\r\n"},
		{[]string{"ZADD", "z", "XX", "NX", "1", "a"}, "-ERR XX and NX options at the same time are not compatible\r\n"},
		{[]string{"ZINCRBY", "z", "5", "a"}, "$1\r\n6\r\n"},
		{[]string{"ZREM", "z", "b"}, ":1\r\n"},
		{[]string{"ZPOPMIN", "z"}, "*2\r\n$1\r\nc\r\n$1\r\n3\r\n"},
		{[]string{"ZPOPMAX", "z"}, "*2\r\n$1\r\na\r\n$1\r\n6\r\n"},
		{[]string{"EXPIRE", "a", "100"}, ":1\r\n"},
		{[]string{"PEXPIRE", "nokey", "100"}, ":0\r\n"},
		{[]string{"DEL", "a", "b", "nokey"}, ":2\r\n"},
		{[]string{"UNLINK", "n"}, ":1\r\n"},
	} {
		before := ts.s.inLoop.Load()
		if got := r.do(tc.cmd...); got != tc.want {
			t.Fatalf("%v: %q, want %q", tc.cmd, got, tc.want)
		}
		if n := ts.s.inLoop.Load() - before; n != 1 {
			t.Fatalf("%v: the loop ran %d commands, want 1", tc.cmd, n)
		}
	}
	stats := r.do("INFO", "commandstats")
	for _, want := range []string{"cmdstat_incr:calls=2,", "cmdstat_lpush:calls=2,", "cmdstat_zadd:calls=2,", "cmdstat_del:calls=1,"} {
		if !strings.Contains(stats, want) {
			t.Errorf("INFO commandstats lacks %q:\n%s", want, stats)
		}
	}
	for _, want := range []string{"failed_calls=1", "rejected_calls=0"} {
		if line := statLine(stats, "cmdstat_incr:"); !strings.Contains(line, want) {
			t.Errorf("cmdstat_incr: %q lacks %q", line, want)
		}
	}
}

// statLine returns the line of an INFO reply that starts with prefix.
func statLine(info, prefix string) string {
	for line := range strings.SplitSeq(info, "\r\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// decliningWriter never queues a write without waiting: every write the
// loop would queue goes to the connection's goroutine.
type decliningWriter struct{ *node.Node }

func (decliningWriter) WriteNotify(context.Context, func(engine.Txn) error, func()) func() (engine.Token, error) {
	return nil
}

// TestLoopDeclinedWriteRunsOnce: a write command whose write cannot be
// queued at once is run again, from its first byte, by the connection's
// goroutine: answered once, counted once, and the commands after it
// follow in order.
func TestLoopDeclinedWriteRunsOnce(t *testing.T) {
	ts := startServer(t, node.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startBackend(t, decliningWriter{ts.n}, ln)
	r := dialRaw(t, ln.Addr().String())
	var b []byte
	for range 3 {
		b = append(b, encode("INCR", "n")...)
		b = append(b, encode("RPUSH", "l", "x")...)
	}
	r.send(b)
	for i, want := range []string{":1\r\n", ":1\r\n", ":2\r\n", ":2\r\n", ":3\r\n", ":3\r\n"} {
		if got, err := r.readRaw(); err != nil || got != want {
			t.Fatalf("reply %d: %q, %v; want %q", i, got, err, want)
		}
	}
	stats := r.do("INFO", "commandstats")
	for _, want := range []string{"cmdstat_incr:calls=3,", "cmdstat_rpush:calls=3,"} {
		if !strings.Contains(stats, want) {
			t.Errorf("INFO commandstats lacks %q:\n%s", want, stats)
		}
	}
}

// gatedWriter queues the loop's writes on the node only once gate is
// closed, as a slow write path would: a client may block on a key
// between the loop's queueing a push and its answer.
type gatedWriter struct {
	*node.Node
	gate chan struct{}
}

func (g *gatedWriter) WriteNotify(ctx context.Context, fn func(engine.Txn) error, notify func()) func() (engine.Token, error) {
	var t engine.Token
	var err error
	done := make(chan struct{})
	go func() {
		<-g.gate
		t, err = g.Node.Write(ctx, fn)
		close(done)
		notify()
	}()
	return func() (engine.Token, error) { <-done; return t, err }
}

// TestLoopWriteServesClientBlockedMeanwhile: a push the loop queued
// serves, once answered, a client that blocked on its key after the push
// was queued (the loop checked for none at the time).
func TestLoopWriteServesClientBlockedMeanwhile(t *testing.T) {
	ts := startServer(t, node.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedWriter{Node: ts.n, gate: make(chan struct{})}
	s := startBackend(t, g, ln)
	pusher, popper := dialRaw(t, ln.Addr().String()), dialRaw(t, ln.Addr().String())
	before := s.inLoop.Load()
	pusher.send(encode("RPUSH", "q", "x"))
	waitFor(t, 5*time.Second, "the push to be queued by the loop", func() bool { return s.inLoop.Load() > before })
	popper.send(encode("BLPOP", "q", "10"))
	waitFor(t, 5*time.Second, "the pop to block", func() bool { return s.blocks.waiting.Load() == 1 })
	close(g.gate)
	if got, err := pusher.readRaw(); err != nil || got != ":1\r\n" {
		t.Fatalf("RPUSH: %q, %v", got, err)
	}
	start := time.Now()
	if got, err := popper.readRaw(); err != nil || got != "*2\r\n$1\r\nq\r\n$1\r\nx\r\n" {
		t.Fatalf("BLPOP: %q, %v", got, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("BLPOP served after %v: by its timeout, not by the push", d)
	}
}

// TestLoopPipelinedWritesInOrder: a pipeline of writes the loop runs
// (each waits in the loop for the one before it), plain SETs it queues
// together, and reads: every reply in order, each command seeing the
// writes before it.
func TestLoopPipelinedWritesInOrder(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	type step struct {
		cmd  []string
		want string
	}
	var steps []step
	for i := 1; i <= 20; i++ {
		n := fmt.Sprint(i)
		steps = append(steps,
			step{[]string{"INCR", "n"}, ":" + n + "\r\n"},
			step{[]string{"SET", "s", n}, "+OK\r\n"},
			step{[]string{"SET", "t", n}, "+OK\r\n"},
			step{[]string{"RPUSH", "l", n}, ":" + n + "\r\n"},
			step{[]string{"GET", "s"}, fmt.Sprintf("$%d\r\n%s\r\n", len(n), n)},
			step{[]string{"SET", "e", n, "PX", "100000", "GET"}, map[bool]string{true: "$-1\r\n", false: fmt.Sprintf("$%d\r\n%d\r\n", len(fmt.Sprint(i-1)), i-1)}[i == 1]},
			step{[]string{"LLEN", "l"}, ":" + n + "\r\n"},
			step{[]string{"HINCRBY", "h", "f", "2"}, fmt.Sprintf(":%d\r\n", 2*i)},
		)
	}
	var b []byte
	for _, st := range steps {
		b = append(b, encode(st.cmd...)...)
	}
	r.send(b)
	for i, st := range steps {
		if got, err := r.readRaw(); err != nil || got != st.want {
			t.Fatalf("reply %d (%v) = %q, %v; want %q", i, st.cmd, got, err, st.want)
		}
	}
}
