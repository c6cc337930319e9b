package script

import (
	"context"
	"errors"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Library is a compiled function library (FUNCTION LOAD): its name, its
// code, and the functions its code registers.
type Library struct {
	Name      string
	Code      string
	Functions []*Function // by name
	proto     *lua.FunctionProto
}

// Function is one registered function's metadata.
type Function struct {
	Name        string
	Description string
	HasDesc     bool
	Flags       Flags
}

// Function returns the library's function called name, or nil.
func (l *Library) Function(name string) *Function {
	i, ok := slices.BinarySearchFunc(l.Functions, name, func(f *Function, n string) int { return strings.Compare(f.Name, n) })
	if !ok {
		return nil
	}
	return l.Functions[i]
}

// registration collects what a library's code registers.
type registration struct {
	lib  *Library
	fns  map[string]*lua.LFunction
	meta []*Function
}

// validName: letters, digits and underscores, at least one.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

const msgBadName = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"

// LoadLibrary parses a library ("#!lua name=<lib>" then Lua code that
// calls redis.register_function), runs its code once to learn its
// functions, and returns it. Errors are Error values with Redis's texts.
func (r *Runner) LoadLibrary(ctx context.Context, code string) (*Library, error) {
	if !strings.HasPrefix(code, "#!") {
		return nil, Error("ERR Missing library metadata")
	}
	line, rest, _ := strings.Cut(code, "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0] != "#!lua" {
		engine := strings.TrimPrefix(line, "#!")
		if len(fields) > 0 {
			engine = strings.TrimPrefix(fields[0], "#!")
		}
		return nil, Error("ERR Engine '" + engine + "' not found")
	}
	lib := &Library{Code: code}
	for _, opt := range fields[1:] {
		v, ok := strings.CutPrefix(opt, "name=")
		if !ok {
			return nil, Error("ERR Invalid metadata value given: " + opt)
		}
		lib.Name = v
	}
	if lib.Name == "" {
		return nil, Error("ERR Library name was not given")
	}
	if !validName(lib.Name) {
		return nil, Error(msgBadName)
	}
	proto, err := compileChunk("\n"+rest, "user_function")
	if err != nil {
		return nil, Error("ERR Error compiling function: " + err.Error())
	}
	lib.proto = proto
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := r.watchHeap(cancel)
	defer stop()
	st := r.pool.Get().(*state)
	st.run = &run{ctx: ctx, resp: 2}
	st.L.SetContext(ctx)
	_, err = st.register(lib, false)
	st.L.RemoveContext()
	st.run = nil
	st.L.SetTop(0)
	if ctx.Err() != nil {
		st.L.Close()
		return nil, &Aborted{Cause: context.Cause(ctx)}
	}
	r.pool.Put(st)
	if err != nil {
		return nil, err
	}
	return lib, nil
}

// register runs lib's code in load mode and returns the callbacks it
// registered. At load (again false) it also fills lib.Functions and
// checks that there is at least one; again (before FCALL) it re-creates
// the callbacks on this state quietly, so that every call starts from
// the library's code (no state left over from an earlier call).
func (st *state) register(lib *Library, again bool) (map[string]*lua.LFunction, error) {
	L := st.L
	reg := &registration{lib: lib, fns: map[string]*lua.LFunction{}}
	st.run.registering = reg
	st.run.quietLog = again
	st.g = st.loadG
	defer func() {
		st.g = st.runG
		st.run.registering = nil
		st.run.quietLog = false
	}()
	fn := L.NewFunctionFromProto(lib.proto)
	fn.Env = st.env
	L.Push(fn)
	if err := L.PCall(0, 0, st.handler); err != nil {
		if st.aborting() {
			return nil, &Aborted{Cause: context.Cause(st.run.ctx)}
		}
		var obj lua.LValue = lua.LString(err.Error())
		var ae *lua.ApiError
		if errors.As(err, &ae) {
			obj = ae.Object
		}
		msg := lua.LVAsString(obj)
		if t, ok := obj.(*lua.LTable); ok {
			msg = lua.LVAsString(t.RawGetString("err"))
		} else {
			msg = "ERR " + lua51Message(msg)
		}
		return nil, Error("ERR Error registering functions: " + msg)
	}
	if len(reg.fns) == 0 {
		return nil, Error("ERR No functions registered")
	}
	if !again {
		slices.SortFunc(reg.meta, func(a, b *Function) int { return strings.Compare(a.Name, b.Name) })
		lib.Functions = reg.meta
	}
	return reg.fns, nil
}

// registerFunction is redis.register_function, in its two forms:
// (name, callback) and {function_name=, callback=, flags=, description=}.
func (st *state) registerFunction(L *lua.LState) int {
	fail := func(msg string) int {
		L.Error(errorTable(L, msg), 0)
		return 0
	}
	reg := st.run.registering
	if reg == nil {
		return fail("ERR redis.register_function can only be called on FUNCTION LOAD command")
	}
	f := &Function{}
	var cb *lua.LFunction
	switch L.GetTop() {
	case 2:
		name, ok := L.Get(1).(lua.LString)
		if !ok {
			return fail("ERR first argument to redis.register_function must be a string")
		}
		fn, ok := L.Get(2).(*lua.LFunction)
		if !ok {
			return fail("ERR second argument to redis.register_function must be a function")
		}
		f.Name, cb = string(name), fn
	case 1:
		t, ok := L.Get(1).(*lua.LTable)
		if !ok {
			return fail("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
		}
		var bad string
		t.ForEach(func(k, v lua.LValue) {
			if bad != "" {
				return
			}
			switch lua.LVAsString(k) {
			case "function_name":
				s, ok := v.(lua.LString)
				if !ok {
					bad = "ERR function_name argument given to redis.register_function must be a string"
				}
				f.Name = string(s)
			case "description":
				s, ok := v.(lua.LString)
				if !ok {
					bad = "ERR description argument given to redis.register_function must be a string"
				}
				f.Description, f.HasDesc = string(s), true
			case "callback":
				fn, ok := v.(*lua.LFunction)
				if !ok {
					bad = "ERR callback argument given to redis.register_function must be a function"
				}
				cb = fn
			case "flags":
				ft, ok := v.(*lua.LTable)
				if !ok {
					bad = "ERR flags argument to redis.register_function must be a table representing function flags"
					return
				}
				ft.ForEach(func(_, fv lua.LValue) {
					fl, ok := flagByName(lua.LVAsString(fv))
					if _, isStr := fv.(lua.LString); !ok || !isStr {
						bad = "ERR unknown flag given"
						return
					}
					f.Flags |= fl
				})
			default:
				bad = "ERR unknown argument given to redis.register_function"
			}
		})
		if bad != "" {
			return fail(bad)
		}
		if f.Name == "" && cb != nil {
			return fail("ERR redis.register_function must get a function name argument")
		}
		if cb == nil {
			return fail("ERR redis.register_function must get a callback argument")
		}
	default:
		return fail("ERR wrong number of arguments to redis.register_function")
	}
	if !validName(f.Name) {
		return fail(msgBadName)
	}
	if _, dup := reg.fns[f.Name]; dup {
		return fail("ERR Function already exists in the library")
	}
	reg.fns[f.Name] = cb
	reg.meta = append(reg.meta, f)
	return 0
}
