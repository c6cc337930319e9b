package resp

import (
	"bytes"
	"sync/atomic"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// Pipelined writes. A client that sends many commands without waiting for
// replies (redis-benchmark -P, a bulk load, a client library's pipeline)
// would otherwise get one commit round — an fsync, and under a sync policy
// a follower's fsync — per command, because the connection waits for each
// write before reading the next. Instead, while further input is already
// buffered, a plain SET is queued on the write path without waiting
// (engine.AsyncWriter keeps one connection's writes in order) and its
// reply is written when the connection next has to wait: before it reads
// from the socket (so a client waiting for replies always gets them), and
// before any other command runs (so that command sees the writes before it,
// and replies stay in order). The queued writes of many connections then
// share group commits, and their replies one write syscall.

// maxPipelined caps the writes a connection has queued; each holds its key
// and value (copied, charged to the request buffer budget) until answered.
const maxPipelined = 64

// maxPipelinedValue: larger values take the ordinary path, which reads them
// in place instead of copying.
const maxPipelinedValue = 64 << 10

type pipelined struct {
	wait  func() (engine.Token, error)
	start time.Time
	held  int64
	// lw is set for a write the event loop queued (evloop_linux.go).
	lw *loopWrite
	// A command other than a plain SET, queued by the event loop
	// (queueWrite): its spec and arguments, for the statistics and the
	// blocked clients it may serve once answered, and its reply, written
	// from what its write computed. All nil for a queued SET.
	spec  *command
	args  [][]byte
	reply func()
}

// loopWrite is the event loop's record of a write it queued: answered is
// set by the write path's notification, settled once the reply is
// written (by the loop, or by the goroutine's drain).
type loopWrite struct {
	answered, settled atomic.Bool
	deadline          time.Time
	timed             bool // in the loop's deadlines (the loop's own)
}

// pipelineSet queues args when it is a plain SET (no options) that may be
// pipelined now, and reports whether it did; the reply comes from drain.
func (s *Server) pipelineSet(c *client, args [][]byte) bool {
	if len(args) != 3 || !bytes.EqualFold(args[0], []byte("set")) || !c.rd.buffered() {
		return false
	}
	return s.queueSet(c, args[1], args[2], nil)
}

// queueSet queues SET key val on the write path without waiting for it,
// and reports whether it did; the reply comes from drain (or, for the
// event loop, which passes notify, from answerReady). With notify it
// never waits at all: not for the request budget, not for the queue.
func (s *Server) queueSet(c *client, key, val []byte, notify func(*loopWrite)) bool {
	if !c.authed || c.quit || c.multi != nil || len(c.pending) >= maxPipelined || len(val) > maxPipelinedValue {
		return false
	}
	if s.b.CheckKey(key) != nil || s.b.CheckValue(len(val)) != nil || engine.IsReserved(key) {
		return false // the ordinary path answers the error
	}
	held := int64(len(key) + len(val) + argOverhead)
	if notify != nil {
		if !s.cfg.Budget.TryAcquire(held) {
			return false
		}
	} else if s.cfg.Budget != nil && s.cfg.Budget.Acquire(c.ctx, held) != nil {
		return false
	}
	buf := make([]byte, len(key)+len(val))
	copy(buf, key)
	copy(buf[len(key):], val)
	key, val = buf[:len(key):len(key)], buf[len(key):]
	fn := func(tx engine.Txn) error {
		tx.Set(key, val, 0)
		return nil
	}
	start := time.Now()
	var wait func() (engine.Token, error)
	var lw *loopWrite
	if notify != nil {
		if nw, ok := s.b.(engine.NotifyWriter); ok {
			lw = &loopWrite{deadline: start.Add(s.writeTimeout)}
			wait = nw.WriteNotify(c.ctx, fn, func() { notify(lw) })
		}
	} else if aw, ok := s.b.(engine.AsyncWriter); ok {
		wait = aw.WriteAsync(c.ctx, fn)
	}
	if wait == nil { // it would wait (a switchover pausing writes…): the ordinary path
		s.cfg.Budget.Release(held)
		return false
	}
	s.cmdsTotal.Add(1)
	s.pipelined.Add(1)
	c.setLast(start, "set")
	c.pending = append(c.pending, pipelined{wait: wait, start: start, held: held, lw: lw})
	return true
}

// queueWrite queues fn (as the engine is to run it: writeFn applied
// where needed), the write of the command the event loop is running
// (c.loop), without waiting, and reports whether it did; reply
// writes the command's reply once the write is answered (answerReady).
// The command's arguments are its own allocations (cmdReader.bulk), so
// fn and reply may keep them. A connection has at most one such write
// queued (runInline runs no command while replies are pending), so like
// the command's own bytes, which cost the request budget nothing up to
// freeCommandBytes, it is not charged to the budget.
func (s *Server) queueWrite(c *client, fn func(engine.Txn) error, reply func()) bool {
	nw, ok := s.b.(engine.NotifyWriter)
	if !ok {
		return false
	}
	start := time.Now()
	lw := &loopWrite{deadline: start.Add(s.writeTimeout)}
	notify := c.loop.notify
	wait := nw.WriteNotify(c.writeCtx(), fn, func() { notify(lw) })
	if wait == nil {
		return false
	}
	c.pending = append(c.pending, pipelined{wait: wait, start: start, lw: lw,
		spec: c.loop.spec, args: c.loop.args, reply: reply})
	return true
}

// answerReady writes the replies of the leading queued writes whose
// outcome is known, without waiting. It reports false when the next
// answered write must be finished by the connection's goroutine: one
// that may serve a client blocked on its keys, which waits for that
// client's try (blocking.go).
func (c *client) answerReady() bool {
	i := 0
	ok := true
	for ; i < len(c.pending) && c.pending[i].lw != nil && c.pending[i].lw.answered.Load(); i++ {
		if p := c.pending[i]; p.spec != nil && mayServeBlocked(p.spec) && c.s.blocks.waiting.Load() > 0 {
			ok = false
			break
		}
	}
	if i > 0 {
		c.answer(c.pending[:i])
		c.pending = c.pending[:copy(c.pending, c.pending[i:])]
	}
	return ok
}

// drain waits for the connection's queued writes, in order, and writes
// their replies.
func (c *client) drain() {
	if len(c.pending) == 0 {
		return
	}
	c.answer(c.pending)
	c.pending = c.pending[:0]
}

// answer waits for the writes ps, in order, and writes their replies.
func (c *client) answer(ps []pipelined) {
	set := c.s.cmds["set"]
	for i, p := range ps {
		spec := p.spec
		if spec == nil {
			spec = set
		}
		t, err := p.wait()
		if p.lw != nil {
			p.lw.settled.Store(true)
		}
		if c.s.cfg.Budget != nil {
			c.s.cfg.Budget.Release(p.held)
		}
		c.failed, c.rejected, c.wroteNothing = false, false, false
		switch {
		case err != nil:
			if !t.IsZero() {
				c.observeWrite(t)
			}
			c.backendErr(err)
		case p.reply != nil:
			c.observeWrite(t)
			p.reply()
		default:
			c.observeWrite(t)
			c.ok()
		}
		d := time.Since(p.start)
		spec.metrics.observe(c.failed, d)
		c.s.stats.executed(spec, c, d)
		if p.args != nil {
			c.s.slowlog.observe(c, p.args, d)
			c.s.written(c, spec, p.args)
		}
		ps[i] = pipelined{}
	}
}
