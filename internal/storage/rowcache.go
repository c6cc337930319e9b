package storage

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"unsafe"
)

// rowCache holds, for keys read or written recently, the newest version
// Pebble has of each: a point read whose LSN is at or above that version's
// answers from memory instead of building a Pebble iterator and seeking
// the memtables and every level (42 % of a GET's CPU, benchmarks §15).
//
// Invariant: an entry for key k with LSN l means that no version of k
// above l is visible to any reader. Three rules keep it:
//   - Writers (writeVersions' batches) update an entry only after their
//     batch is in Pebble and before the applied LSN that lets readers see
//     it is published, so a reader at or above the new LSN always finds the
//     new entry.
//   - A read fills an entry only with the newest version it found in
//     Pebble, and only if no writer touched the key's shard between the
//     read's start and the fill (the shard's generation is unchanged):
//     otherwise the version it found may already be superseded.
//   - Whatever rewrites versions behind the writers' backs (rollback,
//     snapshot install, a reopened database) empties the cache and moves
//     every generation, before and after it runs.
//
// Layout: each shard appends its records (header, key, value) to a ring
// of bytes and indexes them in a fixed table of two-way buckets by the
// key's hash, both mapped outside the Go heap. A record is live while the
// ring has not wrapped over it and its slot still points at it; a newer
// record of the same key replaces it in its slot, and a bucket's older
// record gives way to a third key. So the cache's memory is its budget
// plus a quarter for the table, nothing for the collector to scan or
// count. As Go map entries, 32 MiB of cached versions cost about 100 MiB
// of resident memory (heap overhead and GC's headroom); with the ring and
// a Go map as the index, the map alone cost 2–3 % of a pipelined SET's
// CPU.
type rowCache struct {
	seed    maphash.Seed
	size    uint64 // ring bytes per shard; 0 disables the cache
	buckets uint64 // two-slot buckets per shard (a power of two)
	shards  [rowShards]rowShard
}

const (
	rowShards = 64
	// rowMaxValue: larger values are read from Pebble each time; caching
	// them would evict many small ones for one read.
	rowMaxValue = 4 << 10
	// Record header: key length (4), value length (4), LSN (8), expiry
	// (8), flags (1: deleted), type (1).
	rowHeader = 26
)

type rowShard struct {
	mu   sync.RWMutex
	gen  uint64
	ring []byte
	head uint64 // bytes ever appended to ring (positions are head values)
	// slots index the ring: pairs (key hash, position + 1) in a table
	// of two-way buckets; 0 is an empty slot. A key lives in bucket
	// hash/rowShards mod buckets; a full bucket gives up its older record.
	slots []uint64
	_     [64]byte // keeps neighbouring shards' locks off one cache line
}

func newRowCache(budget int64) *rowCache {
	c := &rowCache{seed: maphash.MakeSeed()}
	if budget <= 0 {
		return c
	}
	c.size = uint64(max(budget/rowShards, 4*(rowHeader+rowMaxValue))) &^ 7 // the table after it is 8-aligned
	// One bucket (two slots) per 128 ring bytes: records of small keys
	// and values take about 100.
	c.buckets = 1
	for c.buckets*128 < c.size {
		c.buckets *= 2
	}
	slotBytes := c.buckets * 2 * 2 * 8
	mem := allocRowRing(c, int(c.size+slotBytes)*rowShards)
	for i := range c.shards {
		b := mem[uint64(i)*(c.size+slotBytes):]
		c.shards[i].ring = b[:c.size:c.size]
		c.shards[i].slots = unsafe.Slice((*uint64)(unsafe.Pointer(&b[c.size])), c.buckets*4)
	}
	return c
}

func (c *rowCache) enabled() bool { return c.size > 0 }

func (c *rowCache) shard(key []byte) (*rowShard, uint64) {
	h := maphash.Bytes(c.seed, key)
	return &c.shards[h%rowShards], h
}

// bucket returns the index in sh.slots of key hash h's bucket.
func (c *rowCache) bucket(h uint64) uint64 { return (h / rowShards % c.buckets) * 4 }

// lookupLocked finds key's live record in sh and the index of its slot.
// sh.mu is held (either way).
func (c *rowCache) lookupLocked(sh *rowShard, h uint64, key []byte) (rec []byte, slot uint64, ok bool) {
	b := c.bucket(h)
	for slot = b; slot < b+4; slot += 2 {
		if sh.slots[slot] != h || sh.slots[slot+1] == 0 {
			continue
		}
		pos := sh.slots[slot+1] - 1
		if sh.head-pos > c.size {
			return nil, 0, false // the ring wrapped over it
		}
		r := sh.ring[pos%c.size:]
		kl := uint64(binary.LittleEndian.Uint32(r))
		vl := uint64(binary.LittleEndian.Uint32(r[4:]))
		if string(r[rowHeader:rowHeader+kl]) != string(key) {
			return nil, 0, false // another key with the same hash
		}
		return r[:rowHeader+kl+vl], slot, true
	}
	return nil, 0, false
}

// get returns a copy of the cached newest version of key, if any, and
// otherwise the shard generation a later fill must present.
func (c *rowCache) get(key []byte) (v Version, ok bool, gen uint64) {
	if c.size == 0 {
		return Version{}, false, 0
	}
	sh, h := c.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	rec, _, ok := c.lookupLocked(sh, h, key)
	if !ok {
		return Version{}, false, sh.gen
	}
	v = recordVersion(rec)
	if !v.Deleted {
		kl := int(binary.LittleEndian.Uint32(rec))
		v.Value = append([]byte{}, rec[rowHeader+kl:]...)
	}
	return v, true, sh.gen
}

// recordVersion decodes a record's header: the version without its value.
func recordVersion(rec []byte) Version {
	return Version{
		LSN:      binary.LittleEndian.Uint64(rec[8:]),
		ExpireAt: int64(binary.LittleEndian.Uint64(rec[16:])),
		Deleted:  rec[24] != 0,
		Type:     rec[25],
	}
}

// peek is get without the value: the cached newest version's LSN, expiry
// and whether it is a tombstone (LSN 0: the key had no version at all).
func (c *rowCache) peek(key []byte) (v Version, ok bool) {
	if c.size == 0 {
		return Version{}, false
	}
	sh, h := c.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	rec, _, ok := c.lookupLocked(sh, h, key)
	if !ok {
		return Version{}, false
	}
	return recordVersion(rec), true
}

// fill records v, read from Pebble as key's newest version, unless a
// writer touched the shard since get returned gen.
func (c *rowCache) fill(key []byte, gen uint64, v Version) {
	if c.size == 0 {
		return
	}
	sh, h := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return
	}
	if _, _, ok := c.lookupLocked(sh, h, key); ok {
		return // filled by another reader of the same state
	}
	c.putLocked(sh, h, key, v)
}

// wrote tells the cache that v is now key's newest version in Pebble (the
// batch holding it is committed, and readers cannot yet see its LSN): key's
// entry becomes v, or is dropped when v's value is too large to cache. The
// shard's generation moves, so that no read that began before can fill it
// with what it found.
func (c *rowCache) wrote(key []byte, v Version) {
	if c.size == 0 {
		return
	}
	sh, h := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	if !c.putLocked(sh, h, key, v) {
		if _, slot, ok := c.lookupLocked(sh, h, key); ok {
			sh.slots[slot], sh.slots[slot+1] = 0, 0
		}
	}
}

// putLocked appends key's record and points the index at it; false when
// it is too large to cache. sh.mu is held.
func (c *rowCache) putLocked(sh *rowShard, h uint64, key []byte, v Version) bool {
	n := uint64(rowHeader + len(key) + len(v.Value))
	if len(v.Value) > rowMaxValue || n > c.size/4 {
		return false
	}
	if off := sh.head % c.size; off+n > c.size {
		sh.head += c.size - off // a record never wraps: skip the ring's tail
	}
	r := sh.ring[sh.head%c.size:]
	binary.LittleEndian.PutUint32(r, uint32(len(key)))
	binary.LittleEndian.PutUint32(r[4:], uint32(len(v.Value)))
	binary.LittleEndian.PutUint64(r[8:], v.LSN)
	binary.LittleEndian.PutUint64(r[16:], uint64(v.ExpireAt))
	r[24] = 0
	if v.Deleted {
		r[24] = 1
	}
	r[25] = v.Type
	copy(r[rowHeader:], key)
	copy(r[rowHeader+len(key):], v.Value)
	// The slot: the one holding h, else an empty one, else the older.
	b := c.bucket(h)
	slot := b
	switch {
	case sh.slots[b] == h:
	case sh.slots[b+2] == h:
		slot = b + 2
	case sh.slots[b+1] == 0:
	case sh.slots[b+3] == 0 || sh.slots[b+3] < sh.slots[b+1]:
		slot = b + 2
	}
	sh.slots[slot], sh.slots[slot+1] = h, sh.head+1
	sh.head += n
	return true
}

// invalidate empties the cache and moves every generation: versions
// changed other than through writeVersions' batches.
func (c *rowCache) invalidate() {
	if c.size == 0 {
		return
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.gen++
		if sh.head > 0 { // never written: its table is still untouched zeroes
			clear(sh.slots)
		}
		sh.mu.Unlock()
	}
}

// opVersion is the version op writes at lsn, as Get would decode it.
func opVersion(op *Op, lsn uint64) Version {
	if op.Kind == OpDel {
		return Version{LSN: lsn, Deleted: true}
	}
	return Version{LSN: lsn, Value: op.Value, ExpireAt: op.ExpireAt, Type: op.Type}
}

// versionsRewritten forgets what the caches derived from the versions (the
// key count's states and the row cache): versions are changing other than
// through a counted, published batch. Callers call it before and, where
// readers may run meanwhile, after the change.
func (s *Store) versionsRewritten() {
	s.states.invalidate()
	s.rows.invalidate()
}
