package resp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/script"
)

// Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO
// and FUNCTION, as Redis 7 runs them, on the transaction machinery of
// tx.go: a script runs on a stand-in client inside ONE Engine.Write
// closure, so everything it writes is one log entry (Redis's effects
// replication), or on one Reader when it cannot write. See
// docs/design/scripting.md.

// Replies and errors of Redis 7.
const (
	msgNoScript       = "NOSCRIPT No matching script. Please use EVAL."
	msgNotBusy        = "NOTBUSY No scripts in execution right now."
	msgBusyScript     = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
	msgBusyFunction   = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
	msgNegKeys        = "ERR Number of keys can't be negative"
	msgTooManyKeys    = "ERR Number of keys can't be greater than number of args"
	msgROWrite        = "ERR Write commands are not allowed from read-only scripts."
	msgROFlag         = "ERR Can not execute a script with write flag using *_ro command."
	msgFuncNotFound   = "ERR Function not found"
	msgNotInScript    = "ERR This Redis command is not allowed from script"
	msgUnknownInCall  = "ERR Unknown Redis command called from script"
	msgArityInCall    = "ERR Wrong number of args calling Redis command from script"
	defaultBusyMillis = 5000
)

// errKilled is the cause of a run stopped by SCRIPT KILL or FUNCTION
// KILL; errCallerGone of one whose caller stopped waiting for it.
var (
	errKilled     = errors.New("killed by SCRIPT KILL")
	errCallerGone = errors.New("the caller stopped waiting")
)

// deniedInScripts are the commands a script may not call (Redis flags
// them noscript): connection state, transactions, scripts themselves,
// blocking commands, and replicant's per-connection extensions.
var deniedInScripts = map[string]bool{
	"auth": true, "hello": true, "client": true, "config": true, "quit": true, "reset": true,
	"multi": true, "exec": true, "discard": true, "watch": true, "unwatch": true,
	"wait": true, "role": true,
	"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true, "script": true,
	"fcall": true, "fcall_ro": true, "function": true,
}

// scripting is the server's scripting state.
type scripting struct {
	runner *script.Runner
	// busyMillis is busy-reply-threshold (lua-time-limit).
	busyMillis atomic.Int64

	mu sync.Mutex
	// cache is the script cache of this node (SCRIPT LOAD, EVAL), by SHA.
	cache map[string]*script.Script
	// libs are compiled libraries by code, so that FCALL compiles a
	// library once per node.
	libs map[string]*script.Library
	// runs are the scripts running now (SCRIPT KILL, FUNCTION STATS).
	runs map[*scriptRun]struct{}
	// writing is the run inside the write path, if any (BUSY).
	writing atomic.Pointer[scriptRun]
}

// maxCompiledLibs bounds the compiled-library cache (it is rebuilt from
// the stored libraries on demand).
const maxCompiledLibs = 1024

func (sp *scripting) init(heapLimit int64) {
	sp.runner = script.NewRunner(script.Config{Version: redisVersion, HeapLimit: heapLimit})
	sp.busyMillis.Store(defaultBusyMillis)
	sp.cache = map[string]*script.Script{}
	sp.libs = map[string]*script.Library{}
	sp.runs = map[*scriptRun]struct{}{}
}

// scriptRun is one running script or function.
type scriptRun struct {
	function bool
	name     string
	args     [][]byte
	owner    uint64 // the client that runs it
	ctx      context.Context
	cancel   context.CancelCauseFunc
	created  time.Time
	// entered is when it started on the write path (UnixNano; 0: not
	// there, or done).
	entered atomic.Int64
	// finished: the write closure returned without aborting.
	finished atomic.Bool
}

func (s *Server) startRun(c *client, function bool, name string, args [][]byte) *scriptRun {
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &scriptRun{function: function, name: name, args: args, owner: c.id, ctx: ctx, cancel: cancel, created: time.Now()}
	s.scripts.mu.Lock()
	s.scripts.runs[r] = struct{}{}
	s.scripts.mu.Unlock()
	return r
}

// endRun stops r if it still runs (its caller no longer waits for it)
// and forgets it.
func (s *Server) endRun(r *scriptRun) {
	r.cancel(errCallerGone)
	s.scripts.mu.Lock()
	delete(s.scripts.runs, r)
	s.scripts.mu.Unlock()
}

// busy returns the error a command that needs the write path gets while a
// script has held it longer than busy-reply-threshold, or "".
func (s *Server) busy(c *client) string {
	r := s.scripts.writing.Load()
	if r == nil || r.owner == c.id {
		return ""
	}
	at := r.entered.Load()
	if at == 0 || time.Since(time.Unix(0, at)) < time.Duration(s.scripts.busyMillis.Load())*time.Millisecond {
		return ""
	}
	if r.function {
		return msgBusyFunction
	}
	return msgBusyScript
}

// kill stops the running scripts (function false) or functions.
func (s *Server) kill(c *client, function bool) {
	s.scripts.mu.Lock()
	killed, others := 0, 0
	for r := range s.scripts.runs {
		if r.function != function {
			others++
			continue
		}
		r.cancel(errKilled)
		killed++
	}
	s.scripts.mu.Unlock()
	switch {
	case killed > 0:
		c.ok()
	case others > 0 && function:
		c.err(msgBusyScript)
	case others > 0:
		c.err(msgBusyFunction)
	default:
		c.err(msgNotBusy)
	}
}

// numKeys splits a script's arguments (after the script or function
// name) into keys and args. On failure it has answered.
func numKeys(c *client, args [][]byte) (keys, rest [][]byte, ok bool) {
	n, err := strconv.ParseInt(string(args[0]), 10, 64)
	switch {
	case err != nil:
		c.err(msgNotInt)
	case n < 0:
		c.err(msgNegKeys)
	case n > int64(len(args)-1):
		c.err(msgTooManyKeys)
	default:
		return args[1 : 1+n], args[1+n:], true
	}
	return nil, nil, false
}

func (s *Server) cachedScript(sha string) *script.Script {
	s.scripts.mu.Lock()
	defer s.scripts.mu.Unlock()
	return s.scripts.cache[strings.ToLower(sha)]
}

// compileScript compiles body and adds it to the script cache.
func (s *Server) compileScript(body []byte) (*script.Script, error) {
	sha := script.SHA1Hex(string(body))
	if sc := s.cachedScript(sha); sc != nil {
		return sc, nil
	}
	sc, err := script.Compile(string(body))
	if err != nil {
		return nil, err
	}
	s.scripts.mu.Lock()
	s.scripts.cache[sha] = sc
	s.scripts.mu.Unlock()
	return sc, nil
}

// cmdEval serves EVAL, EVALSHA, EVAL_RO and EVALSHA_RO.
func (s *Server) cmdEval(c *client, args [][]byte) {
	name := strings.ToLower(string(args[0]))
	if msg := s.txUnsupported(strings.ToUpper(name)); msg != "" {
		c.err(msg)
		return
	}
	keys, argv, ok := numKeys(c, args[2:])
	if !ok {
		return
	}
	var sc *script.Script
	if strings.HasPrefix(name, "evalsha") {
		if sc = s.cachedScript(string(args[1])); sc == nil {
			c.err(msgNoScript)
			return
		}
	} else {
		var err error
		if sc, err = s.compileScript(args[1]); err != nil {
			c.err(err.Error())
			return
		}
	}
	ro := strings.HasSuffix(name, "_ro")
	if ro && sc.Shebang && sc.Flags&script.FlagNoWrites == 0 {
		c.err(msgROFlag)
		return
	}
	readOnly := ro || sc.Flags&script.FlagNoWrites != 0
	s.runScript(c, false, sc.SHA, args, readOnly, sc.Shebang, func(ctx context.Context, h script.Host) (script.Reply, error) {
		return s.scripts.runner.Eval(ctx, sc, h, keys, argv)
	})
}

// runScript runs one script or function: inline inside EXEC, on a reader
// when it cannot write (or on a follower, where a legacy script's writes
// fail as READONLY, as on a Redis replica), else in one engine write.
// declared: the script declared its flags, so without no-writes it is
// refused on a follower before it runs (Redis 7).
func (s *Server) runScript(c *client, function bool, name string, args [][]byte, readOnly, declared bool, exec func(context.Context, script.Host) (script.Reply, error)) {
	run := s.startRun(c, function, name, args)
	defer s.endRun(run)
	roMsg := msgROWrite
	if c.exec != nil {
		// Inside EXEC: on the transaction's state, which the stand-in's
		// scope already holds.
		h := &scriptHost{s: s, sc: c, x: c.exec, readOnly: readOnly || c.exec.tx == nil, roMsg: roMsg}
		rep, err := exec(run.ctx, h)
		s.answerScript(c, run, rep, err)
		return
	}
	if !readOnly && !s.b.IsLeader() {
		if declared {
			c.backendErr(s.notLeader())
			return
		}
		// A legacy script on a follower runs, and its first write fails
		// as a write to a Redis replica does.
		readOnly = true
		var nl *engine.NotLeaderError
		if errors.As(s.notLeader(), &nl) {
			roMsg = readOnlyText(nl)
		}
	}
	sc := c.standIn()
	if readOnly {
		r, ok := c.read()
		if !ok {
			return
		}
		x := &execScope{r: r}
		sc.exec = x
		h := &scriptHost{s: s, sc: sc, x: x, readOnly: true, roMsg: roMsg}
		rep, err := exec(run.ctx, h)
		s.answerScript(c, run, rep, err)
		return
	}
	var out script.Reply
	var written [][]byte
	t, err := s.b.Write(c.writeCtx(), s.writeFn(func(tx engine.Txn) error {
		run.entered.Store(time.Now().UnixNano())
		s.scripts.writing.Store(run)
		defer func() {
			s.scripts.writing.CompareAndSwap(run, nil)
			run.entered.Store(0)
		}()
		x := &execScope{tx: countWrites(tx)}
		x.r = txReader{tx}
		sc.exec = x
		rep, err := exec(run.ctx, &scriptHost{s: s, sc: sc, x: x, roMsg: roMsg})
		if err != nil {
			return err // an abort: nothing the script did is kept
		}
		out, written = rep, x.written
		run.finished.Store(true)
		return nil
	}))
	if !t.IsZero() {
		c.observeWrite(t)
	}
	if err != nil {
		var ab *script.Aborted
		if !errors.As(err, &ab) && !run.finished.Load() && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			// The wait ended first; endRun stops the script, which then
			// writes nothing.
			c.errorf("ERR the script did not finish within the write timeout (%s) and was stopped; nothing was written", s.b.Settings().WriteTimeout)
			return
		}
		s.answerScript(c, run, script.Reply{}, err)
		return
	}
	s.answerScript(c, run, out, nil)
	// Clients blocked on keys the script wrote may now be served
	// (blocking.go).
	s.keysWritten(written)
}

// answerScript sends a script's reply, or why it was stopped.
func (s *Server) answerScript(c *client, run *scriptRun, rep script.Reply, err error) {
	var ab *script.Aborted
	if errors.As(err, &ab) {
		where := ab.Where
		if where == "" {
			where = "?"
		}
		switch {
		case errors.Is(ab.Cause, errKilled):
			c.errorf("ERR Script killed by user with SCRIPT KILL... script: %s, on @%s.", run.name, where)
		case errors.Is(ab.Cause, script.ErrHeapLimit):
			c.errorf("ERR script stopped: it grew the heap by more than %d MiB; nothing was written", s.cfg.ScriptHeapLimit>>20)
		case errors.Is(ab.Cause, errCallerGone):
			c.err("ERR the script was stopped because its caller stopped waiting; nothing was written")
		default:
			c.backendErr(ab.Cause)
		}
		return
	}
	if err != nil {
		scriptErr(c, err)
		return
	}
	if rep.IsError() {
		c.err(rep.Str)
		return
	}
	c.conn.WriteRaw(rep.Append(nil, c.proto))
}

// scriptErr answers err: a script.Error's text is the reply itself.
func scriptErr(c *client, err error) {
	var se script.Error
	if errors.As(err, &se) {
		c.err(string(se))
		return
	}
	c.backendErr(err)
}

// scriptHost is how a script's redis.call reaches the command table: on
// the stand-in client of the script's scope, as EXEC runs its commands.
type scriptHost struct {
	s        *Server
	sc       *client
	x        *execScope
	readOnly bool
	roMsg    string
}

func (h *scriptHost) Exists(name string) bool { return h.s.cmds[name] != nil }

func (h *scriptHost) Log(level int, msg string) {
	switch level {
	case script.LogDebug:
		h.s.log.Debug(msg, "source", "script")
	case script.LogWarning:
		h.s.log.Warn(msg, "source", "script")
	default:
		h.s.log.Info(msg, "source", "script")
	}
}

func (h *scriptHost) Call(args [][]byte, resp int) ([]byte, error) {
	errReply := func(msg string) ([]byte, error) { return script.ErrorReply(msg).Append(nil, resp), nil }
	spec := h.s.cmds[strings.ToLower(string(args[0]))]
	switch {
	case spec == nil:
		return errReply(msgUnknownInCall)
	case !spec.arityOK(len(args)):
		return errReply(msgArityInCall)
	case deniedInScripts[spec.name] || slices.Contains(spec.flags, "noscript") || strings.HasPrefix(spec.name, "replicant."):
		return errReply(msgNotInScript)
	case spec.write && h.readOnly:
		return errReply(h.roMsg)
	}
	if reservedKeyIn(spec, args) {
		return errReply(msgReserved)
	}
	if msg := h.s.convergentRefusal(spec); msg != "" {
		return errReply(msg)
	}
	if spec.write {
		for _, k := range spec.keys(args) {
			if err := h.s.b.CheckKey(k); err != nil {
				return errReply("ERR " + err.Error())
			}
		}
	}
	sc := h.sc
	sc.proto = resp
	sc.conn.out = sc.conn.out[:0:0]
	sc.failed = false
	before := h.x.writes()
	start := time.Now()
	spec.fn(sc, args)
	if h.x.err != nil {
		return nil, h.x.err
	}
	if sc.failed && h.x.writes() != before {
		return nil, fmt.Errorf("%s failed after writing; the script was not applied", spec.name)
	}
	h.x.ran(spec, args, sc.failed)
	d := time.Since(start)
	spec.metrics.observe(sc.failed, d)
	h.s.stats.ran(spec, sc.failed, d)
	return sc.conn.out, nil
}

// reservedKeyIn reports whether a command names a key in the reserved
// space (replicant's own state: no command may read or write it).
func reservedKeyIn(spec *command, args [][]byte) bool {
	if spec.first <= 0 {
		return false
	}
	for _, k := range spec.keys(args) {
		if engine.IsReserved(k) {
			return true
		}
	}
	return false
}

var scriptHelp = []string{
	"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"DEBUG (YES|SYNC|NO)",
	"    Refused: replicant has no script debugger.",
	"EXISTS <sha1> [<sha1> ...]",
	"    Return information about the existence of the scripts in the script cache.",
	"FLUSH [ASYNC|SYNC]",
	"    Flush the Lua scripts cache of this node.",
	"KILL",
	"    Kill the currently executing Lua script.",
	"LOAD <script>",
	"    Load a script into the scripts cache without executing it.",
	"HELP",
	"    Prints this help.",
}

func (s *Server) cmdScript(c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	arity := map[string]int{"load": 3, "exists": -3, "flush": -2, "kill": 2, "help": 2, "debug": 3}
	want, ok := arity[sub]
	if !ok {
		c.errorf("ERR unknown subcommand '%.128s'. Try SCRIPT HELP.", args[1])
		return
	}
	if (want > 0 && len(args) != want) || (want < 0 && len(args) < -want) {
		c.arityErr("script|" + sub)
		return
	}
	c.setLast(c.lastAt, "script|"+sub)
	switch sub {
	case "load":
		sc, err := s.compileScript(args[2])
		if err != nil {
			c.err(err.Error())
			return
		}
		c.bulkString(sc.SHA)
	case "exists":
		c.array(len(args) - 2)
		for _, sha := range args[2:] {
			if s.cachedScript(string(sha)) != nil {
				c.int(1)
			} else {
				c.int(0)
			}
		}
	case "flush":
		if len(args) > 3 || (len(args) == 3 && !strings.EqualFold(string(args[2]), "sync") && !strings.EqualFold(string(args[2]), "async")) {
			c.err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
			return
		}
		s.scripts.mu.Lock()
		s.scripts.cache = map[string]*script.Script{}
		s.scripts.mu.Unlock()
		c.ok()
	case "kill":
		s.kill(c, false)
	case "debug":
		c.err("ERR SCRIPT DEBUG is not supported: replicant has no script debugger")
	case "help":
		c.array(len(scriptHelp))
		for _, l := range scriptHelp {
			c.simple(l)
		}
	}
}

// Function libraries are stored as reserved keys, one per library
// (ReservedPrefix "fn\x00" <name> -> code), written through the write
// path: every replica has them, and they survive restarts and failovers
// with the data.
var libPrefix = append(append([]byte(nil), engine.ReservedPrefix...), "fn\x00"...)

func libKey(name string) []byte { return append(append([]byte(nil), libPrefix...), name...) }

// libraryKeys returns the stored libraries' keys and codes in r.
func libraryKeys(r engine.Reader) ([][2][]byte, error) {
	var out [][2][]byte
	err := r.Scan(libPrefix, func(k []byte, v engine.Version) bool {
		if !bytes.HasPrefix(k, libPrefix) {
			return false
		}
		out = append(out, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v.Value...)})
		return true
	})
	return out, err
}

// libraries returns the libraries stored in r, compiled.
func (s *Server) libraries(r engine.Reader) ([]*script.Library, error) {
	kvs, err := libraryKeys(r)
	if err != nil {
		return nil, err
	}
	libs := make([]*script.Library, 0, len(kvs))
	for _, kv := range kvs {
		lib, err := s.compileLibrary(string(kv[1]))
		if err != nil {
			return nil, fmt.Errorf("stored library %q: %w", kv[0][len(libPrefix):], err)
		}
		libs = append(libs, lib)
	}
	return libs, nil
}

func (s *Server) compileLibrary(code string) (*script.Library, error) {
	s.scripts.mu.Lock()
	lib := s.scripts.libs[code]
	s.scripts.mu.Unlock()
	if lib != nil {
		return lib, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), libraryLoadTimeout)
	defer cancel()
	lib, err := s.scripts.runner.LoadLibrary(ctx, code)
	var ab *script.Aborted
	if errors.As(err, &ab) {
		return nil, replyError("ERR FUNCTION LOAD timeout: the library's code ran longer than " + libraryLoadTimeout.String())
	}
	if err != nil {
		return nil, err
	}
	s.scripts.mu.Lock()
	if len(s.scripts.libs) >= maxCompiledLibs {
		s.scripts.libs = map[string]*script.Library{}
	}
	s.scripts.libs[code] = lib
	s.scripts.mu.Unlock()
	return lib, nil
}

// libraryLoadTimeout bounds a library's top-level code (it only
// registers functions).
const libraryLoadTimeout = 2 * time.Second

// findFunction finds function name among libs.
func findFunction(libs []*script.Library, name string) (*script.Library, *script.Function) {
	for _, l := range libs {
		if f := l.Function(name); f != nil {
			return l, f
		}
	}
	return nil, nil
}

// cmdFCall serves FCALL and FCALL_RO.
func (s *Server) cmdFCall(c *client, args [][]byte) {
	cmd := strings.ToLower(string(args[0]))
	if msg := s.txUnsupported(strings.ToUpper(cmd)); msg != "" {
		c.err(msg)
		return
	}
	name := string(args[1])
	keys, argv, ok := numKeys(c, args[2:])
	if !ok {
		return
	}
	r, ok := c.read()
	if !ok {
		return
	}
	libs, err := s.libraries(r)
	if err != nil {
		c.backendErr(err)
		return
	}
	lib, fn := findFunction(libs, name)
	if fn == nil {
		c.err(msgFuncNotFound)
		return
	}
	readOnly := fn.Flags&script.FlagNoWrites != 0
	if cmd == "fcall_ro" && !readOnly {
		c.err(msgROFlag)
		return
	}
	s.runScript(c, true, name, args, readOnly, true, func(ctx context.Context, h script.Host) (script.Reply, error) {
		sh := h.(*scriptHost)
		if sh.x.tx != nil {
			// On the write path: the library as the write's state holds
			// it (it may have changed since the lookup above).
			libs, err := s.libraries(sh.x.r)
			if err != nil {
				return script.Reply{}, &script.Aborted{Cause: err}
			}
			if lib, fn = findFunction(libs, name); fn == nil {
				return script.ErrorReply(msgFuncNotFound), nil
			}
		}
		return s.scripts.runner.FCall(ctx, lib, name, h, keys, argv)
	})
}

var functionHelp = []string{
	"FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"LOAD [REPLACE] <FUNCTION CODE>",
	"    Create a new library with the given library name and code.",
	"DELETE <LIBRARY NAME>",
	"    Delete the given library.",
	"LIST [LIBRARYNAME PATTERN] [WITHCODE]",
	"    Return general information on all the libraries.",
	"FLUSH [ASYNC|SYNC]",
	"    Delete all the libraries.",
	"KILL",
	"    Kill the current running function.",
	"STATS",
	"    Return information about the current function running.",
	"DUMP, RESTORE",
	"    Refused: libraries are replicated and kept in snapshots; use FUNCTION LOAD.",
	"HELP",
	"    Print this help.",
}

func (s *Server) cmdFunction(c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	arity := map[string]int{"load": -3, "delete": 3, "flush": -2, "list": -2, "kill": 2, "stats": 2, "help": 2, "dump": 2, "restore": -3}
	want, ok := arity[sub]
	if !ok {
		c.errorf("ERR unknown subcommand '%.128s'. Try FUNCTION HELP.", args[1])
		return
	}
	if (want > 0 && len(args) != want) || (want < 0 && len(args) < -want) {
		c.arityErr("function|" + sub)
		return
	}
	c.setLast(c.lastAt, "function|"+sub)
	if sub == "load" || sub == "delete" || sub == "flush" {
		if msg := s.txUnsupported("FUNCTION " + strings.ToUpper(sub)); msg != "" {
			c.err(msg)
			return
		}
		if s.mode() == engine.ModeMultiLeader {
			c.errorf("ERR FUNCTION %s is not supported in multi-leader mode: a library would have to be merged across sites; use EVAL", strings.ToUpper(sub))
			return
		}
	}
	switch sub {
	case "load":
		s.functionLoad(c, args[2:])
	case "delete":
		name := string(args[2])
		if c.write(func(tx engine.Txn) error {
			if _, ok, err := tx.Get(libKey(name)); err != nil || !ok {
				if err == nil {
					err = replyError("ERR Library not found")
				}
				return err
			}
			tx.Del(libKey(name))
			return nil
		}) {
			c.ok()
		}
	case "flush":
		if len(args) == 3 && !strings.EqualFold(string(args[2]), "sync") && !strings.EqualFold(string(args[2]), "async") || len(args) > 3 {
			c.err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
			return
		}
		if c.write(func(tx engine.Txn) error {
			kvs, err := libraryKeys(txReader{tx})
			for _, kv := range kvs {
				tx.Del(kv[0])
			}
			return err
		}) {
			c.ok()
		}
	case "list":
		s.functionList(c, args[2:])
	case "stats":
		s.functionStats(c)
	case "kill":
		s.kill(c, true)
	case "dump", "restore":
		c.errorf("ERR FUNCTION %s is not supported: libraries are replicated and kept in snapshots and backups; load them with FUNCTION LOAD", strings.ToUpper(sub))
	case "help":
		c.array(len(functionHelp))
		for _, l := range functionHelp {
			c.simple(l)
		}
	}
}

func (s *Server) functionLoad(c *client, args [][]byte) {
	replace := false
	if len(args) > 1 {
		if !strings.EqualFold(string(args[0]), "replace") || len(args) > 2 {
			c.errorf("ERR Unknown option given: %s", args[0])
			return
		}
		replace, args = true, args[1:]
	}
	lib, err := s.compileLibrary(string(args[0]))
	if err != nil {
		scriptErr(c, err)
		return
	}
	if c.write(func(tx engine.Txn) error {
		libs, err := s.libraries(txReader{tx})
		if err != nil {
			return err
		}
		for _, other := range libs {
			if other.Name == lib.Name {
				if !replace {
					return replyError("ERR Library '" + lib.Name + "' already exists")
				}
				continue
			}
			for _, f := range lib.Functions {
				if other.Function(f.Name) != nil {
					return replyError("ERR Function " + f.Name + " already exists")
				}
			}
		}
		tx.Set(libKey(lib.Name), []byte(lib.Code), 0)
		return nil
	}) {
		c.bulkString(lib.Name)
	}
}

func (s *Server) functionList(c *client, args [][]byte) {
	withCode := false
	var pattern []byte
	for i := 0; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "withcode":
			withCode = true
		case "libraryname":
			if i+1 >= len(args) {
				c.err("ERR library name argument was not given")
				return
			}
			i++
			pattern = args[i]
		default:
			c.errorf("ERR Unknown argument %s", args[i])
			return
		}
	}
	r, ok := c.read()
	if !ok {
		return
	}
	libs, err := s.libraries(r)
	if err != nil {
		c.backendErr(err)
		return
	}
	libs = slices.DeleteFunc(libs, func(l *script.Library) bool { return pattern != nil && !globMatch(pattern, []byte(l.Name)) })
	c.array(len(libs))
	for _, l := range libs {
		n := 3
		if withCode {
			n = 4
		}
		c.mapHeader(n)
		c.bulkString("library_name")
		c.bulkString(l.Name)
		c.bulkString("engine")
		c.bulkString("LUA")
		c.bulkString("functions")
		c.array(len(l.Functions))
		for _, f := range l.Functions {
			c.mapHeader(3)
			c.bulkString("name")
			c.bulkString(f.Name)
			c.bulkString("description")
			if f.HasDesc {
				c.bulkString(f.Description)
			} else {
				c.null()
			}
			c.bulkString("flags")
			names := f.Flags.Names()
			c.setHeader(len(names))
			for _, fl := range names {
				c.simple(fl)
			}
		}
		if withCode {
			c.bulkString("library_code")
			c.bulkString(l.Code)
		}
	}
}

func (s *Server) functionStats(c *client) {
	var running *scriptRun
	s.scripts.mu.Lock()
	for r := range s.scripts.runs {
		if r.function && (running == nil || r.created.Before(running.created)) {
			running = r
		}
	}
	s.scripts.mu.Unlock()
	libs, fns := 0, 0
	if r, err := s.b.Read(c.ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{}); err == nil {
		if ls, err := s.libraries(r); err == nil {
			libs = len(ls)
			for _, l := range ls {
				fns += len(l.Functions)
			}
		}
	}
	c.mapHeader(2)
	c.bulkString("running_script")
	if running == nil {
		c.null()
	} else {
		c.mapHeader(3)
		c.bulkString("name")
		c.bulkString(running.name)
		c.bulkString("command")
		c.array(len(running.args))
		for _, a := range running.args {
			c.bulk(a)
		}
		c.bulkString("duration_ms")
		c.int(time.Since(running.created).Milliseconds())
	}
	c.bulkString("engines")
	c.mapHeader(1)
	c.bulkString("LUA")
	c.mapHeader(2)
	c.bulkString("libraries_count")
	c.int(int64(libs))
	c.bulkString("functions_count")
	c.int(int64(fns))
}
