package resp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicant-db/replicant/internal/engine"
)

// Server serves the Redis protocol for one engine.Engine.
type Server struct {
	b       engine.Engine
	cfg     Config
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
	pipelined    atomic.Uint64 // SETs queued without waiting (pipeline.go)
	inLoop       atomic.Uint64 // commands the event loop ran in place (inline.go)
	// writeTimeout is the node's write timeout: the event loop hands a
	// connection back when a write it queued is not answered by then.
	writeTimeout time.Duration
	// panics counts handler panics that were recovered (always a bug).
	panics atomic.Uint64
	// rejectedConns counts connections refused at MaxClients.
	rejectedConns atomic.Uint64
	// budgetRefusals counts commands dropped because the request buffer
	// budget had no room for them in time.
	budgetRefusals atomic.Uint64

	// Settings CONFIG SET changes at run time (cmd_server.go).
	maxClients  atomic.Int64 // 0: no limit
	idleTimeout atomic.Int64 // nanoseconds; 0: never
	// blocked counts connections waiting in a blocking command (WAIT,
	// BLPOP, …).
	blocked atomic.Int64
	// blocks are the clients blocked on keys (blocking.go).
	blocks blockRegistry
	// memPeak is the highest used_memory INFO has seen.
	memPeak atomic.Uint64
	slowlog slowlog
	// registry is every open connection (CLIENT LIST, CLIENT KILL).
	registry clientRegistry
	// stats are INFO's commandstats and errorstats (info_stats.go).
	stats serverStats

	mu      sync.Mutex
	closed  bool
	cancels map[*int]context.CancelFunc

	// connGauge is replicant_connected_clients{api="resp"} (nil: none).
	connGauge prometheus.Gauge
	// modeCache is the cluster's replication mode once known (tx.go).
	modeCache atomic.Pointer[string]
	// collsCache: whether the engine's convergent mode keeps collections,
	// once known (convergent.go): collsUnknown, collsYes or collsNo.
	collsCache atomic.Int32
	// scripts: the script cache, compiled libraries, running scripts
	// (cmd_script.go).
	scripts scripting
}

// New returns a server for b with the default Config. logger may be nil.
func New(b engine.Engine, logger *slog.Logger) *Server { return NewWithConfig(b, logger, Config{}) }

// NewWithConfig returns a server for b with the limits of cfg. logger may
// be nil.
func NewWithConfig(b engine.Engine, logger *slog.Logger, cfg Config) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	s := &Server{
		b:       b,
		cfg:     cfg.withDefaults(),
		log:     logger.With("component", "resp"),
		cursors: newCursorTable(maxCursors, maxCursorBytes),
		started: time.Now(),
		runID:   hex.EncodeToString(id[:]),
		cancels: map[*int]context.CancelFunc{},
	}
	s.maxClients.Store(int64(max(s.cfg.MaxClients, 0)))
	s.writeTimeout = b.Settings().WriteTimeout
	if s.writeTimeout <= 0 {
		s.writeTimeout = 5 * time.Second
	}
	s.idleTimeout.Store(int64(max(s.cfg.IdleTimeout, 0)))
	s.registry.clients = map[uint64]*client{}
	s.stats.s = s
	s.slowlog.init()
	s.scripts.init(max(s.cfg.ScriptHeapLimit, 0))
	s.cmds = s.commandTable()
	m := b.Metrics()
	s.unknown = newCmdMetrics(m, "unknown")
	s.connGauge = m.ClientGauge("resp")
	for _, c := range s.cmds {
		c.metrics = newCmdMetrics(m, c.name)
		c.inLoop, c.inLoopReads = runsInLoop(c.name)
		if writesInLoop(c.name) {
			c.inLoop, c.inLoopWrites = true, true
		}
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

	cfg := s.b.Settings()
	lim := newLimits(cfg.MaxKeySize, cfg.MaxValueSize)
	loop := s.newLoop()
	var closing atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		closing.Store(true)
		_ = ln.Close() // ends Accept
	})
	var (
		mu       sync.Mutex
		conns    = map[net.Conn]struct{}{}
		handlers sync.WaitGroup
	)
	err := s.acceptLoop(ln, &closing, func(nc net.Conn) {
		if loop != nil {
			if fc, err := loop.adopt(nc); err == nil {
				nc = fc
			} else {
				s.log.Debug("connection left to Go's poller", "err", err)
			}
		}
		mu.Lock()
		conns[nc] = struct{}{}
		mu.Unlock()
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			s.serveConn(ctx, nc, lim, cfg.RequirePass != "")
			mu.Lock()
			delete(conns, nc)
			mu.Unlock()
		}()
	})
	stop()
	_ = ln.Close()
	// Abort commands that still wait (WAIT, a write waiting for commit, a
	// wait for the request budget), close every connection, and wait for
	// the handlers.
	cancel()
	mu.Lock()
	for nc := range conns {
		_ = nc.Close()
	}
	mu.Unlock()
	handlers.Wait()
	if loop != nil {
		loop.stop()
	}
	return err
}

// client is one connection's state. It is only touched by the connection's
// own goroutine (redcon runs one per connection).
type client struct {
	s    *Server
	conn *conn
	rd   *cmdReader
	// ctx is the connection's context, carrying its leaderless quorum
	// (REPLICANT.QUORUM) when one is set; base is it without.
	ctx    context.Context
	base   context.Context
	cancel context.CancelFunc
	// causal is the context the next write supersedes (REPLICANT.CONTEXT).
	causal  string
	id      uint64
	addr    string
	laddr   string
	fd      int
	created time.Time
	// pubMu guards the writes of the fields below, which CLIENT LIST and
	// CLIENT KILL read from other connections' goroutines (the owner
	// reads them without it).
	pubMu   sync.Mutex
	lastAt  time.Time
	lastCmd string
	name    string
	libName string
	libVer  string
	proto   int
	noEvict bool
	noTouch bool
	// multiShown is CLIENT LIST's multi=: the commands queued by MULTI
	// after the last command, -1 outside a transaction.
	multiShown atomic.Int64
	// blocking is set while the connection waits in a blocking command
	// (INFO's blocked_clients, flag b in CLIENT LIST).
	blocking atomic.Bool
	// unblock cancels the current block (CLIENT UNBLOCK), unblockedBy says
	// how; both under pubMu.
	unblock     context.CancelFunc
	unblockedBy string
	// blockedCmd: the current command blocked (it stays out of the
	// slowlog, as in Redis, where waiting is not execution time).
	blockedCmd bool
	// wroteNothing: the current write command is known to have written
	// nothing (a blocking command that timed out), so it wakes nobody.
	wroteNothing bool
	authed       bool
	quit         bool
	failed       bool // the current command replied with an error
	// rejected: the current command was refused before it ran (arity,
	// authentication, key size), Redis's rejected_calls.
	rejected bool

	cons      engine.Consistency
	token     engine.Token // newest state this connection observed
	floor     engine.Token // set by REPLICANT.SESSION: every read honours it
	lastWrite engine.Token // token of this connection's last write

	pending []pipelined // queued pipelined writes, answered by drain
	pre     preRead     // the event loop's read for the command it runs (inline.go)
	loop    loopCmd     // the event loop's write command being run (inline.go)

	txConn // MULTI/EXEC and WATCH state (tx.go)
}

// handle runs one command. serveConn calls it in order for each
// connection.
func (s *Server) handle(c *client, args [][]byte) {
	if c.quit || len(args) == 0 {
		return
	}
	start := time.Now()
	c.failed, c.rejected, c.blockedCmd, c.wroteNothing = false, false, false, false
	name := strings.ToLower(string(args[0]))
	spec := s.cmds[name]
	m := s.unknown
	if spec != nil {
		m = spec.metrics
	}
	queued := false // MULTI queued it
	defer func() {
		if r := recover(); r != nil {
			// A bug, never expected: answer, log, and drop the connection
			// rather than the process.
			s.panics.Add(1)
			s.log.Error("panic in RESP command", "cmd", name, "panic", r, "stack", string(debug.Stack()))
			c.failed = true
			c.conn.WriteError("ERR internal error")
			c.quit = true
			_ = c.conn.Close()
		}
		if c.loop.declined {
			return // not run: the connection's goroutine runs it again
		}
		s.cmdsTotal.Add(1)
		if c.loop.queued {
			return // answer counts it, once its write is answered
		}
		d := time.Since(start)
		m.observe(c.failed, d)
		c.showMulti()
		if queued {
			return // EXEC counts it (tx.go)
		}
		s.stats.executed(spec, c, d)
		if spec != nil && !c.rejected && !c.blockedCmd {
			s.slowlog.observe(c, args, d)
		}
	}()
	if spec == nil {
		c.txReject()
		c.setLast(start, "unknown")
		name := args[0]
		if len(name) > 128 {
			name = name[:128]
		}
		c.errorf("ERR unknown command '%s', with args beginning with: %s", name, argsPreview(args[1:]))
		return
	}
	c.setLast(start, spec.name)
	if !spec.arityOK(len(args)) {
		c.txReject()
		c.rejected = true
		c.arityErr(spec.name)
		return
	}
	if !c.authed && !spec.noAuth {
		c.txReject()
		c.rejected = true
		c.err("NOAUTH Authentication required.")
		return
	}
	if msg := s.typeUnsupported(c.ctx, spec); msg != "" {
		c.txReject()
		c.rejected = true
		c.err(msg)
		return
	}
	// One pass over the key arguments, without building their list: no
	// key in the reserved space, and a write's keys within the size limit.
	for i, ok := spec.firstKey(args); ok; i, ok = spec.nextKey(args, i) {
		k := args[i]
		var err error
		if engine.IsReserved(k) {
			err = replyError(msgReserved)
		} else if spec.write {
			err = s.b.CheckKey(k)
		}
		if err != nil {
			c.txReject()
			c.rejected = true
			c.backendErr(err)
			return
		}
	}
	if c.multi != nil && !runsInMulti(spec.name) {
		m = nil // counted when EXEC runs it, as Redis's commandstats
		queued = true
		s.queue(c, spec, args)
		return
	}
	if spec.write || spec.scriptWrites {
		// A script holding the write path past busy-reply-threshold:
		// what would wait behind it is told so at once (Redis's BUSY).
		if msg := s.busy(c); msg != "" {
			c.err(msg)
			return
		}
	}
	spec.fn(c, args)
	if !c.loop.queued && !c.loop.declined {
		s.written(c, spec, args)
	}
}

// written follows a command that has run: clients blocked on the keys a
// write command wrote may now be served (blocking.go).
func (s *Server) written(c *client, spec *command, args [][]byte) {
	if mayServeBlocked(spec) && !c.failed && !c.wroteNothing {
		s.keysWritten(spec.keys(args))
	}
}

// mayServeBlocked reports whether completing the command may serve a
// client blocked on its keys.
func mayServeBlocked(spec *command) bool {
	return spec.write && !neverReady[spec.name]
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
