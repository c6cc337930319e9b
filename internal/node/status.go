package node

import (
	"fmt"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/replication"
)

// maxViewAge bounds how old a leader's relayed view of its followers may be
// for a follower's status to show it (the leader sends it about twice a
// second; an older one means the stream is gone).
const maxViewAge = 3 * time.Second

// Status reports the node's view of itself and the cluster.
func (n *Node) Status() engine.Status {
	st := n.store.State()
	n.mu.Lock()
	cs := n.state
	leader, fo, removed := n.leader, n.follower, n.removed
	n.mu.Unlock()
	readLSN, _, _ := n.readPosition()
	var progress map[string]engine.MemberStatus
	s := engine.Status{
		ID: n.cfg.ID, Mode: engine.ModeSingleLeader, Role: "follower", Leader: cs.Leader, Epoch: cs.Epoch,
		CommitLSN: readLSN, AppliedLSN: st.AppliedLSN, LastLSN: st.LastLSN, FirstLSN: st.FirstLSN,
		SyncPolicy: cs.Policy.String(), Ack: cs.Ack.String(), Fallback: cs.Fallback.String(), SyncSet: append([]string{}, cs.SyncSet...),
		Members: []engine.MemberStatus{}, Controller: n.control.ControllerID(),
		RESP: n.cfg.RESPAddr, HTTP: n.cfg.HTTPAddr, Peer: n.PeerAddr(),
		UptimeSec: time.Since(n.started).Seconds(), Token: n.Token().String(),
	}
	if n.cfg.ApplyDelay > 0 {
		s.ApplyDelay = n.cfg.ApplyDelay.String()
	}
	switch {
	case removed:
		s.State = "removed"
	case leader != nil:
		s.Role, s.State = "leader", "leading"
		if !n.leaseValid(leader.Epoch()) {
			s.State, s.Reason = "lease-expired", "cannot renew the leader lease through the control plane: writes and linearizable reads are refused"
		}
		s.FallbackActive = leader.FallbackActive()
		s.WritesBlocked, s.BlockedReason = leader.Blocked()
		for _, ev := range leader.Events() {
			s.Events = append(s.Events, engine.StatusEvent{Time: ev.At, Kind: ev.Kind, Follower: ev.Follower, Message: ev.Message})
		}
	case fo != nil:
		fs := fo.f.Status()
		s.State, s.Reason = string(fs.State), fs.Reason
		view := fo.f.LeaderView()
		if !view.At.IsZero() && time.Since(view.At) < maxViewAge {
			s.FallbackActive = view.FallbackActive
			progress = map[string]engine.MemberStatus{}
			age := time.Since(view.At).Seconds()
			for _, p := range view.Followers {
				progress[p.ID] = engine.MemberStatus{ID: p.ID, Sync: p.Sync, Healthy: p.Healthy,
					MatchLSN: p.Durable, ReceivedLSN: p.Received, DurableLSN: p.Durable, AppliedLSN: p.Applied,
					LagEntries: p.LagEntries, LagBytes: p.LagBytes, LagSeconds: p.LagSeconds, State: p.State, ViewAgeSeconds: max(age, 1e-3)}
			}
		}
		s.CommitLSN = fo.f.CommitLSN()
		s.LagSeconds = n.lagSeconds()
		if read := fo.f.ReadLSN(); fs.LeaderLast > read {
			s.LagEntries = fs.LeaderLast - read
		}
		s.RolledBack = fs.RolledBack
		if fs.SnapshotLSN != 0 {
			s.Snapshot = &engine.SnapshotInfo{LSN: fs.SnapshotLSN, Bytes: fs.SnapshotBytes}
		}
		if fs.State == replication.FollowerConnecting && fs.LastError != "" {
			s.Reason = fs.LastError
		}
	default:
		s.State = "waiting-for-leader"
	}
	if leader == nil && !removed && n.control.ControllerID() == "" && time.Since(n.started) > 2*n.cfg.FailoverTimeout {
		// Without a controller nothing can be appointed or reconfigured:
		// say so rather than "connecting" to a leader that may be gone.
		s.State = "no-quorum"
		s.Reason = fmt.Sprintf("the control plane has no quorum (no controller reachable among %d members): no failover, policy or membership change can happen until a majority is back", len(cs.Members))
	}
	if leader != nil {
		progress = map[string]engine.MemberStatus{}
		notes := leader.Notes()
		for _, p := range leader.Progress() {
			ms := engine.MemberStatus{ID: p.ID, Sync: p.Sync, Healthy: p.Healthy,
				MatchLSN: p.Durable, ReceivedLSN: p.Received, DurableLSN: p.Durable, AppliedLSN: p.Applied,
				LagEntries: p.LagEntries, LagBytes: leader.LagBytes(p.Applied), LagSeconds: p.LagSeconds, State: p.State}
			if nt, ok := notes[p.ID]; ok {
				ms.Reason = nt.Reason
				if nt.Snapshotting {
					ms.State, ms.SnapshotBytes = "snapshotting", nt.SnapshotBytes
				}
			}
			progress[p.ID] = ms
		}
	}
	for _, m := range cs.Members {
		if m.ID == n.cfg.ID {
			continue
		}
		ms := engine.MemberStatus{ID: m.ID, Role: "follower"}
		if p, ok := progress[m.ID]; ok {
			ms = p
			ms.Role = "follower"
		} else if m.ID == cs.Leader {
			ms = leaderRow(m.ID, fo)
		} else if leader == nil {
			// Neither this node's own progress (it does not lead) nor a
			// fresh view relayed by the leader: say so, rather than zeros
			// that read as a member that fell behind.
			ms.State, ms.Reason = "unknown", "no recent view of this member from the leader (this node does not stream from it now)"
		}
		for _, id := range cs.SyncSet {
			if id == m.ID {
				ms.Sync = true
			}
		}
		ms.RESP, ms.HTTP, ms.Peer = m.RESPAddr, m.HTTPAddr, m.PeerAddr
		s.Members = append(s.Members, ms)
	}
	return s
}

// leaderRow is the leader as a follower knows it: from its own stream, so
// only while that stream is up. The leader holds (and has applied: a
// leader writes an entry and its versions in one batch) its last LSN, and
// holds durably at least the commit LSN it sent (it never commits past its
// own fsync); neither is relayed more often than the leader sends
// messages, hence the view's age.
func leaderRow(id string, fo *follower) engine.MemberStatus {
	ms := engine.MemberStatus{ID: id, Role: "leader", State: "leading"}
	if fo == nil || fo.leaderID != id {
		ms.State, ms.Reason = "unknown", "this node does not stream from the leader now"
		return ms
	}
	fs := fo.f.Status()
	ms.Healthy = fs.State == replication.FollowerStreaming
	if !ms.Healthy {
		ms.Reason = fmt.Sprintf("this node's stream from the leader is %s", fs.State)
	}
	if fs.LastContact.IsZero() {
		return ms
	}
	ms.ReceivedLSN, ms.AppliedLSN = fs.LeaderLast, fs.LeaderLast
	ms.DurableLSN = min(fs.LeaderCommit, fs.LeaderLast)
	ms.MatchLSN = ms.DurableLSN
	ms.ViewAgeSeconds = max(time.Since(fs.LastContact).Seconds(), 1e-3)
	return ms
}
