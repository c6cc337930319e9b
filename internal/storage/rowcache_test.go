package storage

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRowCacheNeverServesASupersededVersion: while one goroutine appends
// entries that each overwrite every key, readers read each key at the
// applied LSN they just observed. Every entry writes every key, so the
// newest version at or below that LSN is the entry at exactly that LSN; a
// cache entry filled from a read that raced with a write (or refreshed
// after the applied LSN moved) shows up as an older LSN. Writes fill the
// cache too, so a goroutine empties it now and then: reads then miss and
// fill while the writer goes on.
func TestRowCacheNeverServesASupersededVersion(t *testing.T) {
	for _, budget := range []int64{DefaultRowCacheBytes, 1} {
		t.Run(fmt.Sprint("budget=", budget), func(t *testing.T) {
			s, err := Open(t.TempDir(), Options{CacheBytes: 1 << 20, RowCacheBytes: budget})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			var keys []string
			for i := 0; i < 128; i++ {
				keys = append(keys, fmt.Sprint("k", i))
			}
			const entries = 600
			var stop atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					s.rows.invalidate()
					time.Sleep(200 * time.Microsecond)
				}
			}()
			for r := 0; r < 3; r++ {
				wg.Add(1)
				go func(r int) {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						at := s.State().AppliedLSN
						if at == 0 {
							continue
						}
						k := keys[(i*7+r)%len(keys)]
						v, ok, err := s.Get([]byte(k), at)
						if err != nil || !ok || v.LSN != at || string(v.Value) != fmt.Sprint(at) {
							errs <- fmt.Errorf("Get(%q, %d) = %d %q, %v, %v; want version %d", k, at, v.LSN, v.Value, ok, err, at)
							return
						}
					}
				}(r)
			}
			for lsn := uint64(1); lsn <= entries; lsn++ {
				ops := make([]Op, len(keys))
				for i, k := range keys {
					ops[i] = set(k, fmt.Sprint(lsn))
				}
				// Without sync: the race is between Pebble and the cache,
				// and an fsync per entry would make it rare.
				if _, err := s.Append([]Entry{ent(lsn, 1, ops...)}, AppendOptions{Apply: true}); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-errs:
					stop.Store(true)
					wg.Wait()
					t.Fatal(err)
				default:
				}
			}
			stop.Store(true)
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// sameShard returns a key other than key that c keeps in key's shard.
func sameShard(c *rowCache, key []byte) []byte {
	want, _ := c.shard(key)
	for i := 0; ; i++ {
		k := []byte(fmt.Sprint("other-", i))
		if sh, _ := c.shard(k); sh == want {
			return k
		}
	}
}

// TestRowCacheFillAndWrite walks the cache's rules one step at a time.
func TestRowCacheFillAndWrite(t *testing.T) {
	v := func(lsn uint64, val string) Version { return Version{LSN: lsn, Value: []byte(val)} }
	tests := []struct {
		name string
		run  func(c *rowCache)
		key  string
		want *Version // nil: no entry
	}{
		{"a fill is kept", func(c *rowCache) {
			_, _, g := c.get([]byte("k"))
			c.fill([]byte("k"), g, v(3, "x"))
		}, "k", &Version{LSN: 3, Value: []byte("x")}},
		{"a write after the read's start refuses its fill", func(c *rowCache) {
			// Another key of k's shard: the refusal is the generation's,
			// not k's entry being there already or an invalidation.
			_, _, g := c.get([]byte("k"))
			c.wrote(sameShard(c, []byte("k")), v(4, "y"))
			c.fill([]byte("k"), g, v(3, "x"))
		}, "k", nil},
		{"a write replaces the entry", func(c *rowCache) {
			_, _, g := c.get([]byte("k"))
			c.fill([]byte("k"), g, v(3, "x"))
			c.wrote([]byte("k"), v(5, "z"))
		}, "k", &Version{LSN: 5, Value: []byte("z")}},
		{"a write whose value is too large drops the entry", func(c *rowCache) {
			_, _, g := c.get([]byte("k"))
			c.fill([]byte("k"), g, v(3, "x"))
			c.wrote([]byte("k"), v(5, string(make([]byte, rowMaxValue+1))))
		}, "k", nil},
		{"a write creates an entry", func(c *rowCache) {
			c.wrote([]byte("k"), Version{LSN: 6, Deleted: true})
		}, "k", &Version{LSN: 6, Deleted: true}},
		{"a value too large is not cached", func(c *rowCache) {
			c.wrote([]byte("k"), v(7, string(make([]byte, rowMaxValue+1))))
		}, "k", nil},
		{"invalidate empties", func(c *rowCache) {
			c.wrote([]byte("k"), v(7, "w"))
			c.invalidate()
		}, "k", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRowCache(1 << 20)
			tt.run(c)
			got, ok, _ := c.get([]byte(tt.key))
			switch {
			case tt.want == nil && ok:
				t.Fatalf("entry %+v, want none", got)
			case tt.want != nil && !ok:
				t.Fatalf("no entry, want %+v", *tt.want)
			case tt.want != nil && (got.LSN != tt.want.LSN || string(got.Value) != string(tt.want.Value) || got.Deleted != tt.want.Deleted):
				t.Fatalf("entry %+v, want %+v", got, *tt.want)
			}
		})
	}
}

// TestRowCacheStaysWithinBudget: writing far more than the rings hold
// keeps only the newest records, each answered with its own value.
func TestRowCacheStaysWithinBudget(t *testing.T) {
	c := newRowCache(1) // the smallest rings
	const n = 200000
	for i := 0; i < n; i++ {
		c.wrote([]byte(fmt.Sprint("key-", i)), Version{LSN: uint64(i + 1), Value: make([]byte, 64)})
	}
	live := 0
	for i := 0; i < n; i++ {
		if v, ok, _ := c.get([]byte(fmt.Sprint("key-", i))); ok {
			live++
			if v.LSN != uint64(i+1) || len(v.Value) != 64 {
				t.Fatalf("key-%d cached as %+v", i, v)
			}
		}
	}
	perRing := int(c.size) / (rowHeader + 9 + 64)
	if live == 0 || live > rowShards*perRing {
		t.Fatalf("%d of %d keys cached; the rings hold at most %d", live, n, rowShards*perRing)
	}
	// The newest keys are the ones kept.
	if _, ok, _ := c.get([]byte(fmt.Sprint("key-", n-1))); !ok {
		t.Fatal("the last key written is not cached")
	}
}

// TestRowCacheBucketGivesWayToTheNewest: three keys of one shard and
// bucket: the third takes the slot of the older of the first two, and a
// rewrite of a key keeps its slot.
func TestRowCacheBucketGivesWayToTheNewest(t *testing.T) {
	c := newRowCache(1 << 20)
	var keys [][]byte
	want := c.bucket(maphash.Bytes(c.seed, []byte("k0")))
	wantShard, _ := c.shard([]byte("k0"))
	for i := 0; len(keys) < 3; i++ {
		k := []byte(fmt.Sprint("k", i))
		sh, h := c.shard(k)
		if sh == wantShard && c.bucket(h) == want {
			keys = append(keys, k)
		}
	}
	put := func(k []byte, lsn uint64) { c.wrote(k, Version{LSN: lsn, Value: k}) }
	has := func(k []byte) bool { _, ok, _ := c.get(k); return ok }
	put(keys[0], 1)
	put(keys[1], 2)
	put(keys[0], 3) // a rewrite: keys[1] is now the older
	put(keys[2], 4)
	if !has(keys[0]) || has(keys[1]) || !has(keys[2]) {
		t.Fatalf("cached: %v %v %v, want true false true", has(keys[0]), has(keys[1]), has(keys[2]))
	}
	if v, _, _ := c.get(keys[0]); v.LSN != 3 || string(v.Value) != string(keys[0]) {
		t.Fatalf("keys[0] cached as %+v", v)
	}
}

// TestRowCacheSeesAFollowersApply: a follower appends entries, reads (which
// fills the cache with what Pebble holds: nothing, then the first value),
// and applies later; ApplyUpTo must refresh what the reads cached.
func TestRowCacheSeesAFollowersApply(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	received := AppendOptions{Sync: true}
	mustAppend(t, s, received, ent(1, 1, set("k", "1")))
	if _, ok, err := s.Get([]byte("k"), Latest); err != nil || ok {
		t.Fatalf("before apply: found %v, err %v", ok, err)
	}
	if err := s.ApplyUpTo(1); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, received, ent(2, 1, set("k", "2")))
	if v, ok, err := s.Get([]byte("k"), Latest); err != nil || !ok || string(v.Value) != "1" {
		t.Fatalf("after applying 1: %q, %v, %v", v.Value, ok, err)
	}
	if err := s.ApplyUpTo(2); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Get([]byte("k"), Latest); err != nil || !ok || string(v.Value) != "2" {
		t.Fatalf("after applying 2: %q, %v, %v", v.Value, ok, err)
	}
}
