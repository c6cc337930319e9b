package test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Hashes, sets and sorted sets in the multi-leader and leaderless modes
// (docs/design/types-modes.md): the commands answer as in single-leader
// mode, lists and blocking pops are refused naming the mode, and writes
// made concurrently on different sites or coordinators converge to the
// same state everywhere with the documented merge (set adds win over
// removes they did not see, fields and scores last-writer-wins).

// collView renders what a node answers for the collections of the test:
// each key's type and content, in one string to compare between nodes.
func collView(ctx context.Context, c redis.Cmdable, keys ...string) (string, error) {
	var b strings.Builder
	for _, k := range keys {
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s:%s", k, typ)
		switch typ {
		case "hash":
			m, err := c.HGetAll(ctx, k).Result()
			if err != nil {
				return "", err
			}
			fields := make([]string, 0, len(m))
			for f, v := range m {
				fields = append(fields, f+"="+v)
			}
			slices.Sort(fields)
			fmt.Fprintf(&b, "%v", fields)
		case "set":
			m, err := c.SMembers(ctx, k).Result()
			if err != nil {
				return "", err
			}
			slices.Sort(m)
			fmt.Fprintf(&b, "%v", m)
		case "zset":
			zs, err := c.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				return "", err
			}
			for _, z := range zs {
				fmt.Fprintf(&b, " %v=%v", z.Member, z.Score)
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// collCommands runs the basic commands of the three families and the
// generic key commands on c and checks each answer.
func collCommands(t *testing.T, ctx context.Context, c *redis.Client, mode string) {
	t.Helper()
	steps := []struct {
		args []any
		want string
	}{
		{[]any{"hset", "h", "f", "1", "g", "2"}, "2"},
		{[]any{"hget", "h", "f"}, "1"},
		{[]any{"hdel", "h", "g", "nope"}, "1"},
		{[]any{"hgetall", "h"}, "map[f:1]"},
		{[]any{"sadd", "s", "a", "b", "c"}, "3"},
		{[]any{"srem", "s", "b"}, "1"},
		{[]any{"smembers", "s"}, "[a c]"},
		{[]any{"scard", "s"}, "2"},
		{[]any{"zadd", "z", "2", "b", "1", "a"}, "2"},
		{[]any{"zrange", "z", "0", "-1", "withscores"}, "[[a 1] [b 2]]"},
		{[]any{"zscore", "z", "b"}, "2"},
		{[]any{"type", "h"}, "hash"},
		{[]any{"type", "s"}, "set"},
		{[]any{"type", "z"}, "zset"},
		{[]any{"get", "h"}, "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{[]any{"sadd", "z", "x"}, "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{[]any{"expire", "s", "100"}, "1"},
		{[]any{"ttl", "s"}, "100"},
		{[]any{"del", "h"}, "1"},
		{[]any{"exists", "h"}, "0"},
		{[]any{"lpush", "l", "x"}, "ERR LPUSH: lists are not supported in " + mode + " mode"},
		{[]any{"bzpopmin", "z", "0"}, "ERR BZPOPMIN: blocking pops from sorted sets are not supported in " + mode + " mode"},
	}
	for _, st := range steps {
		res, err := c.Do(ctx, st.args...).Result()
		got := fmt.Sprint(res)
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, st.want) {
			t.Errorf("%s: %v answered %q, want %q", mode, st.args, got, st.want)
		}
	}
}

// TestCollectionsMultiLeader: three one-node sites linked all-to-all;
// commands on one site reach the others; writes made while the sites are
// cut off from each other converge once they are linked again.
func TestCollectionsMultiLeader(t *testing.T) {
	sites := startSites(t, "eu", "us", "ap")
	names := []string{"eu", "us", "ap"}
	linkAll(t, sites)
	ctx := ctxT(t, 120*time.Second)
	eu, us, ap := sites[0].redis(), sites[1].redis(), sites[2].redis()
	collCommands(t, ctx, eu, "multi-leader")
	want, err := collView(ctx, eu, "h", "s", "z")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []*redis.Client{us, ap} {
		waitFor(t, names[i+1]+" shows eu's collections", 20*time.Second, func() bool {
			got, err := collView(ctx, c, "h", "s", "z")
			return err == nil && got == want
		})
	}

	// A common start, then every link removed: each site writes alone.
	for _, cmd := range [][]any{{"hset", "ch", "base", "0"}, {"sadd", "cs", "shared"}, {"zadd", "cz", "1", "shared"}} {
		if err := eu.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"ch", "cs", "cz"}
	base, _ := collView(ctx, eu, keys...)
	for i, c := range []*redis.Client{us, ap} {
		waitFor(t, names[i+1]+" has the common start", 20*time.Second, func() bool {
			got, err := collView(ctx, c, keys...)
			return err == nil && got == base
		})
	}
	for i, a := range sites {
		for j := range sites {
			if i != j {
				removeLink(t, a, names[j])
			}
		}
	}
	writes := map[*redis.Client][][]any{
		eu: {{"hset", "ch", "f", "eu"}, {"sadd", "cs", "eu"}, {"srem", "cs", "shared"}, {"zadd", "cz", "5", "m"}},
		us: {{"hset", "ch", "f", "us"}, {"sadd", "cs", "us"}, {"zadd", "cz", "7", "m"}, {"zadd", "cz", "2", "us"}},
		ap: {{"hset", "ch", "g", "ap"}, {"zrem", "cz", "shared"}, {"sadd", "cs", "ap"}, {"srem", "cs", "ap"}},
	}
	for _, c := range []*redis.Client{eu, us, ap} {
		for _, cmd := range writes[c] {
			if err := c.Do(ctx, cmd...).Err(); err != nil {
				t.Fatalf("%v: %v", cmd, err)
			}
		}
	}
	// Cut off, eu still shows only its own writes.
	if got, _ := collView(ctx, eu, "cs"); got != "cs:set[eu]\n" {
		t.Fatalf("eu, cut off, shows %q", got)
	}
	linkAll(t, sites)
	var final string
	waitFor(t, "the three sites show the same collections", 30*time.Second, func() bool {
		views := make([]string, len(sites))
		for i, c := range []*redis.Client{eu, us, ap} {
			v, err := collView(ctx, c, keys...)
			if err != nil {
				return false
			}
			views[i] = v
		}
		final = views[0]
		return views[0] == views[1] && views[1] == views[2]
	})
	// The merge: both hash fields; the one written on two sites by one of
	// them; the set add-wins (eu removed "shared", which no one re-added;
	// ap removed its own add); sorted-set members by last writer.
	for _, ok := range []bool{
		strings.Contains(final, "ch:hash[base=0 f=eu g=ap]") || strings.Contains(final, "ch:hash[base=0 f=us g=ap]"),
		strings.Contains(final, "cs:set[eu us]\n"),
		strings.Contains(final, "cz:zset us=2 m=5\n") || strings.Contains(final, "cz:zset us=2 m=7\n"),
	} {
		if !ok {
			t.Fatalf("merged state:\n%s", final)
		}
	}
}

// TestCollectionsLeaderless: five nodes, N=3; the commands through any
// coordinator, and many clients adding to one set and one hash through
// every node at once: nothing any of them acknowledged is lost, and every
// node answers the same.
func TestCollectionsLeaderless(t *testing.T) {
	c := newLeaderless(t, 5)
	ctx := ctxT(t, 120*time.Second)
	collCommands(t, ctx, c.nodes[0].redis(), "leaderless")
	want, err := collView(ctx, c.nodes[0].redis(), "h", "s", "z")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.nodes[1:] {
		if got, err := collView(ctx, p.redis(), "h", "s", "z"); err != nil || got != want {
			t.Fatalf("%s shows %q, %v; n1 %q", p.ID, got, err, want)
		}
	}

	const perClient = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	var failures []string
	for _, p := range c.nodes {
		wg.Add(1)
		go func(p *proc) {
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: p.RESP, MaxRetries: -1, PoolSize: 1})
			defer rdb.Close()
			for i := range perClient {
				m := fmt.Sprintf("%s-%d", p.ID, i)
				errS := rdb.SAdd(ctx, "cs", m).Err()
				errH := rdb.HSet(ctx, "ch", m, p.ID).Err()
				mu.Lock()
				if errS == nil && errH == nil {
					acked[m] = true
				} else {
					failures = append(failures, fmt.Sprintf("%s: %v %v", m, errS, errH))
				}
				mu.Unlock()
			}
		}(p)
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Logf("%d writes failed: %v", len(failures), failures)
	}
	var first string
	for i, p := range c.nodes {
		all := quorumConn(t, p, "all", "all")
		members, err := all.SMembers(ctx, "cs").Result()
		if err != nil {
			t.Fatal(err)
		}
		fields, err := all.HKeys(ctx, "ch").Result()
		if err != nil {
			t.Fatal(err)
		}
		for m := range acked {
			if !slices.Contains(members, m) || !slices.Contains(fields, m) {
				t.Fatalf("%s: acknowledged %s missing (set %d members, hash %d fields)", p.ID, m, len(members), len(fields))
			}
		}
		view, err := collView(ctx, all, "ch", "cs")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = view
		} else if view != first {
			t.Fatalf("%s answers\n%s\nn1 answers\n%s", p.ID, view, first)
		}
	}
}
