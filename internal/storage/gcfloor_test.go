package storage

import (
	"errors"
	"testing"
)

// TestRollbackBelowGCFloorIsRefused: GC at floor 3 drops k's version at 1
// (shadowed by the one at 3). Rolling back to 2 would then leave k missing
// at every LSN, so the store refuses with ErrCompacted (the follower then
// installs a snapshot) — also after a restart, since the floor is durable
// before anything is deleted.
func TestRollbackBelowGCFloorIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	mustAppend(t, s, applySync, ent(1, 1, set("k", "v1")))
	mustAppend(t, s, applySync, ent(2, 1, set("other", "x")))
	mustAppend(t, s, applySync, ent(3, 1, set("k", "v3")))
	if _, err := s.GC(3); err != nil {
		t.Fatal(err)
	}
	for _, reopen := range []bool{false, true} {
		if reopen {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTestStore(t, dir)
		}
		if _, err := s.TruncateSuffix(2); !errors.Is(err, ErrCompacted) {
			t.Fatalf("reopen=%v: rollback below the GC floor: got %v, want ErrCompacted", reopen, err)
		}
		if got := getStr(t, s, "k", 3); got != "v3@3" {
			t.Fatalf("reopen=%v: k at 3 = %s after the refused rollback", reopen, got)
		}
	}
	// At or above the floor a rollback is still fine.
	mustAppend(t, s, applySync, ent(4, 1, set("k", "v4")))
	if _, err := s.TruncateSuffix(3); err != nil {
		t.Fatalf("rollback to the floor: %v", err)
	}
	if got := getStr(t, s, "k", 3); got != "v3@3" {
		t.Fatalf("k at 3 = %s", got)
	}
}

// TestGCScansOnlyWhenSomethingBecameCollectable: after a first scan, GC
// walks the versions again only if an entry since then may have made one
// collectable (an overwrite, a delete, a FLUSHALL), and what such an entry
// made collectable is collected once the floor reaches it.
func TestGCScansOnlyWhenSomethingBecameCollectable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      Op
		scan    bool // the entry after the first scan needs one
		removed int  // versions the GC at its LSN removes
		// noFilter: the presence filter cannot tell (a false positive, or
		// not built yet), so the counter's seek decides.
		noFilter bool
	}{
		{"new key", set("new", "1"), false, 0, false},
		{"new key the filter cannot rule out", set("new", "1"), false, 0, true},
		{"overwrite the filter cannot vouch for", set("k", "2"), true, 1, true},
		{"overwrite", set("k", "2"), true, 1, false},
		{"delete", del("k"), true, 2, false},
		{"delete of a key never written", del("never"), true, 1, false},
		{"flushall", flushAll(), true, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t, t.TempDir())
			waitPresence(t, s)
			mustAppend(t, s, applySync, ent(1, 1, set("k", "1")))
			if _, err := s.GC(1); err != nil {
				t.Fatal(err)
			}
			scans := s.gcScans.Load()
			if tc.noFilter {
				s.presence.drop()
			}
			mustAppend(t, s, applySync, ent(2, 1, tc.op))
			// A floor below the entry: nothing of it is collectable yet,
			// but a scan cannot know that without looking.
			removed, err := s.GC(2)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.gcScans.Load() - scans; got != map[bool]int64{false: 0, true: 1}[tc.scan] {
				t.Fatalf("GC after %s scanned %d times", tc.name, got)
			}
			if removed != tc.removed {
				t.Fatalf("GC after %s removed %d versions, want %d", tc.name, removed, tc.removed)
			}
			// Nothing new since: no further scan.
			scans = s.gcScans.Load()
			if _, err := s.GC(2); err != nil {
				t.Fatal(err)
			}
			if got := s.gcScans.Load() - scans; got != 0 {
				t.Fatalf("a second GC with nothing new scanned %d times", got)
			}
		})
	}
}

// TestGCScansAgainForGarbageAboveItsFloor: an overwrite above the floor
// of a scan is collected by a later GC whose floor reaches it.
func TestGCScansAgainForGarbageAboveItsFloor(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	waitPresence(t, s)
	mustAppend(t, s, applySync, ent(1, 1, set("k", "1")))
	mustAppend(t, s, applySync, ent(2, 1, set("k", "2")))
	if n, err := s.GC(1); err != nil || n != 0 {
		t.Fatalf("GC(1) = %d, %v; want nothing removed yet", n, err)
	}
	if n, err := s.GC(2); err != nil || n != 1 {
		t.Fatalf("GC(2) = %d, %v; want k's version at 1 removed", n, err)
	}
	if got := getStr(t, s, "k", 2); got != "2@2" {
		t.Fatalf("k at 2 = %s", got)
	}
}
