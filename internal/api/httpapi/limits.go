package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errBodyTooLarge is returned by readBody for a body beyond its limit.
var errBodyTooLarge = errors.New("request body too large")

// readBody reads r's body, at most limit bytes, into memory reserved from
// the budget first, so that many concurrent large bodies wait for each
// other instead of all being buffered. With a Content-Length the body is
// read into one allocation of that size; without one (chunked) the buffer
// grows in reserved steps. release returns the reservation; call it once
// the body is no longer referenced (after the write). On error the status
// to answer with is returned and nothing is held.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), code int, err error) {
	// The body must arrive within BodyTimeout, counted from when reading
	// starts (after any wait for the budget: the wait is not the client's
	// fault). Only after a complete body is the deadline lifted, since
	// net/http cancels the request's context when a read deadline passes
	// while the handler runs; after a failure it stays, so that the
	// draining net/http does after the handler cannot hang either.
	rc := http.NewResponseController(w)
	setDeadline := func() {
		if s.cfg.BodyTimeout > 0 {
			_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
		}
	}
	setDeadline()
	var held int64
	release = func() {
		s.cfg.Budget.Release(held)
		held = 0
	}
	// reserve makes the reservation total bytes (at most the whole
	// budget: a body larger than that is read alone).
	reserve := func(total int64) error {
		if c := s.cfg.Budget.Capacity(); c > 0 {
			total = min(total, c)
		}
		if need := total - held; need > 0 {
			if err := s.cfg.Budget.Acquire(r.Context(), need); err != nil {
				return fmt.Errorf("request buffer budget: %w", err)
			}
			held += need
			setDeadline()
		}
		return nil
	}
	fail := func(code int, err error) ([]byte, func(), int, error) {
		release()
		return nil, func() {}, code, err
	}
	done := func() ([]byte, func(), int, error) {
		if s.cfg.BodyTimeout > 0 {
			_ = rc.SetReadDeadline(time.Time{})
		}
		return body, release, 0, nil
	}
	if r.ContentLength > limit {
		return fail(http.StatusRequestEntityTooLarge, fmt.Errorf("%w: %d bytes, limit %d", errBodyTooLarge, r.ContentLength, limit))
	}
	if r.ContentLength >= 0 {
		if err := reserve(r.ContentLength); err != nil {
			return fail(http.StatusServiceUnavailable, err)
		}
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return fail(http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		}
		return done()
	}
	const first = 64 << 10
	if err := reserve(first); err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	body = make([]byte, 0, first)
	for {
		if len(body) == cap(body) {
			if int64(len(body)) > limit {
				return fail(http.StatusRequestEntityTooLarge, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit))
			}
			next := min(2*int64(cap(body)), limit+1)
			if err := reserve(next); err != nil {
				return fail(http.StatusServiceUnavailable, err)
			}
			body = append(make([]byte, 0, next), body...)
		}
		n, err := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		}
	}
	if int64(len(body)) > limit {
		return fail(http.StatusRequestEntityTooLarge, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit))
	}
	return done()
}

// limitListener closes connections beyond max, after a 503 saying why, so
// that idle or slow clients cannot exhaust file descriptors and memory.
type limitListener struct {
	net.Listener
	max      int64
	open     atomic.Int64
	rejected atomic.Uint64
}

const tooManyConns = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: application/json\r\nConnection: close\r\nContent-Length: 42\r\n\r\n" +
	`{"error":"max number of clients reached"}` + "\n"

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &countedConn{Conn: c, release: sync.OnceFunc(func() { l.open.Add(-1) })}, nil
		}
		l.open.Add(-1)
		l.rejected.Add(1)
		// A new socket's send buffer is empty: this does not block.
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, tooManyConns)
		_ = c.Close()
	}
}

// countedConn gives its slot back when closed (net/http may close twice).
type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
