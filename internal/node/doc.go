// Package node is one replicant server process: it owns the store, the
// replication role (leader write path or follower), the active expirer and
// the metrics, and offers the API packages (RESP, HTTP) a small surface:
// Write, Read, Status.
//
// Invariants:
//   - Reads never observe an LSN above the node's commit LSN.
//   - A read carrying a token either observes state at or after the token's
//     LSN in the token's epoch, or fails; it never silently goes back.
//   - Only the leader proposes writes (including expiry deletions).
package node
