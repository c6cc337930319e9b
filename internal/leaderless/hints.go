package leaderless

// Hinted handoff and the sloppy quorum (--sloppy-quorum).
//
// When a write cannot reach W of its key's N replicas, the coordinator
// sends the write's state to stand-ins, the members after the replicas on
// the ring (Ring.Fallbacks, nearest first), each with STORE and hint_for
// naming the replica it stands in for. A stand-in's ack counts toward W:
// it keeps the state durably, as a hint in its own log, apart from its own
// data, and hands it over to that replica once it answers again. The
// coordinating replica (the one that stamps the write with its dot) is
// always one of the key's replicas; stand-ins only store.
//
// A hint lives in the stand-in's store under
//
//	\x00replicant\x00hint\x00 <target> \x00 <key>
//
// (the reserved prefix: user keys cannot be written there, and reads,
// KEYS/SCAN and the Replica RPC never show it). Target ids contain no
// control characters (crdt.ValidID), so the first zero byte after the
// prefix ends the target and the rest is the key, whatever its bytes.
// Hints of one key for one target merge (State.Merge), and a node keeps at
// most maxHints; beyond that a new hint is refused and the stand-in's ack
// does not count.
//
// Invariants:
//   - A hint is deleted only after the target acknowledged a STORE of it,
//     and only if it did not change meanwhile (a newer write merged into it
//     is handed over on the next round): the stand-in never forgets a write
//     the target has not stored, except a hint older than HintMaxAge, which
//     is dropped with a log line and replicant_hints_dropped_total.
//   - Hand-over is a STORE, a merge: delivering a hint twice, late, or
//     after the target got the write some other way is harmless.
//   - A write that cannot reach W counting every replica and every
//     stand-in before it is stored anywhere is stored nowhere.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// maxHints bounds the hints one node keeps, for all targets together.
const maxHints = 100_000

const (
	// hintTick is how often the hand-over loop looks for targets to
	// deliver to (a returning target is probed healthy within a second).
	hintTick = time.Second
	// hintProbe: a target not seen healthy is still tried this often (its
	// health may be unknown, e.g. right after this node started).
	hintProbe = 30 * time.Second
	// hintBatch is how many hints are read from the store at a time.
	hintBatch = 128
)

// hintPrefix starts every hint key.
var hintPrefix = append(bytes.Clone(reservedPrefix), "hint\x00"...)

// hintTargetPrefix starts the keys of the hints for target.
func hintTargetPrefix(target string) []byte {
	b := make([]byte, 0, len(hintPrefix)+len(target)+1)
	b = append(b, hintPrefix...)
	b = append(b, target...)
	return append(b, 0)
}

// hintKey is where a stand-in keeps key's hint for target.
func hintKey(target string, key []byte) []byte {
	return append(hintTargetPrefix(target), key...)
}

// parseHintKey splits a hint key into its target and user key.
func parseHintKey(k []byte) (target string, key []byte, ok bool) {
	if !bytes.HasPrefix(k, hintPrefix) {
		return "", nil, false
	}
	rest := k[len(hintPrefix):]
	i := bytes.IndexByte(rest, 0)
	if i <= 0 || i == len(rest)-1 {
		return "", nil, false // no target, or no key
	}
	return string(rest[:i]), rest[i+1:], true
}

// hint is a hint's stored value: when it was first stored (Unix ms, on
// the stand-in's clock: its age) and the key's state to hand over.
type hint struct {
	createdMs int64
	state     State
}

// hintTag starts every encoded hint (type and layout version).
const hintTag = 0xB7

func appendHint(b []byte, h hint) []byte {
	b = append(b, hintTag)
	b = binary.AppendUvarint(b, uint64(max(h.createdMs, 0)))
	return AppendState(b, h.state)
}

func decodeHint(b []byte) (hint, error) {
	if len(b) == 0 || b[0] != hintTag {
		return hint{}, fmt.Errorf("%w: not a hint", ErrMalformed)
	}
	ms, n := binary.Uvarint(b[1:])
	if n <= 0 || ms > 1<<62 {
		return hint{}, fmt.Errorf("%w: hint time", ErrMalformed)
	}
	st, err := DecodeState(b[1+n:])
	if err != nil {
		return hint{}, err
	}
	return hint{createdMs: int64(ms), state: st}, nil
}

// hintStore counts the hints a node keeps, per target. The counts follow
// the store: a new hint is counted by the entry that creates it (entries
// run one at a time on the log's sequencer, so the bound is exact), undone
// if the entry fails; a removal is counted once committed. A periodic scan
// recounts (an entry whose outcome was unknown after a disk error may have
// left the counts off), unless a hint write overlapped the scan.
type hintStore struct {
	loadOnce sync.Once

	mu      sync.Mutex
	limit   int // 0: maxHints (tests lower it)
	pending map[string]uint64
	total   uint64
	writing int    // hint writes in flight
	gen     uint64 // changes whenever a hint write starts or ends

	delivered, dropped, refused atomic.Uint64
}

func (h *hintStore) reserve(target string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	limit := h.limit
	if limit <= 0 {
		limit = maxHints
	}
	if h.total >= uint64(limit) {
		return false
	}
	if h.pending == nil {
		h.pending = map[string]uint64{}
	}
	h.pending[target]++
	h.total++
	return true
}

func (h *hintStore) release(target string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[target] > 0 {
		h.pending[target]--
		h.total--
	}
}

func (h *hintStore) begin() {
	h.mu.Lock()
	h.writing++
	h.gen++
	h.mu.Unlock()
}

func (h *hintStore) end() {
	h.mu.Lock()
	h.writing--
	h.gen++
	h.mu.Unlock()
}

// countStart returns the generation a recount starts at, and whether a
// hint write is in flight (then the recount cannot be trusted).
func (h *hintStore) countStart() (gen uint64, quiet bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen, h.writing == 0
}

// setCounts replaces the counts with a scan's, if no hint write started or
// ended since gen. Targets keep their entry at 0, so the gauge shows them.
func (h *hintStore) setCounts(counts map[string]uint64, gen uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen != gen || h.writing != 0 {
		return false
	}
	if h.pending == nil {
		h.pending = map[string]uint64{}
	}
	for t := range h.pending {
		h.pending[t] = 0
	}
	h.total = 0
	for t, n := range counts {
		h.pending[t] = n
		h.total += n
	}
	return true
}

// pendingFor is how many hints this node keeps for id (0 included, as
// status shows it for every member).
func (h *hintStore) pendingFor(id string) *uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.pending[id]
	return &n
}

// counts copies the per-target counts.
func (h *hintStore) counts() map[string]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]uint64, len(h.pending))
	for t, n := range h.pending {
		out[t] = n
	}
	return out
}

// targets lists, sorted, the targets with hints.
func (h *hintStore) targets() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for t, n := range h.pending {
		if n > 0 {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// loadHints counts the hints in the store, once, before anything reads or
// changes the counts.
func (e *Engine) loadHints() {
	e.hints.loadOnce.Do(func() {
		gen, _ := e.hints.countStart()
		counts := map[string]uint64{}
		err := e.scanHints(func(target string, _, _ []byte) bool {
			counts[target]++
			return true
		})
		if err != nil {
			e.log.Error("counting hints", "err", err)
			return
		}
		e.hints.setCounts(counts, gen)
	})
}

// scanHints calls fn for every hint in the store, in key order (by target,
// then key), until fn returns false.
func (e *Engine) scanHints(fn func(target string, hk, raw []byte) bool) error {
	var perr error
	err := e.node.LocalRead().Scan(hintPrefix, func(k []byte, v engine.Version) bool {
		if !bytes.HasPrefix(k, hintPrefix) {
			return false
		}
		target, _, ok := parseHintKey(k)
		if !ok {
			perr = fmt.Errorf("leaderless: malformed hint key %q", k)
			return false
		}
		return fn(target, k, v.Value)
	})
	if err != nil {
		return err
	}
	return perr
}

// errHintsFull is a stand-in's refusal when it keeps maxHints already.
var errHintsFull = errors.New("this node keeps the most hints it may; it cannot stand in")

// storeHint is a stand-in's STORE: it keeps in as a hint for target.
func (e *Engine) storeHint(ctx context.Context, target string, key []byte, in State) (*pb.ReplicaResponse, error) {
	if err := crdt.ValidID(target); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "replica: hint_for: %v", err)
	}
	if target == e.node.ID() {
		return nil, status.Error(codes.InvalidArgument, "replica: a hint for this node itself")
	}
	if in.IsZero() {
		return &pb.ReplicaResponse{}, nil // nothing to hand over
	}
	e.loadHints()
	hk := hintKey(target, key)
	var created, refused bool
	e.hints.begin()
	defer e.hints.end()
	// Not cancelled with the call: the counts must know whether the entry
	// was written, which a cancelled wait would not say.
	_, err := e.node.LocalWrite(context.WithoutCancel(ctx), func(tx engine.Txn) error {
		created, refused = false, false
		var cur hint
		v, ok, err := tx.Get(hk)
		switch {
		case err != nil:
			return err
		case ok:
			if cur, err = decodeHint(v.Value); err != nil {
				return fmt.Errorf("leaderless: stored hint of %q for %s: %w", key, target, err)
			}
		case !e.hints.reserve(target):
			refused = true
			return nil
		default:
			created = true
			cur.createdMs = tx.NowMs()
		}
		next := hint{createdMs: cur.createdMs, state: cur.state.Merge(in)}
		if ok && next.state.Equal(cur.state) {
			return nil
		}
		tx.Set(hk, appendHint(nil, next), 0)
		return nil
	})
	if err != nil {
		if created {
			e.hints.release(target)
		}
		return nil, err
	}
	if refused {
		if n := e.hints.refused.Add(1); n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th… refusal
			e.log.Warn("hints refused: this node keeps the most hints it may (replicant_hints_refused_total counts them)",
				"for", target, "key", string(key), "refused", n)
		}
		return &pb.ReplicaResponse{Refusal: errHintsFull.Error()}, nil
	}
	return &pb.ReplicaResponse{}, nil
}

// storedHint is a hint as read from the store.
type storedHint struct {
	target string
	hk     []byte // its key in the store
	raw    []byte // its stored value: it is removed only if still this
}

// removeHints deletes the hints that are still as read, in one entry, and
// returns how many it deleted.
func (e *Engine) removeHints(ctx context.Context, hs []storedHint) (int, error) {
	removed := make([]bool, len(hs))
	e.hints.begin()
	defer e.hints.end()
	_, err := e.node.LocalWrite(context.WithoutCancel(ctx), func(tx engine.Txn) error {
		for i, h := range hs {
			removed[i] = false
			v, ok, err := tx.Get(h.hk)
			if err != nil {
				return err
			}
			if ok && bytes.Equal(v.Value, h.raw) {
				tx.Del(h.hk)
				removed[i] = true
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for i, h := range hs {
		if removed[i] {
			e.hints.release(h.target)
			n++
		}
	}
	return n, nil
}

// hintLoop hands hints over to their targets until ctx ends: every tick to
// each target with hints that is healthy (so soon after it returns), and
// at least every hintProbe to the others; it also drops hints older than
// HintMaxAge and recounts.
func (e *Engine) hintLoop(ctx context.Context) {
	e.loadHints()
	sweepEvery := min(max(e.cfg.HintMaxAge/10, time.Second), time.Minute)
	var lastSweep time.Time
	lastTry := map[string]time.Time{}
	t := time.NewTicker(hintTick)
	defer t.Stop()
	for {
		if time.Since(lastSweep) >= sweepEvery {
			if err := e.sweepHints(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("hints: sweep", "err", err)
			}
			lastSweep = time.Now()
		}
		for _, target := range e.hints.targets() {
			if ctx.Err() != nil {
				return
			}
			if !e.peerHealthy(target) && time.Since(lastTry[target]) < hintProbe {
				continue
			}
			lastTry[target] = time.Now()
			n, err := e.handOver(ctx, target)
			if n > 0 {
				e.log.Info("hints handed over", "to", target, "hints", n)
			}
			if err != nil && ctx.Err() == nil {
				e.log.Debug("hints: hand-over stopped", "to", target, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// peerHealthy is Status's notion of a healthy member.
func (e *Engine) peerHealthy(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.health[id]
	return h != nil && time.Since(h.lastOK) < healthyAfter && !h.lastFail.After(h.lastOK)
}

// handOver stores target's hints on it in key order and removes those the
// target acknowledged (one entry per batch read), and returns how many it
// removed. It stops at the first failure (the rest wait for the next
// round).
func (e *Engine) handOver(ctx context.Context, target string) (int, error) {
	prefix := hintTargetPrefix(target)
	start := prefix
	done := 0
	for {
		var batch []storedHint
		err := e.node.LocalRead().Scan(start, func(k []byte, v engine.Version) bool {
			if !bytes.HasPrefix(k, prefix) {
				return false
			}
			batch = append(batch, storedHint{target: target, hk: bytes.Clone(k), raw: bytes.Clone(v.Value)})
			return len(batch) < hintBatch
		})
		if err != nil {
			return done, err
		}
		var acked, expired []storedHint
		var why, serr error
		for _, h := range batch {
			if serr = ctx.Err(); serr != nil {
				break
			}
			hn, err := decodeHint(h.raw)
			if err == nil && time.Since(time.UnixMilli(hn.createdMs)) > e.cfg.HintMaxAge {
				err = fmt.Errorf("older than %s", e.cfg.HintMaxAge)
			}
			if err != nil {
				expired, why = append(expired, h), err
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, e.timeout)
			_, serr = e.call(cctx, target, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: h.hk[len(prefix):], State: AppendState(nil, hn.state)})
			cancel()
			if serr != nil {
				break
			}
			acked = append(acked, h)
		}
		if len(expired) > 0 {
			e.dropHints(ctx, expired, why)
		}
		if len(acked) > 0 {
			// A hint that changed since it was read stays: the newer
			// state goes over on the next round.
			n, err := e.removeHints(ctx, acked)
			if err != nil {
				return done, err
			}
			done += n
			e.hints.delivered.Add(uint64(n))
		}
		if serr != nil || len(batch) < hintBatch {
			return done, serr
		}
		start = append(bytes.Clone(batch[len(batch)-1].hk), 0)
	}
}

// dropHints removes hints that will not be handed over (too old, or not
// readable), counting and logging each.
func (e *Engine) dropHints(ctx context.Context, hs []storedHint, why error) {
	n, err := e.removeHints(ctx, hs)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("hints: dropping", "hints", len(hs), "err", err)
		}
		return
	}
	e.hints.dropped.Add(uint64(n))
	for _, h := range hs[:min(len(hs), 10)] {
		_, key, _ := parseHintKey(h.hk)
		e.log.Warn("hint dropped: the write was not handed over to its replica (anti-entropy or read repair may still bring it)",
			"for", h.target, "key", string(key), "why", why.Error())
	}
	if len(hs) > 10 {
		e.log.Warn("hints dropped", "more", len(hs)-10, "why", why.Error())
	}
}

// sweepHints recounts the hints and drops those older than HintMaxAge.
func (e *Engine) sweepHints(ctx context.Context) error {
	gen, quiet := e.hints.countStart()
	counts := map[string]uint64{}
	var old, bad []storedHint
	now := time.Now()
	err := e.scanHints(func(target string, hk, raw []byte) bool {
		counts[target]++
		h, err := decodeHint(raw)
		switch {
		case err != nil:
			bad = append(bad, storedHint{target: target, hk: bytes.Clone(hk), raw: bytes.Clone(raw)})
		case now.Sub(time.UnixMilli(h.createdMs)) > e.cfg.HintMaxAge && len(old) < hintBatch*8:
			old = append(old, storedHint{target: target, hk: bytes.Clone(hk), raw: bytes.Clone(raw)})
		}
		return true
	})
	if err != nil {
		return err
	}
	if quiet {
		e.hints.setCounts(counts, gen)
	}
	if len(old) > 0 {
		e.dropHints(ctx, old, fmt.Errorf("older than %s", e.cfg.HintMaxAge))
	}
	if len(bad) > 0 {
		e.dropHints(ctx, bad, errors.New("malformed"))
	}
	return nil
}

// writeSloppy is writeKey with a sloppy quorum: one of the key's replicas
// coordinates the write as without it; the others that fail are replaced
// by stand-ins (Ring.Fallbacks, in order) that keep the state as a hint
// for them, and their acks count toward W. It answers once W nodes hold
// the write; stores (and stand-ins for replicas that fail late) go on in
// the background.
func (e *Engine) writeSloppy(ctx context.Context, key []byte, q Quorum, req *pb.ReplicaRequest) (*pb.ReplicaResponse, error) {
	ring := e.currentRing()
	targets := ring.Preference(key, e.n)
	if len(targets) == 0 {
		return nil, errors.New("leaderless: the ring has no members yet")
	}
	fallbacks := ring.Fallbacks(key, e.n)
	// Every node may end up holding the write: the replicas, and a
	// stand-in for each that fails.
	tally := NewWriteTally(q, len(targets)+len(fallbacks))
	if tally.Outcome() == Failed {
		return nil, tally.Err() // fewer nodes than W: write nowhere
	}
	order := append([]string(nil), targets...)
	for i, id := range order {
		if id == e.node.ID() {
			order[0], order[i] = order[i], order[0]
		}
	}
	var first *pb.ReplicaResponse
	var rest, failed []string
	causes := map[string]string{}
	for i, id := range order {
		req.Key = key
		resp, err := e.call(ctx, id, req)
		if err != nil {
			tally.Fail(id, err)
			causes[id] = err.Error()
			failed = append(failed, id)
			if tally.Outcome() == Failed {
				return nil, tally.Err() // W out of reach even with stand-ins: write nowhere
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
		// Only a replica coordinates (it issues the write's dot from its
		// own state of the key); none answered, so nothing is stored.
		return nil, &NoQuorumError{Stored: 0, Needed: q.W, N: q.N, Causes: causes}
	}
	decided := make(chan error, 1)
	go e.fanOut(key, first.State, tally, rest, failed, fallbacks, decided)
	select {
	case err := <-decided:
		if err != nil {
			return nil, err
		}
		return first, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fanOut stores state on the replicas in rest and, for each replica that
// failed (in failed, or as its store fails), on the next unused stand-in
// with a hint for it. It sends the outcome on decided once the tally
// decides (nil for success), and returns when every store has answered.
// It owns tally.
func (e *Engine) fanOut(key, state []byte, tally *WriteTally, rest, failed, fallbacks []string, decided chan<- error) {
	type result struct {
		id, hintFor string
		err         error
	}
	results := make(chan result, len(rest)+len(fallbacks))
	inflight := 0
	store := func(id, hintFor string) {
		inflight++
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
			defer cancel()
			resp, err := e.call(ctx, id, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: key, State: state, HintFor: hintFor})
			if err == nil && resp.Refusal != "" {
				err = errors.New(resp.Refusal)
			}
			results <- result{id, hintFor, err}
		}()
	}
	next := 0
	standIn := func(replica string) {
		if next < len(fallbacks) {
			store(fallbacks[next], replica)
			next++
		}
	}
	report := func() {
		if decided != nil && tally.Outcome() != Pending {
			decided <- tally.Err()
			decided = nil
		}
	}
	for _, id := range rest {
		store(id, "")
	}
	for _, id := range failed {
		standIn(id)
	}
	report()
	for inflight > 0 {
		r := <-results
		inflight--
		if r.err != nil {
			tally.Fail(r.id, r.err)
			replica := r.id
			if r.hintFor != "" {
				replica = r.hintFor
			}
			standIn(replica)
			if r.hintFor != "" {
				e.log.Debug("stand-in failed", "key", string(key), "stand-in", r.id, "for", r.hintFor, "err", r.err)
			}
		} else {
			tally.Ack(r.id)
		}
		report()
	}
	if decided != nil {
		// Every node that could hold the write answered, so the tally
		// decided; this guards against a miscount all the same.
		decided <- fmt.Errorf("leaderless: write of %q undecided after every replica and stand-in answered", key)
	}
}

// hintCollector exports the hint series.
type hintCollector struct{ e *Engine }

var (
	hintPendingDesc = prometheus.NewDesc("replicant_hints_pending",
		"Hints this node keeps as a stand-in (sloppy quorum), by the replica they are for.", []string{"target"}, nil)
	hintDeliveredDesc = prometheus.NewDesc("replicant_hints_delivered_total",
		"Hints handed over to their replica and removed.", nil, nil)
	hintDroppedDesc = prometheus.NewDesc("replicant_hints_dropped_total",
		"Hints dropped without being handed over (older than the hint max age, or unreadable).", nil, nil)
	hintRefusedDesc = prometheus.NewDesc("replicant_hints_refused_total",
		"Hints this node refused to keep because it kept the most it may.", nil, nil)
)

func (c *hintCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hintPendingDesc
	ch <- hintDeliveredDesc
	ch <- hintDroppedDesc
	ch <- hintRefusedDesc
}

func (c *hintCollector) Collect(ch chan<- prometheus.Metric) {
	h := &c.e.hints
	for t, n := range h.counts() {
		ch <- prometheus.MustNewConstMetric(hintPendingDesc, prometheus.GaugeValue, float64(n), t)
	}
	ch <- prometheus.MustNewConstMetric(hintDeliveredDesc, prometheus.CounterValue, float64(h.delivered.Load()))
	ch <- prometheus.MustNewConstMetric(hintDroppedDesc, prometheus.CounterValue, float64(h.dropped.Load()))
	ch <- prometheus.MustNewConstMetric(hintRefusedDesc, prometheus.CounterValue, float64(h.refused.Load()))
}
