package test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeaderlessJoinKeepsQuorumReads: with W=2 and R=2, a read that starts
// after a write was acknowledged returns it while a node joins, too. The
// joining node holds nothing until the others hand it its keys, so if
// reads asked it at once, a read answered by it and by a replica that
// missed the write would come back empty. Reads keep asking the old
// replicas until every member has handed off (status shows the new node
// joining), and writes meanwhile reach W on the old and the new replicas.
//
// Set-up: n5 is down while the keys are written (W=2 reaches the other
// two replicas), then comes back without them (read repair and
// anti-entropy are off). Keys whose replicas were {a, n5, b} and become
// {n6, n5, b} (n6 displacing a) are the exposed ones: n6 and n5 both lack
// them until a's handoff reaches n6.
func TestLeaderlessJoinKeepsQuorumReads(t *testing.T) {
	c := newLeaderless(t, 5, "--anti-entropy-interval", "1h", "--read-repair=false")
	ctx := ctxT(t, 180*time.Second)
	n5 := c.nodes[4]
	n5.stop()
	const keys = 2000
	w := quorumConn(t, c.nodes[0], "2", "2")
	for i := range keys {
		k := fmt.Sprintf("j%04d", i)
		if err := w.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s with n5 down: %v", k, err)
		}
	}
	n5.start()
	six := ringOf(t, "n1", "n2", "n3", "n4", "n5", "n6")
	exposed := 0
	for i := range keys {
		k := []byte(fmt.Sprintf("j%04d", i))
		if c.ring.Owns("n5", k, 3) && six.Owns("n6", k, 3) && six.Owns("n5", k, 3) {
			exposed++
		}
	}
	if exposed == 0 {
		t.Fatalf("no key is exposed to the join: the set-up does not test anything")
	}
	t.Logf("%d of %d keys lack a replica on n5 and get n6 as a replica", exposed, keys)

	// Readers on every old node read every key with R=2, over and over,
	// from before the join until after it settled.
	var stale atomic.Int64
	var reads atomic.Int64
	var firstStale atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range c.nodes {
		conn := quorumConn(t, p, "2", "2")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i = (i + 1) % keys {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("j%04d", i)
				got, err := conn.Get(ctx, k).Result()
				if err != nil && ctx.Err() == nil {
					if err.Error() == "redis: nil" {
						stale.Add(1)
						firstStale.CompareAndSwap(nil, fmt.Sprintf("%s read through %s: nil", k, p.ID))
					}
					continue
				}
				reads.Add(1)
				if got != k {
					stale.Add(1)
					firstStale.CompareAndSwap(nil, fmt.Sprintf("%s read through %s: %q", k, p.ID, got))
				}
			}
		}()
	}
	before := time.Now()
	for reads.Load() < 200 && time.Since(before) < 30*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	n6 := newProc(t, "n6", "--mode", "leaderless", "--join", c.nodes[0].Peer, "--anti-entropy-interval", "1h", "--read-repair=false")
	n6.start()
	nodes := append(append([]*proc(nil), c.nodes...), n6)
	sawJoining := false
	waitFor(t, "every node has n6 on its ring, and the join settled", 60*time.Second, func() bool {
		for _, p := range nodes {
			st, err := p.status()
			if err != nil || len(st.Ring) != 6 {
				return false
			}
			for _, m := range st.Ring {
				if m.Joining {
					sawJoining = true
					return false
				}
			}
		}
		return true
	})
	// Keep reading after the join settled: now reads ask n6.
	settled := reads.Load()
	for reads.Load() < settled+2*keys && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d quorum reads during and after the join (n6 seen joining: %v)", reads.Load(), sawJoining)
	if n := stale.Load(); n > 0 {
		t.Fatalf("%d quorum reads missed an acknowledged write (first: %v)", n, firstStale.Load())
	}
	// n6 holds the keys it is a replica of: the handoff, not reads, put
	// them there (read repair and anti-entropy are off).
	missing := 0
	for i := range keys {
		k := fmt.Sprintf("j%04d", i)
		if six.Owns("n6", []byte(k), 3) && !holds(context.Background(), n6, k) {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("n6 lacks %d keys it is a replica of after the join settled", missing)
	}
}
