package leaderless

// The coordinator's decisions, apart from its I/O: how a quorum is written
// and checked, and when a write or a read has its answer. The driver sends
// a request to a key's replicas, feeds their answers to a WriteTally or a
// ReadTally as they arrive, and answers the client as soon as Outcome
// leaves Pending. Nothing here reads a clock, starts a goroutine or does
// I/O; a timeout is the driver's, reported as a Fail.
//
// Invariants (coord_test.go checks each):
//   - A tally succeeds exactly when its quorum (W acks, R replies) is
//     reached, and fails exactly when the quorum can no longer be reached
//     even if every target not yet heard from answers well.
//   - Once every target has answered, the outcome is decided.
//   - The outcome, once decided, never changes, and neither does the
//     NOQUORUM error that goes with a failure: one request gets one answer.
//     Late answers still count (Stored, Merged, Stale), because they are
//     the truth about the replicas that repair and handoff act on.
//   - Each node counts once. A success after a failure from the same node
//     replaces the failure (a timed-out replica that answers after all did
//     store the write); a failure after a success is ignored (a durable
//     store cannot be taken back).
//   - A tally built from an invalid Quorum fails at once: it never
//     acknowledges a write or answers a read on a meaningless quorum.
//   - Nothing panics, whatever the arguments.

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// Quorum is a request's replication factor and its write and read quorums.
// N is how many replicas a key has (its preference list); W is how many
// must store a write before it is acknowledged; R is how many must answer
// a read before it is answered.
type Quorum struct{ N, W, R int }

// DefaultQuorum is a majority of n for both writes and reads (W = R =
// n/2+1), the Contract's default: any read quorum then overlaps any write
// quorum, and a minority of replicas can be down.
func DefaultQuorum(n int) Quorum {
	m := n/2 + 1
	return Quorum{N: n, W: m, R: m}
}

// ParseLevel parses one quorum level as REPLICANT.QUORUM and the
// Replicant-W / Replicant-R headers give it: "one" (1), "quorum" (a
// majority, n/2+1), "all" (n), or a number from 1 to n. Words are
// case-insensitive, as Redis keywords are. A number is plain decimal
// digits: no sign, no spaces, nothing a client would not mean as a count.
func ParseLevel(s string, n int) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("quorum level %q: the replication factor N=%d is less than 1", s, n)
	}
	switch {
	case strings.EqualFold(s, "one"):
		return 1, nil
	case strings.EqualFold(s, "quorum"):
		return n/2 + 1, nil
	case strings.EqualFold(s, "all"):
		return n, nil
	case s == "":
		return 0, fmt.Errorf("empty quorum level: want one, quorum, all or a number from 1 to %d", n)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("quorum level %q: want one, quorum, all or a number from 1 to %d", s, n)
		}
	}
	// Only digits are left, so Atoi fails only on overflow, which is out
	// of range like any other too-large number.
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > n {
		return 0, fmt.Errorf("quorum level %s is out of range: want a number from 1 to %d (the replication factor N), or one, quorum or all", s, n)
	}
	return v, nil
}

// Validate reports the first thing wrong with q: N below 1, or W or R
// outside 1..N. A quorum of 0 would acknowledge what nothing stored, and
// one above N could never be met.
func (q Quorum) Validate() error {
	if q.N < 1 {
		return fmt.Errorf("replication factor N=%d: must be at least 1", q.N)
	}
	if q.W < 1 || q.W > q.N {
		return fmt.Errorf("write quorum W=%d: must be from 1 to the replication factor N=%d", q.W, q.N)
	}
	if q.R < 1 || q.R > q.N {
		return fmt.Errorf("read quorum R=%d: must be from 1 to the replication factor N=%d", q.R, q.N)
	}
	return nil
}

// Strong reports whether W+R > N: every read quorum then shares a replica
// with every write quorum, so a read sees every write acknowledged before
// it started. That holds only for strict quorums on the preference list;
// with a sloppy quorum the stand-ins that acknowledged a write are not the
// replicas a read asks, so Strong promises less there.
func (q Quorum) Strong() bool { return q.W+q.R > q.N }

// String is "N=3 W=2 R=2", for logs and status.
func (q Quorum) String() string { return fmt.Sprintf("N=%d W=%d R=%d", q.N, q.W, q.R) }

// Outcome is where a write or read stands.
type Outcome int

const (
	// Pending: the quorum may still be reached; wait for more answers.
	Pending Outcome = iota
	// Succeeded: the quorum was reached; answer the client.
	Succeeded
	// Failed: the quorum can no longer be reached; answer the client
	// with the tally's Err.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Pending:
		return "pending"
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// NoQuorumError is the -NOQUORUM answer: a request reached fewer replicas
// than its quorum needs.
type NoQuorumError struct {
	// Stored is how many replicas stored the write (for a read, how many
	// replied) when the request failed.
	Stored int
	// Needed is the quorum: W for a write, R for a read.
	Needed int
	// N is the replication factor.
	N int
	// Op names the request: "read" for a read; anything else is a write
	// and names it in the message ("write" when empty).
	Op string
	// Causes is why each failed replica failed, by node id.
	Causes map[string]string
}

// Error is one line that starts with "NOQUORUM ", the Redis error kind
// the RESP API answers with, then says what happened in a sentence. For a
// write it says that the write is not rolled back and may still appear:
// the replicas that stored it keep it and repair spreads it, so a client
// must not take NOQUORUM to mean "not written". The causes follow in
// parentheses, sorted by node, with line breaks turned into spaces so that
// the reply stays one protocol line.
// Is makes a NoQuorumError an engine.ErrNoQuorum, which the APIs answer
// as -NOQUORUM (RESP) and 503 (HTTP) without knowing this package.
func (e *NoQuorumError) Is(target error) bool { return target == engine.ErrNoQuorum }

func (e *NoQuorumError) Error() string {
	var b strings.Builder
	b.WriteString("NOQUORUM ")
	if e.Op == "read" {
		fmt.Fprintf(&b, "read answered by %d of %s, %d needed", e.Stored, coordReplicas(e.N), e.Needed)
	} else {
		op := e.Op
		if op == "" {
			op = "write"
		}
		fmt.Fprintf(&b, "%s stored on %d of %s, %d needed; it is not rolled back and may still appear",
			coordOneLine(op), e.Stored, coordReplicas(e.N), e.Needed)
	}
	if len(e.Causes) > 0 {
		b.WriteString(" (")
		for i, node := range slices.Sorted(maps.Keys(e.Causes)) {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(coordOneLine(node) + ": " + coordOneLine(e.Causes[node]))
		}
		b.WriteString(")")
	}
	return b.String()
}

func coordReplicas(n int) string {
	if n == 1 {
		return "1 replica"
	}
	return strconv.Itoa(n) + " replicas"
}

// coordOneLine replaces control characters (line breaks above all) with
// spaces: an error text from a peer must not split a RESP error line.
func coordOneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// tally is the counting a WriteTally and a ReadTally share: which targets
// succeeded and which failed, and the outcome, decided once.
type tally struct {
	op      string
	n       int
	need    int
	targets int
	ok      map[string]struct{}
	failed  map[string]string // node → cause
	outcome Outcome
	err     error // set when outcome becomes Failed
}

func tallyStart(op string, q Quorum, need, targets int) tally {
	t := tally{op: op, n: q.N, need: need, targets: max(targets, 0), ok: map[string]struct{}{}, failed: map[string]string{}}
	if err := q.Validate(); err != nil {
		t.outcome, t.err = Failed, err
	}
	t.decide()
	return t
}

// succeed records node's success and reports whether it is new.
func (t *tally) succeed(node string) bool {
	if _, dup := t.ok[node]; dup {
		return false
	}
	delete(t.failed, node)
	t.ok[node] = struct{}{}
	t.decide()
	return true
}

func (t *tally) fail(node string, err error) {
	if _, ok := t.ok[node]; ok {
		return
	}
	if _, dup := t.failed[node]; dup {
		return // the first cause is the one that counted
	}
	cause := "failed"
	if err != nil {
		cause = err.Error()
	}
	t.failed[node] = cause
	t.decide()
}

func (t *tally) decide() {
	if t.outcome != Pending {
		return
	}
	ok := len(t.ok)
	// Only a caller that reports more distinct nodes than it had targets
	// can make this negative, and by then every target has answered, so
	// the outcome is already decided; the clamp keeps the count honest.
	remaining := max(t.targets-ok-len(t.failed), 0)
	switch {
	case ok >= t.need:
		t.outcome = Succeeded
	case ok+remaining < t.need:
		t.outcome = Failed
		t.err = &NoQuorumError{Stored: ok, Needed: t.need, N: t.n, Op: t.op, Causes: maps.Clone(t.failed)}
	}
}

// WriteTally decides a write's outcome from replica acknowledgements.
// It is not safe for concurrent use: the driver feeds it from one place.
type WriteTally struct {
	t tally
}

// NewWriteTally starts the tally of a write sent to targets replicas:
// usually N, fewer when the ring has fewer nodes, and with a sloppy quorum
// counting the stand-ins the write went to instead of down replicas (a
// stand-in's ack counts like a replica's, since it holds the write
// durably until it hands it over). Fewer targets than W fail at once; an
// invalid q fails at once with q's Validate error.
func NewWriteTally(q Quorum, targets int) *WriteTally {
	return &WriteTally{t: tallyStart("write", q, q.W, targets)}
}

// Ack records that node stored the write durably (the coordinator's own
// store included, when it is one of the targets).
func (w *WriteTally) Ack(node string) { w.t.succeed(node) }

// Fail records that node refused the write or did not answer in time.
func (w *WriteTally) Fail(node string, err error) { w.t.fail(node, err) }

// Outcome is Succeeded once W targets acknowledged, Failed once W can no
// longer be reached, Pending until then; it never changes once decided.
func (w *WriteTally) Outcome() Outcome { return w.t.outcome }

// Stored is how many distinct nodes acknowledged so far, late ones
// included: it may pass W, and may grow after a Failed outcome, because
// the write really is on those replicas.
func (w *WriteTally) Stored() int { return len(w.t.ok) }

// Err is nil unless the outcome is Failed; then it is the
// *NoQuorumError as it stood when the write failed (or the quorum's
// Validate error), the same on every call.
func (w *WriteTally) Err() error { return w.t.err }

// JointWriteTally counts a write made while members are joining (see
// control.Member.Joining): readers still read the replicas of the ring
// without them (the old replicas), and will read the new ones once the
// join settles, so the write must reach W of each. A node in both lists
// counts for both. It is not safe for concurrent use.
type JointWriteTally struct {
	next, old       *WriteTally
	inNext, inOld   map[string]bool
	nextIDs, oldIDs []string
}

// NewJointWriteTally starts the tally of a write to the union of next
// (the replicas by the ring with the joining members) and old (by the
// ring without them).
func NewJointWriteTally(q Quorum, next, old []string) *JointWriteTally {
	j := &JointWriteTally{next: NewWriteTally(q, len(next)), old: NewWriteTally(q, len(old)),
		inNext: map[string]bool{}, inOld: map[string]bool{}, nextIDs: next, oldIDs: old}
	for _, id := range next {
		j.inNext[id] = true
	}
	for _, id := range old {
		j.inOld[id] = true
	}
	return j
}

// Targets returns the union of both lists, next's order first.
func (j *JointWriteTally) Targets() []string {
	out := slices.Clone(j.nextIDs)
	for _, id := range j.oldIDs {
		if !j.inNext[id] {
			out = append(out, id)
		}
	}
	return out
}

// Ack records that node stored the write durably.
func (j *JointWriteTally) Ack(node string) {
	if j.inNext[node] {
		j.next.Ack(node)
	}
	if j.inOld[node] {
		j.old.Ack(node)
	}
}

// Fail records that node refused the write or did not answer in time.
func (j *JointWriteTally) Fail(node string, err error) {
	if j.inNext[node] {
		j.next.Fail(node, err)
	}
	if j.inOld[node] {
		j.old.Fail(node, err)
	}
}

// Outcome is Succeeded once both lists reached W, Failed once either
// cannot, Pending until then.
func (j *JointWriteTally) Outcome() Outcome {
	a, b := j.next.Outcome(), j.old.Outcome()
	switch {
	case a == Failed || b == Failed:
		return Failed
	case a == Succeeded && b == Succeeded:
		return Succeeded
	}
	return Pending
}

// Err is the error of the list that failed (the new replicas' first).
func (j *JointWriteTally) Err() error {
	if err := j.next.Err(); err != nil {
		return err
	}
	return j.old.Err()
}

// writeCounter is what a coordinator's write path needs of a tally.
type writeCounter interface {
	Ack(node string)
	Fail(node string, err error)
	Outcome() Outcome
	Err() error
}

var (
	_ writeCounter = (*WriteTally)(nil)
	_ writeCounter = (*JointWriteTally)(nil)
)

// ReadTally gathers replica answers for one key. It is not safe for
// concurrent use.
type ReadTally struct {
	t       tally
	replies map[string]crdt.Siblings
	merged  crdt.Siblings
}

// NewReadTally starts the tally of a read sent to targets replicas. Fewer
// targets than R fail at once; an invalid q fails at once with q's
// Validate error.
func NewReadTally(q Quorum, targets int) *ReadTally {
	return &ReadTally{t: tallyStart("read", q, q.R, targets), replies: map[string]crdt.Siblings{}}
}

// Reply records node's stored siblings for the key: the zero Siblings
// when it holds nothing, which is an answer like any other and counts
// toward R. A node's first reply stands; a repeat is a duplicate delivery
// and is ignored. A reply after the outcome is decided is still merged
// and judged for staleness, so read repair works from every answer.
func (r *ReadTally) Reply(node string, s crdt.Siblings) {
	if _, dup := r.replies[node]; dup {
		return
	}
	r.replies[node] = s
	r.merged = r.merged.Merge(s)
	r.t.succeed(node)
}

// Fail records that node could not answer.
func (r *ReadTally) Fail(node string, err error) { r.t.fail(node, err) }

// Outcome is Succeeded once R targets replied, Failed once R can no longer
// be reached, Pending until then; it never changes once decided.
func (r *ReadTally) Outcome() Outcome { return r.t.outcome }

// Replied is how many distinct nodes replied so far.
func (r *ReadTally) Replied() int { return len(r.replies) }

// Err is nil unless the outcome is Failed; then it is the
// *NoQuorumError (Op "read") as it stood when the read failed (or the
// quorum's Validate error).
func (r *ReadTally) Err() error { return r.t.err }

// Merged is the crdt merge of every reply so far: what the read answers
// (its Winner for GET, all of it for REPLICANT.SIBLINGS) and what read
// repair writes to stale replicas. The zero Siblings before any reply.
func (r *ReadTally) Merged() crdt.Siblings { return r.merged }

// Stale lists, sorted, the nodes that replied with less than Merged: the
// read repair targets. A node that replied nothing for a key others hold
// is stale; a node that failed is not listed (what it holds is unknown;
// hinted handoff and anti-entropy reach it).
//
// A reply is stale when it is not Equal to the merge. Merged is the join
// of all replies, so it includes each of them, and "not equal to the join"
// is exactly "lacks something the join has". Comparing contexts
// (Merged().Context() covering the reply's) would say the same for sets
// built by Update and Merge alone, since a context determines its
// siblings there; Equal also catches two replicas holding different
// writes under one dot (a node id reused after data loss), where the
// merge picked one and the other replica needs it too to converge.
func (r *ReadTally) Stale() []string {
	var out []string
	for node, s := range r.replies {
		if !s.Equal(r.merged) {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}
