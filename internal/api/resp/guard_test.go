package resp

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/api/budget"
)

// chunkConn is a net.Conn whose reads return the given chunks in turn,
// then io.EOF.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	reads  int
	read   int // bytes handed out
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
	c.read += n
	return n, nil
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

// testMaxValue makes the reader's limits 3 MiB per bulk and a bit more
// per command.
const testReaderMaxValue = 1 << 20

func newTestReader(b *budget.Budget, chunks ...[]byte) (*cmdReader, *chunkConn) {
	cc := &chunkConn{chunks: chunks}
	if b == nil {
		b = budget.New(budget.DefaultCapacity, time.Second)
	}
	return newCmdReader(cc, newLimits(0, testReaderMaxValue), b, timeouts{}, func() error { return nil }), cc
}

// readAll reads commands until an error and renders them as "a b c" lines.
func readAll(rd *cmdReader, unauth bool) ([]string, error) {
	var out []string
	for {
		args, err := rd.next(context.Background(), unauth)
		if err != nil {
			return out, err
		}
		words := make([]string, len(args))
		for i, a := range args {
			words[i] = string(a)
		}
		out = append(out, strings.Join(words, " "))
	}
}

// TestReaderParsesValidStreams: any valid stream of commands, split into
// any chunks, comes out as the same commands, empty multibulks and blank
// lines dropped; every argument is an allocation of its exact size.
func TestReaderParsesValidStreams(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var in []byte
		var want []string
		ncmd := rapid.IntRange(0, 20).Draw(t, "commands")
		for range ncmd {
			switch rapid.IntRange(0, 5).Draw(t, "kind") {
			case 0: // inline
				words := rapid.SliceOfN(rapid.StringMatching(`[a-z0-9]{1,8}`), 1, 4).Draw(t, "words")
				in = append(in, strings.Join(words, " ")+"\r\n"...)
				want = append(want, strings.Join(words, " "))
			case 1: // ignored
				in = append(in, rapid.SampledFrom([]string{"*0\r\n", "*-1\r\n", "*-7\r\n", "\r\n", "  \r\n"}).Draw(t, "empty")...)
			default:
				args := rapid.SliceOfN(rapid.SliceOfN(rapid.Byte(), 0, 300), 1, 6).Draw(t, "args")
				strs := make([]string, len(args))
				for j, a := range args {
					strs[j] = string(a)
				}
				in = append(in, encode(strs...)...)
				want = append(want, strings.Join(strs, " "))
			}
		}
		var chunks [][]byte
		for rest := in; len(rest) > 0; {
			n := min(len(rest), rapid.IntRange(1, 700).Draw(t, "chunk"))
			chunks = append(chunks, append([]byte(nil), rest[:n]...))
			rest = rest[n:]
		}
		rd, _ := newTestReader(nil, chunks...)
		got, err := readAll(rd, false)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("error %v after %q", err, got)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("commands changed:\n in %q\ngot %q\nwant %q", in, got, want)
		}
		if rd.held != 0 || rd.budget.InUse() != 0 {
			t.Fatalf("budget still held: %d", rd.budget.InUse())
		}
	})
}

// TestReaderExactAllocation: a large argument is one allocation of its
// size, read mostly straight from the connection.
func TestReaderExactAllocation(t *testing.T) {
	val := strings.Repeat("v", 1<<20)
	in := encode("SET", "k", val)
	var chunks [][]byte
	for rest := in; len(rest) > 0; rest = rest[min(len(rest), 64<<10):] {
		chunks = append(chunks, rest[:min(len(rest), 64<<10)])
	}
	rd, _ := newTestReader(nil, chunks...)
	args, err := rd.next(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 3 || string(args[2]) != val || cap(args[2]) != len(val) {
		t.Fatalf("got %d args, value len %d cap %d", len(args), len(args[2]), cap(args[2]))
	}
	if len(rd.buf) != readBufSize {
		t.Fatalf("read buffer grew to %d", len(rd.buf))
	}
}

// TestReaderRefuses: oversized or malformed framing is a protocol error,
// after the commands before it were returned.
func TestReaderRefuses(t *testing.T) {
	lim := newLimits(0, testReaderMaxValue)
	huge := strconv.FormatInt(lim.maxBulk+1, 10)
	for _, tc := range []struct{ name, in, before, msg string }{
		{"huge bulk after a command", "PING\r\n*1\r\n$" + huge + "\r\n", "PING", "Protocol error: invalid bulk length"},
		{"huge bulk in a command", "*2\r\n$3\r\nGET\r\n$" + huge + "\r\n", "", "Protocol error: invalid bulk length"},
		{"negative bulk", "*1\r\n$-1\r\n", "", "Protocol error: invalid bulk length"},
		{"bulk not a number", "*1\r\n$x\r\n", "", "Protocol error: invalid bulk length"},
		{"too many args", "*1\r\n$4\r\nPING\r\n*1048577\r\n", "PING", "Protocol error: invalid multibulk length"},
		{"count without CR", "*1\n$4\r\nPING\r\n", "", "Protocol error: invalid multibulk length"},
		{"not a bulk", "*1\r\n:1\r\n", "", "Protocol error: expected '$', got ':'"},
		{"no CRLF after a bulk", "*1\r\n$4\r\nPINGxx", "", "Protocol error: invalid bulk length"},
		{"long count line", "*" + strings.Repeat("1", 40) + "\r\n", "", "Protocol error: too big mbulk count string"},
		{"long bulk line", "*1\r\n$" + strings.Repeat("1", 40) + "\r\n", "", "Protocol error: too big bulk count string"},
		{"inline too big", strings.Repeat("x", 70000), "", "Protocol error: too big inline request"},
		{"unbalanced quotes", "SET \"a b\r\n", "", "Protocol error: unbalanced quotes in request"},
		{"the largest count is fine", "*1048576\r\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd, _ := newTestReader(nil, []byte(tc.in))
			got, err := readAll(rd, false)
			if strings.Join(got, "\n") != tc.before {
				t.Errorf("commands before the error: %q, want %q", got, tc.before)
			}
			var pe protocolError
			if tc.msg == "" {
				if !errors.Is(err, io.EOF) {
					t.Errorf("err %v, want EOF", err)
				}
				return
			}
			if !errors.As(err, &pe) || string(pe) != tc.msg {
				t.Errorf("err %v, want protocol error %q", err, tc.msg)
			}
		})
	}
}

// TestReaderCommandCap: a command of many bulks, each within the bulk
// limit, is refused at the first header that takes it past the command
// limit, after reading little more than that limit.
func TestReaderCommandCap(t *testing.T) {
	lim := newLimits(0, testReaderMaxValue)
	// 1000 MiB in all, from one shared chunk.
	chunk := []byte(strings.Repeat("x", 1<<20))
	in := [][]byte{[]byte("*1001\r\n$9\r\nNOSUCHCMD\r\n")}
	for range 1000 {
		in = append(in, []byte("$1048576\r\n"), chunk[:len(chunk):len(chunk)], []byte("\r\n"))
	}
	rd, cc := newTestReader(nil, in...)
	_, err := rd.next(context.Background(), false)
	var pe protocolError
	if !errors.As(err, &pe) || !strings.Contains(string(pe), "query buffer limit") {
		t.Fatalf("err %v", err)
	}
	if int64(cc.read) > lim.maxCommand+int64(2*readBufSize) {
		t.Fatalf("read %d bytes before refusing, limit %d", cc.read, lim.maxCommand)
	}
	if rd.budget.InUse() != 0 {
		// The connection closes on a protocol error; its release returns
		// the budget, as serveConn does.
		rd.release()
	}
	if rd.budget.InUse() != 0 {
		t.Fatalf("budget still held: %d", rd.budget.InUse())
	}
}

// TestReaderUnauthenticated: before AUTH only small commands are parsed;
// the limits follow the state passed to each next call.
func TestReaderUnauthenticated(t *testing.T) {
	big := strings.Repeat("v", 20000)
	rd, _ := newTestReader(nil, append(encode("AUTH", "x"), encode("SET", "k", big)...))
	if args, err := rd.next(context.Background(), true); err != nil || string(args[0]) != "AUTH" {
		t.Fatalf("first: %q %v", args, err)
	}
	if args, err := rd.next(context.Background(), false); err != nil || string(args[2]) != big {
		t.Fatalf("after AUTH: %d args, %v", len(args), err)
	}
	for _, tc := range []struct{ in, msg string }{
		{string(encode("SET", "k", big)), "Protocol error: unauthenticated bulk length"},
		{"*11\r\n", "Protocol error: unauthenticated multibulk length"},
	} {
		rd, _ := newTestReader(nil, []byte(tc.in))
		_, err := rd.next(context.Background(), true)
		var pe protocolError
		if !errors.As(err, &pe) || string(pe) != tc.msg {
			t.Errorf("%.20q: %v, want %q", tc.in, err, tc.msg)
		}
	}
}

// TestReaderBudget: a command's bytes beyond the free allowance are held
// from the budget until release; a command that finds no room in time is
// read past and refused, and the next command is parsed normally.
func TestReaderBudget(t *testing.T) {
	val := strings.Repeat("v", 1<<20)
	t.Run("held until release", func(t *testing.T) {
		b := budget.New(4<<20, time.Second)
		rd, _ := newTestReader(b, append(encode("SET", "k", val), encode("PING")...))
		if _, err := rd.next(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if got := b.InUse(); got < 1<<20-freeCommandBytes || got > 1<<20 {
			t.Fatalf("InUse %d during the command", got)
		}
		if args, err := rd.next(context.Background(), false); err != nil || string(args[0]) != "PING" {
			t.Fatalf("next: %q %v", args, err)
		}
		if b.InUse() != 0 {
			t.Fatalf("InUse %d after the command", b.InUse())
		}
	})
	t.Run("refused, then goes on", func(t *testing.T) {
		b := budget.New(2<<20, 50*time.Millisecond)
		if err := b.Acquire(context.Background(), 3<<19); err != nil { // 1.5 MiB held elsewhere
			t.Fatal(err)
		}
		rd, _ := newTestReader(b, append(encode("SET", "k", val), encode("PING")...))
		_, err := rd.next(context.Background(), false)
		var re *refusedError
		if !errors.As(err, &re) || !errors.Is(err, budget.ErrExhausted) {
			t.Fatalf("err %v, want a budget refusal", err)
		}
		if args, err := rd.next(context.Background(), false); err != nil || string(args[0]) != "PING" {
			t.Fatalf("after the refusal: %q %v", args, err)
		}
		if b.InUse() != 3<<19 {
			t.Fatalf("InUse %d", b.InUse())
		}
	})
	t.Run("larger than the budget runs alone", func(t *testing.T) {
		b := budget.New(1<<19, time.Minute)
		// Two large arguments: the second must not wait for room the
		// first already holds.
		rd, _ := newTestReader(b, append(encode("MSET", "k", val, "k2", val), encode("PING")...))
		if _, err := rd.next(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if b.InUse() != 1<<19 {
			t.Fatalf("InUse %d, want the whole budget", b.InUse())
		}
		rd.release()
		if b.InUse() != 0 {
			t.Fatalf("InUse %d after release", b.InUse())
		}
	})
	t.Run("context ends the wait", func(t *testing.T) {
		b := budget.New(2<<20, time.Minute)
		if err := b.Acquire(context.Background(), 2<<20); err != nil {
			t.Fatal(err)
		}
		rd, _ := newTestReader(b, encode("SET", "k", val))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := rd.next(ctx, false)
		var re *refusedError
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &re) {
			t.Fatalf("err %v, want the context's error", err)
		}
	})
}

// TestReaderTimeouts: each timeout closes the connection when it applies,
// and only then.
func TestReaderTimeouts(t *testing.T) {
	const d = 100 * time.Millisecond
	for _, tc := range []struct {
		name   string
		to     timeouts
		unauth bool
		send   string // then silence
		want   string // timeout kind; "" for none within 4d
	}{
		{"idle", timeouts{idle: d}, false, "", "idle"},
		{"no idle timeout", timeouts{command: d, auth: d}, false, "", ""},
		{"partial command", timeouts{command: d}, false, "*2\r\n$3\r\nGET\r\n$1", "command"},
		{"partial command, no timeout", timeouts{idle: d}, false, "*2\r\n$3\r\nGET\r\n$1", ""},
		{"unauthenticated", timeouts{auth: d}, true, "", "authentication"},
		{"authenticated", timeouts{auth: d}, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, server := tcpPair(t)
			rd := newCmdReader(server, newLimits(0, 0), budget.New(budget.DefaultCapacity, 0), tc.to, func() error { return nil })
			if _, err := client.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := rd.next(context.Background(), tc.unauth)
				done <- err
			}()
			select {
			case err := <-done:
				var te *timeoutError
				if tc.want == "" || !errors.As(err, &te) || te.what != tc.want {
					t.Fatalf("err %v, want a %q timeout", err, tc.want)
				}
			case <-time.After(4 * d):
				if tc.want != "" {
					t.Fatalf("no %s timeout after %v", tc.want, 4*d)
				}
				server.Close()
				<-done
			}
		})
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
