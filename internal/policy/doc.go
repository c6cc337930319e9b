// Package policy is the typed vocabulary of replicant's commit rules: the
// commit policy (async, all, FIRST k (…), ANY k (…), in the syntax of
// PostgreSQL's synchronous_standby_names), the ack level a follower's
// acknowledgement must reach (received, durable, applied) and the fallback
// when too few synchronous followers are healthy (block, async). It imports
// nothing of replicant's: every layer parses and prints these the same way.
//
// Invariants:
//   - For every Commit that ParseCommit returns, ParseCommit(c.String())
//     returns an Equal Commit; the same holds for Ack and Fallback with their
//     parsers. Text marshalling uses these forms, so stored and transmitted
//     settings read back unchanged.
//   - The empty string parses to the defaults: async, durable, block.
//   - A member list keeps its order (it is FIRST's priority order) and never
//     holds duplicates or names the syntax could not round-trip.
package policy
