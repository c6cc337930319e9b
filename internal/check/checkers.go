package check

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// LostResult is what became of acknowledged inserts.
type LostResult struct {
	Acked int  `json:"acked"` // inserts acknowledged
	Lost  []Op `json:"lost"`  // acknowledged, yet absent (or another value) at the end
	// Unacked is how many inserts of unknown outcome are present at the
	// end: writes the client cannot count on, which survived anyway.
	Unacked int `json:"unknown_present"`
	// InRollback, parallel to Lost, names the rollback file that kept
	// each lost write ("" when none did).
	InRollback []string `json:"in_rollback,omitempty"`
}

// Lost finds acknowledged inserts that the final reads do not hold.
func Lost(h *History) LostResult {
	var r LostResult
	for _, op := range h.Ops {
		if op.Kind != Insert {
			continue
		}
		v, ok := h.Final[op.Key]
		switch op.Outcome {
		case Ok:
			r.Acked++
			if !ok || v != op.Value {
				r.Lost = append(r.Lost, op)
				r.InRollback = append(r.InRollback, rolledBackIn(h, op))
			}
		case Unknown:
			if ok && v == op.Value {
				r.Unacked++
			}
		}
	}
	return r
}

// rolledBackIn names the node and rollback file that kept op's write.
func rolledBackIn(h *History, op Op) string {
	for _, rb := range h.RolledBack {
		if rb.Key == op.Key && rb.Value == op.Value {
			return rb.Node + ":" + rb.File
		}
	}
	return ""
}

// StaleRead is a read that certainly broke linearizability: it returned
// Read's value although Newer, another write of the key begun after the
// value's write ended, was acknowledged before Read began (or an earlier
// read, Seen, had already returned Newer's value).
type StaleRead struct {
	Read  Op `json:"read"`
	Wrote Op `json:"wrote"` // the write whose value the read returned (Found)
	Newer Op `json:"newer"`
	// Seen, when set, is an earlier read that returned Newer's value
	// (Newer may then be unacknowledged): the read went back in time.
	Seen *Op `json:"seen,omitempty"`
}

// LinResult is the linearizability check of one history.
type LinResult struct {
	// Verdict is "linearizable", "not linearizable" or "unknown" (the
	// search timed out without finding a certainly stale read).
	Verdict string      `json:"verdict"`
	Ops     int         `json:"ops"`
	Pending int         `json:"pending"` // writes of unknown outcome
	Stale   []StaleRead `json:"stale,omitempty"`
}

type regInput struct {
	write bool
	value int64
}

type regOutput struct {
	found bool
	value int64
}

// registerModel: one key's register; every value is unique.
var registerModel = porcupine.Model{
	Init: func() any { return regOutput{} },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(regOutput), input.(regInput)
		if in.write {
			return true, regOutput{found: true, value: in.value}
		}
		return output.(regOutput) == st, st
	},
	Equal: func(a, b any) bool { return a.(regOutput) == b.(regOutput) },
}

// Linearizability checks the writes and inserts and the linearizable reads
// of h against a register per key (porcupine), within timeout; failed
// operations are left out and writes of unknown outcome may take effect
// any time after they began.
func Linearizability(h *History, timeout time.Duration) LinResult {
	byKey := map[string][]porcupine.Operation{}
	res := LinResult{}
	for _, op := range h.Ops {
		if op.Outcome == Fail {
			continue
		}
		var po porcupine.Operation
		switch {
		case op.Kind == Write || op.Kind == Insert:
			po = porcupine.Operation{ClientId: op.Process, Input: regInput{write: true, value: op.Value}, Output: regOutput{},
				Call: int64(op.Start), Return: int64(op.End)}
			if op.Outcome == Unknown {
				po.Return = math.MaxInt64
				res.Pending++
			}
		case op.Kind == Read && op.Consistency == Linearizable && op.Outcome == Ok:
			po = porcupine.Operation{ClientId: op.Process, Input: regInput{}, Output: regOutput{found: op.Found, value: op.Value},
				Call: int64(op.Start), Return: int64(op.End)}
		default:
			continue
		}
		byKey[op.Key] = append(byKey[op.Key], po)
		res.Ops++
	}
	res.Stale = staleReads(h)
	verdict := porcupine.Ok
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	deadline := time.Now().Add(timeout)
	for _, k := range keys {
		left := time.Until(deadline)
		if left <= 0 {
			verdict = porcupine.Unknown
			break
		}
		switch porcupine.CheckOperationsTimeout(registerModel, byKey[k], left) {
		case porcupine.Illegal:
			verdict = porcupine.Illegal
		case porcupine.Unknown:
			if verdict == porcupine.Ok {
				verdict = porcupine.Unknown
			}
		}
		if verdict == porcupine.Illegal {
			break
		}
	}
	switch {
	case verdict == porcupine.Illegal || len(res.Stale) > 0:
		res.Verdict = "not linearizable"
	case verdict == porcupine.Unknown:
		res.Verdict = "unknown"
	default:
		res.Verdict = "linearizable"
	}
	return res
}

// staleReads finds linearizable reads that certainly returned an
// overwritten value: a direct search that explains a porcupine failure
// and still decides when porcupine times out.
func staleReads(h *History) []StaleRead { return staleReadsOf(h, Linearizable) }

// QuorumResult is the check of leaderless quorum reads.
type QuorumResult struct {
	Reads int         `json:"reads"`
	Stale []StaleRead `json:"stale,omitempty"`
}

// QuorumReads finds leaderless reads that certainly missed an
// acknowledged write: the value they returned was overwritten by a write
// begun after it was acknowledged and itself acknowledged before the
// read began (or they found nothing after an acknowledged write). With
// W+R>N there must be none; with fewer, how many there are is the price
// of the faster quorum.
func QuorumReads(h *History) QuorumResult {
	res := QuorumResult{Stale: staleReadsOf(h, Quorum)}
	for _, op := range h.Ops {
		if op.Kind == Read && op.Consistency == Quorum && op.Outcome == Ok {
			res.Reads++
		}
	}
	return res
}

func staleReadsOf(h *History, consistency string) []StaleRead {
	type wkey struct {
		key   string
		value int64
	}
	writeOf := map[wkey]Op{}
	// Per key, the acknowledged writes by end, with the running maximum of
	// their starts: "some write acknowledged before t began after x" is
	// then one binary search.
	type ackd struct {
		ops      []Op
		maxStart []int // index into ops of the latest start among ops[:i+1]
	}
	acked := map[string]*ackd{}
	for _, op := range h.Ops {
		if (op.Kind == Write || op.Kind == Insert) && op.Outcome != Fail {
			writeOf[wkey{op.Key, op.Value}] = op
			if op.Outcome == Ok {
				a := acked[op.Key]
				if a == nil {
					a = &ackd{}
					acked[op.Key] = a
				}
				a.ops = append(a.ops, op)
			}
		}
	}
	for _, a := range acked {
		slices.SortFunc(a.ops, func(x, y Op) int { return int(x.End - y.End) })
		a.maxStart = make([]int, len(a.ops))
		for i := range a.ops {
			a.maxStart[i] = i
			if i > 0 && a.ops[a.maxStart[i-1]].Start > a.ops[i].Start {
				a.maxStart[i] = a.maxStart[i-1]
			}
		}
	}
	// latestBefore returns the acknowledged write of key that ended before
	// t and began last, if any.
	latestBefore := func(key string, t time.Duration) (Op, bool) {
		a := acked[key]
		if a == nil {
			return Op{}, false
		}
		n := sort.Search(len(a.ops), func(i int) bool { return a.ops[i].End >= t })
		if n == 0 {
			return Op{}, false
		}
		return a.ops[a.maxStart[n-1]], true
	}
	var reads []Op
	for _, r := range h.Ops {
		if r.Kind == Read && r.Consistency == consistency && r.Outcome == Ok {
			reads = append(reads, r)
		}
	}
	var out []StaleRead
	stale := map[int]bool{}
	for i, r := range reads {
		w2, ok := latestBefore(r.Key, r.Start)
		if !ok {
			continue
		}
		if !r.Found {
			// Nothing, although a write was acknowledged before the read.
			out = append(out, StaleRead{Read: r, Newer: w2})
			stale[i] = true
			continue
		}
		// Stale when every value the read got (siblings included) was
		// overwritten by w2 before the read began. A write of unknown
		// outcome never ended: it may take effect any time after it
		// began (a request delivered late, after its client gave up), so
		// its value is never certainly overwritten.
		overwritten := func(v int64) bool {
			w, ok := writeOf[wkey{r.Key, v}]
			return ok && w.Outcome == Ok && w.Value != w2.Value && w2.Start > w.End
		}
		w := writeOf[wkey{r.Key, r.Value}]
		isStale := overwritten(r.Value)
		for _, v := range r.Others {
			isStale = isStale && overwritten(v)
		}
		if isStale {
			out = append(out, StaleRead{Read: r, Wrote: w, Newer: w2})
			stale[i] = true
		}
	}
	// A read that goes back: it returns v1 although an earlier read (ended
	// before it began) returned v2, whose write began after v1's ended —
	// even when v2's write was never acknowledged, the earlier read saw it.
	// Linearizable reads only: a quorum read may see a write still in
	// flight that a later quorum read misses (Dynamo quorums promise only
	// acknowledged writes).
	if consistency != Linearizable {
		return out
	}
	byEnd := slices.Clone(reads)
	slices.SortFunc(byEnd, func(x, y Op) int { return int(x.End - y.End) })
	order := make([]int, len(reads))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return int(reads[x].Start - reads[y].Start) })
	type seen struct {
		read  Op
		write Op
	}
	latestSeen := map[string]seen{} // per key: of reads ended so far, the one whose write began last
	next := 0
	for _, i := range order {
		r := reads[i]
		for next < len(byEnd) && byEnd[next].End < r.Start {
			e := byEnd[next]
			next++
			if !e.Found {
				continue
			}
			if w, ok := writeOf[wkey{e.Key, e.Value}]; ok {
				if cur, ok := latestSeen[e.Key]; !ok || w.Start > cur.write.Start {
					latestSeen[e.Key] = seen{read: e, write: w}
				}
			}
		}
		if stale[i] || !r.Found {
			continue
		}
		w1, ok := writeOf[wkey{r.Key, r.Value}]
		if !ok || w1.Outcome != Ok {
			continue // an unknown write may take effect late
		}
		if s, ok := latestSeen[r.Key]; ok && s.write.Value != w1.Value && s.write.Start > w1.End {
			out = append(out, StaleRead{Read: r, Wrote: w1, Newer: s.write, Seen: &s.read})
		}
	}
	return out
}

// SessionViolation is a session read that broke a session guarantee.
type SessionViolation struct {
	Guarantee string `json:"guarantee"` // "read-your-writes" or "monotonic-reads"
	Read      Op     `json:"read"`
	// Saw is the LSN of the write the read returned (0: not found), Want
	// the LSN the session had already written or read.
	Saw  uint64 `json:"saw_lsn"`
	Want uint64 `json:"want_lsn"`
}

// SessionResult is the check of the session guarantees.
type SessionResult struct {
	Reads      int                `json:"reads"`
	Violations []SessionViolation `json:"violations,omitempty"`
}

// Sessions checks read-your-writes and monotonic reads for every
// process's session and linearizable reads, in the order the process made
// them. A write is placed by the LSN it was acknowledged at (values are
// unique per key, so a read names its write) or, for a write of unknown
// outcome, by the version LSN the read reported; reads of a value placed
// by neither are not judged. Single-leader LSNs only: in
// multi-leader and leaderless modes LSNs are not comparable across nodes.
func Sessions(h *History) SessionResult {
	type wkey struct {
		key   string
		value int64
	}
	lsnOf := map[wkey]uint64{}
	for _, op := range h.Ops {
		if (op.Kind == Write || op.Kind == Insert) && op.Outcome == Ok && op.LSN > 0 {
			lsnOf[wkey{op.Key, op.Value}] = op.LSN
		}
	}
	var res SessionResult
	for _, ops := range byProcess(h) {
		wrote, read := map[string]uint64{}, map[string]uint64{}
		for _, op := range ops {
			switch {
			case (op.Kind == Write || op.Kind == Insert) && op.Outcome == Ok:
				wrote[op.Key] = max(wrote[op.Key], op.LSN)
			case op.Kind == Read && op.Outcome == Ok && (op.Consistency == Session || op.Consistency == Linearizable):
				res.Reads++
				var saw uint64
				if op.Found {
					var known bool
					if saw, known = lsnOf[wkey{op.Key, op.Value}]; !known {
						if saw = op.VersionLSN; saw == 0 {
							continue
						}
					}
				}
				if w := wrote[op.Key]; saw < w {
					res.Violations = append(res.Violations, SessionViolation{Guarantee: "read-your-writes", Read: op, Saw: saw, Want: w})
				} else if r := read[op.Key]; saw < r {
					res.Violations = append(res.Violations, SessionViolation{Guarantee: "monotonic-reads", Read: op, Saw: saw, Want: r})
				}
				read[op.Key] = max(read[op.Key], saw)
			}
		}
	}
	return res
}

// StaleResult measures how far behind eventual reads were.
type StaleResult struct {
	Reads int `json:"reads"`
	Stale int `json:"stale"` // reads that missed an acknowledged newer write
	// MaxBehind is the most acknowledged newer writes one read missed;
	// MaxAge and P99Age how long before the read began the first write it
	// missed had been acknowledged.
	MaxBehind int           `json:"max_behind_writes"`
	MaxAge    time.Duration `json:"max_age"`
	P99Age    time.Duration `json:"p99_age"`
	// MaxLSNs is the largest gap, in log positions, between the newest
	// acknowledged write a stale read missed and the version it returned.
	MaxLSNs uint64 `json:"max_behind_lsns"`
}

// Staleness measures the eventual reads of h against the acknowledged
// writes (placed by LSN) that ended before each read began.
func Staleness(h *History) StaleResult {
	type wkey struct {
		key   string
		value int64
	}
	lsnOf := map[wkey]uint64{}
	writes := map[string][]Op{}
	for _, op := range h.Ops {
		if (op.Kind == Write || op.Kind == Insert) && op.Outcome == Ok && op.LSN > 0 {
			lsnOf[wkey{op.Key, op.Value}] = op.LSN
			writes[op.Key] = append(writes[op.Key], op)
		}
	}
	var res StaleResult
	var ages []time.Duration
	for _, r := range h.Ops {
		if r.Kind != Read || r.Consistency != Eventual || r.Outcome != Ok {
			continue
		}
		var saw uint64
		if r.Found {
			var ok bool
			if saw, ok = lsnOf[wkey{r.Key, r.Value}]; !ok {
				if saw = r.VersionLSN; saw == 0 {
					continue
				}
			}
		}
		res.Reads++
		behind := 0
		first := time.Duration(-1)
		var newest uint64
		for _, w := range writes[r.Key] {
			if w.End < r.Start && w.LSN > saw {
				behind++
				newest = max(newest, w.LSN)
				if first < 0 || w.End < first {
					first = w.End
				}
			}
		}
		if behind == 0 {
			continue
		}
		res.Stale++
		res.MaxBehind = max(res.MaxBehind, behind)
		res.MaxLSNs = max(res.MaxLSNs, newest-saw)
		age := r.Start - first
		res.MaxAge = max(res.MaxAge, age)
		ages = append(ages, age)
	}
	if len(ages) > 0 {
		slices.Sort(ages)
		res.P99Age = ages[(len(ages)*99)/100]
	}
	return res
}

// CounterResult is one counter's final value against its increments.
type CounterResult struct {
	Key     string `json:"key"`
	Final   int64  `json:"final"`
	Acked   int64  `json:"acked"`   // sum of acknowledged increments
	Unknown int64  `json:"unknown"` // sum of increments of unknown outcome
	// Verdict: "ok" (Acked <= Final <= Acked+Unknown), "lost increments"
	// or "phantom increments".
	Verdict string `json:"verdict"`
}

// Counters compares every counter's final value with the increments
// made to it (deltas are positive).
func Counters(h *History) []CounterResult {
	by := map[string]*CounterResult{}
	for _, op := range h.Ops {
		if op.Kind != Incr || op.Outcome == Fail {
			continue
		}
		c := by[op.Key]
		if c == nil {
			c = &CounterResult{Key: op.Key}
			by[op.Key] = c
		}
		if op.Outcome == Ok {
			c.Acked += op.Delta
		} else {
			c.Unknown += op.Delta
		}
	}
	out := make([]CounterResult, 0, len(by))
	for k, c := range by {
		c.Final = h.Final[k]
		switch {
		case c.Final < c.Acked:
			c.Verdict = "lost increments"
		case c.Final > c.Acked+c.Unknown:
			c.Verdict = "phantom increments"
		default:
			c.Verdict = "ok"
		}
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// FaultAvailability is how a fault affected writes.
type FaultAvailability struct {
	Fault Fault `json:"fault"`
	// FirstAck is the time from the fault to the first acknowledged write
	// begun after it (-1: none in the run).
	FirstAck time.Duration `json:"first_ack"`
	// LongestGap is the longest time without an acknowledged write from
	// the fault until it was healed (or the run ended).
	LongestGap time.Duration `json:"longest_gap"`
}

// Availability measures, per fault, how long writes were unavailable.
func Availability(h *History) []FaultAvailability {
	var acks []Op
	var runEnd time.Duration
	for _, op := range h.Ops {
		runEnd = max(runEnd, op.End)
		if op.Kind != Read && op.Outcome == Ok {
			acks = append(acks, op)
		}
	}
	slices.SortFunc(acks, func(a, b Op) int { return int(a.End - b.End) })
	var out []FaultAvailability
	for _, f := range h.Faults {
		fa := FaultAvailability{Fault: f, FirstAck: -1}
		for _, a := range acks {
			if a.Start >= f.Start && (fa.FirstAck < 0 || a.End-f.Start < fa.FirstAck) {
				fa.FirstAck = a.End - f.Start
			}
		}
		until := f.Healed
		if until <= f.Start {
			until = runEnd
		}
		prev := f.Start
		for _, a := range acks {
			if a.End <= f.Start {
				continue
			}
			if a.End > until {
				break
			}
			fa.LongestGap = max(fa.LongestGap, a.End-prev)
			prev = a.End
		}
		fa.LongestGap = max(fa.LongestGap, until-prev)
		out = append(out, fa)
	}
	return out
}

// byProcess yields each process's operations in the order it began them
// (a process is sequential), processes in id order.
func byProcess(h *History) func(yield func(int, []Op) bool) {
	return func(yield func(int, []Op) bool) {
		procs := map[int][]Op{}
		for _, op := range h.Ops {
			procs[op.Process] = append(procs[op.Process], op)
		}
		ids := make([]int, 0, len(procs))
		for id := range procs {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		for _, id := range ids {
			ops := procs[id]
			slices.SortStableFunc(ops, func(a, b Op) int { return int(a.Start - b.Start) })
			if !yield(id, ops) {
				return
			}
		}
	}
}

// ConvergenceResult compares what the replicas held at the end.
type ConvergenceResult struct {
	Replicas int      `json:"replicas"`
	Keys     int      `json:"keys"`
	Differ   []string `json:"differ,omitempty"` // keys not equal everywhere (at most 20)
	Count    int      `json:"count"`            // how many keys differ
}

// Convergence reports the keys whose final values (or presence) differ
// between h.Replicas.
func Convergence(h *History) ConvergenceResult {
	res := ConvergenceResult{Replicas: len(h.Replicas)}
	keys := map[string]bool{}
	for _, m := range h.Replicas {
		for k := range m {
			keys[k] = true
		}
	}
	res.Keys = len(keys)
	names := make([]string, 0, len(h.Replicas))
	for n := range h.Replicas {
		names = append(names, n)
	}
	sort.Strings(names)
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		var first int64
		var firstOK bool
		same := true
		for i, n := range names {
			v, ok := h.Replicas[n][k]
			if i == 0 {
				first, firstOK = v, ok
			} else if ok != firstOK || v != first {
				same = false
				break
			}
		}
		if !same {
			res.Count++
			if len(res.Differ) < 20 {
				res.Differ = append(res.Differ, k)
			}
		}
	}
	return res
}

// SessionsInOrder checks read-your-writes and monotonic reads where
// positions are not comparable across nodes (multi-leader sites): for
// each session's own keys (written by it alone), by the order in which
// the session wrote the values. A read of a session's own key must
// return its last acknowledged write or a later one, and never one
// older than it already read. A read that returns a write of unknown
// outcome is not judged: that write may have taken effect late, after
// writes the session made after it.
func SessionsInOrder(h *History) SessionResult {
	writers := map[string]map[int]bool{}
	for _, op := range h.Ops {
		if op.Kind == Write || op.Kind == Insert {
			if writers[op.Key] == nil {
				writers[op.Key] = map[int]bool{}
			}
			writers[op.Key][op.Process] = true
		}
	}
	var res SessionResult
	for id, ops := range byProcess(h) {
		type wkey struct {
			key   string
			value int64
		}
		ord := map[wkey]uint64{} // value → its place in the session's writes of the key
		unknown := map[wkey]bool{}
		next := map[string]uint64{}
		wrote, read := map[string]uint64{}, map[string]uint64{}
		for _, op := range ops {
			own := len(writers[op.Key]) == 1 && writers[op.Key][id]
			if !own {
				continue
			}
			switch {
			case op.Kind == Write || op.Kind == Insert:
				next[op.Key]++
				ord[wkey{op.Key, op.Value}] = next[op.Key]
				if op.Outcome == Ok {
					wrote[op.Key] = next[op.Key]
				} else {
					unknown[wkey{op.Key, op.Value}] = true
				}
			case op.Kind == Read && op.Outcome == Ok && op.Consistency == Session:
				res.Reads++
				var saw uint64
				if op.Found {
					var ok bool
					if saw, ok = ord[wkey{op.Key, op.Value}]; !ok {
						continue
					}
					if unknown[wkey{op.Key, op.Value}] {
						// A write whose client gave up may still take
						// effect at any time (a request retransmitted
						// once a partition heals): after the session's
						// later writes too, so reading it judges nothing.
						// It did take effect after every write acknowledged
						// before it began, which later reads must not
						// go back behind.
						read[op.Key] = max(read[op.Key], saw)
						continue
					}
				}
				if w := wrote[op.Key]; saw < w {
					res.Violations = append(res.Violations, SessionViolation{Guarantee: "read-your-writes", Read: op, Saw: saw, Want: w})
				} else if r := read[op.Key]; saw < r {
					res.Violations = append(res.Violations, SessionViolation{Guarantee: "monotonic-reads", Read: op, Saw: saw, Want: r})
				}
				read[op.Key] = max(read[op.Key], saw)
			}
		}
	}
	return res
}
