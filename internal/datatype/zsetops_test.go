package datatype

import (
	"cmp"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/datatype/memstate"
	"github.com/replicant-db/replicant/internal/engine"
)

// opsInput is one key of a set-operation test: missing, a sorted set or a
// set, with its model.
type opsInput struct {
	key  string
	typ  engine.Type // 0: missing
	vals map[string]float64
}

func drawOpsInput(t *rapid.T, st *memstate.State, key string) opsInput {
	in := opsInput{key: key, vals: map[string]float64{}}
	switch rapid.IntRange(0, 2).Draw(t, key+"Type") {
	case 0:
		return in
	case 1:
		in.typ = engine.TypeZSet
	case 2:
		in.typ = engine.TypeSet
	}
	c, err := Open(st, []byte(key), in.typ)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rapid.SliceOfNDistinct(rapid.SampledFrom(zMembers), 1, 5, rapid.ID[string]).Draw(t, key+"Members") {
		if in.typ == engine.TypeSet {
			in.vals[m] = 1
			c.Meta.Len++
			if err := c.Put(SubMember, []byte(m), nil); err != nil {
				t.Fatal(err)
			}
			continue
		}
		f := rapid.SampledFrom(zScores).Draw(t, "score") + 0
		in.vals[m] = f
		if _, err := (&ZColl{c}).Add([]byte(m), f, ZAddFlags{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	return in
}

// modelCombine is ZUNION/ZINTER/ZDIFF over maps, following Redis's rules:
// sources ordered by size (stable) for UNION and INTER, a weighted score
// that is NaN counts as 0 when it starts a member's total, SUM of +inf and
// -inf is 0, the same key twice in INTER combines the member with itself,
// and DIFF against its own first key is empty.
func modelCombine(op string, ins []opsInput, weights []float64, agg Aggregate) []ZEntry {
	type src struct {
		in opsInput
		w  float64
	}
	srcs := make([]src, len(ins))
	for i := range ins {
		srcs[i] = src{ins[i], weights[i]}
	}
	fold := func(acc *float64, v float64) {
		switch agg {
		case AggSum:
			if *acc += v; math.IsNaN(*acc) {
				*acc = 0
			}
		case AggMin:
			if v < *acc {
				*acc = v
			}
		case AggMax:
			if v > *acc {
				*acc = v
			}
		}
	}
	start := func(w, s float64) float64 {
		if f := w * s; !math.IsNaN(f) {
			return f
		}
		return 0
	}
	out := map[string]float64{}
	if op != "diff" {
		slices.SortStableFunc(srcs, func(a, b src) int { return cmp.Compare(len(a.in.vals), len(b.in.vals)) })
	}
	switch op {
	case "union":
		for _, s := range srcs {
			for m, f := range s.in.vals {
				if cur, ok := out[m]; ok {
					fold(&cur, start(s.w, f))
					out[m] = cur
				} else {
					out[m] = start(s.w, f)
				}
			}
		}
	case "inter":
	member:
		for m, f := range srcs[0].in.vals {
			acc := start(srcs[0].w, f)
			for _, o := range srcs[1:] {
				v, ok := o.in.vals[m]
				if !ok {
					continue member
				}
				fold(&acc, v*o.w)
			}
			out[m] = acc
		}
	case "diff":
		for _, o := range srcs[1:] {
			if o.in.key == srcs[0].in.key {
				return nil
			}
		}
	next:
		for m, f := range srcs[0].in.vals {
			for _, o := range srcs[1:] {
				if _, ok := o.in.vals[m]; ok {
					continue next
				}
			}
			out[m] = f
		}
	}
	return zmodel(out).sorted()
}

// TestZSetOpsMatchModel: ZUnion, ZInter (and its count with a limit) and
// ZDiff over random sorted sets, sets and missing keys, named any number
// of times, with random weights (infinite ones included) and aggregates.
func TestZSetOpsMatchModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := &memstate.State{}
		inputs := map[string]opsInput{}
		for _, k := range []string{"k0", "k1", "k2"} {
			inputs[k] = drawOpsInput(t, st, k)
		}
		keys := rapid.SliceOfN(rapid.SampledFrom([]string{"k0", "k1", "k2"}), 1, 4).Draw(t, "keys")
		weights := rapid.SliceOfN(rapid.SampledFrom([]float64{1, 1, 2, -1, 0, 0.5, math.Inf(1)}), len(keys), len(keys)).Draw(t, "weights")
		agg := Aggregate(rapid.IntRange(0, 2).Draw(t, "aggregate"))
		var srcs []ZSource
		var ins []opsInput
		for i, k := range keys {
			src, err := OpenZSource(st, []byte(k))
			if err != nil {
				t.Fatal(err)
			}
			src.Weight = weights[i]
			srcs = append(srcs, src)
			ins = append(ins, inputs[k])
		}
		union, err := ZUnion(srcs, agg)
		if err != nil {
			t.Fatal(err)
		}
		if want := modelCombine("union", ins, weights, agg); render(union) != render(want) {
			t.Fatalf("ZUnion = %s; model %s", render(union), render(want))
		}
		inter, n, err := ZInter(srcs, agg, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := modelCombine("inter", ins, weights, agg)
		if render(inter) != render(want) || n != int64(len(want)) {
			t.Fatalf("ZInter = %s (%d); model %s", render(inter), n, render(want))
		}
		limit := rapid.Int64Range(0, 3).Draw(t, "limit")
		if _, n, err := ZInter(srcs, agg, true, limit); err != nil || (limit > 0 && n != min(limit, int64(len(want)))) || (limit == 0 && n != int64(len(want))) {
			t.Fatalf("ZInter count, limit %d = %d, %v; model %d", limit, n, err, len(want))
		}
		ones := slices.Repeat([]float64{1}, len(keys))
		for i := range srcs {
			srcs[i].Weight = 1
		}
		diff, err := ZDiff(srcs)
		if err != nil {
			t.Fatal(err)
		}
		if want := modelCombine("diff", ins, ones, agg); render(diff) != render(want) {
			t.Fatalf("ZDiff = %s; model %s", render(diff), render(want))
		}
	})
}
