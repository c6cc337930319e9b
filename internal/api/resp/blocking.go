package resp

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Blocking commands on keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP;
// the sorted sets' BZPOPMIN, BZPOPMAX and BZMPOP are built the same way).
//
// A blocking command is an ordinary write command that may have to wait:
// it calls client.blockOnKeys with its keys, its timeout and a try
// function. try makes one non-blocking attempt — one c.write on the
// leader's write path, so a pop is one log entry like any other write —
// and reports whether it answered the client (it popped, or it answered
// an error such as WRONGTYPE or READONLY). Until one try answers, the
// client waits, and tries again whenever a write on this node may have
// made one of its keys ready.
//
// Waking: every path that completes a write calls Server.keysWritten with
// the keys it wrote once the write is applied: handle for every write
// command, EXEC and scripts for the write commands that ran inside them
// (execScope.ran records them). Writes are only ever
// made on the leader and reach it through this server (the HTTP API does
// not write collections), so this sees every write that can make a key
// ready. keysWritten serves the clients blocked on each key in the order
// they blocked (Redis's FIFO): it wakes the first, waits for its try, and
// goes on to the next while tries succeed, stopping at the first that
// finds nothing. Only then does the writer's command return, so, as in
// Redis, a client that pushed and then pops sees the blocked clients
// served first.
//
// A wait ends, besides a successful try, at the timeout (0: never), by
// CLIENT UNBLOCK (TIMEOUT answers as the timeout does, ERROR answers
// -UNBLOCKED), when this node stops being the leader (-UNBLOCKED, as
// Redis answers clients blocked on a master that became a replica), and
// when the client goes away or the server stops. Inside MULTI/EXEC and
// scripts (c.exec or c.noBlock set) nothing waits: a try that does not
// answer ends the call at once, and the command answers as Redis does
// there.

// blockResult is how blockOnKeys ended.
type blockResult int

const (
	// blockServed: a try answered the client.
	blockServed blockResult = iota
	// blockTimedOut: the timeout passed, or CLIENT UNBLOCK ... TIMEOUT;
	// the command answers its timeout reply (a null array).
	blockTimedOut
	// blockDenied: the client may not block here (inside MULTI/EXEC or a
	// script) and the try found nothing; the command answers as Redis
	// does there.
	blockDenied
	// blockEnded: already answered (CLIENT UNBLOCK ... ERROR, leadership
	// lost), or the client is gone: nothing more to answer.
	blockEnded
)

// blockCheck is how often a blocked client looks whether it is still
// connected and whether the node still leads: neither is announced to
// the connection's goroutine (a hang-up is only seen by reading, and the
// engine has no leadership notification), so both are polled, as WAIT
// polls for a departed client.
const blockCheck = 250 * time.Millisecond

// msgStateChanged is Redis's answer to clients blocked on a master that
// becomes a replica.
const msgStateChanged = "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"

// blockOnKeys runs a blocking command's attempts (see the comment above):
// try at once and, until a try answers, again whenever a write may have
// made one of keys ready. timeout 0 waits without limit.
func (c *client) blockOnKeys(keys [][]byte, timeout time.Duration, try func() bool) blockResult {
	if c.exec != nil || c.noBlock {
		if try() {
			return blockServed
		}
		return blockDenied
	}
	// The replies of the commands before this one go out now: the client
	// may wait for them before it sends what will wake this one.
	_ = c.conn.flush()
	reg := &c.s.blocks
	// Registered before the first try, so that a write completing while
	// it runs wakes it again instead of being missed.
	w := reg.add(keys)
	var pend []chan wakeOutcome // writers waiting for the running try
	outcome := wakeGone
	defer func() {
		// However the call ends (a panicking try included), no writer
		// is left waiting for this client.
		reg.remove(w, outcome)
		answerWakes(pend, outcome)
	}()
	if try() {
		outcome = wakeServed
		return blockServed
	}
	bctx, done := c.blockOn(c.ctx)
	defer done()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	tick := time.NewTicker(blockCheck)
	defer tick.Stop()
	for {
		select {
		case <-w.wake:
			// The writes that woke it completed before this try starts,
			// so what it finds answers them; later wakes stay pending.
			pend = reg.take(w)
			if try() {
				outcome = wakeServed
				return blockServed
			}
			answerWakes(pend, wakeEmpty)
			pend = nil
		case <-expired:
			return blockTimedOut
		case <-bctx.Done():
			if c.ctx.Err() != nil {
				return blockEnded // closing: nobody to answer
			}
			if done() == "error" {
				c.err(msgUnblocked)
				return blockEnded
			}
			return blockTimedOut
		case <-tick.C:
			if !c.s.b.IsLeader() {
				c.err(msgStateChanged)
				return blockEnded
			}
			if c.rd != nil && c.rd.peerGone() {
				return blockEnded
			}
		}
	}
}

// keysWritten wakes the clients blocked on keys, which a write that just
// completed on this node wrote, and returns once each key's blocked
// clients were served as far as its contents allow. It costs one atomic
// load when nobody blocks.
func (s *Server) keysWritten(keys [][]byte) {
	if s.blocks.waiting.Load() == 0 {
		return
	}
	for i, k := range keys {
		dup := false
		for _, p := range keys[:i] {
			dup = dup || string(p) == string(k)
		}
		if !dup {
			s.blocks.serve(string(k))
		}
	}
}

// neverReady names the write commands that cannot make a key ready for a
// blocked client (they only remove), so completing them wakes nobody.
var neverReady = map[string]bool{
	"lpop": true, "rpop": true, "lrem": true, "ltrim": true, "lset": true,
	"blpop": true, "brpop": true, "lmpop": true, "blmpop": true,
	"del": true, "unlink": true, "getdel": true,
}

// wakeOutcome is what a woken client's try did, as the writer serving a
// key learns it.
type wakeOutcome int

const (
	wakeServed wakeOutcome = iota // it took something: wake the next
	wakeEmpty                     // it found nothing: stop
	wakeGone                      // it stopped waiting: wake the next
)

// blockRegistry holds the clients blocked on keys, per key in the order
// they blocked.
type blockRegistry struct {
	// waiting counts the registered clients (keysWritten's fast path).
	waiting atomic.Int64
	mu      sync.Mutex
	queues  map[string]*blockQueue
}

// blockQueue is one key's blocked clients.
type blockQueue struct {
	waiters list.List // of *blockWaiter, oldest first
	// serving: a writer is serving this key now; dirty: another write
	// completed meanwhile, so an empty try does not end the serving.
	serving, dirty bool
}

// blockWaiter is one blocked client.
type blockWaiter struct {
	at map[string]*list.Element // its place in each key's queue
	// wake is signalled when pending gains an entry.
	wake chan struct{}
	// pending are the writers waiting for this client's next try (under
	// the registry's mu).
	pending []chan wakeOutcome
}

func answerWakes(pend []chan wakeOutcome, o wakeOutcome) {
	for _, ch := range pend {
		ch <- o // buffered: never blocks
	}
}

// add registers a client blocked on keys.
func (r *blockRegistry) add(keys [][]byte) *blockWaiter {
	w := &blockWaiter{at: make(map[string]*list.Element, len(keys)), wake: make(chan struct{}, 1)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queues == nil {
		r.queues = map[string]*blockQueue{}
	}
	for _, k := range keys {
		ks := string(k)
		if _, dup := w.at[ks]; dup {
			continue
		}
		q := r.queues[ks]
		if q == nil {
			q = &blockQueue{}
			r.queues[ks] = q
		}
		w.at[ks] = q.waiters.PushBack(w)
	}
	r.waiting.Add(1)
	return w
}

// take returns the writers waiting for w's next try.
func (r *blockRegistry) take(w *blockWaiter) []chan wakeOutcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := w.pending
	w.pending = nil
	return p
}

// remove unregisters w (once) and answers the writers still waiting for
// it.
func (r *blockRegistry) remove(w *blockWaiter, o wakeOutcome) {
	r.mu.Lock()
	if w.at == nil {
		r.mu.Unlock()
		return
	}
	for k, e := range w.at {
		q := r.queues[k]
		q.waiters.Remove(e)
		if q.waiters.Len() == 0 && !q.serving {
			delete(r.queues, k)
		}
	}
	w.at = nil
	p := w.pending
	w.pending = nil
	r.mu.Unlock()
	r.waiting.Add(-1)
	answerWakes(p, o)
}

// serve wakes key's blocked clients one at a time, oldest first, while
// their tries succeed. A write completing while another writer serves the
// key only marks it dirty: that writer goes on.
func (r *blockRegistry) serve(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[key]
	if q == nil {
		return
	}
	if q.serving {
		q.dirty = true
		return
	}
	q.serving = true
	for {
		q.dirty = false
		front := q.waiters.Front()
		if front == nil {
			break
		}
		w := front.Value.(*blockWaiter)
		ch := make(chan wakeOutcome, 1)
		w.pending = append(w.pending, ch)
		select {
		case w.wake <- struct{}{}:
		default: // already signalled
		}
		r.mu.Unlock()
		o := <-ch
		r.mu.Lock()
		if o == wakeEmpty && !q.dirty {
			break
		}
	}
	q.serving = false
	if q.waiters.Len() == 0 {
		delete(r.queues, key)
	}
}
