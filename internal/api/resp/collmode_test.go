package resp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// collBackend is a miniature convergent mode for the RESP tests, until
// the real multi-leader and leaderless engines run in them: over a
// single-leader node, each key's stored string is a record holding a
// last-writer-wins string register and a crdt.Coll, shown by the rule
// the convergent modes follow (the newer of the live register and the
// Coll's newest live entry). Its Txns are engine.CollTxns and its Readers
// engine.CollReaders, so the server runs collections through package
// convergent as it does in those modes. Only Write and Read are
// overridden: the engine is embedded as an interface, so the node's
// AsyncWriter is hidden and every write goes through the records.
type collBackend struct {
	engine.Engine
	n     *node.Node
	mode  string
	mu    sync.Mutex
	clock crdt.Timestamp
}

func startCollMode(t *testing.T, mode string) (*collBackend, string) {
	t.Helper()
	ts := startServer(t, node.Config{})
	b := &collBackend{Engine: ts.n, n: ts.n, mode: mode}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startBackend(t, b, ln)
	return b, ln.Addr().String()
}

func (b *collBackend) Status() engine.Status {
	st := b.n.Status()
	st.Mode = b.mode
	return st
}

func (b *collBackend) Write(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	return b.n.Write(ctx, func(tx engine.Txn) error {
		ct := &recTxn{b: b, tx: tx}
		if err := fn(ct); err != nil {
			return err
		}
		return ct.err
	})
}

func (b *collBackend) Read(ctx context.Context, c engine.Consistency, floor engine.Token) (engine.Reader, error) {
	r, err := b.n.Read(ctx, c, floor)
	if err != nil {
		return nil, err
	}
	return &recReader{r: r}, nil
}

// stamp is the backend's hybrid clock: after every stamp observed.
func (b *collBackend) stamp(nowMs int64, seen ...crdt.Stamp) crdt.Stamp {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range seen {
		if b.clock.Less(s.Time) {
			b.clock = s.Time
		}
	}
	if b.clock.WallMs < nowMs {
		b.clock = crdt.Timestamp{WallMs: nowMs}
	} else {
		b.clock.Logical++
	}
	return crdt.Stamp{Time: b.clock, Site: "s1"}
}

// record is one key's state; stored as JSON (a test encoding).
type record struct {
	Value    []byte
	Reg      crdt.Stamp
	Deleted  bool
	ExpireAt int64
	Coll     []byte
}

func decodeRecord(v engine.Version, ok bool) (record, crdt.Coll, error) {
	var r record
	if !ok {
		return r, crdt.Coll{}, nil
	}
	if err := json.Unmarshal(v.Value, &r); err != nil {
		return r, crdt.Coll{}, fmt.Errorf("record: %w", err)
	}
	if len(r.Coll) == 0 {
		return r, crdt.Coll{}, nil
	}
	c, err := crdt.DecodeColl(r.Coll)
	return r, c, err
}

func (r record) shows(c crdt.Coll, nowMs int64) (engine.Version, bool) {
	regLive := r.Reg != (crdt.Stamp{}) && !r.Deleted && (r.ExpireAt == 0 || r.ExpireAt > nowMs)
	ct, newest, collLive := c.Visible(nowMs)
	switch {
	case collLive && (!regLive || r.Reg.Less(newest)):
		return engine.Version{Type: engine.Type(ct), ExpireAt: c.ExpireAt()}, true
	case regLive:
		return engine.Version{Value: r.Value, ExpireAt: r.ExpireAt}, true
	}
	return engine.Version{}, false
}

type recTxn struct {
	b   *collBackend
	tx  engine.Txn
	err error
}

var (
	_ engine.CollTxn    = (*recTxn)(nil)
	_ engine.CounterTxn = (*recTxn)(nil)
	_ engine.ScanTxn    = (*recTxn)(nil)
)

func (t *recTxn) load(key []byte) (record, crdt.Coll, error) {
	v, ok, err := t.tx.Get(key)
	if err != nil {
		return record{}, crdt.Coll{}, err
	}
	return decodeRecord(v, ok)
}

func (t *recTxn) store(key []byte, r record, c crdt.Coll) {
	r.Coll, _ = c.AppendBinary(nil)
	b, _ := json.Marshal(r)
	t.tx.Set(key, b, 0)
}

func (t *recTxn) NowMs() int64 { return t.tx.NowMs() }

func (t *recTxn) Get(key []byte) (engine.Version, bool, error) {
	r, c, err := t.load(key)
	if err != nil {
		return engine.Version{}, false, err
	}
	v, ok := r.shows(c, t.NowMs())
	return v, ok, nil
}

func (t *recTxn) write(key []byte, f func(r *record, c *crdt.Coll, at crdt.Stamp)) {
	if engine.IsReserved(key) {
		t.err = fmt.Errorf("a write of reserved key %q reached the mode", key)
		return
	}
	r, c, err := t.load(key)
	if err != nil {
		t.err = err
		return
	}
	at := t.b.stamp(t.NowMs(), r.Reg, c.Top())
	f(&r, &c, at)
	t.store(key, r, c)
}

func (t *recTxn) Set(key, value []byte, expireAtMs int64) {
	t.write(key, func(r *record, c *crdt.Coll, at crdt.Stamp) {
		*r = record{Value: value, Reg: at, ExpireAt: expireAtMs}
		c.Clear(at)
	})
}

func (t *recTxn) Del(key []byte) {
	t.write(key, func(r *record, c *crdt.Coll, at crdt.Stamp) {
		*r = record{Reg: at, Deleted: true}
		c.Clear(at)
	})
}

func (t *recTxn) FlushAll() { t.tx.FlushAll() }

func (t *recTxn) IncrBy(key []byte, delta int64) (int64, error) {
	v, ok, err := t.Get(key)
	if err != nil {
		return 0, err
	}
	n := int64(0)
	if ok {
		if v.Type != engine.TypeString {
			return 0, datatype.ErrWrongType
		}
		if _, err := fmt.Sscan(string(v.Value), &n); err != nil {
			return 0, engine.ErrNotInteger
		}
	}
	n += delta
	t.Set(key, []byte(fmt.Sprint(n)), v.ExpireAt)
	return n, nil
}

func (t *recTxn) GetColl(key []byte) (crdt.Coll, error) {
	r, c, err := t.load(key)
	if err == nil {
		t.b.stamp(0, r.Reg, c.Top())
	}
	return c, err
}

func (t *recTxn) PutColl(key []byte, c crdt.Coll) {
	if engine.IsReserved(key) {
		t.err = fmt.Errorf("PutColl of reserved key %q", key)
		return
	}
	r, _, err := t.load(key)
	if err != nil {
		t.err = err
		return
	}
	t.store(key, r, c)
}

func (t *recTxn) Stamp() crdt.Stamp { return t.b.stamp(t.NowMs()) }

func (t *recTxn) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	return scanRecords(t.tx.(engine.ScanTxn).Scan, t.NowMs(), start, fn)
}

func scanRecords(scan func([]byte, func([]byte, engine.Version) bool) error, nowMs int64, start []byte, fn func([]byte, engine.Version) bool) error {
	var derr error
	err := scan(start, func(k []byte, v engine.Version) bool {
		if engine.IsReserved(k) {
			return true
		}
		r, c, err := decodeRecord(v, true)
		if err != nil {
			derr = err
			return false
		}
		if sv, ok := r.shows(c, nowMs); ok {
			return fn(k, sv)
		}
		return true
	})
	if err != nil {
		return err
	}
	return derr
}

type recReader struct{ r engine.Reader }

var _ engine.CollReader = (*recReader)(nil)

func (r *recReader) Get(key []byte) (engine.Version, bool, error) {
	v, ok, err := r.r.Get(key)
	if err != nil {
		return engine.Version{}, false, err
	}
	rec, c, err := decodeRecord(v, ok)
	if err != nil {
		return engine.Version{}, false, err
	}
	sv, ok := rec.shows(c, r.NowMs())
	return sv, ok, nil
}

func (r *recReader) GetColl(key []byte) (crdt.Coll, error) {
	v, ok, err := r.r.Get(key)
	if err != nil {
		return crdt.Coll{}, err
	}
	_, c, err := decodeRecord(v, ok)
	return c, err
}

func (r *recReader) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	return scanRecords(r.r.Scan, r.NowMs(), start, fn)
}

func (r *recReader) Token() engine.Token { return r.r.Token() }
func (r *recReader) NowMs() int64        { return r.r.NowMs() }
