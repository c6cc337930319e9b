package check

import (
	"bytes"
	"testing"
	"time"
)

const ms = time.Millisecond

// op builders for hand-made histories.
func w(p int, key string, v int64, start, end time.Duration, lsn uint64) Op {
	return Op{Process: p, Kind: Write, Key: key, Value: v, Outcome: Ok, Start: start, End: end, LSN: lsn}
}

func ins(p int, key string, v int64, o Outcome) Op {
	return Op{Process: p, Kind: Insert, Key: key, Value: v, Outcome: o, Start: 0, End: ms, LSN: 1}
}

func rd(p int, key string, v int64, found bool, cons string, start, end time.Duration) Op {
	return Op{Process: p, Kind: Read, Key: key, Value: v, Found: found, Outcome: Ok, Consistency: cons, Start: start, End: end}
}

func TestLost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []Op
		final   map[string]int64
		lost    int
		unknown int
	}{
		{name: "every acknowledged insert is there", ops: []Op{ins(1, "a", 1, Ok), ins(1, "b", 2, Ok)}, final: map[string]int64{"a": 1, "b": 2}},
		{name: "an acknowledged insert is gone", ops: []Op{ins(1, "a", 1, Ok), ins(1, "b", 2, Ok)}, final: map[string]int64{"a": 1}, lost: 1},
		{name: "another value stands in its place", ops: []Op{ins(1, "a", 1, Ok)}, final: map[string]int64{"a": 9}, lost: 1},
		{name: "unknown and failed inserts may be gone", ops: []Op{ins(1, "a", 1, Unknown), ins(1, "b", 2, Fail)}, final: map[string]int64{}},
		{name: "an unknown insert that survived is counted", ops: []Op{ins(1, "a", 1, Unknown)}, final: map[string]int64{"a": 1}, unknown: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Lost(&History{Ops: tc.ops, Final: tc.final})
			if len(r.Lost) != tc.lost || r.Unacked != tc.unknown {
				t.Fatalf("lost %d, unknown present %d; want %d, %d", len(r.Lost), r.Unacked, tc.lost, tc.unknown)
			}
		})
	}
}

// A lost write is found in the rollback file that kept it.
func TestLostInRollback(t *testing.T) {
	h := &History{Ops: []Op{ins(1, "a", 1, Ok), ins(1, "b", 2, Ok)}, Final: map[string]int64{},
		RolledBack: []RolledBack{{Node: "n1", File: "rollback/x.jsonl", Key: "b", Value: 2}, {Node: "n1", File: "rollback/x.jsonl", Key: "a", Value: 7}}}
	r := Lost(h)
	if len(r.Lost) != 2 || r.InRollback[0] != "" || r.InRollback[1] != "n1:rollback/x.jsonl" {
		t.Fatalf("%+v", r)
	}
}

func TestLinearizability(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ops   []Op
		want  string
		stale int
	}{
		{name: "read after write sees it", want: "linearizable", ops: []Op{
			w(1, "k", 1, 0, 10*ms, 1), rd(2, "k", 1, true, Linearizable, 20*ms, 30*ms)}},
		{name: "concurrent read may see either", want: "linearizable", ops: []Op{
			w(1, "k", 1, 0, 10*ms, 1), w(1, "k", 2, 20*ms, 40*ms, 2), rd(2, "k", 1, true, Linearizable, 25*ms, 30*ms)}},
		{name: "a read returns an overwritten value", want: "not linearizable", stale: 1, ops: []Op{
			w(1, "k", 1, 0, 10*ms, 1), w(1, "k", 2, 20*ms, 30*ms, 2), rd(2, "k", 1, true, Linearizable, 40*ms, 50*ms)}},
		{name: "a read misses an acknowledged write", want: "not linearizable", stale: 1, ops: []Op{
			w(1, "k", 1, 0, 10*ms, 1), rd(2, "k", 0, false, Linearizable, 20*ms, 30*ms)}},
		{name: "reads go back in time", want: "not linearizable", stale: 1, ops: []Op{
			w(1, "k", 1, 0, 10*ms, 1), w(1, "k", 2, 15*ms, 100*ms, 2),
			rd(2, "k", 2, true, Linearizable, 20*ms, 30*ms), rd(3, "k", 1, true, Linearizable, 40*ms, 50*ms)}},
		{name: "reads go back past a write of unknown outcome", want: "not linearizable", stale: 1, ops: []Op{
			w(1, "k", 1, 0, 10*ms, 1), {Process: 1, Kind: Write, Key: "k", Value: 2, Outcome: Unknown, Start: 15 * ms, End: 20 * ms},
			rd(2, "k", 2, true, Linearizable, 30*ms, 40*ms), rd(3, "k", 1, true, Linearizable, 50*ms, 60*ms)}},
		{name: "overlapping reads may see either", want: "linearizable", ops: []Op{
			w(1, "k", 1, 0, 10*ms, 1), {Process: 1, Kind: Write, Key: "k", Value: 2, Outcome: Unknown, Start: 15 * ms, End: 20 * ms},
			rd(2, "k", 2, true, Linearizable, 30*ms, 40*ms), rd(3, "k", 1, true, Linearizable, 35*ms, 60*ms)}},
		{name: "a write whose client gave up may land after a later acknowledged one", want: "linearizable", ops: []Op{
			{Process: 1, Kind: Write, Key: "k", Value: 1, Outcome: Unknown, Start: 0, End: 10 * ms},
			w(2, "k", 2, 20*ms, 30*ms, 2), rd(3, "k", 1, true, Linearizable, 40*ms, 50*ms)}},
		{name: "a write of unknown outcome may land late", want: "linearizable", ops: []Op{
			{Process: 1, Kind: Write, Key: "k", Value: 1, Outcome: Unknown, Start: 0, End: 10 * ms},
			rd(2, "k", 0, false, Linearizable, 20*ms, 30*ms), rd(2, "k", 1, true, Linearizable, 40*ms, 50*ms)}},
		{name: "a failed write is never seen, so seeing it is not explained", want: "not linearizable", ops: []Op{
			{Process: 1, Kind: Write, Key: "k", Value: 1, Outcome: Fail, Start: 0, End: 10 * ms},
			rd(2, "k", 1, true, Linearizable, 20*ms, 30*ms)}},
		{name: "eventual reads are not judged here", want: "linearizable", ops: []Op{
			w(1, "k", 1, 0, 10*ms, 1), w(1, "k", 2, 20*ms, 30*ms, 2), rd(2, "k", 1, true, Eventual, 40*ms, 50*ms)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Linearizability(&History{Ops: tc.ops}, 10*time.Second)
			if r.Verdict != tc.want || len(r.Stale) != tc.stale {
				t.Fatalf("verdict %q with %d stale reads; want %q, %d", r.Verdict, len(r.Stale), tc.want, tc.stale)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	sr := func(p int, key string, v int64, found bool, start time.Duration) Op {
		return rd(p, key, v, found, Session, start, start+ms)
	}
	for _, tc := range []struct {
		name string
		ops  []Op
		want []string
	}{
		{name: "reads its own write", ops: []Op{w(1, "k", 1, 0, ms, 5), sr(1, "k", 1, true, 2*ms)}},
		{name: "reads a newer write of another session", ops: []Op{w(1, "k", 1, 0, ms, 5), w(2, "k", 2, 0, ms, 7), sr(1, "k", 2, true, 2*ms)}},
		{name: "misses its own write", want: []string{"read-your-writes"}, ops: []Op{
			w(2, "k", 1, 0, ms, 3), w(1, "k", 2, 0, ms, 5), sr(1, "k", 1, true, 2*ms)}},
		{name: "finds nothing after writing", want: []string{"read-your-writes"}, ops: []Op{
			w(1, "k", 2, 0, ms, 5), sr(1, "k", 0, false, 2*ms)}},
		{name: "goes back after a newer read", want: []string{"monotonic-reads"}, ops: []Op{
			w(2, "k", 1, 0, ms, 3), w(2, "k", 2, 2*ms, 3*ms, 6), sr(1, "k", 2, true, 4*ms), sr(1, "k", 1, true, 6*ms)}},
		{name: "another session going back is not this one's regression", ops: []Op{
			w(2, "k", 1, 0, ms, 3), w(2, "k", 2, 2*ms, 3*ms, 6), sr(1, "k", 2, true, 4*ms), sr(3, "k", 1, true, 6*ms)}},
		{name: "eventual reads promise neither", ops: []Op{
			w(1, "k", 2, 0, ms, 5), rd(1, "k", 0, false, Eventual, 2*ms, 3*ms)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Sessions(&History{Ops: tc.ops})
			var got []string
			for _, v := range r.Violations {
				got = append(got, v.Guarantee)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("violations %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStaleness(t *testing.T) {
	h := &History{Ops: []Op{
		w(1, "k", 1, 0, 10*ms, 1),
		w(1, "k", 2, 20*ms, 30*ms, 2),
		w(1, "k", 3, 40*ms, 50*ms, 3),
		rd(2, "k", 3, true, Eventual, 60*ms, 61*ms),  // fresh
		rd(2, "k", 1, true, Eventual, 60*ms, 61*ms),  // two behind, 30 ms old
		rd(2, "k", 0, false, Eventual, 35*ms, 36*ms), // two behind (1 and 2), 25 ms old
	}}
	r := Staleness(h)
	if r.Reads != 3 || r.Stale != 2 || r.MaxBehind != 2 || r.MaxAge != 30*ms || r.MaxLSNs != 2 {
		t.Fatalf("%+v; want 3 reads, 2 stale, 2 behind at most, 30ms", r)
	}
}

func TestCounters(t *testing.T) {
	incr := func(d int64, o Outcome) Op { return Op{Kind: Incr, Key: "c", Delta: d, Outcome: o} }
	for _, tc := range []struct {
		name  string
		ops   []Op
		final int64
		want  string
	}{
		{name: "every acknowledged increment counted", ops: []Op{incr(1, Ok), incr(2, Ok)}, final: 3, want: "ok"},
		{name: "an unknown one may count", ops: []Op{incr(1, Ok), incr(2, Unknown)}, final: 3, want: "ok"},
		{name: "an acknowledged one lost", ops: []Op{incr(1, Ok), incr(2, Ok)}, final: 1, want: "lost increments"},
		{name: "more than was ever sent", ops: []Op{incr(1, Ok), incr(2, Fail)}, final: 3, want: "phantom increments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Counters(&History{Ops: tc.ops, Final: map[string]int64{"c": tc.final}})
			if len(r) != 1 || r[0].Verdict != tc.want {
				t.Fatalf("%+v, want %s", r, tc.want)
			}
		})
	}
}

func TestAvailability(t *testing.T) {
	ack := func(start, end time.Duration) Op {
		return Op{Kind: Write, Key: "k", Outcome: Ok, Start: start, End: end}
	}
	h := &History{
		Ops: []Op{ack(0, 100*ms), ack(150*ms, 900*ms), ack(1000*ms, 1010*ms), ack(1020*ms, 1030*ms)},
		Faults: []Fault{
			{Kind: "kill-leader", Node: "n1", Start: 200 * ms, Healed: 1500 * ms},
		},
	}
	r := Availability(h)
	if len(r) != 1 {
		t.Fatal(r)
	}
	// First write begun after the fault: [1000, 1010] → 810 ms after it; the
	// longest time without an ack inside [200, 1500]: from the fault to the
	// ack at 900 = 700 ms.
	if r[0].FirstAck != 810*ms || r[0].LongestGap != 700*ms {
		t.Fatalf("first ack %v, longest gap %v; want 810ms, 700ms", r[0].FirstAck, r[0].LongestGap)
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	h := &History{Ops: []Op{w(1, "k", 1, 0, ms, 1), ins(2, "u", 3, Unknown)}, Final: map[string]int64{"k": 1},
		Faults: []Fault{{Kind: "pause-leader", Node: "n1", Start: ms, Healed: 2 * ms}}}
	var b bytes.Buffer
	if err := h.Save(&b); err != nil {
		t.Fatal(err)
	}
	got, err := Load(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Ops) != 2 || got.Ops[1].Outcome != Unknown || got.Faults[0].Healed != 2*ms || got.Final["k"] != 1 {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := Load(bytes.NewBufferString(`{"ops":[{"outcome":"maybe"}]}`)); err == nil {
		t.Fatal("a history with an unknown outcome loaded")
	}
	if _, err := Load(bytes.NewBufferString(`{"ops":`)); err == nil {
		t.Fatal("a truncated history loaded")
	}
}

func TestConvergence(t *testing.T) {
	h := &History{Replicas: map[string]map[string]int64{
		"eu": {"a": 1, "b": 2, "c": 3},
		"us": {"a": 1, "b": 9, "c": 3},
		"ap": {"a": 1, "b": 2},
	}}
	r := Convergence(h)
	if r.Count != 2 || r.Keys != 3 || r.Replicas != 3 || r.Differ[0] != "b" || r.Differ[1] != "c" {
		t.Fatalf("%+v; want b and c differing", r)
	}
	h.Replicas["us"]["b"], h.Replicas["ap"]["c"] = 2, 3
	if r := Convergence(h); r.Count != 0 {
		t.Fatalf("%+v after converging", r)
	}
}

func TestSessionsInOrder(t *testing.T) {
	own := func(v int64, o Outcome, start time.Duration) Op {
		return Op{Process: 1, Kind: Write, Key: "s1", Value: v, Outcome: o, Start: start, End: start + ms}
	}
	sr := func(v int64, found bool, start time.Duration) Op {
		return Op{Process: 1, Kind: Read, Key: "s1", Value: v, Found: found, Outcome: Ok, Consistency: Session, Start: start, End: start + ms}
	}
	for _, tc := range []struct {
		name string
		ops  []Op
		want string
	}{
		{name: "sees its last write", ops: []Op{own(10, Ok, 0), own(20, Ok, 2*ms), sr(20, true, 4*ms)}},
		{name: "sees a write of unknown outcome made later", ops: []Op{own(10, Ok, 0), own(20, Unknown, 2*ms), sr(20, true, 4*ms)}},
		{name: "sees an older write", want: "read-your-writes", ops: []Op{own(10, Ok, 0), own(20, Ok, 2*ms), sr(10, true, 4*ms)}},
		{name: "sees nothing", want: "read-your-writes", ops: []Op{own(10, Ok, 0), sr(0, false, 2*ms)}},
		{name: "goes back behind a write it saw take effect", want: "monotonic-reads", ops: []Op{own(10, Ok, 0), own(20, Unknown, 2*ms), sr(20, true, 4*ms), sr(10, true, 6*ms)}},
		// A timed-out write delivered once a partition heals lands after
		// the session's later writes: the read of it is no violation.
		{name: "sees a write of unknown outcome that took effect late", ops: []Op{own(10, Unknown, 0), own(20, Ok, 2*ms), sr(10, true, 4*ms)}},
		{name: "two writes of unknown outcome may land in either order", ops: []Op{own(10, Unknown, 0), own(20, Unknown, 2*ms), sr(20, true, 4*ms), sr(10, true, 6*ms)}},
		{name: "another writer's key is not judged", ops: []Op{own(10, Ok, 0), {Process: 2, Kind: Write, Key: "s1", Value: 30, Outcome: Ok, Start: ms, End: 2 * ms}, sr(0, false, 4*ms)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := SessionsInOrder(&History{Ops: tc.ops})
			got := ""
			if len(r.Violations) > 0 {
				got = r.Violations[0].Guarantee
			}
			if got != tc.want {
				t.Fatalf("violation %q, want %q (%+v)", got, tc.want, r.Violations)
			}
		})
	}
}
