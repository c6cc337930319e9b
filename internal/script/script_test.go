package script

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeHost answers a few commands the way the RESP server would.
type fakeHost struct {
	logs []string
	fail error
}

func (h *fakeHost) Call(args [][]byte, resp int) ([]byte, error) {
	if h.fail != nil {
		return nil, h.fail
	}
	switch strings.ToLower(string(args[0])) {
	case "echo":
		return Reply{Kind: KindBulk, Str: string(args[1])}.Append(nil, resp), nil
	case "get":
		return Reply{Kind: KindNull}.Append(nil, resp), nil
	case "ping":
		return Reply{Kind: KindStatus, Str: "PONG"}.Append(nil, resp), nil
	case "incr":
		return ErrorReply("ERR value is not an integer or out of range").Append(nil, resp), nil
	case "hgetall":
		return Reply{Kind: KindMap, Elems: []Reply{{Kind: KindBulk, Str: "f"}, {Kind: KindBulk, Str: "v"}}}.Append(nil, resp), nil
	}
	return ErrorReply("ERR Unknown Redis command called from script").Append(nil, resp), nil
}

func (h *fakeHost) Log(level int, msg string) { h.logs = append(h.logs, msg) }
func (h *fakeHost) Exists(name string) bool   { return name == "get" }

func eval(t *testing.T, r *Runner, body string, proto int) string {
	t.Helper()
	s, err := Compile(body)
	if err != nil {
		return "(compile) " + err.Error()
	}
	rep, err := r.Eval(context.Background(), s, &fakeHost{}, [][]byte{[]byte("k1")}, [][]byte{[]byte("a1")})
	if err != nil {
		return "(abort) " + err.Error()
	}
	return string(rep.Append(nil, proto))
}

func TestEvalReplies(t *testing.T) {
	r := NewRunner(Config{Version: "7.2.0"})
	sha := func(body string) string { return SHA1Hex(body) }
	cases := []struct {
		body  string
		proto int
		want  string
	}{
		{"return 1", 2, ":1\r\n"},
		{"return 3.99", 2, ":3\r\n"},
		{"return -3.7", 2, ":-3\r\n"},
		{"return 1e20", 2, ":-9223372036854775808\r\n"},
		{"return 'x'", 2, "$1\r\nx\r\n"},
		{"return true", 2, ":1\r\n"},
		{"return false", 2, "$-1\r\n"},
		{"return false", 3, "_\r\n"},
		{"return nil", 3, "_\r\n"},
		{"redis.setresp(3); return false", 2, ":0\r\n"},
		{"redis.setresp(3); return true", 3, "#t\r\n"},
		{"return {1,2,{3,'x'},nil,4}", 2, "*3\r\n:1\r\n:2\r\n*2\r\n:3\r\n$1\r\nx\r\n"},
		{"return {ok='fine'}", 2, "+fine\r\n"},
		{"return {err='bad thing'}", 2, "-bad thing\r\n"},
		{"return {1, {err='in array'}, {ok='fine'}}", 2, "*3\r\n:1\r\n-in array\r\n+fine\r\n"},
		{"return {double=3.5}", 2, "$3\r\n3.5\r\n"},
		{"return {double=3.5}", 3, ",3.5\r\n"},
		{"return {map={a=1}}", 2, "*2\r\n$1\r\na\r\n:1\r\n"},
		{"return {map={a=1}}", 3, "%1\r\n$1\r\na\r\n:1\r\n"},
		{"return {set={a=true}}", 3, "~1\r\n$1\r\na\r\n"},
		{"return {big_number='123'}", 3, "(123\r\n"},
		{"return {verbatim_string={format='txt', string='hi'}}", 3, "=6\r\ntxt:hi\r\n"},
		{"return {a=1}", 2, "*0\r\n"},
		{"return KEYS[1]..ARGV[1]", 2, "$4\r\nk1a1\r\n"},
		{"return redis.call('echo', 0.1)", 2, "$19\r\n0.10000000000000001\r\n"},
		{"return redis.call('echo', 3)", 2, "$1\r\n3\r\n"},
		{"return redis.call('ping')", 2, "+PONG\r\n"},
		{"return type(redis.call('get','x'))", 2, "$7\r\nboolean\r\n"},
		{"redis.setresp(3); return type(redis.call('get','x'))", 2, "$3\r\nnil\r\n"},
		{"redis.setresp(3); return redis.call('hgetall','h').map.f", 2, "$1\r\nv\r\n"},
		{"return redis.call('hgetall','h')", 2, "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"},
		{"return redis.pcall('incr','s')", 2, "-ERR value is not an integer or out of range\r\n"},
		{"local ok, e = pcall(function() redis.call('incr','s') end); return e", 2, "$43\r\nERR value is not an integer or out of range\r\n"},
		{"return redis.error_reply('x')", 2, "-ERR x\r\n"},
		{"return redis.error_reply('MY err')", 2, "-MY err\r\n"},
		{"return redis.status_reply('FINE')", 2, "+FINE\r\n"},
		{"return redis.sha1hex('')", 2, "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"},
		{"return cjson.encode({1,2,{a=1}})", 2, "$13\r\n[1,2,{\"a\":1}]\r\n"},
		{"return cjson.encode({})", 2, "$2\r\n{}\r\n"},
		{"return cjson.encode({[1]=1,[3]=3})", 2, "$10\r\n[1,null,3]\r\n"},
		{"return cjson.encode('a/b')", 2, "$6\r\n\"a\\/b\"\r\n"},
		{"return cjson.encode(1/3)", 2, "$16\r\n0.33333333333333\r\n"},
		{"return cjson.decode('[1,2,{\"a\":null}]')[3].a == cjson.null", 2, ":1\r\n"},
		{"local t = cjson.decode('{\"a\":[1,2,3],\"b\":\"x\\\\u00e9\"}'); return {t.a[3], t.b}", 2, "*2\r\n:3\r\n$3\r\nx\xc3\xa9\r\n"},
		{"return cmsgpack.pack({1,2,'x'})", 2, "$5\r\n\x93\x01\x02\xa1x\r\n"},
		{"return cmsgpack.unpack(cmsgpack.pack({1,2,'x',{a=1}}))", 2, "*4\r\n:1\r\n:2\r\n$1\r\nx\r\n*0\r\n"},
		{"return {cmsgpack.unpack(cmsgpack.pack(-1, 300, -200, 70000, 1.5, 'abc'))}", 2, "*6\r\n:-1\r\n:300\r\n:-200\r\n:70000\r\n:1\r\n$3\r\nabc\r\n"},
		{"return bit.band(0xff, 0x0f) .. ' ' .. bit.bor(1,2) .. ' ' .. bit.bxor(3,1) .. ' ' .. bit.lshift(1,31) .. ' ' .. bit.rshift(-1, 28) .. ' ' .. bit.arshift(-16, 2) .. ' ' .. bit.tohex(255) .. ' ' .. bit.bnot(0) .. ' ' .. bit.tobit(2^32+5) .. ' ' .. bit.rol(1, 33) .. ' ' .. bit.bswap(1) .. ' ' .. bit.tohex(-1, -4)", 2,
			"$54\r\n15 3 2 -2147483648 15 -4 000000ff -1 5 2 16777216 FFFF\r\n"},
		{"return struct.pack('>I2', 258)", 2, "$2\r\n\x01\x02\r\n"},
		{"return {struct.unpack('>I2', '\\1\\2')}", 2, "*2\r\n:258\r\n:3\r\n"},
		{"return struct.size('>iHb')", 2, ":7\r\n"},
		{"return {struct.unpack('<i', struct.pack('<i', -5))}", 2, "*2\r\n:-5\r\n:5\r\n"},
		{"local t = {} t[1] = t return t", 2, ""}, // checked below: ends in the stack limit error
		// Errors.
		{"return nil + 1", 2, "-ERR user_script:1: attempt to perform arithmetic on a nil value script: " + sha("return nil + 1") + ", on @user_script:1.\r\n"},
		{"local x = 1\nlocal y = 2\nreturn x .. nil", 2, "-ERR user_script:3: attempt to concatenate a nil value script: " + sha("local x = 1\nlocal y = 2\nreturn x .. nil") + ", on @user_script:3.\r\n"},
		{"a = 1", 2, "-ERR user_script:1: Attempt to modify a readonly table script: " + sha("a = 1") + ", on @user_script:1.\r\n"},
		{"return foo", 2, "-ERR user_script:1: Script attempted to access nonexistent global variable 'foo' script: " + sha("return foo") + ", on @user_script:1.\r\n"},
		{"string.rep = nil", 2, "-ERR user_script:1: Attempt to modify a readonly table script: " + sha("string.rep = nil") + ", on @user_script:1.\r\n"},
		{"rawset(_G, 'x', 1)", 2, "-ERR Attempt to modify a readonly table script: " + sha("rawset(_G, 'x', 1)") + ", on @user_script:1.\r\n"},
		{"setmetatable(_G, nil)", 2, "-ERR Attempt to modify a readonly table script: " + sha("setmetatable(_G, nil)") + ", on @user_script:1.\r\n"},
		{"return loadstring('x = 1')()", 2, "-ERR [string \"x = 1\"]:1: Attempt to modify a readonly table script: " + sha("return loadstring('x = 1')()") + ", on @[string \"x = 1\"]:1.\r\n"},
		{"error('boom', 0)", 2, "-ERR boom script: " + sha("error('boom', 0)") + ", on @user_script:1.\r\n"},
		{"error({err='X y'})", 2, "-X y script: " + sha("error({err='X y'})") + ", on @user_script:1.\r\n"},
		{"local x = 1\nredis.call('incr', 's')", 2, "-ERR value is not an integer or out of range script: " + sha("local x = 1\nredis.call('incr', 's')") + ", on @user_script:2.\r\n"},
		{"return redis.call('nosuch')", 2, "-ERR Unknown Redis command called from script script: " + sha("return redis.call('nosuch')") + ", on @user_script:1.\r\n"},
		{"return redis.call()", 2, "-ERR Please specify at least one argument for this redis lib call script: " + sha("return redis.call()") + ", on @user_script:1.\r\n"},
		{"return redis.call('get', {})", 2, "-ERR Lua redis lib command arguments must be strings or integers script: " + sha("return redis.call('get', {})") + ", on @user_script:1.\r\n"},
		{"return redis.setresp(4)", 2, "-ERR RESP version must be 2 or 3. script: " + sha("return redis.setresp(4)") + ", on @user_script:1.\r\n"},
		{"return type(os)", 2, "-ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: " + sha("return type(os)") + ", on @user_script:1.\r\n"},
		{"return cjson.decode('bad')", 2, "-ERR user_script:1: Expected value but found invalid token at character 1 script: " + sha("return cjson.decode('bad')") + ", on @user_script:1.\r\n"},
		{"return string.rep('x', 1e12)", 2, "-ERR user_script:1: resulting string too large script: " + sha("return string.rep('x', 1e12)") + ", on @user_script:1.\r\n"},
		{"#!lua flags=no-writes\n\nerror('x')", 2, "-ERR user_script:3: x script: " + sha("#!lua flags=no-writes\n\nerror('x')") + ", on @user_script:3.\r\n"},
		// Compile errors.
		{"return 1 +", 2, "(compile) ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'"},
		{"#!lua\nreturn 1 +", 2, "(compile) ERR Error compiling script (new function): user_script:2: unexpected symbol near '<eof>'"},
		{"#!lua name=x\nreturn 1", 2, "(compile) ERR Unknown lua shebang option: name=x"},
		{"#!lua flags=bad\nreturn 1", 2, "(compile) ERR Unexpected flag in script shebang: bad"},
		{"#!python\nreturn 1", 2, "(compile) ERR Unexpected engine in script shebang: #!python"},
	}
	for _, tc := range cases {
		got := eval(t, r, tc.body, tc.proto)
		if tc.want == "" {
			if !strings.HasSuffix(got, "-ERR reached lua stack limit\r\n") {
				t.Errorf("%q: %.80q", tc.body, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%q (RESP%d):\n got %q\nwant %q", tc.body, tc.proto, got, tc.want)
		}
	}
}

// TestSandboxSurvivesRuns: what one run does to the state it borrowed is
// invisible to the next (the pool hands states around).
func TestSandboxSurvivesRuns(t *testing.T) {
	r := NewRunner(Config{})
	for i := 0; i < 20; i++ {
		for _, body := range []string{
			"pcall(function() x = 1 end) return 1",
			"pcall(rawset, string, 'rep', nil) return 1",
			"pcall(setmetatable, _G, nil) return 1",
			"local mt = getmetatable('') pcall(function() mt.__index = nil end) return 1",
			"redis.setresp(3) return 1",
		} {
			if got := eval(t, r, body, 2); got != ":1\r\n" {
				t.Fatalf("%q: %q", body, got)
			}
		}
		if got := eval(t, r, "return {type(rawget(_G, 'x')), string.rep('a', 2), ('x'):upper(), type(redis.call('get','k'))}", 2); got != "*4\r\n$3\r\nnil\r\n$2\r\naa\r\n$1\r\nX\r\n$7\r\nboolean\r\n" {
			t.Fatalf("after other runs: %q", got)
		}
	}
}

func TestKillAndAbort(t *testing.T) {
	r := NewRunner(Config{})
	s, err := Compile("local n = 0\nwhile true do pcall(function() n = n + 1 end) end")
	if err != nil {
		t.Fatal(err)
	}
	killed := errors.New("killed")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(50*time.Millisecond, func() { cancel(killed) })
	_, err = r.Eval(ctx, s, &fakeHost{}, nil, nil)
	var ab *Aborted
	if !errors.As(err, &ab) || !errors.Is(err, killed) || !strings.HasPrefix(ab.Where, "user_script:") {
		t.Fatalf("killed loop: %v (%+v)", err, ab)
	}
	// A host failure ends the script even inside pcall.
	s, _ = Compile("pcall(redis.call, 'ping') return 1")
	storage := errors.New("disk gone")
	if _, err := r.Eval(context.Background(), s, &fakeHost{fail: storage}, nil, nil); !errors.Is(err, storage) {
		t.Fatalf("host failure: %v", err)
	}
	// The heap limit stops a script that keeps what it allocates.
	hr := NewRunner(Config{HeapLimit: 64 << 20, HeapCheck: 5 * time.Millisecond})
	s, _ = Compile("local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep('x', 1000) .. i end")
	if _, err := hr.Eval(context.Background(), s, &fakeHost{}, nil, nil); !errors.Is(err, ErrHeapLimit) {
		t.Fatalf("allocating loop: %v", err)
	}
}

func TestLibraries(t *testing.T) {
	r := NewRunner(Config{})
	ctx := context.Background()
	lib, err := r.LoadLibrary(ctx, "#!lua name=mylib\nlocal function helper(k) return redis.call('echo', k) end\n"+
		"redis.register_function('myfunc', function(keys, args) return helper(args[1]) end)\n"+
		"redis.register_function{function_name='ro', callback=function(keys, args) return keys[1] end, flags={'no-writes'}, description='read it'}")
	if err != nil {
		t.Fatal(err)
	}
	if len(lib.Functions) != 2 || lib.Function("ro").Flags != FlagNoWrites || lib.Function("ro").Description != "read it" || lib.Name != "mylib" {
		t.Fatalf("library: %+v %+v", lib, lib.Functions)
	}
	rep, err := r.FCall(ctx, lib, "myfunc", &fakeHost{}, nil, [][]byte{[]byte("hello")})
	if err != nil || string(rep.Append(nil, 2)) != "$5\r\nhello\r\n" {
		t.Fatalf("FCALL myfunc: %q %v", rep.Append(nil, 2), err)
	}
	rep, _ = r.FCall(ctx, lib, "ro", &fakeHost{}, [][]byte{[]byte("k")}, nil)
	if string(rep.Append(nil, 2)) != "$1\r\nk\r\n" {
		t.Fatalf("FCALL ro: %q", rep.Append(nil, 2))
	}
	for code, want := range map[string]string{
		"return 1":                                      "ERR Missing library metadata",
		"#!lua\nreturn 1":                               "ERR Library name was not given",
		"#!lua name=bad lib\nreturn 1":                  "ERR Invalid metadata value given: lib",
		"#!lua name=x flags=no-writes\nr":               "ERR Invalid metadata value given: flags=no-writes",
		"#!lua name=nofn\nreturn 1":                     "ERR No functions registered",
		"#!lua name=x\nredis.call('get','k')":           "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'",
		"#!lua name=x\nredis.register_function('f', 1)": "ERR Error registering functions: ERR second argument to redis.register_function must be a function",
		"#!lua name=x\nredis.register_function('bad name', function() end)":                                "ERR Error registering functions: " + msgBadName,
		"#!lua name=x\nredis.register_function{function_name='f', callback=function() end, flags={'bad'}}": "ERR Error registering functions: ERR unknown flag given",
		"#!lua name=x\nredis.register_function{function_name='f', callback=function() end, foo=1}":         "ERR Error registering functions: ERR unknown argument given to redis.register_function",
		"#!lua name=x\nlocal a = 1 +": "ERR Error compiling function: user_function:2: unexpected symbol near '<eof>'",
		"#!lua name=x\nredis.register_function('f', function() return 1 end)\nredis.register_function('f', function() return 1 end)": "ERR Error registering functions: ERR Function already exists in the library",
		"#!lua name=x\nfoo = 1": "ERR Error registering functions: ERR user_function:2: Attempt to modify a readonly table",
	} {
		if _, err := r.LoadLibrary(ctx, code); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %s", code, err, want)
		}
	}
	lib, _ = r.LoadLibrary(ctx, "#!lua name=w\nredis.register_function('fw', function(k, a) local x = nil + 1 end)")
	rep, _ = r.FCall(ctx, lib, "fw", &fakeHost{}, nil, nil)
	if got := string(rep.Append(nil, 2)); got != "-ERR user_function:2: attempt to perform arithmetic on a nil value script: fw, on @user_function:2.\r\n" {
		t.Fatalf("function error: %q", got)
	}
}
