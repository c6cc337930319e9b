package resp

import (
	"bytes"

	"github.com/replicant-db/replicant/internal/engine"
)

// Commands the event loop runs in place (evloop_linux.go). Each one
// answers from one read of the node's state, or from nothing, and never
// waits: no write (a write waits for its commit), nothing blocking, nothing
// that touches another connection or the socket itself.

// maxInlineArgs caps the arguments of a command run in place; more (a
// large MGET) go to the connection's goroutine.
const maxInlineArgs = 64

// maxLoopRun caps the commands (other than queued SETs) the loop runs in
// place from one read: a client pipelining more brings its goroutine
// enough work to be worth waking, and the goroutines of several such
// clients run on every core, where the one loop runs on one (GET with
// redis-benchmark -P 16 ran at 0.64× the goroutines' rate without it).
const maxLoopRun = 4

// runsInLoop reports whether the loop may run the command name, and
// whether it reads the node's state (and so needs a read that does not
// wait).
func runsInLoop(name string) (ok, reads bool) {
	switch name {
	case "ping", "echo":
		return true, false
	case "get", "mget", "exists", "strlen", "getrange", "substr", "getbit",
		"ttl", "pttl", "expiretime", "pexpiretime", "type",
		"hget", "hmget", "hexists", "hlen", "hstrlen",
		"scard", "sismember", "smismember",
		"llen", "lindex", "lrange",
		"zscore", "zmscore", "zcard", "zrank", "zrevrank":
		return true, true
	}
	return false, false
}

// writesInLoop reports whether the loop may run the write command name:
// its handler does its checks, replies nothing unless one fails, and ends
// in one writeThen, which the loop turns into a queued write (queueWrite).
// Commands of many arguments (MSET) stay with the goroutines: the loop
// parses and checks every argument on its one core, and MSET of 10 keys
// ran at 0.84–0.94× in the loop (docs/benchmarks.md §18).
func writesInLoop(name string) bool {
	switch name {
	case "set", "setnx", "setex", "psetex", "getset", "getdel", "append",
		"incr", "decr", "incrby", "decrby", "incrbyfloat",
		"lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop",
		"sadd", "srem", "spop", "hset", "hmset", "hdel", "hsetnx", "hincrby",
		"zadd", "zincrby", "zrem", "zpopmin", "zpopmax",
		"del", "unlink", "expire", "pexpire":
		return true
	}
	return false
}

// loopCmd is the state of a write command the loop runs (runInline): the
// notification its queued write will call, the command, and whether
// writeThen queued its write or declined (it could not be queued at
// once, and the command is left to the connection's goroutine).
type loopCmd struct {
	notify           func(*loopWrite)
	spec             *command
	args             [][]byte
	queued, declined bool
}

// inlineResult says how far runInline got.
type inlineResult int

const (
	inlineAll       inlineResult = iota // every buffered command ran (or is queued)
	inlineWait                          // the next command waits for the replies of queued writes
	inlineGoroutine                     // the rest is for the connection's goroutine
)

// runInline runs the whole commands buffered in c's reader for as long as
// each may run in place: reads that need no wait, and plain SETs, which
// it queues on the write path (their replies come when the loop hears
// their outcome, answerReady). Replies stay in order: any other command
// waits until the queued writes before it are answered. queued is the
// event loop's notification for a queued write (nil: no SET is queued).
func (s *Server) runInline(c *client, queued func(*loopWrite)) inlineResult {
	rd := c.rd
	ran := 0
	for rd.r < rd.w {
		if c.quit || c.conn.closed || !c.authed || c.multi != nil {
			return inlineGoroutine
		}
		cmd, ok := completeCommand(rd.buf[rd.r:rd.w])
		if !ok || len(cmd.name) > 16 {
			return inlineGoroutine
		}
		var low [16]byte
		for i, b := range cmd.name {
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			low[i] = b
		}
		name := low[:len(cmd.name)]
		// Not while a client blocks on keys or a script writes: a SET
		// then wakes or waits, as the ordinary path knows how.
		if queued != nil && cmd.argc == 3 && string(name) == "set" &&
			s.blocks.waiting.Load() == 0 && s.scripts.writing.Load() == nil {
			if len(c.pending) >= maxPipelined {
				return inlineWait
			}
			if !s.queueSet(c, cmd.key, cmd.val, queued) {
				if len(c.pending) > 0 {
					return inlineWait // after the queued ones, the goroutine's way
				}
				return inlineGoroutine
			}
			rd.r += cmd.size
			s.inLoop.Add(1)
			continue
		}
		if len(c.pending) > 0 {
			return inlineWait
		}
		spec := s.cmds[string(name)]
		if spec == nil || !spec.inLoop || ran == maxLoopRun {
			return inlineGoroutine
		}
		if spec.inLoopWrites && (queued == nil ||
			s.blocks.waiting.Load() != 0 || s.scripts.writing.Load() != nil) {
			// A write then serves blocked clients or waits for the
			// script, as the goroutine's path knows how.
			return inlineGoroutine
		}
		ran++
		if spec.inLoopReads {
			nr, ok := s.b.(engine.NowReader)
			if !ok {
				return inlineGoroutine
			}
			r, err, ok := nr.ReadNow(c.cons, c.readFloor())
			if !ok {
				return inlineGoroutine // it would wait: the goroutine reads
			}
			c.pre = preRead{r: r, err: err, set: true}
		}
		at := rd.r
		args, err := rd.next(c.ctx, false)
		if err != nil {
			// Not expected: completeCommand checked what next checks.
			c.pre = preRead{}
			if !s.readFailed(c, err) {
				c.quit = true
			}
			return inlineGoroutine
		}
		if spec.inLoopWrites {
			c.loop = loopCmd{notify: queued, spec: spec, args: args}
		}
		s.handle(c, args)
		declined := c.loop.declined
		c.pre, c.loop = preRead{}, loopCmd{}
		rd.release()
		if declined {
			// Nothing ran and nothing was answered: the goroutine
			// reads the command again and writes the ordinary way.
			rd.r = at
			return inlineGoroutine
		}
		s.inLoop.Add(1)
	}
	return inlineAll
}

// preRead is the read the loop made before running a command in place,
// for the command's c.read to take.
type preRead struct {
	r   engine.Reader
	err error
	set bool
}

// peeked is a whole command found in the read buffer: its name, its
// argument count, its first two arguments after the name (nil when
// absent) and its size in bytes. The slices point into the buffer.
type peeked struct {
	name, key, val []byte
	argc           int
	size           int
}

// completeCommand reports whether b starts with a whole multibulk command
// that may run in place: at most maxInlineArgs arguments, small enough
// that reading it charges nothing to the request budget (freeCommandBytes),
// well formed. It returns the command's name. Anything else — an inline
// command, a partial or malformed one — is left to the goroutine's reader,
// which waits for the rest or answers the error.
func completeCommand(b []byte) (peeked, bool) {
	var cmd peeked
	if len(b) == 0 || b[0] != '*' {
		return cmd, false
	}
	n, p, ok := headerAt(b, 1)
	if !ok || n <= 0 || n > maxInlineArgs {
		return cmd, false
	}
	var cost int64
	for i := range n {
		if p >= len(b) || b[p] != '$' {
			return cmd, false
		}
		size, q, ok := headerAt(b, p+1)
		if !ok || size < 0 {
			return cmd, false
		}
		if cost += size + argOverhead; cost > freeCommandBytes {
			return cmd, false
		}
		end := int64(q) + size
		if end+2 > int64(len(b)) || b[end] != '\r' || b[end+1] != '\n' {
			return cmd, false
		}
		switch i {
		case 0:
			cmd.name = b[q:end:end]
		case 1:
			cmd.key = b[q:end:end]
		case 2:
			cmd.val = b[q:end:end]
		}
		p = int(end) + 2
	}
	cmd.argc, cmd.size = int(n), p
	return cmd, true
}

// headerAt parses the digits of a "*<n>\r\n" or "$<n>\r\n" line starting
// at b[i] (after the '*' or '$') and returns them and where the next line
// starts.
func headerAt(b []byte, i int) (int64, int, bool) {
	end := min(len(b), i+maxHeaderLine+1)
	if i >= end {
		return 0, 0, false
	}
	j := bytes.IndexByte(b[i:end], '\n')
	if j < 0 {
		return 0, 0, false
	}
	v, ok := parseHeaderLine(b[i : i+j])
	return v, i + j + 1, ok
}
