package script

import (
	"context"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// state is one sandboxed Lua state. States are pooled (Runner); a run
// borrows one, and nothing a script does can outlive its run in it:
//
//   - Scripts see globals through env, an empty table whose metatable
//     reads the current globals table (runG while a script or function
//     runs, loadG while a library registers its functions) and refuses
//     every assignment; a missing global is an error, as in Redis 7.
//   - Every library table a script can reach (string, table, math,
//     redis, cjson, …) is a read-only proxy of the real one; rawset and
//     setmetatable refuse the protected tables, and the metatables carry
//     __metatable so that getmetatable cannot hand them out.
//   - Functions compiled at run time (loadstring, load) get env too,
//     never the state's real globals.
//
// So a pooled state is the same before and after any run; the only
// per-run values (KEYS, ARGV, the protocol chosen by redis.setresp) are
// reset by the runner.
type state struct {
	L     *lua.LState
	env   *lua.LTable
	runG  *lua.LTable
	loadG *lua.LTable
	g     *lua.LTable // runG or loadG
	// protected are the tables scripts may not modify; targets maps each
	// read-only proxy to the table it shows.
	protected map[*lua.LTable]bool
	targets   map[*lua.LTable]*lua.LTable
	readOnly  *lua.LFunction // __newindex of protected tables
	noMeta    *lua.LTable    // what getmetatable answers for them
	handler   *lua.LFunction // the top-level error handler
	cfg       *Config
	run       *run
}

// run is the per-run state Go functions reach.
type run struct {
	ctx  context.Context
	host Host
	resp int // 2 or 3: redis.setresp
	// abort is set when the host failed in a way that must end the whole
	// script (not a command's error reply): nothing it did may be kept.
	abort error
	// where is the position of the last error raised ("user_script:3").
	where string
	// registering collects the functions a library registers.
	registering *registration
	quietLog    bool // redis.log is silent while a library re-registers
}

func (st *state) aborting() bool {
	return st.run != nil && (st.run.abort != nil || st.run.ctx.Err() != nil)
}

const (
	msgReadOnly = "Attempt to modify a readonly table"
)

func newState(cfg *Config) *state {
	L := lua.NewState(lua.Options{
		SkipOpenLibs: true,
		// Bounded stacks: deep recursion and huge varargs end in a Lua
		// error, not in an unbounded allocation.
		CallStackSize:       1000,
		RegistrySize:        1024,
		RegistryMaxSize:     1 << 20,
		RegistryGrowStep:    1024,
		MinimizeStackMemory: true,
	})
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	st := &state{L: L, cfg: cfg, protected: map[*lua.LTable]bool{}, targets: map[*lua.LTable]*lua.LTable{}}
	st.readOnly = L.NewFunction(func(L *lua.LState) int {
		L.RaiseError(msgReadOnly)
		return 0
	})
	st.noMeta = L.NewTable()
	noMetaMT := L.NewTable()
	noMetaMT.RawSetString("__newindex", st.readOnly)
	noMetaMT.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(st.noMeta, noMetaMT)
	st.protected[st.noMeta] = true

	real := L.G.Global
	st.runG = L.NewTable()
	for _, name := range []string{"assert", "error", "ipairs", "rawequal", "rawget", "select", "tonumber", "tostring", "type", "unpack"} {
		st.runG.RawSetString(name, real.RawGetString(name))
	}
	st.runG.RawSetString("_VERSION", lua.LString("Lua 5.1"))
	st.setBaseOverrides(st.runG)

	str := real.RawGetString("string").(*lua.LTable)
	str.RawSetString("rep", L.NewFunction(st.strRep))
	// Method calls on strings ("x"):upper() read the real string table;
	// the metatable itself is hidden.
	if mt, ok := L.GetMetatable(lua.LString("")).(*lua.LTable); ok {
		mt.RawSetString("__metatable", st.readonly(str))
		st.protected[mt] = true
	}
	libs := map[string]*lua.LTable{
		"string":    str,
		"table":     real.RawGetString("table").(*lua.LTable),
		"math":      real.RawGetString("math").(*lua.LTable),
		"coroutine": real.RawGetString("coroutine").(*lua.LTable),
		"cjson":     openCJSON(L),
		"cmsgpack":  openCMsgpack(L),
		"bit":       openBit(L),
		"struct":    openStruct(L),
	}
	for name, t := range libs {
		st.runG.RawSetString(name, st.readonly(t))
	}
	st.handler = L.NewFunction(st.onError)
	st.runG.RawSetString("__redis__err__handler", st.handler)

	// While a library registers its functions it sees only what Redis
	// offers then: the libraries and a few base functions, and a redis
	// table that can register functions and log, not call commands.
	st.loadG = L.NewTable()
	for _, name := range []string{"ipairs", "pairs", "next", "rawequal", "rawget", "select", "tonumber", "tostring", "type", "unpack", "getmetatable", "setmetatable", "_VERSION"} {
		st.loadG.RawSetString(name, st.runG.RawGetString(name))
	}
	for name := range libs {
		st.loadG.RawSetString(name, st.runG.RawGetString(name))
	}
	st.runG.RawSetString("redis", st.readonly(st.redisTable(false)))
	loadRedis := st.redisTable(true)
	proxy := st.readonly(loadRedis)
	// Redis words a missing field of the load-time redis table (redis.call
	// while registering) as a missing global.
	proxy.Metatable.(*lua.LTable).RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		v := loadRedis.RawGet(L.Get(2))
		if v == lua.LNil {
			L.RaiseError("Script attempted to access nonexistent global variable '%s'", lua.LVAsString(L.Get(2)))
		}
		L.Push(v)
		return 1
	}))
	st.loadG.RawSetString("redis", proxy)

	st.env = L.NewTable()
	envMT := L.NewTable()
	envMT.RawSetString("__index", L.NewFunction(st.globalIndex))
	envMT.RawSetString("__newindex", st.readOnly)
	envMT.RawSetString("__metatable", st.noMeta)
	L.SetMetatable(st.env, envMT)
	st.protected[st.env] = true
	st.runG.RawSetString("_G", st.env)
	st.loadG.RawSetString("_G", st.env)
	st.g = st.runG
	L.Env = st.env
	return st
}

// readonly returns a read-only proxy of t.
func (st *state) readonly(t *lua.LTable) *lua.LTable {
	p := st.L.NewTable()
	mt := st.L.NewTable()
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", st.readOnly)
	mt.RawSetString("__metatable", st.noMeta)
	st.L.SetMetatable(p, mt)
	st.protected[p], st.protected[t], st.protected[mt] = true, true, true
	st.targets[p] = t
	return p
}

// resolve returns the table a proxy shows (the current globals for env).
func (st *state) resolve(t *lua.LTable) *lua.LTable {
	if t == st.env {
		return st.g
	}
	if target, ok := st.targets[t]; ok {
		return target
	}
	return t
}

func (st *state) globalIndex(L *lua.LState) int {
	k := L.Get(2)
	v := st.g.RawGet(k)
	if v == lua.LNil {
		L.RaiseError("Script attempted to access nonexistent global variable '%s'", lua.LVAsString(k))
	}
	L.Push(v)
	return 1
}

// setBaseOverrides installs the base functions replicant provides itself:
// the ones that could reach past the sandbox (rawset, setmetatable, load,
// loadstring, pairs and next over proxies), the ones that must not catch
// a killed script (pcall, xpcall), and the ones whose gopher-lua version
// would touch the whole process (collectgarbage runs a full Go GC).
func (st *state) setBaseOverrides(g *lua.LTable) {
	L := st.L
	next := L.NewFunction(func(L *lua.LState) int {
		t := st.resolve(L.CheckTable(1))
		k, v := t.Next(L.Get(2))
		if k == lua.LNil {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(k)
		L.Push(v)
		return 2
	})
	fns := map[string]lua.LGFunction{
		"pairs": func(L *lua.LState) int {
			t := L.CheckTable(1)
			L.Push(next)
			L.Push(t)
			L.Push(lua.LNil)
			return 3
		},
		"rawset": func(L *lua.LState) int {
			t := L.CheckTable(1)
			if st.protected[t] {
				L.Error(lua.LString(msgReadOnly), 0)
			}
			t.RawSet(L.CheckAny(2), L.CheckAny(3))
			L.SetTop(1)
			return 1
		},
		"setmetatable": func(L *lua.LState) int {
			t := L.CheckTable(1)
			if st.protected[t] {
				L.Error(lua.LString(msgReadOnly), 0)
			}
			mt := L.Get(2)
			if mt != lua.LNil {
				L.CheckTable(2)
			}
			if cur, ok := t.Metatable.(*lua.LTable); ok && cur.RawGetString("__metatable") != lua.LNil {
				L.RaiseError("cannot change a protected metatable")
			}
			L.SetMetatable(t, mt)
			L.SetTop(1)
			return 1
		},
		"getmetatable": func(L *lua.LState) int {
			L.Push(L.GetMetatable(L.CheckAny(1)))
			return 1
		},
		"pcall":          st.pcall,
		"xpcall":         st.xpcall,
		"loadstring":     st.loadString,
		"load":           st.load,
		"collectgarbage": func(L *lua.LState) int { L.Push(lua.LNumber(0)); return 1 },
		"gcinfo":         func(L *lua.LState) int { L.Push(lua.LNumber(0)); return 1 },
	}
	for name, fn := range fns {
		g.RawSetString(name, L.NewFunction(fn))
	}
	g.RawSetString("next", next)
}

// pcall is Lua's, except that a script being killed or aborted cannot be
// caught, and an error reply raised by redis.call is handed to the
// script as its text (Redis 7 does the same, for scripts written before
// errors were tables).
func (st *state) pcall(L *lua.LState) int {
	if L.GetTop() == 0 {
		L.ArgError(1, "value expected")
	}
	err := L.PCall(L.GetTop()-1, lua.MultRet, nil)
	if st.aborting() {
		L.RaiseError("script aborted")
	}
	if err != nil {
		L.Push(lua.LFalse)
		L.Push(caughtError(err))
		return 2
	}
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

func (st *state) xpcall(L *lua.LState) int {
	fn := L.CheckFunction(1)
	h := L.CheckFunction(2)
	L.SetTop(0)
	L.Push(fn)
	err := L.PCall(0, lua.MultRet, h)
	if st.aborting() {
		L.RaiseError("script aborted")
	}
	if err != nil {
		L.Push(lua.LFalse)
		if ae, ok := err.(*lua.ApiError); ok {
			L.Push(ae.Object)
		} else {
			L.Push(lua.LString(err.Error()))
		}
		return 2
	}
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

// caughtError is the value pcall hands a script for err.
func caughtError(err error) lua.LValue {
	ae, ok := err.(*lua.ApiError)
	if !ok {
		return lua.LString(err.Error())
	}
	if t, ok := ae.Object.(*lua.LTable); ok {
		if s, ok := t.RawGetString("err").(lua.LString); ok {
			return s
		}
	}
	return ae.Object
}

func (st *state) loadString(L *lua.LState) int {
	code := L.CheckString(1)
	name := L.OptString(2, "")
	if name == "" {
		first, _, _ := strings.Cut(code, "\n")
		if len(first) > 60 {
			first = first[:60] + "..."
		}
		name = fmt.Sprintf("[string %q]", first)
	}
	return st.pushCompiled(L, code, name)
}

func (st *state) load(L *lua.LState) int {
	fn := L.CheckFunction(1)
	name := L.OptString(2, "=(load)")
	var b strings.Builder
	for {
		L.Push(fn)
		L.Call(0, 1)
		piece := L.Get(-1)
		L.Pop(1)
		s, ok := piece.(lua.LString)
		if !ok || s == "" {
			if piece != lua.LNil && !ok {
				L.Push(lua.LNil)
				L.Push(lua.LString("reader function must return a string"))
				return 2
			}
			break
		}
		if b.Len()+len(s) > st.cfg.MaxStringSize {
			L.RaiseError("chunk too large")
		}
		b.WriteString(string(s))
	}
	return st.pushCompiled(L, b.String(), name)
}

func (st *state) pushCompiled(L *lua.LState, code, name string) int {
	proto, err := compileChunk(code, name)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	fn := L.NewFunctionFromProto(proto)
	fn.Env = st.env
	L.Push(fn)
	return 1
}

// strRep is string.rep with its result bounded: a one-line script must
// not be able to ask for gigabytes at once.
func (st *state) strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if int64(len(s))*int64(n) > int64(st.cfg.MaxStringSize) {
		L.RaiseError("resulting string too large")
	}
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

// onError is the top-level error handler: it records where the error was
// raised (the innermost Lua function's line), for Redis's
// "script: …, on @user_script:3." suffix.
func (st *state) onError(L *lua.LState) int {
	obj := L.Get(1)
	for level := 1; level < 100; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil {
			continue
		}
		if dbg.What == "G" || dbg.CurrentLine <= 0 {
			continue
		}
		if st.run != nil {
			st.run.where = fmt.Sprintf("%s:%d", strings.TrimPrefix(dbg.Source, "@"), dbg.CurrentLine)
		}
		break
	}
	L.Push(obj)
	return 1
}
