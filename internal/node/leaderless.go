package node

import (
	"fmt"

	"context"
	"github.com/replicant-db/replicant/internal/leaderless"
	"github.com/replicant-db/replicant/internal/storage"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/replication"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// In leaderless mode a node has no data role: the control plane keeps the
// membership (the ring), and every node writes its own log through a local
// writer that commits at its own fsync. The leaderless engine coordinates
// quorums across nodes on top of that.

// startLocal starts the local writer of leaderless mode. Its entries carry
// epoch 1: the log has one writer for its whole life.
func (n *Node) startLocal() {
	n.local = replication.NewWriter(replication.WriterConfig{Store: n.store, Epoch: 1, Logger: n.log.With("role", "replica")})
}

// LocalWrite runs fn as one durable entry of this node's own log.
func (n *Node) LocalWrite(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	if n.local == nil {
		return engine.Token{}, status.Error(codes.FailedPrecondition, "not a leaderless node")
	}
	return n.local.Propose(ctx, fn)
}

// LocalRead reads this node's own committed state.
func (n *Node) LocalRead() engine.Reader {
	lsn := n.store.State().CommitLSN
	if n.local != nil {
		lsn = n.local.CommitLSN()
	}
	return &replication.Reader{Store: n.store, LSN: lsn, Epoch: n.store.EpochAt(lsn), ClockMs: time.Now().UnixMilli()}
}

// Peers are the cluster's members as id → peer address, from the control
// plane (the ring's membership).
func (n *Node) Peers() map[string]string {
	n.mu.Lock()
	st := n.state
	n.mu.Unlock()
	out := make(map[string]string, len(st.Members))
	for _, m := range st.Members {
		out[m.ID] = m.PeerAddr
	}
	return out
}

// Joining returns the members that joined and are not read from yet, and
// whether this node has reported a handoff for the current membership.
func (n *Node) Joining() (joining []string, handedOff bool) {
	n.mu.Lock()
	st := n.state
	n.mu.Unlock()
	for _, m := range st.Members {
		if m.Joining {
			joining = append(joining, m.ID)
		}
	}
	return joining, st.Handoffs[n.cfg.ID] == control.MembershipID(st.MemberIDs())
}

// ReportHandoff records in the control plane that this node finished
// handing off its keys for the membership members.
func (n *Node) ReportHandoff(ctx context.Context, members []string) error {
	return n.control.ReportHandoff(ctx, n.cfg.ID, control.MembershipID(members))
}

// MemberAddrs returns a member's client addresses (RESP, HTTP).
func (n *Node) MemberAddrs(id string) (resp, http string) {
	n.mu.Lock()
	st := n.state
	n.mu.Unlock()
	m, _ := st.Member(id)
	return m.RESPAddr, m.HTTPAddr
}

// HandleReplica serves a leaderless coordinator's store or fetch.
func (n *Node) HandleReplica(ctx context.Context, req *pb.ReplicaRequest) (*pb.ReplicaResponse, error) {
	if n.ll == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s runs %s mode, not leaderless", n.cfg.ID, n.mode())
	}
	return n.ll.HandleReplica(ctx, req)
}

// HandleAntiEntropy serves another leaderless replica comparing a range.
func (n *Node) HandleAntiEntropy(ctx context.Context, req *pb.AntiEntropyRequest) (*pb.AntiEntropyResponse, error) {
	if n.ll == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s runs %s mode, not leaderless", n.cfg.ID, n.mode())
	}
	return n.ll.HandleAntiEntropy(ctx, req)
}

// LocalChanges replays this node's own log entries from..to for the
// leaderless engine's anti-entropy index.
func (n *Node) LocalChanges(ctx context.Context, from, to uint64, fn func(leaderless.Change) error) error {
	return n.store.ReadLog(from, to, 0, func(e storage.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, op := range e.Ops {
			c := leaderless.Change{Key: op.Key}
			switch op.Kind {
			case storage.OpSet:
				c.State = op.Value
			case storage.OpDel:
			case storage.OpFlush:
				c.Flush = true
			default:
				return fmt.Errorf("node: log entry %d: unknown operation %v", e.LSN, op.Kind)
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	})
}
