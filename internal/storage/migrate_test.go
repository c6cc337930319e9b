package storage

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestMigratesLogFromPebble: a data directory of the older layout, with the
// log as Pebble keys (family 0x01), opens with every entry moved to the log
// files, the versions and positions intact, and no log keys left in Pebble;
// and it opens again the same way.
func TestMigratesLogFromPebble(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Comparer: comparer, FormatMajorVersion: pebble.FormatTableFormatV6})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	entries := []Entry{ent(4, 1, set("a", "4")), ent(5, 2, set("b", "5")), ent(6, 2, del("a"))}
	for i := range entries {
		e := &entries[i]
		_ = b.Set(logKey(e.LSN), AppendEntry(nil, e), nil)
		(&Store{}).writeVersions(b, e, nil, &versionScratch{}, nil)
	}
	_ = b.Set(metaKey("log_floor"), u64(3), nil)
	_ = b.Set(metaKey("applied_lsn"), u64(6), nil)
	_ = b.Set(metaKey("commit_lsn"), u64(5), nil)
	_ = b.Set(metaKey("epochs"), encodeEpochs([]EpochStart{{Epoch: 1, FirstLSN: 1}, {Epoch: 2, FirstLSN: 5}}), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		s := openTestStore(t, dir)
		last := 6 + uint64(round) // round 0 appends LSN 7
		want := State{FirstLSN: 4, LastLSN: last, LastEpoch: 2, AppliedLSN: last, CommitLSN: 5}
		if st := s.State(); st != want {
			t.Fatalf("round %d: state %+v, want %+v", round, st, want)
		}
		got := readAll(t, s, 4, 6)
		for i := range entries {
			if !sameEntry(got[i], entries[i]) {
				t.Fatalf("round %d: entry %d = %+v, want %+v", round, entries[i].LSN, got[i], entries[i])
			}
		}
		if g := getStr(t, s, "b", 6); g != "5@5" {
			t.Fatalf("round %d: b = %s", round, g)
		}
		if g := getStr(t, s, "a", 4); g != "4@4" {
			t.Fatalf("round %d: a at 4 = %s", round, g)
		}
		// The old layout had no key count: Open counted it (b, and c from
		// round 0 on); reads below that point are answered by a scan.
		for _, tc := range []struct {
			at   uint64
			want int64
		}{{4, 1}, {5, 2}, {6, 1}, {Latest, 1 + int64(round)}} {
			if n, err := s.KeyCount(tc.at); err != nil || n.Keys != tc.want {
				t.Fatalf("round %d: KeyCount(%d) = %+v, %v; want %d keys", round, tc.at, n, err, tc.want)
			}
		}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famLog}, UpperBound: []byte{famLog + 1}})
		if err != nil {
			t.Fatal(err)
		}
		if it.First() {
			t.Fatalf("round %d: log key %x still in Pebble", round, it.Key())
		}
		_ = it.Close()
		if round == 0 {
			mustAppend(t, s, applySync, ent(7, 2, set("c", "x")))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
