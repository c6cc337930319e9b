package resp

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// TestPipelinedWrites: SETs sent without waiting are queued on the write
// path (pipeline.go), yet every reply comes in order, a command after them
// sees them, and a failing command in the middle answers its own error.
func TestPipelinedWrites(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	var in []byte
	var want []string
	add := func(reply string, args ...string) {
		in = append(in, encode(args...)...)
		want = append(want, reply)
	}
	add("+OK\r\n", "SET", "k", "1")
	add("+OK\r\n", "SET", "k", "2")
	add("$1\r\n2\r\n", "GET", "k") // sees the queued writes before it
	add("+OK\r\n", "SET", "n", "x")
	add("-ERR value is not an integer or out of range\r\n", "INCR", "n")
	for i := range 300 {
		add("+OK\r\n", "SET", fmt.Sprint("p", i), fmt.Sprint(i))
	}
	add("+OK\r\n", "set", "k", "3") // any case
	add("$1\r\n3\r\n", "GET", "k")
	add("+OK\r\n", "SET", "big", strings.Repeat("b", maxPipelinedValue+1)) // the ordinary path
	add(":"+fmt.Sprint(maxPipelinedValue+1)+"\r\n", "STRLEN", "big")
	r.send(in)
	for i, w := range want {
		got, err := r.readRaw()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if got != w {
			t.Fatalf("reply %d = %q, want %q", i, got, w)
		}
	}
	c := ts.client(t, 2)
	for i := range 300 {
		if v, err := c.Get(context.Background(), fmt.Sprint("p", i)).Result(); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("p%d = %q, %v", i, v, err)
		}
	}
	if n := ts.s.cmdsTotal.Load(); n < uint64(len(want)) {
		t.Fatalf("commands counted %d, want at least %d", n, len(want))
	}
	// The replies alone would also be right one command at a time: check
	// that the SETs really were queued without waiting.
	if n := ts.s.pipelined.Load(); n < 100 {
		t.Fatalf("%d SETs took the pipelined path, want most of the 303", n)
	}
}

// TestPipelineAnswersBeforeWaitingForInput: a client that sends writes and
// half a command, then waits for the replies before sending the rest,
// must get them (the connection answers its queued writes before it
// blocks on the socket).
func TestPipelineAnswersBeforeWaitingForInput(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	next := encode("GET", "a")
	r.send(append(append(encode("SET", "a", "1"), encode("SET", "a", "2")...), next[:7]...))
	for i := range 2 {
		if got, err := r.readRaw(); err != nil || got != "+OK\r\n" {
			t.Fatalf("reply %d = %q, %v", i, got, err)
		}
	}
	r.send(next[7:])
	if got, err := r.readRaw(); err != nil || got != "$1\r\n2\r\n" {
		t.Fatalf("GET = %q, %v", got, err)
	}
}

// TestPipelinedWriteErrors: a write that fails in the engine answers its
// error in its place in the pipeline.
func TestPipelinedWriteErrors(t *testing.T) {
	addr := startFake(t, func(n *node.Node) *fakeBackend {
		return &fakeBackend{Node: n, writeErr: fmt.Errorf("%w: test", engine.ErrDiskFull)}
	})
	r := dialRaw(t, addr)
	r.send(append(append(encode("SET", "a", "1"), encode("SET", "b", "2")...), encode("PING")...))
	for i, w := range []string{"-MISCONF", "-MISCONF", "+PONG"} {
		got, err := r.readRaw()
		if err != nil || !strings.HasPrefix(got, w) {
			t.Fatalf("reply %d = %q, %v; want %s...", i, got, err, w)
		}
	}
}
