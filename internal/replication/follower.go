package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/storage/logrec"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// ErrNotMember is returned (wrapped) when the leader refuses a stream or
// snapshot because the follower is not a member of the cluster; Follower.Run
// returns it once the refusals persist (the node was removed).
var ErrNotMember = errors.New("not a member of this cluster")

// notMemberGrace is how long the leader's "not a member" refusals must
// persist before a follower concludes it was removed.
const notMemberGrace = 3 * time.Second

// ErrStaleLeader is returned (wrapped) when a leader of an older epoch than
// the follower has seen tries to lead it: fencing.
var ErrStaleLeader = errors.New("leader epoch is older than one already seen")

// FollowerConfig configures a follower's replication driver.
type FollowerConfig struct {
	ID    string
	Store *storage.Store
	// LeaderID, Epoch: the leader the control plane appointed, and its epoch.
	LeaderID string
	Epoch    uint64
	// Dial returns a client to the leader's peer endpoint.
	Dial func() (pb.PeerClient, error)
	// ApplyDelay makes this a delayed replica: entries are received and
	// acknowledged at once, applied only when they are this old.
	ApplyDelay time.Duration
	// RollbackDir receives a file per divergence rollback.
	RollbackDir string
	Logger      *slog.Logger
	// OnRollback is called with the number of entries rolled back.
	OnRollback func(n int)
}

// FollowerStatus describes the follower side of replication.
type FollowerStatus struct {
	Leader       string
	State        FollowerState
	Reason       string // why (e.g. why a snapshot was needed)
	LeaderCommit uint64
	// LeaderLast is the leader's last LSN as its latest message said (what
	// the leader holds; the follower's lag in entries is measured to it).
	LeaderLast    uint64
	LastContact   time.Time
	SnapshotBytes uint64
	SnapshotLSN   uint64
	RolledBack    uint64
	LastError     string
}

// Follower pulls the log from the leader, appends, applies and acknowledges.
type Follower struct {
	cfg FollowerConfig
	log *slog.Logger

	commit atomic.Uint64 // commit LSN learned from the leader
	// durable is the last LSN known fsynced here. Reads never go above it:
	// an entry visible before its fsync could vanish in a crash, and the
	// node would then serve older state after restarting than before.
	durable     atomic.Uint64
	lastContact atomic.Int64 // unix nanos
	// leaderLast is the leader's last LSN as its latest message said.
	leaderLast atomic.Uint64
	mu         sync.Mutex
	st         FollowerStatus
	// applyq holds (lsn, leader time) of appended, unapplied entries for a
	// delayed replica.
	applyq []stamp
	// oldestUnapplied is the leader time of the first unapplied entry (0:
	// none), for lag in seconds.
	changed chan struct{}
	view    LeaderView
}

type stamp struct {
	lsn uint64
	at  int64
}

// NewFollower prepares a follower; Run drives it.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Follower{cfg: cfg, log: cfg.Logger.With("role", "follower", "leader", cfg.LeaderID, "epoch", cfg.Epoch), changed: make(chan struct{})}
	f.st = FollowerStatus{Leader: cfg.LeaderID, State: FollowerConnecting}
	st := cfg.Store.State()
	f.commit.Store(st.CommitLSN)
	// The log was recovered from disk at start, or appended by an earlier
	// session of this process, which waited for every fsync it started.
	f.durable.Store(st.LastLSN)
	if st.AppliedLSN < st.LastLSN && cfg.ApplyDelay > 0 {
		_ = cfg.Store.ReadLog(st.AppliedLSN+1, st.LastLSN, 0, func(e storage.Entry) error {
			f.applyq = append(f.applyq, stamp{e.LSN, e.Time})
			return nil
		})
	} else if st.AppliedLSN < st.LastLSN {
		if err := cfg.Store.ApplyUpTo(st.LastLSN); err != nil {
			f.log.Error("apply after restart", "err", err)
		}
	}
	return f
}

// CommitLSN is the commit LSN this follower has learned.
func (f *Follower) CommitLSN() uint64 { return f.commit.Load() }

// ReadLSN is the LSN reads are served at: committed, applied and durable
// here.
func (f *Follower) ReadLSN() uint64 {
	return min(f.commit.Load(), f.cfg.Store.State().AppliedLSN, f.durable.Load())
}

// CaughtUp reports whether this follower has applied and may serve
// everything the leader said it holds (as of the leader's latest message).
func (f *Follower) CaughtUp() bool {
	return f.ReadLSN() >= f.leaderLast.Load()
}

// LastContact is when the leader was last heard from.
func (f *Follower) LastContact() time.Time {
	n := f.lastContact.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Status reports the follower's state.
func (f *Follower) Status() FollowerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	s.LeaderCommit = f.commit.Load()
	s.LeaderLast = f.leaderLast.Load()
	s.LastContact = f.LastContact()
	return s
}

// State is the follower's session state (Status without the copy).
func (f *Follower) State() FollowerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.State
}

// Changed is closed when the read LSN may have moved.
func (f *Follower) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *Follower) notify() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// transition feeds ev to the follower's state machine and records reason.
func (f *Follower) transition(ev followerEvent, reason string) {
	f.mu.Lock()
	f.st.State, f.st.Reason = f.st.State.next(ev), reason
	f.mu.Unlock()
}

// Run replicates until ctx ends, reconnecting with backoff. It returns an
// error wrapping ErrStaleLeader if the leader is fenced off.
func (f *Follower) Run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	var refusedSince time.Time
	// disk paces the wait while the local store refuses writes (a full or
	// failing disk): connecting would only fetch entries it cannot keep.
	// The store recovers on its own once it can; this says so rarely.
	disk := storage.Throttle{Max: 5 * time.Second}
	for ctx.Err() == nil {
		if err := f.cfg.Store.Writable(); err != nil {
			f.mu.Lock()
			f.st.LastError = err.Error()
			f.st.State = f.st.State.next(evSessionFailed)
			f.mu.Unlock()
			now := time.Now()
			if log, n := disk.Fail(now, err); log {
				f.log.Warn("not replicating: the local store cannot take writes", "err", err, "suppressed", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(disk.Delay(now)):
			}
			continue
		}
		if disk.Succeed() {
			f.log.Info("local store takes writes again; replicating")
		}
		err := f.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrStaleLeader) {
			f.log.Error("refusing stale leader", "err", err)
			f.transition(evFenced, err.Error())
			return err
		}
		// The leader refuses streams of non-members. A member that was just
		// added may be refused by a leader that has not applied its join
		// yet, so only a refusal that persists means this node was removed.
		switch {
		case err != nil && strings.Contains(err.Error(), ErrNotMember.Error()):
			if refusedSince.IsZero() {
				refusedSince = time.Now()
			} else if time.Since(refusedSince) >= notMemberGrace {
				f.log.Warn("the leader keeps refusing this node as a non-member: it was removed from the cluster", "err", err)
				return fmt.Errorf("%w (the leader refuses this node's stream)", ErrNotMember)
			}
		default:
			refusedSince = time.Time{}
		}
		if err != nil {
			f.mu.Lock()
			f.st.LastError = err.Error()
			f.st.State = f.st.State.next(evSessionFailed)
			f.mu.Unlock()
			f.log.Debug("log stream ended", "err", err)
		} else {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		if err != nil {
			backoff = min(backoff*2, 2*time.Second)
		}
	}
	return nil
}

func (f *Follower) session(ctx context.Context) error {
	client, err := f.cfg.Dial()
	if err != nil {
		return err
	}
	// The log stream has a context of its own so that ending it (for a
	// snapshot, or when a helper goroutine fails) leaves ctx alone.
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	stream, err := client.Replicate(sctx)
	if err != nil {
		return fmt.Errorf("open log stream: %w", err)
	}
	st := f.cfg.Store.State()
	hello := &pb.Hello{FollowerId: f.cfg.ID, LastLsn: st.LastLSN, LastEpoch: st.LastEpoch,
		Epochs: epochsToPB(f.cfg.Store.EpochHistory()), Epoch: f.cfg.Epoch, FirstLsn: st.FirstLSN}
	if err := stream.Send(&pb.FollowerMsg{Msg: &pb.FollowerMsg_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	m, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("await start: %w", err)
	}
	start := m.GetStart()
	if start == nil {
		return errors.New("leader did not answer hello with start")
	}
	if start.GetEpoch() < f.cfg.Epoch {
		return fmt.Errorf("%w: leader %s is at epoch %d, this follower has seen %d", ErrStaleLeader, start.GetLeaderId(), start.GetEpoch(), f.cfg.Epoch)
	}
	f.touch()
	if start.GetNeedSnapshot() || (start.GetTruncate() && start.GetTruncateTo()+1 < st.FirstLSN) {
		reason := start.GetReason()
		if reason == "" {
			reason = fmt.Sprintf("rollback to %d is below this node's own log start %d", start.GetTruncateTo(), st.FirstLSN)
		}
		scancel()
		return f.installSnapshot(ctx, client, reason)
	}
	if start.GetTruncate() {
		if err := f.rollback(start.GetTruncateTo(), start.GetEpoch()); errors.Is(err, storage.ErrCompacted) {
			// History below the rollback point is gone (retention or GC):
			// only a snapshot can bring this node back in line.
			scancel()
			return f.installSnapshot(ctx, client, err.Error())
		} else if err != nil {
			return err
		}
	}
	if st := f.cfg.Store.State(); st.LastLSN+1 != start.GetFromLsn() {
		return fmt.Errorf("leader streams from %d but the log ends at %d", start.GetFromLsn(), st.LastLSN)
	}
	f.transition(evStreamStarted, "")
	f.log.Info("streaming from leader", "from_lsn", start.GetFromLsn())
	return f.stream(sctx, scancel, stream)
}

func (f *Follower) touch() { f.lastContact.Store(time.Now().UnixNano()) }

// rollback truncates the divergent suffix and writes it to a rollback file.
func (f *Follower) rollback(to, epoch uint64) error {
	removed, err := f.cfg.Store.TruncateSuffix(to)
	if err != nil {
		return fmt.Errorf("roll back to %d: %w", to, err)
	}
	if len(removed) == 0 {
		return nil
	}
	path, werr := writeRollbackFile(f.cfg.RollbackDir, removed, epoch)
	if werr != nil {
		f.log.Error("could not write rollback file; the rolled back entries are in this log line", "err", werr, "entries", len(removed))
	}
	f.log.Warn("rolled back divergent log suffix", "to_lsn", to, "entries", len(removed), "file", path)
	f.mu.Lock()
	f.st.RolledBack += uint64(len(removed))
	// A delayed replica must not apply the new leader's entries at the
	// rolled-back entries' times.
	i := len(f.applyq)
	for i > 0 && f.applyq[i-1].lsn > to {
		i--
	}
	f.applyq = f.applyq[:i]
	f.mu.Unlock()
	if f.cfg.OnRollback != nil {
		f.cfg.OnRollback(len(removed))
	}
	f.commit.Store(min(f.commit.Load(), to))
	f.durable.Store(min(f.durable.Load(), to))
	return nil
}

func writeRollbackFile(dir string, entries []storage.Entry, epoch uint64) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("rollback-%s-to-epoch-%d.jsonl", time.Now().UTC().Format("20060102T150405.000000000"), epoch))
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	enc := json.NewEncoder(fh)
	for _, e := range entries {
		type op struct {
			Kind     string `json:"op"`
			Key      []byte `json:"key,omitempty"`
			Value    []byte `json:"value,omitempty"`
			ExpireAt int64  `json:"expire_at_ms,omitempty"`
			Type     string `json:"type,omitempty"`
		}
		rec := struct {
			LSN   uint64 `json:"lsn"`
			Epoch uint64 `json:"epoch"`
			Time  string `json:"time"`
			Ops   []op   `json:"ops"`
		}{LSN: e.LSN, Epoch: e.Epoch, Time: time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano)}
		for _, o := range e.Ops {
			o2 := op{Kind: o.Kind.String(), Key: o.Key, Value: o.Value, ExpireAt: o.ExpireAt}
			if o.Type != 0 {
				o2.Type = engine.Type(o.Type).String()
			}
			rec.Ops = append(rec.Ops, o2)
		}
		if err := enc.Encode(rec); err != nil {
			fh.Close()
			return path, err
		}
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return path, err
	}
	return path, fh.Close()
}

type ackState struct {
	mu                         sync.Mutex
	received, durable, applied uint64
	sentR, sentD, sentA        uint64
	wake                       chan struct{}
	// sendMu: one Send at a time on the stream (gRPC allows no more).
	sendMu sync.Mutex
}

// set records positions and wakes sendAcks to send them.
func (a *ackState) set(r, d, ap uint64) {
	a.record(r, d, ap)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *ackState) record(r, d, ap uint64) {
	a.mu.Lock()
	a.received, a.durable, a.applied = max(a.received, r), max(a.durable, d), max(a.applied, ap)
	a.mu.Unlock()
}

// send sends the positions when they moved since the last ack, or when
// force is set.
func (a *ackState) send(stream pb.Peer_ReplicateClient, force bool) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	a.mu.Lock()
	r, d, ap := a.received, a.durable, a.applied
	changed := force || r != a.sentR || d != a.sentD || ap != a.sentA
	a.sentR, a.sentD, a.sentA = r, d, ap
	a.mu.Unlock()
	if !changed {
		return nil
	}
	return stream.Send(&pb.FollowerMsg{Msg: &pb.FollowerMsg_Ack{Ack: &pb.Ack{Received: r, Durable: d, Applied: ap}}})
}

func (f *Follower) stream(ctx context.Context, cancelStream context.CancelFunc, stream pb.Peer_ReplicateClient) error {
	// The first ack claims the whole local log durable: make it so (an
	// earlier session may have ended on a failed fsync).
	if err := f.cfg.Store.Sync(); err != nil {
		return err
	}
	st := f.cfg.Store.State()
	acks := &ackState{wake: make(chan struct{}, 1)}
	acks.set(st.LastLSN, st.LastLSN, st.AppliedLSN)
	syncq := make(chan *syncItem, 64)
	errc := make(chan error, 3)
	// A failing helper ends the whole session: cancelling the stream's
	// context unblocks recvLoop (Recv and its syncq send).
	fail := func(err error) {
		if err != nil {
			cancelStream()
		}
		errc <- err
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); fail(f.sendAcks(ctx, stream, acks)) }()
	go func() { defer wg.Done(); fail(f.syncLoop(cancelStream, stream, syncq, acks)) }()
	go func() { defer wg.Done(); fail(f.applyLoop(ctx, acks)) }()
	err := f.recvLoop(ctx, stream, syncq, acks)
	cancelStream()
	close(syncq)
	wg.Wait()
	close(errc)
	for e := range errc {
		if e != nil && !errors.Is(e, context.Canceled) {
			return e // the helper's failure is the real cause
		}
	}
	return err
}

type syncItem struct {
	pending *storage.Pending
	last    uint64
}

func (f *Follower) recvLoop(ctx context.Context, stream pb.Peer_ReplicateClient, syncq chan<- *syncItem, acks *ackState) error {
	var entries []storage.Entry
	for {
		m, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("leader closed the log stream")
			}
			return err
		}
		f.touch()
		switch msg := m.GetMsg().(type) {
		case *pb.LeaderMsg_Heartbeat:
			f.leaderLast.Store(msg.Heartbeat.GetLastLsn())
			f.learnCommit(msg.Heartbeat.GetCommitLsn())
			if fs := msg.Heartbeat.GetFollowers(); len(fs) > 0 {
				f.learnView(fs, msg.Heartbeat.GetFallbackActive())
			}
		case *pb.LeaderMsg_Entries:
			entries = entries[:0]
			for _, raw := range msg.Entries.GetEntries() {
				e, err := storage.DecodeEntry(raw)
				if err != nil {
					return fmt.Errorf("entry from leader: %w", err)
				}
				if e.Epoch > f.cfg.Epoch {
					return fmt.Errorf("entry %d carries epoch %d above the leader's %d", e.LSN, e.Epoch, f.cfg.Epoch)
				}
				entries = append(entries, e)
			}
			if len(entries) == 0 {
				continue
			}
			st := f.cfg.Store.State()
			apply := f.cfg.ApplyDelay == 0 && st.AppliedLSN == st.LastLSN
			pend, err := f.cfg.Store.Append(entries, storage.AppendOptions{Apply: apply, Sync: true})
			if err != nil {
				return fmt.Errorf("append: %w", err)
			}
			last := entries[len(entries)-1].LSN
			if last > f.leaderLast.Load() {
				f.leaderLast.Store(last)
			}
			if !apply {
				f.mu.Lock()
				for _, e := range entries {
					f.applyq = append(f.applyq, stamp{e.LSN, e.Time})
				}
				f.mu.Unlock()
			}
			applied := f.cfg.Store.State().AppliedLSN
			acks.set(last, 0, applied)
			select {
			case syncq <- &syncItem{pending: pend, last: last}:
			case <-ctx.Done():
				_ = pend.Wait()
				return ctx.Err()
			}
			f.learnCommit(msg.Entries.GetCommitLsn())
		}
	}
}

// LeaderView is the leader's view of its followers as it last reported it
// on this follower's stream.
type LeaderView struct {
	At             time.Time // when this follower received it
	Followers      []FollowerProgress
	FallbackActive bool
}

func (f *Follower) learnView(fs []*pb.FollowerProgress, fallback bool) {
	v := LeaderView{At: time.Now(), FallbackActive: fallback, Followers: make([]FollowerProgress, 0, len(fs))}
	for _, p := range fs {
		v.Followers = append(v.Followers, FollowerProgress{ID: p.GetId(), Sync: p.GetSync(), Healthy: p.GetHealthy(),
			Received: p.GetReceived(), Durable: p.GetDurable(), Applied: p.GetApplied(), LagEntries: p.GetLagEntries(),
			LagBytes: p.GetLagBytes(), LagSeconds: p.GetLagSeconds(), State: p.GetState()})
	}
	f.mu.Lock()
	f.view = v
	f.mu.Unlock()
}

// LeaderView returns the leader's latest view of its followers (zero At
// when none has arrived yet).
func (f *Follower) LeaderView() LeaderView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view
}

func (f *Follower) learnCommit(c uint64) {
	c = min(c, f.cfg.Store.State().LastLSN)
	if c > f.commit.Load() {
		f.commit.Store(c)
		f.notify()
	}
	f.mu.Lock()
	if f.cfg.Store.State().AppliedLSN >= c {
		f.st.State = f.st.State.next(evCaughtUp)
	}
	f.mu.Unlock()
}

// syncLoop waits for each received batch's fsync and acknowledges it.
// On a failure it ends the stream (cancel), which ends recvLoop and
// closes syncq, and waits for every batch still queued: each exactly
// once.
func (f *Follower) syncLoop(cancel context.CancelFunc, stream pb.Peer_ReplicateClient, syncq <-chan *syncItem, acks *ackState) error {
	drain := func(err error) error {
		cancel()
		for rest := range syncq {
			_ = rest.pending.Wait()
		}
		return err
	}
	lastPersist := time.Now()
	for it := range syncq {
		if err := it.pending.Wait(); err != nil {
			return drain(fmt.Errorf("fsync: %w", err))
		}
		// The durable ack is what a sync policy waits for: sent from here,
		// not by waking sendAcks, it saves the leader's commit a hand-off
		// between goroutines.
		acks.record(0, it.last, f.cfg.Store.State().AppliedLSN)
		if err := acks.send(stream, false); err != nil {
			return drain(err)
		}
		if it.last > f.durable.Load() {
			f.durable.Store(it.last)
		}
		f.notify()
		// The commit LSN is re-learned from the leader after a restart; a
		// persisted copy only lets reads resume sooner.
		if time.Since(lastPersist) > time.Second {
			_ = f.cfg.Store.SetCommitLSN(f.commit.Load())
			lastPersist = time.Now()
		}
	}
	return nil
}

// applyLoop applies entries of a delayed replica once they are old enough.
func (f *Follower) applyLoop(ctx context.Context, acks *ackState) error {
	if f.cfg.ApplyDelay == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cutoff := time.Now().Add(-f.cfg.ApplyDelay).UnixNano()
		f.mu.Lock()
		i := 0
		for i < len(f.applyq) && f.applyq[i].at <= cutoff {
			i++
		}
		var upTo uint64
		if i > 0 {
			upTo = f.applyq[i-1].lsn
		}
		f.mu.Unlock()
		if upTo == 0 {
			continue
		}
		if err := f.cfg.Store.ApplyUpTo(upTo); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		f.mu.Lock()
		f.applyq = append(f.applyq[:0], f.applyq[i:]...)
		f.mu.Unlock()
		acks.set(0, 0, upTo)
		f.notify()
	}
}

// OldestUnapplied returns the leader time of the oldest received but
// unapplied entry (zero when none).
func (f *Follower) OldestUnapplied() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applyq) == 0 {
		return time.Time{}
	}
	return time.Unix(0, f.applyq[0].at)
}

func (f *Follower) sendAcks(ctx context.Context, stream pb.Peer_ReplicateClient, acks *ackState) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	force := true
	for {
		if err := acks.send(stream, force); err != nil {
			return err
		}
		force = false
		select {
		case <-ctx.Done():
			return nil
		case <-acks.wake:
		case <-t.C:
			// Ack even when nothing moved: it is the leader's liveness
			// signal for this follower.
			force = true
		}
	}
}

// installSnapshot replaces the local state with the leader's snapshot.
func (f *Follower) installSnapshot(ctx context.Context, client pb.PeerClient, reason string) error {
	f.log.Warn("installing a snapshot from the leader", "reason", reason)
	f.mu.Lock()
	f.st.State, f.st.Reason, f.st.SnapshotBytes = f.st.State.next(evSnapshotStarted), reason, 0
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Snapshot(ctx, &pb.SnapshotRequest{FollowerId: f.cfg.ID, Epoch: f.cfg.Epoch})
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := f.cfg.Store.BeginInstall(); err != nil {
		return err
	}
	f.commit.Store(0)
	f.mu.Lock()
	f.applyq = nil
	f.mu.Unlock()
	start := time.Now()
	crc := crc32.New(crcTable)
	var keys, lastLog uint64
	kvs := make([]storage.KV, 0, 1024)
	// Chunks are received (and decoded) while the previous ones are
	// installed: the stream and the disk work side by side.
	chunks := make(chan *pb.SnapshotChunk, 4)
	recvErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		for {
			ch, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case chunks <- ch:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
			if ch.GetDone() != nil {
				return
			}
		}
	}()
	for {
		ch, ok := <-chunks
		if !ok {
			return fmt.Errorf("snapshot stream: %w", <-recvErr)
		}
		f.touch()
		kvs = kvs[:0]
		for _, p := range ch.GetPairs() {
			hashKV(crc, p)
			if p.GetType() > logrec.MaxType {
				return fmt.Errorf("snapshot stream: key %q has unknown type %d", p.GetKey(), p.GetType())
			}
			kvs = append(kvs, storage.KV{Key: p.GetKey(), Value: p.GetValue(), ExpireAt: p.GetExpireAt(), Type: uint8(p.GetType())})
		}
		keys += uint64(len(kvs))
		if err := f.cfg.Store.InstallChunk(ch.GetLsn(), kvs); err != nil {
			return err
		}
		f.mu.Lock()
		f.st.SnapshotBytes, f.st.SnapshotLSN = ch.GetSentBytes(), ch.GetLsn()
		f.mu.Unlock()
		if ch.GetSentBytes()-lastLog > 64<<20 {
			lastLog = ch.GetSentBytes()
			f.log.Info("snapshot progress", "lsn", ch.GetLsn(), "bytes", ch.GetSentBytes(), "keys", keys)
		}
		done := ch.GetDone()
		if done == nil {
			continue
		}
		if done.GetCrc() != crc.Sum32() || done.GetKeys() != keys {
			return fmt.Errorf("snapshot at LSN %d failed its checksum (crc %08x vs %08x, keys %d vs %d); retrying",
				done.GetLsn(), done.GetCrc(), crc.Sum32(), done.GetKeys(), keys)
		}
		if err := f.cfg.Store.FinishInstall(done.GetLsn(), epochsFromPB(done.GetEpochs())); err != nil {
			return err
		}
		f.durable.Store(done.GetLsn())
		f.commit.Store(done.GetLsn())
		el := time.Since(start)
		f.log.Info("snapshot installed", "lsn", done.GetLsn(), "keys", keys, "bytes", done.GetBytes(),
			"seconds", el.Seconds(), "mb_per_s", float64(done.GetBytes())/1e6/max(el.Seconds(), 1e-9))
		f.mu.Lock()
		f.st.State = f.st.State.next(evSnapshotInstalled) // the reason stays: why it was needed
		f.mu.Unlock()
		f.notify()
		return nil
	}
}
