package test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/control"
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
	// The leader's row is what n3 knows from its own stream: the leader
	// holds (and has applied) at least the commit LSN, healthy while the
	// stream is up; the leader never counts for the sync policy.
	c.waitFor("n3's status shows n1 as the healthy leader holding LSN "+fmt.Sprint(target), 10*time.Second, func() bool {
		st, err := n3.status()
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ID == "n1" {
				return m.Role == "leader" && m.Healthy && !m.Sync && m.State == "leading" &&
					m.ReceivedLSN >= target && m.AppliedLSN >= target && m.DurableLSN >= target && m.LagEntries == 0
			}
		}
		return false
	})
	if st := n3.mustStatus(); st.Role != "follower" || st.Leader != "n1" || st.LagEntries != 0 {
		t.Fatalf("n3 reports itself as %s following %q, %d entries behind", st.Role, st.Leader, st.LagEntries)
	}
	// `status --addr <follower>` shows the same: n1 leads (no sync column
	// for it, rather than "async"), n2 is synchronous and healthy with
	// its LSNs.
	out, err := exec.Command(binary, "status", "--addr", n3.HTTP).CombinedOutput()
	if err != nil {
		t.Fatalf("status --addr n3: %v: %s", err, out)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 7 && (f[0] == "n1" || f[0] == "n2") {
			rows[f[0]] = f
		}
	}
	num := func(s string) uint64 {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("status --addr n3: %q is not a number:\n%s", s, out)
		}
		return v
	}
	// MEMBER ROLE SYNC HEALTHY RECEIVED DURABLE APPLIED …
	if r := rows["n1"]; len(r) < 7 || r[1] != "leader" || r[2] != "-" || r[3] != "true" || num(r[4]) < target || num(r[6]) < target {
		t.Fatalf("status --addr n3 shows the leader as %q:\n%s", r, out)
	}
	if r := rows["n2"]; len(r) < 7 || r[1] != "follower" || r[2] != "sync" || r[3] != "true" || num(r[5]) < target || num(r[6]) < target {
		t.Fatalf("status --addr n3 shows the sync follower as %q:\n%s", r, out)
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
	// n3's log says so once, with member names: raft's own lines name n1–n3
	// (never their hex raft ids), and while elections keep failing they
	// stay at DEBUG.
	c.waitFor("n3 warns that it reaches no majority of the control plane", 10*time.Second, func() bool {
		return strings.Contains(n3.Log.String(), `level=WARN msg="control: no controller: this member reaches no majority`)
	})
	log := n3.Log.String()
	for _, id := range []string{"n1", "n2", "n3"} {
		if hex := fmt.Sprintf("%x", control.RaftID(id)); strings.Contains(log, hex) {
			t.Errorf("n3's log holds %s's raft id %s instead of its name", id, hex)
		}
	}
	if !strings.Contains(log, `msg="n3 became follower at term`) || !strings.Contains(log, `msg="control: controller elected"`) {
		t.Errorf("n3's log lacks raft's role changes with member names")
	}
	elections := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "n3 is starting a new election") {
			elections++
			if !strings.Contains(line, "level=DEBUG") {
				t.Errorf("raft's election chatter above DEBUG: %s", line)
			}
		}
	}
	if elections == 0 {
		t.Errorf("precondition: n3 (logging at debug) logged no election while it had no majority")
	}
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
