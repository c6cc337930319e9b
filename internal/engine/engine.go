package engine

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicant-db/replicant/internal/replication"
)

// Defaults of the Contract's limits.
const (
	DefaultMaxKeySize   = 64 << 10
	DefaultMaxValueSize = 16 << 20
)

// Engine is what the client APIs need from a node running one replication
// mode.
type Engine interface {
	// Write runs fn as one command on the mode's write path and returns
	// once its outcome (a write, a no-op or fn's error) is final, with the
	// token of the state it depends on. A node that does not take writes
	// returns a *replication.NotLeaderError.
	Write(ctx context.Context, fn func(*replication.Txn) error) (replication.Token, error)
	// Read returns a reader at the freshest state c allows, no older than
	// floor.
	Read(ctx context.Context, c replication.Consistency, floor replication.Token) (*replication.Reader, error)
	// Token is the token of the node's current read state.
	Token() replication.Token
	// IsLeader reports whether this node takes writes now.
	IsLeader() bool
	// WaitReplicas waits until want replicas acknowledged lsn durably, or
	// ctx ends, and returns how many have (Redis's WAIT).
	WaitReplicas(ctx context.Context, lsn uint64, want int) (int, error)
	// CheckKey and CheckValue return a *replication.LimitError above the
	// configured limits.
	CheckKey(key []byte) error
	CheckValue(size int) error

	// Status is the Contract's status document.
	Status() Status
	// Ready reports why the node cannot serve yet, or nil.
	Ready() error
	// Settings are the node's settings the APIs show or enforce.
	Settings() Settings
	// Metrics may return nil (then nothing is recorded).
	Metrics() *Metrics

	// Administration through the HTTP API.
	SetPolicy(ctx context.Context, commit, ack, fallback string) error
	RemoveMember(ctx context.Context, id string) error
	Switchover(ctx context.Context, to string) error
}

// Settings are a node's settings that the APIs show or enforce.
type Settings struct {
	ID           string
	RESPAddr     string
	HTTPAddr     string
	RequirePass  string
	MaxKeySize   int
	MaxValueSize int
	WriteTimeout time.Duration
}

// Metrics are the series the APIs record into, registered with the node's
// registry (which /metrics serves).
type Metrics struct {
	Registry *prometheus.Registry
	// Ops counts API operations by api (resp|http), command and result.
	Ops *prometheus.CounterVec
	// OpLatency observes API operation latency by api and command.
	OpLatency *prometheus.HistogramVec
}

// Error kinds the APIs answer specially (besides replication's).
var (
	// ErrLeaseExpired: the leader cannot confirm its leadership (it could
	// not renew its lease).
	ErrLeaseExpired = errors.New("leader lease expired: leadership cannot be confirmed (control plane unreachable?)")
	// ErrOutcomeUnknown: a write was proposed, then leadership changed
	// before it was acknowledged; it may still commit under the new leader.
	ErrOutcomeUnknown = errors.New("write outcome unknown")
	// ErrRemoved: the node was removed from the cluster and serves nothing.
	ErrRemoved = errors.New("this node was removed from the cluster")
	// ErrSwitchover: a planned switchover pauses writes; retry on the new
	// leader.
	ErrSwitchover = errors.New("planned switchover in progress; retry on the new leader")
)
