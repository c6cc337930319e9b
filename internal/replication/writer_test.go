package replication

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

// TestMain fails the package if any test (or benchmark) leaves a goroutine
// behind: the writer's sequencer and sync loop must end on Close, and so
// must Pebble's goroutines when the store is closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests so that a hang fails with a
// message instead of stalling until the global test timeout.
const waitTimeout = 20 * time.Second

func openStore(t testing.TB) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.TempDir(), storage.Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startWriter starts a writer on s; cleanups run last-in first-out, so the
// writer is closed before its store.
func startWriter(t testing.TB, s *storage.Store, cfg WriterConfig) *Writer {
	t.Helper()
	cfg.Store = s
	if cfg.Epoch == 0 {
		cfg.Epoch = 1
	}
	w := NewWriter(cfg)
	t.Cleanup(w.Close)
	return w
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// gate holds the writer's sequencer inside a proposal's fn (which runs on
// the sequencer goroutine) so that the test can queue proposals behind it;
// when released, all queued proposals form the next group-commit batch.
// This makes batching deterministic instead of a matter of scheduling.
type gate struct {
	w       *Writer
	entered chan struct{}
	release chan struct{}
	done    chan error
}

func holdSequencer(t testing.TB, w *Writer) *gate {
	t.Helper()
	g := &gate{w: w, entered: make(chan struct{}), release: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		_, err := w.Propose(context.Background(), func(engine.Txn) error {
			close(g.entered)
			<-g.release
			return nil
		})
		g.done <- err
	}()
	select {
	case <-g.entered:
	case <-time.After(waitTimeout):
		t.Fatal("gate proposal never ran")
	}
	return g
}

// waitQueued waits until n proposals sit in the writer's queue.
func waitQueued(t testing.TB, w *Writer, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for len(w.props) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d proposals queued", len(w.props), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *gate) open(t testing.TB) {
	t.Helper()
	close(g.release)
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("gate proposal: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("gate proposal never finished")
	}
}

type result struct {
	tok engine.Token
	err error
}

// proposeInOneBatch queues fns, in order, behind a gate and releases them
// together, so they run as one batch in exactly this order.
func proposeInOneBatch(t testing.TB, w *Writer, fns ...func(engine.Txn) error) []result {
	t.Helper()
	g := holdSequencer(t, w)
	res := make([]result, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := w.Propose(ctxT(t), fn)
			res[i] = result{tok, err}
		}()
		waitQueued(t, w, i+1)
	}
	g.open(t)
	wg.Wait()
	return res
}

func counterValue(t testing.TB, s *storage.Store, key string, at uint64) int {
	t.Helper()
	v, ok, err := s.Get([]byte(key), at)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(string(v.Value))
	if err != nil {
		t.Fatalf("%s = %q: %v", key, v.Value, err)
	}
	return n
}

// increment is a read-modify-write proposal, like INCR.
func increment(key string) func(engine.Txn) error {
	return func(tx engine.Txn) error {
		v, ok, err := tx.Get([]byte(key))
		if err != nil {
			return err
		}
		n := 0
		if ok {
			if n, err = strconv.Atoi(string(v.Value)); err != nil {
				return err
			}
		}
		tx.Set([]byte(key), []byte(strconv.Itoa(n+1)), 0)
		return nil
	}
}

// TestConcurrentIncrementsLoseNothing runs 64 goroutines doing
// read-modify-write increments of one key. The write path serialises
// proposals and lets each see the uncommitted writes before it (in the
// store and in its own batch), so the final value must equal the number of
// acknowledged increments, and the entry at LSN n must set the counter to n.
func TestConcurrentIncrementsLoseNothing(t *testing.T) {
	tests := []struct {
		name      string
		maxBatch  int
		workers   int
		perWorker int
	}{
		{"defaults", 0, 64, 6},
		{"one entry per batch", 1, 16, 4},
		{"small batches", 4, 64, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			var mu sync.Mutex
			var batches []BatchStats
			w := startWriter(t, s, WriterConfig{Epoch: 3, MaxBatch: tt.maxBatch,
				OnBatch: func(b BatchStats) { mu.Lock(); batches = append(batches, b); mu.Unlock() }})

			// Queue every worker's first increment behind a gate, so at
			// least one batch holds many entries however fast fsync is.
			g := holdSequencer(t, w)
			toks := make([][]engine.Token, tt.workers)
			errs := make(chan error, tt.workers)
			var wg sync.WaitGroup
			for i := range tt.workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range tt.perWorker {
						tok, err := w.Propose(ctxT(t), increment("counter"))
						if err != nil {
							errs <- err
							return
						}
						toks[i] = append(toks[i], tok)
					}
				}()
			}
			waitQueued(t, w, tt.workers)
			g.open(t)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Propose: %v", err)
			}

			total := tt.workers * tt.perWorker
			seen := map[uint64]bool{}
			for i, ts := range toks {
				for j, tok := range ts {
					if tok.Epoch != 3 {
						t.Fatalf("worker %d write %d: token %v has epoch %d, want 3", i, j, tok, tok.Epoch)
					}
					// A worker proposes its next write only after the
					// previous one committed, so its LSNs strictly rise.
					if j > 0 && tok.LSN <= ts[j-1].LSN {
						t.Fatalf("worker %d: token %v after %v", i, tok, ts[j-1])
					}
					if seen[tok.LSN] {
						t.Fatalf("LSN %d acknowledged twice", tok.LSN)
					}
					seen[tok.LSN] = true
					// The increment that got LSN n saw n-1 and wrote n.
					if got := counterValue(t, s, "counter", tok.LSN); got != int(tok.LSN) {
						t.Fatalf("counter at LSN %d = %d: an update was lost", tok.LSN, got)
					}
				}
			}
			if len(seen) != total {
				t.Fatalf("%d distinct LSNs for %d writes", len(seen), total)
			}
			if got := counterValue(t, s, "counter", storage.Latest); got != total {
				t.Fatalf("counter = %d after %d acknowledged increments", got, total)
			}
			if st := s.State(); st.LastLSN != uint64(total) || w.CommitLSN() != uint64(total) {
				t.Fatalf("LastLSN %d, CommitLSN %d, want %d", st.LastLSN, w.CommitLSN(), total)
			}

			// A batch's OnBatch runs after it released its waiters: stop
			// the writer so the last one has reported before counting.
			w.Close()
			mu.Lock()
			defer mu.Unlock()
			entries, biggest := 0, 0
			for _, b := range batches {
				entries += b.Entries
				biggest = max(biggest, b.Entries)
				if b.Entries > b.Proposals {
					t.Fatalf("batch %+v has more entries than proposals", b)
				}
			}
			if entries != total {
				t.Fatalf("OnBatch reported %d entries, want %d", entries, total)
			}
			limit := tt.maxBatch
			if limit == 0 {
				limit = 1024
			}
			if biggest > limit {
				t.Fatalf("a batch of %d entries exceeds MaxBatch %d", biggest, limit)
			}
			if limit > 1 && biggest < 2 {
				t.Fatalf("no batch held more than one entry (%d batches): group commit is not batching", len(batches))
			}
			t.Logf("%d writes in %d batches, largest %d", total, len(batches), biggest)
		})
	}
}

// TestFailedProposalWritesNothing: a proposal whose fn errors must leave no
// trace, neither in the log nor in what later proposals of the same batch
// read, and must not leave a gap in the LSNs.
func TestFailedProposalWritesNothing(t *testing.T) {
	s := openStore(t)
	w := startWriter(t, s, WriterConfig{})
	errBoom := errors.New("boom")
	var sawBad bool
	res := proposeInOneBatch(t, w,
		func(tx engine.Txn) error {
			tx.Set([]byte("bad"), []byte("1"), 0)
			tx.FlushAll()
			return errBoom
		},
		func(tx engine.Txn) error {
			_, sawBad, _ = tx.Get([]byte("bad"))
			tx.Set([]byte("good"), []byte("1"), 0)
			return nil
		},
	)
	if !errors.Is(res[0].err, errBoom) {
		t.Fatalf("failed proposal returned %v, want %v", res[0].err, errBoom)
	}
	if res[1].err != nil || res[1].tok.LSN != 1 {
		t.Fatalf("second proposal = %+v, want LSN 1", res[1])
	}
	if sawBad {
		t.Fatal("a later proposal saw the failed proposal's write")
	}
	if st := s.State(); st.LastLSN != 1 {
		t.Fatalf("LastLSN = %d, want 1", st.LastLSN)
	}
	e, err := s.Entry(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Ops) != 1 || string(e.Ops[0].Key) != "good" {
		t.Fatalf("entry 1 = %+v, want only the good write", e)
	}
	// Alone in its batch, too.
	if _, err := w.Propose(ctxT(t), func(tx engine.Txn) error { tx.Del([]byte("good")); return errBoom }); !errors.Is(err, errBoom) {
		t.Fatalf("Propose = %v", err)
	}
	if st := s.State(); st.LastLSN != 1 {
		t.Fatalf("LastLSN = %d after a failed proposal, want 1", st.LastLSN)
	}
}

// TestNoOpProposal: a proposal that writes nothing still depends on what it
// read, so it waits for the newest LSN (possibly written earlier in its own
// batch) to commit and returns that token.
func TestNoOpProposal(t *testing.T) {
	s := openStore(t)
	w := startWriter(t, s, WriterConfig{Epoch: 5})
	noop := func(engine.Txn) error { return nil }

	tok, err := w.Propose(ctxT(t), noop)
	if err != nil || tok != (engine.Token{}) {
		t.Fatalf("no-op on an empty log = %v, %v; want the zero token", tok, err)
	}
	res := proposeInOneBatch(t, w,
		func(tx engine.Txn) error { tx.Set([]byte("k"), []byte("v"), 0); return nil },
		noop,
	)
	if res[1].err != nil || res[1].tok != (engine.Token{Epoch: 5, LSN: 1}) {
		t.Fatalf("no-op after a write in its batch = %+v, want 5:1", res[1])
	}
	if w.CommitLSN() < 1 {
		t.Fatalf("no-op returned before the write it follows committed (commit %d)", w.CommitLSN())
	}
	tok, err = w.Propose(ctxT(t), noop)
	if err != nil || tok != (engine.Token{Epoch: 5, LSN: 1}) {
		t.Fatalf("no-op = %v, %v; want 5:1", tok, err)
	}
	if st := s.State(); st.LastLSN != 1 {
		t.Fatalf("a no-op appended an entry: LastLSN %d", st.LastLSN)
	}
}

// TestWriterResumesAfterRestart: a new writer continues the log of a
// reopened store, and no-op tokens name the epoch the entry was written in.
func TestWriterResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.Open(dir, storage.Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(WriterConfig{Store: s, Epoch: 2})
	for range 3 {
		if _, err := w.Propose(ctxT(t), increment("n")); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = storage.Open(dir, storage.Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	w = startWriter(t, s, WriterConfig{Epoch: 3})
	if w.CommitLSN() != 3 {
		t.Fatalf("CommitLSN after restart = %d, want 3", w.CommitLSN())
	}
	if tok, err := w.Propose(ctxT(t), func(engine.Txn) error { return nil }); err != nil || tok != (engine.Token{Epoch: 2, LSN: 3}) {
		t.Fatalf("no-op after restart = %v, %v; want 2:3", tok, err)
	}
	tok, err := w.Propose(ctxT(t), increment("n"))
	if err != nil || tok != (engine.Token{Epoch: 3, LSN: 4}) {
		t.Fatalf("write after restart = %v, %v; want 3:4", tok, err)
	}
	if got := counterValue(t, s, "n", storage.Latest); got != 4 {
		t.Fatalf("n = %d, want 4", got)
	}
	if h := s.EpochHistory(); len(h) != 2 || h[1] != (storage.EpochStart{Epoch: 3, FirstLSN: 4}) {
		t.Fatalf("epoch history %v", h)
	}
}

// TestCloseStopsProposals: after Close every Propose fails with ErrStopped
// at once. Repeated, because a select between a buffered queue and the stop
// channel picks at random: a proposal that slipped into the queue after the
// sequencer exited would wait forever.
func TestCloseStopsProposals(t *testing.T) {
	s := openStore(t)
	w := startWriter(t, s, WriterConfig{})
	if _, err := w.Propose(ctxT(t), increment("k")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w.Close() // idempotent
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := w.Propose(ctx, increment("k"))
		cancel()
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("Propose #%d after Close = %v, want ErrStopped", i, err)
		}
	}
	if st := s.State(); st.LastLSN != 1 {
		t.Fatalf("LastLSN = %d after Close, want 1", st.LastLSN)
	}
}

// TestCloseFailsWaitingProposals: proposals queued or waiting for commit
// when Close runs get ErrStopped (or, if they made it into a batch that
// committed, success) and never hang. With a commit policy that never
// commits (followers that never acknowledge), every waiter must be failed.
func TestCloseFailsWaitingProposals(t *testing.T) {
	t.Run("queued behind a running batch", func(t *testing.T) {
		s := openStore(t)
		w := startWriter(t, s, WriterConfig{})
		g := holdSequencer(t, w)
		const n = 20
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := w.Propose(ctxT(t), func(tx engine.Txn) error {
					tx.Set(fmt.Appendf(nil, "k%d", i), []byte("v"), 0)
					return nil
				})
				errs <- err
			}()
		}
		waitQueued(t, w, n)
		closed := make(chan struct{})
		go func() { w.Close(); close(closed) }()
		g.open(t)
		<-closed
		committed := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				committed++
			case !errors.Is(err, ErrStopped):
				t.Fatalf("Propose during Close = %v, want nil or ErrStopped", err)
			}
		}
		// Success must mean written, ErrStopped must mean not written
		// (with local commit, in-flight batches finish before Close
		// answers the rest).
		if st := s.State(); st.LastLSN != uint64(committed) {
			t.Fatalf("%d proposals succeeded but the log holds %d entries", committed, st.LastLSN)
		}
	})
	t.Run("waiting for a commit that never comes", func(t *testing.T) {
		s := openStore(t)
		durable := make(chan uint64, 16)
		w := startWriter(t, s, WriterConfig{OnDurable: func(lsn uint64) { durable <- lsn }})
		errc := make(chan error, 1)
		go func() {
			_, err := w.Propose(ctxT(t), increment("k"))
			errc <- err
		}()
		select {
		case lsn := <-durable:
			if lsn != 1 {
				t.Fatalf("OnDurable(%d), want 1", lsn)
			}
		case <-time.After(waitTimeout):
			t.Fatal("entry never became durable")
		}
		select {
		case err := <-errc:
			t.Fatalf("Propose returned %v before commit", err)
		default:
		}
		w.Close()
		if err := <-errc; !errors.Is(err, ErrStopped) {
			t.Fatalf("waiting Propose after Close = %v, want ErrStopped", err)
		}
	})
}

// TestCommitFollowsOnDurable: with a commit policy installed, a write is
// acknowledged only once AdvanceCommit covers it, and AdvanceCommit never
// commits beyond what is durable locally.
func TestCommitFollowsOnDurable(t *testing.T) {
	s := openStore(t)
	durable := make(chan uint64, 16)
	w := startWriter(t, s, WriterConfig{OnDurable: func(lsn uint64) { durable <- lsn }})
	w.AdvanceCommit(10) // nothing durable yet: must not move
	if c := w.CommitLSN(); c != 0 {
		t.Fatalf("CommitLSN = %d after AdvanceCommit beyond durable", c)
	}
	errc := make(chan result, 1)
	go func() {
		tok, err := w.Propose(ctxT(t), increment("k"))
		errc <- result{tok, err}
	}()
	if lsn := <-durable; lsn != 1 {
		t.Fatalf("OnDurable(%d), want 1", lsn)
	}
	select {
	case r := <-errc:
		t.Fatalf("acknowledged before commit: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	w.AdvanceCommit(1)
	if r := <-errc; r.err != nil || r.tok.LSN != 1 {
		t.Fatalf("after AdvanceCommit(1): %+v", r)
	}
}

// TestProposalsGatherWhileAnFsyncRuns: proposals that arrive one at a
// time while a batch is being made durable wait in the queue for that
// fsync and then form one batch, instead of one batch (a log write, a
// Pebble commit and an fsync) each.
func TestProposalsGatherWhileAnFsyncRuns(t *testing.T) {
	s := openStore(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var batches []BatchStats
	var w *Writer
	w = startWriter(t, s, WriterConfig{
		// The first batch's durability is held open here, as a slow fsync
		// would hold it.
		OnDurable: func(lsn uint64) {
			once.Do(func() { close(entered); <-release })
			w.AdvanceCommit(lsn)
		},
		OnBatch: func(b BatchStats) { mu.Lock(); batches = append(batches, b); mu.Unlock() },
	})
	var released sync.Once
	unhold := func() { released.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before the writer's Close, should the test fail early
	first := make(chan error, 1)
	go func() {
		_, err := w.Propose(ctxT(t), increment("a"))
		first <- err
	}()
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("the first batch never became durable")
	}
	// One at a time, each queued before the next is submitted.
	const n = 5
	waits := make([]func(context.Context) (engine.Token, error), n)
	for i := range n {
		wait, err := w.Submit(ctxT(t), increment(fmt.Sprint("k", i)))
		if err != nil {
			t.Fatal(err)
		}
		waits[i] = wait
		waitQueued(t, w, i+1)
	}
	unhold()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, wait := range waits {
		if _, err := wait(ctxT(t)); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// OnBatch runs after a batch's waiters are released: the last one may
	// still be on its way.
	for deadline := time.Now().Add(waitTimeout); len(batches) < 2 && time.Now().Before(deadline); {
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
	}
	if len(batches) != 2 || batches[0].Entries != 1 || batches[1].Entries != n {
		t.Fatalf("batches %+v, want one of 1 entry and then one of %d", batches, n)
	}
}

// TestAppendFailureAnswersEveryWaiter: when an append fails, every proposal
// of that batch gets an answer; a read-only proposal in the batch depends
// only on already committed state and succeeds, the write fails, and the
// write path refuses everything afterwards instead of guessing.
func TestAppendFailureAnswersEveryWaiter(t *testing.T) {
	s := openStore(t)
	w := startWriter(t, s, WriterConfig{})
	if _, err := w.Propose(ctxT(t), increment("k")); err != nil {
		t.Fatal(err)
	}
	g := holdSequencer(t, w)
	res := make(chan result, 2)
	propose := func(fn func(engine.Txn) error) {
		go func() {
			tok, err := w.Propose(ctxT(t), fn)
			res <- result{tok, err}
		}()
	}
	// The read-only proposal holds the sequencer until the gate's own
	// batch has been committed, so that it joins the waiters after the last
	// commit advance: only the failed batch can answer it.
	gateCommitted := make(chan struct{})
	propose(func(engine.Txn) error { <-gateCommitted; return nil })
	waitQueued(t, w, 1)
	propose(func(tx engine.Txn) error { tx.Set([]byte("x"), []byte("1"), 0); return nil })
	waitQueued(t, w, 2)
	// Make the next append fail, as a full or broken disk would.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	g.open(t)
	close(gateCommitted)
	var okCount, failCount int
	for range 2 {
		r := <-res
		switch {
		case errors.Is(r.err, context.DeadlineExceeded):
			t.Fatal("a proposal of the failed batch was never answered")
		case r.err == nil:
			okCount++
			if r.tok.LSN != 1 {
				t.Fatalf("read-only proposal token %v, want LSN 1", r.tok)
			}
		case errors.Is(r.err, storage.ErrClosed):
			failCount++
		default:
			t.Fatalf("unexpected error %v", r.err)
		}
	}
	if okCount != 1 || failCount != 1 {
		t.Fatalf("%d succeeded, %d failed; want 1 and 1", okCount, failCount)
	}
	if _, err := w.Propose(ctxT(t), func(engine.Txn) error { return nil }); err == nil {
		t.Fatal("write path accepted a proposal after an append failure")
	}
}

func TestProposeContextDone(t *testing.T) {
	s := openStore(t)
	w := startWriter(t, s, WriterConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The proposal may still be queued and run; only the wait is abandoned.
	if _, err := w.Propose(ctx, increment("k")); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose with a cancelled context = %v", err)
	}
	g := holdSequencer(t, w)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := w.Propose(ctx, increment("k")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Propose blocked behind the sequencer = %v, want DeadlineExceeded", err)
	}
	g.open(t)
}

// TestSubmitUntilDeadline: the deadline bounds the wait for commit (a
// commit that never comes) and the wait for the write path, without any
// deadline on the context; a write that commits in time is unaffected.
func TestSubmitUntilDeadline(t *testing.T) {
	s := openStore(t)
	// With OnDurable set and never advancing, nothing commits.
	w := startWriter(t, s, WriterConfig{OnDurable: func(uint64) {}})
	wait, err := w.SubmitUntil(context.Background(), time.Now().Add(20*time.Millisecond), increment("k"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wait(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past the deadline = %v, want DeadlineExceeded", err)
	}

	// A zero deadline waits as long as the context does.
	ctx, cancel := context.WithCancel(context.Background())
	wait, err = w.SubmitUntil(ctx, time.Time{}, increment("k"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context and no deadline = %v, want Canceled", err)
	}

	// Committed before the deadline: answered with its token.
	w2 := startWriter(t, openStore(t), WriterConfig{})
	wait, err = w2.SubmitUntil(context.Background(), time.Now().Add(time.Minute), increment("k"))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := wait(context.Background()); err != nil || tok.LSN == 0 {
		t.Fatalf("wait = %v, %v; want a token", tok, err)
	}
}

// BenchmarkWriterParallel measures the write path with 1, 16 and 64
// proposers per CPU (b.SetParallelism), each op one SET, and reports the
// group-commit factor as entries/fsync: entries per synced batch. Pebble
// may merge the syncs of batches in flight together, so the true number
// per fsync is at least this.
func BenchmarkWriterParallel(b *testing.B) {
	for _, par := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("parallelism-%d", par), func(b *testing.B) {
			s := openStore(b)
			var entries, batches atomic.Int64
			w := startWriter(b, s, WriterConfig{OnBatch: func(bs BatchStats) {
				entries.Add(int64(bs.Entries))
				batches.Add(1)
			}})
			var id atomic.Int64
			value := make([]byte, 100)
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := fmt.Appendf(nil, "bench:%d", id.Add(1))
				ctx := context.Background()
				for pb.Next() {
					if _, err := w.Propose(ctx, func(tx engine.Txn) error { tx.Set(key, value, 0); return nil }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			w.Close()
			if n := batches.Load(); n > 0 {
				b.ReportMetric(float64(entries.Load())/float64(n), "entries/fsync")
			}
		})
	}
}
