package storage

import (
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/replicant-db/replicant/internal/engine"
)

// Presence filter: a Bloom filter over the user keys that have a version
// in Pebble, so that counting a write of a key never written before (most
// writes of a loading or append-heavy workload), or reading one (a cache
// miss), costs a hash instead of a Pebble seek. Under `redis-benchmark -t set -r 1000000` that seek, in the
// key count's counter.state, was 14–19 % of the server's CPU
// (docs/benchmarks.md §12).
//
// Invariant: once a filter is ready, every user key with a version in
// Pebble was added to it (no false negatives). Keys are only ever added,
// so deletions, rollback, GC and reopening leave it a superset, which is
// all a "may contain" answer needs.
//
// How it stays true: a batch's keys are added after the batch is in Pebble
// and before its writer goes on (counter.applied, InstallChunk), so before
// the store's applied LSN, and any read position, reaches the batch.
// Reserved keys are never added (the count skips them), and neither Get
// nor the count asks about them. A new
// filter is published first and then filled by a scan of Pebble in
// chunks, each with a fresh iterator: a batch applied before the filter
// was published is seen by the scan, and one applied after adds its keys
// to the new filter itself. Until the scan ends the filter answers
// "unknown" and the counter seeks as before. A counting error (its keys
// were not all recorded) replaces the filter with a new one, scanned
// again.
type presence struct {
	// cur is the filter writers add to and the counter asks; nil until
	// the store starts its first scan.
	cur atomic.Pointer[bloomSet]
	// scanning serialises rebuilds.
	scanning sync.Mutex
}

// bloomSet is one Bloom filter: m bits, k probes per key.
type bloomSet struct {
	seed  maphash.Seed
	bits  []atomic.Uint64
	m     uint64
	ready atomic.Bool
	// added counts additions that set at least one bit (about the distinct
	// keys): past capacity the false-positive rate climbs, and the store
	// builds a larger filter.
	added    atomic.Int64
	capacity int64
}

// bloomProbes and bloomBitsPerKey give about 1 % false positives at
// capacity.
const (
	bloomProbes     = 7
	bloomBitsPerKey = 10
	minPresenceKeys = 1 << 20
)

func newBloomSet(capacity int64) *bloomSet {
	capacity = max(capacity, minPresenceKeys)
	words := (capacity*bloomBitsPerKey + 63) / 64
	b := &bloomSet{seed: maphash.MakeSeed(), m: uint64(words) * 64, capacity: capacity}
	b.bits = allocBloomBits(b, words)
	return b
}

// probes calls fn with the bit index of each probe of a key whose hash is
// h (double hashing), until fn returns false.
func (b *bloomSet) probes(h uint64, fn func(i uint64) bool) {
	step := h>>33 | 1
	for range bloomProbes {
		if !fn(h % b.m) {
			return
		}
		h += step
	}
}

func (b *bloomSet) add(h uint64) {
	fresh := false
	b.probes(h, func(i uint64) bool {
		w, bit := &b.bits[i/64], uint64(1)<<(i%64)
		if w.Load()&bit == 0 {
			w.Or(bit)
			fresh = true
		}
		return true
	})
	if fresh {
		b.added.Add(1)
	}
	// The bits may live outside the heap, released when b is collected
	// (allocBloomBits): b must outlive every access to them.
	runtime.KeepAlive(b)
}

func (b *bloomSet) mayContain(h uint64) bool {
	all := true
	b.probes(h, func(i uint64) bool {
		all = b.bits[i/64].Load()&(uint64(1)<<(i%64)) != 0
		return all
	})
	runtime.KeepAlive(b) // see add
	return all
}

// add records key in the current filter, if any.
func (p *presence) add(key []byte) {
	if b := p.cur.Load(); b != nil {
		b.add(maphash.Bytes(b.seed, key))
	}
}

// addString is add for a key held as a string (no copy).
func (p *presence) addString(key string) {
	if b := p.cur.Load(); b != nil {
		b.add(maphash.String(b.seed, key))
	}
}

// absent reports whether key certainly has no version in Pebble.
func (p *presence) absent(key []byte) bool {
	b := p.cur.Load()
	return b != nil && b.ready.Load() && !b.mayContain(maphash.Bytes(b.seed, key))
}

// drop forgets the filter: it may lack keys. Until a new one is scanned,
// nothing is known absent.
func (p *presence) drop() { p.cur.Store(nil) }

// full reports whether the filter holds more keys than it was sized for,
// and how many it holds.
func (p *presence) full() (bool, int64) {
	b := p.cur.Load()
	if b == nil || !b.ready.Load() {
		return false, 0
	}
	n := b.added.Load()
	return n > b.capacity, n
}

// presenceChunk is how many versions one scan step reads before it lets go
// of the database (a Recover or Close may be waiting for it).
const presenceChunk = 4096

// rebuildPresence publishes a new filter sized for capacity keys and fills
// it from Pebble; it returns once the filter is ready, or gives up
// (leaving it unready, so the counter keeps seeking) when the store closes
// or a read fails.
func (s *Store) rebuildPresence(capacity int64) {
	if !s.presence.scanning.TryLock() {
		return // a scan is running; it will do
	}
	defer s.presence.scanning.Unlock()
	b := newBloomSet(capacity)
	s.presence.cur.Store(b)
	var from []byte
	for {
		if s.closed.Load() || s.presence.cur.Load() != b {
			return
		}
		next, done, err := s.presenceStep(b, from)
		if err != nil {
			// Corruption is fatal and reported once, by whoever stops
			// the process on it (Fatal): a second line naming the file
			// here would only say it again.
			if !isCorruption(err) {
				s.log.Warn("storage: the key presence filter could not be built; writes count keys by seeking instead",
					"dir", s.dir, "err", oneLine(err))
			}
			return
		}
		if done {
			b.ready.Store(true)
			return
		}
		from = next
	}
}

// presenceStep adds the user keys of up to presenceChunk versions from
// version key from on, and returns where to go on.
func (s *Store) presenceStep(b *bloomSet, from []byte) (next []byte, done bool, err error) {
	release, err := s.reader()
	if err != nil {
		return nil, false, err
	}
	defer release()
	if from == nil {
		from = []byte{famVersion}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: []byte{famVersion + 1}})
	if err != nil {
		return nil, false, s.readErr(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n == presenceChunk || s.draining.Load() {
			return append([]byte(nil), it.Key()...), false, nil
		}
		key, _, ok := parseVersionKey(it.Key())
		if !ok {
			continue // not ours to judge here; reads report it
		}
		if !engine.IsReserved(key) {
			b.add(maphash.Bytes(b.seed, key))
		}
		n++
	}
	return nil, true, s.readErr(it.Error())
}

// goBackground runs fn on a goroutine that Close waits for, unless the
// store is closing.
func (s *Store) goBackground(fn func()) {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
}
