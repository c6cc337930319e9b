package storage

import (
	"hash/maphash"
	"math"
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
// and before its writer goes on (counter.applied), so before the store's
// applied LSN, and any read position, reaches the batch; a snapshot
// install's keys as each chunk is written (InstallChunk), before FinishInstall
// ingests them. Reserved keys are never added (the count skips them), and
// neither Get nor the count asks about them. A new filter is published
// first, by the caller and before its next write (restartPresence), and
// then filled by a scan of Pebble in chunks, each with a fresh iterator: a
// batch applied before the filter was published is seen by the scan, and
// one applied after (or an install chunk, which the scan cannot see) adds
// its keys to the new filter itself. Until the scan ends the filter answers
// "unknown" and the counter seeks as before. A counting error (its keys
// were not all recorded) replaces the filter with a new one, scanned
// again.
type presence struct {
	// cur is the filter writers add to and the counter asks; nil only
	// when dropped (tests).
	cur atomic.Pointer[bloomStack]
	// scanning serialises scans: a newer filter's waits for the older
	// one's to notice it was replaced.
	scanning sync.Mutex
}

// bloomStack is a Bloom filter that grows without a rescan (a scalable
// Bloom filter): it is a list of layers, keys are added to the newest,
// and a key may be present if any layer may contain it. When the newest
// layer holds more keys than it was sized for, a layer twice as large,
// with more bits per key, is added on top. Before, a full filter was
// replaced by a larger one filled by a scan of all of Pebble: a 10 M-key
// load rescanned 15 M keys in four rebuilds, and every write in the
// meantime paid the seek the filter exists to spare (load 91 k → 112 k
// keys/s without them; docs/benchmarks.md §14).
//
// False positives: layer i is sized for about 1 % / 2^i at capacity, so
// the stack's rate stays below 2 % however many layers it has. Memory:
// about 24 MB for 10 M keys loaded from empty (layers of 1, 2, 4 and 8 Mi
// keys), against 20 MB for one filter sized for them.
type bloomStack struct {
	seed maphash.Seed
	// layers is replaced, never changed in place; the last is the newest.
	layers atomic.Pointer[[]*bloomSet]
	ready  atomic.Bool
	// grow serialises adding a layer.
	grow sync.Mutex
}

// bloomSet is one layer: m bits, k probes per key.
type bloomSet struct {
	bits   []atomic.Uint64
	m      uint64
	probes int
	// added counts additions that set at least one bit (about the distinct
	// keys): past capacity the false-positive rate climbs, and the stack
	// adds a layer.
	added    atomic.Int64
	capacity int64
}

// Layer i has bloomBitsPerKey + 2i bits per key (at most bloomMaxBits)
// and ln 2 × that many probes: 10 bits and 7 probes give about 1 % false
// positives at capacity, and every 2 bits more about halve it.
const (
	bloomBitsPerKey = 10
	bloomMaxBits    = 24
	minPresenceKeys = 1 << 20
)

func newBloomStack(capacity int64) *bloomStack {
	return bloomStackOf(max(capacity, minPresenceKeys))
}

// bloomStackOf is newBloomStack without the floor on its first layer's
// capacity (tests use small ones).
func bloomStackOf(capacity int64) *bloomStack {
	s := &bloomStack{seed: maphash.MakeSeed()}
	layers := []*bloomSet{newBloomSet(capacity, bloomBitsPerKey)}
	s.layers.Store(&layers)
	return s
}

func newBloomSet(capacity int64, bitsPerKey int64) *bloomSet {
	capacity = max(capacity, 1)
	words := (capacity*bitsPerKey + 63) / 64
	b := &bloomSet{m: uint64(words) * 64, capacity: capacity, probes: max(1, int(float64(bitsPerKey)*math.Ln2+0.5))}
	b.bits = allocBloomBits(b, words)
	return b
}

// probe calls fn with the bit index of each probe of a key whose hash is
// h (double hashing), until fn returns false.
func (b *bloomSet) probe(h uint64, fn func(i uint64) bool) {
	step := h>>33 | 1
	for range b.probes {
		if !fn(h % b.m) {
			return
		}
		h += step
	}
}

func (b *bloomSet) add(h uint64) {
	fresh := false
	b.probe(h, func(i uint64) bool {
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
	b.probe(h, func(i uint64) bool {
		all = b.bits[i/64].Load()&(uint64(1)<<(i%64)) != 0
		return all
	})
	runtime.KeepAlive(b) // see add
	return all
}

// add records a key whose hash is h in the newest layer, and adds a
// layer when that one is past its capacity.
func (s *bloomStack) add(h uint64) {
	layers := *s.layers.Load()
	top := layers[len(layers)-1]
	top.add(h)
	if top.added.Load() > top.capacity {
		s.addLayer(top)
	}
}

// addLayer puts a layer twice as large as full on top, unless another
// writer already did.
func (s *bloomStack) addLayer(full *bloomSet) {
	s.grow.Lock()
	defer s.grow.Unlock()
	layers := *s.layers.Load()
	if layers[len(layers)-1] != full {
		return
	}
	bits := min(bloomBitsPerKey+2*int64(len(layers)), bloomMaxBits)
	next := append(append(make([]*bloomSet, 0, len(layers)+1), layers...), newBloomSet(2*full.capacity, bits))
	s.layers.Store(&next)
}

func (s *bloomStack) mayContain(h uint64) bool {
	for _, b := range *s.layers.Load() {
		if b.mayContain(h) {
			return true
		}
	}
	return false
}

// add records key in the current filter, if any.
func (p *presence) add(key []byte) {
	if s := p.cur.Load(); s != nil {
		s.add(maphash.Bytes(s.seed, key))
	}
}

// addString is add for a key held as a string (no copy).
func (p *presence) addString(key string) {
	if s := p.cur.Load(); s != nil {
		s.add(maphash.String(s.seed, key))
	}
}

// absent reports whether key certainly has no version in Pebble.
func (p *presence) absent(key []byte) bool {
	s := p.cur.Load()
	return s != nil && s.ready.Load() && !s.mayContain(maphash.Bytes(s.seed, key))
}

// drop forgets the filter: it may lack keys. Until a new one is scanned,
// nothing is known absent.
func (p *presence) drop() { p.cur.Store(nil) }

// restart publishes a new, unready filter sized for capacity keys, to be
// filled by rebuildPresence. It is published by the caller, before any
// further write: a snapshot install adds its keys to the filter before
// they are in Pebble (InstallChunk), so a filter published later, by the
// scan's goroutine, would miss them for good (seen under the model test:
// an install right after Open left keys the filter called absent).
func (s *Store) restartPresence(capacity int64) {
	b := newBloomStack(capacity)
	s.presence.cur.Store(b)
	s.goBackground(func() { s.rebuildPresence(b) })
}

// presenceChunk is how many versions one scan step reads before it lets go
// of the database (a Recover or Close may be waiting for it).
const presenceChunk = 4096

// rebuildPresence fills b, a filter restartPresence published, from
// Pebble; it returns once b is ready, or gives up (leaving it unready, so
// reads and the counter keep seeking) when the store closes, a read
// fails, or b is replaced.
func (s *Store) rebuildPresence(b *bloomStack) {
	s.presence.scanning.Lock() // an older scan stops at its next chunk
	defer s.presence.scanning.Unlock()
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
func (s *Store) presenceStep(b *bloomStack, from []byte) (next []byte, done bool, err error) {
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
