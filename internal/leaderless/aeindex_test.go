package leaderless

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/engine"
)

// aeWant computes from scratch what the index must answer: the keys of
// data in arc that a and b both replicate by ring r, and their leaf hashes.
func aeWant(r *Ring, n int, data map[string][]byte, arc Range, leaves int, a, b string) ([]Digest, []string) {
	var in []MerkleEntry
	var keys []string
	for k, st := range data {
		if !r.Owns(a, []byte(k), n) || !r.Owns(b, []byte(k), n) {
			continue
		}
		en := NewMerkleEntry([]byte(k), st)
		if arc.Contains(en.Pos) {
			in = append(in, en)
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return LeafHashes(arc, leaves, in), keys
}

// Whatever sequence of writes, deletes and ring changes the index sees,
// its trees (the fast whole-circle path and the per-key path), entries
// and counts equal those computed from scratch over the final data.
func TestAEIndexMatchesScratch(t *testing.T) {
	all := []string{"n1", "n2", "n3", "n4", "n5"}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 3).Draw(t, "n")
		ring := func() *Ring {
			m := rapid.SliceOfNDistinct(rapid.SampledFrom(all), 2, 5, func(s string) string { return s }).Draw(t, "members")
			slices.Sort(m)
			r, err := NewRing(m, rapid.IntRange(1, 16).Draw(t, "vnodes"))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		r := ring()
		var ix aeIndex
		ix.setRing(r, n)
		data := map[string][]byte{}
		for step := range rapid.IntRange(0, 120).Draw(t, "steps") {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0:
				r = ring()
				ix.setRing(r, n)
			case 1, 2:
				k := rapid.SampledFrom(append(slices.Sorted(maps.Keys(data)), "x")).Draw(t, "del")
				delete(data, k)
				ix.put([]byte(k), nil)
			default:
				k := fmt.Sprintf("k%d", rapid.IntRange(0, 40).Draw(t, "key"))
				st := []byte(fmt.Sprintf("s%d-%d", step, rapid.IntRange(0, 3).Draw(t, "v")))
				data[k] = st
				ix.put([]byte(k), st)
			}
		}
		ms := r.Members()
		a := rapid.SampledFrom(ms).Draw(t, "a")
		b := rapid.SampledFrom(ms).Draw(t, "b")
		whole := Range{}
		for _, leaves := range []int{1, 2, 64, aeSegments} {
			want, _ := aeWant(r, n, data, whole, leaves, a, b)
			if got := ix.leafHashes(whole, leaves, a, b); !slices.Equal(got, want) {
				t.Fatalf("whole circle in %d leaves: the index's tree differs from the data's", leaves)
			}
		}
		arc := merkleArcGen(t)
		leaves := rapid.IntRange(1, 70).Draw(t, "leaves")
		want, wantKeys := aeWant(r, n, data, arc, leaves, a, b)
		if got := ix.leafHashes(arc, leaves, a, b); !slices.Equal(got, want) {
			t.Fatalf("arc (%d, %d] in %d leaves: the index's tree differs from the data's", arc.Start, arc.End, leaves)
		}
		var gotKeys []string
		for _, en := range ix.entries(arc, a, b) {
			gotKeys = append(gotKeys, string(en.Key))
		}
		slices.Sort(gotKeys)
		if !slices.Equal(gotKeys, wantKeys) {
			t.Fatalf("arc (%d, %d]: entries %q, want %q", arc.Start, arc.End, gotKeys, wantKeys)
		}
		_, shared := aeWant(r, n, data, whole, 1, a, b)
		if c := ix.count(a, b); c != len(shared) {
			t.Fatalf("count %d, want %d", c, len(shared))
		}
	})
}

// The index follows the node's log; when the log no longer reaches back
// to where it stopped, or holds a FLUSHALL, it rebuilds from a scan; a
// cancelled catch-up leaves it to rebuild rather than half-replayed.
func TestAEIndexCatchUp(t *testing.T) {
	net := newAENet(t, 3, "n1", "n2", "n3")
	e, nd := net.engines["n1"], net.nodes["n1"]
	ctx := context.Background()
	check := func(what string) {
		t.Helper()
		var got []Digest
		if err := e.withIndex(ctx, func(ix *aeIndex) { got = ix.leafHashes(Range{}, 64, "n1", "n2") }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		nd.mu.Lock()
		data := maps.Clone(nd.kv)
		nd.mu.Unlock()
		want, _ := aeWant(e.currentRing(), 3, data, Range{}, 64, "n1", "n2")
		if !slices.Equal(got, want) {
			t.Fatalf("%s: the index's tree differs from the store's", what)
		}
	}
	write := func(from, to int) {
		for i := from; i < to; i++ {
			net.write(t, "n1", fmt.Sprintf("k%d", i), "v")
		}
	}
	write(0, 50)
	check("first use (scan)")
	built := e.ae.ix.lsn
	write(50, 80)
	check("replayed")
	if nd.first != 0 || e.ae.ix.lsn <= built {
		t.Fatalf("the index did not follow the log (lsn %d, was %d)", e.ae.ix.lsn, built)
	}
	// Deletes through the log.
	if _, err := nd.LocalWrite(ctx, func(tx engine.Txn) error { tx.Del([]byte("k3")); tx.Del([]byte("k4")); return nil }); err != nil {
		t.Fatal(err)
	}
	check("deletes replayed")
	// Retention dropped entries the index has not seen: it scans.
	write(80, 90)
	nd.truncateLog(nd.lsn)
	write(90, 95)
	check("log truncated past the index")
	// FLUSHALL empties it.
	if _, err := nd.LocalWrite(ctx, func(tx engine.Txn) error { tx.FlushAll(); tx.Set([]byte("after"), []byte("x"), 0); return nil }); err != nil {
		t.Fatal(err)
	}
	check("flush")
	if e.ae.ix.keys != 1 {
		t.Fatalf("after FLUSHALL and one write the index holds %d keys", e.ae.ix.keys)
	}
	write(95, 100)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.withIndex(cctx, nil); err == nil {
		t.Fatalf("a cancelled catch-up succeeded")
	}
	check("after a cancelled catch-up")
}
