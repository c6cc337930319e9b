package resp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
	"github.com/replicant-db/replicant/internal/storage"
)

// TestExpiryLazy: with the active expirer effectively off, an expired key
// is invisible to every read although its version is still stored.
func TestExpiryLazy(t *testing.T) {
	ts := startServer(t, node.Config{ExpiryInterval: time.Hour})
	c := ts.client(t, 3)
	ctx := context.Background()
	mustDo(t, c, "OK", "set", "k", "v")
	mustDo(t, c, "OK", "set", "keep", "v")
	mustDo(t, c, ":1", "pexpire", "k", "150")
	waitFor(t, 5*time.Second, "k to expire", func() bool { return do(ctx, c, "get", "k") == "(nil)" })
	for _, s := range []step{
		st("exists k", ":0"), st("ttl k", ":-2"), st("dbsize", ":1"),
		st("keys *", "[keep]"), st("scan 0", "[0 [keep]]"), st("mget k keep", "[(nil) v]"),
		st("strlen k", ":0"), st("type k", "none"), st("del k", ":0"), st("persist k", ":0"),
		st("setnx k w", ":1"), st("get k", "w"),
	} {
		args := make([]any, len(s.args))
		for i, a := range s.args {
			args[i] = a
		}
		if got := do(ctx, c, args...); got != s.want {
			t.Errorf("%q: got %q want %q", s.args, got, s.want)
		}
	}
	// Lazily hidden, not yet removed: the expired version of "k" was still
	// the stored one until SETNX replaced it; "keep" was never touched.
	mustDo(t, c, "OK", "set", "gone", "v", "px", "100")
	waitFor(t, 5*time.Second, "gone to expire", func() bool { return do(ctx, c, "exists", "gone") == ":0" })
	v, found, err := ts.n.Store().Get([]byte("gone"), storage.Latest)
	if err != nil || !found || !v.Expired(time.Now().UnixMilli()) {
		t.Fatalf("stored version of an expired key: %+v found=%v err=%v (want present and expired)", v, found, err)
	}
}

// TestExpiryActive: the node's active expirer deletes expired keys through
// the log; EXPIRE then the key leaves DBSIZE and SCAN and the store.
func TestExpiryActive(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	mustDo(t, c, "OK", "mset", "a", "1", "b", "2", "c", "3")
	mustDo(t, c, ":1", "expire", "a", "1")
	mustDo(t, c, ":1", "pexpire", "b", "200")
	mustDo(t, c, "OK", "set", "d", "4", "px", "300")
	mustDo(t, c, ":4", "dbsize")
	waitFor(t, 10*time.Second, "expired keys to leave DBSIZE", func() bool { return do(ctx, c, "dbsize") == ":1" })
	mustDo(t, c, "[0 [c]]", "scan", "0")
	for _, k := range []string{"a", "b", "d"} {
		waitFor(t, 10*time.Second, "active expiry of "+k, func() bool {
			_, found, err := ts.n.Store().Get([]byte(k), storage.Latest)
			return err == nil && !found
		})
	}
}

func mustDo(t testing.TB, c *redis.Client, want string, args ...any) {
	t.Helper()
	if got := do(context.Background(), c, args...); got != want {
		t.Fatalf("%v: got %q want %q", args, got, want)
	}
}

// TestScanCompleteness: every key present for the whole iteration is
// returned, while other keys are written and deleted concurrently.
func TestScanCompleteness(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("resp", proto), func(t *testing.T) {
			c := ts.client(t, proto)
			mustDo(t, c, "OK", "flushall")
			const n = 5000
			args := []any{"mset"}
			for i := 0; i < n; i++ {
				args = append(args, fmt.Sprintf("orig:%05d", i), i)
			}
			mustDo(t, c, "OK", args...)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := ts.client(t, proto)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					// Keys sorting before, between and after the originals.
					k := fmt.Sprintf("%s:%d", []string{"a", "orig:0100x", "z"}[i%3], i)
					if err := w.Set(ctx, k, i, 0).Err(); err != nil {
						t.Errorf("concurrent set: %v", err)
						return
					}
					if i%2 == 0 {
						w.Del(ctx, k)
					}
				}
			}()
			seen := map[string]bool{}
			pages := 0
			iter := c.Scan(ctx, 0, "", 10).Iterator()
			for iter.Next(ctx) {
				seen[iter.Val()] = true
				pages++
			}
			close(stop)
			wg.Wait()
			if err := iter.Err(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if k := fmt.Sprintf("orig:%05d", i); !seen[k] {
					t.Fatalf("SCAN missed %s (saw %d keys)", k, len(seen))
				}
			}
			// MATCH filters, COUNT still bounds the work per page.
			var matched []string
			iter = c.Scan(ctx, 0, "orig:0000?", 7).Iterator()
			for iter.Next(ctx) {
				matched = append(matched, iter.Val())
			}
			if err := iter.Err(); err != nil || len(matched) != 10 {
				t.Fatalf("SCAN MATCH orig:0000?: %v %v", matched, err)
			}
		})
	}
}

func TestScanCursorErrors(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	mustDo(t, c, "OK", "mset", "a", "1", "b", "2", "c", "3")
	keys, cur, err := c.Scan(ctx, 0, "", 1).Result()
	if err != nil || len(keys) != 1 || keys[0] != "a" || cur == 0 {
		t.Fatalf("first page: %v %d %v", keys, cur, err)
	}
	// Cursors are immutable: a retried page answers the same.
	for range 2 {
		keys2, cur2, err := c.Scan(ctx, cur, "", 1).Result()
		if err != nil || len(keys2) != 1 || keys2[0] != "b" || cur2 == 0 {
			t.Fatalf("second page: %v %d %v", keys2, cur2, err)
		}
	}
	if _, _, err := c.Scan(ctx, cur+1, "", 1).Result(); err == nil || err.Error() != "ERR invalid cursor" {
		t.Fatalf("unknown cursor: %v", err)
	}
	// The table evicts the least recently used cursors beyond its bound.
	tab := newCursorTable(3, 1<<20)
	ids := []uint64{tab.put([]byte("a")), tab.put([]byte("b")), tab.put([]byte("c"))}
	if _, ok := tab.get(ids[0]); !ok {
		t.Fatal("cursor lost early")
	}
	tab.put([]byte("d")) // evicts ids[1], the least recently used
	if _, ok := tab.get(ids[1]); ok {
		t.Fatal("cursor not evicted")
	}
	if last, ok := tab.get(ids[0]); !ok || string(last) != "a" {
		t.Fatal("recently used cursor evicted")
	}
	byBytes := newCursorTable(100, 10)
	first := byBytes.put(bytes.Repeat([]byte("x"), 6))
	byBytes.put(bytes.Repeat([]byte("y"), 6))
	if _, ok := byBytes.get(first); ok || byBytes.len() != 1 {
		t.Fatalf("byte bound not enforced: %d cursors", byBytes.len())
	}
}

// TestBinarySafe: keys and values carry every byte value, CRLF included.
func TestBinarySafe(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	val := make([]byte, 0, 300)
	for i := 0; i < 256; i++ {
		val = append(val, byte(i))
	}
	val = append(val, "\r\n$5\r\n*1\r\n\r\n"...)
	key := "k\r\n\x00\xff *?[x]"
	for _, proto := range []int{2, 3} {
		c := ts.client(t, proto)
		if err := c.Set(ctx, key, val, 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, key).Bytes()
		if err != nil || !bytes.Equal(got, val) {
			t.Fatalf("resp%d GET: %q %v", proto, got, err)
		}
		if n, err := c.Append(ctx, key, "\x00\r\n").Result(); err != nil || n != int64(len(val)+3) {
			t.Fatalf("APPEND: %d %v", n, err)
		}
		if got, _ := c.GetRange(ctx, key, 13, 13).Result(); got != "\r" {
			t.Fatalf("GETRANGE: %q", got)
		}
		keys, err := c.Keys(ctx, "k\r\n*").Result()
		if err != nil || len(keys) != 1 || keys[0] != key {
			t.Fatalf("KEYS: %q %v", keys, err)
		}
		vals, err := c.MGet(ctx, key, "missing").Result()
		if err != nil || vals[0] != string(val)+"\x00\r\n" || vals[1] != nil {
			t.Fatalf("MGET: %q %v", vals, err)
		}
		c.Del(ctx, key)
	}
	// Inline commands and raw bulk framing with CRLF inside.
	r := dialRaw(t, ts.addr)
	if got := r.do("SET", "raw", "a\r\nb"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	if got := r.do("GET", "raw"); got != "$4\r\na\r\nb\r\n" {
		t.Fatalf("%q", got)
	}
	r.send([]byte("ECHO \"x\\r\\ny\"\r\n"))
	if got, _ := r.readRaw(); got != "$4\r\nx\r\ny\r\n" {
		t.Fatalf("inline ECHO: %q", got)
	}
}

// TestLimits: keys and values above the limits are refused and nothing is
// written; bulks beyond the guard close only that connection.
func TestLimits(t *testing.T) {
	const maxVal = 1 << 20
	ts := startServer(t, node.Config{MaxValueSize: maxVal, MaxKeySize: 1024})
	c := ts.client(t, 2)
	ctx := context.Background()
	lastLSN := func() uint64 { return ts.n.Store().State().LastLSN }
	mustDo(t, c, "OK", "set", "small", "x")
	before := lastLSN()
	big := strings.Repeat("v", maxVal+1)
	tooBig := fmt.Sprintf("(error) ERR value too large (%d bytes > max %d)", maxVal+1, maxVal)
	for _, args := range [][]any{
		{"set", "k", big}, {"setnx", "k", big}, {"setex", "k", "10", big}, {"getset", "k", big},
		{"mset", "a", "1", "k", big}, {"msetnx", "a", "1", "k", big},
	} {
		if got := do(ctx, c, args...); got != tooBig {
			t.Errorf("%s: got %.120q", args[0], got)
		}
	}
	mustDo(t, c, "OK", "set", "k", strings.Repeat("v", maxVal))
	before = lastLSN()
	if got := do(ctx, c, "append", "k", "w"); got != tooBig {
		t.Errorf("APPEND: %q", got)
	}
	if got := do(ctx, c, "setrange", "small", strconv.Itoa(maxVal), "y"); got != tooBig {
		t.Errorf("SETRANGE: %q", got)
	}
	longKey := strings.Repeat("k", 1025)
	keyErr := "(error) ERR key too large (1025 bytes > max 1024)"
	for _, args := range [][]any{{"set", longKey, "v"}, {"mset", "a", "1", longKey, "v"}, {"rename", "small", longKey}, {"incr", longKey}} {
		if got := do(ctx, c, args...); got != keyErr {
			t.Errorf("%s: %q", args[0], got)
		}
	}
	if lastLSN() != before {
		t.Fatalf("refused writes reached the log: LSN %d -> %d", before, lastLSN())
	}
	mustDo(t, c, ":2", "dbsize")
	mustDo(t, c, ":1048576", "strlen", "k")

	// Between the value limit and the guard: an ordinary error, and the
	// connection keeps working.
	r := dialRaw(t, ts.addr)
	if got := r.do("SET", "mid", strings.Repeat("m", 2*maxVal)); got != fmt.Sprintf("-ERR value too large (%d bytes > max %d)\r\n", 2*maxVal, maxVal) {
		t.Fatalf("mid-size value: %.100q", got)
	}
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Fatal(got)
	}
	// Beyond the guard (2×max+1MiB): refused from the header alone, before
	// any payload is sent, and only this connection closes.
	other := dialRaw(t, ts.addr)
	r.send([]byte(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", 3*maxVal+1)))
	if got, _ := r.readRaw(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("guard: %q", got)
	}
	if !r.closed() {
		t.Fatal("connection not closed after the guard tripped")
	}
	if got := other.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("other connection: %q", got)
	}
	mustDo(t, c, ":1048576", "strlen", "k")
}

// TestMalformedInput: bad framing closes only its own connection.
func TestMalformedInput(t *testing.T) {
	ts := startServer(t, node.Config{})
	bystander := dialRaw(t, ts.addr)
	if got := bystander.do("SET", "safe", "1"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	cases := []struct {
		name, in, want string
		closes         bool
	}{
		{"multibulk not a number", "*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true},
		{"inline dollar", "$-5\r\n", "-ERR unknown command '$-5', with args beginning with: \r\n", false},
		{"huge bulk", "*1\r\n$99999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"negative bulk", "*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"bulk not a number", "*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"too many args", "*2000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true},
		{"not a bulk", "*1\r\nx\r\n", "-ERR Protocol error: expected '$', got 'x'\r\n", true},
		{"empty multibulk ignored", "*0\r\n*-1\r\nPING\r\n", "+PONG\r\n", false},
		{"pipeline then error", "*1\r\n$4\r\nPING\r\n*1\r\n$-1\r\n", "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n", true},
		{"long count line", "*" + strings.Repeat("1", 40) + "\r\n", "-ERR Protocol error: too big mbulk count string\r\n", true},
		{"long bulk line", "*1\r\n$" + strings.Repeat("1", 40) + "\r\n", "-ERR Protocol error: too big bulk count string\r\n", true},
		{"inline too big", strings.Repeat("a", 70<<10), "-ERR Protocol error: too big inline request\r\n", true},
		{"unbalanced quotes", "SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n", true},
		{"count without CR", "*1\n$4\r\nPING\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, ts.addr)
			r.send([]byte(tc.in))
			var got strings.Builder
			for got.Len() < len(tc.want) {
				s, err := r.readRaw()
				got.WriteString(s)
				if err != nil {
					break
				}
			}
			if got.String() != tc.want {
				t.Fatalf("got %q want %q", got.String(), tc.want)
			}
			if tc.closes && !r.closed() {
				t.Fatal("connection left open")
			}
			if !tc.closes {
				if g := r.do("PING"); g != "+PONG\r\n" {
					t.Fatalf("PING after: %q", g)
				}
			}
			if g := bystander.do("GET", "safe"); g != "$1\r\n1\r\n" {
				t.Fatalf("bystander: %q", g)
			}
		})
	}
	if p := ts.s.panics.Load(); p != 0 {
		t.Fatalf("%d panics", p)
	}
}

// TestAuth covers requirepass: NOAUTH until AUTH or HELLO AUTH, WRONGPASS,
// RESET, and Redis's tighter framing limits before authentication.
func TestAuth(t *testing.T) {
	ts := startServer(t, node.Config{RequirePass: "sekret"})
	r := dialRaw(t, ts.addr)
	for _, s := range []struct{ args, want string }{
		{"PING", "-NOAUTH Authentication required.\r\n"},
		{"GET k", "-NOAUTH Authentication required.\r\n"},
		{"GET", "-ERR wrong number of arguments for 'get' command\r\n"},
		{"NOPE", "-ERR unknown command 'NOPE', with args beginning with: \r\n"},
		{"HELLO 3", "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"},
		{"AUTH wrong", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{"AUTH other sekret", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{"PING", "-NOAUTH Authentication required.\r\n"},
		{"AUTH sekret", "+OK\r\n"},
		{"PING", "+PONG\r\n"},
		{"RESET", "+RESET\r\n"},
		{"PING", "-NOAUTH Authentication required.\r\n"},
		{"AUTH default sekret", "+OK\r\n"},
		{"SET k v", "+OK\r\n"},
		{"RESET", "+RESET\r\n"},
		{"HELLO 2 AUTH default wrong", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
	} {
		if got := r.do(strings.Fields(s.args)...); got != s.want {
			t.Errorf("%s: got %q want %q", s.args, got, s.want)
		}
	}
	if got := r.do("HELLO", "2", "AUTH", "default", "sekret"); !strings.HasPrefix(got, "*14\r\n$6\r\nserver\r\n") {
		t.Fatalf("HELLO AUTH: %q", got)
	}
	if got := r.do("GET", "k"); got != "$1\r\nv\r\n" {
		t.Fatalf("GET after HELLO AUTH: %q", got)
	}

	// Pipelined AUTH followed by a large command: the guard applies the
	// unauthenticated limits only to commands parsed before AUTH ran.
	p := dialRaw(t, ts.addr)
	big := strings.Repeat("x", 100<<10)
	p.send(append(encode("AUTH", "sekret"), encode("SET", "big", big)...))
	if a, b := mustRead(t, p), mustRead(t, p); a != "+OK\r\n" || b != "+OK\r\n" {
		t.Fatalf("pipelined AUTH: %q %q", a, b)
	}
	// Before AUTH: more than 10 arguments, or a bulk above 16 KiB, closes.
	for in, want := range map[string]string{
		"*11\r\n":                       "-ERR Protocol error: unauthenticated multibulk length\r\n",
		"*2\r\n$3\r\nGET\r\n$20000\r\n": "-ERR Protocol error: unauthenticated bulk length\r\n",
	} {
		u := dialRaw(t, ts.addr)
		u.send([]byte(in))
		if got := mustRead(t, u); got != want || !u.closed() {
			t.Fatalf("%q: %q", in, got)
		}
	}

	// go-redis authenticates through HELLO AUTH.
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		good := ts.client(t, proto, func(o *redis.Options) { o.Password = "sekret" })
		if v, err := good.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Fatalf("resp%d with password: %q %v", proto, v, err)
		}
		bad := ts.client(t, proto, func(o *redis.Options) { o.Password = "nope" })
		if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("resp%d wrong password: %v", proto, err)
		}
		none := ts.client(t, proto)
		if err := none.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Fatalf("resp%d no password: %v", proto, err)
		}
	}
}

func mustRead(t testing.TB, r *rawConn) string {
	t.Helper()
	s, err := r.readRaw()
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, s)
	}
	return s
}

// fakeBackend wraps a real node and overrides what a test needs.
type fakeBackend struct {
	*node.Node
	writeErr error
	readErr  error
	status   *engine.Status
}

// ReadNow: the fake's reads go through its Read.
func (f *fakeBackend) ReadNow(c engine.Consistency, floor engine.Token) (engine.Reader, error, bool) {
	if f.readErr != nil {
		return nil, nil, false
	}
	return f.Node.ReadNow(c, floor)
}

func (f *fakeBackend) Write(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	if f.writeErr != nil {
		return engine.Token{}, f.writeErr
	}
	return f.Node.Write(ctx, fn)
}

func (f *fakeBackend) WriteAsync(ctx context.Context, fn func(engine.Txn) error) func() (engine.Token, error) {
	if err := f.writeErr; err != nil {
		return func() (engine.Token, error) { return engine.Token{}, err }
	}
	return f.Node.WriteAsync(ctx, fn)
}

// WriteNotify fails as WriteAsync does, answered at once (the event
// loop's path for a write whose outcome is known before it is queued).
func (f *fakeBackend) WriteNotify(ctx context.Context, fn func(engine.Txn) error, notify func()) func() (engine.Token, error) {
	if err := f.writeErr; err != nil {
		notify()
		return func() (engine.Token, error) { return engine.Token{}, err }
	}
	return f.Node.WriteNotify(ctx, fn, notify)
}

// IsLeader and WaitReplicas answer from the faked status, when there is one:
// its members' match LSNs stand for the followers' acknowledgements.
func (f *fakeBackend) IsLeader() bool {
	if f.status == nil {
		return f.Node.IsLeader()
	}
	return f.status.Role == "leader"
}

func (f *fakeBackend) WaitReplicas(ctx context.Context, lsn uint64, want int) (int, error) {
	if f.status == nil {
		return f.Node.WaitReplicas(ctx, lsn, want)
	}
	n := 0
	for _, m := range f.status.Members {
		if m.MatchLSN >= lsn {
			n++
		}
	}
	if n < want {
		<-ctx.Done() // the faked acknowledgements never change
	}
	return n, nil
}

func (f *fakeBackend) Read(ctx context.Context, c engine.Consistency, floor engine.Token) (engine.Reader, error) {
	if f.readErr != nil && c.Level == engine.LevelLinearizable {
		return nil, f.readErr
	}
	return f.Node.Read(ctx, c, floor)
}

func (f *fakeBackend) Status() engine.Status {
	if f.status != nil {
		return *f.status
	}
	return f.Node.Status()
}

func startFake(t *testing.T, f func(n *node.Node) *fakeBackend) string {
	t.Helper()
	ts := startServer(t, node.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startBackend(t, f(ts.n), ln)
	return ln.Addr().String()
}

// TestReadOnly: a follower's NotLeaderError becomes Redis's READONLY reply
// naming the leader.
func TestReadOnly(t *testing.T) {
	nl := &engine.NotLeaderError{LeaderID: "n1", LeaderRESP: "127.0.0.1:6381"}
	addr := startFake(t, func(n *node.Node) *fakeBackend {
		return &fakeBackend{Node: n, writeErr: nl, readErr: nl}
	})
	r := dialRaw(t, addr)
	want := "-READONLY You can't write against a read only replica. leader=n1 resp=127.0.0.1:6381\r\n"
	for _, args := range [][]string{{"SET", "k", "v"}, {"SETNX", "k", "v"}, {"DEL", "k"}, {"INCR", "n"}, {"FLUSHALL"}, {"EXPIRE", "k", "1"}} {
		if got := r.do(args...); got != want {
			t.Errorf("%v: %q", args, got)
		}
	}
	r.do("REPLICANT.CONSISTENCY", "linearizable")
	if got := r.do("GET", "k"); !strings.HasPrefix(got, "-ERR linearizable reads are served by the leader (leader=n1 resp=127.0.0.1:6381)") {
		t.Errorf("linearizable GET: %q", got)
	}
	r.do("REPLICANT.CONSISTENCY", "eventual")
	if got := r.do("GET", "k"); got != "$-1\r\n" {
		t.Errorf("eventual GET: %q", got)
	}
	unknown := startFake(t, func(n *node.Node) *fakeBackend {
		return &fakeBackend{Node: n, writeErr: &engine.NotLeaderError{}}
	})
	if got := dialRaw(t, unknown).do("SET", "k", "v"); got != "-READONLY You can't write against a read only replica. leader unknown\r\n" {
		t.Errorf("leader unknown: %q", got)
	}
}

// TestReplicationInfo: INFO, ROLE and WAIT on a leader with followers and
// on a follower, from a faked status.
func TestReplicationInfo(t *testing.T) {
	leader := &engine.Status{ID: "n1", Role: "leader", Leader: "n1", Epoch: 3, CommitLSN: 42, LastLSN: 42, FirstLSN: 1,
		RESP: "127.0.0.1:6381",
		Members: []engine.MemberStatus{
			{ID: "n2", Role: "follower", Healthy: true, MatchLSN: 42, AppliedLSN: 41, LagSeconds: 0.2, RESP: "127.0.0.1:6382"},
			{ID: "n3", Role: "follower", Healthy: false, MatchLSN: 10, AppliedLSN: 9, LagSeconds: 7.9, RESP: "127.0.0.1:6383"},
		}}
	addr := startFake(t, func(n *node.Node) *fakeBackend { return &fakeBackend{Node: n, status: leader} })
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Replication\r\n", "role:master\r\n", "connected_slaves:2\r\n",
		"slave0:ip=127.0.0.1,port=6382,state=online,offset=41,lag=0\r\n",
		"slave1:ip=127.0.0.1,port=6383,state=offline,offset=9,lag=7\r\n",
		"master_repl_offset:42\r\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO replication lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(info, "# Server") {
		t.Errorf("INFO replication has other sections:\n%s", info)
	}
	mustDo(t, c, "[master :42 [[127.0.0.1 6382 41] [127.0.0.1 6383 9]]]", "role")
	// No write yet on this connection: both members hold LSN 0.
	mustDo(t, c, ":2", "wait", "2", "0")
	mustDo(t, c, "OK", "set", "k", "v") // the real node's LSN is small: both still count
	mustDo(t, c, ":2", "wait", "1", "0")
	c.Do(ctx, "replicant.session", "1:20")
	start := time.Now()
	mustDo(t, c, ":2", "wait", "3", "150")
	if el := time.Since(start); el < 140*time.Millisecond {
		t.Errorf("WAIT returned before its timeout: %v", el)
	}

	follower := &engine.Status{ID: "n2", Role: "follower", Leader: "n1", Epoch: 3, CommitLSN: 40, AppliedLSN: 40, LastLSN: 41,
		Members: []engine.MemberStatus{{ID: "n1", Role: "leader", RESP: "127.0.0.1:6381"}}}
	faddr := startFake(t, func(n *node.Node) *fakeBackend { return &fakeBackend{Node: n, status: follower} })
	fc := redis.NewClient(&redis.Options{Addr: faddr, Protocol: 3})
	t.Cleanup(func() { fc.Close() })
	info, err = fc.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"role:slave\r\n", "master_host:127.0.0.1\r\n", "master_port:6381\r\n", "master_link_status:up\r\n", "slave_repl_offset:40\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("follower INFO lacks %q:\n%s", want, info)
		}
	}
	mustDo(t, fc, "[slave 127.0.0.1 :6381 connected :40]", "role")
	if got := do(ctx, fc, "wait", "1", "0"); !strings.HasPrefix(got, "(error) ERR WAIT cannot be used with replica instances.") {
		t.Errorf("WAIT on a follower: %q", got)
	}
	if got := do(ctx, fc, "hello", "3"); !strings.Contains(got, "role=replica") {
		t.Errorf("HELLO on a follower: %q", got)
	}
}

func TestServerCommands(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	c := ts.client(t, 3)
	mustDo(t, c, "OK", "set", "a", "1")
	mustDo(t, c, "OK", "set", "b", "2", "ex", "100")
	info, err := c.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	st := ts.n.Status()
	for _, want := range []string{
		"# Server\r\n", "redis_version:7.2.0\r\n", "redis_mode:standalone\r\n", "# Clients\r\n", "connected_clients:",
		"# Replication\r\n", "role:master\r\n", "connected_slaves:0\r\n",
		fmt.Sprintf("master_repl_offset:%d\r\n", st.CommitLSN),
		"# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	if ks, _ := c.Info(ctx, "keyspace").Result(); ks != "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n" {
		t.Errorf("INFO keyspace: %q", ks)
	}
	if s, _ := c.Info(ctx, "nosuchsection").Result(); s != "" {
		t.Errorf("INFO of an unknown section: %q", s)
	}
	mustDo(t, c, fmt.Sprintf("[master :%d []]", st.CommitLSN), "role")
	tm, err := c.Time(ctx).Result()
	if err != nil || time.Since(tm).Abs() > 5*time.Second {
		t.Errorf("TIME: %v %v", tm, err)
	}
	mustDo(t, c, ":0", "wait", "0", "0")
	start := time.Now()
	mustDo(t, c, ":0", "wait", "1", "100")
	if time.Since(start) < 90*time.Millisecond {
		t.Error("WAIT 1 100 returned early")
	}

	cmds, err := c.Command(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if g := cmds["get"]; g == nil || g.Arity != 2 || g.FirstKeyPos != 1 || !g.ReadOnly {
		t.Errorf("COMMAND get: %+v", g)
	}
	if m := cmds["mset"]; m == nil || m.Arity != -3 || m.LastKeyPos != -1 || m.StepCount != 2 {
		t.Errorf("COMMAND mset: %+v", m)
	}
	mustDo(t, c, ":"+strconv.Itoa(len(cmds)), "command", "count")
	mustDo(t, c, "[[set :-3 [write denyoom] :1 :1 :1 [@write @string @slow] [] [] []] (nil)]", "command", "info", "set", "nosuch")
	mustDo(t, c, "{get={group=string since=1.0.0 summary=Returns the string value of a key.}}", "command", "docs", "get")
	mustDo(t, c, "{databases=1}", "config", "get", "databases")

	r := dialRaw(t, ts.addr)
	if got := r.do("COMMAND", "DOCS", "get"); got != "*2\r\n$3\r\nget\r\n*6\r\n$7\r\nsummary\r\n$34\r\nReturns the string value of a key.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n" {
		t.Errorf("COMMAND DOCS (RESP2): %q", got)
	}
}

// TestRESP3 checks the wire types of both protocols byte for byte.
func TestRESP3(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	if got := r.do("GET", "missing"); got != "$-1\r\n" {
		t.Errorf("RESP2 null: %q", got)
	}
	hello := r.do("HELLO", "3")
	if !strings.HasPrefix(hello, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:") ||
		!strings.HasSuffix(hello, "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n") {
		t.Errorf("HELLO 3: %q", hello)
	}
	for _, s := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "missing"}, "_\r\n"},
		{[]string{"MGET", "missing", "x"}, "*2\r\n_\r\n_\r\n"},
		{[]string{"SET", "f", "1.5"}, "+OK\r\n"},
		{[]string{"INCRBYFLOAT", "f", "1"}, "$3\r\n2.5\r\n"},
		{[]string{"CLIENT", "GETNAME"}, "_\r\n"},
		{[]string{"CONFIG", "GET", "databases"}, "%1\r\n$9\r\ndatabases\r\n$1\r\n1\r\n"},
		{[]string{"SET", "k", "v", "NX", "GET"}, "_\r\n"},
	} {
		if got := r.do(s.args...); got != s.want {
			t.Errorf("%v: %q want %q", s.args, got, s.want)
		}
	}
	if got := r.do("CLIENT", "INFO"); !strings.HasPrefix(got, "=") || !strings.Contains(got, "\r\ntxt:id=") || !strings.Contains(got, " resp=3 ") {
		t.Errorf("CLIENT INFO (RESP3): %q", got)
	}
	if got := r.do("INFO", "clients"); !strings.HasPrefix(got, "=") || !strings.Contains(got, "txt:# Clients\r\n") {
		t.Errorf("INFO (RESP3): %q", got)
	}
	if got := r.do("COMMAND", "INFO", "get"); !strings.HasPrefix(got, "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~") {
		t.Errorf("COMMAND INFO (RESP3): %q", got)
	}
	if got := r.do("HELLO", "2"); !strings.HasPrefix(got, "*14\r\n") {
		t.Errorf("HELLO 2: %q", got)
	}
	if got := r.do("GET", "missing"); got != "$-1\r\n" {
		t.Errorf("back to RESP2: %q", got)
	}
	if got := r.do("HELLO", "3"); !strings.HasPrefix(got, "%7\r\n") {
		t.Fatal(got)
	}
	if got := r.do("RESET"); got != "+RESET\r\n" {
		t.Fatal(got)
	}
	if got := r.do("GET", "missing"); got != "$-1\r\n" {
		t.Errorf("RESET keeps RESP3: %q", got)
	}
}

func TestConnectionCommands(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	c := ts.client(t, 3, func(o *redis.Options) { o.ClientName = "app1"; o.PoolSize = 1 })
	if name, err := c.ClientGetName(ctx).Result(); err != nil || name != "app1" {
		t.Fatalf("HELLO SETNAME: %q %v", name, err)
	}
	ci, err := c.ClientInfo(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.ClientID(ctx).Result()
	if err != nil || ci.ID != id || ci.Name != "app1" || ci.Resp != 3 || ci.LibName == "" || ci.LastCmd != "client|info" {
		t.Fatalf("CLIENT INFO: %+v (id %d, %v)", ci, id, err)
	}
	r := dialRaw(t, ts.addr)
	r.send([]byte("PING\r\nQUIT\r\nSET afterquit 1\r\n"))
	if a, b := mustRead(t, r), mustRead(t, r); a != "+PONG\r\n" || b != "+OK\r\n" {
		t.Fatalf("QUIT: %q %q", a, b)
	}
	if !r.closed() {
		t.Fatal("QUIT left the connection open")
	}
	mustDo(t, c, ":0", "exists", "afterquit")
}

// TestPipelineOrder: replies come back in request order, writes included.
func TestPipelineOrder(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	c := ts.client(t, 2)
	pipe := c.Pipeline()
	var cmds []*redis.Cmd
	for i := 0; i < 300; i++ {
		switch i % 3 {
		case 0:
			cmds = append(cmds, pipe.Do(ctx, "incr", "ctr"))
		case 1:
			cmds = append(cmds, pipe.Do(ctx, "echo", strconv.Itoa(i)))
		default:
			cmds = append(cmds, pipe.Do(ctx, "get", "ctr"))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		var want string
		switch i % 3 {
		case 0:
			want = ":" + strconv.Itoa(i/3+1)
		case 1:
			want = strconv.Itoa(i)
		default:
			want = strconv.Itoa(i/3 + 1)
		}
		if got := fmtReply(cmd.Result()); got != want {
			t.Fatalf("reply %d: %q want %q", i, got, want)
		}
	}
	// Many connections at once.
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := c.Incr(ctx, "shared").Err(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mustDo(t, c, "160", "get", "shared")
}

// TestTokens: the connection token follows reads and writes; a session
// floor ahead of the node fails with TRYAGAIN, one from another history
// with a lost-write error.
func TestTokens(t *testing.T) {
	ts := startServer(t, node.Config{ReadTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	c := ts.client(t, 2, func(o *redis.Options) { o.PoolSize = 1 })
	mustDo(t, c, "0:0", "replicant.token")
	mustDo(t, c, "OK", "set", "k", "v")
	tok, err := c.Do(ctx, "replicant.token").Text()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := engine.ParseToken(tok)
	if err != nil || parsed.LSN == 0 || parsed != ts.n.Token() {
		t.Fatalf("token after SET: %q (node %s) %v", tok, ts.n.Token(), err)
	}
	other := ts.client(t, 2, func(o *redis.Options) { o.PoolSize = 1 })
	mustDo(t, other, "OK", "set", "k2", "v")
	mustDo(t, c, "v", "get", "k2")
	if tok2, _ := c.Do(ctx, "replicant.token").Text(); tok2 != ts.n.Token().String() {
		t.Fatalf("token after a read: %q, node %s", tok2, ts.n.Token())
	}
	status, err := c.Do(ctx, "replicant.status").Text()
	if err != nil || !strings.Contains(status, `"id":"n1"`) || !strings.Contains(status, `"role":"leader"`) {
		t.Fatalf("REPLICANT.STATUS: %s %v", status, err)
	}

	s := ts.client(t, 2, func(o *redis.Options) { o.PoolSize = 1 })
	mustDo(t, s, "OK", "replicant.consistency", "session")
	mustDo(t, s, "OK", "replicant.session", fmt.Sprintf("%d:%d", parsed.Epoch, parsed.LSN+1000))
	if got := do(ctx, s, "get", "k"); !strings.HasPrefix(got, "(error) TRYAGAIN replica too stale") {
		t.Fatalf("stale session read: %q", got)
	}
	mustDo(t, s, "OK", "replicant.consistency", "linearizable")
	// REPLICANT.SESSION's floor binds every read on the connection, not
	// only session reads.
	if got := do(ctx, s, "get", "k"); !strings.HasPrefix(got, "(error) TRYAGAIN replica too stale") {
		t.Fatalf("linearizable read under an unreached session floor: %q", got)
	}
	// A floor whose LSN this node holds under a later epoch names a write
	// that epoch replaced: it fails as lost, at once.
	lost := ts.client(t, 2, func(o *redis.Options) { o.PoolSize = 1 })
	mustDo(t, lost, "OK", "replicant.consistency", "session")
	mustDo(t, lost, "OK", "replicant.session", fmt.Sprintf("%d:%d", parsed.Epoch-1, parsed.LSN))
	if got := do(ctx, lost, "get", "k"); !strings.HasPrefix(got, "(error) ERR token names a write lost in a failover") {
		t.Fatalf("lost-write session read: %q", got)
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	mustDo(t, c, "OK", "set", "k", "v")
	mustDo(t, c, "v", "get", "k")
	do(context.Background(), c, "get")
	do(context.Background(), c, "nosuchcmd")
	m := ts.n.Metrics()
	for _, x := range []struct {
		cmd, result string
		min         float64
	}{{"set", "ok", 1}, {"get", "ok", 1}, {"get", "error", 1}, {"unknown", "error", 1}} {
		var d dto.Metric
		if err := m.Ops.WithLabelValues("resp", x.cmd, x.result).Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetCounter().GetValue(); got < x.min {
			t.Errorf("ops{cmd=%s,result=%s} = %v", x.cmd, x.result, got)
		}
	}
}

// TestServeShutdown: cancelling Serve's context (or Close) returns Serve,
// closes connections, and aborts blocked commands.
func TestServeShutdown(t *testing.T) {
	ts := startServer(t, node.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ts.n, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	r := dialRaw(t, ln.Addr().String())
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Fatal(got)
	}
	r.send(encode("WAIT", "5", "0")) // blocks until shutdown
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if !r.closed() {
		t.Fatal("connection survived shutdown")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still accepting")
	}
	// A closed server does not serve again.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background(), ln2); err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	// A failing listener ends Serve with its error.
	fl := &failingListener{Listener: ts.mustListen(t)}
	if err := New(ts.n, nil).Serve(context.Background(), fl); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Serve with a failing listener: %v", err)
	}
}

func (ts *testServer) mustListen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

type failingListener struct{ net.Listener }

func (f *failingListener) Accept() (net.Conn, error) { return nil, errors.New("boom") }

// TestWaitClientGone: a WAIT that can never be satisfied ends when its
// client disconnects, freeing the connection's goroutine.
func TestWaitClientGone(t *testing.T) {
	ts := startServer(t, node.Config{})
	base := ts.s.clients.Load()
	r := dialRaw(t, ts.addr)
	r.send(encode("WAIT", "3", "0"))
	waitFor(t, 5*time.Second, "the client to connect", func() bool { return ts.s.clients.Load() == base+1 })
	time.Sleep(50 * time.Millisecond)
	r.c.Close()
	waitFor(t, 10*time.Second, "the blocked WAIT to notice the disconnect", func() bool { return ts.s.clients.Load() == base })
}

// TestConcurrentConditionalWrites: racing SETNX calls see one winner, and
// the losers (whose outcome only the newest, uncommitted state decided)
// write nothing to the log.
func TestConcurrentConditionalWrites(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		key := fmt.Sprint("lock", round)
		before := ts.n.Store().State().LastLSN
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 12; i++ {
			c := ts.client(t, 2)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := c.SetNX(ctx, key, i, 0).Result()
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
				if n, err := c.Del(ctx, "never-there").Result(); err != nil || n != 0 {
					t.Errorf("DEL of a missing key: %d %v", n, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d SETNX winners", round, wins)
		}
		if after := ts.n.Store().State().LastLSN; after != before+1 {
			t.Fatalf("round %d: %d log entries for one effective write", round, after-before)
		}
	}
}

// TestNoOpWritesWriteNothing: write commands whose outcome changes nothing
// answer without adding a log entry.
func TestNoOpWritesWriteNothing(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	mustDo(t, c, "OK", "flushall")
	before := ts.n.Store().State().LastLSN
	mustDo(t, c, "OK", "flushall") // already empty
	mustDo(t, c, ":0", "del", "missing")
	if after := ts.n.Store().State().LastLSN; after != before {
		t.Fatalf("no-op writes on an empty database wrote %d entries", after-before)
	}
	mustDo(t, c, "OK", "mset", "a", "1", "b", "2")
	before = ts.n.Store().State().LastLSN
	for _, s := range []step{
		st("set a x nx", "(nil)"), st("set missing x xx", "(nil)"), st("setnx a x", ":0"),
		st("del missing other", ":0"), st("unlink missing", ":0"), st("getdel missing", "(nil)"),
		st("expire missing 10", ":0"), st("expire a 10 xx", ":0"), st("persist a", ":0"),
		st("getex missing ex 10", "(nil)"), st("getex a persist", "1"),
		st("renamenx a b", ":0"), st("msetnx c 3 a 1", ":0"), st("copy a b", ":0"), st("copy missing c", ":0"),
		sa(":1", "setrange", "a", "0", ""), sa(":1", "append", "a", ""), sa(":0", "setrange", "missing", "5", ""),
		st("rename missing x", "(error) ERR no such key"), st("incr nonint", ":1"),
	} {
		args := make([]any, len(s.args))
		for i, a := range s.args {
			args[i] = a
		}
		if s.args[0] == "incr" {
			before++ // the one real write in the list
		}
		mustDo(t, c, s.want, args...)
	}
	if after := ts.n.Store().State().LastLSN; after != before {
		t.Fatalf("no-op writes added %d log entries", after-before)
	}
}
