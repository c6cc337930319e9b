package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

// ErrStopped is returned to proposals when the write path shuts down.
var ErrStopped = errors.New("replication: write path stopped")

// BatchStats describes one group-commit batch, for metrics.
type BatchStats struct {
	Entries   int
	Proposals int
	Bytes     int
	SyncTime  time.Duration
}

// WriterConfig configures a Writer.
type WriterConfig struct {
	Store  *storage.Store
	Epoch  uint64
	Logger *slog.Logger
	// MaxBatch caps proposals per group-commit batch (default 1024).
	MaxBatch int
	// OnBatch, if set, is called after each batch is durable.
	OnBatch func(BatchStats)
	// Now is the clock (default time.Now); tests may replace it.
	Now func() time.Time
	// OnAppended, if set, is called (on the sequencer goroutine) after each
	// batch is appended, with its last LSN, encoded size and time.
	OnAppended func(lastLSN uint64, bytes int, at time.Time)
	// OnDurable, if set, is called when the local log is durable up to lsn
	// and takes over commit decisions: it must call AdvanceCommit. If nil,
	// the local fsync alone commits (a leader without followers).
	OnDurable func(lsn uint64)
}

type proposal struct {
	fn      func(engine.Txn) error
	done    chan error
	waitLSN uint64
	epoch   uint64
	// fnErr is the error fn returned. It depends on what fn read, which
	// may not be committed yet: it is answered, like a no-op, only once
	// waitLSN is committed (AdvanceCommit delivers it).
	fnErr error
	// notify, when set, is called once the answer is in done (by whoever
	// answers; it must not block).
	notify func()
}

// answer delivers the proposal's outcome, once.
func (p *proposal) answer(err error) {
	p.done <- err
	if p.notify != nil {
		p.notify()
	}
}

// CommandError wraps the error a proposal's closure returned (a command
// that failed on the state it read, e.g. "value is not an integer"). It is
// answered only once that state is committed, so it is as authoritative as
// a successful reply.
type CommandError struct{ Err error }

func (e *CommandError) Error() string { return e.Err.Error() }
func (e *CommandError) Unwrap() error { return e.Err }

// appendedBatch is a batch runBatch appended, for syncBatch to make
// durable and answer.
type appendedBatch struct {
	pending   *storage.Pending
	lastLSN   uint64
	stats     BatchStats
	appendErr error
}

// Writer is the leader's write path: it serialises proposals, turns each into
// one log entry, appends them in group-commit batches (one fsync for many
// writers, one batch at a time: sequence), and acknowledges a proposal once
// its entry is at or below the commit LSN.
type Writer struct {
	cfg       WriterConfig
	props     chan *proposal
	stop      chan struct{}
	stopped   chan struct{} // closed when Close has answered every proposal
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu      sync.Mutex
	waiters []*proposal // in non-decreasing waitLSN order
	commit  atomic.Uint64
	durable atomic.Uint64
	// failed is set when an appended batch could not be made durable: the
	// durable LSN is unknown beyond it, so nothing more is acknowledged
	// until the store has recovered (see ready).
	failed error
}

// NewWriter starts the write path. Close stops it.
func NewWriter(cfg WriterConfig) *Writer {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Writer{cfg: cfg, props: make(chan *proposal, 4096), stop: make(chan struct{}), stopped: make(chan struct{})}
	st := cfg.Store.State()
	// Everything in the log after a restart is durable; whether it is
	// committed is the commit policy's call when there is one.
	w.durable.Store(st.LastLSN)
	if cfg.OnDurable == nil {
		w.commit.Store(st.LastLSN)
	} else {
		w.commit.Store(min(st.CommitLSN, st.LastLSN))
	}
	w.wg.Add(1)
	go w.sequence()
	return w
}

// CommitLSN is the highest committed LSN; reads on the leader happen there.
func (w *Writer) CommitLSN() uint64 { return w.commit.Load() }

// Epoch is the epoch new entries carry.
func (w *Writer) Epoch() uint64 { return w.cfg.Epoch }

// Propose runs fn on the write path and waits until its effects (and every
// state it read) are committed. It returns the token of that state. If ctx
// ends first the write may still commit later.
func (w *Writer) Propose(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	wait, err := w.Submit(ctx, fn)
	if err != nil {
		return engine.Token{}, err
	}
	return wait(ctx)
}

// Submit queues fn on the write path and returns at once with a function
// that waits for its outcome as Propose does. Proposals submitted one after
// another by one goroutine run, and are logged, in that order: a pipelining
// client's writes keep their order without waiting for each other.
func (w *Writer) Submit(ctx context.Context, fn func(engine.Txn) error) (func(context.Context) (engine.Token, error), error) {
	return w.SubmitUntil(ctx, time.Time{}, fn)
}

// SubmitUntil is Submit with a deadline for the queueing and the wait
// (context.DeadlineExceeded once it passes; zero: none beyond ctx's). It
// spares a write path that bounds every write a derived context per
// write: context.WithTimeout on a cancellable parent registers with the
// parent under its lock and was 3.7 % of a durable SET's CPU; a timer
// armed only while waiting costs a fraction of that.
func (w *Writer) SubmitUntil(ctx context.Context, deadline time.Time, fn func(engine.Txn) error) (func(context.Context) (engine.Token, error), error) {
	return w.SubmitNotify(ctx, deadline, fn, nil)
}

// SubmitNotify is SubmitUntil that also calls notify (from whichever
// goroutine answers; it must not block) once the outcome is known, after
// which the returned function does not wait. Without an error from
// SubmitNotify, notify is called exactly once.
func (w *Writer) SubmitNotify(ctx context.Context, deadline time.Time, fn func(engine.Txn) error, notify func()) (func(context.Context) (engine.Token, error), error) {
	p := &proposal{fn: fn, done: make(chan error, 1), notify: notify}
	select {
	case w.props <- p: // the usual case: the queue has room
	default:
		t := newDeadlineTimer(deadline)
		select {
		case w.props <- p:
		case <-w.stop:
			t.stop()
			return nil, ErrStopped
		case <-ctx.Done():
			t.stop()
			return nil, ctx.Err()
		case <-t.c():
			return nil, context.DeadlineExceeded
		}
		t.stop()
	}
	return func(ctx context.Context) (engine.Token, error) { return w.await(ctx, p, deadline) }, nil
}

// deadlineTimer fires at a deadline; the zero deadline never fires.
type deadlineTimer struct{ t *time.Timer }

func newDeadlineTimer(deadline time.Time) deadlineTimer {
	if deadline.IsZero() {
		return deadlineTimer{}
	}
	return deadlineTimer{time.NewTimer(time.Until(deadline))}
}

// c is the channel that fires (nil, which never does, without a deadline).
func (d deadlineTimer) c() <-chan time.Time {
	if d.t == nil {
		return nil
	}
	return d.t.C
}

func (d deadlineTimer) stop() {
	if d.t != nil {
		d.t.Stop()
	}
}

func (w *Writer) await(ctx context.Context, p *proposal, deadline time.Time) (engine.Token, error) {
	var err error
	select {
	case err = <-p.done: // answered already (notified callers): no timer
		return p.outcome(err)
	default:
	}
	t := newDeadlineTimer(deadline)
	defer t.stop()
	select {
	case <-t.c():
		return engine.Token{}, context.DeadlineExceeded
	case err = <-p.done:
	case <-w.stopped:
		// The send above may have won against a closed stop channel and
		// queued p after the sequencer exited; nobody will answer it.
		// Every answer is sent before stopped closes, so check once more.
		select {
		case err = <-p.done:
		default:
			err = ErrStopped
		}
	case <-ctx.Done():
		return engine.Token{}, ctx.Err()
	}
	return p.outcome(err)
}

// outcome is the token and error of the answer err.
func (p *proposal) outcome(err error) (engine.Token, error) {
	if err != nil {
		if p.fnErr != nil && err == p.fnErr {
			return engine.Token{Epoch: p.epoch, LSN: p.waitLSN}, &CommandError{Err: err}
		}
		return engine.Token{}, err
	}
	return engine.Token{Epoch: p.epoch, LSN: p.waitLSN}, nil
}

// Close stops accepting proposals, lets in-flight batches finish, and fails
// proposals still waiting for commit.
func (w *Writer) Close() { w.closeOnce.Do(w.close) }

func (w *Writer) close() {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	for _, p := range w.waiters {
		p.answer(ErrStopped)
	}
	w.waiters = nil
	w.mu.Unlock()
	close(w.stopped)
}

// sequence is the write path's one goroutine: it takes the proposals
// queued so far as a batch, runs and appends it, makes it durable and
// answers it (syncBatch), and starts again. Group commit comes from the
// queue: the proposals that arrive while one batch is fsynced wait in it
// and make the next batch, with no goroutine woken for each of them. An
// earlier design ran the fsync on a second goroutine and gathered the
// next batch meanwhile; every proposal then woke the sequencer, and each
// batch cost two hand-offs between them, for no overlap: a batch could
// only be appended once the previous fsync had ended (it would otherwise
// have waited for its own fsync after that one). Measured in paired runs:
// 4–12 % less CPU per SET, and as many or more SETs per second
// (docs/benchmarks.md §18).
func (w *Writer) sequence() {
	defer w.wg.Done()
	batch := make([]*proposal, 0, w.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case p := <-w.props:
			batch = append(batch, p)
		case <-w.stop:
			w.drainProposals()
			return
		}
	fill:
		for len(batch) < w.cfg.MaxBatch {
			select {
			case p := <-w.props:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		if f, ok := w.runBatch(batch); ok {
			w.syncBatch(f)
		}
	}
}

func (w *Writer) drainProposals() {
	for {
		select {
		case p := <-w.props:
			p.answer(ErrStopped)
		default:
			return
		}
	}
}

// ready tells whether the write path may take a batch. After a failed
// sync (the batches before it were all answered: one is in flight at a
// time) it asks the store to make the whole log durable again (Sync recovers a degraded
// store: it reopens the database and restores what was appended); only
// then does it trust the log's end as durable and resume. The store spaces
// its recovery attempts out, so a stream of refused writes costs little.
func (w *Writer) ready() error {
	if w.failedErr() == nil {
		// The store may have been degraded by another writer (GC,
		// retention); Recover is an atomic load when it is healthy. Other
		// errors (a closed store) surface from the append itself.
		var de *storage.DiskError
		if err := w.cfg.Store.Recover(); errors.As(err, &de) {
			return fmt.Errorf("replication: write refused: %w", err)
		}
		return nil
	}
	if err := w.cfg.Store.Sync(); err != nil {
		err = fmt.Errorf("replication: write refused: %w", err)
		w.mu.Lock()
		w.failed = err
		w.mu.Unlock()
		return err
	}
	last := w.cfg.Store.State().LastLSN
	if last > w.durable.Load() {
		w.durable.Store(last)
	}
	w.mu.Lock()
	w.failed = nil
	w.mu.Unlock()
	w.cfg.Logger.Info("write path resumed", "durable_lsn", last)
	if w.cfg.OnDurable != nil {
		w.cfg.OnDurable(w.durable.Load())
		w.AdvanceCommit(0)
	} else {
		w.AdvanceCommit(w.durable.Load())
	}
	return nil
}

// runBatch evaluates proposals in order and appends their entries in one
// batch. Proposals that fail are answered at once; the rest wait for commit.
// ok is false when nothing is left for syncBatch (the batch was refused).
func (w *Writer) runBatch(batch []*proposal) (f appendedBatch, ok bool) {
	if err := w.ready(); err != nil {
		for _, p := range batch {
			p.answer(err)
		}
		return appendedBatch{}, false
	}
	st := w.cfg.Store.State()
	next := st.LastLSN + 1
	group := &layer{vals: make(map[string]storage.Version, len(batch))}
	var entries []storage.Entry
	var waiting []*proposal
	bytes := 0
	for _, p := range batch {
		now := w.cfg.Now()
		tx := &Txn{store: w.cfg.Store, group: group, nowMs: now.UnixMilli(), lsn: next}
		if err := p.fn(tx); err != nil {
			// Its writes are dropped; like a no-op, the failure depends
			// on what it read.
			p.fnErr = err
			tx.ops = nil
		}
		if len(tx.ops) == 0 {
			// A read-only outcome (SET NX on an existing key, GET of a
			// missing key via GETDEL, INCR of a non-number…) still depends
			// on what it read, which may not be committed yet: wait for
			// the newest LSN.
			p.waitLSN = next - 1
			p.epoch = w.cfg.Store.EpochAt(p.waitLSN)
			if p.waitLSN >= st.LastLSN+1 {
				p.epoch = w.cfg.Epoch
			}
		} else {
			e := storage.Entry{LSN: next, Epoch: w.cfg.Epoch, Time: now.UnixNano(), Ops: tx.ops}
			bytes += e.EncodedSize()
			entries = append(entries, e)
			tx.mergeInto(group)
			p.waitLSN, p.epoch = next, w.cfg.Epoch
			next++
		}
		waiting = append(waiting, p)
	}
	f = appendedBatch{lastLSN: next - 1, stats: BatchStats{Entries: len(entries), Proposals: len(batch), Bytes: bytes}}
	if len(entries) > 0 {
		pend, err := w.cfg.Store.Append(entries, storage.AppendOptions{Apply: true, Sync: true, CommitLSN: w.commit.Load()})
		var de *storage.DiskError
		if errors.As(err, &de) && de.Refused {
			// Nothing was written (a full disk, or a store refusing writes
			// after a failure): these proposals fail cleanly and leave no
			// hole. The read-only ones depended on this batch's writes.
			err = fmt.Errorf("replication: write refused: %w", err)
			for _, p := range waiting {
				p.answer(err)
			}
			return appendedBatch{}, false
		}
		if err != nil {
			f.appendErr = err
			f.lastLSN = st.LastLSN
		} else {
			f.pending = pend
		}
	}
	w.mu.Lock()
	w.waiters = append(w.waiters, waiting...)
	w.mu.Unlock()
	if f.pending != nil && w.cfg.OnAppended != nil {
		w.cfg.OnAppended(f.lastLSN, f.stats.Bytes, w.cfg.Now())
	}
	return f, true
}

func (w *Writer) failedErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// syncBatch waits for one batch to be durable and commits or fails its
// proposals.
func (w *Writer) syncBatch(f appendedBatch) {
	start := time.Now()
	err := f.appendErr
	if err == nil && f.pending != nil {
		err = f.pending.Wait()
	}
	if err == nil && w.failedErr() != nil {
		// An earlier batch failed: a later one syncing fine must not
		// raise the durable or commit LSN over the hole it left.
		return
	}
	if err != nil {
		// A failed append or fsync leaves the durable state unknown
		// beyond what was acknowledged; acknowledge nothing on top of
		// it (as PostgreSQL panics on fsync failure) until ready has
		// seen the store recover. The waiting writes may or may not
		// survive: the store keeps what it appended when it recovers.
		w.mu.Lock()
		first := w.failed == nil
		if first {
			w.failed = fmt.Errorf("replication: write refused: %w", err)
		}
		unknown := fmt.Errorf("replication: write not acknowledged, it may or may not be applied: %w", err)
		for _, p := range w.waiters {
			// Every waiter gets an answer: one at or below the commit
			// LSN (a read-only proposal that joined after the last
			// commit advance) depends only on committed state.
			switch {
			case p.waitLSN <= w.commit.Load():
				p.answer(p.fnErr)
			case p.fnErr != nil:
				// It wrote nothing, but the state it failed on may be lost.
				p.answer(fmt.Errorf("replication: the state this command read could not be confirmed: %w", err))
			default:
				p.answer(unknown)
			}
		}
		w.waiters = w.waiters[:0]
		w.mu.Unlock()
		if first {
			w.cfg.Logger.Error("write path failed; refusing writes until the store recovers", "err", err)
		}
		return
	}
	f.stats.SyncTime = time.Since(start)
	if f.lastLSN > w.durable.Load() {
		w.durable.Store(f.lastLSN)
	}
	if w.cfg.OnDurable != nil {
		w.cfg.OnDurable(w.durable.Load())
		// A batch of read-only proposals appends nothing, so OnDurable
		// need not move the commit LSN, and waiters already at or below
		// it would otherwise wait for some later write: release them.
		w.AdvanceCommit(0)
	} else {
		w.AdvanceCommit(w.durable.Load())
	}
	if w.cfg.OnBatch != nil && f.stats.Entries > 0 {
		w.cfg.OnBatch(f.stats)
	}
}

// AdvanceCommit raises the commit LSN (never beyond the local durable LSN)
// and acknowledges waiting proposals.
func (w *Writer) AdvanceCommit(lsn uint64) {
	lsn = min(lsn, w.durable.Load())
	w.mu.Lock()
	defer w.mu.Unlock()
	if lsn > w.commit.Load() {
		w.commit.Store(lsn)
	}
	c := w.commit.Load()
	i := 0
	for ; i < len(w.waiters) && w.waiters[i].waitLSN <= c; i++ {
		w.waiters[i].answer(w.waiters[i].fnErr)
	}
	w.waiters = append(w.waiters[:0], w.waiters[i:]...)
}
