package check

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	kinds := []string{"kill-leader", "pause-leader", "kill-follower"}
	a := Schedule(7, 2*time.Minute, kinds)
	if b := Schedule(7, 2*time.Minute, kinds); !slices.Equal(a, b) {
		t.Fatal("the same seed gave another schedule")
	}
	if c := Schedule(8, 2*time.Minute, kinds); slices.Equal(a, c) {
		t.Fatal("another seed gave the same schedule")
	}
	if len(a) < 6 {
		t.Fatalf("%d faults in 2 minutes", len(a))
	}
	seen := map[string]bool{}
	prev := time.Duration(0)
	for _, f := range a {
		seen[f.Kind] = true
		if f.At < prev+2*time.Second || f.Heal <= f.At || f.Heal > 2*time.Minute-5*time.Second {
			t.Fatalf("fault %+v overlaps the previous (healed %s) or ends too late", f, prev)
		}
		prev = f.Heal
	}
	if len(seen) != len(kinds) {
		t.Fatalf("kinds used: %v", seen)
	}
	if Schedule(1, time.Minute, nil) != nil {
		t.Fatal("no kinds, yet faults")
	}
}

func TestParseNemeses(t *testing.T) {
	got, err := ParseNemeses("kill-leader, pause-follower,kill-leader")
	if err != nil || !slices.Equal(got, []string{"kill-leader", "pause-follower"}) {
		t.Fatalf("%v, %v", got, err)
	}
	if got, err := ParseNemeses("none"); err != nil || got != nil {
		t.Fatalf("none: %v, %v", got, err)
	}
	if _, err := ParseNemeses("kill-everything"); err == nil || !strings.Contains(err.Error(), "kill-everything") {
		t.Fatalf("unknown nemesis: %v", err)
	}
}

// A lost write breaks the promise under a sync policy and is the known
// trade-off under async; the text report says which.
func TestAnalyzeVerdicts(t *testing.T) {
	h := &History{Ops: []Op{ins(1, "a", 1, Ok), ins(1, "b", 2, Ok)}, Final: map[string]int64{"a": 1}}
	h.Setup = map[string]string{"sync": "FIRST 1 (*)"}
	r := Analyze(h, time.Second)
	if r.Passed() || r.Verdicts[0].Held || !r.Verdicts[0].Promised {
		t.Fatalf("a lost write under FIRST 1 passed: %+v", r.Verdicts)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil || !strings.Contains(b.String(), "BROKEN") || !strings.Contains(b.String(), "lost: b=2") {
		t.Fatalf("text report:\n%s", b.String())
	}
	h.Setup = map[string]string{"sync": "async"}
	if r := Analyze(h, time.Second); !r.Passed() || r.Verdicts[0].Promised {
		t.Fatalf("a lost write under async failed the run: %+v", r.Verdicts)
	}
	h.Final["b"] = 2
	h.Setup = map[string]string{"sync": "FIRST 1 (*)"}
	if r := Analyze(h, time.Second); !r.Passed() {
		t.Fatalf("a clean history failed: %+v", r.Verdicts)
	}
}

// The HTML page renders the verdicts, the faults and a lost write, and is
// self-contained (nothing fetched).
func TestWriteHTML(t *testing.T) {
	h := &History{
		Ops: []Op{
			{Process: 1, Kind: Insert, Key: "a", Value: 1, Outcome: Ok, Start: 0, End: 10 * ms, Epoch: 1, LSN: 1},
			{Process: 1, Kind: Insert, Key: "b", Value: 2, Outcome: Ok, Start: 20 * ms, End: 30 * ms, Epoch: 1, LSN: 2, Node: "n1"},
			{Process: 1, Kind: Insert, Key: "c", Value: 3, Outcome: Unknown, Start: 40 * ms, End: 900 * ms},
			{Process: 1, Kind: Insert, Key: "d", Value: 4, Outcome: Ok, Start: 1000 * ms, End: 1010 * ms, Epoch: 2, LSN: 2},
		},
		Faults: []Fault{{Kind: "kill-leader", Node: "n1", Start: 35 * ms, Healed: 950 * ms}},
		Final:  map[string]int64{"a": 1, "d": 4},
		Setup:  map[string]string{"sync": "async", "mode": "single-leader"},
	}
	var b strings.Builder
	if err := Analyze(h, time.Second).WriteHTML(&b, h); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<svg", "kill-leader n1", "no acknowledged write is lost", "did not hold (not promised)", "<td>b</td><td>2</td><td>n1</td>"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the page lacks %q:\n%s", want, page)
		}
	}
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Fatalf("the page is not self-contained: it has %q", bad)
		}
	}
}

// Leaderless: a read that misses an acknowledged write breaks the promise
// only when W+R>N; a quorum read that misses a write still in flight,
// which an earlier read saw, breaks nothing (quorums promise only
// acknowledged writes).
func TestAnalyzeLeaderless(t *testing.T) {
	h := &History{Ops: []Op{
		{Process: 1, Kind: Write, Key: "k", Value: 1, Outcome: Ok, Start: 0, End: 10 * ms},
		{Process: 1, Kind: Write, Key: "k", Value: 2, Outcome: Ok, Start: 20 * ms, End: 30 * ms},
		{Process: 2, Kind: Read, Key: "k", Value: 1, Found: true, Outcome: Ok, Consistency: Quorum, Start: 40 * ms, End: 50 * ms},
	}, Final: map[string]int64{"k": 2}}
	for _, tc := range []struct {
		w, r   string
		passed bool
	}{{"2", "2", false}, {"1", "1", true}, {"3", "1", false}} {
		h.Setup = map[string]string{"mode": "leaderless", "n": "3", "w": tc.w, "r": tc.r}
		rep := Analyze(h, time.Second)
		if rep.Passed() != tc.passed || rep.Quorum == nil || len(rep.Quorum.Stale) != 1 {
			t.Fatalf("W=%s R=%s: passed %v, quorum %+v; want passed %v and the stale read found", tc.w, tc.r, rep.Passed(), rep.Quorum, tc.passed)
		}
		inflight := &History{Setup: h.Setup, Ops: []Op{
			{Process: 1, Kind: Write, Key: "k", Value: 1, Outcome: Ok, Start: 0, End: 10 * ms},
			{Process: 1, Kind: Write, Key: "k", Value: 2, Outcome: Ok, Start: 20 * ms, End: 100 * ms},
			{Process: 2, Kind: Read, Key: "k", Value: 2, Found: true, Outcome: Ok, Consistency: Quorum, Start: 30 * ms, End: 40 * ms},
			{Process: 3, Kind: Read, Key: "k", Value: 1, Found: true, Outcome: Ok, Consistency: Quorum, Start: 50 * ms, End: 60 * ms},
		}, Final: map[string]int64{"k": 2}}
		if r := Analyze(inflight, time.Second); !r.Passed() || len(r.Quorum.Stale) != 0 {
			t.Fatalf("W=%s R=%s: a read missing a write in flight was judged stale: %+v", tc.w, tc.r, r.Quorum)
		}
		// A read that got the old value and the newer one as siblings saw
		// the acknowledged write.
		sib := &History{Setup: h.Setup, Ops: append(h.Ops[:2:2],
			Op{Process: 2, Kind: Read, Key: "k", Value: 1, Others: []int64{2}, Siblings: 2, Found: true, Outcome: Ok, Consistency: Quorum, Start: 40 * ms, End: 50 * ms}),
			Final: h.Final}
		if r := Analyze(sib, time.Second); !r.Passed() || len(r.Quorum.Stale) != 0 {
			t.Fatalf("W=%s R=%s: a read with the newer sibling was judged stale: %+v", tc.w, tc.r, r.Quorum)
		}
		var b strings.Builder
		if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), "quorum reads: 1, missed an acknowledged write: 1") {
			t.Fatalf("text:\n%s", b.String())
		}
	}
}

// Single-leader: a follower that never caught up after the faults breaks
// the convergence promise.
func TestAnalyzeConvergenceSingleLeader(t *testing.T) {
	h := &History{Ops: []Op{ins(1, "a", 1, Ok)}, Final: map[string]int64{"a": 1},
		Replicas: map[string]map[string]int64{"n1": {"a": 1}, "n2": {"a": 1}, "n3": {}},
		Setup:    map[string]string{"mode": "single-leader", "sync": "FIRST 1 (*)"}}
	r := Analyze(h, time.Second)
	if r.Passed() || r.Converge == nil || r.Converge.Count != 1 {
		t.Fatalf("a follower missing a key passed: %+v", r.Verdicts)
	}
	h.Replicas["n3"]["a"] = 1
	if r := Analyze(h, time.Second); !r.Passed() {
		t.Fatalf("converged replicas failed: %+v", r.Verdicts)
	}
}
