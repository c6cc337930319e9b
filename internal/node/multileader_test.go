package node

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// openSite starts a one-node multi-leader site.
func openSite(t *testing.T, id, site string) *Node {
	t.Helper()
	n, err := Open(Config{ID: id, DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0", Mode: engine.ModeMultiLeader, Site: site})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

func mlSet(t *testing.T, e engine.Engine, k, v string) engine.Token {
	t.Helper()
	tok, err := e.Write(context.Background(), func(tx engine.Txn) error { tx.Set([]byte(k), []byte(v), 0); return nil })
	if err != nil {
		t.Fatalf("set %s: %v", k, err)
	}
	return tok
}

func mlGet(t *testing.T, e engine.Engine, k string, floor engine.Token) (string, bool) {
	t.Helper()
	r, err := e.Read(context.Background(), engine.Consistency{Level: engine.LevelSession}, floor)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	v, ok, err := r.Get([]byte(k))
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Value), ok
}

func TestMultiLeaderSitesConverge(t *testing.T) {
	sites := []*Node{openSite(t, "n1", "eu"), openSite(t, "n2", "us"), openSite(t, "n3", "ap")}
	ctx := context.Background()
	for _, a := range sites {
		for _, b := range sites {
			if a == b {
				continue
			}
			if _, err := a.Engine().(engine.Sites).AddLink(ctx, b.PeerAddr()); err != nil {
				t.Fatalf("link: %v", err)
			}
		}
	}
	// A write on eu is read on us with its token.
	tok := mlSet(t, sites[0].Engine(), "k", "eu")
	if v, ok := mlGet(t, sites[1].Engine(), "k", tok); !ok || v != "eu" {
		t.Fatalf("us reads %q %v with token %s", v, ok, tok)
	}
	// Concurrent increments on every site all count.
	for i := 0; i < 5; i++ {
		for _, s := range sites {
			if _, err := s.Engine().Write(ctx, func(tx engine.Txn) error {
				_, err := tx.(engine.CounterTxn).IncrBy([]byte("c"), 1)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	floor := engine.Token{}
	for _, s := range sites {
		floor = floor.Later(s.Engine().Token())
	}
	for _, s := range sites {
		if v, _ := mlGet(t, s.Engine(), "c", floor); v != "15" {
			t.Fatalf("site %s: c = %q, want 15 (floor %s)", s.ml.Site(), v, floor)
		}
	}
	// Concurrent SETs: every site ends with the same winner.
	for i, s := range sites {
		mlSet(t, s.Engine(), "x", strconv.Itoa(i))
	}
	floor = engine.Token{}
	for _, s := range sites {
		floor = floor.Later(s.Engine().Token())
	}
	var want string
	for i, s := range sites {
		v, _ := mlGet(t, s.Engine(), "x", floor)
		if i == 0 {
			want = v
		} else if v != want {
			t.Fatalf("site %s has x=%q, site eu has %q", s.ml.Site(), v, want)
		}
	}
	t.Logf("winner %s; status %+v", want, sites[0].Engine().Status().Links)
	mfs, err := sites[0].Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
	}
	for _, name := range []string{"replicant_conflicts_total", "replicant_link_lag_entries", "replicant_link_lag_seconds", "replicant_link_streaming"} {
		if !found[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

// A link to the site itself, or to a node that is not a multi-leader site,
// is refused as invalid (HTTP 400), not retried as a transient failure.
func TestAddLinkRefusesItselfAndOtherModes(t *testing.T) {
	eu := openSite(t, "n1", "eu")
	single := openLeader(t)
	sites := eu.Engine().(engine.Sites)
	for _, peer := range []string{eu.PeerAddr(), single.PeerAddr()} {
		if _, err := sites.AddLink(context.Background(), peer); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("AddLink(%s) = %v, want ErrInvalid", peer, err)
		}
	}
	if err := sites.RemoveLink(context.Background(), "us"); !errors.As(err, new(*engine.UnknownLinkError)) {
		t.Errorf("RemoveLink(us) = %v, want UnknownLinkError", err)
	}
}

// A DEL's tombstone is collected on every site once every site has it, and
// not while a site that has not applied it is cut off.
func TestMultiLeaderTombstonesCollectedOnceEverySiteHasThem(t *testing.T) {
	sites := []*Node{openSite(t, "n1", "eu"), openSite(t, "n2", "us"), openSite(t, "n3", "ap")}
	ctx := context.Background()
	link := func(a, b *Node) {
		if _, err := a.Engine().(engine.Sites).AddLink(ctx, b.PeerAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// eu and us linked both ways; ap is not linked yet.
	link(sites[0], sites[1])
	link(sites[1], sites[0])
	mlSet(t, sites[0].Engine(), "k", "v")
	if _, err := sites[0].Engine().Write(ctx, func(tx engine.Txn) error { tx.Del([]byte("k")); return nil }); err != nil {
		t.Fatal(err)
	}
	tombs := func(n *Node) int {
		c, err := n.ml.Tombstones(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if tombs(sites[0]) == 0 {
		t.Fatal("the DEL left no tombstone on eu: nothing to collect, nothing tested")
	}
	// eu and us know nothing of ap's positions yet, but ap is not a site
	// they know of either: they may collect. Link ap to make it known
	// first, then cut it off from eu's log.
	link(sites[2], sites[1]) // ap pulls us only
	link(sites[1], sites[2]) // us pulls ap: us and eu learn ap exists
	link(sites[0], sites[2])
	deadline := time.Now().Add(30 * time.Second)
	for tombs(sites[0]) > 0 || tombs(sites[1]) > 0 || tombs(sites[2]) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("tombstones not collected: eu %d us %d ap %d", tombs(sites[0]), tombs(sites[1]), tombs(sites[2]))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range sites {
		if _, ok := mlGet(t, s.Engine(), "k", engine.Token{}); ok {
			t.Fatalf("site %s shows k after collection", s.ml.Site())
		}
	}

	// Now cut ap off entirely and delete on eu: nobody may collect, since
	// ap has not applied the tombstone.
	for _, pair := range [][2]int{{2, 1}, {1, 2}, {0, 2}} {
		if err := sites[pair[0]].Engine().(engine.Sites).RemoveLink(ctx, sites[pair[1]].ml.Site()); err != nil {
			t.Fatal(err)
		}
	}
	mlSet(t, sites[0].Engine(), "k2", "v")
	if _, err := sites[0].Engine().Write(ctx, func(tx engine.Txn) error { tx.Del([]byte("k2")); return nil }); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for tombs(sites[1]) == 0 { // us holds it too once its link brings it
		if time.Now().After(deadline) {
			t.Fatal("the tombstone never reached us")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * gcRoundsForTest) // several collection rounds pass: nothing may happen
	if tombs(sites[0]) == 0 || tombs(sites[1]) == 0 {
		t.Fatalf("a tombstone ap has not applied was collected: eu %d us %d", tombs(sites[0]), tombs(sites[1]))
	}
	// ap comes back: the tombstone reaches it, then goes everywhere.
	link(sites[2], sites[0])
	link(sites[0], sites[2])
	link(sites[1], sites[2])
	deadline = time.Now().Add(30 * time.Second)
	for tombs(sites[0]) > 0 || tombs(sites[1]) > 0 || tombs(sites[2]) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("tombstones not collected after healing: eu %d us %d ap %d", tombs(sites[0]), tombs(sites[1]), tombs(sites[2]))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gcRoundsForTest is one collection round (multileader's gcInterval).
const gcRoundsForTest = 2 * time.Second
