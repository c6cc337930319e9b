package datatype

import (
	"bytes"
	"cmp"
	"math"
	"slices"

	"github.com/replicant-db/replicant/internal/engine"
)

// ZSource is one input of ZUNION, ZINTER, ZDIFF, ZINTERCARD and their
// STORE forms: a sorted set, a set (whose members count with score 1, as
// in Redis), or a missing key (empty).
type ZSource struct {
	Key    []byte
	Weight float64
	view   *View // nil when the key does not exist
}

// OpenZSource reads the sorted set or set at key; ErrWrongType when it
// holds another type.
func OpenZSource(s Scanner, key []byte) (ZSource, error) {
	src := ZSource{Key: key, Weight: 1}
	v, ok, err := s.Get(key)
	if err != nil || !ok {
		return src, err
	}
	if v.Type != engine.TypeZSet && v.Type != engine.TypeSet {
		return src, ErrWrongType
	}
	m, _, err := metaOf(key, v, v.Type)
	if err != nil {
		return src, err
	}
	src.view = &View{s: s, Key: key, Type: v.Type, Meta: m, ExpireAt: v.ExpireAt}
	return src, nil
}

// Len is the number of members.
func (src ZSource) Len() int64 {
	if src.view == nil {
		return 0
	}
	return src.view.Meta.Len
}

// each calls fn with every member and its (unweighted) score.
func (src ZSource) each(fn func(member []byte, score float64) bool) error {
	switch {
	case src.view == nil:
		return nil
	case src.view.Type == engine.TypeSet:
		return src.view.Scan(SubMember, nil, func(rest, _ []byte) bool { return fn(rest, 1) })
	}
	return ZView{src.view}.Each(nil, fn)
}

// lookup reads one member's (unweighted) score.
func (src ZSource) lookup(member []byte) (float64, bool, error) {
	switch {
	case src.view == nil:
		return 0, false, nil
	case src.view.Type == engine.TypeSet:
		_, ok, err := src.view.Get(SubMember, member)
		return 1, ok, err
	}
	return ZView{src.view}.Score(member)
}

// Aggregate is how ZUNION and ZINTER combine a member's weighted scores.
type Aggregate int

// The aggregates, AGGREGATE SUM (the default), MIN and MAX.
const (
	AggSum Aggregate = iota
	AggMin
	AggMax
)

// combine folds v into *target as Redis does: a sum of +inf and -inf is 0,
// and MIN and MAX keep the target when v is NaN.
func (a Aggregate) combine(target *float64, v float64) {
	switch a {
	case AggSum:
		*target += v
		if math.IsNaN(*target) {
			*target = 0
		}
	case AggMin:
		if v < *target {
			*target = v
		}
	case AggMax:
		if v > *target {
			*target = v
		}
	}
}

// weighted is a source's score for a member of the first source it is
// combined into: NaN (inf times a zero weight) counts as 0.
func weighted(w, score float64) float64 {
	if f := w * score; !math.IsNaN(f) {
		return f
	}
	return 0
}

// byLen orders sources from the smallest, as Redis does before it
// combines them (the order decides which source's score a sum starts
// from, so it is kept stable among equal sizes).
func byLen(srcs []ZSource) []ZSource {
	out := slices.Clone(srcs)
	slices.SortStableFunc(out, func(a, b ZSource) int { return cmp.Compare(a.Len(), b.Len()) })
	return out
}

// ZUnion combines every member of every source; the result is sorted.
func ZUnion(srcs []ZSource, agg Aggregate) ([]ZEntry, error) {
	acc := map[string]float64{}
	var order []string
	for _, src := range byLen(srcs) {
		err := src.each(func(member []byte, score float64) bool {
			f := weighted(src.Weight, score)
			if cur, ok := acc[string(member)]; ok {
				agg.combine(&cur, f)
				acc[string(member)] = cur
				return true
			}
			acc[string(member)] = f
			order = append(order, string(member))
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]ZEntry, 0, len(order))
	for _, m := range order {
		out = append(out, ZEntry{Member: []byte(m), Score: acc[m]})
	}
	SortEntries(out)
	return out, nil
}

// ZInter combines the members found in every source; the result is
// sorted. With countOnly it only counts them, stopping at limit (> 0).
// It reads the smallest source whole and looks its members up in the
// others.
func ZInter(srcs []ZSource, agg Aggregate, countOnly bool, limit int64) ([]ZEntry, int64, error) {
	s := byLen(srcs)
	var out []ZEntry
	n := int64(0)
	if len(s) == 0 || s[0].Len() == 0 {
		return nil, 0, nil
	}
	var lerr error
	err := s[0].each(func(member []byte, score float64) bool {
		acc := weighted(s[0].Weight, score)
		for _, o := range s[1:] {
			if bytes.Equal(o.Key, s[0].Key) {
				agg.combine(&acc, score*o.Weight)
				continue
			}
			v, ok, err := o.lookup(member)
			if err != nil {
				lerr = err
				return false
			}
			if !ok {
				return true
			}
			agg.combine(&acc, v*o.Weight)
		}
		n++
		if countOnly {
			return limit <= 0 || n < limit
		}
		out = append(out, ZEntry{Member: append([]byte(nil), member...), Score: acc})
		return true
	})
	if err == nil {
		err = lerr
	}
	if err != nil {
		return nil, 0, err
	}
	SortEntries(out)
	return out, n, nil
}

// ZDiff returns the members of the first source found in none of the
// others, with their scores in the first; the result is sorted.
func ZDiff(srcs []ZSource) ([]ZEntry, error) {
	if len(srcs) == 0 || srcs[0].Len() == 0 {
		return nil, nil
	}
	for _, o := range srcs[1:] {
		if bytes.Equal(o.Key, srcs[0].Key) {
			return nil, nil // everything is subtracted
		}
	}
	var out []ZEntry
	var lerr error
	err := srcs[0].each(func(member []byte, score float64) bool {
		for _, o := range srcs[1:] {
			_, ok, err := o.lookup(member)
			if err != nil {
				lerr = err
				return false
			}
			if ok {
				return true
			}
		}
		out = append(out, ZEntry{Member: append([]byte(nil), member...), Score: score})
		return true
	})
	if err == nil {
		err = lerr
	}
	if err != nil {
		return nil, err
	}
	SortEntries(out)
	return out, nil
}

// SortEntries orders entries as a sorted set does: by score, then by
// member bytes (-0 and 0 are equal).
func SortEntries(es []ZEntry) {
	slices.SortFunc(es, func(a, b ZEntry) int {
		if c := cmp.Compare(a.Score, b.Score); c != 0 {
			return c
		}
		return bytes.Compare(a.Member, b.Member)
	})
}
