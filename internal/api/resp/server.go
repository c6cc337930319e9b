package resp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/replicant-db/replicant/internal/node"
	"github.com/replicant-db/replicant/internal/replication"
)

// Backend is what the RESP server needs from a node. *node.Node satisfies it.
type Backend interface {
	// Write runs fn on the leader's write path and returns once its entry is
	// committed. A non-leader returns *replication.NotLeaderError.
	Write(ctx context.Context, fn func(*replication.Txn) error) (replication.Token, error)
	// Read returns a reader at the freshest state allowed by c, no older
	// than floor.
	Read(ctx context.Context, c replication.Consistency, floor replication.Token) (*replication.Reader, error)
	// Token is the token of the node's current read state.
	Token() replication.Token
	Status() node.Status
	// CheckKey and CheckValue return a *replication.LimitError above the
	// configured limits.
	CheckKey(key []byte) error
	CheckValue(size int) error
	ID() string
	Config() node.Config
	// Metrics may return nil (then nothing is recorded).
	Metrics() *node.Metrics
}

// Server serves the Redis protocol for one Backend.
type Server struct {
	b       Backend
	log     *slog.Logger
	cmds    map[string]*command
	unknown *cmdMetrics
	cursors *cursorTable
	started time.Time
	runID   string

	nextClientID atomic.Uint64
	clients      atomic.Int64
	connsTotal   atomic.Uint64
	cmdsTotal    atomic.Uint64
	// writeRetries counts proposals dropped because the newest state gave
	// another outcome than the committed state (see client.write).
	writeRetries atomic.Uint64
	// panics counts handler panics that were recovered (always a bug).
	panics atomic.Uint64

	mu      sync.Mutex
	closed  bool
	cancels map[*int]context.CancelFunc
}

// New returns a server for b. logger may be nil.
func New(b Backend, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	s := &Server{
		b:       b,
		log:     logger.With("component", "resp"),
		cursors: newCursorTable(maxCursors, maxCursorBytes),
		started: time.Now(),
		runID:   hex.EncodeToString(id[:]),
		cancels: map[*int]context.CancelFunc{},
	}
	s.cmds = s.commandTable()
	m := b.Metrics()
	s.unknown = newCmdMetrics(m, "unknown")
	for _, c := range s.cmds {
		c.metrics = newCmdMetrics(m, c.name)
	}
	return s
}

// Close stops every Serve call of s (as if their contexts were cancelled)
// and makes later Serve calls return at once.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.cancels {
		c()
	}
}

// Serve accepts connections on ln until ctx is cancelled, Close is called or
// the listener fails. It closes ln and every connection it accepted, and
// waits for their handlers, before returning. The error is nil after a
// cancellation or Close.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	key := new(int)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ln.Close()
	}
	s.cancels[key] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.cancels, key)
		s.mu.Unlock()
	}()

	cfg := s.b.Config()
	gl := &guardListener{Listener: ln, lim: newLimits(cfg.MaxValueSize)}
	var handlers sync.WaitGroup
	rs := redcon.NewServerNetwork(ln.Addr().Network(), ln.Addr().String(),
		func(conn redcon.Conn, cmd redcon.Command) { s.handle(conn, cmd) },
		func(conn redcon.Conn) bool {
			handlers.Add(1)
			s.accept(ctx, conn, cfg)
			return true
		},
		func(conn redcon.Conn, err error) {
			s.closeConn(conn, err)
			handlers.Done()
		})
	stop := context.AfterFunc(ctx, gl.shutdown)
	defer stop()
	_ = rs.Serve(gl) // returns nil once gl reports net.ErrClosed
	// redcon closed the listener and every connection; abort commands that
	// still wait (WAIT, a write waiting for commit) and wait for handlers.
	cancel()
	handlers.Wait()
	return gl.failure()
}

// client is one connection's state. It is only touched by the connection's
// own goroutine (redcon runs one per connection).
type client struct {
	s       *Server
	conn    redcon.Conn
	guard   *guardConn
	ctx     context.Context
	cancel  context.CancelFunc
	id      uint64
	addr    string
	laddr   string
	created time.Time
	lastAt  time.Time
	lastCmd string
	name    string
	libName string
	libVer  string
	proto   int
	authed  bool
	quit    bool
	failed  bool // the current command replied with an error

	cons      replication.Consistency
	token     replication.Token // newest state this connection observed
	floor     replication.Token // set by REPLICANT.SESSION: every read honours it
	lastWrite replication.Token // token of this connection's last write
}

func (s *Server) accept(ctx context.Context, conn redcon.Conn, cfg node.Config) {
	s.clients.Add(1)
	s.connsTotal.Add(1)
	cctx, cancel := context.WithCancel(ctx)
	c := &client{
		s: s, conn: conn, ctx: cctx, cancel: cancel,
		id:      s.nextClientID.Add(1),
		addr:    conn.RemoteAddr(),
		created: time.Now(),
		proto:   2,
		authed:  cfg.RequirePass == "",
	}
	c.lastAt = c.created
	if nc := conn.NetConn(); nc != nil {
		if g, ok := nc.(*guardConn); ok {
			c.guard = g
			g.client = c
		}
		if la := nc.LocalAddr(); la != nil {
			c.laddr = la.String()
		}
	}
	conn.SetContext(c)
}

func (s *Server) closeConn(conn redcon.Conn, err error) {
	s.clients.Add(-1)
	if c, ok := conn.Context().(*client); ok {
		c.cancel()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("connection closed", "addr", conn.RemoteAddr(), "err", err)
	}
}

// handle runs one command. redcon calls it in order for each connection.
func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	c, ok := conn.Context().(*client)
	if !ok || c.quit || len(cmd.Args) == 0 {
		return
	}
	start := time.Now()
	c.failed = false
	s.cmdsTotal.Add(1)
	name := strings.ToLower(string(cmd.Args[0]))
	spec := s.cmds[name]
	m := s.unknown
	if spec != nil {
		m = spec.metrics
	}
	defer func() {
		if r := recover(); r != nil {
			// A bug, never expected: answer, log, and drop the connection
			// rather than the process.
			s.panics.Add(1)
			s.log.Error("panic in RESP command", "cmd", name, "panic", r, "stack", string(debug.Stack()))
			c.failed = true
			conn.WriteError("ERR internal error")
			c.quit = true
			_ = conn.Close()
		}
		m.observe(c.failed, time.Since(start))
	}()
	c.lastAt = start
	if spec == nil {
		c.lastCmd = "unknown"
		name := cmd.Args[0]
		if len(name) > 128 {
			name = name[:128]
		}
		c.errorf("ERR unknown command '%s', with args beginning with: %s", name, argsPreview(cmd.Args[1:]))
		return
	}
	c.lastCmd = spec.name
	if !spec.arityOK(len(cmd.Args)) {
		c.arityErr(spec.name)
		return
	}
	if !c.authed && !spec.noAuth {
		c.err("NOAUTH Authentication required.")
		return
	}
	if spec.write {
		for _, k := range spec.keys(cmd.Args) {
			if err := s.b.CheckKey(k); err != nil {
				c.backendErr(err)
				return
			}
		}
	}
	spec.fn(c, cmd.Args)
}

// argsPreview renders arguments as Redis does in "unknown command" errors.
func argsPreview(args [][]byte) string {
	var b strings.Builder
	for _, a := range args {
		if b.Len() >= 128 {
			break
		}
		room := 128 - b.Len()
		if len(a) > room {
			a = a[:room]
		}
		fmt.Fprintf(&b, "'%s' ", a)
	}
	return b.String()
}
