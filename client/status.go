package client

import "time"

// Status mirrors the node's /v1/status document (the Contract's fields and
// the extensions this client knows).
type Status struct {
	ID         string   `json:"id"`
	Role       string   `json:"role"`
	Leader     string   `json:"leader"`
	Epoch      uint64   `json:"epoch"`
	CommitLSN  uint64   `json:"commit_lsn"`
	AppliedLSN uint64   `json:"applied_lsn"`
	LastLSN    uint64   `json:"last_lsn"`
	FirstLSN   uint64   `json:"first_lsn"`
	SyncPolicy string   `json:"sync_policy"`
	Ack        string   `json:"ack"`
	Fallback   string   `json:"sync_fallback"`
	SyncSet    []string `json:"sync_set"`
	State      string   `json:"state"`
	Reason     string   `json:"reason"`
	LagSeconds float64  `json:"lag_seconds"`
	// LagEntries, on a follower, is how many entries the leader holds
	// beyond what the follower can serve.
	LagEntries uint64 `json:"lag_entries"`
	Controller string `json:"controller"`
	// FallbackActive is true while commits ignore the sync policy.
	FallbackActive bool     `json:"fallback_active"`
	Events         []Event  `json:"events"`
	RolledBack     uint64   `json:"rolled_back_entries"`
	Members        []Member `json:"members"`
	RESP           string   `json:"resp"`
	HTTP           string   `json:"http"`
	Peer           string   `json:"peer"`
	UptimeSec      float64  `json:"uptime_seconds"`
	Token          string   `json:"token"`

	// Mode is the cluster's replication mode: single-leader,
	// multi-leader or leaderless.
	Mode string `json:"mode"`
	// Multi-leader mode: the node's site, the links it pulls from and
	// how many conflicts it resolved.
	Site      string `json:"site,omitempty"`
	Links     []Link `json:"links,omitempty"`
	Conflicts uint64 `json:"conflicts,omitempty"`

	// Leaderless mode: N, the ring, and the progress of moving keys after
	// the membership changed.
	Replicas  int          `json:"replicas,omitempty"`
	Ring      []RingMember `json:"ring,omitempty"`
	Rebalance *Rebalance   `json:"rebalance,omitempty"`
}

// RingMember is one node's place on a leaderless ring.
type RingMember struct {
	ID      string  `json:"id"`
	Share   float64 `json:"share"`
	Primary float64 `json:"primary"`
	Ranges  int     `json:"ranges"`
	Healthy bool    `json:"healthy"`
	// Joining: the node joined and receives writes, but reads do not ask
	// it until every member has handed off its keys for the new ring.
	Joining bool `json:"joining,omitempty"`
}

// Rebalance is a leaderless node's progress moving keys to new replicas.
type Rebalance struct {
	State    string   `json:"state"`
	Members  []string `json:"members"`
	Scanned  uint64   `json:"keys_scanned"`
	Moved    uint64   `json:"keys_moved"`
	Failed   uint64   `json:"keys_failed"`
	Started  string   `json:"started"`
	Finished string   `json:"finished"`
	Error    string   `json:"error"`
}

// Link is one site another site pulls from (multi-leader mode).
type Link struct {
	Site             string   `json:"site"`
	Peers            []string `json:"peers"`
	State            string   `json:"state"`
	Reason           string   `json:"reason"`
	Connected        string   `json:"connected"`
	LagEntries       uint64   `json:"lag_entries"`
	LagSeconds       float64  `json:"lag_seconds"`
	AppliedOriginLSN uint64   `json:"applied_origin_lsn"`
	RemoteLSN        uint64   `json:"remote_lsn"`
}

// Member is one other node as the answering node sees it.
type Member struct {
	ID            string  `json:"id"`
	Role          string  `json:"role"`
	Sync          bool    `json:"sync"`
	Healthy       bool    `json:"healthy"`
	MatchLSN      uint64  `json:"match_lsn"`
	ReceivedLSN   uint64  `json:"received_lsn"`
	DurableLSN    uint64  `json:"durable_lsn"`
	AppliedLSN    uint64  `json:"applied_lsn"`
	LagEntries    uint64  `json:"lag_entries"`
	LagBytes      uint64  `json:"lag_bytes"`
	LagSeconds    float64 `json:"lag_seconds"`
	State         string  `json:"state"`
	Reason        string  `json:"reason"`
	SnapshotBytes uint64  `json:"snapshot_bytes"`
	RESP          string  `json:"resp"`
	HTTP          string  `json:"http"`
	Peer          string  `json:"peer"`
	// ViewAgeSeconds, on a follower's status, is how old the leader's
	// relayed view of this member is (0 on the leader's own status).
	ViewAgeSeconds float64 `json:"view_age_seconds,omitempty"`
	// Leaderless mode: the hints the answering node keeps for this member
	// and when it last compared key ranges with it (anti-entropy).
	HintsPending    *uint64 `json:"hints_pending,omitempty"`
	LastAntiEntropy string  `json:"last_anti_entropy,omitempty"`
}

// Event is a replication event reported by the leader.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Follower string    `json:"follower"`
	Message  string    `json:"message"`
}
