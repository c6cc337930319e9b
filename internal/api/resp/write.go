package resp

import (
	"context"

	"github.com/replicant-db/replicant/internal/engine"
)

// write runs fn as one write command on the leader's write path. On
// failure it has answered; on success the caller writes the reply fn
// computed.
//
// fn runs once, on the writer's sequencer, against the newest state
// (including writes not yet committed). Whatever its outcome — a write, a
// no-op (SET NX on an existing key) or an error (INCR of a non-number) — the
// answer comes only once every state it read is committed (the writer holds
// no-ops and failures back until then), so every reply depends on committed
// state, and only a command that writes appends an entry.
func (c *client) write(fn func(tx engine.Txn) error) bool {
	if c.loop.notify != nil {
		// Run by the event loop, which must not wait: the handler is
		// not one of writesInLoop's kind. Decline, as writeThen would.
		c.loop.declined = true
		return false
	}
	if c.exec != nil {
		return c.exec.execWrite(c, fn)
	}
	t, err := c.s.b.Write(c.writeCtx(), c.s.writeFn(fn))
	if !t.IsZero() {
		c.observeWrite(t)
	}
	if err != nil {
		c.backendErr(err)
		return false
	}
	return true
}

// writeThen runs fn as write does and, if it succeeds, reply, which
// writes the reply from what fn computed. A command the event loop runs
// (c.loop set) has fn queued instead, without waiting, and reply called
// when the write is answered (queueWrite); when it cannot be queued at
// once, the command is marked declined, having replied nothing, and the
// loop hands it to the connection's goroutine, which runs it again from
// the start. So a handler calls writeThen last, after its checks, and
// replies nothing before it.
func (c *client) writeThen(fn func(tx engine.Txn) error, reply func()) {
	if c.loop.notify != nil {
		c.queueOrDecline(c.s.writeFn(fn), reply)
		return
	}
	if c.write(fn) {
		reply()
	}
}

// writeBlindThen is writeThen for a write that reads nothing and always
// writes (writeBlind).
func (c *client) writeBlindThen(fn func(tx engine.Txn), reply func()) {
	if c.loop.notify != nil {
		c.queueOrDecline(func(tx engine.Txn) error { fn(tx); return nil }, reply)
		return
	}
	if c.writeBlind(fn) {
		reply()
	}
}

// queueOrDecline queues fn for the command the loop is running, or marks
// the command declined.
func (c *client) queueOrDecline(fn func(tx engine.Txn) error, reply func()) {
	if c.s.queueWrite(c, fn, reply) {
		c.loop.queued = true
	} else {
		c.loop.declined = true
	}
}

// writeCtx is the context of the next write: the connection's, with the
// causal context REPLICANT.CONTEXT set for this one write (leaderless).
func (c *client) writeCtx() context.Context {
	ctx := c.ctx
	// The session's floor orders the write after the session's writes on
	// other sites (multi-leader; engine.WithWriteFloor), as it binds reads.
	floor := c.floor
	if c.cons.Level == engine.LevelSession {
		floor = floor.Later(c.token)
	}
	if floor.Vector != "" {
		ctx = engine.WithWriteFloor(ctx, floor)
	}
	if c.causal == "" {
		return ctx
	}
	ctx = engine.WithCausalContext(ctx, c.causal)
	c.causal = ""
	return ctx
}

// observeWrite records the token of a write's outcome.
func (c *client) observeWrite(t engine.Token) {
	c.observe(t)
	c.lastWrite = c.lastWrite.Later(t)
}

// writeBlind runs fn, which reads nothing and always writes, straight on
// the write path: with nothing to read there is no outcome a dry run could
// decide, so it is skipped (the hot path of plain SET).
func (c *client) writeBlind(fn func(tx engine.Txn)) bool {
	if c.loop.notify != nil {
		c.loop.declined = true // as write
		return false
	}
	if c.exec != nil {
		return c.exec.execWrite(c, func(tx engine.Txn) error { fn(tx); return nil })
	}
	t, err := c.s.b.Write(c.writeCtx(), func(tx engine.Txn) error {
		fn(tx)
		return nil
	})
	if err != nil {
		c.backendErr(err)
		return false
	}
	c.observeWrite(t)
	return true
}
