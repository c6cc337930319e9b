// Package node is one replicant server process: it owns the store, the
// control plane member, the replication role (leader write path or
// follower), the controller's failover duty, the active expirer and the
// metrics, and offers the API packages (RESP, HTTP) a small surface: Write,
// Read, WaitReplicas, Status. The decisions it applies are pure functions
// (decideRole, switchoverReady, Lease here; AdmitRead, StandingOf,
// RestartFloor, ChooseSuccessor in replication); this package does the I/O.
//
// Invariants:
//   - Reads never observe an LSN above the node's commit LSN, nor, on a
//     follower, above what it has fsynced.
//   - After a restart no read is served below the log end the process
//     recovered (minus a rolled-back tail) until the node has caught up to
//     it: until then reads answer -LOADING.
//   - A read carrying a token either observes state that includes the
//     token's write, or fails (stale, or lost when a later epoch replaced
//     it); it never silently goes back.
//   - Only the leader proposes writes (including expiry deletions), and only
//     while it holds a lease; a write cut off by a leadership change is
//     reported as of unknown outcome, never as "not the leader".
//   - The old role is closed before a new one starts (one writer of the
//     store at a time), outside the node's lock.
//   - The controller fails a leader over only after the leader's lease has
//     certainly expired, timed from a renewal it applied itself.
package node
