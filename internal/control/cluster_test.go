package control

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	testTick    = 20 * time.Millisecond
	waitTimeout = 15 * time.Second
)

func testLogger(id string) *slog.Logger {
	if os.Getenv("CONTROL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", id)
	}
	return slog.New(slog.DiscardHandler)
}

func testMember(id string, i int) Member {
	return Member{
		ID:       id,
		PeerAddr: fmt.Sprintf("127.0.0.1:%d", 9080+i),
		RESPAddr: fmt.Sprintf("127.0.0.1:%d", 6380+i),
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", 8080+i),
	}
}

// cluster is a set of Groups over one memNet, each with its own directory.
type cluster struct {
	t       *testing.T
	net     *memNet
	root    string
	initial []Member
	base    Config // template: policy, snapshot interval, ...

	mu     sync.Mutex
	groups map[string]*Group
}

func newCluster(t *testing.T, n int, base Config) *cluster {
	t.Helper()
	c := &cluster{t: t, net: newMemNet(), root: t.TempDir(), base: base, groups: make(map[string]*Group)}
	for i := 1; i <= n; i++ {
		c.initial = append(c.initial, testMember(fmt.Sprintf("n%d", i), i))
	}
	t.Cleanup(c.closeAll)
	for _, m := range c.initial {
		c.open(m, false)
	}
	return c
}

func (c *cluster) dir(id string) string { return filepath.Join(c.root, id, "control") }

func (c *cluster) config(m Member, join bool) Config {
	cfg := c.base
	cfg.ID = m.ID
	cfg.Self = m
	cfg.Dir = c.dir(m.ID)
	cfg.Join = join
	if !join {
		cfg.InitialCluster = c.initial
	}
	cfg.TickInterval = testTick
	cfg.Logger = testLogger(m.ID)
	cfg.Transport = c.net.transport(RaftID(m.ID))
	return cfg
}

func (c *cluster) open(m Member, join bool) *Group {
	c.t.Helper()
	g, err := Open(c.config(m, join))
	if err != nil {
		c.t.Fatalf("open %s: %v", m.ID, err)
	}
	c.net.attach(g)
	c.mu.Lock()
	c.groups[m.ID] = g
	c.mu.Unlock()
	return g
}

func (c *cluster) g(id string) *Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groups[id]
	if !ok {
		c.t.Fatalf("no running node %s", id)
	}
	return g
}

func (c *cluster) live() []*Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	return out
}

// stop closes one node (as a crash would, minus the torn writes).
func (c *cluster) stop(id string) {
	c.t.Helper()
	c.mu.Lock()
	g, ok := c.groups[id]
	delete(c.groups, id)
	c.mu.Unlock()
	if !ok {
		return
	}
	c.net.detach(g.RaftID())
	if err := g.Close(); err != nil {
		c.t.Errorf("close %s: %v", id, err)
	}
}

func (c *cluster) closeAll() {
	c.mu.Lock()
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.stop(id)
	}
	c.net.close()
}

// waitFor polls cond until it holds or the timeout ends.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// controller waits until exactly one live node is the controller and every
// live node names it.
func (c *cluster) controller() *Group {
	c.t.Helper()
	var ctl *Group
	waitFor(c.t, "one controller", func() bool {
		ctl = nil
		for _, g := range c.live() {
			if g.IsController() {
				if ctl != nil {
					return false
				}
				ctl = g
			}
		}
		if ctl == nil {
			return false
		}
		for _, g := range c.live() {
			if g.ControllerID() != ctl.ID() {
				return false
			}
		}
		return true
	})
	return ctl
}

// follower returns a live node that is not the controller.
func (c *cluster) follower() *Group {
	c.t.Helper()
	ctl := c.controller()
	for _, g := range c.live() {
		if g != ctl {
			return g
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// converge waits until every live node's state satisfies cond.
func (c *cluster) converge(what string, cond func(State) bool) {
	c.t.Helper()
	waitFor(c.t, what, func() bool {
		for _, g := range c.live() {
			if !cond(g.State()) {
				return false
			}
		}
		return true
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
