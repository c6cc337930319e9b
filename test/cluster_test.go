package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/client"
)

// cluster is a set of real replicant processes bootstrapped together.
type cluster struct {
	t     *testing.T
	nodes []*proc
}

// newCluster prepares n nodes n1..nN sharing --initial-cluster; flags go to
// every node. It starts them all and waits until n1 leads and every
// follower streams.
func newCluster(t *testing.T, n int, flags ...string) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var initial []string
	for i := 1; i <= n; i++ {
		p := newProc(t, fmt.Sprintf("n%d", i))
		c.nodes = append(c.nodes, p)
		initial = append(initial, p.ID+"="+p.Peer)
	}
	for _, p := range c.nodes {
		p.Args = append([]string{"--initial-cluster", strings.Join(initial, ",")}, flags...)
	}
	for _, p := range c.nodes {
		p.startNoWait()
	}
	for _, p := range c.nodes {
		p.waitHealthy()
	}
	c.waitFor("n1 leads and every follower streams", 30*time.Second, func() bool {
		for _, p := range c.nodes {
			st, err := p.status()
			if err != nil || st.Leader != "n1" {
				return false
			}
			if p.ID != "n1" && st.State != "streaming" {
				return false
			}
		}
		return true
	})
	return c
}

func (c *cluster) node(id string) *proc {
	for _, p := range c.nodes {
		if p.ID == id {
			return p
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// waitFor polls cond until it holds or the deadline passes.
func (c *cluster) waitFor(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	waitFor(c.t, what, d, cond)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// The tests read /v1/status through the public client's types.
type (
	nodeStatus   = client.Status
	memberStatus = client.Member
	statusEvent  = client.Event
)

func (p *proc) status() (*nodeStatus, error) {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + p.HTTP + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st nodeStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (p *proc) mustStatus() *nodeStatus {
	p.t.Helper()
	st, err := p.status()
	if err != nil {
		p.t.Fatalf("status of %s: %v", p.ID, err)
	}
	return st
}

func (p *proc) redis() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.RESP, MaxRetries: -1})
	p.t.Cleanup(func() { c.Close() })
	return c
}

// waitCaughtUp waits until every running node has applied and committed
// the leader's commit LSN.
func (c *cluster) waitCaughtUp(leader *proc, nodes ...*proc) {
	c.t.Helper()
	target := leader.mustStatus().CommitLSN
	for _, p := range nodes {
		c.waitFor(fmt.Sprintf("%s reaches LSN %d", p.ID, target), 30*time.Second, func() bool {
			st, err := p.status()
			return err == nil && st.AppliedLSN >= target && st.CommitLSN >= target
		})
	}
}

func bg(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}
