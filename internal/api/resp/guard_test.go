package resp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// chunkConn is a net.Conn whose reads return the given chunks in turn,
// then io.EOF, and whose writes are recorded.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	reads  int
	wrote  bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	c.reads++
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error)      { return c.wrote.Write(p) }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

func newTestGuard(chunks ...[]byte) (*guardConn, *chunkConn) {
	cc := &chunkConn{chunks: chunks}
	return &guardConn{Conn: cc, lim: newLimits(1 << 20), buf: make([]byte, guardBufSize)}, cc
}

// TestGuardPassesValidStreams: any valid stream of commands, split into
// any chunks and read with any buffer sizes, comes out unchanged except
// that empty multibulks are dropped.
func TestGuardPassesValidStreams(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var in, want []byte
		ncmd := rapid.IntRange(0, 20).Draw(t, "commands")
		for i := 0; i < ncmd; i++ {
			switch rapid.IntRange(0, 5).Draw(t, "kind") {
			case 0: // inline
				words := rapid.SliceOfN(rapid.StringMatching(`[a-z0-9]{1,8}`), 1, 4).Draw(t, "words")
				line := strings.Join(words, " ") + "\r\n"
				in, want = append(in, line...), append(want, line...)
			case 1: // empty multibulk, ignored
				in = append(in, rapid.SampledFrom([]string{"*0\r\n", "*-1\r\n", "*-7\r\n"}).Draw(t, "empty")...)
			default:
				args := rapid.SliceOfN(rapid.SliceOfN(rapid.Byte(), 0, 300), 1, 6).Draw(t, "args")
				strs := make([]string, len(args))
				for j, a := range args {
					strs[j] = string(a)
				}
				cmd := encode(strs...)
				in, want = append(in, cmd...), append(want, cmd...)
			}
		}
		var chunks [][]byte
		for rest := in; len(rest) > 0; {
			n := min(len(rest), rapid.IntRange(1, 700).Draw(t, "chunk"))
			chunks = append(chunks, append([]byte(nil), rest[:n]...))
			rest = rest[n:]
		}
		g, cc := newTestGuard(chunks...)
		var out []byte
		for {
			p := make([]byte, rapid.IntRange(1, 1000).Draw(t, "read"))
			n, err := g.Read(p)
			out = append(out, p[:n]...)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("read error %v after %q", err, out)
				}
				break
			}
			if n == 0 {
				t.Fatal("Read returned 0, nil")
			}
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("stream changed:\n in %q\nout %q\nwant %q", in, out, want)
		}
		if cc.wrote.Len() != 0 {
			t.Fatalf("guard wrote %q", cc.wrote.String())
		}
	})
}

// TestGuardReturnsAtCommandEnd: once a complete command is available the
// guard returns it without waiting for the rest of a pipelined command.
func TestGuardReturnsAtCommandEnd(t *testing.T) {
	g, cc := newTestGuard([]byte("PING\r\n*1\r\n$4\r\nPI"), []byte("NG\r\n"))
	p := make([]byte, 4096)
	n, err := g.Read(p)
	if err != nil || string(p[:n]) != "PING\r\n*1\r\n$4\r\nPI" || cc.reads != 1 {
		t.Fatalf("first read: %q %v after %d reads", p[:n], err, cc.reads)
	}
	// A partial command alone: the guard keeps reading to complete it.
	g, cc = newTestGuard([]byte("*2\r\n$3\r\nGET\r\n$1"), []byte("0\r\n0123"), []byte("456789\r\n"))
	n, err = g.Read(p)
	if err != nil || string(p[:n]) != "*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n" || cc.reads != 3 {
		t.Fatalf("partial: %q %v after %d reads", p[:n], err, cc.reads)
	}
}

// TestGuardRefuses: oversized or malformed framing is answered with a
// protocol error after the commands before it are delivered.
func TestGuardRefuses(t *testing.T) {
	huge := strconv.Itoa(3<<20 + 1)
	for _, c := range []struct{ in, deliver, msg string }{
		{"PING\r\n*1\r\n$" + huge + "\r\n", "PING\r\n*1\r\n", "Protocol error: invalid bulk length"},
		{"*2\r\n$3\r\nGET\r\n$" + huge + "\r\n", "*2\r\n$3\r\nGET\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$4\r\nPING\r\n*1048577\r\n", "*1\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"},
		{"*1048576\r\n", "", ""}, // the largest count is fine
		{"*1\r\n:1\r\n", "*1\r\n", "Protocol error: expected '$', got ':'"},
		{strings.Repeat("x", 70000), "", "Protocol error: too big inline request"},
	} {
		g, cc := newTestGuard([]byte(c.in))
		var out []byte
		var err error
		for err == nil {
			p := make([]byte, 1<<17)
			var n int
			n, err = g.Read(p)
			out = append(out, p[:n]...)
		}
		if c.msg == "" {
			if !errors.Is(err, io.EOF) || cc.wrote.Len() != 0 {
				t.Errorf("%.40q: %v, wrote %q", c.in, err, cc.wrote.String())
			}
			continue
		}
		if !errors.Is(err, errProtocolClosed) || cc.wrote.String() != "-ERR "+c.msg+"\r\n" {
			t.Errorf("%.40q: err %v, wrote %q", c.in, err, cc.wrote.String())
		}
		if c.in[0] != 'x' && string(out) != c.deliver {
			t.Errorf("%.40q: delivered %q, want %q", c.in, out, c.deliver)
		}
		if _, err := g.Read(make([]byte, 10)); !errors.Is(err, errProtocolClosed) {
			t.Errorf("read after the error: %v", err)
		}
	}
}

// TestGuardUnauthenticated: before AUTH the guard parses one command at a
// time, so a pipelined AUTH lifts the limits for what follows it.
func TestGuardUnauthenticated(t *testing.T) {
	cl := &client{}
	g, cc := newTestGuard(append(encode("AUTH", "x"), encode("SET", "k", strings.Repeat("v", 20000))...))
	g.client = cl
	p := make([]byte, 1<<16)
	n, err := g.Read(p)
	if err != nil || string(p[:n]) != string(encode("AUTH", "x")) {
		t.Fatalf("first: %q %v", p[:n], err)
	}
	cl.authed = true
	var out []byte
	for err == nil {
		n, err = g.Read(p)
		out = append(out, p[:n]...)
	}
	if !errors.Is(err, io.EOF) || string(out) != string(encode("SET", "k", strings.Repeat("v", 20000))) || cc.wrote.Len() != 0 {
		t.Fatalf("after AUTH: %v, %d bytes, wrote %q", err, len(out), cc.wrote.String())
	}
	// Without AUTH the same command is refused.
	g, cc = newTestGuard(encode("SET", "k", strings.Repeat("v", 20000)))
	g.client = &client{}
	for err = nil; err == nil; {
		_, err = g.Read(p)
	}
	if !errors.Is(err, errProtocolClosed) || cc.wrote.String() != "-ERR Protocol error: unauthenticated bulk length\r\n" {
		t.Fatalf("unauthenticated: %v %q", err, cc.wrote.String())
	}
}
