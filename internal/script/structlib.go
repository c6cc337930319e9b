package script

import (
	"encoding/binary"
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The struct library (Roberto Ierusalimschy's, as Redis ships it):
// struct.pack(fmt, ...), struct.unpack(fmt, s [, pos]) and
// struct.size(fmt). Formats: < > = ! endianness and alignment, x padding,
// b B h H l L T i[n] I[n] integers, f d floats, c[n] fixed strings,
// s zero-terminated strings; spaces are ignored.

type structFmt struct {
	f      string
	i      int
	little bool
	align  int
}

const structMaxIntSize = 8

func (p *structFmt) next(L *lua.LState) (opt byte, size int, ok bool) {
	for p.i < len(p.f) {
		c := p.f[p.i]
		p.i++
		switch c {
		case ' ':
			continue
		case '<', '=':
			p.little = true
			continue
		case '>':
			p.little = false
			continue
		case '!':
			p.align = p.num(8)
			continue
		}
		switch c {
		case 'x', 'b', 'B':
			return c, 1, true
		case 'h', 'H':
			return c, 2, true
		case 'l', 'L', 'T':
			return c, 8, true
		case 'f':
			return c, 4, true
		case 'd':
			return c, 8, true
		case 'i', 'I':
			n := p.num(4)
			if n < 1 || n > structMaxIntSize {
				L.RaiseError("integral size %d is larger than limit of %d", n, structMaxIntSize)
			}
			return c, n, true
		case 'c':
			return c, p.num(1), true
		case 's':
			return c, 0, true
		}
		L.RaiseError("invalid format option '%c'", c)
	}
	return 0, 0, false
}

func (p *structFmt) num(def int) int {
	start := p.i
	n := 0
	for p.i < len(p.f) && p.f[p.i] >= '0' && p.f[p.i] <= '9' && n < 1<<20 {
		n = n*10 + int(p.f[p.i]-'0')
		p.i++
	}
	if p.i == start {
		return def
	}
	return n
}

// pad is the padding before an item of size at offset pos.
func (p *structFmt) pad(opt byte, size, pos int) int {
	if opt == 'c' || opt == 's' || opt == 'x' {
		return 0
	}
	a := min(size, p.align)
	if a <= 1 || a&(a-1) != 0 {
		return 0
	}
	return (a - pos%a) % a
}

func openStruct(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("pack", L.NewFunction(structPack))
	t.RawSetString("unpack", L.NewFunction(structUnpack))
	t.RawSetString("size", L.NewFunction(func(L *lua.LState) int {
		p := &structFmt{f: L.CheckString(1), little: true, align: 1}
		total := 0
		for {
			opt, size, ok := p.next(L)
			if !ok {
				break
			}
			if opt == 's' {
				L.ArgError(1, "options 'c0' - 's' have undefined sizes")
			}
			total += p.pad(opt, size, total) + size
		}
		L.Push(lua.LNumber(total))
		return 1
	}))
	return t
}

func putInt(b []byte, u uint64, size int, little bool) []byte {
	for k := range size {
		shift := uint(8 * k)
		if !little {
			shift = uint(8 * (size - 1 - k))
		}
		b = append(b, byte(u>>shift))
	}
	return b
}

func structPack(L *lua.LState) int {
	p := &structFmt{f: L.CheckString(1), little: true, align: 1}
	var b []byte
	arg := 2
	for {
		opt, size, ok := p.next(L)
		if !ok {
			break
		}
		for range p.pad(opt, size, len(b)) {
			b = append(b, 0)
		}
		switch opt {
		case 'x':
			b = append(b, 0)
		case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
			n := float64(L.CheckNumber(arg))
			arg++
			var u uint64
			if n < 0 {
				u = uint64(int64(n))
			} else {
				u = uint64(n)
			}
			b = putInt(b, u, size, p.little)
		case 'f':
			u := math.Float32bits(float32(L.CheckNumber(arg)))
			arg++
			b = putInt(b, uint64(u), 4, p.little)
		case 'd':
			u := math.Float64bits(float64(L.CheckNumber(arg)))
			arg++
			b = putInt(b, u, 8, p.little)
		case 'c', 's':
			s := L.CheckString(arg)
			arg++
			l := len(s)
			if opt == 'c' && size != 0 {
				if l < size {
					L.ArgError(arg-1, "string too short")
				}
				l = size
			}
			if len(b)+l > 512<<20 {
				L.RaiseError("resulting string too large")
			}
			b = append(b, s[:l]...)
			if opt == 's' {
				b = append(b, 0)
			}
		}
	}
	L.Push(lua.LString(b))
	return 1
}

func structUnpack(L *lua.LState) int {
	p := &structFmt{f: L.CheckString(1), little: true, align: 1}
	data := L.CheckString(2)
	pos := L.OptInt(3, 1) - 1
	if pos < 0 {
		L.ArgError(3, "offset must be 1 or greater")
	}
	n := 0
	for {
		opt, size, ok := p.next(L)
		if !ok {
			break
		}
		pos += p.pad(opt, size, pos)
		if opt != 's' && pos+size > len(data) {
			L.ArgError(2, "data string too short")
		}
		switch opt {
		case 'x':
		case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
			var u uint64
			for k := range size {
				c := uint64(data[pos+k])
				if p.little {
					u |= c << (8 * k)
				} else {
					u = u<<8 | c
				}
			}
			v := float64(u)
			if (opt == 'b' || opt == 'h' || opt == 'l' || opt == 'i') && size < 8 && u&(1<<(8*size-1)) != 0 {
				v = float64(int64(u) - int64(1)<<(8*size))
			} else if size == 8 && (opt == 'l' || opt == 'i') {
				v = float64(int64(u))
			}
			L.Push(lua.LNumber(v))
			n++
		case 'f', 'd':
			raw := []byte(data[pos : pos+size])
			var v float64
			if size == 4 {
				if p.little {
					v = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw)))
				} else {
					v = float64(math.Float32frombits(binary.BigEndian.Uint32(raw)))
				}
			} else if p.little {
				v = math.Float64frombits(binary.LittleEndian.Uint64(raw))
			} else {
				v = math.Float64frombits(binary.BigEndian.Uint64(raw))
			}
			L.Push(lua.LNumber(v))
			n++
		case 'c':
			if size == 0 {
				// c0 takes its length from the number unpacked before it.
				if n == 0 {
					L.ArgError(1, "format 'c0' needs a previous size")
				}
				prev, _ := L.Get(-1).(lua.LNumber)
				L.Pop(1)
				n--
				size = int(prev)
				if size < 0 || pos+size > len(data) {
					L.ArgError(2, "data string too short")
				}
			}
			L.Push(lua.LString(data[pos : pos+size]))
			n++
		case 's':
			end := strings.IndexByte(data[pos:], 0)
			if end < 0 {
				L.ArgError(2, "unfinished string in data")
			}
			L.Push(lua.LString(data[pos : pos+end]))
			n++
			size = end + 1
		}
		pos += size
	}
	L.Push(lua.LNumber(pos + 1))
	return n + 1
}
