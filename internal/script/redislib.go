package script

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Log levels of redis.log, as Redis numbers them.
const (
	LogDebug   = 0
	LogVerbose = 1
	LogNotice  = 2
	LogWarning = 3
)

// redisTable builds the redis table: the whole API for scripts and
// functions, or (load) what a library may use while it registers its
// functions.
func (st *state) redisTable(load bool) *lua.LTable {
	L := st.L
	t := L.NewTable()
	consts := map[string]lua.LValue{
		"LOG_DEBUG": lua.LNumber(LogDebug), "LOG_VERBOSE": lua.LNumber(LogVerbose),
		"LOG_NOTICE": lua.LNumber(LogNotice), "LOG_WARNING": lua.LNumber(LogWarning),
		"REDIS_VERSION":     lua.LString(st.cfg.Version),
		"REDIS_VERSION_NUM": lua.LNumber(versionNum(st.cfg.Version)),
	}
	fns := map[string]lua.LGFunction{"log": st.redisLog}
	if load {
		fns["register_function"] = st.registerFunction
	} else {
		for k, v := range map[string]lua.LValue{
			"REPL_NONE": lua.LNumber(0), "REPL_AOF": lua.LNumber(1), "REPL_SLAVE": lua.LNumber(2),
			"REPL_REPLICA": lua.LNumber(2), "REPL_ALL": lua.LNumber(3),
		} {
			consts[k] = v
		}
		for k, v := range map[string]lua.LGFunction{
			"call":         func(L *lua.LState) int { return st.call(L, true) },
			"pcall":        func(L *lua.LState) int { return st.call(L, false) },
			"error_reply":  st.errorReply,
			"status_reply": st.statusReply,
			"sha1hex":      st.sha1hex,
			"setresp":      st.setResp,
			// Replication is always by effects: the log records the
			// values a script wrote, so these have nothing to choose.
			"set_repl":           func(L *lua.LState) int { return 0 },
			"replicate_commands": func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
			// There is no script debugger (SCRIPT DEBUG).
			"breakpoint":    func(L *lua.LState) int { L.Push(lua.LFalse); return 1 },
			"debug":         func(L *lua.LState) int { return 0 },
			"acl_check_cmd": st.aclCheckCmd,
		} {
			fns[k] = v
		}
	}
	for k, v := range consts {
		t.RawSetString(k, v)
	}
	for k, fn := range fns {
		t.RawSetString(k, L.NewFunction(fn))
	}
	return t
}

// versionNum is Redis's REDIS_VERSION_NUM: 0x00MMmmpp.
func versionNum(v string) int {
	parts := strings.SplitN(v, ".", 3)
	n := 0
	for i := 0; i < 3; i++ {
		x := 0
		if i < len(parts) {
			x, _ = strconv.Atoi(parts[i])
		}
		n = n<<8 | (x & 0xff)
	}
	return n
}

// errorTable is the Lua form of an error reply.
func errorTable(L *lua.LState, msg string) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("err", lua.LString(msg))
	return t
}

// call serves redis.call (raise: an error reply raises it) and
// redis.pcall (an error reply is returned as a table).
func (st *state) call(L *lua.LState, raise bool) int {
	fail := func(msg string) int {
		if raise {
			L.Error(errorTable(L, msg), 0)
		}
		L.Push(errorTable(L, msg))
		return 1
	}
	n := L.GetTop()
	if n == 0 {
		return fail("ERR Please specify at least one argument for this redis lib call")
	}
	args := make([][]byte, n)
	for i := range n {
		switch v := L.Get(i + 1).(type) {
		case lua.LString:
			args[i] = []byte(v)
		case lua.LNumber:
			args[i] = strconv.AppendFloat(nil, float64(v), 'g', 17, 64)
		default:
			return fail("ERR Lua redis lib command arguments must be strings or integers")
		}
	}
	r := st.run
	out, err := r.host.Call(args, r.resp)
	if err == nil {
		var reply Reply
		if reply, err = ParseReply(out); err == nil {
			if reply.IsError() {
				return fail(reply.Str)
			}
			L.Push(toLua(L, reply, r.resp))
			return 1
		}
	}
	// Not the command's answer: the script cannot go on, and whatever it
	// did must not be kept (the runner checks abort).
	r.abort = err
	L.RaiseError("script aborted: %v", err)
	return 0
}

func (st *state) errorReply(L *lua.LState) int {
	s, ok := L.Get(1).(lua.LString)
	if L.GetTop() != 1 || !ok {
		L.Push(errorTable(L, "ERR wrong number or type of arguments"))
		return 1
	}
	msg := strings.TrimPrefix(string(s), "-")
	if !strings.Contains(msg, " ") {
		// A bare word is a message, not an error code.
		msg = "ERR " + msg
	}
	L.Push(errorTable(L, msg))
	return 1
}

func (st *state) statusReply(L *lua.LState) int {
	s, ok := L.Get(1).(lua.LString)
	if L.GetTop() != 1 || !ok {
		L.Push(errorTable(L, "ERR wrong number or type of arguments"))
		return 1
	}
	t := L.NewTable()
	t.RawSetString("ok", s)
	L.Push(t)
	return 1
}

func (st *state) sha1hex(L *lua.LState) int {
	if L.GetTop() != 1 {
		L.Error(lua.LString("wrong number of arguments"), 0)
	}
	sum := sha1.Sum([]byte(lua.LVAsString(L.Get(1))))
	L.Push(lua.LString(hex.EncodeToString(sum[:])))
	return 1
}

func (st *state) setResp(L *lua.LState) int {
	if L.GetTop() != 1 {
		L.Error(lua.LString("redis.setresp() requires one argument."), 0)
	}
	n, ok := L.Get(1).(lua.LNumber)
	if !ok || (n != 2 && n != 3) {
		L.Error(lua.LString("RESP version must be 2 or 3."), 0)
	}
	st.run.resp = int(n)
	return 0
}

func (st *state) redisLog(L *lua.LState) int {
	if L.GetTop() < 2 {
		L.Error(lua.LString("redis.log() requires two arguments or more."), 0)
	}
	lvl, ok := L.Get(1).(lua.LNumber)
	if !ok || lvl < LogDebug || lvl > LogWarning || lvl != lua.LNumber(int(lvl)) {
		L.Error(lua.LString("Invalid debug level."), 0)
	}
	var parts []string
	for i := 2; i <= L.GetTop(); i++ {
		switch v := L.Get(i).(type) {
		case lua.LString, lua.LNumber:
			parts = append(parts, v.String())
		}
	}
	if st.run != nil && !st.run.quietLog && st.run.host != nil {
		st.run.host.Log(int(lvl), strings.Join(parts, " "))
	}
	return 0
}

func (st *state) aclCheckCmd(L *lua.LState) int {
	if L.GetTop() < 1 {
		L.Error(lua.LString("Please specify at least one argument for this redis lib call"), 0)
	}
	name, ok := L.Get(1).(lua.LString)
	if !ok || !st.run.host.Exists(strings.ToLower(string(name))) {
		L.Error(lua.LString("Invalid command passed to redis.acl_check_cmd()"), 0)
	}
	// There are no ACL users: the connection may run every command.
	L.Push(lua.LTrue)
	return 1
}
