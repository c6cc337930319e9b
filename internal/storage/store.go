package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Latest reads the newest version regardless of commit state. Only the
// leader's write path uses it: it must see its own uncommitted entries.
const Latest = math.MaxUint64

// CorruptionError reports a log record that failed its checksum or could not
// be decoded.
type CorruptionError struct {
	Dir string
	LSN uint64
	Err error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("storage: corrupt log entry at LSN %d in %s: %v", e.LSN, e.Dir, e.Err)
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
}

// Expired tells whether the version is past its expiry at nowMs.
func (v Version) Expired(nowMs int64) bool { return v.ExpireAt != 0 && v.ExpireAt <= nowMs }

// Options configure Open.
type Options struct {
	Logger *slog.Logger
	// CacheBytes is Pebble's block cache size; 0 picks 64 MiB.
	CacheBytes int64
}

// Store is the node's durable state. Append and ApplyUpTo belong to one
// writer at a time (the leader's sequencer, or the follower's receive and
// apply goroutines of one session, which never apply and truncate at once);
// GC, TruncatePrefix, TruncateSuffix and snapshot install serialise among
// themselves and may run beside the writer; SetCommitLSN, the expiry index
// calls and all reads are safe concurrently with everything.
type Store struct {
	db     *pebble.DB
	dir    string
	log    *slog.Logger
	closed atomic.Bool

	mu      sync.RWMutex
	st      State
	epochs  []EpochStart
	flushes []uint64 // sorted FLUSHALL LSNs still relevant
	// gcFloor is the highest floor GC has collected at (persisted before
	// anything is deleted): history below it is gone, so the log can no
	// longer be rolled back below it.
	gcFloor uint64

	// maint serialises the calls that rewrite history (GC, truncation,
	// snapshot install): they run from different goroutines.
	maint sync.Mutex
}

// Open opens (or creates) the store in dir and recovers its positions.
func Open(dir string, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 64 << 20
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache: cache, Logger: pebbleLogger{o.Logger}, Comparer: comparer,
		// Fewer, larger L0 flushes under write-heavy load.
		MemTableSize: 64 << 20,
	}
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	popts.EnsureDefaults()
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, log: o.Logger}
	if err := s.recover(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(fmt.Sprintf(format, args...))
}

func (s *Store) getMetaU64(name string) (uint64, error) {
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: read meta %s: %w", name, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, &CorruptionError{Dir: s.dir, Err: fmt.Errorf("meta %s has %d bytes", name, len(v))}
	}
	return binary.BigEndian.Uint64(v), nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func (s *Store) recover() error {
	if err := s.recoverInstall(); err != nil {
		return err
	}
	floor, err := s.getMetaU64("log_floor")
	if err != nil {
		return err
	}
	applied, err := s.getMetaU64("applied_lsn")
	if err != nil {
		return err
	}
	commit, err := s.getMetaU64("commit_lsn")
	if err != nil {
		return err
	}
	if s.gcFloor, err = s.getMetaU64("gc_floor"); err != nil {
		return err
	}
	if raw, err := s.GetMeta("epochs"); err != nil {
		return err
	} else if raw != nil {
		if s.epochs, err = decodeEpochs(raw); err != nil {
			return &CorruptionError{Dir: s.dir, Err: fmt.Errorf("epoch history: %w", err)}
		}
	}
	st := State{FirstLSN: floor + 1, LastLSN: floor, AppliedLSN: applied, CommitLSN: commit}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famLog}, UpperBound: []byte{famLog + 1}})
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if it.Last() {
		e, err := s.decodeAt(it.Key(), it.Value())
		if err != nil {
			_ = it.Close()
			return err
		}
		st.LastLSN, st.LastEpoch = e.LSN, e.Epoch
		it.First()
		st.FirstLSN = binary.BigEndian.Uint64(it.Key()[1:])
	} else if len(s.epochs) > 0 {
		st.LastEpoch = s.epochs[len(s.epochs)-1].Epoch
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if st.AppliedLSN > st.LastLSN {
		st.LastLSN = st.AppliedLSN // a snapshot was installed with an empty log
	}
	if st.CommitLSN > st.LastLSN {
		st.CommitLSN = st.LastLSN
	}
	fit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famFlush}, UpperBound: []byte{famFlush + 1}})
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	for fit.First(); fit.Valid(); fit.Next() {
		s.flushes = append(s.flushes, binary.BigEndian.Uint64(fit.Key()[1:]))
	}
	if err := fit.Close(); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	s.st = st
	s.log.Info("storage recovered", "dir", s.dir, "first_lsn", st.FirstLSN, "last_lsn", st.LastLSN,
		"applied_lsn", st.AppliedLSN, "commit_lsn", st.CommitLSN, "last_epoch", st.LastEpoch)
	return nil
}

func (s *Store) decodeAt(k, v []byte) (Entry, error) {
	lsn := binary.BigEndian.Uint64(k[1:])
	e, err := DecodeEntry(v)
	if err != nil {
		return e, &CorruptionError{Dir: s.dir, LSN: lsn, Err: err}
	}
	if e.LSN != lsn {
		return e, &CorruptionError{Dir: s.dir, LSN: lsn, Err: fmt.Errorf("record holds LSN %d", e.LSN)}
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
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	return s.db.Close()
}

// GetMeta returns a metadata value or nil.
func (s *Store) GetMeta(name string) ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: read meta %s: %w", name, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// PutMeta durably stores a metadata value for upper layers.
func (s *Store) PutMeta(name string, value []byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.db.Set(metaKey(name), value, pebble.Sync); err != nil {
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
	b    *pebble.Batch
	sync bool
}

// Wait blocks until the batch is durable (if it was synced) and releases it.
// It must be called exactly once.
func (p *Pending) Wait() error {
	if p.b == nil {
		return nil
	}
	var err error
	if p.sync {
		err = p.b.SyncWait()
	}
	if cerr := p.b.Close(); err == nil && cerr != nil {
		err = cerr
	}
	p.b = nil
	if err != nil {
		return fmt.Errorf("storage: sync: %w", err)
	}
	return nil
}

// Append adds entries at LastLSN+1… in one atomic batch. With Sync the batch
// is visible on return and durable once Pending.Wait returns, so the caller
// can prepare the next batch while this one is fsynced (pipelined group
// commit; Pebble merges concurrent fsyncs).
func (s *Store) Append(entries []Entry, o AppendOptions) (*Pending, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if len(entries) == 0 {
		return &Pending{}, nil
	}
	s.mu.RLock()
	st, epochs := s.st, s.epochs
	s.mu.RUnlock()
	if o.Apply && st.AppliedLSN != st.LastLSN {
		return nil, fmt.Errorf("storage: append with apply while applied %d < last %d", st.AppliedLSN, st.LastLSN)
	}
	b := s.db.NewBatch()
	var buf []byte
	newEpochs := epochs
	var newFlushes []uint64
	prevEpoch := st.LastEpoch
	for i := range entries {
		e := &entries[i]
		if e.LSN != st.LastLSN+1+uint64(i) {
			_ = b.Close()
			return nil, fmt.Errorf("%w: got LSN %d, want %d", ErrNotContiguous, e.LSN, st.LastLSN+1+uint64(i))
		}
		if e.Epoch < prevEpoch {
			_ = b.Close()
			return nil, fmt.Errorf("storage: entry %d has epoch %d below previous epoch %d", e.LSN, e.Epoch, prevEpoch)
		}
		if e.Epoch > prevEpoch || len(newEpochs) == 0 {
			newEpochs = append(append([]EpochStart(nil), newEpochs...), EpochStart{Epoch: e.Epoch, FirstLSN: e.LSN})
			prevEpoch = e.Epoch
		}
		buf = AppendEntry(buf[:0], e)
		_ = b.Set(logKey(e.LSN), buf, nil)
		if o.Apply {
			newFlushes = s.writeVersions(b, e, newFlushes)
		}
	}
	last := entries[len(entries)-1]
	if len(newEpochs) != len(epochs) {
		_ = b.Set(metaKey("epochs"), encodeEpochs(newEpochs), nil)
	}
	if o.Apply {
		_ = b.Set(metaKey("applied_lsn"), u64(last.LSN), nil)
	}
	commit := st.CommitLSN
	if o.CommitLSN > commit {
		commit = min(o.CommitLSN, last.LSN)
		_ = b.Set(metaKey("commit_lsn"), u64(commit), nil)
	}
	var err error
	if o.Sync {
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	} else {
		err = s.db.Apply(b, pebble.NoSync)
	}
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("storage: append: %w", err)
	}
	s.mu.Lock()
	s.st.LastLSN, s.st.LastEpoch = last.LSN, last.Epoch
	if o.Apply {
		s.st.AppliedLSN = last.LSN
	}
	s.st.CommitLSN = max(s.st.CommitLSN, commit)
	s.epochs = newEpochs
	if len(newFlushes) > 0 {
		s.flushes = append(append([]uint64(nil), s.flushes...), newFlushes...)
	}
	s.mu.Unlock()
	if !o.Sync {
		return &Pending{b: b}, nil
	}
	return &Pending{b: b, sync: true}, nil
}

func (s *Store) writeVersions(b *pebble.Batch, e *Entry, flushes []uint64) []uint64 {
	// Ops apply in order. A FLUSH marker at LSN f hides versions below f,
	// not the versions written at f itself, so ops after the entry's last
	// FLUSH stay visible and ops before it must not be written at all.
	first := 0
	for i := range e.Ops {
		if e.Ops[i].Kind == OpFlush {
			first = i
		}
	}
	for i := first; i < len(e.Ops); i++ {
		op := &e.Ops[i]
		switch op.Kind {
		case OpFlush:
			_ = b.Set(flushKey(e.LSN), nil, nil)
			flushes = append(flushes, e.LSN)
		default:
			_ = b.Set(versionKey(op.Key, e.LSN), encodeVersion(op), nil)
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
	if s.closed.Load() {
		return ErrClosed
	}
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
	err := s.ReadLog(st.AppliedLSN+1, lsn, 0, func(e Entry) error {
		flushes = s.writeVersions(b, &e, flushes)
		return nil
	})
	if err != nil {
		return err
	}
	_ = b.Set(metaKey("applied_lsn"), u64(lsn), nil)
	if err := s.db.Apply(b, pebble.NoSync); err != nil {
		return fmt.Errorf("storage: apply: %w", err)
	}
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
	if s.closed.Load() {
		return ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lsn = min(lsn, s.st.LastLSN)
	if lsn <= s.st.CommitLSN {
		return nil
	}
	if err := s.db.Set(metaKey("commit_lsn"), u64(lsn), pebble.NoSync); err != nil {
		return fmt.Errorf("storage: record commit LSN: %w", err)
	}
	s.st.CommitLSN = lsn
	return nil
}

// Sync makes every write so far durable.
func (s *Store) Sync() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("storage: sync: %w", err)
	}
	return nil
}

// ReadLog calls fn for entries from..to (inclusive) in order; maxBytes > 0
// stops after roughly that many encoded bytes (at least one entry).
func (s *Store) ReadLog(from, to uint64, maxBytes int, fn func(Entry) error) error {
	return s.ReadLogRaw(from, to, maxBytes, func(lsn uint64, raw []byte) error {
		e, err := s.decodeAt(logKey(lsn), raw)
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
	if s.closed.Load() {
		return Version{}, false, ErrClosed
	}
	p := versionPrefix(key)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: versionKeyEnd(p)})
	if err != nil {
		return Version{}, false, fmt.Errorf("storage: %w", err)
	}
	defer it.Close()
	// A prefix seek consults the bloom filters: sstables without any
	// version of key are skipped.
	if !it.SeekPrefixGE(binary.BigEndian.AppendUint64(p, ^at)) {
		return Version{}, false, it.Error()
	}
	lsn := ^binary.BigEndian.Uint64(it.Key()[len(p):])
	v, ok := decodeVersion(it.Value())
	if !ok {
		return Version{}, false, &CorruptionError{Dir: s.dir, LSN: lsn, Err: fmt.Errorf("bad version record for key %q", key)}
	}
	if v.Deleted || lsn < s.flushFloor(at) {
		return Version{}, false, nil
	}
	v.LSN = lsn
	v.Value = append([]byte(nil), v.Value...)
	return v, true, nil
}

// Scan calls fn, in key order from start, for every key with a live
// (non-deleted, non-flushed) version at LSN at, until fn returns false.
// The iteration is a consistent point-in-time view.
func (s *Store) Scan(at uint64, start []byte, fn func(key []byte, v Version) bool) error {
	if s.closed.Load() {
		return ErrClosed
	}
	lower := []byte{famVersion}
	if start != nil {
		lower = versionPrefix(start)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{famVersion + 1}})
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer it.Close()
	floor := s.flushFloor(at)
	valid := it.First()
	for valid {
		key, lsn, ok := parseVersionKey(it.Key())
		if !ok {
			return &CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", it.Key())}
		}
		p := versionPrefix(key)
		if lsn > at {
			// Jump to the newest version at or below at.
			if !it.SeekGE(binary.BigEndian.AppendUint64(p, ^at)) {
				break
			}
			if !bytes.HasPrefix(it.Key(), p) {
				continue // no version of key at or below at; now at the next key
			}
			_, lsn, _ = parseVersionKey(it.Key())
		}
		v, ok := decodeVersion(it.Value())
		if !ok {
			return &CorruptionError{Dir: s.dir, LSN: lsn, Err: fmt.Errorf("bad version record for key %q", key)}
		}
		if !v.Deleted && lsn >= floor {
			v.LSN = lsn
			v.Value = append([]byte(nil), v.Value...)
			if !fn(key, v) {
				return nil
			}
		}
		valid = it.SeekGE(versionKeyEnd(p))
	}
	return it.Error()
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
	if s.closed.Load() {
		return nil, ErrClosed
	}
	upper := make([]byte, 9)
	upper[0] = famExpiry
	binary.BigEndian.PutUint64(upper[1:], uint64(nowMs)+1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famExpiry}, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	defer it.Close()
	var out []ExpiredKey
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		k := it.Key()
		key, rest, ok := unescape(k[17:])
		if !ok || len(rest) != 0 {
			return nil, &CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad expiry key %x", k)}
		}
		out = append(out, ExpiredKey{Key: key, LSN: binary.BigEndian.Uint64(k[9:]), ExpireAt: int64(binary.BigEndian.Uint64(k[1:]))})
	}
	return out, it.Error()
}

// DropExpiring removes expiry-index records (after they were acted on).
func (s *Store) DropExpiring(recs []ExpiredKey) error {
	if s.closed.Load() {
		return ErrClosed
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, r := range recs {
		_ = b.Delete(expiryKey(r.ExpireAt, r.LSN, r.Key), nil)
	}
	if err := s.db.Apply(b, pebble.NoSync); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// TruncatePrefix drops log entries up to and including lsn (retention).
// Only applied entries can be dropped.
func (s *Store) TruncatePrefix(lsn uint64) error {
	if s.closed.Load() {
		return ErrClosed
	}
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
	_ = b.DeleteRange(logKey(0), logKey(lsn+1), nil)
	_ = b.Set(metaKey("log_floor"), u64(lsn), nil)
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return fmt.Errorf("storage: truncate prefix: %w", err)
	}
	s.mu.Lock()
	s.st.FirstLSN = lsn + 1
	s.mu.Unlock()
	return nil
}

// TruncateSuffix removes every entry above lsn together with the versions,
// expiry records and flush markers they wrote, and returns the removed
// entries oldest first (for a rollback file). It is used when a follower's
// log diverges from a new leader's.
func (s *Store) TruncateSuffix(lsn uint64) ([]Entry, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
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
	if err := s.ReadLog(lsn+1, st.LastLSN, 0, func(e Entry) error {
		removed = append(removed, e)
		return nil
	}); err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, e := range removed {
		_ = b.Delete(logKey(e.LSN), nil)
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
	applied := min(st.AppliedLSN, lsn)
	commit := min(st.CommitLSN, lsn)
	_ = b.Set(metaKey("applied_lsn"), u64(applied), nil)
	_ = b.Set(metaKey("commit_lsn"), u64(commit), nil)
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return nil, fmt.Errorf("storage: truncate suffix: %w", err)
	}
	s.mu.Lock()
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
	if s.closed.Load() {
		return 0, ErrClosed
	}
	s.maint.Lock()
	defer s.maint.Unlock()
	floor = min(floor, s.State().AppliedLSN)
	s.mu.RLock()
	prev := s.gcFloor
	s.mu.RUnlock()
	if floor > prev {
		// Durable before the first deletion: a rollback below a floor whose
		// history is (even partly) gone must be refused after a crash too.
		if err := s.db.Set(metaKey("gc_floor"), u64(floor), pebble.Sync); err != nil {
			return 0, fmt.Errorf("storage: gc: record floor: %w", err)
		}
		s.mu.Lock()
		s.gcFloor = floor
		s.mu.Unlock()
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: []byte{famVersion + 1}})
	if err != nil {
		return 0, fmt.Errorf("storage: %w", err)
	}
	defer it.Close()
	ff := s.flushFloor(floor)
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	removed := 0
	var curPrefix []byte
	seenVisible := false // for the current key: passed its newest version <= floor
	for it.First(); it.Valid(); it.Next() {
		key, lsn, ok := parseVersionKey(it.Key())
		if !ok {
			return removed, &CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", it.Key())}
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
				if err := s.db.Apply(b, pebble.NoSync); err != nil {
					return removed, fmt.Errorf("storage: gc: %w", err)
				}
				_ = b.Close()
				b = s.db.NewBatch()
			}
		}
	}
	if err := it.Error(); err != nil {
		return removed, fmt.Errorf("storage: gc: %w", err)
	}
	// Flush markers at or below floor now hide nothing that still exists.
	_ = b.DeleteRange(flushKey(0), flushKey(floor+1), nil)
	if err := s.db.Apply(b, pebble.NoSync); err != nil {
		return removed, fmt.Errorf("storage: gc: %w", err)
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
	return removed, nil
}

var _ io.Closer = (*Store)(nil)

// ReadLogRaw calls fn with the encoded records from..to (inclusive) in
// order, without decoding them (the receiver verifies each checksum);
// maxBytes > 0 stops after roughly that many bytes (at least one record).
// fn must not retain raw.
func (s *Store) ReadLogRaw(from, to uint64, maxBytes int, fn func(lsn uint64, raw []byte) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if from > to {
		return nil
	}
	st := s.State()
	if from < st.FirstLSN {
		return fmt.Errorf("%w: want %d, log starts at %d", ErrCompacted, from, st.FirstLSN)
	}
	// Nothing exists beyond LastLSN; clamping also keeps logKey(to+1) from
	// wrapping to logKey(0) when to is math.MaxUint64 ("to the end").
	if to = min(to, st.LastLSN); from > to {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(from), UpperBound: logKey(to + 1)})
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer it.Close()
	want, total := from, 0
	for it.First(); it.Valid(); it.Next() {
		if lsn := binary.BigEndian.Uint64(it.Key()[1:]); lsn != want {
			return &CorruptionError{Dir: s.dir, LSN: want, Err: errors.New("entry missing from log")}
		}
		if err := fn(want, it.Value()); err != nil {
			return err
		}
		total += len(it.Value())
		want++
		if maxBytes > 0 && total >= maxBytes {
			return nil
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if st := s.State(); want <= to && want <= st.LastLSN {
		// The log should hold want: either a prefix truncation raced with
		// us, or the record is missing.
		if want < st.FirstLSN {
			return fmt.Errorf("%w: want %d, log starts at %d", ErrCompacted, want, st.FirstLSN)
		}
		return &CorruptionError{Dir: s.dir, LSN: want, Err: errors.New("entry missing from log")}
	}
	return nil
}
