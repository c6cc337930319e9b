package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	// returns a *NotLeaderError.
	Write(ctx context.Context, fn func(Txn) error) (Token, error)
	// Read returns a reader at the freshest state c allows, no older than
	// floor.
	Read(ctx context.Context, c Consistency, floor Token) (Reader, error)
	// Token is the token of the node's current read state.
	Token() Token
	// IsLeader reports whether this node takes writes now.
	IsLeader() bool
	// WaitReplicas waits until want replicas acknowledged lsn durably, or
	// ctx ends, and returns how many have (Redis's WAIT).
	WaitReplicas(ctx context.Context, lsn uint64, want int) (int, error)
	// CheckKey and CheckValue return a *LimitError above the
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

// NotifyWriter is implemented by AsyncWriters that can also tell when a
// queued write's outcome is known, for a caller that cannot wait (an event
// loop). WriteNotify queues fn as WriteAsync does, but never waits: it
// returns nil, having done nothing, when it cannot queue at once. Else it
// calls notify exactly once, from any goroutine, when the outcome is
// known (notify must not block); from then on the returned function
// returns without waiting.
type NotifyWriter interface {
	WriteNotify(ctx context.Context, fn func(Txn) error, notify func()) func() (Token, error)
}

// NowReader is implemented by engines that can serve a read without
// waiting. ReadNow does what Read does when Read would not wait: ok is
// false, and nothing was done, when Read would have to wait (for a leader,
// a lease, or the floor) or ask other nodes. An event loop serving many
// connections in one goroutine (the RESP server's) reads in place when ok
// and leaves the waiting kind to a goroutine of the connection's own.
type NowReader interface {
	ReadNow(c Consistency, floor Token) (r Reader, err error, ok bool)
}

// AsyncWriter is implemented by engines that can queue a write without
// waiting for it. WriteAsync does what Write does, but returns once fn is
// queued, with a function that waits for the outcome (call it exactly
// once). Writes queued one after another by one goroutine are applied and
// logged in that order, so a connection can pipeline its writes and still
// answer them in order. It returns nil when it cannot queue without
// waiting for something that may wait for the caller's queued writes (a
// switchover): the caller answers those first, then uses Write.
type AsyncWriter interface {
	WriteAsync(ctx context.Context, fn func(Txn) error) func() (Token, error)
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
	// MemberTLS, when set, gives the TLS configuration for this node's
	// own calls to another member's HTTP API (the cluster serves HTTPS):
	// it trusts the cluster's CA and presents this node's certificate.
	MemberTLS func() *tls.Config
}

// Metrics are the series the APIs record into, registered with the node's
// registry (which /metrics serves).
type Metrics struct {
	Registry *prometheus.Registry
	// Ops counts API operations by api (resp|http), command and result.
	Ops *prometheus.CounterVec
	// OpLatency observes API operation latency by api and command.
	OpLatency *prometheus.HistogramVec
	// Clients counts open client connections by api (resp|http); nil
	// when not recorded.
	Clients *prometheus.GaugeVec
}

// ClientGauge is the gauge of api's open connections, or nil when m does
// not record them.
func (m *Metrics) ClientGauge(api string) prometheus.Gauge {
	if m == nil || m.Clients == nil {
		return nil
	}
	return m.Clients.WithLabelValues(api)
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

// NotLeaderError is returned for writes (and linearizable reads) sent to a
// node that is not the leader. The fields say where the leader is, if known.
type NotLeaderError struct {
	LeaderID   string
	LeaderRESP string
	LeaderHTTP string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader; leader unknown"
	}
	return fmt.Sprintf("not the leader; leader=%s resp=%s", e.LeaderID, e.LeaderRESP)
}

// LimitError reports a key or value above the configured limits.
type LimitError struct {
	What  string // "key" or "value"
	Size  int
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s too large (%d bytes > max %d)", e.What, e.Size, e.Limit)
}

// Data-path error kinds.
var (
	// ErrStale: a read cannot be served at the requested freshness within
	// its timeout.
	ErrStale = errors.New("replica too stale")
	// ErrLostWrite: a token names a write this node's history replaced.
	ErrLostWrite = errors.New("token names a write lost in a failover")
	// ErrLoading: a restarted node cannot yet prove its readable state is
	// at least as new as what it served or acknowledged before it stopped;
	// clients retry, as on Redis's -LOADING.
	ErrLoading = errors.New("LOADING")
	// ErrSyncUnavailable: a write timed out because the commit policy could
	// not be satisfied (fallback "block").
	ErrSyncUnavailable = errors.New("not enough synchronous followers")
	// ErrDiskFull: the node refuses writes because its disk is full or
	// failing; reads go on.
	ErrDiskFull = errors.New("disk refuses writes")
)

// Version is one value as a command sees it.
type Version struct {
	LSN      uint64 // where it was written (its version)
	Value    []byte
	ExpireAt int64 // Unix ms, 0 = never
	Deleted  bool
	// Type is the value's Redis type; for a collection, Value is its
	// metadata (internal/datatype).
	Type Type
}

// Expired tells whether the version is past its expiry at nowMs.
func (v Version) Expired(nowMs int64) bool { return v.ExpireAt != 0 && v.ExpireAt <= nowMs }

// Txn is what a write command's closure runs against: the newest state,
// its own writes included, and the operations it records.
type Txn interface {
	Get(key []byte) (Version, bool, error)
	Set(key, value []byte, expireAtMs int64)
	Del(key []byte)
	FlushAll()
	// NowMs is the command's clock (every expiry decision uses it, so the
	// log records absolute expiry times).
	NowMs() int64
}

// Versioned is implemented by the Readers and Txns of modes whose state is
// one log (single-leader, and each multi-leader site): WATCH records the
// position of the state it read, and EXEC asks the transaction's state
// whether a watched key was written since.
type Versioned interface {
	// StateLSN is the log position of the state: every entry at or below
	// it is visible.
	StateLSN() uint64
	// ChangedSince reports whether key was written (set or deleted) after
	// LSN lsn, as far as this state shows. It may answer true for a change
	// it cannot rule out, never false for one that happened.
	ChangedSince(key []byte, lsn uint64) (bool, error)
}

// ScanTxn is implemented by Txns that can list their state's keys (their
// own writes included), for key scans (KEYS, SCAN, DBSIZE) inside a
// transaction.
type ScanTxn interface {
	// Scan calls fn for live, unexpired keys from start in key order until
	// fn returns false.
	Scan(start []byte, fn func(key []byte, v Version) bool) error
}

// Reader reads one consistent state.
type Reader interface {
	// Get returns key's live, unexpired version.
	Get(key []byte) (Version, bool, error)
	// Scan calls fn for live, unexpired keys from start in key order until
	// fn returns false.
	Scan(start []byte, fn func(key []byte, v Version) bool) error
	// Token is the token of the state read.
	Token() Token
	// NowMs is the clock expiry is judged at.
	NowMs() int64
}
