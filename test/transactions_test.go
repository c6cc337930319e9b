package test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestTransactionsAtomicOnFollowers: EXEC's writes are one log entry, so a
// follower shows all of a transaction or none of it. Writers on the leader
// run MULTI / INCR a / INCR b / EXEC; readers on both followers MGET a b
// and must never see them differ. Without the single entry a follower
// would apply (and show) one INCR before the other.
func TestTransactionsAtomicOnFollowers(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.node("n1")
	ctx, cancel := bg(t)
	const writers = 3
	var acked atomic.Int64
	var stop atomic.Bool // writers finish their transaction in flight
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rdb := leader.redis()
			wctx := ctxT(t, 2*time.Minute)
			for !stop.Load() {
				cmds, err := rdb.TxPipelined(wctx, func(p redis.Pipeliner) error {
					p.Incr(wctx, "a")
					p.Incr(wctx, "b")
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("transaction: %w", err)
					return
				}
				if x, y := cmds[0].(*redis.IntCmd).Val(), cmds[1].(*redis.IntCmd).Val(); x != y {
					errs <- fmt.Errorf("EXEC answered INCR a=%d, INCR b=%d inside one transaction", x, y)
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
				a, _ := vals[0].(string)
				b, _ := vals[1].(string)
				if a != b {
					errs <- fmt.Errorf("%s showed part of a transaction: a=%q b=%q", id, a, b)
					return
				}
				if a != last {
					distinct[i].Add(1)
					last = a
				}
			}
		}()
	}
	// Run until both followers have shown many different states: the
	// readers must have overlapped with the writes to prove anything.
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
		vals, err := p.redis().MGet(ctxT(t, 10*time.Second), "a", "b").Result()
		if err != nil {
			t.Fatal(err)
		}
		if vals[0] != want || vals[1] != want {
			t.Fatalf("%s: a=%v b=%v after %s acknowledged transactions", p.ID, vals[0], vals[1], want)
		}
	}
	t.Logf("%s transactions; followers showed %d and %d distinct states, never a partial one", want, distinct[0].Load(), distinct[1].Load())
}

// TestTransactionErrorsAndWatch: against the real binary, through
// go-redis: a queued syntax error aborts EXEC (EXECABORT) and writes
// nothing; a runtime error halfway is reported for that command while the
// others apply; WATCH aborts EXEC when another connection writes the key,
// and a WATCH retry loop from several clients loses no increment.
func TestTransactionErrorsAndWatch(t *testing.T) {
	c := newCluster(t, 2)
	leader, follower := c.node("n1"), c.node("n2")
	ctx := ctxT(t, 60*time.Second)
	rdb := leader.redis()

	// EXECABORT on a queued syntax (arity) error.
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "x1", "v", 0)
		p.Do(ctx, "get") // wrong number of arguments
		p.Set(ctx, "x2", "v", 0)
		return nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
		t.Fatalf("transaction with a queued arity error: %v", err)
	}
	if n := rdb.Exists(ctx, "x1", "x2").Val(); n != 0 {
		t.Fatalf("an aborted transaction wrote %d keys", n)
	}
	raw := rdb.Conn()
	defer raw.Close()
	raw.Do(ctx, "multi")
	raw.Do(ctx, "set", "x1", "v")
	raw.Do(ctx, "get")
	if err := raw.Do(ctx, "exec").Err(); err == nil || err.Error() != "EXECABORT Transaction discarded because of previous errors." {
		t.Fatalf("EXEC after a queued error: %v", err)
	}

	// A runtime error halfway.
	if err := rdb.Set(ctx, "text", "abc", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "y1", "1", 0)
		p.Incr(ctx, "text")
		p.Set(ctx, "y2", "2", 0)
		return nil
	})
	if err == nil || err.Error() != "ERR value is not an integer or out of range" {
		t.Fatalf("transaction with a runtime error: %v", err)
	}
	if cmds[0].Err() != nil || cmds[2].Err() != nil || cmds[1].Err() == nil {
		t.Fatalf("per-command results: %v %v %v", cmds[0].Err(), cmds[1].Err(), cmds[2].Err())
	}
	if vals := rdb.MGet(ctx, "y1", "y2", "text").Val(); fmt.Sprint(vals) != "[1 2 abc]" {
		t.Fatalf("leader after a transaction with a runtime error: %v", vals)
	}
	fr := follower.redis()
	waitFor(t, "the follower to show the transaction", 20*time.Second, func() bool {
		return fmt.Sprint(fr.MGet(ctx, "y1", "y2", "text").Val()) == "[1 2 abc]"
	})

	// WATCH, then another connection writes.
	other := leader.redis()
	err = rdb.Watch(ctx, func(tx *redis.Tx) error {
		if err := other.Set(ctx, "w", "other", 0).Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "w", "mine", 0)
			return nil
		})
		return err
	}, "w")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXEC after another connection wrote a watched key: %v", err)
	}
	if v := rdb.Get(ctx, "w").Val(); v != "other" {
		t.Fatalf("w = %q after the aborted transaction", v)
	}

	// Optimistic increments from several clients: none lost.
	const clients, each = 4, 20
	var wg sync.WaitGroup
	var aborted atomic.Int64
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := leader.redis()
			for range each {
				for {
					err := cl.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, "ctr").Int()
						if err != nil && !errors.Is(err, redis.Nil) {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, "ctr", n+1, 0)
							return nil
						})
						return err
					}, "ctr")
					if errors.Is(err, redis.TxFailedErr) {
						aborted.Add(1)
						continue
					}
					if err != nil {
						errs <- err
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v := rdb.Get(ctx, "ctr").Val(); v != strconv.Itoa(clients*each) {
		t.Fatalf("ctr = %s after %d optimistic increments", v, clients*each)
	}
	if aborted.Load() == 0 {
		t.Fatal("no EXEC was aborted: the clients never contended")
	}

	// On the follower: WATCH and a read-only transaction run; a queued
	// write is refused and aborts EXEC.
	if err := fr.Watch(ctx, func(tx *redis.Tx) error {
		cmds, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Get(ctx, "y1")
			p.Get(ctx, "y2")
			return nil
		})
		if err == nil && (cmds[0].(*redis.StringCmd).Val() != "1" || cmds[1].(*redis.StringCmd).Val() != "2") {
			err = fmt.Errorf("read-only transaction on the follower: %v", cmds)
		}
		return err
	}, "y1"); err != nil {
		t.Fatalf("read-only transaction on the follower: %v", err)
	}
	cmds, err = fr.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "z", "v", 0)
		return nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") || !strings.HasPrefix(fmt.Sprint(cmds[0].Err()), "READONLY") {
		t.Fatalf("a writing transaction on the follower: %v (queued SET: %v)", err, cmds[0].Err())
	}
	t.Logf("%d EXECs aborted by WATCH", aborted.Load())
}

// TestTransactionSurvivesLeaderKill: transactions each write three keys
// of their own; the leader is killed with SIGKILL mid-stream. After the
// failover every transaction is all-or-nothing on every node, and every
// acknowledged one is complete.
func TestTransactionSurvivesLeaderKill(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--failover-timeout", "2s", "--sync-timeout", "1s", "--write-timeout", "3s")
	ctx, cancel := bg(t)
	type txRec struct {
		id    string
		acked bool
	}
	var mu sync.Mutex
	var recs []txRec
	var acked atomic.Int64
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc := newLeaderClient(c)
			defer lc.close()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				_, err := lc.client(lc.cur).TxPipelined(context.Background(), func(p redis.Pipeliner) error {
					for k := range 3 {
						p.Set(context.Background(), fmt.Sprintf("%s:%d", id, k), id, 0)
					}
					return nil
				})
				mu.Lock()
				recs = append(recs, txRec{id: id, acked: err == nil})
				mu.Unlock()
				if err != nil {
					lc.redirect(err)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				acked.Add(1)
			}
		}()
	}
	waitFor(t, "200 acknowledged transactions", 60*time.Second, func() bool { return acked.Load() >= 200 })
	c.node("n1").kill()
	c.waitFor("a new leader", 30*time.Second, func() bool {
		l, ep := leaderOf(c, "n1")
		return l != "" && ep >= 2
	})
	before := acked.Load()
	waitFor(t, "200 more acknowledged transactions under the new leader", 60*time.Second, func() bool { return acked.Load() >= before+200 })
	c.node("n1").start()
	cancel()
	wg.Wait()
	newLeader, _ := leaderOf(c, "")
	c.waitCaughtUp(c.node(newLeader), c.nodes...)
	mu.Lock()
	defer mu.Unlock()
	ambiguous := 0
	for _, p := range c.nodes {
		rdb := p.redis()
		rctx := ctxT(t, 60*time.Second)
		if err := rdb.Do(rctx, "REPLICANT.CONSISTENCY", "eventual").Err(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			keys := []string{r.id + ":0", r.id + ":1", r.id + ":2"}
			vals, err := rdb.MGet(rctx, keys...).Result()
			if err != nil {
				t.Fatalf("MGET on %s: %v", p.ID, err)
			}
			present := 0
			for _, v := range vals {
				if v == r.id {
					present++
				} else if v != nil {
					t.Fatalf("%s: %s holds %v", p.ID, keys, vals)
				}
			}
			switch {
			case present != 0 && present != 3:
				t.Fatalf("%s shows %d of the 3 keys of transaction %s (acknowledged %v)", p.ID, present, r.id, r.acked)
			case r.acked && present != 3:
				t.Fatalf("%s lost acknowledged transaction %s", p.ID, r.id)
			case !r.acked && p.ID == newLeader:
				ambiguous++
			}
		}
	}
	t.Logf("%d transactions (%d acknowledged, %d failed or ambiguous), each all-or-nothing on every node after failover to %s",
		len(recs), acked.Load(), ambiguous, newLeader)
}

// TestTransactionsMultiLeader: a transaction on one site is one entry of
// that site's log and reaches the other site whole (its reader never sees
// one counter ahead of the other); WATCH on a site aborts EXEC when the
// watched key was changed by a write that came from the other site.
func TestTransactionsMultiLeader(t *testing.T) {
	sites := startSites(t, "eu", "us")
	linkAll(t, sites)
	eu, us := sites[0].redis(), sites[1].redis()
	ctx, cancel := bg(t)
	var stop atomic.Bool
	var acked atomic.Int64
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		wctx := ctxT(t, 2*time.Minute)
		for !stop.Load() {
			if _, err := eu.TxPipelined(wctx, func(p redis.Pipeliner) error {
				p.Incr(wctx, "a")
				p.Incr(wctx, "b")
				return nil
			}); err != nil {
				errs <- fmt.Errorf("transaction on eu: %w", err)
				return
			}
			acked.Add(1)
		}
	}()
	var distinct atomic.Int64
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		last := ""
		for ctx.Err() == nil {
			vals, err := us.MGet(ctx, "a", "b").Result()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				errs <- fmt.Errorf("MGET on us: %w", err)
				return
			}
			if vals[0] != vals[1] {
				errs <- fmt.Errorf("us showed part of a transaction from eu: a=%v b=%v", vals[0], vals[1])
				return
			}
			if a, _ := vals[0].(string); a != last {
				distinct.Add(1)
				last = a
			}
		}
	}()
	waitFor(t, "us to show 50 states of eu's transactions", 90*time.Second, func() bool {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		return distinct.Load() >= 50
	})
	stop.Store(true)
	wg.Wait()
	cancel()
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := strconv.FormatInt(acked.Load(), 10)
	wctx := ctxT(t, 30*time.Second)
	waitFor(t, "us to converge on "+want, 20*time.Second, func() bool {
		return fmt.Sprint(us.MGet(wctx, "a", "b").Val()) == "["+want+" "+want+"]"
	})

	// WATCH on eu; the key changes on us and arrives over the link.
	if err := eu.Set(wctx, "w", "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "us to receive w", 20*time.Second, func() bool { return us.Get(wctx, "w").Val() == "0" })
	err := eu.Watch(wctx, func(tx *redis.Tx) error {
		if err := us.Set(wctx, "w", "from-us", 0).Err(); err != nil {
			return err
		}
		waitFor(t, "eu to receive us's write", 20*time.Second, func() bool { return eu.Get(wctx, "w").Val() == "from-us" })
		_, err := tx.TxPipelined(wctx, func(p redis.Pipeliner) error {
			p.Set(wctx, "w", "from-eu", 0)
			return nil
		})
		return err
	}, "w")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXEC on eu after us changed a watched key: %v, want TxFailedErr", err)
	}
	t.Logf("%s transactions on eu; us showed %d states, never a partial one", want, distinct.Load())
}
