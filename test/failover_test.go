package test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/check"
)

// leaderClient sends each command to whichever node it believes leads,
// following READONLY redirects and trying other nodes when one is down.
type leaderClient struct {
	addrs   []string
	cur     string
	clients map[string]*redis.Client
}

func newLeaderClient(c *cluster) *leaderClient {
	lc := &leaderClient{clients: map[string]*redis.Client{}}
	for _, p := range c.nodes {
		lc.addrs = append(lc.addrs, p.RESP)
	}
	lc.cur = lc.addrs[0]
	return lc
}

func (lc *leaderClient) client(addr string) *redis.Client {
	if c, ok := lc.clients[addr]; ok {
		return c
	}
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 3 * time.Second, WriteTimeout: time.Second,
		// Every read is recorded as linearizable, so ask for exactly that:
		// a follower must refuse instead of answering from local state.
		OnConnect: func(ctx context.Context, cn *redis.Conn) error {
			return cn.Do(ctx, "REPLICANT.CONSISTENCY", "linearizable").Err()
		}})
	lc.clients[addr] = c
	return c
}

func (lc *leaderClient) close() {
	for _, c := range lc.clients {
		c.Close()
	}
}

// definiteFailure: the command certainly had no effect.
func definiteFailure(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.HasPrefix(s, "READONLY") || strings.Contains(s, "leader unknown") || isDialError(err)
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// redirect switches to the leader named by a READONLY error, or to the
// next node.
func (lc *leaderClient) redirect(err error) {
	if i := strings.Index(err.Error(), "resp="); i >= 0 {
		// The address is the token after resp=, whatever text follows.
		addr := strings.TrimRight(strings.Fields(err.Error()[i+5:] + " ")[0], ");,")
		if slices.Contains(lc.addrs, addr) {
			lc.cur = addr
			return
		}
	}
	for i, a := range lc.addrs {
		if a == lc.cur {
			lc.cur = lc.addrs[(i+1)%len(lc.addrs)]
			return
		}
	}
	lc.cur = lc.addrs[0]
}

// opHistory collects the register clients' operations for the check
// package's linearizability checker (the one replicant check runs).
type opHistory struct {
	mu  sync.Mutex
	ops []check.Op
	t0  time.Time
}

func (h *opHistory) now() time.Duration { return time.Since(h.t0) }

func (h *opHistory) add(op check.Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// regValue is client id's i-th write: unique across clients.
func regValue(id, i int) int64 { return int64(id)<<32 | int64(i) }

// regWrite and regRead record one register operation.
func regWrite(id int, v int64, call, ret time.Duration, o check.Outcome, node string) check.Op {
	return check.Op{Process: id, Kind: check.Write, Key: "reg", Value: v, Outcome: o, Start: call, End: ret, Node: node}
}

func regRead(id int, got string, call, ret time.Duration, node string) (check.Op, bool) {
	op := check.Op{Process: id, Kind: check.Read, Key: "reg", Consistency: check.Linearizable, Outcome: check.Ok, Start: call, End: ret, Node: node}
	if got == "" {
		return op, true
	}
	v, err := strconv.ParseInt(got, 10, 64)
	if err != nil {
		return op, false // not a value of this workload
	}
	op.Found, op.Value = true, v
	return op, true
}

// runRegisterClient does random SET/GET on one key against the leader until
// ctx ends. Writes with an ambiguous outcome are recorded as never
// returning (they may take effect at any later point, or never); failed
// reads and certainly-failed writes are not recorded.
func runRegisterClient(ctx context.Context, c *cluster, id int, h *opHistory, acked *int64, mu *sync.Mutex) {
	lc := newLeaderClient(c)
	defer lc.close()
	rng := rand.New(rand.NewPCG(uint64(id), 42))
	for i := 0; ctx.Err() == nil; i++ {
		cl := lc.client(lc.cur)
		if rng.IntN(2) == 0 {
			v := regValue(id, i)
			call := h.now()
			err := cl.Set(context.Background(), "reg", v, 0).Err()
			ret := h.now()
			switch {
			case err == nil:
				h.add(regWrite(id, v, call, ret, check.Ok, ""))
				mu.Lock()
				*acked++
				mu.Unlock()
			case definiteFailure(err):
				lc.redirect(err)
				time.Sleep(20 * time.Millisecond)
			default:
				h.add(regWrite(id, v, call, ret, check.Unknown, ""))
				lc.redirect(err)
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		call := h.now()
		v, err := cl.Get(context.Background(), "reg").Result()
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
			h.add(op)
		}
	}
}

// checkLinearizable fails the test unless the history is linearizable,
// logging the certainly stale reads (with the nodes that served them) that
// explain a violation.
func checkLinearizable(t *testing.T, h *opHistory) {
	t.Helper()
	h.mu.Lock()
	hist := &check.History{Ops: slices.Clone(h.ops)}
	h.mu.Unlock()
	res := check.Linearizability(hist, time.Minute)
	for i, s := range res.Stale {
		if i == 10 {
			break
		}
		how := fmt.Sprintf("overwritten by %d acknowledged [%s,%s] on %s", s.Newer.Value, s.Newer.Start, s.Newer.End, s.Newer.Node)
		if s.Seen != nil {
			how = fmt.Sprintf("after a read [%s,%s] on %s returned the newer %d", s.Seen.Start, s.Seen.End, s.Seen.Node, s.Newer.Value)
		}
		t.Logf("stale read [%s,%s] on %s returned %v/%d, %s", s.Read.Start, s.Read.End, s.Read.Node, s.Read.Found, s.Read.Value, how)
	}
	switch res.Verdict {
	case "not linearizable":
		t.Fatalf("history of %d operations (%d writes of unknown outcome) is NOT linearizable (%d certainly stale reads)", res.Ops, res.Pending, len(res.Stale))
	case "unknown":
		t.Logf("linearizability check timed out on %d operations, %d of them writes of unknown outcome, and found no certainly stale read (inconclusive)", res.Ops, res.Pending)
	default:
		t.Logf("history of %d operations (%d writes of unknown outcome) is linearizable", res.Ops, res.Pending)
	}
}

func leaderOf(c *cluster, exclude string) (string, uint64) {
	for _, p := range c.nodes {
		if p.ID == exclude || !p.running() {
			continue
		}
		if st, err := p.status(); err == nil && st.Leader != "" && st.Leader != exclude {
			return st.Leader, st.Epoch
		}
	}
	return "", 0
}

// TestFailoverAfterLeaderKillIsLinearizable: SIGKILL the leader under a
// register workload; the sync follower takes over within the failover
// timeout; the old leader returns as a follower; the whole history of
// acknowledged operations is linearizable and every acknowledged unique
// write is on every node.
func TestFailoverAfterLeaderKillIsLinearizable(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--failover-timeout", "2s", "--sync-timeout", "1s", "--write-timeout", "3s")
	h := &opHistory{t0: time.Now()}
	var mu sync.Mutex
	var acked int64
	ctx, cancel := bg(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); runRegisterClient(ctx, c, i, h, &acked, &mu) }()
	}
	uniq := newHistory()
	uwg := uniq.writersVia(ctx, c, 4, "u")
	waitAcks(t, uniq, 300)
	c.node("n1").kill()
	c.waitFor("a new leader is appointed", 20*time.Second, func() bool {
		l, ep := leaderOf(c, "n1")
		return l != "" && ep >= 2
	})
	newLeader, epoch := leaderOf(c, "n1")
	if newLeader != "n2" {
		t.Errorf("new leader %s, want n2 (the synchronous follower)", newLeader)
	}
	waitAcks(t, uniq, uniq.total.Load()+300)
	c.node("n1").start()
	waitAcks(t, uniq, uniq.total.Load()+100)
	cancel()
	wg.Wait()
	uwg.Wait()
	st := c.node("n1").mustStatus()
	if st.Role != "follower" || st.Leader != newLeader {
		t.Fatalf("old leader after restart: role %s, leader %s", st.Role, st.Leader)
	}
	leader := c.node(newLeader)
	c.waitCaughtUp(leader, c.nodes...)
	for _, p := range c.nodes {
		uniq.check(t, p)
	}
	t.Logf("failover to %s at epoch %d; %d acknowledged register writes", newLeader, epoch, acked)
	checkLinearizable(t, h)
}

// TestPausedLeaderIsFencedOff: SIGSTOP the leader; after the failover the
// paused old leader wakes up believing it leads, and must neither
// acknowledge a write nor serve a stale linearizable read.
func TestPausedLeaderIsFencedOff(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--failover-timeout", "2s", "--sync-timeout", "1s", "--write-timeout", "3s")
	old := c.node("n1")
	rdb := old.redis()
	ctx := ctxT(t, 2*time.Minute)
	if err := rdb.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := old.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.waitFor("a new leader is appointed", 20*time.Second, func() bool {
		l, ep := leaderOf(c, "n1")
		return l != "" && ep >= 2
	})
	newLeader, _ := leaderOf(c, "n1")
	if err := c.node(newLeader).redis().Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Fatalf("write on the new leader: %v", err)
	}
	if err := old.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Right after waking, before or after it learns of the new epoch: a
	// write must fail and a read must not return the old value.
	for range 20 {
		if err := rdb.Set(ctx, "k", "zombie", 0).Err(); err == nil {
			t.Fatal("the deposed leader acknowledged a write")
		}
		if v, err := rdb.Get(ctx, "k").Result(); err == nil && v == "before" {
			t.Fatal("the deposed leader served a stale linearizable read")
		}
	}
	c.waitFor("the old leader follows the new one and has its write", 20*time.Second, func() bool {
		st, err := old.status()
		if err != nil || st.Role != "follower" || st.Leader != newLeader {
			return false
		}
		v, err := old.redis().Do(ctx, "GET", "k").Text()
		return err == nil && v == "after"
	})
}

// TestRegisterCheckerRejectsStaleRead keeps the checker honest: a read that
// returns an overwritten value after the overwrite was acknowledged is not
// linearizable, and the checker must say so.
func TestRegisterCheckerRejectsStaleRead(t *testing.T) {
	ms := time.Millisecond
	read := func(id int, got string, call, ret time.Duration) check.Op {
		op, _ := regRead(id, got, call, ret, "")
		return op
	}
	stale := []check.Op{
		regWrite(0, 1, 0, 10*ms, check.Ok, ""),
		regWrite(0, 2, 20*ms, 30*ms, check.Ok, ""),
		read(1, "1", 40*ms, 50*ms),
	}
	if res := check.Linearizability(&check.History{Ops: stale}, time.Minute); res.Verdict != "not linearizable" {
		t.Fatalf("checker accepted a stale read: %+v", res)
	}
	pending := []check.Op{
		regWrite(0, 1, 0, 10*ms, check.Ok, ""),
		regWrite(0, 2, 20*ms, 30*ms, check.Unknown, ""),
		read(1, "1", 40*ms, 50*ms),
		read(1, "2", 60*ms, 70*ms),
	}
	if res := check.Linearizability(&check.History{Ops: pending}, time.Minute); res.Verdict != "linearizable" {
		t.Fatalf("checker rejected an ambiguous write taking effect late: %+v", res)
	}
}

// TestPlannedSwitchoverLosesNothing: `replicant failover --to n3` under
// load hands leadership over; every acknowledged write survives and the
// register history stays linearizable.
func TestPlannedSwitchoverLosesNothing(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2,n3)", "--write-timeout", "3s")
	h := &opHistory{t0: time.Now()}
	var mu sync.Mutex
	var acked int64
	ctx, cancel := bg(t)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); runRegisterClient(ctx, c, i, h, &acked, &mu) }()
	}
	uniq := newHistory()
	uwg := uniq.writersVia(ctx, c, 4, "s")
	waitAcks(t, uniq, 300)
	// Sent to a follower: redirected to the leader.
	out, err := exec.Command(binary, "failover", "--to", "n3", "--addr", c.node("n2").HTTP).CombinedOutput()
	if err != nil {
		t.Fatalf("failover --to n3: %v: %s", err, out)
	}
	c.waitFor("n3 leads", 10*time.Second, func() bool {
		st, err := c.node("n3").status()
		return err == nil && st.Role == "leader"
	})
	waitAcks(t, uniq, uniq.total.Load()+300)
	cancel()
	wg.Wait()
	uwg.Wait()
	c.waitFor("n1 follows n3", 10*time.Second, func() bool {
		st, err := c.node("n1").status()
		return err == nil && st.Role == "follower" && st.Leader == "n3"
	})
	c.waitCaughtUp(c.node("n3"), c.nodes...)
	for _, p := range c.nodes {
		uniq.check(t, p)
		if st := p.mustStatus(); st.RolledBack > 0 {
			t.Errorf("%s rolled back %d entries in a planned switchover", p.ID, st.RolledBack)
		}
	}
	checkLinearizable(t, h)
}
