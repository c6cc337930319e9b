package leaderless

import (
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/crdt"
)

func TestCollectable(t *testing.T) {
	const now = 1_000_000
	grace := 10 * time.Second
	put := func(s State, node string, ms int64, del bool) State {
		sibs, err := s.Sibs.Update(s.Sibs.Context(), node, packValue([]byte("v"), 0), crdt.Meta{Time: crdt.Timestamp{WallMs: ms}, Deleted: del})
		if err != nil {
			t.Fatal(err)
		}
		s.Sibs = sibs
		return s
	}
	old, recent := int64(now-11_000), int64(now-1_000)
	concurrent := func(a, b State) State { return a.Merge(b) }
	counted, _, _ := State{}.IncrBy("n1", 1, now)
	counted = put(counted, "n1", old, true) // DEL after the increment resets it…
	counted.Counter, _ = counted.Counter.Increment("n2", 1)
	for _, tc := range []struct {
		name string
		s    State
		want bool
	}{
		{"nothing", State{}, false},
		{"an old tombstone", put(State{}, "n1", old, true), true},
		{"a recent tombstone", put(State{}, "n1", recent, true), false},
		{"a live value", put(State{}, "n1", old, false), false},
		{"an old tombstone beside a concurrent live sibling", concurrent(put(State{}, "n1", old, true), put(State{}, "n2", old, false)), false},
		{"two old tombstones", concurrent(put(State{}, "n1", old, true), put(State{}, "n2", old, true)), true},
		{"an old tombstone and an increment made after it", counted, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := collectable(tc.s, now, grace); got != tc.want {
				t.Fatalf("collectable = %v, want %v", got, tc.want)
			}
		})
	}
}
