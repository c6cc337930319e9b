package convergent

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// run applies commands (one write each) on site, written "name arg…" with
// a number last for zadd/expire/spop.
func run(t *testing.T, site *fakeSite, cmds ...string) []string {
	t.Helper()
	var out []string
	for _, c := range cmds {
		f := strings.Fields(c)
		o := modelOp{name: f[0], args: f[1:]}
		switch o.name {
		case "zadd", "zincr", "expire", "spop", "zpopmin", "zpopmax":
			n, err := parseNum(o.args[len(o.args)-1])
			if err != nil {
				t.Fatal(err)
			}
			o.n, o.args = n, o.args[:len(o.args)-1]
		}
		err := site.write(testMode, func(tx engine.Txn) error {
			r, err := apply(tx, o)
			out = append(out, r)
			return err
		})
		if err != nil {
			t.Fatalf("%s on %s: %v", c, site.name, err)
		}
	}
	return out
}

func parseNum(s string) (float64, error) {
	var f float64
	_, err := fmt.Sscan(s, &f)
	return f, err
}

// sync joins the sites' states both ways (a replication round).
func sync(a, b *fakeSite) {
	a.joinFrom(b)
	b.joinFrom(a)
}

func shown(t *testing.T, s *fakeSite) string {
	t.Helper()
	r := s.reader(testMode).(datatype.Scanner)
	var keys []string
	if err := r.Scan(nil, func(k []byte, _ engine.Version) bool {
		if engine.IsReserved(k) {
			return false
		}
		keys = append(keys, string(k))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	d, err := dump(r, append(keys, "none")...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestConcurrentWrites: writes made on two sites without seeing each
// other, then exchanged, leave both sites showing the same state, with
// the semantics of docs/design/types-modes.md.
func TestConcurrentWrites(t *testing.T) {
	cases := []struct {
		name string
		// before runs on site a and is synced; then a and b run
		// concurrently (b's clock ahead of a's when bAhead).
		before []string
		a, b   []string
		bAhead bool
		want   map[string]string // key → the line dump shows for it
	}{
		{
			name:   "set: an add not seen by a concurrent remove survives",
			before: []string{"sadd s x"},
			a:      []string{"srem s x"},
			b:      []string{"srem s x", "sadd s x"},
			want:   map[string]string{"s": `set exp=0 len=1 "x"=""`},
		},
		{
			// SADD of a member already there writes nothing (Redis answers
			// 0), so it is no add against a concurrent SREM.
			name:   "set: re-adding a present member is not an add",
			before: []string{"sadd s x", "sadd s y"},
			a:      []string{"srem s x"},
			b:      []string{"sadd s x"},
			bAhead: true,
			want:   map[string]string{"s": `set exp=0 len=1 "y"=""`},
		},
		{
			name:   "set: emptying a set keeps a concurrent add it did not see, even stamped earlier",
			before: []string{"sadd s x"},
			a:      []string{"srem s x"},
			b:      []string{"sadd s y"},
			want:   map[string]string{"s": `set exp=0 len=1 "y"=""`},
		},
		{
			name:   "set: SPOP of every member removes only what it saw",
			before: []string{"sadd s x", "sadd s y"},
			a:      []string{"spop s 2", "sadd t z"},
			b:      []string{"sadd s w"},
			bAhead: true,
			want:   map[string]string{"s": `set exp=0 len=1 "w"=""`},
		},
		{
			name:   "hash: a field written on both sites takes the newer write",
			before: []string{"hset h f 0"},
			a:      []string{"hset h f x"},
			b:      []string{"hset h f y"},
			bAhead: true,
			want:   map[string]string{"h": `hash exp=0 len=1 "f"="y"`},
		},
		{
			name: "hash: fields written on different sites all stay",
			a:    []string{"hset h f x"},
			b:    []string{"hset h g y"},
			want: map[string]string{"h": `hash exp=0 len=2 "f"="x" "g"="y"`},
		},
		{
			name:   "hash: a delete of a field loses to a newer concurrent write of it",
			before: []string{"hset h f x", "hset h g x"},
			a:      []string{"hdel h f"},
			b:      []string{"hset h f y"},
			bAhead: true,
			want:   map[string]string{"h": `hash exp=0 len=2 "f"="y" "g"="x"`},
		},
		{
			name:   "DEL clears by time: a newer concurrent write survives, older entries go",
			before: []string{"hset h f x", "hset h g x"},
			a:      []string{"del h"},
			b:      []string{"hset h k y"},
			bAhead: true,
			want:   map[string]string{"h": `hash exp=0 len=1 "k"="y"`},
		},
		{
			name:   "sorted set: members union, a member's score by the newer write",
			before: []string{"zadd z m 1"},
			a:      []string{"zadd z m 5", "zadd z a 2"},
			b:      []string{"zadd z m 7", "zadd z b 9"},
			bAhead: true,
			want:   map[string]string{"z": `zset exp=0 len=3 up[a=2 m=7 b=9 ] down[b=9 m=7 a=2 ] each[a=2 b=9 m=7 ]`},
		},
		{
			name:   "expiry is last-writer-wins against a concurrent write",
			before: []string{"hset h f x"},
			a:      []string{"expire h 500"},
			b:      []string{"hset h g y"},
			want:   map[string]string{"h": `hash exp=1500 len=2 "f"="x" "g"="y"`},
		},
		{
			name:   "type clash: the newer type shows; a write to it drops the other's entries",
			a:      []string{"hset k f x"},
			b:      []string{"sadd k m"},
			bAhead: true,
			want:   map[string]string{"k": `set exp=0 len=1 "m"=""`},
		},
		{
			name:   "RENAME moves what it saw; a concurrent write to the source stays there",
			before: []string{"hset a f x"},
			a:      []string{"rename b a"},
			b:      []string{"hset a g y"},
			bAhead: true,
			want:   map[string]string{"a": `hash exp=0 len=1 "g"="y"`, "b": `hash exp=0 len=1 "f"="x"`},
		},
		{
			name:   "a string SET over a collection clears by time",
			before: []string{"sadd s x"},
			a:      []string{"set s v"},
			b:      []string{"sadd s y"},
			bAhead: true,
			want:   map[string]string{"s": `set exp=0 len=1 "y"=""`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newSite("a"), newSite("b")
			a.clock.WallMs, b.clock.WallMs = 100, 100
			run(t, a, tc.before...)
			sync(a, b)
			if tc.bAhead {
				b.clock.WallMs += 1000
			} else {
				a.clock.WallMs += 1000
			}
			run(t, a, tc.a...)
			run(t, b, tc.b...)
			sync(a, b)
			da, db := shown(t, a), shown(t, b)
			if da != db {
				t.Fatalf("sites differ:\na:\n%s\nb:\n%s", da, db)
			}
			for k, want := range tc.want {
				if !strings.Contains(da, k+": "+want+"\n") {
					t.Errorf("%s: want %s\ngot:\n%s", k, want, da)
				}
			}
		})
	}
}

// TestTypeClashSettled: after a clash, a write to the type the key shows
// drops the other type's entries, so a set emptied by concurrent removes
// on two sites (neither deleting the key) does not bring the hash back.
func TestTypeClashSettled(t *testing.T) {
	a, b := newSite("a"), newSite("b")
	b.clock.WallMs = 1000
	run(t, a, "hset k f x")
	run(t, b, "sadd k m")
	sync(a, b)
	run(t, b, "sadd k n")
	sync(a, b)
	run(t, a, "srem k m")
	run(t, b, "srem k n")
	sync(a, b)
	for _, s := range []*fakeSite{a, b} {
		if got := shown(t, s); strings.Contains(got, "k:") {
			t.Errorf("%s shows\n%s", s.name, got)
		}
	}
}

// TestListsRefused: a list write fails with an error naming the mode,
// and nothing is written.
func TestListsRefused(t *testing.T) {
	s := newSite("a")
	err := s.write(testMode, func(tx engine.Txn) error {
		l, err := datatype.OpenList(tx, []byte("l"))
		if err != nil {
			return err
		}
		if err := l.Push(true, [][]byte{[]byte("x")}); err != nil {
			return err
		}
		return l.Save()
	})
	var ue *engine.UnsupportedError
	if !errors.As(err, &ue) || ue.Mode != testMode || !strings.Contains(err.Error(), "lists") {
		t.Fatalf("list push: %v", err)
	}
	if len(s.keys) != 0 {
		t.Fatalf("wrote %v", s.keys)
	}
}

// TestNotConvergent: a mode whose Txn is not a CollTxn gets no adapter
// (its Txn is used as it is, so package datatype refuses collections).
func TestNotConvergent(t *testing.T) {
	var plain struct{ engine.Txn }
	if _, ok := NewTxn(plain, testMode); ok {
		t.Fatal("adapter over a Txn without collections")
	}
	err := Run(plain, testMode, func(tx engine.Txn) error {
		_, err := datatype.Open(tx, []byte("h"), engine.TypeHash)
		return err
	})
	if !errors.Is(err, datatype.ErrUnsupported) {
		t.Fatalf("Open: %v", err)
	}
	var r struct{ engine.Reader }
	if WrapReader(r, testMode) != engine.Reader(r) {
		t.Fatal("reader wrapped")
	}
}

// TestOptionalInterfaces: the adapter is engine.Versioned exactly when
// the mode's transaction or reader is, and the mode's own is reachable.
func TestOptionalInterfaces(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		s := newSite("a")
		s.versioned = versioned
		_ = s.write(testMode, func(tx engine.Txn) error {
			if _, ok := tx.(engine.Versioned); ok != versioned {
				t.Errorf("mode versioned=%v, adapter Versioned=%v", versioned, ok)
			}
			for _, ok := range []bool{isTyped(tx), isScan(tx), isCounter(tx)} {
				if !ok {
					t.Errorf("adapter is not TypedTxn+ScanTxn+CounterTxn")
				}
			}
			if u, ok := tx.(interface{ Unwrap() engine.Txn }); !ok || u.Unwrap() == nil {
				t.Errorf("no Unwrap")
			}
			return nil
		})
	}
	if _, ok := newSite("a").reader(testMode).(engine.Versioned); ok {
		t.Error("reader Versioned over a reader that is not")
	}
}

func isTyped(tx engine.Txn) bool   { _, ok := tx.(engine.TypedTxn); return ok }
func isScan(tx engine.Txn) bool    { _, ok := tx.(engine.ScanTxn); return ok }
func isCounter(tx engine.Txn) bool { _, ok := tx.(engine.CounterTxn); return ok }

// TestWrites: what one command puts, in one PutColl per key, and what
// never reaches the mode.
func TestWrites(t *testing.T) {
	s := newSite("a")
	run(t, s, "hset h f x")
	if s.puts["h"] != 1 {
		t.Fatalf("HSET put h %d times", s.puts["h"])
	}
	// A command that fails writes nothing, a collection included.
	err := s.write(testMode, func(tx engine.Txn) error {
		if _, err := apply(tx, modelOp{name: "hset", args: []string{"h", "g", "y"}}); err != nil {
			return err
		}
		return errors.New("the command's own failure")
	})
	if err == nil || s.puts["h"] != 1 {
		t.Fatalf("failed command: err %v, puts %d", err, s.puts["h"])
	}
	if got := shown(t, s); !strings.Contains(got, `h: hash exp=0 len=1 "f"="x"`) {
		t.Fatalf("after a failed command:\n%s", got)
	}
	// Reads alone put nothing.
	run(t, s, "zunionstore c a b", "sunionstore c a b")
	if s.puts["c"] != 0 {
		t.Fatalf("empty stores put c %d times", s.puts["c"])
	}
	// INCR of a key the same write made a hash is WRONGTYPE, as the mode
	// answers for a stored one.
	err = s.write(testMode, func(tx engine.Txn) error {
		if _, err := apply(tx, modelOp{name: "hset", args: []string{"n", "f", "x"}}); err != nil {
			return err
		}
		_, err := tx.(engine.CounterTxn).IncrBy([]byte("n"), 1)
		return err
	})
	if !errors.Is(err, datatype.ErrWrongType) {
		t.Fatalf("INCR of a new hash: %v", err)
	}
}

// TestStampsAfterRead: every stamp the adapter writes is newer than what
// the key's Coll held when read (the mode's Stamp follows GetColl).
func TestStampsAfterRead(t *testing.T) {
	a, b := newSite("a"), newSite("b")
	b.clock.WallMs = 5000 // b runs far ahead
	run(t, b, "hset h f old")
	sync(a, b)
	a.clock.WallMs = 0
	run(t, a, "hset h f new")
	top := a.keys["h"].coll.Top()
	if top.Site != "a" || !(crdt.Timestamp{WallMs: 5000}).Less(top.Time) {
		t.Fatalf("a's write stamped %v, not after b's", top)
	}
	if got := shown(t, a); !strings.Contains(got, `"f"="new"`) {
		t.Fatalf("a's later write lost:\n%s", got)
	}
}
