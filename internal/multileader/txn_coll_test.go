package multileader

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

func testEngine(site string) *Engine {
	return &Engine{site: site, clock: crdt.NewClock(0), know: map[string]crdt.Vector{}}
}

func storedRecord(t *testing.T, m map[string][]byte, key string) Record {
	t.Helper()
	b, ok := m[key]
	if !ok {
		t.Fatalf("%q not stored", key)
	}
	r, err := DecodeRecord(b)
	if err != nil {
		t.Fatalf("%q: %v", key, err)
	}
	return r
}

// A command writing a hash through CollTxn, then the string commands on
// that key, step by step as the APIs run them.
func TestTxnCollection(t *testing.T) {
	e := testEngine("eu")
	st := &mapTxn{m: map[string][]byte{}, lsn: 5}
	tx := &txn{e: e, tx: st}

	// HSET h f v: read, stamp, write.
	c, err := tx.GetColl([]byte("h"))
	if err != nil || !c.IsZero() {
		t.Fatalf("GetColl of a missing key: %+v, %v", c, err)
	}
	at := tx.Stamp()
	c.Put(crdt.CollHash, []byte("f"), []byte("v"), at)
	tx.PutColl([]byte("h"), c)
	tx.Set([]byte("s"), []byte("1"), 0)
	if err := tx.finish(); err != nil {
		t.Fatal(err)
	}
	if got := string(st.m[string(originKey("eu"))]); got != "5" {
		t.Fatalf("the entry records the site's position %q, want 5", got)
	}
	if r := storedRecord(t, st.m, "h"); r.CollLSN != 5 || r.Coll.Top() != at {
		t.Fatalf("stored CollLSN %d top %v, want 5 and %v", r.CollLSN, r.Coll.Top(), at)
	}
	v, ok, err := tx.Get([]byte("h"))
	if err != nil || !ok || v.Type != engine.TypeHash || v.Value != nil {
		t.Fatalf("Get of a hash: %+v %v %v", v, ok, err)
	}
	var scanned []string
	if err := tx.Scan(nil, func(k []byte, v engine.Version) bool {
		if !IsReserved(k) {
			scanned = append(scanned, string(k)+":"+v.Type.String())
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(scanned) != 2 || scanned[0] != "h:hash" || scanned[1] != "s:string" {
		t.Fatalf("scan %v, want h:hash s:string", scanned)
	}

	// INCR h: WRONGTYPE, nothing written.
	before := string(st.m["h"])
	if _, err := tx.IncrBy([]byte("h"), 1); !errors.Is(err, engine.ErrWrongType) {
		t.Fatalf("INCR of a hash: %v, want WRONGTYPE", err)
	}
	if string(st.m["h"]) != before {
		t.Fatal("a refused INCR wrote")
	}

	// SET h x replaces the hash; DEL h clears everything and leaves a
	// tombstone to collect.
	tx.Set([]byte("h"), []byte("x"), 0)
	v, ok, _ = tx.Get([]byte("h"))
	if !ok || v.Type != engine.TypeString || string(v.Value) != "x" {
		t.Fatalf("SET over a hash: %+v %v", v, ok)
	}
	if c, _ := tx.GetColl([]byte("h")); c.Len(crdt.CollHash) != 0 {
		t.Fatal("SET left the hash's fields")
	}
	tx.Del([]byte("h"))
	if _, ok, _ := tx.Get([]byte("h")); ok {
		t.Fatal("DEL left the key")
	}
	if _, ok := st.m[string(tombKey([]byte("h")))]; !ok {
		t.Fatal("DEL of a hash left no tombstone marker")
	}
	if r := storedRecord(t, st.m, "h"); !tombstoneOnly(r) {
		t.Fatalf("a deleted hash is not a collectible tombstone: %+v", r)
	}

	// A reserved key holds no collection and takes none.
	tx.PutColl(engine.ReservedPrefix, c)
	if tx.err == nil {
		t.Fatal("PutColl of a reserved key was accepted")
	}
}

// Stamp is newer than every stamp the transaction read, even one from a
// site whose clock runs far ahead, so the write supersedes what it saw.
func TestTxnStampAfterWhatItRead(t *testing.T) {
	e := testEngine("eu")
	var c crdt.Coll
	ahead := crdt.Stamp{Time: crdt.Timestamp{WallMs: 1 << 50}, Site: "us"}
	c.Put(crdt.CollSet, []byte("x"), nil, ahead)
	st := &mapTxn{m: map[string][]byte{"k": AppendRecord(nil, Record{}.WithColl(c, "us", 9))}}
	tx := &txn{e: e, tx: st}
	if _, err := tx.GetColl([]byte("k")); err != nil {
		t.Fatal(err)
	}
	s1 := tx.Stamp()
	s2 := tx.Stamp()
	if !ahead.Less(s1) || !s1.Less(s2) || s1.Site != "eu" {
		t.Fatalf("stamps %v, %v after reading %v", s1, s2, ahead)
	}
}

// The reader shows a collection's type and hands its state out.
func TestReaderCollection(t *testing.T) {
	var c crdt.Coll
	c.Put(crdt.CollZSet, []byte("m"), []byte("1.5"), st(10, "eu"))
	m := &mapTxn{m: map[string][]byte{"z": AppendRecord(nil, Record{}.WithColl(c, "eu", 2))}}
	r := &reader{r: m}
	v, ok, err := r.Get([]byte("z"))
	if err != nil || !ok || v.Type != engine.TypeZSet {
		t.Fatalf("Get %+v %v %v", v, ok, err)
	}
	got, err := r.GetColl([]byte("z"))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := got.Get(crdt.CollZSet, []byte("m")); !ok || string(s) != "1.5" {
		t.Fatalf("GetColl's member m = %q %v", s, ok)
	}
	if got, err := r.GetColl([]byte("absent")); err != nil || !got.IsZero() {
		t.Fatalf("GetColl of a missing key: %+v %v", got, err)
	}
}

func remoteEntry(key string, r Record, site string, lsn uint64) storage.Entry {
	return storage.Entry{LSN: lsn, Ops: []storage.Op{
		{Kind: storage.OpSet, Key: []byte(key), Value: AppendRecord(nil, r)},
		{Kind: storage.OpSet, Key: originKey(site), Value: formatU64(lsn)},
	}}
}

// A site that collected a deleted hash drops an old copy of it arriving
// in a batch with fresh entries, and keeps a field written after the DEL
// that rides on a record carrying the old tombstone.
func TestApplyRemoteAfterCollectingACollection(t *testing.T) {
	e := testEngine("c")
	a := &simSite{name: "a", clock: crdt.NewClock(0)}
	hset("f", "old")(a)
	oldHash := a.rec // written by a's LSN 1
	del()(a)         // a's LSN 2: the tombstone, collected at c
	b := &simSite{name: "b", clock: crdt.NewClock(0), rec: a.rec}
	b.clock.Restore(a.rec.Top().Time)
	b.lsn = 10
	hset("g", "new")(b) // b's LSN 11, after the DEL
	if b.rec.Reg.Stamp.Site != "a" || b.rec.CollLSN != 11 {
		t.Fatalf("setup: %+v", b.rec)
	}
	tx := &mapTxn{m: map[string][]byte{string(originKey("a")): formatU64(2)}}
	err := e.applyRemote(tx, "b", []storage.Entry{remoteEntry("old", oldHash, "b", 9), remoteEntry("k", b.rec, "b", 11)}, 11, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tx.m["old"]; ok {
		t.Fatal("a collected hash's old copy came back")
	}
	r := storedRecord(t, tx.m, "k")
	if got := show(r); got != "hash g=new" {
		t.Fatalf("k holds %q, want the field written after the DEL", got)
	}
	if !r.Reg.Stamp.Time.IsZero() {
		t.Fatal("the collected tombstone's register came back")
	}
}

// A string losing to a concurrent hash is in the conflict log, the
// collection named by its type.
func TestApplyRemoteRecordsTypeClash(t *testing.T) {
	e := testEngine("eu")
	eu := &simSite{name: "eu", clock: crdt.NewClock(0)}
	set("x")(eu)
	us := &simSite{name: "us", clock: crdt.NewClock(0), phys: 100}
	hset("f", "1")(us)
	tx := &mapTxn{m: map[string][]byte{"k": AppendRecord(nil, eu.rec)}}
	if err := e.applyRemote(tx, "us", []storage.Entry{remoteEntry("k", us.rec, "us", us.lsn)}, us.lsn, 1000); err != nil {
		t.Fatal(err)
	}
	if got := show(storedRecord(t, tx.m, "k")); got != "hash f=1" {
		t.Fatalf("k holds %q", got)
	}
	if top := us.rec.Top(); e.clock.Last().Less(top.Time) {
		t.Fatalf("the clock is at %v, behind the collection it merged (%v)", e.clock.Last(), top)
	}
	raw, ok := tx.m[string(conflictKey(1))]
	if !ok {
		t.Fatal("no conflict recorded")
	}
	var c engine.Conflict
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Key != "k" || c.Winner.Value != "(hash)" || c.Winner.Site != "us" || c.Loser.Value != "x" || c.Loser.Site != "eu" {
		t.Fatalf("conflict %+v", c)
	}
}

func TestTombstoneOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(s *simSite)
		want  bool
	}{
		{"a deleted string", seq(set("x"), del()), true},
		{"a deleted hash", seq(hset("f", "1"), del()), true},
		{"a hash written after the DEL", seq(set("x"), del(), hset("f", "1")), false},
		{"a hash written after the DEL and emptied again", seq(set("x"), del(), hset("f", "1"), hdel("f")), false},
		{"a set emptied by SREM after the DEL", seq(del(), sadd("m"), srem("m")), false},
		{"a string", set("x"), false},
		{"a hash", hset("f", "1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &simSite{name: "eu", clock: crdt.NewClock(0), rec: Record{}.Set(st(1, "us"), []byte("0"), 0)}
			tc.write(s)
			if got := tombstoneOnly(s.rec); got != tc.want {
				t.Fatalf("tombstoneOnly = %v, want %v (%+v)", got, tc.want, s.rec)
			}
		})
	}
}
