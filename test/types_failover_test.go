package test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/check"
)

// collectionRegister is a register kept inside a collection: a hash field
// (HSET/HGET) or a list's first element (LSET/LINDEX), so the
// linearizability checker that judges string registers judges the
// collection write and read paths under the same faults.
type collectionRegister struct {
	name  string // the history's key
	key   string // the Redis key
	write func(ctx context.Context, cl *redis.Client, v int64) error
	read  func(ctx context.Context, cl *redis.Client) (string, error)
}

var collectionRegisters = []collectionRegister{
	{
		name: "hash field", key: "hreg",
		write: func(ctx context.Context, cl *redis.Client, v int64) error { return cl.HSet(ctx, "hreg", "f", v).Err() },
		read:  func(ctx context.Context, cl *redis.Client) (string, error) { return cl.HGet(ctx, "hreg", "f").Result() },
	},
	{
		// The list exists before the clients start (LSET needs it), and
		// always keeps two elements: index 0 is the register.
		name: "list element", key: "lreg",
		write: func(ctx context.Context, cl *redis.Client, v int64) error { return cl.LSet(ctx, "lreg", 0, v).Err() },
		read:  func(ctx context.Context, cl *redis.Client) (string, error) { return cl.LIndex(ctx, "lreg", 0).Result() },
	},
}

// runCollectionRegisterClient is runRegisterClient on a collection register.
func runCollectionRegisterClient(ctx context.Context, c *cluster, id int, reg collectionRegister, h *opHistory, acked *atomic.Int64) {
	lc := newLeaderClient(c)
	defer lc.close()
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	for i := 1; ctx.Err() == nil; i++ {
		cl := lc.client(lc.cur)
		if rng.IntN(2) == 0 {
			v := regValue(id, i)
			call := h.now()
			err := reg.write(context.Background(), cl, v)
			ret := h.now()
			op := regWrite(id, v, call, ret, check.Ok, "")
			op.Key = reg.name
			switch {
			case err == nil:
				h.add(op)
				acked.Add(1)
			case definiteFailure(err):
				lc.redirect(err)
				time.Sleep(20 * time.Millisecond)
			default:
				op.Outcome = check.Unknown
				h.add(op)
				lc.redirect(err)
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		call := h.now()
		v, err := reg.read(context.Background(), cl)
		ret := h.now()
		if errors.Is(err, redis.Nil) {
			v, err = "", nil
		}
		if err != nil {
			lc.redirect(err)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if op, ok := regRead(id, v, call, ret, ""); ok {
			op.Key = reg.name
			h.add(op)
		}
	}
}

// TestCollectionsFailoverIsLinearizable: a hash field and a list element
// used as registers under a leader kill -9 and its return: the history of
// acknowledged operations is linearizable (no acknowledged HSET or LSET
// lost, no stale HGET or LINDEX from a deposed leader), and every node
// ends with the same hash and list.
func TestCollectionsFailoverIsLinearizable(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--failover-timeout", "2s", "--sync-timeout", "1s", "--write-timeout", "3s")
	h := &opHistory{t0: time.Now()}
	ctx, cancel := bg(t)
	defer cancel()
	// The list register's initial value is a write like any other.
	first := newLeaderClient(c)
	call := h.now()
	if err := first.client(first.cur).RPush(ctx, "lreg", 0, "tail").Err(); err != nil {
		t.Fatalf("create the list: %v", err)
	}
	init := regWrite(99, 0, call, h.now(), check.Ok, "")
	init.Key = "list element"
	h.add(init)
	first.close()

	var acked atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runCollectionRegisterClient(ctx, c, i, collectionRegisters[i%2], h, &acked)
		}()
	}
	waitFor := func(n int64) {
		c.waitFor("acknowledged collection writes", 60*time.Second, func() bool { return acked.Load() >= n })
	}
	waitFor(200)
	c.node("n1").kill()
	c.waitFor("a new leader is appointed", 20*time.Second, func() bool {
		l, ep := leaderOf(c, "n1")
		return l != "" && ep >= 2
	})
	waitFor(acked.Load() + 200)
	c.node("n1").start()
	waitFor(acked.Load() + 100)
	cancel()
	wg.Wait()

	leaderID, _ := leaderOf(c, "")
	leader := c.node(leaderID)
	c.waitCaughtUp(leader, c.nodes...)
	var want map[string]string
	var wantList []string
	for _, p := range c.nodes {
		cl := redis.NewClient(&redis.Options{Addr: p.RESP})
		// Followers serve eventual reads of their own state.
		hash, err := cl.HGetAll(context.Background(), "hreg").Result()
		if err != nil {
			t.Fatalf("%s: HGETALL: %v", p.ID, err)
		}
		list, err := cl.LRange(context.Background(), "lreg", 0, -1).Result()
		if err != nil {
			t.Fatalf("%s: LRANGE: %v", p.ID, err)
		}
		cl.Close()
		if want == nil {
			want, wantList = hash, list
		} else if len(hash) != len(want) || hash["f"] != want["f"] || len(list) != 2 || list[0] != wantList[0] || list[1] != "tail" {
			t.Errorf("%s holds hash %v and list %v; %s holds %v and %v", p.ID, hash, list, c.nodes[0].ID, want, wantList)
		}
	}
	t.Logf("%d acknowledged collection writes", acked.Load())
	checkLinearizable(t, h)
}
