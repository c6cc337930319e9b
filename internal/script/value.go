package script

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Kind is the type of one reply value, in RESP3's vocabulary (RESP2
// clients get each kind's RESP2 form).
type Kind uint8

// The reply kinds.
const (
	KindNull Kind = iota // $-1 / *-1 in RESP2, _ in RESP3
	KindStatus
	KindError
	KindInt
	KindBulk
	KindArray
	KindMap // Elems holds key, value, key, value …
	KindSet
	KindDouble
	KindBool
	KindBigNumber
	KindVerbatim // Format holds the three-letter format
)

// Reply is one reply value: what a command answered a script, and what a
// script answers its caller. Scripts see replies as Lua values; the
// caller sees them encoded in its own protocol, so a script's reply is
// kept as a tree until the caller's protocol is known.
type Reply struct {
	Kind   Kind
	Str    string // status, error, bulk, big number, verbatim text
	Int    int64
	Float  float64
	Bool   bool
	Format string
	Elems  []Reply
}

// ErrorReply is an error reply with text msg (which starts with its code).
func ErrorReply(msg string) Reply { return Reply{Kind: KindError, Str: msg} }

// IsError reports whether r is an error reply.
func (r Reply) IsError() bool { return r.Kind == KindError }

// Append encodes r in protocol proto (2 or 3) onto b.
func (r Reply) Append(b []byte, proto int) []byte {
	switch r.Kind {
	case KindNull:
		if proto == 3 {
			return append(b, "_\r\n"...)
		}
		return append(b, "$-1\r\n"...)
	case KindStatus:
		return appendLine(b, '+', r.Str)
	case KindError:
		return appendLine(b, '-', r.Str)
	case KindInt:
		return appendLine(b, ':', strconv.FormatInt(r.Int, 10))
	case KindBulk:
		return appendBulk(b, r.Str)
	case KindArray:
		b = appendLine(b, '*', strconv.Itoa(len(r.Elems)))
	case KindMap:
		if proto == 3 {
			b = appendLine(b, '%', strconv.Itoa(len(r.Elems)/2))
		} else {
			b = appendLine(b, '*', strconv.Itoa(len(r.Elems)))
		}
	case KindSet:
		if proto == 3 {
			b = appendLine(b, '~', strconv.Itoa(len(r.Elems)))
		} else {
			b = appendLine(b, '*', strconv.Itoa(len(r.Elems)))
		}
	case KindDouble:
		s := formatDouble(r.Float)
		if proto == 3 {
			return appendLine(b, ',', s)
		}
		return appendBulk(b, s)
	case KindBool:
		if proto == 3 {
			if r.Bool {
				return append(b, "#t\r\n"...)
			}
			return append(b, "#f\r\n"...)
		}
		if r.Bool {
			return append(b, ":1\r\n"...)
		}
		return append(b, ":0\r\n"...)
	case KindBigNumber:
		if proto == 3 {
			return appendLine(b, '(', r.Str)
		}
		return appendBulk(b, r.Str)
	case KindVerbatim:
		if proto == 3 {
			b = appendLine(b, '=', strconv.Itoa(len(r.Format)+1+len(r.Str)))
			b = append(b, r.Format...)
			b = append(b, ':')
			b = append(b, r.Str...)
			return append(b, '\r', '\n')
		}
		return appendBulk(b, r.Str)
	}
	for _, e := range r.Elems {
		b = e.Append(b, proto)
	}
	return b
}

// formatDouble formats a double as Redis does in replies (%.17g, inf,
// -inf, nan).
func formatDouble(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

func appendLine(b []byte, kind byte, s string) []byte {
	b = append(b, kind)
	// A status or error line cannot hold a line break: Redis replaces
	// them with spaces, so a reply never breaks the protocol.
	if kind == '+' || kind == '-' {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c == '\r' || c == '\n' {
				s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
				break
			}
		}
	}
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulk(b []byte, s string) []byte {
	b = appendLine(b, '$', strconv.Itoa(len(s)))
	b = append(b, s...)
	return append(b, '\r', '\n')
}

var errShort = errors.New("script: truncated reply")

// ParseReply decodes the one complete reply at the start of b (RESP2 or
// RESP3, as a command run for a script answered it).
func ParseReply(b []byte) (Reply, error) {
	r, _, err := parseReply(b, 0)
	return r, err
}

func parseReply(b []byte, depth int) (Reply, int, error) {
	if depth > 1000 {
		return Reply{}, 0, errors.New("script: reply nested too deeply")
	}
	end := strings.Index(string(b), "\r\n")
	if len(b) < 3 || end < 1 {
		return Reply{}, 0, errShort
	}
	line := string(b[1:end])
	n := end + 2
	num := func() (int64, error) { return strconv.ParseInt(line, 10, 64) }
	switch b[0] {
	case '+':
		return Reply{Kind: KindStatus, Str: line}, n, nil
	case '-':
		return Reply{Kind: KindError, Str: line}, n, nil
	case ':':
		v, err := num()
		return Reply{Kind: KindInt, Int: v}, n, err
	case '_':
		return Reply{Kind: KindNull}, n, nil
	case ',':
		f, err := parseDouble(line)
		return Reply{Kind: KindDouble, Float: f}, n, err
	case '#':
		return Reply{Kind: KindBool, Bool: line == "t"}, n, nil
	case '(':
		return Reply{Kind: KindBigNumber, Str: line}, n, nil
	case '$', '=', '!':
		l, err := num()
		if err != nil {
			return Reply{}, 0, err
		}
		if l < 0 {
			return Reply{Kind: KindNull}, n, nil
		}
		if int64(len(b)-n) < l+2 {
			return Reply{}, 0, errShort
		}
		s := string(b[n : n+int(l)])
		n += int(l) + 2
		switch b[0] {
		case '=':
			format, text, _ := strings.Cut(s, ":")
			return Reply{Kind: KindVerbatim, Format: format, Str: text}, n, nil
		case '!':
			return Reply{Kind: KindError, Str: s}, n, nil
		}
		return Reply{Kind: KindBulk, Str: s}, n, nil
	case '*', '%', '~', '>', '|':
		l, err := num()
		if err != nil {
			return Reply{}, 0, err
		}
		if l < 0 {
			return Reply{Kind: KindNull}, n, nil
		}
		count := l
		kind := KindArray
		switch b[0] {
		case '%', '|':
			count, kind = 2*l, KindMap
		case '~':
			kind = KindSet
		}
		elems := make([]Reply, 0, min(count, 1024))
		for range count {
			e, used, err := parseReply(b[n:], depth+1)
			if err != nil {
				return Reply{}, 0, err
			}
			elems = append(elems, e)
			n += used
		}
		if b[0] == '|' {
			// An attribute describes the reply after it; scripts see
			// only the reply.
			r, used, err := parseReply(b[n:], depth+1)
			return r, n + used, err
		}
		return Reply{Kind: kind, Elems: elems}, n, nil
	}
	return Reply{}, 0, errors.New("script: unknown reply type " + strconv.Quote(string(b[:1])))
}

func parseDouble(s string) (float64, error) {
	switch s {
	case "inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	case "nan":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}
