package engine

import "time"

// Status is the Contract's /v1/status document plus extensions.
type Status struct {
	ID string `json:"id"`
	// Mode is the cluster's replication mode (ModeSingleLeader, …).
	Mode       string         `json:"mode"`
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
	// LagEntries (on a follower) is how many entries the leader's log, as
	// its latest message said, holds beyond what this node can serve.
	LagEntries uint64        `json:"lag_entries"`
	ApplyDelay string        `json:"apply_delay,omitempty"`
	RolledBack uint64        `json:"rolled_back_entries,omitempty"`
	Snapshot   *SnapshotInfo `json:"snapshot,omitempty"`

	// WritesBlocked (leader only) says commits wait because the sync
	// policy cannot be met and the fallback is block (or has not engaged
	// yet): writes hang, then fail. BlockedReason says which followers
	// are missing.
	WritesBlocked bool   `json:"writes_blocked,omitempty"`
	BlockedReason string `json:"blocked_reason,omitempty"`
	// Timeline is what this node saw happen, oldest first: the leader's
	// events above while it led, plus failovers, epoch, sync-set, policy,
	// membership, blocked-writes and state changes seen by the HTTP API's
	// monitor (so only /v1/status carries it, not REPLICANT.STATUS).
	Timeline []StatusEvent `json:"timeline,omitempty"`

	RESP      string  `json:"resp,omitempty"`
	HTTP      string  `json:"http,omitempty"`
	Peer      string  `json:"peer,omitempty"`
	UptimeSec float64 `json:"uptime_seconds"`
	Token     string  `json:"token"`

	// Multi-leader mode: this node's site, its incoming links, and how
	// many conflicts it resolved by last-writer-wins.
	Site      string       `json:"site,omitempty"`
	Links     []LinkStatus `json:"links,omitempty"`
	Conflicts uint64       `json:"conflicts,omitempty"`

	// Leaderless mode: N and the ring (every node, its share and health).
	Replicas  int              `json:"replicas,omitempty"`
	Ring      []RingMember     `json:"ring,omitempty"`
	Rebalance *RebalanceStatus `json:"rebalance,omitempty"`
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
	// Epoch is the epoch the event happened in (timeline events only).
	Epoch uint64 `json:"epoch,omitempty"`
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
	// HintsPending (leaderless mode, set for every member there) is how
	// many hints the answering node keeps for this member, to hand over
	// when it is reachable.
	HintsPending *uint64 `json:"hints_pending,omitempty"`
	// LastAntiEntropy (leaderless mode) is when the answering node last
	// completed an anti-entropy comparison with this member (RFC 3339).
	LastAntiEntropy string `json:"last_anti_entropy,omitempty"`
}

// RebalanceStatus is a leaderless node's progress moving keys after the
// membership changed (or before it leaves).
type RebalanceStatus struct {
	// State: moving, done, done-with-failures, interrupted, leaving, left.
	State    string   `json:"state"`
	Members  []string `json:"members"`
	Scanned  uint64   `json:"keys_scanned"`
	Moved    uint64   `json:"keys_moved"`
	Failed   uint64   `json:"keys_failed"`
	Started  string   `json:"started"`
	Finished string   `json:"finished,omitempty"`
	Error    string   `json:"error,omitempty"`
}
