package multileader

import (
	"bytes"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// After everyone has merged everyone, every site holds the same record
// (collections included), and every hash field is what last-writer-wins
// per field with clear-by-time says: the newest HSET or HDEL of the field,
// if it is an HSET newer than every SET and DEL of the whole key.
func TestSitesConvergeWithCollections(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sites, _, _, log := historyOps(t, true, true)
		for round := 0; round < 2; round++ {
			for _, a := range sites {
				for _, b := range sites {
					a.rec, _ = Merge(a.rec, b.rec)
				}
			}
		}
		final := sites[0].rec
		for _, s := range sites[1:] {
			if !s.rec.Equal(final) {
				t.Fatalf("%s and %s differ:\n%+v\n%+v", s.name, sites[0].name, s.rec, final)
			}
		}
		var clear crdt.Stamp
		last := map[string]simOp{}
		for _, op := range log {
			switch op.kind {
			case "set", "del":
				if clear.Less(op.stamp) {
					clear = op.stamp
				}
			case "hset", "hdel":
				if l, ok := last[op.field]; !ok || l.stamp.Less(op.stamp) {
					last[op.field] = op
				}
			}
		}
		for _, f := range []string{"f", "g"} {
			op, ok := last[f]
			want, wantOK := op.value, ok && op.kind == "hset" && clear.Less(op.stamp)
			got, gotOK := final.Coll.Get(crdt.CollHash, []byte(f))
			if gotOK != wantOK || (wantOK && string(got) != want) {
				t.Fatalf("field %s = %q (%v), want %q (%v); last write %+v, clear %v", f, got, gotOK, want, wantOK, op, clear)
			}
		}
	})
}

// pair is two sites that start from one shared record, write on their
// own (concurrently), and then exchange records.
type pair struct{ a, b *simSite }

func newPair(t *testing.T, setup func(s *simSite)) pair {
	t.Helper()
	a := &simSite{name: "eu", clock: crdt.NewClock(0), phys: 100}
	b := &simSite{name: "us", clock: crdt.NewClock(0), phys: 100}
	if setup != nil {
		setup(a)
		b.rec = a.rec
		b.clock.Restore(a.rec.Top().Time)
		b.phys = a.phys
	}
	return pair{a, b}
}

// exchange merges both ways and checks that both sites agree; it returns
// the common record and the conflicts each side reported.
func (p pair) exchange(t *testing.T) (Record, *Conflict, *Conflict) {
	t.Helper()
	ab, ca := Merge(p.a.rec, p.b.rec)
	ba, cb := Merge(p.b.rec, p.a.rec)
	if !ab.Equal(ba) {
		t.Fatalf("sites differ after the exchange:\n%+v\n%+v", ab, ba)
	}
	return ab, ca, cb
}

func hset(f, v string) func(s *simSite) {
	return func(s *simSite) {
		s.collWrite(func(c *crdt.Coll, at crdt.Stamp) { c.Put(crdt.CollHash, []byte(f), []byte(v), at) })
	}
}

func hdel(f string) func(s *simSite) {
	return func(s *simSite) {
		s.collWrite(func(c *crdt.Coll, at crdt.Stamp) { c.Remove(crdt.CollHash, []byte(f), at) })
	}
}

func sadd(m string) func(s *simSite) {
	return func(s *simSite) {
		s.collWrite(func(c *crdt.Coll, at crdt.Stamp) { c.Put(crdt.CollSet, []byte(m), nil, at) })
	}
}

func srem(m string) func(s *simSite) {
	return func(s *simSite) {
		s.collWrite(func(c *crdt.Coll, at crdt.Stamp) { c.Remove(crdt.CollSet, []byte(m), at) })
	}
}

func zadd(m, score string) func(s *simSite) {
	return func(s *simSite) {
		s.collWrite(func(c *crdt.Coll, at crdt.Stamp) { c.Put(crdt.CollZSet, []byte(m), []byte(score), at) })
	}
}

func set(v string) func(s *simSite) {
	return func(s *simSite) {
		s.rec = s.rec.Set(s.stamp(), []byte(v), 0)
		s.rec.stampOrigin(s.lsn)
	}
}

func del() func(s *simSite) {
	return func(s *simSite) {
		s.rec = s.rec.Del(s.stamp())
		s.rec.stampOrigin(s.lsn)
	}
}

func seq(fs ...func(s *simSite)) func(s *simSite) {
	return func(s *simSite) {
		for _, f := range fs {
			f(s)
		}
	}
}

// later makes a site's clock run ahead, so its next write is the newer.
func later(s *simSite) { s.phys += 1000 }

// show renders what a record holds: a string's value, or the live entries
// of the collection it shows ("hash f=1 g=2"), or "" when absent.
func show(r Record) string {
	t, ok := r.Holds(0)
	if !ok {
		return ""
	}
	if t == engine.TypeString {
		return "string " + string(r.Value())
	}
	var b bytes.Buffer
	b.WriteString(t.String())
	r.Coll.Range(crdt.CollType(t), nil, func(m, v []byte) bool {
		b.WriteString(" " + string(m))
		if v != nil {
			b.WriteString("=" + string(v))
		}
		return true
	})
	return b.String()
}

// The documented outcome of concurrent writes of one key on two sites,
// the same whichever site merges first.
func TestConcurrentCollectionWrites(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(s *simSite) // shared by both sites before they diverge
		eu, us   func(s *simSite) // concurrent; us runs with its clock ahead
		want     string
		conflict string // the losing write's value in the conflict both sites report, "" for none
	}{
		{"HSET of different fields", nil, hset("f", "1"), hset("g", "2"), "hash f=1 g=2", ""},
		{"HSET of one field: the newer wins", nil, hset("f", "1"), hset("f", "2"), "hash f=2", ""},
		{"HSET then a newer HDEL of one field", hset("f", "0"), hset("f", "1"), hdel("f"), "", ""},
		{"HDEL then a newer HSET of one field", hset("f", "0"), hdel("f"), hset("f", "2"), "hash f=2", ""},
		{"HDEL of one field keeps the others", seq(hset("f", "0"), hset("g", "0")), hset("g", "1"), hdel("f"), "hash g=1", ""},
		{"SADD survives a concurrent SREM that did not see it", sadd("x"), sadd("x"), srem("x"), "set x", ""},
		{"SREM removes the add it saw", sadd("x"), nil, srem("x"), "", ""},
		{"SADD of different members", nil, sadd("x"), sadd("y"), "set x y", ""},
		{"ZADD of one member: the newer score wins", nil, zadd("m", "1"), zadd("m", "5"), "zset m=5", ""},
		{"DEL vs a newer HSET: the field written after the DEL survives", hset("f", "0"), del(), hset("g", "1"), "hash g=1", ""},
		{"HSET vs a newer DEL: the DEL wins", hset("f", "0"), hset("g", "1"), del(), "", ""},
		{"SET vs a newer HSET: the hash wins", nil, set("x"), hset("f", "1"), "hash f=1", "x"},
		{"HSET vs a newer SET: the string wins and the hash is gone", nil, hset("f", "1"), set("x"), "string x", "(hash)"},
		{"SET over a hash it saw is no conflict", hset("f", "1"), nil, set("x"), "string x", ""},
		{"a hash emptied by HDEL shows the string it had beaten", nil, set("x"), seq(hset("f", "1"), hdel("f")), "string x", ""},
		{"SADD vs a newer HSET: the newer type shows", nil, sadd("x"), hset("f", "1"), "hash f=1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, tc.setup)
			if tc.eu != nil {
				tc.eu(p.a)
			}
			later(p.b)
			if tc.us != nil {
				tc.us(p.b)
			}
			got, ca, cb := p.exchange(t)
			if s := show(got); s != tc.want {
				t.Fatalf("merged record holds %q, want %q", s, tc.want)
			}
			for _, c := range []*Conflict{ca, cb} {
				loser := ""
				if c != nil {
					loser = conflictWrite(c.Loser, c.LoserType).Value
				}
				if loser != tc.conflict {
					t.Fatalf("conflicts %+v / %+v, want the loser %q reported by both", ca, cb, tc.conflict)
				}
			}
		})
	}
}

// INCR on a key holding a collection is WRONGTYPE; on a key whose
// collection expired, it counts from nothing.
func TestIncrByOnCollection(t *testing.T) {
	p := newPair(t, hset("f", "1"))
	s := p.a
	if _, _, err := s.rec.IncrBy(s.name, s.stamp(), 1, 0); !errors.Is(err, engine.ErrWrongType) {
		t.Fatalf("INCR of a hash: %v, want WRONGTYPE", err)
	}
	s.collWrite(func(c *crdt.Coll, at crdt.Stamp) { c.SetExpire(50, at) })
	if _, ok := s.rec.Holds(60); ok {
		t.Fatal("an expired hash is still shown")
	}
	next, n, err := s.rec.IncrBy(s.name, s.stamp(), 3, 60)
	if err != nil || n != 3 {
		t.Fatalf("INCR of an expired hash: %d, %v; want 3", n, err)
	}
	if typ, ok := next.Holds(60); !ok || typ != engine.TypeString || string(next.Value()) != "3" {
		t.Fatalf("after INCR the key holds %v %v %q", typ, ok, next.Value())
	}
}

// A collection's version shows its type and expiry, no value; a string
// register newer than every live entry hides the collection.
func TestRecordVersion(t *testing.T) {
	s := &simSite{name: "eu", clock: crdt.NewClock(0)}
	hset("f", "1")(s)
	s.collWrite(func(c *crdt.Coll, at crdt.Stamp) { c.SetExpire(900, at) })
	v, ok := s.rec.Version(7, 0)
	if !ok || v.Type != engine.TypeHash || v.ExpireAt != 900 || v.Value != nil || v.LSN != 7 {
		t.Fatalf("hash version %+v %v", v, ok)
	}
	set("x")(s)
	v, ok = s.rec.Version(8, 0)
	if !ok || v.Type != engine.TypeString || string(v.Value) != "x" || v.ExpireAt != 0 {
		t.Fatalf("string over a hash: %+v %v", v, ok)
	}
	if _, _, live := s.rec.Coll.Visible(0); live {
		t.Fatal("SET did not clear the hash")
	}
}

// Records without a collection encode as before collections existed (no
// flag bit 2, no collection bytes), and a collection flag with nothing
// recorded is refused (one encoding per record).
func TestRecordEncodingWithoutCollectionUnchanged(t *testing.T) {
	r := Record{}.Set(st(5, "eu"), []byte("v"), 0)
	r.Reg.OriginLSN = 3
	// tag, flags, stamp (12-byte timestamp, site), prev (zero), LSN, expiry, value
	want := []byte{recordTag, 0}
	want, _ = r.Reg.Stamp.Time.AppendBinary(want)
	want = append(want, 2, 'e', 'u')
	want, _ = crdt.Timestamp{}.AppendBinary(want)
	want = append(want, 0, 3, 0, 1, 'v')
	if got := AppendRecord(nil, r); !bytes.Equal(got, want) {
		t.Fatalf("encoding %x, want %x", got, want)
	}
	bad := append([]byte{recordTag, flagColl}, want[2:]...)
	empty, _ := crdt.Coll{}.AppendBinary(nil)
	bad = append(bad, 0, byte(len(empty)))
	bad = append(bad, empty...)
	if _, err := DecodeRecord(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a zero collection under the flag decoded: %v", err)
	}
}

// CollLSN names the entry whose write is the collection's top stamp.
func TestWithCollOrigin(t *testing.T) {
	s := &simSite{name: "eu", clock: crdt.NewClock(0)}
	sadd("x")(s)
	if s.rec.CollLSN != s.lsn {
		t.Fatalf("after SADD CollLSN = %d, want %d", s.rec.CollLSN, s.lsn)
	}
	addLSN := s.lsn
	srem("x")(s) // an observed remove stamps nothing new: the top is the add's
	if s.rec.CollLSN != addLSN {
		t.Fatalf("after SREM CollLSN = %d, want the add's %d", s.rec.CollLSN, addLSN)
	}
	del()(s)
	if s.rec.CollLSN != s.lsn || s.rec.Coll.Top() != s.rec.Reg.Stamp {
		t.Fatalf("after DEL CollLSN = %d (top %v), want %d (the DEL's %v)", s.rec.CollLSN, s.rec.Coll.Top(), s.lsn, s.rec.Reg.Stamp)
	}
	// A collection whose writes are all older than the register (not what
	// Stamp gives; a writer that read nothing): the register's clear is
	// its top, and the register's write its origin.
	reg := Record{}.Set(st(50, "us"), []byte("x"), 0)
	reg.Reg.OriginLSN = 4
	var old crdt.Coll
	old.Put(crdt.CollHash, []byte("f"), []byte("1"), st(20, "eu"))
	if w := reg.WithColl(old, "eu", 9); w.CollLSN != 4 || w.Coll.Len(crdt.CollHash) != 0 {
		t.Fatalf("a collection older than the register: CollLSN %d, %d fields; want 4, 0", w.CollLSN, w.Coll.Len(crdt.CollHash))
	}
	// A remote site merges it: the LSN travels with the top.
	o := &simSite{name: "us", clock: crdt.NewClock(0), phys: 100} // after the DEL
	hset("f", "1")(o)
	if o.rec.Equal(Record{Reg: o.rec.Reg, Counter: o.rec.Counter, CollLSN: o.rec.CollLSN}) {
		t.Fatal("Equal ignores the collection")
	}
	m, _ := Merge(o.rec, s.rec)
	if m.CollLSN != o.lsn || m.Coll.Top().Site != "us" {
		t.Fatalf("merged CollLSN %d top %v, want us's %d", m.CollLSN, m.Coll.Top(), o.lsn)
	}
}
