package storage

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/replicant-db/replicant/internal/storage/logrec"
	"github.com/replicant-db/replicant/internal/storage/wal"
)

// This file is how the store lives with a full or failing disk and with
// corrupt files; docs/design/storage.md ("Disk full, disk errors and
// corruption") gives the reasoning.

// DiskError reports a write the store refused, or could not make durable,
// because of its disk: full (errors.Is(err, syscall.ENOSPC)) or failing.
// Reads keep working; writes resume once the cause is gone (see Recover).
type DiskError struct {
	Dir string
	Op  string // what was being written
	// Avail and Reserve are set when the write was refused before it was
	// attempted because free space was below the reserve.
	Avail, Reserve uint64
	Early          bool
	// Refused: the store did not hand this write to Pebble at all, so
	// nothing of it was written. Otherwise it may or may not be durable.
	Refused bool
	Err     error
}

func (e *DiskError) Error() string {
	kind, resume := "disk error", "writes are refused until the store recovers (reads continue)"
	full := errors.Is(e.Err, syscall.ENOSPC) || errors.Is(e.Err, syscall.EDQUOT)
	switch {
	case strings.HasPrefix(e.Op, "open"):
		kind, resume = "disk error", "fix the disk and start again"
		if full {
			kind, resume = "disk full", "free some space and start again"
		}
	case full:
		kind, resume = "disk full", "writes resume once space is freed (reads continue)"
	}
	if e.Early {
		return fmt.Sprintf("%s: %s free in %s, below the %s the store keeps in reserve; %s",
			kind, fmtBytes(e.Avail), e.Dir, fmtBytes(e.Reserve), resume)
	}
	return fmt.Sprintf("%s: storage: %s in %s: %v; %s", kind, e.Op, e.Dir, oneLine(e.Err), resume)
}

func (e *DiskError) Unwrap() error { return e.Err }

// ErrReopening is returned to a long read (a snapshot stream, a scan) cut
// short because the store is reopening its database after a disk error.
var ErrReopening = errors.New("storage: reopening the database after a disk error; retry")

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// oneLine renders err on one line: an operator reads it in a log line or as
// the last line a dying process prints.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// writeClass says how much of the reserve a write may use.
type writeClass int

const (
	// grows: new data (log entries, versions, snapshot chunks). Refused
	// once free space would drop below the reserve.
	grows writeClass = iota
	// shrinks: deletions and small bookkeeping (GC, truncation, expiry
	// index, commit LSN). They may use most of the reserve: they are how a
	// full store gets its space back.
	shrinks
)

// maxReserve caps the default reserve; small file systems keep 1/32.
const maxReserve = 64 << 20

func (s *Store) reserve(total uint64) uint64 {
	if s.minFree > 0 {
		return uint64(s.minFree)
	}
	return min(maxReserve, total/32)
}

// admit refuses, before Pebble sees it, a write of size bytes that would
// eat into the reserve. Pebble cannot continue after a failed write to its
// log, so a write refused here is far cheaper than one that fails there;
// the reserve also leaves room for flushes, compactions and the rest of
// the node's files on the same disk.
func (s *Store) admit(op string, size int, c writeClass) error {
	if s.minFree < 0 {
		return nil
	}
	du, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		return nil // unknown: let the write try
	}
	r := s.reserve(du.TotalBytes)
	need := r
	if c == shrinks {
		need = r / 4
	}
	if du.AvailBytes >= need+uint64(max(size, 0)) {
		return nil
	}
	return &DiskError{Dir: s.dir, Op: op, Avail: du.AvailBytes, Reserve: r, Early: true, Refused: true, Err: syscall.ENOSPC}
}

// Writable reports whether a write could be attempted now: the store is
// open, not failed (or has just recovered), and has room beyond its
// reserve. Retry loops call it before doing work that would only be
// refused.
func (s *Store) Writable() error {
	if err := s.Recover(); err != nil {
		return err
	}
	return s.admit("write", 0, grows)
}

// degrade records a failed write to the database. From then on every write
// is refused (Pebble's write-ahead log keeps its first error for good, and
// a commit on top of it panics inside Pebble) until Recover reopens it.
func (s *Store) degrade(op string, cause error) error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.failErr == nil {
		s.failErr = &DiskError{Dir: s.dir, Op: op, Err: cause}
		s.failures = 0
		s.nextTry = time.Now().Add(recoverBackoff(0))
		s.degraded.Store(true)
		s.log.Error("storage: a write failed; refusing writes until the disk recovers (reads continue)",
			"dir", s.dir, "op", op, "err", oneLine(cause))
	}
	return s.failErr
}

// refusal is the error for a write refused because the store is degraded.
func (s *Store) refusal() error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.failErr == nil {
		return nil
	}
	e := *s.failErr
	e.Refused = true
	return &e
}

func recoverBackoff(failures int) time.Duration {
	d := 100 * time.Millisecond << min(failures, 6)
	return min(d, 5*time.Second)
}

// Recover makes a degraded store writable again when the disk allows: it
// reopens the database and restores what this process had appended but
// not yet made durable, so the log never loses an entry it has shown to
// anyone. It returns nil when the store is healthy. Attempts are spaced out
// (backoff) and wait for every Pending to be waited for; in between,
// Recover returns the last error at once, so callers may call it freely.
func (s *Store) Recover() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.fatalError(); err != nil {
		return err
	}
	if !s.degraded.Load() {
		return nil
	}
	s.hmu.Lock()
	if s.failErr == nil {
		s.hmu.Unlock()
		return nil
	}
	if s.recovering || time.Now().Before(s.nextTry) || s.pendings.Load() > 0 {
		e := *s.failErr
		e.Refused = true
		s.hmu.Unlock()
		return &e
	}
	s.recovering = true
	s.hmu.Unlock()

	err := s.reopen()

	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.recovering = false
	if err == nil {
		s.failErr, s.failures = nil, 0
		s.degraded.Store(false)
		s.log.Info("storage: writes resumed after a disk error", "dir", s.dir, "last_lsn", s.State().LastLSN)
		return nil
	}
	s.failures++
	s.nextTry = time.Now().Add(recoverBackoff(s.failures))
	var de *DiskError
	if errors.As(err, &de) {
		e := *de
		e.Refused = true
		s.failErr = &e
		err = &e
	}
	if ok, n := s.logs.allow("recover:"+oneLine(err), time.Now()); ok {
		s.log.Warn("storage: still cannot write", "dir", s.dir, "err", oneLine(err), "suppressed", n)
	}
	return err
}

// reopen replaces a log that failed with a fresh instance of the same
// files and restores the entries the old one held only in memory. Pebble
// stays open: it never writes a log of its own, so a failed log file
// cannot have wedged it.
func (s *Store) reopen() error {
	// A reopened database holds what it recovered, which a batch that
	// failed may not have reached: forget the cached key states.
	s.versionsRewritten()
	if err := s.admit("reopen", s.saved.bytes(), grows); err != nil {
		return err
	}
	// Long reads stop at their next entry once draining is set, but one may
	// sit in a callback (a snapshot chunk waiting on a slow follower).
	// Poll instead of Lock: a waiting Lock would stall every new reader
	// behind that one.
	s.draining.Store(true)
	defer s.draining.Store(false)
	for deadline := time.Now().Add(5 * time.Second); !s.dbmu.TryLock(); {
		if time.Now().After(deadline) {
			return s.refusal()
		}
		time.Sleep(time.Millisecond)
	}
	defer s.dbmu.Unlock()
	// Readers wait for dbmu; what they cached before came from the old
	// instance, and the replay below writes versions unpublished.
	defer s.versionsRewritten()
	if s.closed.Load() {
		return ErrClosed
	}
	if s.pendings.Load() > 0 {
		return s.refusal() // a sync still in flight on the old instance
	}
	s.mu.RLock()
	mem := loaded{st: s.st, epochs: s.epochs, flushes: s.flushes, gcFloor: s.gcFloor}
	durable := s.durable
	s.mu.RUnlock()
	if s.saved == nil {
		s.saved = s.captureSuffix(durable, mem.st.LastLSN)
	}
	if err := s.admit("reopen", s.saved.bytes(), grows); err != nil {
		return err
	}
	// The old instance's zero filler must not write into what the new
	// one restores.
	s.wal.StopPreallocating()
	nw, err := s.openWAL()
	if err != nil {
		return err
	}
	if err := s.restore(nw, mem, durable); err != nil {
		_ = nw.Close()
		return err
	}
	old := s.wal
	s.wal = nw
	_ = old.Close()
	s.saved = nil
	return nil
}

// savedEntry is one raw log record kept in memory while the log is
// reopened.
type savedEntry struct {
	lsn uint64
	raw []byte
}

type savedSuffix []savedEntry

func (ss savedSuffix) bytes() int {
	n := 0
	for _, e := range ss {
		n += len(e.raw) + 16
	}
	return n
}

// captureSuffix copies the log records above the last LSN known durable
// out of the failing log (its files' pages in memory still hold them). A
// record that cannot be read back ends the suffix.
// The caller holds dbmu exclusively.
func (s *Store) captureSuffix(durable, last uint64) savedSuffix {
	out := savedSuffix{}
	if last <= durable {
		return out
	}
	want := durable + 1
	_ = s.wal.Read(durable+1, last, 0, func(lsn uint64, raw []byte) error {
		if lsn != want {
			return errStop
		}
		if _, err := logrec.DecodeEntry(raw); err != nil {
			return errStop
		}
		out = append(out, savedEntry{lsn: lsn, raw: append([]byte(nil), raw...)})
		want++
		return nil
	})
	return out
}

var errStop = errors.New("stop")

// restore brings a freshly opened log (w) up to what this process had
// shown (mem): it checks that what survived is what was appended, appends
// the saved records the disk lost, syncs, and drops from Pebble what the
// log could not get back. The caller holds dbmu exclusively.
func (s *Store) restore(w *wal.Log, mem loaded, durable uint64) error {
	last := w.LastLSN()
	if last < durable {
		return s.corrupt(&CorruptionError{Dir: s.dir, LSN: last + 1,
			Err: fmt.Errorf("log ends at %d after reopening, but entries up to %d were synced", last, durable)})
	}
	if last > mem.st.LastLSN {
		// Whole records of a batch whose write was reported failed: never
		// appended as far as anyone knows.
		if err := w.TruncateBack(mem.st.LastLSN); err != nil {
			return &DiskError{Dir: s.dir, Op: "reopen", Err: err}
		}
		last = mem.st.LastLSN
	}
	var tail [][]byte
	next := last + 1
	for _, e := range s.saved {
		if e.lsn <= last {
			// What survived on disk must be what was appended.
			same := false
			err := w.Read(e.lsn, e.lsn, 0, func(_ uint64, raw []byte) error {
				same = string(raw) == string(e.raw)
				return nil
			})
			if err != nil {
				return fmt.Errorf("storage: reopen: %w", err)
			}
			if !same {
				return s.corrupt(&CorruptionError{Dir: s.dir, LSN: e.lsn, Err: errors.New("record differs from the one appended before reopening")})
			}
			continue
		}
		if e.lsn != next {
			break
		}
		tail = append(tail, e.raw)
		next++
	}
	if len(tail) > 0 {
		if err := w.AppendBatch(last+1, tail); err != nil {
			return &DiskError{Dir: s.dir, Op: "restore after reopening", Err: err}
		}
	}
	if err := w.Sync(); err != nil {
		return &DiskError{Dir: s.dir, Op: "restore after reopening", Err: err}
	}
	target := mem
	if l := next - 1; l < mem.st.LastLSN {
		// Only a follower gets here (entries it had received were lost
		// with the failed writes): it learns the rest from its leader
		// again. Pebble must forget their versions first.
		if target.st.AppliedLSN > l {
			if err := s.dropAbove(l); err != nil {
				return err
			}
		}
		target.st.LastLSN = l
		target.st.AppliedLSN = min(target.st.AppliedLSN, l)
		target.st.CommitLSN = min(target.st.CommitLSN, l)
		for len(target.epochs) > 0 && target.epochs[len(target.epochs)-1].FirstLSN > l {
			target.epochs = target.epochs[:len(target.epochs)-1]
		}
		target.st.LastEpoch = 0
		if len(target.epochs) > 0 {
			target.st.LastEpoch = target.epochs[len(target.epochs)-1].Epoch
		}
		var fl []uint64
		for _, f := range target.flushes {
			if f <= target.st.AppliedLSN {
				fl = append(fl, f)
			}
		}
		target.flushes = fl
	}
	target.st.FirstLSN = max(target.st.FirstLSN, w.FirstLSN())
	s.mu.Lock()
	s.st, s.epochs, s.flushes, s.gcFloor = target.st, target.epochs, target.flushes, target.gcFloor
	s.durable = target.st.LastLSN
	s.mu.Unlock()
	return nil
}

// --- fatal errors ---

// Fatal is closed when the store hit an error it cannot continue from:
// corrupt data, or Pebble giving up (its Fatalf). The process should stop
// and report FatalErr; the store refuses writes from then on.
func (s *Store) Fatal() <-chan struct{} { return s.fatalCh }

// FatalErr is the error that closed Fatal (nil before).
func (s *Store) FatalErr() error { return s.fatalError() }

func (s *Store) fatalError() error {
	select {
	case <-s.fatalCh:
		return s.fatalErr
	default:
		return nil
	}
}

func (s *Store) tripFatal(err error) {
	s.fatalOnce.Do(func() {
		s.fatalErr = err
		close(s.fatalCh)
	})
}

// corrupt records corruption as fatal and returns the error: a node whose
// data is corrupt must stop rather than serve or replicate it.
func (s *Store) corrupt(err *CorruptionError) error {
	s.tripFatal(err)
	return err
}

// isCorruption reports whether err is corruption, which the store has
// made fatal and reports itself.
func isCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce)
}

// readErr wraps an error from a Pebble read; corruption names the file
// Pebble reported and is fatal.
func (s *Store) readErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrReopening) {
		return err
	}
	if pebble.IsCorruptionError(err) || errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk) {
		// Pebble's DataCorruption event has usually stopped the store
		// already with the file's name and the bare details.
		var fce *CorruptionError
		if ferr := s.fatalError(); errors.As(ferr, &fce) {
			return ferr
		}
		ce := &CorruptionError{Dir: s.dir, Err: err}
		if s.ev != nil {
			ce.Path = s.ev.corruptPath()
		}
		return s.corrupt(ce)
	}
	return fmt.Errorf("storage: %w", err)
}

// --- Pebble instances ---

// commitPanic carries Pebble's "fatal commit error" out of its Fatalf to
// the commit that caused it (see pebbleLogger.Fatalf).
type commitPanic struct{ err error }

// commitFatalFormat is the Fatalf format Pebble's DB.Apply uses when a
// commit fails; TestCommitFatalIsRecovered keeps it honest.
const commitFatalFormat = "pebble: fatal commit error"

type pebbleLogger struct {
	s  *Store
	ev *dbEvents
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.s.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ok, n := p.s.logs.allow(msg, time.Now()); ok {
		p.s.log.Error(oneLine(errors.New(msg)), "component", "pebble", "suppressed", n)
	}
}

// Fatalf is how Pebble gives up. It must not return (Pebble goes on as if
// the call had ended the process), and it must not print a Go panic on the
// operator's screen. A failed commit is turned into an error for the
// caller, which holds the commit lock and marks the store degraded: the
// commit pipeline is wedged, so no other commit may follow on that
// instance. Anything else stops the store (Fatal) and parks the calling
// goroutine until the process exits.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	if strings.HasPrefix(format, commitFatalFormat) {
		var cause error
		if len(args) > 0 {
			cause, _ = args[0].(error)
		}
		if cause == nil {
			cause = errors.New(fmt.Sprintf(format, args...))
		}
		panic(commitPanic{err: cause})
	}
	p.s.parked.Store(true)
	err := fmt.Errorf("storage: pebble stopped in %s: %s", p.s.dir, oneLine(fmt.Errorf(format, args...)))
	for _, a := range args {
		if cause, ok := a.(error); ok && isDiskErr(cause) {
			// Usually a full disk at start (the MANIFEST of a reopened
			// database): say so, as an early refusal would.
			op := "write"
			if p.ev.opening.Load() {
				op = "open"
			}
			err = &DiskError{Dir: p.s.dir, Op: op, Err: causeError{msg: "pebble: " + oneLine(fmt.Errorf(format, args...)), cause: cause}}
			break
		}
	}
	if path := p.ev.corruptPath(); path != "" {
		err = &CorruptionError{Dir: p.s.dir, Path: path, Err: errors.New(oneLine(fmt.Errorf(format, args...)))}
	}
	p.s.tripFatal(err)
	if p.ev.opening.Load() {
		p.ev.fail(err)
	}
	select {}
}

// causeError is a message that unwraps to the error it describes.
type causeError struct {
	msg   string
	cause error
}

func (e causeError) Error() string { return e.msg }
func (e causeError) Unwrap() error { return e.cause }

// dbEvents is one Pebble instance's event hooks.
type dbEvents struct {
	s         *Store
	closing   chan struct{} // closed before the instance is closed: ends backoff sleeps
	closeOnce sync.Once
	bgFails   atomic.Int32 // background errors since the last successful flush or compaction
	lastBgErr atomic.Pointer[error]
	opening   atomic.Bool // pebble.Open has not returned yet
	openFail  chan error
	corrupt   atomic.Pointer[string]

	mu                  sync.Mutex
	finished, abandoned bool
}

func newDBEvents(s *Store) *dbEvents {
	return &dbEvents{s: s, closing: make(chan struct{}), openFail: make(chan error, 1)}
}

func (ev *dbEvents) close() { ev.closeOnce.Do(func() { close(ev.closing) }) }

func (ev *dbEvents) fail(err error) {
	select {
	case ev.openFail <- err:
	default:
	}
}

func (ev *dbEvents) corruptPath() string {
	if ev == nil {
		return ""
	}
	if p := ev.corrupt.Load(); p != nil {
		return *p
	}
	return ""
}

func (ev *dbEvents) listener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: ev.backgroundError,
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			p := info.Path
			ev.corrupt.Store(&p)
			ev.s.tripFatal(&CorruptionError{Dir: ev.s.dir, Path: p, Err: info.Details})
		},
		FlushEnd: func(info pebble.FlushInfo) {
			if info.Err == nil {
				ev.bgFails.Store(0)
			}
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			if info.Err == nil {
				ev.bgFails.Store(0)
			}
		},
	}
}

// backgroundError is called by Pebble's flushes and compactions, with
// Pebble's mutex held. A failed flush is retried at once and forever
// (Pebble's own TODO: "count consecutive flush errors and backoff"), which
// on a full disk is a busy loop writing a log line per attempt: sleep
// here, exponentially, and log identical lines rarely. Reads do not take
// that mutex.
func (ev *dbEvents) backgroundError(err error) {
	if pebble.IsCorruptionError(err) {
		return // DataCorruption reported it, and it is fatal
	}
	opening := ev.opening.Load()
	if opening {
		// Open waits for the flush of the replayed log, which would retry
		// forever: give up the open instead (see openPebble). Its error
		// says it all; no line here.
		ev.fail(&DiskError{Dir: ev.s.dir, Op: "open (replaying the write-ahead log)", Err: err})
	}
	ev.lastBgErr.Store(&err)
	n := ev.bgFails.Add(1)
	if !opening {
		if ok, sup := ev.s.logs.allow("background:"+oneLine(err), time.Now()); ok {
			ev.s.log.Error("storage: background flush or compaction failed; retrying with backoff",
				"dir", ev.s.dir, "err", oneLine(err), "suppressed", sup)
		}
	}
	d := min(50*time.Millisecond<<min(n, 7), 5*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ev.closing:
	}
}

// openPebble opens a Pebble instance on the store's directory. Opening
// replays Pebble's log into a table and waits for that flush; when the
// flush fails (a full disk) Pebble would retry forever, so the open is
// given up with the error and the instance, should it ever finish
// opening, closes itself. The caller holds dbmu exclusively or owns s.
func (s *Store) openPebble() (*pebble.DB, *dbEvents, error) {
	ev := newDBEvents(s)
	cache := pebble.NewCache(s.cacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache: cache, Logger: pebbleLogger{s: s, ev: ev}, Comparer: comparer, FS: s.fs,
		EventListener: ev.listener(),
		// The memtable holds only versions now (the log has its own files),
		// and point reads pay for its size: a GET's skiplist seek in a full
		// 64 MiB memtable was 40% of its CPU (26.7k GET/s at 64 clients
		// against 46.6k with 16 MiB and 47.5k with 4 MiB; SET throughput
		// the same for all three; docs/benchmarks.md). 16 MiB keeps most of
		// that gain with a quarter of the flushes 4 MiB would cost.
		MemTableSize: 16 << 20,
		// Pebble keeps no log of its own: every write it gets is derived
		// from the replication log, which the store fsyncs itself and
		// replays into Pebble after a crash (see doc.go). One fsync per
		// group commit instead of two logs, and no write of each record
		// into the memtable and its tables.
		DisableWAL: true,
		// v6 tables checksum their footer. Opening an older directory
		// upgrades it, one way (its old write-ahead log is replayed once).
		FormatMajorVersion: pebble.FormatTableFormatV6,
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloomPolicy
	}
	opts.EnsureDefaults()
	type result struct {
		db  *pebble.DB
		err error
	}
	resc := make(chan result, 1)
	ev.opening.Store(true)
	go func() {
		db, err := pebble.Open(s.dir, opts)
		ev.opening.Store(false)
		ev.mu.Lock()
		ev.finished = true
		abandoned := ev.abandoned
		ev.mu.Unlock()
		if abandoned {
			if db != nil {
				ev.close()
				_ = db.Close()
			}
			return
		}
		resc <- result{db, err}
	}()
	var failed error
	select {
	case r := <-resc:
		if r.err != nil {
			return nil, nil, s.openErr(ev, r.err)
		}
		return r.db, ev, nil
	case failed = <-ev.openFail:
	case <-s.fatalCh:
		failed = s.fatalErr
	}
	ev.mu.Lock()
	if ev.finished {
		ev.mu.Unlock()
		if r := <-resc; r.db != nil {
			ev.close()
			_ = r.db.Close()
		}
	} else {
		ev.abandoned = true
		ev.mu.Unlock()
	}
	return nil, nil, failed
}

func (s *Store) openErr(ev *dbEvents, err error) error {
	if ferr := s.fatalError(); ferr != nil {
		return ferr
	}
	if pebble.IsCorruptionError(err) || errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk) {
		path := ev.corruptPath()
		if path == "" && (errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk)) {
			// A bad write-ahead-log record: Pebble does not say which file,
			// but there is usually only one.
			if logs := s.pebbleLogs(); len(logs) == 1 {
				path = logs[0]
			}
		}
		return s.corrupt(&CorruptionError{Dir: s.dir, Path: path, Err: err})
	}
	if isDiskErr(err) {
		return &DiskError{Dir: s.dir, Op: "open", Err: err}
	}
	return fmt.Errorf("storage: open %s: %w", s.dir, err)
}

// pebbleLogs lists Pebble's own write-ahead log files: only a directory
// from before the log had its own files has one, replayed once at open.
func (s *Store) pebbleLogs() []string {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, name := range names {
		if strings.HasSuffix(name, ".log") {
			out = append(out, s.fs.PathJoin(s.dir, name))
		}
	}
	return out
}

func isDiskErr(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS, syscall.EFBIG} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// closeInstance closes the current Pebble instance, if any. Errors are the
// failure the store already reported. The caller holds dbmu exclusively.
func (s *Store) closeInstance() {
	db, ev := s.db, s.ev
	s.db, s.ev = nil, nil
	if db == nil {
		return
	}
	ev.close()
	if s.parked.Load() {
		return // see Close
	}
	if err := db.Close(); err != nil {
		s.log.Debug("storage: closing the failed database instance", "dir", s.dir, "err", oneLine(err))
	}
}

// --- watching the write-ahead log ---

// watchFS reports a failed write or sync of Pebble's write-ahead log to the
// store before Pebble itself sees the error. Pebble keeps that error and a
// later commit on the same log panics inside Pebble with its commit lock
// held; marking the store degraded first means no commit gets that far.
type watchFS struct {
	vfs.FS
	s *Store
}

func (w *watchFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &watchFile{File: f, s: w.s, name: name}, nil
}

func (w *watchFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := w.FS.Create(name, c)
	return w.wrap(name, f, err)
}

func (w *watchFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := w.FS.ReuseForWrite(oldname, newname, c)
	return w.wrap(newname, f, err)
}

func (w *watchFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := w.FS.OpenReadWrite(name, c, opts...)
	return w.wrap(name, f, err)
}

func (w *watchFS) Unwrap() vfs.FS { return w.FS }

type watchFile struct {
	vfs.File
	s    *Store
	name string
}

func (f *watchFile) check(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		f.s.degrade("write-ahead log", err)
	}
	return err
}

func (f *watchFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.check(err)
}

func (f *watchFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.check(err)
}

func (f *watchFile) Sync() error { return f.check(f.File.Sync()) }

func (f *watchFile) SyncData() error { return f.check(f.File.SyncData()) }

func (f *watchFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.check(err)
}

// Preallocate is not watched: Pebble ignores its errors (the write that
// follows may well fit), so must the store.

// --- log lines ---

// logLimiter lets an identical line through at most once per quiet period
// (digits count as identical: file numbers change on every retry) and
// counts what it held back.
type logLimiter struct {
	mu    sync.Mutex
	quiet time.Duration
	seen  map[string]*limitEntry
}

type limitEntry struct {
	last       time.Time
	suppressed int
}

func (l *logLimiter) allow(msg string, now time.Time) (bool, int) {
	key := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil || len(l.seen) > 256 {
		l.seen = map[string]*limitEntry{}
	}
	q := l.quiet
	if q == 0 {
		q = time.Minute
	}
	e := l.seen[key]
	if e == nil {
		l.seen[key] = &limitEntry{last: now}
		return true, 0
	}
	if now.Sub(e.last) < q {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}
