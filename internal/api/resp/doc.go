// Package resp serves the Redis protocol (RESP2 and RESP3) on top of a node.
// Replies are encoded with github.com/tidwall/redcon's appenders and inline
// commands split by its parser; connections and multibulk framing are read
// here (guard.go), because redcon's reader buffers a command of any size,
// grows its buffer by doubling, copies each command once more, and keeps
// the grown buffer for the connection's life: a 16 MiB SET cost 64 MiB
// while read and 32 MiB per connection afterwards.
//
// Invariants:
//   - One write command is one Engine.Write call, which becomes at most one
//     log entry (MSET, MSETNX, RENAME, … are atomic); a command whose outcome
//     changes nothing (SET NX on an existing key, DEL of a missing key)
//     writes no entry at all.
//   - EXEC runs a transaction's key commands in one Engine.Write closure,
//     so the transaction is at most one log entry; its commands run on a
//     stand-in client that shares nothing with the connection (tx.go).
//   - Replies never show uncommitted state. A write command runs once, in
//     an Engine.Write closure on the leader's write path, against the
//     newest state; whatever its outcome (a write, a no-op, an error such as
//     WRONGTYPE) it is answered only once every state it read is committed.
//   - Write commands compute their result inside the Txn closure and use
//     Txn.NowMs for every expiry decision, so the logical log records
//     absolute expiry times and replicas never re-evaluate a command.
//   - A blocking command (BLPOP, BLMOVE, …) waits outside the write path:
//     each attempt is one ordinary write command; the clients blocked on
//     a key are served in the order they blocked, by the write that made
//     the key ready, before that write's command returns; nothing blocks
//     inside EXEC (blocking.go).
//   - Replies on one connection are in request order (pipelining keeps
//     order; a connection's commands run one at a time).
//   - Malformed or oversized protocol input (bad framing, a bulk length
//     beyond twice the maximum value size plus 1 MiB, a command beyond
//     twice the maximum value and key sizes plus 1 MiB, more than
//     1,048,576 arguments, an inline line beyond 64 KiB) is answered with
//     a protocol error and closes only that connection, after at most
//     that many bytes were read; it never reaches a command and never
//     harms the server or its data. Keys and values above the configured
//     limits but below that guard get an ordinary error reply and nothing
//     is written.
//   - Memory: a command's arguments are read into allocations of their
//     exact sizes, reserved first from the request buffer budget (shared
//     with the HTTP API) and held until the command has run; a command
//     without room waits (its client held back by TCP) up to the budget's
//     wait limit, then is read past, answered -OOM and not run. Each
//     connection otherwise keeps only an 8 KiB read buffer and a reply
//     buffer of at most 64 KiB between commands.
//   - Connections: at most maxclients are open (Config.MaxClients, changed
//     at run time by CONFIG SET; more are answered
//     "-ERR max number of clients reached" and closed); a connection is
//     closed when it has not authenticated within AuthTimeout (with a
//     password set), when a started command has not fully arrived within
//     CommandTimeout, and when idle for IdleTimeout (off by default, as in
//     Redis).
//   - Plaintext connections are served by one event loop per Serve call
//     (evloop_linux.go; docs/design/eventloop.md): it waits in epoll, reads
//     ready sockets, and runs in place the reads that need no wait
//     (engine.NowReader), plain SETs and the common write commands
//     (writesInLoop), whose writes it queues on the write path and answers
//     when the write path notifies it (engine.NotifyWriter). A write
//     handler ends in writeThen; a write the loop cannot queue at once is
//     rewound to its first byte and run again by the goroutine, and is
//     counted once, when answered.
//     Everything else runs in the connection's own goroutine, which parks
//     in the loop between commands. One side owns a connection's buffers
//     at a time; the loop never waits (not on a socket, a lease, the
//     budget or a commit), and a write it queued that is not answered by
//     the write timeout goes to the goroutine, which answers its error.
//     TLS connections, every connection off Linux, and engines that
//     implement neither interface use a goroutine each in Go's poller.
//   - Every open connection is in the server's registry (CLIENT LIST,
//     CLIENT KILL); the fields other connections read from it are written
//     under the connection's pubMu. Killing a connection closes its socket
//     and cancels its context, so its own goroutine cleans up.
//   - INFO shows counters kept here (commandstats per command and
//     subcommand, errorstats per error kind, blocked clients), never
//     constants standing in for values replicant does not have.
//   - Each connection carries a token (the newest EPOCH:LSN its reads and
//     writes observed); session-consistency reads never observe state older
//     than it.
package resp
