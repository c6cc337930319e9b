package resp

import (
	"bytes"
	"context"
	"net"
	"testing"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// fakeTypeMarker starts the values typedBackend shows as collections: the
// byte after it is the engine.Type. A string command that writes replaces
// it with a string, as it replaces a real collection's metadata.
const fakeTypeMarker = "\x00fake-type:"

// typedBackend is a real node seen through a lens that types values, so
// that the string commands meet collections before any mode stores them.
type typedBackend struct{ *node.Node }

func typed(v engine.Version) engine.Version {
	if rest, ok := bytes.CutPrefix(v.Value, []byte(fakeTypeMarker)); ok && len(rest) == 1 {
		v.Type = engine.Type(rest[0])
	}
	return v
}

type typedTxn struct{ engine.Txn }

func (t typedTxn) Get(key []byte) (engine.Version, bool, error) {
	v, ok, err := t.Txn.Get(key)
	return typed(v), ok, err
}

type typedReader struct{ engine.Reader }

func (r typedReader) Get(key []byte) (engine.Version, bool, error) {
	v, ok, err := r.Reader.Get(key)
	return typed(v), ok, err
}

func (r typedReader) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	return r.Reader.Scan(start, func(k []byte, v engine.Version) bool { return fn(k, typed(v)) })
}

func (b typedBackend) Write(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	return b.Node.Write(ctx, func(tx engine.Txn) error { return fn(typedTxn{tx}) })
}

func (b typedBackend) WriteAsync(ctx context.Context, fn func(engine.Txn) error) func() (engine.Token, error) {
	return b.Node.WriteAsync(ctx, func(tx engine.Txn) error { return fn(typedTxn{tx}) })
}

func (b typedBackend) Read(ctx context.Context, c engine.Consistency, floor engine.Token) (engine.Reader, error) {
	r, err := b.Node.Read(ctx, c, floor)
	if err != nil {
		return nil, err
	}
	return typedReader{r}, nil
}

// TestStringCommandsOnCollections: every string and bitmap command that
// reads a value answers WRONGTYPE for a collection and writes nothing (no
// log entry); MGET reads it as missing; the commands that replace a value
// whatever its type (SET without GET, MSET, SETEX, BITOP's destination)
// replace it; the NX forms see it as existing.
func TestStringCommandsOnCollections(t *testing.T) {
	ts := startServer(t, node.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startBackend(t, typedBackend{ts.n}, ln)
	fake := (&testServer{addr: ln.Addr().String()}).client(t, 3)
	plain := ts.client(t, 3) // sees the stored bytes
	ctx := context.Background()
	hash := fakeTypeMarker + string([]byte{byte(engine.TypeHash)})
	const wrong = "(error) WRONGTYPE Operation against a key holding the wrong kind of value"

	for _, c := range []struct {
		args  []any
		want  string
		hWant string // h's stored value after; "" = unchanged and no entry
	}{
		{args: []any{"get", "h"}, want: wrong},
		{args: []any{"getset", "h", "x"}, want: wrong},
		{args: []any{"getdel", "h"}, want: wrong},
		{args: []any{"getex", "h"}, want: wrong},
		{args: []any{"getex", "h", "ex", "10"}, want: wrong},
		{args: []any{"getex", "h", "ex", "-1"}, want: wrong},
		{args: []any{"getex", "h", "persist"}, want: wrong},
		{args: []any{"set", "h", "x", "get"}, want: wrong},
		{args: []any{"set", "h", "x", "nx", "get"}, want: wrong},
		{args: []any{"set", "h", "x", "xx", "get"}, want: wrong},
		{args: []any{"append", "h", "x"}, want: wrong},
		{args: []any{"append", "h", ""}, want: wrong},
		{args: []any{"strlen", "h"}, want: wrong},
		{args: []any{"incr", "h"}, want: wrong},
		{args: []any{"decr", "h"}, want: wrong},
		{args: []any{"incrby", "h", "2"}, want: wrong},
		{args: []any{"decrby", "h", "2"}, want: wrong},
		{args: []any{"incrbyfloat", "h", "1.5"}, want: wrong},
		{args: []any{"setrange", "h", "0", "x"}, want: wrong},
		{args: []any{"setrange", "h", "0", ""}, want: wrong},
		{args: []any{"getrange", "h", "0", "-1"}, want: wrong},
		{args: []any{"substr", "h", "0", "-1"}, want: wrong},
		{args: []any{"setbit", "h", "0", "1"}, want: wrong},
		{args: []any{"getbit", "h", "0"}, want: wrong},
		{args: []any{"bitcount", "h"}, want: wrong},
		{args: []any{"bitcount", "h", "a", "b"}, want: wrong}, // the key is read first
		{args: []any{"bitpos", "h", "1"}, want: wrong},
		{args: []any{"bitpos", "h", "1", "a"}, want: wrong},
		{args: []any{"bitop", "and", "d", "s", "h"}, want: wrong},
		{args: []any{"bitfield", "h", "get", "u8", "0"}, want: wrong},
		{args: []any{"bitfield", "h", "set", "u8", "0", "1"}, want: wrong},
		{args: []any{"bitfield", "h"}, want: wrong},
		{args: []any{"bitfield_ro", "h", "get", "u8", "0"}, want: wrong},
		{args: []any{"lcs", "s", "h"}, want: "(error) ERR The specified keys must contain string values"},
		{args: []any{"mget", "h", "s", "nokey"}, want: "[(nil) sv (nil)]"},
		{args: []any{"setnx", "h", "x"}, want: ":0"},
		{args: []any{"set", "h", "x", "nx"}, want: "(nil)"},
		{args: []any{"msetnx", "z", "1", "h", "x"}, want: ":0"},
		{args: []any{"exists", "h"}, want: ":1"},
		// Writes that replace a value of any type.
		{args: []any{"set", "h", "x"}, want: "OK", hWant: "x"},
		{args: []any{"set", "h", "x", "xx"}, want: "OK", hWant: "x"},
		{args: []any{"mset", "h", "y"}, want: "OK", hWant: "y"},
		{args: []any{"setex", "h", "100", "z"}, want: "OK", hWant: "z"},
		{args: []any{"bitop", "or", "h", "s"}, want: ":2", hWant: "sv"},
	} {
		mustDo(t, plain, "OK", "mset", "h", hash, "s", "sv")
		mustDo(t, plain, ":0", "del", "d", "z")
		before := ts.n.Status().LastLSN
		if got := do(ctx, fake, c.args...); got != c.want {
			t.Errorf("%v: got %q, want %q", c.args, got, c.want)
			continue
		}
		after := ts.n.Status().LastLSN
		if c.hWant == "" {
			if after != before {
				t.Errorf("%v: answered %q and wrote (last LSN %d -> %d)", c.args, c.want, before, after)
			}
			mustDo(t, plain, hash, "get", "h")
			mustDo(t, plain, ":0", "exists", "d", "z")
			continue
		}
		mustDo(t, plain, c.hWant, "get", "h")
		mustDo(t, fake, c.hWant, "get", "h") // a string now
	}
}
