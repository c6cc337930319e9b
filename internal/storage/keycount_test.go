package storage

import "testing"

// countAt renders KeyCount(at) as "keys/expires".
func countAt(t *testing.T, s *Store, at uint64) KeyCount {
	t.Helper()
	n, err := s.KeyCount(at)
	if err != nil {
		t.Fatalf("KeyCount(%d): %v", at, err)
	}
	return n
}

// TestKeyCountHistory walks one history through the operations that
// rewrite it, checking the count at every LSN after each: the random
// model test covers the combinations, this one names them.
// rsv is a key in the engines' reserved space.
const rsv = "\x00replicant\x00e1"

func TestKeyCountHistory(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	mustAppend(t, s, applySync,
		ent(1, 1, set("a", "1"), set("b", "1"), set(rsv, "e")),                       // 2: reserved keys (collections' elements) do not count
		ent(2, 1, setEx("c", "1", 5000), set("a", "2")),                              // 3, 1 expiring
		ent(3, 1, del("b"), del("nokey")),                                            // 2
		ent(4, 1, set("b", "2"), del("b"), set("b", "3")),                            // 3: one key, written three times
		ent(5, 1, set("x", "1"), flushAll(), set("y", "1")),                          // 1: only ops after the FLUSHALL
		ent(6, 1, setEx("y", "2", 7000), set("z", "1"), del(rsv), set(rsv+"2", "e")), // 2, 1 expiring
	)
	want := map[uint64]KeyCount{0: {}, 1: {2, 0}, 2: {3, 1}, 3: {2, 1}, 4: {3, 1}, 5: {1, 0}, 6: {2, 1}, Latest: {2, 1}}
	check := func(stage string, upTo uint64) {
		t.Helper()
		for at, w := range want {
			if at > upTo && at != Latest {
				continue
			}
			if got := countAt(t, s, at); got != w {
				t.Errorf("%s: KeyCount(%d) = %+v, want %+v", stage, at, got, w)
			}
		}
	}
	check("after append", 6)

	// Expired at 6000: c (5000) only; y expires at 7000.
	if n, complete, err := s.UnexpiredKeyCount(2, 6000); err != nil || !complete || n != (KeyCount{2, 0}) {
		t.Errorf("UnexpiredKeyCount(2, 6000) = %+v, %v, %v; want {2 0}", n, complete, err)
	}
	if n, _, err := s.UnexpiredKeyCount(Latest, 7000); err != nil || n != (KeyCount{1, 0}) {
		t.Errorf("UnexpiredKeyCount(Latest, 7000) = %+v, %v; want {1 0}", n, err)
	}

	// Rollback (a failover's divergent suffix): the count is the one at 3.
	if _, err := s.TruncateSuffix(3); err != nil {
		t.Fatal(err)
	}
	want[Latest] = KeyCount{2, 1}
	check("after rollback to 3", 3)
	mustAppend(t, s, applySync, ent(4, 2, set("d", "1"))) // a new suffix
	want[4], want[Latest] = KeyCount{3, 1}, KeyCount{3, 1}
	check("after a new suffix", 4)

	// GC drops what no read at or above its floor can see.
	if _, err := s.GC(4); err != nil {
		t.Fatal(err)
	}
	for _, at := range []uint64{4, Latest} {
		if got := countAt(t, s, at); got != want[at] {
			t.Errorf("after GC: KeyCount(%d) = %+v, want %+v", at, got, want[at])
		}
	}

	// A reopen keeps the count (and a crash replays it, see the model test).
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if got := countAt(t, s, Latest); got != want[Latest] {
		t.Errorf("after reopen: %+v, want %+v", got, want[Latest])
	}

	// A snapshot install replaces it all.
	if err := s.BeginInstall(); err != nil {
		t.Fatal(err)
	}
	kvs := []KV{{Key: []byte("p"), Value: []byte("1"), Type: 1}, {Key: []byte("q"), Value: []byte("1"), ExpireAt: 9000},
		{Key: []byte(rsv), Value: []byte("e")}}
	for range 2 { // a chunk sent twice counts once
		if err := s.InstallChunk(10, kvs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishInstall(10, []EpochStart{{Epoch: 3, FirstLSN: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := countAt(t, s, 10); got != (KeyCount{2, 1}) {
		t.Errorf("after install: %+v, want {2 1}", got)
	}
	mustAppend(t, s, applySync, ent(11, 3, del("p"), set("r", "1")))
	if got := countAt(t, s, 10); got != (KeyCount{2, 1}) {
		t.Errorf("after install, at 10: %+v, want {2 1}", got)
	}
	if got := countAt(t, s, 11); got != (KeyCount{2, 1}) {
		t.Errorf("after install, at 11: %+v, want {2 1}", got)
	}
}

// The key states the count caches for written keys do not outlive a
// snapshot install, which replaces every version: a key written before
// the install and absent from the snapshot counts as new when written
// again, and deleting it changes nothing.
func TestKeyCountCacheAfterInstall(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1"), set("b", "1")))
	if got := countAt(t, s, Latest); got != (KeyCount{2, 0}) {
		t.Fatalf("before install: %+v", got)
	}
	if err := s.BeginInstall(); err != nil {
		t.Fatal(err)
	}
	if err := s.InstallChunk(10, []KV{{Key: []byte("p"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishInstall(10, []EpochStart{{Epoch: 2, FirstLSN: 1}}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, applySync, ent(11, 2, del("a"), set("b", "2")))
	if got := countAt(t, s, Latest); got != (KeyCount{2, 0}) {
		t.Fatalf("after install, deleting a key the snapshot lacks and writing another: %+v, want {2 0} (p, b)", got)
	}
}
