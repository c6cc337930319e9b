package check

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Kind is what an operation did.
type Kind string

// Operation kinds.
const (
	// Write sets a register key to a unique value.
	Write Kind = "write"
	// Read reads a register key.
	Read Kind = "read"
	// Insert writes a key that is written once, never overwritten: a lost
	// insert is an acknowledged write that is gone.
	Insert Kind = "insert"
	// Incr adds Delta to a counter key.
	Incr Kind = "incr"
)

// Outcome is what the client learned of an operation.
type Outcome string

// Outcomes.
const (
	Ok      Outcome = "ok"      // acknowledged
	Fail    Outcome = "fail"    // certainly not applied
	Unknown Outcome = "unknown" // may have been applied
)

// Consistency levels of reads, as the Contract names them.
const (
	Linearizable = "linearizable"
	Session      = "session"
	Eventual     = "eventual"
	// Quorum is a leaderless read that asked R replicas; whether it must
	// see every acknowledged write depends on W+R>N (History.Setup).
	Quorum = "quorum"
	// Siblings is a leaderless read of a key written concurrently, which
	// may answer several values (Op.Siblings); no checker judges it.
	Siblings = "siblings"
)

// Op is one client operation as the client saw it.
type Op struct {
	Process int     `json:"process"` // the client (a session): its ops are sequential
	Kind    Kind    `json:"kind"`
	Key     string  `json:"key"`
	Value   int64   `json:"value,omitempty"` // write/insert: written; read: read (when Found)
	Found   bool    `json:"found,omitempty"` // read: the key held a value
	Delta   int64   `json:"delta,omitempty"` // incr
	Outcome Outcome `json:"outcome"`
	Error   string  `json:"error,omitempty"`
	// Start and End are offsets from the start of the run; End of an
	// Unknown op is when the client gave up.
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
	Node  string        `json:"node,omitempty"` // the node that served it
	// Consistency of a read (Linearizable, Session, Eventual).
	Consistency string `json:"consistency,omitempty"`
	// LSN is the position the node answered with (its token's LSN): for
	// an acknowledged write, the entry that holds it.
	LSN   uint64 `json:"lsn,omitempty"`
	Epoch uint64 `json:"epoch,omitempty"`
	// VersionLSN of a read that found a value: the LSN of the version it
	// returned (the entry that wrote it), as the node reported it.
	VersionLSN uint64 `json:"version_lsn,omitempty"`
	// Siblings of a leaderless read: how many concurrent values it got,
	// and the others besides Value (a read that got siblings saw all of
	// them: it is stale only if every one is).
	Siblings int     `json:"siblings,omitempty"`
	Others   []int64 `json:"others,omitempty"`
}

// Fault is one fault the nemesis injected.
type Fault struct {
	Kind   string        `json:"kind"` // e.g. kill-leader
	Node   string        `json:"node"`
	Start  time.Duration `json:"start"`
	Healed time.Duration `json:"healed"` // 0: not healed within the run
}

// History is a whole run.
type History struct {
	Ops    []Op    `json:"ops"`
	Faults []Fault `json:"faults,omitempty"`
	// Final is what linearizable reads returned for every key the run
	// touched, after the faults were healed and the cluster converged;
	// a key missing from it was not found.
	Final map[string]int64 `json:"final"`
	// Replicas (multi-leader mode) is what each site's node held at the
	// end, read on each one after the links caught up: sites must
	// converge. Final is then the first site's.
	Replicas map[string]map[string]int64 `json:"replicas,omitempty"`
	// Conflicts (multi-leader mode) is how many conflicting writes the
	// sites recorded (GET /v1/conflicts), over all sites.
	Conflicts int `json:"conflicts,omitempty"`
	// Repair (leaderless mode) is how long after the last fault was healed
	// every replica held every acknowledged insert it is a replica of
	// (hinted handoff, anti-entropy: no client reads those keys), or -1
	// when some still lacked one when the run gave up; Unrepaired counts
	// the (replica, key) pairs still missing then.
	Repair     time.Duration `json:"repair,omitempty"`
	Unrepaired int           `json:"unrepaired,omitempty"`
	// RolledBack lists the writes the nodes rolled back after failovers
	// (single-leader mode: the rollback files in their data directories),
	// so that a lost write can be found where the database kept it.
	RolledBack []RolledBack `json:"rolled_back,omitempty"`
	// Setup describes the cluster (mode, policy, …) for the report.
	Setup map[string]string `json:"setup,omitempty"`
}

// RolledBack is one write a node rolled back, as its rollback file
// records it.
type RolledBack struct {
	Node  string `json:"node"`
	File  string `json:"file"`
	Key   string `json:"key"`
	Value int64  `json:"value"`
	Epoch uint64 `json:"epoch"`
	LSN   uint64 `json:"lsn"`
}

// Save writes h as JSON.
func (h *History) Save(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("check: save history: %w", err)
	}
	return nil
}

// Load reads a history Save wrote.
func Load(r io.Reader) (*History, error) {
	var h History
	if err := json.NewDecoder(r).Decode(&h); err != nil {
		return nil, fmt.Errorf("check: load history: %w", err)
	}
	for i, op := range h.Ops {
		switch op.Outcome {
		case Ok, Fail, Unknown:
		default:
			return nil, fmt.Errorf("check: load history: op %d has outcome %q", i, op.Outcome)
		}
	}
	return &h, nil
}
