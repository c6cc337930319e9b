package leaderless

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/crdt"
)

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want int
		err  string // a substring of the error; "" for success
	}{
		{"one", 5, 1, ""},
		{"ONE", 5, 1, ""},
		{"Quorum", 5, 3, ""},
		{"quorum", 4, 3, ""},
		{"quorum", 3, 2, ""},
		{"quorum", 2, 2, ""},
		{"quorum", 1, 1, ""},
		{"all", 5, 5, ""},
		{"all", 1, 1, ""},
		{"1", 5, 1, ""},
		{"3", 5, 3, ""},
		{"5", 5, 5, ""},
		{"03", 5, 3, ""},
		{"0", 5, 0, `quorum level 0 is out of range: want a number from 1 to 5`},
		{"6", 5, 0, `quorum level 6 is out of range: want a number from 1 to 5`},
		{"99999999999999999999999", 5, 0, "out of range"},
		{"two", 5, 0, `quorum level "two": want one, quorum, all or a number from 1 to 5`},
		{"", 5, 0, "empty quorum level: want one, quorum, all or a number from 1 to 5"},
		{"-1", 5, 0, `quorum level "-1": want`},
		{"+2", 5, 0, `quorum level "+2": want`},
		{" 2", 5, 0, `quorum level " 2": want`},
		{"2 ", 5, 0, `quorum level "2 ": want`},
		{"1.5", 5, 0, `quorum level "1.5": want`},
		{"one", 0, 0, "replication factor N=0 is less than 1"},
		{"1", -3, 0, "replication factor N=-3 is less than 1"},
	} {
		got, err := ParseLevel(tc.s, tc.n)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseLevel(%q, %d): %v", tc.s, tc.n, err)
		case tc.err != "" && err == nil:
			t.Errorf("ParseLevel(%q, %d) = %d, want an error containing %q", tc.s, tc.n, got, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("ParseLevel(%q, %d) error %q, want it to contain %q", tc.s, tc.n, err, tc.err)
		case got != tc.want:
			t.Errorf("ParseLevel(%q, %d) = %d, want %d", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestQuorumValidate(t *testing.T) {
	for _, tc := range []struct {
		q   Quorum
		err string // the whole message; "" for valid
	}{
		{Quorum{N: 3, W: 2, R: 2}, ""},
		{Quorum{N: 1, W: 1, R: 1}, ""},
		{Quorum{N: 5, W: 5, R: 1}, ""},
		{Quorum{N: 0, W: 1, R: 1}, "replication factor N=0: must be at least 1"},
		{Quorum{N: -2, W: 1, R: 1}, "replication factor N=-2: must be at least 1"},
		{Quorum{N: 3, W: 0, R: 2}, "write quorum W=0: must be from 1 to the replication factor N=3"},
		{Quorum{N: 3, W: 4, R: 2}, "write quorum W=4: must be from 1 to the replication factor N=3"},
		{Quorum{N: 3, W: 2, R: 0}, "read quorum R=0: must be from 1 to the replication factor N=3"},
		{Quorum{N: 3, W: 2, R: -1}, "read quorum R=-1: must be from 1 to the replication factor N=3"},
		{Quorum{N: 3, W: 2, R: 4}, "read quorum R=4: must be from 1 to the replication factor N=3"},
	} {
		err := tc.q.Validate()
		if got := fmt.Sprint(err); (err == nil) != (tc.err == "") || (err != nil && got != tc.err) {
			t.Errorf("%v.Validate() = %v, want %q", tc.q, err, tc.err)
		}
	}
}

func TestDefaultQuorum(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 7: 4} {
		q := DefaultQuorum(n)
		if q != (Quorum{N: n, W: want, R: want}) {
			t.Errorf("DefaultQuorum(%d) = %v, want W=R=%d", n, q, want)
		}
		if err := q.Validate(); err != nil {
			t.Errorf("DefaultQuorum(%d): %v", n, err)
		}
		if !q.Strong() {
			t.Errorf("DefaultQuorum(%d) = %v is not Strong; majorities always overlap", n, q)
		}
		if l, _ := ParseLevel("quorum", n); l != want {
			t.Errorf(`ParseLevel("quorum", %d) = %d, DefaultQuorum's W is %d`, n, l, want)
		}
	}
	if err := DefaultQuorum(0).Validate(); err == nil {
		t.Error("DefaultQuorum(0) is valid; a replication factor of 0 must not be")
	}
}

func TestQuorumStrong(t *testing.T) {
	for _, tc := range []struct {
		q    Quorum
		want bool
	}{
		{Quorum{N: 3, W: 1, R: 1}, false},
		{Quorum{N: 3, W: 2, R: 1}, false},
		{Quorum{N: 3, W: 2, R: 2}, true},
		{Quorum{N: 3, W: 3, R: 1}, true},
		{Quorum{N: 5, W: 2, R: 3}, false},
		{Quorum{N: 5, W: 3, R: 3}, true},
		{Quorum{N: 1, W: 1, R: 1}, true},
	} {
		if got := tc.q.Strong(); got != tc.want {
			t.Errorf("%v.Strong() = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := (Quorum{N: 3, W: 2, R: 1}).String(); got != "N=3 W=2 R=1" {
		t.Errorf("Quorum.String() = %q", got)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Pending: "pending", Succeeded: "succeeded", Failed: "failed", 7: "Outcome(7)", -1: "Outcome(-1)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
	var zero Outcome
	if zero != Pending {
		t.Error("the zero Outcome is not Pending")
	}
}

func TestNoQuorumError(t *testing.T) {
	for _, tc := range []struct {
		e    NoQuorumError
		want string
	}{
		{NoQuorumError{Stored: 1, Needed: 2, N: 3, Op: "write"},
			"NOQUORUM write stored on 1 of 3 replicas, 2 needed; it is not rolled back and may still appear"},
		{NoQuorumError{Stored: 0, Needed: 3, N: 3},
			"NOQUORUM write stored on 0 of 3 replicas, 3 needed; it is not rolled back and may still appear"},
		{NoQuorumError{Stored: 0, Needed: 1, N: 1, Op: "delete"},
			"NOQUORUM delete stored on 0 of 1 replica, 1 needed; it is not rolled back and may still appear"},
		{NoQuorumError{Stored: 1, Needed: 2, N: 3, Op: "read"},
			"NOQUORUM read answered by 1 of 3 replicas, 2 needed"},
		{NoQuorumError{Stored: 1, Needed: 2, N: 3, Op: "write", Causes: map[string]string{"n3": "i/o timeout", "n2": "disk\r\nfull"}},
			"NOQUORUM write stored on 1 of 3 replicas, 2 needed; it is not rolled back and may still appear (n2: disk  full; n3: i/o timeout)"},
		{NoQuorumError{Stored: 0, Needed: 1, N: 2, Op: "read", Causes: map[string]string{"n1": "refused"}},
			"NOQUORUM read answered by 0 of 2 replicas, 1 needed (n1: refused)"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() =\n  %q\nwant\n  %q", got, tc.want)
		}
	}
	// The API layer finds it through wrapping, as it finds NotLeaderError.
	var nq *NoQuorumError
	if err := fmt.Errorf("set k: %w", &NoQuorumError{Stored: 1, Needed: 2, N: 3}); !errors.As(err, &nq) || nq.Stored != 1 {
		t.Errorf("errors.As did not find the NoQuorumError in %v", err)
	}
}

// tallyUnderTest lets one exhaustive test drive both tallies: ok is Ack or
// Reply, count is Stored or Replied.
type tallyUnderTest interface {
	Outcome() Outcome
	Err() error
	ok(node string)
	fail(node string, err error)
	count() int
}

type tallyWrite struct{ *WriteTally }

func (w tallyWrite) ok(node string)              { w.Ack(node) }
func (w tallyWrite) fail(node string, err error) { w.Fail(node, err) }
func (w tallyWrite) count() int                  { return w.Stored() }

type tallyRead struct{ *ReadTally }

func (r tallyRead) ok(node string)              { r.Reply(node, tallyBlind(node)) }
func (r tallyRead) fail(node string, err error) { r.Fail(node, err) }
func (r tallyRead) count() int                  { return r.Replied() }

// tallyBlind is a replica's state after one blind write it coordinated:
// the states of different nodes are concurrent siblings of each other.
func tallyBlind(node string) crdt.Siblings {
	s, err := crdt.Siblings{}.Update(crdt.Vector{}, node, []byte("v-"+node), crdt.Meta{Time: crdt.Timestamp{WallMs: int64(len(node))}})
	if err != nil {
		panic(err)
	}
	return s
}

// tallySpec is the outcome the Contract asks for, from counts alone, for a
// sequence in which every target answers once: it is monotonic there, so
// it needs no memory of earlier steps.
func tallySpec(need, targets, ok, failed int) Outcome {
	switch {
	case ok >= need:
		return Succeeded
	case ok+(targets-ok-failed) < need:
		return Failed
	}
	return Pending
}

// tallyPermutations calls f with every order of 0..n-1.
func tallyPermutations(n int, f func([]int)) {
	p := make([]int, 0, n)
	used := make([]bool, n)
	var rec func()
	rec = func() {
		if len(p) == n {
			f(p)
			return
		}
		for i := range n {
			if !used[i] {
				used[i] = true
				p = append(p, i)
				rec()
				p = p[:len(p)-1]
				used[i] = false
			}
		}
	}
	rec()
}

// tallyExhaustive checks a tally for every N in 1..5, every quorum in
// 1..N, every number of targets in 0..N, every success/failure pattern
// over the targets and every order of their answers, after every answer;
// then every failed target answers well after all (a late ack or reply),
// which is counted but changes neither the outcome nor its error.
func tallyExhaustive(t *testing.T, op string, mk func(q Quorum, targets int) tallyUnderTest, need func(Quorum) int) {
	runs := 0
	for n := 1; n <= 5; n++ {
		for k := 1; k <= n; k++ {
			q := Quorum{N: n, W: k, R: k}
			for targets := 0; targets <= n; targets++ {
				nodes := make([]string, targets)
				for i := range nodes {
					nodes[i] = fmt.Sprintf("n%d", i+1)
				}
				for mask := range 1 << targets {
					tallyPermutations(targets, func(order []int) {
						runs++
						tallyRun(t, op, q, need(q), targets, nodes, mask, order, mk)
					})
				}
			}
		}
	}
	t.Logf("%d sequences", runs)
}

func tallyRun(t *testing.T, op string, q Quorum, need, targets int, nodes []string, mask int, order []int, mk func(Quorum, int) tallyUnderTest) {
	t.Helper()
	tl := mk(q, targets)
	var script []string // for failure messages
	ok, failed := 0, 0
	causes := map[string]string{}
	var decidedErr string
	check := func() bool {
		want := tallySpec(need, targets, ok, failed)
		got := tl.Outcome()
		where := fmt.Sprintf("%v targets=%d after [%s]", q, targets, strings.Join(script, " "))
		if got != want {
			t.Errorf("%s: outcome %v, want %v", where, got, want)
			return false
		}
		if tl.count() != ok {
			t.Errorf("%s: count %d, want %d", where, tl.count(), ok)
			return false
		}
		err := tl.Err()
		if (err != nil) != (got == Failed) {
			t.Errorf("%s: Err() = %v with outcome %v", where, err, got)
			return false
		}
		if got != Failed || decidedErr != "" {
			return true
		}
		// The step that decided Failed: the error reports that moment.
		var nq *NoQuorumError
		if !errors.As(err, &nq) {
			t.Errorf("%s: Err() = %T %v, want a *NoQuorumError", where, err, err)
			return false
		}
		if nq.Stored != ok || nq.Needed != need || nq.N != q.N || nq.Op != op || !maps.Equal(nq.Causes, causes) {
			t.Errorf("%s: Err() = %+v, want Stored=%d Needed=%d N=%d Op=%s Causes=%v", where, *nq, ok, need, q.N, op, causes)
			return false
		}
		decidedErr = err.Error()
		return true
	}
	if !check() {
		return
	}
	for _, i := range order {
		node := nodes[i]
		if mask&(1<<i) != 0 {
			tl.ok(node)
			ok++
			script = append(script, "+"+node)
		} else {
			cause := "down " + node
			tl.fail(node, errors.New(cause))
			causes[node] = cause
			failed++
			script = append(script, "-"+node)
		}
		if !check() {
			return
		}
	}
	final := tl.Outcome()
	if final == Pending {
		t.Errorf("%v targets=%d after [%s]: every target answered and the outcome is still pending", q, targets, strings.Join(script, " "))
		return
	}
	for _, i := range order {
		if mask&(1<<i) != 0 {
			continue
		}
		tl.ok(nodes[i])
		ok++
		if got := tl.Outcome(); got != final {
			t.Errorf("%v targets=%d after [%s] and late +%s: outcome %v, was %v", q, targets, strings.Join(script, " "), nodes[i], got, final)
			return
		}
		if tl.count() != ok {
			t.Errorf("%v targets=%d after [%s] and late +%s: count %d, want %d (a late success is still counted)", q, targets, strings.Join(script, " "), nodes[i], tl.count(), ok)
			return
		}
		if final == Failed && tl.Err().Error() != decidedErr {
			t.Errorf("%v targets=%d: Err changed after a late +%s: %q, was %q", q, targets, nodes[i], tl.Err(), decidedErr)
			return
		}
	}
}

func TestWriteTallyExhaustive(t *testing.T) {
	tallyExhaustive(t, "write",
		func(q Quorum, targets int) tallyUnderTest { return tallyWrite{NewWriteTally(q, targets)} },
		func(q Quorum) int { return q.W })
}

func TestReadTallyExhaustive(t *testing.T) {
	tallyExhaustive(t, "read",
		func(q Quorum, targets int) tallyUnderTest { return tallyRead{NewReadTally(q, targets)} },
		func(q Quorum) int { return q.R })
}

// TestWriteTallyTranscripts: scripts of answers ("+n1" an ack, "-n2" a
// failure with cause "timeout") and the outcome after each; the first
// entry of outcomes is the outcome before any answer.
func TestWriteTallyTranscripts(t *testing.T) {
	const lateText = "NOQUORUM write stored on 0 of 3 replicas, 2 needed; it is not rolled back and may still appear (n1: timeout; n2: timeout)"
	for _, tc := range []struct {
		name     string
		q        Quorum
		targets  int
		script   string
		outcomes string
		stored   int
		err      string
	}{
		{"a majority acks", Quorum{3, 2, 2}, 3, "+n1 +n2 +n3", "pending pending succeeded succeeded", 3, ""},
		{"a failure after the first ack still leaves W reachable", Quorum{3, 2, 2}, 3, "+n1 -n2 +n3", "pending pending pending succeeded", 2, ""},
		{"two failures of three make W=2 unreachable", Quorum{3, 2, 2}, 3, "-n1 -n2 +n3", "pending pending failed failed", 1, lateText},
		{"a timed-out replica that acks while pending counts", Quorum{3, 2, 2}, 3, "+n1 -n2 +n2", "pending pending pending succeeded", 2, ""},
		{"a late ack after failed is stored but does not flip", Quorum{3, 2, 2}, 3, "-n1 -n2 +n1 +n2", "pending pending failed failed failed", 2, lateText},
		{"a rescued node's failure no longer counts", Quorum{5, 3, 3}, 5, "-n1 +n1 -n2 -n3 +n4 +n5",
			"pending pending pending pending pending pending succeeded", 3, ""},
		{"a rescued node is not among the causes", Quorum{5, 3, 3}, 5, "-n1 +n1 -n2 -n3 -n4", "pending pending pending pending pending failed", 1,
			"NOQUORUM write stored on 1 of 5 replicas, 3 needed; it is not rolled back and may still appear (n2: timeout; n3: timeout; n4: timeout)"},
		{"a failure after an ack is ignored", Quorum{3, 3, 1}, 3, "+n1 -n1 +n2 +n3", "pending pending pending pending succeeded", 3, ""},
		{"a duplicate ack counts once", Quorum{3, 2, 2}, 3, "+n1 +n1 +n2", "pending pending pending succeeded", 2, ""},
		{"a duplicate failure counts once", Quorum{3, 2, 2}, 3, "-n1 -n1 +n2 +n3", "pending pending pending pending succeeded", 2, ""},
		{"W=1 succeeds on the first ack", Quorum{3, 1, 3}, 3, "-n1 +n2", "pending pending succeeded", 1, ""},
		{"W=N fails on the first failure", Quorum{3, 3, 1}, 3, "+n1 -n2 +n3", "pending pending failed failed", 2,
			"NOQUORUM write stored on 1 of 3 replicas, 3 needed; it is not rolled back and may still appear (n2: timeout)"},
		{"a stand-in's ack counts like a replica's", Quorum{3, 2, 2}, 3, "-n2 +n1 +h4", "pending pending pending succeeded", 2, ""},
		{"fewer targets than W fail at once", Quorum{3, 3, 1}, 2, "+n1 +n2", "failed failed failed", 2,
			"NOQUORUM write stored on 0 of 3 replicas, 3 needed; it is not rolled back and may still appear"},
		{"a smaller ring can still reach W", Quorum{3, 2, 2}, 2, "+n1 +n2", "pending pending succeeded", 2, ""},
		{"no targets", Quorum{3, 1, 1}, 0, "+n1", "failed failed", 1,
			"NOQUORUM write stored on 0 of 3 replicas, 1 needed; it is not rolled back and may still appear"},
		{"negative targets are none", Quorum{3, 1, 1}, -4, "", "failed", 0,
			"NOQUORUM write stored on 0 of 3 replicas, 1 needed; it is not rolled back and may still appear"},
		{"W=0 is refused, not acknowledged", Quorum{3, 0, 2}, 3, "+n1 +n2 +n3", "failed failed failed failed", 3,
			"write quorum W=0: must be from 1 to the replication factor N=3"},
		{"W above N is refused", Quorum{3, 4, 2}, 3, "+n1", "failed failed", 1,
			"write quorum W=4: must be from 1 to the replication factor N=3"},
		{"an invalid R fails a write too: the quorum is one setting", Quorum{3, 2, 0}, 3, "", "failed", 0,
			"read quorum R=0: must be from 1 to the replication factor N=3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := NewWriteTally(tc.q, tc.targets)
			got := []string{tl.Outcome().String()}
			for _, ev := range strings.Fields(tc.script) {
				if ev[0] == '+' {
					tl.Ack(ev[1:])
				} else {
					tl.Fail(ev[1:], errors.New("timeout"))
				}
				got = append(got, tl.Outcome().String())
			}
			if g := strings.Join(got, " "); g != tc.outcomes {
				t.Errorf("outcomes %q, want %q", g, tc.outcomes)
			}
			if tl.Stored() != tc.stored {
				t.Errorf("Stored() = %d, want %d", tl.Stored(), tc.stored)
			}
			if g := fmt.Sprint(tl.Err()); (tl.Err() == nil) != (tc.err == "") || (tl.Err() != nil && g != tc.err) {
				t.Errorf("Err() = %v, want %q", tl.Err(), tc.err)
			}
		})
	}
	// A nil cause is still a cause.
	tl := NewWriteTally(Quorum{1, 1, 1}, 1)
	tl.Fail("n1", nil)
	if got := fmt.Sprint(tl.Err()); !strings.HasSuffix(got, "(n1: failed)") {
		t.Errorf("Err() after Fail(n1, nil) = %q", got)
	}
	// A node's first failure is the one that counted, so its cause stands.
	tl = NewWriteTally(Quorum{3, 2, 2}, 3)
	tl.Fail("n1", errors.New("connection refused"))
	tl.Fail("n1", errors.New("i/o timeout"))
	tl.Fail("n2", errors.New("disk full"))
	if got := fmt.Sprint(tl.Err()); !strings.HasSuffix(got, "(n1: connection refused; n2: disk full)") {
		t.Errorf("Err() = %q, want n1's first cause", got)
	}
}

// TestWriteTallyModel drives a write tally with random answers, repeats
// and late acks included, against a model that records each node's state
// and freezes the first decided outcome.
func TestWriteTallyModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 7).Draw(t, "N")
		q := Quorum{N: n, W: rapid.IntRange(1, n).Draw(t, "W"), R: 1}
		targets := rapid.IntRange(0, n+2).Draw(t, "targets")
		tl := NewWriteTally(q, targets)
		acked := map[string]bool{}
		causes := map[string]string{} // the failed nodes, by first cause
		var decided Outcome
		var decidedErr string
		decide := func() {
			if decided != Pending {
				return
			}
			decided = tallySpec(q.W, targets, len(acked), len(causes))
			if decided == Failed {
				decidedErr = (&NoQuorumError{Stored: len(acked), Needed: q.W, N: n, Op: "write", Causes: maps.Clone(causes)}).Error()
			}
		}
		decide()
		steps := 0
		if targets > 0 {
			steps = rapid.IntRange(0, 3*targets).Draw(t, "steps")
		}
		for step := range steps {
			node := fmt.Sprintf("n%d", rapid.IntRange(1, targets).Draw(t, "node"))
			if rapid.Bool().Draw(t, "ack") {
				tl.Ack(node)
				acked[node] = true
				delete(causes, node)
			} else {
				tl.Fail(node, fmt.Errorf("cause %d", step))
				if _, dup := causes[node]; !dup && !acked[node] {
					causes[node] = fmt.Sprintf("cause %d", step)
				}
			}
			decide()
			if tl.Outcome() != decided {
				t.Fatalf("step %d: outcome %v, model %v", step, tl.Outcome(), decided)
			}
			if tl.Stored() != len(acked) {
				t.Fatalf("step %d: Stored %d, model %d", step, tl.Stored(), len(acked))
			}
			if got := fmt.Sprint(tl.Err()); (decided == Failed) != (tl.Err() != nil) || (decided == Failed && got != decidedErr) {
				t.Fatalf("step %d: Err %q, model %q", step, got, decidedErr)
			}
			if len(acked)+len(causes) == targets && decided == Pending {
				t.Fatalf("step %d: every target answered and the outcome is pending", step)
			}
		}
	})
}

func TestReadTallyMergeAndStale(t *testing.T) {
	meta := func(ms int64, del bool) crdt.Meta { return crdt.Meta{Time: crdt.Timestamp{WallMs: ms}, Deleted: del} }
	update := func(s crdt.Siblings, ctx crdt.Vector, node, v string, m crdt.Meta) crdt.Siblings {
		out, err := s.Update(ctx, node, []byte(v), m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var none crdt.Siblings
	a := update(none, crdt.Vector{}, "n1", "a", meta(1, false)) // written through n1
	b := update(none, crdt.Vector{}, "n3", "b", meta(2, false)) // a concurrent blind write through n3
	c := update(a, a.Context(), "n1", "c", meta(3, false))      // a client read a, then wrote c
	del := update(a, a.Context(), "n2", "", meta(4, true))      // a client read a, then deleted the key through n2
	ab := a.Merge(b)
	abc := ab.Merge(c)

	type reply struct {
		node string
		s    crdt.Siblings // ignored when err is set
		err  bool
	}
	for _, tc := range []struct {
		name     string
		r        int
		replies  []reply
		outcomes string // after each reply
		values   []string
		winner   string
		stale    []string
	}{
		{"all agree", 2, []reply{{"n1", a, false}, {"n2", a, false}, {"n3", a, false}},
			"pending succeeded succeeded", []string{"a"}, "a", nil},
		{"one replica behind a newer write", 2, []reply{{"n1", c, false}, {"n2", a, false}, {"n3", c, false}},
			"pending succeeded succeeded", []string{"c"}, "c", []string{"n2"}},
		{"a replica that has nothing is stale", 2, []reply{{"n1", a, false}, {"n2", none, false}, {"n3", a, false}},
			"pending succeeded succeeded", []string{"a"}, "a", []string{"n2"}},
		{"concurrent writes on different nodes become siblings", 3, []reply{{"n1", a, false}, {"n2", a, false}, {"n3", b, false}},
			"pending pending succeeded", []string{"a", "b"}, "b", []string{"n1", "n2", "n3"}},
		{"a replica holding both siblings is not stale", 2, []reply{{"n1", a, false}, {"n2", ab, false}, {"n3", b, false}},
			"pending succeeded succeeded", []string{"a", "b"}, "b", []string{"n1", "n3"}},
		{"a write that saw a supersedes it but not the concurrent b", 3, []reply{{"n1", c, false}, {"n2", ab, false}, {"n3", abc, false}},
			"pending pending succeeded", []string{"c", "b"}, "c", []string{"n1", "n2"}},
		{"a tombstone supersedes the value its writer saw", 2, []reply{{"n1", a, false}, {"n2", del, false}},
			"pending succeeded", []string{"(deleted)"}, "(deleted)", []string{"n1"}},
		{"a failed replica is not stale: what it holds is unknown", 2, []reply{{"n1", c, false}, {"n2", none, true}, {"n3", a, false}},
			"pending pending succeeded", []string{"c"}, "c", []string{"n3"}},
		{"nothing anywhere: nobody is stale", 3, []reply{{"n1", none, false}, {"n2", none, false}, {"n3", none, false}},
			"pending pending succeeded", nil, "", nil},
		{"too many failures", 2, []reply{{"n1", a, false}, {"n2", none, true}, {"n3", none, true}},
			"pending pending failed", []string{"a"}, "a", nil},
		{"a late reply after the answer is merged and judged", 1, []reply{{"n1", a, false}, {"n2", c, false}},
			"succeeded succeeded", []string{"c"}, "c", []string{"n1"}},
		{"a late reply after failure is merged too", 3, []reply{{"n1", none, true}, {"n2", a, false}, {"n1", c, false}},
			"failed failed failed", []string{"c"}, "c", []string{"n2"}},
		{"a node's first reply stands", 1, []reply{{"n1", a, false}, {"n1", c, false}},
			"succeeded succeeded", []string{"a"}, "a", nil},
		{"a failure after a reply is ignored", 2, []reply{{"n1", a, false}, {"n1", none, true}, {"n2", a, false}},
			"pending pending succeeded", []string{"a"}, "a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := NewReadTally(Quorum{N: 3, W: 2, R: tc.r}, 3)
			var want crdt.Siblings
			var got []string
			first := map[string]bool{}
			for _, r := range tc.replies {
				if r.err {
					tl.Fail(r.node, errors.New("unreachable"))
				} else {
					tl.Reply(r.node, r.s)
					if !first[r.node] {
						want = want.Merge(r.s)
					}
					first[r.node] = true
				}
				got = append(got, tl.Outcome().String())
			}
			if g := strings.Join(got, " "); g != tc.outcomes {
				t.Errorf("outcomes %q, want %q", g, tc.outcomes)
			}
			m := tl.Merged()
			if !m.Equal(want) {
				t.Errorf("Merged() = %v, want the merge of the replies %v", m, want)
			}
			var values []string
			for _, s := range m.Values() {
				values = append(values, tallyShow(s))
			}
			if !slices.Equal(values, tc.values) {
				t.Errorf("Merged values %q, want %q", values, tc.values)
			}
			w, ok := m.Winner()
			if g := tallyShow(w); ok != (tc.winner != "") || (ok && g != tc.winner) {
				t.Errorf("winner %q, want %q", g, tc.winner)
			}
			if g := tl.Stale(); !slices.Equal(g, tc.stale) {
				t.Errorf("Stale() = %q, want %q", g, tc.stale)
			}
		})
	}
	// The read's NOQUORUM error.
	tl := NewReadTally(Quorum{N: 3, W: 2, R: 2}, 3)
	tl.Reply("n1", a)
	tl.Fail("n2", errors.New("i/o timeout"))
	tl.Fail("n3", errors.New("connection refused"))
	want := "NOQUORUM read answered by 1 of 3 replicas, 2 needed (n2: i/o timeout; n3: connection refused)"
	if got := fmt.Sprint(tl.Err()); got != want {
		t.Errorf("Err() = %q, want %q", got, want)
	}
	// An invalid quorum answers no read.
	if tl := NewReadTally(Quorum{N: 3, W: 2, R: 5}, 3); tl.Outcome() != Failed || tl.Err() == nil {
		t.Errorf("R=5 of N=3: outcome %v, Err %v", tl.Outcome(), tl.Err())
	}
}

func tallyShow(s crdt.Sibling) string {
	if s.Deleted {
		return "(deleted)"
	}
	return string(s.Value)
}

// TestReadTallyModel builds random replica histories from the only
// operations replicas have (a write coordinated by one of them with a
// context some client read, and a sync of one replica's state into
// another), reads them with random failures in a random order, and checks
// Merged against a merge in a different order and Stale against context
// coverage, an independent notion of "lacks something"; then repairs the
// stale replicas with Merged and checks that a second read finds none.
func TestReadTallyModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := rapid.IntRange(1, 5).Draw(t, "replicas")
		nodes := make([]string, k)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("n%d", i+1)
		}
		states := make([]crdt.Siblings, k)
		for step := range rapid.IntRange(0, 25).Draw(t, "steps") {
			i := rapid.IntRange(0, k-1).Draw(t, "at")
			j := rapid.IntRange(-1, k-1).Draw(t, "from") // -1: a blind write
			if rapid.Bool().Draw(t, "write") {
				var ctx crdt.Vector
				if j >= 0 {
					ctx = states[j].Context()
				}
				m := crdt.Meta{Time: crdt.Timestamp{WallMs: int64(step)}, Deleted: rapid.IntRange(0, 4).Draw(t, "delete") == 0}
				s, err := states[i].Update(ctx, nodes[i], []byte(fmt.Sprintf("v%d", step)), m)
				if err != nil {
					t.Fatal(err)
				}
				states[i] = s
			} else if j >= 0 {
				states[i] = states[i].Merge(states[j])
			}
		}
		r := rapid.IntRange(1, k).Draw(t, "R")
		q := Quorum{N: k, W: 1, R: r}
		indices := make([]int, k)
		for i := range indices {
			indices[i] = i
		}
		order := rapid.Permutation(indices).Draw(t, "order")
		down := make([]bool, k)
		for i := range down {
			down[i] = rapid.IntRange(0, 3).Draw(t, "down") == 0
		}
		tl := NewReadTally(q, k)
		replies := 0
		for _, i := range order {
			if down[i] {
				tl.Fail(nodes[i], errors.New("down"))
			} else {
				tl.Reply(nodes[i], states[i])
				replies++
			}
		}
		if want := tallySpec(r, k, replies, k-replies); tl.Outcome() != want {
			t.Fatalf("outcome %v with %d of %d replies, R=%d; want %v", tl.Outcome(), replies, k, r, want)
		}
		var want crdt.Siblings
		for i := range k { // node order, not arrival order
			if !down[i] {
				want = want.Merge(states[i])
			}
		}
		if !tl.Merged().Equal(want) {
			t.Fatalf("Merged() = %v, want %v", tl.Merged(), want)
		}
		var wantStale []string
		for i := range k {
			if down[i] {
				continue
			}
			if !want.Context().Covers(states[i].Context()) {
				t.Fatalf("the merge %v does not cover reply %s %v", want, nodes[i], states[i])
			}
			if !states[i].Context().Covers(want.Context()) {
				wantStale = append(wantStale, nodes[i])
			}
		}
		if got := tl.Stale(); !slices.Equal(got, wantStale) {
			t.Fatalf("Stale() = %q, want %q (replies %v, merged %v)", got, wantStale, states, want)
		}
		// Read repair: each stale replica merges what the read returned.
		for i := range k {
			if slices.Contains(wantStale, nodes[i]) {
				states[i] = states[i].Merge(tl.Merged())
			}
		}
		again := NewReadTally(q, k)
		for i := range k {
			if !down[i] {
				again.Reply(nodes[i], states[i])
			}
		}
		if s := again.Stale(); len(s) > 0 || !again.Merged().Equal(want) {
			t.Fatalf("after read repair: Stale() = %q, Merged() = %v, want none stale and %v", s, again.Merged(), want)
		}
	})
}

// A write while n4 joins (next n1,n2,n4; old n1,n2,n3) with W=2 succeeds
// only when both lists hold two acks, and fails as soon as either cannot.
func TestJointWriteTally(t *testing.T) {
	q := Quorum{N: 3, W: 2, R: 2}
	next, old := []string{"n1", "n2", "n4"}, []string{"n1", "n2", "n3"}
	boom := errors.New("down")
	for _, tc := range []struct {
		name   string
		acks   []string
		fails  []string
		want   Outcome
		failed bool // Err is a NoQuorumError
	}{
		{name: "shared nodes count for both", acks: []string{"n1", "n2"}, want: Succeeded},
		{name: "old list only", acks: []string{"n1", "n3"}, want: Pending},
		{name: "new list only", acks: []string{"n1", "n4"}, want: Pending},
		{name: "one from each besides a shared one", acks: []string{"n1", "n3", "n4"}, want: Succeeded},
		{name: "the new list cannot reach W", acks: []string{"n3"}, fails: []string{"n1", "n4"}, want: Failed, failed: true},
		{name: "the old list cannot reach W", acks: []string{"n4", "n2"}, fails: []string{"n1", "n3"}, want: Failed, failed: true},
		{name: "a shared failure hurts both but neither fails yet", fails: []string{"n1"}, want: Pending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := NewJointWriteTally(q, next, old)
			if got := j.Targets(); !slices.Equal(got, []string{"n1", "n2", "n4", "n3"}) {
				t.Fatalf("targets %v", got)
			}
			for _, id := range tc.fails {
				j.Fail(id, boom)
			}
			for _, id := range tc.acks {
				j.Ack(id)
			}
			if got := j.Outcome(); got != tc.want {
				t.Fatalf("outcome %v, want %v", got, tc.want)
			}
			var nq *NoQuorumError
			if got := errors.As(j.Err(), &nq); got != tc.failed {
				t.Fatalf("err %v", j.Err())
			}
		})
	}
}
