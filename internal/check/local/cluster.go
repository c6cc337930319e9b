package local

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Cluster is a set of nodes n1..nN bootstrapped together with
// --initial-cluster.
type Cluster struct {
	Nodes []*Node
}

// NewCluster prepares n nodes with data directories under dir; flags go
// to every node.
func NewCluster(ports *Ports, binary, dir string, n int, flags ...string) (*Cluster, error) {
	c := &Cluster{}
	var initial []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		nd, err := NewNode(ports, binary, id, filepath.Join(dir, id))
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, nd)
		initial = append(initial, id+"="+nd.Peer)
	}
	for _, nd := range c.Nodes {
		nd.Args = append([]string{"--initial-cluster", strings.Join(initial, ",")}, flags...)
	}
	return c, nil
}

// NewLabCluster is NewCluster with node i in namespace i of lab (which
// must have at least n): partitions can then cut nodes off.
func NewLabCluster(lab *Lab, binary, dir string, n int, flags ...string) (*Cluster, error) {
	if n > lab.n {
		return nil, fmt.Errorf("local: %d nodes in a lab of %d", n, lab.n)
	}
	c := &Cluster{}
	var initial []string
	for i := 1; i <= n; i++ {
		nd := lab.NewNode(i, binary, filepath.Join(dir, fmt.Sprintf("n%d", i)))
		c.Nodes = append(c.Nodes, nd)
		initial = append(initial, nd.ID+"="+nd.Peer)
	}
	for _, nd := range c.Nodes {
		nd.Args = append([]string{"--initial-cluster", strings.Join(initial, ",")}, flags...)
	}
	return c, nil
}

// Discover builds a Cluster of running nodes it does not manage (no
// process: they cannot be started, killed or paused) from the HTTP
// address of one or more of them: each one's status names the others.
func Discover(ctx context.Context, httpAddrs []string) (*Cluster, error) {
	c := &Cluster{}
	seen := map[string]bool{}
	queue := append([]string(nil), httpAddrs...)
	var lastErr error
	for len(queue) > 0 {
		addr := queue[0]
		queue = queue[1:]
		if seen[addr] {
			continue
		}
		seen[addr] = true
		probe := &Node{ID: addr, HTTP: addr}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := probe.Status(sctx)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if c.Node(st.ID) == nil {
			c.Nodes = append(c.Nodes, &Node{ID: st.ID, HTTP: addr, RESP: st.RESP, Log: &Buffer{}})
		}
		for _, m := range st.Members {
			if m.HTTP != "" && !seen[m.HTTP] {
				queue = append(queue, m.HTTP)
			}
		}
	}
	if len(c.Nodes) == 0 {
		return nil, fmt.Errorf("local: no node answered at %v: %w", httpAddrs, lastErr)
	}
	return c, nil
}

// Start starts every node and waits until each is ready.
func (c *Cluster) Start(ctx context.Context) error {
	for _, nd := range c.Nodes {
		if err := nd.Start(); err != nil {
			return err
		}
	}
	for _, nd := range c.Nodes {
		if err := nd.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Node returns the node with id, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, nd := range c.Nodes {
		if nd.ID == id {
			return nd
		}
	}
	return nil
}

// Leader returns the data leader most of the reachable nodes name, with
// its epoch (single-leader mode; in multi-leader mode, the site's).
func (c *Cluster) Leader(ctx context.Context) (*Node, uint64, error) {
	votes := map[string]int{}
	epochs := map[string]uint64{}
	reached := 0
	for _, nd := range c.Nodes {
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		st, err := nd.Status(sctx)
		cancel()
		if err != nil {
			continue
		}
		reached++
		if st.Leader != "" {
			votes[st.Leader]++
			epochs[st.Leader] = max(epochs[st.Leader], st.Epoch)
		}
	}
	best, n := "", 0
	for id, v := range votes {
		if v > n || (v == n && epochs[id] > epochs[best]) {
			best, n = id, v
		}
	}
	if best == "" || 2*n <= reached {
		return nil, 0, errors.New("local: no leader agreed on by most reachable nodes")
	}
	nd := c.Node(best)
	if nd == nil {
		return nil, 0, fmt.Errorf("local: leader %s is not one of this cluster's nodes", best)
	}
	return nd, epochs[best], nil
}

// WaitLeader polls until Leader succeeds or ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) (*Node, uint64, error) {
	for {
		nd, ep, err := c.Leader(ctx)
		if err == nil {
			return nd, ep, nil
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close kills every node.
func (c *Cluster) Close() {
	for _, nd := range c.Nodes {
		_ = nd.Kill()
	}
}
