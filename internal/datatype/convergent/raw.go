package convergent

import (
	"bytes"
	"slices"
	"sort"
)

// rawElems holds the elements of a collection created in this
// transaction (an id from NewID) as package datatype writes them, sub-space
// byte and suffix to value, until SetTyped says which key and type they
// belong to. A new sorted set's member records and score index are both
// kept as written, so they agree as they do in single-leader mode.
type rawElems struct {
	m      map[string][]byte // sub + rest → value
	sorted []string          // m's keys in order; nil when stale
}

func newRaw() *rawElems { return &rawElems{m: map[string][]byte{}} }

func rawKey(sub byte, rest []byte) string {
	return string(append([]byte{sub}, rest...))
}

func (r *rawElems) get(sub byte, rest []byte) ([]byte, bool) {
	v, ok := r.m[rawKey(sub, rest)]
	return v, ok
}

func (r *rawElems) put(sub byte, rest, value []byte) {
	k := rawKey(sub, rest)
	if _, ok := r.m[k]; !ok {
		r.sorted = nil
	}
	r.m[k] = bytes.Clone(value)
}

func (r *rawElems) del(sub byte, rest []byte) {
	k := rawKey(sub, rest)
	if _, ok := r.m[k]; ok {
		delete(r.m, k)
		r.sorted = nil
	}
}

func (r *rawElems) keys() []string {
	if r.sorted == nil {
		r.sorted = make([]string, 0, len(r.m))
		for k := range r.m {
			r.sorted = append(r.sorted, k)
		}
		slices.Sort(r.sorted)
	}
	return r.sorted
}

// subs are the sub-spaces that hold elements, ascending.
func (r *rawElems) subs() []byte {
	var out []byte
	for _, k := range r.keys() {
		if len(out) == 0 || out[len(out)-1] != k[0] {
			out = append(out, k[0])
		}
	}
	return out
}

// rangeFrom calls fn for sub's elements with suffix >= from, ascending;
// it reports whether fn asked for more.
func (r *rawElems) rangeFrom(sub byte, from []byte, fn func(rest, value []byte) bool) bool {
	ks := r.keys()
	lo := rawKey(sub, from)
	for i := sort.SearchStrings(ks, lo); i < len(ks) && ks[i][0] == sub; i++ {
		if !fn([]byte(ks[i][1:]), r.m[ks[i]]) {
			return false
		}
	}
	return true
}

// rangeBefore calls fn for sub's elements with suffix < before (all when
// before is nil), descending; it reports whether fn asked for more.
func (r *rawElems) rangeBefore(sub byte, before []byte, fn func(rest, value []byte) bool) bool {
	ks := r.keys()
	var hi int
	if before == nil {
		hi = sort.SearchStrings(ks, string([]byte{sub + 1}))
	} else {
		hi = sort.SearchStrings(ks, rawKey(sub, before))
	}
	for i := hi - 1; i >= 0 && ks[i][0] == sub; i-- {
		if !fn([]byte(ks[i][1:]), r.m[ks[i]]) {
			return false
		}
	}
	return true
}
