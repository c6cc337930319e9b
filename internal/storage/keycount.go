package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/replicant-db/replicant/internal/engine"
)

// Key count (DBSIZE and INFO keyspace in O(1)).
//
// The store keeps, in meta "key_count", the number of live keys and of live
// keys with an expiry at its applied LSN, and for every applied entry that
// changed them a delta record
//
//	0x06 BE64(lsn) -> varint dKeys, varint dExpires
//
// Both are written in the batch that writes the entry's versions, so
// Pebble never holds a count that disagrees with its versions (batches
// become durable in order, see doc.go). The count at a read LSN r is the
// count at the applied LSN minus the deltas of the entries above r, read
// from one Pebble snapshot: readers at the commit LSN sum at most the few
// entries between commit and applied.
//
// "Live" is the same as for Scan: a newest version at or below the LSN that
// is not a tombstone and not hidden by a FLUSHALL. Keys whose expiry time
// has passed but whose deletion entry has not been applied yet count, as
// Redis's DBSIZE counts keys not yet evicted.
//
// Invariants:
//   - key_count equals the live count at applied_lsn, whenever both are
//     present in Pebble (same batch).
//   - For every LSN x in (count_floor, applied_lsn] whose entry changed the
//     count there is a delta at x, and no delta above applied_lsn exists.
//     Deltas at or below the GC floor may be gone: nobody reads there.
//   - A store without key_count (written before the count existed, or whose
//     count could not be carried across a crash repair) is counted by a
//     scan once, at Open or by the next applied batch, which also records
//     count_floor: reads below it are answered by a scan.
//   - Rollback (TruncateSuffix, dropAbove) subtracts the dropped entries'
//     deltas and deletes them in the batch that drops their versions;
//     snapshot install counts the installed keys.

// famCount holds the per-entry count deltas.
const famCount byte = 0x06

// KeyCount is the number of live keys, and of those with an expiry.
type KeyCount struct {
	Keys    int64
	Expires int64
}

func (c KeyCount) add(d KeyCount) KeyCount { return KeyCount{c.Keys + d.Keys, c.Expires + d.Expires} }
func (c KeyCount) sub(d KeyCount) KeyCount { return KeyCount{c.Keys - d.Keys, c.Expires - d.Expires} }

func countDeltaKey(lsn uint64) []byte {
	k := make([]byte, 9)
	k[0] = famCount
	binary.BigEndian.PutUint64(k[1:], lsn)
	return k
}

// countDeltaEnd sorts after every delta record.
var countDeltaEnd = []byte{famCount + 1}

func encodeCount(c KeyCount) []byte {
	b := binary.AppendVarint(nil, c.Keys)
	return binary.AppendVarint(b, c.Expires)
}

func decodeCount(b []byte) (KeyCount, bool) {
	k, n := binary.Varint(b)
	if n <= 0 {
		return KeyCount{}, false
	}
	e, m := binary.Varint(b[n:])
	if m <= 0 || n+m != len(b) {
		return KeyCount{}, false
	}
	return KeyCount{k, e}, true
}

// keyState is what the counter knows of one key.
type keyState uint8

const (
	keyDead keyState = iota
	keyLive
	keyLiveExpiring
)

func (k keyState) count() KeyCount {
	switch k {
	case keyLive:
		return KeyCount{Keys: 1}
	case keyLiveExpiring:
		return KeyCount{Keys: 1, Expires: 1}
	}
	return KeyCount{}
}

// keyStates remembers, for keys written recently, their state at the
// applied LSN, so that counting a write does not cost a Pebble seek: on
// the log sequencer that seek was a quarter of all CPU under a SET load
// (docs/benchmarks.md §10). A batch's states are settled into it only
// once the batch is applied, and only if nothing that rewrites versions
// behind the counters' backs (rollback, snapshot install, a reopened
// database) ran meanwhile: those bump gen and empty it. It holds at most
// keyStatesMax keys and starts over when full.
type keyStates struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]keyState
	// n is the count the last settled batch committed (valid when known):
	// the next batch starts from it instead of reading it back from Pebble.
	n     KeyCount
	known bool
}

const keyStatesMax = 1 << 18

func (k *keyStates) get(key []byte) (keyState, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, ok := k.m[string(key)]
	return st, ok
}

// start returns the generation a batch counts at and, when known, the
// count to start from.
func (k *keyStates) start() (gen uint64, n KeyCount, known bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gen, k.n, k.known
}

// invalidate forgets every state: versions changed other than through a
// counted batch.
func (k *keyStates) invalidate() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gen++
	k.m = nil
	k.known = false
}

// settle records the states a batch counted at gen left, once it is
// applied; flushed: the batch held a FLUSHALL, which killed every key it
// does not name.
func (k *keyStates) settle(gen uint64, n KeyCount, seen map[string]keyState, flushed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen != k.gen {
		return // invalidated while the batch was counted
	}
	k.n, k.known = n, true
	if flushed || k.m == nil || len(k.m)+len(seen) > keyStatesMax {
		k.m = make(map[string]keyState, len(seen))
	}
	if len(seen) > keyStatesMax {
		return
	}
	for key, st := range seen {
		k.m[key] = st
	}
}

// counter follows the live count while one batch of entries is written:
// the state of a key is what an earlier op of the batch left, or else what
// Pebble holds (the state at the applied LSN, the batch not yet in it).
type counter struct {
	s  *Store
	db *pebble.DB
	n  KeyCount
	// garbage is the highest LSN of the batch's entries that may make a
	// version collectable; applied hands it to the store (garbageLSN).
	garbage uint64
	// states and gen: the store's key-state cache, and its generation
	// when this counter started.
	states *keyStates
	gen    uint64
	// lastFlush is the newest FLUSHALL at or below the state Pebble holds
	// or the batch has reached.
	lastFlush uint64
	// flushed: a FLUSHALL earlier in this batch, so keys not in seen are
	// dead whatever Pebble holds.
	flushed bool
	seen    map[string]keyState
	// beforeFlush: keys the batch wrote before a FLUSHALL in it (seen
	// forgets them), for the presence filter.
	beforeFlush []string
	it          *pebble.Iterator
	// floor is set when the base count had to be scanned (an older store):
	// count_floor is recorded with the batch.
	floor    uint64
	setFloor bool
	err      error
}

// newCounter starts counting from the state Pebble holds at applied, with
// flushes the FLUSHALL LSNs that state knows. The caller holds dbmu and is
// the store's one writer.
func (s *Store) newCounter(applied uint64, flushes []uint64) *counter {
	gen, n, known := s.states.start()
	c := &counter{s: s, db: s.db, states: &s.states, gen: gen}
	if len(flushes) > 0 {
		c.lastFlush = flushes[len(flushes)-1]
	}
	if known {
		// The last applied batch committed this count: no read back.
		c.n = n
		return c
	}
	n, ok, err := s.storedCount(s.db)
	if err == nil && !ok {
		n, err = s.scanCount(s.db, Latest)
		c.floor, c.setFloor = applied, true
	}
	c.n, c.err = n, err
	return c
}

// entry accounts for one entry's ops from first on (writeVersions skips the
// ops before an entry's last FLUSHALL) and records its delta in b.
func (c *counter) entry(b *pebble.Batch, e *Entry, first int) {
	if c == nil {
		return
	}
	if c.err != nil {
		// The batch's keys are no longer followed: unsure is yes (see
		// Store.garbageLSN; a missed mark would leave garbage for good,
		// a spare one costs one scan).
		c.garbage = max(c.garbage, e.LSN)
		return
	}
	before := c.n
	for i := first; i < len(e.Ops); i++ {
		op := &e.Ops[i]
		switch op.Kind {
		case OpFlush:
			c.garbage = max(c.garbage, e.LSN) // it hides every older version
			c.n = KeyCount{}
			c.flushed = true
			// The keys written before the flush keep their versions
			// below it: the presence filter must still learn them.
			for key := range c.seen {
				c.beforeFlush = append(c.beforeFlush, key)
			}
			clear(c.seen)
			c.lastFlush = e.LSN
		case OpSet, OpDel:
			if engine.IsReserved(op.Key) {
				c.garbage = max(c.garbage, e.LSN) // not followed here: may supersede one
				continue                          // not a user's key: DBSIZE does not count it
			}
			prev, had, err := c.state(op.Key)
			if err != nil {
				c.err = err
				c.garbage = max(c.garbage, e.LSN)
				return
			}
			if had || op.Kind == OpDel {
				// An older version (or this tombstone) becomes
				// collectable once GC's floor reaches this entry.
				c.garbage = max(c.garbage, e.LSN)
			}
			next := keyDead
			if op.Kind == OpSet {
				next = keyLive
				if op.ExpireAt != 0 {
					next = keyLiveExpiring
				}
			}
			c.n = c.n.sub(prev.count()).add(next.count())
			if c.seen == nil {
				c.seen = map[string]keyState{}
			}
			c.seen[string(op.Key)] = next
		}
	}
	if d := c.n.sub(before); d != (KeyCount{}) {
		_ = b.Set(countDeltaKey(e.LSN), encodeCount(d), nil)
	}
}

// state is key's state before the op being counted, and whether the key
// had a version then (which the op makes collectable: Store.garbageLSN).
func (c *counter) state(key []byte) (st keyState, had bool, err error) {
	if st, ok := c.seen[string(key)]; ok {
		return st, true, nil
	}
	if c.flushed {
		// Older versions exist or not, but the FLUSHALL already made
		// them collectable.
		return keyDead, false, nil
	}
	if st, ok := c.states.get(key); ok {
		// Only written keys are remembered: a version exists.
		return st, true, nil
	}
	if c.s.presence.absent(key) {
		return keyDead, false, nil // never written: no seek
	}
	// The row cache holds the newest version Pebble has for the keys it
	// holds (rowcache.go), and never one a FLUSHALL hides; the batch
	// being counted is not in it yet.
	if v, ok := c.s.rows.peek(key); ok {
		switch {
		case v.Deleted:
			return keyDead, v.LSN != 0, nil
		case v.ExpireAt != 0:
			return keyLiveExpiring, true, nil
		}
		return keyLive, true, nil
	}
	if c.it == nil {
		it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: []byte{famVersion + 1}})
		if err != nil {
			return keyDead, true, err
		}
		c.it = it
	}
	// ^Latest is 0: the seek lands on the newest version.
	p := binary.BigEndian.AppendUint64(versionPrefix(key), 0)
	if !c.it.SeekPrefixGE(p) {
		return keyDead, false, c.it.Error()
	}
	_, lsn, ok := parseVersionKey(c.it.Key())
	if !ok {
		return keyDead, true, fmt.Errorf("storage: bad version key %x", c.it.Key())
	}
	v, ok := decodeVersion(c.it.Value())
	switch {
	case !ok:
		return keyDead, true, fmt.Errorf("storage: bad version record for key %q", key)
	case v.Deleted || lsn < c.lastFlush:
		return keyDead, true, nil
	case v.ExpireAt != 0:
		return keyLiveExpiring, true, nil
	}
	return keyLive, true, nil
}

// commit adds the count (and, for a scanned base, its floor) to b, the
// batch that also records the new applied LSN.
func (c *counter) commit(b *pebble.Batch) error {
	if c.err != nil {
		return fmt.Errorf("storage: key count: %w", c.err)
	}
	_ = b.Set(metaKey("key_count"), encodeCount(c.n), nil)
	if c.setFloor {
		_ = b.Set(metaKey("count_floor"), u64(c.floor), nil)
		c.setFloor = false
	}
	return nil
}

// applied settles the batch's key states into the store's cache once
// the batch is in Pebble.
func (c *counter) applied() {
	if c == nil {
		return
	}
	// Once per batch, now that its versions are in Pebble (GC's floor
	// cannot reach them before the applied LSN does).
	if c.garbage > 0 {
		c.s.noteGarbage(c.garbage)
		c.garbage = 0
	}
	if c.err != nil {
		// Some of the batch's keys were not followed: the presence
		// filter may lack them, so it is dropped at once and built again
		// from Pebble.
		c.s.restartPresence(0)
		return
	}
	c.states.settle(c.gen, c.n, c.seen, c.flushed)
	// Every key the batch wrote, dead ones too: a key set and deleted in
	// one batch has a version that a read below the batch's end sees.
	for key := range c.seen {
		c.s.presence.addString(key)
	}
	for _, key := range c.beforeFlush {
		c.s.presence.addString(key)
	}
}

// reset forgets the batch overlay after the batch was applied: Pebble now
// holds what it recorded.
func (c *counter) reset() {
	c.applied()
	c.close()
	clear(c.seen)
	c.beforeFlush = c.beforeFlush[:0]
	c.flushed = false
}

func (c *counter) close() {
	if c.it != nil {
		_ = c.it.Close()
		c.it = nil
	}
}

// getU64 reads a big-endian meta value from r (0 when absent).
func getU64(r pebble.Reader, name string) (uint64, bool, error) {
	v, closer, err := r.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("storage: meta %s has %d bytes", name, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// storedCount reads key_count from r; ok is false when there is none.
func (s *Store) storedCount(r pebble.Reader) (KeyCount, bool, error) {
	v, closer, err := r.Get(metaKey("key_count"))
	if errors.Is(err, pebble.ErrNotFound) {
		return KeyCount{}, false, nil
	}
	if err != nil {
		return KeyCount{}, false, s.readErr(err)
	}
	defer closer.Close()
	n, ok := decodeCount(v)
	if !ok {
		return KeyCount{}, false, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad key count %x", v)})
	}
	return n, true, nil
}

// sumDeltas adds up the delta records of LSNs in (from, to] in r.
func (s *Store) sumDeltas(r pebble.Reader, from, to uint64) (KeyCount, error) {
	var sum KeyCount
	if to <= from {
		return sum, nil
	}
	upper := countDeltaEnd
	if to < Latest {
		upper = countDeltaKey(to + 1)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: countDeltaKey(from + 1), UpperBound: upper})
	if err != nil {
		return sum, s.readErr(err)
	}
	for it.First(); it.Valid(); it.Next() {
		d, ok := decodeCount(it.Value())
		if !ok {
			_ = it.Close()
			return sum, s.corrupt(&CorruptionError{Dir: s.dir, LSN: binaryLSN(it.Key()), Err: fmt.Errorf("bad key count delta %x", it.Value())})
		}
		sum = sum.add(d)
	}
	return sum, s.readErr(firstErr(it.Error(), it.Close()))
}

// scanCount counts the live keys at LSN at by visiting every key: the
// fallback for stores without a usable count.
func (s *Store) scanCount(r pebble.Reader, at uint64) (KeyCount, error) {
	var n KeyCount
	floor, err := flushFloorIn(r, at)
	if err != nil {
		return n, s.readErr(err)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: []byte{famVersion + 1}})
	if err != nil {
		return n, s.readErr(err)
	}
	defer it.Close()
	valid := it.First()
	for valid {
		key, lsn, ok := parseVersionKey(it.Key())
		if !ok {
			return n, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad version key %x", it.Key())})
		}
		p := versionPrefix(key)
		if lsn > at {
			if !it.SeekGE(binary.BigEndian.AppendUint64(p, ^at)) {
				break
			}
			if k := it.Key(); len(k) != len(p)+8 || string(k[:len(p)]) != string(p) {
				continue // no version at or below at
			}
			_, lsn, _ = parseVersionKey(it.Key())
		}
		v, ok := decodeVersion(it.Value())
		if !ok {
			return n, s.corrupt(&CorruptionError{Dir: s.dir, LSN: lsn, Err: fmt.Errorf("bad version record for key %q", key)})
		}
		if !v.Deleted && lsn >= floor && !engine.IsReserved(key) {
			n.Keys++
			if v.ExpireAt != 0 {
				n.Expires++
			}
		}
		valid = it.SeekGE(versionKeyEnd(p))
	}
	return n, s.readErr(it.Error())
}

// flushFloorIn is the newest FLUSHALL marker at or below at in r.
func flushFloorIn(r pebble.Reader, at uint64) (uint64, error) {
	upper := []byte{famFlush + 1}
	if at < Latest {
		upper = flushKey(at + 1)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{famFlush}, UpperBound: upper})
	if err != nil {
		return 0, err
	}
	var f uint64
	if it.Last() {
		f = binaryLSN(it.Key())
	}
	return f, firstErr(it.Error(), it.Close())
}

// KeyCount returns the number of live keys (and of those with an expiry)
// at LSN at, as Scan at that LSN would visit them, expired or not. With a
// count recorded it costs one snapshot and the deltas above at; a read
// below the count's floor scans.
func (s *Store) KeyCount(at uint64) (KeyCount, error) {
	done, err := s.reader()
	if err != nil {
		return KeyCount{}, err
	}
	defer done()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	return s.countAt(snap, at)
}

// countAt is KeyCount in r. The caller holds dbmu.
func (s *Store) countAt(r pebble.Reader, at uint64) (KeyCount, error) {
	n, ok, err := s.storedCount(r)
	if err != nil {
		return n, err
	}
	applied, _, err := getU64(r, "applied_lsn")
	if err != nil {
		return n, s.readErr(err)
	}
	floor, _, err := getU64(r, "count_floor")
	if err != nil {
		return n, s.readErr(err)
	}
	if !ok || at < floor {
		return s.scanCount(r, at)
	}
	if at >= applied {
		return n, nil
	}
	d, err := s.sumDeltas(r, at, applied)
	if err != nil {
		return n, err
	}
	return n.sub(d), nil
}

// rollbackCount adds to b what dropping every entry above lsn does to the
// count: the count at lsn, and no deltas above it. Where the deltas do not
// reach (an older store), the count is dropped and recounted later. The
// caller holds dbmu and is the only one changing the store.
func (s *Store) rollbackCount(b *pebble.Batch, lsn uint64) error {
	// The count and key states batches settled are of the suffix that goes.
	s.versionsRewritten()
	n, ok, err := s.storedCount(s.db)
	if err != nil {
		return err
	}
	floor, _, err := getU64(s.db, "count_floor")
	if err != nil {
		return s.readErr(err)
	}
	_ = b.DeleteRange(countDeltaKey(lsn+1), countDeltaEnd, nil)
	if !ok || lsn < floor {
		_ = b.Delete(metaKey("key_count"), nil)
		_ = b.Delete(metaKey("count_floor"), nil)
		return nil
	}
	d, err := s.sumDeltas(s.db, lsn, Latest)
	if err != nil {
		return err
	}
	_ = b.Set(metaKey("key_count"), encodeCount(n.sub(d)), nil)
	return nil
}

// ensureCount records the count of a store that has none (opened for the
// first time since the count exists, or after a crash repair that could
// not carry it), by one scan. The caller owns the instance exclusively.
func (s *Store) ensureCount(applied uint64) error {
	s.versionsRewritten()
	_, ok, err := s.storedCount(s.db)
	if err != nil || ok {
		return err
	}
	n, err := s.scanCount(s.db, Latest)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(metaKey("key_count"), encodeCount(n), nil)
	_ = b.Set(metaKey("count_floor"), u64(applied), nil)
	return s.apply("count keys", b, false)
}

// maxExpiredChecks bounds the expiry-index records UnexpiredKeyCount looks
// at: the node's expiry process keeps that backlog short, and a count
// must not turn into a scan when it is not.
const maxExpiredChecks = 10000

// UnexpiredKeyCount is KeyCount at LSN at without the keys that have
// expired by nowMs but whose deletion is not applied yet (reads already
// hide them). It finds those through the expiry index, checking at most
// maxExpiredChecks records; complete is false when more were left, and
// the keys behind them still count.
func (s *Store) UnexpiredKeyCount(at uint64, nowMs int64) (n KeyCount, complete bool, err error) {
	done, err := s.reader()
	if err != nil {
		return n, false, err
	}
	defer done()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	if n, err = s.countAt(snap, at); err != nil {
		return n, false, err
	}
	gone, complete, err := s.expiredLive(snap, at, nowMs, maxExpiredChecks)
	return n.sub(gone), complete, err
}

// expiredLive counts the keys whose version visible at LSN at has expired
// by nowMs, from the expiry index in r (at most limit records).
func (s *Store) expiredLive(r pebble.Reader, at uint64, nowMs int64, limit int) (n KeyCount, complete bool, err error) {
	if nowMs < 0 {
		return n, true, nil
	}
	floor, err := flushFloorIn(r, at)
	if err != nil {
		return n, false, s.readErr(err)
	}
	upper := make([]byte, 9)
	upper[0] = famExpiry
	binary.BigEndian.PutUint64(upper[1:], uint64(nowMs)+1)
	idx, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{famExpiry}, UpperBound: upper})
	if err != nil {
		return n, false, s.readErr(err)
	}
	defer idx.Close()
	vers, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{famVersion}, UpperBound: []byte{famVersion + 1}})
	if err != nil {
		return n, false, s.readErr(err)
	}
	defer vers.Close()
	checked := 0
	for idx.First(); idx.Valid(); idx.Next() {
		if checked == limit {
			return n, false, nil
		}
		checked++
		k := idx.Key()
		if len(k) < 17 {
			return n, false, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad expiry key %x", k)})
		}
		lsn := binary.BigEndian.Uint64(k[9:17])
		if lsn > at || lsn < floor {
			continue
		}
		key, rest, ok := unescape(k[17:])
		if !ok || len(rest) != 0 {
			return n, false, s.corrupt(&CorruptionError{Dir: s.dir, Err: fmt.Errorf("bad expiry key %x", k)})
		}
		if engine.IsReserved(key) {
			continue
		}
		// The record counts only if its version is the one visible at at
		// (a later write replaced or deleted the key otherwise).
		if !vers.SeekPrefixGE(binary.BigEndian.AppendUint64(versionPrefix(key), ^at)) {
			if err := vers.Error(); err != nil {
				return n, false, s.readErr(err)
			}
			continue
		}
		if _, vlsn, ok := parseVersionKey(vers.Key()); !ok || vlsn != lsn {
			continue
		}
		// One entry may set the key twice with different expiry times:
		// only the record of the version's own time counts.
		exp := int64(binary.BigEndian.Uint64(k[1:9]))
		if v, ok := decodeVersion(vers.Value()); ok && !v.Deleted && v.ExpireAt == exp {
			n.Keys++
			n.Expires++
		}
	}
	return n, true, s.readErr(idx.Error())
}
