package resp

import (
	"strings"
	"testing"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// TestCollectionsRefusedInOtherModes: in multi-leader and leaderless
// modes every collection family is refused with an error naming the mode
// and the family (never a silent divergence), while strings still work.
func TestCollectionsRefusedInOtherModes(t *testing.T) {
	for _, mode := range []string{engine.ModeMultiLeader, engine.ModeLeaderless} {
		srv := startFake(t, func(n *node.Node) *fakeBackend {
			st := n.Status()
			st.Mode = mode
			return &fakeBackend{Node: n, status: &st}
		})
		r := dialRaw(t, srv)
		for _, c := range []struct{ cmd, noun string }{
			{"HSET h f v", "hashes"}, {"HGET h f", "hashes"},
			{"LPUSH l a", "lists"}, {"LRANGE l 0 -1", "lists"},
			{"SADD s a", "sets"}, {"SMEMBERS s", "sets"},
			{"ZADD z 1 a", "sorted sets"}, {"ZRANGE z 0 -1", "sorted sets"},
		} {
			got := r.do(strings.Fields(c.cmd)...)
			name := strings.ToUpper(strings.Fields(c.cmd)[0])
			want := "-ERR " + name + ": " + c.noun + " are not supported in " + mode + " mode"
			if !strings.HasPrefix(got, want) {
				t.Errorf("%s: %s answered %q, want %q…", mode, c.cmd, got, want)
			}
		}
		if got := r.do("SET", "k", "v"); got != "+OK\r\n" {
			t.Errorf("%s: SET answered %q", mode, got)
		}
	}
}

// TestReservedKeysRefused: no command reads or writes a key in the
// engines' reserved space, where collections keep their elements, and key
// listings never show them.
func TestReservedKeysRefused(t *testing.T) {
	srv := startFake(t, func(n *node.Node) *fakeBackend { return &fakeBackend{Node: n} })
	r := dialRaw(t, srv)
	rk := string(engine.ReservedPrefix) + "e\x00\x00\x00\x00\x00\x00\x00\x01f"
	for _, cmd := range [][]string{{"SET", rk, "x"}, {"GET", rk}, {"DEL", rk}, {"HSET", rk, "f", "v"}, {"EXISTS", rk}} {
		if got := r.do(cmd...); !strings.HasPrefix(got, "-ERR keys starting with") {
			t.Errorf("%s on a reserved key answered %q", cmd[0], got)
		}
	}
	r.do("HSET", "h", "a", "1", "b", "2")
	r.do("SET", "s", "x")
	for _, c := range []struct{ cmd, want string }{
		{"KEYS *", "*2\r\n$1\r\nh\r\n$1\r\ns\r\n"},
		{"DBSIZE", ":2\r\n"},
		{"SCAN 0 COUNT 100", "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nh\r\n$1\r\ns\r\n"},
		{"SCAN 0 TYPE hash", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nh\r\n"},
		{"TYPE h", "+hash\r\n"},
		{"TYPE s", "+string\r\n"},
		{"GET h", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
	} {
		if got := r.do(strings.Fields(c.cmd)...); got != c.want {
			t.Errorf("%s: got %q want %q", c.cmd, got, c.want)
		}
	}
}
