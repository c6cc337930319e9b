// Package crdt holds the pure data types that the multi-leader and
// leaderless replication modes agree through: a hybrid logical clock
// (Timestamp, Stamp, Clock), version vectors (Vector), a PN-counter with
// observed reset (PNCounter) and dotted-version-vector sibling sets
// (Siblings, Dot), and the collection state of a hash, set or sorted set
// (Coll: last-writer-wins fields and members, add-wins set members,
// clears by time).
//
// Pure means: no clock is read (the caller passes physical time in), no
// goroutines, no I/O, no global mutable state. Every decision these types
// make is therefore a function of their inputs and can be tested step by
// step, and two replicas given the same inputs reach the same state
// bit for bit.
//
// # Invariants
//
// The replication modes rely on these; the tests check each of them.
//
//   - Merge is a join: commutative, associative and idempotent for Vector,
//     PNCounter and Siblings, and so is Coll.Join. Replicas may therefore
//     exchange states in any order, any number of times, along any
//     topology, and converge.
//   - Vector, PNCounter and Siblings are immutable values. Operations
//     return new values and never write to memory an earlier value can
//     see, so values can be shared between goroutines without copies.
//     Coll is mutable (a collection is changed entry by entry inside one
//     command): Clone before changing a shared one.
//   - Encodings are canonical: AppendBinary of equal values gives equal
//     bytes, and each decoder accepts only what AppendBinary produces
//     (decoding then re-encoding returns the input unchanged). Encodings
//     can thus be compared, hashed (anti-entropy Merkle trees) and stored
//     in place of the values. Each top-level encoding starts with a tag
//     byte naming its type and layout version.
//   - Decoders never panic. Corrupt, truncated or hostile input is an error
//     wrapping ErrMalformed (ErrInvalidVector for the vector text form),
//     and no length read from the input is trusted before it is checked
//     against the bytes actually present.
//   - A Clock's timestamps strictly increase, whatever physical times it is
//     given, and a remote timestamp too far ahead of physical time is
//     refused (*ClockSkewError) instead of dragging the clock forward.
//   - Ids (sites, replicas, nodes) satisfy ValidID, so every Vector has a
//     text form that parses back to it. Operations panic on an invalid id,
//     a programming error: configuration is validated once, up front.
package crdt
