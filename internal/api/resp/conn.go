package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
)

const (
	// maxKeptOut is the reply buffer capacity a connection keeps between
	// flushes; a larger one (a big MGET) is dropped once sent.
	maxKeptOut = 64 << 10
	// directWriteBulk: bulk replies this large are sent from where they
	// are instead of being copied into the reply buffer.
	directWriteBulk = 64 << 10
)

// conn is one connection's reply writer: replies are encoded with redcon's
// appenders into out and sent when the connection's reader is about to
// block, so pipelined commands get their replies together.
type conn struct {
	nc     net.Conn
	out    []byte
	err    error // the first write error; later replies are dropped
	closed bool
	// held: the event loop runs the connection's commands and sends
	// their replies; nothing may write to the socket (or wait on it).
	held bool
}

func (c *conn) WriteError(msg string)    { c.out = redcon.AppendError(c.out, msg) }
func (c *conn) WriteString(s string)     { c.out = redcon.AppendString(c.out, s) }
func (c *conn) WriteInt64(n int64)       { c.out = redcon.AppendInt(c.out, n) }
func (c *conn) WriteBulkString(s string) { c.out = redcon.AppendBulkString(c.out, s) }
func (c *conn) WriteArray(n int)         { c.out = redcon.AppendArray(c.out, n) }
func (c *conn) WriteNull()               { c.out = redcon.AppendNull(c.out) }
func (c *conn) WriteRaw(b []byte)        { c.out = append(c.out, b...) }

func (c *conn) WriteBulk(b []byte) {
	if len(b) < directWriteBulk || c.nc == nil || c.held { // nc nil: a buffer (tx.go)
		c.out = redcon.AppendBulk(c.out, b)
		return
	}
	// A large value (GET of 16 MiB) would otherwise exist twice.
	c.out = strconv.AppendInt(append(c.out, '$'), int64(len(b)), 10)
	c.out = append(c.out, '\r', '\n')
	if c.err == nil {
		bufs := net.Buffers{c.out, b}
		_, c.err = bufs.WriteTo(c.nc)
	}
	c.out = append(c.out[:0], '\r', '\n')
}

// flush sends the pending replies.
func (c *conn) flush() error {
	if c.err != nil || len(c.out) == 0 || c.nc == nil || c.held { // nc nil: a buffer (tx.go)
		return c.err
	}
	_, c.err = c.nc.Write(c.out)
	if cap(c.out) > maxKeptOut {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return c.err
}

// Close sends the pending replies and closes the connection.
func (c *conn) Close() error {
	_ = c.flush()
	c.closed = true
	if c.nc == nil { // a reply buffer (tx.go)
		return nil
	}
	return c.nc.Close()
}

// acceptLoop accepts connections until ln fails, handing each to serve.
// It retries temporary accept errors, returns nil once closing is set,
// and answers connections beyond MaxClients itself.
func (s *Server) acceptLoop(ln net.Listener, closing *atomic.Bool, serve func(net.Conn)) error {
	delay := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if closing.Load() {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				time.Sleep(delay)
				delay = min(2*delay, time.Second)
				continue
			}
			return fmt.Errorf("resp: accept: %w", err)
		}
		delay = 5 * time.Millisecond
		if n, limit := s.clients.Add(1), s.maxClients.Load(); limit > 0 && n > limit {
			s.clients.Add(-1)
			s.rejectedConns.Add(1)
			// As Redis: say why, then close. A new socket's send buffer
			// is empty, so this write does not block. A TLS client would
			// read plaintext as a broken record: it is only closed.
			if s.cfg.TLS == nil {
				_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
			}
			_ = nc.Close()
			continue
		}
		s.connsTotal.Add(1)
		if s.cfg.TLS != nil {
			// The handshake runs in the connection's goroutine
			// (serveConn), never in this loop.
			nc = tls.Server(nc, s.cfg.TLS)
		}
		serve(nc)
	}
}

// serveConn runs one connection's commands in order until it closes, the
// client quits, or ctx ends. The connection counts in s.clients on entry.
func (s *Server) serveConn(ctx context.Context, nc net.Conn, lim limits, needAuth bool) {
	defer s.clients.Add(-1)
	if s.connGauge != nil {
		s.connGauge.Inc()
		defer s.connGauge.Dec()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if tc, ok := nc.(*tls.Conn); ok {
		hctx, hcancel := context.WithTimeout(ctx, HandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			// A plaintext client, a client that does not trust this
			// node's certificate, or a scanner: nothing to answer.
			s.log.Debug("TLS handshake failed", "remote", nc.RemoteAddr(), "err", err)
			_ = nc.Close()
			return
		}
	}
	cn := &conn{nc: nc}
	c := &client{
		s: s, conn: cn, ctx: ctx, base: ctx, cancel: cancel,
		id:      s.nextClientID.Add(1),
		created: time.Now(),
		proto:   2,
		authed:  !needAuth,
	}
	c.lastAt = c.created
	if a := nc.RemoteAddr(); a != nil {
		c.addr = a.String()
	}
	if a := nc.LocalAddr(); a != nil {
		c.laddr = a.String()
	}
	c.fd = connFD(nc)
	c.multiShown.Store(-1)
	s.registry.add(c)
	defer s.registry.remove(c)
	// Before every read that may block, the replies of pipelined writes
	// (see pipeline.go) are waited for and sent.
	c.rd = newCmdReader(nc, lim, s.cfg.Budget, s.cfg.timeouts(), func() error {
		c.drain()
		return cn.flush()
	})
	defer c.rd.release()
	fc, _ := nc.(*fdConn) // served through the event loop (evloop_linux.go)
	if fc != nil {
		fc.client = c
		defer fc.release()
	}
	parked := false
	for !c.quit && !cn.closed {
		if fc != nil && !parked && c.rd.r == c.rd.w && s.mayPark(c) {
			// Nothing buffered: wait in the loop, which may serve the
			// next commands itself. It hands back what it cannot; once
			// back, read at least once before parking again (the end
			// of input, or a timeout, is read here).
			if !fc.park(c) {
				break
			}
			parked = true
			continue
		}
		parked = false
		c.rd.to.idle = time.Duration(s.idleTimeout.Load()) // CONFIG SET timeout
		args, err := c.rd.next(ctx, !c.authed)
		if err != nil {
			c.drain()
			if s.readFailed(c, err) {
				continue
			}
			break
		}
		if s.pipelineSet(c, args) {
			continue
		}
		c.drain()
		s.handle(c, args)
		c.rd.release()
	}
	c.drain()
	c.txReset()
	_ = cn.Close()
}

// mayPark reports whether c may wait in the event loop between commands:
// not while a timeout must close it if nothing comes (the goroutine's
// read deadlines apply them).
func (s *Server) mayPark(c *client) bool {
	return s.idleTimeout.Load() <= 0 && (c.authed || c.rd.to.auth <= 0)
}

// readFailed answers a failed command read and reports whether the
// connection goes on.
func (s *Server) readFailed(c *client, err error) bool {
	var pe protocolError
	var re *refusedError
	var te *timeoutError
	switch {
	case errors.As(err, &re):
		s.budgetRefusals.Add(1)
		c.conn.WriteError("OOM command not allowed when buffered requests exceed the request buffer budget: " + err.Error())
		return true
	case errors.As(err, &pe):
		c.conn.WriteError("ERR " + string(pe))
		s.log.Debug("protocol error; closing connection", "addr", c.addr, "err", string(pe))
	case errors.As(err, &te):
		s.log.Debug("closing connection", "addr", c.addr, "reason", te.Error())
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled):
	default:
		s.log.Debug("connection closed", "addr", c.addr, "err", err)
	}
	return false
}
