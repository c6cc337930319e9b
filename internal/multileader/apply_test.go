package multileader

import (
	"maps"
	"slices"
	"testing"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

// mapTxn is an in-memory lsnTxn (its entry's LSN is lsn, or 1).
type mapTxn struct {
	m   map[string][]byte
	lsn uint64
}

func (t *mapTxn) Get(key []byte) (engine.Version, bool, error) {
	v, ok := t.m[string(key)]
	return engine.Version{Value: v}, ok, nil
}
func (t *mapTxn) Set(key, value []byte, _ int64) { t.m[string(key)] = append([]byte(nil), value...) }
func (t *mapTxn) Del(key []byte)                 { delete(t.m, string(key)) }
func (t *mapTxn) FlushAll()                      { clear(t.m) }
func (t *mapTxn) NowMs() int64                   { return 1000 }
func (t *mapTxn) LSN() uint64 {
	if t.lsn == 0 {
		return 1
	}
	return t.lsn
}

// Scan lists the map's keys in order (engine.ScanTxn), and makes mapTxn an
// engine.Reader's Scan too.
func (t *mapTxn) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	keys := slices.Sorted(maps.Keys(t.m))
	for _, k := range keys {
		if k >= string(start) && !fn([]byte(k), engine.Version{Value: t.m[k]}) {
			return nil
		}
	}
	return nil
}

func (t *mapTxn) Token() engine.Token { return engine.Token{} }

// A site that collected a tombstone still counts an increment made after
// the delete, which arrives on a record carrying the old tombstone; a
// record with only the old tombstone stays dropped.
func TestApplyRemoteAfterCollection(t *testing.T) {
	e := &Engine{site: "c", clock: crdt.NewClock(0), know: map[string]crdt.Vector{}}
	del := Record{}.Del(crdt.Stamp{Time: crdt.Timestamp{WallMs: 10}, Site: "a"})
	del.Reg.OriginLSN = 5
	incr, _, err := del.IncrBy("b", crdt.Stamp{Time: crdt.Timestamp{WallMs: 11}, Site: "b"}, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	tx := &mapTxn{m: map[string][]byte{string(originKey("a")): formatU64(5)}} // "k" was collected here
	entry := func(key string, r Record, site string, lsn uint64) storage.Entry {
		return storage.Entry{LSN: lsn, Ops: []storage.Op{
			{Kind: storage.OpSet, Key: []byte(key), Value: AppendRecord(nil, r)},
			{Kind: storage.OpSet, Key: originKey(site), Value: formatU64(lsn)},
		}}
	}
	if err := e.applyRemote(tx, "b", []storage.Entry{entry("old", del, "b", 19), entry("k", incr, "b", 20)}, 20, 1000); err != nil {
		t.Fatal(err)
	}
	if _, ok := tx.m["old"]; ok {
		t.Fatal("a collected tombstone's old copy came back")
	}
	v, ok := tx.m["k"]
	if !ok {
		t.Fatal("the increment made after the collected delete was dropped")
	}
	r, err := DecodeRecord(v)
	if err != nil || !r.Live(1000) || string(r.Value()) != "1" {
		t.Fatalf("k = %q live=%v (%v), want 1", r.Value(), r.Live(1000), err)
	}
}
