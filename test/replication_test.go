package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// history records acknowledged writes of unique keys.
type history struct {
	mu    sync.Mutex
	acked map[string]string
	total atomic.Int64
}

func newHistory() *history { return &history{acked: map[string]string{}} }

// writers runs n clients against addr writing unique keys until ctx ends or
// a write fails; failures are allowed (a node may be down) and only
// acknowledged writes are recorded.
func (h *history) writers(ctx context.Context, addr string, n int, prefix string, keepGoing bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	for c := range n {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1})
			defer rdb.Close()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%s-c%d-k%d", prefix, c, i)
				val := "v-" + key
				if err := rdb.Set(ctx, key, val, 0).Err(); err != nil {
					if !keepGoing {
						return
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				h.mu.Lock()
				h.acked[key] = val
				h.mu.Unlock()
				h.total.Add(1)
			}
		}(c)
	}
	return &wg
}

// check verifies that every acknowledged write is on node p (read locally).
func (h *history) check(t *testing.T, p *proc) {
	t.Helper()
	rdb := p.redis()
	ctx := ctxT(t, 60*time.Second)
	if err := rdb.Do(ctx, "REPLICANT.CONSISTENCY", "eventual").Err(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	missing := 0
	keys := make([]string, 0, len(h.acked))
	for k := range h.acked {
		keys = append(keys, k)
	}
	// MGET in chunks: fast and still a read of every key.
	for i := 0; i < len(keys); i += 500 {
		chunk := keys[i:min(i+500, len(keys))]
		vals, err := rdb.MGet(ctx, chunk...).Result()
		if err != nil {
			t.Fatalf("MGET on %s: %v", p.ID, err)
		}
		for j, v := range vals {
			if s, _ := v.(string); s != h.acked[chunk[j]] {
				missing++
				if missing <= 5 {
					t.Errorf("%s: acknowledged %s=%s missing (got %v)", p.ID, chunk[j], h.acked[chunk[j]], v)
				}
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%s is missing %d of %d acknowledged writes", p.ID, missing, len(h.acked))
	}
}

func waitAcks(t *testing.T, h *history, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d acknowledged writes", n), 60*time.Second, func() bool { return h.total.Load() >= n })
}

func TestReplicationEveryAckedWriteOnEveryNode(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)")
	leader := c.node("n1")
	st := leader.mustStatus()
	if st.Role != "leader" || !slices.Equal(st.SyncSet, []string{"n2"}) {
		t.Fatalf("want n1 leader with sync set [n2], got role %s sync set %v", st.Role, st.SyncSet)
	}
	h := newHistory()
	ctx, cancel := bg(t)
	wg := h.writers(ctx, leader.RESP, 16, "a", false)
	waitAcks(t, h, 2000)
	cancel()
	wg.Wait()
	c.waitCaughtUp(leader, c.nodes...)
	for _, p := range c.nodes {
		h.check(t, p)
	}
	// A write on a follower is refused with the leader's address.
	c.waitFor("n2 knows the leader's RESP address", 10*time.Second, func() bool {
		err := c.node("n2").redis().Set(context.Background(), "x", "y", 0).Err()
		return err != nil && strings.HasSuffix(err.Error(), "resp="+leader.RESP)
	})
	err := c.node("n2").redis().Set(context.Background(), "x", "y", 0).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "READONLY You can't write against a read only replica.") || !strings.Contains(err.Error(), "leader=n1 resp="+leader.RESP) {
		t.Fatalf("write on follower: got %v", err)
	}
	// HTTP: 307 to the leader.
	hc := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPut, "http://"+c.node("n3").HTTP+"/v1/kv/x", strings.NewReader("y"))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "http://"+leader.HTTP+"/v1/kv/x" {
		t.Fatalf("PUT on follower: %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSyncFollowerKilledIsReplacedAndCatchesUp(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--sync-timeout", "1s", "--write-timeout", "20s")
	leader, n2, n3 := c.node("n1"), c.node("n2"), c.node("n3")
	h := newHistory()
	ctx, cancel := bg(t)
	wg := h.writers(ctx, leader.RESP, 8, "b", true)
	waitAcks(t, h, 500)
	n2.kill()
	// Within the sync timeout n3 becomes synchronous and writes go on.
	c.waitFor("n3 replaces n2 in the sync set", 20*time.Second, func() bool {
		st, err := leader.status()
		return err == nil && slices.Equal(st.SyncSet, []string{"n3"})
	})
	before := h.total.Load()
	waitAcks(t, h, before+500)
	cancel()
	wg.Wait()
	st := leader.mustStatus()
	if !slices.ContainsFunc(st.Events, func(e statusEvent) bool {
		return e.Kind == "sync-promoted" && e.Follower == "n3"
	}) {
		t.Errorf("no sync-promoted event for n3 in status: %+v", st.Events)
	}
	// Every acknowledged write is on the new sync follower: check it
	// before letting it catch up on anything the leader still sends.
	c.waitCaughtUp(leader, n3)
	h.check(t, n3)
	// The old sync follower restarts and catches up from its own log.
	logMark := len(n2.Log.String())
	n2.start()
	c.waitCaughtUp(leader, n2)
	h.check(t, n2)
	// Caught up from its own log: a stream from past LSN 1, no snapshot.
	after := n2.Log.String()[logMark:]
	m := regexp.MustCompile(`msg="streaming from leader".* from_lsn=(\d+)`).FindStringSubmatch(after)
	if m == nil || m[1] == "1" || strings.Contains(after, "installing a snapshot") {
		t.Errorf("n2 did not resume from its own last LSN after the restart:\n%s", after)
	}
}

func TestBlockFallbackFailsWritesUntilAFollowerReturns(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--sync-fallback", "block", "--sync-timeout", "500ms", "--write-timeout", "2s")
	leader := c.node("n1")
	rdb := leader.redis()
	ctx := ctxT(t, 2*time.Minute)
	if err := rdb.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.node("n2").kill()
	c.node("n3").kill()
	err := rdb.Set(ctx, "during", "1", 0).Err()
	if err == nil || !strings.Contains(err.Error(), "not enough synchronous followers") {
		t.Fatalf("write with both followers down: want a clear error, got %v", err)
	}
	c.node("n3").start()
	waitFor(t, "writes succeed again", 30*time.Second, func() bool {
		return rdb.Set(ctx, "after", "1", 0).Err() == nil
	})
}

func TestAsyncFallbackKeepsWriting(t *testing.T) {
	c := newCluster(t, 2, "--sync", "FIRST 1 (n2)", "--sync-fallback", "async", "--sync-timeout", "500ms", "--write-timeout", "5s")
	leader := c.node("n1")
	rdb := leader.redis()
	ctx := ctxT(t, time.Minute)
	c.node("n2").kill()
	waitFor(t, "a write commits with the only follower down", 20*time.Second, func() bool {
		return rdb.Set(ctx, "k", "v", 0).Err() == nil
	})
	st := leader.mustStatus()
	if !st.FallbackActive {
		t.Fatalf("status does not show the async fallback: %+v", st)
	}
}

func TestJoinUnderLoadThenRemove(t *testing.T) {
	c := newCluster(t, 3, "--sync", "ANY 1 (*)")
	leader := c.node("n1")
	h := newHistory()
	ctx, cancel := bg(t)
	wg := h.writers(ctx, leader.RESP, 8, "j", false)
	waitAcks(t, h, 1000)
	n4 := newProc(t, "n4", "--join", leader.Peer)
	n4.start()
	c.waitFor("n4 streams", 60*time.Second, func() bool {
		st, err := n4.status()
		return err == nil && st.State == "streaming"
	})
	waitAcks(t, h, h.total.Load()+500)
	cancel()
	wg.Wait()
	c.waitCaughtUp(leader, n4)
	h.check(t, n4)
	if !strings.Contains(n4.Log.String(), "snapshot installed") {
		t.Errorf("n4 joined without installing a snapshot")
	}
	out, err := exec.Command(binary, "member", "remove", "n4", "--addr", leader.HTTP).CombinedOutput()
	if err != nil {
		t.Fatalf("member remove: %v: %s", err, out)
	}
	c.waitFor("n4 leaves the member list", 20*time.Second, func() bool {
		st, err := leader.status()
		return err == nil && !slices.ContainsFunc(st.Members, func(m memberStatus) bool {
			return m.ID == "n4"
		})
	})
	// A removed node no longer follows the cluster: it must stop serving
	// reads of a state that will never move again.
	r4 := n4.redis()
	c.waitFor("n4 refuses reads once removed", 20*time.Second, func() bool {
		err := r4.Get(context.Background(), "k").Err()
		return err != nil && strings.Contains(err.Error(), "removed")
	})
}

func TestRetentionExceededFallsBackToSnapshot(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2)", "--log-retention", "100")
	leader, n3 := c.node("n1"), c.node("n3")
	h := newHistory()
	// n3 holds a log of its own before it goes away.
	ctx0, cancel0 := bg(t)
	wg0 := h.writers(ctx0, leader.RESP, 2, "r0", false)
	waitAcks(t, h, 50)
	cancel0()
	wg0.Wait()
	c.waitCaughtUp(leader, n3)
	n3.kill()
	ctx, cancel := bg(t)
	wg := h.writers(ctx, leader.RESP, 4, "r", false)
	waitAcks(t, h, 1500)
	cancel()
	wg.Wait()
	c.waitFor("leader log truncated by retention", 20*time.Second, func() bool {
		st, err := leader.status()
		return err == nil && st.FirstLSN > 200
	})
	n3.start()
	c.waitCaughtUp(leader, n3)
	h.check(t, n3)
	if !strings.Contains(n3.Log.String(), "fell behind log retention") {
		t.Errorf("n3 log does not say why it needed a snapshot")
	}
	// The leader's status says so too.
	for _, m := range leader.mustStatus().Members {
		if m.ID == "n3" && !strings.Contains(m.Reason, "fell behind log retention") {
			st, _ := json.Marshal(leader.mustStatus())
			t.Errorf("leader status for n3: reason %q\n%s", m.Reason, st)
		}
	}
}

func TestPolicyChangeAtRuntime(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)")
	leader := c.node("n1")
	rdb := leader.redis()
	ctx := ctxT(t, time.Minute)
	for _, tc := range []struct{ key, value, want string }{
		{"sync", "ANY 1 (*)", "ANY 1 (*)"},
		{"sync", "all", "all"},
		{"ack", "applied", ""},
		{"sync", "async", "async"},
		{"sync-fallback", "async", ""},
		{"sync", "FIRST 2 (n3,n2)", "FIRST 2 (n3,n2)"},
	} {
		out, err := exec.Command(binary, "config", "set", tc.key, tc.value, "--addr", c.node("n2").HTTP).CombinedOutput()
		if err != nil {
			t.Fatalf("config set %s %q: %v: %s", tc.key, tc.value, err, out)
		}
		c.waitFor("leader sees "+tc.value, 10*time.Second, func() bool {
			st, err := leader.status()
			if err != nil {
				return false
			}
			switch tc.key {
			case "sync":
				return st.SyncPolicy == tc.want
			case "ack":
				return st.Ack == tc.value
			default:
				return st.Fallback == tc.value
			}
		})
		if err := rdb.Set(ctx, "k-"+tc.value, "v", 0).Err(); err != nil {
			t.Fatalf("write under %s=%s: %v", tc.key, tc.value, err)
		}
	}
	out, err := exec.Command(binary, "config", "set", "sync", "FIRST 3 (n2)", "--addr", leader.HTTP).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FIRST 3") {
		t.Fatalf("an invalid policy must be refused clearly: %v %s", err, out)
	}
}

func TestWaitAndRole(t *testing.T) {
	c := newCluster(t, 3, "--sync", "async")
	leader := c.node("n1")
	rdb := leader.redis()
	ctx := ctxT(t, time.Minute)
	if err := rdb.Set(ctx, "w", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := rdb.Wait(ctx, 2, 5000).Result()
	if err != nil || n < 2 {
		t.Fatalf("WAIT 2 5000: %d, %v", n, err)
	}
	role, err := rdb.Do(ctx, "ROLE").Slice()
	if err != nil || role[0] != "master" {
		t.Fatalf("ROLE on leader: %v %v", role, err)
	}
	frole, err := c.node("n2").redis().Do(ctx, "ROLE").Slice()
	if err != nil || frole[0] != "slave" {
		t.Fatalf("ROLE on follower: %v %v", frole, err)
	}
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil || !strings.Contains(info, "role:master") || !strings.Contains(info, "connected_slaves:2") {
		t.Fatalf("INFO replication: %v\n%s", err, info)
	}
}

// TestLeaderKill9RestartTakesNewEpoch kills the leader under load and
// restarts it: it must come back under a new epoch (its unsynced tail may
// have reached followers), and every acknowledged write must be on every
// node afterwards.
func TestLeaderKill9RestartTakesNewEpoch(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)")
	leader := c.node("n1")
	h := newHistory()
	ctx, cancel := bg(t)
	wg := h.writers(ctx, leader.RESP, 16, "e", false)
	waitAcks(t, h, 1500)
	leader.kill()
	cancel()
	wg.Wait()
	leader.start()
	st := leader.mustStatus()
	if st.Role != "leader" || st.Epoch < 2 {
		t.Fatalf("restarted leader: role %s epoch %d, want leader with epoch >= 2", st.Role, st.Epoch)
	}
	ctx2, cancel2 := bg(t)
	wg2 := h.writers(ctx2, leader.RESP, 4, "e2", false)
	waitAcks(t, h, h.total.Load()+300)
	cancel2()
	wg2.Wait()
	c.waitCaughtUp(leader, c.nodes...)
	for _, p := range c.nodes {
		h.check(t, p)
	}
}

// writersVia is writers against whichever node leads, following redirects.
func (h *history) writersVia(ctx context.Context, c *cluster, n int, prefix string) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc := newLeaderClient(c)
			defer lc.close()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%s-c%d-k%d", prefix, w, i)
				val := "v-" + key
				if err := lc.client(lc.cur).Set(context.Background(), key, val, 0).Err(); err != nil {
					lc.redirect(err)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				h.mu.Lock()
				h.acked[key] = val
				h.mu.Unlock()
				h.total.Add(1)
			}
		}()
	}
	return &wg
}
