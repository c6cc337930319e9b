package leaderless

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// stamp builds the stamp of a write at ms (logical 0) by site.
func stampAt(ms int64, site string) crdt.Stamp {
	return crdt.Stamp{Time: crdt.Timestamp{WallMs: ms}, Site: site}
}

// withSib adds a sibling written by node at ms (a tombstone when del)
// over everything s holds.
func withSib(t *testing.T, s State, node string, ms int64, value string, expireAt int64, del bool) State {
	t.Helper()
	sibs, err := s.Sibs.Update(s.Sibs.Context(), node, packValue([]byte(value), expireAt), crdt.Meta{Time: crdt.Timestamp{WallMs: ms}, Deleted: del})
	if err != nil {
		t.Fatal(err)
	}
	s.Sibs = sibs
	return s
}

// withColl applies f to a copy of s's collection.
func withColl(s State, f func(c *crdt.Coll)) State {
	c := s.Coll.Clone()
	f(&c)
	s.Coll = c
	return s
}

func TestStateLookup(t *testing.T) {
	const now = 1_000_000
	str := func(ms int64) State { return withSib(t, State{}, "n1", ms, "v", 0, false) }
	hash := func(s State, ms int64) State {
		return withColl(s, func(c *crdt.Coll) { c.Put(crdt.CollHash, []byte("f"), []byte("x"), stampAt(ms, "n2")) })
	}
	counted, _, _ := State{}.IncrBy("n3", 7, now)
	tests := []struct {
		name string
		s    State
		want string // "string:VALUE", a type name, or "none"
	}{
		{"nothing", State{}, "none"},
		{"a string", str(100), "string:v"},
		{"a hash", hash(State{}, 100), "hash"},
		{"a set", withColl(State{}, func(c *crdt.Coll) { c.Put(crdt.CollSet, []byte("m"), nil, stampAt(100, "n2")) }), "set"},
		{"a sorted set", withColl(State{}, func(c *crdt.Coll) { c.Put(crdt.CollZSet, []byte("m"), []byte("1"), stampAt(100, "n2")) }), "zset"},
		{"a string newer than the hash's newest field", hash(str(200), 100), "string:v"},
		{"a hash field newer than the string", hash(str(100), 200), "hash"},
		{"a hash beside a deleted string", hash(withSib(t, str(100), "n1", 300, "", 0, true), 200), "hash"},
		{"increments alone have no stamp: the hash wins", hash(counted, 100), "hash"},
		{"increments alone", counted, "string:7"},
		{"a string beside a hash whose fields were all removed", withColl(hash(str(100), 200), func(c *crdt.Coll) {
			c.Remove(crdt.CollHash, []byte("f"), stampAt(300, "n2"))
		}), "string:v"},
		{"a string beside a cleared hash", withColl(hash(str(100), 200), func(c *crdt.Coll) { c.Clear(stampAt(300, "n2")) }), "string:v"},
		{"a string beside an expired hash newer than it", withColl(hash(str(100), 200), func(c *crdt.Coll) {
			c.SetExpire(now-1, stampAt(300, "n2"))
		}), "string:v"},
		{"an expired hash alone", withColl(hash(State{}, 200), func(c *crdt.Coll) { c.SetExpire(now, stampAt(300, "n2")) }), "none"},
		{"an expired string beside an older hash", hash(withSib(t, State{}, "n1", 200, "v", now-1, false), 100), "hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := tc.s.Lookup(now)
			got := "none"
			switch {
			case ok && v.Type == engine.TypeString:
				got = "string:" + string(v.Value)
			case ok:
				got = v.Type.String()
				if v.Value != nil {
					t.Errorf("a collection's version has the value %q", v.Value)
				}
			}
			if got != tc.want {
				t.Fatalf("Lookup = %s, want %s", got, tc.want)
			}
			// Visible is the string side of Lookup.
			val, _, live := tc.s.Visible(now)
			if wantStr := len(tc.want) > 7 && tc.want[:7] == "string:"; live != wantStr || (live && "string:"+string(val) != tc.want) {
				t.Fatalf("Visible = %q, %v; Lookup says %s", val, live, tc.want)
			}
		})
	}
}

// Siblings (REPLICANT.SIBLINGS, HTTP's 300) shows the string values only
// while the key holds a string.
func TestStateSiblingsBehindACollection(t *testing.T) {
	const now = 1_000_000
	two := withSib(t, State{}, "n1", 100, "x", 0, false).Merge(withSib(t, State{}, "n2", 100, "y", 0, false))
	if got := two.Siblings(now); len(got) != 2 {
		t.Fatalf("two concurrent SETs: siblings %q", got)
	}
	hash := withColl(two, func(c *crdt.Coll) { c.Put(crdt.CollHash, []byte("f"), []byte("v"), stampAt(200, "n3")) })
	if got := hash.Siblings(now); got != nil {
		t.Fatalf("a hash newer than the SETs: siblings %q, want none", got)
	}
	older := withColl(two, func(c *crdt.Coll) { c.Put(crdt.CollHash, []byte("f"), []byte("v"), stampAt(50, "n3")) })
	if got := older.Siblings(now); len(got) != 2 {
		t.Fatalf("a hash older than the SETs: siblings %q, want both", got)
	}
}

func TestStateLookupExpiry(t *testing.T) {
	s := withColl(State{}, func(c *crdt.Coll) {
		c.Put(crdt.CollSet, []byte("m"), nil, stampAt(100, "n1"))
		c.SetExpire(5000, stampAt(200, "n1"))
	})
	if v, ok := s.Lookup(4999); !ok || v.Type != engine.TypeSet || v.ExpireAt != 5000 {
		t.Fatalf("before the expiry: %+v, %v; want a set expiring at 5000", v, ok)
	}
	if v, ok := s.Lookup(5000); ok {
		t.Fatalf("at the expiry: %+v, want nothing", v)
	}
}

func TestStateIncrByOnACollection(t *testing.T) {
	const now = 1_000_000
	hash := withColl(State{}, func(c *crdt.Coll) { c.Put(crdt.CollHash, []byte("f"), []byte("x"), stampAt(100, "n2")) })
	if _, _, err := hash.IncrBy("n1", 1, now); !errors.Is(err, ErrWrongType) {
		t.Fatalf("INCR on a hash: %v, want ErrWrongType", err)
	}
	// A string written over the hash (newer) counts again.
	over := withSib(t, hash, "n1", 200, "5", 0, false)
	if _, n, err := over.IncrBy("n1", 1, now); err != nil || n != 6 {
		t.Fatalf("INCR on a string newer than the hash: %d, %v; want 6", n, err)
	}
	// A removed hash does not hold the key any more.
	gone := withColl(hash, func(c *crdt.Coll) { c.Clear(stampAt(300, "n1")) })
	if _, n, err := gone.IncrBy("n1", 2, now); err != nil || n != 2 {
		t.Fatalf("INCR on a cleared hash: %d, %v; want 2", n, err)
	}
}

// A state without a collection encodes exactly as before collections
// existed (stored states, hints and anti-entropy hashes of string keys do
// not change): the tag 0xB1, the siblings' length and bytes, the counter.
func TestStateEncodingWithoutACollectionIsUnchanged(t *testing.T) {
	s := withSib(t, State{}, "n1", 100, "5", 0, false)
	s, _, err := s.IncrBy("n2", 3, 0)
	if err != nil || s.Counter.Len() == 0 {
		t.Fatalf("IncrBy: %v", err)
	}
	sb, _ := s.Sibs.AppendBinary(nil)
	cb, _ := s.Counter.AppendBinary(nil)
	want := append(binary.AppendUvarint([]byte{0xB1}, uint64(len(sb))), sb...)
	want = append(want, cb...)
	if got := AppendState(nil, s); !bytes.Equal(got, want) {
		t.Fatalf("AppendState = %x, want the old layout %x", got, want)
	}
}

func TestStateEncodingRejects(t *testing.T) {
	var hash crdt.Coll
	hash.Put(crdt.CollHash, []byte("f"), []byte("x"), stampAt(1, "n1"))
	good := AppendState(nil, State{Coll: hash})
	if good[0] != 0xB2 {
		t.Fatalf("a state with a collection starts with %#x", good[0])
	}
	zeroColl, _ := crdt.Coll{}.AppendBinary(nil)
	noSibs, _ := crdt.Siblings{}.AppendBinary(nil)
	empty := append(binary.AppendUvarint([]byte{0xB2}, uint64(len(noSibs))), noSibs...)
	empty = append(append(empty, 0), zeroColl...)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"an unknown tag", []byte{0xB3, 0}},
		{"the collection tag with an empty collection", empty},
		{"the collection tag with nothing after the siblings", []byte{0xB2, 0}},
		{"a counter length past the end", []byte{0xB2, 0, 9, 1}},
		{"a truncated collection", good[:len(good)-1]},
		{"bytes after the collection", append(bytes.Clone(good), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := DecodeState(tc.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeState(%x) = %+v, %v; want ErrMalformed", tc.b, s, err)
			}
		})
	}
}

func TestDecodeStateNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "b")
		if rapid.Bool().Draw(t, "tagged") && len(b) > 0 {
			b[0] = rapid.SampledFrom([]byte{0xB1, 0xB2}).Draw(t, "tag")
		}
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a state equal to it.
		back, err := DecodeState(AppendState(nil, s))
		if err != nil || !back.Equal(s) {
			t.Fatalf("%x decodes to a state that does not round-trip: %v", b, err)
		}
	})
}

// stateHistory runs random operations on three replicas of one key — the
// way the engine changes a state: string writes and deletes through
// Siblings.Update under the replica's own id, increments under its own
// counter entry, collection writes stamped after everything the replica
// holds, and merges of one replica into another — and returns every state
// seen. Only states the system can reach are drawn, so dots stay unique.
func stateHistory(t *rapid.T) []State {
	ids := []string{"n1", "n2", "n3"}
	reps := make([]State, len(ids))
	clocks := make([]*crdt.Clock, len(ids))
	phys := make([]int64, len(ids))
	for i := range clocks {
		clocks[i] = crdt.NewClock(0)
		phys[i] = rapid.Int64Range(1, 50).Draw(t, "skew") // clocks that disagree
	}
	stamp := func(i int) crdt.Stamp {
		phys[i] += rapid.Int64Range(0, 3).Draw(t, "tick")
		clocks[i].Restore(reps[i].Top().Time)
		return crdt.Stamp{Time: clocks[i].Now(phys[i]), Site: ids[i]}
	}
	members := []string{"a", "b", "c"}
	types := []crdt.CollType{crdt.CollHash, crdt.CollSet, crdt.CollZSet}
	var out []State
	steps := rapid.IntRange(0, 24).Draw(t, "steps")
	for range steps {
		i := rapid.IntRange(0, len(ids)-1).Draw(t, "replica")
		s := reps[i]
		switch rapid.IntRange(0, 6).Draw(t, "op") {
		case 0, 1: // SET or DEL
			st := stamp(i)
			sibs, err := s.Sibs.Update(s.Sibs.Context(), ids[i], packValue([]byte(fmt.Sprint(st.Time.WallMs)), 0),
				crdt.Meta{Time: st.Time, Deleted: rapid.Bool().Draw(t, "del")})
			if err != nil {
				t.Fatal(err)
			}
			s.Sibs = sibs
			s.Coll = s.Coll.Clone()
			s.Coll.Clear(st)
		case 2: // INCRBY
			if c, err := s.Counter.Increment(ids[i], rapid.Int64Range(-5, 5).Draw(t, "delta")); err == nil {
				s.Counter = c
			}
		case 3, 4: // a collection write
			typ := rapid.SampledFrom(types).Draw(t, "type")
			m := []byte(rapid.SampledFrom(members).Draw(t, "member"))
			st := stamp(i)
			s.Coll = s.Coll.Clone()
			if rapid.Bool().Draw(t, "remove") {
				s.Coll.Remove(typ, m, st)
			} else {
				s.Coll.Put(typ, m, []byte(fmt.Sprint(st.Time.WallMs)), st)
			}
		case 5: // EXPIRE on the collection
			s.Coll = s.Coll.Clone()
			s.Coll.SetExpire(rapid.Int64Range(0, 200).Draw(t, "expireAt"), stamp(i))
		case 6: // repair: another replica's state merged in
			j := rapid.IntRange(0, len(ids)-1).Draw(t, "from")
			s = s.Merge(reps[j])
		}
		reps[i] = s
		out = append(out, s)
	}
	return append(out, State{})
}

func TestStateMergeIsAJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := stateHistory(t)
		pick := func(label string) State { return rapid.SampledFrom(h).Draw(t, label) }
		a, b, c := pick("a"), pick("b"), pick("c")
		eq := func(what string, x, y State) {
			if !x.Equal(y) {
				t.Fatalf("%s: %v / %v differ", what, x.Sibs, y.Sibs)
			}
			// Canonical: equal states encode to equal bytes (the
			// anti-entropy hashes compare encodings).
			if !bytes.Equal(AppendState(nil, x), AppendState(nil, y)) {
				t.Fatalf("%s: equal states encode differently", what)
			}
		}
		eq("commutative", a.Merge(b), b.Merge(a))
		eq("associative", a.Merge(b).Merge(c), a.Merge(b.Merge(c)))
		eq("idempotent", a.Merge(a), a)
		eq("absorbs what it merged", a.Merge(b).Merge(b), a.Merge(b))
		eq("zero is the identity", a.Merge(State{}), a)
		// Merging never loses a component of either side.
		m := a.Merge(b)
		eq("the collection is the join", State{Sibs: m.Sibs, Counter: m.Counter, Coll: a.Coll.Join(b.Coll)}, m)
		// Every state round-trips through its encoding.
		for _, s := range []State{a, m} {
			back, err := DecodeState(AppendState(nil, s))
			if err != nil {
				t.Fatal(err)
			}
			eq("round trip", back, s)
		}
		// Replicas that merged the same states answer the same lookup.
		x, y := a.Merge(b).Merge(c), c.Merge(a).Merge(b)
		for _, now := range []int64{0, 100, 1000} {
			vx, okx := x.Lookup(now)
			vy, oky := y.Lookup(now)
			if okx != oky || vx.Type != vy.Type || !bytes.Equal(vx.Value, vy.Value) || vx.ExpireAt != vy.ExpireAt {
				t.Fatalf("merge order changes Lookup at %d: %+v %v / %+v %v", now, vx, okx, vy, oky)
			}
		}
	})
}
