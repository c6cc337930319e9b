package test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A follower's status shows the other followers as the leader sees them
// (healthy, sync, positions), and says "no-quorum" when the control plane
// has lost its majority instead of "connecting".
func TestFollowerStatusShowsTheLeadersView(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2)")
	n1, n2, n3 := c.node("n1"), c.node("n2"), c.node("n3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := n1.redis()
	for i := range 20 {
		if err := r.Set(ctx, "k", i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c.waitCaughtUp(n1, n2, n3)
	target := n1.mustStatus().CommitLSN
	c.waitFor("n3's status shows n2 healthy, synchronous and caught up", 10*time.Second, func() bool {
		st, err := n3.status()
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ID == "n2" {
				return m.Healthy && m.Sync && m.DurableLSN >= target && m.State == "streaming"
			}
		}
		return false
	})
	st := n3.mustStatus()
	for _, m := range st.Members {
		if m.ID == "n1" && (m.Role != "leader" || !m.Healthy) {
			t.Fatalf("n3 shows the leader as %+v", m)
		}
	}
	// Idle and caught up, a follower does not lag: the gaps between
	// heartbeats are not replication lag.
	for range 10 {
		if st := n3.mustStatus(); st.LagSeconds != 0 {
			t.Fatalf("idle caught-up follower reports %.3fs of lag", st.LagSeconds)
		}
		time.Sleep(150 * time.Millisecond)
	}
	n1.kill()
	n2.kill()
	c.waitFor("n3 says the control plane has no quorum", 15*time.Second, func() bool {
		st, err := n3.status()
		return err == nil && st.State == "no-quorum" && strings.Contains(st.Reason, "quorum")
	})
}

// After a planned switchover the control plane's controller moves to the new
// data leader, so that losing the old leader's node (now a follower) does
// not stall writes while raft elects a controller.
func TestControllerFollowsTheDataLeader(t *testing.T) {
	// (n2,n3), not (*): with (*) the sync follower after the switchover
	// may be n1 (first in priority order), and then a write after n1 dies
	// rightly waits until n1 is judged failed and n3 promoted — a stall of
	// the commit policy, not of the control plane this test is about.
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)")
	n1, n2 := c.node("n1"), c.node("n2")
	out, err := exec.Command(binary, "failover", "--to", "n2", "--addr", n1.HTTP).CombinedOutput()
	if err != nil {
		t.Fatalf("failover --to n2: %v: %s", err, out)
	}
	c.waitFor("n2 leads and is the controller", 15*time.Second, func() bool {
		st, err := n2.status()
		return err == nil && st.Role == "leader" && st.Controller == "n2"
	})
	// n1 (follower and no longer controller) dies: writes on n2 go on.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := n2.redis()
	n1.kill()
	for i := range 300 {
		start := time.Now()
		if err := r.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatalf("write %d after the old leader's node died: %v", i, err)
		}
		// Known and not yet explained: the first write after the kill
		// sometimes takes about 1 s (972 ms seen), on this session's code
		// and on 68b04ea before it alike (2 of 8 runs each) — about the
		// failover timeout, so something still waits for the dead node's
		// timeout. Until that is found, the bound catches what this test
		// is about, writes stuck behind a control-plane failover (several
		// seconds), without failing on that 1 s wait.
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("write %d took %s after the old leader's node died", i, d)
		}
	}
}
