package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage/wal"
)

// Latest reads the newest version regardless of commit state. Only the
// leader's write path uses it: it must see its own uncommitted entries.
const Latest = math.MaxUint64

// CorruptionError reports corrupt data: a log record that failed its
// checksum or could not be decoded (LSN), or a file Pebble found corrupt
// (Path). Corruption is fatal to the store (see Fatal).
type CorruptionError struct {
	Dir  string
	LSN  uint64
	Path string // the corrupt file, when Pebble named one
	Err  error
}

func (e *CorruptionError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("storage: corrupt data in %s: %s", e.Path, oneLine(e.Err))
	}
	if e.LSN == 0 {
		return fmt.Sprintf("storage: corrupt data in %s: %s", e.Dir, oneLine(e.Err))
	}
	return fmt.Sprintf("storage: corrupt log entry at LSN %d in %s: %s", e.LSN, e.Dir, oneLine(e.Err))
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// ErrNotContiguous is returned when appended entries do not follow LastLSN.
var ErrNotContiguous = errors.New("storage: entries are not contiguous with the log")

// ErrCompacted is returned when reading log entries below FirstLSN.
var ErrCompacted = errors.New("storage: log entries compacted away")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("storage: closed")

// EpochStart records that entries from FirstLSN on carry Epoch.
type EpochStart struct {
	Epoch    uint64 `json:"epoch"`
	FirstLSN uint64 `json:"first_lsn"`
}

// State is a consistent view of the store's positions.
type State struct {
	FirstLSN   uint64 // first LSN still in the log (LastLSN+1 when empty)
	LastLSN    uint64 // last LSN appended (or the snapshot LSN)
	LastEpoch  uint64 // epoch of the entry at LastLSN
	AppliedLSN uint64 // last LSN whose versions are written
	CommitLSN  uint64 // highest commit LSN recorded
}

// Version is one stored version of a key.
type Version struct {
	LSN      uint64
	Value    []byte
	ExpireAt int64 // Unix ms, 0 = never
	Deleted  bool
	// Type is the value's Redis type (engine.Type; 0 is a string).
	Type uint8
}

// Expired tells whether the version is past its expiry at nowMs.
func (v Version) Expired(nowMs int64) bool { return v.ExpireAt != 0 && v.ExpireAt <= nowMs }

// Options configure Open.
type Options struct {
	Logger *slog.Logger
	// CacheBytes is Pebble's block cache size; 0 picks
	// DefaultCacheBytes.
	CacheBytes int64
	// RowCacheBytes bounds the cache of recently read keys' newest
	// versions (rowcache.go); 0 picks DefaultRowCacheBytes, negative
	// disables it.
	RowCacheBytes int64
	// MinFreeBytes is the disk space writes leave free (see admit); 0 picks
	// 1/32 of the file system, at most 64 MiB; negative disables the check.
	MinFreeBytes int64
	// FS is the file system Pebble and the log use; nil is the operating
	// system's. Tests inject failures through it.
	FS vfs.FS
	// SegmentBytes is the size at which the log starts a new segment file
	// (0: 64 MiB). Retention deletes whole segments.
	SegmentBytes int64
	// ApplyDelay is the node's --apply-delay: after a crash, Open writes
	// the versions of logged entries again only for entries at least this
	// old, as the delayed replica would have (the rest it applies itself).
	ApplyDelay time.Duration
}

const defaultSegmentBytes = 64 << 20

// The caches' sizes Options' zeros pick.
const (
	// DefaultCacheBytes is Pebble's block cache.
	DefaultCacheBytes = 64 << 20
	// DefaultRowCacheBytes is the row cache: 64 MiB answered 17–22 %
	// more GETs per second than 32 MiB on a million keys of 64 bytes,
	// where the keys outgrow it (benchmarks §19), and keeps ten million
	// keys within 256 MiB of RSS.
	DefaultRowCacheBytes = 64 << 20
)

// logPreallocate is how far past its end the log keeps its active segment
// zero-filled, which takes an fsync after an append from about 0.21 to
// 0.12 ms on the test machine (wal/prealloc.go).
const logPreallocate = 4 << 20

// Store is the node's durable state. Append and ApplyUpTo belong to one
// writer at a time (the leader's sequencer, or the follower's receive and
// apply goroutines of one session, which never apply and truncate at once);
// GC, TruncatePrefix, TruncateSuffix and snapshot install serialise among
// themselves and may run beside the writer; SetCommitLSN, the expiry index
// calls and all reads are safe concurrently with everything.
type Store struct {
	// states caches keys' states at the applied LSN for the key count
	// (keycount.go); presence tells keys never written (presence.go).
	states   keyStates
	presence presence
	// rows caches recently read keys' newest versions (rowcache.go).
	rows *rowCache
	// bg tracks background goroutines (the presence scan); bgClosed,
	// under bgMu, stops new ones once Close waits for them.
	bgMu     sync.Mutex
	bg       sync.WaitGroup
	bgClosed bool

	dir        string
	log        *slog.Logger
	fs         vfs.FS
	cacheBytes int64
	minFree    int64
	closed     atomic.Bool

	// dbmu guards which Pebble instance db is: held shared while one is in
	// use, exclusively to replace it (Recover) or close it. Public methods
	// take it once; internal helpers expect it held.
	dbmu sync.RWMutex
	db   *pebble.DB
	ev   *dbEvents
	// draining is set while someone waits for dbmu exclusively, so long
	// reads (scans, GC) stop early instead of holding everyone up.
	draining atomic.Bool
	// wal is the replication log (own segment files); Pebble holds only
	// what is derived from it, written without Pebble's own write-ahead
	// log (see doc.go). Replaced, like db, only under dbmu exclusively.
	wal          *wal.Log
	segmentBytes int64
	applyDelay   time.Duration
	// wmu serialises commits together with the degraded check: once a log
	// write failed, no commit may follow until Recover (see watchFS).
	wmu sync.Mutex
	cmu sync.Mutex // serialises SetCommitLSN

	mu      sync.RWMutex
	st      State
	epochs  []EpochStart
	flushes []uint64 // sorted FLUSHALL LSNs still relevant
	// gcFloor is the highest floor GC has collected at (persisted before
	// anything is deleted): history below it is gone, so the log can no
	// longer be rolled back below it.
	gcFloor uint64
	// durable: every log entry up to here is known synced. Entries above it
	// exist (in Pebble's memtable) but may not survive a crash or a reopen.
	durable uint64

	// maint serialises the calls that rewrite history (GC, truncation,
	// snapshot install): they run from different goroutines.
	maint sync.Mutex
	// garbageLSN is the highest LSN of an applied entry that may have made
	// a version collectable (it overwrote or deleted a key that had a
	// version, or flushed everything); gcScanned is the floor of the last
	// complete GC scan (under maint). GC scans every version only when
	// garbageLSN > gcScanned: garbage made by an entry at LSN L becomes
	// collectable once the floor reaches L, and a scan at floor f collects
	// all of it up to f. An idle node or an insert-only load then costs
	// GC nothing, where it scanned every key every 30 s (10 M keys: 3.8 s
	// of CPU per pass, and the block cache filled by the scan; benchmarks
	// §14).
	garbageLSN atomic.Uint64
	gcScanned  uint64
	// gcScans counts complete GC scans (tests).
	gcScans atomic.Int64
	// inst is the table a snapshot install is writing (install.go).
	inst installer

	// Health after a failed write (health.go).
	hmu        sync.Mutex
	failErr    *DiskError
	failures   int
	nextTry    time.Time
	recovering bool
	saved      savedSuffix // log records to restore on reopen
	degraded   atomic.Bool
	pendings   atomic.Int64 // synced Appends not yet waited for

	fatalOnce sync.Once
	fatalCh   chan struct{}
	fatalErr  error
	parked    atomic.Bool // a Pebble goroutine is stopped in Fatalf

	logs logLimiter
}

var bloomPolicy = bloom.FilterPolicy(10)

// Open opens (or creates) the store in dir and recovers its positions.
func Open(dir string, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = defaultSegmentBytes
	}
	if o.RowCacheBytes == 0 {
		o.RowCacheBytes = DefaultRowCacheBytes
	}
	s := &Store{dir: dir, log: o.Logger, cacheBytes: o.CacheBytes, minFree: o.MinFreeBytes, fatalCh: make(chan struct{}),
		segmentBytes: o.SegmentBytes, applyDelay: o.ApplyDelay, rows: newRowCache(o.RowCacheBytes)}
	s.fs = &watchFS{FS: o.FS, s: s}
	db, ev, err := s.openPebble()
	if err != nil {
		return nil, err
	}
	s.db, s.ev = db, ev
	fail := func(err error) (*Store, error) {
		s.closed.Store(true)
		s.closeInstance()
		if s.wal != nil {
			_ = s.wal.Close()
		}
		return nil, err
	}
	if s.wal, err = s.openWAL(); err != nil {
		return fail(err)
	}
	if err := s.migrateLog(); err != nil {
		return fail(err)
	}
	l, err := s.load()
	if err != nil {
		return fail(err)
	}
	s.st, s.epochs, s.flushes, s.gcFloor = l.st, l.epochs, l.flushes, l.gcFloor
	// What earlier runs left collectable is unknown: the first GC scans.
	s.noteGarbage(l.st.AppliedLSN)
	// The log was synced up to its end when it was opened.
	s.durable = l.st.LastLSN
	capacity := int64(0)
	if n, ok, err := s.storedCount(s.db); err == nil && ok {
		capacity = 2 * n.Keys
	}
	s.restartPresence(capacity)
	s.log.Info("storage recovered", "dir", s.dir, "first_lsn", l.st.FirstLSN, "last_lsn", l.st.LastLSN,
		"applied_lsn", l.st.AppliedLSN, "commit_lsn", l.st.CommitLSN, "last_epoch", l.st.LastEpoch,
		"replayed", l.replayed)
	return s, nil
}

// openWAL opens the replication log's segment files.
func (s *Store) openWAL() (*wal.Log, error) {
	w, err := wal.Open(s.fs.PathJoin(s.dir, "wal"), wal.Options{FS: s.fs, SegmentBytes: s.segmentBytes, Logger: s.log,
		Preallocate: logPreallocate})
	if err == nil {
		return w, nil
	}
	if ferr := s.fatalError(); ferr != nil {
		return nil, ferr
	}
	var wce *wal.CorruptionError
	if errors.As(err, &wce) {
		return nil, s.corrupt(&CorruptionError{Dir: s.dir, Path: filepath.Join(wce.Dir, wce.Segment), LSN: wce.LSN, Err: err})
	}
	if isDiskErr(err) {
		return nil, &DiskError{Dir: s.dir, Op: "open log", Err: err}
	}
	return nil, fmt.Errorf("storage: open log in %s: %w", s.dir, err)
}

// reader holds the database shared for a read; done releases it.
func (s *Store) reader() (done func(), err error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	s.dbmu.RLock()
	if s.db != nil {
		return s.dbmu.RUnlock, nil
	}
	s.dbmu.RUnlock()
	// An earlier reopen failed: try again (Recover spaces attempts out).
	if err := s.Recover(); err != nil {
		return nil, err
	}
	s.dbmu.RLock()
	if s.db == nil {
		s.dbmu.RUnlock()
		if s.closed.Load() {
			return nil, ErrClosed
		}
		return nil, &DiskError{Dir: s.dir, Op: "reopen", Refused: true, Err: errors.New("no database instance")}
	}
	return s.dbmu.RUnlock, nil
}

// writer is reader for a write: it refuses at once when the store is
// stopped by a fatal error or degraded by a failed write.
func (s *Store) writer() (done func(), err error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := s.fatalError(); err != nil {
		return nil, err
	}
	if s.degraded.Load() {
		if err := s.refusal(); err != nil {
			return nil, err
		}
	}
	return s.reader()
}

// apply hands b to Pebble's memtable. Pebble runs without its own
// write-ahead log: what it holds is derived from the replication log and
// becomes durable when Pebble flushes, in commit order (a flush persists a
// prefix of the batches applied). With gate it first refuses when the
// store is stopped or degraded — under wmu, so that no commit follows a
// failed log write. The caller holds dbmu.
func (s *Store) apply(op string, b *pebble.Batch, gate bool) (err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if gate {
		if err := s.gateLocked(); err != nil {
			return err
		}
	}
	defer func() {
		if r := recover(); r != nil {
			cp, ok := r.(commitPanic)
			if !ok {
				panic(r)
			}
			err = s.degrade(op, cp.err)
		}
	}()
	if err := s.db.Apply(b, pebble.NoSync); err != nil {
		return fmt.Errorf("storage: %s: %w", op, err)
	}
	return nil
}

// gateLocked refuses a write when the store is stopped by a fatal error or
// degraded by a failed write. The caller holds wmu, so that no write slips
// in after a failure.
func (s *Store) gateLocked() error {
	if err := s.fatalError(); err != nil {
		return err
	}
	if s.degraded.Load() {
		return s.refusal()
	}
	return nil
}

// applyDurable applies b and flushes Pebble's memtables, so that b and
// everything applied before it survive a crash. For the rare writes whose
// order against the log files matters (truncation, snapshot install): a
// flush costs a table write.
func (s *Store) applyDurable(op string, b *pebble.Batch) error {
	if err := s.apply(op, b, false); err != nil {
		return err
	}
	return s.flushPebble(op)
}

// flushPebble waits for Pebble to flush its memtables. Pebble retries a
// failed flush forever, so a flush that fails (a full disk) is reported
// as a DiskError once it has failed a few times instead of blocking the
// caller; Pebble goes on retrying in the background.
func (s *Store) flushPebble(op string) error { return s.flushPebbleDB(s.db, s.ev, op) }

func (s *Store) flushPebbleDB(db *pebble.DB, ev *dbEvents, op string) error {
	flushed, err := db.AsyncFlush()
	if err != nil {
		if isDiskErr(err) {
			return &DiskError{Dir: s.dir, Op: op, Err: err}
		}
		return fmt.Errorf("storage: %s: flush: %w", op, err)
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-flushed:
			return nil
		case <-t.C:
			// bgFails counts failures since the last flush or compaction
			// that succeeded.
			if ev.bgFails.Load() >= 3 {
				err := errors.New("Pebble's flush keeps failing (see the log for why)")
				if e := ev.lastBgErr.Load(); e != nil {
					err = fmt.Errorf("flush keeps failing: %w", *e)
				}
				return &DiskError{Dir: s.dir, Op: op, Err: err}
			}
		}
	}
}

// walErr turns a failed log write or sync into the store's error: the log
// refuses writes from then on, and so does the store until Recover.
func (s *Store) walErr(op string, err error) error {
	if errors.Is(err, wal.ErrClosed) {
		return ErrClosed
	}
	return s.degrade(op, err)
}

// markSynced records that the log is durable up to last.
func (s *Store) markSynced(last uint64) {
	s.mu.Lock()
	s.durable = max(s.durable, min(last, s.st.LastLSN))
	s.mu.Unlock()
}

func (s *Store) getMetaU64(name string) (uint64, error) {
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: read meta %s: %w", name, s.readErr(err))
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("meta %s has %d bytes", name, len(v))})
	}
	return binary.BigEndian.Uint64(v), nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func binaryLSN(k []byte) uint64 { return binary.BigEndian.Uint64(k[1:]) }

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) decodeAt(lsn uint64, v []byte) (Entry, error) {
	e, err := DecodeEntry(v)
	if err != nil {
		return e, s.corrupt(&CorruptionError{Dir: s.dir, LSN: lsn, Err: err})
	}
	if e.LSN != lsn {
		return e, s.corrupt(&CorruptionError{Dir: s.dir, LSN: lsn, Err: fmt.Errorf("record holds LSN %d", e.LSN)})
	}
	return e, nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// State returns the current positions.
func (s *Store) State() State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st
}

// EpochHistory returns a copy of the epoch history, oldest first.
func (s *Store) EpochHistory() []EpochStart {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]EpochStart(nil), s.epochs...)
}

// Close closes the database. Pending syncs must have been waited for.
// After a disk error it closes what it can and does not report the failure
// again: everything acknowledged was synced before, and what was not
// synced is either unacknowledged or derived from the log.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.draining.Store(true)
	s.bgMu.Lock()
	s.bgClosed = true
	s.bgMu.Unlock()
	s.bg.Wait() // they stop at their next step: closed is set
	s.dbmu.Lock()
	defer s.dbmu.Unlock()
	s.inst.mu.Lock()
	s.installAbort() // an install cut off by the close starts over
	s.inst.mu.Unlock()
	var werr error
	if s.wal != nil {
		werr = s.wal.Close()
		s.wal = nil
	}
	db, ev := s.db, s.ev
	s.db, s.ev = nil, nil
	if db == nil {
		return nil
	}
	ev.close()
	if s.parked.Load() {
		// A Pebble goroutine stopped in Fatalf may hold Pebble's locks, so
		// closing could hang; the process is on its way out anyway.
		return nil
	}
	if !s.degraded.Load() && s.fatalError() == nil {
		// Not needed for durability (the next Open replays the log), but
		// it saves that replay. A flush that keeps failing (a full disk)
		// is given up: the replay covers it.
		if err := s.flushPebbleDB(db, ev, "close"); err != nil {
			s.log.Warn("storage: flush at close failed; the next start replays the log", "dir", s.dir, "err", oneLine(err))
		}
	}
	err := firstErr(db.Close(), werr)
	if err != nil && s.degraded.Load() {
		s.log.Warn("storage: closed after a disk error; writes not synced before it are not durable (none was acknowledged)",
			"dir", s.dir, "err", oneLine(err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: close %s: %w", s.dir, err)
	}
	return nil
}

// Flush writes the memtable out to tables (Pebble's Flush): the data
// written so far no longer needs replaying from the log after a crash.
func (s *Store) Flush() error {
	done, err := s.reader()
	if err != nil {
		return err
	}
	defer done()
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("storage: flush: %w", err)
	}
	return nil
}

// EstimateLogBytes estimates the bytes of the log entries in [from, to]
// from the log's index. For status only: cheap, approximate.
func (s *Store) EstimateLogBytes(from, to uint64) (uint64, error) {
	if from > to {
		return 0, nil
	}
	done, err := s.reader()
	if err != nil {
		return 0, err
	}
	defer done()
	return s.wal.SizeBetween(from, to), nil
}

// GetMeta returns a metadata value or nil.
func (s *Store) GetMeta(name string) ([]byte, error) {
	done, err := s.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	return s.getMeta(name)
}

func (s *Store) getMeta(name string) ([]byte, error) {
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: read meta %s: %w", name, s.readErr(err))
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// PutMeta durably stores a metadata value for upper layers.
func (s *Store) PutMeta(name string, value []byte) error {
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaKey(name), value, nil)
	if err := s.admit("meta "+name, b.Len(), grows); err != nil {
		return err
	}
	if err := s.apply("meta "+name, b, true); err != nil {
		return fmt.Errorf("storage: write meta %s: %w", name, err)
	}
	if err := s.flushPebble("meta " + name); err != nil {
		return fmt.Errorf("storage: write meta %s: %w", name, err)
	}
	return nil
}

func encodeEpochs(es []EpochStart) []byte {
	var b []byte
	for _, e := range es {
		b = binary.AppendUvarint(b, e.Epoch)
		b = binary.AppendUvarint(b, e.FirstLSN)
	}
	return b
}

func decodeEpochs(b []byte) ([]EpochStart, error) {
	var es []EpochStart
	for len(b) > 0 {
		ep, n1 := binary.Uvarint(b)
		if n1 <= 0 {
			return nil, errors.New("truncated epoch")
		}
		first, n2 := binary.Uvarint(b[n1:])
		if n2 <= 0 {
			return nil, errors.New("truncated first LSN")
		}
		es = append(es, EpochStart{Epoch: ep, FirstLSN: first})
		b = b[n1+n2:]
	}
	return es, nil
}

// AppendOptions control Append.
type AppendOptions struct {
	// Apply writes the entries' versions in the same batch.
	Apply bool
	// Sync makes the batch durable; Pending.Wait blocks until it is.
	Sync bool
	// CommitLSN, when above the recorded one, is recorded in the batch.
	CommitLSN uint64
}

// Pending is an appended batch whose fsync may still be in flight.
type Pending struct {
	s    *Store
	w    *wal.Log
	sync bool
	last uint64 // the batch's last LSN
	done bool
}

// Wait blocks until the batch is durable (if it was synced). It must be
// called exactly once. Concurrent Waits share one fsync (group commit). A
// failed fsync is a *DiskError and degrades the store: the batch may or
// may not be durable.
func (p *Pending) Wait() error {
	if p.w == nil || p.done {
		return nil
	}
	p.done = true
	if !p.sync {
		return nil
	}
	// Only now may Recover reopen the log (it waits for every Pending):
	// record the failure first.
	defer p.s.pendings.Add(-1)
	if p.w.SyncedLSN() < p.last {
		if err := p.w.Sync(); err != nil {
			return p.s.walErr("sync", err)
		}
	}
	p.s.markSynced(p.last)
	return nil
}

// Append adds entries at LastLSN+1… to the log, in one write. With Apply
// their versions go to Pebble's memtable right after. With Sync the
// entries are visible on return and durable once Pending.Wait returns, so
// the caller can prepare the next batch while this one is fsynced.
func (s *Store) Append(entries []Entry, o AppendOptions) (*Pending, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if len(entries) == 0 {
		return &Pending{}, nil
	}
	done, err := s.writer()
	if err != nil {
		return nil, err
	}
	defer done()
	s.mu.RLock()
	st, epochs := s.st, s.epochs
	s.mu.RUnlock()
	if o.Apply && st.AppliedLSN != st.LastLSN {
		return nil, fmt.Errorf("storage: append with apply while applied %d < last %d", st.AppliedLSN, st.LastLSN)
	}
	// One buffer for every record, sized up front: growing by doubling
	// copies a 16 MiB value several times on the one write goroutine
	// (measured: PING stalls of up to 245 ms beside 16 MiB SETs).
	size := 0
	for i := range entries {
		size += entries[i].EncodedSize()
	}
	buf := make([]byte, 0, size)
	payloads := make([][]byte, len(entries))
	newEpochs := epochs
	prevEpoch := st.LastEpoch
	for i := range entries {
		e := &entries[i]
		if e.LSN != st.LastLSN+1+uint64(i) {
			return nil, fmt.Errorf("%w: got LSN %d, want %d", ErrNotContiguous, e.LSN, st.LastLSN+1+uint64(i))
		}
		if e.Epoch < prevEpoch {
			return nil, fmt.Errorf("storage: entry %d has epoch %d below previous epoch %d", e.LSN, e.Epoch, prevEpoch)
		}
		if e.Epoch > prevEpoch || len(newEpochs) == 0 {
			newEpochs = append(append([]EpochStart(nil), newEpochs...), EpochStart{Epoch: e.Epoch, FirstLSN: e.LSN})
			prevEpoch = e.Epoch
		}
		n := len(buf)
		buf = AppendEntry(buf, e)
		payloads[i] = buf[n:len(buf):len(buf)]
	}
	last := entries[len(entries)-1]
	commit := st.CommitLSN
	if o.CommitLSN > commit {
		commit = min(o.CommitLSN, last.LSN)
	}
	// Versions take about as much room as the records: admit both.
	need := len(buf)
	if o.Apply {
		need *= 2
	}
	if err := s.admit("append", need, grows); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	if err := s.gateLocked(); err != nil {
		s.wmu.Unlock()
		return nil, err
	}
	err = s.wal.AppendBatch(entries[0].LSN, payloads)
	s.wmu.Unlock()
	if err != nil {
		// The log did not take the batch (a failed write leaves at most a
		// torn tail, cut off when the log is reopened): nothing was
		// appended, and nothing is until Recover.
		de := s.walErr("append", err)
		var d *DiskError
		if errors.As(de, &d) {
			r := *d
			r.Refused = true
			return nil, &r
		}
		return nil, de
	}
	if o.Apply || len(newEpochs) != len(epochs) || commit > st.CommitLSN {
		b := s.db.NewBatchWithSize(size + 256)
		var newFlushes []uint64
		var vs versionScratch
		var cerr error
		var cnt *counter
		if o.Apply {
			// s.flushes is replaced, never changed in place: the slice
			// taken under the lock stays valid without it.
			s.mu.RLock()
			flushes := s.flushes
			s.mu.RUnlock()
			cnt = s.newCounter(st.AppliedLSN, flushes)
			for i := range entries {
				newFlushes = s.writeVersions(b, &entries[i], newFlushes, &vs, cnt)
			}
			cerr = cnt.commit(b)
			cnt.close()
			_ = b.Set(metaKey("applied_lsn"), u64(last.LSN), nil)
		}
		if len(newEpochs) != len(epochs) {
			_ = b.Set(metaKey("epochs"), encodeEpochs(newEpochs), nil)
		}
		if commit > st.CommitLSN {
			_ = b.Set(metaKey("commit_lsn"), u64(commit), nil)
		}
		err := cerr
		if err == nil {
			err = s.apply("append", b, false)
		}
		if err == nil {
			cnt.applied()
			if o.Apply {
				s.publishEntries(entries)
			}
		}
		_ = b.Close()
		if err != nil {
			// The entries are in the log but their versions are not: keep
			// the log position true and stop writes until Recover.
			s.mu.Lock()
			s.st.LastLSN, s.st.LastEpoch = last.LSN, last.Epoch
			s.epochs = newEpochs
			s.mu.Unlock()
			return nil, s.degrade("append", err)
		}
		if len(newFlushes) > 0 {
			s.mu.Lock()
			s.flushes = append(append([]uint64(nil), s.flushes...), newFlushes...)
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	s.st.LastLSN, s.st.LastEpoch = last.LSN, last.Epoch
	if o.Apply {
		s.st.AppliedLSN = last.LSN
	}
	s.st.CommitLSN = max(s.st.CommitLSN, commit)
	s.epochs = newEpochs
	s.mu.Unlock()
	if o.Sync {
		s.pendings.Add(1)
	}
	return &Pending{s: s, w: s.wal, sync: o.Sync, last: last.LSN}, nil
}

// versionScratch is one caller's buffer for encoding versions: Pebble
// copies key and value into the batch, so one buffer serves every version
// of a batch instead of two allocations each.
type versionScratch struct{ buf []byte }

// publishEntries tells the row cache about the versions of entries, a
// batch just committed to Pebble, before the applied LSN that makes them
// visible is published.
func (s *Store) publishEntries(entries []Entry) {
	if !s.rows.enabled() {
		return
	}
	for i := range entries {
		e := &entries[i]
		first := lastFlush(e.Ops)
		if first >= 0 {
			s.rows.invalidate() // it hides every earlier version
		}
		for j := first + 1; j < len(e.Ops); j++ {
			op := &e.Ops[j]
			s.rows.wrote(op.Key, opVersion(op, e.LSN))
		}
	}
}

// lastFlush is the index of the last FLUSHALL among ops, -1 if none.
func lastFlush(ops []Op) int {
	for i := len(ops) - 1; i >= 0; i-- {
		if ops[i].Kind == OpFlush {
			return i
		}
	}
	return -1
}

// writeVersions adds e's versions to b, and its key count delta (see
// keycount.go) as cnt follows it.
func (s *Store) writeVersions(b *pebble.Batch, e *Entry, flushes []uint64, vs *versionScratch, cnt *counter) []uint64 {
	// Ops apply in order. A FLUSH marker at LSN f hides versions below f,
	// not the versions written at f itself, so ops after the entry's last
	// FLUSH stay visible and ops before it must not be written at all.
	first := max(lastFlush(e.Ops), 0)
	cnt.entry(b, e, first)
	for i := first; i < len(e.Ops); i++ {
		op := &e.Ops[i]
		switch op.Kind {
		case OpFlush:
			_ = b.Set(flushKey(e.LSN), nil, nil)
			flushes = append(flushes, e.LSN)
		default:
			// Key and value, in one buffer.
			need := versionRecordMax(op.Key, op.Value)
			buf := vs.buf
			if cap(buf) < need {
				buf = make([]byte, 0, need)
				if need <= 64<<10 {
					vs.buf = buf
				}
			}
			kb := appendVersionKey(buf[:0], op.Key, e.LSN)
			vb := appendVersion(kb[len(kb):len(kb)], op)
			_ = b.Set(kb, vb, nil)
			if op.Kind == OpSet && op.ExpireAt != 0 {
				_ = b.Set(expiryKey(op.ExpireAt, e.LSN, op.Key), nil, nil)
			}
		}
	}
	return flushes
}

// ApplyUpTo writes the versions of appended entries AppliedLSN+1..lsn (a
// follower that receives before it applies).
func (s *Store) ApplyUpTo(lsn uint64) error {
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	st := s.State()
	if lsn > st.LastLSN {
		return fmt.Errorf("storage: apply up to %d beyond last LSN %d", lsn, st.LastLSN)
	}
	if lsn <= st.AppliedLSN {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	var flushes []uint64
	var vs versionScratch
	var applied []Entry // readLog hands out copies: kept for the row cache
	s.mu.RLock()
	known := s.flushes // replaced, never changed in place
	s.mu.RUnlock()
	cnt := s.newCounter(st.AppliedLSN, known)
	defer cnt.close()
	err = s.readLog(st.AppliedLSN+1, lsn, 0, func(e Entry) error {
		flushes = s.writeVersions(b, &e, flushes, &vs, cnt)
		if s.rows.enabled() {
			applied = append(applied, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := cnt.commit(b); err != nil {
		return err
	}
	_ = b.Set(metaKey("applied_lsn"), u64(lsn), nil)
	if err := s.admit("apply", b.Len(), grows); err != nil {
		return err
	}
	if err := s.apply("apply", b, true); err != nil {
		return err
	}
	cnt.applied()
	s.publishEntries(applied)
	s.mu.Lock()
	s.st.AppliedLSN = lsn
	if len(flushes) > 0 {
		s.flushes = append(append([]uint64(nil), s.flushes...), flushes...)
	}
	s.mu.Unlock()
	return nil
}

// SetCommitLSN records a higher commit LSN (never beyond LastLSN). It is
// written without fsync: the commit LSN is re-learned after a crash.
func (s *Store) SetCommitLSN(lsn uint64) error {
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.mu.RLock()
	lsn = min(lsn, s.st.LastLSN)
	cur := s.st.CommitLSN
	s.mu.RUnlock()
	if lsn <= cur {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaKey("commit_lsn"), u64(lsn), nil)
	if err := s.admit("commit LSN", b.Len(), shrinks); err != nil {
		return err
	}
	if err := s.apply("commit LSN", b, true); err != nil {
		return fmt.Errorf("storage: record commit LSN: %w", err)
	}
	s.mu.Lock()
	s.st.CommitLSN = max(s.st.CommitLSN, lsn)
	s.mu.Unlock()
	return nil
}

// Sync makes every write so far durable. On a degraded store it is
// Recover, whose reopen ends with everything durable.
func (s *Store) Sync() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.degraded.Load() {
		return s.Recover()
	}
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	s.mu.RLock()
	last := s.st.LastLSN
	clean := s.durable >= last
	s.mu.RUnlock()
	if clean {
		// Nothing to make durable: no write at all, which matters on a
		// full disk (shutdown, a failover candidate's position). Pebble's
		// own writes need no sync: they are derived from the log.
		return nil
	}
	if err := s.wal.Sync(); err != nil {
		return s.walErr("sync", err)
	}
	s.markSynced(last)
	return nil
}

// ReadLog calls fn for entries from..to (inclusive) in order; maxBytes > 0
// stops after roughly that many encoded bytes (at least one entry).
func (s *Store) ReadLog(from, to uint64, maxBytes int, fn func(Entry) error) error {
	done, err := s.reader()
	if err != nil {
		return err
	}
	defer done()
	return s.readLog(from, to, maxBytes, fn)
}

func (s *Store) readLog(from, to uint64, maxBytes int, fn func(Entry) error) error {
	return s.readLogRaw(from, to, maxBytes, func(lsn uint64, raw []byte) error {
		e, err := s.decodeAt(lsn, raw)
		if err != nil {
			return err
		}
		// Decoded slices alias the iterator's buffer; copy before handing out.
		return fn(cloneEntry(e))
	})
}

func cloneEntry(e Entry) Entry {
	ops := make([]Op, len(e.Ops))
	for i, op := range e.Ops {
		op.Key = append([]byte(nil), op.Key...)
		if op.Value != nil {
			op.Value = append([]byte(nil), op.Value...)
		}
		ops[i] = op
	}
	e.Ops = ops
	return e
}

// Entry returns one log entry.
func (s *Store) Entry(lsn uint64) (Entry, error) {
	var out Entry
	found := false
	err := s.ReadLog(lsn, lsn, 0, func(e Entry) error { out, found = e, true; return nil })
	if err == nil && !found {
		err = fmt.Errorf("storage: no entry at LSN %d", lsn)
	}
	return out, err
}

// EpochAt returns the epoch of the entry at lsn from the epoch history, or 0
// when lsn is not covered (0 or beyond LastLSN).
func (s *Store) EpochAt(lsn uint64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if lsn == 0 || lsn > s.st.LastLSN {
		return 0
	}
	var ep uint64
	for _, e := range s.epochs {
		if e.FirstLSN > lsn {
			break
		}
		ep = e.Epoch
	}
	return ep
}

func (s *Store) flushFloor(at uint64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(len(s.flushes), func(i int) bool { return s.flushes[i] > at })
	if i == 0 {
		return 0
	}
	return s.flushes[i-1]
}

// Get returns the version of key visible at LSN at (tombstones, flushed and
// missing keys report found=false). Expiry is left to the caller.
func (s *Store) Get(key []byte, at uint64) (Version, bool, error) {
	done, err := s.reader()
	if err != nil {
		return Version{}, false, err
	}
	defer done()
	if !engine.IsReserved(key) && s.presence.absent(key) {
		return Version{}, false, nil // never written: no iterator, no seek
	}
	cached, ok, gen := s.rows.get(key)
	if ok && cached.LSN <= at {
		return s.visible(cached, at, false) // get copied it out of the ring
	}
	p := versionPrefix(key)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: versionKeyEnd(p)})
	if err != nil {
		return Version{}, false, s.readErr(err)
	}
	defer it.Close()
	// Without a cached entry, the seek goes to the newest version, which
	// can be cached; a newer one than at (not yet committed, or a read in
	// the past) needs a second seek.
	fill := !ok
	seek := at
	if fill {
		seek = Latest
	}
	// A prefix seek consults the bloom filters: sstables without any
	// version of key are skipped.
	for {
		if !it.SeekPrefixGE(binary.BigEndian.AppendUint64(p, ^seek)) {
			if err := it.Error(); err != nil {
				return Version{}, false, s.readErr(err)
			}
			if fill {
				// No version at all: cached as a tombstone at LSN 0.
				s.rows.fill(key, gen, Version{Deleted: true})
			}
			return Version{}, false, nil
		}
		lsn := ^binary.BigEndian.Uint64(it.Key()[len(p):])
		v, ok := decodeVersion(it.Value())
		if !ok {
			return Version{}, false, s.corrupt(&CorruptionError{Dir: s.dir, LSN: lsn, Err: fmt.Errorf("bad version record for key %q", key)})
		}
		v.LSN = lsn
		if fill {
			// A version a FLUSHALL hides is not cached: GC removes it
			// together with the marker, after which nothing would.
			if lsn >= s.flushFloor(Latest) {
				s.rows.fill(key, gen, v)
			}
			fill = false
		}
		if lsn <= at {
			return s.visible(v, at, true)
		}
		seek = at
	}
}

// visible returns v, the newest version of its key at or below at, as Get
// answers it: absent when deleted or hidden by a FLUSHALL; with borrowed
// (the value is an iterator's), the value copied.
func (s *Store) visible(v Version, at uint64, borrowed bool) (Version, bool, error) {
	if v.Deleted || v.LSN < s.flushFloor(at) {
		return Version{}, false, nil
	}
	if borrowed {
		v.Value = append([]byte(nil), v.Value...)
	}
	return v, true, nil
}

// ChangedSince reports whether key has a version (a value or a tombstone)
// written after LSN since and at or below at: whether a reader that saw
// key at since could see something else at at. A FLUSHALL writes no
// version of key and is not counted; a caller that saw key live notices
// it by the key's absence. GC may have removed a tombstone newer than
// since (with every version below it) when since is below the GC floor,
// so a key without any version then answers true: a spurious change,
// never a missed one.
func (s *Store) ChangedSince(key []byte, since, at uint64) (bool, error) {
	done, err := s.reader()
	if err != nil {
		return false, err
	}
	defer done()
	p := versionPrefix(key)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: versionKeyEnd(p)})
	if err != nil {
		return false, s.readErr(err)
	}
	defer it.Close()
	if !it.SeekPrefixGE(binary.BigEndian.AppendUint64(p, ^at)) {
		if err := it.Error(); err != nil {
			return false, s.readErr(err)
		}
		s.mu.RLock()
		floor := s.gcFloor
		s.mu.RUnlock()
		return since < floor, nil
	}
	// GC never removes the newest version at or below its floor unless it
	// removes every older one too, so a version found here is exact.
	lsn := ^binary.BigEndian.Uint64(it.Key()[len(p):])
	return lsn > since, nil
}

// Scan calls fn, in key order from start, for every key with a live
// (non-deleted, non-flushed) version at LSN at, until fn returns false.
// The iteration is a consistent point-in-time view.
func (s *Store) Scan(at uint64, start []byte, fn func(key []byte, v Version) bool) error {
	done, err := s.reader()
	if err != nil {
		return err
	}
	defer done()
	lower := []byte{famVersion}
	if start != nil {
		lower = versionPrefix(start)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{famVersion + 1}})
	if err != nil {
		return s.readErr(err)
	}
	defer it.Close()
	floor := s.flushFloor(at)
	valid := it.First()
	var p []byte // the current key's version prefix, reused across keys
	for valid {
		if s.draining.Load() {
			// A scan may feed a snapshot stream for minutes; a reopen or
			// Close must not wait for it.
			return ErrReopening
		}
		raw := it.Key()
		if len(raw) < 1+2+8 {
			return s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", raw)})
		}
		// The version key is the prefix and 8 bytes of LSN: no need to
		// escape the key again, nor to unescape it before the version
		// shows it live — a scan over a range of deleted elements (a
		// set that SPOP emptied) passes many versions it never returns.
		p = append(p[:0], raw[:len(raw)-8]...)
		lsn := ^binary.BigEndian.Uint64(raw[len(raw)-8:])
		if lsn > at {
			// Jump to the newest version at or below at.
			if !it.SeekGE(binary.BigEndian.AppendUint64(p, ^at)) {
				break
			}
			if !bytes.HasPrefix(it.Key(), p) {
				continue // no version of key at or below at; now at the next key
			}
			lsn = ^binary.BigEndian.Uint64(it.Key()[len(p):])
		}
		v, ok := decodeVersion(it.Value())
		if !ok || (!v.Deleted && lsn >= floor) {
			key, _, keyOK := parseVersionKey(it.Key())
			switch {
			case !keyOK:
				return s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", it.Key())})
			case !ok:
				return s.corrupt(&CorruptionError{Dir: s.dir, LSN: lsn, Err: fmt.Errorf("bad version record for key %q", key)})
			}
			v.LSN = lsn
			v.Value = append([]byte(nil), v.Value...)
			if !fn(key, v) {
				return nil
			}
		}
		valid = nextKey(it, p)
	}
	return s.readErr(it.Error())
}

// nextKey moves it from a version of the key whose version prefix is p to
// the first version of the next key. Most keys have one version (GC keeps
// only what readers may need), so stepping is usually one Next; a key with
// more older versions than that is left with a seek, as before. A seek per
// key cost a range read of a hundred list elements most of its time.
func nextKey(it *pebble.Iterator, p []byte) bool {
	valid := it.Next()
	for n := 0; valid && bytes.HasPrefix(it.Key(), p); n++ {
		if n == 2 {
			return it.SeekGE(versionKeyEnd(p))
		}
		valid = it.Next()
	}
	return valid
}

// ExpiredKey is an expiry-index record: the version of Key written at LSN
// expires at ExpireAt.
type ExpiredKey struct {
	Key      []byte
	LSN      uint64
	ExpireAt int64
}

// Expiring returns up to limit index records with ExpireAt <= nowMs.
func (s *Store) Expiring(nowMs int64, limit int) ([]ExpiredKey, error) {
	done, err := s.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	upper := make([]byte, 9)
	upper[0] = famExpiry
	binary.BigEndian.PutUint64(upper[1:], uint64(nowMs)+1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famExpiry}, UpperBound: upper})
	if err != nil {
		return nil, s.readErr(err)
	}
	defer it.Close()
	var out []ExpiredKey
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		k := it.Key()
		key, rest, ok := unescape(k[17:])
		if !ok || len(rest) != 0 {
			return nil, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad expiry key %x", k)})
		}
		out = append(out, ExpiredKey{Key: key, LSN: binary.BigEndian.Uint64(k[9:]), ExpireAt: int64(binary.BigEndian.Uint64(k[1:]))})
	}
	return out, s.readErr(it.Error())
}

// DropExpiring removes expiry-index records (after they were acted on).
func (s *Store) DropExpiring(recs []ExpiredKey) error {
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	b := s.db.NewBatch()
	defer b.Close()
	for _, r := range recs {
		_ = b.Delete(expiryKey(r.ExpireAt, r.LSN, r.Key), nil)
	}
	if err := s.admit("expiry index", b.Len(), shrinks); err != nil {
		return err
	}
	return s.apply("expiry index", b, true)
}

// TruncatePrefix drops log entries up to and including lsn (retention).
// Only applied entries can be dropped.
func (s *Store) TruncatePrefix(lsn uint64) error {
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	s.maint.Lock()
	defer s.maint.Unlock()
	st := s.State()
	if lsn > st.AppliedLSN {
		return fmt.Errorf("storage: cannot truncate log to %d beyond applied LSN %d", lsn, st.AppliedLSN)
	}
	if lsn < st.FirstLSN {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaKey("log_floor"), u64(lsn), nil)
	if err := s.admit("truncate prefix", b.Len(), shrinks); err != nil {
		return err
	}
	if err := s.apply("truncate prefix", b, true); err != nil {
		return fmt.Errorf("storage: truncate prefix: %w", err)
	}
	s.mu.Lock()
	s.st.FirstLSN = lsn + 1
	s.mu.Unlock()
	// The log drops whole segments. Before one goes, Pebble must hold the
	// versions of its entries durably (a crash would otherwise have
	// nothing to replay them from): flush first, and only once two
	// segments' worth lie below the floor — so that the oldest segment is
	// surely whole below it (a segment may overrun its size by a batch)
	// and retention, which runs every second, rarely costs a flush.
	if s.wal.SizeBetween(s.wal.FirstLSN(), lsn) < 2*uint64(s.segmentBytes) {
		return nil
	}
	if err := s.flushPebble("truncate prefix"); err != nil {
		return err
	}
	if err := s.wal.TruncateFront(lsn); err != nil {
		return s.walErr("truncate prefix", err)
	}
	return nil
}

// TruncateSuffix removes every entry above lsn together with the versions,
// expiry records and flush markers they wrote, and returns the removed
// entries oldest first (for a rollback file). It is used when a follower's
// log diverges from a new leader's.
func (s *Store) TruncateSuffix(lsn uint64) ([]Entry, error) {
	done, err := s.writer()
	if err != nil {
		return nil, err
	}
	defer done()
	// Versions above lsn go: the key states cached for the count may be
	// theirs (before and after the truncation both).
	s.versionsRewritten()
	defer s.versionsRewritten()
	s.maint.Lock()
	defer s.maint.Unlock()
	st := s.State()
	if lsn >= st.LastLSN {
		return nil, nil
	}
	s.mu.RLock()
	gcFloor := s.gcFloor
	s.mu.RUnlock()
	if lsn < gcFloor {
		return nil, fmt.Errorf("%w: cannot roll back to %d: versions at or below %d were garbage-collected", ErrCompacted, lsn, gcFloor)
	}
	if lsn+1 < st.FirstLSN {
		return nil, fmt.Errorf("%w: cannot roll back to %d, log starts at %d", ErrCompacted, lsn, st.FirstLSN)
	}
	var removed []Entry
	if err := s.readLog(lsn+1, st.LastLSN, 0, func(e Entry) error {
		removed = append(removed, e)
		return nil
	}); err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, e := range removed {
		if e.LSN > st.AppliedLSN {
			continue
		}
		for _, op := range e.Ops {
			switch op.Kind {
			case OpFlush:
				_ = b.Delete(flushKey(e.LSN), nil)
			default:
				_ = b.Delete(versionKey(op.Key, e.LSN), nil)
				if op.Kind == OpSet && op.ExpireAt != 0 {
					_ = b.Delete(expiryKey(op.ExpireAt, e.LSN, op.Key), nil)
				}
			}
		}
	}
	s.mu.RLock()
	epochs := append([]EpochStart(nil), s.epochs...)
	s.mu.RUnlock()
	for len(epochs) > 0 && epochs[len(epochs)-1].FirstLSN > lsn {
		epochs = epochs[:len(epochs)-1]
	}
	lastEpoch := uint64(0)
	if len(epochs) > 0 {
		lastEpoch = epochs[len(epochs)-1].Epoch
	}
	_ = b.Set(metaKey("epochs"), encodeEpochs(epochs), nil)
	if lsn < st.AppliedLSN {
		if err := s.rollbackCount(b, lsn); err != nil {
			return nil, err
		}
	}
	applied := min(st.AppliedLSN, lsn)
	commit := min(st.CommitLSN, lsn)
	_ = b.Set(metaKey("applied_lsn"), u64(applied), nil)
	_ = b.Set(metaKey("commit_lsn"), u64(commit), nil)
	if err := s.admit("truncate suffix", b.Len(), shrinks); err != nil {
		return nil, err
	}
	// Pebble forgets the suffix durably before the log does: a crash in
	// between replays the suffix, and the leader has it cut again; the
	// other order could leave the suffix's versions in Pebble under LSNs
	// the log reuses for different entries.
	if err := s.apply("truncate suffix", b, true); err != nil {
		return nil, fmt.Errorf("storage: truncate suffix: %w", err)
	}
	if err := s.flushPebble("truncate suffix"); err != nil {
		return nil, s.degrade("truncate suffix", err)
	}
	if err := s.wal.TruncateBack(lsn); err != nil {
		return nil, s.walErr("truncate suffix", err)
	}
	s.mu.Lock()
	// The sync covered everything before it: the log up to lsn is durable.
	s.durable = lsn
	s.st.LastLSN, s.st.LastEpoch = lsn, lastEpoch
	s.st.AppliedLSN, s.st.CommitLSN = applied, commit
	s.epochs = epochs
	fl := s.flushes[:0:0]
	for _, f := range s.flushes {
		if f <= lsn {
			fl = append(fl, f)
		}
	}
	s.flushes = fl
	s.mu.Unlock()
	return removed, nil
}

// GC removes versions that no read at an LSN >= floor can observe: for each
// key, everything older than its newest version at or below floor, and that
// version too when it is a tombstone or hidden by a FLUSHALL at or below
// floor. It returns the number of versions removed. The caller guarantees no
// read below floor happens from now on.
func (s *Store) GC(floor uint64) (int, error) {
	done, err := s.writer()
	if err != nil {
		return 0, err
	}
	defer done()
	s.maint.Lock()
	defer s.maint.Unlock()
	// Only up to the durable log: a deletion justified by an entry a crash
	// could still lose (Pebble may flush the deletion first) would show
	// reads at the LSNs below that entry less than was there.
	s.mu.RLock()
	floor = min(floor, s.st.AppliedLSN, s.durable)
	s.mu.RUnlock()
	s.mu.RLock()
	prev := s.gcFloor
	s.mu.RUnlock()
	if floor > prev {
		// Recorded before the first deletion: a rollback below a floor whose
		// history is (even partly) gone must be refused after a crash too.
		fb := s.db.NewBatch()
		_ = fb.Set(metaKey("gc_floor"), u64(floor), nil)
		// Pebble flushes batches in order, so the floor is durable before
		// any deletion that follows it.
		err := s.admit("gc", fb.Len(), shrinks)
		if err == nil {
			err = s.apply("gc floor", fb, true)
		}
		_ = fb.Close()
		if err != nil {
			return 0, fmt.Errorf("storage: gc: record floor: %w", err)
		}
		s.mu.Lock()
		s.gcFloor = floor
		s.mu.Unlock()
	}
	if s.garbageLSN.Load() <= s.gcScanned {
		// Nothing became collectable since the last scan: only the
		// markers and deltas below the floor go.
		b := s.db.NewBatch()
		defer func() { _ = b.Close() }()
		return 0, s.gcMarkers(b, floor)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: []byte{famVersion + 1}})
	if err != nil {
		return 0, s.readErr(err)
	}
	defer it.Close()
	ff := s.flushFloor(floor)
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	removed := 0
	var curPrefix []byte
	seenVisible := false // for the current key: passed its newest version <= floor
	for it.First(); it.Valid(); it.Next() {
		if s.draining.Load() {
			return removed, ErrReopening // the next round carries on
		}
		key, lsn, ok := parseVersionKey(it.Key())
		if !ok {
			return removed, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", it.Key())})
		}
		if curPrefix == nil || !bytes.HasPrefix(it.Key(), curPrefix) || len(it.Key()) != len(curPrefix)+8 {
			curPrefix = versionPrefix(key)
			seenVisible = false
		}
		if lsn > floor {
			continue
		}
		drop := seenVisible
		if !seenVisible {
			seenVisible = true
			v, _ := decodeVersion(it.Value())
			drop = v.Deleted || lsn < ff
		}
		if drop {
			_ = b.Delete(it.Key(), nil)
			removed++
			if b.Len() > 4<<20 {
				if err := s.gcApply(b); err != nil {
					return removed, err
				}
				_ = b.Close()
				b = s.db.NewBatch()
			}
		}
	}
	if err := it.Error(); err != nil {
		return removed, fmt.Errorf("storage: gc: %w", s.readErr(err))
	}
	if err := s.gcMarkers(b, floor); err != nil {
		return removed, err
	}
	s.gcScanned = floor
	s.gcScans.Add(1)
	return removed, nil
}

// gcMarkers deletes, in b and with what b already holds, the FLUSHALL
// markers and count deltas at or below floor, and forgets those FLUSHALLs.
func (s *Store) gcMarkers(b *pebble.Batch, floor uint64) error {
	// Flush markers at or below floor now hide nothing that still exists;
	// no read needs the count deltas there either.
	_ = b.DeleteRange(flushKey(0), flushKey(floor+1), nil)
	_ = b.DeleteRange(countDeltaKey(0), countDeltaKey(floor+1), nil)
	if err := s.gcApply(b); err != nil {
		return err
	}
	s.mu.Lock()
	fl := s.flushes[:0:0]
	for _, f := range s.flushes {
		if f > floor {
			fl = append(fl, f)
		}
	}
	s.flushes = fl
	s.mu.Unlock()
	return nil
}

// noteGarbage records that the entry at lsn may have made a version
// collectable (see garbageLSN).
func (s *Store) noteGarbage(lsn uint64) {
	for {
		cur := s.garbageLSN.Load()
		if lsn <= cur || s.garbageLSN.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

func (s *Store) gcApply(b *pebble.Batch) error {
	if err := s.admit("gc", b.Len(), shrinks); err != nil {
		return err
	}
	if err := s.apply("gc", b, true); err != nil {
		return fmt.Errorf("storage: gc: %w", err)
	}
	return nil
}

var _ io.Closer = (*Store)(nil)

// ReadLogRaw calls fn with the encoded records from..to (inclusive) in
// order, without decoding them (the receiver verifies each checksum);
// maxBytes > 0 stops after roughly that many bytes (at least one record).
// fn must not retain raw.
func (s *Store) ReadLogRaw(from, to uint64, maxBytes int, fn func(lsn uint64, raw []byte) error) error {
	done, err := s.reader()
	if err != nil {
		return err
	}
	defer done()
	return s.readLogRaw(from, to, maxBytes, fn)
}

func (s *Store) readLogRaw(from, to uint64, maxBytes int, fn func(lsn uint64, raw []byte) error) error {
	if from > to {
		return nil
	}
	st := s.State()
	if from < st.FirstLSN {
		return fmt.Errorf("%w: want %d, log starts at %d", ErrCompacted, from, st.FirstLSN)
	}
	if to = min(to, st.LastLSN); from > to {
		return nil
	}
	want := from
	err := s.wal.Read(from, to, maxBytes, func(lsn uint64, raw []byte) error {
		if s.draining.Load() {
			return ErrReopening
		}
		if lsn != want {
			return s.corrupt(&CorruptionError{Dir: s.dir, LSN: want, Err: fmt.Errorf("log holds LSN %d where %d belongs", lsn, want)})
		}
		want++
		return fn(lsn, raw)
	})
	if err != nil {
		if errors.Is(err, wal.ErrCompacted) {
			return fmt.Errorf("%w: want %d, log starts at %d", ErrCompacted, want, s.State().FirstLSN)
		}
		return s.walReadErr(err)
	}
	if want <= to && want <= s.State().LastLSN && maxBytes <= 0 {
		return s.corrupt(&CorruptionError{Dir: s.dir, LSN: want, Err: errors.New("entry missing from log")})
	}
	return nil
}

// walReadErr maps an error from reading the log files.
func (s *Store) walReadErr(err error) error {
	var wce *wal.CorruptionError
	switch {
	case errors.Is(err, wal.ErrClosed):
		return ErrClosed
	case errors.As(err, &wce):
		return s.corrupt(&CorruptionError{Dir: s.dir, Path: filepath.Join(wce.Dir, wce.Segment), LSN: wce.LSN, Err: err})
	}
	return err
}
