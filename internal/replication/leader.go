package replication

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/peer"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/policy"
	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// ControlPlane is what the leader needs from the control plane: recording
// the sync set before relying on it.
type ControlPlane interface {
	// CompareAndSetSyncSet stores set if the sync set is still from.
	CompareAndSetSyncSet(ctx context.Context, epoch uint64, from, set []string) error
}

// LeaderConfig configures the leader's replication driver.
type LeaderConfig struct {
	ID      string
	Store   *storage.Store
	Epoch   uint64
	Core    CoreConfig
	Control ControlPlane
	Logger  *slog.Logger
	OnBatch func(BatchStats)
	// OnEvent is called for every core event (metrics).
	OnEvent func(Event)
	// IsMember tells whether a follower id belongs to the cluster; streams
	// from others are refused. Nil accepts everyone.
	IsMember func(id string) bool
	// MaxSendBytes bounds one Entries message (default 1 MiB).
	MaxSendBytes int
	// TickInterval drives health checks (default 100ms).
	TickInterval time.Duration
	// Heartbeat is the idle interval between heartbeats (default 500ms).
	Heartbeat time.Duration
}

// Leader is the leader's replication driver: the write path (Writer), the
// deterministic Core that decides the commit LSN, and the log streams to
// followers. It is the I/O around Core; every decision is Core's.
type Leader struct {
	cfg    LeaderConfig
	log    *slog.Logger
	writer *Writer

	mu      sync.Mutex
	core    *Core
	changed chan struct{}         // closed when the log or commit LSN moves
	events  []Event               // recent events, for status
	streams map[string]*streamReg // the live stream of each follower
	pins    map[uint64]uint64     // snapshot id -> pinned LSN (retention floor)
	notes   map[string]*FollowerNote
	pinSeq  uint64
	sizes   logSizes // log bytes per batch, for lag in bytes
	// progressCh is made when someone waits for follower progress
	// (ProgressChanged) and closed at the next acknowledgement: nobody
	// waiting costs nothing per ack.
	progressCh chan struct{}
	// inherited is the last LSN of the log this leader started with. Until
	// its commit LSN reaches it, the previous leader may have acknowledged
	// writes this one has not yet committed: no linearizable read.
	inherited uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewLeader starts the leader role at cfg.Epoch.
func NewLeader(cfg LeaderConfig) *Leader {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxSendBytes <= 0 {
		cfg.MaxSendBytes = 1 << 20
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Leader{
		cfg: cfg, log: cfg.Logger.With("role", "leader", "epoch", cfg.Epoch),
		changed: make(chan struct{}), streams: map[string]*streamReg{}, pins: map[uint64]uint64{},
		notes: map[string]*FollowerNote{},
		ctx:   ctx, cancel: cancel,
	}
	now := time.Now()
	st := cfg.Store.State()
	l.inherited = st.LastLSN
	// The recorded commit LSN is what readers may already have seen; the
	// whole log is what a shrinking sync set must still hold.
	cfg.Core.CommitLSN = max(cfg.Core.CommitLSN, min(st.CommitLSN, st.LastLSN))
	cfg.Core.MustHoldLSN = max(cfg.Core.MustHoldLSN, st.LastLSN)
	l.core = NewCore(cfg.Core, now)
	// What survived a restart is durable; whether it is committed is for
	// the policy to decide again from the followers' acknowledgements.
	l.core.Appended(st.LastLSN, now)
	l.core.LocalDurable(st.LastLSN)
	l.writer = NewWriter(WriterConfig{
		Store: cfg.Store, Epoch: cfg.Epoch, Logger: l.log, OnBatch: cfg.OnBatch,
		OnAppended: func(lsn uint64, bytes int, at time.Time) {
			l.mu.Lock()
			l.core.Appended(lsn, at)
			l.sizes.add(lsn, uint64(bytes))
			l.mu.Unlock()
			l.notify()
		},
		OnDurable: func(lsn uint64) {
			l.mu.Lock()
			l.core.LocalDurable(lsn)
			l.handleReadyLocked()
			l.mu.Unlock()
		},
	})
	l.mu.Lock()
	l.handleReadyLocked()
	l.mu.Unlock()
	l.wg.Add(1)
	go l.tickLoop()
	return l
}

// ServesLinearizableReads reports whether the commit LSN has reached the
// end of the log this leader inherited (Raft's rule that a new leader first
// commits an entry of its own term, in LSN form).
func (l *Leader) ServesLinearizableReads() bool { return l.writer.CommitLSN() >= l.inherited }

// Writer is the leader's write path.
func (l *Leader) Writer() *Writer { return l.writer }

// Epoch is the leader's epoch.
func (l *Leader) Epoch() uint64 { return l.cfg.Epoch }

// Close stops streams, the tick loop and the write path.
func (l *Leader) Close() {
	l.cancel()
	l.mu.Lock()
	for _, r := range l.streams {
		r.cancel()
	}
	l.mu.Unlock()
	l.wg.Wait()
	l.writer.Close()
}

// Propose runs fn on the write path. A write that times out while the
// policy cannot be met says why.
func (l *Leader) Propose(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	wait, err := l.Submit(ctx, fn)
	if err != nil {
		return engine.Token{}, err
	}
	return wait(ctx)
}

// Submit queues fn without waiting for it (see Writer.Submit); the
// function it returns waits as Propose does.
func (l *Leader) Submit(ctx context.Context, fn func(engine.Txn) error) (func(context.Context) (engine.Token, error), error) {
	return l.SubmitUntil(ctx, time.Time{}, fn)
}

// SubmitUntil is Submit with a deadline (see Writer.SubmitUntil).
func (l *Leader) SubmitUntil(ctx context.Context, deadline time.Time, fn func(engine.Txn) error) (func(context.Context) (engine.Token, error), error) {
	return l.SubmitNotify(ctx, deadline, fn, nil)
}

// SubmitNotify is SubmitUntil with Writer.SubmitNotify's notify.
func (l *Leader) SubmitNotify(ctx context.Context, deadline time.Time, fn func(engine.Txn) error, notify func()) (func(context.Context) (engine.Token, error), error) {
	wait, err := l.writer.SubmitNotify(ctx, deadline, fn, notify)
	if err != nil {
		return nil, l.explain(err)
	}
	return func(ctx context.Context) (engine.Token, error) {
		tok, err := wait(ctx)
		return tok, l.explain(err)
	}, nil
}

// explain turns a write that timed out while the sync policy blocks
// commits into ErrSyncUnavailable, saying why.
func (l *Leader) explain(err error) error {
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		l.mu.Lock()
		blocked, why := l.core.Blocked()
		l.mu.Unlock()
		if blocked {
			return fmt.Errorf("%w: %s (the write may still commit once followers return)", engine.ErrSyncUnavailable, why)
		}
	}
	return err
}

func (l *Leader) notify() {
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Changed is closed when the log or the commit LSN moves.
func (l *Leader) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// handleReadyLocked applies the core's outputs. l.mu is held.
func (l *Leader) handleReadyLocked() {
	rd := l.core.Ready()
	if rd.CommitLSN > l.writer.CommitLSN() {
		l.writer.AdvanceCommit(rd.CommitLSN)
		close(l.changed)
		l.changed = make(chan struct{})
	}
	for _, ev := range rd.Events {
		l.log.Warn("replication event", "kind", ev.Kind, "follower", ev.Follower, "msg", ev.Message)
		l.events = append(l.events, ev)
		if len(l.events) > 50 {
			l.events = l.events[len(l.events)-50:]
		}
		if l.cfg.OnEvent != nil {
			l.cfg.OnEvent(ev)
		}
	}
	if rd.ProposeSyncSet != nil && l.cfg.Control != nil && l.ctx.Err() == nil {
		// The core has at most one proposal outstanding; compare-and-set
		// keeps a delayed older proposal from overwriting a newer set.
		set := append([]string{}, rd.ProposeSyncSet...)
		from := append([]string{}, rd.ProposeFrom...)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
			defer cancel()
			if err := l.cfg.Control.CompareAndSetSyncSet(ctx, l.cfg.Epoch, from, set); err != nil {
				if l.ctx.Err() == nil {
					l.log.Warn("could not record sync set in the control plane", "set", set, "err", err)
				}
				return
			}
			l.log.Info("sync set recorded in the control plane", "set", set)
		}()
	}
}

// SyncSetCommitted tells the core the control plane now holds set.
func (l *Leader) SyncSetCommitted(set []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.core.SyncSetCommitted(set, time.Now())
	l.handleReadyLocked()
}

// Configure changes the policy or membership at run time.
func (l *Leader) Configure(p policy.Commit, a policy.Ack, f policy.Fallback, followers []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.core.Configure(p, a, f, followers, time.Now())
	l.handleReadyLocked()
	// A member removed from the cluster loses its stream; it is refused
	// when it reconnects and so learns that it was removed (the control
	// plane no longer sends it anything).
	for id, reg := range l.streams {
		if !slices.Contains(followers, id) {
			reg.cancel()
		}
	}
}

// ProgressChanged returns a channel closed at the next acknowledgement from
// any follower.
func (l *Leader) ProgressChanged() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.progressCh == nil {
		l.progressCh = make(chan struct{})
	}
	return l.progressCh
}

// Progress reports every follower's progress.
func (l *Leader) Progress() []FollowerProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.core.Progress(time.Now())
}

// LagBytes estimates how many log bytes the leader holds beyond lsn (to
// batch granularity; entries older than the size history count as 0).
func (l *Leader) LagBytes(lsn uint64) uint64 {
	l.mu.Lock()
	tracked, oldest := l.sizes.after(lsn), l.sizes.oldest()
	l.mu.Unlock()
	// Entries older than the size history (written before this leader
	// started, or long ago) are estimated from the store, so a follower
	// far behind shows bytes beside its entries rather than 0.
	last := l.cfg.Store.State().LastLSN
	upTo := last
	if oldest != 0 {
		upTo = oldest - 1
	}
	if lsn >= upTo {
		return tracked
	}
	est, err := l.cfg.Store.EstimateLogBytes(lsn+1, upTo)
	if err != nil {
		return tracked
	}
	return tracked + est
}

// logSizes keeps the cumulative encoded size of the log at the end of each
// recent batch, to report follower lag in bytes.
type logSizes struct {
	lsn []uint64
	cum []uint64
}

func (s *logSizes) add(last, bytes uint64) {
	var prev uint64
	if n := len(s.cum); n > 0 {
		prev = s.cum[n-1]
	}
	s.lsn = append(s.lsn, last)
	s.cum = append(s.cum, prev+bytes)
	if len(s.lsn) > 1<<16 {
		s.lsn = append([]uint64(nil), s.lsn[1<<15:]...)
		s.cum = append([]uint64(nil), s.cum[1<<15:]...)
	}
}

// oldest is the first LSN of the oldest batch in the history (0: none).
func (s *logSizes) oldest() uint64 {
	if len(s.lsn) == 0 {
		return 0
	}
	if len(s.lsn) == 1 {
		return s.lsn[0] // one batch: its start is unknown; count it from its end
	}
	return s.lsn[0] + 1 // batch 0's start is unknown; batch 1 starts after it
}

func (s *logSizes) after(lsn uint64) uint64 {
	n := len(s.lsn)
	if n == 0 || lsn >= s.lsn[n-1] {
		return 0
	}
	i, _ := slices.BinarySearch(s.lsn, lsn)
	// Batch i is the first ending at or after lsn: count from its start.
	var base uint64
	if i > 0 {
		base = s.cum[i-1]
	}
	return s.cum[n-1] - base
}

// Events returns recent replication events, oldest first.
func (l *Leader) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// FallbackActive reports whether commits currently ignore the sync policy.
func (l *Leader) FallbackActive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.core.FallbackActive()
}

// Blocked reports whether commits wait because the sync policy cannot be
// met now (see Core.Blocked), and why: status shows it so a dashboard says
// "writes blocked" before clients time out.
func (l *Leader) Blocked() (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.core.Blocked()
}

// FollowerNote is what the leader knows about a follower beyond its
// acknowledged positions: a snapshot being streamed to it, and why it last
// needed one or rolled back.
type FollowerNote struct {
	Snapshotting  bool
	SnapshotLSN   uint64
	SnapshotBytes uint64
	Reason        string
	ReasonAt      time.Time
}

func (l *Leader) note(id string, f func(*FollowerNote)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.notes[id]
	if n == nil {
		n = &FollowerNote{}
		l.notes[id] = n
	}
	f(n)
}

// Notes returns a copy of the leader's notes per follower.
func (l *Leader) Notes() map[string]FollowerNote {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]FollowerNote, len(l.notes))
	for id, n := range l.notes {
		out[id] = *n
	}
	return out
}

// RetentionFloor is the lowest LSN that must stay in the log for snapshots
// being streamed (0: no pin).
func (l *Leader) RetentionFloor() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var floor uint64
	for _, p := range l.pins {
		if floor == 0 || p < floor {
			floor = p
		}
	}
	return floor
}

func (l *Leader) tickLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case now := <-t.C:
			l.mu.Lock()
			l.core.Tick(now)
			l.handleReadyLocked()
			l.mu.Unlock()
		}
	}
}

func epochsFromPB(in []*pb.EpochStart) []storage.EpochStart {
	out := make([]storage.EpochStart, 0, len(in))
	for _, e := range in {
		out = append(out, storage.EpochStart{Epoch: e.GetEpoch(), FirstLSN: e.GetFirstLsn()})
	}
	return out
}

func epochsToPB(in []storage.EpochStart) []*pb.EpochStart {
	out := make([]*pb.EpochStart, 0, len(in))
	for _, e := range in {
		out = append(out, &pb.EpochStart{Epoch: e.Epoch, FirstLsn: e.FirstLSN})
	}
	return out
}

// ServeFollower runs one follower's log stream until it ends.
func (l *Leader) ServeFollower(stream pb.Peer_ReplicateServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil || hello.GetFollowerId() == "" {
		return errors.New("replication: log stream must start with a hello naming the follower")
	}
	id := hello.GetFollowerId()
	if l.cfg.IsMember != nil && !l.cfg.IsMember(id) {
		return fmt.Errorf("replication: %s: %w", id, ErrNotMember)
	}
	if hello.GetEpoch() > l.cfg.Epoch {
		return fmt.Errorf("replication: follower %s has seen epoch %d, this leader is at %d: refusing to lead it", id, hello.GetEpoch(), l.cfg.Epoch)
	}
	st := l.cfg.Store.State()
	fl := hello.GetLastLsn()
	fepochs := epochsFromPB(hello.GetEpochs())
	if err := checkHello(fl, hello.GetLastEpoch(), fepochs); err != nil {
		return fmt.Errorf("replication: hello from %s: %w", id, err)
	}
	plan := PlanStart(fepochs, fl, l.cfg.Store.EpochHistory(), st)
	start := &pb.Start{Epoch: l.cfg.Epoch, LeaderId: l.cfg.ID, NeedSnapshot: plan.NeedSnapshot, Reason: plan.Reason,
		Truncate: plan.Truncate, TruncateTo: plan.TruncateTo, FromLsn: plan.FromLSN}
	common := plan.Common
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	reg := &streamReg{cancel: cancel, remote: remoteAddr(stream.Context())}
	// The stream may be acknowledged up to where the follower's log and
	// ours agree (what it already holds) and, later, up to what is sent.
	reg.sent.Store(common)
	l.mu.Lock()
	if l.ctx.Err() != nil {
		l.mu.Unlock()
		return errors.New("replication: leader stepping down")
	}
	if old, ok := l.streams[id]; ok {
		// A newer stream from the same follower replaces the old one: after
		// a partition the old connection can linger half-open for minutes,
		// and waiting for it would keep the follower out that long. This is
		// safe because the replaced stream's acks are ignored from here on
		// (recvAcks checks the registration under l.mu) and the new stream
		// can acknowledge nothing beyond its own start point and what it is
		// sent itself. Who may replace a stream at all is decided by the
		// peer port's secret (--peer-secret). Logged with both addresses so
		// that an impostor, or two nodes configured with one id, show up.
		old.cancel()
		l.log.Warn("a new log stream replaces the follower's current one", "follower", id,
			"old_remote", old.remote, "new_remote", reg.remote)
	}
	l.streams[id] = reg
	l.mu.Unlock()
	// Only the stream that owns the follower's slot reports it gone: a
	// replaced stream ending late must not disconnect its successor.
	defer func() {
		l.mu.Lock()
		if l.streams[id] == reg {
			delete(l.streams, id)
			if l.ctx.Err() == nil {
				l.core.Disconnected(id, time.Now())
				l.handleReadyLocked()
			}
		}
		l.mu.Unlock()
	}()
	if err := stream.Send(&pb.LeaderMsg{Msg: &pb.LeaderMsg_Start{Start: start}}); err != nil {
		return err
	}
	if start.NeedSnapshot {
		l.log.Info("follower needs a snapshot", "follower", id, "reason", start.Reason)
		l.note(id, func(n *FollowerNote) { n.Reason, n.ReasonAt = start.Reason, time.Now() })
		return nil
	}
	if start.Truncate {
		l.note(id, func(n *FollowerNote) {
			n.Reason, n.ReasonAt = fmt.Sprintf("diverged: rolled back its log from %d to %d", fl, common), time.Now()
		})
	}
	if start.Truncate {
		l.log.Warn("follower diverged; it rolls back its log", "follower", id, "follower_last", fl, "common", common)
	}
	l.mu.Lock()
	if l.streams[id] != reg {
		l.mu.Unlock()
		return errReplaced
	}
	l.core.Connected(id, common, time.Now())
	l.handleReadyLocked()
	l.mu.Unlock()
	l.log.Info("follower streaming", "follower", id, "from_lsn", start.FromLsn)

	errc := make(chan error, 2)
	go func() { errc <- l.recvAcks(ctx, id, reg, stream) }()
	go func() { errc <- l.sendLog(ctx, reg, start.FromLsn, stream) }()
	err = <-errc
	cancel()
	if l.ctx.Err() != nil {
		return errors.New("replication: leader stepping down")
	}
	return err
}

// streamReg identifies one follower stream.
type streamReg struct {
	cancel context.CancelFunc
	remote string // the peer's network address, for logs
	// sent is the highest LSN this stream may be acknowledged up to: the
	// point where it started (the follower's log agreed with ours up to
	// there) or the last entry handed to Send, whichever is higher.
	sent atomic.Uint64
}

var errReplaced = errors.New("replication: replaced by a newer stream from the same follower")

// ErrAckBeyondSent is returned (wrapped) when a follower acknowledges an
// LSN its stream was never sent: a broken or impostor follower.
var ErrAckBeyondSent = errors.New("replication: acknowledgement beyond what this stream was sent")

// remoteAddr is the network address of a stream's peer ("" if unknown).
func remoteAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

func (l *Leader) recvAcks(ctx context.Context, id string, reg *streamReg, stream pb.Peer_ReplicateServer) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		a := m.GetAck()
		if a == nil {
			continue
		}
		received, durable, applied := a.GetReceived(), a.GetDurable(), a.GetApplied()
		// A follower cannot hold what it was never sent. An ack above the
		// stream's bound is a protocol violation: a correct follower never
		// sends one however its goroutines interleave (sendLog raises the
		// bound before Send), so it comes from a bug or from an impostor
		// acknowledging LSN 2^64-1 to make writes look replicated. The
		// stream is closed rather than the ack clamped: a clamped "ack
		// everything" would still count every entry the moment it is sent,
		// which for a peer that stores nothing is the same lie one entry at
		// a time; closing disconnects it from the core (it stops counting)
		// and says so loudly, and a genuine follower simply reconnects.
		if bound := reg.sent.Load(); received > bound || durable > bound || applied > bound {
			l.log.Warn("follower acknowledged entries it was never sent; closing its stream",
				"follower", id, "remote", reg.remote, "received", received, "durable", durable,
				"applied", applied, "sent", bound)
			return fmt.Errorf("%w: %s acknowledged received=%d durable=%d applied=%d, but this stream was sent up to LSN %d",
				ErrAckBeyondSent, id, received, durable, applied, bound)
		}
		// Within the bound, durable and applied above received are clamped,
		// not refused: a correct follower's fsync and apply loops can read
		// its store a moment before its receive loop records the batch
		// (applied momentarily above received), and lowering a position
		// only ever delays a commit.
		durable, applied = min(durable, received), min(applied, received)
		l.mu.Lock()
		if l.streams[id] != reg || l.ctx.Err() != nil {
			l.mu.Unlock()
			return errReplaced
		}
		l.core.Ack(id, received, durable, applied, time.Now())
		l.handleReadyLocked()
		if l.progressCh != nil {
			close(l.progressCh)
			l.progressCh = nil
		}
		l.mu.Unlock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (l *Leader) sendLog(ctx context.Context, reg *streamReg, next uint64, stream pb.Peer_ReplicateServer) error {
	hb := time.NewTicker(l.cfg.Heartbeat)
	defer hb.Stop()
	var sentCommit uint64
	// The leader's view of all followers rides on a heartbeat about once
	// per Heartbeat interval, also while entries flow without pause.
	var viewAt time.Time
	beat := func(commit, last uint64) error {
		withView := time.Since(viewAt) >= l.cfg.Heartbeat
		if withView {
			viewAt = time.Now()
		}
		return l.heartbeat(stream, commit, last, withView)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ch := l.Changed()
		last := l.cfg.Store.State().LastLSN
		commit := l.writer.CommitLSN()
		if next <= last {
			msg := &pb.Entries{}
			var upTo uint64 // the last LSN in msg
			err := l.cfg.Store.ReadLogRaw(next, last, l.cfg.MaxSendBytes, func(lsn uint64, raw []byte) error {
				msg.Entries = append(msg.Entries, append([]byte(nil), raw...))
				upTo = lsn
				return nil
			})
			if err != nil {
				return fmt.Errorf("replication: read log from %d: %w", next, err)
			}
			msg.CommitLsn = commit
			// Raise the ack bound before Send: the follower may receive,
			// fsync and acknowledge these entries before Send returns here,
			// and that ack must not look like one beyond what was sent.
			reg.sent.Store(max(reg.sent.Load(), upTo))
			if err := stream.Send(&pb.LeaderMsg{Msg: &pb.LeaderMsg_Entries{Entries: msg}}); err != nil {
				return err
			}
			next += uint64(len(msg.Entries))
			sentCommit = commit
			if time.Since(viewAt) >= l.cfg.Heartbeat {
				if err := beat(commit, last); err != nil {
					return err
				}
			}
			continue
		}
		if commit != sentCommit {
			if err := beat(commit, last); err != nil {
				return err
			}
			sentCommit = commit
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-hb.C:
			if err := beat(commit, last); err != nil {
				return err
			}
		}
	}
}

func (l *Leader) heartbeat(stream pb.Peer_ReplicateServer, commit, last uint64, withView bool) error {
	hb := &pb.Heartbeat{CommitLsn: commit, LastLsn: last, LeaderTimeUnixNano: time.Now().UnixNano()}
	if withView {
		for _, p := range l.Progress() {
			hb.Followers = append(hb.Followers, &pb.FollowerProgress{
				Id: p.ID, Sync: p.Sync, Healthy: p.Healthy, Received: p.Received, Durable: p.Durable, Applied: p.Applied,
				LagEntries: p.LagEntries, LagBytes: l.LagBytes(p.Applied), LagSeconds: p.LagSeconds, State: p.State})
		}
		hb.FallbackActive = l.FallbackActive()
	}
	return stream.Send(&pb.LeaderMsg{Msg: &pb.LeaderMsg_Heartbeat{Heartbeat: hb}})
}

// ServeSnapshot streams a consistent snapshot at the current commit LSN.
// The log above that LSN is pinned against retention until the stream ends.
func (l *Leader) ServeSnapshot(req *pb.SnapshotRequest, stream pb.Peer_SnapshotServer) error {
	id := req.GetFollowerId()
	if l.cfg.IsMember != nil && !l.cfg.IsMember(id) {
		return fmt.Errorf("replication: %q: %w", id, ErrNotMember)
	}
	if req.GetEpoch() > l.cfg.Epoch {
		// The follower follows a newer leader: this one is fenced off.
		return fmt.Errorf("%w: %s asks for a snapshot of epoch %d, this leader is at %d", ErrStaleLeader, id, req.GetEpoch(), l.cfg.Epoch)
	}
	lsn := l.writer.CommitLSN()
	l.note(id, func(n *FollowerNote) { n.Snapshotting, n.SnapshotLSN, n.SnapshotBytes = true, lsn, 0 })
	defer l.note(id, func(n *FollowerNote) { n.Snapshotting = false })
	l.mu.Lock()
	l.pinSeq++
	pin := l.pinSeq
	l.pins[pin] = lsn + 1
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pins, pin)
		l.mu.Unlock()
	}()
	start := time.Now()
	// A snapshot is every key and value: say who asked for it.
	l.log.Info("streaming snapshot", "follower", req.GetFollowerId(), "remote", remoteAddr(stream.Context()), "lsn", lsn)
	crc := crc32.New(crcTable)
	var sent, keys uint64
	chunk := &pb.SnapshotChunk{Lsn: lsn}
	size := 0
	// Chunks are sent (encoded and written) by another goroutine while
	// the scan reads the next ones; a failed send stops the scan.
	sendq := make(chan *pb.SnapshotChunk, 4)
	sendRes := make(chan error, 1)
	var sendFailed atomic.Bool
	go func() {
		var err error
		for c := range sendq {
			if err == nil {
				if err = stream.Send(c); err != nil {
					sendFailed.Store(true)
				}
			}
		}
		sendRes <- err
	}()
	// finishSend ends the sender once and returns its error; deferred so
	// that no return leaves it behind.
	finishSend := sync.OnceValue(func() error {
		close(sendq)
		return <-sendRes
	})
	defer finishSend()
	flush := func() bool {
		if sendFailed.Load() {
			return false
		}
		chunk.SentBytes = sent
		l.note(id, func(n *FollowerNote) { n.SnapshotBytes = sent })
		sendq <- chunk
		chunk = &pb.SnapshotChunk{Lsn: lsn}
		size = 0
		return true
	}
	err := l.cfg.Store.Scan(lsn, nil, func(k []byte, v storage.Version) bool {
		kv := &pb.KV{Key: k, Value: v.Value, ExpireAt: v.ExpireAt, Type: uint32(v.Type)}
		hashKV(crc, kv)
		chunk.Pairs = append(chunk.Pairs, kv)
		n := len(k) + len(v.Value) + 16
		size += n
		sent += uint64(n)
		keys++
		if size >= l.cfg.MaxSendBytes {
			return flush()
		}
		return true
	})
	if sendFailed.Load() {
		return finishSend()
	}
	if err != nil {
		return fmt.Errorf("replication: snapshot scan: %w", err)
	}
	chunk.Done = &pb.SnapshotDone{Lsn: lsn, Epochs: epochsToPB(epochsUpTo(l.cfg.Store.EpochHistory(), lsn)),
		Crc: crc.Sum32(), Keys: keys, Bytes: sent}
	flush()
	if err := finishSend(); err != nil {
		return err
	}
	el := time.Since(start)
	l.log.Info("snapshot sent", "follower", req.GetFollowerId(), "lsn", lsn, "keys", keys, "bytes", sent,
		"seconds", el.Seconds(), "mb_per_s", float64(sent)/1e6/max(el.Seconds(), 1e-9))
	return nil
}

func epochsUpTo(h []storage.EpochStart, lsn uint64) []storage.EpochStart {
	var out []storage.EpochStart
	for _, e := range h {
		if e.FirstLSN <= lsn {
			out = append(out, e)
		}
	}
	return out
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// hashKV feeds one snapshot pair into the running checksum, length-prefixed
// so that pair boundaries matter.
func hashKV(h interface{ Write([]byte) (int, error) }, kv *pb.KV) {
	var buf [8]byte
	put := func(n uint64) {
		for i := range 8 {
			buf[i] = byte(n >> (8 * i))
		}
		_, _ = h.Write(buf[:])
	}
	put(uint64(len(kv.Key)))
	_, _ = h.Write(kv.Key)
	put(uint64(len(kv.Value)))
	_, _ = h.Write(kv.Value)
	put(uint64(kv.ExpireAt))
	// A string's pair hashes as it did before types existed, so a node of
	// either version checks the other's snapshot.
	if kv.Type != 0 {
		put(uint64(kv.Type))
	}
}
