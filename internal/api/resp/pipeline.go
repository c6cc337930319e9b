package resp

import (
	"bytes"
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
}

// pipelineSet queues args when it is a plain SET (no options) that may be
// pipelined now, and reports whether it did; the reply comes from drain.
func (s *Server) pipelineSet(c *client, args [][]byte) bool {
	aw, ok := s.b.(engine.AsyncWriter)
	if !ok || !c.authed || c.quit || c.multi != nil || len(args) != 3 || len(c.pending) >= maxPipelined ||
		!bytes.EqualFold(args[0], []byte("set")) || !c.rd.buffered() || len(args[2]) > maxPipelinedValue {
		return false
	}
	key, val := args[1], args[2]
	if s.b.CheckKey(key) != nil || s.b.CheckValue(len(val)) != nil || engine.IsReserved(key) {
		return false // the ordinary path answers the error
	}
	held := int64(len(key) + len(val) + argOverhead)
	if s.cfg.Budget != nil && s.cfg.Budget.Acquire(c.ctx, held) != nil {
		return false
	}
	buf := make([]byte, len(key)+len(val))
	copy(buf, key)
	copy(buf[len(key):], val)
	key, val = buf[:len(key):len(key)], buf[len(key):]
	start := time.Now()
	wait := aw.WriteAsync(c.ctx, func(tx engine.Txn) error {
		tx.Set(key, val, 0)
		return nil
	})
	if wait == nil { // a switchover is pausing writes: the ordinary path
		if s.cfg.Budget != nil {
			s.cfg.Budget.Release(held)
		}
		return false
	}
	s.cmdsTotal.Add(1)
	s.pipelined.Add(1)
	c.setLast(start, "set")
	c.pending = append(c.pending, pipelined{wait: wait, start: start, held: held})
	return true
}

// drain waits for the connection's queued writes, in order, and writes
// their replies.
func (c *client) drain() {
	if len(c.pending) == 0 {
		return
	}
	m := c.s.unknown
	if spec := c.s.cmds["set"]; spec != nil {
		m = spec.metrics
	}
	for i, p := range c.pending {
		t, err := p.wait()
		if c.s.cfg.Budget != nil {
			c.s.cfg.Budget.Release(p.held)
		}
		c.failed, c.rejected = false, false
		if err != nil {
			if !t.IsZero() {
				c.observeWrite(t)
			}
			c.backendErr(err)
		} else {
			c.observeWrite(t)
			c.ok()
		}
		d := time.Since(p.start)
		m.observe(c.failed, d)
		c.s.stats.executed(c.s.cmds["set"], c, d)
		c.pending[i] = pipelined{}
	}
	c.pending = c.pending[:0]
}
