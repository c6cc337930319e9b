package storage

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/replicant-db/replicant/internal/engine"
)

// KV is one live key of a snapshot.
type KV struct {
	Key      []byte
	Value    []byte
	ExpireAt int64
	Type     uint8 // engine.Type; 0 is a string
}

// Installing a snapshot replaces the whole store. It happens in three steps
// so that a crash in the middle is detected: BeginInstall wipes the store and
// durably marks it "installing"; InstallChunk adds keys; FinishInstall
// records the snapshot LSN and epoch history and clears the mark. A store
// opened with the mark still set is wiped again and starts empty.

// BeginInstall wipes every key family and marks an install in progress.
func (s *Store) BeginInstall() error {
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	// An install replaces the versions: nothing cached from them holds,
	// before or after (a read may run meanwhile).
	s.versionsRewritten()
	defer s.versionsRewritten()
	s.maint.Lock()
	defer s.maint.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	wipeData(b)
	_ = b.Set(metaKey("installing"), []byte{1}, nil)
	if err := s.admit("begin snapshot install", b.Len(), shrinks); err != nil {
		return err
	}
	if err := s.apply("begin snapshot install", b, true); err != nil {
		return fmt.Errorf("storage: begin snapshot install: %w", err)
	}
	if err := s.flushPebble("begin snapshot install"); err != nil {
		return s.degrade("begin snapshot install", err)
	}
	// What the wipe deleted is compacted away now, so that the install's
	// tables, ingested into an empty key space, go straight to the bottom
	// level instead of above the wipe's range deletion (from where every
	// byte would be compacted down once more).
	if err := s.db.Compact(context.Background(), []byte{famLog}, []byte{famCount + 1}, false); err != nil {
		return s.degrade("begin snapshot install", err)
	}
	s.inst.mu.Lock()
	s.installAbort()
	err = s.removeInstallTables()
	s.inst.mu.Unlock()
	if err != nil {
		return err
	}
	// The mark is durable: a crash from here on wipes again.
	if err := s.wal.Reset(1); err != nil {
		return s.walErr("begin snapshot install", err)
	}
	s.mu.Lock()
	s.durable = 0
	s.st = State{FirstLSN: 1}
	s.epochs = nil
	s.flushes = nil
	s.gcFloor = 0
	s.mu.Unlock()
	// The wipe left nothing collectable, and an install writes one
	// version per key; the new history's LSNs may run below the old one's,
	// so neither mark from before means anything (see garbageLSN).
	s.gcScanned = 0
	s.garbageLSN.Store(0)
	return nil
}

// InstallChunk writes snapshot keys as versions at lsn (not yet visible as
// applied state until FinishInstall).
func (s *Store) InstallChunk(lsn uint64, kvs []KV) error {
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	// An install replaces the versions: nothing cached from them holds,
	// before or after (a read may run meanwhile).
	s.versionsRewritten()
	defer s.versionsRewritten()
	// Versions go into the install's table (install.go); the expiry
	// index, ordered by time rather than key, goes through a batch.
	size := 0
	for i := range kvs {
		size += versionRecordMax(kvs[i].Key, kvs[i].Value)
	}
	if err := s.admit("snapshot install", size, grows); err != nil {
		return err
	}
	s.inst.mu.Lock()
	defer s.inst.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	var buf []byte
	for i := range kvs {
		op := Op{Kind: OpSet, Key: kvs[i].Key, Value: kvs[i].Value, ExpireAt: kvs[i].ExpireAt, Type: kvs[i].Type}
		buf = appendVersionKey(buf[:0], op.Key, lsn)
		k := len(buf)
		buf = appendVersion(buf, &op)
		if err := s.installPut(buf[:k], buf[k:]); err != nil {
			return fmt.Errorf("storage: install chunk: %w", err)
		}
		if op.ExpireAt != 0 {
			_ = b.Set(expiryKey(op.ExpireAt, lsn, op.Key), nil, nil)
		}
	}
	if s.installFull() {
		if err := s.installIngest(); err != nil {
			return fmt.Errorf("storage: install chunk: %w", err)
		}
	}
	if b.Count() > 0 {
		if err := s.apply("snapshot install", b, true); err != nil {
			return fmt.Errorf("storage: install chunk: %w", err)
		}
	}
	for i := range kvs {
		if !engine.IsReserved(kvs[i].Key) {
			s.presence.add(kvs[i].Key)
		}
	}
	return nil
}

// versionRecordMax bounds the encoded version key and value of key at any
// LSN: escaping at most doubles the key.
func versionRecordMax(key, value []byte) int {
	return 1 + 2*len(key) + 2 + 8 + 2 + binary.MaxVarintLen64 + len(value)
}

// FinishInstall makes the store a replica at lsn with the given epoch
// history (entries up to lsn); the log is empty and continues at lsn+1.
func (s *Store) FinishInstall(lsn uint64, epochs []EpochStart) error {
	done, err := s.writer()
	if err != nil {
		return err
	}
	defer done()
	// An install replaces the versions: nothing cached from them holds,
	// before or after (a read may run meanwhile).
	s.versionsRewritten()
	defer s.versionsRewritten()
	b := s.db.NewBatch()
	defer b.Close()
	var kept []EpochStart
	for _, e := range epochs {
		if e.FirstLSN <= lsn {
			kept = append(kept, e)
		}
	}
	s.inst.mu.Lock()
	err = s.installIngest()
	s.inst.mu.Unlock()
	if err != nil {
		return fmt.Errorf("storage: finish snapshot install: %w", err)
	}
	// Every installed key is live at lsn (one version each: a chunk sent
	// again overwrites its versions), so the count is the number of
	// version records; no read below lsn exists.
	n, err := s.countInstalled()
	if err != nil {
		return err
	}
	_ = b.Set(metaKey("key_count"), encodeCount(n), nil)
	_ = b.Set(metaKey("count_floor"), u64(lsn), nil)
	_ = b.Set(metaKey("log_floor"), u64(lsn), nil)
	_ = b.Set(metaKey("applied_lsn"), u64(lsn), nil)
	_ = b.Set(metaKey("commit_lsn"), u64(lsn), nil)
	_ = b.Set(metaKey("epochs"), encodeEpochs(kept), nil)
	_ = b.Delete(metaKey("installing"), nil)
	if err := s.admit("finish snapshot install", b.Len(), shrinks); err != nil {
		return err
	}
	// The log continues after the snapshot before the mark goes: a crash
	// in between still finds the mark and starts over.
	if err := s.wal.Reset(lsn + 1); err != nil {
		return s.walErr("finish snapshot install", err)
	}
	if err := s.applyDurable("finish snapshot install", b); err != nil {
		return fmt.Errorf("storage: finish snapshot install: %w", err)
	}
	lastEpoch := uint64(0)
	if len(kept) > 0 {
		lastEpoch = kept[len(kept)-1].Epoch
	}
	s.mu.Lock()
	s.durable = lsn
	s.st = State{FirstLSN: lsn + 1, LastLSN: lsn, LastEpoch: lastEpoch, AppliedLSN: lsn, CommitLSN: lsn}
	s.epochs = kept
	s.flushes = nil
	s.mu.Unlock()
	return nil
}

// recoverInstall wipes a store left half-installed by a crash. The caller
// owns the instance exclusively (Open, Recover).
func (s *Store) recoverInstall() error {
	v, err := s.getMeta("installing")
	if err != nil || v == nil {
		return err
	}
	s.log.Warn("a snapshot install was interrupted; wiping the store to start over", "dir", s.dir)
	b := s.db.NewBatch()
	defer b.Close()
	wipeData(b)
	_ = b.Delete(metaKey("installing"), nil)
	// The log first: once the mark is gone, an empty store must not sit
	// beside a log that starts after LSN 1.
	if err := s.wal.Reset(1); err != nil {
		return fmt.Errorf("storage: wipe interrupted install: %w", err)
	}
	if err := s.applyDurable("wipe interrupted install", b); err != nil {
		return fmt.Errorf("storage: wipe interrupted install: %w", err)
	}
	return nil
}

// wipeData deletes versions, expiry index, flush markers, the positions
// and any log left in Pebble by an older layout; metadata of upper layers
// (PutMeta) survives. The log files are reset separately.
func wipeData(b *pebble.Batch) {
	_ = b.DeleteRange([]byte{famLog}, []byte{famMeta}, nil)
	_ = b.DeleteRange([]byte{famExpiry}, []byte{famCount + 1}, nil)
	for _, m := range []string{"log_floor", "applied_lsn", "commit_lsn", "epochs", "gc_floor", "key_count", "count_floor"} {
		_ = b.Delete(metaKey(m), nil)
	}
}

// countInstalled counts the versions an install wrote. The caller holds
// dbmu.
func (s *Store) countInstalled() (KeyCount, error) {
	var n KeyCount
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: []byte{famVersion + 1}})
	if err != nil {
		return n, s.readErr(err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, ok := decodeVersion(it.Value())
		if !ok {
			_ = it.Close()
			return n, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad installed version %x", it.Key())})
		}
		if v.Deleted {
			continue
		}
		if key, _, ok := parseVersionKey(it.Key()); ok && engine.IsReserved(key) {
			continue
		}
		n.Keys++
		if v.ExpireAt != 0 {
			n.Expires++
		}
	}
	return n, s.readErr(firstErr(it.Error(), it.Close()))
}
