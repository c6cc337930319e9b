package storage

import (
	"fmt"
	"hash/maphash"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestBloomSetHasNoFalseNegatives fills one layer to five times its
// capacity: no added key may be lost, and its false-positive rate there is
// the baseline TestBloomStackGrowsWithoutRescan improves on.
func TestBloomSetHasNoFalseNegatives(t *testing.T) {
	b, seed := newBloomSet(1000, bloomBitsPerKey), maphash.MakeSeed()
	for i := range 5000 {
		b.add(maphash.String(seed, fmt.Sprint("in", i)))
	}
	for i := range 5000 {
		if !b.mayContain(maphash.String(seed, fmt.Sprint("in", i))) {
			t.Fatalf("key in%d was added but is reported absent", i)
		}
	}
	fp := 0
	for i := range 100000 {
		if b.mayContain(maphash.String(seed, fmt.Sprint("out", i))) {
			fp++
		}
	}
	// Five times past capacity: a single layer is nearly useless.
	if fp < 10000 {
		t.Fatalf("%d false positives in 100000 for a filter 5x past capacity: the test does not measure what it says", fp)
	}
}

// TestBloomStackGrowsWithoutRescan adds 20 times a first layer's capacity
// to a stack: it must add layers (each larger), lose no key, and keep the
// false-positive rate near its bound, where one filter of the first size
// is nearly useless (above).
func TestBloomStackGrowsWithoutRescan(t *testing.T) {
	s := bloomStackOf(1000)
	for i := range 20000 {
		s.add(maphash.String(s.seed, fmt.Sprint("in", i)))
	}
	layers := *s.layers.Load()
	if len(layers) < 4 {
		t.Fatalf("%d layers after 20x the first capacity, want at least 4", len(layers))
	}
	for i := 1; i < len(layers); i++ {
		if layers[i].capacity != 2*layers[i-1].capacity || layers[i].probes < layers[i-1].probes {
			t.Fatalf("layer %d: capacity %d probes %d after capacity %d probes %d", i,
				layers[i].capacity, layers[i].probes, layers[i-1].capacity, layers[i-1].probes)
		}
	}
	for i := range 20000 {
		if !s.mayContain(maphash.String(s.seed, fmt.Sprint("in", i))) {
			t.Fatalf("key in%d was added but is reported absent", i)
		}
	}
	fp := 0
	for i := range 100000 {
		if s.mayContain(maphash.String(s.seed, fmt.Sprint("out", i))) {
			fp++
		}
	}
	t.Logf("%d layers, %d false positives in 100000", len(layers), fp)
	if fp > 2500 {
		t.Fatalf("%d false positives in 100000", fp)
	}
}

// TestBloomStackConcurrentGrowth adds keys from several goroutines while
// layers are added (run with -race): none may be lost to a layer swap.
func TestBloomStackConcurrentGrowth(t *testing.T) {
	s := bloomStackOf(100)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				s.add(maphash.String(s.seed, fmt.Sprint(g, "/", i)))
			}
		})
	}
	wg.Wait()
	for g := range 4 {
		for i := range 5000 {
			if !s.mayContain(maphash.String(s.seed, fmt.Sprint(g, "/", i))) {
				t.Fatalf("key %d/%d was added but is reported absent", g, i)
			}
		}
	}
}

// waitPresence waits until the store's presence filter is ready.
func waitPresence(t testing.TB, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b := s.presence.cur.Load(); b != nil && b.ready.Load() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the presence filter never became ready")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPresenceCountsRewrites checks that keys written while the filter
// is ready, and keys the opening scan found, are never taken for new ones:
// each rewrite below must leave the count alone. The key-state cache is
// emptied before each rewrite, so the count has to ask the filter.
func TestPresenceCountsRewrites(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	waitPresence(t, s)
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1"), set("b", "1"), set(rsv, "e")))
	s.states.invalidate()
	mustAppend(t, s, applySync, ent(2, 1, set("a", "2"), set("b", "2"), set("c", "1")))
	if got := countAt(t, s, Latest); got != (KeyCount{3, 0}) {
		t.Fatalf("after rewriting a and b: %+v, want 3 keys", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened: the filter is rebuilt by a scan of what is stored.
	s = openTestStore(t, dir)
	waitPresence(t, s)
	if s.presence.absent([]byte("c")) || !s.presence.absent([]byte("never")) {
		t.Fatal("the scan did not find c, or found a key never written")
	}
	mustAppend(t, s, applySync, ent(3, 1, set("a", "3"), set("c", "2"), set("d", "1")))
	if got := countAt(t, s, Latest); got != (KeyCount{4, 0}) {
		t.Fatalf("after reopening and rewriting a and c: %+v, want 4 keys", got)
	}

	// A snapshot install's keys are recorded too.
	if err := s.BeginInstall(); err != nil {
		t.Fatal(err)
	}
	if err := s.InstallChunk(10, []KV{{Key: []byte("s1"), Value: []byte("v")}, {Key: []byte("s2"), Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishInstall(10, []EpochStart{{Epoch: 1, FirstLSN: 1}}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, applySync, ent(11, 1, set("s1", "w"), set("e", "1")))
	if got := countAt(t, s, Latest); got != (KeyCount{3, 0}) {
		t.Fatalf("after an install of s1, s2 and writes of s1, e: %+v, want 3 keys", got)
	}
}

// TestPresenceReadsBelowTheBatchEnd: a key set and deleted within one
// batch is dead at the batch's end, but a read at the LSN between sees it,
// so the filter must hold it.
func TestPresenceReadsBelowTheBatchEnd(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	waitPresence(t, s)
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1")), ent(2, 1, del("a")))
	if _, ok, err := s.Get([]byte("a"), 1); err != nil || !ok {
		t.Fatalf("Get(a, 1) = %v, %v; want the version set at 1", ok, err)
	}
	if _, ok, err := s.Get([]byte("a"), 2); err != nil || ok {
		t.Fatalf("Get(a, 2) = %v, %v; want deleted", ok, err)
	}
	if _, ok, err := s.Get([]byte("never"), Latest); err != nil || ok {
		t.Fatalf("Get(never) = %v, %v", ok, err)
	}
}

// TestPresenceKeepsKeysInstalledRightAfterOpen: a snapshot install adds
// its keys to the filter before they reach Pebble, so the filter they go
// into must be the one the opening scan fills. Before, the scan's
// goroutine published its filter only when it ran: an install that came
// first added its keys to no filter, the scan could not see them yet
// (they were still in the install's table), and the ready filter then
// called them absent: reads and the key count lost them.
func TestPresenceKeepsKeysInstalledRightAfterOpen(t *testing.T) {
	for i := 0; i < 200; i++ {
		// In memory: with no I/O to wait for, the install runs before the
		// scan's goroutine gets going, as it did in the model test.
		s, err := Open("/store", Options{CacheBytes: 1 << 20, FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		// No wait for the opening scan: the install goes first.
		if err := s.BeginInstall(); err != nil {
			t.Fatal(err)
		}
		if err := s.InstallChunk(3, []KV{{Key: []byte("x"), Value: []byte("1")}, {Key: []byte("y"), Value: []byte("2")}}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishInstall(3, []EpochStart{{Epoch: 1, FirstLSN: 1}}); err != nil {
			t.Fatal(err)
		}
		waitPresence(t, s)
		for _, k := range []string{"x", "y"} {
			if _, ok, err := s.Get([]byte(k), Latest); err != nil || !ok {
				t.Fatalf("round %d: installed key %q not found (err %v, filter says absent: %v)", i, k, err, s.presence.absent([]byte(k)))
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
