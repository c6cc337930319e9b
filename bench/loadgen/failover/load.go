package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// target is where writes go: a leader's id and RESP address. gen changes
// every time the target is invalidated or replaced, so that many writers
// failing against the same stale target cause one rediscovery, not many.
type target struct {
	id, addr string
	gen      uint64
}

// leaderCache is the writers' shared view of the leader. One goroutine
// (run) rediscovers it after a writer reports a failure; polling once for
// all writers keeps the status traffic small on a 2-core machine where the
// nodes being measured need the CPU.
type leaderCache struct {
	cl *cluster

	mu    sync.Mutex
	cur   target        // addr == "": unknown, being discovered
	ready chan struct{} // closed when cur becomes known
	kick  chan struct{} // wakes run after an invalidation

	discoveries atomic.Int64
}

// minPoll spaces status polls while the leader is unknown or keeps turning
// out dead. It bounds the measurement's resolution: a new leader is found
// at most about this much (plus one status round trip) after it is named.
const minPoll = 20 * time.Millisecond

func newLeaderCache(cl *cluster) *leaderCache {
	return &leaderCache{cl: cl, ready: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// get returns the current target, waiting while it is being discovered.
func (lc *leaderCache) get(ctx context.Context) (target, error) {
	for {
		lc.mu.Lock()
		cur, ready := lc.cur, lc.ready
		lc.mu.Unlock()
		if cur.addr != "" {
			return cur, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return target{}, ctx.Err()
		}
	}
}

// invalidate reports that a write to t failed. Only the first report for a
// generation counts.
func (lc *leaderCache) invalidate(t target) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.cur.gen != t.gen || lc.cur.addr == "" {
		return
	}
	lc.cur = target{gen: t.gen + 1}
	lc.ready = make(chan struct{})
	select {
	case lc.kick <- struct{}{}:
	default:
	}
}

// run discovers the leader whenever it is unknown, until ctx ends.
func (lc *leaderCache) run(ctx context.Context) {
	var last time.Time
	for {
		lc.mu.Lock()
		known := lc.cur.addr != ""
		lc.mu.Unlock()
		if known {
			select {
			case <-lc.kick:
				continue
			case <-ctx.Done():
				return
			}
		}
		if wait := minPoll - time.Since(last); wait > 0 {
			if sleepCtx(ctx, wait) != nil {
				return
			}
		}
		last = time.Now()
		lc.discoveries.Add(1)
		id, addr, err := lc.cl.discoverLeader(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		lc.mu.Lock()
		lc.cur = target{id: id, addr: addr, gen: lc.cur.gen + 1}
		close(lc.ready)
		lc.mu.Unlock()
	}
}

// roundWatch catches the first write acknowledged by a node other than the
// one just killed.
type roundWatch struct {
	armed atomic.Bool

	mu     sync.Mutex
	killed string
	first  time.Time
	node   string
	done   chan struct{}
}

// arm starts watching for an acknowledgement from any node but killed. Call
// it right before the kill: until then only the old leader acknowledges.
func (w *roundWatch) arm(killed string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.killed, w.first, w.node, w.done = killed, time.Time{}, "", make(chan struct{})
	w.armed.Store(true)
	return w.done
}

// observe is called by writers after every acknowledged write.
func (w *roundWatch) observe(node string, at time.Time) {
	if !w.armed.Load() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed.Load() || node == w.killed {
		return
	}
	w.first, w.node = at, node
	w.armed.Store(false)
	close(w.done)
}

// result returns the first acknowledgement after arm; ok is false if none.
func (w *roundWatch) result() (at time.Time, node string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first, w.node, w.node != ""
}

func (w *roundWatch) disarm() { w.armed.Store(false) }

// load is a set of closed-loop writers: each sends a SET of a new unique
// key and waits for its reply before sending the next.
type load struct {
	cache     *leaderCache
	watch     *roundWatch // nil outside the kill rounds
	prefix    string
	valueSize int

	ops  atomic.Int64 // acknowledged writes
	errs atomic.Int64 // failed attempts (the same key is retried)

	mu      sync.Mutex
	kinds   map[string]*errKind
	lat     []uint32 // acknowledged write latencies in µs, all writers
	started time.Time
}

// errKind counts failed writes of one kind, with the first one's message.
type errKind struct {
	Count int64  `json:"count"`
	First string `json:"first"`
}

// errorKind groups write errors by what they say about the cluster: the
// messages themselves differ in ports and addresses.
func errorKind(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	case errors.Is(err, io.EOF), strings.Contains(msg, "connection reset"), strings.Contains(msg, "broken pipe"):
		return "connection lost"
	case strings.HasPrefix(msg, "READONLY") && strings.Contains(msg, "leader unknown"):
		return "READONLY leader unknown"
	case strings.HasPrefix(msg, "READONLY"):
		return "READONLY"
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(msg, "timeout"):
		return "timeout"
	}
	if f := strings.Fields(msg); len(f) > 0 && strings.ToUpper(f[0]) == f[0] {
		return f[0] // a RESP error kind: ERR, LOADING, TRYAGAIN, ...
	}
	return "other"
}

func (ld *load) recordErr(t target, err error) {
	ld.errs.Add(1)
	k := errorKind(err)
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if ld.kinds == nil {
		ld.kinds = map[string]*errKind{}
	}
	ek := ld.kinds[k]
	if ek == nil {
		ek = &errKind{First: fmt.Sprintf("+%.3fs %s (%s): %v", time.Since(ld.started).Seconds(), t.id, t.addr, err)}
		ld.kinds[k] = ek
	}
	ek.Count++
}

// run starts n writers and returns a function that stops them and waits.
func (ld *load) run(ctx context.Context, n int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	ld.started = time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld.writer(ctx, i)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

func (ld *load) writer(ctx context.Context, i int) {
	clients := map[string]*redis.Client{}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	val := make([]byte, ld.valueSize)
	_, _ = rand.Read(val)
	lat := make([]uint32, 0, 1<<14)
	defer func() {
		ld.mu.Lock()
		ld.lat = append(ld.lat, lat...)
		ld.mu.Unlock()
	}()
	for seq := 0; ; {
		t, err := ld.cache.get(ctx)
		if err != nil {
			return
		}
		rc := clients[t.addr]
		if rc == nil {
			// No retries in the client, not even of a dial (its default is 5
			// dials 100 ms apart): every failure must reach this loop at
			// once, which rediscovers the leader.
			rc = redis.NewClient(&redis.Options{
				Addr: t.addr, PoolSize: 1, MaxRetries: -1, DialerRetries: 1, Protocol: 2, DisableIdentity: true,
				DialTimeout: time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second,
				ContextTimeoutEnabled: true,
			})
			clients[t.addr] = rc
		}
		key := fmt.Sprintf("%s:%d:%d", ld.prefix, i, seq)
		// Longer than the server's default --write-timeout (10s), so a
		// write that waits for a leader fails on the server's terms.
		octx, ocancel := context.WithTimeout(ctx, 15*time.Second)
		start := time.Now()
		err = rc.Set(octx, key, val, 0).Err()
		end := time.Now()
		ocancel()
		if err == nil {
			seq++
			ld.ops.Add(1)
			lat = append(lat, uint32(min(end.Sub(start).Microseconds(), 1<<32-1)))
			if ld.watch != nil {
				ld.watch.observe(t.id, end)
			}
			continue
		}
		if ctx.Err() != nil {
			return // stopping, not a failed write
		}
		ld.recordErr(t, err)
		ld.cache.invalidate(t)
		// A fresh client next time: after failed dials go-redis's pool
		// answers with the remembered dial error, without dialling, until
		// its own once-a-second probe succeeds; that would hide a node
		// that came back.
		rc.Close()
		delete(clients, t.addr)
		// A dead leader refuses connections at once: without a pause every
		// writer would spin on it until the new epoch.
		if sleepCtx(ctx, 10*time.Millisecond) != nil {
			return
		}
	}
}

// errorKinds returns a copy of the failed-write counts by kind.
func (ld *load) errorKinds() map[string]errKind {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	out := make(map[string]errKind, len(ld.kinds))
	for k, v := range ld.kinds {
		out[k] = *v
	}
	return out
}
