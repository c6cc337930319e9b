// Package leaderless is the leaderless replication mode (Dynamo style):
// every node coordinates reads and writes over the N replicas of a key,
// placed by a consistent-hash ring, with per-request quorums W and R.
//
// The pure parts — the Ring (placement), the tallies that decide a
// request's outcome from replica replies (WriteTally, ReadTally), and the
// per-key State (siblings, a PN-counter and a collection, crdt.Coll) —
// have no clocks, goroutines or I/O. Engine is the I/O around them: the
// coordinator's fan-out and a replica's side of the Replica RPC.
//
// Collections (hashes, sets, sorted sets) are one crdt.Coll per key in
// its State; the txn is an engine.CollTxn and the reader an
// engine.CollReader, which package datatype/convergent maps the
// collection commands onto. State.Lookup decides what a key holds: the
// newer of the winner sibling and the collection's newest live entry.
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
//     retries in any order and any number of times converge. A collection
//     write is the coordinator's new Coll, joined into each replica's
//     state (STORE), never written over it.
//   - A collection entry's stamp comes from the coordinator's clock after
//     it observed every stamp the command read, so it supersedes what the
//     command saw; every node's clock observes the stamps it merges.
//   - A SET or DEL clears, at a stamp of its own, the collection the
//     command saw; entries stamped later (writes it did not see) survive,
//     and the key shows whichever side is newer.
//   - A state without a collection encodes as before collections
//     existed; every encoding is canonical (anti-entropy compares hashes
//     of encodings).
package leaderless
