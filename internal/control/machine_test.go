package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/replicant-db/replicant/internal/policy"
)

func threeMembers() State {
	ms := []Member{testMember("n1", 1), testMember("n2", 2), testMember("n3", 3)}
	for i := range ms {
		ms[i].RaftID = RaftID(ms[i].ID)
	}
	return State{
		Members:  ms,
		Policy:   policy.Commit{Kind: policy.Async},
		Ack:      policy.AckDurable,
		Fallback: policy.FallbackBlock,
		Leader:   "n1",
		Epoch:    1,
	}
}

func cmdBytes(t *testing.T, c command) []byte {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMachineCommands(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmd     command
		want    func(State) bool
		wantErr error
		epoch   uint64
	}{
		{
			name: "policy keeps empty fields",
			cmd:  command{Op: opPolicy, Policy: "FIRST 1 (n2)"},
			want: func(s State) bool {
				return s.Policy.String() == "FIRST 1 (n2)" && s.Ack == policy.AckDurable && s.Fallback == policy.FallbackBlock
			},
		},
		{
			name: "ack and fallback",
			cmd:  command{Op: opPolicy, Ack: "applied", Fallback: "async"},
			want: func(s State) bool {
				return s.Policy.String() == "async" && s.Ack == policy.AckApplied && s.Fallback == policy.FallbackAsync
			},
		},
		{name: "bad ack", cmd: command{Op: opPolicy, Ack: "x"}, wantErr: ErrInvalidArgument},
		{name: "bad fallback", cmd: command{Op: opPolicy, Fallback: "x"}, wantErr: ErrInvalidArgument},
		{
			name: "sync set in the current epoch",
			cmd:  command{Op: opSyncSet, Epoch: 1, Set: []string{"n3", "n2"}},
			want: func(s State) bool { return slices.Equal(s.SyncSet, []string{"n3", "n2"}) },
		},
		{
			name: "empty sync set",
			cmd:  command{Op: opSyncSet, Epoch: 1},
			want: func(s State) bool { return s.SyncSet == nil },
		},
		{name: "sync set, old epoch", cmd: command{Op: opSyncSet, Epoch: 0, Set: []string{"n2"}}, wantErr: ErrStaleEpoch},
		{name: "sync set, future epoch", cmd: command{Op: opSyncSet, Epoch: 2, Set: []string{"n2"}}, wantErr: ErrStaleEpoch},
		{name: "sync set, unknown member", cmd: command{Op: opSyncSet, Epoch: 1, Set: []string{"n4"}}, wantErr: ErrUnknownMember},
		{name: "sync set, leader", cmd: command{Op: opSyncSet, Epoch: 1, Set: []string{"n1"}}, wantErr: ErrInvalidArgument},
		{
			name:  "appoint",
			cmd:   command{Op: opAppoint, Leader: "n3", Epoch: 1},
			want:  func(s State) bool { return s.Leader == "n3" && s.Epoch == 2 && s.SyncSet == nil },
			epoch: 2,
		},
		{name: "appoint, stale", cmd: command{Op: opAppoint, Leader: "n3", Epoch: 0}, wantErr: ErrStaleEpoch},
		{name: "appoint, unknown", cmd: command{Op: opAppoint, Leader: "n9", Epoch: 1}, wantErr: ErrUnknownMember},
		{name: "unknown op", cmd: command{Op: "drop-tables"}, wantErr: ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine()
			m.state = threeMembers()
			m.state.SyncSet = []string{"n2"}
			before := m.state.Clone()
			tc.cmd.Req = "r1"
			req, res, dup := m.applyCommand(cmdBytes(t, tc.cmd))
			if req != "r1" || dup {
				t.Fatalf("req %q dup %v", req, dup)
			}
			if tc.wantErr != nil {
				if !errors.Is(res.err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", res.err, tc.wantErr)
				}
				if !equalState(m.state, before) {
					t.Fatalf("a rejected command changed the state: %+v", m.state)
				}
				return
			}
			if res.err != nil || !tc.want(m.state) || res.epoch != tc.epoch {
				t.Fatalf("res %+v state %+v", res, m.state)
			}
			// The same request again is a duplicate and changes nothing.
			after := m.state.Clone()
			if _, _, dup := m.applyCommand(cmdBytes(t, tc.cmd)); !dup || !equalState(m.state, after) {
				t.Fatalf("re-sent request applied again: dup=%v", dup)
			}
		})
	}
}

func equalState(a, b State) bool {
	return slices.Equal(a.Members, b.Members) && a.Policy.Equal(b.Policy) && a.Ack == b.Ack &&
		a.Fallback == b.Fallback && a.Leader == b.Leader && a.Epoch == b.Epoch &&
		slices.Equal(a.SyncSet, b.SyncSet) && a.Index == b.Index
}

func TestMachineUndecodable(t *testing.T) {
	m := newMachine()
	if _, res, _ := m.applyCommand([]byte("{not json")); !errors.Is(res.err, ErrInvalidArgument) {
		t.Fatalf("err = %v", res.err)
	}
}

func confChange(t *testing.T, typ raftpb.ConfChangeType, node uint64, ctx *confContext) *raftpb.ConfChange {
	t.Helper()
	cc := &raftpb.ConfChange{Type: typ.Enum(), NodeId: new(node)}
	if ctx != nil {
		b, err := json.Marshal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cc.Context = b
	}
	return cc
}

func TestMachineConfChanges(t *testing.T) {
	n4 := testMember("n4", 4)
	n4.RaftID = RaftID("n4")
	n2 := threeMembers().Members[1]
	conflicting := n2
	conflicting.PeerAddr = "elsewhere:1"
	voters := &raftpb.ConfState{Voters: []uint64{RaftID("n1"), RaftID("n2"), RaftID("n3")}}
	for _, tc := range []struct {
		name    string
		cc      *raftpb.ConfChange
		cs      *raftpb.ConfState
		wantErr error
		members []string
	}{
		{name: "add", cc: confChange(t, raftpb.ConfChangeAddNode, n4.RaftID, &confContext{Member: &n4, Req: "a"}), members: []string{"n1", "n2", "n3", "n4"}},
		{name: "add the same member again", cc: confChange(t, raftpb.ConfChangeAddNode, n2.RaftID, &confContext{Member: &n2, Req: "a"}), members: []string{"n1", "n2", "n3"}},
		{name: "add a conflicting member", cc: confChange(t, raftpb.ConfChangeAddNode, n2.RaftID, &confContext{Member: &conflicting}), wantErr: ErrMemberConflict},
		{name: "add without member", cc: confChange(t, raftpb.ConfChangeAddNode, n4.RaftID, &confContext{}), wantErr: ErrInvalidArgument},
		{name: "add with a wrong raft id", cc: confChange(t, raftpb.ConfChangeAddNode, 42, &confContext{Member: &n4}), wantErr: ErrInvalidArgument},
		{name: "raft id 0", cc: confChange(t, raftpb.ConfChangeAddNode, 0, &confContext{Member: &n4}), wantErr: ErrInvalidArgument},
		{name: "undecodable context", cc: &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(n4.RaftID), Context: []byte("{")}, wantErr: ErrInvalidArgument},
		{name: "remove", cc: confChange(t, raftpb.ConfChangeRemoveNode, RaftID("n3"), &confContext{ID: "n3"}), members: []string{"n1", "n2"}},
		{name: "remove the leader", cc: confChange(t, raftpb.ConfChangeRemoveNode, RaftID("n1"), &confContext{ID: "n1"}), wantErr: ErrRemoveLeader},
		{name: "remove unknown", cc: confChange(t, raftpb.ConfChangeRemoveNode, RaftID("n8"), &confContext{ID: "n8"}), wantErr: ErrUnknownMember},
		{name: "remove with mismatched id", cc: confChange(t, raftpb.ConfChangeRemoveNode, RaftID("n2"), &confContext{ID: "n3"}), wantErr: ErrInvalidArgument},
		{name: "remove the last voter", cc: confChange(t, raftpb.ConfChangeRemoveNode, RaftID("n3"), &confContext{ID: "n3"}), cs: &raftpb.ConfState{Voters: []uint64{RaftID("n3")}}, wantErr: ErrInvalidArgument},
		{name: "joint configuration", cc: confChange(t, raftpb.ConfChangeAddNode, n4.RaftID, &confContext{Member: &n4}), cs: &raftpb.ConfState{Voters: voters.Voters, VotersOutgoing: []uint64{1}}, wantErr: ErrInvalidArgument},
		{name: "learner", cc: confChange(t, raftpb.ConfChangeAddLearnerNode, n4.RaftID, &confContext{Member: &n4}), wantErr: ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine()
			m.state = threeMembers()
			m.state.SyncSet = []string{"n3", "n2"}
			cs := tc.cs
			if cs == nil {
				cs = voters
			}
			d := m.decideConfChange(tc.cc, cs)
			if tc.wantErr != nil {
				if d.accept || !errors.Is(d.err, tc.wantErr) {
					t.Fatalf("accept %v err %v, want %v", d.accept, d.err, tc.wantErr)
				}
				return
			}
			if !d.accept || d.err != nil {
				t.Fatalf("accept %v err %v", d.accept, d.err)
			}
			m.commitConfChange(tc.cc, d)
			if got := memberIDs(m.state); !slices.Equal(got, tc.members) {
				t.Fatalf("members %v, want %v", got, tc.members)
			}
			for _, id := range m.state.SyncSet {
				if _, ok := m.state.Member(id); !ok {
					t.Fatalf("sync set %v names a removed member", m.state.SyncSet)
				}
			}
			if d.ctx.Req != "" {
				if d2 := m.decideConfChange(tc.cc, cs); !d2.dup || d2.accept {
					t.Fatalf("re-sent conf change: %+v", d2)
				}
			}
		})
	}
}

func TestMachineBootstrapInit(t *testing.T) {
	m := newMachine()
	n1 := Member{ID: "n1", RaftID: RaftID("n1")}
	n2 := Member{ID: "n2", RaftID: RaftID("n2")}
	cs := &raftpb.ConfState{}
	for i, ctx := range []*confContext{
		{Member: &n1, Init: &initSettings{Policy: "all", Ack: "applied", Fallback: "async"}},
		{Member: &n2, Init: &initSettings{Policy: "ignored", Ack: "received", Fallback: "block"}},
	} {
		cc := confChange(t, raftpb.ConfChangeAddNode, ctx.Member.RaftID, ctx)
		d := m.decideConfChange(cc, cs)
		if !d.accept {
			t.Fatalf("bootstrap entry %d: %v", i, d.err)
		}
		m.commitConfChange(cc, d)
		cs.Voters = append(cs.Voters, ctx.Member.RaftID)
	}
	if s := m.state; s.Policy.String() != "all" || s.Ack != policy.AckApplied || s.Fallback != policy.FallbackAsync || len(s.Members) != 2 {
		t.Fatalf("bootstrap state %+v", s)
	}
}

func TestMachineSnapshotRoundTrip(t *testing.T) {
	m := newMachine()
	m.state = threeMembers()
	m.state.Index = 77
	for i := range recentRequests + 10 {
		m.remember(fmt.Sprintf("r%d", i))
	}
	if len(m.recent) != recentRequests || len(m.seen) != recentRequests || m.duplicate("r0") || !m.duplicate("r1030") {
		t.Fatalf("recent window: %d %d", len(m.recent), len(m.seen))
	}
	b, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	m2 := newMachine()
	if err := m2.restore(b); err != nil {
		t.Fatal(err)
	}
	if !equalState(m.state, m2.state) || !slices.Equal(m.recent, m2.recent) || !m2.duplicate("r1030") {
		t.Fatalf("restored %+v", m2.state)
	}
	if err := m2.restore([]byte("nope")); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
}

func TestRaftIDNeverZero(t *testing.T) {
	seen := map[uint64]string{}
	for i := range 1000 {
		id := fmt.Sprintf("node-%d", i)
		r := RaftID(id)
		if r == 0 {
			t.Fatalf("RaftID(%q) = 0", id)
		}
		if o, ok := seen[r]; ok {
			t.Fatalf("RaftID collision %q %q", o, id)
		}
		seen[r] = id
		if RaftID(id) != r {
			t.Fatal("RaftID is not deterministic")
		}
	}
}

// A member added as joining stops joining once every member has reported
// a handoff for the current membership; reports for another membership,
// or from a non-member, do not count; removing a holdout changes the
// membership, so the others report again for the new one.
func TestMachineHandoffSettlesJoins(t *testing.T) {
	voters := &raftpb.ConfState{Voters: []uint64{RaftID("n1"), RaftID("n2"), RaftID("n3")}}
	add := func(m *machine, id string, idx int) {
		t.Helper()
		mb := testMember(id, idx)
		mb.RaftID, mb.Joining = RaftID(id), true
		cc := confChange(t, raftpb.ConfChangeAddNode, mb.RaftID, &confContext{Member: &mb})
		d := m.decideConfChange(cc, voters)
		if !d.accept {
			t.Fatalf("add %s: %v", id, d.err)
		}
		m.commitConfChange(cc, d)
	}
	report := func(m *machine, id, membership string) error {
		_, res, _ := m.applyCommand(cmdBytes(t, command{Op: opHandoff, Member: &Member{ID: id}, Membership: membership}))
		return res.err
	}
	joining := func(m *machine) []string {
		var out []string
		for _, mb := range m.state.Members {
			if mb.Joining {
				out = append(out, mb.ID)
			}
		}
		return out
	}
	m := newMachine()
	m.state = threeMembers()
	add(m, "n4", 4)
	cur := MembershipID([]string{"n4", "n1", "n2", "n3"})
	if cur != "n1,n2,n3,n4" {
		t.Fatalf("MembershipID = %q", cur)
	}
	if got := joining(m); !slices.Equal(got, []string{"n4"}) {
		t.Fatalf("joining %v after the add", got)
	}
	for _, id := range []string{"n1", "n2", "n4"} {
		if err := report(m, id, cur); err != nil {
			t.Fatal(err)
		}
	}
	if err := report(m, "n3", "n1,n2,n3"); err != nil { // an older membership
		t.Fatal(err)
	}
	if got := joining(m); !slices.Equal(got, []string{"n4"}) {
		t.Fatalf("joining %v: settled without n3's report for the current membership", got)
	}
	if err := report(m, "n9", cur); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("a report from a non-member: %v", err)
	}
	if err := report(m, "n3", cur); err != nil {
		t.Fatal(err)
	}
	if got := joining(m); got != nil {
		t.Fatalf("joining %v after every member reported", got)
	}
	// The add of n4 again (a retried join) is not a conflict.
	n4 := testMember("n4", 4)
	n4.RaftID, n4.Joining = RaftID("n4"), true
	if d := m.decideConfChange(confChange(t, raftpb.ConfChangeAddNode, n4.RaftID, &confContext{Member: &n4}), voters); d.err != nil {
		t.Fatalf("re-adding a member that finished joining: %v", d.err)
	}

	// A join whose last holdout is removed settles.
	add(m, "n5", 5)
	cur = MembershipID(memberIDs(m.state))
	for _, id := range []string{"n1", "n2", "n4", "n5"} {
		if err := report(m, id, cur); err != nil {
			t.Fatal(err)
		}
	}
	rm := confChange(t, raftpb.ConfChangeRemoveNode, RaftID("n3"), &confContext{ID: "n3"})
	d := m.decideConfChange(rm, &raftpb.ConfState{Voters: []uint64{RaftID("n1"), RaftID("n2"), RaftID("n3"), RaftID("n4"), RaftID("n5")}})
	if !d.accept {
		t.Fatal(d.err)
	}
	m.commitConfChange(rm, d)
	// The membership changed with the removal: n1,n2,n4,n5 reported for
	// the one with n3, so n5 still joins until they report again.
	if got := joining(m); !slices.Equal(got, []string{"n5"}) {
		t.Fatalf("joining %v after removing n3", got)
	}
	cur = MembershipID(memberIDs(m.state))
	for _, id := range []string{"n1", "n2", "n4", "n5"} {
		if err := report(m, id, cur); err != nil {
			t.Fatal(err)
		}
	}
	if got := joining(m); got != nil {
		t.Fatalf("joining %v", got)
	}
	if _, ok := m.state.Handoffs["n3"]; ok {
		t.Fatalf("the removed member's report is kept: %v", m.state.Handoffs)
	}
}
