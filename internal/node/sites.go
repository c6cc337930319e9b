package node

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// HandleChanges serves a link from another multi-leader site.
func (n *Node) HandleChanges(req *pb.ChangesRequest, stream pb.Peer_ChangesServer) error {
	if n.ml == nil {
		return status.Errorf(codes.FailedPrecondition, "node %s runs %s mode, not multi-leader: it has no site to link to", n.cfg.ID, n.mode())
	}
	return n.ml.ServeChanges(req, stream)
}

// HandleSiteInfo names this node's site.
func (n *Node) HandleSiteInfo(ctx context.Context, req *pb.SiteInfoRequest) (*pb.SiteInfoResponse, error) {
	if n.ml == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s runs %s mode, not multi-leader: it has no site to link to", n.cfg.ID, n.mode())
	}
	return n.ml.SiteInfo(ctx)
}

func (n *Node) mode() string {
	if n.cfg.Mode == "" {
		return engine.ModeSingleLeader
	}
	return n.cfg.Mode
}

// Engine is the engine the client APIs serve from: the multi-leader
// engine in that mode, the node itself in single-leader mode.
func (n *Node) Engine() engine.Engine {
	switch {
	case n.ml != nil:
		return n.ml
	case n.ll != nil:
		return n.ll
	}
	return n
}

// duties are the controller's background duties: failover of the data
// leader, except in leaderless mode, which has none.
func (n *Node) duties() []control.Duty {
	if n.cfg.Mode == engine.ModeLeaderless {
		return nil
	}
	return []control.Duty{(&failoverDuty{n: n}).run}
}

// checkMode records the mode of a new data directory and refuses to run
// an existing one in another mode: the stored values of the modes differ
// (multi-leader keeps records with clocks and counters), so reading one
// mode's data in another would misread every key.
func (n *Node) checkMode() error {
	want := n.mode()
	if want == engine.ModeMultiLeader {
		want += " " + n.cfg.Site
	}
	got, err := n.store.GetMeta("mode")
	if err != nil {
		return fmt.Errorf("node: reading the data directory's mode: %w", err)
	}
	if got == nil {
		if n.store.State().LastLSN > 0 && n.mode() != engine.ModeSingleLeader {
			// Written before modes existed: single-leader data.
			return fmt.Errorf("node: %s holds single-leader data; it cannot run in %s mode (start with a new --data directory)", n.cfg.DataDir, n.mode())
		}
		if err := n.store.PutMeta("mode", []byte(want)); err != nil {
			return fmt.Errorf("node: recording the data directory's mode: %w", err)
		}
		return nil
	}
	if string(got) != want {
		mode, site, _ := strings.Cut(string(got), " ")
		hint := "--mode " + mode
		if site != "" {
			hint += " --site " + site
		}
		return fmt.Errorf("node: %s was created in %s mode%s; restart it with %s (or use a new --data directory)",
			n.cfg.DataDir, mode, map[bool]string{true: " (site " + site + ")", false: ""}[site != ""], hint)
	}
	return nil
}

// ReadCommitted reads committed log entries from `from` (multi-leader links).
func (n *Node) ReadCommitted(from uint64, maxBytes int, fn func(storage.Entry) error) (uint64, error) {
	commit, _, _ := n.readPosition()
	if from > commit {
		return commit, nil
	}
	return commit, n.store.ReadLog(from, commit, maxBytes, fn)
}

// LogBounds returns the first LSN the log holds and the commit LSN.
func (n *Node) LogBounds() (uint64, uint64) {
	commit, _, _ := n.readPosition()
	return n.store.State().FirstLSN, commit
}

// Changed returns a channel closed when the read position may have moved.
func (n *Node) Changed() <-chan struct{} {
	_, ch, _ := n.readPosition()
	return ch
}

// PeerClient dials a peer address through the node's pool.
func (n *Node) PeerClient(addr string) (pb.PeerClient, error) { return n.pool.Client(addr) }

// SitePeers are the peer addresses of this cluster's members, leader first.
func (n *Node) SitePeers() []string {
	n.mu.Lock()
	st := n.state
	n.mu.Unlock()
	var out []string
	if m, ok := st.Member(st.Leader); ok && m.PeerAddr != "" {
		out = append(out, m.PeerAddr)
	}
	for _, m := range st.Members {
		if m.ID != st.Leader && m.PeerAddr != "" {
			out = append(out, m.PeerAddr)
		}
	}
	return out
}
