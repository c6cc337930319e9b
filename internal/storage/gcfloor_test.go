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
