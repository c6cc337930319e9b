package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/leaderless"
)

// llCluster is a leaderless cluster of real processes.
type llCluster struct {
	t     *testing.T
	nodes []*proc
	ring  *leaderless.Ring
}

func newLeaderless(t *testing.T, n int, flags ...string) *llCluster {
	t.Helper()
	c := &llCluster{t: t}
	var initial, ids []string
	for i := 1; i <= n; i++ {
		p := newProc(t, fmt.Sprintf("n%d", i))
		c.nodes = append(c.nodes, p)
		initial = append(initial, p.ID+"="+p.Peer)
		ids = append(ids, p.ID)
	}
	for _, p := range c.nodes {
		p.Args = append([]string{"--initial-cluster", strings.Join(initial, ","), "--mode", "leaderless"}, flags...)
		p.startNoWait()
	}
	for _, p := range c.nodes {
		p.waitHealthy()
	}
	// The ring is a pure function of the members: the test computes where
	// keys live the way the nodes do.
	r, err := leaderless.NewRing(ids, leaderless.DefaultVNodes)
	if err != nil {
		t.Fatal(err)
	}
	c.ring = r
	waitFor(t, "every node sees every other healthy", 30*time.Second, func() bool {
		for _, p := range c.nodes {
			st, err := p.status()
			if err != nil || st.Mode != "leaderless" {
				return false
			}
			for _, m := range st.Members {
				if !m.Healthy {
					return false
				}
			}
			if len(st.Members) != n-1 {
				return false
			}
		}
		return true
	})
	return c
}

// waitAllHealthy waits until every node sees every other healthy (after a
// restart, peers reconnect with backoff).
func (c *llCluster) waitAllHealthy() {
	c.t.Helper()
	waitFor(c.t, "every node sees every other healthy", 30*time.Second, func() bool {
		for _, p := range c.nodes {
			st, err := p.status()
			if err != nil || len(st.Members) != len(c.nodes)-1 {
				return false
			}
			for _, m := range st.Members {
				if !m.Healthy {
					return false
				}
			}
		}
		return true
	})
}

func (c *llCluster) node(id string) *proc {
	for _, p := range c.nodes {
		if p.ID == id {
			return p
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// replicasOf returns a key's replicas and the other nodes.
func (c *llCluster) replicasOf(key string) (replicas, others []*proc) {
	pref := c.ring.Preference([]byte(key), 3)
	in := map[string]bool{}
	for _, id := range pref {
		replicas = append(replicas, c.node(id))
		in[id] = true
	}
	for _, p := range c.nodes {
		if !in[p.ID] {
			others = append(others, p)
		}
	}
	return replicas, others
}

func quorumConn(t *testing.T, p *proc, w, r string) *redis.Conn {
	t.Helper()
	conn := redis.NewClient(&redis.Options{Addr: p.RESP, MaxRetries: -1}).Conn()
	t.Cleanup(func() { conn.Close() })
	if err := conn.Do(context.Background(), "REPLICANT.QUORUM", w, r).Err(); err != nil {
		t.Fatalf("REPLICANT.QUORUM %s %s on %s: %v", w, r, p.ID, err)
	}
	return conn
}

// TestLeaderlessQuorums: any node takes reads and writes; with two of a
// key's three replicas killed, W=2 writes fail with -NOQUORUM saying how
// many replicas stored them, W=1 writes succeed, and a returning replica
// gets the value by read repair.
func TestLeaderlessQuorums(t *testing.T) {
	c := newLeaderless(t, 5, "--anti-entropy-interval", "1h") // repair must come from reads (handoff), not anti-entropy
	ctx := ctxT(t, 60*time.Second)
	key := "qk"
	reps, others := c.replicasOf(key)

	// Written through a node that is not a replica, read on every node.
	if err := others[0].redis().Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatalf("SET via %s: %v", others[0].ID, err)
	}
	for _, p := range c.nodes {
		if v, err := p.redis().Get(ctx, key).Result(); err != nil || v != "v1" {
			t.Fatalf("GET on %s = %q, %v", p.ID, v, err)
		}
	}

	reps[1].kill()
	reps[2].kill()
	w2 := quorumConn(t, reps[0], "2", "1")
	err := w2.Set(ctx, key, "v2", 0).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOQUORUM") || !strings.Contains(err.Error(), "of 3 replicas, 2 needed") {
		t.Fatalf("W=2 with two replicas down: %v, want NOQUORUM naming the count", err)
	}
	t.Logf("W=2: %v", err)
	w1 := quorumConn(t, reps[0], "one", "one")
	if err := w1.Set(ctx, key, "v3", 0).Err(); err != nil {
		t.Fatalf("W=1 with two replicas down: %v", err)
	}
	if v, err := w1.Get(ctx, key).Result(); err != nil || v != "v3" {
		t.Fatalf("R=1 read after W=1 = %q, %v", v, err)
	}

	// A key the two dead replicas never saw: written with W=1 while they
	// are down (rk has the same replicas only if the ring says so, so
	// pick one that does).
	rk := ""
	for i := 0; rk == ""; i++ {
		k := fmt.Sprintf("rk%d", i)
		if r, _ := c.replicasOf(k); r[0] == reps[0] && sameProcs(r, reps) {
			rk = k
		}
	}
	if err := w1.Set(ctx, rk, "repair-me", 0).Err(); err != nil {
		t.Fatalf("W=1 SET %s: %v", rk, err)
	}

	// The replicas return; a read with R=all asks every replica, answers
	// the newest, and repairs the replicas that lacked it.
	reps[1].start()
	reps[2].start()
	rall := quorumConn(t, others[0], "one", "all")
	waitFor(t, "R=all reads v3 and "+rk, 20*time.Second, func() bool {
		v, err := rall.Get(ctx, key).Result()
		v2, err2 := rall.Get(ctx, rk).Result()
		return err == nil && v == "v3" && err2 == nil && v2 == "repair-me"
	})
	// KEYS on a node lists the keys it holds itself: read repair put rk on
	// both returned replicas, and only on the replicas.
	waitFor(t, "read repair stores "+rk+" on the returned replicas", 20*time.Second, func() bool {
		for _, p := range reps {
			if keys, err := p.redis().Keys(ctx, rk).Result(); err != nil || len(keys) != 1 {
				return false
			}
		}
		return true
	})
	for _, p := range others {
		if keys, _ := p.redis().Keys(ctx, rk).Result(); len(keys) != 0 {
			t.Errorf("%s holds %s, which is not one of its keys", p.ID, rk)
		}
	}
}

func sameProcs(a, b []*proc) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLeaderlessSiblingsAndCounters: two writes that did not see each other
// become siblings (REPLICANT.SIBLINGS, HTTP 300), a write with their
// context resolves them, and INCR from every node never loses one.
func TestLeaderlessSiblingsAndCounters(t *testing.T) {
	c := newLeaderless(t, 5)
	ctx := ctxT(t, 60*time.Second)
	a, b := c.nodes[0].redis().Conn(), c.nodes[3].redis().Conn()
	defer a.Close()
	defer b.Close()
	if err := a.Set(ctx, "s", "base", 0).Err(); err != nil {
		t.Fatal(err)
	}
	base, err := a.Do(ctx, "REPLICANT.SIBLINGS", "s").StringSlice()
	if err != nil || len(base) != 2 || base[1] != "base" {
		t.Fatalf("SIBLINGS s = %q, %v", base, err)
	}
	// Both clients write having seen only "base".
	for _, wr := range []struct {
		conn *redis.Conn
		v    string
	}{{a, "from-a"}, {b, "from-b"}} {
		if err := wr.conn.Do(ctx, "REPLICANT.CONTEXT", base[0]).Err(); err != nil {
			t.Fatal(err)
		}
		if err := wr.conn.Set(ctx, "s", wr.v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sibs, err := b.Do(ctx, "REPLICANT.SIBLINGS", "s").StringSlice()
	if err != nil || len(sibs) != 3 {
		t.Fatalf("SIBLINGS after two concurrent writes = %q, %v; want the context and two values", sibs, err)
	}
	got := map[string]bool{sibs[1]: true, sibs[2]: true}
	if !got["from-a"] || !got["from-b"] {
		t.Fatalf("siblings %q, want from-a and from-b", sibs[1:])
	}
	// HTTP shows them as 300 Multiple Choices.
	resp, err := http.Get("http://" + c.nodes[2].HTTP + "/v1/kv/s")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var multi struct {
		Context  string   `json:"context"`
		Siblings []string `json:"siblings"`
	}
	if resp.StatusCode != http.StatusMultipleChoices || json.Unmarshal(body, &multi) != nil || len(multi.Siblings) != 2 {
		t.Fatalf("HTTP GET of a key with siblings: %d %s", resp.StatusCode, body)
	}
	// GET answers one deterministic winner everywhere.
	var winner string
	for i, p := range c.nodes {
		v, err := p.redis().Get(ctx, "s").Result()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			winner = v
		} else if v != winner {
			t.Fatalf("GET on %s = %q, on n1 %q", p.ID, v, winner)
		}
	}
	// A write with the siblings' context resolves them.
	if err := a.Do(ctx, "REPLICANT.CONTEXT", sibs[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "s", "merged", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if after, err := b.Do(ctx, "REPLICANT.SIBLINGS", "s").StringSlice(); err != nil || len(after) != 2 || after[1] != "merged" {
		t.Fatalf("SIBLINGS after the resolving write = %q, %v", after, err)
	}

	// One command writing a key twice keeps its last write, not two
	// siblings of its own making.
	if err := a.MSet(ctx, "d", "first", "d", "last").Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := a.Do(ctx, "REPLICANT.SIBLINGS", "d").StringSlice(); err != nil || len(d) != 2 || d[1] != "last" {
		t.Fatalf("SIBLINGS after MSET d first d last = %q, %v; want one value, last", d, err)
	}

	// INCR from many clients on every node.
	var wg sync.WaitGroup
	var acked, failed atomic.Int64
	for _, p := range c.nodes {
		for k := 0; k < 2; k++ {
			wg.Add(1)
			go func(p *proc) {
				defer wg.Done()
				rdb := redis.NewClient(&redis.Options{Addr: p.RESP, MaxRetries: -1, PoolSize: 1})
				defer rdb.Close()
				for i := 0; i < 40; i++ {
					if err := rdb.Incr(ctx, "ctr").Err(); err != nil {
						failed.Add(1)
					} else {
						acked.Add(1)
					}
				}
			}(p)
		}
	}
	wg.Wait()
	all := quorumConn(t, c.nodes[1], "all", "all")
	n, err := all.Get(ctx, "ctr").Int64()
	if err != nil || n < acked.Load() || n > acked.Load()+failed.Load() {
		t.Fatalf("ctr = %d, %v; %d increments acknowledged, %d failed", n, err, acked.Load(), failed.Load())
	}
	if failed.Load() != 0 {
		t.Logf("%d increments failed", failed.Load())
	}
}

// TestLeaderlessDeletesDoNotResurrect: a replica that missed a DEL and
// returns within --tombstone-grace does not bring the value back; after
// the grace, no node holds the key any more.
func TestLeaderlessDeletesDoNotResurrect(t *testing.T) {
	c := newLeaderless(t, 5, "--tombstone-grace", "3s", "--anti-entropy-interval", "1h")
	ctx := ctxT(t, 90*time.Second)
	key := "gone"
	reps, others := c.replicasOf(key)
	all := quorumConn(t, others[0], "all", "all")
	if err := all.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// reps[2] misses the delete.
	reps[2].stop()
	w2 := quorumConn(t, others[0], "2", "2")
	if n, err := w2.Del(ctx, key).Result(); err != nil || n != 1 {
		t.Fatalf("DEL = %d, %v", n, err)
	}
	reps[2].start()
	c.waitAllHealthy()
	if n := metricValue(reps[2], "replicant_tombstones"); n != 0 {
		t.Fatalf("%s holds %v tombstones before any read: it did not miss the DEL, so nothing is tested", reps[2].ID, n)
	}
	// It still holds "v"; a read asking every replica merges the tombstone
	// in and repairs it, never answering "v".
	rall := quorumConn(t, others[1], "one", "all")
	for i := 0; i < 5; i++ {
		if v, err := rall.Get(ctx, key).Result(); err != redis.Nil {
			t.Fatalf("GET after DEL with a returning replica = %q, %v; want nil", v, err)
		}
	}
	// The replicas hold the tombstone (replicant_tombstones counts keys
	// held only as tombstones)…
	waitFor(t, "the three replicas hold the tombstone", 20*time.Second, func() bool {
		for _, p := range reps {
			if metricValue(p, "replicant_tombstones") < 1 {
				return false
			}
		}
		return true
	})
	// …and after the grace every replica has dropped it.
	waitFor(t, "no node holds the tombstone after the grace", 30*time.Second, func() bool {
		for _, p := range c.nodes {
			if metricValue(p, "replicant_tombstones") != 0 {
				return false
			}
		}
		return true
	})
	if v, err := rall.Get(ctx, key).Result(); err != redis.Nil {
		t.Fatalf("GET after collection = %q, %v", v, err)
	}
}

// metricValue scrapes one unlabelled series from a node's /metrics (-1 if
// absent or unreadable).
func metricValue(p *proc, name string) float64 {
	resp, err := http.Get("http://" + p.HTTP + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// ringOf is the ring of the given node ids, as every node computes it.
func ringOf(t *testing.T, ids ...string) *leaderless.Ring {
	t.Helper()
	r, err := leaderless.NewRing(ids, leaderless.DefaultVNodes)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// holds reports whether node p stores key itself (KEYS on a leaderless
// node lists the keys it holds).
func holds(ctx context.Context, p *proc, key string) bool {
	keys, err := p.redis().Keys(ctx, key).Result()
	return err == nil && len(keys) == 1
}

// TestLeaderlessJoinAndLeaveMoveData: a sixth node that joins receives
// every key it is now a replica of, with progress in status; a node that
// is removed through itself first hands its keys to their new replicas.
func TestLeaderlessJoinAndLeaveMoveData(t *testing.T) {
	c := newLeaderless(t, 5, "--anti-entropy-interval", "1h") // repair must come from reads (handoff), not anti-entropy
	ctx := ctxT(t, 120*time.Second)
	all := quorumConn(t, c.nodes[0], "all", "all")
	var keys []string
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("m%03d", i)
		if err := all.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	n6 := newProc(t, "n6", "--mode", "leaderless", "--join", c.nodes[0].Peer)
	n6.start()
	nodes := append(append([]*proc(nil), c.nodes...), n6)
	waitFor(t, "every node's ring has six members", 30*time.Second, func() bool {
		for _, p := range nodes {
			st, err := p.status()
			if err != nil || len(st.Ring) != 6 {
				return false
			}
		}
		return true
	})
	six := ringOf(t, "n1", "n2", "n3", "n4", "n5", "n6")
	var owned []string
	for _, k := range keys {
		if six.Owns("n6", []byte(k), 3) {
			owned = append(owned, k)
		}
	}
	if len(owned) == 0 {
		t.Fatal("n6 owns none of 300 keys: the ring is broken")
	}
	waitFor(t, fmt.Sprintf("n6 holds the %d keys it is a replica of", len(owned)), 30*time.Second, func() bool {
		for _, k := range owned {
			if !holds(ctx, n6, k) {
				return false
			}
		}
		return true
	})
	moved := uint64(0)
	for _, p := range c.nodes {
		if st, err := p.status(); err == nil && st.Rebalance != nil {
			moved += st.Rebalance.Moved
		}
	}
	if moved < uint64(len(owned)) {
		t.Errorf("the old nodes report %d keys moved, want at least the %d n6 now holds", moved, len(owned))
	}
	t.Logf("n6 owns %d of %d keys; %d moved", len(owned), len(keys), moved)

	// n5 leaves: asked through itself, it hands its keys over first.
	req, _ := http.NewRequest(http.MethodDelete, "http://"+c.nodes[4].HTTP+"/v1/members/n5", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("remove n5 through itself: %d %s", resp.StatusCode, b)
	}
	// n5 itself handed its keys over before it left (anti-entropy is an
	// hour away, and this is what makes the move not depend on the others).
	if st, err := c.nodes[4].status(); err != nil || st.Rebalance == nil || st.Rebalance.State != "left" || st.Rebalance.Moved == 0 {
		t.Fatalf("n5's status after leaving: %+v, %v; want rebalance left with keys moved", st.Rebalance, err)
	}
	c.nodes[4].stop()
	rest := []*proc{c.nodes[0], c.nodes[1], c.nodes[2], c.nodes[3], n6}
	five := ringOf(t, "n1", "n2", "n3", "n4", "n6")
	waitFor(t, "every key is held by its three replicas without n5", 30*time.Second, func() bool {
		for _, k := range keys {
			for _, id := range five.Preference([]byte(k), 3) {
				for _, p := range rest {
					if p.ID == id && !holds(ctx, p, k) {
						return false
					}
				}
			}
		}
		return true
	})
}
