// Package resp serves the Redis protocol (RESP2 and RESP3) on top of a node,
// using github.com/tidwall/redcon for connection handling and parsing.
//
// Invariants:
//   - One write command is one Backend.Write call, which becomes at most one
//     log entry (MSET, MSETNX, RENAME, … are atomic); a command whose outcome
//     changes nothing (SET NX on an existing key, DEL of a missing key)
//     writes no entry at all.
//   - Replies never show uncommitted state. A write command first runs as
//     a dry run against the committed state (a linearizable read); if that
//     changes nothing or fails, it is the answer. Otherwise the command
//     runs in a Backend.Write closure and is answered after its entry is
//     committed; should the newest state give a different outcome there (a
//     concurrent write not yet committed), the proposal is dropped and the
//     command retried, so no entry is written for a no-op.
//   - Write commands compute their result inside the Txn closure and use
//     Txn.NowMs for every expiry decision, so the logical log records
//     absolute expiry times and replicas never re-evaluate a command.
//   - Replies on one connection are in request order (pipelining keeps
//     order; a connection's commands run one at a time).
//   - Malformed or oversized protocol input (bad framing, a bulk length
//     beyond twice the maximum value size plus 1 MiB, more than 1,048,576
//     arguments, an inline line beyond 64 KiB) is answered with a protocol
//     error and closes only that connection; it never reaches a command
//     and never harms the server or its data. Keys and values above the
//     configured limits but below that guard get an ordinary error reply
//     and nothing is written.
//   - Each connection carries a token (the newest EPOCH:LSN its reads and
//     writes observed); session-consistency reads never observe state older
//     than it.
package resp
