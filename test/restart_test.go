package test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// registerLoad runs one INCR loop per key against addr until ctx ends and
// records, per key, the highest value the server acknowledged.
type registerLoad struct {
	mu    sync.Mutex
	acked map[string]int64
}

func (l *registerLoad) run(ctx context.Context, t *testing.T, addr string, keys []string) *sync.WaitGroup {
	l.acked = map[string]int64{}
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
			defer c.Close()
			for ctx.Err() == nil {
				v, err := c.Incr(ctx, k).Result()
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				l.mu.Lock()
				l.acked[k] = max(l.acked[k], v)
				l.mu.Unlock()
			}
		}()
	}
	return &wg
}

func (l *registerLoad) snapshot() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.acked))
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

// readBackInTime polls GET of every key on addr from the moment the restarted
// process accepts connections until every key has been read successfully
// `want` times, and returns the reads that returned less than floor[k].
// A -LOADING answer is allowed (the node does not know yet); a value older
// than one it acknowledged or served before the crash is not.
func readBackInTime(t *testing.T, p *proc, floor map[string]int64, want int) (bad []string, loading int) {
	t.Helper()
	var mu sync.Mutex
	ok := map[string]int{}
	var wg sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second)
	for k, f := range floor {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: p.RESP, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
			defer c.Close()
			for time.Now().Before(deadline) {
				s, err := c.Get(context.Background(), k).Result()
				switch {
				case err != nil && strings.HasPrefix(err.Error(), "LOADING"):
					mu.Lock()
					loading++
					mu.Unlock()
					time.Sleep(time.Millisecond)
					continue
				case err == redis.Nil:
					s = "0"
				case err != nil:
					time.Sleep(time.Millisecond) // not listening yet
					continue
				}
				v, _ := strconv.ParseInt(s, 10, 64)
				mu.Lock()
				if v < f {
					bad = append(bad, fmt.Sprintf("%s=%d below %d", k, v, f))
				}
				ok[k]++
				done := ok[k] >= want
				mu.Unlock()
				if done {
					return
				}
			}
		}()
	}
	wg.Wait()
	for k := range floor {
		if ok[k] < want {
			t.Fatalf("%s: only %d successful reads of %s in 30s after restart", p.ID, ok[k], k)
		}
	}
	return bad, loading
}

// A single node killed under load serves, once it answers reads again,
// nothing older than what it acknowledged before the kill.
func TestRestartedNodeNeverReadsBackInTime(t *testing.T) {
	p := newProc(t, "n1")
	p.start()
	keys := []string{"a", "b", "c", "d"}
	for round := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		var load registerLoad
		wg := load.run(ctx, t, p.RESP, keys)
		time.Sleep(300 * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()
		acked := load.snapshot()
		for _, k := range keys {
			if acked[k] == 0 {
				t.Fatalf("round %d: no write on %s acknowledged before the kill", round, k)
			}
		}
		p.startNoWait()
		bad, loading := readBackInTime(t, p, acked, 20)
		if len(bad) > 0 {
			t.Fatalf("round %d: %d reads went back in time after restart, e.g. %v", round, len(bad), bad[:min(5, len(bad))])
		}
		t.Logf("round %d: acked %v, %d -LOADING answers before the node caught up", round, acked, loading)
	}
}

// A leader restarted while the rest of its cluster is down cannot re-take
// leadership (no quorum), so it cannot learn what was committed: it must not
// serve the commit LSN it happened to have on disk (which lags what it
// acknowledged by a batch), only -LOADING, until the cluster is back.
func TestRestartedLeaderWithoutQuorumServesNothingOld(t *testing.T) {
	c := newCluster(t, 3, "--sync", "async")
	n1 := c.node("n1")
	keys := []string{"a", "b", "c", "d"}
	ctx, cancel := context.WithCancel(context.Background())
	var load registerLoad
	wg := load.run(ctx, t, n1.RESP, keys)
	time.Sleep(500 * time.Millisecond)
	n1.kill()
	cancel()
	wg.Wait()
	acked := load.snapshot()
	c.node("n2").kill()
	c.node("n3").kill()
	n1.startNoWait()
	// Read for a while: nothing older than acknowledged may come back.
	deadline := time.Now().Add(1500 * time.Millisecond)
	// Eventual reads: local state, no leader needed (a linearizable read
	// would wait for the leader role, which cannot come without a quorum).
	r := redis.NewClient(&redis.Options{Addr: n1.RESP, MaxRetries: -1, DialTimeout: 100 * time.Millisecond,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error {
			return cn.Do(ctx, "REPLICANT.CONSISTENCY", "eventual").Err()
		}})
	defer r.Close()
	var loading, served int
	for time.Now().Before(deadline) {
		for _, k := range keys {
			s, err := r.Do(context.Background(), "GET", k).Text()
			switch {
			case err != nil && strings.HasPrefix(err.Error(), "LOADING"):
				loading++
			case err == redis.Nil || err == nil:
				served++
				if v, _ := strconv.ParseInt(s, 10, 64); v < acked[k] {
					t.Fatalf("restarted leader without quorum served %s=%d, below the acknowledged %d", k, v, acked[k])
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if loading == 0 {
		t.Fatalf("the restarted leader never answered -LOADING (%d reads served)", served)
	}
	// With the cluster back it catches up and serves what it acknowledged.
	c.node("n2").startNoWait()
	c.node("n3").startNoWait()
	bad, _ := readBackInTime(t, n1, acked, 5)
	if len(bad) > 0 {
		t.Fatalf("after the cluster returned: %v", bad[:min(5, len(bad))])
	}
}

// Writes sent to a brand-new node while it bootstraps (no leader appointed
// yet) wait for it to lead instead of failing with READONLY.
func TestWritesWaitForALeaderAtStartup(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			var nodes []*proc
			var initial []string
			for i := 1; i <= n; i++ {
				p := newProc(t, fmt.Sprintf("n%d", i))
				nodes = append(nodes, p)
				initial = append(initial, p.ID+"="+p.Peer)
			}
			for _, p := range nodes {
				if n > 1 {
					p.Args = []string{"--initial-cluster", strings.Join(initial, ",")}
				}
				p.startNoWait()
			}
			ctx := ctxT(t, 30*time.Second)
			c := redis.NewClient(&redis.Options{Addr: nodes[0].RESP, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
			defer c.Close()
			var errs []string
			for i := 0; i < 100 && ctx.Err() == nil; {
				err := c.Set(ctx, "k", i, 0).Err()
				if err != nil && strings.Contains(err.Error(), "connection refused") {
					time.Sleep(time.Millisecond) // not listening yet
					continue
				}
				if err != nil {
					errs = append(errs, err.Error())
				}
				i++
			}
			if len(errs) > 0 {
				t.Fatalf("%d writes failed while the node started, e.g. %q", len(errs), errs[0])
			}
		})
	}
}

// A follower killed while readers watch it comes back serving nothing older
// than what it served before the kill.
func TestRestartedFollowerNeverReadsBackInTime(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (*)")
	leader, f := c.node("n1"), c.node("n3")
	keys := []string{"a", "b", "c"}
	ctx, cancel := context.WithCancel(context.Background())
	var load registerLoad
	wg := load.run(ctx, t, leader.RESP, keys)

	// Readers on the follower record the newest value it served per key.
	var mu sync.Mutex
	served := map[string]int64{}
	var rwg sync.WaitGroup
	rctx, rcancel := context.WithCancel(context.Background())
	for _, k := range keys {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			cl := redis.NewClient(&redis.Options{Addr: f.RESP, MaxRetries: -1})
			defer cl.Close()
			for rctx.Err() == nil {
				s, err := cl.Get(rctx, k).Result()
				if err != nil {
					continue
				}
				v, _ := strconv.ParseInt(s, 10, 64)
				mu.Lock()
				served[k] = max(served[k], v)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	// Stop reading at once and kill: everything served is recorded.
	rcancel()
	rwg.Wait()
	f.kill()
	cancel()
	wg.Wait()
	for _, k := range keys {
		if served[k] == 0 {
			t.Fatalf("the follower served no value of %s before the kill", k)
		}
	}
	// Freeze the leader: the restarted follower cannot learn the commit LSN
	// from it, so only what it kept on disk tells it what it may serve,
	// until a failover gives it a new leader.
	_ = leader.Signal(syscall.SIGSTOP)
	defer func() { _ = leader.Signal(syscall.SIGCONT) }()
	f.startNoWait()
	bad, loading := readBackInTime(t, f, served, 20)
	if len(bad) > 0 {
		t.Fatalf("the restarted follower served %d values older than before its kill, e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	t.Logf("served before the kill %v; %d -LOADING answers after restart", served, loading)
}

// A token that names an LSN of an epoch the node's history has replaced
// fails as a lost write at once (it is not merely "not reached yet"), and a
// token of the newer epoch is honoured even with a lower LSN.
func TestTokenFromDiscardedEpochIsLost(t *testing.T) {
	p := newProc(t, "n1")
	p.start()
	r := p.redis()
	ctx := ctxT(t, 30*time.Second)
	for i := range 5 {
		if err := r.Set(ctx, "k", i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	before := p.mustStatus()
	p.kill()
	p.start() // a restarted leader takes a fresh epoch
	waitFor(t, "a new epoch", 10*time.Second, func() bool {
		st, err := p.status()
		return err == nil && st.Epoch > before.Epoch && st.Role == "leader"
	})
	if err := r.Set(ctx, "k", "new", 0).Err(); err != nil {
		t.Fatal(err)
	}
	after := p.mustStatus()
	// An old-epoch token above where the new epoch began: that write can
	// never appear in this history.
	doomed := fmt.Sprintf("%d:%d", before.Epoch, after.LastLSN+100)
	start := time.Now()
	code, body, _ := httpDo(t, http.MethodGet, "http://"+p.HTTP+"/v1/kv/k", "", map[string]string{
		"Replicant-Consistency": "session", "Replicant-Token": doomed})
	if code != http.StatusGone || !strings.Contains(body, "lost") {
		t.Fatalf("read with token %s: %d %s; want 410 naming a lost write", doomed, code, body)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("a lost token took %s to be recognised (it waited as if the write could arrive)", el)
	}
	// The newer epoch's token at a lower LSN than the doomed one is served.
	good := fmt.Sprintf("%d:%d", after.Epoch, after.LastLSN)
	code, body, _ = httpDo(t, http.MethodGet, "http://"+p.HTTP+"/v1/kv/k", "", map[string]string{
		"Replicant-Consistency": "session", "Replicant-Token": good})
	if code != http.StatusOK || body != "new" {
		t.Fatalf("read with token %s: %d %q; want 200 \"new\"", good, code, body)
	}
	// REPLICANT.SESSION with the doomed token binds every read on the
	// connection, whatever its consistency level.
	conn := r.Conn()
	defer conn.Close()
	if err := conn.Do(ctx, "REPLICANT.SESSION", doomed).Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Do(ctx, "REPLICANT.CONSISTENCY", "eventual").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Fatalf("eventual GET under a lost session floor: %v; want a lost-write error", err)
	}
}

// A policy naming a node outside the cluster is refused; with the leader-
// inclusive FIRST 1 (*), a failover leaves a synchronous follower: after the
// old leader returns and the remaining follower dies, writes go on.
func TestLeaderInclusivePolicySurvivesFailovers(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (*)", "--sync-timeout", "1s", "--write-timeout", "5s")
	n1 := c.node("n1")
	code, body, _ := httpDo(t, http.MethodPut, "http://"+n1.HTTP+"/v1/config", `{"sync":"FIRST 1 (n9)"}`, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "n9") {
		t.Fatalf("policy naming n9: %d %s; want 400 naming n9", code, body)
	}
	ctx := ctxT(t, 60*time.Second)
	if err := n1.redis().Set(ctx, "k", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n1.kill()
	var leader string
	c.waitFor("a new leader", 15*time.Second, func() bool {
		leader, _ = leaderOf(c, "n1")
		return leader != "" && leader != "n1"
	})
	n1.start()
	lp := c.node(leader)
	c.waitCaughtUp(lp, n1)
	other := "n2"
	if leader == "n2" {
		other = "n3"
	}
	c.node(other).kill()
	// n1 (named by *, though it led before) replaces the dead sync follower.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := lp.redis().Set(wctx, "k", "2", 0).Err(); err != nil {
		t.Fatalf("write after the sync follower %s died (n1 is back): %v", other, err)
	}
}
