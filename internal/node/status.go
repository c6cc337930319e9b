package node

import (
	"fmt"
	"time"

	"github.com/replicant-db/replicant/internal/replication"
)

// maxViewAge bounds how old a leader's relayed view of its followers may be
// for a follower's status to show it (the leader sends it about twice a
// second; an older one means the stream is gone).
const maxViewAge = 3 * time.Second

// Status is the Contract's /v1/status document plus extensions.
type Status struct {
	ID         string         `json:"id"`
	Role       string         `json:"role"`
	Leader     string         `json:"leader"`
	Epoch      uint64         `json:"epoch"`
	CommitLSN  uint64         `json:"commit_lsn"`
	AppliedLSN uint64         `json:"applied_lsn"`
	LastLSN    uint64         `json:"last_lsn"`
	FirstLSN   uint64         `json:"first_lsn"`
	SyncPolicy string         `json:"sync_policy"`
	Ack        string         `json:"ack"`
	Fallback   string         `json:"sync_fallback"`
	SyncSet    []string       `json:"sync_set"`
	Members    []MemberStatus `json:"members"`

	// State is this node's replication state: leading, streaming,
	// catching-up, snapshotting, connecting, removed, waiting-for-leader.
	State          string        `json:"state"`
	Reason         string        `json:"reason,omitempty"`
	FallbackActive bool          `json:"fallback_active"`
	Events         []StatusEvent `json:"events,omitempty"`
	Controller     string        `json:"controller,omitempty"`
	LagSeconds     float64       `json:"lag_seconds"`
	ApplyDelay     string        `json:"apply_delay,omitempty"`
	RolledBack     uint64        `json:"rolled_back_entries,omitempty"`
	Snapshot       *SnapshotInfo `json:"snapshot,omitempty"`

	RESP      string  `json:"resp,omitempty"`
	HTTP      string  `json:"http,omitempty"`
	Peer      string  `json:"peer,omitempty"`
	UptimeSec float64 `json:"uptime_seconds"`
	Token     string  `json:"token"`
}

// SnapshotInfo shows an in-progress or last snapshot install.
type SnapshotInfo struct {
	LSN   uint64 `json:"lsn"`
	Bytes uint64 `json:"bytes"`
}

// StatusEvent is a replication event (sync promotion, fallback …).
type StatusEvent struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Follower string    `json:"follower,omitempty"`
	Message  string    `json:"message"`
}

// MemberStatus describes another node as this node knows it.
type MemberStatus struct {
	ID          string  `json:"id"`
	Role        string  `json:"role"`
	Sync        bool    `json:"sync"`
	Healthy     bool    `json:"healthy"`
	MatchLSN    uint64  `json:"match_lsn"`
	ReceivedLSN uint64  `json:"received_lsn"`
	DurableLSN  uint64  `json:"durable_lsn"`
	AppliedLSN  uint64  `json:"applied_lsn"`
	LagEntries  uint64  `json:"lag_entries"`
	LagBytes    uint64  `json:"lag_bytes"`
	LagSeconds  float64 `json:"lag_seconds"`
	State       string  `json:"state,omitempty"`
	// Reason says why the follower last needed a snapshot or rolled back.
	Reason        string `json:"reason,omitempty"`
	SnapshotBytes uint64 `json:"snapshot_bytes,omitempty"`
	// ViewAgeSeconds is set on a follower's status: the row is the
	// leader's view of that member, relayed on the log stream this long ago.
	ViewAgeSeconds float64 `json:"view_age_seconds,omitempty"`
	RESP           string  `json:"resp,omitempty"`
	HTTP           string  `json:"http,omitempty"`
	Peer           string  `json:"peer,omitempty"`
}

// Status reports the node's view of itself and the cluster.
func (n *Node) Status() Status {
	st := n.store.State()
	n.mu.Lock()
	cs := n.state
	leader, fo, removed := n.leader, n.follower, n.removed
	n.mu.Unlock()
	readLSN, _, _ := n.readPosition()
	var progress map[string]MemberStatus
	s := Status{
		ID: n.cfg.ID, Role: "follower", Leader: cs.Leader, Epoch: cs.Epoch,
		CommitLSN: readLSN, AppliedLSN: st.AppliedLSN, LastLSN: st.LastLSN, FirstLSN: st.FirstLSN,
		SyncPolicy: cs.Policy.String(), Ack: cs.Ack.String(), Fallback: cs.Fallback.String(), SyncSet: append([]string{}, cs.SyncSet...),
		Members: []MemberStatus{}, Controller: n.control.ControllerID(),
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
		for _, ev := range leader.Events() {
			s.Events = append(s.Events, StatusEvent{Time: ev.At, Kind: ev.Kind, Follower: ev.Follower, Message: ev.Message})
		}
	case fo != nil:
		fs := fo.f.Status()
		s.State, s.Reason = string(fs.State), fs.Reason
		view := fo.f.LeaderView()
		if !view.At.IsZero() && time.Since(view.At) < maxViewAge {
			s.FallbackActive = view.FallbackActive
			progress = map[string]MemberStatus{}
			age := time.Since(view.At).Seconds()
			for _, p := range view.Followers {
				progress[p.ID] = MemberStatus{ID: p.ID, Sync: p.Sync, Healthy: p.Healthy,
					MatchLSN: p.Durable, ReceivedLSN: p.Received, DurableLSN: p.Durable, AppliedLSN: p.Applied,
					LagEntries: p.LagEntries, LagBytes: p.LagBytes, LagSeconds: p.LagSeconds, State: p.State, ViewAgeSeconds: max(age, 1e-3)}
			}
		}
		s.CommitLSN = fo.f.CommitLSN()
		s.LagSeconds = n.lagSeconds()
		s.RolledBack = fs.RolledBack
		if fs.SnapshotLSN != 0 {
			s.Snapshot = &SnapshotInfo{LSN: fs.SnapshotLSN, Bytes: fs.SnapshotBytes}
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
		progress = map[string]MemberStatus{}
		notes := leader.Notes()
		for _, p := range leader.Progress() {
			ms := MemberStatus{ID: p.ID, Sync: p.Sync, Healthy: p.Healthy,
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
		ms := MemberStatus{ID: m.ID, Role: "follower"}
		if p, ok := progress[m.ID]; ok {
			ms = p
			ms.Role = "follower"
		} else if m.ID == cs.Leader {
			// A follower knows the leader only through its own stream: no
			// positions of the leader's are reported here.
			ms.Role, ms.Healthy, ms.State = "leader", fo != nil && fo.f.Status().State == replication.FollowerStreaming, "leading"
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
