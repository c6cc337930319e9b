package script

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// The cjson library: cjson.encode, cjson.decode and cjson.null, with
// lua-cjson's behaviour as Redis ships it (numbers with 14 significant
// digits, "/" escaped, an empty table encoded as {}, sparse arrays
// refused). Its configuration functions are left out: in a pooled state
// a setting would leak from one script into the next.

const jsonMaxDepth = 1000

func openCJSON(L *lua.LState) *lua.LTable {
	null := L.NewUserData()
	t := L.NewTable()
	t.RawSetString("null", null)
	t.RawSetString("encode", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() != 1 {
			L.ArgError(1, "expected 1 argument")
		}
		var b strings.Builder
		if err := jsonEncode(&b, L.Get(1), null, 0); err != nil {
			L.RaiseError("%s", err.Error())
		}
		L.Push(lua.LString(b.String()))
		return 1
	}))
	t.RawSetString("decode", L.NewFunction(func(L *lua.LState) int {
		d := &jsonDecoder{L: L, s: L.CheckString(1), null: null}
		v, err := d.value(0)
		if err == nil {
			d.space()
			if d.i < len(d.s) {
				err = d.errorf("Expected the end but found %s", d.token())
			}
		}
		if err != nil {
			L.RaiseError("%s", err.Error())
		}
		L.Push(v)
		return 1
	}))
	return t
}

func jsonNumber(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("Cannot serialise number: must not be NaN or Inf")
	}
	return strconv.FormatFloat(f, 'g', 14, 64), nil
}

func jsonEncode(b *strings.Builder, v lua.LValue, null *lua.LUserData, depth int) error {
	switch x := v.(type) {
	case *lua.LNilType:
		b.WriteString("null")
	case lua.LBool:
		b.WriteString(strconv.FormatBool(bool(x)))
	case lua.LNumber:
		s, err := jsonNumber(float64(x))
		if err != nil {
			return err
		}
		b.WriteString(s)
	case lua.LString:
		jsonString(b, string(x))
	case *lua.LUserData:
		if x != null {
			return fmt.Errorf("Cannot serialise userdata: type not supported")
		}
		b.WriteString("null")
	case *lua.LTable:
		if depth >= jsonMaxDepth {
			return fmt.Errorf("Cannot serialise, excessive nesting (%d)", depth+1)
		}
		return jsonTable(b, x, null, depth+1)
	default:
		return fmt.Errorf("Cannot serialise %s: type not supported", v.Type().String())
	}
	return nil
}

func jsonTable(b *strings.Builder, t *lua.LTable, null *lua.LUserData, depth int) error {
	// An array: every key a positive integer, not too sparse.
	maxIdx, count, isArray := 0, 0, true
	t.ForEach(func(k, _ lua.LValue) {
		count++
		n, ok := k.(lua.LNumber)
		if !ok || n < 1 || n != lua.LNumber(math.Floor(float64(n))) {
			isArray = false
			return
		}
		maxIdx = max(maxIdx, int(n))
	})
	if count > 0 && isArray {
		if maxIdx > 10 && maxIdx > count*2 {
			return fmt.Errorf("Cannot serialise table: excessively sparse array")
		}
		b.WriteByte('[')
		for i := 1; i <= maxIdx; i++ {
			if i > 1 {
				b.WriteByte(',')
			}
			if err := jsonEncode(b, t.RawGetInt(i), null, depth); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	}
	b.WriteByte('{')
	first := true
	var err error
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		switch kk := k.(type) {
		case lua.LString:
			jsonString(b, string(kk))
		case lua.LNumber:
			s, nerr := jsonNumber(float64(kk))
			if nerr != nil {
				err = nerr
				return
			}
			jsonString(b, s)
		default:
			err = fmt.Errorf("Cannot serialise table: table key must be a number or string")
			return
		}
		b.WriteByte(':')
		err = jsonEncode(b, v, null, depth)
	})
	if err != nil {
		return err
	}
	b.WriteByte('}')
	return nil
}

func jsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '/':
			b.WriteString(`\/`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

type jsonDecoder struct {
	L    *lua.LState
	s    string
	i    int
	null *lua.LUserData
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf(format+" at character %d", append(args, d.i+1)...)
}

func (d *jsonDecoder) space() {
	for d.i < len(d.s) && strings.IndexByte(" \t\r\n", d.s[d.i]) >= 0 {
		d.i++
	}
}

// token names what is at the current position, in lua-cjson's words.
func (d *jsonDecoder) token() string {
	if d.i >= len(d.s) {
		return "T_END"
	}
	switch d.s[d.i] {
	case '{':
		return "T_OBJ_BEGIN"
	case '}':
		return "T_OBJ_END"
	case '[':
		return "T_ARR_BEGIN"
	case ']':
		return "T_ARR_END"
	case ',':
		return "T_COMMA"
	case ':':
		return "T_COLON"
	case '"':
		return "T_STRING"
	}
	return "invalid token"
}

func (d *jsonDecoder) value(depth int) (lua.LValue, error) {
	d.space()
	if d.i >= len(d.s) {
		return nil, d.errorf("Expected value but found T_END")
	}
	switch c := d.s[d.i]; {
	case c == '{' || c == '[':
		if depth >= jsonMaxDepth {
			return nil, d.errorf("Found too many nested data structures (%d)", depth+1)
		}
		if c == '{' {
			return d.object(depth + 1)
		}
		return d.array(depth + 1)
	case c == '"':
		s, err := d.str()
		return lua.LString(s), err
	case c == '-' || c >= '0' && c <= '9':
		j := d.i
		for j < len(d.s) && strings.IndexByte("+-0123456789.eE", d.s[j]) >= 0 {
			j++
		}
		f, err := strconv.ParseFloat(d.s[d.i:j], 64)
		if err != nil {
			return nil, d.errorf("Expected value but found invalid number")
		}
		d.i = j
		return lua.LNumber(f), nil
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
		return lua.LTrue, nil
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
		return lua.LFalse, nil
	case strings.HasPrefix(d.s[d.i:], "null"):
		d.i += 4
		return d.null, nil
	}
	return nil, d.errorf("Expected value but found %s", d.token())
}

func (d *jsonDecoder) object(depth int) (lua.LValue, error) {
	t := d.L.NewTable()
	d.i++
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return t, nil
	}
	for {
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.errorf("Expected object key string but found %s", d.token())
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.errorf("Expected colon but found %s", d.token())
		}
		d.i++
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		t.RawSetString(k, v)
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			return t, nil
		}
		return nil, d.errorf("Expected comma or object end but found %s", d.token())
	}
}

func (d *jsonDecoder) array(depth int) (lua.LValue, error) {
	t := d.L.NewTable()
	d.i++
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return t, nil
	}
	for n := 1; ; n++ {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		t.RawSetInt(n, v)
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			return t, nil
		}
		return nil, d.errorf("Expected comma or array end but found %s", d.token())
	}
}

func (d *jsonDecoder) str() (string, error) {
	d.i++ // the opening quote
	var b strings.Builder
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return b.String(), nil
		case c == '\\':
			if d.i+1 >= len(d.s) {
				return "", d.errorf("Expected value but found invalid string")
			}
			e := d.s[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", d.errorf("Expected value but found invalid unicode escape code")
				}
				if utf16.IsSurrogate(r) {
					if !strings.HasPrefix(d.s[d.i:], `\u`) {
						return "", d.errorf("Expected value but found invalid unicode escape code")
					}
					d.i += 2
					r2, ok := d.hex4()
					if !ok {
						return "", d.errorf("Expected value but found invalid unicode escape code")
					}
					r = utf16.DecodeRune(r, r2)
				}
				b.WriteString(string(r))
			default:
				return "", d.errorf("Expected value but found invalid escape code")
			}
		default:
			if c < 0x20 {
				return "", d.errorf("Expected value but found invalid string")
			}
			b.WriteByte(c)
			d.i++
		}
	}
	return "", d.errorf("Expected value but found unexpected end of string")
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(d.s[d.i:d.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	r := rune(n)
	if !utf16.IsSurrogate(r) && !utf8.ValidRune(r) {
		return 0, false
	}
	return r, true
}
