package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

type testServer struct {
	n    *node.Node
	s    *Server
	addr string
}

// startBackend serves b on a fresh loopback listener until the test ends.
func startBackend(t testing.TB, b engine.Engine, ln net.Listener) *Server {
	t.Helper()
	s := New(b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
		if p := s.panics.Load(); p != 0 {
			t.Errorf("%d handler panics", p)
		}
	})
	return s
}

// startServer opens a real node (cfg's ID and DataDir are filled in) and
// serves it.
func startServer(t testing.TB, cfg node.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID == "" {
		cfg.ID = "n1"
	}
	cfg.DataDir = t.TempDir()
	cfg.RESPAddr = ln.Addr().String()
	if cfg.PeerAddr == "" {
		cfg.PeerAddr = "127.0.0.1:0"
	}
	n, err := node.Open(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	// A one-node cluster appoints itself leader through its control plane.
	waitFor(t, 20*time.Second, "node to become leader", n.IsLeader)
	s := startBackend(t, n, ln)
	return &testServer{n: n, s: s, addr: ln.Addr().String()}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client returns a go-redis client speaking protocol proto.
func (ts *testServer) client(t testing.TB, proto int, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: ts.addr, Protocol: proto, MaxRetries: -1, PoolSize: 4,
		DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// fmtReply renders a go-redis Do result compactly: strings as is, integers
// as ":n", nil as "(nil)", errors as "(error) MSG", arrays as "[a b]".
func fmtReply(v any, err error) string {
	if errors.Is(err, redis.Nil) {
		return "(nil)"
	}
	if err != nil {
		return "(error) " + err.Error()
	}
	return fmtVal(v)
}

func fmtVal(v any) string {
	switch x := v.(type) {
	case nil:
		return "(nil)"
	case string:
		return x
	case int64:
		return ":" + strconv.FormatInt(x, 10)
	case bool:
		return fmt.Sprint(x)
	case float64:
		return "," + strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmtVal(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[any]any:
		parts := make([]string, 0, len(x))
		for k, e := range x {
			parts = append(parts, fmtVal(k)+"="+fmtVal(e))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, " ") + "}"
	case error:
		return "(error) " + x.Error()
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

func do(ctx context.Context, c *redis.Client, args ...any) string {
	return fmtReply(c.Do(ctx, args...).Result())
}

// rawConn is a minimal RESP client for byte-exact checks.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	rd *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, rd: bufio.NewReader(c)}
}

func encode(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

func (r *rawConn) send(b []byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// readRaw reads one complete reply and returns its exact bytes.
func (r *rawConn) readRaw() (string, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out strings.Builder
	var readOne func() error
	readOne = func() error {
		line, err := r.rd.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			return err
		}
		if len(line) < 3 {
			return fmt.Errorf("short line %q", line)
		}
		body := line[1 : len(line)-2]
		switch line[0] {
		case '+', '-', ':', '_', ',', '#', '(':
			return nil
		case '$', '=', '!':
			n, err := strconv.Atoi(body)
			if err != nil || n < 0 {
				return err
			}
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r.rd, buf); err != nil {
				return err
			}
			out.Write(buf)
			return nil
		case '*', '~', '>', '%':
			n, err := strconv.Atoi(body)
			if err != nil {
				return err
			}
			if line[0] == '%' {
				n *= 2
			}
			for i := 0; i < n; i++ {
				if err := readOne(); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("unknown reply type %q", line)
	}
	err := readOne()
	return out.String(), err
}

func (r *rawConn) do(args ...string) string {
	r.t.Helper()
	r.send(encode(args...))
	s, err := r.readRaw()
	if err != nil {
		r.t.Fatalf("%v: read reply: %v (got %q)", args, err, s)
	}
	return s
}

// closed reports whether the server closed the connection (after
// draining whatever it sent first).
func (r *rawConn) closed() bool {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, r.rd)
	return err == nil // EOF is reported as nil by io.Copy
}
