package datatype

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/replicant-db/replicant/internal/engine"
)

// Lists. Element i (0 ≤ i < Meta.Len) is the key SubIndex EncodeIndex(
// Meta.Head+i): a push at the left decrements Head, a push at the right
// writes Head+Len, so both ends are O(1) per element and reading by index
// is one Get. An insertion or removal in the middle shifts the elements
// on its shorter side (LINSERT and LREM are O(n) in Redis too).
//
// Indices taken by these methods are already normalised by the caller
// (Redis's negative indices, clamping and out-of-range rules differ per
// command): 0 ≤ start ≤ stop < Len unless a method says otherwise.

// listChunk is how many elements a backward walk reads per forward scan
// on a state that cannot scan backwards (engine.ReverseScanner): it reads
// the list in chunks from the end. A variable so that tests can make
// chunks small.
var listChunk int64 = 256

// ListView reads a list from one consistent state.
type ListView struct{ v *View }

// ReadList opens the list at key for reading: found is false when the key
// does not exist; ErrWrongType when it holds another type.
func ReadList(s Scanner, key []byte) (ListView, bool, error) {
	v, ok, err := Read(s, key, engine.TypeList)
	if err != nil || !ok {
		return ListView{}, false, err
	}
	return ListView{v}, true, nil
}

// Len is the number of elements.
func (l ListView) Len() int64 { return l.v.Meta.Len }

func (l ListView) key(i int64) []byte { return EncodeIndex(l.v.Meta.Head + i) }

// Index returns element i (0 ≤ i < Len).
func (l ListView) Index(i int64) ([]byte, error) {
	if i < 0 || i >= l.Len() {
		return nil, fmt.Errorf("list %q: index %d of %d", l.v.Key, i, l.Len())
	}
	b, ok, err := l.v.Get(SubIndex, l.key(i))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: list %q: element %d missing", ErrCorrupt, l.v.Key, i)
	}
	return b, nil
}

// Range calls fn with elements start..stop in order until fn returns
// false. value is only valid during the call.
func (l ListView) Range(start, stop int64, fn func(i int64, value []byte) bool) error {
	if start > stop {
		return nil
	}
	if start < 0 || stop >= l.Len() {
		return fmt.Errorf("list %q: range %d..%d of %d", l.v.Key, start, stop, l.Len())
	}
	i, stopped, bad := start, false, false
	err := l.v.Scan(SubIndex, l.key(start), func(rest, value []byte) bool {
		if idx, ok := DecodeIndex(rest); !ok || idx != l.v.Meta.Head+i {
			bad = true
			return false
		}
		if !fn(i, value) {
			stopped = true
			return false
		}
		i++
		return i <= stop
	})
	if err == nil && !stopped && (bad || i <= stop) {
		// The metadata counts an element its index has not: every
		// element of 0..Len-1 must be there.
		err = fmt.Errorf("%w: list %q: element %d missing", ErrCorrupt, l.v.Key, i)
	}
	return err
}

// RangeBack calls fn with elements stop down to start until fn returns
// false. value is only valid during the call. It reads only what fn takes
// (in chunks of listChunk elements when the state cannot scan backwards).
func (l ListView) RangeBack(start, stop int64, fn func(i int64, value []byte) bool) error {
	if start > stop {
		return nil
	}
	if start < 0 || stop >= l.Len() {
		return fmt.Errorf("list %q: range %d..%d of %d", l.v.Key, start, stop, l.Len())
	}
	if _, ok := l.v.s.(engine.ReverseScanner); ok {
		i, stopped, bad := stop, false, false
		err := ScanElemsReverse(l.v.s, l.v.Meta.ID, SubIndex, l.key(stop+1), func(rest, value []byte) bool {
			if idx, ok := DecodeIndex(rest); !ok || idx != l.v.Meta.Head+i {
				bad = true
				return false
			}
			if !fn(i, value) {
				stopped = true
				return false
			}
			i--
			return i >= start
		})
		if err == nil && !stopped && (bad || i >= start) {
			err = fmt.Errorf("%w: list %q: element %d missing", ErrCorrupt, l.v.Key, i)
		}
		return err
	}
	for hi := stop; hi >= start; {
		lo := max(start, hi-listChunk+1)
		chunk := make([][]byte, 0, hi-lo+1)
		if err := l.Range(lo, hi, func(_ int64, v []byte) bool {
			chunk = append(chunk, bytes.Clone(v))
			return true
		}); err != nil {
			return err
		}
		for j := len(chunk) - 1; j >= 0; j-- {
			if !fn(lo+int64(j), chunk[j]) {
				return nil
			}
		}
		hi = lo - 1
	}
	return nil
}

// collect returns copies of elements start..stop.
func (l ListView) collect(start, stop int64) ([][]byte, error) {
	if start > stop {
		return nil, nil
	}
	if start == stop {
		// One element (LPOP, RPOP, LINDEX's neighbours): a point read is
		// cheaper than opening a scan over the write's state.
		v, err := l.Index(start)
		if err != nil {
			return nil, err
		}
		return [][]byte{bytes.Clone(v)}, nil
	}
	out := make([][]byte, 0, stop-start+1)
	err := l.Range(start, stop, func(_ int64, v []byte) bool {
		out = append(out, bytes.Clone(v))
		return true
	})
	return out, err
}

// Pos returns the indices of the elements equal to elem, as LPOS: from the
// head when rank > 0 (skipping the first rank-1 matches), from the tail
// when rank < 0; at most count of them (0: all); looking at no more than
// maxlen elements (0: all). rank is never 0.
func (l ListView) Pos(elem []byte, rank, count, maxlen int64) ([]int64, error) {
	if rank == 0 {
		return nil, errors.New("list position rank 0")
	}
	var out []int64
	skip := rank - 1
	if rank < 0 {
		skip = -rank - 1
	}
	var seen int64
	visit := func(i int64, v []byte) bool {
		if maxlen > 0 && seen >= maxlen {
			return false
		}
		seen++
		if !bytes.Equal(v, elem) {
			return true
		}
		if skip > 0 {
			skip--
			return true
		}
		out = append(out, i)
		return count == 0 || int64(len(out)) < count
	}
	if l.Len() == 0 {
		return nil, nil
	}
	var err error
	if rank > 0 {
		err = l.Range(0, l.Len()-1, visit)
	} else {
		err = l.RangeBack(0, l.Len()-1, visit)
	}
	return out, err
}

// List is a list opened for writing inside one write command: change it
// through its methods, then Save.
type List struct {
	ListView
	c *Coll
	// dropped: the list was emptied without deleting its elements (they
	// are the sweeper's once Save deletes the key), so it may not be
	// written again.
	dropped bool
}

// errDropped is a List written after Trim or Remove emptied it.
var errDropped = errors.New("list written after it was emptied")

// OpenList opens the list at key in tx for writing; a missing key opens as
// an empty list (Exists false) that the first push creates.
func OpenList(tx engine.Txn, key []byte) (*List, error) {
	c, err := Open(tx, key, engine.TypeList)
	if err != nil {
		return nil, err
	}
	return &List{ListView: ListView{&c.View}, c: c}, nil
}

// Exists reports whether the list existed before this command.
func (l *List) Exists() bool { return l.c.Exists() }

// Save writes the list's metadata if it changed, or deletes the key if the
// list is empty (Coll.Save).
func (l *List) Save() error { return l.c.Save() }

func (l *List) put(i int64, v []byte) error { return l.c.Put(SubIndex, l.key(i), v) }
func (l *List) del(i int64)                 { l.c.Delete(SubIndex, l.key(i)) }

// Push adds elems one by one at the left (each becomes the new head, so
// the last ends first, as LPUSH) or at the right.
func (l *List) Push(left bool, elems [][]byte) error {
	if l.dropped {
		return errDropped
	}
	m := &l.c.Meta
	for _, e := range elems {
		if left {
			m.Head--
			m.Len++
			if err := l.put(0, e); err != nil {
				return err
			}
			continue
		}
		m.Len++
		if err := l.put(m.Len-1, e); err != nil {
			return err
		}
	}
	return nil
}

// Pop removes and returns up to n elements from the left (head first) or
// the right (tail first).
func (l *List) Pop(left bool, n int64) ([][]byte, error) {
	if l.dropped {
		return nil, errDropped
	}
	n = min(n, l.Len())
	if n <= 0 {
		return nil, nil
	}
	m := &l.c.Meta
	if left {
		out, err := l.collect(0, n-1)
		if err != nil {
			return nil, err
		}
		for i := range n {
			l.del(i)
		}
		m.Head += n
		m.Len -= n
		return out, nil
	}
	out, err := l.collect(m.Len-n, m.Len-1)
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	for i := m.Len - n; i < m.Len; i++ {
		l.del(i)
	}
	m.Len -= n
	return out, nil
}

// Set replaces element i (0 ≤ i < Len); setting the value it holds
// writes nothing.
func (l *List) Set(i int64, v []byte) error {
	if l.dropped {
		return errDropped
	}
	cur, err := l.Index(i)
	if err != nil || bytes.Equal(cur, v) {
		return err
	}
	return l.put(i, v)
}

// Insert puts v before (or after) the first element equal to pivot and
// reports whether pivot was found (nothing changes when it was not).
func (l *List) Insert(pivot, v []byte, before bool) (bool, error) {
	if l.dropped {
		return false, errDropped
	}
	at := int64(-1)
	if l.Len() > 0 {
		if err := l.Range(0, l.Len()-1, func(i int64, e []byte) bool {
			if bytes.Equal(e, pivot) {
				at = i
				return false
			}
			return true
		}); err != nil {
			return false, err
		}
	}
	if at < 0 {
		return false, nil
	}
	if !before {
		at++
	}
	// v becomes element at; the side with fewer elements moves by one.
	m := &l.c.Meta
	if at < m.Len-at {
		left, err := l.collect(0, at-1)
		if err != nil {
			return false, err
		}
		m.Head--
		m.Len++
		for i, e := range left {
			if err := l.put(int64(i), e); err != nil {
				return false, err
			}
		}
	} else {
		right, err := l.collect(at, m.Len-1)
		if err != nil {
			return false, err
		}
		m.Len++
		for i, e := range right {
			if err := l.put(at+1+int64(i), e); err != nil {
				return false, err
			}
		}
	}
	return true, l.put(at, v)
}

// Remove deletes elements equal to elem, as LREM: the first count from the
// head (count > 0), the last -count from the tail (count < 0), or all
// (count == 0). It returns how many it removed.
func (l *List) Remove(count int64, elem []byte) (int64, error) {
	if l.dropped {
		return 0, errDropped
	}
	if l.Len() == 0 {
		return 0, nil
	}
	var hits []int64
	visit := func(i int64, v []byte) bool {
		if bytes.Equal(v, elem) {
			hits = append(hits, i)
		}
		return count == 0 || int64(len(hits)) < max(count, -count)
	}
	var err error
	if count >= 0 {
		err = l.Range(0, l.Len()-1, visit)
	} else {
		err = l.RangeBack(0, l.Len()-1, visit)
		slices.Reverse(hits)
	}
	if err != nil || len(hits) == 0 {
		return 0, err
	}
	k := int64(len(hits))
	m := &l.c.Meta
	if k == m.Len {
		l.drop()
		return k, nil
	}
	first, last := hits[0], hits[k-1]
	gone := make(map[int64]bool, k)
	for _, h := range hits {
		gone[h] = true
	}
	if m.Len-first <= last+1 {
		// Close the gaps towards the head: everything from first on moves.
		tail, err := l.collect(first, m.Len-1)
		if err != nil {
			return 0, err
		}
		to := first
		for j, e := range tail {
			if gone[first+int64(j)] {
				continue
			}
			if err := l.put(to, e); err != nil {
				return 0, err
			}
			to++
		}
		for i := m.Len - k; i < m.Len; i++ {
			l.del(i)
		}
		m.Len -= k
		return k, nil
	}
	// Close the gaps towards the tail: everything up to last moves.
	head, err := l.collect(0, last)
	if err != nil {
		return 0, err
	}
	to := last
	for j := len(head) - 1; j >= 0; j-- {
		if gone[int64(j)] {
			continue
		}
		if err := l.put(to, head[j]); err != nil {
			return 0, err
		}
		to--
	}
	for i := range k {
		l.del(i)
	}
	m.Head += k
	m.Len -= k
	return k, nil
}

// Trim keeps elements start..stop and deletes the others; start > stop
// empties the list (then in O(1): its elements are left to the sweeper).
func (l *List) Trim(start, stop int64) error {
	if l.dropped {
		return errDropped
	}
	m := &l.c.Meta
	if start > stop || start >= m.Len {
		if m.Len > 0 {
			l.drop()
		}
		return nil
	}
	if start < 0 || stop >= m.Len {
		return fmt.Errorf("list %q: trim %d..%d of %d", l.c.Key, start, stop, m.Len)
	}
	for i := range start {
		l.del(i)
	}
	for i := stop + 1; i < m.Len; i++ {
		l.del(i)
	}
	m.Head += start
	m.Len = stop - start + 1
	return nil
}

// drop empties the list without deleting its elements: Save deletes the
// key, and the sweeper the elements of the id no key holds any more.
func (l *List) drop() {
	l.c.Meta.Len = 0
	l.dropped = true
}
