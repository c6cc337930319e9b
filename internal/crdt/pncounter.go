package crdt

import (
	"encoding"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// PNCounter is a state-based increment/decrement counter CRDT with an
// observed reset, for the Redis counter commands (INCR, INCRBY, DECR,
// DECRBY) in the multi-leader and leaderless modes.
//
// # State
//
// For every replica r that ever changed the counter it holds four
// monotonically growing totals:
//
//	inc[r]   the sum of r's positive deltas
//	dec[r]   the sum of the magnitudes of r's negative deltas
//	rinc[r]  the part of inc[r] that some reset has seen (rinc[r] <= inc[r])
//	rdec[r]  the part of dec[r] that some reset has seen (rdec[r] <= dec[r])
//
// Only r adds to inc[r] and dec[r], so at any replica they describe a
// prefix of r's history of increments, and the longer of two prefixes is
// the one with the larger totals. That is why merging takes the maximum of
// each total, and why a merge can be repeated or reordered freely.
//
// The totals are 128-bit so that they cannot run out in practice: a
// counter that is repeatedly INCRBY'd and DECRBY'd by 2^63 would exhaust
// 64-bit totals after a handful of commands while its value stays small.
//
// # Value
//
//	value = Σ_r (inc[r] − rinc[r]) − (dec[r] − rdec[r])
//
// that is, the sum of every delta no reset has seen. Without resets this is
// the sum of all deltas ever applied anywhere, whatever order merges
// arrive in and however often they are repeated, so concurrent increments
// on different replicas all count.
//
// # Reset
//
// A SET or DEL of a counter key resets it, and the reset removes exactly
// the deltas that the resetting replica had seen: c.Reset(seen) raises
// rinc[r] and rdec[r] to seen's inc[r] and dec[r] for every r. A delta
// made concurrently with the reset (one not in seen) is above the floor
// everywhere and survives every merge, so with INCR on one site and DEL on
// another, the INCR is not lost; a delta the reset saw is removed
// everywhere, even on replicas that receive the reset before the delta.
// Two concurrent resets remove the union of what they saw.
//
// How SET v is built from this is the caller's choice, and the two choices
// differ for concurrent SETs. Reset(seen) followed by Increment(self, v)
// makes a SET an increment that the other SET did not see, so concurrent
// SET 10 and SET 20 add up to 30. Keeping v outside the counter, in a
// last-writer-wins register added to Value, resolves the same race to 20
// or 10 by stamp, while still letting concurrent INCRs count.
//
// # Overflow
//
// Value reports a sum outside the int64 range as ErrValueOutOfRange, and
// Increment refuses a delta that would take the local value out of range
// (ErrWouldOverflow), as Redis does for INCRBY. Concurrent increments on
// different replicas can still merge to a sum outside the range, since a
// merge cannot fail; Text gives the exact value then, and Increment keeps
// refusing until a reset brings the value back.
//
// A PNCounter is an immutable value like Vector; the zero PNCounter is a
// counter at 0.
type PNCounter struct {
	e []pnEntry // sorted by replica; never an entry with inc and dec zero
}

type pnEntry struct {
	replica              string
	inc, dec, rinc, rdec u128
}

var _ encoding.BinaryAppender = PNCounter{}

var (
	// ErrValueOutOfRange: the counter's value does not fit in an int64
	// (Redis: "value is not an integer or out of range").
	ErrValueOutOfRange = errors.New("crdt: counter value is out of the int64 range")
	// ErrWouldOverflow: applying the delta would take the value out of
	// the int64 range (Redis: "increment or decrement would overflow").
	ErrWouldOverflow = errors.New("crdt: increment or decrement would overflow")
)

func (c PNCounter) find(replica string) (int, bool) {
	return slices.BinarySearchFunc(c.e, replica, func(e pnEntry, r string) int { return strings.Compare(e.replica, r) })
}

// Value returns the counter's value, or ErrValueOutOfRange if it does not
// fit in an int64.
func (c PNCounter) Value() (int64, error) {
	if v, ok := c.fastSum(); ok {
		return v, nil
	}
	s := c.bigSum()
	if !s.IsInt64() {
		return 0, ErrValueOutOfRange
	}
	return s.Int64(), nil
}

// Text returns the exact value in decimal, also when it is outside the
// int64 range. It is what a GET of a counter key answers.
func (c PNCounter) Text() string {
	if v, ok := c.fastSum(); ok {
		return strconv.FormatInt(v, 10)
	}
	return c.bigSum().String()
}

// fastSum computes the value in int64 arithmetic and reports false when
// anything (a total, a partial sum) leaves the range; bigSum then decides.
func (c PNCounter) fastSum() (int64, bool) {
	var acc int64
	for _, e := range c.e {
		p, n := e.inc.sub(e.rinc), e.dec.sub(e.rdec)
		if p.hi != 0 || n.hi != 0 || p.lo > math.MaxInt64 || n.lo > math.MaxInt64 {
			return 0, false
		}
		net := int64(p.lo) - int64(n.lo) // both in [0, MaxInt64]: cannot overflow
		s := acc + net
		if (net > 0 && s < acc) || (net < 0 && s > acc) {
			return 0, false
		}
		acc = s
	}
	return acc, true
}

func (c PNCounter) bigSum() *big.Int {
	acc, t := new(big.Int), new(big.Int)
	for _, e := range c.e {
		acc.Add(acc, e.inc.sub(e.rinc).setBig(t))
		acc.Sub(acc, e.dec.sub(e.rdec).setBig(t))
	}
	return acc
}

// CheckIncrement reports whether Increment(replica, delta) would succeed:
// nil, ErrValueOutOfRange when the current value is already outside the
// int64 range (so there is no integer to increment, as in Redis), or
// ErrWouldOverflow when value+delta would be. It panics on a replica id
// that fails ValidID.
func (c PNCounter) CheckIncrement(replica string, delta int64) error {
	mustValidID(replica)
	v, err := c.Value()
	if err != nil {
		return err
	}
	if (delta > 0 && v > math.MaxInt64-delta) || (delta < 0 && v < math.MinInt64-delta) {
		return ErrWouldOverflow
	}
	// A 128-bit total cannot realistically fill up (it takes 2^64
	// increments of 2^63), but if a decoded state is that close, refuse
	// rather than wrap.
	var e pnEntry
	if i, ok := c.find(replica); ok {
		e = c.e[i]
	}
	if _, ok := e.inc.add(posPart(delta)); !ok {
		return ErrWouldOverflow
	}
	if _, ok := e.dec.add(negPart(delta)); !ok {
		return ErrWouldOverflow
	}
	return nil
}

func posPart(d int64) uint64 {
	if d > 0 {
		return uint64(d)
	}
	return 0
}

// negPart is |d| for negative d; uint64(-d) is right even for MinInt64,
// whose negation wraps to itself but converts to 2^63.
func negPart(d int64) uint64 {
	if d < 0 {
		return uint64(-d)
	}
	return 0
}

// Increment returns the counter with delta (negative to decrement) added
// to replica's contributions, or the error of CheckIncrement and c
// unchanged. Only the replica applying a client's command increments, and
// always under its own id: the totals are single-writer, which is what
// makes merging them by maximum correct.
func (c PNCounter) Increment(replica string, delta int64) (PNCounter, error) {
	if err := c.CheckIncrement(replica, delta); err != nil {
		return c, err
	}
	if delta == 0 {
		return c, nil
	}
	i, ok := c.find(replica)
	e := make([]pnEntry, 0, len(c.e)+1)
	e = append(e, c.e[:i]...)
	var x pnEntry
	if ok {
		x = c.e[i]
	} else {
		x.replica = replica
	}
	x.inc, _ = x.inc.add(posPart(delta))
	x.dec, _ = x.dec.add(negPart(delta))
	e = append(e, x)
	if ok {
		i++
	}
	return PNCounter{append(e, c.e[i:]...)}, nil
}

// Reset returns c with every delta that seen contains removed: for each
// replica, the reset floors rise to seen's totals (and the totals to at
// least seen's, since seen's deltas happened). seen is the counter as the
// resetting replica knew it when it executed the SET or DEL, normally its
// own state: c.Reset(c). Deltas not in seen (concurrent with the reset)
// keep counting, here and after any merge; see the type's documentation.
//
// Shipping the result (or just the reset, seen.Reset(seen)) to other
// replicas and merging it there applies the same reset to them.
func (c PNCounter) Reset(seen PNCounter) PNCounter {
	r := make([]pnEntry, len(seen.e))
	for i, e := range seen.e {
		r[i] = pnEntry{replica: e.replica, inc: e.inc, dec: e.dec, rinc: e.inc, rdec: e.dec}
	}
	return c.Merge(PNCounter{r})
}

// Merge returns the join of c and o: each replica's four totals are the
// maximum of both sides'. It is commutative, associative and idempotent, so
// states can be exchanged in any order, repeatedly, along any topology.
func (c PNCounter) Merge(o PNCounter) PNCounter {
	e := make([]pnEntry, 0, max(len(c.e), len(o.e)))
	i, j := 0, 0
	for i < len(c.e) || j < len(o.e) {
		switch {
		case j == len(o.e) || (i < len(c.e) && c.e[i].replica < o.e[j].replica):
			e = append(e, c.e[i])
			i++
		case i == len(c.e) || o.e[j].replica < c.e[i].replica:
			e = append(e, o.e[j])
			j++
		default:
			a, b := c.e[i], o.e[j]
			e = append(e, pnEntry{
				replica: a.replica,
				inc:     maxU128(a.inc, b.inc), dec: maxU128(a.dec, b.dec),
				rinc: maxU128(a.rinc, b.rinc), rdec: maxU128(a.rdec, b.rdec),
			})
			i++
			j++
		}
	}
	return PNCounter{e}
}

// Equal reports whether c and o are the same state (not merely the same
// value: two counters at 3 with different histories merge differently).
func (c PNCounter) Equal(o PNCounter) bool { return slices.Equal(c.e, o.e) }

// String is a debugging form: the value, then each replica's totals as
// "id:+inc-dec", followed by "/+rinc-rdec" when a reset has seen some.
func (c PNCounter) String() string {
	var b strings.Builder
	b.WriteString(c.Text())
	b.WriteString(" {")
	for i, e := range c.e {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.replica + ":+" + e.inc.String() + "-" + e.dec.String())
		if !e.rinc.isZero() || !e.rdec.isZero() {
			b.WriteString("/+" + e.rinc.String() + "-" + e.rdec.String())
		}
	}
	b.WriteString("}")
	return b.String()
}

// Field flags of an encoded entry: bit i says total i is present
// (non-zero), bit 4+i that its high 64 bits are non-zero and follow.
const (
	pnFieldCount = 4
	pnHiShift    = 4
)

// AppendBinary appends c's canonical encoding to b: the tag 'C', the
// number of replicas, then per replica in id order its id, a flags byte
// and the non-zero totals (inc, dec, rinc, rdec) as unsigned varints, each
// high half only when non-zero. Totals are mostly small and floors mostly
// zero, so a typical replica costs its id plus three bytes. The error is
// always nil.
func (c PNCounter) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, tagPNCounter)
	b = binary.AppendUvarint(b, uint64(len(c.e)))
	for _, e := range c.e {
		b = appendID(b, e.replica)
		fields := e.fields()
		var flags byte
		for i, f := range fields {
			if !f.isZero() {
				flags |= 1 << i
			}
			if f.hi != 0 {
				flags |= 1 << (pnHiShift + i)
			}
		}
		b = append(b, flags)
		for _, f := range fields {
			if f.hi != 0 {
				b = binary.AppendUvarint(b, f.hi)
			}
			if !f.isZero() {
				b = binary.AppendUvarint(b, f.lo)
			}
		}
	}
	return b, nil
}

func (e *pnEntry) fields() [pnFieldCount]u128 { return [...]u128{e.inc, e.dec, e.rinc, e.rdec} }

// DecodePNCounter decodes exactly the bytes AppendBinary produced. Input
// that is not a canonical encoding of a valid state (unsorted or repeated
// replicas, a floor above its total, an all-zero replica, padded varints,
// trailing bytes) is an error wrapping ErrMalformed; no input panics.
func DecodePNCounter(b []byte) (PNCounter, error) {
	d := decoder{b: b}
	d.tag(tagPNCounter, "counter")
	// A replica is at least 4 bytes: id length, id, flags, one total.
	n := d.count("counter replicas", 4)
	var e []pnEntry
	if n > 0 {
		e = make([]pnEntry, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		x := pnEntry{replica: d.id("counter replica")}
		flags := d.byte("counter flags")
		var f [pnFieldCount]u128
		for k := range f {
			present, hasHi := flags&(1<<k) != 0, flags&(1<<(pnHiShift+k)) != 0
			switch {
			case hasHi && !present:
				d.fail("counter replica %q: high half without the total", x.replica)
			case hasHi:
				if f[k].hi = d.uvarint("counter total high half"); d.err == nil && f[k].hi == 0 {
					d.fail("counter replica %q: zero high half flagged present", x.replica)
				}
				f[k].lo = d.uvarint("counter total")
			case present:
				if f[k].lo = d.uvarint("counter total"); d.err == nil && f[k].lo == 0 {
					d.fail("counter replica %q: zero total flagged present", x.replica)
				}
			}
		}
		x.inc, x.dec, x.rinc, x.rdec = f[0], f[1], f[2], f[3]
		switch {
		case d.err != nil:
		case i > 0 && x.replica <= e[i-1].replica:
			d.fail("counter replicas out of order (%q after %q)", x.replica, e[i-1].replica)
		case x.inc.isZero() && x.dec.isZero():
			d.fail("counter replica %q has no increments or decrements", x.replica)
		case x.inc.less(x.rinc) || x.dec.less(x.rdec):
			d.fail("counter replica %q: reset floor above its total", x.replica)
		default:
			e = append(e, x)
		}
	}
	if err := d.end("counter"); err != nil {
		return PNCounter{}, err
	}
	return PNCounter{e}, nil
}

// u128 is an unsigned 128-bit integer, just the operations the counter
// needs.
type u128 struct{ hi, lo uint64 }

func (a u128) isZero() bool { return a.hi == 0 && a.lo == 0 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func maxU128(a, b u128) u128 {
	if a.less(b) {
		return b
	}
	return a
}

// add returns a+d and false if it overflows.
func (a u128) add(d uint64) (u128, bool) {
	lo, carry := bits.Add64(a.lo, d, 0)
	hi, overflow := bits.Add64(a.hi, 0, carry)
	return u128{hi, lo}, overflow == 0
}

// sub returns a-b for a >= b (an invariant wherever it is used).
func (a u128) sub(b u128) u128 {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, borrow)
	return u128{hi, lo}
}

func (a u128) setBig(z *big.Int) *big.Int {
	z.SetUint64(a.hi)
	z.Lsh(z, 64)
	return z.Or(z, new(big.Int).SetUint64(a.lo))
}

func (a u128) String() string {
	if a.hi == 0 {
		return strconv.FormatUint(a.lo, 10)
	}
	return a.setBig(new(big.Int)).String()
}

// Len is how many replicas have ever changed the counter (0 for a counter
// nobody touched, which need not be stored).
func (c PNCounter) Len() int { return len(c.e) }

// Active reports whether some delta of c is not yet reset: a counter that
// a DEL reset and nobody incremented since is inactive, whatever its
// history, so a deleted key stays deleted.
func (c PNCounter) Active() bool {
	for _, e := range c.e {
		if e.rinc.less(e.inc) || e.rdec.less(e.dec) {
			return true
		}
	}
	return false
}
