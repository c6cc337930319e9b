package datatype

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/datatype/memstate"
	"github.com/replicant-db/replicant/internal/engine"
)

// forwardOnly hides memstate's ScanReverse, so the sorted-set code takes
// its forward-scan fallback.
type forwardOnly struct{ st *memstate.State }

func (f forwardOnly) Get(k []byte) (engine.Version, bool, error) { return f.st.Get(k) }
func (f forwardOnly) Set(k, v []byte, e int64)                   { f.st.Set(k, v, e) }
func (f forwardOnly) SetTyped(k []byte, t engine.Type, v []byte, e int64) {
	f.st.SetTyped(k, t, v, e)
}
func (f forwardOnly) Del(k []byte)           { f.st.Del(k) }
func (f forwardOnly) FlushAll()              { f.st.FlushAll() }
func (f forwardOnly) NowMs() int64           { return f.st.NowMs() }
func (f forwardOnly) NewID() (uint64, error) { return f.st.NewID() }
func (f forwardOnly) Scan(s []byte, fn func([]byte, engine.Version) bool) error {
	return f.st.Scan(s, fn)
}

// zstate is what the sorted-set code runs on in these tests.
type zstate interface {
	engine.TypedTxn
	Scanner
}

// zmodel is a sorted set as a map, with Redis's rules written plainly.
type zmodel map[string]float64

func (m zmodel) sorted() []ZEntry {
	var out []ZEntry
	for k, v := range m {
		out = append(out, ZEntry{Member: []byte(k), Score: v})
	}
	slices.SortFunc(out, func(a, b ZEntry) int {
		if c := cmp.Compare(a.Score, b.Score); c != 0 {
			return c
		}
		return bytes.Compare(a.Member, b.Member)
	})
	return out
}

func render(es []ZEntry) string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%q=%v", e.Member, e.Score)
	}
	return b.String()
}

var (
	zMembers = []string{"", "a", "ab", "b", "b\x00", "c", "\x00", "\xff", "m"}
	zScores  = []float64{math.Inf(-1), -1e300, -2.5, -1, math.Copysign(0, -1), 0, 0.5, 1, 1, 2, 3, math.Inf(1)}
)

// zsetMachine checks ZColl and ZView against zmodel after every action.
type zsetMachine struct {
	st    *memstate.State
	s     zstate // st, or st without reverse scans
	m     zmodel
	equal bool // all scores equal: lexicographic commands as intended
}

func (zm *zsetMachine) open(t *rapid.T) *ZColl {
	z, err := OpenZSet(zm.s, []byte("z"))
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func (zm *zsetMachine) save(t *rapid.T, z *ZColl) {
	if err := z.Save(); err != nil {
		t.Fatal(err)
	}
}

// view reads the set; an empty one (no key) reads as an empty view.
func (zm *zsetMachine) view(t *rapid.T) ZView {
	z, ok, err := ReadZSet(zm.s, []byte("z"))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		if len(zm.m) != 0 {
			t.Fatalf("the set is gone, the model has %d members", len(zm.m))
		}
		return ZView{v: &View{s: zm.s, Meta: Meta{ID: math.MaxUint64}}}
	}
	return z
}

func (zm *zsetMachine) score(t *rapid.T) float64 {
	if zm.equal {
		return 1
	}
	return rapid.SampledFrom(zScores).Draw(t, "score")
}

func (zm *zsetMachine) Add(t *rapid.T) {
	member := rapid.SampledFrom(zMembers).Draw(t, "member")
	score := zm.score(t)
	var f ZAddFlags
	switch rapid.IntRange(0, 5).Draw(t, "mode") {
	case 1:
		f.NX = true
	case 2:
		f.XX = true
	case 3:
		f.GT = true
		f.XX = rapid.Bool().Draw(t, "xx")
	case 4:
		f.LT = true
	}
	f.Incr = !zm.equal && rapid.Bool().Draw(t, "incr")
	z := zm.open(t)
	res, err := z.Add([]byte(member), score, f)
	// The model.
	cur, exists := zm.m[member]
	want := ZAddResult{}
	wantErr := false
	switch {
	case !exists && f.XX, exists && f.NX:
		want.Skipped = true
	case !exists:
		want = ZAddResult{Added: true, Score: score}
	default:
		nv := score
		if f.Incr {
			nv += cur
		}
		switch {
		case math.IsNaN(nv):
			wantErr = true
		case (f.LT && nv >= cur) || (f.GT && nv <= cur):
			want.Skipped = true
		default:
			want = ZAddResult{Updated: nv != cur, Score: nv}
		}
	}
	if wantErr {
		if err != ErrNaNScore {
			t.Fatalf("Add(%q, %v, %+v) = %+v, %v; want the NaN error", member, score, f, res, err)
		}
		return
	}
	if err != nil || res.Added != want.Added || res.Updated != want.Updated || res.Skipped != want.Skipped ||
		math.Float64bits(res.Score) != math.Float64bits(want.Score) {
		t.Fatalf("Add(%q, %v, %+v) = %+v, %v; model %+v", member, score, f, res, err, want)
	}
	if want.Added || want.Updated {
		zm.m[member] = want.Score + 0 // a stored -0 reads back as 0
	}
	zm.save(t, z)
}

func (zm *zsetMachine) Remove(t *rapid.T) {
	member := rapid.SampledFrom(zMembers).Draw(t, "member")
	z := zm.open(t)
	ok, err := z.Remove([]byte(member))
	_, want := zm.m[member]
	if err != nil || ok != want {
		t.Fatalf("Remove(%q) = %v, %v; model %v", member, ok, err, want)
	}
	delete(zm.m, member)
	zm.save(t, z)
}

func (zm *zsetMachine) Pop(t *rapid.T) {
	count := rapid.Int64Range(1, 4).Draw(t, "count")
	high := rapid.Bool().Draw(t, "high")
	z := zm.open(t)
	got, err := z.Pop(count, high)
	if err != nil {
		t.Fatal(err)
	}
	want := zm.m.sorted()
	if high {
		slices.Reverse(want)
	}
	want = want[:min(int(count), len(want))]
	if render(got) != render(want) {
		t.Fatalf("Pop(%d, high %v) = %s; model %s", count, high, render(got), render(want))
	}
	for _, e := range want {
		delete(zm.m, string(e.Member))
	}
	zm.save(t, z)
}

func drawScoreRange(t *rapid.T) ScoreRange {
	return ScoreRange{
		Min: rapid.SampledFrom(zScores).Draw(t, "min"), Max: rapid.SampledFrom(zScores).Draw(t, "max"),
		MinEx: rapid.Bool().Draw(t, "minex"), MaxEx: rapid.Bool().Draw(t, "maxex"),
	}
}

func inScore(r ScoreRange, f float64) bool {
	lo := f > r.Min || (!r.MinEx && f == r.Min)
	hi := f < r.Max || (!r.MaxEx && f == r.Max)
	return lo && hi
}

func (zm *zsetMachine) RemoveRangeByScore(t *rapid.T) {
	r := drawScoreRange(t)
	z := zm.open(t)
	es, err := z.View().ByScore(r, false, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	z.RemoveAll(es)
	for k, v := range zm.m {
		if inScore(r, v) {
			delete(zm.m, k)
		}
	}
	zm.save(t, z)
}

func (zm *zsetMachine) CheckRank(t *rapid.T) {
	z := zm.view(t)
	all := zm.m.sorted()
	n := int64(len(all))
	if z.Len() != n {
		t.Fatalf("Len %d, model %d", z.Len(), n)
	}
	if n == 0 {
		return
	}
	start := rapid.Int64Range(0, n-1).Draw(t, "start")
	stop := rapid.Int64Range(start, n-1).Draw(t, "stop")
	rev := rapid.Bool().Draw(t, "rev")
	got, err := z.ByRank(start, stop, rev)
	if err != nil {
		t.Fatal(err)
	}
	ordered := slices.Clone(all)
	if rev {
		slices.Reverse(ordered)
	}
	if want := ordered[start : stop+1]; render(got) != render(want) {
		t.Fatalf("ByRank(%d, %d, rev %v) = %s; model %s", start, stop, rev, render(got), render(want))
	}
	picks := rapid.SliceOfN(rapid.Int64Range(0, n-1), 1, 5).Draw(t, "picks")
	at, err := z.AtRanks(picks)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range picks {
		if render(at[i:i+1]) != render(all[p:p+1]) {
			t.Fatalf("AtRanks(%v)[%d] = %s; model %s", picks, i, render(at[i:i+1]), render(all[p:p+1]))
		}
	}
	member := rapid.SampledFrom(zMembers).Draw(t, "member")
	rank, score, found, err := z.Rank([]byte(member), rev)
	wantRank := slices.IndexFunc(ordered, func(e ZEntry) bool { return string(e.Member) == member })
	if err != nil || found != (wantRank >= 0) || (found && (rank != int64(wantRank) || score != zm.m[member])) {
		t.Fatalf("Rank(%q, rev %v) = %d, %v, %v, %v; model %d", member, rev, rank, score, found, err, wantRank)
	}
}

// Check runs after every action: scores, and Len keys in both sub-spaces.
func (zm *zsetMachine) Check(t *rapid.T) {
	z := zm.view(t)
	for _, member := range zMembers {
		f, ok, err := z.Score([]byte(member))
		want, wantOK := zm.m[member]
		if err != nil || ok != wantOK || f != want || (f == 0 && math.Signbit(f)) {
			t.Fatalf("Score(%q) = %v, %v, %v; model %v, %v", member, f, ok, err, want, wantOK)
		}
	}
	// Both sub-spaces hold Len keys.
	if z.v.Meta.ID != math.MaxUint64 {
		for _, sub := range []byte{SubMember, SubScore} {
			n := 0
			if err := z.v.Scan(sub, nil, func(_, _ []byte) bool { n++; return true }); err != nil {
				t.Fatal(err)
			}
			if int64(n) != z.Len() {
				t.Fatalf("sub-space %c holds %d keys, Len %d", sub, n, z.Len())
			}
		}
	}
}

func (zm *zsetMachine) CheckByScore(t *rapid.T) {
	z := zm.view(t)
	r := drawScoreRange(t)
	rev := rapid.Bool().Draw(t, "rev")
	offset := rapid.Int64Range(-1, 3).Draw(t, "offset")
	limit := rapid.Int64Range(-1, 3).Draw(t, "limit")
	got, err := z.ByScore(r, rev, offset, limit)
	if err != nil {
		t.Fatal(err)
	}
	var in []ZEntry
	for _, e := range zm.m.sorted() {
		if inScore(r, e.Score) {
			in = append(in, e)
		}
	}
	count, err := z.CountByScore(r)
	if err != nil || count != int64(len(in)) {
		t.Fatalf("CountByScore(%+v) = %d, %v; model %d", r, count, err, len(in))
	}
	if rev {
		slices.Reverse(in)
	}
	var want []ZEntry
	if offset >= 0 && offset < int64(len(in)) {
		want = in[offset:]
		if limit >= 0 {
			want = want[:min(int(limit), len(want))]
		}
	}
	if render(got) != render(want) {
		t.Fatalf("ByScore(%+v, rev %v, %d, %d) = %s; model %s", r, rev, offset, limit, render(got), render(want))
	}
}

func drawLexBound(t *rapid.T, name string) LexBound {
	switch rapid.IntRange(0, 5).Draw(t, name+"Kind") {
	case 0:
		return LexBound{Inf: -1, Ex: true}
	case 1:
		return LexBound{Inf: 1, Ex: true}
	}
	return LexBound{Value: []byte(rapid.SampledFrom(zMembers).Draw(t, name)), Ex: rapid.Bool().Draw(t, name+"Ex")}
}

// lexModel is Redis's lexicographic walk written plainly over the index
// order, whatever the scores: it returns the members from the start of
// the walk on (before offset and the end check), and the check that ends
// the walk.
func lexModel(all []ZEntry, r LexRange, rev bool) (walk []ZEntry, in func(ZEntry) bool) {
	cmpBound := func(member string, b LexBound) int {
		switch {
		case b.Inf < 0:
			return 1
		case b.Inf > 0:
			return -1
		}
		return strings.Compare(member, string(b.Value))
	}
	geMin := func(e ZEntry) bool {
		c := cmpBound(string(e.Member), r.Min)
		return c > 0 || (c == 0 && !r.Min.Ex)
	}
	leMax := func(e ZEntry) bool {
		c := cmpBound(string(e.Member), r.Max)
		return c < 0 || (c == 0 && !r.Max.Ex)
	}
	empty := false
	switch {
	case r.Min.Inf != 0 && r.Min.Inf == r.Max.Inf, r.Min.Inf > 0, r.Max.Inf < 0:
		empty = true
	case r.Min.Inf == 0 && r.Max.Inf == 0:
		c := strings.Compare(string(r.Min.Value), string(r.Max.Value))
		empty = c > 0 || (c == 0 && (r.Min.Ex || r.Max.Ex))
	}
	if empty || len(all) == 0 || !geMin(all[len(all)-1]) || !leMax(all[0]) {
		return nil, leMax
	}
	order := slices.Clone(all)
	first, in := geMin, leMax
	if rev {
		slices.Reverse(order)
		first, in = leMax, geMin
	}
	i := slices.IndexFunc(order, first)
	if i < 0 || !in(order[i]) {
		return nil, in
	}
	return order[i:], in
}

func (zm *zsetMachine) CheckByLex(t *rapid.T) {
	z := zm.view(t)
	r := LexRange{Min: drawLexBound(t, "min"), Max: drawLexBound(t, "max")}
	rev := rapid.Bool().Draw(t, "rev")
	offset := rapid.Int64Range(-1, 3).Draw(t, "offset")
	limit := rapid.Int64Range(-1, 3).Draw(t, "limit")
	got, err := z.ByLex(r, rev, offset, limit)
	if err != nil {
		t.Fatal(err)
	}
	all := zm.m.sorted()
	walk, in := lexModel(all, r, rev)
	var want []ZEntry
	if offset >= 0 && offset < int64(len(walk)) {
		for _, e := range walk[offset:] {
			if !in(e) || (limit >= 0 && int64(len(want)) == limit) {
				break
			}
			want = append(want, e)
		}
	}
	if render(got) != render(want) {
		t.Fatalf("ByLex(%+v, rev %v, %d, %d) on %s = %s; model %s", r, rev, offset, limit, render(all), render(got), render(want))
	}
	walk, in = lexModel(all, r, false)
	wantCount := 0
	for _, e := range walk {
		if !in(e) {
			break
		}
		wantCount++
	}
	if count, err := z.CountByLex(r); err != nil || count != int64(wantCount) {
		t.Fatalf("CountByLex(%+v) on %s = %d, %v; model %d", r, render(all), count, err, wantCount)
	}
}

// TestZSetMatchesModel drives a sorted set with random ZADD (every flag),
// ZREM, ZPOP and ZREMRANGEBYSCORE steps and checks every read against a
// map after each: scores, ranks, ranges by rank, score and lex (with equal
// scores, and mixed ones, where Redis's walk is defined by index order),
// counts, and that both sub-spaces hold Len keys. It runs with and without
// reverse scans.
func TestZSetMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := &memstate.State{}
		zm := &zsetMachine{st: st, s: st, m: zmodel{}, equal: rapid.Bool().Draw(t, "equalScores")}
		if rapid.Bool().Draw(t, "forwardOnly") {
			zm.s = forwardOnly{st}
		}
		t.Repeat(rapid.StateMachineActions(zm))
	})
}

// TestZSetNoOpWritesNothing: a ZADD that changes nothing writes nothing,
// and a set emptied by a command is deleted.
func TestZSetNoOpWritesNothing(t *testing.T) {
	st := &memstate.State{}
	z, _ := OpenZSet(st, []byte("z"))
	if _, err := z.Add([]byte("a"), 1, ZAddFlags{}); err != nil {
		t.Fatal(err)
	}
	if err := z.Save(); err != nil {
		t.Fatal(err)
	}
	w := st.Writes
	z, _ = OpenZSet(st, []byte("z"))
	for _, step := range []struct {
		score float64
		f     ZAddFlags
	}{{1, ZAddFlags{}}, {1, ZAddFlags{GT: true}}, {5, ZAddFlags{NX: true}}, {0, ZAddFlags{Incr: true}}, {7, ZAddFlags{LT: true}}} {
		if res, err := z.Add([]byte("a"), step.score, step.f); err != nil || res.Updated || res.Added {
			t.Fatalf("Add(a, %v, %+v) = %+v, %v: want no change", step.score, step.f, res, err)
		}
	}
	if res, err := z.Add([]byte("new"), 1, ZAddFlags{XX: true}); err != nil || !res.Skipped {
		t.Fatalf("XX of a new member: %+v, %v", res, err)
	}
	if err := z.Save(); err != nil || st.Writes != w {
		t.Fatalf("ZADDs that changed nothing wrote %d keys (%v)", st.Writes-w, err)
	}
	z, _ = OpenZSet(st, []byte("z"))
	if _, err := z.Pop(5, true); err != nil {
		t.Fatal(err)
	}
	if err := z.Save(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Get([]byte("z")); ok {
		t.Fatal("an emptied sorted set still exists")
	}
}

// TestZSetWrongType: every entry point refuses another type's key.
func TestZSetWrongType(t *testing.T) {
	st := &memstate.State{}
	st.Set([]byte("s"), []byte("x"), 0)
	hset(t, st, "h", "f")
	for _, k := range []string{"s", "h"} {
		if _, err := OpenZSet(st, []byte(k)); err != ErrWrongType {
			t.Errorf("OpenZSet(%s): %v", k, err)
		}
		if _, _, err := ReadZSet(st, []byte(k)); err != ErrWrongType {
			t.Errorf("ReadZSet(%s): %v", k, err)
		}
		if _, err := OpenZSource(st, []byte(k)); err != ErrWrongType {
			t.Errorf("OpenZSource(%s): %v", k, err)
		}
	}
}

// TestZSetPopBounds: pops move the bound of their end inward, and a
// member added or moved beyond a bound is still found by the next pop and
// by range reads.
func TestZSetPopBounds(t *testing.T) {
	st := &memstate.State{}
	open := func() *ZColl {
		t.Helper()
		z, err := OpenZSet(st, []byte("z"))
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	save := func(z *ZColl) {
		t.Helper()
		if err := z.Save(); err != nil {
			t.Fatal(err)
		}
	}
	add := func(member string, score float64) {
		t.Helper()
		z := open()
		if _, err := z.Add([]byte(member), score, ZAddFlags{}); err != nil {
			t.Fatal(err)
		}
		save(z)
	}
	pop := func(n int64, high bool) string {
		t.Helper()
		z := open()
		es, err := z.Pop(n, high)
		if err != nil {
			t.Fatal(err)
		}
		save(z)
		return render(es)
	}
	for i := 1; i <= 10; i++ {
		add(fmt.Sprint("m", i), float64(i))
	}
	steps := []struct {
		do   func() string
		want string
	}{
		{func() string { return pop(3, false) }, render([]ZEntry{{[]byte("m1"), 1}, {[]byte("m2"), 2}, {[]byte("m3"), 3}})},
		{func() string { return pop(2, true) }, render([]ZEntry{{[]byte("m10"), 10}, {[]byte("m9"), 9}})},
		// Below the low bound, above the high one: the pops still see them.
		{func() string { add("low", -1); return pop(1, false) }, render([]ZEntry{{[]byte("low"), -1}})},
		{func() string { add("high", 100); return pop(1, true) }, render([]ZEntry{{[]byte("high"), 100}})},
		// A member moved across the bound.
		{func() string { add("m5", -5); return pop(1, false) }, render([]ZEntry{{[]byte("m5"), -5}})},
		// A range read from either end sees exactly what is left.
		{func() string {
			es, err := open().View().ByRank(0, 2, false)
			if err != nil {
				t.Fatal(err)
			}
			return render(es)
		}, render([]ZEntry{{[]byte("m4"), 4}, {[]byte("m6"), 6}, {[]byte("m7"), 7}})},
		{func() string {
			es, err := open().View().ByRank(0, 0, true)
			if err != nil {
				t.Fatal(err)
			}
			return render(es)
		}, render([]ZEntry{{[]byte("m8"), 8}})},
	}
	for i, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("step %d: %s, want %s", i, got, s.want)
		}
	}
	m := open().Meta
	if !m.LowSet || !m.HighSet || m.Low != scoreBits(-5) || m.High != scoreBits(100) {
		t.Fatalf("bounds after the pops: %+v, want low at -5's encoding and high at 100's (the last popped from each end)", m)
	}
}
