package leaderless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// Node is what the leaderless engine needs from its node: a local log
// that commits at its own fsync, the cluster's membership (from the
// control plane) and the peer transport.
type Node interface {
	ID() string
	LocalWrite(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error)
	LocalRead() engine.Reader
	// LocalChanges calls fn, in order, for every operation of this
	// node's own log entries from..to. It fails when the log no longer
	// holds from (retention): the caller then scans instead.
	LocalChanges(ctx context.Context, from, to uint64, fn func(Change) error) error
	Peers() map[string]string
	MemberAddrs(id string) (resp, http string)
	PeerClient(addr string) (pb.PeerClient, error)
	Settings() engine.Settings
	CheckKey(key []byte) error
	CheckValue(size int) error
	Metrics() *engine.Metrics
	// RemoveMember takes a member out of the control plane.
	RemoveMember(ctx context.Context, id string) error
	// Joining returns the members not read from yet (control's
	// Member.Joining), and whether this node has reported a handoff for
	// the current membership.
	Joining() (joining []string, handedOff bool)
	// ReportHandoff records in the control plane that this node finished
	// handing off its keys for the membership members.
	ReportHandoff(ctx context.Context, members []string) error
}

// Config configures the engine.
type Config struct {
	Node Node
	// Replicas is N (default 3).
	Replicas int
	Logger   *slog.Logger
	// Timeout bounds one replica call (default 2 s).
	Timeout time.Duration
	// SloppyQuorum lets a write that cannot reach W of a key's replicas
	// count stand-ins (the next nodes on the ring), which keep a hint and
	// hand the write over when the replica returns.
	SloppyQuorum bool
	// AntiEntropyInterval is how often each range is compared with its
	// other replicas (default 30 s).
	AntiEntropyInterval time.Duration
	// NoReadRepair turns read repair off (--read-repair=false): stale
	// replicas then catch up only through anti-entropy and hints.
	NoReadRepair bool
	// TombstoneGrace is how long a delete's tombstone is kept (default
	// 10 min): a replica that returns within it cannot resurrect the key.
	TombstoneGrace time.Duration
	// HintMaxAge is how long a stand-in keeps a hint it could not hand
	// over (default 3 h); older hints are dropped.
	HintMaxAge time.Duration
}

// Engine is leaderless mode's engine.Engine: every node coordinates reads
// and writes over the N replicas of each key.
type Engine struct {
	cfg     Config
	node    Node
	n       int
	log     *slog.Logger
	timeout time.Duration
	started time.Time

	mu   sync.Mutex
	ring *Ring
	// readRing is the ring without the joining members while a join is
	// in progress (nil otherwise): reads use it, writes reach W on both.
	readRing *Ring
	health   map[string]*peerHealth

	clockMu sync.Mutex
	clock   *crdt.Clock

	tombstonesHeld atomic.Int64 // keys held only as tombstones, as of the last scan
	ae             antiEntropy  // anti-entropy state (antientropy.go)

	// handoff moves keys to new replicas when the membership changes;
	// base is the context it runs in (ended by Run's end).
	handoff    handoffState
	base       context.Context
	baseCancel context.CancelFunc

	hints hintStore // the hints this node keeps as a stand-in (hints.go)
}

type peerHealth struct {
	lastOK, lastFail time.Time
	err              string
}

var (
	_ engine.Engine        = (*Engine)(nil)
	_ engine.SiblingReader = (*Engine)(nil)
)

// New creates the engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 3
	}
	if cfg.Replicas < 1 {
		return nil, fmt.Errorf("leaderless: --replicas %d: want at least 1", cfg.Replicas)
	}
	if err := crdt.ValidID(cfg.Node.ID()); err != nil {
		return nil, fmt.Errorf("leaderless: node id: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.AntiEntropyInterval <= 0 {
		cfg.AntiEntropyInterval = 30 * time.Second
	}
	if cfg.TombstoneGrace <= 0 {
		cfg.TombstoneGrace = 10 * time.Minute
	}
	if cfg.HintMaxAge <= 0 {
		cfg.HintMaxAge = 3 * time.Hour
	}
	// A hint older than the tombstone grace could hand over a value whose
	// delete the replicas have already forgotten: it would come back.
	cfg.HintMaxAge = min(cfg.HintMaxAge, cfg.TombstoneGrace)
	e := &Engine{cfg: cfg, node: cfg.Node, n: cfg.Replicas, log: cfg.Logger, timeout: cfg.Timeout, started: time.Now(),
		health: map[string]*peerHealth{}, clock: crdt.NewClock(0)}
	r, err := NewRing(nil, DefaultVNodes)
	if err != nil {
		return nil, err
	}
	e.ring = r
	e.base, e.baseCancel = context.WithCancel(context.Background())
	if m := cfg.Node.Metrics(); m != nil && m.Registry != nil {
		if err := m.Registry.Register(e.tombstoneCollector()); err != nil {
			return nil, fmt.Errorf("leaderless: metrics: %w", err)
		}
		if err := m.Registry.Register(&hintCollector{e: e}); err != nil {
			return nil, fmt.Errorf("leaderless: metrics: %w", err)
		}
	}
	return e, nil
}

// MembershipChanged rebuilds the ring from the control plane's members.
func (e *Engine) MembershipChanged() {
	peers := e.node.Peers()
	ids := make([]string, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	joining, handedOff := e.node.Joining()
	e.mu.Lock()
	old := e.ring
	r := old
	if !slices.Equal(ids, old.Members()) {
		var err error
		if r, err = NewRing(ids, DefaultVNodes); err != nil {
			e.mu.Unlock()
			e.log.Error("ring", "members", ids, "err", err)
			return
		}
		e.ring = r
	}
	if len(joining) == 0 {
		e.readRing = nil
	} else if serving := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(joining, id) }); e.readRing == nil || !slices.Equal(e.readRing.Members(), serving) {
		rr, err := NewRing(serving, DefaultVNodes)
		if err != nil {
			e.log.Error("ring without joining members", "members", serving, "err", err)
		} else {
			e.readRing = rr
		}
	}
	readRing := e.readRing
	e.mu.Unlock()
	if !slices.Contains(ids, e.node.ID()) {
		// This node left (it handed its keys over first, rebalance.go)
		// or was removed: it has nothing to hand off any more.
		return
	}
	switch {
	case r != old && len(old.Members()) > 0:
		// Not the first membership this node learns (at start-up):
		// keys move to the nodes that became their replicas.
		e.log.Info("ring changed: moving keys to their new replicas", "from", old.Members(), "to", r.Members())
		e.startHandoff(e.base, old, r)
	case !handedOff && !e.handoff.runningFor(r):
		// A join in progress that this node has not handed off for: it
		// started (or restarted) during it, so its previous ring is the
		// ring without the joining members.
		from := readRing
		if from == nil {
			from = r
		}
		e.startHandoff(e.base, from, r)
	}
}

func (e *Engine) currentRing() *Ring {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ring
}

// readTargets returns the replicas a read of key asks: by the ring
// without the joining members while a join is in progress.
func (e *Engine) readTargets(key []byte) []string {
	e.mu.Lock()
	r := e.ring
	if e.readRing != nil {
		r = e.readRing
	}
	e.mu.Unlock()
	return r.Preference(key, e.n)
}

// jointWrite returns, while members join, the tally of a write of key
// that must reach W both of its replicas with them and without them (nil
// when no member is joining).
func (e *Engine) jointWrite(key []byte, q Quorum) *JointWriteTally {
	e.mu.Lock()
	r, rr := e.ring, e.readRing
	e.mu.Unlock()
	if rr == nil {
		return nil
	}
	return NewJointWriteTally(q, r.Preference(key, e.n), rr.Preference(key, e.n))
}

// Run runs the background work until ctx ends: health probes, tombstone
// collection.
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer e.baseCancel() // stops a handoff in flight
	wg.Add(1)
	go func() { defer wg.Done(); e.tombstoneLoop(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); e.antiEntropyLoop(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); e.hintLoop(ctx) }()
	e.probeLoop(ctx)
}

// probeLoop probes every member's health once a second until ctx ends.
func (e *Engine) probeLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for id := range e.node.Peers() {
			if id == e.node.ID() {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, e.timeout)
			_, _ = e.call(pctx, id, &pb.ReplicaRequest{Op: pb.ReplicaRequest_FETCH})
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Engine) now() crdt.Timestamp {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.clock.Now(time.Now().UnixMilli())
}

// observe raises the node's clock to at least seen's time (a hybrid
// logical clock receiving a stamp), so that every write it stamps later
// is newer than what it has seen: a collection entry or clear stamped by
// another node's faster clock included.
func (e *Engine) observe(seen crdt.Stamp) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.clock.Restore(seen.Time)
}

// nowAfter is now, after observing seen.
func (e *Engine) nowAfter(seen crdt.Stamp) crdt.Timestamp {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.clock.Restore(seen.Time)
	return e.clock.Now(time.Now().UnixMilli())
}

// quorum resolves a request's quorum from ctx.
func (e *Engine) quorum(ctx context.Context) (Quorum, error) {
	q := DefaultQuorum(e.n)
	s := engine.QuorumFrom(ctx)
	var err error
	if s.W != "" {
		if q.W, err = ParseLevel(s.W, e.n); err != nil {
			return q, fmt.Errorf("%w: W: %v", engine.ErrInvalid, err)
		}
	}
	if s.R != "" {
		if q.R, err = ParseLevel(s.R, e.n); err != nil {
			return q, fmt.Errorf("%w: R: %v", engine.ErrInvalid, err)
		}
	}
	return q, nil
}

// call runs one replica operation on node id (locally when it is this
// node) and records the node's health.
func (e *Engine) call(ctx context.Context, id string, req *pb.ReplicaRequest) (*pb.ReplicaResponse, error) {
	req.From = e.node.ID()
	var resp *pb.ReplicaResponse
	var err error
	if id == e.node.ID() {
		resp, err = e.HandleReplica(ctx, req)
	} else {
		addr, ok := e.node.Peers()[id]
		if !ok || addr == "" {
			err = fmt.Errorf("no address for %s", id)
		} else {
			var cl pb.PeerClient
			if cl, err = e.node.PeerClient(addr); err == nil {
				cctx, cancel := context.WithTimeout(ctx, e.timeout)
				resp, err = cl.Replica(cctx, req)
				cancel()
			}
		}
	}
	if id != e.node.ID() {
		e.mu.Lock()
		h := e.health[id]
		if h == nil {
			h = &peerHealth{}
			e.health[id] = h
		}
		if err == nil {
			h.lastOK = time.Now()
		} else if ctx.Err() == nil {
			h.lastFail, h.err = time.Now(), err.Error()
		}
		e.mu.Unlock()
	}
	return resp, err
}

// readKey reads key from R of its replicas and merges the answers. It
// returns once R answered; the remaining answers are awaited in the
// background, and every replica whose answer lacks part of the merge gets
// it (read repair).
//
// repair is false for the reads a write command makes before writing: the
// write's fan-out stores the merge on every replica anyway, and repairing
// too would store it twice.
func (e *Engine) readKey(ctx context.Context, key []byte, q Quorum, repair bool) (State, error) {
	targets := e.readTargets(key)
	if len(targets) == 0 {
		return State{}, errors.New("leaderless: the ring has no members yet")
	}
	tally := NewReadTally(q, len(targets))
	type answer struct {
		id  string
		st  State
		err error
	}
	answers := make(chan answer, len(targets))
	rctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	for _, id := range targets {
		go func(id string) {
			resp, err := e.call(rctx, id, &pb.ReplicaRequest{Op: pb.ReplicaRequest_FETCH, Key: key})
			var st State
			if err == nil {
				st, err = DecodeState(resp.GetState())
			}
			answers <- answer{id, st, err}
		}(id)
	}
	got := 0
	states := map[string]State{}
	finish := func() {
		// The rest of the answers and read repair, off the client's path.
		go func(got int) {
			defer cancel()
			for ; got < len(targets); got++ {
				a := <-answers
				if a.err != nil {
					tally.Fail(a.id, a.err)
				} else {
					tally.Reply(a.id, a.st.Sibs)
					states[a.id] = a.st
				}
			}
			if repair && !e.cfg.NoReadRepair {
				e.repair(key, states)
			}
		}(got)
	}
	for got < len(targets) {
		select {
		case <-ctx.Done():
			finish()
			return State{}, ctx.Err()
		case a := <-answers:
			got++
			if a.err != nil {
				tally.Fail(a.id, a.err)
			} else {
				tally.Reply(a.id, a.st.Sibs)
				states[a.id] = a.st
			}
		}
		switch tally.Outcome() {
		case Succeeded:
			merged := mergeAll(states)
			finish()
			return merged, nil
		case Failed:
			finish()
			return State{}, tally.Err()
		}
	}
	finish()
	return mergeAll(states), nil
}

func mergeAll(states map[string]State) State {
	var m State
	for _, s := range states {
		m = m.Merge(s)
	}
	return m
}

// repair sends the merge of the answers to every replica that answered
// with less.
func (e *Engine) repair(key []byte, states map[string]State) {
	if len(states) < 2 {
		return
	}
	merged := mergeAll(states)
	enc := AppendState(nil, merged)
	for id, st := range states {
		if st.Equal(merged) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
		if _, err := e.call(ctx, id, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: key, State: enc}); err != nil {
			e.log.Debug("read repair", "key", string(key), "replica", id, "err", err)
		}
		cancel()
	}
}

// writeKey makes one replica of key coordinate the write (first that
// answers, in preference order: it stamps the write with its own dots,
// from its own durable state, so no dot is ever issued twice), then stores
// the result on the other replicas until W have it.
func (e *Engine) writeKey(ctx context.Context, key []byte, q Quorum, req *pb.ReplicaRequest) (*pb.ReplicaResponse, error) {
	joint := e.jointWrite(key, q)
	if e.cfg.SloppyQuorum && joint == nil {
		// Stand-ins for replicas that fail: hints.go. While members
		// join, writes count on both rings' replicas instead.
		return e.writeSloppy(ctx, key, q, req)
	}
	var targets []string
	var tally writeCounter
	if joint != nil {
		targets, tally = joint.Targets(), joint
	} else {
		targets = e.currentRing().Preference(key, e.n)
		tally = NewWriteTally(q, len(targets))
	}
	if len(targets) == 0 {
		return nil, errors.New("leaderless: the ring has no members yet")
	}
	if tally.Outcome() == Failed {
		return nil, tally.Err() // fewer replicas than W: write nowhere
	}
	var first *pb.ReplicaResponse
	var rest []string
	// The coordinating replica: this node if it is one, else the first
	// that answers.
	order := append([]string(nil), targets...)
	for i, id := range order {
		if id == e.node.ID() {
			order[0], order[i] = order[i], order[0]
		}
	}
	for i, id := range order {
		req.Key = key
		resp, err := e.call(ctx, id, req)
		if err != nil {
			tally.Fail(id, err)
			if tally.Outcome() == Failed {
				// W can no longer be reached: write nowhere rather than
				// on fewer replicas than the client asked for.
				return nil, tally.Err()
			}
			continue
		}
		if resp.Refusal != "" {
			return resp, nil
		}
		tally.Ack(id)
		first = resp
		rest = order[i+1:]
		break
	}
	if first == nil {
		return nil, tally.Err() // every replica refused to coordinate: W cannot be reached
	}
	if tally.Outcome() == Succeeded && len(rest) == 0 {
		return first, nil
	}
	type ack struct {
		id  string
		err error
	}
	acks := make(chan ack, len(rest))
	sctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	for _, id := range rest {
		go func(id string) {
			_, err := e.call(sctx, id, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: key, State: first.State})
			acks <- ack{id, err}
		}(id)
	}
	for i := 0; i < len(rest); i++ {
		if tally.Outcome() != Pending {
			break
		}
		select {
		case <-ctx.Done():
			cancel()
			return nil, ctx.Err()
		case a := <-acks:
			if a.err != nil {
				tally.Fail(a.id, a.err)
			} else {
				tally.Ack(a.id)
			}
		}
	}
	// Stores still in flight go on after the outcome (every replica
	// should get the write); they end within the timeout.
	time.AfterFunc(e.timeout, cancel)
	if tally.Outcome() == Succeeded {
		return first, nil
	}
	if err := tally.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("leaderless: write of %q undecided after every replica answered", key)
}

// Write runs a client command: its reads are quorum reads, its writes go
// out after it returns (a command that fails writes nothing). A command
// that writes several keys writes each on its own replicas: leaderless
// mode has no atomicity across keys.
func (e *Engine) Write(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	q, err := e.quorum(ctx)
	if err != nil {
		return engine.Token{}, err
	}
	t := &txn{e: e, ctx: ctx, q: q, nowMs: time.Now().UnixMilli(), reads: map[string]State{}}
	if err := fn(t); err != nil {
		return engine.Token{}, err
	}
	if t.err != nil {
		return engine.Token{}, t.err
	}
	for _, w := range t.writes {
		// The state sent is what the command read (the write's fan-out
		// repairs the replicas that lack it) joined with the command's
		// new collection state.
		st := t.reads[string(w.key)]
		if w.coll != nil {
			st.Coll = st.Coll.Join(*w.coll)
		}
		if !w.str {
			// A collection write alone: every replica joins the new
			// state into its own (STORE); no dot is issued, the
			// entries carry the command's stamps.
			req := &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, State: AppendState(nil, st)}
			if _, err := e.writeKey(ctx, w.key, q, req); err != nil {
				return engine.Token{}, err
			}
			continue
		}
		// The write supersedes what the command read just before it, or,
		// when the client names a context (REPLICANT.CONTEXT), exactly
		// what that context saw: writes it did not see stay as siblings.
		causal := t.reads[string(w.key)].Sibs.Context()
		if c, ok := engine.CausalContextFrom(ctx); ok {
			v, err := crdt.ParseVector(c)
			if err != nil {
				return engine.Token{}, fmt.Errorf("%w: REPLICANT.CONTEXT %q: %v", engine.ErrInvalid, c, err)
			}
			causal = v
		}
		req := &pb.ReplicaRequest{Op: pb.ReplicaRequest_UPDATE, State: AppendState(nil, st),
			Value: w.value, Deleted: w.deleted, ExpireAt: w.expireAt, Context: causal.String()}
		if _, err := e.writeKey(ctx, w.key, q, req); err != nil {
			return engine.Token{}, err
		}
	}
	return engine.Token{}, nil
}

// Read returns a reader whose every Get is a quorum read.
func (e *Engine) Read(ctx context.Context, c engine.Consistency, floor engine.Token) (engine.Reader, error) {
	q, err := e.quorum(ctx)
	if err != nil {
		return nil, err
	}
	return &reader{e: e, ctx: ctx, q: q, nowMs: time.Now().UnixMilli()}, nil
}

// Siblings returns key's causal context and live sibling values, from a
// quorum read.
func (e *Engine) Siblings(ctx context.Context, key []byte) (string, [][]byte, error) {
	if isReserved(key) {
		return "", nil, nil // the node's own bookkeeping, never a user key
	}
	q, err := e.quorum(ctx)
	if err != nil {
		return "", nil, err
	}
	st, err := e.readKey(ctx, key, q, true)
	if err != nil {
		return "", nil, err
	}
	return st.Sibs.Context().String(), st.Siblings(time.Now().UnixMilli()), nil
}

// Token: leaderless reads are not ordered by one log; there is no token.
func (e *Engine) Token() engine.Token { return engine.Token{} }

// IsLeader: every node takes writes.
func (e *Engine) IsLeader() bool { return true }

// WaitReplicas: a leaderless write already waited for W replicas.
func (e *Engine) WaitReplicas(ctx context.Context, lsn uint64, want int) (int, error) {
	return 0, &engine.UnsupportedError{Command: "WAIT", Mode: engine.ModeLeaderless,
		Why: "a write is acknowledged once W replicas stored it; choose W with REPLICANT.QUORUM"}
}

func (e *Engine) CheckKey(key []byte) error { return e.node.CheckKey(key) }
func (e *Engine) CheckValue(size int) error { return e.node.CheckValue(size) }
func (e *Engine) Settings() engine.Settings { return e.node.Settings() }
func (e *Engine) Metrics() *engine.Metrics  { return e.node.Metrics() }

// Ready: a node serves once it knows the ring (its own log was replayed
// when it opened).
func (e *Engine) Ready() error {
	if len(e.currentRing().Members()) == 0 {
		return errors.New("waiting for the ring's membership from the control plane")
	}
	return nil
}

// RemoveMember takes id out of the ring. Sent to the leaving node itself,
// it first moves its keys to the replicas they have without it; sent to
// another node (a dead one), the remaining replicas copy their keys to the
// new replicas once the ring changes.
func (e *Engine) RemoveMember(ctx context.Context, id string) error {
	if id == e.node.ID() {
		return e.leave(ctx)
	}
	return e.node.RemoveMember(ctx, id)
}
func (e *Engine) SetPolicy(context.Context, string, string, string) error {
	return &engine.UnsupportedError{Command: "config set", Mode: engine.ModeLeaderless, Why: "commit is chosen per request with W and R (REPLICANT.QUORUM)"}
}
func (e *Engine) Switchover(context.Context, string) error {
	return &engine.UnsupportedError{Command: "failover", Mode: engine.ModeLeaderless, Why: "there is no leader"}
}

// healthyAfter: a member is healthy if it answered in the last few seconds
// and has not failed since.
const healthyAfter = 3 * time.Second

// Status shows this node, N, the ring and every member's health.
func (e *Engine) Status() engine.Status {
	st := e.node.LocalRead()
	set := e.node.Settings()
	s := engine.Status{ID: e.node.ID(), Mode: engine.ModeLeaderless, Role: "replica", State: "serving",
		CommitLSN: st.Token().LSN, AppliedLSN: st.Token().LSN, LastLSN: st.Token().LSN, Replicas: e.n,
		RESP: set.RESPAddr, HTTP: set.HTTPAddr, Members: []engine.MemberStatus{},
		UptimeSec: time.Since(e.started).Seconds(), Rebalance: e.handoff.get()}
	ring := e.currentRing()
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	healthy := func(id string) bool {
		if id == e.node.ID() {
			return true
		}
		h := e.health[id]
		return h != nil && now.Sub(h.lastOK) < healthyAfter && !h.lastFail.After(h.lastOK)
	}
	share, primary, ranges := sharesOf(ring, e.n)
	for _, id := range ring.Members() {
		joining := e.readRing != nil && !slices.Contains(e.readRing.Members(), id)
		s.Ring = append(s.Ring, engine.RingMember{ID: id, Share: share[id], Primary: primary[id], Ranges: ranges[id], Healthy: healthy(id), Joining: joining})
		if id == e.node.ID() {
			continue
		}
		resp, http := e.node.MemberAddrs(id)
		ms := engine.MemberStatus{ID: id, Role: "replica", Healthy: healthy(id), RESP: resp, HTTP: http, Peer: e.node.Peers()[id],
			HintsPending: e.hints.pendingFor(id)}
		ms.LastAntiEntropy = e.ae.lastWith(id)
		if h := e.health[id]; h != nil && h.lastFail.After(h.lastOK) {
			ms.Reason = h.err
		}
		s.Members = append(s.Members, ms)
	}
	sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].ID < s.Members[j].ID })
	return s
}
