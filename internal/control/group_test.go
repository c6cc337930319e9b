package control

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/policy"
)

func memberIDs(s State) []string {
	ids := make([]string, 0, len(s.Members))
	for _, m := range s.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestBootstrapAppointsFirstMember(t *testing.T) {
	c := newCluster(t, 3, Config{InitialPolicy: "FIRST 1 (n2,n3)", InitialAck: "applied"})
	c.converge("first appointment", func(s State) bool { return s.Leader == "n1" && s.Epoch == 1 })
	ctl := c.controller()
	want := ctl.State()
	if got := memberIDs(want); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("members = %v", got)
	}
	if want.Policy.String() != "FIRST 1 (n2,n3)" || want.Ack != policy.AckApplied || want.Fallback != policy.FallbackBlock {
		t.Fatalf("settings = %q %q %q", want.Policy, want.Ack, want.Fallback)
	}
	for _, m := range want.Members {
		if m.RaftID != RaftID(m.ID) || m.PeerAddr == "" || m.RESPAddr == "" {
			t.Fatalf("member %+v", m)
		}
		if addr, ok := ctl.PeerAddr(m.RaftID); !ok || addr != m.PeerAddr {
			t.Fatalf("PeerAddr(%s) = %q, %v", m.ID, addr, ok)
		}
	}
	c.converge("same state everywhere", func(s State) bool {
		return s.Leader == want.Leader && s.Epoch == want.Epoch && s.Policy.Equal(want.Policy) &&
			slices.Equal(s.Members, want.Members)
	})
	// Another controller tick must not appoint again.
	time.Sleep(5 * testTick)
	for _, g := range c.live() {
		if s := g.State(); s.Epoch != 1 {
			t.Fatalf("%s: epoch %d after the first appointment", g.ID(), s.Epoch)
		}
	}
}

func TestMutationsThroughFollower(t *testing.T) {
	c := newCluster(t, 3, Config{})
	c.converge("first appointment", func(s State) bool { return s.Epoch == 1 })
	f := c.follower()
	ctx := ctxT(t)

	if err := f.SetPolicy(ctx, "FIRST 1 (n2,n3)", "received", ""); err != nil {
		t.Fatalf("SetPolicy via follower: %v", err)
	}
	if s := f.State(); s.Policy.String() != "FIRST 1 (n2,n3)" || s.Ack != policy.AckReceived || s.Fallback != policy.FallbackBlock {
		t.Fatalf("after SetPolicy: %+v", s)
	}
	if err := f.SetSyncSet(ctx, 1, []string{"n2"}); err != nil {
		t.Fatalf("SetSyncSet via follower: %v", err)
	}
	c.converge("policy and sync set everywhere", func(s State) bool {
		return s.Policy.String() == "FIRST 1 (n2,n3)" && slices.Equal(s.SyncSet, []string{"n2"})
	})

	for _, tc := range []struct {
		name string
		run  func() error
		want error
	}{
		{"sync set for an old epoch", func() error { return f.SetSyncSet(ctx, 0, []string{"n3"}) }, ErrStaleEpoch},
		{"sync set for a future epoch", func() error { return f.SetSyncSet(ctx, 7, []string{"n3"}) }, ErrStaleEpoch},
		{"sync set with an unknown member", func() error { return f.SetSyncSet(ctx, 1, []string{"n9"}) }, ErrUnknownMember},
		{"sync set with the leader", func() error { return f.SetSyncSet(ctx, 1, []string{"n1"}) }, ErrInvalidArgument},
		{"sync set with a duplicate", func() error { return f.SetSyncSet(ctx, 1, []string{"n2", "n2"}) }, ErrInvalidArgument},
		{"bad ack level", func() error { return f.SetPolicy(ctx, "", "sometimes", "") }, ErrInvalidArgument},
		{"bad fallback", func() error { return f.SetPolicy(ctx, "", "", "panic") }, ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if s := f.State(); !slices.Equal(s.SyncSet, []string{"n2"}) {
		t.Fatalf("rejected changes changed the sync set: %v", s.SyncSet)
	}

	// Partition one follower: the majority keeps working, the isolated node
	// catches up once the partition heals.
	var cut *Group
	for _, g := range c.live() {
		if !g.IsController() {
			cut = g
			break
		}
	}
	c.net.isolate(cut.RaftID(), true)
	var via *Group
	for _, g := range c.live() {
		if g != cut && !g.IsController() {
			via = g
		}
	}
	if via == nil {
		via = c.controller()
	}
	if err := via.SetPolicy(ctx, "all", "", "async"); err != nil {
		t.Fatalf("SetPolicy during a partition: %v", err)
	}
	if s := cut.State(); s.Policy.String() == "all" {
		t.Fatalf("isolated node %s saw a change made during the partition", cut.ID())
	}
	c.net.isolate(cut.RaftID(), false)
	c.converge("isolated node catches up", func(s State) bool { return s.Policy.String() == "all" && s.Fallback == policy.FallbackAsync })
}

func TestAppointCompareAndSet(t *testing.T) {
	c := newCluster(t, 3, Config{})
	c.converge("first appointment", func(s State) bool { return s.Epoch == 1 })
	ctx := ctxT(t)
	g := c.follower()
	if err := g.SetSyncSet(ctx, 1, []string{"n2", "n3"}); err != nil {
		t.Fatal(err)
	}
	ep, err := g.Appoint(ctx, "n2", 1)
	if err != nil || ep != 2 {
		t.Fatalf("Appoint(n2, 1) = %d, %v", ep, err)
	}
	if s := g.State(); s.Leader != "n2" || s.Epoch != 2 || s.SyncSet != nil {
		t.Fatalf("after appointment: leader %q epoch %d sync set %v", s.Leader, s.Epoch, s.SyncSet)
	}
	if _, err := g.Appoint(ctx, "n3", 1); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("Appoint with a stale epoch: %v", err)
	}
	if _, err := g.Appoint(ctx, "n7", 2); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("Appoint of an unknown member: %v", err)
	}
	if err := g.SetSyncSet(ctx, 1, []string{"n3"}); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("SetSyncSet by the old leader's epoch: %v", err)
	}

	// Racing appointments with the same expected epoch: exactly one wins.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for _, g := range c.live() {
		wg.Go(func() {
			target := "n3"
			if g.ID() == "n3" {
				target = "n1"
			}
			ep, err := g.Appoint(ctx, target, 2)
			switch {
			case err == nil:
				if ep != 3 {
					t.Errorf("%s: new epoch %d", g.ID(), ep)
				}
				mu.Lock()
				wins = append(wins, target)
				mu.Unlock()
			case !errors.Is(err, ErrStaleEpoch):
				t.Errorf("%s: %v", g.ID(), err)
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("winners = %v, want exactly one", wins)
	}
	c.converge("the winner everywhere", func(s State) bool { return s.Epoch == 3 && s.Leader == wins[0] })
}

func TestRestartKeepsState(t *testing.T) {
	c := newCluster(t, 3, Config{InitialPolicy: "ANY 1 (*)"})
	c.converge("first appointment", func(s State) bool { return s.Epoch == 1 })
	ctx := ctxT(t)
	if _, err := c.follower().Appoint(ctx, "n3", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.follower().SetSyncSet(ctx, 2, []string{"n1"}); err != nil {
		t.Fatal(err)
	}
	c.converge("epoch 2 everywhere", func(s State) bool { return s.Epoch == 2 && len(s.SyncSet) == 1 })
	for _, m := range c.initial {
		c.stop(m.ID)
	}

	// Reopen with different bootstrap settings: they must be ignored.
	c.base.InitialPolicy = "all"
	for _, m := range c.initial {
		c.open(m, false)
	}
	for _, g := range c.live() {
		if s := g.State(); s.Epoch != 2 || s.Leader != "n3" || s.Policy.String() != "ANY 1 (*)" {
			t.Fatalf("%s right after restart: %+v", g.ID(), s)
		}
	}
	f := c.follower()
	if err := f.SetPolicy(ctx, "", "applied", ""); err != nil {
		t.Fatalf("SetPolicy after restart: %v", err)
	}
	c.converge("state kept after restart", func(s State) bool {
		return s.Epoch == 2 && s.Leader == "n3" && s.Policy.String() == "ANY 1 (*)" && s.Ack == policy.AckApplied &&
			slices.Equal(s.SyncSet, []string{"n1"}) && slices.Equal(memberIDs(s), []string{"n1", "n2", "n3"})
	})
}

func TestAddMemberThatJoins(t *testing.T) {
	// A small snapshot interval makes the newcomer catch up from a snapshot.
	c := newCluster(t, 3, Config{SnapshotEntries: 8})
	c.converge("first appointment", func(s State) bool { return s.Epoch == 1 })
	ctx := ctxT(t)
	f := c.follower()
	for i := range 20 {
		ack := "received"
		if i%2 == 1 {
			ack = "durable"
		}
		if err := f.SetPolicy(ctx, "", ack, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.SetPolicy(ctx, "FIRST 1 (n4)", "", ""); err != nil {
		t.Fatal(err)
	}

	n4 := testMember("n4", 4)
	joiner := c.open(n4, true)
	if s := joiner.State(); len(s.Members) != 0 || s.Leader != "" {
		t.Fatalf("joiner state before being added: %+v", s)
	}
	if err := f.AddMember(ctx, n4); err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	c.converge("four members everywhere", func(s State) bool {
		return slices.Equal(memberIDs(s), []string{"n1", "n2", "n3", "n4"}) && s.Policy.String() == "FIRST 1 (n4)" && s.Epoch == 1
	})
	if m, ok := joiner.State().Member("n4"); !ok || m != (Member{ID: "n4", PeerAddr: n4.PeerAddr, RESPAddr: n4.RESPAddr, HTTPAddr: n4.HTTPAddr, RaftID: RaftID("n4")}) {
		t.Fatalf("joiner's own entry: %+v %v", m, ok)
	}
	// The newcomer is a full member: its proposals go through.
	if err := joiner.SetSyncSet(ctx, 1, []string{"n4"}); err != nil {
		t.Fatalf("SetSyncSet via the joined node: %v", err)
	}
	c.converge("sync set from the joined node", func(s State) bool { return slices.Equal(s.SyncSet, []string{"n4"}) })

	// Idempotent for the same member; a different member under the same id conflicts.
	if err := c.controller().AddMember(ctx, n4); err != nil {
		t.Fatalf("AddMember again: %v", err)
	}
	other := n4
	other.PeerAddr = "127.0.0.1:1"
	if err := f.AddMember(ctx, other); !errors.Is(err, ErrMemberConflict) {
		t.Fatalf("conflicting AddMember: %v", err)
	}
	if err := f.AddMember(ctx, Member{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("AddMember without id: %v", err)
	}
}

func TestRemoveMember(t *testing.T) {
	c := newCluster(t, 3, Config{})
	c.converge("first appointment", func(s State) bool { return s.Epoch == 1 && s.Leader == "n1" })
	ctx := ctxT(t)
	if err := c.g("n2").SetSyncSet(ctx, 1, []string{"n3", "n2"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want error
	}{
		{"n1", ErrRemoveLeader},
		{"n9", ErrUnknownMember},
	} {
		if err := c.g("n2").RemoveMember(ctx, tc.id); !errors.Is(err, tc.want) {
			t.Fatalf("RemoveMember(%s) = %v, want %v", tc.id, err, tc.want)
		}
	}
	if err := c.g("n2").RemoveMember(ctx, "n3"); err != nil {
		t.Fatalf("RemoveMember(n3): %v", err)
	}
	c.stop("n3")
	c.converge("n3 gone", func(s State) bool {
		return slices.Equal(memberIDs(s), []string{"n1", "n2"}) && slices.Equal(s.SyncSet, []string{"n2"})
	})
	// The two remaining members still form a working group.
	if err := c.follower().SetPolicy(ctx, "FIRST 1 (n2)", "", ""); err != nil {
		t.Fatalf("SetPolicy after removal: %v", err)
	}
	c.converge("policy after removal", func(s State) bool { return s.Policy.String() == "FIRST 1 (n2)" })
}

func TestControllerFailover(t *testing.T) {
	c := newCluster(t, 3, Config{})
	c.converge("first appointment", func(s State) bool { return s.Epoch == 1 })
	old := c.controller()
	c.stop(old.ID())
	ctl := c.controller()
	if ctl.ID() == old.ID() {
		t.Fatalf("controller is still %s", old.ID())
	}
	ctx := ctxT(t)
	if err := ctl.Barrier(ctx); err != nil {
		t.Fatalf("Barrier on the new controller: %v", err)
	}
	f := c.follower()
	if err := f.SetPolicy(ctx, "FIRST 1 (n2,n3)", "", ""); err != nil {
		t.Fatalf("SetPolicy after controller failover: %v", err)
	}
	target := "n2"
	if old.ID() == "n2" {
		target = "n3"
	}
	ep, err := f.Appoint(ctx, target, 1)
	if err != nil || ep != 2 {
		t.Fatalf("Appoint after controller failover: %d, %v", ep, err)
	}
	c.converge("changes after failover", func(s State) bool {
		return s.Policy.String() == "FIRST 1 (n2,n3)" && s.Leader == target && s.Epoch == 2
	})
}

func TestSingleNodeSnapshotAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "control")
	cfg := Config{ID: "solo", Dir: dir, Self: Member{ID: "solo", PeerAddr: "127.0.0.1:9999"},
		TickInterval: testTick, Logger: testLogger("solo"), SnapshotEntries: 10}
	g, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	waitFor(t, "self-appointment", func() bool { s := g.State(); return s.Leader == "solo" && s.Epoch == 1 })
	if s := g.State(); s.Policy.String() != "async" || s.Ack != policy.AckDurable || s.Fallback != policy.FallbackBlock {
		t.Fatalf("defaults: %+v", s)
	}
	sub, cancel := g.Subscribe()
	if s := <-sub; s.Leader != "solo" {
		t.Fatalf("first state from Subscribe: %+v", s)
	}
	for i := range 45 {
		p := "async"
		if i%2 == 0 {
			p = "all"
		}
		if err := g.SetPolicy(ctx, p, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.SetPolicy(ctx, "ANY 1 (*)", "", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscriber sees the last change", func() bool {
		select {
		case s := <-sub:
			return s.Policy.String() == "ANY 1 (*)"
		default:
			return false
		}
	})
	cancel()
	if _, ok := <-sub; ok {
		t.Fatal("subscription not closed by cancel")
	}
	before := g.State()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, walName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 8<<10 {
		t.Fatalf("log file is %d bytes after compaction", fi.Size())
	}

	g, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Close() }()
	if s := g.State(); s.Policy.String() != "ANY 1 (*)" || s.Epoch != 1 || s.Index < before.Index {
		t.Fatalf("after restart: %+v (before %+v)", s, before)
	}
	if err := g.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.SetPolicy(ctx, "", "applied", ""); err != nil {
		t.Fatal(err)
	}
	if s := g.State(); s.Epoch != 1 || s.Leader != "solo" || s.Ack != policy.AckApplied {
		t.Fatalf("after restart and a change: %+v", s)
	}
}

func TestCorruptLogFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "control")
	cfg := Config{ID: "solo", Dir: dir, TickInterval: testTick, Logger: testLogger("solo")}
	g, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	waitFor(t, "self-appointment", func() bool { return g.State().Epoch == 1 })
	for _, p := range []string{"all", "async", "FIRST 1 (x)"} {
		if err := g.SetPolicy(ctx, p, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, walName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A torn tail (an incomplete last record) is dropped, not an error.
	if err := os.WriteFile(path, good[:len(good)-3], 0o640); err != nil {
		t.Fatal(err)
	}
	g, err = Open(cfg)
	if err != nil {
		t.Fatalf("open with a torn tail: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	// A damaged byte in the middle is a clear error naming the file.
	for _, off := range []int{len(good) / 2, 2, recHeader + 3} {
		bad := slices.Clone(good)
		bad[off] ^= 0x5a
		if err := os.WriteFile(path, bad, 0o640); err != nil {
			t.Fatal(err)
		}
		_, err = Open(cfg)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Fatalf("open with byte %d damaged: err = %v, want ErrCorrupt naming %s", off, err, path)
		}
	}

	// Another member's directory is refused.
	if err := os.WriteFile(path, good, 0o640); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.ID = "intruder"
	if _, err := Open(other); err == nil || !strings.Contains(err.Error(), "belongs to member") {
		t.Fatalf("open of another member's dir: %v", err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no id", Config{Dir: dir}},
		{"no dir", Config{ID: "a"}},
		{"self not in the cluster", Config{ID: "a", Dir: dir, InitialCluster: []Member{{ID: "b"}}}},
		{"duplicate members", Config{ID: "a", Dir: dir, InitialCluster: []Member{{ID: "a"}, {ID: "a"}}}},
		{"wrong raft id", Config{ID: "a", Dir: dir, Self: Member{ID: "a", RaftID: 7}}},
		{"id differs from self", Config{ID: "a", Dir: dir, Self: Member{ID: "b"}}},
		{"bad ack", Config{ID: "a", Dir: dir, InitialAck: "maybe"}},
		{"bad fallback", Config{ID: "a", Dir: dir, InitialFallback: "retry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = testLogger("bad")
			if g, err := Open(tc.cfg); !errors.Is(err, ErrInvalidArgument) {
				if g != nil {
					_ = g.Close()
				}
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestClosedGroup(t *testing.T) {
	g, err := Open(Config{ID: "solo", Dir: t.TempDir(), TickInterval: testTick, Logger: testLogger("solo")})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := ctxT(t)
	if err := g.SetPolicy(ctx, "all", "", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetPolicy after Close: %v", err)
	}
	if err := g.Step(ctx, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Step(nil): %v", err)
	}
	ch, cancel := g.Subscribe()
	defer cancel()
	if _, ok := <-ch; ok {
		t.Fatal("Subscribe after Close returned an open channel")
	}
}

// The controller hands its role to a named member (the node uses it to keep
// the controller and the data leader together); a non-controller refuses.
func TestTransferLeadership(t *testing.T) {
	c := newCluster(t, 3, Config{})
	c.converge("first appointment", func(s State) bool { return s.Epoch == 1 })
	ctl := c.controller()
	f := c.follower()
	ctx := ctxT(t)
	if err := f.TransferLeadership(ctx, ctl.ID()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("transfer asked of a follower: %v, want ErrInvalidArgument", err)
	}
	if err := ctl.TransferLeadership(ctx, "n9"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("transfer to a stranger: %v, want ErrUnknownMember", err)
	}
	if err := ctl.TransferLeadership(ctx, f.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f.ID()+" becomes the controller", func() bool { return f.IsController() && !ctl.IsController() })
	// The group keeps working under its new controller.
	if err := f.SetPolicy(ctx, "all", "", ""); err != nil {
		t.Fatal(err)
	}
}
