package test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// hashSetAcks records a writer's acknowledged hash and set writes:
// fields set, members added, members popped.
type hashSetAcks struct {
	mu      sync.Mutex
	fields  map[string]string
	members map[string]bool // true: added, false: popped
	n       atomic.Int64
}

// TestHashSetReplication: hashes and sets written on the leader read the
// same on every follower (whole-collection reads, and HSCAN/SSCAN walks
// over many pages on the follower itself); SPOP's random choice, made on
// the leader, removes the same members everywhere; after kill -9 of the
// leader under a writer, the new leader holds every acknowledged field,
// member and pop.
func TestHashSetReplication(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--failover-timeout", "2s", "--sync-timeout", "1s", "--write-timeout", "3s")
	leader := c.node("n1")
	ctx := ctxT(t, 3*time.Minute)
	lrdb := leader.redis()
	const n = 1500
	// 100 fields or members per command: a few dozen log entries.
	pipe := lrdb.Pipeline()
	for i := 0; i < n; i += 100 {
		var fields, members, third []any
		for j := i; j < i+100; j++ {
			fields = append(fields, fmt.Sprintf("f%05d", j), strconv.Itoa(j*j))
			members = append(members, fmt.Sprintf("m%05d", j), strconv.Itoa(j))
			if j%3 == 0 {
				third = append(third, fmt.Sprintf("m%05d", j))
			}
		}
		pipe.HSet(ctx, "h", fields...)
		pipe.SAdd(ctx, "s", members...)
		pipe.SAdd(ctx, "t", third...)
	}
	pipe.HIncrBy(ctx, "h", "counter", 41)
	pipe.HIncrByFloat(ctx, "h", "float", 2.5)
	pipe.HDel(ctx, "h", "f00000", "f00001")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	popped, err := lrdb.SPopN(ctx, "s", 100).Result()
	if err != nil || len(popped) != 100 {
		t.Fatalf("SPOP 100: %d (%v)", len(popped), err)
	}
	for _, cmd := range [][]any{
		{"sinterstore", "st", "s", "t"}, {"sunionstore", "su", "t", "nokey"}, {"sdiffstore", "sd", "s", "t"},
		{"smove", "s", "moved", "m00002"}, {"srem", "s", "m00003"},
	} {
		if err := lrdb.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	c.waitCaughtUp(leader, c.nodes...)
	reads := [][]any{
		{"hlen", "h"}, {"hgetall", "h"}, {"hkeys", "h"}, {"hvals", "h"}, {"hget", "h", "counter"}, {"hmget", "h", "float", "f00000", "f01499"},
		{"scard", "s"}, {"smembers", "s"}, {"smembers", "st"}, {"smembers", "su"}, {"smembers", "sd"}, {"smembers", "moved"},
		{"sinter", "s", "t"}, {"sunion", "s", "moved"}, {"sdiff", "t", "s"}, {"sintercard", "2", "s", "t"},
		{"smismember", "s", popped[0], popped[1], "m00004"},
	}
	want := map[string]string{}
	for _, r := range reads {
		want[fmt.Sprint(r)] = fmt.Sprint(lrdb.Do(ctx, r...).Val())
	}
	for _, p := range c.nodes[1:] {
		rdb := p.redis()
		for _, r := range reads {
			if got := fmt.Sprint(rdb.Do(ctx, r...).Val()); got != want[fmt.Sprint(r)] {
				t.Errorf("%s: %v = %.200s, leader %.200s", p.ID, r, got, want[fmt.Sprint(r)])
			}
		}
		for _, m := range popped {
			if in, _ := rdb.SIsMember(ctx, "s", m).Result(); in {
				t.Errorf("%s: popped %s is still a member", p.ID, m)
			}
		}
		// A walk on the follower itself, 97 elements per page.
		fields := walkScan(t, ctx, rdb, "hscan", "h", true)
		if len(fields) != n || fields["f00002"] != "4" || fields["counter"] != "41" {
			t.Errorf("%s: HSCAN walk found %d fields (f00002=%q)", p.ID, len(fields), fields["f00002"])
		}
		members := walkScan(t, ctx, rdb, "sscan", "s", false)
		all, _ := rdb.SMembers(ctx, "s").Result()
		if len(members) != len(all) {
			t.Errorf("%s: SSCAN walk found %d members, SMEMBERS %d", p.ID, len(members), len(all))
		}
		for _, m := range all {
			if _, ok := members[m]; !ok {
				t.Errorf("%s: SSCAN walk missed %s", p.ID, m)
				break
			}
		}
	}

	// Kill -9 the leader under a writer of unique fields and members with
	// pops; the new leader has every acknowledged one.
	acks := &hashSetAcks{fields: map[string]string{}, members: map[string]bool{}}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); writeHashSet(wctx, lrdb, acks) }()
	waitFor(t, "300 acknowledged writes", 60*time.Second, func() bool { return acks.n.Load() >= 300 })
	leader.kill()
	stop()
	wg.Wait()
	c.waitFor("a new leader is appointed", 30*time.Second, func() bool {
		l, ep := leaderOf(c, "n1")
		return l != "" && ep >= 2
	})
	newLeader, _ := leaderOf(c, "n1")
	nrdb := c.node(newLeader).redis()
	acks.mu.Lock()
	defer acks.mu.Unlock()
	missing := 0
	for f, v := range acks.fields {
		if got, err := nrdb.HGet(ctx, "w", f).Result(); err != nil || got != v {
			missing++
			if missing <= 5 {
				t.Errorf("%s: acknowledged HSET w %s=%s: got %q (%v)", newLeader, f, v, got, err)
			}
		}
	}
	for m, present := range acks.members {
		if in, err := nrdb.SIsMember(ctx, "ws", m).Result(); err != nil || in != present {
			missing++
			if missing <= 5 {
				t.Errorf("%s: acknowledged member %s present=%v: got %v (%v)", newLeader, m, present, in, err)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%s lost %d of %d acknowledged hash and set writes", newLeader, missing, len(acks.fields)+len(acks.members))
	}
	t.Logf("new leader %s holds all %d acknowledged fields and %d members/pops", newLeader, len(acks.fields), len(acks.members))
	// The surviving follower converges on the new leader.
	var other *proc
	for _, p := range c.nodes[1:] {
		if p.ID != newLeader {
			other = p
		}
	}
	c.waitCaughtUp(c.node(newLeader), other)
	ordb := other.redis()
	for _, r := range [][]any{{"hgetall", "w"}, {"smembers", "ws"}, {"hlen", "h"}, {"smembers", "s"}} {
		if got, want := fmt.Sprint(ordb.Do(ctx, r...).Val()), fmt.Sprint(nrdb.Do(ctx, r...).Val()); got != want {
			t.Errorf("%s after failover: %v = %.200s, leader %.200s", other.ID, r, got, want)
		}
	}
}

// writeHashSet writes unique fields of hash "w" and members of set "ws",
// popping a member every fifth step, until ctx ends or a write fails.
func writeHashSet(ctx context.Context, rdb *redis.Client, acks *hashSetAcks) {
	for i := 0; ctx.Err() == nil; i++ {
		f, v := fmt.Sprintf("f%06d", i), fmt.Sprintf("v%d", i)
		if err := rdb.HSet(ctx, "w", f, v).Err(); err != nil {
			return
		}
		acks.mu.Lock()
		acks.fields[f] = v
		acks.mu.Unlock()
		m := fmt.Sprintf("m%06d", i)
		if err := rdb.SAdd(ctx, "ws", m).Err(); err != nil {
			return
		}
		acks.mu.Lock()
		acks.members[m] = true
		acks.mu.Unlock()
		if i%5 == 4 {
			p, err := rdb.SPop(ctx, "ws").Result()
			if err != nil {
				return
			}
			acks.mu.Lock()
			acks.members[p] = false
			acks.mu.Unlock()
		}
		acks.n.Add(1)
	}
}

// walkScan walks HSCAN or SSCAN with COUNT 97 and returns what it found;
// an element seen twice fails the test.
func walkScan(t *testing.T, ctx context.Context, rdb *redis.Client, cmd, key string, pairs bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	cursor := "0"
	for pages := 0; ; pages++ {
		res, err := rdb.Do(ctx, cmd, key, cursor, "count", "97").Slice()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		cursor = res[0].(string)
		elems := res[1].([]any)
		for i := 0; i < len(elems); i++ {
			k, v := elems[i].(string), ""
			if pairs {
				i++
				v = elems[i].(string)
			}
			if _, dup := out[k]; dup {
				t.Fatalf("%s returned %s twice", cmd, k)
			}
			out[k] = v
		}
		if cursor == "0" {
			if pages < 5 {
				t.Fatalf("%s of a large collection took %d pages", cmd, pages+1)
			}
			return out
		}
	}
}
