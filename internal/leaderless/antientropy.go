package leaderless

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// Anti-entropy: every --anti-entropy-interval (jittered by ±25 %), each
// node compares the keys it holds with each other replica it shares
// ranges with, using the Merkle trees of merkle.go, and repairs both
// sides of every difference: it merges the peer's states into its own
// (a join: repeating it is harmless) and stores its states on the peer
// when the peer lacks them or holds less. Read repair fixes only the keys
// that are read; this fixes the others.
//
// What is compared. With 256 vnodes per member, the ring cuts the circle
// into hundreds of arcs per node (about 600 for 5 members and N=3), and
// comparing each arc with each of its other owners would cost hundreds of
// round trips per interval. Instead a node compares with a peer once per
// interval over every key that both of them replicate: the union of the
// arcs whose owners include both, which is also every arc of every owner
// set the two share. A request names an arc (Start, End] of the circle
// and its sender (AntiEntropyRequest.from); the answering replica hashes
// the keys in the arc that both it and the sender replicate, by its own
// ring. For an arc whose owners include both that is simply every key of
// the arc; the driver asks for the whole circle (Start == End == 0), so
// keys either side holds without the other being a replica are never
// compared. While two nodes' rings disagree (a membership change in
// flight), their trees may differ; a key is merged or stored only on a
// node that replicates it by the driver's ring.
//
// One comparison with a peer:
//  1. TREE of the whole circle in one leaf: one hash. Equal to this node's
//     hash: in sync (32 bytes moved). This is the common case.
//  2. TREE in L leaves, L = the power of two nearest above keys/16 (this
//     node's count of shared keys), 1..4096; the differing leaves are
//     found by descending both Merkle trees from the root.
//  3. For each differing leaf, ENTRIES: the peer's keys and states of the
//     leaf (states read fresh, not from the tree's snapshot). Every peer
//     state this node lacks part of is merged in locally; every key whose
//     merged state the peer lacks part of, and every key of the leaf the
//     peer does not list, is stored on the peer (Replica STORE).
//     A leaf whose entries would exceed 4 MiB is refused
//     (ResourceExhausted) and the driver compares that leaf's arc in 64
//     finer leaves instead, recursively.
//
// Rate limits (per node, for what its own comparisons do; documented
// numbers, not flags): at most 500 leaves fetched per second and 10 000
// keys examined (a leaf's keys from both sides) per second, as token
// buckets with one second of burst. At those rates a node repairs a
// replica that missed 10 000 keys in about a second and never floods the
// writer or the network with more (each of the key's other replicas may
// drive a comparison too). A comparison runs at most 4 leaves and 32 key
// repairs at a time.
//
// Trees come from the anti-entropy index (aeindex.go), which follows the
// node's own log and keeps per owner set and segment the XOR of the
// entry hashes: the top tree of a comparison costs no key reads, a leaf's
// keys are found without a scan, and the store is scanned only when the
// index is first built (or the log no longer reaches back to it).
// Repairs always use current states read from the store.
//
// The driver records, per peer, when the last comparison completed and
// how many keys it repaired (MemberStatus.LastAntiEntropy), and exports
// replicant_anti_entropy_rounds_total (completed comparisons),
// replicant_anti_entropy_keys_repaired_total{direction="pulled"|"pushed"}
// and replicant_anti_entropy_bytes_total (tree hashes, entries received,
// states pushed). A comparison that repaired something is logged.

// Tunables (see above); variables so that tests can shrink them.
var (
	aeLeavesPerSecond = 500.0   // ENTRIES requests a node's comparisons make per second
	aeKeysPerSecond   = 10000.0 // keys (both sides of a leaf) they examine per second
	aeKeysPerLeaf     = 16      // the tree's target keys per leaf
	aeMaxTreeLeaves   = 4096    // leaves of the first full tree (128 KiB of hashes)
	aeSubLeaves       = 64      // leaves of a leaf's arc refused as too large
	aeMaxDepth        = 10      // 64^11 > 2^64: deeper arcs have a single position
	aeMaxEntries      = 4 << 20 // bytes of one ENTRIES answer (more: ResourceExhausted)
	aeCallTimeout     = 30 * time.Second
	aeLeafWorkers     = 4  // leaves repaired at a time
	aeKeyWorkers      = 32 // keys merged or stored at a time
)

// antiEntropy is the engine's anti-entropy state.
type antiEntropy struct {
	ix aeIndex // the trees' data (aeindex.go)

	leafLim, keyLim aeLimiter

	mu    sync.Mutex
	peers map[string]aePeer // per peer: the last completed comparison

	registerOnce               sync.Once
	rounds, pulled, pushed, by atomic.Uint64
}

// withIndex runs fn on the anti-entropy index brought up to date with the
// local store and the current ring.
func (e *Engine) withIndex(ctx context.Context, fn func(ix *aeIndex)) error {
	ix := &e.ae.ix
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.catchUp(ctx, e.node); err != nil {
		return fmt.Errorf("anti-entropy index: %w", err)
	}
	ix.setRing(e.currentRing(), e.n)
	if fn != nil {
		fn(ix)
	}
	return nil
}

// aePeer is the outcome of the last completed comparison with a peer.
type aePeer struct {
	at       time.Time
	repaired int
}

// lastWith returns when the last comparison with peer completed (RFC 3339),
// or "" if none did.
func (a *antiEntropy) lastWith(peer string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.peers[peer]; ok {
		return p.at.UTC().Format(time.RFC3339)
	}
	return ""
}

func (a *antiEntropy) record(peer string, p aePeer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.peers == nil {
		a.peers = map[string]aePeer{}
	}
	a.peers[peer] = p
}

// HandleAntiEntropy serves another replica comparing with this one: TREE
// answers the leaf hashes of the arc's keys that both replicate, ENTRIES
// the keys and current states of one leaf.
func (e *Engine) HandleAntiEntropy(ctx context.Context, req *pb.AntiEntropyRequest) (*pb.AntiEntropyResponse, error) {
	leaves := int(req.GetLeaves())
	if leaves < 1 || leaves > MaxLeaves {
		return nil, status.Errorf(codes.InvalidArgument, "anti-entropy: %d leaves, want 1..%d", leaves, MaxLeaves)
	}
	arc := Range{Start: req.GetStart(), End: req.GetEnd()}
	switch req.GetOp() {
	case pb.AntiEntropyRequest_TREE:
		var hashes []Digest
		if err := e.withIndex(ctx, func(ix *aeIndex) {
			hashes = ix.leafHashes(arc, leaves, e.node.ID(), req.GetFrom())
		}); err != nil {
			return nil, err
		}
		resp := &pb.AntiEntropyResponse{Hashes: make([][]byte, leaves)}
		for i, h := range hashes {
			resp.Hashes[i] = bytes.Clone(h[:])
		}
		return resp, nil
	case pb.AntiEntropyRequest_ENTRIES:
		leaf := int(req.GetLeaf())
		if leaf >= leaves {
			return nil, status.Errorf(codes.InvalidArgument, "anti-entropy: leaf %d of %d", leaf, leaves)
		}
		mine, err := e.leafEntries(ctx, arc, leaves, leaf, req.GetFrom())
		if err != nil {
			return nil, err
		}
		rd := e.node.LocalRead()
		resp := &pb.AntiEntropyResponse{}
		size := 0
		for _, en := range mine {
			v, ok, err := rd.Get(en.Key)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue // deleted since
			}
			size += len(en.Key) + len(v.Value)
			if size > aeMaxEntries && len(resp.Entries) > 0 {
				return nil, status.Errorf(codes.ResourceExhausted, "anti-entropy: leaf %d of %d holds over %d bytes; compare it in finer leaves", leaf, leaves, aeMaxEntries)
			}
			resp.Entries = append(resp.Entries, &pb.KV{Key: en.Key, Value: v.Value})
		}
		return resp, nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "anti-entropy: unknown op %v", req.GetOp())
}

// leafEntries returns the index's keys of one leaf of arc that this node
// and peer both replicate.
func (e *Engine) leafEntries(ctx context.Context, arc Range, leaves, leaf int, peer string) ([]MerkleEntry, error) {
	sub, ok := LeafArc(arc, leaves, leaf)
	if !ok {
		return nil, nil // a leaf without positions
	}
	var out []MerkleEntry
	err := e.withIndex(ctx, func(ix *aeIndex) { out = ix.entries(sub, e.node.ID(), peer) })
	return out, err
}

// antiEntropyLoop compares this node's ranges with their other replicas
// every interval (jittered) until ctx ends, and keeps the index up to
// date in between (once a second), so that bringing it up to date before
// a comparison replays a short log.
func (e *Engine) antiEntropyLoop(ctx context.Context) {
	e.ae.registerOnce.Do(func() {
		if m := e.node.Metrics(); m != nil && m.Registry != nil {
			if err := m.Registry.Register(&aeCollector{e: e}); err != nil {
				e.log.Warn("anti-entropy metrics", "err", err)
			}
		}
	})
	t := time.NewTimer(aeJitter(e.cfg.AntiEntropyInterval))
	defer t.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := e.withIndex(ctx, nil); err != nil && ctx.Err() == nil {
				e.log.Warn("anti-entropy: indexing the local store", "err", err)
			}
			continue
		case <-t.C:
		}
		e.antiEntropyRound(ctx)
		t.Reset(aeJitter(e.cfg.AntiEntropyInterval))
	}
}

// aeJitter spreads rounds over 75–125 % of the interval, so that nodes
// started together do not compare in lockstep.
func aeJitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}

// antiEntropyRound compares with every peer this node shares ranges with
// (skipping those the health probes see down) and records the outcomes.
func (e *Engine) antiEntropyRound(ctx context.Context) {
	ring := e.currentRing()
	self := e.node.ID()
	peers := aePeersOf(ring, self, e.n)
	if len(peers) == 0 {
		return
	}
	for _, p := range peers {
		if ctx.Err() != nil {
			return
		}
		if !e.aeReachable(p) {
			continue
		}
		start := time.Now()
		res, err := e.compareWith(ctx, ring, p)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("anti-entropy comparison failed", "peer", p, "err", err, "repaired", res.repaired())
			}
			continue
		}
		took := time.Since(start)
		e.ae.record(p, aePeer{at: time.Now(), repaired: res.repaired()})
		e.ae.rounds.Add(1)
		if n := res.repaired(); n > 0 {
			e.log.Info(fmt.Sprintf("anti-entropy repaired %d keys with %s in %s", n, p, took.Round(time.Millisecond)),
				"peer", p, "keys", n, "pulled", res.pulled.Load(), "pushed", res.pushed.Load(),
				"leaves", res.leaves.Load(), "bytes", res.bytes.Load())
		}
	}
}

// aePeersOf returns the members that share at least one arc with self,
// sorted.
func aePeersOf(r *Ring, self string, n int) []string {
	var out []string
	for _, rg := range r.RangesOf(self, n) {
		for _, id := range rg.Owners {
			if id != self && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// aeReachable: skip a peer the health probes last saw failing.
func (e *Engine) aeReachable(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.health[id]
	return h == nil || !h.lastFail.After(h.lastOK)
}

// aeResult counts what one comparison did.
type aeResult struct {
	pulled, pushed, leaves, bytes atomic.Uint64
	mu                            sync.Mutex
	keys                          map[string]struct{} // repaired, either way
}

func (r *aeResult) repairedKey(k []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = map[string]struct{}{}
	}
	r.keys[string(k)] = struct{}{}
}

func (r *aeResult) repaired() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// aeComparison is one comparison of this node with peer.
type aeComparison struct {
	e    *Engine
	ring *Ring
	peer string
	cl   pb.PeerClient
	res  *aeResult
	keys chan struct{} // bounds the key repairs in flight
}

// compareWith compares every key this node and peer both replicate and
// repairs both sides.
func (e *Engine) compareWith(ctx context.Context, ring *Ring, peer string) (*aeResult, error) {
	res := &aeResult{}
	addr := e.node.Peers()[peer]
	if addr == "" {
		return res, fmt.Errorf("no address for %s", peer)
	}
	cl, err := e.node.PeerClient(addr)
	if err != nil {
		return res, err
	}
	c := &aeComparison{e: e, ring: ring, peer: peer, cl: cl, res: res, keys: make(chan struct{}, aeKeyWorkers)}
	defer func() {
		e.ae.pulled.Add(res.pulled.Load())
		e.ae.pushed.Add(res.pushed.Load())
		e.ae.by.Add(res.bytes.Load())
	}()
	whole := Range{} // Start == End == 0: the whole circle
	var root Digest
	var keys int
	if err := e.withIndex(ctx, func(ix *aeIndex) {
		root = ix.leafHashes(whole, 1, e.node.ID(), peer)[0]
		keys = ix.count(e.node.ID(), peer)
	}); err != nil {
		return res, err
	}
	// The root alone first: equal in the common case.
	theirs, err := c.tree(ctx, whole, 1)
	if err != nil {
		return res, err
	}
	if theirs[0] == root {
		return res, nil
	}
	return res, c.syncArc(ctx, whole, aeLeavesFor(keys, 0), 0)
}

// aeLeavesFor is the tree size for keys local keys: the power of two at
// or above keys/aeKeysPerLeaf, within 1..aeMaxTreeLeaves, and at least
// aeSubLeaves below the top level.
func aeLeavesFor(keys, depth int) int {
	l := 1
	for l*aeKeysPerLeaf < keys && l < aeMaxTreeLeaves {
		l *= 2
	}
	if depth > 0 {
		l = max(l, aeSubLeaves)
	}
	return min(l, MaxLeaves)
}

func (c *aeComparison) rpc(ctx context.Context, req *pb.AntiEntropyRequest) (*pb.AntiEntropyResponse, error) {
	req.From = c.e.node.ID()
	// A tree or a leaf of a large store takes the peer a scan to answer:
	// the replica-call timeout (2 s) would fail every round on it.
	cctx, cancel := context.WithTimeout(ctx, max(c.e.timeout, aeCallTimeout))
	defer cancel()
	return c.cl.AntiEntropy(cctx, req)
}

// tree fetches the peer's leaf hashes of arc.
func (c *aeComparison) tree(ctx context.Context, arc Range, leaves int) ([]Digest, error) {
	resp, err := c.rpc(ctx, &pb.AntiEntropyRequest{Op: pb.AntiEntropyRequest_TREE, Start: arc.Start, End: arc.End, Leaves: uint32(leaves)})
	if err != nil {
		return nil, err
	}
	if len(resp.GetHashes()) != leaves {
		return nil, fmt.Errorf("anti-entropy: %s answered %d leaf hashes, %d asked", c.peer, len(resp.GetHashes()), leaves)
	}
	out := make([]Digest, leaves)
	for i, h := range resp.GetHashes() {
		if len(h) != len(out[i]) {
			return nil, fmt.Errorf("anti-entropy: %s answered a %d-byte hash", c.peer, len(h))
		}
		copy(out[i][:], h)
	}
	c.res.bytes.Add(uint64(leaves * len(Digest{})))
	return out, nil
}

// syncArc compares arc in leaves leaves and repairs the leaves that
// differ.
func (c *aeComparison) syncArc(ctx context.Context, arc Range, leaves, depth int) error {
	var hashes []Digest
	if err := c.e.withIndex(ctx, func(ix *aeIndex) { hashes = ix.leafHashes(arc, leaves, c.e.node.ID(), c.peer) }); err != nil {
		return err
	}
	mine := NewMerkleTree(hashes)
	th, err := c.tree(ctx, arc, leaves)
	if err != nil {
		return err
	}
	diff := DiffLeaves(mine, NewMerkleTree(th))
	sem := make(chan struct{}, aeLeafWorkers)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var first error
	for _, i := range diff {
		errMu.Lock()
		failed := first != nil
		errMu.Unlock()
		if failed {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := c.syncLeaf(ctx, arc, leaves, i, depth); err != nil {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return first
}

// syncLeaf fetches the peer's entries of one leaf and repairs it; a leaf
// too large for one answer is compared in finer leaves.
func (c *aeComparison) syncLeaf(ctx context.Context, arc Range, leaves, leaf int, depth int) error {
	if err := c.e.ae.leafLim.wait(ctx, 1, aeLeavesPerSecond); err != nil {
		return err
	}
	c.res.leaves.Add(1)
	resp, err := c.rpc(ctx, &pb.AntiEntropyRequest{Op: pb.AntiEntropyRequest_ENTRIES, Start: arc.Start, End: arc.End,
		Leaves: uint32(leaves), Leaf: uint32(leaf)})
	local, lerr := c.e.leafEntries(ctx, arc, leaves, leaf, c.peer)
	if lerr != nil {
		return lerr
	}
	if status.Code(err) == codes.ResourceExhausted && depth < aeMaxDepth {
		if sub, ok := LeafArc(arc, leaves, leaf); ok {
			return c.syncArc(ctx, sub, aeLeavesFor(len(local), depth+1), depth+1)
		}
	}
	if err != nil {
		return err
	}
	return c.repairLeaf(ctx, local, resp.GetEntries())
}

// repairLeaf merges the peer's states of a leaf into this node's and
// stores on the peer what it lacks: the merged state where the peer's was
// less, and every key of the leaf the peer did not list.
func (c *aeComparison) repairLeaf(ctx context.Context, local []MerkleEntry, theirs []*pb.KV) error {
	if err := c.e.ae.keyLim.wait(ctx, len(local)+len(theirs), aeKeysPerSecond); err != nil {
		return err
	}
	self := c.e.node.ID()
	rd := c.e.node.LocalRead()
	listed := make(map[string]bool, len(theirs))
	var pulls []aePull
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var first error
	run := func(f func() error) {
		select {
		case c.keys <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-c.keys; wg.Done() }()
			if err := f(); err != nil {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
		}()
	}
	for _, kv := range theirs {
		k, v := kv.GetKey(), kv.GetValue()
		listed[string(k)] = true
		c.res.bytes.Add(uint64(len(k) + len(v)))
		// The peer's ring may differ from ours: take and give back only
		// keys both replicate by ours.
		if isReserved(k) || len(k) == 0 || !c.ring.Owns(self, k, c.e.n) || !c.ring.Owns(c.peer, k, c.e.n) {
			continue
		}
		cur, ok, err := rd.Get(k)
		if err != nil {
			errMu.Lock()
			first = cmp.Or(first, err)
			errMu.Unlock()
			break
		}
		if ok && bytes.Equal(cur.Value, v) {
			continue // equal since the snapshot
		}
		pulls = append(pulls, aePull{key: k, enc: v, held: ok})
	}
	// The merges go in batches, one local log entry each: one fsync per
	// batch rather than per key.
	for len(pulls) > 0 && first == nil {
		n := min(len(pulls), aePullBatch)
		batch := pulls[:n]
		pulls = pulls[n:]
		outs, err := c.pullBatch(ctx, batch)
		if err != nil {
			first = err
			break
		}
		for i, out := range outs {
			if out != nil {
				k, enc := batch[i].key, out
				run(func() error { return c.store(ctx, k, enc) })
			}
		}
	}
	for _, en := range local {
		if !listed[string(en.Key)] {
			run(func() error { return c.push(ctx, en.Key) })
		}
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// aePull is one key whose peer state differs from this node's.
type aePull struct {
	key, enc []byte
	held     bool
}

// aePullBatch is how many keys one local entry merges.
const aePullBatch = 256

// pullBatch merges the peer's states of a batch of keys into this node's
// in one local entry, and returns for each key the merged state to store
// back on the peer (nil when the peer already holds at least as much).
func (c *aeComparison) pullBatch(ctx context.Context, batch []aePull) ([][]byte, error) {
	now := time.Now().UnixMilli()
	theirs := make([]State, len(batch))
	skip := make([]bool, len(batch))
	for i, p := range batch {
		st, err := DecodeState(p.enc)
		if err != nil {
			c.e.log.Warn("anti-entropy: a peer's state does not decode", "peer", c.peer, "key", string(p.key), "err", err)
			skip[i] = true
			continue
		}
		if !p.held && collectable(st, now, c.e.cfg.TombstoneGrace) {
			skip[i] = true // tombstones past their grace: the peer drops them too
			continue
		}
		c.e.observe(st.Top())
		theirs[i] = st
	}
	outs := make([][]byte, len(batch))
	changed := make([]bool, len(batch))
	_, err := c.e.node.LocalWrite(ctx, func(tx engine.Txn) error {
		for i, p := range batch {
			outs[i], changed[i] = nil, false
			if skip[i] {
				continue
			}
			var cur State
			if v, ok, err := tx.Get(p.key); err != nil {
				return err
			} else if ok {
				if cur, err = DecodeState(v.Value); err != nil {
					return fmt.Errorf("leaderless: stored state of %q: %w", p.key, err)
				}
			}
			next := cur.Merge(theirs[i])
			if !next.Equal(cur) {
				tx.Set(p.key, AppendState(nil, next), 0)
				changed[i] = true
			}
			if !next.Equal(theirs[i]) && !collectable(next, now, c.e.cfg.TombstoneGrace) {
				outs[i] = AppendState(nil, next)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, p := range batch {
		if changed[i] {
			c.res.pulled.Add(1)
			c.res.repairedKey(p.key)
		}
	}
	return outs, nil
}

// push stores this node's state of k on the peer, which did not list it.
func (c *aeComparison) push(ctx context.Context, k []byte) error {
	v, ok, err := c.e.node.LocalRead().Get(k)
	if err != nil || !ok {
		return err
	}
	if st, err := DecodeState(v.Value); err != nil || collectable(st, time.Now().UnixMilli(), c.e.cfg.TombstoneGrace) {
		return nil // undecodable here, or tombstones the peer would not keep
	}
	return c.store(ctx, k, v.Value)
}

func (c *aeComparison) store(ctx context.Context, k, enc []byte) error {
	if _, err := c.e.call(ctx, c.peer, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: k, State: enc}); err != nil {
		return fmt.Errorf("storing %q on %s: %w", k, c.peer, err)
	}
	c.res.pushed.Add(1)
	c.res.bytes.Add(uint64(len(k) + len(enc)))
	c.res.repairedKey(k)
	return nil
}

// aeLimiter is a token bucket with one second of burst that lets a
// caller go into debt: a request larger than the burst waits for its
// whole cost, and those after it wait for the debt to be paid.
type aeLimiter struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// wait takes n tokens at rate per second, sleeping as long as needed.
func (l *aeLimiter) wait(ctx context.Context, n int, rate float64) error {
	l.mu.Lock()
	now := time.Now()
	if l.last.IsZero() {
		l.tokens = rate
	} else {
		l.tokens = min(rate, l.tokens+now.Sub(l.last).Seconds()*rate)
	}
	l.last = now
	l.tokens -= float64(n)
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// aeCollector exports the anti-entropy counters.
type aeCollector struct{ e *Engine }

var (
	aeRoundsDesc = prometheus.NewDesc("replicant_anti_entropy_rounds_total",
		"Anti-entropy comparisons this node completed with another replica (one per peer per --anti-entropy-interval).", nil, nil)
	aeKeysDesc = prometheus.NewDesc("replicant_anti_entropy_keys_repaired_total",
		"Keys this node's anti-entropy comparisons repaired: pulled = merged into this node's state, pushed = stored on the peer.",
		[]string{"direction"}, nil)
	aeBytesDesc = prometheus.NewDesc("replicant_anti_entropy_bytes_total",
		"Bytes this node's anti-entropy comparisons moved: tree hashes and entries received, states stored on peers.", nil, nil)
)

func (c *aeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- aeRoundsDesc
	ch <- aeKeysDesc
	ch <- aeBytesDesc
}

func (c *aeCollector) Collect(ch chan<- prometheus.Metric) {
	a := &c.e.ae
	ch <- prometheus.MustNewConstMetric(aeRoundsDesc, prometheus.CounterValue, float64(a.rounds.Load()))
	ch <- prometheus.MustNewConstMetric(aeKeysDesc, prometheus.CounterValue, float64(a.pulled.Load()), "pulled")
	ch <- prometheus.MustNewConstMetric(aeKeysDesc, prometheus.CounterValue, float64(a.pushed.Load()), "pushed")
	ch <- prometheus.MustNewConstMetric(aeBytesDesc, prometheus.CounterValue, float64(a.by.Load()))
}
