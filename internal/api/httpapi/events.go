package httpapi

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// Kinds of the timeline events the monitor derives by comparing two
// successive status documents. The leader's own replication events
// (sync-promoted, fallback-engaged, follower-unhealthy, …) join the
// timeline under their own kinds.
const (
	EventLeaderChanged   = "leader-changed"   // a new epoch with another leader: failover or switchover
	EventEpochChanged    = "epoch-changed"    // a new epoch, same (or first) leader
	EventLeaderLost      = "leader-lost"      // the control plane names no leader any more
	EventSyncSetChanged  = "sync-set-changed" // the followers that count for commit changed
	EventPolicyChanged   = "policy-changed"   // commit policy, ack level or fallback changed
	EventMemberAdded     = "member-added"
	EventMemberRemoved   = "member-removed"
	EventWritesBlocked   = "writes-blocked"   // the leader's commits wait for missing sync followers
	EventWritesUnblocked = "writes-unblocked" // they commit again
	EventStateChanged    = "state-changed"    // this node's replication state (streaming, snapshotting, no-quorum, …)
	EventFallback        = "fallback-engaged" // as the leader's own event; derived on followers only
	EventFallbackCleared = "fallback-cleared"
	EventLinkState       = "link-state" // multi-leader: an incoming link's state changed
	EventLinkAdded       = "link-added"
	EventLinkRemoved     = "link-removed"
	EventMemberHealth    = "member-health" // leaderless: a ring member became (un)reachable
	EventRebalance       = "rebalance"     // leaderless: data movement state changed
)

// Sizes of the monitor's rings: 10 minutes of one-second samples, and the
// newest timeline events (a failover storm of a few dozen events fits).
const (
	maxSamples     = 600
	maxTimeline    = 200
	sampleInterval = time.Second
)

// Sample is one point of the dashboard's charts: this node's view at T.
type Sample struct {
	T         int64  `json:"t"` // Unix milliseconds
	Epoch     uint64 `json:"epoch"`
	Leader    string `json:"leader,omitempty"`
	CommitLSN uint64 `json:"commit_lsn"`
	// Lag per follower (single-leader: as the leader reports it), per
	// incoming link ("link:eu", multi-leader), or per node the hints this
	// node keeps for it (leaderless, as entries).
	Lag map[string]LagPoint `json:"lag,omitempty"`
}

// LagPoint is one follower's (or link's) lag in a sample.
type LagPoint struct {
	Entries uint64  `json:"entries"`
	Seconds float64 `json:"seconds"`
	Bytes   uint64  `json:"bytes,omitempty"`
}

// History is the answer of GET /v1/history.
type History struct {
	Node       string   `json:"node"`
	IntervalMs int64    `json:"interval_ms"`
	Samples    []Sample `json:"samples"`
}

// monitor keeps what this node saw happen (the timeline) and the last
// minutes of samples, in memory only: a restarted node starts afresh, as
// its dashboard page would. Every status request feeds it too, so the
// timeline is current even between ticks.
type monitor struct {
	status   func() engine.Status
	interval time.Duration

	mu         sync.Mutex
	prev       *engine.Status
	events     []engine.StatusEvent // oldest first, at most maxTimeline
	samples    []Sample             // oldest first, at most maxSamples
	lastSample time.Time
}

func newMonitor(status func() engine.Status) *monitor {
	return &monitor{status: status, interval: sampleInterval}
}

// run samples the node every interval until ctx ends.
func (m *monitor) run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	m.poll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.poll()
		}
	}
}

// poll reads the engine's status, observes it and returns it with the
// timeline. Reading and observing under one lock keeps concurrent polls
// (ticks, status requests) in order: an older status observed after a
// newer one would show a change and its undoing that never happened.
// Status reads in-memory state only, so no I/O happens under the lock.
func (m *monitor) poll() engine.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.status()
	m.observeLocked(st, time.Now())
	st.Timeline = slices.Clone(m.events)
	return st
}

// observe records what changed since the previous status and, at most
// once per interval, a sample.
func (m *monitor) observe(st engine.Status, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observeLocked(st, now)
}

func (m *monitor) observeLocked(st engine.Status, now time.Time) {
	var evs []engine.StatusEvent
	if m.prev != nil {
		evs = diffStatus(m.prev, &st, now)
	}
	evs = append(evs, m.newLeaderEventsLocked(st)...)
	if len(evs) > 0 {
		m.events = append(m.events, evs...)
		// Leader events carry their own (earlier) times: keep the
		// timeline in time order.
		sort.SliceStable(m.events, func(i, j int) bool { return m.events[i].Time.Before(m.events[j].Time) })
		if len(m.events) > maxTimeline {
			m.events = slices.Delete(m.events, 0, len(m.events)-maxTimeline)
		}
	}
	prev := st
	prev.Events, prev.Timeline = nil, nil
	m.prev = &prev
	// A status request right after a tick must not add a second point:
	// the charts' rates divide by the time between points.
	if m.lastSample.IsZero() || now.Sub(m.lastSample) >= m.interval*9/10 {
		m.lastSample = now
		m.samples = append(m.samples, sampleOf(&st, now))
		if len(m.samples) > maxSamples {
			m.samples = slices.Delete(m.samples, 0, len(m.samples)-maxSamples)
		}
	}
}

// newLeaderEventsLocked returns the leader's replication events the
// timeline does not hold yet. An event older than the timeline's oldest
// once the ring is full was evicted, not new.
func (m *monitor) newLeaderEventsLocked(st engine.Status) []engine.StatusEvent {
	var out []engine.StatusEvent
	for _, ev := range st.Events {
		if len(m.events) >= maxTimeline && ev.Time.Before(m.events[0].Time) {
			continue
		}
		seen := slices.ContainsFunc(m.events, func(e engine.StatusEvent) bool {
			return e.Time.Equal(ev.Time) && e.Kind == ev.Kind && e.Follower == ev.Follower && e.Message == ev.Message
		})
		if !seen {
			ev.Epoch = st.Epoch
			out = append(out, ev)
		}
	}
	return out
}

// timeline returns a copy of the events, oldest first.
func (m *monitor) timeline() []engine.StatusEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// history returns the samples newer than sinceMs, oldest first.
func (m *monitor) history(sinceMs int64) []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.samples), func(i int) bool { return m.samples[i].T > sinceMs })
	return slices.Clone(m.samples[i:])
}

// sampleOf extracts a chart point from a status. A follower reports its
// peers' lag only from a fresh relayed view of the leader's (then
// view_age_seconds is set); rows without one hold zeros, which are not lag.
func sampleOf(st *engine.Status, now time.Time) Sample {
	s := Sample{T: now.UnixMilli(), Epoch: st.Epoch, Leader: st.Leader, CommitLSN: st.CommitLSN}
	for _, mb := range st.Members {
		if st.Mode == engine.ModeLeaderless && mb.HintsPending != nil {
			if s.Lag == nil {
				s.Lag = map[string]LagPoint{}
			}
			s.Lag[mb.ID] = LagPoint{Entries: *mb.HintsPending}
			continue
		}
		if mb.Role != "follower" || (st.Role != "leader" && mb.ViewAgeSeconds == 0) {
			continue
		}
		if s.Lag == nil {
			s.Lag = map[string]LagPoint{}
		}
		s.Lag[mb.ID] = LagPoint{Entries: mb.LagEntries, Seconds: mb.LagSeconds, Bytes: mb.LagBytes}
	}
	for _, l := range st.Links {
		if s.Lag == nil {
			s.Lag = map[string]LagPoint{}
		}
		s.Lag["link:"+l.Site] = LagPoint{Entries: l.LagEntries, Seconds: l.LagSeconds}
	}
	return s
}

// diffStatus is what happened between two status documents of one node,
// as timeline events at now. It is pure: the monitor's tests drive it
// with hand-made documents.
func diffStatus(prev, cur *engine.Status, now time.Time) []engine.StatusEvent {
	var out []engine.StatusEvent
	add := func(kind, member, msg string) {
		out = append(out, engine.StatusEvent{Time: now, Kind: kind, Follower: member, Message: msg, Epoch: cur.Epoch})
	}
	switch {
	case cur.Epoch > prev.Epoch && prev.Leader != "" && cur.Leader != "" && cur.Leader != prev.Leader:
		add(EventLeaderChanged, cur.Leader, fmt.Sprintf("leader %s → %s (epoch %d → %d)", prev.Leader, cur.Leader, prev.Epoch, cur.Epoch))
	case cur.Epoch > prev.Epoch && cur.Leader != "":
		add(EventEpochChanged, cur.Leader, fmt.Sprintf("epoch %d → %d, leader %s", prev.Epoch, cur.Epoch, cur.Leader))
	case prev.Leader != "" && cur.Leader == "" && cur.Mode != engine.ModeLeaderless:
		add(EventLeaderLost, prev.Leader, fmt.Sprintf("no leader any more (was %s)", prev.Leader))
	}
	// A starting node (epoch 0) has not read the cluster state yet: what
	// it then learns (policy, sync set, members) is not a change. Its
	// policy may still settle while it waits for its first leader; the
	// leader, which did not just start, reports real changes meanwhile.
	starting := prev.Epoch == 0
	startingPolicy := starting || prev.State == "waiting-for-leader"
	if a, b := sortedSet(prev.SyncSet), sortedSet(cur.SyncSet); !starting && !slices.Equal(a, b) && cur.Mode != engine.ModeLeaderless {
		add(EventSyncSetChanged, "", fmt.Sprintf("sync set [%s] → [%s]", strings.Join(a, ","), strings.Join(b, ",")))
	}
	var pol []string
	if prev.SyncPolicy != cur.SyncPolicy {
		pol = append(pol, fmt.Sprintf("commit policy %s → %s", prev.SyncPolicy, cur.SyncPolicy))
	}
	if prev.Ack != cur.Ack {
		pol = append(pol, fmt.Sprintf("ack %s → %s", prev.Ack, cur.Ack))
	}
	if prev.Fallback != cur.Fallback {
		pol = append(pol, fmt.Sprintf("fallback %s → %s", prev.Fallback, cur.Fallback))
	}
	if len(pol) > 0 && !startingPolicy {
		add(EventPolicyChanged, "", strings.Join(pol, "; "))
	}
	before, after := memberIDs(prev), memberIDs(cur)
	if starting && len(before) == 1 {
		before = after
	}
	for _, id := range after {
		if !slices.Contains(before, id) {
			add(EventMemberAdded, id, id+" joined the cluster")
		}
	}
	for _, id := range before {
		if !slices.Contains(after, id) {
			add(EventMemberRemoved, id, id+" left the cluster")
		}
	}
	switch {
	case cur.WritesBlocked && !prev.WritesBlocked:
		add(EventWritesBlocked, "", "writes blocked: "+cur.BlockedReason)
	case prev.WritesBlocked && !cur.WritesBlocked:
		add(EventWritesUnblocked, "", fmt.Sprintf("writes commit again (%s)", cur.SyncPolicy))
	}
	if prev.State != cur.State && cur.State != "" {
		msg := fmt.Sprintf("%s: %s → %s", cur.ID, orNone(prev.State), cur.State)
		if cur.Reason != "" {
			msg += ": " + cur.Reason
		}
		add(EventStateChanged, cur.ID, msg)
	}
	// The leader records its fallback changes itself, with the reason;
	// a follower knows them only from the leader's relayed view, and a
	// view that went stale (leader gone) says nothing about the fallback.
	if cur.Role != "leader" && prev.Role != "leader" && hasLeaderView(prev) && hasLeaderView(cur) && prev.FallbackActive != cur.FallbackActive {
		if cur.FallbackActive {
			add(EventFallback, "", "the leader's commits no longer wait for synchronous followers (fallback to async)")
		} else {
			add(EventFallbackCleared, "", "the leader's commits wait for synchronous followers again")
		}
	}
	diffLinks(prev, cur, add)
	if cur.Mode == engine.ModeLeaderless {
		diffLeaderless(prev, cur, add)
	}
	return out
}

// diffLinks reports multi-leader link changes through add.
func diffLinks(prev, cur *engine.Status, add func(kind, member, msg string)) {
	old := map[string]engine.LinkStatus{}
	for _, l := range prev.Links {
		old[l.Site] = l
	}
	for _, l := range cur.Links {
		p, ok := old[l.Site]
		delete(old, l.Site)
		switch {
		case !ok:
			add(EventLinkAdded, l.Site, fmt.Sprintf("link from site %s added (%s)", l.Site, l.State))
		case p.State != l.State:
			msg := fmt.Sprintf("link from site %s: %s → %s", l.Site, p.State, l.State)
			if l.Reason != "" {
				msg += ": " + l.Reason
			}
			add(EventLinkState, l.Site, msg)
		}
	}
	for _, site := range sortedKeys(old) {
		add(EventLinkRemoved, site, fmt.Sprintf("link from site %s removed", site))
	}
}

// diffLeaderless reports ring health and data movement changes through add.
func diffLeaderless(prev, cur *engine.Status, add func(kind, member, msg string)) {
	was := map[string]bool{}
	for _, r := range prev.Ring {
		was[r.ID] = r.Healthy
	}
	for _, r := range cur.Ring {
		h, ok := was[r.ID]
		if !ok || h == r.Healthy {
			continue
		}
		if r.Healthy {
			add(EventMemberHealth, r.ID, r.ID+" is reachable again")
		} else {
			add(EventMemberHealth, r.ID, r.ID+" is unreachable: its writes go to hints (sloppy quorum) or fail the quorum")
		}
	}
	var ps, cs string
	if prev.Rebalance != nil {
		ps = prev.Rebalance.State
	}
	if cur.Rebalance != nil {
		cs = cur.Rebalance.State
	}
	if cs != ps && cs != "" {
		r := cur.Rebalance
		add(EventRebalance, "", fmt.Sprintf("data movement %s → %s: %d keys moved, %d failed, of %d scanned", orNone(ps), cs, r.Moved, r.Failed, r.Scanned))
	}
}

// hasLeaderView reports whether a follower's status carries a fresh view
// relayed by the leader (its rows then have view_age_seconds).
func hasLeaderView(st *engine.Status) bool {
	return slices.ContainsFunc(st.Members, func(m engine.MemberStatus) bool { return m.ViewAgeSeconds > 0 })
}

func memberIDs(st *engine.Status) []string {
	ids := []string{st.ID}
	for _, m := range st.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
