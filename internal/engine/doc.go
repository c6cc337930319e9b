// Package engine is the seam between the client APIs (RESP, HTTP) and a
// node: the Engine interface they serve from, the status document they
// show (the Contract's /v1/status JSON), and the error kinds they translate
// into protocol replies. The single-leader node is its first
// implementation; the multi-leader and leaderless modes are to be others.
//
// Invariants:
//   - The APIs name a node only through Engine: they never import the
//     node, so a mode's internals stay behind it.
//   - Every error an Engine returns that the APIs answer specially wraps
//     one of the kinds declared here or in package replication (the data
//     path's vocabulary, which docs/design/engine.md plans to move here).
package engine
