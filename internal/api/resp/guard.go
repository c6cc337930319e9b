package resp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/replicant-db/replicant/internal/api/budget"
	"github.com/replicant-db/replicant/internal/engine"
)

// Protocol limits, checked as the bytes arrive so that nothing beyond them
// is ever buffered.
const (
	maxMultibulk  = 1 << 20  // arguments per command
	maxInline     = 64 << 10 // bytes per inline command line
	maxHeaderLine = 32       // bytes of a "*<n>" or "$<n>" line after '*'/'$', with its '\r'
	// Before AUTH, as Redis does: tiny commands only.
	maxUnauthMultibulk = 10
	maxUnauthBulk      = 16 << 10
	// readBufSize is the read buffer every connection keeps; only inline
	// lines grow it (to 64 KiB), and only while they are read.
	readBufSize = 8 << 10
	// The first freeCommandBytes of a command are not charged to the
	// budget, so ordinary small commands never touch its lock; like the
	// read buffer this is a fixed cost per connection, bounded by
	// maxclients.
	freeCommandBytes = 16 << 10
	// argOverhead is what an argument costs besides its bytes: its slice
	// header and allocation rounding.
	argOverhead = 32
)

// limits are the per-command size limits.
type limits struct {
	maxBulk    int64 // one argument: 2 × max value size + 1 MiB
	maxCommand int64 // one command: 2 × (max value + max key size) + 1 MiB
}

// newLimits derives the limits from the node's key and value limits. A
// value a little beyond the value limit still gets an ordinary error
// reply (nothing written) rather than a closed connection; a command is
// capped at about two maximal values and keys (MSET of two), so an
// oversized or unknown command is refused after a few tens of MiB, not
// buffered whole.
func newLimits(maxKey, maxValue int) limits {
	if maxValue <= 0 {
		maxValue = engine.DefaultMaxValueSize
	}
	if maxKey <= 0 {
		maxKey = engine.DefaultMaxKeySize
	}
	return limits{
		maxBulk:    2*int64(maxValue) + 1<<20,
		maxCommand: 2*(int64(maxValue)+int64(maxKey)) + 1<<20,
	}
}

// timeouts close connections that hold resources without using them.
// Zero or negative fields are off.
type timeouts struct {
	idle    time.Duration // no command started for this long
	auth    time.Duration // not authenticated this long after connecting
	command time.Duration // a started command not complete after this long
}

// protocolError is malformed or oversized input. It is answered with
// "-ERR <msg>" and closes that connection, as Redis does.
type protocolError string

func (e protocolError) Error() string { return string(e) }

// refusedError means a command was read and dropped, not run, because the
// request buffer budget had no room for it. It is answered and the
// connection goes on.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// timeoutError means a read deadline of the connection passed.
type timeoutError struct {
	what  string // "idle", "authentication" or "command"
	limit time.Duration
	err   error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s timeout (%v): %v", e.what, e.limit, e.err)
}
func (e *timeoutError) Unwrap() error { return e.err }

// cmdReader reads one connection's commands. It parses RESP framing
// itself and reads each bulk argument straight into an allocation of its
// exact size, after reserving that size from the budget: a command costs
// its own bytes once, nothing outlives it, and what does not fit the
// budget waits before it is read (the client is held back by TCP) instead
// of after. Limits are checked on headers, before the bytes they announce.
//
// Only the connection's goroutine uses a cmdReader; commands are parsed
// one at a time, each after the previous one ran, so the authentication
// state a command is parsed under is always current.
type cmdReader struct {
	nc     net.Conn
	lim    limits
	budget *budget.Budget
	to     timeouts
	// flush sends pending replies. It is called before every read, which
	// may block: a client waiting for replies before sending more must
	// get them.
	flush func() error

	buf  []byte
	r, w int   // buf[r:w] is read and not yet parsed
	err  error // sticky: the read side failed

	connected time.Time
	deadline  time.Time // the read deadline set on nc
	unauth    bool

	// The command being read.
	inCmd   bool
	started time.Time     // its first wait for bytes; zero if none yet
	waited  time.Duration // spent waiting for the budget, not the client's fault
	size    int64         // its protocol bytes, against lim.maxCommand
	cost    int64         // its memory
	held    int64         // budget bytes held for it
}

func newCmdReader(nc net.Conn, lim limits, b *budget.Budget, to timeouts, flush func() error) *cmdReader {
	return &cmdReader{nc: nc, lim: lim, budget: b, to: to, flush: flush,
		buf: make([]byte, readBufSize), connected: time.Now()}
}

// next reads the next command; its budget is held until release (or the
// next call). unauth applies the limits for unauthenticated clients.
// Errors: *protocolError, *refusedError, *timeoutError, or the
// connection's read error.
func (rd *cmdReader) next(ctx context.Context, unauth bool) ([][]byte, error) {
	rd.release()
	rd.unauth = unauth
	for {
		rd.inCmd, rd.started, rd.waited, rd.size, rd.cost = false, time.Time{}, 0, 0, 0
		if rd.r == rd.w {
			if len(rd.buf) > readBufSize {
				rd.buf = make([]byte, readBufSize) // an inline line grew it
			}
			if err := rd.more(); err != nil {
				return nil, err
			}
		}
		rd.inCmd = true
		var args [][]byte
		var err error
		if rd.buf[rd.r] == '*' {
			args, err = rd.multibulk(ctx)
		} else {
			args, err = rd.inline(ctx)
		}
		if err != nil || args != nil {
			return args, err
		}
		// An empty multibulk or a blank line: nothing to run.
	}
}

// buffered reports whether input beyond the command just read is already
// here (the client is pipelining).
func (rd *cmdReader) buffered() bool { return rd.r < rd.w }

// release returns the current command's budget.
func (rd *cmdReader) release() {
	rd.budget.Release(rd.held)
	rd.held = 0
}

func (rd *cmdReader) multibulk(ctx context.Context) ([][]byte, error) {
	line, err := rd.headerLine("Protocol error: too big mbulk count string")
	if err != nil {
		return nil, err
	}
	n, ok := parseHeaderLine(line)
	switch {
	case !ok || n > maxMultibulk:
		return nil, protocolError("Protocol error: invalid multibulk length")
	case n <= 0:
		return nil, nil // Redis ignores empty multibulks
	case n > maxUnauthMultibulk && rd.unauth:
		return nil, protocolError("Protocol error: unauthenticated multibulk length")
	}
	args := make([][]byte, 0, min(n, 16))
	var refused error
	for range n {
		if err := rd.want(1); err != nil {
			return nil, err
		}
		if c := rd.buf[rd.r]; c != '$' {
			return nil, protocolError(fmt.Sprintf("Protocol error: expected '$', got '%c'", c))
		}
		line, err := rd.headerLine("Protocol error: too big bulk count string")
		if err != nil {
			return nil, err
		}
		size, ok := parseHeaderLine(line)
		switch {
		case !ok || size < 0 || size > rd.lim.maxBulk:
			return nil, protocolError("Protocol error: invalid bulk length")
		case size > maxUnauthBulk && rd.unauth:
			return nil, protocolError("Protocol error: unauthenticated bulk length")
		}
		if rd.size += size + 2; rd.size > rd.lim.maxCommand {
			return nil, protocolError(fmt.Sprintf(
				"Protocol error: command exceeds the query buffer limit of %d bytes", rd.lim.maxCommand))
		}
		if refused == nil {
			if err := rd.charge(ctx, size+argOverhead); err != nil {
				if ctx.Err() != nil {
					return nil, err // the connection is closing
				}
				// Read past the rest of the command without keeping it,
				// so the connection stays in step and usable.
				refused, args = err, nil
				rd.release()
			}
		}
		if refused != nil {
			if err := rd.skip(size + 2); err != nil {
				return nil, err
			}
			continue
		}
		arg, err := rd.bulk(size)
		if err != nil {
			return nil, err
		}
		args = append(args, arg)
	}
	if refused != nil {
		return nil, &refusedError{refused}
	}
	return args, nil
}

// headerLine reads a "*<n>\r\n" or "$<n>\r\n" line and returns what
// follows the '*' or '$', with its '\r'.
func (rd *cmdReader) headerLine(tooBig string) ([]byte, error) {
	line, err := rd.line(1+maxHeaderLine, tooBig)
	if err != nil {
		return nil, err
	}
	rd.size += int64(len(line))
	return line[1 : len(line)-1], nil
}

// line reads up to and including the next '\n', failing with msg when the
// line has more than max bytes before it. The result is only valid until
// the next read.
func (rd *cmdReader) line(max int, msg string) ([]byte, error) {
	for {
		if i := bytes.IndexByte(rd.buf[rd.r:rd.w], '\n'); i >= 0 {
			if i > max {
				return nil, protocolError(msg)
			}
			line := rd.buf[rd.r : rd.r+i+1]
			rd.r += i + 1
			return line, nil
		}
		if rd.w-rd.r > max {
			return nil, protocolError(msg)
		}
		if err := rd.more(); err != nil {
			return nil, err
		}
	}
}

// bulk reads a bulk string's n bytes and its "\r\n" into a new slice.
func (rd *cmdReader) bulk(n int64) ([]byte, error) {
	arg := make([]byte, n)
	k := copy(arg, rd.buf[rd.r:rd.w])
	rd.r += k
	for k < len(arg) {
		if len(arg)-k >= len(rd.buf) {
			// Large: straight into the argument, no copy.
			m, err := rd.read(arg[k:])
			k += m
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := rd.more(); err != nil {
			return nil, err
		}
		m := copy(arg[k:], rd.buf[rd.r:rd.w])
		rd.r += m
		k += m
	}
	if err := rd.want(2); err != nil {
		return nil, err
	}
	if rd.buf[rd.r] != '\r' || rd.buf[rd.r+1] != '\n' {
		return nil, protocolError("Protocol error: invalid bulk length")
	}
	rd.r += 2
	return arg, nil
}

// skip discards n bytes.
func (rd *cmdReader) skip(n int64) error {
	for {
		k := min(n, int64(rd.w-rd.r))
		rd.r += int(k)
		if n -= k; n == 0 {
			return nil
		}
		if err := rd.more(); err != nil {
			return err
		}
	}
}

// inline reads a command written as a line of words (telnet style),
// split as redcon splits it (quotes and escapes included).
func (rd *cmdReader) inline(ctx context.Context) ([][]byte, error) {
	line, err := rd.line(maxInline+1, "Protocol error: too big inline request")
	if err != nil {
		return nil, err
	}
	if len(bytes.Trim(line, " \r\n")) == 0 {
		return nil, nil
	}
	// The line and its parsed copy.
	if err := rd.charge(ctx, 2*int64(len(line))); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, &refusedError{err}
	}
	cmd, err := redcon.Parse(line)
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "Protocol error") {
			msg = "Protocol error: " + msg
		}
		return nil, protocolError(msg)
	}
	return cmd.Args, nil
}

// charge adds cost to the current command and reserves from the budget
// whatever of it is beyond the free allowance, waiting if need be. A
// command never holds more than the whole budget: one larger than that
// runs alone instead of waiting for room that cannot exist.
func (rd *cmdReader) charge(ctx context.Context, cost int64) error {
	rd.cost += cost
	want := rd.cost - freeCommandBytes
	if c := rd.budget.Capacity(); c > 0 {
		want = min(want, c)
	}
	need := want - rd.held
	if need <= 0 {
		return nil
	}
	start := time.Now()
	err := rd.budget.Acquire(ctx, need)
	rd.waited += time.Since(start)
	if err != nil {
		return fmt.Errorf("command of %d+ bytes: %w", rd.cost, err)
	}
	rd.held += need
	return nil
}

// want makes sure n bytes are buffered.
func (rd *cmdReader) want(n int) error {
	for rd.w-rd.r < n {
		if err := rd.more(); err != nil {
			return err
		}
	}
	return nil
}

// more reads at least one more byte into the buffer, making room first:
// compacting, or growing it when a line fills all of it (lines are
// length-checked before they get here).
func (rd *cmdReader) more() error {
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	}
	if rd.w == len(rd.buf) {
		if rd.r > 0 {
			rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.r = 0
		} else {
			rd.buf = append(rd.buf, make([]byte, len(rd.buf))...)
		}
	}
	n, err := rd.read(rd.buf[rd.w:])
	rd.w += n
	if n > 0 {
		return nil // err is sticky and returned by the next read
	}
	return err
}

// read reads into p from the connection, under the deadline that applies.
func (rd *cmdReader) read(p []byte) (int, error) {
	if rd.err != nil {
		return 0, rd.err
	}
	if err := rd.flush(); err != nil {
		rd.err = err
		return 0, err
	}
	rd.setDeadline()
	n, err := rd.nc.Read(p)
	if err != nil {
		rd.err = rd.readError(err)
		if n == 0 {
			return 0, rd.err
		}
	}
	return n, nil
}

// setDeadline sets the earliest of the deadlines that apply, touching the
// connection only when it changes (the common case, no timeouts between
// commands, never does).
func (rd *cmdReader) setDeadline() {
	var d time.Time
	earliest := func(t time.Time) {
		if d.IsZero() || t.Before(d) {
			d = t
		}
	}
	if rd.unauth && rd.to.auth > 0 {
		earliest(rd.connected.Add(rd.to.auth))
	}
	if rd.inCmd {
		if rd.started.IsZero() {
			rd.started = time.Now()
		}
		if rd.to.command > 0 {
			earliest(rd.started.Add(rd.to.command + rd.waited))
		}
	} else if rd.to.idle > 0 {
		earliest(time.Now().Add(rd.to.idle))
	}
	if !d.Equal(rd.deadline) {
		_ = rd.nc.SetReadDeadline(d)
		rd.deadline = d
	}
}

// readError names the timeout that fired.
func (rd *cmdReader) readError(err error) error {
	if !isTimeout(err) {
		return err
	}
	switch {
	case rd.unauth && rd.to.auth > 0 && !time.Now().Before(rd.connected.Add(rd.to.auth)):
		return &timeoutError{"authentication", rd.to.auth, err}
	case rd.inCmd:
		return &timeoutError{"command", rd.to.command, err}
	default:
		return &timeoutError{"idle", rd.to.idle, err}
	}
}

// parseHeaderLine parses the digits of a header line ending in '\r'.
func parseHeaderLine(line []byte) (int64, bool) {
	if len(line) < 2 || line[len(line)-1] != '\r' {
		return 0, false
	}
	return parseInt(line[:len(line)-1])
}

// peerGone reports whether the client closed its connection, without
// blocking: a long-blocking command (WAIT) polls it so a departed client
// does not hold its goroutine. Bytes that arrive meanwhile are kept for
// the next command.
func (rd *cmdReader) peerGone() bool {
	if rd.err != nil {
		return !isTimeout(rd.err)
	}
	if rd.w == len(rd.buf) {
		if rd.r == 0 {
			return false // no room to look; assume alive
		}
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	}
	_ = rd.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err := rd.nc.Read(rd.buf[rd.w:])
	_ = rd.nc.SetReadDeadline(rd.deadline)
	rd.w += n
	if err != nil && !isTimeout(err) {
		rd.err = err
		return true
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
