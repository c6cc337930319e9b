package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/client"
	"github.com/replicant-db/replicant/internal/api/httpapi"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// startNode opens a real one-node cluster and serves its HTTP API on a
// loopback server; it returns the server's address.
func startNode(t *testing.T, mut func(*node.Config)) (*node.Node, string) {
	t.Helper()
	cfg := node.Config{
		ID:       "n1",
		DataDir:  t.TempDir(),
		PeerAddr: "127.0.0.1:0",
		// Short, so a session read of an unreachable token fails fast.
		ReadTimeout: 200 * time.Millisecond,
	}
	if mut != nil {
		mut(&cfg)
	}
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatalf("node.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	// Writes before the one-node cluster appoints itself leader would be
	// refused; poll rather than guess how long that takes.
	deadline := time.Now().Add(20 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("node did not become leader within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	hs := httptest.NewServer(httpapi.New(n, nil).Handler())
	t.Cleanup(hs.Close) // runs before the node closes
	return n, hs.URL
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func parseToken(t *testing.T, s string) engine.Token {
	t.Helper()
	tok, err := engine.ParseToken(s)
	if err != nil {
		t.Fatalf("client token %q: %v", s, err)
	}
	return tok
}

func statusCode(err error) int {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestRoundTrip(t *testing.T) {
	_, url := startNode(t, nil)
	// New accepts a URL or a bare host:port; both must reach the node.
	bare := strings.TrimPrefix(url, "http://")
	for _, addr := range []string{url, url + "/", bare} {
		t.Run(addr, func(t *testing.T) {
			c := client.New(addr, client.Options{})
			ctx := ctxT(t)
			// The client escapes keys, so any byte string round-trips,
			// including ones the server's path cleaning would otherwise
			// rewrite ("a//b", "../x").
			tests := []struct {
				key   string
				value []byte
			}{
				{"plain", []byte("v")},
				{"a/b/c", []byte("nested")},
				{"a//b", []byte("double slash")},
				{"../x", []byte("dot segments")},
				{"sp ace?&#%", []byte("specials")},
				{"\x00bin\xff", []byte{0, 1, 2, 255}},
				{"empty", nil},
			}
			for _, tc := range tests {
				if err := c.Put(ctx, tc.key, tc.value, 0); err != nil {
					t.Fatalf("Put(%q): %v", tc.key, err)
				}
				got, err := c.Get(ctx, tc.key)
				if err != nil || !bytes.Equal(got, tc.value) {
					t.Fatalf("Get(%q) = %q, %v; want %q", tc.key, got, err, tc.value)
				}
				if err := c.Delete(ctx, tc.key); err != nil {
					t.Fatalf("Delete(%q): %v", tc.key, err)
				}
				if _, err := c.Get(ctx, tc.key); !errors.Is(err, client.ErrNotFound) {
					t.Fatalf("Get(%q) after Delete: %v, want ErrNotFound", tc.key, err)
				}
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	_, url := startNode(t, nil)
	c := client.New(url, client.Options{})
	ctx := ctxT(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := c.Get(ctx, "missing"); return err }},
		{"Delete", func() error { return c.Delete(ctx, "missing") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("%s of a missing key: %v, want ErrNotFound", tc.name, err)
			}
			// The server's message (naming the key) is kept for humans.
			if !strings.Contains(err.Error(), "missing") {
				t.Errorf("error %q does not name the key", err)
			}
			// Said once, with the package prefix once: the CLI prints
			// this line as it is.
			if got, want := err.Error(), `replicant: key "missing" not found`; got != want {
				t.Errorf("error %q, want %q", got, want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	_, url := startNode(t, nil)
	c := client.New(url, client.Options{})
	ctx := ctxT(t)
	if err := c.Put(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.ID != "n1" || st.Role != "leader" || st.Leader != "n1" || st.State != "leading" {
		t.Errorf("status id/role/leader/state = %s/%s/%s/%s, want n1/leader/n1/leading", st.ID, st.Role, st.Leader, st.State)
	}
	if st.Epoch < 1 || st.CommitLSN < 1 || st.AppliedLSN < st.CommitLSN || st.LastLSN < st.CommitLSN {
		t.Errorf("positions epoch=%d commit=%d applied=%d last=%d after one write", st.Epoch, st.CommitLSN, st.AppliedLSN, st.LastLSN)
	}
	if st.SyncPolicy != "async" || st.Ack != "durable" || st.Fallback != "block" {
		t.Errorf("policy %q/%q/%q, want async/durable/block", st.SyncPolicy, st.Ack, st.Fallback)
	}
	if len(st.Members) != 0 {
		t.Errorf("members %+v, want none on a one-node cluster", st.Members)
	}
	// The status document's token is a read state at least as new as the
	// write just made.
	if parseToken(t, st.Token).LSN < parseToken(t, c.Token()).LSN {
		t.Errorf("status token %s older than the client's %s", st.Token, c.Token())
	}
}

func TestTokenRises(t *testing.T) {
	_, url := startNode(t, nil)
	c := client.New(url, client.Options{})
	ctx := ctxT(t)
	if tok := c.Token(); tok != "" {
		t.Fatalf("a new client has token %q, want none", tok)
	}
	var prev engine.Token
	for i := range 3 {
		if err := c.Put(ctx, "k", []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
		tok := parseToken(t, c.Token())
		// Each write is a new log entry, so its token is strictly newer.
		if tok.LSN <= prev.LSN {
			t.Fatalf("token after write %d is %v, not after %v", i, tok, prev)
		}
		prev = tok
	}

	// SetToken only raises the floor: an older token is ignored.
	c.SetToken("1:1")
	if got := parseToken(t, c.Token()); got != prev {
		t.Errorf("SetToken(older) moved the token to %v, want %v", got, prev)
	}
	// A read answers with its state's token, which is not older than what
	// the client had.
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if got := parseToken(t, c.Token()); got.LSN < prev.LSN {
		t.Errorf("token went back to %v after a read", got)
	}
}

func TestSessionReads(t *testing.T) {
	_, url := startNode(t, nil)
	ctx := ctxT(t)
	w := client.New(url, client.Options{})
	if err := w.Put(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	t.Run("handed-over token", func(t *testing.T) {
		// A second session that adopts the writer's token reads the write.
		r := client.New(url, client.Options{Consistency: "session"})
		r.SetToken(w.Token())
		got, err := r.Get(ctx, "k")
		if err != nil || string(got) != "v" {
			t.Fatalf("Get = %q, %v; want v", got, err)
		}
	})

	t.Run("far-future token", func(t *testing.T) {
		r := client.New(url, client.Options{Consistency: "session"})
		r.SetToken("1:1000000000")
		start := time.Now()
		_, err := r.Get(ctx, "k")
		// The node cannot reach the token; after its ReadTimeout (200ms)
		// it refuses with 503 rather than answering from older state.
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
			t.Fatalf("Get with an unreachable token: %v, want *StatusError 503", err)
		}
		if !strings.Contains(se.Message, "not reached") {
			t.Errorf("message %q does not say the token was not reached", se.Message)
		}
		if errors.Is(err, client.ErrNotFound) {
			t.Error("a refused read must not look like a missing key")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the refusal took %s; the node's ReadTimeout is 200ms", d)
		}
	})

	t.Run("token ignored without session", func(t *testing.T) {
		// The token is sent only with Consistency "session": a default
		// client's reads do not wait for it.
		r := client.New(url, client.Options{})
		r.SetToken("1:1000000000")
		if got, err := r.Get(ctx, "k"); err != nil || string(got) != "v" {
			t.Fatalf("Get = %q, %v; want v", got, err)
		}
	})

	t.Run("bad consistency", func(t *testing.T) {
		r := client.New(url, client.Options{Consistency: "psychic"})
		if _, err := r.Get(ctx, "k"); statusCode(err) != http.StatusBadRequest {
			t.Fatalf("Get with an unknown consistency: %v, want *StatusError 400", err)
		}
	})
}

func TestTTL(t *testing.T) {
	_, url := startNode(t, nil)
	c := client.New(url, client.Options{})
	ctx := ctxT(t)
	if err := c.Put(ctx, "short", []byte("v"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "long", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Expiry is time-based: poll with a deadline instead of sleeping.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Get(ctx, "short")
		if errors.Is(err, client.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 50ms ttl still present after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Get(ctx, "long"); err != nil {
		t.Errorf("key with a 1h ttl: %v", err)
	}
}

func TestValueTooLarge(t *testing.T) {
	_, url := startNode(t, func(c *node.Config) { c.MaxValueSize = 1024 })
	c := client.New(url, client.Options{})
	ctx := ctxT(t)
	err := c.Put(ctx, "big", make([]byte, 1025), 0)
	if statusCode(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("Put over the limit: %v, want *StatusError 413", err)
	}
	if _, err := c.Get(ctx, "big"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the refused Put wrote the key: %v", err)
	}
}

func TestPassword(t *testing.T) {
	_, url := startNode(t, func(c *node.Config) { c.RequirePass = "s3cret" })
	ctx := ctxT(t)
	tests := []struct {
		name     string
		password string
		code     int // 0: success
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong", "guess", http.StatusUnauthorized},
		{"right", "s3cret", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := client.New(url, client.Options{Password: tc.password})
			err := c.Put(ctx, "k", []byte("v"), 0)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
				if _, err := c.Status(ctx); err != nil {
					t.Fatalf("Status: %v", err)
				}
				return
			}
			if statusCode(err) != tc.code {
				t.Fatalf("Put: %v, want *StatusError %d", err, tc.code)
			}
			if _, err := c.Status(ctx); statusCode(err) != tc.code {
				t.Fatalf("Status: %v, want *StatusError %d", err, tc.code)
			}
		})
	}
}

func TestSetConfig(t *testing.T) {
	_, url := startNode(t, nil)
	c := client.New(url, client.Options{})
	ctx := ctxT(t)

	refusals := []struct {
		name    string
		cfg     client.Config
		errPart string
	}{
		{"k zero", client.Config{Sync: "FIRST 0 (x)"}, "k must be >= 1"},
		{"unknown policy", client.Config{Sync: "sometimes"}, "unknown policy"},
		{"bad ack", client.Config{Ack: "eventually"}, "eventually"},
		{"bad fallback", client.Config{Fallback: "panic"}, "panic"},
		{"nothing", client.Config{}, "nothing to change"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.SetConfig(ctx, tc.cfg)
			var se *client.StatusError
			if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
				t.Fatalf("SetConfig(%+v) = %+v, %v; want *StatusError 400", tc.cfg, out, err)
			}
			if !strings.Contains(se.Message, tc.errPart) {
				t.Errorf("message %q does not mention %q", se.Message, tc.errPart)
			}
		})
	}

	t.Run("accepted", func(t *testing.T) {
		out, err := c.SetConfig(ctx, client.Config{Ack: "applied"})
		if err != nil {
			t.Fatal(err)
		}
		// Empty fields are kept, and the answer shows the change itself.
		want := client.Config{Sync: "async", Ack: "applied", Fallback: "block"}
		if *out != want {
			t.Errorf("SetConfig answered %+v, want %+v", *out, want)
		}
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ack != "applied" {
			t.Errorf("status ack %q after SetConfig, want applied", st.Ack)
		}
	})
}

func TestRemoveMember(t *testing.T) {
	_, url := startNode(t, nil)
	c := client.New(url, client.Options{})
	ctx := ctxT(t)
	tests := []struct {
		id, errPart string
	}{
		{"nosuch", "nosuch"},
		{"n1", "leader"}, // the data leader cannot remove itself
		{"odd/id", "odd/id"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			err := c.RemoveMember(ctx, tc.id)
			var se *client.StatusError
			if !errors.As(err, &se) || se.Code != http.StatusConflict {
				t.Fatalf("RemoveMember(%q): %v, want *StatusError 409", tc.id, err)
			}
			if !strings.Contains(se.Message, tc.errPart) {
				t.Errorf("message %q does not mention %q", se.Message, tc.errPart)
			}
			if errors.Is(err, client.ErrNotFound) {
				t.Error("a refused removal must not look like a missing key")
			}
		})
	}
}

func TestTransportError(t *testing.T) {
	// A server that drops every connection without answering: the error is
	// a transport error, neither a *StatusError nor ErrNotFound. (A closed
	// port could be reused by a parallel test's server.)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(hs.Close)
	c := client.New(hs.URL, client.Options{HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	_, err := c.Get(ctxT(t), "k")
	if err == nil || statusCode(err) != 0 || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get from a server that hangs up: %v, want a transport error", err)
	}
}
