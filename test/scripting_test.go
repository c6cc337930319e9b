package test

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestScriptAtomicOnFollowers: a script's writes are one log entry, so a
// follower never shows half of one. A writer on the leader runs a script
// that increments a and b; readers on both followers MGET a b and must
// never see them differ.
func TestScriptAtomicOnFollowers(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.node("n1")
	ctx, cancel := bg(t)
	const body = "local x = redis.call('incr', KEYS[1])\nlocal y = redis.call('incr', KEYS[2])\nreturn {x, y}"
	var acked atomic.Int64
	var stop atomic.Bool
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rdb := leader.redis()
			wctx := ctxT(t, 2*time.Minute)
			for !stop.Load() {
				v, err := rdb.Eval(wctx, body, []string{"a", "b"}).Int64Slice()
				if err != nil {
					errs <- fmt.Errorf("EVAL: %w", err)
					return
				}
				if v[0] != v[1] {
					errs <- fmt.Errorf("one script answered a=%d b=%d", v[0], v[1])
					return
				}
				acked.Add(1)
			}
		}()
	}
	var distinct [2]atomic.Int64
	var rwg sync.WaitGroup
	for i, id := range []string{"n2", "n3"} {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			rdb := c.node(id).redis()
			last := ""
			for ctx.Err() == nil {
				vals, err := rdb.MGet(ctx, "a", "b").Result()
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					errs <- fmt.Errorf("MGET on %s: %w", id, err)
					return
				}
				if vals[0] != vals[1] {
					errs <- fmt.Errorf("%s showed half a script: a=%v b=%v", id, vals[0], vals[1])
					return
				}
				if s, _ := vals[0].(string); s != last {
					distinct[i].Add(1)
					last = s
				}
			}
		}()
	}
	waitFor(t, "followers to show 100 states each", 90*time.Second, func() bool {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		return distinct[0].Load() >= 100 && distinct[1].Load() >= 100
	})
	stop.Store(true)
	wg.Wait()
	cancel()
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c.waitCaughtUp(leader, c.nodes...)
	want := strconv.FormatInt(acked.Load(), 10)
	for _, p := range c.nodes {
		vals := p.redis().MGet(ctxT(t, 10*time.Second), "a", "b").Val()
		if vals[0] != want || vals[1] != want {
			t.Fatalf("%s: a=%v b=%v after %s acknowledged scripts", p.ID, vals[0], vals[1], want)
		}
	}
	// On a follower: a no-writes script reads there; a script declaring
	// writes is refused as on a Redis replica; a legacy script's write
	// fails as READONLY.
	fr := c.node("n2").redis()
	rctx := ctxT(t, 10*time.Second)
	if v, err := fr.Do(rctx, "eval_ro", "return redis.call('get', KEYS[1])", 1, "a").Result(); err != nil || v != want {
		t.Fatalf("EVAL_RO on a follower: %v %v", v, err)
	}
	if err := fr.Eval(rctx, "#!lua\nreturn redis.call('set', 'x', 1)", nil).Err(); err == nil || err.Error()[:8] != "READONLY" {
		t.Fatalf("a declared writing script on a follower: %v", err)
	}
	if err := fr.Eval(rctx, "return redis.call('set', 'x', 1)", nil).Err(); err == nil || err.Error()[:8] != "READONLY" {
		t.Fatalf("a legacy writing script on a follower: %v", err)
	}
	t.Logf("%s scripts; followers showed %d and %d distinct states, never half a script", want, distinct[0].Load(), distinct[1].Load())
}

// TestFunctionsSurviveFailover: a library loaded on the leader is on
// every node (it is replicated data); after SIGKILL of the leader the new
// leader runs FCALL, and its writes and FUNCTION LIST are there.
func TestFunctionsSurviveFailover(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--failover-timeout", "2s", "--sync-timeout", "1s", "--write-timeout", "3s")
	ctx := ctxT(t, 2*time.Minute)
	rdb := c.node("n1").redis()
	lib := "#!lua name=counters\nredis.register_function('bump', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)\n" +
		"redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}"
	if err := rdb.FunctionLoad(ctx, lib).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.FCall(ctx, "bump", []string{"ctr"}, 5).Int64(); err != nil || v != 5 {
		t.Fatalf("FCALL on the first leader: %v %v", v, err)
	}
	c.waitCaughtUp(c.node("n1"), c.nodes...)
	// Followers run no-writes functions from their own copy.
	if v, err := c.node("n3").redis().FCallRO(ctx, "peek", []string{"ctr"}).Text(); err != nil || v != "5" {
		t.Fatalf("FCALL_RO on a follower: %v %v", v, err)
	}
	c.node("n1").kill()
	var newLeader string
	c.waitFor("a new leader", 30*time.Second, func() bool {
		l, ep := leaderOf(c, "n1")
		newLeader = l
		return l != "" && ep >= 2
	})
	nl := c.node(newLeader).redis()
	var v int64
	waitFor(t, "FCALL on the new leader", 30*time.Second, func() bool {
		var err error
		v, err = nl.FCall(ctx, "bump", []string{"ctr"}, 2).Int64()
		return err == nil
	})
	if v != 7 {
		t.Fatalf("FCALL on the new leader %s: %d, want 7", newLeader, v)
	}
	libs, err := nl.FunctionList(ctx, redis.FunctionListQuery{}).Result()
	if err != nil || len(libs) != 1 || libs[0].Name != "counters" || len(libs[0].Functions) != 2 {
		t.Fatalf("FUNCTION LIST on the new leader: %+v %v", libs, err)
	}
	if keys := nl.Keys(ctx, "*").Val(); len(keys) != 1 || keys[0] != "ctr" {
		t.Fatalf("KEYS on the new leader: %v", keys)
	}
}
