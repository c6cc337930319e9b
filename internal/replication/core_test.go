package replication

import (
	"github.com/replicant-db/replicant/internal/policy"

	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var coreT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// at is coreT0 plus s seconds.
func at(s float64) time.Time { return coreT0.Add(time.Duration(s * float64(time.Second))) }

func mustPolicy(t interface {
	Helper()
	Fatal(...any)
}, s string) policy.Commit {
	t.Helper()
	p, err := policy.ParseCommit(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// coreHarness drives a Core step by step and plays the control plane: it
// keeps the committed sync set C, optionally commits every proposal at
// once, and checks the invariants after every Ready.
type coreHarness struct {
	t          *testing.T
	c          *Core
	C          []string
	autoCommit bool
	commit     uint64
	events     []Event
	proposals  [][]string
}

func newHarness(t *testing.T, cfg CoreConfig) *coreHarness {
	t.Helper()
	if cfg.SyncTimeout == 0 {
		cfg.SyncTimeout = 10 * time.Second
	}
	h := &coreHarness{t: t, c: NewCore(cfg, coreT0), C: uniqueNames(cfg.CommittedSyncSet)}
	h.ready()
	return h
}

// ready drains the core, records its outputs and checks the invariants.
func (h *coreHarness) ready() Ready {
	h.t.Helper()
	r := h.c.Ready()
	if r.CommitLSN < h.commit {
		h.t.Fatalf("commit went back from %d to %d", h.commit, r.CommitLSN)
	}
	if r.CommitLSN > h.c.localDurable {
		h.t.Fatalf("commit %d above local durable %d", r.CommitLSN, h.c.localDurable)
	}
	if r.CommitLSN != h.c.CommitLSN() {
		h.t.Fatalf("Ready().CommitLSN %d != CommitLSN() %d", r.CommitLSN, h.c.CommitLSN())
	}
	h.commit = r.CommitLSN
	if !isSubset(h.c.counted, h.C) {
		h.t.Fatalf("counted %v not within the committed sync set %v", h.c.counted, h.C)
	}
	h.events = append(h.events, r.Events...)
	if r.ProposeSyncSet != nil {
		h.proposals = append(h.proposals, r.ProposeSyncSet)
		if h.autoCommit {
			h.commitSet(at(0), r.ProposeSyncSet...)
		}
	}
	return r
}

// commitSet plays the control plane committing set.
func (h *coreHarness) commitSet(now time.Time, set ...string) {
	h.t.Helper()
	h.C = uniqueNames(set)
	h.c.SyncSetCommitted(set, now)
	h.ready()
}

func (h *coreHarness) wantCommit(want uint64) {
	h.t.Helper()
	h.ready()
	if got := h.c.CommitLSN(); got != want {
		h.t.Fatalf("commit = %d, want %d", got, want)
	}
}

// takeProposals returns and forgets the proposals seen so far.
func (h *coreHarness) takeProposals() [][]string {
	h.ready()
	p := h.proposals
	h.proposals = nil
	return p
}

func (h *coreHarness) wantProposals(want ...[]string) {
	h.t.Helper()
	got := h.takeProposals()
	if len(got) != len(want) {
		h.t.Fatalf("proposals %v, want %v", got, want)
	}
	for i := range got {
		if !slices.Equal(got[i], want[i]) {
			h.t.Fatalf("proposals %v, want %v", got, want)
		}
	}
}

func (h *coreHarness) countEvents(kind, follower string) int {
	h.ready()
	n := 0
	for _, e := range h.events {
		if e.Kind == kind && e.Follower == follower {
			n++
		}
	}
	return n
}

func (h *coreHarness) progress(now time.Time, id string) FollowerProgress {
	h.t.Helper()
	for _, p := range h.c.Progress(now) {
		if p.ID == id {
			return p
		}
	}
	h.t.Fatalf("no progress for %s", id)
	return FollowerProgress{}
}

func TestCorePolicyAckMatrix(t *testing.T) {
	// Positions acknowledged, as (received, durable, applied).
	acks := map[string][3]uint64{"n2": {10, 6, 4}, "n3": {8, 8, 8}, "n4": {5, 3, 2}}
	tests := []struct {
		policy string
		want   [3]uint64 // commit per ack level once the leader is durable at 10
	}{
		{"async", [3]uint64{10, 10, 10}},
		{"all", [3]uint64{5, 3, 2}},
		{"FIRST 1 (n2,n3)", [3]uint64{10, 6, 4}},
		{"FIRST 1 (n3,n2)", [3]uint64{8, 8, 8}},
		{"FIRST 2 (n2,n3,n4)", [3]uint64{8, 6, 4}},
		{"FIRST 2 (*)", [3]uint64{8, 6, 4}},
		{"ANY 1 (n2,n3)", [3]uint64{10, 8, 8}},
		{"ANY 1 (n4)", [3]uint64{5, 3, 2}},
		{"ANY 2 (*)", [3]uint64{8, 6, 4}},
		{"ANY 2 (n2,n4)", [3]uint64{5, 3, 2}},
	}
	for _, tt := range tests {
		for level := policy.AckReceived; level <= policy.AckApplied; level++ {
			t.Run(fmt.Sprintf("%s/%s", tt.policy, level), func(t *testing.T) {
				h := newHarness(t, CoreConfig{
					Policy: mustPolicy(t, tt.policy), Ack: level,
					Followers:        []string{"n2", "n3", "n4"},
					CommittedSyncSet: []string{"n2", "n3", "n4"},
				})
				h.autoCommit = true
				h.c.Appended(10, at(0))
				for _, id := range []string{"n2", "n3", "n4"} {
					h.c.Connected(id, 0, at(0))
				}
				h.wantCommit(0)
				h.c.LocalDurable(7)
				for _, id := range []string{"n2", "n3", "n4"} {
					a := acks[id]
					h.c.Ack(id, a[0], a[1], a[2], at(0.5))
				}
				// Commit never passes the leader's own fsync.
				h.wantCommit(min(7, tt.want[level]))
				h.c.LocalDurable(10)
				h.wantCommit(tt.want[level])
				// Lower positions are ignored.
				h.c.Ack("n3", 1, 1, 1, at(1))
				h.c.Ack("n2", 0, 0, 0, at(1))
				h.wantCommit(tt.want[level])
				if p := h.progress(at(1), "n3"); p.Received != 8 || p.Durable != 8 || p.Applied != 8 {
					t.Fatalf("n3 progress after lower ack: %+v", p)
				}
				for _, id := range []string{"n2", "n3", "n4"} {
					h.c.Ack(id, 10, 10, 10, at(2))
				}
				h.wantCommit(10)
				if blocked, why := h.c.Blocked(); blocked {
					t.Fatalf("blocked: %s", why)
				}
			})
		}
	}
}

func TestCoreSemiSyncPromotion(t *testing.T) {
	h := newHarness(t, CoreConfig{
		Policy: mustPolicy(t, "FIRST 1 (n2,n3)"), Ack: policy.AckDurable,
		Followers: []string{"n2", "n3", "n4"}, CommittedSyncSet: []string{"n2"},
	})
	for _, id := range []string{"n2", "n3", "n4"} {
		h.c.Connected(id, 0, at(0))
	}
	h.c.Appended(5, at(0))
	h.c.LocalDurable(5)
	for _, id := range []string{"n2", "n3", "n4"} {
		h.c.Ack(id, 5, 5, 5, at(0.1))
	}
	h.wantCommit(5)
	h.wantProposals()
	if n := h.countEvents(EventSyncPromoted, "n2"); n != 1 {
		t.Fatalf("%d sync-promoted events for n2", n)
	}

	// n2 dies: add n3 first.
	h.c.Disconnected("n2", at(1))
	h.wantProposals([]string{"n2", "n3"})
	if n := h.countEvents(EventSyncDemoted, "n2"); n != 1 {
		t.Fatalf("%d sync-demoted events for n2", n)
	}
	h.c.Appended(8, at(1))
	h.c.LocalDurable(8)
	h.c.Ack("n3", 8, 8, 8, at(1.1))
	h.c.Ack("n4", 8, 8, 8, at(1.1))
	h.wantCommit(5) // n3 is not in the committed sync set yet
	blocked, why := h.c.Blocked()
	if !blocked || !strings.Contains(why, "n2: disconnected 0.1s ago") ||
		!strings.Contains(why, "n3: healthy, waiting for the control plane to add it to the sync set") {
		t.Fatalf("Blocked() = %v, %q", blocked, why)
	}
	// No re-proposal while the proposal is outstanding.
	h.c.Tick(at(2))
	h.wantProposals()

	// The control plane holds {n2,n3}: n3 counts, then n2 is removed.
	h.commitSet(at(2.5), "n2", "n3")
	h.wantCommit(8)
	h.wantProposals([]string{"n3"})
	if n := h.countEvents(EventSyncPromoted, "n3"); n != 1 {
		t.Fatalf("%d sync-promoted events for n3", n)
	}
	h.commitSet(at(2.6), "n3")
	h.wantProposals()
	if blocked, why := h.c.Blocked(); blocked {
		t.Fatalf("blocked: %s", why)
	}

	// n2 returns (lower, after truncating a divergent suffix): it takes
	// its place back without stalling commits on the way.
	h.c.Connected("n2", 4, at(3))
	h.wantProposals([]string{"n2", "n3"})
	h.c.Appended(9, at(3))
	h.c.LocalDurable(9)
	h.c.Ack("n3", 9, 9, 9, at(3.1))
	h.wantCommit(9) // n3 still counts until n2 is in the sync set
	if p := h.progress(at(3.1), "n3"); !p.Sync {
		t.Fatalf("n3 not sync: %+v", p)
	}
	h.c.Ack("n2", 9, 9, 9, at(3.2))
	h.commitSet(at(3.3), "n2", "n3")
	h.wantProposals([]string{"n2"})
	if p := h.progress(at(3.3), "n2"); !p.Sync {
		t.Fatalf("n2 not sync: %+v", p)
	}
	if p := h.progress(at(3.3), "n3"); p.Sync {
		t.Fatalf("n3 still sync: %+v", p)
	}
	h.commitSet(at(3.4), "n2")
	h.c.Appended(10, at(4))
	h.c.LocalDurable(10)
	h.c.Ack("n3", 10, 10, 10, at(4))
	h.wantCommit(9) // n3 no longer counts
	h.c.Ack("n2", 10, 10, 10, at(4))
	h.wantCommit(10)
	h.wantProposals()

	// n4 is not in the policy's list: it never became synchronous.
	if h.countEvents(EventSyncPromoted, "n4") != 0 {
		t.Fatal("n4 was promoted")
	}
}

func TestCoreRemovalWaitsForCatchUp(t *testing.T) {
	h := newHarness(t, CoreConfig{
		Policy:    mustPolicy(t, "FIRST 1 (n2,n3)"),
		Followers: []string{"n2", "n3"}, CommittedSyncSet: []string{"n2"},
		Ack: policy.AckDurable,
	})
	h.c.Connected("n2", 0, at(0))
	h.c.Connected("n3", 0, at(0))
	h.c.Appended(10, at(0))
	h.c.LocalDurable(10)
	h.c.Ack("n2", 10, 10, 10, at(0.1))
	h.c.Ack("n3", 3, 3, 3, at(0.1))
	h.wantCommit(10)
	h.c.Disconnected("n2", at(1))
	h.wantProposals([]string{"n2", "n3"})
	h.commitSet(at(1.1), "n2", "n3")
	// n3 counts now but does not hold 10 yet: n2 stays in the sync set,
	// so a failover could still find every acknowledged write.
	h.wantProposals()
	h.c.Ack("n3", 9, 9, 9, at(1.2))
	h.wantProposals()
	h.wantCommit(10)
	h.c.Ack("n3", 10, 10, 10, at(1.3))
	h.wantProposals([]string{"n3"})
	h.c.Appended(12, at(1.4))
	h.c.LocalDurable(12)
	h.c.Ack("n3", 12, 12, 12, at(1.5))
	h.wantCommit(12)
}

func TestCoreProposalRearm(t *testing.T) {
	h := newHarness(t, CoreConfig{
		Policy:    mustPolicy(t, "FIRST 1 (n2,n3)"),
		Followers: []string{"n2", "n3"}, CommittedSyncSet: []string{"n2"},
	})
	h.c.Connected("n3", 0, at(0))
	h.wantProposals([]string{"n2", "n3"})
	h.c.Tick(at(5))
	h.c.Tick(at(10))
	h.wantProposals()
	// A set other than the proposal does not end it.
	h.commitSet(at(10), "n2")
	h.wantProposals()
	h.c.Ack("n3", 0, 0, 0, at(10.5))
	h.c.Tick(at(10.5))
	h.wantProposals([]string{"n2", "n3"})
	h.c.Tick(at(15))
	h.wantProposals()
	h.commitSet(at(15), "n2", "n3")
	h.wantProposals([]string{"n3"})
}

func TestCoreNeverCountsOutsideCommittedSet(t *testing.T) {
	for _, policy := range []string{"ANY 1 (n2,n3)", "all"} {
		t.Run(policy, func(t *testing.T) {
			h := newHarness(t, CoreConfig{
				Policy:    mustPolicy(t, policy),
				Followers: []string{"n2", "n3"},
			})
			h.c.Connected("n2", 0, at(0))
			h.c.Connected("n3", 0, at(0))
			h.c.Appended(5, at(0))
			h.c.LocalDurable(5)
			h.c.Ack("n2", 5, 5, 5, at(0.1))
			h.c.Ack("n3", 5, 5, 5, at(0.1))
			h.wantCommit(0)
			h.wantProposals([]string{"n2", "n3"})
			h.commitSet(at(0.2), "n3")
			if policy == "ANY 1 (n2,n3)" {
				h.wantCommit(5)
			} else {
				h.wantCommit(0)
			}
			h.commitSet(at(0.3), "n2", "n3")
			h.wantCommit(5)
		})
	}
}

// twoFollowerScenario runs n2 and n3 healthy until 20s, then has n3 fall
// 1203 entries behind while n2 disconnects.
func twoFollowerScenario(t *testing.T, fb policy.Fallback) *coreHarness {
	h := newHarness(t, CoreConfig{
		Policy: mustPolicy(t, "FIRST 1 (n2,n3)"), Ack: policy.AckDurable, Fallback: fb,
		Followers: []string{"n2", "n3"}, CommittedSyncSet: []string{"n2"},
	})
	h.autoCommit = true
	h.c.Connected("n2", 0, at(0))
	h.c.Connected("n3", 0, at(0))
	h.c.Appended(7, at(0))
	h.c.LocalDurable(7)
	h.c.Ack("n2", 7, 7, 7, at(1))
	h.c.Ack("n3", 7, 7, 7, at(1))
	h.wantCommit(7)
	h.c.Appended(1210, at(10))
	for _, s := range []float64{9, 16, 19} {
		h.c.Ack("n2", 1210, 1210, 1210, at(s))
		h.c.Ack("n3", 7, 7, 7, at(s))
		h.c.Tick(at(s))
	}
	h.c.Tick(at(20))
	if p := h.progress(at(20), "n3"); !p.Healthy {
		t.Fatalf("n3 unhealthy at exactly SyncTimeout: %+v", p)
	}
	h.c.Tick(at(20.5))
	if p := h.progress(at(20.5), "n3"); p.Healthy || p.State != StateLagging || p.LagEntries != 1203 {
		t.Fatalf("n3 progress: %+v", p)
	}
	h.c.Disconnected("n2", at(20.5))
	h.c.LocalDurable(1210)
	return h
}

func TestCoreFallbackBlock(t *testing.T) {
	h := twoFollowerScenario(t, policy.FallbackBlock)
	h.c.Tick(at(23.7))
	h.wantCommit(7)
	blocked, why := h.c.Blocked()
	want := "FIRST 1 (n2,n3) needs 1 synchronous follower with durable ack; healthy: none " +
		"(n2: disconnected 3.2s ago; n3: lagging 1203 entries, 13.7s behind)"
	if !blocked || why != want {
		t.Fatalf("Blocked() = %v, %q\nwant %q", blocked, why, want)
	}
	if h.c.FallbackActive() {
		t.Fatal("fallback active under block")
	}
	h.c.Ack("n3", 1210, 1210, 1000, at(24))
	h.wantCommit(1210)
	if blocked, why := h.c.Blocked(); blocked {
		t.Fatalf("still blocked: %s", why)
	}
	if h.countEvents(EventFallbackEngaged, "") != 0 || h.countEvents(EventFallbackCleared, "") != 0 {
		t.Fatal("fallback events under block")
	}
	for _, ev := range []struct {
		kind, id string
		n        int
	}{
		{EventFollowerUnhealthy, "n2", 1}, {EventFollowerUnhealthy, "n3", 1},
		{EventFollowerHealthy, "n3", 2}, {EventSyncPromoted, "n3", 1}, {EventSyncDemoted, "n2", 1},
	} {
		if n := h.countEvents(ev.kind, ev.id); n != ev.n {
			t.Errorf("%d %s events for %s, want %d: %+v", n, ev.kind, ev.id, ev.n, h.events)
		}
	}
}

func TestCoreFallbackAsync(t *testing.T) {
	h := twoFollowerScenario(t, policy.FallbackAsync)
	h.wantCommit(1210)
	if !h.c.FallbackActive() {
		t.Fatal("fallback not active")
	}
	if blocked, _ := h.c.Blocked(); blocked {
		t.Fatal("blocked while the fallback is active")
	}
	h.c.Appended(1300, at(21))
	h.c.LocalDurable(1300)
	h.wantCommit(1300)
	h.c.Tick(at(25))
	h.c.Tick(at(26))
	var engaged []Event
	for _, e := range h.events {
		if e.Kind == EventFallbackEngaged {
			engaged = append(engaged, e)
		}
	}
	if len(engaged) != 1 || !strings.Contains(engaged[0].Message, "n2: disconnected") ||
		!strings.Contains(engaged[0].Message, "n3: lagging 1203 entries") || !engaged[0].At.Equal(at(20.5)) {
		t.Fatalf("engaged events: %+v", engaged)
	}
	// n3 catches up: it becomes synchronous and the fallback clears.
	h.c.Ack("n3", 1300, 1300, 1300, at(27))
	h.wantCommit(1300)
	if h.c.FallbackActive() {
		t.Fatal("fallback still active")
	}
	h.c.Appended(1400, at(28))
	h.c.LocalDurable(1400)
	h.wantCommit(1300)
	h.c.Ack("n3", 1350, 1350, 1350, at(28))
	h.wantCommit(1350)
	h.c.Tick(at(29))
	if n, m := h.countEvents(EventFallbackEngaged, ""), h.countEvents(EventFallbackCleared, ""); n != 1 || m != 1 {
		t.Fatalf("%d engaged, %d cleared events", n, m)
	}
}

func TestCoreFallbackAsyncGrace(t *testing.T) {
	t.Run("startup", func(t *testing.T) {
		h := newHarness(t, CoreConfig{
			Policy: mustPolicy(t, "FIRST 1 (*)"), Fallback: policy.FallbackAsync,
			Followers: []string{"n2", "n3"},
		})
		h.c.Appended(3, at(1))
		h.c.LocalDurable(3)
		h.c.Tick(at(10))
		h.wantCommit(0)
		blocked, why := h.c.Blocked()
		if !blocked || !strings.Contains(why, "n2: never connected; n3: never connected") {
			t.Fatalf("Blocked() = %v, %q", blocked, why)
		}
		h.c.Tick(at(10.001))
		h.wantCommit(3)
		if !h.c.FallbackActive() {
			t.Fatal("fallback not active")
		}
	})
	t.Run("pending promotion", func(t *testing.T) {
		h := newHarness(t, CoreConfig{
			Policy: mustPolicy(t, "FIRST 1 (n2,n3)"), Fallback: policy.FallbackAsync,
			Followers: []string{"n2", "n3"}, CommittedSyncSet: []string{"n2"},
		})
		h.c.Connected("n2", 0, at(0))
		h.c.Connected("n3", 0, at(0))
		for _, s := range []float64{5, 10, 15, 19} {
			h.c.Ack("n2", 0, 0, 0, at(s))
			h.c.Ack("n3", 0, 0, 0, at(s))
			h.c.Tick(at(s))
		}
		h.c.Disconnected("n2", at(20))
		h.wantProposals([]string{"n2", "n3"})
		h.c.Appended(4, at(20))
		h.c.LocalDurable(4)
		h.c.Ack("n3", 4, 4, 4, at(25))
		h.c.Tick(at(30))
		h.wantCommit(0)
		if h.c.FallbackActive() {
			t.Fatal("fallback engaged while a promotion is pending")
		}
		h.c.Tick(at(30.001))
		h.wantCommit(4)
		if !h.c.FallbackActive() {
			t.Fatal("fallback not engaged after SyncTimeout")
		}
		h.wantProposals([]string{"n2", "n3"}) // re-armed
		h.commitSet(at(31), "n2", "n3")
		if h.c.FallbackActive() {
			t.Fatal("fallback still active")
		}
	})
}

func TestCoreReconnectLowerKeepsCommit(t *testing.T) {
	h := newHarness(t, CoreConfig{
		Policy: mustPolicy(t, "FIRST 1 (n2)"), Ack: policy.AckReceived,
		Followers: []string{"n2"}, CommittedSyncSet: []string{"n2"},
	})
	h.c.Connected("n2", 0, at(0))
	h.c.Appended(10, at(0))
	h.c.LocalDurable(10)
	h.c.Ack("n2", 10, 10, 10, at(1))
	h.wantCommit(10)
	h.c.Disconnected("n2", at(2))
	h.c.Connected("n2", 6, at(3))
	p := h.progress(at(3), "n2")
	if p.Received != 6 || p.Durable != 6 || p.Applied != 6 || !p.Connected {
		t.Fatalf("progress after reconnect: %+v", p)
	}
	h.wantCommit(10)
	h.c.Appended(14, at(3))
	h.c.LocalDurable(14)
	h.c.Ack("n2", 8, 8, 8, at(3.5))
	h.wantCommit(10)
	h.c.Ack("n2", 12, 11, 9, at(4))
	h.wantCommit(12)
	// A reconnect at a higher position raises received only.
	h.c.Connected("n2", 14, at(5))
	p = h.progress(at(5), "n2")
	if p.Received != 14 || p.Durable != 11 || p.Applied != 9 {
		t.Fatalf("progress after reconnect: %+v", p)
	}
	h.wantCommit(14)
}

func TestCoreConfigureAtRunTime(t *testing.T) {
	followers := []string{"n2", "n3", "n4"}
	h := newHarness(t, CoreConfig{
		Policy: mustPolicy(t, "FIRST 1 (n2,n3)"), Ack: policy.AckDurable,
		Followers: followers, CommittedSyncSet: []string{"n2"},
	})
	for _, id := range followers {
		h.c.Connected(id, 0, at(0))
	}
	h.c.Appended(10, at(0))
	h.c.LocalDurable(10)
	h.c.Ack("n2", 4, 4, 4, at(1))
	h.c.Ack("n3", 6, 6, 6, at(1))
	h.c.Ack("n4", 9, 9, 9, at(1))
	h.wantCommit(4)
	h.wantProposals()

	h.c.Configure(mustPolicy(t, "ANY 1 (*)"), policy.AckDurable, policy.FallbackBlock, followers, at(2))
	h.wantCommit(4)
	h.wantProposals([]string{"n2", "n3", "n4"})
	h.commitSet(at(2), "n2", "n3", "n4")
	h.wantCommit(9)
	h.wantProposals()

	h.c.Configure(mustPolicy(t, "async"), policy.AckDurable, policy.FallbackBlock, followers, at(3))
	h.wantCommit(10)
	got := h.takeProposals()
	if len(got) != 1 || got[0] == nil || len(got[0]) != 0 {
		t.Fatalf("proposals %#v, want one empty non-nil set", got)
	}
	h.commitSet(at(3), got[0]...)
	h.c.Appended(20, at(3))
	h.c.LocalDurable(20)
	h.wantCommit(20)
	for _, p := range h.c.Progress(at(3)) {
		if p.Sync {
			t.Fatalf("%s sync under async", p.ID)
		}
	}

	h.c.Configure(mustPolicy(t, "all"), policy.AckApplied, policy.FallbackBlock, followers, at(4))
	h.wantProposals([]string{"n2", "n3", "n4"})
	h.c.Appended(30, at(4))
	h.c.LocalDurable(30)
	h.c.Ack("n2", 30, 30, 30, at(4))
	h.c.Ack("n3", 30, 30, 25, at(4))
	h.c.Ack("n4", 30, 30, 28, at(4))
	h.wantCommit(20)
	if blocked, why := h.c.Blocked(); !blocked || !strings.Contains(why, "all needs 3 synchronous followers with applied ack") {
		t.Fatalf("Blocked() = %v, %q", blocked, why)
	}
	h.commitSet(at(4), "n2", "n3", "n4")
	h.wantCommit(25)

	// n4 leaves the cluster: all means n2 and n3 now.
	h.c.Configure(mustPolicy(t, "all"), policy.AckApplied, policy.FallbackBlock, []string{"n2", "n3"}, at(5))
	h.wantCommit(25)
	h.wantProposals([]string{"n2", "n3"}) // both hold the commit LSN: n4 may go
	h.c.Ack("n3", 30, 30, 30, at(5))
	h.wantCommit(30)
	if e := h.events[len(h.events)-1]; e.Kind != EventSyncDemoted || e.Follower != "n4" ||
		e.Message != "n4 no longer counts for all: no longer a follower" {
		t.Fatalf("last event %+v", e)
	}
	if ps := h.c.Progress(at(5)); len(ps) != 2 {
		t.Fatalf("progress: %+v", ps)
	}
}

func TestCoreLaggingDetection(t *testing.T) {
	h := newHarness(t, CoreConfig{
		Policy: mustPolicy(t, "FIRST 1 (n2,n3)"), Ack: policy.AckDurable,
		Followers: []string{"n2", "n3"}, CommittedSyncSet: []string{"n2", "n3"},
	})
	h.c.Connected("n2", 0, at(0))
	h.c.Connected("n3", 0, at(0))
	h.wantProposals([]string{"n2"})
	for i := uint64(1); i <= 5; i++ {
		h.c.Appended(i, at(float64(i)*0.1))
	}
	h.c.LocalDurable(5)
	h.c.Ack("n2", 5, 5, 5, at(1))
	h.c.Ack("n3", 5, 5, 5, at(1))
	h.wantCommit(5)
	h.c.Appended(6, at(2))
	h.c.LocalDurable(6)
	h.c.Ack("n2", 6, 5, 5, at(5)) // received but never durable
	h.c.Ack("n3", 6, 6, 6, at(5))
	h.wantCommit(5) // only n2 counts; C shrinks to {n2} only once committed
	h.c.Ack("n2", 6, 5, 5, at(11))
	h.c.Tick(at(12))
	if p := h.progress(at(12), "n2"); !p.Healthy || p.State != StateStreaming {
		t.Fatalf("n2 at exactly SyncTimeout: %+v", p)
	}
	h.c.Tick(at(12.001))
	if p := h.progress(at(12.001), "n2"); p.Healthy || p.State != StateLagging {
		t.Fatalf("n2 after SyncTimeout: %+v", p)
	}
	if n := h.countEvents(EventFollowerUnhealthy, "n2"); n != 1 {
		t.Fatalf("%d unhealthy events for n2", n)
	}
	// The outstanding removal of n3 kept n3 from counting; it ends when
	// the control plane answers, and n3 replaces n2.
	h.wantCommit(5)
	h.commitSet(at(12.1), "n2")
	// Tick(12) had re-armed the removal proposal (outstanding since 0).
	h.wantProposals([]string{"n2"}, []string{"n2", "n3"})
	h.commitSet(at(12.2), "n2", "n3")
	h.wantCommit(6)
	h.wantProposals([]string{"n3"})

	// Silence is unhealthy too.
	h.c.Ack("n3", 6, 6, 6, at(20))
	h.c.Tick(at(30))
	if p := h.progress(at(30), "n3"); !p.Healthy {
		t.Fatalf("n3: %+v", p)
	}
	h.c.Tick(at(30.5))
	p := h.progress(at(30.5), "n3")
	if p.Healthy || p.State != StateLagging {
		t.Fatalf("n3 silent: %+v", p)
	}
	h.ready()
	var msg string
	for _, e := range h.events {
		if e.Kind == EventFollowerUnhealthy && e.Follower == "n3" {
			msg = e.Message
		}
	}
	if msg != "n3 is unhealthy: silent for 10.5s" {
		t.Fatalf("message %q", msg)
	}
}

func TestCoreProgressLag(t *testing.T) {
	h := newHarness(t, CoreConfig{
		Policy: mustPolicy(t, "async"), Followers: []string{"n2", "n3", "n4", "n5"},
	})
	for _, id := range []string{"n2", "n3", "n4"} {
		h.c.Connected(id, 0, at(0))
	}
	h.c.Appended(10, at(0))
	h.c.Appended(20, at(2))
	h.c.Appended(30, at(4))
	h.c.LocalDurable(30)
	h.c.Ack("n2", 30, 25, 15, at(5))
	h.c.Ack("n3", 30, 30, 30, at(5))
	h.c.Ack("n4", 0, 0, 0, at(5))
	ps := h.c.Progress(at(5))
	want := []FollowerProgress{
		{ID: "n2", Healthy: true, Connected: true, Received: 30, Durable: 25, Applied: 15, LastSeen: at(5), LagEntries: 15, LagSeconds: 3, State: StateStreaming},
		{ID: "n3", Healthy: true, Connected: true, Received: 30, Durable: 30, Applied: 30, LastSeen: at(5), LagEntries: 0, LagSeconds: 0, State: StateStreaming},
		{ID: "n4", Healthy: true, Connected: true, LastSeen: at(5), LagEntries: 30, LagSeconds: 5, State: StateStreaming},
		{ID: "n5", LagEntries: 30, LagSeconds: 5, State: StateDisconnected},
	}
	if len(ps) != len(want) {
		t.Fatalf("progress %+v", ps)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("progress[%d] = %+v\nwant %+v", i, ps[i], want[i])
		}
	}
	// n4 falls behind; n5 connects far behind and is catching up.
	h.c.Ack("n4", 0, 0, 0, at(10.5))
	h.c.Connected("n5", 0, at(10.5))
	h.c.Tick(at(10.5))
	if p := h.progress(at(10.5), "n4"); p.State != StateLagging || p.LagSeconds != 10.5 {
		t.Fatalf("n4: %+v", p)
	}
	if p := h.progress(at(10.5), "n5"); p.State != StateCatchingUp || p.Healthy {
		t.Fatalf("n5: %+v", p)
	}
	h.c.Ack("n5", 30, 30, 30, at(11))
	if p := h.progress(at(11), "n5"); p.State != StateStreaming || p.LagSeconds != 0 {
		t.Fatalf("n5: %+v", p)
	}
	h.c.Disconnected("n5", at(12))
	if p := h.progress(at(12), "n5"); p.State != StateDisconnected || p.Healthy {
		t.Fatalf("n5: %+v", p)
	}
	// Async commits on the leader's fsync whatever the followers do.
	h.wantCommit(30)
}

func TestCoreStartCommitLSN(t *testing.T) {
	h := newHarness(t, CoreConfig{
		Policy:    mustPolicy(t, "FIRST 1 (n2)"),
		Followers: []string{"n2"}, CommittedSyncSet: []string{"n2"}, CommitLSN: 100,
	})
	h.wantCommit(100)
	h.c.Connected("n2", 90, at(1))
	h.c.Ack("n2", 90, 90, 90, at(1))
	if p := h.progress(at(1), "n2"); !p.Healthy || p.LagEntries != 10 || p.LagSeconds != 1 {
		t.Fatalf("n2: %+v", p)
	}
	h.c.Tick(at(10.5))
	if p := h.progress(at(10.5), "n2"); p.Healthy {
		t.Fatalf("n2 behind the start LSN for longer than SyncTimeout: %+v", p)
	}
	h.c.Appended(101, at(11))
	h.c.LocalDurable(101)
	h.c.Ack("n2", 101, 101, 101, at(11))
	h.wantCommit(101)
}

func TestCoreOddInputs(t *testing.T) {
	c := NewCore(CoreConfig{
		Policy:    policy.Commit{Kind: policy.First, K: 0, Members: []string{"n2", "n2", "", "n9"}},
		Ack:       policy.Ack(9),
		Fallback:  policy.Fallback(9),
		Followers: []string{"n2", "", "n2", "n3"},
	}, coreT0)
	if c.syncTimeout != DefaultSyncTimeout || c.policy.String() != "FIRST 1 (n2,n9)" || c.ack != policy.AckDurable || c.fallback != policy.FallbackBlock {
		t.Fatalf("normalised: %v %v %v %v", c.syncTimeout, c.policy, c.ack, c.fallback)
	}
	c.Ack("nobody", 5, 5, 5, at(1))
	c.Connected("nobody", 5, at(1))
	c.Disconnected("nobody", at(1))
	c.Disconnected("n2", at(1))
	c.Ack("n2", 5, 5, 5, at(1)) // before Connected: positions count, health does not
	c.Appended(3, at(1))
	c.Appended(2, at(0)) // lower: ignored
	c.LocalDurable(3)
	c.LocalDurable(1)
	c.Tick(at(0.5)) // time going back is ignored
	c.SyncSetCommitted(nil, at(1))
	c.SyncSetCommitted([]string{"", "n2", "n2"}, at(1))
	c.Configure(policy.Commit{Kind: policy.Kind(42)}, policy.AckReceived, policy.FallbackAsync, nil, at(2))
	if c.policy.Kind != policy.All {
		t.Fatalf("unknown kind became %v", c.policy)
	}
	c.Tick(at(3))
	if got := c.CommitLSN(); got != 3 { // all with no followers: the leader alone
		t.Fatalf("commit %d", got)
	}
	c.Configure(policy.Commit{Kind: policy.Any, K: 5}, policy.AckApplied, policy.FallbackBlock, []string{"n2"}, at(4))
	blocked, why := c.Blocked()
	if !blocked || !strings.Contains(why, "only 1 of the candidates is a follower") {
		t.Fatalf("Blocked() = %v, %q", blocked, why)
	}
	c.Configure(policy.Commit{Kind: policy.First, K: 1, Members: []string{"n9"}}, policy.AckApplied, policy.FallbackBlock, []string{"n2"}, at(5))
	if blocked, why := c.Blocked(); !blocked || !strings.Contains(why, "n9: not a follower") {
		t.Fatalf("Blocked() = %v, %q", blocked, why)
	}
	_ = c.Progress(time.Time{})
	r := c.Ready()
	if r.CommitLSN != 3 {
		t.Fatalf("ready %+v", r)
	}
}

func TestCoreEventsBounded(t *testing.T) {
	c := NewCore(CoreConfig{Policy: policy.Commit{Kind: policy.Async}, Followers: []string{"n2"}}, coreT0)
	for i := 0; i < maxPendingEvents; i++ {
		c.Connected("n2", 0, at(float64(i)))
		c.Disconnected("n2", at(float64(i)))
	}
	r := c.Ready()
	if len(r.Events) != maxPendingEvents || r.Events[len(r.Events)-1].Kind != EventFollowerUnhealthy {
		t.Fatalf("%d events", len(r.Events))
	}
	if r := c.Ready(); len(r.Events) != 0 {
		t.Fatal("events not drained")
	}
}

func TestCoreAppendLog(t *testing.T) {
	var l appendLog
	if _, ok := l.firstAbove(0); ok {
		t.Fatal("empty log has entries")
	}
	// Appends within appendGranularity share a record.
	l.add(1, at(0))
	l.add(2, at(0).Add(appendGranularity/2))
	l.add(3, at(1))
	l.add(3, at(2))   // not above the last LSN: ignored
	l.add(4, at(0.5)) // time going back: clamped, merged
	if len(l.recs) != 2 {
		t.Fatalf("records %+v", l.recs)
	}
	if ts, ok := l.firstAbove(1); !ok || !ts.Equal(at(0)) {
		t.Fatalf("firstAbove(1) = %v", ts)
	}
	if ts, ok := l.firstAbove(2); !ok || !ts.Equal(at(1)) {
		t.Fatalf("firstAbove(2) = %v", ts)
	}
	if _, ok := l.firstAbove(4); ok {
		t.Fatal("entries above the last")
	}

	// Bounded: many appends far apart are compacted, old records merge
	// and never get younger; recent ones stay exact.
	l = appendLog{}
	const n = 3 * maxAppendRecords
	for i := uint64(1); i <= n; i++ {
		l.add(i, coreT0.Add(time.Duration(i)*time.Second))
	}
	if len(l.recs) > maxAppendRecords {
		t.Fatalf("%d records", len(l.recs))
	}
	for _, lsn := range []uint64{0, 1, 1000, n / 2, n - 100, n - 1} {
		ts, ok := l.firstAbove(lsn)
		exact := coreT0.Add(time.Duration(lsn+1) * time.Second)
		if !ok || ts.After(exact) {
			t.Fatalf("firstAbove(%d) = %v, later than %v", lsn, ts, exact)
		}
		if lsn >= n-maxAppendRecords/4 && !ts.Equal(exact) {
			t.Fatalf("recent firstAbove(%d) = %v, want %v", lsn, ts, exact)
		}
	}
	for i := 1; i < len(l.recs); i++ {
		if l.recs[i].lsn <= l.recs[i-1].lsn || l.recs[i].at.Before(l.recs[i-1].at) {
			t.Fatalf("records out of order at %d", i)
		}
	}
}

// TestCoreProperties drives the core with random inputs while a model
// plays followers and control plane, and checks the invariants after each
// step.
func TestCoreProperties(t *testing.T) {
	policies := []string{
		"async", "all", "FIRST 1 (n2,n3)", "FIRST 2 (*)", "FIRST 1 (n4,n2,n9)",
		"ANY 1 (n2,n3)", "ANY 2 (*)", "ANY 2 (n2,n3,n4)",
	}
	all := []string{"n2", "n3", "n4"}
	rapid.Check(t, func(t *rapid.T) {
		pol := mustPolicy(t, rapid.SampledFrom(policies).Draw(t, "policy"))
		ack := policy.Ack(rapid.IntRange(0, 2).Draw(t, "ack"))
		fb := policy.Fallback(rapid.IntRange(0, 1).Draw(t, "fallback"))
		followers := all
		C := rapid.SliceOfDistinct(rapid.SampledFrom(all), rapid.ID).Draw(t, "C")
		timeout := 10 * time.Second
		now := coreT0
		c := NewCore(CoreConfig{SyncTimeout: timeout, Policy: pol, Ack: ack, Fallback: fb, Followers: followers, CommittedSyncSet: C}, now)

		pos := map[string]*[3]uint64{} // the model's view of acknowledged positions
		for _, id := range followers {
			pos[id] = &[3]uint64{}
		}
		var appended, durable, commit uint64
		var pending []string // last proposal not yet committed by the model

		check := func(step string) {
			r := c.Ready()
			if r.CommitLSN < commit {
				t.Fatalf("%s: commit went back from %d to %d", step, commit, r.CommitLSN)
			}
			if r.CommitLSN > durable {
				t.Fatalf("%s: commit %d above local durable %d", step, r.CommitLSN, durable)
			}
			if !isSubset(c.counted, C) {
				t.Fatalf("%s: counted %v not within C %v", step, c.counted, C)
			}
			if r.CommitLSN > commit && fb == policy.FallbackBlock && pol.Kind != policy.Async {
				need := pol.K
				if pol.Kind == policy.All {
					need = len(followers)
				}
				n := 0
				for _, id := range C {
					if p := pos[id]; p != nil && p[ack] >= r.CommitLSN {
						n++
					}
				}
				if n < need {
					t.Fatalf("%s: commit %d under %s has %d acks from C %v, want %d", step, r.CommitLSN, pol, n, C, need)
				}
			}
			commit = r.CommitLSN
			if r.ProposeSyncSet != nil {
				if !sameSet(r.ProposeFrom, C) {
					t.Fatalf("%s: proposal from %v, but C is %v", step, r.ProposeFrom, C)
				}
				if !isSubset(C, r.ProposeSyncSet) && !isSubset(r.ProposeSyncSet, C) {
					t.Fatalf("%s: proposal %v neither adds to nor removes from C %v", step, r.ProposeSyncSet, C)
				}
				pending = r.ProposeSyncSet
			}
		}
		check("start")

		steps := rapid.IntRange(1, 150).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			id := rapid.SampledFrom(all).Draw(t, "id")
			var step string
			switch rapid.IntRange(0, 9).Draw(t, "action") {
			case 0, 1:
				appended += rapid.Uint64Range(1, 5).Draw(t, "n")
				c.Appended(appended, now)
				step = fmt.Sprintf("Appended(%d)", appended)
			case 2:
				d := rapid.Uint64Range(0, appended).Draw(t, "durable")
				durable = max(durable, d)
				c.LocalDurable(d)
				step = fmt.Sprintf("LocalDurable(%d)", d)
			case 3, 4:
				r := rapid.Uint64Range(0, appended).Draw(t, "received")
				d := rapid.Uint64Range(0, r).Draw(t, "durable")
				a := rapid.Uint64Range(0, d).Draw(t, "applied")
				if p := pos[id]; p != nil {
					p[0], p[1], p[2] = max(p[0], r), max(p[1], d), max(p[2], a)
				}
				c.Ack(id, r, d, a, now)
				step = fmt.Sprintf("Ack(%s,%d,%d,%d)", id, r, d, a)
			case 5:
				m := rapid.Uint64Range(0, appended).Draw(t, "match")
				if p := pos[id]; p != nil {
					p[0], p[1], p[2] = m, min(p[1], m), min(p[2], m)
				}
				c.Connected(id, m, now)
				step = fmt.Sprintf("Connected(%s,%d)", id, m)
			case 6:
				c.Disconnected(id, now)
				step = "Disconnected(" + id + ")"
			case 7:
				now = now.Add(time.Duration(rapid.Int64Range(0, int64(15*time.Second)).Draw(t, "dt")))
				c.Tick(now)
				step = "Tick"
			case 8:
				if pending != nil && rapid.IntRange(0, 9).Draw(t, "odd") > 0 {
					C = pending
				} else {
					C = rapid.SliceOfDistinct(rapid.SampledFrom(all), rapid.ID).Draw(t, "C")
				}
				pending = nil
				c.SyncSetCommitted(C, now)
				step = fmt.Sprintf("SyncSetCommitted(%v)", C)
			case 9:
				pol = mustPolicy(t, rapid.SampledFrom(policies).Draw(t, "policy"))
				ack = policy.Ack(rapid.IntRange(0, 2).Draw(t, "ack"))
				fb = policy.Fallback(rapid.IntRange(0, 1).Draw(t, "fallback"))
				followers = rapid.SliceOfDistinct(rapid.SampledFrom(all), rapid.ID).Draw(t, "followers")
				for _, f := range all {
					if !slices.Contains(followers, f) {
						delete(pos, f)
					} else if pos[f] == nil {
						pos[f] = &[3]uint64{}
					}
				}
				c.Configure(pol, ack, fb, followers, now)
				step = fmt.Sprintf("Configure(%s,%s,%s,%v)", pol, ack, fb, followers)
			}
			check(step)
		}
	})
}

// TestCoreFailoverSafety checks the point of "add first, remove after":
// when the control plane applies the core's proposals compare-and-set, in
// any order and after any delay, and no follower loses data, at every
// moment at least need members of the committed sync set hold the commit
// LSN, so a failover that picks from it loses no acknowledged write.
func TestCoreFailoverSafety(t *testing.T) {
	policies := []string{"all", "FIRST 1 (n2,n3)", "FIRST 2 (*)", "FIRST 1 (n4,n2,n3)", "ANY 1 (n2,n3)", "ANY 2 (*)"}
	all := []string{"n2", "n3", "n4"}
	rapid.Check(t, func(t *rapid.T) {
		pol := mustPolicy(t, rapid.SampledFrom(policies).Draw(t, "policy"))
		ack := policy.Ack(rapid.IntRange(0, 2).Draw(t, "ack"))
		C := rapid.SliceOfDistinct(rapid.SampledFrom(all), rapid.ID).Draw(t, "C")
		now := coreT0
		c := NewCore(CoreConfig{SyncTimeout: 10 * time.Second, Policy: pol, Ack: ack, Followers: all, CommittedSyncSet: C}, now)
		need := pol.K
		if pol.Kind == policy.All {
			need = len(all)
		}
		pos := map[string]*[3]uint64{"n2": {}, "n3": {}, "n4": {}}
		var appended uint64
		type prop struct{ set, from []string }
		var queue []prop // proposals in flight to the control plane
		steps := rapid.IntRange(1, 200).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			id := rapid.SampledFrom(all).Draw(t, "id")
			p := pos[id]
			switch rapid.IntRange(0, 6).Draw(t, "action") {
			case 0:
				appended += rapid.Uint64Range(1, 5).Draw(t, "n")
				c.Appended(appended, now)
				c.LocalDurable(rapid.Uint64Range(0, appended).Draw(t, "durable"))
			case 1, 2:
				r := rapid.Uint64Range(p[0], max(p[0], appended)).Draw(t, "received")
				d := rapid.Uint64Range(p[1], max(p[1], r)).Draw(t, "durable")
				a := rapid.Uint64Range(p[2], max(p[2], d)).Draw(t, "applied")
				p[0], p[1], p[2] = r, d, a
				c.Ack(id, r, d, a, now)
			case 3:
				m := rapid.Uint64Range(max(p[0], p[1], p[2]), max(p[0], p[1], p[2], appended)).Draw(t, "match")
				p[0] = m
				c.Connected(id, m, now)
			case 4:
				c.Disconnected(id, now)
			case 5:
				now = now.Add(time.Duration(rapid.Int64Range(0, int64(15*time.Second)).Draw(t, "dt")))
				c.Tick(now)
			case 6:
				if len(queue) > 0 {
					j := rapid.IntRange(0, len(queue)-1).Draw(t, "which")
					p := queue[j]
					queue = slices.Delete(queue, j, j+1)
					if sameSet(p.from, C) {
						C = p.set
					}
				}
				c.SyncSetCommitted(C, now)
			}
			r := c.Ready()
			if r.ProposeSyncSet != nil {
				queue = append(queue, prop{r.ProposeSyncSet, r.ProposeFrom})
			}
			if r.CommitLSN == 0 {
				continue
			}
			holders := 0
			for _, m := range C {
				if q := pos[m]; q != nil && q[ack] >= r.CommitLSN {
					holders++
				}
			}
			if holders < need {
				t.Fatalf("commit %d under %s/%s: only %d members of C %v hold it, want %d", r.CommitLSN, pol, ack, holders, C, need)
			}
		}
	})
}

// A re-armed proposal may still land: until C changes, the counted set
// stays within it as well as within any newer proposal.
func TestCoreRearmedProposalStillRestricts(t *testing.T) {
	c := NewCore(CoreConfig{
		SyncTimeout: 10 * time.Second, Policy: mustPolicy(t, "FIRST 1 (n2,n3)"), Ack: policy.AckDurable,
		Followers: []string{"n2", "n3"}, CommittedSyncSet: []string{"n2", "n3"},
	}, coreT0)
	c.Connected("n3", 0, at(0))
	r := c.Ready()
	if !slices.Equal(r.ProposeSyncSet, []string{"n3"}) || !slices.Equal(r.ProposeFrom, []string{"n2", "n3"}) {
		t.Fatalf("ready %+v", r)
	}
	c.Appended(5, at(1))
	c.LocalDurable(5)
	c.Ack("n3", 5, 5, 5, at(1))
	if c.CommitLSN() != 5 {
		t.Fatalf("commit %d", c.CommitLSN())
	}
	// n2 arrives and is preferred; the removal of n2 is still in flight,
	// so n3 keeps counting.
	c.Connected("n2", 5, at(2))
	c.Ack("n2", 5, 5, 5, at(2))
	c.Appended(6, at(3))
	c.LocalDurable(6)
	c.Ack("n3", 6, 6, 6, at(3))
	if c.CommitLSN() != 6 {
		t.Fatalf("commit %d", c.CommitLSN())
	}
	// The control plane does not answer; the proposal is re-armed and a
	// new one (keep n2 only) made against the same C. Either may land.
	c.Ack("n2", 6, 6, 6, at(10.5))
	c.Ack("n3", 6, 6, 6, at(10.5))
	c.Tick(at(10.5))
	r = c.Ready()
	if !slices.Equal(r.ProposeSyncSet, []string{"n2"}) || !slices.Equal(r.ProposeFrom, []string{"n2", "n3"}) {
		t.Fatalf("ready %+v", r)
	}
	c.Appended(7, at(11))
	c.LocalDurable(7)
	c.Ack("n2", 7, 7, 7, at(11))
	c.Ack("n3", 7, 7, 7, at(11))
	if c.CommitLSN() != 6 {
		t.Fatalf("commit %d counted neither {n3} nor {n2}", c.CommitLSN())
	}
	blocked, why := c.Blocked()
	if !blocked || !strings.Contains(why, "n2: healthy, waiting for a sync-set change to commit") {
		t.Fatalf("Blocked() = %v, %q", blocked, why)
	}
	// The old proposal lands: n3 holds everything, n2 is added back.
	c.SyncSetCommitted([]string{"n3"}, at(12))
	if c.CommitLSN() != 7 {
		t.Fatalf("commit %d", c.CommitLSN())
	}
	r = c.Ready()
	if !slices.Equal(r.ProposeSyncSet, []string{"n2", "n3"}) || !slices.Equal(r.ProposeFrom, []string{"n3"}) {
		t.Fatalf("ready %+v", r)
	}
}
