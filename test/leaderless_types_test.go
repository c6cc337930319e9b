package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/client"
)

// Collections in leaderless mode: each key's collection is one convergent
// state (crdt.Coll) in its replicas' states, merged like the rest.

// TestLeaderlessCollectionsConvergeAcrossCoordinators: writes of a set
// and a hash coordinated by different nodes while replicas are down. An
// SREM removes only the adds it saw: an SADD of the same member through a
// coordinator that did not see the first one survives it (add-wins,
// although the SREM came later in real time, so last-writer-wins would
// have removed it). HSETs of different fields both survive. Reads at
// R=all answer the merge, and read repair brings every replica to it
// (each replica alone, R=1, then answers the same).
func TestLeaderlessCollectionsConvergeAcrossCoordinators(t *testing.T) {
	// Convergence must come from read repair: no anti-entropy round runs.
	c := newLeaderless(t, 5, "--anti-entropy-interval", "1h")
	ctx := ctxT(t, 120*time.Second)
	const set = "llset"
	reps, others := c.replicasOf(set)
	hash := onReplicas(c, reps, "llhash", 0)
	all := quorumConn(t, others[0], "all", "all")
	if err := all.SAdd(ctx, set, "b").Err(); err != nil {
		t.Fatalf("SADD through %s: %v", others[0].ID, err)
	}
	if err := all.HSet(ctx, hash, "base", "0").Err(); err != nil {
		t.Fatal(err)
	}

	// Only reps[0] is up: it adds a (W=1, R=1).
	reps[1].kill()
	reps[2].kill()
	if err := quorumConn(t, reps[0], "1", "1").SAdd(ctx, set, "a").Err(); err != nil {
		t.Fatalf("SADD a through %s alone: %v", reps[0].ID, err)
	}
	// reps[0] is down, the two others are back: through reps[1], an SADD
	// of a (new to them: an add reps[0] will not see) and an HSET.
	reps[0].kill()
	reps[1].start()
	reps[2].start()
	waitSeesHealthy(t, reps[1], reps[2]) // they dial each other with backoff
	quorum := quorumConn(t, reps[1], "quorum", "quorum")
	if n, err := quorum.SAdd(ctx, set, "a").Result(); err != nil || n != 1 {
		t.Fatalf("SADD a through %s without %s = %d, %v; want 1 (a new member there)", reps[1].ID, reps[0].ID, n, err)
	}
	if err := quorum.HSet(ctx, hash, "f1", "from "+reps[1].ID).Err(); err != nil {
		t.Fatal(err)
	}
	// Only reps[0] is up again: through it an SREM of a and b (it saw its
	// own add of a, not the other) and an HSET of another field.
	reps[1].kill()
	reps[2].kill()
	reps[0].start()
	one := quorumConn(t, reps[0], "1", "1")
	if n, err := one.SRem(ctx, set, "a", "b").Result(); err != nil || n != 2 {
		t.Fatalf("SREM a b through %s alone = %d, %v; want 2", reps[0].ID, n, err)
	}
	if m, err := one.SMembers(ctx, set).Result(); err != nil || len(m) != 0 {
		t.Fatalf("SMEMBERS through %s alone after its SREM = %v, %v; want none", reps[0].ID, m, err)
	}
	if err := one.HSet(ctx, hash, "f2", "from "+reps[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	reps[1].start()
	reps[2].start()
	c.waitAllHealthy()

	wantSet := []string{"a"} // the add the SREM did not see survives; b stays removed
	wantHash := map[string]string{"base": "0", "f1": "from " + reps[1].ID, "f2": "from " + reps[0].ID}
	check := func(conn *redis.Conn) error {
		m, err := conn.SMembers(ctx, set).Result()
		if err != nil {
			return err
		}
		slices.Sort(m)
		if !slices.Equal(m, wantSet) {
			return fmt.Errorf("SMEMBERS = %v, want %v", m, wantSet)
		}
		h, err := conn.HGetAll(ctx, hash).Result()
		if err != nil {
			return err
		}
		if fmt.Sprint(h) != fmt.Sprint(wantHash) {
			return fmt.Errorf("HGETALL = %v, want %v", h, wantHash)
		}
		return nil
	}
	// Every node, at R=all, answers the merge (once its connections to
	// the restarted replicas are back: until then a read may fail).
	for _, p := range c.nodes {
		conn := quorumConn(t, p, "all", "all")
		var last error
		waitFor(t, p.ID+" answers the merge at R=all", 30*time.Second, func() bool {
			if last = check(conn); last != nil {
				t.Logf("through %s at R=all: %v", p.ID, last)
			}
			return last == nil
		})
	}
	// The types show through TYPE, and string commands refuse them.
	if typ, err := all.Type(ctx, hash).Result(); err != nil || typ != "hash" {
		t.Fatalf("TYPE %s = %q, %v", hash, typ, err)
	}
	if err := all.Get(ctx, set).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Fatalf("GET of a set: %v, want WRONGTYPE", err)
	}
	if err := all.Incr(ctx, hash).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Fatalf("INCR of a hash: %v, want WRONGTYPE", err)
	}
	// Read repair gave every replica the merge: each answers it alone.
	for i, x := range reps {
		rest := slices.Delete(slices.Clone(reps), i, i+1)
		r1 := quorumConn(t, x, "1", "1")
		waitFor(t, x.ID+" alone answers the merge", 30*time.Second, func() bool {
			_, err := whilePaused(t, rest, func() (string, error) { return "", check(r1) })
			return err == nil
		})
	}
}

// TestLeaderlessCollectionsAntiEntropy: a replica that was down for
// collection writes (and a SET over one collection, and a DEL of another)
// catches up through anti-entropy alone (read repair is off).
func TestLeaderlessCollectionsAntiEntropy(t *testing.T) {
	c := newLeaderless(t, 5, "--read-repair=false", "--anti-entropy-interval", "1s")
	ctx := ctxT(t, 120*time.Second)
	const key = "llz"
	reps, others := c.replicasOf(key)
	over := onReplicas(c, reps, "llover", 0)
	gone := onReplicas(c, reps, "llgone", 0)
	all := quorumConn(t, others[0], "all", "all")
	for _, k := range []string{over, gone} {
		if err := all.HSet(ctx, k, "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
	}
	x := reps[2]
	x.kill()
	w2 := quorumConn(t, others[1], "2", "2")
	if err := w2.ZAdd(ctx, key, redis.Z{Score: 1, Member: "one"}, redis.Z{Score: 2, Member: "two"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Set(ctx, over, "string now", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Del(ctx, gone).Err(); err != nil {
		t.Fatal(err)
	}
	x.start()
	c.waitAllHealthy()
	r1 := quorumConn(t, x, "1", "1")
	rest := reps[:2]
	waitFor(t, x.ID+" alone answers the writes it missed", 30*time.Second, func() bool {
		_, err := whilePaused(t, rest, func() (string, error) {
			z, err := r1.ZRangeWithScores(ctx, key, 0, -1).Result()
			if err != nil || fmt.Sprint(z) != "[{1 one} {2 two}]" {
				return "", fmt.Errorf("ZRANGE = %v, %v", z, err)
			}
			if v, err := r1.Get(ctx, over).Result(); err != nil || v != "string now" {
				return "", fmt.Errorf("GET %s = %q, %v", over, v, err)
			}
			if n, err := r1.Exists(ctx, gone).Result(); err != nil || n != 0 {
				return "", fmt.Errorf("EXISTS %s = %d, %v", gone, n, err)
			}
			return "", nil
		})
		return err == nil
	})
}

// onReplicas returns the first key prefix+N (N from i on) whose replicas
// are reps, in any order.
func onReplicas(c *llCluster, reps []*proc, prefix string, i int) string {
	for ; ; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		r, _ := c.replicasOf(k)
		if len(r) == len(reps) && !slices.ContainsFunc(r, func(p *proc) bool { return !slices.Contains(reps, p) }) {
			return k
		}
	}
}

// waitSeesHealthy waits until p has reached each of peers since it started
// (a fresh process knows no peer healthy until a call to it succeeded).
func waitSeesHealthy(t *testing.T, p *proc, peers ...*proc) {
	t.Helper()
	waitFor(t, p.ID+" sees its peers healthy", 30*time.Second, func() bool {
		st, err := p.status()
		if err != nil {
			return false
		}
		for _, q := range peers {
			if !slices.ContainsFunc(st.Members, func(m client.Member) bool { return m.ID == q.ID && m.Healthy }) {
				return false
			}
		}
		return true
	})
}
