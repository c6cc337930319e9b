package control

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// memNet delivers raft messages between Groups of one process. Messages are
// serialized as they would be on the wire. A node can be isolated (all its
// messages in and out are dropped) to simulate a partition.
type memNet struct {
	mu       sync.Mutex
	nodes    map[uint64]*memNode
	isolated map[uint64]bool
}

type memNode struct {
	g      *Group
	in     chan []byte
	cancel context.CancelFunc
	done   chan struct{}
}

func newMemNet() *memNet {
	return &memNet{nodes: make(map[uint64]*memNode), isolated: make(map[uint64]bool)}
}

type memTransport struct {
	net  *memNet
	from uint64
}

func (n *memNet) transport(from uint64) Transport { return &memTransport{net: n, from: from} }

func (t *memTransport) Send(msgs []*raftpb.Message) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	if t.net.isolated[t.from] {
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		node, ok := t.net.nodes[to]
		if !ok || t.net.isolated[to] {
			continue
		}
		b, err := proto.Marshal(m)
		if err != nil {
			continue
		}
		select {
		case node.in <- b:
		default: // overloaded: drop, raft retries
		}
	}
}

// attach starts delivering messages addressed to g.
func (n *memNet) attach(g *Group) {
	ctx, cancel := context.WithCancel(context.Background())
	node := &memNode{g: g, in: make(chan []byte, 1024), cancel: cancel, done: make(chan struct{})}
	n.mu.Lock()
	n.nodes[g.RaftID()] = node
	n.mu.Unlock()
	go func() {
		defer close(node.done)
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-node.in:
				m := &raftpb.Message{}
				if err := proto.Unmarshal(b, m); err != nil {
					continue
				}
				sctx, scancel := context.WithTimeout(ctx, time.Second)
				_ = g.Step(sctx, m)
				scancel()
			}
		}
	}()
}

// detach stops delivering to raftID.
func (n *memNet) detach(raftID uint64) {
	n.mu.Lock()
	node, ok := n.nodes[raftID]
	delete(n.nodes, raftID)
	n.mu.Unlock()
	if ok {
		node.cancel()
		<-node.done
	}
}

func (n *memNet) isolate(raftID uint64, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[raftID] = on
}

func (n *memNet) close() {
	n.mu.Lock()
	ids := make([]uint64, 0, len(n.nodes))
	for id := range n.nodes {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		n.detach(id)
	}
}
