package resp

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/node"
)

// FuzzCommand feeds arbitrary bytes to a real server over TCP and checks
// that it never panics and still answers PING on a new connection. One
// node serves the whole fuzz process.
func FuzzCommand(f *testing.F) {
	f.Add(encode("PING"))
	f.Add(append(encode("SET", "k", "v", "EX", "10"), encode("GET", "k")...))
	f.Add([]byte("SET a 1\r\nINCRBYFLOAT a 1.5\r\n"))
	ts := startServer(f, node.Config{MaxValueSize: 1 << 16, ReadTimeout: 100 * time.Millisecond})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(data); err == nil {
			// End of input: the server answers what it can, then closes.
			_ = c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		}
		r := dialRaw(t, ts.addr)
		if got := r.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING after input %q: %q", data, got)
		}
		if p := ts.s.panics.Load(); p != 0 {
			t.Fatalf("%d handler panics after input %q", p, data)
		}
	})
}
