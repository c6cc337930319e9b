package client

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
	Members    []Member `json:"members"`
	RESP       string   `json:"resp"`
	HTTP       string   `json:"http"`
	Peer       string   `json:"peer"`
	UptimeSec  float64  `json:"uptime_seconds"`
	Token      string   `json:"token"`
}

// Member is one other node as the answering node sees it.
type Member struct {
	ID         string  `json:"id"`
	Role       string  `json:"role"`
	Sync       bool    `json:"sync"`
	Healthy    bool    `json:"healthy"`
	MatchLSN   uint64  `json:"match_lsn"`
	AppliedLSN uint64  `json:"applied_lsn"`
	LagEntries uint64  `json:"lag_entries"`
	LagSeconds float64 `json:"lag_seconds"`
	State      string  `json:"state"`
	RESP       string  `json:"resp"`
	HTTP       string  `json:"http"`
}
