package datatype

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/replicant-db/replicant/internal/engine"
)

// Sorted sets (engine.TypeZSet) keep every member twice under the set's id:
//
//	SubMember member                  → score: 8 bytes, big-endian IEEE bits
//	SubScore  EncodeScore(score) member → "" (the score index)
//
// The member record answers ZSCORE and ZADD's "is it there, at what
// score" with one read; the index orders members as Redis does (by score,
// then by member bytes), so a range by score is one seek and a scan of
// what it returns. Meta.Len counts members; both sub-spaces hold Len keys.
//
// A stored score is never NaN (commands refuse it) and never -0: it is
// stored as 0, as Redis's compact encoding stores it (ZADD z -0 m, then
// ZSCORE z m answers 0), so the member record and the index (which cannot
// tell -0 from 0) always agree.
//
// Ranks are not stored: a rank, or a range by rank, costs one index entry
// read per rank skipped (from whichever end is nearer when both are
// possible). Redis's skiplist answers in O(log n).

// ZEntry is one member of a sorted set with its score.
type ZEntry struct {
	Member []byte
	Score  float64
}

// ErrNaNScore is a ZADD INCR or ZINCRBY whose result is not a number
// (+inf plus -inf). Its text is Redis's reply.
var ErrNaNScore = errors.New("ERR resulting score is not a number (NaN)")

// zScoreValue is a member record's value.
func zScoreValue(f float64) []byte {
	return binary.BigEndian.AppendUint64(nil, math.Float64bits(f))
}

func zScoreOf(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: sorted set score of %d bytes", ErrCorrupt, len(b))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// ZScoreOf decodes a member record's value (its score).
func ZScoreOf(b []byte) (float64, error) { return zScoreOf(b) }

// ZIndexKey is the score index suffix of member at score.
func ZIndexKey(score float64, member []byte) []byte {
	return append(EncodeScore(score), member...)
}

// zEntryOf decodes a score index suffix.
func zEntryOf(rest []byte) (ZEntry, error) {
	f, ok := DecodeScore(rest)
	if !ok {
		return ZEntry{}, fmt.Errorf("%w: sorted set index key of %d bytes", ErrCorrupt, len(rest))
	}
	return ZEntry{Member: append([]byte(nil), rest[8:]...), Score: f}, nil
}

// ZView reads a sorted set from one consistent state.
type ZView struct{ v *View }

// ReadZSet opens the sorted set at key for reading: found is false when
// the key does not exist; ErrWrongType when it holds another type.
func ReadZSet(s Scanner, key []byte) (ZView, bool, error) {
	v, ok, err := Read(s, key, engine.TypeZSet)
	if err != nil || !ok {
		return ZView{}, ok, err
	}
	return ZView{v}, true, nil
}

// Len is the number of members.
func (z ZView) Len() int64 { return z.v.Meta.Len }

// Score reads member's score.
func (z ZView) Score(member []byte) (float64, bool, error) {
	b, ok, err := z.v.Get(SubMember, member)
	if err != nil || !ok {
		return 0, false, err
	}
	f, err := zScoreOf(b)
	return f, err == nil, err
}

// Ascend calls fn with members in ascending (score, member) order from
// the index suffix from (the first member when nil) until fn returns
// false.
func (z ZView) Ascend(from []byte, fn func(e ZEntry) bool) error {
	if m := z.v.Meta; m.LowSet {
		// No live member below: start past the tombstones of the pops.
		if lo := binary.BigEndian.AppendUint64(nil, m.Low); bytes.Compare(from, lo) < 0 {
			from = lo
		}
	}
	var derr error
	err := z.v.Scan(SubScore, from, func(rest, _ []byte) bool {
		e, err := zEntryOf(rest)
		if err != nil {
			derr = err
			return false
		}
		return fn(e)
	})
	if err == nil {
		err = derr
	}
	return err
}

// Descend calls fn with members in descending (score, member) order from
// just below the index suffix before (the last member when nil) until fn
// returns false.
func (z ZView) Descend(before []byte, fn func(e ZEntry) bool) error {
	if m := z.v.Meta; m.HighSet && m.High < math.MaxUint64 {
		// Every live index key is below the next score encoding up.
		if hi := binary.BigEndian.AppendUint64(nil, m.High+1); before == nil || bytes.Compare(before, hi) > 0 {
			before = hi
		}
	}
	var derr error
	err := ScanElemsReverse(z.v.s, z.v.Meta.ID, SubScore, before, func(rest, _ []byte) bool {
		e, err := zEntryOf(rest)
		if err != nil {
			derr = err
			return false
		}
		return fn(e)
	})
	if err == nil {
		err = derr
	}
	return err
}

// Each calls fn with every member and its score, in member order (the
// order that needs no index: ZUNION, ZINTER and ZSCAN do not care).
func (z ZView) Each(from []byte, fn func(member []byte, score float64) bool) error {
	var derr error
	err := z.v.Scan(SubMember, from, func(rest, value []byte) bool {
		f, err := zScoreOf(value)
		if err != nil {
			derr = err
			return false
		}
		return fn(rest, f)
	})
	if err == nil {
		err = derr
	}
	return err
}

// walk visits up to n entries from the low end (or the high end when
// high), skipping the first skip of them.
func (z ZView) walk(high bool, skip, n int64, fn func(e ZEntry)) error {
	if n <= 0 {
		return nil
	}
	visit := func(e ZEntry) bool {
		if skip > 0 {
			skip--
			return true
		}
		fn(e)
		n--
		return n > 0
	}
	if high {
		return z.Descend(nil, visit)
	}
	return z.Ascend(nil, visit)
}

// ByRank returns the members at ranks start..stop (0-based, inclusive,
// 0 <= start <= stop < Len; ranks count from the highest score when rev),
// in rank order. It reads from whichever end of the index is nearer.
func (z ZView) ByRank(start, stop int64, rev bool) ([]ZEntry, error) {
	n := z.Len()
	if start < 0 || stop < start || stop >= n {
		return nil, nil
	}
	// The same members by ascending rank.
	lo, hi := start, stop
	if rev {
		lo, hi = n-1-stop, n-1-start
	}
	out := make([]ZEntry, 0, hi-lo+1)
	fromHigh := n-1-hi < lo
	var err error
	if fromHigh {
		err = z.walk(true, n-1-hi, hi-lo+1, func(e ZEntry) { out = append(out, e) })
	} else {
		err = z.walk(false, lo, hi-lo+1, func(e ZEntry) { out = append(out, e) })
	}
	if err != nil {
		return nil, err
	}
	// out is ascending unless read from the high end; the caller wants
	// descending when rev.
	if fromHigh != rev {
		reverse(out)
	}
	return out, nil
}

// AtRanks returns the members at the given ascending ranks (in any order,
// repeats allowed; each within 0..Len-1), in the order of ranks: one walk
// from whichever end of the index is nearer to all of them, keeping only
// the members asked for.
func (z ZView) AtRanks(ranks []int64) ([]ZEntry, error) {
	if len(ranks) == 0 {
		return nil, nil
	}
	want := slices.Clone(ranks)
	slices.Sort(want)
	want = slices.Compact(want)
	n := z.Len()
	lo, hi := want[0], want[len(want)-1]
	if lo < 0 || hi >= n {
		return nil, fmt.Errorf("rank %d out of a set of %d", max(hi, -lo), n)
	}
	found := make(map[int64]ZEntry, len(want))
	i, rank := 0, int64(0)
	step := int64(1)
	if n-lo < hi+1 {
		// From the top: ranks in descending order.
		slices.Reverse(want)
		rank, step = n-1, -1
	}
	visit := func(e ZEntry) bool {
		if rank == want[i] {
			found[rank] = e
			if i++; i == len(want) {
				return false
			}
		}
		rank += step
		return true
	}
	var err error
	if step < 0 {
		err = z.Descend(nil, visit)
	} else {
		err = z.Ascend(nil, visit)
	}
	if err != nil {
		return nil, err
	}
	if i != len(want) {
		return nil, fmt.Errorf("%w: key %q: fewer members than its metadata's %d", ErrCorrupt, z.v.Key, n)
	}
	out := make([]ZEntry, len(ranks))
	for j, r := range ranks {
		out[j] = found[r]
	}
	return out, nil
}

// Rank returns member's 0-based rank (from the highest score when rev)
// and its score: one index entry read per rank.
func (z ZView) Rank(member []byte, rev bool) (rank int64, score float64, found bool, err error) {
	score, found, err = z.Score(member)
	if err != nil || !found {
		return 0, 0, found, err
	}
	count := func(e ZEntry) bool {
		if e.Score == score && bytes.Equal(e.Member, member) {
			return false
		}
		rank++
		return true
	}
	if rev {
		err = z.Descend(nil, count)
	} else {
		err = z.Ascend(nil, count)
	}
	return rank, score, true, err
}

// First and Last return the members with the lowest and highest (score,
// member); ok is false for an empty view.
func (z ZView) First() (e ZEntry, ok bool, err error) {
	err = z.Ascend(nil, func(x ZEntry) bool { e, ok = x, true; return false })
	return e, ok, err
}

// Last: see First.
func (z ZView) Last() (e ZEntry, ok bool, err error) {
	err = z.Descend(nil, func(x ZEntry) bool { e, ok = x, true; return false })
	return e, ok, err
}

// ScoreRange is a score interval as ZRANGEBYSCORE takes it: "(" makes an
// end exclusive.
type ScoreRange struct {
	Min, Max     float64
	MinEx, MaxEx bool
}

// Empty reports whether no score can be in r.
func (r ScoreRange) Empty() bool {
	return r.Min > r.Max || (r.Min == r.Max && (r.MinEx || r.MaxEx))
}

// AboveMin reports whether f is at or above r's lower end.
func (r ScoreRange) AboveMin(f float64) bool {
	if r.MinEx {
		return f > r.Min
	}
	return f >= r.Min
}

// BelowMax reports whether f is at or below r's upper end.
func (r ScoreRange) BelowMax(f float64) bool {
	if r.MaxEx {
		return f < r.Max
	}
	return f <= r.Max
}

// lowKey is the index suffix of the first place a member in r can be.
func (r ScoreRange) lowKey() []byte {
	if r.MinEx {
		return EncodeScore(math.Nextafter(r.Min, math.Inf(1)))
	}
	return EncodeScore(r.Min)
}

// highKey is the index suffix just after the last place a member in r can
// be (nil: the end of the index).
func (r ScoreRange) highKey() []byte {
	switch {
	case r.MaxEx:
		return EncodeScore(r.Max)
	case math.IsInf(r.Max, 1):
		return nil
	}
	return EncodeScore(math.Nextafter(r.Max, math.Inf(1)))
}

// ByScore returns the members in r in ascending order (descending when
// rev), skipping offset of them and returning at most limit (all when
// limit < 0): one seek, then one index entry per member skipped or
// returned.
func (z ZView) ByScore(r ScoreRange, rev bool, offset, limit int64) ([]ZEntry, error) {
	var out []ZEntry
	if r.Empty() || offset < 0 || limit == 0 {
		return out, nil
	}
	take := func(in bool, e ZEntry) bool {
		if !in {
			return false
		}
		if offset > 0 {
			offset--
			return true
		}
		out = append(out, e)
		limit--
		return limit != 0
	}
	var err error
	if rev {
		err = z.Descend(r.highKey(), func(e ZEntry) bool { return take(r.AboveMin(e.Score), e) })
	} else {
		err = z.Ascend(r.lowKey(), func(e ZEntry) bool { return take(r.BelowMax(e.Score), e) })
	}
	return out, err
}

// CountByScore counts the members in r: one index entry read per member
// counted.
func (z ZView) CountByScore(r ScoreRange) (int64, error) {
	n := int64(0)
	if r.Empty() {
		return 0, nil
	}
	err := z.Ascend(r.lowKey(), func(e ZEntry) bool {
		if !r.BelowMax(e.Score) {
			return false
		}
		n++
		return true
	})
	return n, err
}

// LexBound is one end of a lexicographic range: a member ("[" inclusive,
// "(" exclusive), or Inf -1 ("-", below every member) or +1 ("+", above
// every member).
type LexBound struct {
	Value []byte
	Ex    bool
	Inf   int
}

// cmpLex compares two bounds or a member (Inf 0) and a bound as Redis
// does: the two infinities equal themselves and lie outside every member.
func cmpLex(a, b LexBound) int {
	switch {
	case a.Inf != 0 && a.Inf == b.Inf:
		return 0
	case a.Inf < 0 || b.Inf > 0:
		return -1
	case a.Inf > 0 || b.Inf < 0:
		return 1
	}
	return bytes.Compare(a.Value, b.Value)
}

// LexRange is a member interval as ZRANGEBYLEX takes it.
type LexRange struct{ Min, Max LexBound }

// Empty reports whether no member can be in r.
func (r LexRange) Empty() bool {
	c := cmpLex(r.Min, r.Max)
	return c > 0 || (c == 0 && (r.Min.Ex || r.Max.Ex))
}

// AboveMin reports whether member is at or above r's lower end.
func (r LexRange) AboveMin(member []byte) bool {
	c := cmpLex(LexBound{Value: member}, r.Min)
	if r.Min.Ex {
		return c > 0
	}
	return c >= 0
}

// BelowMax reports whether member is at or below r's upper end.
func (r LexRange) BelowMax(member []byte) bool {
	c := cmpLex(LexBound{Value: member}, r.Max)
	if r.Max.Ex {
		return c < 0
	}
	return c <= 0
}

// lexStart finds where a lexicographic walk starts, as Redis defines it
// for any set (its lexicographic commands assume equal scores but answer
// on any): nothing when the range is empty, when the last member is below
// it or the first above it; else at the first member (in index order) at
// or above the minimum (the last at or below the maximum when rev),
// nothing if that one is past the other end; from there the walk goes on
// while members stay within the other end.
//
// When every member has the same score, index order is member order and
// the walk starts with one seek; otherwise it starts with a scan from the
// end.
func (z ZView) lexStart(r LexRange, rev bool) (from []byte, ok bool, err error) {
	if r.Empty() {
		return nil, false, nil
	}
	first, ok, err := z.First()
	if err != nil || !ok {
		return nil, false, err
	}
	last, _, err := z.Last()
	if err != nil {
		return nil, false, err
	}
	if !r.AboveMin(last.Member) || !r.BelowMax(first.Member) {
		return nil, false, nil
	}
	if first.Score == last.Score {
		s := EncodeScore(first.Score)
		if !rev {
			switch {
			case r.Min.Inf < 0:
				return s, true, nil
			case r.Min.Ex:
				// The first member above Value is Value followed by a zero byte.
				return append(append(s, r.Min.Value...), 0), true, nil
			}
			return append(s, r.Min.Value...), true, nil
		}
		switch {
		case r.Max.Inf > 0:
			return nil, true, nil
		case r.Max.Ex:
			return append(s, r.Max.Value...), true, nil
		}
		return append(append(s, r.Max.Value...), 0), true, nil
	}
	// Mixed scores: find the start by walking.
	var start []byte
	found := false
	visit := func(e ZEntry) bool {
		if (!rev && r.AboveMin(e.Member)) || (rev && r.BelowMax(e.Member)) {
			// Redis answers nothing when that first member is already
			// past the other end.
			start = ZIndexKey(e.Score, e.Member)
			found = (!rev && r.BelowMax(e.Member)) || (rev && r.AboveMin(e.Member))
			return false
		}
		return true
	}
	if rev {
		err = z.Descend(nil, visit)
		// Descend takes an exclusive bound: start just after the entry.
		start = append(start, 0)
	} else {
		err = z.Ascend(nil, visit)
	}
	return start, found, err
}

// ByLex returns the members in r from where the walk starts (see
// lexStart), skipping offset of them and returning at most limit (all
// when limit < 0).
func (z ZView) ByLex(r LexRange, rev bool, offset, limit int64) ([]ZEntry, error) {
	var out []ZEntry
	if offset < 0 || limit == 0 {
		return out, nil
	}
	from, ok, err := z.lexStart(r, rev)
	if err != nil || !ok {
		return out, err
	}
	take := func(in bool, e ZEntry) bool {
		if offset > 0 {
			offset--
			return true
		}
		if !in {
			return false
		}
		out = append(out, e)
		limit--
		return limit != 0
	}
	if rev {
		err = z.Descend(from, func(e ZEntry) bool { return take(r.AboveMin(e.Member), e) })
	} else {
		err = z.Ascend(from, func(e ZEntry) bool { return take(r.BelowMax(e.Member), e) })
	}
	return out, err
}

// CountByLex counts the members ByLex would return without a limit.
func (z ZView) CountByLex(r LexRange) (int64, error) {
	from, ok, err := z.lexStart(r, false)
	if err != nil || !ok {
		return 0, err
	}
	n := int64(0)
	err = z.Ascend(from, func(e ZEntry) bool {
		if !r.BelowMax(e.Member) {
			return false
		}
		n++
		return true
	})
	return n, err
}

// ZColl is a sorted set opened for writing inside one write command.
type ZColl struct{ *Coll }

// OpenZSet opens the sorted set at key in tx for writing (see Open).
func OpenZSet(tx engine.Txn, key []byte) (*ZColl, error) {
	c, err := Open(tx, key, engine.TypeZSet)
	if err != nil {
		return nil, err
	}
	return &ZColl{c}, nil
}

// View reads the set as the command has changed it so far.
func (z *ZColl) View() ZView { return ZView{&z.Coll.View} }

// ZAddFlags are ZADD's options (ZINCRBY is INCR).
type ZAddFlags struct{ NX, XX, GT, LT, Incr bool }

// ZAddResult is what one ZADD pair did.
type ZAddResult struct {
	Added   bool // the member is new
	Updated bool // its score changed
	// Skipped: NX, XX, GT or LT left the member as it was.
	Skipped bool
	// Score is the member's score after the command (with INCR, the sum,
	// even -0, which is stored as 0).
	Score float64
}

// Add applies one ZADD score-member pair with Redis's rules: NX only
// adds, XX only updates, GT and LT update only to a greater or lesser
// score (new members are added either way), INCR adds score to the
// current one (0 for a new member). A score equal to the current one
// writes nothing.
func (z *ZColl) Add(member []byte, score float64, f ZAddFlags) (ZAddResult, error) {
	if math.IsNaN(score) {
		return ZAddResult{}, ErrNaNScore
	}
	cur, exists, err := z.View().Score(member)
	if err != nil {
		return ZAddResult{}, err
	}
	if !exists {
		if f.XX {
			return ZAddResult{Skipped: true}, nil
		}
		if err := z.put(member, 0, false, score); err != nil {
			return ZAddResult{}, err
		}
		return ZAddResult{Added: true, Score: score}, nil
	}
	if f.NX {
		return ZAddResult{Skipped: true}, nil
	}
	if f.Incr {
		score += cur
		if math.IsNaN(score) {
			return ZAddResult{}, ErrNaNScore
		}
	}
	if (f.LT && score >= cur) || (f.GT && score <= cur) {
		return ZAddResult{Skipped: true}, nil
	}
	res := ZAddResult{Score: score}
	if score != cur {
		if err := z.put(member, cur, true, score); err != nil {
			return ZAddResult{}, err
		}
		res.Updated = true
	}
	return res, nil
}

// put writes member at score, replacing its index entry at old when it
// existed, and counts a new member.
func (z *ZColl) put(member []byte, old float64, existed bool, score float64) error {
	if score == 0 {
		score = 0 // -0 is stored as 0 (see the layout above)
	}
	if existed {
		z.Delete(SubScore, ZIndexKey(old, member))
	} else {
		z.Meta.Len++
	}
	// A member beyond a bound moves it out (see Meta.Low).
	if u := scoreBits(score); z.Meta.LowSet && u < z.Meta.Low {
		z.Meta.Low = u
	} else if z.Meta.HighSet && u > z.Meta.High {
		z.Meta.High = u
	}
	if err := z.Put(SubMember, member, zScoreValue(score)); err != nil {
		return err
	}
	return z.Put(SubScore, ZIndexKey(score, member), nil)
}

// Remove deletes member; removed is false when it was not there.
func (z *ZColl) Remove(member []byte) (removed bool, err error) {
	score, ok, err := z.View().Score(member)
	if err != nil || !ok {
		return false, err
	}
	z.RemoveEntry(ZEntry{Member: member, Score: score})
	return true, nil
}

// RemoveEntry deletes a member known to be in the set at e.Score.
func (z *ZColl) RemoveEntry(e ZEntry) {
	z.Delete(SubMember, e.Member)
	z.Delete(SubScore, ZIndexKey(e.Score, e.Member))
	z.Meta.Len--
}

// RemoveAll deletes members known to be in the set.
func (z *ZColl) RemoveAll(es []ZEntry) {
	for _, e := range es {
		z.RemoveEntry(e)
	}
}

// Pop removes and returns up to count members from the low end (the high
// end when high), in the order they are popped.
func (z *ZColl) Pop(count int64, high bool) ([]ZEntry, error) {
	count = min(count, z.Meta.Len)
	var out []ZEntry
	if err := z.View().walk(high, 0, count, func(e ZEntry) { out = append(out, e) }); err != nil {
		return nil, err
	}
	z.RemoveAll(out)
	if len(out) > 0 && z.Meta.Len > 0 {
		// What is left lies at or inside the last score popped: the next
		// pop from this end starts there, past these tombstones.
		u := scoreBits(out[len(out)-1].Score)
		if high {
			z.Meta.HighSet, z.Meta.High = true, u
		} else {
			z.Meta.LowSet, z.Meta.Low = true, u
		}
	}
	return out, nil
}

// scoreBits is EncodeScore as a number: the order of scores.
func scoreBits(f float64) uint64 { return binary.BigEndian.Uint64(EncodeScore(f)) }

// PutNew writes a member into a set the command created empty (the
// destination of ZUNIONSTORE and friends): no read.
func (z *ZColl) PutNew(e ZEntry) error {
	return z.put(e.Member, 0, false, e.Score)
}

func reverse(es []ZEntry) {
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
}
