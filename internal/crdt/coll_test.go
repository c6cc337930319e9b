package crdt

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// collReplica is a site or node in the tests: its own clock and state.
type collReplica struct {
	id    string
	clock *Clock
	phys  int64
	c     Coll
}

// stamp issues a stamp newer than everything the replica's state holds,
// as the modes do (the clock observes Top before stamping).
func (r *collReplica) stamp() Stamp {
	r.phys++
	if top := r.c.Top(); !top.Time.IsZero() {
		if _, err := r.clock.Update(top.Time, top.Time.WallMs); err != nil {
			panic(err)
		}
	}
	return Stamp{Time: r.clock.Now(r.phys), Site: r.id}
}

func newCollReplica(id string, phys int64) *collReplica {
	return &collReplica{id: id, clock: NewClock(1 << 40), phys: phys}
}

func members(c Coll, t CollType) string {
	var out []string
	c.Range(t, nil, func(m, v []byte) bool {
		if v != nil {
			out = append(out, string(m)+"="+string(v))
		} else {
			out = append(out, string(m))
		}
		return true
	})
	return fmt.Sprint(out)
}

func TestCollSemantics(t *testing.T) {
	type step struct {
		on  string // replica "a" or "b"; "sync" merges both ways
		op  string // put, rem, clear, cleartype, expire
		t   CollType
		m   string
		v   string
		exp int64
	}
	tests := []struct {
		name  string
		steps []step
		typ   CollType
		want  string // members of typ after both replicas merged
		vis   bool
	}{
		{"concurrent fields of one hash both survive", []step{
			{on: "a", op: "put", t: CollHash, m: "f", v: "1"},
			{on: "b", op: "put", t: CollHash, m: "g", v: "2"},
		}, CollHash, "[f=1 g=2]", true},
		{"one field written on both: the later write wins", []step{
			{on: "a", op: "put", t: CollHash, m: "f", v: "a"},
			{on: "b", op: "put", t: CollHash, m: "f", v: "b"}, // b's clock runs later
		}, CollHash, "[f=b]", true},
		{"a later HDEL beats an earlier concurrent HSET", []step{
			{on: "a", op: "put", t: CollHash, m: "f", v: "a"},
			{on: "b", op: "rem", t: CollHash, m: "f"},
		}, CollHash, "[]", false},
		{"an earlier HDEL loses to a later concurrent HSET", []step{
			{on: "b", op: "put", t: CollHash, m: "keep", v: "x"},
			{on: "sync"},
			{on: "a", op: "rem", t: CollHash, m: "f"},
			{on: "b", op: "put", t: CollHash, m: "f", v: "b"},
		}, CollHash, "[f=b keep=x]", true},
		{"add wins over a concurrent remove that did not see it", []step{
			{on: "a", op: "put", t: CollSet, m: "m"},
			{on: "sync"},
			{on: "a", op: "rem", t: CollSet, m: "m"},
			{on: "b", op: "put", t: CollSet, m: "m"}, // a second add, unseen by a's remove
		}, CollSet, "[m]", true},
		{"a remove that saw every add removes the member", []step{
			{on: "a", op: "put", t: CollSet, m: "m"},
			{on: "b", op: "put", t: CollSet, m: "m"},
			{on: "sync"},
			{on: "b", op: "rem", t: CollSet, m: "m"},
		}, CollSet, "[]", false},
		{"a remove is final even if the add arrives again", []step{
			{on: "a", op: "put", t: CollSet, m: "m"},
			{on: "a", op: "put", t: CollSet, m: "n"},
			{on: "sync"},
			{on: "b", op: "rem", t: CollSet, m: "m"},
			{on: "sync"},
			{on: "sync"},
		}, CollSet, "[n]", true},
		{"DEL clears by time: a later concurrent write survives", []step{
			{on: "a", op: "put", t: CollHash, m: "old", v: "1"},
			{on: "sync"},
			{on: "a", op: "clear"},
			{on: "b", op: "put", t: CollHash, m: "new", v: "2"},
		}, CollHash, "[new=2]", true},
		{"DEL clears by time: an earlier concurrent write goes", []step{
			{on: "a", op: "put", t: CollSet, m: "old"},
			{on: "sync"},
			{on: "a", op: "put", t: CollSet, m: "early"},
			{on: "b", op: "clear"}, // b's clock runs ahead of a's
		}, CollSet, "[]", false},
		{"sorted-set scores are per member, last writer wins", []step{
			{on: "a", op: "put", t: CollZSet, m: "x", v: "1"},
			{on: "b", op: "put", t: CollZSet, m: "x", v: "5"},
			{on: "a", op: "put", t: CollZSet, m: "y", v: "2"},
		}, CollZSet, "[x=5 y=2]", true},
		{"ClearType drops one type only", []step{
			{on: "a", op: "put", t: CollSet, m: "s"},
			{on: "a", op: "put", t: CollHash, m: "h", v: "1"},
			{on: "a", op: "cleartype", t: CollSet},
		}, CollHash, "[h=1]", true},
		{"an expired collection is not visible", []step{
			{on: "a", op: "put", t: CollHash, m: "h", v: "1"},
			{on: "b", op: "expire", exp: 50},
		}, CollHash, "[h=1]", false},
		{"a clear resets an older expiry", []step{
			{on: "a", op: "put", t: CollHash, m: "h", v: "1"},
			{on: "a", op: "expire", exp: 50},
			{on: "a", op: "clear"},
			{on: "a", op: "put", t: CollHash, m: "h2", v: "2"},
		}, CollHash, "[h2=2]", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reps := map[string]*collReplica{"a": newCollReplica("a", 1000), "b": newCollReplica("b", 2000)}
			for _, s := range tc.steps {
				if s.on == "sync" {
					j := reps["a"].c.Join(reps["b"].c)
					reps["a"].c, reps["b"].c = j, j.Clone()
					continue
				}
				r := reps[s.on]
				switch at := r.stamp(); s.op {
				case "put":
					var v []byte
					if s.t != CollSet {
						v = []byte(s.v)
					}
					r.c.Put(s.t, []byte(s.m), v, at)
				case "rem":
					r.c.Remove(s.t, []byte(s.m), at)
				case "clear":
					r.c.Clear(at)
				case "cleartype":
					r.c.ClearType(s.t, at)
				case "expire":
					r.c.SetExpire(s.exp, at)
				}
			}
			ab, ba := reps["a"].c.Join(reps["b"].c), reps["b"].c.Join(reps["a"].c)
			if !ab.Equal(ba) {
				t.Fatalf("replicas do not converge: %s vs %s", members(ab, tc.typ), members(ba, tc.typ))
			}
			if got := members(ab, tc.typ); got != tc.want {
				t.Fatalf("members = %s, want %s", got, tc.want)
			}
			typ, _, vis := ab.Visible(100)
			if vis != tc.vis || (vis && typ != tc.typ) {
				t.Fatalf("Visible = %v, %v; want %v, %v", typ, vis, tc.typ, tc.vis)
			}
			if n := ab.Len(tc.typ); n != len(bytes.Fields([]byte(tc.want[1:len(tc.want)-1]))) {
				t.Fatalf("Len = %d for %s", n, tc.want)
			}
		})
	}
}

func TestCollVisibleTypeIsTheNewest(t *testing.T) {
	a, b := newCollReplica("a", 1000), newCollReplica("b", 5000)
	a.c.Put(CollHash, []byte("f"), []byte("v"), a.stamp())
	b.c.Put(CollSet, []byte("m"), nil, b.stamp())
	j := a.c.Join(b.c)
	typ, newest, ok := j.Visible(0)
	if !ok || typ != CollSet || newest.Site != "b" {
		t.Fatalf("Visible = %v %v %v; want the set (b wrote later)", typ, newest, ok)
	}
	// The hash's entries are still there: the mode hides them, a write
	// of the set's type clears them.
	if j.Len(CollHash) != 1 {
		t.Fatalf("hash part lost")
	}
}

func TestCollRange(t *testing.T) {
	r := newCollReplica("a", 1)
	for _, m := range []string{"b", "d", "a", "c"} {
		r.c.Put(CollHash, []byte(m), []byte(m+m), r.stamp())
		r.c.Put(CollSet, []byte(m), nil, r.stamp())
	}
	r.c.Put(CollZSet, []byte("z"), []byte("1"), r.stamp())
	r.c.Remove(CollHash, []byte("c"), r.stamp())
	collect := func(rev bool, t CollType, from []byte) string {
		var out []string
		fn := func(m, _ []byte) bool { out = append(out, string(m)); return len(out) < 10 }
		if rev {
			r.c.RangeReverse(t, from, fn)
		} else {
			r.c.Range(t, from, fn)
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		rev  bool
		t    CollType
		from string
		nilf bool
		want string
	}{
		{false, CollHash, "", true, "[a b d]"},
		{false, CollHash, "b", false, "[b d]"},
		{false, CollHash, "bb", false, "[d]"},
		{true, CollHash, "", true, "[d b a]"},
		{true, CollHash, "d", false, "[b a]"},
		{true, CollSet, "", true, "[d c b a]"},
		{true, CollSet, "a", false, "[]"},
		{false, CollZSet, "", true, "[z]"},
		{true, CollZSet, "", true, "[z]"},
	} {
		var from []byte
		if !tc.nilf {
			from = []byte(tc.from)
		}
		if got := collect(tc.rev, tc.t, from); got != tc.want {
			t.Errorf("range(rev=%v, %d, %q) = %s, want %s", tc.rev, tc.t, tc.from, got, tc.want)
		}
	}
	if v, ok := r.c.Get(CollHash, []byte("b")); !ok || string(v) != "bb" {
		t.Fatalf("Get b = %q %v", v, ok)
	}
	if _, ok := r.c.Get(CollHash, []byte("c")); ok {
		t.Fatal("deleted field visible")
	}
}

// collHistory runs random operations on three replicas that merge with
// each other at random, and returns their states.
func collHistory(t *rapid.T) []Coll {
	reps := []*collReplica{newCollReplica("a", 100), newCollReplica("b", 100), newCollReplica("eu", 90)}
	ms := rapid.SampledFrom([]string{"", "x", "y", "xy"})
	ts := rapid.SampledFrom(collTypes[:])
	for i, n := 0, rapid.IntRange(0, 30).Draw(t, "ops"); i < n; i++ {
		r := reps[rapid.IntRange(0, len(reps)-1).Draw(t, "replica")]
		switch at := r.stamp(); rapid.IntRange(0, 9).Draw(t, "op") {
		case 0, 1, 2, 3:
			typ := ts.Draw(t, "type")
			var v []byte
			if typ != CollSet {
				v = []byte(rapid.SampledFrom([]string{"", "1", "2"}).Draw(t, "value"))
			}
			r.c.Put(typ, []byte(ms.Draw(t, "member")), v, at)
		case 4, 5:
			r.c.Remove(ts.Draw(t, "type"), []byte(ms.Draw(t, "member")), at)
		case 6:
			r.c.Clear(at)
		case 7:
			r.c.ClearType(ts.Draw(t, "type"), at)
		case 8:
			r.c.SetExpire(rapid.Int64Range(0, 200).Draw(t, "exp"), at)
		case 9:
			o := reps[rapid.IntRange(0, len(reps)-1).Draw(t, "from")]
			r.c = r.c.Join(o.c)
		}
	}
	out := make([]Coll, len(reps))
	for i, r := range reps {
		out[i] = r.c
	}
	return out
}

func TestCollJoinIsAJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := collHistory(t)
		a, b, c := s[0], s[1], s[2]
		before := mustEncode(t, a)
		if !a.Join(b).Equal(b.Join(a)) {
			t.Fatalf("not commutative")
		}
		if !a.Join(b).Join(c).Equal(a.Join(b.Join(c))) {
			t.Fatalf("not associative")
		}
		if !a.Join(a).Equal(a) {
			t.Fatalf("not idempotent")
		}
		if !bytes.Equal(mustEncode(t, a.Join(c)), mustEncode(t, c.Join(a))) {
			t.Fatal("equal states encode differently")
		}
		if !bytes.Equal(mustEncode(t, a), before) {
			t.Fatal("Join changed its input")
		}
		// Joining in what another replica knows never loses anything the
		// join already held (monotone): joining it again changes nothing.
		j := a.Join(b)
		if !j.Join(a).Equal(j) || !j.Join(b).Equal(j) {
			t.Fatal("join is not an upper bound of its inputs")
		}
	})
}

func TestCollEncodingRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		for _, c := range collHistory(t) {
			b := mustEncode(t, c)
			d, err := DecodeColl(b)
			if err != nil {
				t.Fatalf("DecodeColl(%x): %v", b, err)
			}
			if !d.Equal(c) {
				t.Fatalf("round trip changed the state")
			}
			checkCanonical(t, "DecodeColl", DecodeColl, b)
			// Whatever decodes is a valid state: the operations work on it.
			d.Visible(50)
			d.Top()
			if !d.Join(d).Equal(d) {
				t.Fatal("decoded state is not idempotent")
			}
		}
	})
}

func TestDecodeCollNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var in []byte
		if rapid.Bool().Draw(t, "nearValid") {
			in = mutate(t, mustEncode(t, collHistory(t)[0]))
		} else {
			in = rapid.SliceOfN(rapid.Byte(), 0, 60).Draw(t, "bytes")
		}
		checkCanonical(t, "DecodeColl", DecodeColl, in)
	})
}

func TestDecodeCollRejects(t *testing.T) {
	r := newCollReplica("a", 10)
	r.c.Put(CollSet, []byte("m"), nil, r.stamp())
	r.c.Put(CollHash, []byte("f"), []byte("v"), r.stamp())
	good := mustEncode(t, r.c)
	if _, err := DecodeColl(good); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":     {},
		"wrong tag": append([]byte{'S'}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(slices.Clone(good), 0),
		"bad type":  {tagColl, 0, 0, 0, 0, 0, 1, 9, 0},
	} {
		if _, err := DecodeColl(b); err == nil {
			t.Errorf("%s: DecodeColl accepted %x", name, b)
		}
	}
	// Out of order: the same entry twice.
	var c Coll
	c.Put(CollHash, []byte("f"), []byte("v"), Stamp{Time: Timestamp{1, 0}, Site: "a"})
	c.entries = append(c.entries, c.entries[0])
	if _, err := DecodeColl(mustEncode(t, c)); err == nil {
		t.Error("duplicate entries accepted")
	}
}

func TestCollClonesAreIndependent(t *testing.T) {
	r := newCollReplica("a", 1)
	r.c.Put(CollSet, []byte("m"), nil, r.stamp())
	cp := r.c.Clone()
	r.c.Remove(CollSet, []byte("m"), r.stamp())
	r.c.Put(CollHash, []byte("f"), []byte("v"), r.stamp())
	if cp.Len(CollSet) != 1 || cp.Len(CollHash) != 0 {
		t.Fatal("a change to the original shows in its clone")
	}
}
