package resp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/api/budget"
	"github.com/replicant-db/replicant/internal/node"
)

// serveWith serves ts's node on a new listener with cfg and returns its
// address.
func serveWith(t *testing.T, ts *testServer, cfg Config) (*Server, string) {
	t.Helper()
	ln := ts.mustListen(t)
	s := NewWithConfig(ts.n, nil, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// infoField returns one "name:value" field of INFO.
func infoField(t *testing.T, r *rawConn, name string) string {
	t.Helper()
	for _, line := range strings.Split(r.do("INFO"), "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	t.Fatalf("INFO has no %s", name)
	return ""
}

// TestMaxClients: beyond MaxClients a connection is told why and closed;
// a freed slot is usable again; INFO reports the limit.
func TestMaxClients(t *testing.T) {
	ts := startServer(t, node.Config{})
	_, addr := serveWith(t, ts, Config{MaxClients: 2})
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	for _, r := range []*rawConn{a, b} {
		if got := r.do("PING"); got != "+PONG\r\n" {
			t.Fatal(got)
		}
	}
	c := dialRaw(t, addr)
	if got, _ := c.readRaw(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("third connection: %q", got)
	}
	if !c.closed() {
		t.Fatal("third connection not closed")
	}
	if got := infoField(t, a, "maxclients"); got != "2" {
		t.Errorf("INFO maxclients %s", got)
	}
	if got := infoField(t, a, "rejected_connections"); got != "1" {
		t.Errorf("INFO rejected_connections %s", got)
	}
	b.c.Close()
	waitFor(t, 5*time.Second, "slot to free", func() bool { return infoField(t, a, "connected_clients") == "1" })
	if got := dialRaw(t, addr).do("PING"); got != "+PONG\r\n" {
		t.Fatalf("after a slot freed: %q", got)
	}
}

// TestConnectionTimeouts: idle, unauthenticated and slowloris connections
// are closed after their timeout; others stay open.
func TestConnectionTimeouts(t *testing.T) {
	const d = 200 * time.Millisecond
	ts := startServer(t, node.Config{RequirePass: "pw"})
	for _, tc := range []struct {
		name   string
		cfg    Config
		send   []byte // after an optional AUTH
		auth   bool
		closed bool
	}{
		{"unauthenticated", Config{AuthTimeout: d}, nil, false, true},
		{"authenticated", Config{AuthTimeout: d}, nil, true, false},
		{"authentication timeout off", Config{AuthTimeout: -1}, nil, false, false},
		{"partial command", Config{CommandTimeout: d}, []byte("*2\r\n$3\r\nGET\r\n$1"), true, true},
		{"partial command, timeout off", Config{CommandTimeout: -1}, []byte("*2\r\n$3\r\nGET\r\n$1"), true, false},
		{"idle", Config{IdleTimeout: d}, nil, true, true},
		{"idle, Redis's default", Config{}, nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := serveWith(t, ts, tc.cfg)
			r := dialRaw(t, addr)
			if tc.auth {
				if got := r.do("AUTH", "pw"); got != "+OK\r\n" {
					t.Fatal(got)
				}
			}
			if tc.send != nil {
				r.send(tc.send)
			}
			time.Sleep(5 * d)
			_ = r.c.SetReadDeadline(time.Now().Add(d))
			_, err := r.rd.ReadByte()
			gotClosed := err != nil && !isTimeout(err)
			if gotClosed != tc.closed {
				t.Fatalf("closed after %v: %v (read: %v), want %v", 5*d, gotClosed, err, tc.closed)
			}
		})
	}
}

// TestBudgetRefusal: a command that finds no room in the request budget
// within its wait is refused with -OOM, the connection stays usable, the
// command that held the budget completes, and the budget is whole after.
func TestBudgetRefusal(t *testing.T) {
	ts := startServer(t, node.Config{})
	b := budget.New(1<<20, 200*time.Millisecond)
	_, addr := serveWith(t, ts, Config{Budget: b})
	val := strings.Repeat("v", 900<<10)

	// A holds most of the budget: its value announced, half sent.
	a := dialRaw(t, addr)
	full := encode("SET", "a", val)
	a.send(full[:len(full)/2])
	waitFor(t, 5*time.Second, "A to hold the budget", func() bool { return b.InUse() > 512<<10 })

	c := dialRaw(t, addr)
	got := c.do("SET", "c", val)
	if !strings.HasPrefix(got, "-OOM command not allowed") || !strings.Contains(got, "request buffer budget exhausted") {
		t.Fatalf("SET without room: %.200q", got)
	}
	if got := c.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("after the refusal: %q", got)
	}
	if got := infoField(t, c, "replicant_request_buffer_refusals"); got != "1" {
		t.Errorf("INFO refusals %s", got)
	}
	a.send(full[len(full)/2:])
	if got, _ := a.readRaw(); got != "+OK\r\n" {
		t.Fatalf("A: %q", got)
	}
	if got := c.do("SET", "c", val); got != "+OK\r\n" {
		t.Fatalf("retry: %.100q", got)
	}
	if got := c.do("STRLEN", "c"); got != fmt.Sprintf(":%d\r\n", len(val)) {
		t.Fatalf("STRLEN: %q", got)
	}
	waitFor(t, 5*time.Second, "budget to be whole", func() bool { return b.InUse() == 0 })
}

// TestManyLargeWritesWait: more large writes than the budget holds at
// once all succeed, by waiting, and the budget is whole afterwards.
func TestManyLargeWritesWait(t *testing.T) {
	ts := startServer(t, node.Config{})
	b := budget.New(2<<20, 10*time.Second)
	_, addr := serveWith(t, ts, Config{Budget: b})
	val := strings.Repeat("v", 700<<10)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			r := &rawConn{t: t, c: c, rd: bufio.NewReader(c)}
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(encode("SET", fmt.Sprint("k", i), val)); err != nil {
				errs <- err
				return
			}
			got, err := r.readRaw()
			if err == nil && got != "+OK\r\n" {
				err = fmt.Errorf("SET: %q", got)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "budget to be whole", func() bool { return b.InUse() == 0 })
}

// TestLargeRepliesInOrder: a bulk reply large enough to be sent straight
// from the value still comes between the replies before and after it.
func TestLargeRepliesInOrder(t *testing.T) {
	ts := startServer(t, node.Config{})
	_, addr := serveWith(t, ts, Config{IdleTimeout: time.Minute, MaxClients: 7})
	r := dialRaw(t, addr)
	val := strings.Repeat("x", 3*directWriteBulk)
	if got := r.do("SET", "big", val); got != "+OK\r\n" {
		t.Fatal(got)
	}
	r.send(append(append(encode("PING"), encode("GET", "big")...), encode("ECHO", "after")...))
	want := []string{"+PONG\r\n", fmt.Sprintf("$%d\r\n%s\r\n", len(val), val), "$5\r\nafter\r\n"}
	for _, w := range want {
		if got, err := r.readRaw(); err != nil || got != w {
			t.Fatalf("got %.60q (%v), want %.60q", got, err, w)
		}
	}
	if got := r.do("CONFIG", "GET", "maxclients"); got != "*2\r\n$10\r\nmaxclients\r\n$1\r\n7\r\n" {
		t.Errorf("CONFIG GET maxclients: %q", got)
	}
	if got := r.do("CONFIG", "GET", "timeout"); got != "*2\r\n$7\r\ntimeout\r\n$2\r\n60\r\n" {
		t.Errorf("CONFIG GET timeout: %q", got)
	}
}
