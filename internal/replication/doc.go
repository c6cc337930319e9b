// Package replication is the leader and follower logic of replicant's
// single-leader replication.
//
// The leader's write path (Writer) turns client proposals into log entries
// and appends them in group-commit batches. Whether an entry is committed is
// decided by Core, a deterministic state machine without I/O, goroutines or
// clocks: it takes the leader's appends and fsyncs, the followers'
// acknowledgements, the control plane's sync set and the time as inputs, and
// outputs the commit LSN, the sync set to propose to the control plane, and
// events. The commit policy it enforces (async, all, FIRST k (…), ANY k (…)),
// the ack level and the fallback are the typed vocabulary of package policy.
//
// The other decisions are pure functions too: how a follower's stream
// starts (PlanStart), the follower's session state (FollowerState.next), who
// may succeed a failed leader (FailoverCandidates, ChooseSuccessor), how a
// read is admitted (AdmitRead) and whether a session floor is reached,
// ahead or lost (StandingOf). Leader, Writer and Follower do the I/O.
//
// Invariants:
//   - Only committed entries are acknowledged to clients; a command that
//     fails or changes nothing is answered only once what it read is
//     committed.
//   - An acknowledgement counts only up to what its own stream was sent.
//   - A follower exposes an entry to readers only once it is committed,
//     applied and fsynced locally.
package replication
