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

// runInline runs the whole commands buffered in c's reader for as long as
// each may run in place, and reports whether it ran them all (false: the
// rest is for the connection's goroutine, and the replies so far are in
// c.conn.out, in order, before whatever it answers).
func (s *Server) runInline(c *client) bool {
	rd := c.rd
	for rd.r < rd.w {
		if c.quit || c.conn.closed || !c.authed || c.multi != nil || len(c.pending) > 0 {
			return false
		}
		name, ok := completeCommand(rd.buf[rd.r:rd.w])
		if !ok || len(name) > 16 {
			return false
		}
		var low [16]byte
		for i, b := range name {
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			low[i] = b
		}
		spec := s.cmds[string(low[:len(name)])]
		if spec == nil || !spec.inLoop {
			return false
		}
		if spec.inLoopReads {
			nr, ok := s.b.(engine.NowReader)
			if !ok {
				return false
			}
			r, err, ok := nr.ReadNow(c.cons, c.readFloor())
			if !ok {
				return false // it would wait: the goroutine reads
			}
			c.pre = preRead{r: r, err: err, set: true}
		}
		args, err := rd.next(c.ctx, false)
		if err != nil {
			// Not expected: completeCommand checked what next checks.
			c.pre = preRead{}
			if !s.readFailed(c, err) {
				c.quit = true
			}
			return false
		}
		s.handle(c, args)
		c.pre = preRead{}
		rd.release()
		s.inLoop.Add(1)
	}
	return true
}

// preRead is the read the loop made before running a command in place,
// for the command's c.read to take.
type preRead struct {
	r   engine.Reader
	err error
	set bool
}

// completeCommand reports whether b starts with a whole multibulk command
// that may run in place: at most maxInlineArgs arguments, small enough
// that reading it charges nothing to the request budget (freeCommandBytes),
// well formed. It returns the command's name. Anything else — an inline
// command, a partial or malformed one — is left to the goroutine's reader,
// which waits for the rest or answers the error.
func completeCommand(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0] != '*' {
		return nil, false
	}
	n, p, ok := headerAt(b, 1)
	if !ok || n <= 0 || n > maxInlineArgs {
		return nil, false
	}
	var name []byte
	var cost int64
	for i := range n {
		if p >= len(b) || b[p] != '$' {
			return nil, false
		}
		size, q, ok := headerAt(b, p+1)
		if !ok || size < 0 {
			return nil, false
		}
		if cost += size + argOverhead; cost > freeCommandBytes {
			return nil, false
		}
		end := int64(q) + size
		if end+2 > int64(len(b)) || b[end] != '\r' || b[end+1] != '\n' {
			return nil, false
		}
		if i == 0 {
			name = b[q:end]
		}
		p = int(end) + 2
	}
	return name, true
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
