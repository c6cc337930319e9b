package datatype

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/datatype/memstate"
	"github.com/replicant-db/replicant/internal/engine"
)

// open opens key as type t in st, failing the test on an error.
func open(t testing.TB, st *memstate.State, key string, typ engine.Type) *Coll {
	t.Helper()
	c, err := Open(st, []byte(key), typ)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	return c
}

func view(t testing.TB, st *memstate.State, key string, typ engine.Type) *View {
	t.Helper()
	v, ok, err := Read(st, []byte(key), typ)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if !ok {
		return nil
	}
	return v
}

// fillSet makes key a set of members in st.
func fillSet(t testing.TB, st *memstate.State, key string, members ...string) *View {
	t.Helper()
	c := open(t, st, key, engine.TypeSet)
	for _, m := range members {
		if _, err := SetAdd(c, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	return view(t, st, key, engine.TypeSet)
}

// frozen is a read-only copy of a state, scanned by binary search:
// memstate sorts every key on every scan, too slow for tests that seek
// hundreds of thousands of times.
type frozen struct {
	keys  []string
	vals  map[string]engine.Version
	scans int // calls of Scan and ScanReverse
}

// frozenReverse is a frozen state that also scans backwards
// (engine.ReverseScanner), as single-leader's and memstate's do.
type frozenReverse struct{ *frozen }

func (f frozenReverse) ScanReverse(end []byte, fn func([]byte, engine.Version) bool) error {
	f.scans++
	i := len(f.keys)
	if end != nil {
		i, _ = slices.BinarySearch(f.keys, string(end))
	}
	for i--; i >= 0; i-- {
		if !fn([]byte(f.keys[i]), f.vals[f.keys[i]]) {
			return nil
		}
	}
	return nil
}

func freeze(t testing.TB, st *memstate.State) *frozen {
	t.Helper()
	f := &frozen{vals: map[string]engine.Version{}}
	if err := st.Scan(nil, func(k []byte, v engine.Version) bool {
		f.keys = append(f.keys, string(k))
		f.vals[string(k)] = v
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *frozen) Get(key []byte) (engine.Version, bool, error) {
	v, ok := f.vals[string(key)]
	return v, ok, nil
}

func (f *frozen) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	f.scans++
	i, _ := slices.BinarySearch(f.keys, string(start))
	for ; i < len(f.keys); i++ {
		if !fn([]byte(f.keys[i]), f.vals[f.keys[i]]) {
			return nil
		}
	}
	return nil
}

// largeSet makes key a set of members and returns it read from a frozen
// copy of the state.
func largeSet(t testing.TB, members []string) *View {
	v, _ := largeSetOver(t, members, false)
	return v
}

// largeSetOver is largeSet over a state that scans backwards too when
// reverse is set; the state counts the scans.
func largeSetOver(t testing.TB, members []string, reverse bool) (*View, *frozen) {
	t.Helper()
	st := &memstate.State{}
	fillSet(t, st, "s", members...)
	f := freeze(t, st)
	var s Scanner = f
	if reverse {
		s = frozenReverse{f}
	}
	v, ok, err := Read(s, []byte("s"), engine.TypeSet)
	if err != nil || !ok {
		t.Fatalf("read: %v %v", ok, err)
	}
	return v, f
}

func rests(es []Elem) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Rest)
	}
	return out
}

func strs(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// TestHashSetModel runs random hash and set operations on memstate and on
// plain maps, and requires the same contents, lengths and answers after
// every step (rapid shrinks a failure to a short sequence).
func TestHashSetModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		st := &memstate.State{}
		hashes := map[string]map[string]string{}
		sets := map[string]map[string]bool{}
		keys := []string{"a", "b", "c"}
		elem := rapid.SampledFrom([]string{"", "x", "xy", "y", "1", "10", "2", "\xff", "\xff\xff", "\x00"})
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 1))
		// typeOf is the model's type of key: a key holds one type at most.
		typeOf := func(k string) engine.Type {
			if _, ok := hashes[k]; ok {
				return engine.TypeHash
			}
			if _, ok := sets[k]; ok {
				return engine.TypeSet
			}
			return 0
		}
		for step := range rapid.IntRange(1, 150).Draw(rt, "steps") {
			k := rapid.SampledFrom(keys).Draw(rt, "key")
			op := rapid.SampledFrom([]string{"hset", "hdel", "sadd", "srem", "spop", "smove", "store", "algebra", "random"}).Draw(rt, "op")
			wantWrong := false
			switch op {
			case "hset", "hdel":
				wantWrong = typeOf(k) == engine.TypeSet
			case "sadd", "srem", "spop", "smove":
				wantWrong = typeOf(k) == engine.TypeHash
			}
			var err error
			switch op {
			case "hset", "hdel":
				var c *Coll
				if c, err = Open(st, []byte(k), engine.TypeHash); err != nil {
					break
				}
				f, v := elem.Draw(rt, "field"), elem.Draw(rt, "value")
				if op == "hset" {
					created, err := HashSet(c, []byte(f), []byte(v))
					if err != nil {
						rt.Fatal(err)
					}
					if hashes[k] == nil {
						hashes[k] = map[string]string{}
					}
					_, had := hashes[k][f]
					if created == had {
						rt.Fatalf("step %d: HashSet(%q) created=%v, model had it: %v", step, f, created, had)
					}
					hashes[k][f] = v
				} else {
					removed, err := HashDel(c, []byte(f))
					if err != nil {
						rt.Fatal(err)
					}
					_, had := hashes[k][f]
					if removed != had {
						rt.Fatalf("step %d: HashDel(%q)=%v, model had it: %v", step, f, removed, had)
					}
					delete(hashes[k], f)
					if len(hashes[k]) == 0 {
						delete(hashes, k)
					}
				}
				err = c.Save()
			case "sadd", "srem", "spop":
				var c *Coll
				if c, err = Open(st, []byte(k), engine.TypeSet); err != nil {
					break
				}
				m := elem.Draw(rt, "member")
				switch op {
				case "sadd":
					added, err := SetAdd(c, []byte(m))
					if err != nil {
						rt.Fatal(err)
					}
					if sets[k] == nil {
						sets[k] = map[string]bool{}
					}
					if added == sets[k][m] {
						rt.Fatalf("step %d: SetAdd(%q)=%v, model had it: %v", step, m, added, sets[k][m])
					}
					sets[k][m] = true
				case "srem":
					removed, err := SetRem(c, []byte(m))
					if err != nil {
						rt.Fatal(err)
					}
					if removed != sets[k][m] {
						rt.Fatalf("step %d: SetRem(%q)=%v, model had it: %v", step, m, removed, sets[k][m])
					}
					delete(sets[k], m)
				case "spop":
					n := int64(rapid.IntRange(1, 4).Draw(rt, "count"))
					popped, err := SetPop(c, rng, n)
					if err != nil {
						rt.Fatal(err)
					}
					if want := min(int(n), len(sets[k])); len(popped) != want {
						rt.Fatalf("step %d: SetPop(%d) popped %d of %d", step, n, len(popped), len(sets[k]))
					}
					for _, p := range popped {
						if !sets[k][string(p)] {
							rt.Fatalf("step %d: popped %q, not a member (or twice)", step, p)
						}
						delete(sets[k], string(p))
					}
				}
				if len(sets[k]) == 0 {
					delete(sets, k)
				}
				err = c.Save()
			case "smove":
				dst := rapid.SampledFrom(keys).Draw(rt, "dst")
				m := elem.Draw(rt, "member")
				if typeOf(dst) == engine.TypeHash {
					wantWrong = true
				}
				var from, to *Coll
				if from, err = Open(st, []byte(k), engine.TypeSet); err != nil {
					break
				}
				if to, err = Open(st, []byte(dst), engine.TypeSet); err != nil {
					break
				}
				if k == dst {
					break
				}
				moved, err := SetRem(from, []byte(m))
				if err != nil {
					rt.Fatal(err)
				}
				if moved != sets[k][m] {
					rt.Fatalf("step %d: SMOVE removed=%v, model had it: %v", step, moved, sets[k][m])
				}
				if moved {
					if _, err := SetAdd(to, []byte(m)); err != nil {
						rt.Fatal(err)
					}
					delete(sets[k], m)
					if sets[dst] == nil {
						sets[dst] = map[string]bool{}
					}
					sets[dst][m] = true
					if len(sets[k]) == 0 {
						delete(sets, k)
					}
				}
				if err = from.Save(); err == nil {
					err = to.Save()
				}
			case "store", "algebra":
				srcs := []string{rapid.SampledFrom(keys).Draw(rt, "src1"), rapid.SampledFrom(keys).Draw(rt, "src2")}
				kind := rapid.SampledFrom([]string{"inter", "union", "diff"}).Draw(rt, "kind")
				var vs []*View
				for _, s := range srcs {
					if typeOf(s) == engine.TypeHash {
						wantWrong = true
					}
					v, ok, rerr := Read(st, []byte(s), engine.TypeSet)
					if rerr != nil {
						err = rerr
						break
					}
					if ok {
						vs = append(vs, v)
					} else {
						vs = append(vs, nil)
					}
				}
				if err != nil {
					break
				}
				got, gerr := algebra(kind, vs)
				if gerr != nil {
					rt.Fatal(gerr)
				}
				want := modelAlgebra(kind, sets[srcs[0]], sets[srcs[1]])
				if !slices.Equal(strs(got), want) {
					rt.Fatalf("step %d: %s(%v) = %q, model %q", step, kind, srcs, got, want)
				}
				if op == "store" {
					if err = StoreSet(st, []byte(k), got); err != nil {
						rt.Fatal(err)
					}
					delete(hashes, k)
					delete(sets, k)
					if len(want) > 0 {
						sets[k] = map[string]bool{}
						for _, m := range want {
							sets[k][m] = true
						}
					}
				}
			case "random":
				checkRandom(rt, st, k, typeOf(k), hashes[k], sets[k], rng)
			}
			if wantWrong != errors.Is(err, ErrWrongType) {
				rt.Fatalf("step %d: %s on %s (%v): err %v, want WRONGTYPE: %v", step, op, k, typeOf(k), err, wantWrong)
			}
			if err != nil && !errors.Is(err, ErrWrongType) {
				rt.Fatal(err)
			}
			for _, key := range keys {
				checkModel(rt, st, key, hashes[key], sets[key])
			}
		}
	})
}

func algebra(kind string, vs []*View) ([][]byte, error) {
	switch kind {
	case "union":
		return SetUnion(vs)
	case "diff":
		return SetDiff(vs)
	}
	for _, v := range vs {
		if v == nil {
			return nil, nil
		}
	}
	var out [][]byte
	err := SetInter(vs, func(m []byte) bool { out = append(out, m); return true })
	return out, err
}

func modelAlgebra(kind string, a, b map[string]bool) []string {
	var out []string
	switch kind {
	case "inter":
		for m := range a {
			if b[m] {
				out = append(out, m)
			}
		}
	case "union":
		for m := range a {
			out = append(out, m)
		}
		for m := range b {
			if !a[m] {
				out = append(out, m)
			}
		}
	case "diff":
		for m := range a {
			if !b[m] {
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkModel requires key to hold exactly the model's hash or set.
func checkModel(rt *rapid.T, st *memstate.State, key string, h map[string]string, s map[string]bool) {
	v, found, _ := st.Get([]byte(key))
	if h == nil && s == nil {
		if found {
			rt.Fatalf("%s exists (type %v), model has nothing", key, v.Type)
		}
		return
	}
	typ, sub := engine.TypeHash, SubField
	if s != nil {
		typ, sub = engine.TypeSet, SubMember
	}
	vw, ok, err := Read(st, []byte(key), typ)
	if err != nil || !ok {
		rt.Fatalf("%s: read as %v: found %v, %v", key, typ, ok, err)
	}
	all, err := vw.All(sub)
	if err != nil {
		rt.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range all {
		got[string(e.Rest)] = string(e.Value)
	}
	want := h
	if s != nil {
		want = map[string]string{}
		for m := range s {
			want[m] = ""
		}
	}
	if !maps.Equal(got, want) || vw.Meta.Len != int64(len(want)) {
		rt.Fatalf("%s: holds %q (Len %d), model %q", key, got, vw.Meta.Len, want)
	}
}

// checkRandom: every random choice names elements of the collection;
// distinct choices are distinct and as many as asked for or all.
func checkRandom(rt *rapid.T, st *memstate.State, key string, typ engine.Type, h map[string]string, s map[string]bool, rng *rand.Rand) {
	if typ == 0 {
		return
	}
	sub, n := SubField, len(h)
	if typ == engine.TypeSet {
		sub, n = SubMember, len(s)
	}
	v, _, err := Read(st, []byte(key), typ)
	if err != nil {
		rt.Fatal(err)
	}
	isIn := func(e Elem) bool {
		if typ == engine.TypeSet {
			return s[string(e.Rest)]
		}
		val, ok := h[string(e.Rest)]
		return ok && val == string(e.Value)
	}
	one, ok, err := v.RandomOne(rng, sub)
	if err != nil || !ok || !isIn(one) {
		rt.Fatalf("RandomOne of %s: %q %v %v", key, one.Rest, ok, err)
	}
	k := int64(rapid.IntRange(1, 12).Draw(rt, "k"))
	d, err := v.RandomDistinct(rng, sub, k)
	if err != nil || len(d) != min(int(k), n) {
		rt.Fatalf("RandomDistinct(%d) of %d: %d elements, %v", k, n, len(d), err)
	}
	seen := map[string]bool{}
	for _, e := range d {
		if !isIn(e) || seen[string(e.Rest)] {
			rt.Fatalf("RandomDistinct: %q not a member or repeated", e.Rest)
		}
		seen[string(e.Rest)] = true
	}
	r, err := v.RandomRepeat(rng, sub, k)
	if err != nil || int64(len(r)) != k {
		rt.Fatalf("RandomRepeat(%d): %d elements, %v", k, len(r), err)
	}
	for _, e := range r {
		if !isIn(e) {
			rt.Fatalf("RandomRepeat: %q not a member", e.Rest)
		}
	}
}

// TestWalkerAcrossBatches: a walk returns every element once, in order,
// across batch boundaries, while the caller reads between its steps.
func TestWalkerAcrossBatches(t *testing.T) {
	st := &memstate.State{}
	var members []string
	for i := range 3000 {
		members = append(members, fmt.Sprintf("m%05d", i))
	}
	v := fillSet(t, st, "s", members...)
	w := v.Walk(SubMember, nil)
	var got []string
	for {
		e, ok := w.Next()
		if !ok {
			break
		}
		if found, err := v.Has(SubMember, e.Rest); err != nil || !found {
			t.Fatalf("Has(%q) between steps: %v %v", e.Rest, found, err)
		}
		got = append(got, string(e.Rest))
	}
	if w.Err() != nil || !slices.Equal(got, members) {
		t.Fatalf("walk: %d elements (err %v), want %d in order", len(got), w.Err(), len(members))
	}
	w = v.Walk(SubMember, []byte("m02999"))
	if e, ok := w.Next(); !ok || string(e.Rest) != "m02999" {
		t.Fatalf("walk from the last: %q %v", e.Rest, ok)
	}
	if _, ok := w.Next(); ok {
		t.Fatal("walk past the last element")
	}
}

// TestRandomExactForSmall: below FairLimit every element is equally
// likely; with a fixed seed the counts stay within 25% of the mean.
func TestRandomExactForSmall(t *testing.T) {
	// Members a trie descent would favour ("1" is a prefix of many).
	var members []string
	for i := 1; i <= 200; i++ {
		members = append(members, strconv.Itoa(i))
	}
	v := largeSet(t, members)
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	const rounds = 200 * 400
	for range rounds / 4 {
		e, _, err := v.RandomOne(rng, SubMember)
		if err != nil {
			t.Fatal(err)
		}
		counts[string(e.Rest)]++
		d, err := v.RandomDistinct(rng, SubMember, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range d {
			counts[string(e.Rest)]++
		}
	}
	reps, err := v.RandomRepeat(rng, SubMember, rounds)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range reps {
		counts[string(e.Rest)]++
	}
	mean := float64(2*rounds) / float64(len(members))
	for _, m := range members {
		if c := float64(counts[m]); c < 0.75*mean || c > 1.25*mean {
			t.Errorf("%s chosen %v times, mean %v", m, c, mean)
		}
	}
}

// TestDescentReachesEveryElement: on large sets of several shapes the trie
// descent reaches every element, never returns a non-member, and its bias
// stays within the bounds its documentation states for each shape.
func TestDescentReachesEveryElement(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	shapes := map[string]func(i int) string{
		"random bytes": func(int) string {
			b := make([]byte, 8)
			for j := range b {
				b[j] = byte(rnd.Uint32())
			}
			return string(b)
		},
		"fixed-width numbers": func(i int) string { return fmt.Sprintf("user:%06d", i*7) },
		"sequential numbers":  func(i int) string { return "user:" + strconv.Itoa(i) },
		"long common prefix":  func(i int) string { return string(bytes.Repeat([]byte("p"), 300)) + strconv.Itoa(i) },
		"0xff bytes":          func(i int) string { return "\xff\xff" + string(rune('a'+i%26)) + strconv.Itoa(i) + "\xff" },
	}
	// maxBias bounds the most chosen element's count over the mean, as
	// random.go documents it: unpadded numbers are the worst shape
	// ("user:0" has no children and is chosen one time in ten).
	maxBias := map[string]float64{"random bytes": 10, "fixed-width numbers": 4, "long common prefix": 400, "sequential numbers": 400, "0xff bytes": 15}
	for name, gen := range shapes {
		// 300 elements, 60 draws each: every one is reached; 2000, 20
		// draws each: the bias stays within its bound. The same over a
		// state that bounds branches by seeks and one that reads the last
		// element backwards.
		for _, c := range []struct {
			n       int
			reverse bool
		}{{300, false}, {2000, false}, {300, true}, {2000, true}} {
			n := c.n
			t.Run(fmt.Sprintf("%s/%d/reverse=%v", name, n, c.reverse), func(t *testing.T) {
				members := map[string]bool{}
				var list []string
				for i := range n {
					m := gen(i)
					if !members[m] {
						members[m] = true
						list = append(list, m)
					}
				}
				v, _ := largeSetOver(t, list, c.reverse)
				rng := rand.New(rand.NewPCG(5, 6))
				counts := map[string]int{}
				rounds := 20 * len(list)
				if n == 300 {
					rounds = 60 * len(list)
				}
				for range rounds {
					e, err := v.descend(rng, SubMember)
					if err != nil {
						t.Fatal(err)
					}
					if !members[string(e.Rest)] {
						t.Fatalf("descent returned %q, not a member", e.Rest)
					}
					counts[string(e.Rest)]++
				}
				mean := float64(rounds) / float64(len(list))
				most := 0
				for _, c := range counts {
					most = max(most, c)
				}
				bias := float64(most) / mean
				switch {
				case n == 300 && len(counts) < len(list):
					t.Errorf("reached %d of %d members in %d draws", len(counts), len(list), rounds)
				case n == 2000 && bias > maxBias[name]:
					t.Errorf("most chosen member: %.1f× the mean (bound %v)", bias, maxBias[name])
				}
				t.Logf("%d members, %d reached, most chosen %.1f× the mean", len(list), len(counts), bias)
			})
		}
	}
}

// TestDescentScansPerLevel: over a state that scans backwards, a descent
// costs two scans per level of the trie and one more, whatever the set's
// size: 100 000 members shaped as redis-benchmark's ("element:" and twelve
// digits) branch at five digits, and the last level is read whole.
func TestDescentScansPerLevel(t *testing.T) {
	var list []string
	for i := range 100_000 {
		list = append(list, fmt.Sprintf("element:%012d", i))
	}
	for _, c := range []struct {
		reverse bool
		most    float64 // scans per descent, on average
	}{{true, 2*4 + 1}, {false, 100}} {
		v, f := largeSetOver(t, list, c.reverse)
		rng := rand.New(rand.NewPCG(11, 12))
		const draws = 2000
		f.scans = 0
		for range draws {
			if _, err := v.descend(rng, SubMember); err != nil {
				t.Fatal(err)
			}
		}
		per := float64(f.scans) / draws
		t.Logf("reverse=%v: %.1f scans per descent", c.reverse, per)
		if per > c.most {
			t.Errorf("reverse=%v: %.1f scans per descent, want at most %v", c.reverse, per, c.most)
		}
	}
}

// TestRandomLargePaths: above FairLimit, distinct choices stay distinct
// and repeats come as asked, by descent (few) and by a walk (many).
func TestRandomLargePaths(t *testing.T) {
	var list []string
	for i := range 5000 {
		list = append(list, fmt.Sprintf("%x", i*2654435761))
	}
	v := largeSet(t, list)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, k := range []int64{1, 10, 70, 78, 100, 2000, 4999, 5000, 6000} {
		d, err := v.RandomDistinct(rng, SubMember, k)
		if err != nil || int64(len(d)) != min(k, 5000) {
			t.Fatalf("RandomDistinct(%d): %d, %v", k, len(d), err)
		}
		seen := map[string]bool{}
		for _, e := range d {
			if seen[string(e.Rest)] {
				t.Fatalf("RandomDistinct(%d) repeated %q", k, e.Rest)
			}
			seen[string(e.Rest)] = true
		}
		r, err := v.RandomRepeat(rng, SubMember, k)
		if err != nil || int64(len(r)) != k {
			t.Fatalf("RandomRepeat(%d): %d, %v", k, len(r), err)
		}
	}
}

// TestRandomCorruptLength: a metadata length beyond the elements is
// reported, not looped on.
func TestRandomCorruptLength(t *testing.T) {
	st := &memstate.State{}
	v := fillSet(t, st, "s", "a", "b")
	v.Meta.Len = 5
	rng := rand.New(rand.NewPCG(9, 9))
	for range 20 {
		if _, err := v.RandomDistinct(rng, SubMember, 4); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
	}
	if _, err := v.RandomRepeat(rng, SubMember, 50); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("RandomRepeat over a short set: %v", err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""}, {"a", "b"}, {"a\xff", "b"}, {"\xff\xff", ""}, {"ab", "ac"}, {"a\x00", "a\x01"},
	} {
		got := prefixEnd([]byte(c.in))
		if string(got) != c.want || (c.want == "" && got != nil) {
			t.Errorf("prefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestHashSetWritesNothingWhenUnchanged: a field set to its value, a
// member added again, an absent one removed write no key; a field changed
// to another value rewrites the metadata too (WATCH sees the key).
func TestHashSetWritesNothingWhenUnchanged(t *testing.T) {
	st := &memstate.State{}
	h := open(t, st, "h", engine.TypeHash)
	_, _ = HashSet(h, []byte("f"), []byte("v"))
	_ = h.Save()
	fillSet(t, st, "s", "m")
	w := st.Writes
	h = open(t, st, "h", engine.TypeHash)
	_, _ = HashSet(h, []byte("f"), []byte("v"))
	_, _ = HashDel(h, []byte("nope"))
	_ = h.Save()
	s := open(t, st, "s", engine.TypeSet)
	_, _ = SetAdd(s, []byte("m"))
	_, _ = SetRem(s, []byte("nope"))
	_ = s.Save()
	if st.Writes != w {
		t.Fatalf("unchanged collections wrote %d keys", st.Writes-w)
	}
	before, _, _ := st.Get([]byte("h"))
	h = open(t, st, "h", engine.TypeHash)
	_, _ = HashSet(h, []byte("f"), []byte("w"))
	_ = h.Save()
	if st.Writes != w+2 {
		t.Fatalf("changing a field wrote %d keys, want 2 (the field and the metadata)", st.Writes-w)
	}
	after, _, _ := st.Get([]byte("h"))
	if !bytes.Equal(before.Value, after.Value) {
		t.Fatalf("metadata changed: %x → %x", before.Value, after.Value)
	}
}

// TestSetPopAllDeletesTheKey: popping every member deletes the key in one
// write; the elements are left to the sweeper, which deletes them.
func TestSetPopAllDeletesTheKey(t *testing.T) {
	st := &memstate.State{}
	fillSet(t, st, "s", "a", "b", "c")
	w := st.Writes
	c := open(t, st, "s", engine.TypeSet)
	popped, err := SetPop(c, rand.New(rand.NewPCG(1, 1)), 10)
	if err != nil || len(popped) != 3 {
		t.Fatalf("SetPop: %q %v", popped, err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if st.Writes != w+1 {
		t.Fatalf("popping all wrote %d keys, want 1", st.Writes-w)
	}
	if _, ok, _ := st.Get([]byte("s")); ok {
		t.Fatal("set still exists")
	}
	if n, _, err := sweeperOn(st, 10).Pass(t.Context(), 10); err != nil || n != 3 {
		t.Fatalf("sweep deleted %d (%v), want 3", n, err)
	}
}

// TestStoreSetReplaces: STORE gives dst a new id whatever it held (a
// string, a hash, a set that is also a source); an empty result deletes.
func TestStoreSetReplaces(t *testing.T) {
	st := &memstate.State{}
	a := fillSet(t, st, "a", "x", "y")
	st.Set([]byte("str"), []byte("v"), 0)
	hset(t, st, "h", "f")
	for _, dst := range []string{"str", "h", "a", "new"} {
		if err := StoreSet(st, []byte(dst), [][]byte{[]byte("x"), []byte("z")}); err != nil {
			t.Fatal(err)
		}
		v := view(t, st, dst, engine.TypeSet)
		if v == nil || v.Meta.ID == a.Meta.ID {
			t.Fatalf("%s: %+v", dst, v)
		}
		all, _ := v.All(SubMember)
		if got := rests(all); !slices.Equal(got, []string{"x", "z"}) {
			t.Fatalf("%s holds %q", dst, got)
		}
	}
	if err := StoreSet(st, []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Get([]byte("a")); ok {
		t.Fatal("an empty result left the destination")
	}
	w := st.Writes
	if err := StoreSet(st, []byte("missing"), nil); err != nil || st.Writes != w {
		t.Fatalf("an empty result for a missing destination wrote %d (%v)", st.Writes-w, err)
	}
}
