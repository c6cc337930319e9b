package resp

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/replicant-db/replicant/internal/api/budget"
)

// FuzzGuard drives the command reader directly with arbitrary bytes split
// into chunks (no server, no network: thousands of inputs a second). It
// must never panic or spin, never return more argument bytes than it was
// given, and end at EOF or with a protocol error or budget refusal; the
// budget must be whole again afterwards.
func FuzzGuard(f *testing.F) {
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"), uint8(3))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n*-1\r\nPING\r\n"), uint8(1))
	f.Add([]byte("*1\r\n$99999999999\r\n"), uint8(7))
	f.Add([]byte("*abc\r\n"), uint8(2))
	f.Add([]byte("$-5\r\n"), uint8(9))
	f.Add([]byte("SET \"a\\x41\" 'b'\r\n"), uint8(4))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		step := int(chunk%64) + 1
		var chunks [][]byte
		for rest := in; len(rest) > 0; {
			n := min(step, len(rest))
			chunks = append(chunks, append([]byte(nil), rest[:n]...))
			rest = rest[n:]
		}
		// A small budget, so large announced bulks get refused too.
		b := budget.New(64<<10, 0)
		rd, _ := newTestReader(b, chunks...)
		total := 0
		for i := 0; ; i++ {
			if i > len(in)+16 {
				t.Fatalf("reader did not finish after %d commands from %d bytes", i, len(in))
			}
			args, err := rd.next(context.Background(), i%2 == 1)
			for _, a := range args {
				total += len(a)
			}
			var pe protocolError
			var re *refusedError
			switch {
			case err == nil, errors.As(err, &re):
				continue
			case errors.Is(err, io.EOF), errors.As(err, &pe):
			default:
				t.Fatalf("unexpected error %v", err)
			}
			break
		}
		rd.release()
		if total > len(in) {
			t.Fatalf("returned %d argument bytes from %d", total, len(in))
		}
		if b.InUse() != 0 {
			t.Fatalf("budget not returned: %d", b.InUse())
		}
	})
}
