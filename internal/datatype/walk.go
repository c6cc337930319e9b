package datatype

import "fmt"

// Elem is one element of a collection's sub-space: its key suffix (a hash
// field, a set member) and its value.
type Elem struct {
	Rest, Value []byte
}

// Walk batch sizes: a Walker's first read is small (callers that stop
// early, like a random pick at a low index, read little), later ones grow
// so that a whole walk costs few scans.
const (
	walkFirstBatch = 16
	walkMaxBatch   = 1024
)

// Walker walks the elements of one sub-space in key order, reading them in
// batches. A caller may read other keys between calls to Next (a
// membership test in another set, say): no read ever runs inside another
// read's callback, which matters because a storage scan holds the store's
// read lock for as long as it runs, and taking that lock a second time
// from the same goroutine deadlocks once a writer waits for it.
type Walker struct {
	s     Scanner
	id    uint64
	sub   byte
	from  []byte // the next suffix to read from (inclusive)
	buf   []Elem
	pos   int
	batch int
	done  bool
	err   error
}

// Walk returns a Walker over sub-space sub from the suffix from.
func (v *View) Walk(sub byte, from []byte) *Walker {
	return &Walker{s: v.s, id: v.Meta.ID, sub: sub, from: append([]byte(nil), from...), batch: walkFirstBatch}
}

// Next returns the next element; ok is false at the end or on an error
// (see Err).
func (it *Walker) Next() (e Elem, ok bool) {
	if it.pos == len(it.buf) {
		if it.done || it.err != nil {
			return Elem{}, false
		}
		it.fill()
		if it.pos == len(it.buf) {
			return Elem{}, false
		}
	}
	e = it.buf[it.pos]
	it.pos++
	return e, true
}

// Err is the error that ended the walk, if any.
func (it *Walker) Err() error { return it.err }

func (it *Walker) fill() {
	it.buf, it.pos = it.buf[:0], 0
	n := it.batch
	err := ScanElems(it.s, it.id, it.sub, it.from, func(rest, value []byte) bool {
		it.buf = append(it.buf, Elem{Rest: append([]byte(nil), rest...), Value: append([]byte(nil), value...)})
		return len(it.buf) < n
	})
	if err != nil {
		it.err = fmt.Errorf("scan collection %d: %w", it.id, err)
		return
	}
	if len(it.buf) < n {
		it.done = true
	}
	if len(it.buf) > 0 {
		// The smallest suffix after the last one read.
		it.from = append(append(it.from[:0], it.buf[len(it.buf)-1].Rest...), 0)
	}
	it.batch = min(2*it.batch, walkMaxBatch)
}

// All reads every element of sub-space sub. It is for commands whose
// reply holds the whole collection anyway (HGETALL, SMEMBERS).
func (v *View) All(sub byte) ([]Elem, error) {
	out := make([]Elem, 0, min(v.Meta.Len, walkMaxBatch))
	err := v.Scan(sub, nil, func(rest, value []byte) bool {
		out = append(out, Elem{Rest: append([]byte(nil), rest...), Value: append([]byte(nil), value...)})
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
