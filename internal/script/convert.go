package script

import (
	"math"

	lua "github.com/yuin/gopher-lua"
)

// maxDepth bounds the nesting of a reply built from Lua tables: a table
// that contains itself would otherwise recurse forever.
const maxDepth = 1000

// toLua converts a command's reply into the Lua value a script receives,
// by Redis's rules for the protocol the script chose (redis.setresp).
func toLua(L *lua.LState, r Reply, resp int) lua.LValue {
	field := func(k string, v lua.LValue) *lua.LTable {
		t := L.NewTable()
		t.RawSetString(k, v)
		return t
	}
	switch r.Kind {
	case KindNull:
		if resp == 3 {
			return lua.LNil
		}
		return lua.LFalse // RESP2's null bulk and null array
	case KindStatus:
		return field("ok", lua.LString(r.Str))
	case KindError:
		return field("err", lua.LString(r.Str))
	case KindInt:
		return lua.LNumber(r.Int)
	case KindBulk:
		return lua.LString(r.Str)
	case KindArray:
		t := L.CreateTable(len(r.Elems), 0)
		for i, e := range r.Elems {
			t.RawSetInt(i+1, toLua(L, e, resp))
		}
		return t
	case KindMap:
		m := L.CreateTable(0, len(r.Elems)/2)
		for i := 0; i+1 < len(r.Elems); i += 2 {
			m.RawSet(toLua(L, r.Elems[i], resp), toLua(L, r.Elems[i+1], resp))
		}
		return field("map", m)
	case KindSet:
		s := L.CreateTable(0, len(r.Elems))
		for _, e := range r.Elems {
			s.RawSet(toLua(L, e, resp), lua.LTrue)
		}
		return field("set", s)
	case KindDouble:
		return field("double", lua.LNumber(r.Float))
	case KindBool:
		return lua.LBool(r.Bool)
	case KindBigNumber:
		return field("big_number", lua.LString(r.Str))
	case KindVerbatim:
		v := L.NewTable()
		v.RawSetString("format", lua.LString(r.Format))
		v.RawSetString("string", lua.LString(r.Str))
		return field("verbatim_string", v)
	}
	return lua.LNil
}

// luaToInt converts a Lua number to a reply integer: truncated toward
// zero, and, as Redis's C cast does on x86, the smallest integer for
// what no int64 holds (NaN, infinities, out of range).
func luaToInt(f float64) int64 {
	if math.IsNaN(f) || f >= 9.223372036854775807e18 || f < -9.223372036854775808e18 {
		return math.MinInt64
	}
	return int64(f)
}

// fromLua converts a script's result into its reply, by Redis's rules:
// numbers become integers, tables arrays (up to the first nil) unless they
// carry one of the special fields, booleans depend on the protocol the
// script chose.
func fromLua(v lua.LValue, resp, depth int) Reply {
	if depth > maxDepth {
		return ErrorReply("ERR reached lua stack limit")
	}
	switch x := v.(type) {
	case lua.LNumber:
		return Reply{Kind: KindInt, Int: luaToInt(float64(x))}
	case lua.LString:
		return Reply{Kind: KindBulk, Str: string(x)}
	case lua.LBool:
		if resp == 3 {
			return Reply{Kind: KindBool, Bool: bool(x)}
		}
		if x {
			return Reply{Kind: KindInt, Int: 1}
		}
		return Reply{Kind: KindNull}
	case *lua.LTable:
		return tableReply(x, resp, depth)
	}
	return Reply{Kind: KindNull}
}

func tableReply(t *lua.LTable, resp, depth int) Reply {
	if s, ok := t.RawGetString("err").(lua.LString); ok {
		return Reply{Kind: KindError, Str: string(s)}
	}
	if s, ok := t.RawGetString("ok").(lua.LString); ok {
		return Reply{Kind: KindStatus, Str: string(s)}
	}
	if n, ok := t.RawGetString("double").(lua.LNumber); ok {
		return Reply{Kind: KindDouble, Float: float64(n)}
	}
	if s, ok := t.RawGetString("big_number").(lua.LString); ok {
		return Reply{Kind: KindBigNumber, Str: string(s)}
	}
	if m, ok := t.RawGetString("map").(*lua.LTable); ok {
		r := Reply{Kind: KindMap}
		m.ForEach(func(k, v lua.LValue) {
			r.Elems = append(r.Elems, fromLua(k, resp, depth+1), fromLua(v, resp, depth+1))
		})
		return r
	}
	if s, ok := t.RawGetString("set").(*lua.LTable); ok {
		r := Reply{Kind: KindSet}
		s.ForEach(func(k, _ lua.LValue) { r.Elems = append(r.Elems, fromLua(k, resp, depth+1)) })
		return r
	}
	if vs, ok := t.RawGetString("verbatim_string").(*lua.LTable); ok {
		f, fok := vs.RawGetString("format").(lua.LString)
		s, sok := vs.RawGetString("string").(lua.LString)
		if fok && sok {
			return Reply{Kind: KindVerbatim, Format: string(f), Str: string(s)}
		}
	}
	r := Reply{Kind: KindArray}
	for i := 1; ; i++ {
		e := t.RawGetInt(i)
		if e == lua.LNil {
			break
		}
		r.Elems = append(r.Elems, fromLua(e, resp, depth+1))
	}
	return r
}
