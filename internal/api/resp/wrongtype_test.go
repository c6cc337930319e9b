package resp

import (
	"context"
	"testing"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// putCollection stores a collection of type t with one element at key,
// through the engine's typed write path (the way the collection commands
// store them).
func putCollection(t *testing.T, n *node.Node, key string, typ engine.Type) {
	t.Helper()
	sub := map[engine.Type]byte{engine.TypeHash: datatype.SubField, engine.TypeList: datatype.SubIndex,
		engine.TypeSet: datatype.SubMember, engine.TypeZSet: datatype.SubMember}[typ]
	_, err := n.Write(context.Background(), func(tx engine.Txn) error {
		c, err := datatype.Open(tx, []byte(key), typ)
		if err != nil {
			return err
		}
		if err := c.Put(sub, []byte("elem"), []byte("v")); err != nil {
			return err
		}
		c.Meta.Len++
		return c.Save()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStringCommandsOnCollections: every string and bitmap command that
// reads a value answers WRONGTYPE for a collection and writes nothing (no
// log entry); MGET reads it as missing; the commands that replace a value
// whatever its type (SET without GET, MSET, SETEX, BITOP's destination)
// replace it; the NX forms see it as existing.
func TestStringCommandsOnCollections(t *testing.T) {
	ts := startServer(t, node.Config{})
	c := ts.client(t, 3)
	ctx := context.Background()
	const wrong = "(error) WRONGTYPE Operation against a key holding the wrong kind of value"

	cases := []struct {
		args  []any
		want  string
		hWant string // the string h holds after; "" = h unchanged, nothing written
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
		// Writes that replace a value of any type.
		{args: []any{"set", "h", "x"}, want: "OK", hWant: "x"},
		{args: []any{"set", "h", "x", "xx"}, want: "OK", hWant: "x"},
		{args: []any{"mset", "h", "y"}, want: "OK", hWant: "y"},
		{args: []any{"setex", "h", "100", "z"}, want: "OK", hWant: "z"},
		{args: []any{"bitop", "or", "h", "s"}, want: ":2", hWant: "sv"},
	}
	for _, typ := range []engine.Type{engine.TypeHash, engine.TypeList, engine.TypeSet, engine.TypeZSet} {
		for _, tc := range cases {
			do(ctx, c, "del", "h")
			putCollection(t, ts.n, "h", typ)
			mustDo(t, c, "OK", "set", "s", "sv")
			mustDo(t, c, ":0", "del", "d", "z")
			before := ts.n.Status().LastLSN
			if got := do(ctx, c, tc.args...); got != tc.want {
				t.Errorf("%s: %v: got %q, want %q", typ, tc.args, got, tc.want)
				continue
			}
			after := ts.n.Status().LastLSN
			if tc.hWant == "" {
				if after != before {
					t.Errorf("%s: %v answered %q and wrote (last LSN %d -> %d)", typ, tc.args, tc.want, before, after)
				}
				mustDo(t, c, typ.String(), "type", "h")
				mustDo(t, c, ":0", "exists", "d", "z")
				continue
			}
			mustDo(t, c, "string", "type", "h")
			mustDo(t, c, tc.hWant, "get", "h")
		}
	}
}
