package node

import (
	"testing"

	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/policy"
	"github.com/replicant-db/replicant/internal/replication"
)

func TestDecideRole(t *testing.T) {
	members := []control.Member{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}}
	state := func(leader string, epoch uint64, mods ...func(*control.State)) control.State {
		st := control.State{Index: 10, Members: members, Leader: leader, Epoch: epoch, Policy: mustCommit(t, "FIRST 1 (*)"), SyncSet: []string{"n2"}}
		for _, m := range mods {
			m(&st)
		}
		return st
	}
	leading := func(epoch uint64) runningRole { return runningRole{kind: roleLeader, epoch: epoch} }
	following := func(l string, epoch uint64) runningRole {
		return runningRole{kind: roleFollower, leader: l, epoch: epoch}
	}
	for _, tc := range []struct {
		name      string
		prev, st  control.State
		bootEpoch uint64
		cur       runningRole
		removed   bool
		want      roleAction
	}{
		{"no leader yet", control.State{}, state("", 0), 0, runningRole{}, false, actWait},
		{"appointed at start", control.State{}, state("n1", 1), 0, runningRole{}, false, actLead},
		{"still leading", state("n1", 1), state("n1", 1), 0, leading(1), false, actKeep},
		{"policy changed", state("n1", 1), state("n1", 1, func(s *control.State) { s.Policy = mustCommit(t, "all") }), 0, leading(1), false, actReconfigure},
		{"sync set changed", state("n1", 1), state("n1", 1, func(s *control.State) { s.SyncSet = []string{"n3"} }), 0, leading(1), false, actReconfigure},
		{"member joined", state("n1", 1), state("n1", 1, func(s *control.State) { s.Members = append(s.Members, control.Member{ID: "n4"}) }), 0, leading(1), false, actReconfigure},
		// A restart of the leader: its epoch is from an earlier life.
		{"restarted leader takes a fresh epoch", control.State{}, state("n1", 3), 3, runningRole{}, false, actReappoint},
		{"re-appointed after restart", state("n1", 3), state("n1", 4), 3, runningRole{}, false, actLead},
		{"failover to another node", state("n1", 1), state("n2", 2), 0, leading(1), false, actFollow},
		{"follower keeps following", state("n2", 2), state("n2", 2), 0, following("n2", 2), false, actKeep},
		{"same leader, new epoch: reconnect", state("n2", 2), state("n2", 3), 0, following("n2", 2), false, actFollow},
		{"follower promoted", state("n2", 2), state("n1", 3), 0, following("n2", 2), false, actLead},
		{"removed from the cluster", state("n2", 2), state("n2", 2, func(s *control.State) { s.Members = members[1:] }), 0, following("n2", 2), false, actRemoved},
		{"already removed", state("n2", 2), state("n2", 2, func(s *control.State) { s.Members = members[1:] }), 0, runningRole{}, true, actKeep},
		// Before the control plane has applied anything, an empty member
		// list is not a removal.
		{"empty state at start", control.State{}, control.State{}, 0, runningRole{}, false, actWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideRole(tc.prev, tc.st, "n1", tc.bootEpoch, tc.cur, tc.removed); got != tc.want {
				t.Fatalf("decideRole = %s, want %s", got, tc.want)
			}
		})
	}
}

func mustCommit(t *testing.T, s string) policy.Commit {
	t.Helper()
	p, err := policy.ParseCommit(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSwitchoverReady(t *testing.T) {
	prog := func(id string, durable uint64, connected bool) replication.FollowerProgress {
		return replication.FollowerProgress{ID: id, Durable: durable, Connected: connected}
	}
	for _, tc := range []struct {
		name         string
		last, commit uint64
		progress     []replication.FollowerProgress
		want         bool
	}{
		{"caught up", 10, 10, []replication.FollowerProgress{prog("n2", 10, true)}, true},
		{"not committed yet", 10, 9, []replication.FollowerProgress{prog("n2", 10, true)}, false},
		{"target behind", 10, 10, []replication.FollowerProgress{prog("n2", 9, true)}, false},
		{"target disconnected", 10, 10, []replication.FollowerProgress{prog("n2", 10, false)}, false},
		// The bug this function fixed: a target the leader has no
		// progress for counted as caught up.
		{"target unknown", 10, 10, []replication.FollowerProgress{prog("n3", 10, true)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := switchoverReady("n2", tc.last, tc.commit, tc.progress); got != tc.want {
				t.Fatalf("switchoverReady = %v, want %v", got, tc.want)
			}
		})
	}
}
