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
	one := encode("INCR", "counter:abc") // 32 bytes: the buffer holds 256
	if len(one) != 32 || readBufSize%len(one) != 0 {
		t.Fatalf("command of %d bytes does not tile the %d-byte buffer", len(one), readBufSize)
	}
	const n = 2 * readBufSize / 32
	r.send(bytes.Repeat(one, n))
	for i := 1; i <= n; i++ {
		if got, err := r.readRaw(); err != nil || got != fmt.Sprintf(":%d\r\n", i) {
			t.Fatalf("INCR %d: %q, %v", i, got, err)
		}
	}
}
