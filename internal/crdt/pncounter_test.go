package crdt

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func inc(t tb, c PNCounter, replica string, delta int64) PNCounter {
	t.Helper()
	c, err := c.Increment(replica, delta)
	if err != nil {
		t.Fatalf("Increment(%s, %d): %v", replica, delta, err)
	}
	return c
}

func value(t tb, c PNCounter) int64 {
	t.Helper()
	v, err := c.Value()
	if err != nil {
		t.Fatalf("Value of %v: %v", c, err)
	}
	return v
}

func TestPNCounterConcurrentIncrementsAllCount(t *testing.T) {
	// The example from Redis's Active-Active documentation of counters.
	eu, us := inc(t, PNCounter{}, "eu", 7), inc(t, PNCounter{}, "us", 3)
	if value(t, eu) != 7 || value(t, us) != 3 {
		t.Fatalf("local values %d, %d", value(t, eu), value(t, us))
	}
	eu, us = eu.Merge(us), us.Merge(eu)
	if value(t, eu) != 10 || value(t, us) != 10 {
		t.Fatalf("after sync %d, %d", value(t, eu), value(t, us))
	}
	eu, us = inc(t, eu, "eu", -3), inc(t, us, "us", 6)
	eu, us = eu.Merge(us), us.Merge(eu)
	if value(t, eu) != 13 || !eu.Equal(us) {
		t.Fatalf("after second sync %v and %v", eu, us)
	}
	// Merging again, or an old state, changes nothing.
	if !eu.Merge(us).Merge(inc(t, PNCounter{}, "eu", 7)).Equal(eu) {
		t.Fatal("re-merging changed the state")
	}
}

func TestPNCounterObservedReset(t *testing.T) {
	// eu and us both count; eu sees everything, then a DEL on eu resets
	// while us, not yet knowing, increments again.
	eu := inc(t, PNCounter{}, "eu", 5)
	us := inc(t, PNCounter{}, "us", 3)
	eu = eu.Merge(us)
	eu = eu.Reset(eu) // DEL on eu: resets the 8 it has seen
	if value(t, eu) != 0 {
		t.Fatalf("after reset: %v", eu)
	}
	us = inc(t, us, "us", 2) // concurrent with the reset
	us = inc(t, us, "eu", 0) // a zero delta changes nothing
	a, b := eu.Merge(us), us.Merge(eu)
	if value(t, a) != 2 || !a.Equal(b) {
		t.Fatalf("concurrent increment should survive the reset: %v / %v", a, b)
	}

	// A reset reaching a replica before the increments it saw still
	// removes them when they arrive.
	ap := PNCounter{}.Merge(eu) // ap learns of the reset first...
	ap = ap.Merge(inc(t, PNCounter{}, "us", 3))
	if value(t, ap) != 0 {
		t.Fatalf("increment seen by the reset counted after all: %v", ap)
	}

	// Two concurrent resets remove the union of what they saw.
	x := inc(t, PNCounter{}, "eu", 4)
	y := inc(t, PNCounter{}, "us", 6)
	z := inc(t, PNCounter{}, "ap", 1)
	x = x.Merge(z) // x has seen ap's 1, y has not
	x, y = x.Reset(x), y.Reset(y)
	z = inc(t, z, "ap", 10) // and neither sees ap's 10
	if got := value(t, x.Merge(y).Merge(z)); got != 10 {
		t.Fatalf("after two resets: %d, want ap's 10 unseen by either", got)
	}

	// SET v as reset plus increment: a concurrent INCR still counts.
	c := inc(t, PNCounter{}, "eu", 41)
	other := c                          // us has seen the 41
	set := inc(t, c.Reset(c), "eu", 10) // SET 10 on eu
	other = inc(t, other, "us", 1)      // INCR on us, concurrently
	if got := value(t, set.Merge(other)); got != 11 {
		t.Fatalf("SET 10 concurrent with INCR = %d, want 11", got)
	}
}

func TestPNCounterOverflow(t *testing.T) {
	c := inc(t, PNCounter{}, "eu", math.MaxInt64)
	if _, err := c.Increment("eu", 1); !errors.Is(err, ErrWouldOverflow) {
		t.Fatalf("INCR at MaxInt64: %v", err)
	}
	if err := c.CheckIncrement("us", 1); !errors.Is(err, ErrWouldOverflow) {
		t.Fatalf("CheckIncrement at MaxInt64 from another replica: %v", err)
	}
	c = inc(t, c, "us", math.MinInt64) // -1
	c = inc(t, c, "us", math.MinInt64+1)
	if value(t, c) != math.MinInt64 {
		t.Fatalf("value %v, want MinInt64", c)
	}
	if _, err := c.Increment("eu", -1); !errors.Is(err, ErrWouldOverflow) {
		t.Fatalf("DECR at MinInt64: %v", err)
	}

	// Concurrent increments that each fit can merge out of range: the
	// value is reported, not wrapped, and Text has it exactly.
	a := inc(t, PNCounter{}, "eu", math.MaxInt64)
	b := inc(t, PNCounter{}, "us", math.MaxInt64)
	m := a.Merge(b)
	if _, err := m.Value(); !errors.Is(err, ErrValueOutOfRange) {
		t.Fatalf("Value of %v: %v", m, err)
	}
	if got := m.Text(); got != "18446744073709551614" {
		t.Fatalf("Text = %s", got)
	}
	if err := m.CheckIncrement("eu", -1); !errors.Is(err, ErrValueOutOfRange) {
		t.Fatalf("CheckIncrement on an out-of-range value: %v", err)
	}
	if got := value(t, m.Reset(a)); got != math.MaxInt64 {
		t.Fatalf("a reset of eu's part brings it back to %d", got)
	}
}

// TestPNCounterTotalsDoNotRunOut: INCRBY and DECRBY of 2^63 back and forth
// would fill 64-bit totals within a few commands.
func TestPNCounterTotalsDoNotRunOut(t *testing.T) {
	c := PNCounter{}
	for range 100 {
		c = inc(t, c, "eu", math.MaxInt64)
		c = inc(t, c, "eu", math.MinInt64)
		c = inc(t, c, "eu", 1)
		c = c.Reset(c)
	}
	if value(t, c) != 0 || c.Text() != "0" {
		t.Fatalf("after 100 rounds: %v", c)
	}
	got, err := DecodePNCounter(mustEncode(t, c))
	if err != nil || !got.Equal(c) {
		t.Fatalf("round trip of %v: %v, %v", c, got, err)
	}
	if !strings.Contains(c.String(), "eu:+922337203685477580800-922337203685477580800/+922337203685477580800-922337203685477580800") {
		t.Fatalf("String = %s", c.String())
	}
}

func TestDecodePNCounterRejects(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		why  string
	}{
		{"empty", nil, "truncated"},
		{"wrong tag", []byte{'V', 0}, "format tag"},
		{"trailing", []byte{'C', 0, 0}, "trailing"},
		{"no totals", []byte{'C', 1, 1, 'a', 0, 0}, "no increments"},
		{"zero total flagged", []byte{'C', 1, 1, 'a', 1, 0}, "zero total"},
		{"zero high half flagged", []byte{'C', 1, 1, 'a', 0x11, 0, 1}, "zero high half"},
		{"high half without total", []byte{'C', 1, 1, 'a', 0x10, 1, 1}, "high half without"},
		{"floor above total", []byte{'C', 1, 1, 'a', 0x05, 1, 2}, "floor above"},
		{"out of order", []byte{'C', 2, 1, 'b', 1, 1, 1, 'a', 1, 1}, "out of order"},
		{"repeated", []byte{'C', 2, 1, 'a', 1, 1, 1, 'a', 1, 2}, "out of order"},
		{"huge count", []byte{'C', 0xff, 0xff, 0x03}, "cannot fit"},
		{"truncated total", []byte{'C', 1, 1, 'a', 1, 0x80}, "truncated"},
	}
	for _, c := range cases {
		_, err := DecodePNCounter(c.in)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: DecodePNCounter(%x) error = %v, want ErrMalformed mentioning %q", c.name, c.in, err, c.why)
		}
	}
}

// pnEvent is one increment in the model: who made it and by how much.
type pnEvent struct {
	replica string
	delta   int64
}

// pnReplica is one replica in the model: its real state next to the model
// of what it knows, as sets of event numbers.
type pnReplica struct {
	id    string
	state PNCounter
	known map[int]bool // events this replica has seen
	reset map[int]bool // events some reset this replica knows of saw
}

// pnHistory runs a random history of increments, resets and merges
// (repeated, in any order) on three replicas, checking after every step
// that each replica's value is the sum of the deltas it knows of that no
// reset it knows of saw. It returns the replicas and the events.
func pnHistory(t *rapid.T, deltas *rapid.Generator[int64], withResets bool) ([]*pnReplica, []pnEvent) {
	var reps []*pnReplica
	for _, id := range []string{"a", "b", "eu"} {
		reps = append(reps, &pnReplica{id: id, known: map[int]bool{}, reset: map[int]bool{}})
	}
	var events []pnEvent
	expect := func(r *pnReplica) *big.Int {
		sum := new(big.Int)
		for e := range r.known {
			if !r.reset[e] {
				sum.Add(sum, big.NewInt(events[e].delta))
			}
		}
		return sum
	}
	ops := 3
	if withResets {
		ops = 4
	}
	for i := range rapid.IntRange(0, 40).Draw(t, "steps") {
		r := reps[rapid.IntRange(0, len(reps)-1).Draw(t, "replica")]
		switch rapid.IntRange(0, ops-1).Draw(t, "op") {
		case 0:
			d := deltas.Draw(t, "delta")
			before, _ := r.state.Value()
			next, err := r.state.Increment(r.id, d)
			if err != nil {
				// Refused: only when the sum does not fit.
				want := new(big.Int).Add(expect(r), big.NewInt(d))
				if want.IsInt64() && new(big.Int).Sub(want, big.NewInt(d)).IsInt64() {
					t.Fatalf("step %d: Increment(%s, %d) at %d refused: %v", i, r.id, d, before, err)
				}
				if !next.Equal(r.state) {
					t.Fatalf("step %d: a refused increment changed the state", i)
				}
				continue
			}
			if _, err := next.Value(); err != nil {
				t.Fatalf("step %d: Increment(%s, %d) at %d accepted, leaving %s", i, r.id, d, before, next.Text())
			}
			r.state = next
			r.known[len(events)] = true
			events = append(events, pnEvent{r.id, d})
		case 1, 2:
			q := reps[rapid.IntRange(0, len(reps)-1).Draw(t, "from")]
			r.state = r.state.Merge(q.state)
			for e := range q.known {
				r.known[e] = true
			}
			for e := range q.reset {
				r.reset[e] = true
			}
		case 3:
			r.state = r.state.Reset(r.state)
			for e := range r.known {
				r.reset[e] = true
			}
		}
		if got, want := r.state.Text(), expect(r).String(); got != want {
			t.Fatalf("step %d: replica %s has %s (%v), want %s", i, r.id, got, r.state, want)
		}
	}
	return reps, events
}

// TestPNCounterValueIsSumOfUnresetDeltas: whatever the order and
// repetition of merges, a replica's value is the sum of the increments it
// knows of minus those a reset it knows of saw; after a full exchange,
// every replica has the same state and the sum of all the increments no
// reset saw.
func TestPNCounterValueIsSumOfUnresetDeltas(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		reps, events := pnHistory(t, rapid.Int64Range(-1000, 1000), rapid.Bool().Draw(t, "resets"))
		all := PNCounter{}
		for _, i := range rapid.Permutation([]int{0, 1, 2}).Draw(t, "order") {
			all = all.Merge(reps[i].state)
		}
		final := &pnReplica{known: map[int]bool{}, reset: map[int]bool{}}
		for _, r := range reps {
			for e := range r.known {
				final.known[e] = true
			}
			for e := range r.reset {
				final.reset[e] = true
			}
			if !r.state.Merge(all).Equal(all) {
				t.Fatalf("replica %s does not converge", r.id)
			}
		}
		want := int64(0)
		for e := range final.known {
			if !final.reset[e] {
				want += events[e].delta
			}
		}
		if got := value(t, all); got != want {
			t.Fatalf("converged value %d, want %d", got, want)
		}
	})
}

// TestPNCounterExtremeDeltas runs histories with deltas from the whole
// int64 range: increments are refused exactly when the local sum would
// leave it, merges may leave it, and Text stays exact throughout (the
// history checks it against big-integer arithmetic after every step).
func TestPNCounterExtremeDeltas(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		deltas := rapid.OneOf(rapid.Int64(), rapid.SampledFrom([]int64{math.MaxInt64, math.MinInt64, 1, -1}))
		reps, _ := pnHistory(t, deltas, true)
		for _, r := range reps {
			_, err := r.state.Value()
			exact, _ := new(big.Int).SetString(r.state.Text(), 10)
			if (err == nil) != exact.IsInt64() {
				t.Fatalf("Value error %v for %s", err, r.state.Text())
			}
		}
	})
}

func TestPNCounterMergeIsAJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		reps, _ := pnHistory(t, rapid.Int64Range(-5, 5), true)
		a, b, c := reps[0].state, reps[1].state, reps[2].state
		if !a.Merge(b).Equal(b.Merge(a)) {
			t.Fatalf("not commutative: %v, %v", a, b)
		}
		if !a.Merge(b).Merge(c).Equal(a.Merge(b.Merge(c))) {
			t.Fatalf("not associative: %v, %v, %v", a, b, c)
		}
		if !a.Merge(a).Equal(a) {
			t.Fatalf("not idempotent: %v", a)
		}
		if !bytes.Equal(mustEncode(t, a.Merge(b)), mustEncode(t, b.Merge(a))) {
			t.Fatal("equal states encode differently")
		}
		for _, s := range []PNCounter{a, b, c, a.Merge(c)} {
			enc := mustEncode(t, s)
			got, err := DecodePNCounter(enc)
			if err != nil || !got.Equal(s) {
				t.Fatalf("DecodePNCounter(enc %v) = %v, %v", s, got, err)
			}
		}
	})
}

func TestDecodePNCounterNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var in []byte
		if rapid.Bool().Draw(t, "nearValid") {
			reps, _ := pnHistory(t, rapid.OneOf(rapid.Int64Range(-300, 300), rapid.Int64()), true)
			in = mutate(t, mustEncode(t, reps[0].state))
		} else {
			in = rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "bytes")
		}
		checkCanonical(t, "DecodePNCounter", DecodePNCounter, in)
	})
}
