// Package check records what clients saw while a cluster was under
// faults, and judges it: which acknowledged writes were lost, whether
// leader reads were linearizable, whether session reads kept
// read-your-writes and monotonic reads, how stale eventual reads were,
// whether counters lost or invented increments, and how long each fault
// made writes unavailable. It is the core of `replicant check` (issue 13)
// and of the end-to-end tests' checkers.
//
// Invariants:
//   - A History is data: operations as clients saw them (start, end,
//     result, the token they got), the faults injected, and the final
//     reads after healing. Checkers are pure functions of a History; they
//     never talk to a cluster, so they are tested with hand-made
//     histories that must pass and histories that must fail.
//   - An operation's outcome is Ok (acknowledged), Fail (certainly not
//     applied: refused before it was written) or Unknown (it may or may
//     not have been applied: a timeout, a lost connection). Checkers treat
//     Unknown writes as possibly applied at any time after they started,
//     and never count them as lost.
//   - Values written to one key are unique, so a read names the write it
//     saw.
//   - Schedules (which fault when) are a pure function of a seed.
package check
