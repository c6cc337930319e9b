package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/api/budget"
)

// serveWith serves e's node with cfg on a real listener (net/http's
// timeouts and the connection limit only apply there) and returns its
// base URL.
func serveWith(t *testing.T, e *testEnv, cfg Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewWithConfig(e.n, nil, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// onlyReader hides a reader's length so the request is sent chunked.
type onlyReader struct{ io.Reader }

// TestPutBodyBudget: a PUT body is reserved from the budget before it is
// read; without room within the wait it is refused with 503 and nothing
// is written; the reservation is returned after the write.
func TestPutBodyBudget(t *testing.T) {
	e := startEnv(t, nil)
	b := budget.New(1<<20, 100*time.Millisecond)
	url := serveWith(t, e, Config{Budget: b})
	e.url = url
	val := bytes.Repeat([]byte("v"), 600<<10)

	for _, tc := range []struct {
		name  string
		body  func() io.Reader
		held  int64 // by someone else, during the PUT
		code  int
		wrote bool
	}{
		{"fits", func() io.Reader { return bytes.NewReader(val) }, 0, http.StatusNoContent, true},
		{"no room", func() io.Reader { return bytes.NewReader(val) }, 600 << 10, http.StatusServiceUnavailable, false},
		{"chunked fits", func() io.Reader { return onlyReader{bytes.NewReader(val)} }, 0, http.StatusNoContent, true},
		{"chunked, no room", func() io.Reader { return onlyReader{bytes.NewReader(val)} }, 700 << 10, http.StatusServiceUnavailable, false},
		{"chunked over the limit", func() io.Reader { return onlyReader{bytes.NewReader(make([]byte, testMaxValue+1))} }, 0, http.StatusRequestEntityTooLarge, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := b.Acquire(context.Background(), tc.held); err != nil {
				t.Fatal(err)
			}
			key := strings.ReplaceAll(tc.name, " ", "-")
			r := e.do(t, http.MethodPut, "/v1/kv/"+key, tc.body(), nil)
			b.Release(tc.held)
			if r.code != tc.code {
				t.Fatalf("PUT: %d %s, want %d", r.code, r.body, tc.code)
			}
			if r.code == http.StatusServiceUnavailable {
				if msg := errorMessage(t, r); !strings.Contains(msg, "request buffer budget exhausted") {
					t.Errorf("503 message %q", msg)
				}
				if r.header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
			if _, ok := e.readKey(t, key); ok != tc.wrote {
				t.Errorf("key written: %v, want %v", ok, tc.wrote)
			}
			waitFor(t, 5*time.Second, "budget to be whole", func() bool { return b.InUse() == 0 })
		})
	}
}

// TestMaxConns: a connection beyond MaxConns is answered 503 and closed.
func TestMaxConns(t *testing.T) {
	e := startEnv(t, nil)
	url := serveWith(t, e, Config{MaxConns: 1})
	host := strings.TrimPrefix(url, "http://")
	first, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// The first connection is in use (it serves a request and stays open).
	fmt.Fprintf(first, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(first), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first connection: %v %v", resp, err)
	}
	resp.Body.Close()
	second, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(second, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(second), nil)
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "max number of clients reached") {
		t.Fatalf("second connection: %d %s", resp.StatusCode, body)
	}
	first.Close()
	waitFor(t, 5*time.Second, "a free slot", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestSlowClients: headers or a body that stop arriving close the
// connection after their timeout, and a stalled body gives its budget
// back.
func TestSlowClients(t *testing.T) {
	const d = 200 * time.Millisecond
	e := startEnv(t, nil)
	b := budget.New(1<<20, time.Second)
	url := serveWith(t, e, Config{ReadHeaderTimeout: d, BodyTimeout: d, Budget: b})
	host := strings.TrimPrefix(url, "http://")
	for _, tc := range []struct{ name, send string }{
		{"headers", "PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\n"},
		{"body", "PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(10 * d))
			_, err = io.Copy(io.Discard, c) // until the server closes
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v", time.Since(start))
			}
			waitFor(t, 5*time.Second, "budget to be whole", func() bool { return b.InUse() == 0 })
		})
	}
	// A body that arrives in time is read whole.
	e.url = url
	e.put(t, "/v1/kv/fast", bytes.Repeat([]byte("f"), 100000))
}
