// Package transport is node-to-node communication over gRPC: control-plane
// raft messages, the replication log stream, the snapshot stream and join
// requests. It moves bytes and enforces deadlines and reconnect backoff; it
// makes no replication decisions.
//
// Invariants:
//   - Raft messages are sent best-effort and never block the caller: a full
//     per-peer queue drops messages (raft retransmits).
//   - Connections are reused per peer address and re-dialled with backoff.
//   - With a cluster secret, every RPC (raft, log stream, snapshot, join,
//     position) is refused as Unauthenticated unless it carries the secret,
//     before any handler runs. The secret travels in call metadata, so
//     without TLS it protects against strangers, not eavesdroppers.
//   - With server TLS (mutual: see WithServerTLS), a connection whose peer
//     does not present a certificate from the cluster's CA fails in the
//     handshake, so no RPC of it reaches an interceptor or a handler. A
//     pool with client TLS reads its configuration at each (re)connect.
package transport
