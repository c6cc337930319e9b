package script

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Host is what a running script reaches outside Lua: the server's
// commands, its log and its command table.
type Host interface {
	// Call runs one command for redis.call/redis.pcall and returns its
	// reply encoded in protocol resp (2 or 3), an error reply included.
	// A non-nil error is not the command's answer (storage failure, lost
	// leadership): it ends the whole script, which then writes nothing.
	Call(args [][]byte, resp int) ([]byte, error)
	// Log writes redis.log's message at level (LogDebug … LogWarning).
	Log(level int, msg string)
	// Exists reports whether name is a command (redis.acl_check_cmd).
	Exists(name string) bool
}

// Config bounds what one script may use.
type Config struct {
	// Version is what redis.REDIS_VERSION reports.
	Version string
	// MaxStringSize bounds strings built at once (string.rep, load).
	MaxStringSize int
	// HeapLimit: a run is stopped (ErrHeapLimit) once the process's live
	// heap has grown by more than this since it started. 0: no limit.
	HeapLimit int64
	// HeapCheck is how often the heap is sampled while a script runs.
	HeapCheck time.Duration
}

// ErrHeapLimit stops a script that allocated beyond Config.HeapLimit.
var ErrHeapLimit = errors.New("script exceeded the heap limit")

// Aborted is a run that ended without an answer of its own: its context
// was cancelled (SCRIPT KILL, a timeout, the heap limit: Cause) or the
// host failed. Nothing the script did may be kept.
type Aborted struct {
	Cause error
	// Where is the position the script was stopped at
	// ("user_script:3"), "" if unknown.
	Where string
}

func (a *Aborted) Error() string { return "script aborted: " + a.Cause.Error() }
func (a *Aborted) Unwrap() error { return a.Cause }

// Runner runs scripts and functions on pooled Lua states.
type Runner struct {
	cfg  Config
	pool sync.Pool
}

// NewRunner returns a runner with cfg's bounds.
func NewRunner(cfg Config) *Runner {
	if cfg.MaxStringSize <= 0 {
		cfg.MaxStringSize = 512 << 20
	}
	if cfg.HeapCheck <= 0 {
		cfg.HeapCheck = 20 * time.Millisecond
	}
	if cfg.Version == "" {
		cfg.Version = "7.2.0"
	}
	r := &Runner{cfg: cfg}
	r.pool.New = func() any { return newState(&r.cfg) }
	return r
}

// Eval runs s with KEYS and ARGV. A script error (a Lua error, an error
// reply redis.call raised) is a KindError reply whose text ends with
// Redis's "script: <sha>, on @user_script:<line>." — the writes the
// script made before it stand. An *Aborted error means nothing may be
// kept.
func (r *Runner) Eval(ctx context.Context, s *Script, h Host, keys, args [][]byte) (Reply, error) {
	return r.exec(ctx, h, s.SHA, func(st *state) (*lua.LFunction, int, error) {
		st.runG.RawSetString("KEYS", stringTable(st.L, keys))
		st.runG.RawSetString("ARGV", stringTable(st.L, args))
		fn := st.L.NewFunctionFromProto(s.proto)
		fn.Env = st.env
		st.L.Push(fn)
		return fn, 0, nil
	})
}

// FCall runs function name of lib with keys and args.
func (r *Runner) FCall(ctx context.Context, lib *Library, name string, h Host, keys, args [][]byte) (Reply, error) {
	return r.exec(ctx, h, name, func(st *state) (*lua.LFunction, int, error) {
		fns, err := st.register(lib, true)
		if err != nil {
			// The library registered fine when it was loaded; it can only
			// fail now if it was stopped.
			return nil, 0, err
		}
		fn, ok := fns[name]
		if !ok {
			return nil, 0, Error("ERR Function not found")
		}
		st.L.Push(fn)
		st.L.Push(stringTable(st.L, keys))
		st.L.Push(stringTable(st.L, args))
		return fn, 2, nil
	})
}

func stringTable(L *lua.LState, vals [][]byte) *lua.LTable {
	t := L.CreateTable(len(vals), 0)
	for i, v := range vals {
		t.RawSetInt(i+1, lua.LString(v))
	}
	return t
}

// exec runs the function prepare pushed (with nargs arguments above it)
// on a pooled state and converts its result.
func (r *Runner) exec(parent context.Context, h Host, name string, prepare func(*state) (*lua.LFunction, int, error)) (reply Reply, err error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stop := r.watchHeap(cancel)
	defer stop()
	st := r.pool.Get().(*state)
	st.run = &run{ctx: ctx, host: h, resp: 2}
	st.g = st.runG
	st.L.SetContext(ctx)
	clean := false
	defer func() {
		st.L.RemoveContext()
		st.run = nil
		st.g = st.runG
		st.runG.RawSetString("KEYS", lua.LNil)
		st.runG.RawSetString("ARGV", lua.LNil)
		st.L.SetTop(0)
		// A state left by an abort or a panic may hold a half-unwound
		// stack: it is dropped, not pooled.
		if clean {
			r.pool.Put(st)
		} else {
			st.L.Close()
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			err = &Aborted{Cause: fmt.Errorf("internal error: %v", p)}
		}
	}()
	_, nargs, perr := prepare(st)
	if perr != nil {
		if ctx.Err() != nil {
			return Reply{}, &Aborted{Cause: context.Cause(ctx), Where: st.run.where}
		}
		var e Error
		if errors.As(perr, &e) {
			clean = true
			return ErrorReply(string(e)), nil
		}
		return Reply{}, &Aborted{Cause: perr}
	}
	callErr := st.L.PCall(nargs, 1, st.handler)
	switch {
	case ctx.Err() != nil:
		return Reply{}, &Aborted{Cause: context.Cause(ctx), Where: st.run.where}
	case st.run.abort != nil:
		return Reply{}, &Aborted{Cause: st.run.abort, Where: st.run.where}
	}
	clean = true
	if callErr != nil {
		var obj lua.LValue = lua.LString(callErr.Error())
		if ae, ok := callErr.(*lua.ApiError); ok {
			obj = ae.Object
		}
		return ErrorReply(errorText(obj, name, st.run.where)), nil
	}
	return fromLua(st.L.Get(-1), st.run.resp, 0), nil
}

// errorText is the reply of a script that raised obj: an error reply
// table's own text, or a Lua error message after "ERR ", then Redis's
// "script: <name>, on @<chunk>:<line>." suffix.
func errorText(obj lua.LValue, name, where string) string {
	var msg string
	switch x := obj.(type) {
	case *lua.LTable:
		if s, ok := x.RawGetString("err").(lua.LString); ok {
			msg = string(s)
		} else {
			msg = "ERR unknown error"
		}
	case lua.LString:
		msg = "ERR " + lua51Message(string(x))
	default:
		msg = "ERR " + lua.LVAsString(obj)
		if obj == lua.LNil {
			msg = "ERR nil"
		}
	}
	if where == "" {
		where = "?"
	}
	return fmt.Sprintf("%s script: %s, on @%s.", msg, name, where)
}

var (
	reArith  = regexp.MustCompile(`cannot perform (?:add|sub|mul|div|mod|pow|unm) operation between (\w+) and (\w+)`)
	reConcat = regexp.MustCompile(`cannot perform concat operation between (\w+) and (\w+)`)
	reIndex  = regexp.MustCompile(`attempt to index a non-table object\((\w+)\)(?: with key '[^']*')?`)
)

// lua51Message rewords gopher-lua's runtime errors as Lua 5.1 (and so
// Redis) words the common ones.
func lua51Message(s string) string {
	s = reArith.ReplaceAllStringFunc(s, func(m string) string {
		p := reArith.FindStringSubmatch(m)
		t := p[1]
		if t == "number" {
			t = p[2]
		}
		return "attempt to perform arithmetic on a " + t + " value"
	})
	s = reConcat.ReplaceAllStringFunc(s, func(m string) string {
		p := reConcat.FindStringSubmatch(m)
		t := p[1]
		if t == "string" || t == "number" {
			t = p[2]
		}
		return "attempt to concatenate a " + t + " value"
	})
	s = reIndex.ReplaceAllString(s, "attempt to index a $1 value")
	return strings.Replace(s, "attempt to call a non-function object", "attempt to call a nil value", 1)
}

// watchHeap samples the live heap while a script runs and stops the
// script (cancel with ErrHeapLimit) once it grew by more than the limit.
// The live heap is what the last GC found reachable, so garbage a script
// leaves behind does not count; growth by other work of the node in the
// same moment does, which errs on the side of the node.
func (r *Runner) watchHeap(cancel context.CancelCauseFunc) func() {
	if r.cfg.HeapLimit <= 0 {
		return func() {}
	}
	base := liveHeap()
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	var check func()
	check = func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if int64(liveHeap())-int64(base) > r.cfg.HeapLimit {
			cancel(ErrHeapLimit)
			return
		}
		t = time.AfterFunc(r.cfg.HeapCheck, check)
	}
	mu.Lock()
	t = time.AfterFunc(r.cfg.HeapCheck, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}
