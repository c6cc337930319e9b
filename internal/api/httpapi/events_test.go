package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

func TestDiffStatus(t *testing.T) {
	base := func() engine.Status {
		return engine.Status{ID: "n2", Mode: engine.ModeSingleLeader, Role: "follower", Leader: "n1", Epoch: 1,
			SyncPolicy: "FIRST 1 (*)", Ack: "durable", Fallback: "block", SyncSet: []string{"n2"}, State: "streaming",
			Members: []engine.MemberStatus{{ID: "n1", Role: "leader"}, {ID: "n3", Role: "follower"}}}
	}
	type want struct{ kind, contains string }
	tests := []struct {
		name string
		prev func(*engine.Status)
		cur  func(*engine.Status)
		want []want
	}{
		{name: "nothing changed", want: nil},
		{name: "failover to another leader",
			cur:  func(s *engine.Status) { s.Epoch, s.Leader = 2, "n3" },
			want: []want{{EventLeaderChanged, "leader n1 → n3 (epoch 1 → 2)"}}},
		{name: "new epoch, same leader",
			cur:  func(s *engine.Status) { s.Epoch = 2 },
			want: []want{{EventEpochChanged, "epoch 1 → 2, leader n1"}}},
		{name: "first leader of a starting cluster",
			prev: func(s *engine.Status) { s.Epoch, s.Leader = 0, "" },
			want: []want{{EventEpochChanged, "epoch 0 → 1"}}},
		{name: "leader lost",
			cur:  func(s *engine.Status) { s.Leader = "" },
			want: []want{{EventLeaderLost, "was n1"}}},
		{name: "sync set order alone is no change",
			prev: func(s *engine.Status) { s.SyncSet = []string{"n2", "n3"} },
			cur:  func(s *engine.Status) { s.SyncSet = []string{"n3", "n2"} },
			want: nil},
		{name: "sync set replaced",
			cur:  func(s *engine.Status) { s.SyncSet = []string{"n3"} },
			want: []want{{EventSyncSetChanged, "[n2] → [n3]"}}},
		{name: "policy, ack and fallback in one event",
			cur:  func(s *engine.Status) { s.SyncPolicy, s.Ack, s.Fallback = "ALL", "applied", "async" },
			want: []want{{EventPolicyChanged, "commit policy FIRST 1 (*) → ALL; ack durable → applied; fallback block → async"}}},
		{name: "member joins and leaves",
			prev: func(s *engine.Status) { s.Members = s.Members[:1] },
			cur:  func(s *engine.Status) { s.Members = []engine.MemberStatus{{ID: "n3"}} },
			want: []want{{EventMemberAdded, "n3 joined"}, {EventMemberRemoved, "n1 left"}}},
		{name: "a starting node learning its members is no news",
			prev: func(s *engine.Status) { s.Epoch, s.Members = 0, nil },
			want: []want{{EventEpochChanged, "epoch 0 → 1"}}},
		{name: "writes blocked",
			cur:  func(s *engine.Status) { s.WritesBlocked, s.BlockedReason = true, "ALL needs 2 synchronous followers" },
			want: []want{{EventWritesBlocked, "writes blocked: ALL needs 2"}}},
		{name: "writes unblocked",
			prev: func(s *engine.Status) { s.WritesBlocked = true },
			want: []want{{EventWritesUnblocked, "commit again"}}},
		{name: "state change with its reason",
			cur:  func(s *engine.Status) { s.State, s.Reason = "connecting", "dial tcp: connection refused" },
			want: []want{{EventStateChanged, "n2: streaming → connecting: dial tcp: connection refused"}}},
		{name: "fallback seen by a follower",
			prev: func(s *engine.Status) { s.Members[1].ViewAgeSeconds = 0.2 },
			cur:  func(s *engine.Status) { s.Members[1].ViewAgeSeconds, s.FallbackActive = 0.4, true },
			want: []want{{EventFallback, "fallback to async"}}},
		{name: "a follower losing the leader's view is no fallback change",
			prev: func(s *engine.Status) { s.Members[1].ViewAgeSeconds, s.FallbackActive = 0.2, true },
			want: nil},
		{name: "a starting node learning the policy and sync set is no news",
			prev: func(s *engine.Status) { s.Epoch, s.SyncPolicy, s.SyncSet = 0, "async", nil },
			want: []want{{EventEpochChanged, "epoch 0 → 1"}}},
		{name: "the leader's fallback is its own event, not derived",
			prev: func(s *engine.Status) { s.Role, s.State = "leader", "leading" },
			cur:  func(s *engine.Status) { s.Role, s.State, s.FallbackActive = "leader", "leading", true },
			want: nil},
		{name: "link state change",
			prev: func(s *engine.Status) {
				s.Links = []engine.LinkStatus{{Site: "us", State: "streaming"}, {Site: "ap", State: "streaming"}}
			},
			cur: func(s *engine.Status) {
				s.Links = []engine.LinkStatus{{Site: "us", State: "broken", Reason: "refused"}, {Site: "eu", State: "connecting"}}
			},
			want: []want{{EventLinkState, "site us: streaming → broken: refused"}, {EventLinkAdded, "site eu added"}, {EventLinkRemoved, "site ap removed"}}},
		{name: "leaderless ring health and rebalance",
			prev: func(s *engine.Status) {
				s.Mode, s.Leader, s.Epoch, s.SyncSet = engine.ModeLeaderless, "", 0, nil
				s.Ring = []engine.RingMember{{ID: "n1", Healthy: true}, {ID: "n3", Healthy: false}}
			},
			cur: func(s *engine.Status) {
				s.Mode, s.Leader, s.Epoch, s.SyncSet = engine.ModeLeaderless, "", 0, nil
				s.Ring = []engine.RingMember{{ID: "n1", Healthy: false}, {ID: "n3", Healthy: true}}
				s.Rebalance = &engine.RebalanceStatus{State: "moving", Scanned: 10, Moved: 4}
			},
			want: []want{{EventMemberHealth, "n1 is unreachable"}, {EventMemberHealth, "n3 is reachable again"}, {EventRebalance, "(none) → moving: 4 keys moved"}}},
	}
	now := time.Unix(1000, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prev, cur := base(), base()
			if tc.prev != nil {
				tc.prev(&prev)
			}
			if tc.cur != nil {
				tc.cur(&cur)
			}
			got := diffStatus(&prev, &cur, now)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events %+v, want %d %+v", len(got), got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if got[i].Kind != w.kind || !strings.Contains(got[i].Message, w.contains) {
					t.Errorf("event %d = %s %q, want %s containing %q", i, got[i].Kind, got[i].Message, w.kind, w.contains)
				}
				if !got[i].Time.Equal(now) || got[i].Epoch != cur.Epoch {
					t.Errorf("event %d at %v epoch %d, want %v epoch %d", i, got[i].Time, got[i].Epoch, now, cur.Epoch)
				}
			}
		})
	}
}

// The leader's replication events join the timeline once each, in time
// order with the derived ones, however often the same status is observed.
func TestMonitorTimeline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := engine.Status{ID: "n1", Role: "leader", Leader: "n1", Epoch: 3, State: "leading"}
	m := newMonitor(func() engine.Status { return st })
	m.observe(st, t0)
	promoted := engine.StatusEvent{Time: t0.Add(500 * time.Millisecond), Kind: "sync-promoted", Follower: "n2", Message: "n2 now counts"}
	st.Events = []engine.StatusEvent{promoted}
	m.observe(st, t0.Add(time.Second))
	m.observe(st, t0.Add(2*time.Second))
	st.WritesBlocked, st.BlockedReason = true, "needs n3"
	unhealthy := engine.StatusEvent{Time: t0.Add(2500 * time.Millisecond), Kind: "follower-unhealthy", Follower: "n3", Message: "n3 is unhealthy"}
	st.Events = append(st.Events, unhealthy)
	m.observe(st, t0.Add(3*time.Second))

	got := m.timeline()
	kinds := make([]string, len(got))
	for i, e := range got {
		kinds[i] = e.Kind
	}
	want := []string{"sync-promoted", "follower-unhealthy", EventWritesBlocked}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("timeline kinds %v, want %v", kinds, want)
	}
	if got[0].Epoch != 3 {
		t.Errorf("leader event epoch %d, want 3", got[0].Epoch)
	}
	// The served timeline is a copy: changing it leaves the monitor's alone.
	got[0].Kind = "changed"
	if m.timeline()[0].Kind != "sync-promoted" {
		t.Error("timeline() returned the monitor's own slice")
	}
}

// Samples are one interval apart however often status is requested, the
// ring keeps the newest maxSamples, and since= returns only newer ones.
func TestMonitorSamples(t *testing.T) {
	st := engine.Status{ID: "n1", Role: "leader", Leader: "n1", Epoch: 1,
		Members: []engine.MemberStatus{{ID: "n2", Role: "follower", LagEntries: 7, LagSeconds: 0.5}}}
	m := newMonitor(func() engine.Status { return st })
	t0 := time.UnixMilli(1_000_000)
	for i := range maxSamples + 50 {
		now := t0.Add(time.Duration(i) * time.Second)
		st.CommitLSN = uint64(i)
		m.observe(st, now)
		m.observe(st, now.Add(100*time.Millisecond)) // a status request between ticks
	}
	all := m.history(0)
	if len(all) != maxSamples {
		t.Fatalf("%d samples kept, want %d", len(all), maxSamples)
	}
	for i := 1; i < len(all); i++ {
		if d := all[i].T - all[i-1].T; d != 1000 {
			t.Fatalf("samples %d and %d are %d ms apart, want 1000", i-1, i, d)
		}
	}
	if all[0].CommitLSN != 50 || all[len(all)-1].CommitLSN != maxSamples+49 {
		t.Errorf("kept commit LSNs %d..%d, want 50..%d", all[0].CommitLSN, all[len(all)-1].CommitLSN, maxSamples+49)
	}
	if lp := all[0].Lag["n2"]; lp.Entries != 7 || lp.Seconds != 0.5 {
		t.Errorf("lag of n2 = %+v, want 7 entries, 0.5 s", lp)
	}
	newer := m.history(all[len(all)-3].T)
	if len(newer) != 2 {
		t.Errorf("history(since) returned %d samples, want 2", len(newer))
	}
}

// A follower's rows carry lag only from a fresh relayed view of the
// leader's; without one their zeros are not lag and stay off the chart.
func TestSampleOfFollower(t *testing.T) {
	st := engine.Status{ID: "n2", Role: "follower", Members: []engine.MemberStatus{
		{ID: "n1", Role: "leader"},
		{ID: "n3", Role: "follower", LagEntries: 4, ViewAgeSeconds: 0.3},
		{ID: "n4", Role: "follower"},
	}, Links: []engine.LinkStatus{{Site: "us", LagEntries: 9}}}
	s := sampleOf(&st, time.UnixMilli(5))
	if len(s.Lag) != 2 || s.Lag["n3"].Entries != 4 || s.Lag["link:us"].Entries != 9 {
		t.Errorf("lag = %+v, want n3 (4 entries) and link:us (9 entries) only", s.Lag)
	}
}

// A leaderless node charts the hints it keeps per member.
func TestSampleOfLeaderless(t *testing.T) {
	three, zero := uint64(3), uint64(0)
	st := engine.Status{ID: "n1", Mode: engine.ModeLeaderless, Role: "replica", Members: []engine.MemberStatus{
		{ID: "n2", HintsPending: &three}, {ID: "n3", HintsPending: &zero}, {ID: "n4"},
	}}
	s := sampleOf(&st, time.UnixMilli(5))
	if len(s.Lag) != 2 || s.Lag["n2"].Entries != 3 || s.Lag["n3"].Entries != 0 {
		t.Errorf("lag = %+v, want n2: 3 hints, n3: 0", s.Lag)
	}
}
