// Package workload drives a check run against a real cluster: concurrent
// clients (register writes and linearizable reads, unique inserts,
// counters, session reads and eventual reads on followers), the faults of
// a check.Schedule, healing, and the final reads, recorded as a
// check.History for the pure checkers.
//
// Invariants:
//   - Every operation is recorded with what the client learned: an
//     acknowledged write is Ok; a request refused before it could be
//     written (connection refused, 4xx) is Fail; anything else (timeouts,
//     5xx, a connection lost mid-request) is Unknown.
//   - Faults are always healed before the final reads (a killed node is
//     restarted, a paused one resumed), whatever ended the run.
package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/check"
	"github.com/replicant-db/replicant/internal/check/local"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/leaderless"
)

// Config is one run.
type Config struct {
	Cluster *local.Cluster
	// Lab is where the cluster's nodes run when the nemeses include
	// partitions (nil otherwise).
	Lab      *local.Lab
	Duration time.Duration
	Nemeses  []string
	Seed     uint64
	// Registers is how many register clients write and read the leader
	// (default 4); Sessions how many clients write their own keys and read
	// them back on followers (default 2).
	Registers, Sessions int
	// Progress receives a line per fault (nil: none).
	Progress io.Writer
	// Setup is copied into the history.
	Setup map[string]string
	// Prefix starts every key the run writes (e.g. "check:SEED:"), so a
	// run against a cluster in use touches only keys of its own.
	Prefix string
	// Leaderless runs the leaderless workload: writes with quorum W,
	// reads with R (Replicant-W / Replicant-R, REPLICANT.QUORUM), each
	// register written by one client and read by all, no sessions.
	Leaderless bool
	W, R       string
	N          int // replicas per key (leaderless)
	// MultiLeader runs the multi-leader workload: every node is a site
	// taking writes; register clients also write shared keys (conflicts);
	// session clients read on any site with their vector token; the final
	// reads wait for every site to hold the same data.
	MultiLeader bool
}

// opTimeout bounds one client operation, as an application's client
// would: longer than a failover (1 s by default), short enough that a
// request stuck at a node that was cut off (a follower redirecting to a
// leader that is partitioned away) gives up and tries another node
// instead of hiding the time writes were really unavailable.
const opTimeout = 3 * time.Second

// Run runs the workload and the faults for cfg.Duration, heals, and
// reads the final state.
func Run(ctx context.Context, cfg Config) (*check.History, error) {
	if cfg.Registers == 0 {
		cfg.Registers = 4
	}
	if cfg.Sessions == 0 {
		cfg.Sessions = 2
	}
	r := &runner{cfg: cfg, start: time.Now(), hc: &http.Client{Timeout: opTimeout},
		keys: map[string]bool{}}
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	proc := 0
	spawn := func(f func(ctx context.Context, p int, rng *rand.Rand)) {
		proc++
		p := proc
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(p)))
		wg.Add(1)
		go func() { defer wg.Done(); f(rctx, p, rng) }()
	}
	for range cfg.Registers {
		spawn(r.registerClient)
	}
	spawn(r.insertClient)
	spawn(r.counterClient)
	if cfg.Leaderless {
		for range 2 {
			spawn(r.siblingClient)
		}
	} else {
		for range cfg.Sessions {
			spawn(r.sessionClient)
		}
	}
	faultErr := r.nemesis(rctx, check.Schedule(cfg.Seed, cfg.Duration, cfg.Nemeses))
	wg.Wait()
	// Heal whatever is still broken, then read the final state.
	hctx, hcancel := context.WithTimeout(ctx, time.Minute)
	defer hcancel()
	if err := r.healAll(hctx); err != nil {
		return nil, err
	}
	healed := time.Now()
	h := &check.History{Ops: r.ops, Faults: r.faults, Setup: cfg.Setup}
	if cfg.MultiLeader {
		if err := r.converge(hctx, h); err != nil {
			return h, err
		}
		h.Final = h.Replicas[cfg.Cluster.Nodes[0].ID]
		for _, nd := range cfg.Cluster.Nodes {
			n, err := r.conflicts(hctx, nd)
			if err != nil {
				return h, err
			}
			h.Conflicts += n
		}
		return h, faultErr
	}
	final, err := r.finalReads(hctx)
	if err != nil {
		return h, err
	}
	h.Final = final
	if !cfg.Leaderless {
		// Every follower must catch up with what the leader holds.
		if err := r.converge(hctx, h); err != nil {
			return h, err
		}
	}
	if cfg.Leaderless {
		h.Repair, h.Unrepaired, err = r.repair(ctx, healed)
		if err != nil {
			return h, err
		}
	} else {
		rb, err := rollbacks(cfg.Cluster)
		if err != nil {
			return h, err
		}
		h.RolledBack = rb
	}
	return h, faultErr
}

type runner struct {
	cfg   Config
	start time.Time
	hc    *http.Client

	mu     sync.Mutex
	ops    []check.Op
	faults []check.Fault
	keys   map[string]bool
	broken map[*local.Node]string // killed or paused by the nemesis
}

func (r *runner) now() time.Duration { return time.Since(r.start) }

func (r *runner) record(op check.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	r.keys[op.Key] = true
}

// pick returns a random node the nemesis has not broken (any node if all
// are).
func (r *runner) pick(rng *rand.Rand) *local.Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ok []*local.Node
	for _, nd := range r.cfg.Cluster.Nodes {
		if r.broken[nd] == "" {
			ok = append(ok, nd)
		}
	}
	if len(ok) == 0 {
		ok = r.cfg.Cluster.Nodes
	}
	return ok[rng.IntN(len(ok))]
}

func (r *runner) nodeByHTTP(host string) string {
	for _, nd := range r.cfg.Cluster.Nodes {
		if nd.HTTP == host {
			return nd.ID
		}
	}
	return host
}

// outcomeOf classifies a failed request: refused before anything was
// sent or rejected as invalid is Fail; the rest may have been applied.
func outcomeOf(status int, err error) check.Outcome {
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED) {
			return check.Fail
		}
		return check.Unknown
	}
	if status >= 400 && status < 500 {
		return check.Fail
	}
	return check.Unknown
}

// put writes key=value through node nd (a follower redirects to the
// leader) and records the op.
func (r *runner) put(ctx context.Context, p int, kind check.Kind, nd *local.Node, key string, value int64, floor string) (token string) {
	op := check.Op{Process: p, Kind: kind, Key: key, Value: value, Start: r.now()}
	body := []byte(strconv.FormatInt(value, 10))
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+nd.HTTP+"/v1/kv/"+url.PathEscape(key), bytes.NewReader(body))
	if err != nil {
		return ""
	}
	if r.cfg.Leaderless {
		req.Header.Set("Replicant-W", r.cfg.W)
	}
	if floor != "" {
		// A session's writes carry its token, as the Go client sends it:
		// a multi-leader site orders the write after what it covers.
		req.Header.Set("Replicant-Token", floor)
	}
	resp, err := r.hc.Do(req)
	op.End = r.now()
	if ctx.Err() != nil && err != nil {
		op.Outcome, op.Error = check.Unknown, "run ended"
		r.record(op)
		return ""
	}
	if err != nil {
		op.Outcome, op.Error = outcomeOf(0, err), err.Error()
		r.record(op)
		return ""
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	op.Node = r.nodeByHTTP(resp.Request.URL.Host)
	if resp.StatusCode/100 != 2 {
		op.Outcome, op.Error = outcomeOf(resp.StatusCode, nil), strings.TrimSpace(string(msg))
		r.record(op)
		return ""
	}
	token = resp.Header.Get("Replicant-Token")
	op.Epoch, op.LSN = parseToken(token)
	op.Outcome = check.Ok
	r.record(op)
	return token
}

// get reads key at consistency through nd (with token for session
// reads) and records the op.
func (r *runner) get(ctx context.Context, p int, nd *local.Node, key, consistency, token string) (seen string) {
	op := check.Op{Process: p, Kind: check.Read, Key: key, Consistency: consistency, Start: r.now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nd.HTTP+"/v1/kv/"+url.PathEscape(key), nil)
	if err != nil {
		return
	}
	if consistency == check.Quorum || consistency == check.Siblings {
		req.Header.Set("Replicant-R", r.cfg.R)
	} else {
		req.Header.Set("Replicant-Consistency", consistency)
	}
	if token != "" {
		req.Header.Set("Replicant-Token", token)
	}
	resp, err := r.hc.Do(req)
	op.End = r.now()
	if err != nil {
		return "" // a read that failed tells nothing
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	op.Node = r.nodeByHTTP(resp.Request.URL.Host)
	switch resp.StatusCode {
	case http.StatusOK:
		v, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return ""
		}
		op.Found, op.Value = true, v
		op.VersionLSN, _ = strconv.ParseUint(resp.Header.Get("Replicant-Version-Lsn"), 10, 64)
	case http.StatusNotFound:
	case http.StatusMultipleChoices:
		// Leaderless siblings: {"context": …, "siblings": ["v1", "v2"]}.
		var sib struct {
			Siblings []string `json:"siblings"`
		}
		if json.Unmarshal(body, &sib) != nil || len(sib.Siblings) == 0 {
			return ""
		}
		op.Found, op.Siblings = true, len(sib.Siblings)
		op.Value, _ = strconv.ParseInt(sib.Siblings[0], 10, 64)
		for _, x := range sib.Siblings[1:] {
			if v, err := strconv.ParseInt(x, 10, 64); err == nil {
				op.Others = append(op.Others, v)
			}
		}
	default:
		return ""
	}
	seen = resp.Header.Get("Replicant-Token")
	op.Epoch, op.LSN = parseToken(seen)
	op.Outcome = check.Ok
	r.record(op)
	return seen
}

// parseToken returns an EPOCH:LSN token's parts (0, 0 for a vector token
// or none).
func parseToken(tok string) (epoch, lsn uint64) {
	t, err := engine.ParseToken(tok)
	if err != nil || t.Vector != "" {
		return 0, 0
	}
	return t.Epoch, t.LSN
}

// later is the session floor after seeing tok, as the Go client keeps it.
func later(cur, tok string) string { return engine.LaterToken(cur, tok) }

// unique returns a value no other op of the run writes.
func unique(p int, seq int64) int64 { return int64(p)<<40 | seq }

// registerClient writes and reads (linearizably) a few shared keys. In
// leaderless mode it writes three keys of its own (one writer per key: no
// siblings) and reads any register client's keys with R.
func (r *runner) registerClient(ctx context.Context, p int, rng *rand.Rand) {
	if r.cfg.MultiLeader {
		for seq := int64(1); ctx.Err() == nil; seq++ {
			switch rng.IntN(3) {
			case 0: // its own key
				r.put(ctx, p, check.Write, r.pick(rng), fmt.Sprintf("%sr%d-%d", r.cfg.Prefix, p, rng.IntN(3)), unique(p, seq), "")
			case 1: // a key every register client writes: conflicts across sites
				r.put(ctx, p, check.Write, r.pick(rng), fmt.Sprintf("%sx%d", r.cfg.Prefix, rng.IntN(3)), unique(p, seq), "")
			default:
				key := fmt.Sprintf("%sr%d-%d", r.cfg.Prefix, 1+rng.IntN(r.cfg.Registers), rng.IntN(3))
				r.get(ctx, p, r.pick(rng), key, check.Eventual, "")
			}
		}
		return
	}
	if r.cfg.Leaderless {
		for seq := int64(1); ctx.Err() == nil; seq++ {
			if rng.IntN(2) == 0 {
				r.put(ctx, p, check.Write, r.pick(rng), fmt.Sprintf("%sr%d-%d", r.cfg.Prefix, p, rng.IntN(3)), unique(p, seq), "")
			} else {
				// Register clients are processes 1..Registers.
				key := fmt.Sprintf("%sr%d-%d", r.cfg.Prefix, 1+rng.IntN(r.cfg.Registers), rng.IntN(3))
				r.get(ctx, p, r.pick(rng), key, check.Quorum, "")
			}
		}
		return
	}
	for seq := int64(1); ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("%sr%d", r.cfg.Prefix, rng.IntN(3))
		if rng.IntN(2) == 0 {
			r.put(ctx, p, check.Write, r.pick(rng), key, unique(p, seq), "")
		} else {
			r.get(ctx, p, r.pick(rng), key, check.Linearizable, "")
		}
	}
}

// siblingClient (leaderless) writes three keys every sibling client
// writes, through random nodes, and reads them: concurrent writes become
// siblings, which the report counts.
func (r *runner) siblingClient(ctx context.Context, p int, rng *rand.Rand) {
	for seq := int64(1); ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("%sx%d", r.cfg.Prefix, rng.IntN(3))
		if rng.IntN(2) == 0 {
			r.put(ctx, p, check.Write, r.pick(rng), key, unique(p, seq), "")
		} else {
			r.get(ctx, p, r.pick(rng), key, check.Siblings, "")
		}
	}
}

// insertClient writes keys once each: an acknowledged one must survive.
func (r *runner) insertClient(ctx context.Context, p int, rng *rand.Rand) {
	for seq := int64(1); ctx.Err() == nil; seq++ {
		r.put(ctx, p, check.Insert, r.pick(rng), fmt.Sprintf("%su%d-%d", r.cfg.Prefix, p, seq), unique(p, seq), "")
	}
}

// counterClient increments one counter through RESP (INCR). A follower
// refuses with READONLY naming the leader: the client goes there, as
// Redis clients follow a MOVED, and only the answer that decides the
// increment is recorded.
func (r *runner) counterClient(ctx context.Context, p int, rng *rand.Rand) {
	conns := map[string]*redis.Client{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	conn := func(addr string) *redis.Client {
		c := conns[addr]
		if c == nil {
			o := &redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: opTimeout, WriteTimeout: opTimeout}
			if r.cfg.Leaderless {
				o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
					return cn.Do(ctx, "REPLICANT.QUORUM", r.cfg.W, r.cfg.R).Err()
				}
			}
			c = redis.NewClient(o)
			conns[addr] = c
		}
		return c
	}
	addr := ""
	redirects := 0
	for ctx.Err() == nil {
		if addr == "" || redirects > 3 {
			// No leader named, or nodes naming each other during a
			// failover: pause, then start over from any node.
			if redirects > 3 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			addr, redirects = r.pick(rng).RESP, 0
		}
		key := r.cfg.Prefix + "c0"
		op := check.Op{Process: p, Kind: check.Incr, Key: key, Delta: 1, Start: r.now(), Node: r.nodeByRESP(addr)}
		err := conn(addr).Incr(ctx, key).Err()
		op.End = r.now()
		if err != nil && strings.HasPrefix(err.Error(), "READONLY") {
			// Refused before anything was written: try the leader it names.
			addr = leaderRESP(err.Error())
			redirects++
			continue
		}
		redirects = 0
		switch {
		case err == nil:
			op.Outcome = check.Ok
		case strings.HasPrefix(err.Error(), "LOADING"):
			op.Outcome, op.Error = check.Fail, err.Error()
		default:
			op.Outcome, op.Error = outcomeOf(0, err), err.Error()
		}
		r.record(op)
		if op.Outcome != check.Ok {
			addr = "" // another node next time
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// leaderRESP returns the leader's RESP address a READONLY error names
// ("… leader=n1 resp=127.0.0.1:6381"), or "" (no leader known: pick
// another node).
func leaderRESP(msg string) string {
	_, after, ok := strings.Cut(msg, "resp=")
	if !ok {
		return ""
	}
	return strings.Fields(after + " ")[0]
}

func (r *runner) nodeByRESP(addr string) string {
	for _, nd := range r.cfg.Cluster.Nodes {
		if nd.RESP == addr {
			return nd.ID
		}
	}
	return addr
}

// sessionClient writes its own key and reads it back on followers with
// its token (session), and reads the shared registers eventually.
func (r *runner) sessionClient(ctx context.Context, p int, rng *rand.Rand) {
	key := fmt.Sprintf("%ss%d", r.cfg.Prefix, p)
	token := "" // everything this session has seen, as the Go client keeps it
	for seq := int64(1); ctx.Err() == nil; seq++ {
		token = later(token, r.put(ctx, p, check.Write, r.pick(rng), key, unique(p, seq), token))
		token = later(token, r.get(ctx, p, r.pick(rng), key, check.Session, token))
		shared := fmt.Sprintf("%sr%d", r.cfg.Prefix, rng.IntN(3))
		if r.cfg.MultiLeader {
			shared = fmt.Sprintf("%sx%d", r.cfg.Prefix, rng.IntN(3))
		}
		r.get(ctx, p, r.pick(rng), shared, check.Eventual, "")
	}
}

// nemesis injects the planned faults in order, each healed on time.
func (r *runner) nemesis(ctx context.Context, plan []check.Planned) error {
	for _, f := range plan {
		if err := sleepUntil(ctx, r.start.Add(f.At)); err != nil {
			return nil
		}
		nd, err := r.target(ctx, f)
		if err != nil {
			r.progress("fault %s at %s: %v (skipped)", f.Kind, r.now().Round(time.Millisecond), err)
			continue
		}
		fault := check.Fault{Kind: f.Kind, Node: nd.ID, Start: r.now()}
		if err := r.inject(f.Kind, nd); err != nil {
			return fmt.Errorf("workload: %s on %s: %w", f.Kind, nd.ID, err)
		}
		r.progress("%s: %s on %s", fault.Start.Round(time.Millisecond), f.Kind, nd.ID)
		_ = sleepUntil(ctx, r.start.Add(f.Heal))
		hctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = r.heal(hctx, nd)
		cancel()
		if err != nil {
			return err
		}
		fault.Healed = r.now()
		r.progress("%s: healed %s", fault.Healed.Round(time.Millisecond), nd.ID)
		r.mu.Lock()
		r.faults = append(r.faults, fault)
		r.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(t)):
		return nil
	}
}

// target picks the node a fault hits: the current leader, or one of the
// other nodes.
func (r *runner) target(ctx context.Context, f check.Planned) (*local.Node, error) {
	if strings.HasSuffix(f.Kind, "-node") {
		nodes := r.cfg.Cluster.Nodes
		return nodes[f.NodePick%uint64(len(nodes))], nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	leader, _, err := r.cfg.Cluster.WaitLeader(lctx)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(f.Kind, "-leader") {
		return leader, nil
	}
	var others []*local.Node
	for _, nd := range r.cfg.Cluster.Nodes {
		if nd != leader {
			others = append(others, nd)
		}
	}
	if len(others) == 0 {
		return nil, errors.New("no follower")
	}
	return others[f.NodePick%uint64(len(others))], nil
}

func (r *runner) inject(kind string, nd *local.Node) error {
	var err error
	switch {
	case strings.HasPrefix(kind, "kill-"):
		err = nd.Kill()
	case strings.HasPrefix(kind, "pause-"):
		err = nd.Pause()
	case strings.HasPrefix(kind, "partition-"):
		if r.cfg.Lab == nil {
			return fmt.Errorf("nemesis %s needs the cluster in a network-namespace lab", kind)
		}
		err = r.cfg.Lab.Isolate(nd.ID)
	default:
		return fmt.Errorf("unknown nemesis %s", kind)
	}
	if err == nil {
		r.mu.Lock()
		if r.broken == nil {
			r.broken = map[*local.Node]string{}
		}
		r.broken[nd] = kind
		r.mu.Unlock()
	}
	return err
}

// heal undoes what the nemesis did to nd: restart a killed node, resume a
// paused one, and wait until it is ready.
func (r *runner) heal(ctx context.Context, nd *local.Node) error {
	r.mu.Lock()
	kind := r.broken[nd]
	r.mu.Unlock()
	switch {
	case kind == "":
		return nil
	case strings.HasPrefix(kind, "kill-"):
		if err := nd.Start(); err != nil {
			return err
		}
	case strings.HasPrefix(kind, "pause-"):
		if err := nd.Resume(); err != nil {
			return err
		}
	case strings.HasPrefix(kind, "partition-"):
		if err := r.cfg.Lab.Heal(nd.ID); err != nil {
			return err
		}
	}
	if err := nd.WaitReady(ctx); err != nil {
		return fmt.Errorf("workload: healing %s: %w", nd.ID, err)
	}
	r.mu.Lock()
	delete(r.broken, nd)
	r.mu.Unlock()
	return nil
}

func (r *runner) healAll(ctx context.Context) error {
	for _, nd := range r.cfg.Cluster.Nodes {
		if err := r.heal(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

// finalReads reads every key the run touched, linearizably, once a leader
// is back.
func (r *runner) finalReads(ctx context.Context) (map[string]int64, error) {
	var leader *local.Node
	if r.cfg.Leaderless {
		leader = r.cfg.Cluster.Nodes[0] // any node coordinates; reads ask every replica (R=all)
	} else {
		var err error
		if leader, _, err = r.cfg.Cluster.WaitLeader(ctx); err != nil {
			return nil, fmt.Errorf("workload: final reads: %w", err)
		}
	}
	r.mu.Lock()
	keys := make([]string, 0, len(r.keys))
	for k := range r.keys {
		keys = append(keys, k)
	}
	r.mu.Unlock()
	out := map[string]int64{}
	for _, k := range keys {
		v, found, err := r.readFinal(ctx, leader, k)
		if err != nil {
			return nil, fmt.Errorf("workload: final read of %s: %w", k, err)
		}
		if found {
			out[k] = v
		}
	}
	return out, nil
}

func (r *runner) readFinal(ctx context.Context, nd *local.Node, key string) (int64, bool, error) {
	hdr := [2]string{"Replicant-Consistency", check.Linearizable}
	if r.cfg.Leaderless {
		hdr = [2]string{"Replicant-R", "all"}
	}
	for attempt := 0; ; attempt++ {
		v, found, err := r.readValue(ctx, nd, key, hdr)
		if err == nil || attempt == 50 || ctx.Err() != nil {
			return v, found, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readValue is one GET of key on nd with the header hdr (name, value):
// the integer it holds, or not found. Siblings (leaderless keys written
// concurrently on purpose) count as not found: no checker judges the
// final value of those keys.
func (r *runner) readValue(ctx context.Context, nd *local.Node, key string, hdr [2]string) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nd.HTTP+"/v1/kv/"+url.PathEscape(key), nil)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set(hdr[0], hdr[1])
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, false, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		v, err := strconv.ParseInt(string(body), 10, 64)
		return v, err == nil, err
	case http.StatusNotFound, http.StatusMultipleChoices:
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
}

// converge reads every key on every node (its own state) until they all
// hold the same data (followers or links caught up) or ctx ends, and
// records each node's view in h.Replicas.
func (r *runner) converge(ctx context.Context, h *check.History) error {
	r.mu.Lock()
	keys := make([]string, 0, len(r.keys))
	for k := range r.keys {
		keys = append(keys, k)
	}
	r.mu.Unlock()
	for {
		views := map[string]map[string]int64{}
		for _, nd := range r.cfg.Cluster.Nodes {
			view := map[string]int64{}
			for _, k := range keys {
				v, found, err := r.readLocal(ctx, nd, k)
				if err != nil {
					return fmt.Errorf("workload: final read of %s on %s: %w", k, nd.ID, err)
				}
				if found {
					view[k] = v
				}
			}
			views[nd.ID] = view
		}
		h.Replicas = views
		if check.Convergence(h).Count == 0 || ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// readLocal reads key on nd's own state (eventual).
func (r *runner) readLocal(ctx context.Context, nd *local.Node, key string) (int64, bool, error) {
	return r.readValue(ctx, nd, key, [2]string{"Replicant-Consistency", check.Eventual})
}

// conflicts is the conflicts nd's site recorded
// (replicant_conflicts_total on its /metrics).
func (r *runner) conflicts(ctx context.Context, nd *local.Node) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nd.HTTP+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("workload: metrics of %s: %w", nd.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("workload: metrics of %s: %w", nd.ID, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "replicant_conflicts_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("workload: metrics of %s: %q: %w", nd.ID, line, err)
			}
			return int(f), nil
		}
	}
	return 0, nil
}

// rollbacks reads the rollback files in the nodes' data directories (a
// returning old leader writes the suffix it discarded there), for the
// values this workload writes: decimal integers.
func rollbacks(c *local.Cluster) ([]check.RolledBack, error) {
	var out []check.RolledBack
	for _, nd := range c.Nodes {
		if nd.Data == "" {
			continue // a node this run does not manage (--against)
		}
		files, err := filepath.Glob(filepath.Join(nd.Data, "rollback", "*.jsonl"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("workload: rollback file of %s: %w", nd.ID, err)
			}
			rel, _ := filepath.Rel(nd.Data, f)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(line) == "" {
					continue
				}
				var rec struct {
					LSN   uint64 `json:"lsn"`
					Epoch uint64 `json:"epoch"`
					Ops   []struct {
						Op    string `json:"op"`
						Key   []byte `json:"key"`
						Value []byte `json:"value"`
					} `json:"ops"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					return nil, fmt.Errorf("workload: %s: %w", f, err)
				}
				for _, op := range rec.Ops {
					v, err := strconv.ParseInt(string(op.Value), 10, 64)
					if err != nil {
						continue // not a value of this workload
					}
					out = append(out, check.RolledBack{Node: nd.ID, File: rel, Key: string(op.Key), Value: v, Epoch: rec.Epoch, LSN: rec.LSN})
				}
			}
		}
	}
	return out, nil
}

// repair (leaderless) waits until every replica holds every acknowledged
// insert it is a replica of, by the ring of the cluster's members: no
// client reads those keys, so only hinted handoff and anti-entropy can
// bring them to a replica that missed them. It gives up after two
// minutes, returning -1 and what is still missing.
func (r *runner) repair(ctx context.Context, healed time.Time) (time.Duration, int, error) {
	var ids []string
	for _, nd := range r.cfg.Cluster.Nodes {
		ids = append(ids, nd.ID)
	}
	ring, err := leaderless.NewRing(ids, leaderless.DefaultVNodes)
	if err != nil {
		return 0, 0, err
	}
	want := map[string]map[string]bool{} // node → keys it must hold
	r.mu.Lock()
	for _, op := range r.ops {
		if op.Kind == check.Insert && op.Outcome == check.Ok {
			for _, id := range ring.Preference([]byte(op.Key), r.cfg.N) {
				if want[id] == nil {
					want[id] = map[string]bool{}
				}
				want[id][op.Key] = true
			}
		}
	}
	r.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		missing := 0
		for _, nd := range r.cfg.Cluster.Nodes {
			if len(want[nd.ID]) == 0 {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: nd.RESP, MaxRetries: -1})
			// KEYS on a leaderless node lists the keys it holds itself.
			keys, err := c.Keys(ctx, r.cfg.Prefix+"u*").Result()
			c.Close()
			if err != nil {
				missing += len(want[nd.ID])
				continue
			}
			held := make(map[string]bool, len(keys))
			for _, k := range keys {
				held[k] = true
			}
			for k := range want[nd.ID] {
				if !held[k] {
					missing++
				}
			}
		}
		if missing == 0 {
			return time.Since(healed), 0, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return -1, missing, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}
