package test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// llOp is one client operation with its real-time interval.
type llOp struct {
	key        string
	write      bool
	value      int64 // written, or read (-1 = nil)
	start, end time.Time
	ok         bool
}

// TestLeaderlessReadsSeeAcknowledgedWrites: with W=2, R=2 (W+R > N=3) and
// no sloppy quorum, a read that starts after a write was acknowledged
// returns that write or a newer one, while nodes are killed, restarted
// paused and partitioned one at a time. Each key has one writer writing 1, 2, 3…, so
// "newer" is "a larger number"; writes that failed may still appear (the
// Contract says so), so only acknowledged ones bound the reads.
func TestLeaderlessReadsSeeAcknowledgedWrites(t *testing.T) {
	c := newLeaderless(t, 5)
	keys := []string{"h0", "h1", "h2", "h3", "h4"}
	var mu sync.Mutex
	var hist []llOp
	record := func(o llOp) { mu.Lock(); hist = append(hist, o); mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func(i int, k string) { // the key's only writer, on one node
			defer wg.Done()
			rdb := redis.NewClient(&redis.Options{Addr: c.nodes[i%len(c.nodes)].RESP, MaxRetries: -1, PoolSize: 1,
				ReadTimeout: 5 * time.Second})
			defer rdb.Close()
			for v := int64(1); ctx.Err() == nil; v++ {
				o := llOp{key: k, write: true, value: v, start: time.Now()}
				err := rdb.Set(context.Background(), k, v, 0).Err()
				o.end, o.ok = time.Now(), err == nil
				record(o)
				if err != nil {
					time.Sleep(20 * time.Millisecond) // a node is down: do not spin
				}
			}
		}(i, k)
	}
	for r := 0; r < 6; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			clients := map[int]*redis.Client{}
			defer func() {
				for _, cl := range clients {
					cl.Close()
				}
			}()
			for ctx.Err() == nil {
				n := rng.IntN(len(c.nodes))
				if clients[n] == nil {
					clients[n] = redis.NewClient(&redis.Options{Addr: c.nodes[n].RESP, MaxRetries: -1, PoolSize: 1,
						ReadTimeout: 5 * time.Second})
				}
				k := keys[rng.IntN(len(keys))]
				o := llOp{key: k, start: time.Now(), value: -1}
				s, err := clients[n].Get(context.Background(), k).Result()
				o.end = time.Now()
				switch {
				case errors.Is(err, redis.Nil):
					o.ok = true
				case err == nil:
					v, perr := strconv.ParseInt(s, 10, 64)
					o.ok, o.value = perr == nil, v
				}
				record(o)
				if err != nil && !errors.Is(err, redis.Nil) {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(r)
	}
	// The nemesis: one fault at a time, so every key keeps two of its
	// three replicas: kill -9 and restart, SIGSTOP and SIGCONT, and (when
	// root) a partition: every packet to or from the node's peer port is
	// dropped, so no other node reaches it as a replica.
	cutter := newLinkCutter(t)
	rng := rand.New(rand.NewPCG(3, 3))
	for round := 0; round < 9; round++ {
		time.Sleep(400 * time.Millisecond)
		p := c.nodes[rng.IntN(len(c.nodes))]
		switch round % 3 {
		case 0:
			p.kill()
			time.Sleep(500 * time.Millisecond)
			p.start()
		case 1:
			_ = p.Signal(syscall.SIGSTOP)
			time.Sleep(700 * time.Millisecond)
			_ = p.Signal(syscall.SIGCONT)
		case 2:
			if cutter != nil {
				cutter.set(p, true)
				time.Sleep(700 * time.Millisecond)
				cutter.set(p, false)
			}
		}
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()

	// Check: every successful read returns at least the largest value
	// acknowledged before the read started.
	mu.Lock()
	defer mu.Unlock()
	reads, okWrites, bad := 0, 0, 0
	for _, r := range hist {
		if r.write {
			if r.ok {
				okWrites++
			}
			continue
		}
		if !r.ok {
			continue
		}
		reads++
		floor := int64(-1)
		for _, w := range hist {
			if w.write && w.ok && w.key == r.key && w.end.Before(r.start) && w.value > floor {
				floor = w.value
			}
		}
		if r.value < floor {
			bad++
			if bad <= 5 {
				t.Errorf("read of %s at %s returned %d, but %d was acknowledged before it started",
					r.key, r.start.Format("15:04:05.000"), r.value, floor)
			}
		}
	}
	t.Logf("%d acknowledged writes, %d successful reads, %d stale", okWrites, reads, bad)
	if reads < 100 || okWrites < 50 {
		t.Fatalf("too little happened to judge: %d reads, %d writes", reads, okWrites)
	}
}

// TestLeaderlessR1ReadsCanBeStaleThenConverge: with W=1 a write can miss a
// replica that is down; an R=1 read answered by that replica alone is
// stale — and read repair then brings the replica up to date.
func TestLeaderlessR1ReadsCanBeStaleThenConverge(t *testing.T) {
	c := newLeaderless(t, 5, "--anti-entropy-interval", "1h") // convergence must come from read repair
	ctx := ctxT(t, 60*time.Second)
	key := "stale"
	reps, others := c.replicasOf(key)
	all := quorumConn(t, others[0], "all", "all")
	if err := all.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	x := reps[2]
	x.kill() // misses the next write outright
	w1 := quorumConn(t, reps[0], "1", "1")
	if err := w1.Set(ctx, key, "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	x.start()
	c.waitAllHealthy()
	// With the two up-to-date replicas paused, an R=1 read through x can
	// only be answered by x itself: stale, and the client cannot tell.
	r1 := quorumConn(t, x, "1", "1")
	v, err := whilePaused(t, reps[:2], func() (string, error) { return r1.Get(ctx, key).Result() })
	if err != nil || v != "v1" {
		t.Fatalf("R=1 read through the replica that missed the write = %q, %v; want the stale v1", v, err)
	}
	// Once the others answer again, read repair converges x.
	waitFor(t, "R=1 reads through x converge on v2", 20*time.Second, func() bool {
		v, err := r1.Get(ctx, key).Result()
		return err == nil && v == "v2"
	})
}

// TestLeaderlessReadRepairCanBeTurnedOff: with --read-repair=false a read
// that sees a stale replica leaves it stale (anti-entropy, here an hour
// away, would repair it).
func TestLeaderlessReadRepairCanBeTurnedOff(t *testing.T) {
	c := newLeaderless(t, 5, "--read-repair=false", "--anti-entropy-interval", "1h")
	ctx := ctxT(t, 60*time.Second)
	key := "norepair"
	reps, others := c.replicasOf(key)
	all := quorumConn(t, others[0], "all", "all")
	if err := all.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	x := reps[2]
	x.kill()
	if err := quorumConn(t, reps[0], "1", "1").Set(ctx, key, "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	x.start()
	c.waitAllHealthy()
	// Reads that ask every replica see v2 and x's stale v1 — and repair
	// nothing.
	rall := quorumConn(t, x, "1", "all")
	for i := 0; i < 3; i++ {
		if v, err := rall.Get(ctx, key).Result(); err != nil || v != "v2" {
			t.Fatalf("R=all = %q, %v", v, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // what a repair would have needed
	r1 := quorumConn(t, x, "1", "1")
	v, err := whilePaused(t, reps[:2], func() (string, error) { return r1.Get(ctx, key).Result() })
	if err != nil || v != "v1" {
		t.Fatalf("x alone answers %q, %v; want the unrepaired v1", v, err)
	}
}

// whilePaused runs f with ps stopped (SIGSTOP), then resumes them.
func whilePaused(t *testing.T, ps []*proc, f func() (string, error)) (string, error) {
	t.Helper()
	for _, p := range ps {
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, p := range ps {
			_ = p.Signal(syscall.SIGCONT)
		}
	}()
	return f()
}
