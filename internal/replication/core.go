package replication

import (
	"github.com/replicant-db/replicant/internal/policy"

	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// DefaultSyncTimeout is the SyncTimeout a Core uses when its configuration
// gives none.
const DefaultSyncTimeout = 10 * time.Second

// Event kinds a Core reports.
const (
	EventSyncPromoted      = "sync-promoted"      // a follower's acks count for commit now
	EventSyncDemoted       = "sync-demoted"       // a follower's acks no longer count
	EventFallbackEngaged   = "fallback-engaged"   // commit no longer waits for followers
	EventFallbackCleared   = "fallback-cleared"   // commit waits for followers again
	EventFollowerUnhealthy = "follower-unhealthy" // disconnected, silent or lagging
	EventFollowerHealthy   = "follower-healthy"   // connected and within SyncTimeout
)

const (
	// maxAppendRecords bounds the history of append times a Core keeps.
	maxAppendRecords = 1 << 16
	// appendGranularity merges appends closer together than this into
	// one record, so lag ages are overestimated by less than it.
	appendGranularity = time.Millisecond
	// maxPendingEvents bounds the events waiting for Ready; older ones
	// are dropped first.
	maxPendingEvents = 4096
	// maxLiveProposals bounds the distinct proposals made against one
	// committed sync set; beyond it the core waits for the control plane.
	maxLiveProposals = 64
)

// CoreConfig configures a Core.
type CoreConfig struct {
	// SyncTimeout is how long a sync follower may be silent, or have an
	// entry older than this unacknowledged, before it counts as unhealthy
	// and is replaced (FIRST) or the fallback applies. Zero or negative
	// means DefaultSyncTimeout.
	SyncTimeout time.Duration
	Policy      policy.Commit
	Ack         policy.Ack
	Fallback    policy.Fallback
	// Followers is every other member of the cluster, in cluster
	// (priority) order. It is the meaning of "*" in a policy.
	Followers []string
	// CommittedSyncSet is the sync set the control plane holds now.
	CommittedSyncSet []string
	// CommitLSN is the commit LSN already established when the core
	// starts, e.g. the log's last LSN from which the Writer starts. The
	// core treats it as committed and locally durable and never reports
	// less. Entries up to it count as appended at the core's start time.
	CommitLSN uint64
	// MustHoldLSN, when above the commit LSN, is what a new sync set must
	// hold before old members leave it: a restarted or newly appointed
	// leader may hold acknowledged writes above the commit LSN it recorded
	// (the record lags by a batch), so it keeps the old members until the
	// new set holds its whole log.
	MustHoldLSN uint64
}

// Event is something an operator should see (status, log, metrics).
type Event struct {
	At       time.Time
	Kind     string // one of the Event* constants
	Follower string // empty for fallback events
	Message  string
}

// Ready is what a Core asks its driver to do.
type Ready struct {
	// CommitLSN is the current commit LSN (it only ever rises).
	CommitLSN uint64
	// ProposeSyncSet, when non-nil, asks the control plane to store
	// exactly this sync set (a non-nil empty slice means the empty set);
	// once it is committed there, the driver calls SyncSetCommitted.
	ProposeSyncSet []string
	// ProposeFrom is the committed sync set ProposeSyncSet was computed
	// from. The control plane must store ProposeSyncSet only if its sync
	// set still equals ProposeFrom (compare-and-set, in any order).
	ProposeFrom []string
	// Events happened since the previous Ready, oldest first.
	Events []Event
}

// FollowerProgress is what the leader knows about one follower.
type FollowerProgress struct {
	ID        string
	Sync      bool // its acks count for commit now
	Healthy   bool
	Connected bool
	// Received, Durable and Applied are the positions it acknowledged.
	Received, Durable, Applied uint64
	// LastSeen is the time of its last Ack or Connected.
	LastSeen time.Time
	// LagEntries is how many entries the leader appended beyond Applied.
	LagEntries uint64
	// LagBytes is filled in by the leader's driver (the core does not
	// know entry sizes); 0 from Core.Progress.
	LagBytes uint64
	// LagSeconds is the age of the oldest entry above Applied (0 when
	// caught up).
	LagSeconds float64
	// State is "streaming" (healthy), "catching-up" (connected, not yet
	// caught up since it (re)connected), "lagging" (it was caught up, now
	// is silent or too far behind) or "disconnected".
	State string
}

// Follower states reported in FollowerProgress.State.
const (
	StateStreaming    = "streaming"
	StateCatchingUp   = "catching-up"
	StateLagging      = "lagging"
	StateDisconnected = "disconnected"
)

type followerState struct {
	connected      bool
	everConnected  bool
	caughtUp       bool // healthy at least once since the stream (re)started
	healthy        bool
	received       uint64
	durable        uint64
	applied        uint64
	lastSeen       time.Time
	disconnectedAt time.Time
}

// Core is the leader's commit decision as a deterministic state machine:
// it takes the leader's appends and fsyncs, the followers'
// acknowledgements and connections, the control plane's sync set and the
// time, and computes the commit LSN, the sync set to propose to the
// control plane, and events. It does no I/O, starts no goroutines and
// reads no clock; it is not safe for concurrent use (the driver serialises
// calls). Inputs never panic: unknown followers are ignored, positions
// and times that go backwards are ignored.
//
// Invariants:
//
//   - CommitLSN never decreases and never exceeds LocalDurable (the leader
//     fsyncs an entry before it is acknowledged anywhere).
//   - Desired sync set D: async → {}; all → every follower; ANY k (L) → L;
//     FIRST k (L) → the first k healthy members of L in list order. L "*"
//     means Followers; members of L that are not followers are ignored. So
//     a FIRST member that turns unhealthy is replaced by the next healthy
//     one in list order, and takes its place back once healthy again.
//   - Counted set K (whose acks count): K = C ∩ D, where C is the sync set
//     the control plane has committed (SyncSetCommitted), and K is also
//     within every proposal P made since C last changed (any of them may
//     still land). Hence K ⊆ C always, and C stays within reach of every
//     acknowledged write: a failover that picks from C finds it. One
//     refinement for FIRST: while fewer than k members of that K are
//     healthy (a returning higher-priority member is not in C yet), healthy
//     members of L ∩ C (and of those proposals) keep counting, in list
//     order, up to k; so a member's return never stalls commits.
//   - The sync set changes add first, remove after: while D ⊄ C the core
//     proposes C ∪ D; once C ⊇ D, C ≠ D and the members of D alone hold
//     the commit LSN as the policy requires, it proposes D. At most one
//     proposal is outstanding: it is re-proposed (or replaced) only after
//     SyncSetCommitted reports a change of C, or after a Tick finds it
//     older than SyncTimeout. Proposals are compare-and-set: Ready.ProposeFrom
//     is the C each was computed from, and the control plane must store a
//     proposal only if it still holds that set (and only from the current
//     epoch); the core assumes proposals from an earlier C can never land.
//   - Commit: need = k (FIRST, ANY) or |D| (all). With each member's
//     position at the ack level, commit = min(LocalDurable, the need-th
//     highest position in K) when |K| ≥ need. async: commit =
//     LocalDurable.
//   - When fewer than need members of K are healthy the policy cannot be
//     satisfied: under policy.FallbackBlock commit waits for acks (Blocked
//     reports why); under policy.FallbackAsync, once the fallback engages, commit
//     = LocalDurable until enough members of K are healthy again. The
//     fallback engages at once when too few healthy candidates exist, and
//     only after SyncTimeout while a sync-set change that would fix it is
//     pending; a new Core gives followers SyncTimeout to connect first.
//   - Health: a follower is unhealthy when disconnected, silent (no Ack or
//     Connected) for more than SyncTimeout, or lagging: an entry appended
//     more than SyncTimeout ago is above its position at the ack level.
type Core struct {
	syncTimeout time.Duration
	mustHold    uint64 // see CoreConfig.MustHoldLSN
	policy      policy.Commit
	ack         policy.Ack
	fallback    policy.Fallback

	order []string
	fs    map[string]*followerState

	committed []string // C
	desired   []string // D
	counted   []string // K

	proposing  bool // a proposal is outstanding (not landed, not re-armed)
	proposedAt time.Time
	live       [][]string // proposals made since C last changed
	emit       []string   // proposal for the next Ready
	emitFrom   []string
	emitting   bool

	appends      appendLog
	lastAppended uint64
	localDurable uint64
	commit       uint64

	start, now     time.Time
	shortfall      bool
	shortfallSince time.Time
	fallbackActive bool

	events []Event
}

// NewCore returns a Core in the given configuration at time now. Followers
// start disconnected.
func NewCore(cfg CoreConfig, now time.Time) *Core {
	c := &Core{
		syncTimeout:  cfg.SyncTimeout,
		fs:           map[string]*followerState{},
		committed:    uniqueNames(cfg.CommittedSyncSet),
		start:        now,
		now:          now,
		commit:       cfg.CommitLSN,
		mustHold:     cfg.MustHoldLSN,
		localDurable: cfg.CommitLSN,
		lastAppended: cfg.CommitLSN,
	}
	if c.syncTimeout <= 0 {
		c.syncTimeout = DefaultSyncTimeout
	}
	if cfg.CommitLSN > 0 {
		c.appends.add(cfg.CommitLSN, now)
	}
	c.setConfig(cfg.Policy, cfg.Ack, cfg.Fallback, cfg.Followers)
	for _, id := range c.order {
		c.fs[id] = &followerState{}
	}
	// The initial state is not news: compute it without events.
	c.evaluate()
	c.events = nil
	return c
}

func (c *Core) setConfig(p policy.Commit, a policy.Ack, f policy.Fallback, followers []string) {
	c.policy = normalizePolicy(p)
	if a > policy.AckApplied {
		a = policy.AckDurable
	}
	c.ack = a
	if f > policy.FallbackAsync {
		f = policy.FallbackBlock
	}
	c.fallback = f
	c.order = uniqueNames(followers)
}

// normalizePolicy makes any Policy value usable: k below 1 counts as 1,
// duplicate members are dropped, and an unknown kind is treated as "all",
// the strictest policy.
func normalizePolicy(p policy.Commit) policy.Commit {
	switch p.Kind {
	case policy.Async, policy.All:
		return policy.Commit{Kind: p.Kind}
	case policy.First, policy.Any:
		q := policy.Commit{Kind: p.Kind, K: max(p.K, 1)}
		if len(p.Members) > 0 {
			q.Members = uniqueNames(p.Members)
		}
		return q
	}
	return policy.Commit{Kind: policy.All}
}

// uniqueNames copies names without empty strings and duplicates.
func uniqueNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (c *Core) observe(now time.Time) {
	if now.After(c.now) {
		c.now = now
	}
}

// Appended reports that the leader appended its log up to lsn, the newest
// entry created at time at. LSNs at or below an earlier Appended are
// ignored.
func (c *Core) Appended(lsn uint64, at time.Time) {
	if lsn <= c.lastAppended {
		return
	}
	c.lastAppended = lsn
	c.appends.add(lsn, at)
	c.evaluate()
}

// LocalDurable reports that the leader's own fsync reached lsn. Lower
// values than before are ignored.
func (c *Core) LocalDurable(lsn uint64) {
	if lsn <= c.localDurable {
		return
	}
	c.localDurable = lsn
	c.evaluate()
}

// Ack records a follower's acknowledged positions. Each position only
// rises; lower values are ignored. Any Ack, even one that changes nothing,
// counts as a sign of life. Acks of unknown followers are ignored.
func (c *Core) Ack(id string, received, durable, applied uint64, now time.Time) {
	c.observe(now)
	if f := c.fs[id]; f != nil {
		f.received = max(f.received, received)
		f.durable = max(f.durable, durable)
		f.applied = max(f.applied, applied)
		if c.now.After(f.lastSeen) {
			f.lastSeen = c.now
		}
	}
	c.evaluate()
}

// Connected reports that a follower's stream (re)started at matchLSN: its
// log equals the leader's up to there (after any divergent suffix was
// truncated). Its received position becomes matchLSN; its durable and
// applied positions drop to matchLSN if they were higher (they are not
// raised: only an Ack says what is fsynced or applied). The commit LSN is
// never lowered.
func (c *Core) Connected(id string, matchLSN uint64, now time.Time) {
	c.observe(now)
	if f := c.fs[id]; f != nil {
		f.connected, f.everConnected, f.caughtUp = true, true, false
		f.received = matchLSN
		f.durable = min(f.durable, matchLSN)
		f.applied = min(f.applied, matchLSN)
		if c.now.After(f.lastSeen) {
			f.lastSeen = c.now
		}
	}
	c.evaluate()
}

// Disconnected reports that a follower's stream ended.
func (c *Core) Disconnected(id string, now time.Time) {
	c.observe(now)
	if f := c.fs[id]; f != nil && f.connected {
		f.connected, f.caughtUp = false, false
		f.disconnectedAt = c.now
	}
	c.evaluate()
}

// Tick re-evaluates health, promotions and the fallback at time now, and
// re-arms a sync-set proposal outstanding for longer than SyncTimeout.
func (c *Core) Tick(now time.Time) {
	c.observe(now)
	if c.proposing && c.now.Sub(c.proposedAt) > c.syncTimeout {
		c.proposing = false
	}
	c.evaluate()
}

// Configure changes the policy, ack level, fallback and membership at run
// time. Followers that stay keep their progress; new ones start
// disconnected.
func (c *Core) Configure(p policy.Commit, a policy.Ack, f policy.Fallback, followers []string, now time.Time) {
	c.observe(now)
	c.setConfig(p, a, f, followers)
	fs := make(map[string]*followerState, len(c.order))
	for _, id := range c.order {
		if old := c.fs[id]; old != nil {
			fs[id] = old
		} else {
			fs[id] = &followerState{}
		}
	}
	c.fs = fs
	c.evaluate()
}

// SyncSetCommitted reports the sync set the control plane holds now. The
// driver calls it whenever that set changes (whoever changed it), and may
// call it again with an unchanged set. A change ends the outstanding
// proposal: it either landed or, being compare-and-set, never will.
func (c *Core) SyncSetCommitted(set []string, now time.Time) {
	c.observe(now)
	set = uniqueNames(set)
	if !sameSet(set, c.committed) {
		c.proposing, c.live = false, nil
	}
	c.committed = set
	c.evaluate()
}

// Ready drains the pending outputs: the sync set to propose, if any, and
// the events. CommitLSN is always the current value.
func (c *Core) Ready() Ready {
	r := Ready{CommitLSN: c.commit, Events: c.events}
	if c.emitting {
		r.ProposeSyncSet, r.ProposeFrom = c.emit, c.emitFrom
		c.emit, c.emitFrom, c.emitting = nil, nil, false
	}
	c.events = nil
	return r
}

// CommitLSN is the highest LSN that satisfies the commit policy.
func (c *Core) CommitLSN() uint64 { return c.commit }

// FallbackActive reports whether policy.FallbackAsync is in effect: commit does
// not wait for followers.
func (c *Core) FallbackActive() bool { return c.fallbackActive }

// Blocked reports whether the policy cannot currently be satisfied, so
// commit waits (under policy.FallbackBlock; under policy.FallbackAsync only until the
// fallback engages), and why, in words fit for a client error, e.g.
// "FIRST 1 (n2,n3) needs 1 synchronous follower with durable ack;
// healthy: none (n2: disconnected 3.2s ago; n3: lagging 1203 entries,
// 12.5s behind)".
func (c *Core) Blocked() (bool, string) {
	if !c.shortfall || c.fallbackActive {
		return false, ""
	}
	return true, c.shortfallReason()
}

// Progress reports every follower, in follower order, as of now.
func (c *Core) Progress(now time.Time) []FollowerProgress {
	out := make([]FollowerProgress, 0, len(c.order))
	last := c.last()
	for _, id := range c.order {
		f := c.fs[id]
		healthy, _ := c.health(f, now)
		p := FollowerProgress{
			ID:        id,
			Sync:      slices.Contains(c.counted, id),
			Healthy:   healthy,
			Connected: f.connected,
			Received:  f.received,
			Durable:   f.durable,
			Applied:   f.applied,
			LastSeen:  f.lastSeen,
		}
		if last > f.applied {
			p.LagEntries = last - f.applied
		}
		if at, ok := c.appends.firstAbove(f.applied); ok && now.After(at) {
			p.LagSeconds = now.Sub(at).Seconds()
		}
		switch {
		case !f.connected:
			p.State = StateDisconnected
		case healthy:
			p.State = StateStreaming
		case !f.caughtUp:
			p.State = StateCatchingUp
		default:
			p.State = StateLagging
		}
		out = append(out, p)
	}
	return out
}

// last is the newest LSN the leader has.
func (c *Core) last() uint64 { return max(c.lastAppended, c.localDurable) }

func (c *Core) ackPos(f *followerState) uint64 {
	switch c.ack {
	case policy.AckReceived:
		return f.received
	case policy.AckApplied:
		return f.applied
	}
	return f.durable
}

// health says whether f is healthy at now, and if not, why.
func (c *Core) health(f *followerState, now time.Time) (bool, string) {
	if !f.connected {
		if !f.everConnected {
			return false, "never connected"
		}
		if ago := now.Sub(f.disconnectedAt); ago >= 50*time.Millisecond {
			return false, "disconnected " + seconds(ago) + " ago"
		}
		return false, "disconnected just now"
	}
	if silent := now.Sub(f.lastSeen); silent > c.syncTimeout {
		return false, "silent for " + seconds(silent)
	}
	pos := c.ackPos(f)
	if at, ok := c.appends.firstAbove(pos); ok {
		if age := now.Sub(at); age > c.syncTimeout {
			behind := uint64(0)
			if last := c.last(); last > pos {
				behind = last - pos
			}
			return false, fmt.Sprintf("lagging %d entries, %s behind", behind, seconds(age))
		}
	}
	return true, ""
}

func seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// candidates are the followers the policy may choose from, in order.
func (c *Core) candidates() []string {
	switch c.policy.Kind {
	case policy.All:
		return c.order
	case policy.First, policy.Any:
		if c.policy.Members == nil {
			return c.order
		}
		out := make([]string, 0, len(c.policy.Members))
		for _, id := range c.policy.Members {
			if c.fs[id] != nil {
				out = append(out, id)
			}
		}
		return out
	}
	return nil
}

// desiredSet computes D.
func (c *Core) desiredSet() []string {
	switch c.policy.Kind {
	case policy.All, policy.Any:
		return c.candidates()
	case policy.First:
		var out []string
		for _, id := range c.candidates() {
			if len(out) == c.policy.K {
				break
			}
			if c.fs[id].healthy {
				out = append(out, id)
			}
		}
		return out
	}
	return nil
}

// need is how many acks the policy requires.
func (c *Core) need() int {
	switch c.policy.Kind {
	case policy.All:
		return len(c.desired)
	case policy.First, policy.Any:
		return c.policy.K
	}
	return 0
}

func (c *Core) event(kind, follower, msg string) {
	if len(c.events) >= maxPendingEvents {
		c.events = slices.Delete(c.events, 0, 1)
	}
	c.events = append(c.events, Event{At: c.now, Kind: kind, Follower: follower, Message: msg})
}

// evaluate recomputes everything from the inputs at c.now.
func (c *Core) evaluate() {
	now := c.now

	// Health.
	for _, id := range c.order {
		f := c.fs[id]
		healthy, why := c.health(f, now)
		if healthy {
			f.caughtUp = true
		}
		if healthy != f.healthy {
			f.healthy = healthy
			if healthy {
				c.event(EventFollowerHealthy, id, id+" is healthy")
			} else {
				c.event(EventFollowerUnhealthy, id, id+" is unhealthy: "+why)
			}
		}
	}

	// D, then K = C ∩ D ∩ every live proposal.
	c.desired = c.desiredSet()
	need := c.need()
	countable := func(id string) bool {
		if !slices.Contains(c.committed, id) {
			return false
		}
		for _, p := range c.live {
			if !slices.Contains(p, id) {
				return false
			}
		}
		return true
	}
	var counted []string
	healthyK := 0
	for _, id := range c.desired {
		if countable(id) {
			counted = append(counted, id)
			if c.fs[id].healthy {
				healthyK++
			}
		}
	}
	if c.policy.Kind == policy.First && healthyK < need {
		// A higher-priority member is waiting to enter C: until it does,
		// the healthy members of C it replaces keep counting, so its
		// return does not stall commits.
		for _, id := range c.candidates() {
			if healthyK == need {
				break
			}
			if c.fs[id].healthy && countable(id) && !slices.Contains(counted, id) {
				counted = append(counted, id)
				healthyK++
			}
		}
	}
	for _, id := range counted {
		if !slices.Contains(c.counted, id) {
			c.event(EventSyncPromoted, id, fmt.Sprintf("%s now counts for %s", id, c.policy))
		}
	}
	for _, id := range c.counted {
		if !slices.Contains(counted, id) {
			c.event(EventSyncDemoted, id, fmt.Sprintf("%s no longer counts for %s: %s", id, c.policy, c.notCountedReason(id)))
		}
	}
	c.counted = counted

	// Shortfall and fallback.
	healthyD := 0
	for _, id := range c.desired {
		if c.fs[id].healthy {
			healthyD++
		}
	}
	short := c.policy.Kind != policy.Async && healthyK < need
	if short && !c.shortfall {
		c.shortfallSince = now
	}
	c.shortfall = short
	switch {
	case c.fallbackActive && !(short && c.fallback == policy.FallbackAsync):
		c.fallbackActive = false
		c.event(EventFallbackCleared, "", fmt.Sprintf("commit waits for synchronous followers again (%s)", c.policy))
	case !c.fallbackActive && short && c.fallback == policy.FallbackAsync &&
		now.Sub(c.start) > c.syncTimeout &&
		(healthyD < need || now.Sub(c.shortfallSince) > c.syncTimeout):
		c.fallbackActive = true
		c.event(EventFallbackEngaged, "", "commit no longer waits for followers: "+c.shortfallReason())
	}

	// Commit.
	target := c.commit
	switch {
	case need == 0 || c.fallbackActive:
		target = c.localDurable
	case len(counted) >= need:
		target = min(c.localDurable, c.nthHighest(counted, need))
	}
	if target > c.commit {
		c.commit = target
	}

	// Sync-set proposal: add first, remove after.
	var want []string
	switch {
	case !isSubset(c.desired, c.committed):
		want = c.union(c.committed, c.desired)
	case !sameSet(c.committed, c.desired) && c.holdsCommit(c.desired, need):
		want = append([]string{}, c.desired...)
	}
	if want != nil && !c.proposing {
		known := slices.ContainsFunc(c.live, func(p []string) bool { return sameSet(p, want) })
		if known || len(c.live) < maxLiveProposals {
			if !known {
				c.live = append(c.live, want)
			}
			c.proposing, c.proposedAt = true, now
			c.emit, c.emitFrom, c.emitting = slices.Clone(want), slices.Clone(c.committed), true
		}
	}
}

// nthHighest returns the n-th highest ack-level position among ids
// (n ≥ 1, n ≤ len(ids)).
func (c *Core) nthHighest(ids []string, n int) uint64 {
	pos := make([]uint64, len(ids))
	for i, id := range ids {
		pos[i] = c.ackPos(c.fs[id])
	}
	sort.Slice(pos, func(i, j int) bool { return pos[i] > pos[j] })
	return pos[n-1]
}

// holdsCommit reports whether at least need members of ids hold the commit
// LSN at the ack level, so the sync set may shrink to ids.
func (c *Core) holdsCommit(ids []string, need int) bool {
	n := 0
	for _, id := range ids {
		if f := c.fs[id]; f != nil && c.ackPos(f) >= max(c.commit, c.mustHold) {
			n++
		}
	}
	return n >= need
}

// union returns a ∪ b with followers in follower order first, then the
// others in the order they appear.
func (c *Core) union(a, b []string) []string {
	out := []string{}
	for _, id := range c.order {
		if slices.Contains(a, id) || slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	for _, id := range slices.Concat(a, b) {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func isSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool { return isSubset(a, b) && isSubset(b, a) }

// notCountedReason says why a follower's acks do not count.
func (c *Core) notCountedReason(id string) string {
	f := c.fs[id]
	switch {
	case f == nil:
		return "no longer a follower"
	case !f.healthy:
		_, why := c.health(f, c.now)
		return why
	case !slices.Contains(c.desired, id):
		return "not chosen by the policy"
	case !slices.Contains(c.committed, id):
		return "healthy, waiting for the control plane to add it to the sync set"
	default:
		return "healthy, waiting for a sync-set change to commit"
	}
}

// shortfallReason explains why the policy cannot be satisfied now.
func (c *Core) shortfallReason() string {
	need := c.need()
	var b strings.Builder
	noun := "followers"
	if need == 1 {
		noun = "follower"
	}
	fmt.Fprintf(&b, "%s needs %d synchronous %s with %s ack; healthy: ", c.policy, need, noun, c.ack)
	var healthy, details []string
	for _, id := range c.counted {
		if c.fs[id].healthy {
			healthy = append(healthy, id)
		}
	}
	if len(healthy) == 0 {
		b.WriteString("none")
	} else {
		b.WriteString(strings.Join(healthy, ", "))
	}
	cands := c.candidates()
	for _, id := range cands {
		if !slices.Contains(healthy, id) {
			details = append(details, id+": "+c.notCountedReason(id))
		}
	}
	for _, id := range c.policy.Members {
		if c.fs[id] == nil {
			details = append(details, id+": not a follower")
		}
	}
	if len(cands) < need {
		details = append(details, fmt.Sprintf("only %d of the candidates %s", len(cands), isAre(len(cands))))
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, "; ") + ")")
	}
	return b.String()
}

func isAre(n int) string {
	if n == 1 {
		return "is a follower"
	}
	return "are followers"
}

// appendLog remembers when the leader appended which LSNs, as records
// (lsn, at): the entries above the previous record's lsn up to lsn were
// appended from time at on. Appends closer than appendGranularity share a
// record; when the log is full, the older half is merged pairwise, so the
// history is bounded and only old records get coarser. For entries
// appended since the core started, ages read from it are never
// underestimated, and overestimated by at most appendGranularity until the
// older half is merged.
type appendLog struct {
	recs []appendRec
}

type appendRec struct {
	lsn uint64
	at  time.Time
}

func (l *appendLog) add(lsn uint64, at time.Time) {
	if n := len(l.recs); n > 0 {
		last := &l.recs[n-1]
		if lsn <= last.lsn {
			return
		}
		if at.Before(last.at) {
			at = last.at
		}
		if at.Sub(last.at) < appendGranularity {
			last.lsn = lsn
			return
		}
	}
	if len(l.recs) >= maxAppendRecords {
		l.compact()
	}
	l.recs = append(l.recs, appendRec{lsn: lsn, at: at})
}

// compact merges the older half of the records pairwise, keeping each
// pair's earlier time and later LSN.
func (l *appendLog) compact() {
	half := len(l.recs) / 2 &^ 1
	j := 0
	for i := 0; i+1 < half; i += 2 {
		l.recs[j] = appendRec{lsn: l.recs[i+1].lsn, at: l.recs[i].at}
		j++
	}
	j += copy(l.recs[j:], l.recs[half:])
	l.recs = l.recs[:j]
}

// firstAbove returns the time the oldest entry above lsn was appended, or
// false if none is.
func (l *appendLog) firstAbove(lsn uint64) (time.Time, bool) {
	i := sort.Search(len(l.recs), func(i int) bool { return l.recs[i].lsn > lsn })
	if i == len(l.recs) {
		return time.Time{}, false
	}
	return l.recs[i].at, true
}
