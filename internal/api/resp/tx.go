package resp

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// Transactions (MULTI/EXEC/DISCARD/WATCH/UNWATCH), as Redis 7.2 runs them,
// with one difference in where they run: EXEC hands every queued command
// that touches keys to ONE engine write, so the transaction becomes one log
// entry, applied atomically on every replica. See
// docs/design/transactions.md.

// txConn is one connection's transaction state, embedded in client.
type txConn struct {
	// multi is set between MULTI and EXEC, DISCARD or RESET.
	multi *txQueue
	// watches are the WATCHed keys, until EXEC, DISCARD, UNWATCH or RESET.
	watches []watched
	// exec is set only on the stand-in client that runs a transaction's
	// queued commands (see execScope).
	exec *execScope
	// noBlock is set while EXEC runs a queued command on the connection:
	// a command that would wait (WAIT) answers at once, as Redis denies
	// blocking inside a transaction.
	noBlock bool
}

// txQueue holds the commands queued since MULTI.
type txQueue struct {
	cmds []queued
	// held is what the queued arguments are charged to the request
	// buffer budget (they outlive the read that brought them).
	held int64
	// dirty: a command was refused while queueing, so EXEC aborts
	// (EXECABORT), as Redis's CLIENT_DIRTY_EXEC.
	dirty bool
}

type queued struct {
	spec *command
	args [][]byte
}

// watched is a WATCHed key: the position of the state WATCH read it at and
// whether it existed there. EXEC aborts when the key was written after that
// position, or existed and no longer does (deleted by a flush, or expired).
type watched struct {
	key  []byte
	lsn  uint64
	live bool
}

// Replies and errors of Redis 7.2.
const (
	msgNestedMulti  = "ERR MULTI calls can not be nested"
	msgExecNoMulti  = "ERR EXEC without MULTI"
	msgDiscardNoMul = "ERR DISCARD without MULTI"
	msgWatchInMulti = "ERR WATCH inside MULTI is not allowed"
	msgExecAbort    = "EXECABORT Transaction discarded because of previous errors."
)

// runsInMulti tells whether a command runs at once between MULTI and EXEC
// instead of being queued (Redis: EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
func runsInMulti(name string) bool {
	switch name {
	case "exec", "discard", "multi", "watch", "quit", "reset":
		return true
	}
	return false
}

// touchesKeys tells whether a command reads or writes the keyspace (Redis
// flags it write or readonly), and so runs inside EXEC's engine write. The
// others (connection and server commands, WAIT) run after it, on the
// connection, in their place in the reply: they neither see nor change
// keys, so when they run is unobservable — and a command that may block
// must never run on the engine's write path.
func (cmd *command) touchesKeys() bool {
	return cmd.write || cmd.scripted || slices.Contains(cmd.flags, "readonly")
}

// txReject marks the open transaction, if any, as failed: a command
// refused while queueing (unknown, wrong arity, not authenticated, a key
// too large, a write on a replica) makes EXEC abort.
func (c *client) txReject() {
	if c.multi != nil {
		c.multi.dirty = true
	}
}

// txRelease gives back what the queued commands held.
func (c *client) txRelease() {
	if c.multi != nil && c.multi.held > 0 && c.s.cfg.Budget != nil {
		c.s.cfg.Budget.Release(c.multi.held)
	}
	c.multi = nil
}

// txReset ends any transaction and forgets the watched keys (DISCARD,
// RESET, and a closing connection).
func (c *client) txReset() {
	c.txRelease()
	c.watches = nil
}

// txUnsupported returns why transactions are refused in this node's mode,
// or "".
func (s *Server) txUnsupported(cmd string) string {
	if s.mode() == engine.ModeLeaderless {
		return "ERR " + cmd + " is not supported in leaderless mode: there is no atomicity across keys"
	}
	return ""
}

// mode is the cluster's replication mode, which is fixed when the cluster
// is bootstrapped: read once from the status document, then kept.
func (s *Server) mode() string {
	if m := s.modeCache.Load(); m != nil {
		return *m
	}
	m := s.b.Status().Mode
	if m != "" {
		s.modeCache.Store(&m)
	}
	return m
}

func (s *Server) cmdMulti(c *client, _ [][]byte) {
	if c.multi != nil {
		c.err(msgNestedMulti)
		return
	}
	if msg := s.txUnsupported("MULTI"); msg != "" {
		c.err(msg)
		return
	}
	c.multi = &txQueue{}
	c.ok()
}

func (s *Server) cmdDiscard(c *client, _ [][]byte) {
	if c.multi == nil {
		c.err(msgDiscardNoMul)
		return
	}
	c.txReset()
	c.ok()
}

func (s *Server) cmdUnwatch(c *client, _ [][]byte) {
	c.watches = nil
	c.ok()
}

// cmdWatch records, for each key, the position of the state it is read at
// and whether the key exists there. The state is the connection's read
// state: on the leader its committed state (linearizable by default), on
// a follower what that follower has applied (then only a transaction
// without writes can run there anyway).
func (s *Server) cmdWatch(c *client, args [][]byte) {
	if c.multi != nil {
		c.err(msgWatchInMulti)
		return
	}
	if msg := s.txUnsupported("WATCH"); msg != "" {
		c.err(msg)
		return
	}
	r, ok := c.read()
	if !ok {
		return
	}
	v, ok := r.(engine.Versioned)
	if !ok {
		c.err("ERR WATCH is not supported by this node's engine: its reads carry no log position")
		return
	}
	at := v.StateLSN()
	seen := make(map[string]bool, len(c.watches)+len(args))
	for _, w := range c.watches {
		seen[string(w.key)] = true
	}
	for _, k := range args[1:] {
		if seen[string(k)] {
			continue // watched since the earlier WATCH, as in Redis
		}
		seen[string(k)] = true
		_, live, err := r.Get(k)
		if err != nil {
			c.backendErr(err)
			return
		}
		c.watches = append(c.watches, watched{key: append([]byte(nil), k...), lsn: at, live: live})
	}
	c.ok()
}

// queue adds a command to the open transaction and answers QUEUED.
func (s *Server) queue(c *client, spec *command, args [][]byte) {
	if spec.write && !s.b.IsLeader() {
		// Redis refuses a write on a read-only replica while queueing.
		c.txReject()
		c.backendErr(s.notLeader())
		return
	}
	size := 0
	for _, a := range args {
		size += len(a)
	}
	held := int64(size + len(args)*argOverhead)
	if s.cfg.Budget != nil {
		if err := s.cfg.Budget.Acquire(c.ctx, held); err != nil {
			c.txReject()
			s.budgetRefusals.Add(1)
			c.err("OOM command not allowed when buffered requests exceed the request buffer budget: " + err.Error())
			return
		}
	}
	// The reader reuses its buffers: the queued command keeps a copy.
	buf := make([]byte, 0, size)
	cp := make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		cp[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	c.multi.held += held
	c.multi.cmds = append(c.multi.cmds, queued{spec: spec, args: cp})
	c.simple("QUEUED")
}

// notLeader describes the leader as the status document names it.
func (s *Server) notLeader() error {
	st := s.b.Status()
	e := &engine.NotLeaderError{LeaderID: st.Leader}
	for _, m := range st.Members {
		if m.ID == st.Leader {
			e.LeaderRESP = m.RESP
		}
	}
	return e
}

// nullArray writes the null array of the connection's protocol (EXEC
// aborted by WATCH).
func (c *client) nullArray() {
	if c.proto == 3 {
		c.conn.WriteRaw([]byte("_\r\n"))
		return
	}
	c.conn.WriteRaw([]byte("*-1\r\n"))
}

func (s *Server) cmdExec(c *client, _ [][]byte) {
	if c.multi == nil {
		c.err(msgExecNoMulti)
		return
	}
	q := c.multi
	// EXEC ends the transaction and unwatches every key, whatever happens.
	defer c.txRelease()
	watches := c.watches
	c.watches = nil
	if q.dirty {
		c.err(msgExecAbort)
		return
	}
	res, ok := s.runTx(c, q.cmds, watches)
	if !ok {
		return // answered
	}
	if res.aborted {
		c.nullArray()
		return
	}
	// Clients blocked on keys the transaction wrote may now be served
	// (blocking.go).
	s.keysWritten(res.written)
	// The commands that touch no keys run now, in their places.
	for i, qc := range q.cmds {
		if res.replies[i] == nil {
			start := time.Now()
			res.replies[i], res.failed[i] = c.capture(qc)
			d := time.Since(start)
			qc.spec.metrics.observe(res.failed[i], d)
			s.stats.ran(qc.spec, res.failed[i], d)
		}
	}
	c.failed = false
	c.array(len(q.cmds))
	for _, r := range res.replies {
		c.conn.WriteRaw(r)
	}
}

// capture runs a queued command on c with its reply going to a buffer,
// and returns the reply and whether it was an error.
func (c *client) capture(q queued) ([]byte, bool) {
	real := c.conn
	// Restored even if the handler panics: handle's recovery closes c.conn.
	defer func() { c.conn, c.noBlock = real, false }()
	c.conn, c.noBlock = &conn{}, true
	c.failed = false
	q.spec.fn(c, q.args)
	return c.conn.out, c.failed
}

// txResult is what running a transaction's key commands produced.
type txResult struct {
	aborted bool // a watched key changed: nothing ran
	// replies[i] is the encoded reply of command i, nil for one that
	// touches no keys (it runs after the engine write).
	replies [][]byte
	failed  []bool
	// written are the keys the transaction's writes wrote.
	written [][]byte
}

// runTx runs the queued commands that touch keys against one state: one
// engine write when any of them writes (so they become one log entry),
// else one reader. On failure it has answered.
func (s *Server) runTx(c *client, cmds []queued, watches []watched) (txResult, bool) {
	var inside []int
	writes := false
	for i, q := range cmds {
		if q.spec.touchesKeys() {
			inside = append(inside, i)
			writes = writes || q.spec.write || q.spec.scriptWrites
		}
	}
	res := txResult{replies: make([][]byte, len(cmds)), failed: make([]bool, len(cmds))}
	if len(inside) == 0 && len(watches) == 0 {
		return res, true
	}
	start := time.Now()
	// The stand-in is made here, on the connection's goroutine: the write
	// closure below may run on the engine's, and must not read c.
	sc := c.standIn()
	held := c.txHeld()
	if !writes {
		r, ok := c.read()
		if !ok {
			return res, false
		}
		x := &execScope{r: r, held: held}
		aborted, err := x.run(sc, cmds, inside, watches, r.Get, &res)
		if err != nil {
			c.backendErr(err)
			return res, false
		}
		res.aborted = aborted
		s.observeTx(cmds, inside, res, time.Since(start))
		return res, true
	}
	var out txResult
	t, err := s.b.Write(c.writeCtx(), s.writeFn(func(tx engine.Txn) error {
		// A fresh result each time: the closure must not leave anything
		// behind that the connection reads unless the write succeeded.
		out = txResult{replies: make([][]byte, len(cmds)), failed: make([]bool, len(cmds))}
		x := &execScope{tx: countWrites(tx), held: held}
		x.r = txReader{tx}
		aborted, err := x.run(sc, cmds, inside, watches, tx.Get, &out)
		if err != nil {
			return err
		}
		out.aborted, out.written = aborted, x.written
		return nil
	}))
	if !t.IsZero() {
		c.observeWrite(t)
	}
	if err != nil {
		c.backendErr(err)
		return res, false
	}
	s.observeTx(cmds, inside, out, time.Since(start))
	return out, true
}

// observeTx records the key commands of a transaction in the per-command
// metrics (each is charged the transaction's time, which is what its
// client waited).
func (s *Server) observeTx(cmds []queued, inside []int, res txResult, d time.Duration) {
	if res.aborted {
		return
	}
	for _, i := range inside {
		cmds[i].spec.metrics.observe(res.failed[i], d)
		s.stats.ran(cmds[i].spec, res.failed[i], d)
	}
}

// execScope is how the commands of a transaction reach its state: they
// run on a stand-in client whose write and read helpers (write, writeBlind,
// read) use tx and r instead of the engine, and whose replies go to a
// buffer. The stand-in shares nothing the connection touches, so a write
// closure that runs after the connection gave up on it (a timeout) harms
// nothing.
type execScope struct {
	tx *writeCounter // nil in a transaction without writes
	r  engine.Reader
	// err, once set, aborts the whole transaction: a failure that is not
	// the command's own (storage, leadership), after which nothing it
	// wrote may be kept.
	err error
	// held is what the transaction holds of the request buffer budget
	// while it runs (its queued commands and EXEC itself): a command that
	// charges working memory (LCS) asks for at most the rest.
	held int64
	// written are the keys its write commands wrote: once the write is
	// applied, clients blocked on them are woken (blocking.go).
	written [][]byte
}

// ran records a command that ran in the scope, for waking the clients
// blocked on the keys it wrote.
func (x *execScope) ran(spec *command, args [][]byte, failed bool) {
	if spec.write && !failed && !neverReady[spec.name] {
		x.written = append(x.written, spec.keys(args)...)
	}
}

// txHeld is what the connection holds of the request buffer budget while
// EXEC runs.
func (c *client) txHeld() int64 {
	var n int64
	if c.multi != nil {
		n += c.multi.held
	}
	if c.rd != nil {
		n += c.rd.held
	}
	return n
}

// run checks the watched keys, then runs the key commands in order on sc,
// a stand-in for the connection's client, filling res. It returns whether
// a watched key changed.
func (x *execScope) run(sc *client, cmds []queued, inside []int, watches []watched, get func([]byte) (engine.Version, bool, error), res *txResult) (aborted bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			// A bug, never expected. The closure may run on the engine's
			// write path, which must survive it: nothing is written.
			sc.s.panics.Add(1)
			sc.s.log.Error("panic in transaction", "panic", p, "stack", string(debug.Stack()))
			aborted, err = false, replyError("ERR internal error")
		}
	}()
	if len(watches) > 0 {
		changed, err := watchesChanged(x.r, get, watches)
		if err != nil || changed {
			return changed, err
		}
	}
	sc.exec = x
	for _, i := range inside {
		q := cmds[i]
		sc.conn.out = sc.conn.out[:0:0]
		sc.failed = false
		before := x.writes()
		q.spec.fn(sc, q.args)
		if x.err != nil {
			return false, x.err
		}
		if sc.failed && x.writes() != before {
			// Every handler decides its errors before writing; one that
			// did not must not leave half a command in the entry.
			return false, fmt.Errorf("%s failed after writing; the transaction was not applied", q.spec.name)
		}
		res.replies[i], res.failed[i] = sc.conn.out, sc.failed
		x.ran(q.spec, q.args, sc.failed)
		if res.replies[i] == nil {
			res.replies[i] = []byte{} // a reply slot that ran, even if empty
		}
	}
	return false, nil
}

func (x *execScope) writes() int {
	if x.tx == nil {
		return 0
	}
	return x.tx.n
}

// watchesChanged tells whether any watched key changed after it was
// watched, judged on state (a reader or the transaction's write state).
func watchesChanged(state engine.Reader, get func([]byte) (engine.Version, bool, error), watches []watched) (bool, error) {
	v, ok := state.(engine.Versioned)
	if !ok {
		return false, errors.New("this node's engine cannot tell whether a watched key changed")
	}
	at := v.StateLSN()
	for _, w := range watches {
		if at < w.lsn {
			// The state went back (a rollback after a failover): the key
			// may have changed in ways it no longer shows.
			return true, nil
		}
		changed, err := v.ChangedSince(w.key, w.lsn)
		if err != nil || changed {
			return changed, err
		}
		if w.live {
			// Not written since, but gone: expired, or removed by a
			// FLUSHALL (which writes no version per key).
			_, live, err := get(w.key)
			if err != nil || !live {
				return !live, err
			}
		}
	}
	return false, nil
}

// standIn returns the client a transaction's commands run on: c's settings
// that commands read (protocol, consistency) and a reply buffer of its own;
// run puts the transaction's state behind its write and read.
func (c *client) standIn() *client {
	return &client{
		s: c.s, conn: &conn{}, ctx: c.ctx, base: c.base,
		id: c.id, addr: c.addr, laddr: c.laddr, created: c.created, lastAt: c.lastAt,
		name: c.name, libName: c.libName, libVer: c.libVer,
		proto: c.proto, authed: true, cons: c.cons,
		token: c.token, floor: c.floor, lastWrite: c.lastWrite,
	}
}

// execWrite is client.write inside a transaction: fn runs at once on the
// transaction's state.
func (x *execScope) execWrite(c *client, fn func(tx engine.Txn) error) bool {
	if x.tx == nil {
		// The transaction was planned without a write because no queued
		// command is flagged write; a handler that writes anyway is a bug.
		c.backendErr(errors.New("internal error: a read-only command wrote"))
		return false
	}
	if err := fn(x.tx.txn()); err != nil {
		c.backendErr(err)
		return false
	}
	return true
}

// fail classifies an error a command answers inside a transaction: the
// command's own (a reply error, WRONGTYPE from a collection, a value too
// large) is its reply and the
// transaction goes on, as Redis runs every command of EXEC; any other
// (storage, leadership) aborts the whole transaction.
func (x *execScope) fail(err error) {
	var re replyError
	var le *engine.LimitError
	if errors.As(err, &re) || errors.As(err, &le) || errors.Is(err, datatype.ErrWrongType) {
		return
	}
	if x.err == nil {
		x.err = err
	}
}

// writeCounter counts a transaction's writes, so that a command that
// answers an error after writing is caught (see execScope.run).
type writeCounter struct {
	engine.Txn
	n int
}

func countWrites(tx engine.Txn) *writeCounter { return &writeCounter{Txn: tx} }

func (w *writeCounter) Set(key, value []byte, expireAtMs int64) {
	w.n++
	w.Txn.Set(key, value, expireAtMs)
}

func (w *writeCounter) Del(key []byte) {
	w.n++
	w.Txn.Del(key)
}

func (w *writeCounter) FlushAll() {
	w.n++
	w.Txn.FlushAll()
}

// txn is the Txn commands see: the counter, also a CounterTxn when the
// mode's transaction is one (so INCR keeps counting as a PN-counter), a
// TypedTxn with its scans when it is one (so collection commands run
// inside EXEC: datatype.Open needs both), or both (the collection adapter
// of a convergent mode).
func (w *writeCounter) txn() engine.Txn {
	ct, counts := w.Txn.(engine.CounterTxn)
	tt, typed := w.Txn.(engine.TypedTxn)
	switch {
	case counts && typed: // collections in a convergent mode
		return typedCounterWrites{typedWrites{w, tt}, ct}
	case counts:
		return counterWrites{w, ct}
	case typed:
		return typedWrites{w, tt}
	}
	return w
}

// typedWrites is the counter over a TypedTxn: a collection's metadata
// write counts as a write.
type typedWrites struct {
	*writeCounter
	tt engine.TypedTxn
}

func (t typedWrites) SetTyped(key []byte, typ engine.Type, value []byte, expireAtMs int64) {
	t.n++
	t.tt.SetTyped(key, typ, value, expireAtMs)
}

func (t typedWrites) NewID() (uint64, error) { return t.tt.NewID() }

func (t typedWrites) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	return txScan(t.tt, start, fn)
}

func (t typedWrites) ScanReverse(end []byte, fn func([]byte, engine.Version) bool) error {
	return txScanReverse(t.tt, end, fn)
}

// txScan lists a transaction's state when the mode's Txn can
// (engine.ScanTxn).
func txScan(tx engine.Txn, start []byte, fn func([]byte, engine.Version) bool) error {
	if st, ok := tx.(engine.ScanTxn); ok {
		return st.Scan(start, fn)
	}
	return replyError("ERR key scans (KEYS, SCAN, DBSIZE, RANDOMKEY) are not supported in a transaction that also writes in this mode; run them before MULTI or in a transaction without writes")
}

// txScanReverse lists a transaction's state backwards below end: by the
// mode's reverse scan, or (a mode without one) by replaying a forward
// scan of everything below end.
func txScanReverse(tx engine.Txn, end []byte, fn func([]byte, engine.Version) bool) error {
	if rs, ok := tx.(engine.ReverseScanner); ok {
		return rs.ScanReverse(end, fn)
	}
	type kv struct {
		k []byte
		v engine.Version
	}
	var all []kv
	err := txScan(tx, nil, func(k []byte, v engine.Version) bool {
		if end != nil && bytes.Compare(k, end) >= 0 {
			return false
		}
		all = append(all, kv{append([]byte(nil), k...), v})
		return true
	})
	if err != nil {
		return err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if !fn(all[i].k, all[i].v) {
			return nil
		}
	}
	return nil
}

type counterWrites struct {
	*writeCounter
	ct engine.CounterTxn
}

func (c counterWrites) IncrBy(key []byte, delta int64) (int64, error) {
	n, err := c.ct.IncrBy(key, delta)
	if err == nil {
		c.n++
	}
	return n, err
}

// typedCounterWrites is the counter over a Txn that is both (the
// collection adapter of a convergent mode, package convergent).
type typedCounterWrites struct {
	typedWrites
	ct engine.CounterTxn
}

func (c typedCounterWrites) IncrBy(key []byte, delta int64) (int64, error) {
	return counterWrites{c.writeCounter, c.ct}.IncrBy(key, delta)
}

// txReader is the Reader of a transaction that writes: its reads see the
// state the transaction writes on, its own writes included.
type txReader struct{ tx engine.Txn }

func (r txReader) Get(key []byte) (engine.Version, bool, error) { return r.tx.Get(key) }
func (r txReader) NowMs() int64                                 { return r.tx.NowMs() }
func (r txReader) Token() engine.Token                          { return engine.Token{} }

// Scan lists the transaction's state when the mode's Txn can (engine.ScanTxn).
func (r txReader) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	return txScan(r.tx, start, fn)
}

// ScanReverse lists the transaction's state backwards (see txScanReverse).
func (r txReader) ScanReverse(end []byte, fn func([]byte, engine.Version) bool) error {
	return txScanReverse(r.tx, end, fn)
}

func (r txReader) StateLSN() uint64 {
	if v, ok := r.tx.(engine.Versioned); ok {
		return v.StateLSN()
	}
	return 0
}

func (r txReader) ChangedSince(key []byte, lsn uint64) (bool, error) {
	v, ok := r.tx.(engine.Versioned)
	if !ok {
		return false, errors.New("this node's engine cannot tell whether a watched key changed")
	}
	return v.ChangedSince(key, lsn)
}
