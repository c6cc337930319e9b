package test

import (
	"strings"
	"testing"
	"time"
)

// TestBitmapsReplicate: bitmap writes on the leader (SETBIT, BITOP,
// BITFIELD) are logged as the resulting strings and read back on a
// follower, bit for bit; the follower refuses them (and BITFIELD even when
// it only reads, as a Redis replica does) but serves the read-only forms.
func TestBitmapsReplicate(t *testing.T) {
	c := newCluster(t, 2)
	leader, follower := c.node("n1").redis(), c.node("n2").redis()
	ctx := ctxT(t, time.Minute)
	for _, cmd := range [][]any{
		{"setbit", "bm", "7", "1"}, {"setbit", "bm", "100", "1"}, {"setbit", "bm", "100", "1"},
		{"set", "a", "\x0f\xf0"}, {"set", "b", "\xff"},
		{"bitop", "and", "and", "a", "b"}, {"bitop", "or", "or", "a", "b"}, {"bitop", "not", "not", "a"},
		{"set", "gone", "x"}, {"bitop", "and", "gone", "nokey"},
		{"bitfield", "f", "set", "u8", "0", "200", "incrby", "u8", "0", "100", "set", "i4", "#3", "-3"},
		{"bitfield", "g", "overflow", "fail", "set", "u8", "16", "999"},
	} {
		if err := leader.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v on the leader: %v", cmd, err)
		}
	}
	// The follower's session reads wait for the leader's last write.
	token, err := leader.Do(ctx, "replicant.token").Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]any{{"replicant.session", token}, {"replicant.consistency", "session"}} {
		if err := follower.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v on the follower: %v", cmd, err)
		}
	}
	bm := make([]byte, 13)
	bm[0], bm[12] = 0x01, 0x08
	for _, c := range []struct {
		cmd  []any
		want any
	}{
		{[]any{"get", "bm"}, string(bm)},
		{[]any{"getbit", "bm", "100"}, int64(1)},
		{[]any{"bitcount", "bm"}, int64(2)},
		{[]any{"bitpos", "bm", "1", "1"}, int64(100)},
		{[]any{"get", "and"}, "\x0f\x00"},
		{[]any{"get", "or"}, "\xff\xf0"},
		{[]any{"get", "not"}, "\xf0\x0f"},
		{[]any{"exists", "gone"}, int64(0)},
		{[]any{"get", "f"}, "\x2c\x0d"},
		{[]any{"get", "g"}, "\x00\x00\x00"},
		{[]any{"type", "bm"}, "string"},
	} {
		got, err := follower.Do(ctx, c.cmd...).Result()
		if err != nil || got != c.want {
			t.Errorf("%v on the follower: %q, %v; want %q", c.cmd, got, err, c.want)
		}
	}
	got, err := follower.Do(ctx, "bitfield_ro", "f", "get", "u8", "0", "get", "i4", "#3").Int64Slice()
	if err != nil || len(got) != 2 || got[0] != 44 || got[1] != -3 {
		t.Errorf("BITFIELD_RO on the follower: %v, %v", got, err)
	}
	for _, cmd := range [][]any{
		{"setbit", "bm", "0", "1"}, {"bitop", "or", "x", "a"}, {"bitfield", "f", "get", "u8", "0"},
	} {
		if err := follower.Do(ctx, cmd...).Err(); err == nil || !strings.HasPrefix(err.Error(), "READONLY ") {
			t.Errorf("%v on the follower: %v, want READONLY", cmd, err)
		}
	}
}
