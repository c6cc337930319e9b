package resp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicant-db/replicant/internal/node"
)

// Protocol limits enforced before redcon sees the bytes (redcon itself
// buffers bulk strings of any size).
const (
	maxMultibulk   = 1 << 20  // arguments per command
	maxInline      = 64 << 10 // bytes per inline command line
	maxHeaderLine  = 32       // bytes of a "*<n>" or "$<n>" line before "\r\n"
	maxCommandFlat = 1 << 30  // bytes per command (Redis's query buffer limit)
	// Before AUTH, as Redis does: tiny commands only.
	maxUnauthMultibulk = 10
	maxUnauthBulk      = 16 << 10
	guardBufSize       = 16 << 10
)

// limits are the per-connection framing limits.
type limits struct {
	maxBulk    int64 // 2 × max value size + 1 MiB
	maxCommand int64
}

func newLimits(maxValue int) limits {
	if maxValue <= 0 {
		maxValue = node.DefaultMaxValueSize
	}
	l := limits{maxBulk: 2*int64(maxValue) + 1<<20}
	l.maxCommand = max(maxCommandFlat, 2*l.maxBulk)
	return l
}

// errProtocolClosed is returned to redcon after a protocol error reply was
// sent, so that it closes the connection without replying again.
var errProtocolClosed = errors.New("resp: protocol error; connection closed")

// guardListener wraps accepted connections in guardConn. It turns its own
// shutdown and fatal accept errors into net.ErrClosed, which is what makes
// redcon's accept loop return, and retries temporary accept errors.
type guardListener struct {
	net.Listener
	lim    limits
	closed atomic.Bool
	mu     sync.Mutex
	err    error // a fatal accept error
}

func (l *guardListener) Accept() (net.Conn, error) {
	delay := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return &guardConn{Conn: c, lim: l.lim, buf: make([]byte, guardBufSize)}, nil
		}
		if l.closed.Load() {
			return nil, net.ErrClosed
		}
		var te interface{ Temporary() bool }
		if errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed) {
			time.Sleep(delay)
			delay = min(2*delay, time.Second)
			continue
		}
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", net.ErrClosed, err)
	}
}

func (l *guardListener) shutdown() {
	l.closed.Store(true)
	_ = l.Listener.Close()
}

func (l *guardListener) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return fmt.Errorf("resp: accept: %w", l.err)
	}
	return nil
}

// Framing states.
const (
	stStart    = iota // at a command boundary
	stInline          // inside an inline command line
	stCount           // inside a "*<n>" line
	stBulkHdr         // expecting '$'
	stBulkLen         // inside a "$<n>" line
	stBulkData        // skipping bulk payload and its "\r\n"
)

// guardConn parses RESP framing as bytes stream through and refuses
// oversized or malformed input before redcon buffers it: it answers with a
// Redis protocol error and fails the read, so redcon closes just this
// connection. Commands before the bad bytes are still delivered and
// answered first. Empty multibulk headers ("*0", "*-1") are dropped, as
// Redis ignores them.
//
// Only the connection's redcon goroutine calls Read, and that goroutine
// also runs the commands, so reading client (for the auth state) is safe.
type guardConn struct {
	net.Conn
	lim    limits
	client *client

	buf   []byte
	r     int // buf[r:ready] is approved and not yet delivered
	ready int
	scan  int // buf[ready:scan] is a held "*<n>" line (stCount only)
	end   int // buf[scan:end] is not yet scanned

	st        int
	line      []byte // digits of the current header line
	hdrStart  int    // start of a held "*<n>" line in buf
	lineStart int    // start of the current "$<n>" line in buf
	args      int64  // arguments still expected
	remaining int64  // bulk bytes (with "\r\n") still to skip
	inline    int    // bytes of the current inline line
	cmdBytes  int64  // bytes of the current command
	boundary  bool   // a command ended since the last full delivery

	readErr  error  // to return once the approved bytes are delivered
	protoMsg string // protocol error to send before failing
}

func (g *guardConn) authRequired() bool { return g.client != nil && !g.client.authed }

// Read delivers approved bytes. While the command redcon is parsing is
// incomplete it keeps reading until p is full, so redcon (which re-parses
// a pending command from its start on every read) sees large commands in
// few, growing reads rather than many small ones. As soon as a complete
// command is delivered it returns, so a client waiting for a reply before
// sending more never waits on this loop.
func (g *guardConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	for {
		if g.r < g.ready {
			k := copy(p[n:], g.buf[g.r:g.ready])
			g.r += k
			n += k
			if n == len(p) {
				return n, nil
			}
		}
		// Everything approved is delivered.
		if n > 0 && (g.boundary || g.st == stStart || g.readErr != nil || g.protoMsg != "") {
			g.boundary = false
			return n, nil
		}
		if g.protoMsg != "" {
			g.sendProtocolError()
			return 0, errProtocolClosed
		}
		if g.scan < g.end {
			// Bytes left unscanned while unauthenticated (see process).
			g.process()
			continue
		}
		if g.readErr != nil {
			return 0, g.readErr
		}
		// Make room: keep only a held header line.
		if g.r == g.ready && g.ready > 0 {
			copy(g.buf, g.buf[g.ready:g.end])
			g.hdrStart -= g.ready
			g.lineStart -= g.ready
			g.scan -= g.ready
			g.end -= g.ready
			g.r, g.ready = 0, 0
		}
		if g.end == len(g.buf) {
			g.buf = append(g.buf, make([]byte, len(g.buf))...)
		}
		m, err := g.Conn.Read(g.buf[g.end:])
		g.end += m
		if err != nil {
			g.readErr = err
		}
		g.process()
	}
}

// process scans buf[scan:end] and advances ready. While the connection is
// not authenticated it stops after each complete command, so the limits
// for unauthenticated clients apply only to commands that are parsed
// before an AUTH has run, as in Redis.
func (g *guardConn) process() {
	unauth := g.authRequired()
	completed := false
	for g.scan < g.end && g.protoMsg == "" {
		switch g.st {
		case stStart:
			if unauth && completed {
				g.ready = g.scan
				return
			}
			g.cmdBytes = 0
			if g.buf[g.scan] == '*' {
				g.st = stCount
				g.hdrStart = g.scan
				g.line = g.line[:0]
				g.scan++
				g.cmdBytes++
			} else {
				g.st = stInline
				g.inline = 0
			}
		case stInline:
			i := bytes.IndexByte(g.buf[g.scan:g.end], '\n')
			if i < 0 {
				g.inline += g.end - g.scan
				g.scan = g.end
				if g.inline > maxInline {
					g.fail(g.scan, "Protocol error: too big inline request")
				}
				continue
			}
			g.inline += i + 1
			g.scan += i + 1
			if g.inline > maxInline+2 {
				g.fail(g.scan, "Protocol error: too big inline request")
				continue
			}
			g.st = stStart
			g.boundary, completed = true, true
		case stCount, stBulkLen:
			c := g.buf[g.scan]
			g.scan++
			g.cmdBytes++
			if c != '\n' {
				if len(g.line) >= maxHeaderLine {
					if g.st == stCount {
						g.fail(g.hdrStart, "Protocol error: too big mbulk count string")
					} else {
						g.fail(g.lineStart, "Protocol error: too big bulk count string")
					}
					continue
				}
				g.line = append(g.line, c)
				continue
			}
			if g.st == stCount {
				g.endCount(unauth)
			} else {
				g.endBulkLen(unauth)
			}
		case stBulkHdr:
			c := g.buf[g.scan]
			if c != '$' {
				g.fail(g.scan, fmt.Sprintf("Protocol error: expected '$', got '%c'", c))
				continue
			}
			g.lineStart = g.scan
			g.scan++
			g.cmdBytes++
			g.st = stBulkLen
			g.line = g.line[:0]
		case stBulkData:
			k := min(g.remaining, int64(g.end-g.scan))
			g.scan += int(k)
			g.remaining -= k
			if g.remaining == 0 {
				g.args--
				if g.args == 0 {
					g.st = stStart
					g.boundary, completed = true, true
				} else {
					g.st = stBulkHdr
				}
			}
		}
	}
	if g.protoMsg != "" {
		return // ready was set by fail
	}
	if g.st == stCount {
		g.ready = g.hdrStart // hold the header until its line is complete
	} else {
		g.ready = g.scan
	}
}

// endCount handles a complete "*<n>\r\n" line.
func (g *guardConn) endCount(unauth bool) {
	n, ok := parseHeaderLine(g.line)
	switch {
	case !ok || n > maxMultibulk:
		g.fail(g.hdrStart, "Protocol error: invalid multibulk length")
	case n <= 0:
		// Redis ignores empty multibulks: cut the line out of the stream.
		copy(g.buf[g.hdrStart:], g.buf[g.scan:g.end])
		g.end -= g.scan - g.hdrStart
		g.scan = g.hdrStart
		g.st = stStart
	case n > maxUnauthMultibulk && unauth:
		g.fail(g.hdrStart, "Protocol error: unauthenticated multibulk length")
	default:
		g.args = n
		g.st = stBulkHdr
	}
}

// endBulkLen handles a complete "$<n>\r\n" line.
func (g *guardConn) endBulkLen(unauth bool) {
	n, ok := parseHeaderLine(g.line)
	switch {
	case !ok || n < 0 || n > g.lim.maxBulk:
		g.fail(g.lineStart, "Protocol error: invalid bulk length")
	case n > maxUnauthBulk && unauth:
		g.fail(g.lineStart, "Protocol error: unauthenticated bulk length")
	case g.cmdBytes+n+2 > g.lim.maxCommand:
		g.fail(g.lineStart, "Protocol error: command exceeds the query buffer limit")
	default:
		g.cmdBytes += n + 2
		g.remaining = n + 2
		g.st = stBulkData
	}
}

// parseHeaderLine parses the digits of a header line ending in '\r'.
func parseHeaderLine(line []byte) (int64, bool) {
	if len(line) < 2 || line[len(line)-1] != '\r' {
		return 0, false
	}
	return parseInt(line[:len(line)-1])
}

// fail records a protocol error; bytes before at are still delivered.
func (g *guardConn) fail(at int, msg string) {
	g.protoMsg = msg
	g.ready = max(g.r, min(at, g.scan))
}

func (g *guardConn) sendProtocolError() {
	_ = g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = g.Conn.Write([]byte("-ERR " + g.protoMsg + "\r\n"))
	g.protoMsg = ""
	g.readErr = errProtocolClosed
}

// peerGone reports whether the client closed its connection, without
// blocking: a long-blocking command (WAIT) polls it so a departed client
// does not hold its goroutine. Bytes that arrive meanwhile are kept for
// the next Read.
func (g *guardConn) peerGone() bool {
	if g.readErr != nil {
		return !isTimeout(g.readErr)
	}
	if g.end == len(g.buf) {
		return false // no room to look; assume alive
	}
	_ = g.Conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err := g.Conn.Read(g.buf[g.end:])
	_ = g.Conn.SetReadDeadline(time.Time{})
	g.end += n
	if err != nil && !isTimeout(err) {
		g.readErr = err
		return true
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
