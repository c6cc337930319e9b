package resp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzGuard drives the framing guard directly with arbitrary bytes, split
// into chunks and read with buffer sizes taken from the input (no server,
// no network: thousands of inputs a second). It must never panic or spin,
// never deliver more bytes than it was given, and end either at EOF or
// with a protocol error it has answered.
func FuzzGuard(f *testing.F) {
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"), uint8(3), uint8(5))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n*-1\r\nPING\r\n"), uint8(1), uint8(64))
	f.Add([]byte("*1\r\n$99999999999\r\n"), uint8(7), uint8(2))
	f.Add([]byte("*abc\r\n"), uint8(2), uint8(2))
	f.Add([]byte("$-5\r\n"), uint8(9), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, chunk, read uint8) {
		step := int(chunk%64) + 1
		var chunks [][]byte
		for rest := in; len(rest) > 0; {
			n := min(step, len(rest))
			chunks = append(chunks, append([]byte(nil), rest[:n]...))
			rest = rest[n:]
		}
		g, cc := newTestGuard(chunks...)
		buf := make([]byte, int(read%200)+1)
		var out []byte
		for i := 0; ; i++ {
			if i > 4*len(in)+16 {
				t.Fatalf("guard did not finish after %d reads of %d input bytes", i, len(in))
			}
			n, err := g.Read(buf)
			out = append(out, buf[:n]...)
			if err == nil {
				continue
			}
			switch {
			case errors.Is(err, io.EOF):
			case errors.Is(err, errProtocolClosed):
				if !bytes.HasPrefix(cc.wrote.Bytes(), []byte("-ERR Protocol error")) {
					t.Fatalf("protocol error without a reply; wrote %q", cc.wrote.Bytes())
				}
			default:
				t.Fatalf("unexpected error %v", err)
			}
			break
		}
		if len(out) > len(in) {
			t.Fatalf("delivered %d bytes from %d", len(out), len(in))
		}
	})
}
