//go:build linux

package resp

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// fdConn is a plaintext client connection whose socket is watched by the
// server's event loop (evloop_linux.go) instead of Go's poller. It is a
// net.Conn for the connection's goroutine: Read and Write are system
// calls on the non-blocking socket that, when the socket is not ready,
// wait for the loop to report an edge. While the goroutine is parked, the
// loop itself reads the socket and runs the commands that need no wait.
//
// Exactly one side owns the socket's data at a time: the loop while
// loopOwned is set, else the goroutine. Close may come from anywhere
// (CLIENT KILL, shutdown): it only shuts the socket down; the descriptor
// is closed by release, which the goroutine calls last.
type fdConn struct {
	fd           int
	id           uint64
	loop         *evLoop
	laddr, raddr net.Addr
	// resume hands the connection back from the loop to its goroutine
	// (buffered: the loop never waits on it).
	resume chan struct{}
	// client is what the loop serves while it owns the connection.
	client *client
	closed atomic.Bool

	mu sync.Mutex
	// loopOwned: the goroutine is parked and the loop serves the socket.
	loopOwned bool
	// readable, writable: an edge came while nobody waited for it; the
	// next wait returns at once (the socket may have become ready after
	// the system call that found it not ready).
	readable, writable bool
	// rwait, wwait: closed by the loop to wake the goroutine waiting to
	// read or write.
	rwait, wwait chan struct{}
	// Deadlines, set by the owning goroutine between its calls.
	rdl, wdl time.Time

	// unread (the loop's own): an edge said there is input the loop has
	// not read yet.
	unread bool
	// sending (the loop's own): listed in the loop's sends.
	sending bool
}

func (fc *fdConn) Read(p []byte) (int, error) {
	for {
		if fc.closed.Load() {
			return 0, net.ErrClosed
		}
		n, err := unix.Read(fc.fd, p)
		switch {
		case n > 0:
			return n, nil
		case err == nil:
			if len(p) == 0 {
				return 0, nil
			}
			return 0, io.EOF
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, fc.opError("read", err)
		}
		fc.mu.Lock()
		dl := fc.rdl
		fc.mu.Unlock()
		if err := fc.wait(&fc.rwait, &fc.readable, dl); err != nil {
			return 0, err
		}
	}
}

func (fc *fdConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		if fc.closed.Load() {
			return done, net.ErrClosed
		}
		n, err := unix.Write(fc.fd, p[done:])
		if n > 0 {
			done += n
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			return done, fc.opError("write", err)
		}
		fc.mu.Lock()
		dl := fc.wdl
		fc.mu.Unlock()
		if err := fc.wait(&fc.wwait, &fc.writable, dl); err != nil {
			return done, err
		}
	}
	return done, nil
}

// wait waits for the loop to report the socket ready (through *ch), for
// the deadline, or for Close. *ready is the edge that came while nobody
// waited: it is taken instead of waiting.
func (fc *fdConn) wait(ch *chan struct{}, ready *bool, deadline time.Time) error {
	fc.mu.Lock()
	if fc.closed.Load() {
		fc.mu.Unlock()
		return net.ErrClosed
	}
	if *ready {
		*ready = false
		fc.mu.Unlock()
		return nil
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		fc.mu.Unlock()
		return os.ErrDeadlineExceeded
	}
	w := make(chan struct{})
	*ch = w
	fc.mu.Unlock()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w:
		if fc.closed.Load() {
			return net.ErrClosed
		}
		return nil
	case <-timeout:
		fc.mu.Lock()
		if *ch == w {
			*ch = nil
		}
		fc.mu.Unlock()
		return os.ErrDeadlineExceeded
	}
}

// ready is the loop's report of an edge: it wakes the goroutine waiting
// for it, or records it for the next wait. It reports whether the loop
// owns the connection (and so should read it itself).
func (fc *fdConn) ready(in, out bool) (loopOwned bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if out {
		if fc.wwait != nil {
			close(fc.wwait)
			fc.wwait = nil
		} else {
			fc.writable = true
		}
	}
	if in && !fc.loopOwned {
		if fc.rwait != nil {
			close(fc.rwait)
			fc.rwait = nil
		} else {
			fc.readable = true
		}
	}
	return in && fc.loopOwned
}

// Close shuts the socket down, so that both the goroutine's calls and the
// loop's see its end; release closes the descriptor.
func (fc *fdConn) Close() error {
	fc.mu.Lock()
	if fc.closed.Load() {
		fc.mu.Unlock()
		return net.ErrClosed
	}
	fc.closed.Store(true)
	for _, ch := range []*chan struct{}{&fc.rwait, &fc.wwait} {
		if *ch != nil {
			close(*ch)
			*ch = nil
		}
	}
	owned := fc.loopOwned
	fc.mu.Unlock()
	err := unix.Shutdown(fc.fd, unix.SHUT_RDWR)
	if owned {
		fc.loop.enqueue(fc) // hand it back to its goroutine, which ends it
	}
	if err != nil && !errors.Is(err, unix.ENOTCONN) {
		return fc.opError("close", err)
	}
	return nil
}

// release forgets the connection in the loop and closes its descriptor.
// Only the goroutine calls it, last, when it no longer reads or writes.
func (fc *fdConn) release() {
	fc.loop.forget(fc)
	_ = unix.Close(fc.fd)
}

func (fc *fdConn) LocalAddr() net.Addr  { return fc.laddr }
func (fc *fdConn) RemoteAddr() net.Addr { return fc.raddr }

func (fc *fdConn) SetDeadline(t time.Time) error {
	fc.mu.Lock()
	fc.rdl, fc.wdl = t, t
	fc.mu.Unlock()
	return nil
}

func (fc *fdConn) SetReadDeadline(t time.Time) error {
	fc.mu.Lock()
	fc.rdl = t
	fc.mu.Unlock()
	return nil
}

func (fc *fdConn) SetWriteDeadline(t time.Time) error {
	fc.mu.Lock()
	fc.wdl = t
	fc.mu.Unlock()
	return nil
}

func (fc *fdConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: fc.laddr, Addr: fc.raddr, Err: os.NewSyscallError(op, err)}
}
