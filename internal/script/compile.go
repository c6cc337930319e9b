package script

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Error is an error whose text is the reply to send as is (it starts
// with its error code, e.g. "ERR Error compiling script …").
type Error string

func (e Error) Error() string { return string(e) }

// Flags are a script's or a function's flags (Redis 7's shebang
// "flags=…" and register_function's flags).
type Flags uint8

// The flags Redis defines. Only NoWrites changes how replicant runs a
// script; the others are accepted and shown (replicant neither evicts nor
// shards, and a follower's reads are always allowed).
const (
	FlagNoWrites Flags = 1 << iota
	FlagAllowOOM
	FlagAllowStale
	FlagNoCluster
	FlagAllowCrossSlot
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagNoWrites, "no-writes"},
	{FlagAllowOOM, "allow-oom"},
	{FlagAllowStale, "allow-stale"},
	{FlagNoCluster, "no-cluster"},
	{FlagAllowCrossSlot, "allow-cross-slot-keys"},
}

func flagByName(name string) (Flags, bool) {
	for _, f := range flagNames {
		if f.name == name {
			return f.f, true
		}
	}
	return 0, false
}

// Names lists the flags' names in Redis's order.
func (f Flags) Names() []string {
	var out []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// Script is a compiled EVAL script. Its byte code is shared by every run,
// on any Lua state (gopher-lua's FunctionProto is immutable once built).
type Script struct {
	SHA  string
	Body string
	// Shebang: the script declared its flags (#!lua): as in Redis, it is
	// then refused on a replica unless it is no-writes, instead of
	// failing at its first write.
	Shebang bool
	Flags   Flags
	proto   *lua.FunctionProto
}

// SHA1Hex is the script cache's key of body (lowercase hex SHA-1).
func SHA1Hex(body string) string {
	sum := sha1.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

// Compile parses an EVAL script: its optional shebang line, then its Lua
// code. Errors are Error values with Redis's texts.
func Compile(body string) (*Script, error) {
	s := &Script{SHA: SHA1Hex(body), Body: body}
	code := body
	if strings.HasPrefix(body, "#!") {
		line, rest, found := strings.Cut(body, "\n")
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "#!lua" {
			first := line
			if len(fields) > 0 {
				first = fields[0]
			}
			return nil, Error("ERR Unexpected engine in script shebang: " + first)
		}
		for _, opt := range fields[1:] {
			v, ok := strings.CutPrefix(opt, "flags=")
			if !ok {
				return nil, Error("ERR Unknown lua shebang option: " + opt)
			}
			for _, name := range strings.Split(v, ",") {
				if name == "" {
					continue
				}
				f, ok := flagByName(name)
				if !ok {
					return nil, Error("ERR Unexpected flag in script shebang: " + name)
				}
				s.Flags |= f
			}
		}
		s.Shebang = true
		// The shebang line stays a (blank) line, so error positions
		// count lines as the client wrote them.
		code = ""
		if found {
			code = "\n" + rest
		}
	}
	proto, err := compileChunk(code, "user_script")
	if err != nil {
		return nil, Error("ERR Error compiling script (new function): " + err.Error())
	}
	s.proto = proto
	return s, nil
}

// compileChunk compiles Lua code under chunk name name; errors read as
// Lua 5.1's ("user_script:1: unexpected symbol near '<eof>'").
func compileChunk(code, name string) (*lua.FunctionProto, error) {
	chunk, err := parse.Parse(strings.NewReader(code), name)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			return nil, errors.New(parseErrorText(pe, code, name))
		}
		return nil, err
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		var ce *lua.CompileError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%s:%d: %s", name, ce.Line, ce.Message)
		}
		return nil, err
	}
	return proto, nil
}

// parseErrorText renders a gopher-lua parse error the way Lua 5.1 does:
// "<chunk>:<line>: <message> near '<token>'". gopher-lua calls every
// grammar error "syntax error", which Lua words "unexpected symbol".
func parseErrorText(pe *parse.Error, code, name string) string {
	msg := pe.Message
	switch msg {
	case "syntax error":
		msg = "unexpected symbol"
	case "unterminated string":
		msg = "unfinished string"
	}
	line, token := pe.Pos.Line, pe.Token
	if line == parse.EOF {
		line, token = strings.Count(code, "\n")+1, "<eof>"
	}
	return fmt.Sprintf("%s:%d: %s near '%s'", name, line, msg, token)
}
