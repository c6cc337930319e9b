package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Verdict says whether one promise held in a run.
type Verdict struct {
	Promise string `json:"promise"`
	// Promised: the setup promises it (a lost write under async is not a
	// broken promise, it is the trade-off async makes).
	Promised bool   `json:"promised"`
	Held     bool   `json:"held"`
	Detail   string `json:"detail"`
}

// Report is everything the checkers found in one history.
type Report struct {
	Setup        map[string]string  `json:"setup,omitempty"`
	Operations   int                `json:"operations"`
	Acknowledged int                `json:"acknowledged_writes"`
	Lost         LostResult         `json:"lost"`
	Linear       LinResult          `json:"linearizability"`
	Quorum       *QuorumResult      `json:"quorum_reads,omitempty"` // leaderless mode
	Converge     *ConvergenceResult `json:"convergence,omitempty"`  // multi-leader mode
	Conflicts    int                `json:"conflicts,omitempty"`
	// Leaderless: reads of concurrently written keys that answered
	// siblings, the most siblings one read got, and replica repair.
	SiblingReads int                 `json:"sibling_reads,omitempty"`
	MaxSiblings  int                 `json:"max_siblings,omitempty"`
	Repair       time.Duration       `json:"repair,omitempty"`
	Unrepaired   int                 `json:"unrepaired,omitempty"`
	Sessions     SessionResult       `json:"sessions"`
	Stale        StaleResult         `json:"eventual_reads"`
	Counters     []CounterResult     `json:"counters,omitempty"`
	Availability []FaultAvailability `json:"availability,omitempty"`
	Verdicts     []Verdict           `json:"verdicts"`
}

// Analyze runs every checker on h. Which promises the setup makes comes
// from h.Setup: in single-leader mode "sync" (under "async", or no sync
// policy, acknowledged writes may be lost in a failover); in leaderless
// mode "w", "r" and "n" (quorum reads must see every acknowledged write
// only when W+R>N).
func Analyze(h *History, linTimeout time.Duration) Report {
	r := Report{Setup: h.Setup, Operations: len(h.Ops)}
	for _, op := range h.Ops {
		if op.Kind != Read && op.Outcome == Ok {
			r.Acknowledged++
		}
	}
	// Every mode: lost inserts, counters, unavailability per fault.
	r.Lost = Lost(h)
	r.Counters = Counters(h)
	r.Availability = Availability(h)
	switch h.Setup["mode"] {
	case "leaderless":
		return analyzeLeaderless(h, r)
	case "multi-leader":
		return analyzeMultiLeader(h, r)
	}
	if len(h.Replicas) > 0 {
		c := Convergence(h)
		r.Converge = &c
	}
	r.Linear = Linearizability(h, linTimeout)
	r.Sessions = Sessions(h)
	r.Stale = Staleness(h)
	sync := strings.TrimSpace(h.Setup["sync"])
	durable := sync != "" && !strings.EqualFold(sync, "async")
	r.lossVerdicts(durable, "counters count every acknowledged increment, and only increments sent")
	if r.Converge != nil {
		r.convergenceVerdict("every node holds the same data once the faults are healed", "nodes")
	}
	r.Verdicts = append(r.Verdicts, Verdict{
		Promise:  "leader reads are linearizable",
		Promised: true,
		Held:     r.Linear.Verdict != "not linearizable",
		Detail:   fmt.Sprintf("%s over %d operations (%d writes of unknown outcome, %d certainly stale reads)", r.Linear.Verdict, r.Linear.Ops, r.Linear.Pending, len(r.Linear.Stale)),
	})
	r.sessionVerdicts("session reads see the session's own writes")
	return r
}

// analyzeLeaderless: no leader, no LSNs, no sessions. Every acknowledged
// write is durable on W replicas (no rollback exists in this mode), every
// acknowledged increment counts (PN-counters), and quorum reads miss no
// acknowledged write when W+R>N.
func analyzeLeaderless(h *History, r Report) Report {
	q := QuorumReads(h)
	r.Quorum = &q
	for _, op := range h.Ops {
		if op.Kind == Read && op.Consistency == Siblings && op.Outcome == Ok && op.Siblings > 1 {
			r.SiblingReads++
			r.MaxSiblings = max(r.MaxSiblings, op.Siblings)
		}
	}
	r.Repair, r.Unrepaired = h.Repair, h.Unrepaired
	var w, rr, n int
	fmt.Sscan(h.Setup["w"], &w)
	fmt.Sscan(h.Setup["r"], &rr)
	fmt.Sscan(h.Setup["n"], &n)
	r.lossVerdicts(true, "counters count every acknowledged increment, and only increments sent")
	r.Verdicts = append(r.Verdicts, Verdict{
		Promise:  fmt.Sprintf("reads (R=%d) see every write acknowledged before them (W=%d, N=%d)", rr, w, n),
		Promised: w+rr > n,
		Held:     len(q.Stale) == 0,
		Detail:   fmt.Sprintf("%d of %d reads missed an acknowledged write", len(q.Stale), q.Reads),
	})
	return r
}

// analyzeMultiLeader: every site takes writes and ships them to the
// others; after healing and catching up every site must hold the same
// data, every acknowledged write (a site never rolls back a committed
// entry) and every acknowledged increment; a session's reads on any site
// see its own writes (vector tokens) and never go back.
func analyzeMultiLeader(h *History, r Report) Report {
	r.Sessions = SessionsInOrder(h)
	c := Convergence(h)
	r.Converge = &c
	r.Conflicts = h.Conflicts
	r.convergenceVerdict("sites converge to the same data", "sites")
	r.lossVerdicts(true, "counters count every acknowledged increment on every site, and only increments sent")
	r.sessionVerdicts("session reads on any site see the session's own writes")
	return r
}

// lossVerdicts adds the verdicts on lost inserts and counters (the
// counter one only when the run had counters).
func (r *Report) lossVerdicts(promised bool, counterPromise string) {
	r.Verdicts = append(r.Verdicts, Verdict{
		Promise: "no acknowledged write is lost", Promised: promised, Held: len(r.Lost.Lost) == 0,
		Detail: fmt.Sprintf("%d of %d acknowledged inserts lost", len(r.Lost.Lost), r.Lost.Acked),
	})
	if len(r.Counters) == 0 {
		return
	}
	wrong := 0
	for _, c := range r.Counters {
		if c.Verdict != "ok" {
			wrong++
		}
	}
	r.Verdicts = append(r.Verdicts, Verdict{
		Promise: counterPromise, Promised: promised, Held: wrong == 0,
		Detail: fmt.Sprintf("%d of %d counters wrong", wrong, len(r.Counters)),
	})
}

// convergenceVerdict adds the verdict on r.Converge.
func (r *Report) convergenceVerdict(promise, what string) {
	r.Verdicts = append(r.Verdicts, Verdict{
		Promise: promise, Promised: true, Held: r.Converge.Count == 0,
		Detail: fmt.Sprintf("%d of %d keys differ across %d %s", r.Converge.Count, r.Converge.Keys, r.Converge.Replicas, what),
	})
}

// sessionVerdicts adds read-your-writes and monotonic reads of r.Sessions.
func (r *Report) sessionVerdicts(rywPromise string) {
	ryw, mono := 0, 0
	for _, v := range r.Sessions.Violations {
		if v.Guarantee == "read-your-writes" {
			ryw++
		} else {
			mono++
		}
	}
	r.Verdicts = append(r.Verdicts,
		Verdict{Promise: rywPromise, Promised: true, Held: ryw == 0,
			Detail: fmt.Sprintf("%d violations in %d session reads", ryw, r.Sessions.Reads)},
		Verdict{Promise: "session reads never go back in time", Promised: true, Held: mono == 0,
			Detail: fmt.Sprintf("%d violations in %d session reads", mono, r.Sessions.Reads)},
	)
}

// Passed reports whether every promised verdict held.
func (r Report) Passed() bool {
	for _, v := range r.Verdicts {
		if v.Promised && !v.Held {
			return false
		}
	}
	return true
}

// WriteJSON writes the report as JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a terminal.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if len(r.Setup) > 0 {
		policy := fmt.Sprintf("sync=%q", r.Setup["sync"])
		switch r.Setup["mode"] {
		case "leaderless":
			policy = fmt.Sprintf("N=%s W=%s R=%s", r.Setup["n"], r.Setup["w"], r.Setup["r"])
		case "multi-leader":
			policy = "one-node sites linked all-to-all"
		}
		fmt.Fprintf(&b, "setup: mode=%s %s nodes=%s nemesis=%s duration=%s seed=%s\n",
			r.Setup["mode"], policy, r.Setup["nodes"], r.Setup["nemesis"], r.Setup["duration"], r.Setup["seed"])
	}
	fmt.Fprintf(&b, "operations: %d, acknowledged writes: %d\n", r.Operations, r.Acknowledged)
	fmt.Fprintf(&b, "lost acknowledged writes: %d of %d inserts", len(r.Lost.Lost), r.Lost.Acked)
	if r.Lost.Unacked > 0 {
		fmt.Fprintf(&b, " (%d writes of unknown outcome survived)", r.Lost.Unacked)
	}
	b.WriteString("\n")
	for i, op := range r.Lost.Lost {
		if i == 10 {
			fmt.Fprintf(&b, "  … and %d more\n", len(r.Lost.Lost)-10)
			break
		}
		where := "in no rollback file"
		if i < len(r.Lost.InRollback) && r.Lost.InRollback[i] != "" {
			where = "kept in rollback file " + r.Lost.InRollback[i]
		}
		fmt.Fprintf(&b, "  lost: %s=%d acknowledged by %s at %s (epoch %d, LSN %d), %s\n", op.Key, op.Value, op.Node, op.End.Round(time.Millisecond), op.Epoch, op.LSN, where)
	}
	multi := r.Setup["mode"] == "multi-leader"
	if r.Converge != nil {
		fmt.Fprintf(&b, "convergence: %d of %d keys differ across %d nodes %v\n", r.Converge.Count, r.Converge.Keys, r.Converge.Replicas, r.Converge.Differ)
	}
	if multi {
		rate := ""
		if d, err := time.ParseDuration(r.Setup["duration"]); err == nil && d > 0 {
			rate = fmt.Sprintf(" (%.1f per second)", float64(r.Conflicts)/d.Seconds())
		}
		fmt.Fprintf(&b, "conflicts recorded by the sites: %d%s\n", r.Conflicts, rate)
	}
	switch {
	case multi:
		// No leader reads to judge.
	case r.Quorum != nil:
		fmt.Fprintf(&b, "quorum reads: %d, missed an acknowledged write: %d (W=%s R=%s N=%s)\n", r.Quorum.Reads, len(r.Quorum.Stale), r.Setup["w"], r.Setup["r"], r.Setup["n"])
		fmt.Fprintf(&b, "siblings: %d reads of concurrently written keys answered siblings (at most %d)\n", r.SiblingReads, r.MaxSiblings)
		if r.Repair >= 0 {
			fmt.Fprintf(&b, "replica repair: every replica held every acknowledged insert %s after the last heal\n", r.Repair.Round(time.Millisecond))
		} else {
			fmt.Fprintf(&b, "replica repair: %d (replica, key) pairs still missing when the run gave up\n", r.Unrepaired)
		}
		for i, s := range r.Quorum.Stale {
			if i == 5 {
				break
			}
			fmt.Fprintf(&b, "  stale: read of %s through %s at %s found %v/%d; %d was acknowledged at %s\n",
				s.Read.Key, s.Read.Node, s.Read.Start.Round(time.Millisecond), s.Read.Found, s.Read.Value, s.Newer.Value, s.Newer.End.Round(time.Millisecond))
		}
	default:
		fmt.Fprintf(&b, "linearizability of leader reads: %s (%d ops, %d pending)\n", r.Linear.Verdict, r.Linear.Ops, r.Linear.Pending)
	}
	for i, s := range r.Linear.Stale {
		if i == 5 {
			break
		}
		if s.Seen != nil {
			fmt.Fprintf(&b, "  went back: read of %s on %s at %s returned %d after a read on %s at %s returned the newer %d\n",
				s.Read.Key, s.Read.Node, s.Read.Start.Round(time.Millisecond), s.Read.Value, s.Seen.Node, s.Seen.Start.Round(time.Millisecond), s.Newer.Value)
			continue
		}
		fmt.Fprintf(&b, "  stale: read of %s on %s at %s returned %d, overwritten by %d acknowledged at %s\n",
			s.Read.Key, s.Read.Node, s.Read.Start.Round(time.Millisecond), s.Read.Value, s.Newer.Value, s.Newer.End.Round(time.Millisecond))
	}
	if r.Quorum == nil {
		fmt.Fprintf(&b, "session reads: %d, violations: %d\n", r.Sessions.Reads, len(r.Sessions.Violations))
	}
	for i, v := range r.Sessions.Violations {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "  %s: %s on %s at %s saw LSN %d, the session had %d\n", v.Guarantee, v.Read.Key, v.Read.Node, v.Read.Start.Round(time.Millisecond), v.Saw, v.Want)
	}
	if r.Quorum == nil && !multi {
		fmt.Fprintf(&b, "eventual reads: %d, stale: %d (at most %d writes / %d LSNs behind; age max %s, p99 %s)\n",
			r.Stale.Reads, r.Stale.Stale, r.Stale.MaxBehind, r.Stale.MaxLSNs, r.Stale.MaxAge.Round(time.Millisecond), r.Stale.P99Age.Round(time.Millisecond))
	}
	for _, c := range r.Counters {
		fmt.Fprintf(&b, "counter %s: final %d, acknowledged %d, unknown %d: %s\n", c.Key, c.Final, c.Acked, c.Unknown, c.Verdict)
	}
	for _, a := range r.Availability {
		first := "none"
		if a.FirstAck >= 0 {
			first = a.FirstAck.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "fault %s on %s at %s: first acknowledged write after %s, longest gap %s\n",
			a.Fault.Kind, a.Fault.Node, a.Fault.Start.Round(time.Millisecond), first, a.LongestGap.Round(time.Millisecond))
	}
	b.WriteString("verdicts:\n")
	for _, v := range r.Verdicts {
		mark := "held"
		switch {
		case !v.Held && v.Promised:
			mark = "BROKEN"
		case !v.Held:
			mark = "not promised, and did not hold"
		case !v.Promised:
			mark = "held (not promised by this setup)"
		}
		fmt.Fprintf(&b, "  %-70s %s — %s\n", v.Promise+":", mark, v.Detail)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
