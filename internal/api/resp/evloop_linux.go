//go:build linux

package resp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/replicant-db/replicant/internal/engine"
)

// evLoop is one goroutine waiting in epoll for every plaintext connection
// of a Serve call, as Redis's event loop does. Go's own poller parks and
// wakes a goroutine per command, and makes one more read per command that
// finds nothing; on this 2-core machine that was a third of a GET's CPU.
// The loop reads a ready socket itself and runs the commands that never
// wait (reads served from the node's state, PING) in place; anything else
// — a write, which waits for its commit, a blocking command, MULTI, a
// command not yet whole — goes to the connection's own goroutine, which
// parks again with the loop once its input is used up (serveConn).
//
// The sockets are registered edge-triggered for input and output once,
// and never modified: an edge wakes the goroutine waiting for it, is kept
// for its next wait, or, while the loop owns the connection, makes the
// loop read. Reads that fill less than the buffer are taken to have
// emptied the socket: data arriving later brings a new edge.
type evLoop struct {
	s    *Server
	epfd int
	efd  int // eventfd, registered under id 0: wakes the loop for queue and stop
	done chan struct{}

	// ep is a duplicate of epfd registered in Go's poller while
	// connections are being handed back, for waits that must not hold a
	// P (wait); raw is its RawConn. calm counts the passes since the
	// last hand-back. Only the loop goroutine uses them.
	ep   *os.File
	raw  syscall.RawConn
	calm int

	mu       sync.Mutex
	conns    map[uint64]*fdConn
	nextID   uint64
	queue    []*fdConn // connections to serve without an edge (Close, park)
	woken    bool      // efd was written and not yet read
	stopping bool

	// resumed: a connection was handed back in this pass (only the loop
	// goroutine hands back).
	resumed bool
	// deadlines of the writes the loop queued, oldest first (expire).
	deadlines []loopDeadline
	// sends: connections with replies to write at the end of this pass
	// (flush), each once (fdConn.sending).
	sends []*fdConn
}

// newLoop starts an event loop for s, or returns nil (connections then
// use Go's poller) when TLS is on, the system refuses one, or the engine
// can neither read nor queue a write without waiting (multi-leader and
// leaderless today): the loop would then hand nearly every command to a
// goroutine, which costs more than a goroutine alone.
func (s *Server) newLoop() *evLoop {
	_, reads := s.b.(engine.NowReader)
	_, writes := s.b.(engine.NotifyWriter)
	if s.cfg.TLS != nil || s.cfg.NoEventLoop || (!reads && !writes) {
		return nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		s.log.Warn("no event loop; connections use a goroutine each", "err", err)
		return nil
	}
	// Non-blocking, so that a duplicate of it can wait in Go's poller
	// (wait); epoll_wait itself ignores the flag.
	err = unix.SetNonblock(epfd, true)
	var efd int
	if err == nil {
		efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	}
	if err == nil {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN})
		if err != nil {
			_ = unix.Close(efd)
		}
	}
	if err != nil {
		_ = unix.Close(epfd)
		s.log.Warn("no event loop; connections use a goroutine each", "err", err)
		return nil
	}
	l := &evLoop{s: s, epfd: epfd, efd: efd, done: make(chan struct{}), conns: map[uint64]*fdConn{}}
	go l.run()
	return l
}

// adopt moves an accepted TCP connection from Go's poller to the loop:
// the loop keeps a duplicate of its descriptor, and the original is
// closed (which takes it out of Go's poller; the socket lives on).
func (l *evLoop) adopt(nc net.Conn) (*fdConn, error) {
	if l == nil {
		return nil, errors.New("no event loop")
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil, fmt.Errorf("not a TCP connection: %T", nc)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup: %w", derr)
	}
	fc := &fdConn{fd: fd, loop: l, laddr: nc.LocalAddr(), raddr: nc.RemoteAddr(), resume: make(chan struct{}, 1)}
	l.mu.Lock()
	l.nextID++
	fc.id = l.nextID
	l.conns[fc.id] = fc
	l.mu.Unlock()
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     int32(uint32(fc.id)),
		Pad:    int32(uint32(fc.id >> 32)),
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		fc.release()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	_ = nc.Close()
	return fc, nil
}

// forget drops a released connection: edges still queued for it find
// nothing.
func (l *evLoop) forget(fc *fdConn) {
	l.mu.Lock()
	delete(l.conns, fc.id)
	l.mu.Unlock()
}

// enqueue has the loop look at fc without an edge.
func (l *evLoop) enqueue(fc *fdConn) {
	l.mu.Lock()
	l.queue = append(l.queue, fc)
	wake := !l.woken
	l.woken = true
	l.mu.Unlock()
	if wake {
		l.kick()
	}
}

func (l *evLoop) kick() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(l.efd, one[:])
}

// wait returns the next events, waiting at most timeout milliseconds
// (-1: no limit). After a pass that handed connections back it waits in
// Go's poller, parked: the goroutines it made runnable are queued on its
// P, which a blocking epoll_wait would hold in the system call until the
// runtime took it back (up to milliseconds later). Otherwise it blocks
// in epoll_wait, which wakes it sooner than the poller would. The
// duplicate registered in the poller is kept while hand-backs go on and
// dropped after 64 passes without one: while it is registered, each
// event also wakes the runtime's poller (measured: GET −11 % with it
// registered all the time, INCR −25 % with no poller wait at all).
func (l *evLoop) wait(events []unix.EpollEvent, timeout int) (int, error) {
	if !l.resumed {
		if l.ep != nil {
			if l.calm++; l.calm > 64 {
				_ = l.ep.Close()
				l.ep, l.raw = nil, nil
			}
		}
		return unix.EpollWait(l.epfd, events, timeout)
	}
	l.resumed = false
	l.calm = 0
	if l.ep == nil {
		dup, err := unix.FcntlInt(uintptr(l.epfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return unix.EpollWait(l.epfd, events, timeout)
		}
		ep := os.NewFile(uintptr(dup), "epoll")
		raw, err := ep.SyscallConn()
		if err != nil {
			_ = ep.Close()
			return unix.EpollWait(l.epfd, events, timeout)
		}
		l.ep, l.raw = ep, raw
	}
	if timeout >= 0 {
		_ = l.ep.SetReadDeadline(time.Now().Add(time.Duration(timeout) * time.Millisecond))
	} else {
		_ = l.ep.SetReadDeadline(time.Time{})
	}
	var n int
	var err error
	rerr := l.raw.Read(func(fd uintptr) bool {
		n, err = unix.EpollWait(int(fd), events, 0)
		return n != 0 || (err != nil && err != unix.EINTR)
	})
	if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
		return 0, rerr
	}
	return max(n, 0), err
}

// stop ends the loop once no connection is left (Serve calls it after
// every connection's goroutine returned) and closes its descriptors.
func (l *evLoop) stop() {
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	l.kick()
	<-l.done
	if l.ep != nil {
		_ = l.ep.Close()
	}
	_ = unix.Close(l.epfd)
	_ = unix.Close(l.efd)
}

func (l *evLoop) run() {
	defer close(l.done)
	events := make([]unix.EpollEvent, 256)
	var queue []*fdConn
	failed := false
	for {
		timeout := -1
		if len(l.deadlines) > 0 {
			timeout = l.expire(time.Now())
		}
		// Once a second at least: CONFIG SET timeout may turn the idle
		// timeout on at any time, and parked connections must then be
		// handed to their goroutines, whose reads apply it.
		if timeout < 0 || timeout > 1000 {
			timeout = 1000
		}
		n, err := l.wait(events, timeout)
		if err != nil && err != unix.EINTR {
			// Only a bug gives anything but EINTR (a closed or bad
			// descriptor): say so, and do not spin.
			if !failed {
				l.s.log.Error("event loop: epoll_wait failed", "err", err)
				failed = true
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, ev := range events[:max(n, 0)] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				var buf [8]byte
				_, _ = unix.Read(l.efd, buf[:])
				l.mu.Lock()
				l.woken = false
				l.mu.Unlock()
				continue
			}
			l.mu.Lock()
			fc := l.conns[id]
			l.mu.Unlock()
			if fc == nil {
				continue
			}
			in := ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
			out := ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0
			if fc.ready(in, out) {
				l.serve(fc, true)
			}
		}
		l.mu.Lock()
		queue, l.queue = l.queue, queue[:0]
		stopping := l.stopping
		l.mu.Unlock()
		for i, fc := range queue {
			l.serve(fc, false)
			queue[i] = nil
		}
		l.flush()
		if stopping {
			return
		}
		if l.s.idleTimeout.Load() > 0 {
			// CONFIG SET timeout: the goroutines apply it while they wait.
			l.handBackAll()
		}
	}
}

// handBackAll hands every parked connection back to its goroutine.
func (l *evLoop) handBackAll() {
	l.mu.Lock()
	all := make([]*fdConn, 0, len(l.conns))
	for _, fc := range l.conns {
		all = append(all, fc)
	}
	l.mu.Unlock()
	for _, fc := range all {
		l.handBack(fc)
	}
}

// handBack gives the connection back to its goroutine, if the loop owns
// it.
func (l *evLoop) handBack(fc *fdConn) {
	fc.mu.Lock()
	owned := fc.loopOwned
	fc.loopOwned = false
	fc.mu.Unlock()
	if owned {
		l.resumed = true
		fc.resume <- struct{}{}
	}
}

// serve serves a connection the loop owns: it writes the replies of
// queued writes that were answered, reads the socket when an edge (now
// or earlier) says there is input, and runs what it can in place; what
// it cannot, it hands back to the connection's goroutine.
func (l *evLoop) serve(fc *fdConn, edge bool) {
	fc.mu.Lock()
	owned := fc.loopOwned
	fc.mu.Unlock()
	if !owned {
		return // a stale queue entry: the goroutine has it
	}
	c := fc.client
	if fc.closed.Load() {
		l.handBack(fc)
		return
	}
	if edge {
		fc.unread = true
	}
	rd := c.rd
	for {
		if !c.answerReady() {
			l.handBack(fc) // its goroutine serves the blocked clients
			return
		}
		if fc.unread {
			if rd.r == rd.w {
				rd.r, rd.w = 0, 0
			} else if rd.w == len(rd.buf) && rd.r > 0 {
				rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
				rd.r = 0
			}
		}
		read := false
		if room := len(rd.buf) - rd.w; fc.unread && room > 0 {
			n, err := unix.Read(fc.fd, rd.buf[rd.w:])
			switch {
			case n > 0:
				rd.w += n
				fc.unread = n == room // a full read may have left more
				read = true
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				fc.unread = false
			default:
				// The end of input or an error: the goroutine reads it
				// too, after answering what is queued, and ends.
				l.handBack(fc)
				return
			}
		}
		// inlineWait: the writes queued before the next command are
		// all the loop's (park drained the goroutine's), and their
		// notifications bring the loop back here.
		if l.s.runInline(c, fc.queued) == inlineGoroutine {
			l.handBack(fc)
			return
		}
		if !read || !fc.unread {
			break
		}
	}
	for _, p := range c.pending {
		if p.lw != nil && !p.lw.settled.Load() && !p.lw.timed {
			p.lw.timed = true
			l.deadlines = append(l.deadlines, loopDeadline{fc: fc, lw: p.lw})
		}
	}
	switch {
	case c.conn.err != nil:
		l.handBack(fc)
	case len(c.conn.out) > 0 && !fc.sending:
		fc.sending = true
		l.sends = append(l.sends, fc)
	}
}

// flush writes the replies of every connection served in this pass, as
// Redis does before it waits again: a client's reply waits for the other
// ready clients' commands to run (microseconds), and in exchange a
// client with many connections (redis-benchmark, a pool) gets its
// replies in one burst and wakes once for them, not once per reply and
// connection. Measured: 7–11 % more GETs per second at 64 clients
// (docs/benchmarks.md §19), where the reply's write had been the
// costliest system call of a GET.
func (l *evLoop) flush() {
	for i, fc := range l.sends {
		l.sends[i] = nil
		fc.sending = false
		fc.mu.Lock()
		owned := fc.loopOwned
		fc.mu.Unlock()
		if !owned {
			continue // handed back since: its goroutine sends what is left
		}
		if !l.send(fc, fc.client.conn) {
			l.handBack(fc) // the goroutine sends the rest, waiting as it must
		}
	}
	l.sends = l.sends[:0]
}

// queued is the write path's notification for a write the loop queued:
// the loop then writes its reply (serve).
func (fc *fdConn) queued(lw *loopWrite) {
	lw.answered.Store(true)
	fc.loop.enqueue(fc)
}

// loopDeadline is a queued write's deadline: a write still unanswered by
// then (a sync policy that cannot commit) is handed to the connection's
// goroutine, whose wait returns the write's timeout error.
type loopDeadline struct {
	fc *fdConn
	lw *loopWrite
}

// expire hands back the connections whose oldest queued write passed its
// deadline, and returns how long until the next deadline (-1: none).
// Deadlines are appended in the order of the writes, each the same time
// after its write, so the oldest comes first.
func (l *evLoop) expire(now time.Time) int {
	i := 0
	for ; i < len(l.deadlines); i++ {
		d := l.deadlines[i]
		if d.lw.settled.Load() || d.lw.answered.Load() {
			continue
		}
		if now.Before(d.lw.deadline) {
			break
		}
		l.handBack(d.fc)
	}
	clear(l.deadlines[:i])
	l.deadlines = l.deadlines[:copy(l.deadlines, l.deadlines[i:])]
	if len(l.deadlines) == 0 {
		return -1
	}
	return int(l.deadlines[0].lw.deadline.Sub(now)/time.Millisecond) + 1
}

// send writes the replies the loop produced without waiting, and reports
// whether all were sent.
func (l *evLoop) send(fc *fdConn, cn *conn) bool {
	for len(cn.out) > 0 && cn.err == nil {
		n, err := unix.Write(fc.fd, cn.out)
		switch {
		case n > 0:
			cn.out = cn.out[:copy(cn.out, cn.out[n:])]
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return false
		default:
			cn.err = fc.opError("write", err)
			return false
		}
	}
	if cap(cn.out) > maxKeptOut {
		cn.out = nil
	}
	return cn.err == nil
}

// park hands an idle connection to the loop and waits until the loop
// hands it back: with input the loop could not serve, at its end, or for
// a timeout. It reports false when the connection is closed.
func (fc *fdConn) park(c *client) bool {
	c.drain()
	if err := c.conn.flush(); err != nil {
		return false
	}
	c.conn.held = true
	fc.mu.Lock()
	if fc.closed.Load() {
		fc.mu.Unlock()
		c.conn.held = false
		return false
	}
	// An edge that came while the goroutine had the connection, or
	// input the loop left unread when it handed the connection back:
	// the loop reads at once (at worst finding nothing).
	kick := fc.readable || fc.unread
	fc.readable = false
	fc.unread = kick
	fc.loopOwned = true
	fc.mu.Unlock()
	if kick {
		fc.loop.enqueue(fc)
	}
	<-fc.resume
	c.conn.held = false
	return true
}
