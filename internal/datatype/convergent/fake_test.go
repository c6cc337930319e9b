package convergent

import (
	"errors"
	"maps"
	"slices"
	"strconv"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// fakeSite is an in-memory convergent mode for the tests: per key a
// last-writer-wins string register and a crdt.Coll, visible by the rules
// the multi-leader and leaderless modes follow (the newer of the live
// register and the Coll's newest live entry), a counter clock, and a
// join with another site's state.
type fakeSite struct {
	name  string
	keys  map[string]fakeRecord
	clock crdt.Timestamp
	now   int64 // NowMs
	// puts counts PutColl calls per key, over all transactions.
	puts map[string]int
	// versioned makes the site's transactions engine.Versioned.
	versioned bool
}

type fakeRecord struct {
	value    []byte
	regStamp crdt.Stamp
	deleted  bool
	expireAt int64
	coll     crdt.Coll
}

func newSite(name string) *fakeSite {
	return &fakeSite{name: name, keys: map[string]fakeRecord{}, now: 1000, puts: map[string]int{}}
}

// shows is what a record holds at nowMs: a string, a collection type, or
// nothing.
func (r fakeRecord) shows(nowMs int64) (engine.Version, bool) {
	regLive := !r.regStamp.Time.IsZero() && !r.deleted && (r.expireAt == 0 || r.expireAt > nowMs)
	ct, newest, collLive := r.coll.Visible(nowMs)
	switch {
	case collLive && (!regLive || r.regStamp.Less(newest)):
		return engine.Version{Type: engine.Type(ct), ExpireAt: r.coll.ExpireAt()}, true
	case regLive:
		return engine.Version{Value: r.value, ExpireAt: r.expireAt}, true
	}
	return engine.Version{}, false
}

func (s *fakeSite) observe(st crdt.Stamp) {
	if s.clock.Less(st.Time) {
		s.clock = st.Time
	}
}

func (s *fakeSite) tick() crdt.Stamp {
	s.clock = crdt.Timestamp{WallMs: s.clock.WallMs, Logical: s.clock.Logical + 1}
	return crdt.Stamp{Time: s.clock, Site: s.name}
}

// write runs fn as one command through the adapter: its writes are kept
// only if it returns nil.
func (s *fakeSite) write(mode string, fn func(engine.Txn) error) error {
	tx := &fakeTxn{site: s, buf: map[string]fakeRecord{}}
	var t engine.Txn = tx
	if s.versioned {
		t = versionedFake{tx}
	}
	if err := Run(t, mode, fn); err != nil {
		return err
	}
	if tx.err != nil {
		return tx.err
	}
	maps.Copy(s.keys, tx.buf)
	return nil
}

func (s *fakeSite) reader(mode string) engine.Reader {
	return WrapReader(&fakeReader{site: s}, mode)
}

// joinFrom merges o's state into s (a replication step), both ways if
// called on each.
func (s *fakeSite) joinFrom(o *fakeSite) {
	for k, ro := range o.keys {
		r := s.keys[k]
		if r.regStamp.Less(ro.regStamp) {
			r.value, r.regStamp, r.deleted, r.expireAt = ro.value, ro.regStamp, ro.deleted, ro.expireAt
		}
		r.coll = r.coll.Join(ro.coll)
		s.observe(r.coll.Top())
		s.observe(r.regStamp)
		s.keys[k] = r
	}
}

type fakeTxn struct {
	site *fakeSite
	buf  map[string]fakeRecord
	err  error
}

var (
	_ engine.CollTxn    = (*fakeTxn)(nil)
	_ engine.CounterTxn = (*fakeTxn)(nil)
	_ engine.ScanTxn    = (*fakeTxn)(nil)
)

var errReservedWrite = errors.New("fake: a write of a reserved key reached the mode")

func (t *fakeTxn) record(key []byte) fakeRecord {
	if r, ok := t.buf[string(key)]; ok {
		return r
	}
	return t.site.keys[string(key)]
}

func (t *fakeTxn) NowMs() int64 { return t.site.now }

func (t *fakeTxn) Get(key []byte) (engine.Version, bool, error) {
	if engine.IsReserved(key) {
		return engine.Version{}, false, nil
	}
	r := t.record(key)
	t.site.observe(r.regStamp)
	v, ok := r.shows(t.site.now)
	return v, ok, nil
}

// stampFor observes what key holds and returns a new stamp.
func (t *fakeTxn) stampFor(r fakeRecord) crdt.Stamp {
	t.site.observe(r.regStamp)
	t.site.observe(r.coll.Top())
	return t.site.tick()
}

func (t *fakeTxn) Set(key, value []byte, expireAtMs int64) {
	if engine.IsReserved(key) {
		t.err = errReservedWrite
		return
	}
	r := t.record(key)
	st := t.stampFor(r)
	r.value, r.regStamp, r.deleted, r.expireAt = slices.Clone(value), st, false, expireAtMs
	r.coll = r.coll.Clone()
	r.coll.Clear(st)
	t.buf[string(key)] = r
}

func (t *fakeTxn) Del(key []byte) {
	if engine.IsReserved(key) {
		t.err = errReservedWrite
		return
	}
	r := t.record(key)
	st := t.stampFor(r)
	r.value, r.regStamp, r.deleted, r.expireAt = nil, st, true, 0
	r.coll = r.coll.Clone()
	r.coll.Clear(st)
	t.buf[string(key)] = r
}

func (t *fakeTxn) FlushAll() {
	t.err = &engine.UnsupportedError{Command: "FLUSHALL", Mode: "fake", Why: "test"}
}

func (t *fakeTxn) IncrBy(key []byte, delta int64) (int64, error) {
	r := t.record(key)
	v, ok := r.shows(t.site.now)
	n := int64(0)
	if ok {
		if v.Type != engine.TypeString {
			return 0, datatype.ErrWrongType
		}
		var err error
		if n, err = strconv.ParseInt(string(v.Value), 10, 64); err != nil {
			return 0, engine.ErrNotInteger
		}
	}
	n += delta
	t.Set(key, []byte(strconv.FormatInt(n, 10)), v.ExpireAt)
	return n, nil
}

func (t *fakeTxn) GetColl(key []byte) (crdt.Coll, error) {
	r := t.record(key)
	t.site.observe(r.coll.Top())
	return r.coll.Clone(), nil
}

func (t *fakeTxn) PutColl(key []byte, c crdt.Coll) {
	r := t.record(key)
	r.coll = c.Clone()
	t.buf[string(key)] = r
	t.site.puts[string(key)]++
}

func (t *fakeTxn) Stamp() crdt.Stamp { return t.site.tick() }

func (t *fakeTxn) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	all := maps.Clone(t.site.keys)
	maps.Copy(all, t.buf)
	return scanRecords(all, t.site.now, start, fn)
}

func scanRecords(all map[string]fakeRecord, now int64, start []byte, fn func([]byte, engine.Version) bool) error {
	for _, k := range slices.Sorted(maps.Keys(all)) {
		if k < string(start) {
			continue
		}
		if v, ok := all[k].shows(now); ok && !fn([]byte(k), v) {
			return nil
		}
	}
	return nil
}

type versionedFake struct{ *fakeTxn }

func (versionedFake) StateLSN() uint64                          { return 7 }
func (versionedFake) ChangedSince([]byte, uint64) (bool, error) { return false, nil }

type fakeReader struct{ site *fakeSite }

var _ engine.CollReader = (*fakeReader)(nil)

func (r *fakeReader) Get(key []byte) (engine.Version, bool, error) {
	if engine.IsReserved(key) {
		return engine.Version{}, false, nil
	}
	v, ok := r.site.keys[string(key)].shows(r.site.now)
	return v, ok, nil
}

func (r *fakeReader) GetColl(key []byte) (crdt.Coll, error) {
	return r.site.keys[string(key)].coll, nil
}

func (r *fakeReader) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	return scanRecords(r.site.keys, r.site.now, start, fn)
}

func (r *fakeReader) Token() engine.Token { return engine.Token{} }
func (r *fakeReader) NowMs() int64        { return r.site.now }
