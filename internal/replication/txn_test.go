package replication

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
	"pgregory.net/rapid"
)

const testNowMs = 1_000_000

func fixedClock() time.Time { return time.UnixMilli(testNowMs) }

// seedStore commits a=1, b=2, e=expired (ExpireAt before testNowMs) and
// f=future (ExpireAt after it) through a writer, and returns the store.
func seedStore(t *testing.T) *storage.Store {
	t.Helper()
	s := openStore(t)
	w := NewWriter(WriterConfig{Store: s, Epoch: 1, Now: fixedClock})
	defer w.Close()
	_, err := w.Propose(ctxT(t), func(tx engine.Txn) error {
		tx.Set([]byte("a"), []byte("1"), 0)
		tx.Set([]byte("b"), []byte("2"), 0)
		tx.Set([]byte("e"), []byte("old"), testNowMs-1)
		tx.Set([]byte("f"), []byte("new"), testNowMs+1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTxn(s *storage.Store, group *layer) *Txn {
	return &Txn{store: s, group: group, nowMs: testNowMs}
}

func txnGet(t *testing.T, tx *Txn, key string) string {
	t.Helper()
	v, ok, err := tx.Get([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "-"
	}
	return string(v.Value)
}

// TestTxnGetLayers: a proposal reads its own writes first, then those of
// earlier proposals in its batch, then the store at its newest state; a
// FLUSH in a layer hides everything below it, and expiry is judged by the
// proposal's clock.
func TestTxnGetLayers(t *testing.T) {
	s := seedStore(t)
	tests := []struct {
		name    string
		earlier []func(*Txn) // earlier proposals of the same batch
		fn      func(*Txn)
		key     string
		want    string
	}{
		{name: "store value", key: "a", want: "1"},
		{name: "missing key", key: "zz", want: "-"},
		{name: "expired in store", key: "e", want: "-"},
		{name: "not yet expired in store", key: "f", want: "new"},
		{name: "own set", fn: func(tx *Txn) { tx.Set([]byte("a"), []byte("x"), 0) }, key: "a", want: "x"},
		{name: "own del", fn: func(tx *Txn) { tx.Del([]byte("a")) }, key: "a", want: "-"},
		{name: "own set already expired", fn: func(tx *Txn) { tx.Set([]byte("a"), []byte("x"), testNowMs) }, key: "a", want: "-"},
		{name: "own set then del", fn: func(tx *Txn) { tx.Set([]byte("n"), []byte("x"), 0); tx.Del([]byte("n")) }, key: "n", want: "-"},
		{name: "own del then set", fn: func(tx *Txn) { tx.Del([]byte("a")); tx.Set([]byte("a"), []byte("y"), 0) }, key: "a", want: "y"},
		{name: "own flush hides store", fn: func(tx *Txn) { tx.FlushAll() }, key: "a", want: "-"},
		{name: "set after own flush", fn: func(tx *Txn) { tx.FlushAll(); tx.Set([]byte("a"), []byte("z"), 0) }, key: "a", want: "z"},
		{name: "other key after own flush and set", fn: func(tx *Txn) { tx.FlushAll(); tx.Set([]byte("a"), []byte("z"), 0) }, key: "b", want: "-"},
		{name: "set before own flush", fn: func(tx *Txn) { tx.Set([]byte("n"), []byte("x"), 0); tx.FlushAll() }, key: "n", want: "-"},
		{name: "earlier set", earlier: []func(*Txn){func(tx *Txn) { tx.Set([]byte("b"), []byte("g"), 0) }}, key: "b", want: "g"},
		{name: "earlier del", earlier: []func(*Txn){func(tx *Txn) { tx.Del([]byte("b")) }}, key: "b", want: "-"},
		{name: "own overrides earlier", earlier: []func(*Txn){func(tx *Txn) { tx.Del([]byte("b")) }},
			fn: func(tx *Txn) { tx.Set([]byte("b"), []byte("o"), 0) }, key: "b", want: "o"},
		{name: "later earlier proposal wins", earlier: []func(*Txn){
			func(tx *Txn) { tx.Set([]byte("b"), []byte("1st"), 0) },
			func(tx *Txn) { tx.Set([]byte("b"), []byte("2nd"), 0) },
		}, key: "b", want: "2nd"},
		{name: "earlier flush hides store", earlier: []func(*Txn){func(tx *Txn) { tx.FlushAll() }}, key: "a", want: "-"},
		{name: "earlier flush hides even earlier write", earlier: []func(*Txn){
			func(tx *Txn) { tx.Set([]byte("n"), []byte("x"), 0) },
			func(tx *Txn) { tx.FlushAll() },
		}, key: "n", want: "-"},
		{name: "write after earlier flush", earlier: []func(*Txn){
			func(tx *Txn) { tx.FlushAll() },
			func(tx *Txn) { tx.Set([]byte("n"), []byte("after"), 0) },
		}, key: "n", want: "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := &layer{vals: map[string]storage.Version{}}
			for _, fn := range tt.earlier {
				tx := newTxn(s, group)
				fn(tx)
				tx.mergeInto(group)
			}
			tx := newTxn(s, group)
			if tt.fn != nil {
				tt.fn(tx)
			}
			if got := txnGet(t, tx, tt.key); got != tt.want {
				t.Fatalf("Get(%q) = %s, want %s", tt.key, got, tt.want)
			}
			// Scan lists exactly what Get finds, in key order, from any start.
			for _, start := range []string{"", "b", "f", "zz"} {
				var byGet []string
				for _, k := range []string{"a", "b", "e", "f", "n", "zz"} {
					if v := txnGet(t, tx, k); v != "-" && k >= start {
						byGet = append(byGet, k+"="+v)
					}
				}
				if got := txnScan(t, tx, start); got != strings.Join(byGet, " ") {
					t.Fatalf("Scan from %q = %q, Get finds %q", start, got, strings.Join(byGet, " "))
				}
			}
			// ScanReverse lists the same, backwards, below any end.
			for _, end := range []string{"", "b", "f", "n\x00", "zz"} {
				var byGet []string
				for _, k := range []string{"zz", "n", "f", "e", "b", "a"} {
					if v := txnGet(t, tx, k); v != "-" && (end == "" || k < end) {
						byGet = append(byGet, k+"="+v)
					}
				}
				if got := txnScanReverse(t, tx, end); got != strings.Join(byGet, " ") {
					t.Fatalf("ScanReverse below %q = %q, Get finds %q", end, got, strings.Join(byGet, " "))
				}
			}
		})
	}
}

func txnScan(t *testing.T, tx *Txn, start string) string {
	t.Helper()
	var s []byte
	if start != "" {
		s = []byte(start)
	}
	var out []string
	if err := tx.Scan(s, func(k []byte, v engine.Version) bool {
		out = append(out, fmt.Sprintf("%s=%s", k, v.Value))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// txnScanReverse renders tx.ScanReverse below end ("" for no bound).
func txnScanReverse(t *testing.T, tx engine.ReverseScanner, end string) string {
	t.Helper()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	var out []string
	if err := tx.ScanReverse(e, func(k []byte, v engine.Version) bool {
		out = append(out, fmt.Sprintf("%s=%s", k, v.Value))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// TestTxnCopiesArguments: callers (the RESP layer) reuse their buffers, so
// Set and Del must copy the key and value they are given.
func TestTxnCopiesArguments(t *testing.T) {
	s := openStore(t)
	tx := newTxn(s, &layer{vals: map[string]storage.Version{}})
	key, val := []byte("key"), []byte("value")
	tx.Set(key, val, 0)
	dkey := []byte("gone")
	tx.Del(dkey)
	copy(key, "XXX")
	copy(val, "XXXXX")
	copy(dkey, "XXXX")
	if got := txnGet(t, tx, "key"); got != "value" {
		t.Fatalf("Get(key) = %s after the caller reused its buffers", got)
	}
	if string(tx.ops[0].Key) != "key" || string(tx.ops[0].Value) != "value" || string(tx.ops[1].Key) != "gone" {
		t.Fatalf("ops changed with the caller's buffers: %+v", tx.ops)
	}
	if tx.NowMs() != testNowMs {
		t.Fatalf("NowMs = %d", tx.NowMs())
	}
}

// TestTxnViewMatchesCommittedState: for a batch of proposals, what the last
// proposal of the batch reads through its Txn must be exactly what a reader
// sees once the batch is committed. This ties the write path's layered
// view to the store's multi-version reads, FLUSH inside entries included.
func TestTxnViewMatchesCommittedState(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e", "f"}
	set := func(k, v string) func(engine.Txn) error {
		return func(tx engine.Txn) error { tx.Set([]byte(k), []byte(v), 0); return nil }
	}
	tests := []struct {
		name  string
		batch []func(engine.Txn) error
		// own, if set, runs in the observing proposal before it reads:
		// the view then includes that proposal's own writes.
		own  func(engine.Txn)
		want string
	}{
		{"plain writes", []func(engine.Txn) error{set("c", "3"), set("a", "9")}, nil, "a=9 b=2 c=3 f=new"},
		{"flush then set in one entry",
			[]func(engine.Txn) error{func(tx engine.Txn) error { tx.FlushAll(); tx.Set([]byte("c"), []byte("3"), 0); return nil }}, nil,
			"c=3"},
		{"set then flush in one entry",
			[]func(engine.Txn) error{func(tx engine.Txn) error { tx.Set([]byte("c"), []byte("3"), 0); tx.FlushAll(); return nil }}, nil,
			""},
		{"flush then set in later entry of the batch",
			[]func(engine.Txn) error{func(tx engine.Txn) error { tx.FlushAll(); return nil }, set("d", "4")}, nil,
			"d=4"},
		{"delete and re-set",
			[]func(engine.Txn) error{func(tx engine.Txn) error { tx.Del([]byte("a")); return nil }, set("a", "again")}, nil,
			"a=again b=2 f=new"},
		{"set with expiry in the past",
			[]func(engine.Txn) error{func(tx engine.Txn) error { tx.Set([]byte("c"), []byte("x"), tx.NowMs()-1); return nil }}, nil,
			"a=1 b=2 f=new"},
		{"increment twice in one batch", []func(engine.Txn) error{increment("n"), increment("n")}, nil, "a=1 b=2 f=new n=2"},
		{"own writes over the batch's", []func(engine.Txn) error{set("c", "1"), set("d", "1")},
			func(tx engine.Txn) {
				tx.Set([]byte("c"), []byte("2"), 0)
				tx.Del([]byte("d"))
				tx.Set([]byte("c"), []byte("3"), 0)
				tx.Del([]byte("b"))
			},
			"a=1 c=3 f=new"},
		{"own flush hides the batch's writes", []func(engine.Txn) error{set("c", "1")},
			func(tx engine.Txn) {
				tx.Set([]byte("e"), []byte("gone"), 0)
				tx.FlushAll()
				tx.Set([]byte("d"), []byte("4"), 0)
			},
			"d=4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seedStore(t)
			w := startWriter(t, s, WriterConfig{Now: fixedClock})
			var view []string
			var scanned, scannedBack string
			observe := func(tx engine.Txn) error {
				if tt.own != nil {
					tt.own(tx)
				}
				scanned = txnScan(t, tx.(*Txn), "")
				scannedBack = txnScanReverse(t, tx.(*Txn), "")
				for _, k := range append(keys, "n") {
					if v, ok, err := tx.Get([]byte(k)); err != nil {
						return err
					} else if ok {
						view = append(view, fmt.Sprintf("%s=%s", k, v.Value))
					}
				}
				return nil
			}
			res := proposeInOneBatch(t, w, append(slices.Clone(tt.batch), observe)...)
			for i, r := range res {
				if r.err != nil {
					t.Fatalf("proposal %d: %v", i, r.err)
				}
			}
			if got := strings.Join(view, " "); got != tt.want {
				t.Fatalf("the write path saw %q, want %q", got, tt.want)
			}
			if scanned != tt.want {
				t.Fatalf("the write path's Scan saw %q, want %q", scanned, tt.want)
			}
			if want := reversed(tt.want); scannedBack != want {
				t.Fatalf("the write path's ScanReverse saw %q, want %q", scannedBack, want)
			}
			last := res[len(res)-1].tok
			r := &Reader{Store: s, LSN: w.CommitLSN(), Epoch: s.EpochAt(w.CommitLSN()), ClockMs: testNowMs}
			if r.LSN < last.LSN {
				t.Fatalf("commit LSN %d below the batch's token %v", r.LSN, last)
			}
			var got []string
			if err := r.Scan(nil, func(k []byte, v engine.Version) bool {
				got = append(got, fmt.Sprintf("%s=%s", k, v.Value))
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("readers see %q after commit, the write path saw %q", strings.Join(got, " "), tt.want)
			}
			if back, want := txnScanReverse(t, r, ""), reversed(tt.want); back != want {
				t.Fatalf("Reader.ScanReverse sees %q after commit, want %q", back, want)
			}
			for _, k := range keys {
				_, ok, err := r.Get([]byte(k))
				if err != nil {
					t.Fatal(err)
				}
				if want := strings.Contains(" "+tt.want, " "+k+"="); ok != want {
					t.Fatalf("Reader.Get(%q) found=%v, want %v", k, ok, want)
				}
			}
		})
	}
}

// TestTxnOwnWritesMatchModel: a proposal's reads of its own writes — by a
// backwards scan of a few ops, through the index once there are many, and
// across FLUSHes — always match a plain map, and so does what it merges
// into its batch's layer.
func TestTxnOwnWritesMatchModel(t *testing.T) {
	s := seedStore(t)
	keys := []string{"a", "b", "c", "d", "e"}
	rapid.Check(t, func(rt *rapid.T) {
		tx := newTxn(s, &layer{vals: map[string]storage.Version{}})
		model := map[string]string{} // live keys after the proposal's writes
		flushed := false
		n := rapid.IntRange(0, 80).Draw(rt, "ops")
		for range n {
			k := rapid.SampledFrom(keys).Draw(rt, "key")
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0:
				tx.FlushAll()
				clear(model)
				flushed = true
			case 1, 2:
				tx.Del([]byte(k))
				delete(model, k)
				model[k+"/deleted"] = "1"
			case 3, 4, 5:
				v := rapid.StringMatching(`[a-z]{1,3}`).Draw(rt, "value")
				tx.Set([]byte(k), []byte(v), 0)
				model[k] = v
				delete(model, k+"/deleted")
			default:
				want, ok := model[k]
				_, deleted := model[k+"/deleted"]
				got, gok, err := tx.Get([]byte(k))
				if err != nil {
					rt.Fatal(err)
				}
				switch {
				case ok && (!gok || string(got.Value) != want):
					rt.Fatalf("Get(%s) = %q/%v, want %q", k, got.Value, gok, want)
				case !ok && (deleted || flushed) && gok:
					rt.Fatalf("Get(%s) = %q, want nothing (deleted or flushed in this proposal)", k, got.Value)
				}
			}
		}
		g := &layer{vals: map[string]storage.Version{}}
		tx.mergeInto(g)
		if g.flushed != flushed {
			rt.Fatalf("merged flushed = %v, want %v", g.flushed, flushed)
		}
		for _, k := range keys {
			v, live, hit := g.get([]byte(k))
			want, ok := model[k]
			_, deleted := model[k+"/deleted"]
			switch {
			case ok && (!live || string(v.Value) != want):
				rt.Fatalf("merged %s = %q/%v, want %q", k, v.Value, live, want)
			case !ok && (deleted || flushed) && (live || !hit):
				rt.Fatalf("merged %s = %q live=%v hit=%v, want a decided miss", k, v.Value, live, hit)
			}
		}
	})
}

// TestChangedSince: WATCH's question — was key written after an LSN? —
// answered by the store's versions (tombstones included), by a batch's
// earlier proposals and by the proposal itself; after GC removed a
// tombstone, a key without versions may have changed and says so.
func TestChangedSince(t *testing.T) {
	s := seedStore(t) // LSN 1: a, b, e, f
	w := startWriter(t, s, WriterConfig{Now: fixedClock})
	for _, fn := range []func(engine.Txn) error{
		func(tx engine.Txn) error { tx.Del([]byte("b")); return nil },                 // LSN 2
		func(tx engine.Txn) error { tx.Set([]byte("c"), []byte("3"), 0); return nil }, // LSN 3
	} {
		if _, err := w.Propose(ctxT(t), fn); err != nil {
			t.Fatal(err)
		}
	}
	at1 := &Reader{Store: s, LSN: 1, ClockMs: testNowMs}
	tests := []struct {
		name  string
		state engine.Versioned
		key   string
		since uint64
		want  bool
	}{
		{"unchanged since written", at1, "a", 1, false},
		{"written after", at1, "a", 0, true},
		{"deleted later, not visible at 1", at1, "b", 1, false},
		{"never written", at1, "zz", 0, false},
		{"tombstone counts", &Reader{Store: s, LSN: 3, ClockMs: testNowMs}, "b", 1, true},
		{"written at 3", &Reader{Store: s, LSN: 3, ClockMs: testNowMs}, "c", 2, true},
		{"watched after the write", &Reader{Store: s, LSN: 3, ClockMs: testNowMs}, "c", 3, false},
		{"txn sees the newest state", newTxn(s, &layer{vals: map[string]storage.Version{}}), "c", 2, true},
		{"txn: earlier proposal of the batch", newTxn(s, &layer{vals: map[string]storage.Version{"a": {Value: []byte("x")}}}), "a", 3, true},
		{"txn: earlier flush is no write of the key", newTxn(s, &layer{vals: map[string]storage.Version{}, flushed: true}), "a", 3, false},
	}
	own := newTxn(s, &layer{vals: map[string]storage.Version{}})
	own.Del([]byte("zz"))
	tests = append(tests, struct {
		name  string
		state engine.Versioned
		key   string
		since uint64
		want  bool
	}{"txn: its own write", own, "zz", 3, true})
	for _, tt := range tests {
		got, err := tt.state.ChangedSince([]byte(tt.key), tt.since)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s: ChangedSince(%q, %d) = %v, want %v", tt.name, tt.key, tt.since, got, tt.want)
		}
	}
	// GC at floor 3 removes b's tombstone with every older version: b has
	// no version left, and "changed since 1" can no longer be ruled out.
	if _, err := s.GC(3); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.Get([]byte("b"), storage.Latest); found {
		t.Fatal("b is live after its delete")
	}
	r := &Reader{Store: s, LSN: 3, ClockMs: testNowMs}
	for _, c := range []struct {
		key   string
		since uint64
		want  bool
	}{{"b", 1, true}, {"zz", 1, true}, {"zz", 3, false}, {"a", 1, false}} {
		if got, err := r.ChangedSince([]byte(c.key), c.since); err != nil || got != c.want {
			t.Errorf("after GC: ChangedSince(%q, %d) = %v, %v; want %v", c.key, c.since, got, err, c.want)
		}
	}
}

// reversed reverses a space-separated list.
func reversed(list string) string {
	f := strings.Fields(list)
	slices.Reverse(f)
	return strings.Join(f, " ")
}
