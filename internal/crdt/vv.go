package crdt

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
)

// Vector is a version vector: for each replica (a site in multi-leader
// mode, a node in leaderless mode) the number of that replica's events
// known. An absent id and a zero counter mean the same thing, and a
// Vector never stores zeros, so that equal vectors have one
// representation.
//
// A Vector is an immutable value: the operations that "change" it return a
// new Vector and never write to the receiver's memory, so a Vector can be
// shared between goroutines, kept in a session and handed to a caller
// without copying. The zero Vector is the empty vector.
//
// It is a slice sorted by id rather than a map because every use walks it
// in order (comparison and merge as one linear merge of two sorted lists,
// the canonical encoding and text form) and because vectors are small (one
// entry per site or per replica of a key) and decoded on every read of a
// key in leaderless mode, where a slice is one allocation.
type Vector struct {
	e []ventry
}

type ventry struct {
	id string
	n  uint64
}

var (
	_ encoding.BinaryAppender  = Vector{}
	_ encoding.TextMarshaler   = Vector{}
	_ encoding.TextUnmarshaler = (*Vector)(nil)
)

// VectorOf builds a Vector from a map. Zero counters are dropped. It panics
// on an id that fails ValidID.
func VectorOf(m map[string]uint64) Vector {
	e := make([]ventry, 0, len(m))
	for id, n := range m {
		mustValidID(id)
		if n != 0 {
			e = append(e, ventry{id, n})
		}
	}
	slices.SortFunc(e, func(a, b ventry) int { return strings.Compare(a.id, b.id) })
	return Vector{e}
}

// find returns the index of id, or where it would be inserted.
func (v Vector) find(id string) (int, bool) {
	return slices.BinarySearchFunc(v.e, id, func(e ventry, id string) int { return strings.Compare(e.id, id) })
}

// Get returns id's counter, 0 if absent.
func (v Vector) Get(id string) uint64 {
	if i, ok := v.find(id); ok {
		return v.e[i].n
	}
	return 0
}

// Len is the number of ids with a non-zero counter.
func (v Vector) Len() int { return len(v.e) }

// IsEmpty reports whether every counter is zero.
func (v Vector) IsEmpty() bool { return len(v.e) == 0 }

// All yields the non-zero entries in id order.
func (v Vector) All() iter.Seq2[string, uint64] {
	return func(yield func(string, uint64) bool) {
		for _, e := range v.e {
			if !yield(e.id, e.n) {
				return
			}
		}
	}
}

// Map returns the non-zero entries as a new map.
func (v Vector) Map() map[string]uint64 {
	m := make(map[string]uint64, len(v.e))
	for _, e := range v.e {
		m[e.id] = e.n
	}
	return m
}

// Set returns a copy of v with id's counter set to n, lowered or raised (0
// removes it). Replicas that only learn about events use Advance; Set is
// for building a vector from known positions. It panics on an id that
// fails ValidID.
func (v Vector) Set(id string, n uint64) Vector {
	mustValidID(id)
	i, ok := v.find(id)
	switch {
	case ok && n == 0:
		return Vector{slices.Concat(v.e[:i], v.e[i+1:])}
	case ok:
		e := slices.Clone(v.e)
		e[i].n = n
		return Vector{e}
	case n == 0:
		return v
	}
	e := make([]ventry, 0, len(v.e)+1)
	e = append(e, v.e[:i]...)
	e = append(e, ventry{id, n})
	return Vector{append(e, v.e[i:]...)}
}

// Advance returns v with id's counter raised to n if it is lower. Version
// vectors only grow, so this is the update a replica makes when it learns
// of events; it returns v itself when nothing changes. It panics on an id
// that fails ValidID.
func (v Vector) Advance(id string, n uint64) Vector {
	mustValidID(id)
	if n <= v.Get(id) {
		return v
	}
	return v.Set(id, n)
}

// Merge returns the pointwise maximum of v and o: the events known to
// either. It is the join of the version-vector lattice, hence commutative,
// associative and idempotent.
func (v Vector) Merge(o Vector) Vector {
	// Sharing an input is safe because vectors are immutable, and it
	// makes the common case (one side already knows everything) free.
	if v.Covers(o) {
		return v
	}
	if o.Covers(v) {
		return o
	}
	e := make([]ventry, 0, len(v.e)+len(o.e))
	i, j := 0, 0
	for i < len(v.e) || j < len(o.e) {
		switch {
		case j == len(o.e) || (i < len(v.e) && v.e[i].id < o.e[j].id):
			e = append(e, v.e[i])
			i++
		case i == len(v.e) || o.e[j].id < v.e[i].id:
			e = append(e, o.e[j])
			j++
		default:
			e = append(e, ventry{v.e[i].id, max(v.e[i].n, o.e[j].n)})
			i++
			j++
		}
	}
	return Vector{e}
}

// Ordering is the causal relation between two version vectors.
type Ordering int

const (
	// Equal: the vectors know exactly the same events.
	Equal Ordering = iota
	// Before: the receiver knows a strict subset of the other's events
	// (the other happened after it).
	Before
	// After: the receiver knows a strict superset of the other's events.
	After
	// Concurrent: each knows an event the other does not.
	Concurrent
)

func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	case Concurrent:
		return "concurrent"
	}
	return "Ordering(" + strconv.Itoa(int(o)) + ")"
}

// Compare returns how v relates to o: Before when o covers v and knows
// more, After when v covers o and knows more, Equal or Concurrent.
func (v Vector) Compare(o Vector) Ordering {
	less, more := false, false // v has an entry below / above o's
	i, j := 0, 0
	for i < len(v.e) || j < len(o.e) {
		switch {
		case j == len(o.e) || (i < len(v.e) && v.e[i].id < o.e[j].id):
			more = true
			i++
		case i == len(v.e) || o.e[j].id < v.e[i].id:
			less = true
			j++
		default:
			if v.e[i].n < o.e[j].n {
				less = true
			} else if v.e[i].n > o.e[j].n {
				more = true
			}
			i++
			j++
		}
		if less && more {
			return Concurrent
		}
	}
	switch {
	case less:
		return Before
	case more:
		return After
	}
	return Equal
}

// Covers reports whether v knows every event o knows (v dominates or
// equals o). A session read is admitted when the replica's applied vector
// covers the session's token.
func (v Vector) Covers(o Vector) bool {
	if len(o.e) > len(v.e) {
		return false // o has an id v lacks, since v's are non-zero
	}
	i := 0
	for _, oe := range o.e {
		for i < len(v.e) && v.e[i].id < oe.id {
			i++
		}
		if i == len(v.e) || v.e[i].id != oe.id || v.e[i].n < oe.n {
			return false
		}
		i++
	}
	return true
}

// Equal reports whether v and o hold the same counters.
func (v Vector) Equal(o Vector) bool { return slices.Equal(v.e, o.e) }

// String returns the text form: "id:counter" pairs sorted by id and joined
// by commas, e.g. "eu:120,us:98"; the empty vector is "". This is the
// user-visible session token of multi-leader mode and the causal context
// of leaderless mode, and ParseVector reads it back.
func (v Vector) String() string {
	b, _ := v.MarshalText()
	return string(b)
}

// MarshalText returns the text form (see String); it never fails.
func (v Vector) MarshalText() ([]byte, error) {
	var b []byte
	for i, e := range v.e {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.id...)
		b = append(b, ':')
		b = strconv.AppendUint(b, e.n, 10)
	}
	return b, nil
}

// UnmarshalText parses the text form into v (see ParseVector).
func (v *Vector) UnmarshalText(b []byte) error {
	p, err := ParseVector(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// ErrInvalidVector is wrapped by every ParseVector error.
var ErrInvalidVector = errors.New("crdt: invalid version vector")

// ParseVector parses the text form produced by String: zero or more
// "id:counter" elements separated by commas, each id valid (ValidID) and
// each counter a decimal uint64. Elements may come in any order (the form
// is typed and pasted by people), but an id may appear only once, since a
// repeated id is ambiguous. Nothing else is accepted: no spaces, no signs,
// no empty elements. "" is the empty vector. Counters of 0 are accepted and
// dropped.
func ParseVector(s string) (Vector, error) {
	if s == "" {
		return Vector{}, nil
	}
	fail := func(format string, args ...any) (Vector, error) {
		return Vector{}, fmt.Errorf("%w %q: %s", ErrInvalidVector, s, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(s, ",")
	e := make([]ventry, 0, len(parts))
	for i, part := range parts {
		id, num, ok := strings.Cut(part, ":")
		if !ok {
			return fail("element %d %q is not id:counter", i+1, part)
		}
		if err := ValidID(id); err != nil {
			return fail("element %d %q: %v", i+1, part, err)
		}
		if num == "" || num[0] < '0' || num[0] > '9' {
			// ParseUint would reject most of these too, but not
			// with a message that names the problem.
			return fail("element %d %q: counter %q is not an unsigned decimal integer", i+1, part, num)
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return fail("element %d %q: counter %s is larger than %d", i+1, part, num, uint64(1<<64-1))
			}
			return fail("element %d %q: counter %q is not an unsigned decimal integer", i+1, part, num)
		}
		e = append(e, ventry{id, n})
	}
	slices.SortStableFunc(e, func(a, b ventry) int { return strings.Compare(a.id, b.id) })
	for i := 1; i < len(e); i++ {
		if e[i].id == e[i-1].id {
			return fail("id %q appears more than once", e[i].id)
		}
	}
	e = slices.DeleteFunc(e, func(x ventry) bool { return x.n == 0 })
	return Vector{e}, nil
}

// AppendBinary appends v's canonical encoding to b: the tag 'V', the number
// of entries, then each entry's id (length-prefixed) and counter, in id
// order, all lengths and counters as unsigned varints. Equal vectors have
// equal encodings and DecodeVector accepts nothing else, so encodings can
// be compared and hashed in place of vectors. The error is always nil.
func (v Vector) AppendBinary(b []byte) ([]byte, error) {
	return v.appendBody(append(b, tagVector)), nil
}

func (v Vector) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v.e)))
	for _, e := range v.e {
		b = appendID(b, e.id)
		b = binary.AppendUvarint(b, e.n)
	}
	return b
}

// DecodeVector decodes exactly the bytes AppendBinary produced. Any other
// input, including an unsorted, repeated, zero-counter or padded form of a
// valid vector, is an error wrapping ErrMalformed; no input panics.
func DecodeVector(b []byte) (Vector, error) {
	d := decoder{b: b}
	d.tag(tagVector, "vector")
	v := d.vectorBody()
	if err := d.end("vector"); err != nil {
		return Vector{}, err
	}
	return v, nil
}

func (d *decoder) vectorBody() Vector {
	// An entry is at least 3 bytes: id length, one id byte, counter.
	n := d.count("vector entries", 3)
	if d.err != nil || n == 0 {
		return Vector{}
	}
	e := make([]ventry, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.id("vector id")
		c := d.uvarint("vector counter")
		switch {
		case d.err != nil:
		case c == 0:
			d.fail("vector entry %q has a zero counter", id)
		case i > 0 && id <= e[i-1].id:
			d.fail("vector ids out of order (%q after %q)", id, e[i-1].id)
		default:
			e = append(e, ventry{id, c})
		}
	}
	return Vector{e}
}
