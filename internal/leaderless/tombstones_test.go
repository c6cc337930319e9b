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
	coll := func(s State, f func(c *crdt.Coll)) State {
		c := s.Coll.Clone()
		f(&c)
		s.Coll = c
		return s
	}
	at := func(ms int64) crdt.Stamp { return crdt.Stamp{Time: crdt.Timestamp{WallMs: ms}, Site: "n2"} }
	hashAt := func(s State, ms int64) State {
		return coll(s, func(c *crdt.Coll) { c.Put(crdt.CollHash, []byte("f"), []byte("x"), at(ms)) })
	}
	clearAt := func(s State, ms int64) State { return coll(s, func(c *crdt.Coll) { c.Clear(at(ms)) }) }
	removeAt := func(s State, ms int64) State {
		return coll(s, func(c *crdt.Coll) { c.Remove(crdt.CollHash, []byte("f"), at(ms)) })
	}
	expireAt := func(s State, when, ms int64) State { return coll(s, func(c *crdt.Coll) { c.SetExpire(when, at(ms)) }) }
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
		{"an old tombstone beside a live hash field", hashAt(put(State{}, "n1", old, true), old), false},
		{"an old tombstone that cleared an older hash", clearAt(hashAt(put(State{}, "n1", old, true), old-1), old), true},
		{"an old tombstone and a hash cleared recently", clearAt(hashAt(put(State{}, "n1", old, true), old), recent), false},
		{"a hash alone, its field removed long ago", removeAt(hashAt(State{}, old-1), old), true},
		{"a hash alone, its field removed recently", removeAt(hashAt(State{}, old-1), recent), false},
		{"a hash alone, live", hashAt(State{}, old), false},
		{"a hash that expired, last written long ago", expireAt(hashAt(State{}, old-1), now-1, old), true},
		{"a hash that has not expired yet", expireAt(hashAt(State{}, old-1), now+1, old), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := collectable(tc.s, now, grace); got != tc.want {
				t.Fatalf("collectable = %v, want %v", got, tc.want)
			}
		})
	}
}
