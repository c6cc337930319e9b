package script

import (
	"encoding/binary"
	"errors"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// The cmsgpack library (lua-cmsgpack's API as Redis ships it): pack(...)
// encodes its arguments one after another; unpack(s) decodes every value
// in s; unpack_one and unpack_limit decode some and return where they
// stopped.

// msgpackMaxNesting: tables nested deeper are encoded as nil, as
// lua-cmsgpack does.
const msgpackMaxNesting = 16

func openCMsgpack(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("pack", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() == 0 {
			L.RaiseError("MessagePack pack needs input.")
		}
		var b []byte
		for i := 1; i <= L.GetTop(); i++ {
			b = msgpackEncode(b, L.Get(i), 0)
		}
		L.Push(lua.LString(b))
		return 1
	}))
	unpack := func(L *lua.LState, s string, limit, offset int) int {
		d := msgpackDecoder{L: L, b: []byte(s), i: offset}
		var vals []lua.LValue
		for d.i < len(d.b) && (limit <= 0 || len(vals) < limit) {
			v, err := d.value(0)
			if err != nil {
				L.RaiseError("%s", err.Error())
			}
			vals = append(vals, v)
		}
		if limit >= 0 {
			next := d.i
			if next >= len(d.b) {
				next = -1
			}
			L.Push(lua.LNumber(next))
		}
		for _, v := range vals {
			L.Push(v)
		}
		if limit >= 0 {
			return len(vals) + 1
		}
		return len(vals)
	}
	t.RawSetString("unpack", L.NewFunction(func(L *lua.LState) int {
		return unpack(L, L.CheckString(1), -1, 0)
	}))
	t.RawSetString("unpack_one", L.NewFunction(func(L *lua.LState) int {
		return unpack(L, L.CheckString(1), 1, L.OptInt(2, 0))
	}))
	t.RawSetString("unpack_limit", L.NewFunction(func(L *lua.LState) int {
		return unpack(L, L.CheckString(1), L.CheckInt(2), L.OptInt(3, 0))
	}))
	return t
}

func msgpackEncode(b []byte, v lua.LValue, depth int) []byte {
	switch x := v.(type) {
	case lua.LBool:
		if x {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case lua.LNumber:
		return msgpackNumber(b, float64(x))
	case lua.LString:
		n := len(x)
		switch {
		case n < 32:
			b = append(b, 0xa0|byte(n))
		case n <= 0xff:
			b = append(b, 0xd9, byte(n))
		case n <= 0xffff:
			b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
		}
		return append(b, x...)
	case *lua.LTable:
		if depth >= msgpackMaxNesting {
			return append(b, 0xc0)
		}
		if n, ok := arrayLen(x); ok {
			b = msgpackHeader(b, n, 0x90, 0xdc, 0xdd)
			for i := 1; i <= n; i++ {
				b = msgpackEncode(b, x.RawGetInt(i), depth+1)
			}
			return b
		}
		n := 0
		x.ForEach(func(_, _ lua.LValue) { n++ })
		b = msgpackHeader(b, n, 0x80, 0xde, 0xdf)
		x.ForEach(func(k, v lua.LValue) {
			b = msgpackEncode(b, k, depth+1)
			b = msgpackEncode(b, v, depth+1)
		})
		return b
	}
	return append(b, 0xc0) // nil, and what msgpack cannot hold
}

// arrayLen reports whether t's keys are exactly 1..n.
func arrayLen(t *lua.LTable) (int, bool) {
	count, maxIdx, ok := 0, 0, true
	t.ForEach(func(k, _ lua.LValue) {
		count++
		n, isNum := k.(lua.LNumber)
		if !isNum || n < 1 || n != lua.LNumber(math.Floor(float64(n))) {
			ok = false
			return
		}
		maxIdx = max(maxIdx, int(n))
	})
	return count, ok && count == maxIdx
}

func msgpackHeader(b []byte, n int, fix, c16, c32 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, c32), uint32(n))
}

func msgpackNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && !math.IsInf(f, 0) && f >= -9.2e18 && f <= 1.8e19 {
		if f >= 0 {
			u := uint64(f)
			switch {
			case u < 128:
				return append(b, byte(u))
			case u <= 0xff:
				return append(b, 0xcc, byte(u))
			case u <= 0xffff:
				return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(u))
			case u <= 0xffffffff:
				return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(u))
			}
			return binary.BigEndian.AppendUint64(append(b, 0xcf), u)
		}
		i := int64(f)
		switch {
		case i >= -32:
			return append(b, byte(int8(i)))
		case i >= math.MinInt8:
			return append(b, 0xd0, byte(int8(i)))
		case i >= math.MinInt16:
			return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(int16(i)))
		case i >= math.MinInt32:
			return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(int32(i)))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(i))
	}
	if float64(float32(f)) == f || math.IsNaN(f) {
		return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(float32(f)))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

type msgpackDecoder struct {
	L *lua.LState
	b []byte
	i int
}

var (
	errMsgpackShort = errors.New("Missing bytes in input.")
	errMsgpackBad   = errors.New("Bad data format in input.")
)

func (d *msgpackDecoder) take(n int) ([]byte, error) {
	if n < 0 || d.i+n > len(d.b) || d.i+n < d.i {
		return nil, errMsgpackShort
	}
	p := d.b[d.i : d.i+n]
	d.i += n
	return p, nil
}

func (d *msgpackDecoder) uint(n int) (uint64, error) {
	p, err := d.take(n)
	if err != nil {
		return 0, err
	}
	var u uint64
	for _, c := range p {
		u = u<<8 | uint64(c)
	}
	return u, nil
}

func (d *msgpackDecoder) value(depth int) (lua.LValue, error) {
	if depth > 1000 {
		return nil, errMsgpackBad
	}
	p, err := d.take(1)
	if err != nil {
		return nil, err
	}
	c := p[0]
	sized := func(n int) (lua.LValue, error) {
		s, err := d.take(n)
		return lua.LString(s), err
	}
	switch {
	case c < 0x80:
		return lua.LNumber(c), nil
	case c >= 0xe0:
		return lua.LNumber(int8(c)), nil
	case c&0xf0 == 0x80:
		return d.mapOf(int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return d.arrayOf(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return sized(int(c & 0x1f))
	}
	lenOf := func(n int) (int, error) {
		u, err := d.uint(n)
		if u > uint64(len(d.b)) {
			return 0, errMsgpackShort
		}
		return int(u), err
	}
	switch c {
	case 0xc0:
		return lua.LNil, nil
	case 0xc2:
		return lua.LFalse, nil
	case 0xc3:
		return lua.LTrue, nil
	case 0xc4, 0xd9:
		n, err := lenOf(1)
		if err != nil {
			return nil, err
		}
		return sized(n)
	case 0xc5, 0xda:
		n, err := lenOf(2)
		if err != nil {
			return nil, err
		}
		return sized(n)
	case 0xc6, 0xdb:
		n, err := lenOf(4)
		if err != nil {
			return nil, err
		}
		return sized(n)
	case 0xca:
		u, err := d.uint(4)
		return lua.LNumber(math.Float32frombits(uint32(u))), err
	case 0xcb:
		u, err := d.uint(8)
		return lua.LNumber(math.Float64frombits(u)), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		return lua.LNumber(u), err
	case 0xd0:
		u, err := d.uint(1)
		return lua.LNumber(int8(u)), err
	case 0xd1:
		u, err := d.uint(2)
		return lua.LNumber(int16(u)), err
	case 0xd2:
		u, err := d.uint(4)
		return lua.LNumber(int32(u)), err
	case 0xd3:
		u, err := d.uint(8)
		return lua.LNumber(int64(u)), err
	case 0xdc, 0xdd:
		n, err := lenOf(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.arrayOf(n, depth)
	case 0xde, 0xdf:
		n, err := lenOf(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapOf(n, depth)
	}
	return nil, errMsgpackBad
}

func (d *msgpackDecoder) arrayOf(n, depth int) (lua.LValue, error) {
	t := d.L.CreateTable(min(n, 1024), 0)
	for i := 1; i <= n; i++ {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		t.RawSetInt(i, v)
	}
	return t, nil
}

func (d *msgpackDecoder) mapOf(n, depth int) (lua.LValue, error) {
	t := d.L.NewTable()
	for range n {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if k != lua.LNil {
			t.RawSet(k, v)
		}
	}
	return t, nil
}
