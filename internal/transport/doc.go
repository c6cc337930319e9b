// Package transport is node-to-node communication over gRPC: control-plane
// raft messages, the replication log stream, the snapshot stream and join
// requests. It moves bytes and enforces deadlines and reconnect backoff; it
// makes no replication decisions.
//
// Invariants:
//   - Raft messages are sent best-effort and never block the caller: a full
//     per-peer queue drops messages (raft retransmits).
//   - Connections are reused per peer address and re-dialled with backoff.
package transport
