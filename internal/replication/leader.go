package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicant-db/replicant/internal/storage"
)

// ErrStopped is returned to proposals when the write path shuts down.
var ErrStopped = errors.New("replication: write path stopped")

// LimitError reports a key or value above the configured maximum.
type LimitError struct {
	What  string // "key" or "value"
	Size  int
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s too large (%d bytes > max %d)", e.What, e.Size, e.Limit)
}

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
	// MaxInflight caps batches whose fsync is in flight (default 8).
	MaxInflight int
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
	fn      func(*Txn) error
	done    chan error
	waitLSN uint64
	epoch   uint64
}

type inflight struct {
	pending   *storage.Pending
	lastLSN   uint64
	stats     BatchStats
	appendErr error
}

// Writer is the leader's write path: it serialises proposals, turns each into
// one log entry, appends them in group-commit batches (one fsync for many
// writers, several batches in flight), and acknowledges a proposal once its
// entry is at or below the commit LSN.
type Writer struct {
	cfg       WriterConfig
	props     chan *proposal
	stop      chan struct{}
	stopped   chan struct{} // closed when Close has answered every proposal
	closeOnce sync.Once
	wg        sync.WaitGroup

	// commitFn turns the local durable LSN into a commit LSN; nil means the
	// leader alone decides (commit = durable).
	mu      sync.Mutex
	waiters []*proposal // in non-decreasing waitLSN order
	commit  atomic.Uint64
	durable atomic.Uint64
	failed  error
}

// NewWriter starts the write path. Close stops it.
func NewWriter(cfg WriterConfig) *Writer {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 8
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
	syncq := make(chan inflight, cfg.MaxInflight)
	w.wg.Add(2)
	go w.sequence(syncq)
	go w.syncLoop(syncq)
	return w
}

// CommitLSN is the highest committed LSN; reads on the leader happen there.
func (w *Writer) CommitLSN() uint64 { return w.commit.Load() }

// Epoch is the epoch new entries carry.
func (w *Writer) Epoch() uint64 { return w.cfg.Epoch }

// Propose runs fn on the write path and waits until its effects (and every
// state it read) are committed. It returns the token of that state. If ctx
// ends first the write may still commit later.
func (w *Writer) Propose(ctx context.Context, fn func(*Txn) error) (Token, error) {
	p := &proposal{fn: fn, done: make(chan error, 1)}
	select {
	case w.props <- p:
	case <-w.stop:
		return Token{}, ErrStopped
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
	var err error
	select {
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
		return Token{}, ctx.Err()
	}
	if err != nil {
		return Token{}, err
	}
	return Token{Epoch: p.epoch, LSN: p.waitLSN}, nil
}

// Close stops accepting proposals, lets in-flight batches finish, and fails
// proposals still waiting for commit.
func (w *Writer) Close() { w.closeOnce.Do(w.close) }

func (w *Writer) close() {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	for _, p := range w.waiters {
		p.done <- ErrStopped
	}
	w.waiters = nil
	w.mu.Unlock()
	close(w.stopped)
}

func (w *Writer) sequence(syncq chan<- inflight) {
	defer w.wg.Done()
	defer close(syncq)
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
		syncq <- w.runBatch(batch)
	}
}

func (w *Writer) drainProposals() {
	for {
		select {
		case p := <-w.props:
			p.done <- ErrStopped
		default:
			return
		}
	}
}

// runBatch evaluates proposals in order and appends their entries in one
// batch. Proposals that fail are answered at once; the rest wait for commit.
func (w *Writer) runBatch(batch []*proposal) inflight {
	st := w.cfg.Store.State()
	next := st.LastLSN + 1
	group := &layer{vals: map[string]storage.Version{}}
	var entries []storage.Entry
	var waiting []*proposal
	bytes := 0
	for _, p := range batch {
		now := w.cfg.Now()
		tx := &Txn{store: w.cfg.Store, group: group, own: layer{vals: map[string]storage.Version{}}, nowMs: now.UnixMilli()}
		if err := w.failedErr(); err != nil {
			p.done <- err
			continue
		}
		if err := p.fn(tx); err != nil {
			p.done <- err
			continue
		}
		if len(tx.ops) == 0 {
			// A read-only outcome (SET NX on an existing key, GET of a
			// missing key via GETDEL…) still depends on what it read, which
			// may not be committed yet: wait for the newest LSN.
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
	w.mu.Lock()
	w.waiters = append(w.waiters, waiting...)
	w.mu.Unlock()
	f := inflight{lastLSN: next - 1, stats: BatchStats{Entries: len(entries), Proposals: len(batch), Bytes: bytes}}
	if len(entries) == 0 {
		return f
	}
	pend, err := w.cfg.Store.Append(entries, storage.AppendOptions{Apply: true, Sync: true, CommitLSN: w.commit.Load()})
	if err != nil {
		f.appendErr = err
		f.lastLSN = st.LastLSN
		return f
	}
	f.pending = pend
	if w.cfg.OnAppended != nil {
		w.cfg.OnAppended(f.lastLSN, f.stats.Bytes, w.cfg.Now())
	}
	return f
}

func (w *Writer) failedErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

func (w *Writer) syncLoop(syncq <-chan inflight) {
	defer w.wg.Done()
	for f := range syncq {
		start := time.Now()
		err := f.appendErr
		if err == nil && f.pending != nil {
			err = f.pending.Wait()
		}
		if err == nil && w.failedErr() != nil {
			// An earlier batch failed: a later one syncing fine must not
			// raise the durable or commit LSN over the hole it left.
			continue
		}
		if err != nil {
			// A failed append or fsync leaves the durable state unknown
			// beyond what was acknowledged; refuse further writes rather
			// than acknowledge anything on top of it (as PostgreSQL
			// panics on fsync failure).
			w.cfg.Logger.Error("write path failed; refusing further writes", "err", err)
			w.mu.Lock()
			if w.failed == nil {
				w.failed = fmt.Errorf("replication: write path failed: %w", err)
			}
			for _, p := range w.waiters {
				// Every waiter gets an answer: one at or below the commit
				// LSN (a read-only proposal that joined after the last
				// commit advance) depends only on committed state.
				if p.waitLSN <= w.commit.Load() {
					p.done <- nil
				} else {
					p.done <- w.failed
				}
			}
			w.waiters = w.waiters[:0]
			w.mu.Unlock()
			continue
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
		w.waiters[i].done <- nil
	}
	w.waiters = append(w.waiters[:0], w.waiters[i:]...)
}
