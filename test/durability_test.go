package test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestKill9LosesNoAcknowledgedWrite writes from many clients, SIGKILLs the
// node while writes are in flight, restarts it, and checks that every
// acknowledged write is there: unique keys with their values, and per-client
// counters at least as high as their acknowledged increments.
func TestKill9LosesNoAcknowledgedWrite(t *testing.T) {
	p := newProc(t, "n1")
	p.start()
	const clients = 16
	const killAfter = 3000 // acknowledged writes before the kill

	type ack struct{ key, val string }
	var (
		mu      sync.Mutex
		acked   []ack
		incrAck [clients]int64 // highest acknowledged INCR result per client
		total   atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: p.RESP, MaxRetries: -1, PoolSize: 1})
			defer rdb.Close()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("c%d-k%d", c, i)
				val := fmt.Sprintf("v%d-%d-%s", c, i, key)
				if err := rdb.Set(ctx, key, val, 0).Err(); err != nil {
					return // the node is gone: stop this client
				}
				mu.Lock()
				acked = append(acked, ack{key, val})
				mu.Unlock()
				n, err := rdb.Incr(ctx, fmt.Sprintf("counter-%d", c)).Result()
				if err != nil {
					return
				}
				atomic.StoreInt64(&incrAck[c], n)
				total.Add(2)
			}
		}(c)
	}
	deadline := time.Now().Add(60 * time.Second)
	for total.Load() < killAfter {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 60s", total.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kill() // while the clients are still writing
	cancel()
	wg.Wait()

	p.start()
	rdb := redis.NewClient(&redis.Options{Addr: p.RESP})
	defer rdb.Close()
	rctx := ctxT(t, 60*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no acknowledged writes")
	}
	missing := 0
	for _, a := range acked {
		got, err := rdb.Get(rctx, a.key).Result()
		if err != nil || got != a.val {
			missing++
			if missing < 10 {
				t.Errorf("acknowledged %s=%s, after restart got %q (%v)", a.key, a.val, got, err)
			}
		}
	}
	for c := range clients {
		want := atomic.LoadInt64(&incrAck[c])
		got, err := rdb.Get(rctx, fmt.Sprintf("counter-%d", c)).Result()
		if errors.Is(err, redis.Nil) && want == 0 {
			continue
		}
		n, _ := strconv.ParseInt(got, 10, 64)
		if err != nil || n < want {
			t.Errorf("counter-%d: acknowledged %d, after restart %q (%v)", c, want, got, err)
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes missing after kill -9", missing, len(acked))
	}
	t.Logf("%d acknowledged SETs and %d counters survived kill -9", len(acked), clients)
	p.stop()
}
