// Package leaderless is the leaderless replication mode (Dynamo style):
// every node coordinates reads and writes over the N replicas of a key,
// placed by a consistent-hash ring, with per-request quorums W and R.
//
// The pure parts — the Ring (placement), the tallies that decide a
// request's outcome from replica replies (WriteTally, ReadTally), and the
// per-key State (siblings and a PN-counter) — have no clocks, goroutines
// or I/O. Engine is the I/O around them: the coordinator's fan-out and a
// replica's side of the Replica RPC.
//
// Invariants:
//   - Placement is a pure function of the member set: every node computes
//     the same preference list for a key.
//   - A request's outcome is decided once (W acks, or W out of reach) and
//     never changes; a write that could not reach W before it was stored
//     anywhere is stored nowhere.
//   - A write's dot is issued by a replica of the key from its own
//     durable state, on its log's sequencer: no dot is issued twice, which
//     dotted version vectors need to keep every concurrent write.
//   - A counter entry has one writer (the replica applying the increment,
//     from its durable state), so increments are never lost.
//   - Replicas only ever merge states (a join): repair, fan-out and
//     retries in any order and any number of times converge.
package leaderless
