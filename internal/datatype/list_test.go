package datatype

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/datatype/memstate"
	"github.com/replicant-db/replicant/internal/engine"
)

// listModel is the naive list the property test compares with.
type listModel [][]byte

func (m listModel) pos(elem []byte, rank, count, maxlen int64) []int64 {
	var out []int64
	n := int64(len(m))
	skip := max(rank, -rank) - 1
	for k := int64(0); k < n && (maxlen == 0 || k < maxlen); k++ {
		i := k
		if rank < 0 {
			i = n - 1 - k
		}
		if !bytes.Equal(m[i], elem) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		out = append(out, i)
		if count != 0 && int64(len(out)) == count {
			break
		}
	}
	return out
}

func (m listModel) remove(count int64, elem []byte) (listModel, int64) {
	var removed int64
	limit := max(count, -count)
	keep := make([]bool, len(m))
	for i := range keep {
		keep[i] = true
	}
	for k := range m {
		i := k
		if count < 0 {
			i = len(m) - 1 - k
		}
		if bytes.Equal(m[i], elem) && (limit == 0 || removed < limit) {
			keep[i] = false
			removed++
		}
	}
	var out listModel
	for i, e := range m {
		if keep[i] {
			out = append(out, e)
		}
	}
	return out, removed
}

// TestListModel: every list operation, in any order, leaves the stored
// list equal to a naive slice, with exactly Len element keys under its id
// (after a sweep, nothing else of it), and reads by index, forward and
// backward, agreeing with it.
func TestListModel(t *testing.T) {
	t.Run("reverse scans", func(t *testing.T) { testListModel(t, func(st *memstate.State) listState { return st }) })
	// forwardOnly (zset_test.go) hides memstate's backward scan, as the
	// state of a mode without one would.
	t.Run("forward scans only", func(t *testing.T) {
		defer func(n int64) { listChunk = n }(listChunk)
		listChunk = 3 // backward walks cross many chunk boundaries
		testListModel(t, func(st *memstate.State) listState { return forwardOnly{st} })
	})
}

// listState is what the list operations run on: a TypedTxn that scans.
type listState interface {
	engine.TypedTxn
	Scanner
}

func testListModel(t *testing.T, wrap func(*memstate.State) listState) {
	rapid.Check(t, func(rt *rapid.T) {
		mem := &memstate.State{}
		st := wrap(mem)
		key := []byte("l")
		var model listModel
		elem := rapid.SampledFrom([]string{"a", "b", "c", ""})
		open := func() *List {
			l, err := OpenList(st, key)
			if err != nil {
				rt.Fatal(err)
			}
			if l.Len() != int64(len(model)) || l.Exists() != (len(model) > 0) {
				rt.Fatalf("opened with Len %d exists %v, model has %d", l.Len(), l.Exists(), len(model))
			}
			return l
		}
		save := func(l *List) {
			if err := l.Save(); err != nil {
				rt.Fatal(err)
			}
		}
		for step := range rapid.IntRange(1, 60).Draw(rt, "steps") {
			l := open()
			n := int64(len(model))
			switch op := rapid.IntRange(0, 6).Draw(rt, fmt.Sprint("op", step)); op {
			case 0: // push
				left := rapid.Bool().Draw(rt, "left")
				var es [][]byte
				for range rapid.IntRange(1, 8).Draw(rt, "npush") {
					es = append(es, []byte(elem.Draw(rt, "e")))
				}
				if err := l.Push(left, es); err != nil {
					rt.Fatal(err)
				}
				for _, e := range es {
					if left {
						model = append(listModel{e}, model...)
					} else {
						model = append(model, e)
					}
				}
			case 1: // pop
				left := rapid.Bool().Draw(rt, "left")
				k := rapid.Int64Range(1, n+2).Draw(rt, "npop")
				got, err := l.Pop(left, k)
				if err != nil {
					rt.Fatal(err)
				}
				k = min(k, n)
				var want [][]byte
				if left {
					want, model = slices.Clone(model[:k]), model[k:]
				} else {
					want = slices.Clone(model[n-k:])
					slices.Reverse(want)
					model = model[:n-k]
				}
				if !slices.EqualFunc(got, want, bytes.Equal) {
					rt.Fatalf("pop %v %d: got %q want %q", left, k, got, want)
				}
			case 2: // set
				if n == 0 {
					continue
				}
				i := rapid.Int64Range(0, n-1).Draw(rt, "i")
				e := []byte(elem.Draw(rt, "e"))
				if err := l.Set(i, e); err != nil {
					rt.Fatal(err)
				}
				model[i] = e
			case 3: // insert
				pivot, e := []byte(elem.Draw(rt, "pivot")), []byte(elem.Draw(rt, "e"))
				before := rapid.Bool().Draw(rt, "before")
				found, err := l.Insert(pivot, e, before)
				if err != nil {
					rt.Fatal(err)
				}
				at := slices.IndexFunc(model, func(x []byte) bool { return bytes.Equal(x, pivot) })
				if found != (at >= 0) {
					rt.Fatalf("insert: found %v, model index %d", found, at)
				}
				if at >= 0 {
					if !before {
						at++
					}
					model = slices.Insert(model, at, e)
				}
			case 4: // remove
				count := rapid.Int64Range(-3, 3).Draw(rt, "count")
				e := []byte(elem.Draw(rt, "e"))
				got, err := l.Remove(count, e)
				if err != nil {
					rt.Fatal(err)
				}
				var want int64
				model, want = model.remove(count, e)
				if got != want {
					rt.Fatalf("remove %d %q: %d removed, want %d", count, e, got, want)
				}
			case 5: // trim
				start := rapid.Int64Range(0, n+1).Draw(rt, "start")
				stop := rapid.Int64Range(start-1, max(start-1, n-1)).Draw(rt, "stop")
				if err := l.Trim(start, stop); err != nil {
					rt.Fatal(err)
				}
				if start > stop || start >= n {
					model = nil
				} else {
					model = model[start : stop+1]
				}
			case 6: // positions
				rank := rapid.SampledFrom([]int64{1, 2, -1, -2, 3}).Draw(rt, "rank")
				count := rapid.Int64Range(0, 3).Draw(rt, "count")
				maxlen := rapid.Int64Range(0, n+1).Draw(rt, "maxlen")
				e := []byte(elem.Draw(rt, "e"))
				got, err := l.Pos(e, rank, count, maxlen)
				if err != nil {
					rt.Fatal(err)
				}
				if want := model.pos(e, rank, count, maxlen); !slices.Equal(got, want) {
					rt.Fatalf("pos %q rank %d count %d maxlen %d: %v want %v", e, rank, count, maxlen, got, want)
				}
			}
			save(l)
			checkList(rt, mem, st, key, model)
		}
	})
}

// checkList compares the stored list with model: every read, and the
// element keys left after a sweep.
func checkList(t interface {
	Fatal(...any)
	Fatalf(string, ...any)
}, mem *memstate.State, st Scanner, key []byte, model listModel) {
	v, found, err := ReadList(st, key)
	if err != nil {
		t.Fatal(err)
	}
	if found != (len(model) > 0) {
		t.Fatalf("found %v with %d elements in the model", found, len(model))
	}
	n := int64(len(model))
	if found {
		var fwd, back [][]byte
		if err := v.Range(0, n-1, func(_ int64, e []byte) bool { fwd = append(fwd, bytes.Clone(e)); return true }); err != nil {
			t.Fatal(err)
		}
		if err := v.RangeBack(0, n-1, func(_ int64, e []byte) bool { back = append(back, bytes.Clone(e)); return true }); err != nil {
			t.Fatal(err)
		}
		slices.Reverse(back)
		if !slices.EqualFunc(fwd, model, bytes.Equal) || !slices.EqualFunc(back, model, bytes.Equal) {
			t.Fatalf("stored %q (backwards %q), model %q", fwd, back, model)
		}
		for i := range n {
			e, err := v.Index(i)
			if err != nil || !bytes.Equal(e, model[i]) {
				t.Fatalf("Index(%d) = %q, %v; model %q", i, e, err, model[i])
			}
		}
	}
	// After a sweep only the live list's elements (and its owner record)
	// remain in the reserved space.
	sw := &Sweeper{
		Write: func(_ context.Context, fn func(engine.Txn) error) error { return fn(mem) },
		Read:  func(context.Context) (Scanner, error) { return mem, nil },
	}
	for {
		_, more, err := sw.Pass(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
	}
	reserved := 0
	_ = mem.Scan(nil, func(k []byte, _ engine.Version) bool {
		if engine.IsReserved(k) {
			reserved++
		}
		return true
	})
	want := 0
	if n > 0 {
		want = int(n) + 1
	}
	if reserved != want {
		t.Fatalf("%d reserved keys after a sweep, want %d (%d elements and an owner)", reserved, want, n)
	}
}

// TestListEmptiedNotWritten: a list emptied in O(1) refuses further writes
// instead of mixing new elements with the ones left to the sweeper.
func TestListEmptiedNotWritten(t *testing.T) {
	st := &memstate.State{}
	l, _ := OpenList(st, []byte("l"))
	if err := l.Push(false, [][]byte{[]byte("a"), []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if err := l.Trim(1, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Push(true, [][]byte{[]byte("c")}); err == nil {
		t.Fatal("push after an O(1) trim succeeded")
	}
	if err := l.Save(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Get([]byte("l")); ok {
		t.Fatal("an emptied list still exists")
	}
}

// TestListCorrupt: metadata counting an element that is not there is
// reported as corruption, not read as a shorter list.
func TestListCorrupt(t *testing.T) {
	st := &memstate.State{}
	l, _ := OpenList(st, []byte("l"))
	_ = l.Push(false, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	_ = l.Save()
	v, _, _ := ReadList(st, []byte("l"))
	st.Del(ElemKey(v.v.Meta.ID, SubIndex, EncodeIndex(v.v.Meta.Head+2)))
	v, _, _ = ReadList(st, []byte("l"))
	err := v.Range(0, 2, func(int64, []byte) bool { return true })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Range over a missing element: %v", err)
	}
	if _, err := v.Index(2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Index of a missing element: %v", err)
	}
	for _, s := range []Scanner{st, forwardOnly{st}} {
		v, _, _ := ReadList(s, []byte("l"))
		if err := v.RangeBack(0, 2, func(int64, []byte) bool { return true }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("RangeBack over a missing element (%T): %v", s, err)
		}
	}
}
