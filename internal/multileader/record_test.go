package multileader

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/crdt"
)

// simSite is one site's copy of a single key, with its own clock.
type simSite struct {
	name  string
	clock *crdt.Clock
	rec   Record
	phys  int64
	lsn   uint64 // the site's log position, one entry per local write
}

// stamp is a local write's stamp, after everything the record holds (as
// txn.Stamp makes it).
func (s *simSite) stamp() crdt.Stamp {
	s.phys += 1
	s.lsn++
	t, _ := s.clock.Update(s.rec.Top().Time, s.phys)
	return crdt.Stamp{Time: t, Site: s.name}
}

// collWrite applies one collection command at s, as the adapter does
// through CollTxn: change a copy of the collection, then PutColl.
func (s *simSite) collWrite(fn func(c *crdt.Coll, at crdt.Stamp)) {
	c := s.rec.Coll.Clone()
	fn(&c, s.stamp())
	s.rec = s.rec.WithColl(c, s.name, s.lsn)
}

// simOp is one write of a history, for models to replay.
type simOp struct {
	kind   string // set, del, hset, hdel
	field  string
	value  string
	stamp  crdt.Stamp
	regWas crdt.Stamp // set, del: the register it replaced (Prev)
}

// history draws a run of local writes and pairwise merges over three sites
// and returns the sites and every reachable record it saw.
func history(t *rapid.T, withSets bool) ([]*simSite, []Record, int64) {
	sites, seen, incs, _ := historyOps(t, withSets, false)
	return sites, seen, incs
}

// historyOps is history with, when withColls, collection writes of every
// type (hash, set, sorted set) on the same key, and the log of writes.
func historyOps(t *rapid.T, withSets, withColls bool) ([]*simSite, []Record, int64, []simOp) {
	sites := []*simSite{{name: "eu", clock: crdt.NewClock(0)}, {name: "us", clock: crdt.NewClock(0)}, {name: "ap", clock: crdt.NewClock(0)}}
	// Clocks start apart: sites disagree about physical time.
	for i, s := range sites {
		s.phys = int64(i) * rapid.Int64Range(0, 50).Draw(t, "skew")
	}
	var seen []Record
	var incs int64
	var log []simOp
	n := rapid.IntRange(1, 40).Draw(t, "steps")
	for i := 0; i < n; i++ {
		s := sites[rapid.IntRange(0, 2).Draw(t, "site")]
		ops := []string{"incr", "merge"}
		if withSets {
			ops = append(ops, "set", "del")
		}
		if withColls {
			ops = append(ops, "hset", "hset", "hdel", "sadd", "srem", "zadd", "zrem", "expire")
		}
		field := rapid.SampledFrom([]string{"f", "g"}).Draw(t, "field")
		switch op := rapid.SampledFrom(ops).Draw(t, "op"); op {
		case "set":
			v := strconv.Itoa(rapid.IntRange(0, 9).Draw(t, "v"))
			was := s.rec.Reg.Stamp
			s.rec = s.rec.Set(s.stamp(), []byte(v), 0)
			s.rec.stampOrigin(s.lsn)
			log = append(log, simOp{kind: op, value: v, stamp: s.rec.Reg.Stamp, regWas: was})
		case "del":
			was := s.rec.Reg.Stamp
			s.rec = s.rec.Del(s.stamp())
			s.rec.stampOrigin(s.lsn)
			log = append(log, simOp{kind: op, stamp: s.rec.Reg.Stamp, regWas: was})
		case "hset", "zadd", "sadd":
			v := strconv.Itoa(rapid.IntRange(0, 9).Draw(t, "v"))
			typ := map[string]crdt.CollType{"hset": crdt.CollHash, "zadd": crdt.CollZSet, "sadd": crdt.CollSet}[op]
			s.collWrite(func(c *crdt.Coll, at crdt.Stamp) {
				c.Put(typ, []byte(field), []byte(v), at)
				log = append(log, simOp{kind: op, field: field, value: v, stamp: at})
			})
		case "hdel", "zrem", "srem":
			typ := map[string]crdt.CollType{"hdel": crdt.CollHash, "zrem": crdt.CollZSet, "srem": crdt.CollSet}[op]
			s.collWrite(func(c *crdt.Coll, at crdt.Stamp) {
				c.Remove(typ, []byte(field), at)
				log = append(log, simOp{kind: op, field: field, stamp: at})
			})
		case "expire":
			s.collWrite(func(c *crdt.Coll, at crdt.Stamp) {
				c.SetExpire(rapid.Int64Range(0, 3).Draw(t, "expireAt"), at)
			})
		case "incr":
			d := rapid.Int64Range(-5, 5).Draw(t, "delta")
			next, _, err := s.rec.IncrBy(s.name, s.stamp(), d, 0)
			if err != nil && !withSets {
				// Small deltas on counters never SET cannot fail: an
				// error here would leave nothing to count.
				t.Fatalf("IncrBy %d: %v", d, err)
			}
			if err == nil {
				s.rec = next
				incs += d
			}
		case "merge":
			o := sites[rapid.IntRange(0, 2).Draw(t, "from")]
			s.rec, _ = Merge(s.rec, o.rec)
			s.clock.Restore(o.rec.Top().Time)
		}
		seen = append(seen, s.rec)
	}
	return sites, seen, incs, log
}

// Merge is a join over every record a history can reach: commutative,
// associative and idempotent, so sites converge whatever order and however
// often they exchange records.
func TestMergeIsAJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		_, seen, _, _ := historyOps(t, true, rapid.Bool().Draw(t, "colls"))
		for _, r := range seen {
			if !clearedAt(r.Coll, r.Reg.Stamp).Equal(r.Coll) {
				t.Fatalf("not normalized: the collection holds what the register cleared: %+v", r)
			}
		}
		pick := func(l string) Record { return seen[rapid.IntRange(0, len(seen)-1).Draw(t, l)] }
		a, b, c := pick("a"), pick("b"), pick("c")
		ab, _ := Merge(a, b)
		ba, _ := Merge(b, a)
		if !ab.Equal(ba) {
			t.Fatalf("not commutative:\n%+v\n%+v", ab, ba)
		}
		aa, _ := Merge(a, a)
		if !aa.Equal(a) {
			t.Fatalf("not idempotent: %+v", aa)
		}
		abc1, _ := Merge(ab, c)
		bc, _ := Merge(b, c)
		abc2, _ := Merge(a, bc)
		if !abc1.Equal(abc2) {
			t.Fatalf("not associative:\n%+v\n%+v", abc1, abc2)
		}
	})
}

// After everyone has merged everyone, every site holds the same record,
// and with only increments its value is the sum of every increment made.
func TestSitesConvergeAndCountEveryIncrement(t *testing.T) {
	for _, withSets := range []bool{false, true} {
		t.Run(fmt.Sprint("sets=", withSets), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				sites, _, incs := history(t, withSets)
				for round := 0; round < 2; round++ {
					for _, a := range sites {
						for _, b := range sites {
							a.rec, _ = Merge(a.rec, b.rec)
						}
					}
				}
				for _, s := range sites[1:] {
					if !s.rec.Equal(sites[0].rec) {
						t.Fatalf("%s and %s differ:\n%+v\n%+v", s.name, sites[0].name, s.rec, sites[0].rec)
					}
				}
				if !withSets {
					want := strconv.FormatInt(incs, 10)
					got := string(sites[0].rec.Value())
					if !sites[0].rec.Live(0) {
						got = "0" // increments summing to 0 still make a live key
					}
					if got != want {
						t.Fatalf("value %s, increments sum to %s", got, want)
					}
				}
			})
		})
	}
}

func TestRecordEncodingRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		_, seen, _, _ := historyOps(t, true, true)
		for _, r := range seen {
			b := AppendRecord(nil, r)
			got, err := DecodeRecord(b)
			if err != nil {
				t.Fatalf("decode %x: %v", b, err)
			}
			if !got.Equal(r) {
				t.Fatalf("round trip: %+v became %+v", r, got)
			}
			if !bytes.Equal(AppendRecord(nil, got), b) {
				t.Fatal("re-encoding differs")
			}
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	r := Record{}.Set(crdt.Stamp{Time: crdt.Timestamp{WallMs: 5}, Site: "eu"}, []byte("v"), 9)
	r, _, _ = r.IncrBy("us", crdt.Stamp{Time: crdt.Timestamp{WallMs: 6}, Site: "us"}, 3, 0)
	f.Add(AppendRecord(nil, r))
	var c crdt.Coll
	c.Put(crdt.CollHash, []byte("f"), []byte("v"), crdt.Stamp{Time: crdt.Timestamp{WallMs: 7}, Site: "eu"})
	f.Add(AppendRecord(nil, r.WithColl(c, "eu", 3)))
	f.Add([]byte{recordTag, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b) // must not panic
		if err != nil {
			return
		}
		_ = r.Value()
		if !bytes.Equal(AppendRecord(nil, r), b) {
			t.Fatalf("accepted non-canonical %x", b)
		}
	})
}

func st(ms int64, site string) crdt.Stamp {
	return crdt.Stamp{Time: crdt.Timestamp{WallMs: ms}, Site: site}
}

// A conflict is two writes neither of which replaced the other knowingly;
// a write that saw the value it replaces is not one.
func TestMergeReportsConcurrentWritesOnly(t *testing.T) {
	base := Record{}.Set(st(10, "eu"), []byte("a"), 0)
	succ := base.Set(st(20, "us"), []byte("b"), 0)          // us saw base
	conc := Record{}.Set(st(15, "ap"), []byte("c"), 0)      // ap did not
	concLater := Record{}.Set(st(30, "ap"), []byte("d"), 0) // nor here
	for _, tc := range []struct {
		name          string
		local, remote Record
		winner        string
		conflict      bool
	}{
		{"successor arrives", base, succ, "b", false},
		{"ancestor arrives late", succ, base, "b", false},
		{"same write twice", base, base, "a", false},
		{"concurrent, remote older", base.Set(st(40, "eu"), []byte("e"), 0), conc, "e", true},
		{"concurrent, remote newer", base, concLater, "d", true},
		{"never written here", Record{}, conc, "c", false},
		{"delete wins over older", base, base.Del(st(50, "us")), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, c := Merge(tc.local, tc.remote)
			if (c != nil) != tc.conflict {
				t.Fatalf("conflict = %+v, want %v", c, tc.conflict)
			}
			v := ""
			if got.Live(0) {
				v = string(got.Value())
			}
			if v != tc.winner {
				t.Fatalf("value %q, want %q", v, tc.winner)
			}
		})
	}
}

// INCR concurrent with a DEL on another site survives it; the increments
// the DEL saw do not.
func TestIncrementConcurrentWithDeleteSurvives(t *testing.T) {
	eu, _, _ := Record{}.IncrBy("eu", st(1, "eu"), 5, 0) // c = 5 everywhere
	us := eu
	eu = eu.Del(st(10, "eu"))                      // eu deletes what it saw (5)
	us, _, _ = us.IncrBy("us", st(11, "us"), 2, 0) // us adds 2 concurrently
	a, _ := Merge(eu, us)
	b, _ := Merge(us, eu)
	if !a.Equal(b) || string(a.Value()) != "2" || !a.Live(0) {
		t.Fatalf("merged %q live=%v (and %q), want 2", a.Value(), a.Live(0), b.Value())
	}
}
