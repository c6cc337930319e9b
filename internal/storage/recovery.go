package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Recovery at Open: moving a log kept in Pebble by older versions into the
// log files, reading the positions, and replaying the log into Pebble
// (see doc.go for why Pebble may be behind or ahead of the log).

// loaded is the store's state as read from a database instance.
type loaded struct {
	st       State
	epochs   []EpochStart
	flushes  []uint64
	gcFloor  uint64
	replayed uint64 // entries whose versions were written again
}

// migrateLog moves a log kept as Pebble keys (the layout before the log
// had its own files) into the segment files, then deletes the keys. A
// crash in between repeats the whole move: the keys stay until the copy
// is synced.
func (s *Store) migrateLog() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famLog}, UpperBound: []byte{famLog + 1}})
	if err != nil {
		return s.readErr(err)
	}
	defer it.Close()
	if !it.First() {
		return s.readErr(it.Error())
	}
	first := binaryLSN(it.Key())
	if err := s.wal.Reset(first); err != nil {
		return s.walErr("migrate log", err)
	}
	var payloads [][]byte
	size, next, n := 0, first, 0
	flush := func() error {
		if len(payloads) == 0 {
			return nil
		}
		if err := s.wal.AppendBatch(next, payloads); err != nil {
			return s.walErr("migrate log", err)
		}
		next += uint64(len(payloads))
		payloads, size = payloads[:0], 0
		return nil
	}
	for ; it.Valid(); it.Next() {
		if _, err := s.decodeAt(binaryLSN(it.Key()), it.Value()); err != nil {
			return err
		}
		if binaryLSN(it.Key()) != next+uint64(len(payloads)) {
			return s.corrupt(&CorruptionError{Dir: s.dir, LSN: next + uint64(len(payloads)), Err: errors.New("entry missing from log")})
		}
		payloads = append(payloads, append([]byte(nil), it.Value()...))
		size += len(it.Value())
		n++
		if size >= 4<<20 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := firstErr(it.Error(), flush()); err != nil {
		return err
	}
	if err := s.wal.Sync(); err != nil {
		return s.walErr("migrate log", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange([]byte{famLog}, []byte{famLog + 1}, nil)
	if err := s.applyDurable("migrate log", b); err != nil {
		return err
	}
	s.log.Info("storage: moved the replication log out of Pebble into its own files", "dir", s.dir, "entries", n)
	return nil
}

// load reads the positions from the current instance (finishing the wipe
// of an interrupted snapshot install first). The caller owns the instance
// exclusively.
func (s *Store) load() (loaded, error) {
	var l loaded
	// A table an interrupted install was writing is not in Pebble: drop it.
	s.inst.mu.Lock()
	s.installAbort()
	err := s.removeInstallTables()
	s.inst.mu.Unlock()
	if err != nil {
		return l, err
	}
	if err := s.recoverInstall(); err != nil {
		return l, err
	}
	floor, err := s.getMetaU64("log_floor")
	if err != nil {
		return l, err
	}
	applied, err := s.getMetaU64("applied_lsn")
	if err != nil {
		return l, err
	}
	commit, err := s.getMetaU64("commit_lsn")
	if err != nil {
		return l, err
	}
	if l.gcFloor, err = s.getMetaU64("gc_floor"); err != nil {
		return l, err
	}
	if raw, err := s.getMeta("epochs"); err != nil {
		return l, err
	} else if raw != nil {
		if l.epochs, err = decodeEpochs(raw); err != nil {
			return l, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("epoch history: %w", err)})
		}
	}
	first, last := s.wal.FirstLSN(), s.wal.LastLSN()
	st := State{FirstLSN: first, LastLSN: last, AppliedLSN: applied, CommitLSN: commit}
	// The log keeps whole segments; the floor retention recorded hides the
	// entries below it that a segment still holds.
	if floor >= first && floor <= last {
		st.FirstLSN = floor + 1
	}
	if applied > last {
		// Pebble flushed versions of entries whose log records never
		// reached the disk (written to the memtable before their fsync,
		// then a crash): never acknowledged, so they go.
		if err := s.dropAbove(last); err != nil {
			return l, err
		}
		applied, st.AppliedLSN = last, last
	}
	if applied+1 < first {
		return l, s.corrupt(&CorruptionError{Dir: s.dir, LSN: applied + 1,
			Err: fmt.Errorf("the data is at LSN %d but the log starts at %d", applied, first)})
	}
	// Pebble's epoch history is as durable as its applied LSN; the rest is
	// read off the log below.
	recorded := len(l.epochs)
	for len(l.epochs) > 0 && l.epochs[len(l.epochs)-1].FirstLSN > applied {
		l.epochs = l.epochs[:len(l.epochs)-1]
	}
	trimmed := len(l.epochs) != recorded
	fit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famFlush}, UpperBound: []byte{famFlush + 1}})
	if err != nil {
		return l, s.readErr(err)
	}
	for fit.First(); fit.Valid(); fit.Next() {
		l.flushes = append(l.flushes, binaryLSN(fit.Key()))
	}
	if err := firstErr(fit.Error(), fit.Close()); err != nil {
		return l, s.readErr(err)
	}
	if err := s.replay(&l, &st); err != nil {
		return l, err
	}
	if err := s.ensureCount(st.AppliedLSN); err != nil {
		return l, err
	}
	if last >= first && st.AppliedLSN >= last {
		// The replay read nothing: check the newest record, whose loss
		// would otherwise go unseen until a follower asks for it.
		found := false
		err := s.wal.Read(last, last, 0, func(lsn uint64, raw []byte) error {
			found = true
			_, err := s.decodeAt(lsn, raw)
			return err
		})
		if err != nil {
			return l, s.walReadErr(err)
		}
		if !found {
			return l, s.corrupt(&CorruptionError{Dir: s.dir, LSN: last, Err: errors.New("entry missing from log")})
		}
	}
	if len(l.epochs) > 0 {
		st.LastEpoch = l.epochs[len(l.epochs)-1].Epoch
	}
	// Positions beyond the recovered log (its unsynced tail was lost in a
	// crash) would describe entries that no longer exist, and new entries
	// will reuse those LSNs: a recorded commit LSN or retention floor there
	// would later claim them. Record the corrected ones durably.
	fix := s.db.NewBatch()
	defer fix.Close()
	if st.CommitLSN > st.LastLSN {
		st.CommitLSN = st.LastLSN
		_ = fix.Set(metaKey("commit_lsn"), u64(st.CommitLSN), nil)
	}
	if floor > last {
		_ = fix.Set(metaKey("log_floor"), u64(st.FirstLSN-1), nil)
	}
	if trimmed {
		// Epoch starts of lost entries: the LSNs may come back with other
		// epochs.
		_ = fix.Set(metaKey("epochs"), encodeEpochs(l.epochs), nil)
	}
	if !fix.Empty() {
		if err := s.applyDurable("correct positions after a crash", fix); err != nil {
			return l, err
		}
	}
	l.st = st
	return l, nil
}

// replay writes the versions of the log entries above the applied LSN
// again (Pebble lost them with its memtable in a crash) and rebuilds the
// epoch history from those entries. A delayed replica applies only the
// entries it would have by now.
func (s *Store) replay(l *loaded, st *State) error {
	if st.AppliedLSN >= st.LastLSN {
		return nil
	}
	lastEpoch := uint64(0)
	if len(l.epochs) > 0 {
		lastEpoch = l.epochs[len(l.epochs)-1].Epoch
	}
	cutoff := int64(math.MaxInt64)
	if s.applyDelay > 0 {
		cutoff = time.Now().Add(-s.applyDelay).UnixNano()
	}
	epochsBefore := len(l.epochs)
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	applying := true
	var vs versionScratch
	applied := st.AppliedLSN
	cnt := s.newCounter(applied, l.flushes)
	defer cnt.close()
	commitBatch := func() error {
		if applied > st.AppliedLSN {
			if err := cnt.commit(b); err != nil {
				return err
			}
			_ = b.Set(metaKey("applied_lsn"), u64(applied), nil)
		}
		if len(l.epochs) != epochsBefore {
			_ = b.Set(metaKey("epochs"), encodeEpochs(l.epochs), nil)
			epochsBefore = len(l.epochs)
		}
		if b.Empty() {
			return nil
		}
		if err := s.apply("replay log", b, false); err != nil {
			return err
		}
		st.AppliedLSN = applied
		b.Reset()
		cnt.reset()
		return nil
	}
	want := st.AppliedLSN + 1
	err := s.wal.Read(st.AppliedLSN+1, st.LastLSN, 0, func(lsn uint64, raw []byte) error {
		if lsn != want {
			return s.corrupt(&CorruptionError{Dir: s.dir, LSN: want, Err: fmt.Errorf("log holds LSN %d where %d belongs", lsn, want)})
		}
		want++
		e, err := s.decodeAt(lsn, raw)
		if err != nil {
			return err
		}
		if e.Epoch != lastEpoch || len(l.epochs) == 0 {
			l.epochs = append(l.epochs, EpochStart{Epoch: e.Epoch, FirstLSN: e.LSN})
			lastEpoch = e.Epoch
		}
		if applying && e.Time > cutoff {
			applying = false // this and later entries wait for the replica's delay
		}
		if applying {
			l.flushes = s.writeVersions(b, &e, l.flushes, &vs, cnt)
			applied = e.LSN
			if b.Len() >= 16<<20 {
				return commitBatch()
			}
		}
		return nil
	})
	if err != nil {
		return s.walReadErr(err)
	}
	if want <= st.LastLSN {
		return s.corrupt(&CorruptionError{Dir: s.dir, LSN: want, Err: errors.New("entry missing from log")})
	}
	l.replayed = applied - min(applied, st.AppliedLSN)
	return commitBatch()
}

// dropAbove deletes every version, expiry record and flush marker written
// by an entry above lsn, by scanning them (their log records are gone),
// and makes that durable before the log grows past lsn again.
func (s *Store) dropAbove(lsn uint64) error {
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: []byte{famFlush + 1}})
	if err != nil {
		return s.readErr(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		var at uint64
		switch k[0] {
		case famVersion:
			_, v, ok := parseVersionKey(k)
			if !ok {
				_ = it.Close()
				return s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", k)})
			}
			at = v
		case famExpiry:
			if len(k) < 17 {
				continue
			}
			at = binary.BigEndian.Uint64(k[9:17])
		case famFlush:
			at = binaryLSN(k)
		default:
			continue
		}
		if at > lsn {
			_ = b.Delete(k, nil)
			n++
		}
	}
	if err := firstErr(it.Error(), it.Close()); err != nil {
		return s.readErr(err)
	}
	if err := s.rollbackCount(b, lsn); err != nil {
		return err
	}
	_ = b.Set(metaKey("applied_lsn"), u64(lsn), nil)
	s.log.Warn("storage: dropped data of log entries lost in a crash (never acknowledged)", "dir", s.dir, "above_lsn", lsn, "records", n)
	return s.applyDurable("drop lost entries", b)
}
