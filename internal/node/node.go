package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/leaderless"
	"github.com/replicant-db/replicant/internal/multileader"
	"github.com/replicant-db/replicant/internal/policy"
	"github.com/replicant-db/replicant/internal/replication"
	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/transport"
)

// DefaultFailoverTimeout is etcd's order of magnitude: a dead leader is
// replaced in about a second (docs/benchmarks.md measures it). The limits'
// defaults are engine.DefaultMaxKeySize and engine.DefaultMaxValueSize.
const DefaultFailoverTimeout = time.Second

// DefaultCacheBytes is what Config.CacheBytes 0 amounts to: storage's
// defaults for its row cache and its block cache, 64 MiB each.
const DefaultCacheBytes = storage.DefaultRowCacheBytes + storage.DefaultCacheBytes

// MinCacheBytes is the smallest cache a node accepts: below it each of the
// 64 shards of the key cache would hold only a few values.
const MinCacheBytes = 8 << 20

// Config configures a node.
type Config struct {
	ID       string
	DataDir  string
	RESPAddr string
	HTTPAddr string
	PeerAddr string
	// PeerListener, if set, is used instead of listening on PeerAddr.
	PeerListener net.Listener

	// InitialCluster bootstraps a new cluster (ignored when DataDir holds
	// state); empty means a one-node cluster of this node.
	InitialCluster []control.Member
	// Join is a peer address of a running cluster to join as a follower.
	Join string

	// Mode is the replication mode (engine.ModeSingleLeader when empty,
	// or engine.ModeMultiLeader). It is recorded when the data directory
	// is first used; a restart with another mode is refused.
	Mode string
	// Leaderless mode: N (how many nodes hold each key), sloppy quorum,
	// anti-entropy interval and tombstone grace (see leaderless.Config).
	Replicas            int
	SloppyQuorum        bool
	NoReadRepair        bool
	AntiEntropyInterval time.Duration
	TombstoneGrace      time.Duration
	// Site names this node's site in multi-leader mode (required there;
	// a letter, then letters, digits, '-', '_' or '.').
	Site string

	SyncPolicy   string // initial commit policy (bootstrap only)
	Ack          string // initial ack level (bootstrap only)
	SyncFallback string // initial fallback (bootstrap only)
	// SyncTimeout: a sync follower silent or lagging this long is replaced.
	SyncTimeout time.Duration
	// WriteTimeout bounds how long a write waits for commit.
	WriteTimeout time.Duration
	// ApplyDelay makes this node a delayed replica when it follows.
	ApplyDelay time.Duration
	// CacheBytes is the memory that caches data, split evenly between the
	// newest versions of recently used keys and the storage engine's
	// blocks; 0 (or less) leaves both at storage's defaults
	// (DefaultCacheBytes).
	CacheBytes int64
	// LogRetention is how many entries the log keeps behind the newest.
	LogRetention uint64
	// FailoverTimeout: when the leader's lease renewals stop for this long,
	// the controller appoints a new leader. The leader's lease is half of it.
	FailoverTimeout time.Duration

	MaxKeySize   int
	MaxValueSize int
	RequirePass  string
	// PeerSecret is the cluster secret every peer must present on the peer
	// port, kept apart from the client password so that a client cannot
	// pose as a node. Empty means RequirePass (how nodes authenticated
	// before PeerSecret existed); both empty means no peer authentication.
	PeerSecret string
	// PeerServerTLS, when set, makes the peer port accept only TLS
	// connections with it (mutual TLS: see certs.Store.ServerConfig), and
	// PeerClientTLS is asked for the configuration of each connection this
	// node opens to a peer. Both or neither; the secret applies as well.
	PeerServerTLS *tls.Config
	PeerClientTLS func() *tls.Config
	// ReadTimeout bounds how long a read waits for a token's LSN.
	ReadTimeout time.Duration
	// ExpiryInterval is how often the active expirer runs (default 100ms).
	ExpiryInterval time.Duration
	// GCInterval is how often old versions are collected (default 30s).
	GCInterval time.Duration
	// SweepInterval is how often the leader looks for the elements of
	// deleted collections (default 5s; single-leader mode).
	SweepInterval time.Duration
	Logger        *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxKeySize <= 0 {
		c.MaxKeySize = engine.DefaultMaxKeySize
	}
	if c.MaxValueSize <= 0 {
		c.MaxValueSize = engine.DefaultMaxValueSize
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = 2 * time.Second
	}
	if c.FailoverTimeout <= 0 {
		c.FailoverTimeout = DefaultFailoverTimeout
	}
	if c.LogRetention == 0 {
		c.LogRetention = 1_000_000
	}
	if c.ExpiryInterval <= 0 {
		c.ExpiryInterval = 100 * time.Millisecond
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 5 * time.Second
	}
	if c.GCInterval <= 0 {
		c.GCInterval = 30 * time.Second
	}
	if c.SyncPolicy == "" {
		c.SyncPolicy = "async"
	}
	if c.Ack == "" {
		c.Ack = "durable"
	}
	if c.SyncFallback == "" {
		c.SyncFallback = "block"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Node is a running replicant node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	store   *storage.Store
	metrics *Metrics
	started time.Time

	// ml is the multi-leader engine in that mode, nil otherwise.
	ml *multileader.Engine
	// ll and local are leaderless mode's engine and this node's own
	// writer (no data roles run in that mode), nil otherwise.
	ll      *leaderless.Engine
	local   *replication.Writer
	control *control.Group
	pool    *transport.Pool
	sender  *transport.RaftSender
	peer    *transport.Server
	peerLn  net.Listener

	mu       sync.Mutex
	state    control.State
	leader   *replication.Leader
	follower *follower
	removed  bool
	// published: this node's client addresses went through the control
	// plane since it started (only the reconcile goroutine touches it).
	published bool
	// bootEpoch is the control plane's epoch when this process started: an
	// appointment at or below it is from an earlier life of this node.
	bootEpoch    uint64
	reappointing bool
	// bootLast is the end of the log this process recovered: what the node
	// served or acknowledged before it stopped lies at or below it, so it
	// serves no read below it until it has caught up (see loaded).
	bootLast uint64
	// loaded is set once the read position has reached the restart floor;
	// from then on reads are never refused as -LOADING again.
	loaded    atomic.Bool
	lease     leaseState
	switching atomic.Bool // a planned switchover paused this leader
	// admit is held shared by every write for its whole life, and
	// exclusively by a switchover while it pauses writes: once it holds
	// it, no write is in flight and none can start.
	admit    sync.RWMutex
	renewNow chan struct{}
	roleCh   chan struct{} // closed when the role changes
	stateCh  chan struct{} // closed when reconcile takes in a control state

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// noWait is an already cancelled context: ReadNow reads with it, so
	// that any wait in Read ends at once with its error.
	noWait context.Context
}

type follower struct {
	f        *replication.Follower
	leaderID string
	epoch    uint64
	cancel   context.CancelFunc
	done     chan struct{}
}

// Open opens the data directory, joins or bootstraps the control plane and
// starts the node's background work.
func Open(cfg Config) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("node: --id is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("node: --data is required")
	}
	cfg.setDefaults()
	switch cfg.Mode {
	case "", engine.ModeSingleLeader:
		if cfg.Site != "" {
			return nil, errors.New("node: --site applies to multi-leader mode only")
		}
	case engine.ModeMultiLeader:
		if err := multileader.ValidSite(cfg.Site); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	case engine.ModeLeaderless:
		if cfg.Site != "" {
			return nil, errors.New("node: --site applies to multi-leader mode only")
		}
	default:
		return nil, fmt.Errorf("node: unknown --mode %q (want single-leader, multi-leader or leaderless)", cfg.Mode)
	}
	if p, err := policy.ParseCommit(cfg.SyncPolicy); err != nil {
		return nil, fmt.Errorf("node: --sync: %w", err)
	} else if len(cfg.InitialCluster) > 0 {
		if err := checkPolicyMembers(p, cfg.InitialCluster); err != nil {
			return nil, fmt.Errorf("node: --sync: %w", err)
		}
	}
	if _, err := policy.ParseAck(cfg.Ack); err != nil {
		return nil, fmt.Errorf("node: --ack: %w", err)
	}
	if _, err := policy.ParseFallback(cfg.SyncFallback); err != nil {
		return nil, fmt.Errorf("node: --sync-fallback: %w", err)
	}
	log := cfg.Logger.With("node", cfg.ID)
	opts := storage.Options{Logger: log, ApplyDelay: cfg.ApplyDelay}
	if cfg.CacheBytes > 0 {
		opts.CacheBytes, opts.RowCacheBytes = cfg.CacheBytes/2, cfg.CacheBytes/2
	}
	st, err := storage.Open(filepath.Join(cfg.DataDir, "store"), opts)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	noWait, stop := context.WithCancel(context.Background())
	stop()
	n := &Node{noWait: noWait, cfg: cfg, log: log, store: st, started: time.Now(), roleCh: make(chan struct{}), stateCh: make(chan struct{}), ctx: ctx, cancel: cancel,
		renewNow: make(chan struct{}, 1)}
	n.metrics = newMetrics(n)
	if err := n.checkMode(); err != nil {
		cancel()
		_ = st.Close()
		return nil, err
	}
	if cfg.Mode == engine.ModeMultiLeader {
		if n.ml, err = multileader.New(multileader.Config{Site: cfg.Site, Node: n, Logger: log, ReadTimeout: cfg.ReadTimeout}); err != nil {
			cancel()
			_ = st.Close()
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if cfg.Mode == engine.ModeLeaderless {
		n.startLocal()
		if n.ll, err = leaderless.New(leaderless.Config{Node: n, Replicas: cfg.Replicas, Logger: log,
			SloppyQuorum: cfg.SloppyQuorum, NoReadRepair: cfg.NoReadRepair, AntiEntropyInterval: cfg.AntiEntropyInterval, TombstoneGrace: cfg.TombstoneGrace}); err != nil {
			n.local.Close()
			cancel()
			_ = st.Close()
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if err := n.startCluster(); err != nil {
		cancel()
		n.stopCluster()
		_ = st.Close()
		return nil, err
	}
	n.bootEpoch = n.control.State().Epoch
	n.bootLast = st.State().LastLSN
	n.wg.Add(6)
	go n.diskLoop()
	go n.leaseLoop()
	go n.reconcileLoop()
	go n.expireLoop()
	go n.gcLoop()
	go n.retentionLoop()
	if n.ml != nil {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.ml.Run(n.ctx) }()
	}
	if n.ll != nil {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.ll.Run(n.ctx) }()
	}
	if n.ml == nil && n.ll == nil {
		n.wg.Add(1)
		go n.sweepLoop()
	}
	log.Info("node started", "data", cfg.DataDir, "last_lsn", st.State().LastLSN, "peer", n.peerLn.Addr().String())
	return n, nil
}

// Close stops every role and background loop, then closes the store.
func (n *Node) Close() error {
	n.cancel()
	n.mu.Lock()
	old := n.detachRoleLocked()
	n.mu.Unlock()
	old.close(n)
	n.wg.Wait()
	if n.local != nil {
		n.local.Close()
	}
	n.stopCluster()
	if err := n.store.Sync(); err != nil {
		n.log.Warn("final sync", "err", err)
	}
	return n.store.Close()
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Settings are the node's settings the client APIs show or enforce.
func (n *Node) Settings() engine.Settings {
	return engine.Settings{ID: n.cfg.ID, RESPAddr: n.cfg.RESPAddr, HTTPAddr: n.cfg.HTTPAddr, RequirePass: n.cfg.RequirePass,
		MaxKeySize: n.cfg.MaxKeySize, MaxValueSize: n.cfg.MaxValueSize, WriteTimeout: n.cfg.WriteTimeout,
		MemberTLS: n.cfg.PeerClientTLS}
}

var _ engine.Engine = (*Node)(nil)

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Store exposes the store (for status and tests).
func (n *Node) Store() *storage.Store { return n.store }

// PeerAddr is the address the peer server listens on.
func (n *Node) PeerAddr() string { return n.peerLn.Addr().String() }

// IsLeader reports whether this node currently accepts writes.
func (n *Node) IsLeader() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader != nil
}

func (n *Node) currentLeader() *replication.Leader {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader
}

func (n *Node) notLeaderErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := &engine.NotLeaderError{LeaderID: n.state.Leader}
	if m, ok := n.state.Member(n.state.Leader); ok {
		e.LeaderRESP, e.LeaderHTTP = m.RESPAddr, m.HTTPAddr
	}
	return e
}

// Write runs fn on the leader's write path and returns the token of the
// committed result; on a follower it returns *engine.NotLeaderError.
func (n *Node) Write(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	return n.write(ctx, fn, false)()
}

// WriteAsync queues fn on the leader's write path and returns a function
// that waits for its outcome, as Write does (engine.AsyncWriter). Writes
// queued one after another by one goroutine are logged in that order. It
// returns nil when a switchover is pausing writes: the caller, which may
// hold earlier queued writes that the switchover waits for, must answer
// those first and then use Write.
func (n *Node) WriteAsync(ctx context.Context, fn func(engine.Txn) error) func() (engine.Token, error) {
	return n.write(ctx, fn, true)
}

func (n *Node) write(ctx context.Context, fn func(engine.Txn) error, async bool) func() (engine.Token, error) {
	// Every step is bounded by WriteTimeout, through a deadline that only
	// the steps that must wait turn into a timer: a context derived per
	// write cost more than the rest of this function.
	deadline := time.Now().Add(n.cfg.WriteTimeout)
	failed := func(err error) func() (engine.Token, error) {
		return func() (engine.Token, error) { return engine.Token{}, err }
	}
	l, _, err := n.leaderNow()
	if l == nil && err == nil {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		l, err = n.awaitLeader(wctx)
		cancel()
	}
	if err != nil {
		return failed(err)
	}
	// Held until the outcome is known: a switchover waits for the writes
	// in flight. A caller with queued writes must not wait for it behind
	// a switchover that waits for those writes.
	if async {
		if !n.admit.TryRLock() {
			return nil
		}
	} else {
		n.admit.RLock()
	}
	if err := n.checkSwitching(); err != nil {
		n.admit.RUnlock()
		return failed(err)
	}
	if !n.leaseValid(l.Epoch()) {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		err := n.awaitLease(wctx, l.Epoch())
		cancel()
		if err != nil {
			n.admit.RUnlock()
			return failed(err)
		}
	}
	start := time.Now()
	wait, err := l.SubmitUntil(ctx, deadline, fn)
	if err != nil {
		n.admit.RUnlock()
		return failed(n.writeOutcome(l, err))
	}
	return func() (engine.Token, error) { return n.finishWrite(ctx, l, start, wait) }
}

// finishWrite waits for a submitted write's outcome and releases its hold
// on admit.
func (n *Node) finishWrite(ctx context.Context, l *replication.Leader, start time.Time, wait func(context.Context) (engine.Token, error)) (engine.Token, error) {
	defer n.admit.RUnlock()
	tok, err := wait(ctx)
	n.metrics.writeLatency.Observe(time.Since(start).Seconds())
	err = n.writeOutcome(l, err)
	if errors.Is(err, engine.ErrLeaseExpired) {
		tok = engine.Token{} // no token for a write that may not survive
	}
	return tok, err
}

// WriteNotify is engine.NotifyWriter: WriteAsync that never waits and
// calls notify once the outcome is known. It returns nil, having done
// nothing, whenever queueing would wait or fail (no leader or lease yet,
// a switchover, a full queue): the caller then writes the ordinary way,
// which waits or answers the error.
func (n *Node) WriteNotify(ctx context.Context, fn func(engine.Txn) error, notify func()) func() (engine.Token, error) {
	l, _, err := n.leaderNow()
	if l == nil || err != nil {
		return nil
	}
	if !n.admit.TryRLock() {
		return nil
	}
	if n.checkSwitching() != nil || !n.leaseValid(l.Epoch()) {
		n.admit.RUnlock()
		return nil
	}
	start := time.Now()
	// noWait: with the queue full, SubmitNotify returns at once.
	wait, err := l.SubmitNotify(n.noWait, start.Add(n.cfg.WriteTimeout), fn, notify)
	if err != nil {
		n.admit.RUnlock()
		return nil
	}
	return func() (engine.Token, error) { return n.finishWrite(ctx, l, start, wait) }
}

// writeOutcome turns the write path's result into what the APIs answer.
func (n *Node) writeOutcome(l *replication.Leader, err error) error {
	if err == nil {
		// The common case, without the errors.As probes below (each
		// allocates its target).
		if !n.leaseValid(l.Epoch()) {
			return fmt.Errorf("%w (the write may or may not survive)", engine.ErrLeaseExpired)
		}
		return nil
	}
	if errors.Is(err, replication.ErrStopped) {
		// The leader stepped down while the write was in flight. Its entry
		// may already be on followers and commit under the next leader, so
		// this must not read as "not the leader" (which clients take as
		// "nothing happened" and may retry).
		return fmt.Errorf("%w: leadership changed during the write; it may or may not have committed; %v", engine.ErrOutcomeUnknown, n.notLeaderErr())
	}
	var de *storage.DiskError
	if errors.As(err, &de) {
		// The APIs answer this kind as Redis (MISCONF) and HTTP (507) do.
		return fmt.Errorf("%w: %w", engine.ErrDiskFull, err)
	}
	var cmdErr *replication.CommandError
	if (err == nil || errors.As(err, &cmdErr)) && !n.leaseValid(l.Epoch()) {
		// Committed, but a leader without a lease may already have been
		// replaced: acknowledging could promise a write the new leader
		// lacks.
		return fmt.Errorf("%w (the write may or may not survive)", engine.ErrLeaseExpired)
	}
	return err
}

// awaitLeader returns this node's leader role. While no leader is known, or
// this node is the appointed leader but has not taken the role yet (start,
// re-appointment after a restart), it waits for one until ctx ends instead
// of failing at once; when another node leads it returns a
// *engine.NotLeaderError naming it.
func (n *Node) awaitLeader(ctx context.Context) (*replication.Leader, error) {
	for {
		l, roleCh, err := n.leaderNow()
		if l != nil || err != nil {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (no leader was ready within the timeout: %w)", n.notLeaderErr(), ctx.Err())
		case <-n.ctx.Done():
			return nil, n.notLeaderErr()
		case <-roleCh:
		}
	}
}

// leaderNow is awaitLeader without waiting: this node's leader role, or
// the error that decides the call, or neither and the channel that is
// closed when the role changes.
func (n *Node) leaderNow() (*replication.Leader, chan struct{}, error) {
	n.mu.Lock()
	l, st, removed, roleCh := n.leader, n.state, n.removed, n.roleCh
	n.mu.Unlock()
	switch {
	case removed:
		return nil, nil, engine.ErrRemoved
	case l != nil:
		return l, nil, nil
	case st.Leader != "" && st.Leader != n.cfg.ID:
		return nil, nil, n.notLeaderErr()
	}
	return nil, roleCh, nil
}

// awaitInherited waits (up to ReadTimeout) until a new leader has
// committed the log it inherited: before that, a write the previous leader
// acknowledged may sit above this leader's commit LSN.
func (n *Node) awaitInherited(ctx context.Context, l *replication.Leader) error {
	if l.ServesLinearizableReads() {
		return nil
	}
	deadline := time.NewTimer(n.cfg.ReadTimeout)
	defer deadline.Stop()
	for {
		changed := l.Changed() // before the check: no missed wakeup
		if l.ServesLinearizableReads() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%w: this new leader has not yet committed the log it inherited (commit LSN %d); retry", engine.ErrStale, l.Writer().CommitLSN())
		case <-changed:
		}
	}
}

// awaitLease waits (briefly: a new leader renews at once) until this
// leader holds a lease for epoch.
func (n *Node) awaitLease(ctx context.Context, epoch uint64) error {
	if n.leaseValid(epoch) {
		return nil
	}
	select {
	case n.renewNow <- struct{}{}:
	default:
	}
	deadline := time.NewTimer(min(n.cfg.WriteTimeout, n.leaseDuration()))
	defer deadline.Stop()
	for {
		changed := n.lease.wait() // before the check: no missed wakeup
		if n.leaseValid(epoch) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return engine.ErrLeaseExpired
		case <-changed:
		}
	}
}

// WaitReplicas waits until at least want followers have acknowledged lsn
// durably, or ctx ends, and returns how many have (Redis's WAIT). It wakes
// on acknowledgements, not by polling. A node that does not lead returns a
// *engine.NotLeaderError.
func (n *Node) WaitReplicas(ctx context.Context, lsn uint64, want int) (int, error) {
	l := n.currentLeader()
	if l == nil {
		return 0, n.notLeaderErr()
	}
	count := func() int {
		c := 0
		for _, p := range l.Progress() {
			if p.Durable >= lsn {
				c++
			}
		}
		return c
	}
	for {
		changed := l.ProgressChanged() // before counting: no missed wakeup
		n.mu.Lock()
		roleCh, still := n.roleCh, n.leader == l
		n.mu.Unlock()
		c := count()
		if c >= want || !still {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, nil
		case <-changed:
		case <-roleCh:
		}
	}
}

// CheckKey returns a *engine.LimitError if key is too large.
func (n *Node) CheckKey(key []byte) error {
	if len(key) > n.cfg.MaxKeySize {
		return &engine.LimitError{What: "key", Size: len(key), Limit: n.cfg.MaxKeySize}
	}
	return nil
}

// CheckValue returns a *engine.LimitError if value is too large.
func (n *Node) CheckValue(size int) error {
	if size > n.cfg.MaxValueSize {
		return &engine.LimitError{What: "value", Size: size, Limit: n.cfg.MaxValueSize}
	}
	return nil
}

// readPosition returns the LSN reads may use now and a channel closed when
// it may have moved.
func (n *Node) readPosition() (lsn uint64, changed <-chan struct{}, isLeader bool) {
	v := n.readView()
	return v.lsn, v.changed, v.leader
}

// readView is what a read needs to know of the node, taken under one lock.
type readView struct {
	lsn       uint64          // the LSN reads may use now
	changed   <-chan struct{} // closed when lsn may have moved
	role      <-chan struct{} // closed when the role changes (the old role's changed never is again)
	leader    bool            // runs the leader role
	appointed bool            // the control plane names this node the leader
	removed   bool
	follower  *replication.Follower
}

func (n *Node) readView() readView {
	n.mu.Lock()
	defer n.mu.Unlock()
	v := readView{role: n.roleCh, appointed: n.state.Leader == n.cfg.ID, removed: n.removed}
	switch {
	case n.leader != nil:
		v.lsn, v.changed, v.leader = n.leader.Writer().CommitLSN(), n.leader.Changed(), true
	case n.follower != nil:
		v.lsn, v.changed, v.follower = n.follower.f.ReadLSN(), n.follower.f.Changed(), n.follower.f
	default:
		st := n.store.State()
		v.lsn, v.changed = min(st.CommitLSN, st.AppliedLSN), n.roleCh
	}
	return v
}

// Read returns a reader at the freshest state this node may show for the
// consistency level, no older than floor (the session token).
func (n *Node) Read(ctx context.Context, c engine.Consistency, floor engine.Token) (engine.Reader, error) {
	v := n.readView()
	at := replication.ReadPosition{Leader: v.leader, Appointed: v.appointed}
	if c.Level == engine.LevelBounded && !v.leader {
		at.LagSeconds = n.lagSeconds()
	}
	route, err := replication.AdmitRead(c, at)
	if err != nil {
		return nil, err
	}
	if route == replication.RouteLeader {
		// Most reads find the role settled: no timer for them (a
		// context with a deadline per read was 6 % of a GET's CPU).
		l, _, err := n.leaderNow()
		if l == nil && err == nil {
			wctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
			l, err = n.awaitLeader(wctx)
			cancel()
		}
		if err != nil {
			return nil, err
		}
		if err := n.checkSwitching(); err != nil {
			return nil, err
		} else if err := n.awaitLease(ctx, l.Epoch()); err != nil {
			return nil, err
		} else if err := n.awaitInherited(ctx, l); err != nil {
			return nil, err
		}
		// The commit LSN may have moved while waiting.
		v = n.readView()
	}
	if err := n.checkReadable(v); err != nil {
		return nil, err
	}
	var deadline <-chan time.Time
	for {
		standing := replication.FloorReached
		if floor.LSN != 0 { // most reads carry no floor: no history copy for them
			standing = replication.StandingOf(n.store.EpochHistory(), v.lsn, floor)
		}
		switch standing {
		case replication.FloorReached:
			return &replication.Reader{Store: n.store, LSN: v.lsn, Epoch: n.store.EpochAt(v.lsn), ClockMs: time.Now().UnixMilli()}, nil
		case replication.FloorLost:
			return nil, fmt.Errorf("%w: token %s names a write this node's history replaced with a later epoch (it is at %s)", engine.ErrLostWrite, floor, engine.Token{Epoch: n.store.EpochAt(v.lsn), LSN: v.lsn})
		}
		// Wait for this node to reach the token.
		if deadline == nil {
			t := time.NewTimer(n.cfg.ReadTimeout)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, fmt.Errorf("%w: token %s not reached within %s (this node is at %d:%d)", engine.ErrStale, floor, n.cfg.ReadTimeout, n.store.EpochAt(v.lsn), v.lsn)
		case <-v.changed:
		case <-v.role:
		}
		v = n.readView()
		if err := n.checkReadable(v); err != nil {
			return nil, err
		}
	}
}

// ReadNow is Read when it needs no wait (engine.NowReader): Read under
// an already cancelled context returns that context's error exactly when
// it would have waited (for a leader, a lease, the inherited log or the
// floor), and nothing else in it looks at the context.
func (n *Node) ReadNow(c engine.Consistency, floor engine.Token) (engine.Reader, error, bool) {
	r, err := n.Read(n.noWait, c, floor)
	if errors.Is(err, context.Canceled) {
		return nil, nil, false
	}
	return r, err, true
}

// checkReadable refuses reads at lsn on a removed node, while a snapshot is
// being installed, and after a restart until lsn reaches the restart floor
// (DESIGN.md: a starting node answers -LOADING until it has applied its
// durable log; it never serves a read older than a write it acknowledged).
func (n *Node) checkReadable(v readView) error {
	if v.removed {
		return engine.ErrRemoved
	}
	if v.follower != nil && v.follower.State() == replication.FollowerSnapshotting {
		return fmt.Errorf("%w: installing a snapshot from the leader", engine.ErrLoading)
	}
	if n.loaded.Load() {
		return nil
	}
	floor := replication.RestartFloor(n.bootLast, n.store.State().LastLSN)
	if v.lsn < floor {
		return fmt.Errorf("%w: this node restarted and is catching up: it can read at LSN %d but may have served up to LSN %d before", engine.ErrLoading, v.lsn, floor)
	}
	n.loaded.Store(true)
	return nil
}

// lagSeconds estimates how far this replica's readable state is behind the
// leader: the age of the oldest entry it has not applied (a delayed
// replica); else 0 when it serves everything the leader last said it holds
// and heard from it within a heartbeat period or two; else the time since it
// last heard from the leader.
func (n *Node) lagSeconds() float64 {
	n.mu.Lock()
	fo := n.follower
	n.mu.Unlock()
	if fo == nil {
		return 0
	}
	now := time.Now()
	lc := fo.f.LastContact()
	if lc.IsZero() {
		return now.Sub(n.started).Seconds()
	}
	silence := now.Sub(lc)
	if old := fo.f.OldestUnapplied(); !old.IsZero() {
		return max(now.Sub(old), silence).Seconds()
	}
	if fo.f.CaughtUp() && silence <= caughtUpSilence {
		// Idle and caught up: the leader has nothing newer to send, and
		// the gap between heartbeats is not lag.
		return 0
	}
	return silence.Seconds()
}

// caughtUpSilence is how long a caught-up follower may go without hearing
// from the leader and still count as not lagging: two heartbeat periods.
const caughtUpSilence = time.Second

// Token returns the token of the node's current read state.
func (n *Node) Token() engine.Token {
	lsn, _, _ := n.readPosition()
	return engine.Token{Epoch: n.store.EpochAt(lsn), LSN: lsn}
}

// Ready reports whether the node can serve: the leader always; a follower
// once it streams from the leader, has applied what it knows committed and
// has caught up to what it served before a restart.
func (n *Node) Ready() error {
	n.mu.Lock()
	removed, l, fo := n.removed, n.leader, n.follower
	n.mu.Unlock()
	switch {
	case removed:
		return engine.ErrRemoved
	case l != nil:
		return nil
	case fo != nil:
		st := fo.f.Status()
		if st.State != replication.FollowerStreaming {
			return fmt.Errorf("follower is %s %s", st.State, st.Reason)
		}
		return n.checkReadable(n.readView())
	}
	return errors.New("no leader known yet")
}

// expireLoop actively deletes expired keys through the log (leader only),
// so replicas expire keys in the same order as the leader.
func (n *Node) expireLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.ExpiryInterval)
	defer t.Stop()
	// A full disk fails every round: back off and log it rarely.
	th := storage.Throttle{Min: n.cfg.ExpiryInterval, Max: 10 * time.Second}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if !th.Ready(time.Now()) {
			continue
		}
		for n.ctx.Err() == nil && n.IsLeader() {
			more, err := n.expireOnce(n.ctx, 256)
			if err != nil {
				if n.ctx.Err() == nil && n.IsLeader() {
					if log, skipped := th.Fail(time.Now(), err); log {
						n.log.Warn("active expiry", "err", err, "suppressed", skipped)
					}
				}
				break
			}
			if th.Succeed() {
				n.log.Info("active expiry works again")
			}
			if !more {
				break
			}
		}
	}
}

// expireOnce handles up to limit due expiry records; it reports whether
// there may be more.
func (n *Node) expireOnce(ctx context.Context, limit int) (bool, error) {
	recs, err := n.store.Expiring(time.Now().UnixMilli(), limit)
	if err != nil || len(recs) == 0 {
		return false, err
	}
	deleted := 0
	_, err = n.Write(ctx, func(tx engine.Txn) error {
		deleted = 0
		for _, r := range recs {
			// Only the version the record names, and only if it is still
			// the newest: a newer SET may have replaced it.
			if _, live, err := tx.Get(r.Key); err != nil {
				return err
			} else if live {
				continue
			}
			cur, exists, err := n.store.Get(r.Key, storage.Latest)
			if err != nil {
				return err
			}
			if exists && cur.LSN == r.LSN && cur.Expired(tx.NowMs()) {
				tx.Del(r.Key)
				deleted++
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	n.metrics.expired.Add(float64(deleted))
	if err := n.store.DropExpiring(recs); err != nil {
		return false, err
	}
	return len(recs) == limit, nil
}

func (n *Node) gcLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.GCInterval)
	defer t.Stop()
	prev := uint64(0)
	// Spaced out by the ticker already; this quiets an error that repeats.
	th := storage.Throttle{Min: n.cfg.GCInterval, Max: n.cfg.GCInterval, Quiet: 10 * time.Minute}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		// Readers read at the read LSN of the moment they start and live
		// far shorter than GCInterval (snapshot streams hold one Pebble
		// iterator, which GC cannot disturb), so the read LSN of the
		// previous tick is a floor no reader is still below.
		// The read position can go down (rollback, snapshot install): a
		// floor above the current one would collect what readers need.
		cur, _, _ := n.readPosition()
		floor := min(prev, cur)
		prev = cur
		if floor == 0 {
			continue
		}
		removed, err := n.store.GC(floor)
		if err != nil {
			if log, skipped := th.Fail(time.Now(), err); log {
				n.log.Warn("version gc", "err", err, "suppressed", skipped)
			}
			continue
		}
		th.Succeed()
		n.metrics.gcRemoved.Add(float64(removed))
	}
}

// retentionLoop keeps the log at most LogRetention entries long, never
// dropping entries a snapshot being streamed still needs.
func (n *Node) retentionLoop() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	// A full or failing disk fails every round: back off and log it rarely.
	th := storage.Throttle{Min: time.Second, Max: time.Minute}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if !th.Ready(time.Now()) {
			continue
		}
		st := n.store.State()
		if st.LastLSN < n.cfg.LogRetention || st.LastLSN-n.cfg.LogRetention < st.FirstLSN {
			continue
		}
		upTo := min(st.LastLSN-n.cfg.LogRetention, st.AppliedLSN)
		if l := n.currentLeader(); l != nil {
			if pin := l.RetentionFloor(); pin != 0 && pin-1 < upTo {
				upTo = pin - 1
			}
		}
		if upTo < st.FirstLSN {
			continue
		}
		if err := n.store.TruncatePrefix(upTo); err != nil {
			if log, skipped := th.Fail(time.Now(), err); log {
				n.log.Warn("log retention", "err", err, "suppressed", skipped)
			}
			continue
		}
		th.Succeed()
		n.metrics.truncated.Add(float64(upTo - st.FirstLSN + 1))
	}
}
