package node

import "time"

// Status is the Contract's /v1/status document.
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
	Members    []MemberStatus `json:"members"`
	RESP       string         `json:"resp,omitempty"`
	HTTP       string         `json:"http,omitempty"`
	Peer       string         `json:"peer,omitempty"`
	UptimeSec  float64        `json:"uptime_seconds"`
	Token      string         `json:"token"`
}

// MemberStatus describes another node as this node knows it.
type MemberStatus struct {
	ID         string  `json:"id"`
	Role       string  `json:"role"`
	Sync       bool    `json:"sync"`
	Healthy    bool    `json:"healthy"`
	MatchLSN   uint64  `json:"match_lsn"`
	AppliedLSN uint64  `json:"applied_lsn"`
	LagEntries uint64  `json:"lag_entries"`
	LagSeconds float64 `json:"lag_seconds"`
	State      string  `json:"state,omitempty"`
	RESP       string  `json:"resp,omitempty"`
	HTTP       string  `json:"http,omitempty"`
}

// Status reports the node's state.
func (n *Node) Status() Status {
	st := n.store.State()
	return Status{
		ID:         n.cfg.ID,
		Role:       "leader",
		Leader:     n.cfg.ID,
		Epoch:      n.writer.Epoch(),
		CommitLSN:  n.writer.CommitLSN(),
		AppliedLSN: st.AppliedLSN,
		LastLSN:    st.LastLSN,
		FirstLSN:   st.FirstLSN,
		SyncPolicy: "async",
		Members:    []MemberStatus{},
		RESP:       n.cfg.RESPAddr,
		HTTP:       n.cfg.HTTPAddr,
		Peer:       n.cfg.PeerAddr,
		UptimeSec:  time.Since(n.started).Seconds(),
		Token:      n.Token().String(),
	}
}
