package resp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// TestTxTranscripts: MULTI/EXEC/DISCARD/WATCH/UNWATCH byte for byte, in
// RESP2 and RESP3, as Redis 7.2 answers them. Each case runs on a fresh
// connection; keys are per case.
func TestTxTranscripts(t *testing.T) {
	ts := startServer(t, node.Config{})
	type step struct{ cmd, want string }
	cases := []struct {
		name  string
		proto int
		steps []step
	}{
		{"exec without multi", 2, []step{
			{"EXEC", "-ERR EXEC without MULTI\r\n"},
			{"DISCARD", "-ERR DISCARD without MULTI\r\n"},
		}},
		{"empty transaction", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"EXEC", "*0\r\n"},
		}},
		{"queued writes and reads see each other", 2, []step{
			{"SET a1 x", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"GET a1", "+QUEUED\r\n"},
			{"SET a1 y", "+QUEUED\r\n"},
			{"APPEND a1 z", "+QUEUED\r\n"},
			{"GET a1", "+QUEUED\r\n"},
			{"INCR a2", "+QUEUED\r\n"},
			{"INCRBY a2 5", "+QUEUED\r\n"},
			{"MGET a1 a2 a3", "+QUEUED\r\n"},
			{"PING", "+QUEUED\r\n"},
			{"DEL a1", "+QUEUED\r\n"},
			{"EXISTS a1", "+QUEUED\r\n"},
			{"EXEC", "*10\r\n$1\r\nx\r\n+OK\r\n:2\r\n$2\r\nyz\r\n:1\r\n:6\r\n*3\r\n$2\r\nyz\r\n$1\r\n6\r\n$-1\r\n+PONG\r\n:1\r\n:0\r\n"},
			{"GET a1", "$-1\r\n"},
			{"GET a2", "$1\r\n6\r\n"},
		}},
		{"nested multi is an error that does not abort", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"SET b1 v", "+QUEUED\r\n"},
			{"MULTI", "-ERR MULTI calls can not be nested\r\n"},
			{"EXEC", "*1\r\n+OK\r\n"},
			{"GET b1", "$1\r\nv\r\n"},
		}},
		{"watch inside multi is an error that does not abort", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"WATCH c1", "-ERR WATCH inside MULTI is not allowed\r\n"},
			{"SET c1 v", "+QUEUED\r\n"},
			{"EXEC", "*1\r\n+OK\r\n"},
		}},
		{"wrong arity aborts the transaction", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"SET d1 v", "+QUEUED\r\n"},
			{"GET", "-ERR wrong number of arguments for 'get' command\r\n"},
			{"SET d2 v", "+QUEUED\r\n"},
			{"EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"},
			{"EXISTS d1 d2", ":0\r\n"},
			{"EXEC", "-ERR EXEC without MULTI\r\n"},
		}},
		{"unknown command aborts the transaction", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"SET e1 v", "+QUEUED\r\n"},
			{"NOSUCHCMD x", "-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \r\n"},
			{"EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"},
			{"EXISTS e1", ":0\r\n"},
		}},
		{"runtime errors are per command", 2, []step{
			{"SET f1 notanumber", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"SET f2 a", "+QUEUED\r\n"},
			{"INCR f1", "+QUEUED\r\n"},
			{"SET f3 b", "+QUEUED\r\n"},
			{"RENAME nosuch f4", "+QUEUED\r\n"},
			{"INCRBY f5 3", "+QUEUED\r\n"},
			{"EXEC", "*5\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n-ERR no such key\r\n:3\r\n"},
			{"MGET f1 f2 f3 f5", "*4\r\n$10\r\nnotanumber\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\n3\r\n"},
		}},
		{"discard drops the queue", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"SET g1 v", "+QUEUED\r\n"},
			{"DISCARD", "+OK\r\n"},
			{"EXISTS g1", ":0\r\n"},
			{"EXEC", "-ERR EXEC without MULTI\r\n"},
		}},
		{"watched key unchanged", 2, []step{
			{"SET h1 1", "+OK\r\n"},
			{"WATCH h1 h2", "+OK\r\n"},
			{"GET h1", "$1\r\n1\r\n"},
			{"MULTI", "+OK\r\n"},
			{"SET h1 2", "+QUEUED\r\n"},
			{"EXEC", "*1\r\n+OK\r\n"},
		}},
		{"watched key written by this connection aborts", 2, []step{
			{"WATCH i1", "+OK\r\n"},
			{"SET i1 x", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"SET i2 y", "+QUEUED\r\n"},
			{"EXEC", "*-1\r\n"},
			{"EXISTS i2", ":0\r\n"},
			// EXEC unwatched: the next transaction runs.
			{"MULTI", "+OK\r\n"},
			{"SET i2 y", "+QUEUED\r\n"},
			{"EXEC", "*1\r\n+OK\r\n"},
		}},
		{"watch abort in RESP3 is a null", 3, []step{
			{"WATCH j1", "+OK\r\n"},
			{"SET j1 x", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"GET j1", "+QUEUED\r\n"},
			{"EXEC", "_\r\n"},
		}},
		{"unwatch and discard forget watched keys", 2, []step{
			{"WATCH k1", "+OK\r\n"},
			{"UNWATCH", "+OK\r\n"},
			{"SET k1 x", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"GET k1", "+QUEUED\r\n"},
			{"EXEC", "*1\r\n$1\r\nx\r\n"},
			{"WATCH k1", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"DISCARD", "+OK\r\n"},
			{"SET k1 y", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"GET k1", "+QUEUED\r\n"},
			{"EXEC", "*1\r\n$1\r\ny\r\n"},
		}},
		{"watched missing key set then deleted aborts", 2, []step{
			{"WATCH l1", "+OK\r\n"},
			{"SET l1 x", "+OK\r\n"},
			{"DEL l1", ":1\r\n"},
			{"MULTI", "+OK\r\n"},
			{"SET l2 y", "+QUEUED\r\n"},
			{"EXEC", "*-1\r\n"},
		}},
		{"a read-only transaction", 3, []step{
			{"SET m1 v", "+OK\r\n"},
			{"WATCH m1", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"GET m1", "+QUEUED\r\n"},
			{"GET m2", "+QUEUED\r\n"},
			{"KEYS m*", "+QUEUED\r\n"},
			{"TTL m1", "+QUEUED\r\n"},
			{"EXEC", "*4\r\n$1\r\nv\r\n_\r\n*1\r\n$2\r\nm1\r\n:-1\r\n"},
		}},
		{"key scans in a writing transaction see its writes", 2, []step{
			{"SET n0 v", "+OK\r\n"},
			{"SET n9 v", "+OK\r\n"},
			{"MULTI", "+OK\r\n"},
			{"SET n1 v", "+QUEUED\r\n"},
			{"DEL n9", "+QUEUED\r\n"},
			{"SET n2 v PX 1", "+QUEUED\r\n"},
			{"KEYS n*", "+QUEUED\r\n"},
			{"SCAN 0 MATCH n* COUNT 1000", "+QUEUED\r\n"},
			// n2 expires 1 ms after the transaction's clock, which stands
			// still while it runs (as Redis 7 freezes time in EXEC).
			{"EXEC", "*5\r\n+OK\r\n:1\r\n+OK\r\n*3\r\n$2\r\nn0\r\n$2\r\nn1\r\n$2\r\nn2\r\n*2\r\n$1\r\n0\r\n*3\r\n$2\r\nn0\r\n$2\r\nn1\r\n$2\r\nn2\r\n"},
		}},
		{"set options and expiry inside", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"SET o1 v NX", "+QUEUED\r\n"},
			{"SET o1 w NX", "+QUEUED\r\n"},
			{"SET o1 w XX GET", "+QUEUED\r\n"},
			{"EXPIRE o1 100", "+QUEUED\r\n"},
			{"TTL o1", "+QUEUED\r\n"},
			{"SET o1 x EX 0", "+QUEUED\r\n"},
			{"GET o1", "+QUEUED\r\n"},
			{"EXEC", "*7\r\n+OK\r\n$-1\r\n$1\r\nv\r\n:1\r\n:100\r\n-ERR invalid expire time in 'set' command\r\n$1\r\nw\r\n"},
		}},
		{"reset ends the transaction", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"SET p1 v", "+QUEUED\r\n"},
			{"RESET", "+RESET\r\n"},
			{"EXEC", "-ERR EXEC without MULTI\r\n"},
			{"EXISTS p1", ":0\r\n"},
		}},
		{"connection commands inside run in place", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"CLIENT SETNAME tx", "+QUEUED\r\n"},
			{"SET q1 v", "+QUEUED\r\n"},
			{"CLIENT GETNAME", "+QUEUED\r\n"},
			{"ECHO hi", "+QUEUED\r\n"},
			{"EXEC", "*4\r\n+OK\r\n+OK\r\n$2\r\ntx\r\n$2\r\nhi\r\n"},
		}},
		{"wait inside does not block", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"SET s1 v", "+QUEUED\r\n"},
			{"WAIT 1 0", "+QUEUED\r\n"},
			{"EXEC", "*2\r\n+OK\r\n:0\r\n"},
		}},
		{"flushall inside sees the transaction's writes", 2, []step{
			{"MULTI", "+OK\r\n"},
			{"SET r1 v", "+QUEUED\r\n"},
			{"FLUSHALL", "+QUEUED\r\n"},
			{"GET r1", "+QUEUED\r\n"},
			{"SET r2 v", "+QUEUED\r\n"},
			{"EXEC", "*4\r\n+OK\r\n+OK\r\n$-1\r\n+OK\r\n"},
			{"DBSIZE", ":1\r\n"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := ts.addr
			if a := os.Getenv("REPLICANT_TX_REDIS"); a != "" {
				// The same transcripts against a real redis-server (an
				// empty one), to check them: see docs/design/transactions.md.
				addr = a
			}
			r := dialRaw(t, addr)
			if tc.proto == 3 {
				if got := r.do("HELLO", "3"); !strings.HasPrefix(got, "%") {
					t.Fatalf("HELLO 3: %q", got)
				}
			}
			for _, s := range tc.steps {
				if got := r.do(strings.Fields(s.cmd)...); got != s.want {
					t.Errorf("%s: got %q want %q", s.cmd, got, s.want)
				}
			}
		})
	}
}

// TestTxOneEntry: EXEC of several writes appends exactly one log entry,
// holding all of them; a transaction of no-op writes appends none.
func TestTxOneEntry(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 2)
	ctx := context.Background()
	mustDo(t, c, "OK", "set", "base", "1")
	before := ts.n.Store().State().LastLSN
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "x", "1", 0)
		p.Incr(ctx, "y")
		p.Del(ctx, "base")
		p.MSet(ctx, "z1", "a", "z2", "b")
		return nil
	})
	if err != nil {
		t.Fatalf("TxPipelined: %v (%v)", err, cmds)
	}
	if got := ts.n.Store().State().LastLSN - before; got != 1 {
		t.Fatalf("a transaction of 4 writes appended %d entries, want 1", got)
	}
	before = ts.n.Store().State().LastLSN
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, "x", "2", 0)
		p.Del(ctx, "nosuch")
		p.Get(ctx, "x")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := ts.n.Store().State().LastLSN - before; got != 0 {
		t.Fatalf("a transaction of no-op writes appended %d entries, want 0", got)
	}
}

// TestTxWatchRetries: go-redis's optimistic-locking loop (WATCH, GET,
// MULTI, SET, EXEC, retry on TxFailedErr) from many clients loses no
// increment: EXEC aborts exactly when another client's write got in.
func TestTxWatchRetries(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	const workers, each = 6, 25
	var aborts sync.Map
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		c := ts.client(t, 2+w%2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				for attempt := 0; ; attempt++ {
					err := c.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, "counter").Int()
						if err != nil && !errors.Is(err, redis.Nil) {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, "counter", strconv.Itoa(n+1), 0)
							return nil
						})
						return err
					}, "counter")
					if errors.Is(err, redis.TxFailedErr) {
						aborts.Store(w, attempt+1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c := ts.client(t, 2)
	mustDo(t, c, strconv.Itoa(workers*each), "get", "counter")
	n := 0
	aborts.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Fatal("no EXEC was ever aborted by WATCH: the test did not exercise contention")
	}
}

// TestTxWatchOtherConnection: a write from another connection between
// WATCH and EXEC aborts; writes before WATCH do not.
func TestTxWatchOtherConnection(t *testing.T) {
	ts := startServer(t, node.Config{})
	ctx := context.Background()
	a, b := ts.client(t, 2), ts.client(t, 3)
	mustDo(t, b, "OK", "set", "k", "0")
	err := a.Watch(ctx, func(tx *redis.Tx) error {
		mustDo(t, b, "OK", "set", "k", "1") // the other connection
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "from-a", 0)
			return nil
		})
		return err
	}, "k")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXEC after another connection wrote the watched key: %v, want TxFailedErr", err)
	}
	mustDo(t, b, "1", "get", "k")
	err = a.Watch(ctx, func(tx *redis.Tx) error {
		mustDo(t, b, "OK", "set", "other", "1") // not watched
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "from-a", 0)
			return nil
		})
		return err
	}, "k")
	if err != nil {
		t.Fatalf("EXEC after a write of another key: %v", err)
	}
	mustDo(t, b, "from-a", "get", "k")
}

// TestTxWatchExpiry: a watched key that expires before EXEC counts as
// changed (Redis 7).
func TestTxWatchExpiry(t *testing.T) {
	ts := startServer(t, node.Config{ExpiryInterval: time.Hour})
	r := dialRaw(t, ts.addr)
	ctx := context.Background()
	c := ts.client(t, 2)
	mustDo(t, c, "OK", "set", "e", "v", "px", "300")
	if got := r.do("WATCH", "e"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	waitFor(t, 5*time.Second, "e to expire", func() bool { return do(ctx, c, "exists", "e") == ":0" })
	r.do("MULTI")
	r.do("SET", "other", "v")
	if got := r.do("EXEC"); got != "*-1\r\n" {
		t.Fatalf("EXEC after a watched key expired: %q, want a null array", got)
	}
}

// TestTxModes: leaderless mode refuses MULTI and WATCH naming the mode; on
// a replica a queued write is refused (READONLY) and EXEC aborts, while a
// read-only transaction runs.
func TestTxModes(t *testing.T) {
	leaderless := startFake(t, func(n *node.Node) *fakeBackend {
		st := n.Status()
		st.Mode = engine.ModeLeaderless
		return &fakeBackend{Node: n, status: &st}
	})
	r := dialRaw(t, leaderless)
	if got := r.do("MULTI"); got != "-ERR MULTI is not supported in leaderless mode: there is no atomicity across keys\r\n" {
		t.Errorf("leaderless MULTI: %q", got)
	}
	if got := r.do("WATCH", "k"); got != "-ERR WATCH is not supported in leaderless mode: there is no atomicity across keys\r\n" {
		t.Errorf("leaderless WATCH: %q", got)
	}
	if got := r.do("EXEC"); got != "-ERR EXEC without MULTI\r\n" {
		t.Errorf("leaderless EXEC: %q", got)
	}

	nl := &engine.NotLeaderError{LeaderID: "n1", LeaderRESP: "127.0.0.1:6381"}
	follower := startFake(t, func(n *node.Node) *fakeBackend {
		st := n.Status()
		st.Role, st.Leader = "follower", "n1"
		st.Members = []engine.MemberStatus{{ID: "n1", Role: "leader", RESP: "127.0.0.1:6381"}}
		return &fakeBackend{Node: n, status: &st, writeErr: nl}
	})
	r = dialRaw(t, follower)
	for _, s := range []struct{ cmd, want string }{
		{"WATCH k", "+OK\r\n"},
		{"MULTI", "+OK\r\n"},
		{"GET k", "+QUEUED\r\n"},
		{"SET k v", "-READONLY You can't write against a read only replica. leader=n1 resp=127.0.0.1:6381\r\n"},
		{"EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{"WATCH k", "+OK\r\n"},
		{"MULTI", "+OK\r\n"},
		{"GET k", "+QUEUED\r\n"},
		{"EXISTS k", "+QUEUED\r\n"},
		{"EXEC", "*2\r\n$-1\r\n:0\r\n"},
	} {
		if got := r.do(strings.Fields(s.cmd)...); got != s.want {
			t.Errorf("replica %s: got %q want %q", s.cmd, got, s.want)
		}
	}
}

// TestTxPipelinedSetsStayQueued: plain SETs pipelined after MULTI are
// queued like any command (the pipelined-write fast path must not run
// them at once).
func TestTxPipelinedSetsStayQueued(t *testing.T) {
	ts := startServer(t, node.Config{})
	r := dialRaw(t, ts.addr)
	var b []byte
	b = append(b, encode("MULTI")...)
	for i := range 20 {
		b = append(b, encode("SET", fmt.Sprintf("p%d", i), "v")...)
	}
	b = append(b, encode("GET", "p0")...)
	b = append(b, encode("DISCARD")...)
	b = append(b, encode("EXISTS", "p0")...)
	r.send(b)
	if got := mustRead(t, r); got != "+OK\r\n" {
		t.Fatalf("MULTI: %q", got)
	}
	for i := range 21 {
		if got := mustRead(t, r); got != "+QUEUED\r\n" {
			t.Fatalf("command %d: %q", i, got)
		}
	}
	if got := mustRead(t, r); got != "+OK\r\n" {
		t.Fatalf("DISCARD: %q", got)
	}
	if got := mustRead(t, r); got != ":0\r\n" {
		t.Fatalf("EXISTS after DISCARD: %q (a queued SET ran)", got)
	}
}

// TestTxPanicWritesNothing: a handler that panics inside EXEC (a bug) runs
// on the engine's write path; the transaction is abandoned whole, the
// node keeps serving, and nothing of the transaction is written.
func TestTxPanicWritesNothing(t *testing.T) {
	ts := startServer(t, node.Config{})
	s := New(ts.n, nil)
	boom := func(*client, [][]byte) { panic("boom") }
	s.cmds["boomkey"] = &command{name: "boomkey", arity: 2, group: "string", write: true, flags: []string{"write"}, first: 1, last: 1, step: 1, fn: boom}
	s.cmds["boomconn"] = &command{name: "boomconn", arity: 1, group: "connection", fn: boom}
	ln := ts.mustListen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	r := dialRaw(t, ln.Addr().String())
	for _, st := range []struct{ cmd, want string }{
		{"MULTI", "+OK\r\n"},
		{"SET pa 1", "+QUEUED\r\n"},
		{"BOOMKEY pa", "+QUEUED\r\n"},
		{"SET pb 1", "+QUEUED\r\n"},
		{"EXEC", "-ERR internal error\r\n"},
		{"EXISTS pa pb", ":0\r\n"},
		{"MULTI", "+OK\r\n"},
		{"SET pc 1", "+QUEUED\r\n"},
		{"BOOMCONN", "+QUEUED\r\n"},
		{"EXEC", "-ERR internal error\r\n"}, // then the connection is closed
	} {
		if got := r.do(strings.Fields(st.cmd)...); got != st.want {
			t.Fatalf("%s: got %q want %q", st.cmd, got, st.want)
		}
	}
	if !r.closed() {
		t.Fatal("the connection stayed open after a panic outside the write")
	}
	if got := dialRaw(t, ln.Addr().String()).do("EXISTS", "pa", "pb", "pc"); got != ":1\r\n" {
		t.Fatalf("after the panics: EXISTS = %q (pc was committed before the connection command ran)", got)
	}
	if n := s.panics.Load(); n != 2 {
		t.Fatalf("%d panics counted, want 2", n)
	}
}
