package test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// zsetReads are the read commands whose replies a follower must give as
// the leader does once it has caught up.
var zsetReads = [][]any{
	{"zcard", "big"}, {"zrange", "big", "0", "-1", "withscores"}, {"zrevrange", "big", "0", "9", "withscores"},
	{"zrange", "big", "-5", "-1"}, {"zrangebyscore", "big", "(100", "200", "withscores"},
	{"zrevrangebyscore", "big", "+inf", "-inf", "limit", "3", "4"}, {"zcount", "big", "0", "1000"},
	{"zrank", "big", "m0250"}, {"zrevrank", "big", "m0250", "withscore"}, {"zscore", "big", "m0007"},
	{"zmscore", "big", "m0001", "nope", "m0499"}, {"zrangebylex", "lex", "[b", "(f"}, {"zlexcount", "lex", "-", "+"},
	{"zunion", "2", "big", "lex", "withscores"}, {"zinter", "2", "big", "store", "aggregate", "max", "withscores"},
	{"zdiff", "2", "lex", "big"}, {"zintercard", "2", "big", "store"}, {"zrange", "store", "0", "-1", "withscores"},
	{"zrange", "ranged", "0", "-1", "withscores"}, {"zscan", "lex", "0"}, {"exists", "popped"},
}

// zscanAll walks ZSCAN on one node to the end and returns member→score.
func zscanAll(t *testing.T, ctx context.Context, c *redis.Client, key string) map[string]string {
	t.Helper()
	out := map[string]string{}
	cursor := uint64(0)
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("ZSCAN %s does not end", key)
		}
		items, next, err := c.ZScan(ctx, key, cursor, "", 37).Result()
		if err != nil {
			t.Fatalf("ZSCAN %s: %v", key, err)
		}
		for i := 0; i+1 < len(items); i += 2 {
			if _, dup := out[items[i]]; dup {
				t.Fatalf("ZSCAN %s returned %s twice", key, items[i])
			}
			out[items[i]] = items[i+1]
		}
		if cursor = next; cursor == 0 {
			return out
		}
	}
}

// TestSortedSetsReplicateAndSurviveFailover: sorted sets written on the
// leader of a 3-node cluster read the same on both followers (every read
// command, and a ZSCAN walk of a 500-member set); then, with writers
// adding members and incrementing a score, the leader is killed with
// SIGKILL, and the new leader holds every acknowledged write.
func TestSortedSetsReplicateAndSurviveFailover(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--failover-timeout", "2s", "--sync-timeout", "1s", "--write-timeout", "3s")
	ctx := ctxT(t, 3*time.Minute)
	leader := c.node("n1").redis()
	args := []any{"zadd", "big"}
	for i := range 500 {
		args = append(args, strconv.FormatFloat(float64(i)*1.5, 'f', -1, 64), fmt.Sprintf("m%04d", i))
	}
	for _, cmd := range [][]any{
		args,
		{"zadd", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "f", "0", "m0001"},
		{"zincrby", "big", "0.25", "m0007"}, {"zrem", "big", "m0003", "m0004"}, {"zpopmax", "big", "2"},
		{"zadd", "big", "gt", "ch", "1000", "m0010", "-1", "m0011"},
		{"zunionstore", "store", "2", "big", "lex", "weights", "2", "1"},
		{"zrangestore", "ranged", "big", "(10", "20", "byscore", "rev"},
		{"zadd", "popped", "1", "x"}, {"zpopmin", "popped"},
		{"zremrangebyscore", "big", "(600", "650"},
	} {
		if err := leader.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd[:2], err)
		}
	}
	c.waitCaughtUp(c.node("n1"), c.nodes...)
	want := make([]string, len(zsetReads))
	for i, cmd := range zsetReads {
		want[i] = fmt.Sprint(leader.Do(ctx, cmd...).Result())
	}
	wantScan := zscanAll(t, ctx, leader, "big")
	if len(wantScan) != 463 {
		t.Fatalf("ZSCAN on the leader saw %d members, want 463", len(wantScan))
	}
	for _, id := range []string{"n2", "n3"} {
		f := c.node(id).redis()
		for i, cmd := range zsetReads {
			if got := fmt.Sprint(f.Do(ctx, cmd...).Result()); got != want[i] {
				st, lt := c.node(id).mustStatus(), c.node("n1").mustStatus()
				t.Errorf("%s %v = %.200s; leader %.200s (%s applied %d commit %d, token %s; leader commit %d, token %s)",
					id, cmd, got, want[i], id, st.AppliedLSN, st.CommitLSN, st.Token, lt.CommitLSN, lt.Token)
			}
		}
		if got := zscanAll(t, ctx, f, "big"); fmt.Sprint(got) != fmt.Sprint(wantScan) {
			t.Errorf("%s: ZSCAN walk differs from the leader's (%d members, leader %d)", id, len(got), len(wantScan))
		}
	}

	// Writers, then SIGKILL the leader.
	var mu sync.Mutex
	acked := map[string]float64{} // member of "w" → score
	var incrAck [4]float64        // highest acknowledged ZINCRBY result per writer
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: c.node("n1").RESP, MaxRetries: -1, PoolSize: 1})
			defer rdb.Close()
			for i := 0; wctx.Err() == nil; i++ {
				m := fmt.Sprintf("w%d-%d", w, i)
				if err := rdb.ZAdd(wctx, "w", redis.Z{Score: float64(i), Member: m}).Err(); err != nil {
					return
				}
				mu.Lock()
				acked[m] = float64(i)
				mu.Unlock()
				n, err := rdb.ZIncrBy(wctx, "counters", 1, fmt.Sprintf("c%d", w)).Result()
				if err != nil {
					return
				}
				mu.Lock()
				incrAck[w] = n
				mu.Unlock()
			}
		}()
	}
	c.waitFor("200 acknowledged ZADDs", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	c.node("n1").kill()
	stop()
	wg.Wait()
	c.waitFor("a new leader", 30*time.Second, func() bool {
		l, ep := leaderOf(c, "n1")
		return l != "" && ep >= 2
	})
	id, _ := leaderOf(c, "n1")
	nl := c.node(id).redis()
	c.waitFor("the new leader serves linearizable reads", 30*time.Second, func() bool {
		return nl.ZCard(ctx, "big").Err() == nil
	})
	mu.Lock()
	defer mu.Unlock()
	missing := 0
	for m, score := range acked {
		got, err := nl.ZScore(ctx, "w", m).Result()
		if err != nil || got != score {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged ZADD w %v %s: on the new leader %v, %v", score, m, got, err)
			}
		}
	}
	for w, n := range incrAck {
		got, err := nl.ZScore(ctx, "counters", fmt.Sprintf("c%d", w)).Result()
		if n > 0 && (err != nil || got < n) {
			t.Errorf("counter c%d: acknowledged %v, on the new leader %v, %v", w, n, got, err)
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged ZADDs missing on the new leader %s", missing, len(acked), id)
	}
	if got := fmt.Sprint(nl.Do(ctx, zsetReads[1]...).Result()); got != want[1] {
		t.Errorf("ZRANGE big on the new leader differs from the old leader's")
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range acked {
			if !yield(k) {
				return
			}
		}
	})
	t.Logf("new leader %s holds all %d acknowledged ZADDs (first %s) and every acknowledged ZINCRBY", id, len(acked), keys[0])
}
