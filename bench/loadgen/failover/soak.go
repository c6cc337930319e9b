package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

type soakResults struct {
	Clients     int     `json:"clients"`
	Seconds     float64 `json:"seconds"`
	Writes      int64   `json:"writes"`
	WriteErrors int64   `json:"write_errors"`
	OpsPerSec   float64 `json:"ops_per_s"`
	// MinOpsPerSec5s is the slowest 5-second window: a stall (a leader
	// that lost its lease, an election) shows here even when the average
	// looks fine.
	MinOpsPerSec5s float64 `json:"min_ops_per_s_5s"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	P999Ms         float64 `json:"p999_ms"`
	MaxMs          float64 `json:"max_ms"`

	EpochStart uint64 `json:"epoch_start"`
	EpochEnd   uint64 `json:"epoch_end"`
	// EpochChanges is epoch_end - epoch_start: every appointment raises the
	// epoch, and with no fault injected each one is a spurious failover.
	EpochChanges  int      `json:"epoch_changes"`
	EpochsSeen    []string `json:"epoch_changes_seen,omitempty"`
	LeaderChanges int      `json:"leader_changes"`
	// FailoversMetric is the increase of replicant_failovers_total summed
	// over the nodes; absent when a node does not export it.
	FailoversMetric *float64 `json:"failovers_metric,omitempty"`

	Samples int `json:"status_samples"`
	// Near misses, counted per 500 ms sample: a node that did not answer
	// status within 1 s, a leader not in state leading (e.g. lease-expired),
	// a follower the leader saw unhealthy, a follower not streaming.
	UnansweredSamples   int     `json:"samples_node_unanswered"`
	LeaderNotLeading    int     `json:"samples_leader_not_leading"`
	UnhealthySamples    int     `json:"samples_follower_unhealthy"`
	NotStreamingSamples int     `json:"samples_follower_not_streaming"`
	LagSecondsMax       float64 `json:"follower_lag_seconds_max"`
	LagEntriesMax       uint64  `json:"follower_lag_entries_max"`

	ErrorKinds map[string]errKind `json:"error_kinds,omitempty"`
}

// opsSample is the acknowledged-write count at a time.
type opsSample struct {
	at  time.Time
	ops int64
}

// runSoak runs a fresh cluster under c.soakClients writers for c.soak with
// no fault and counts what changed anyway.
func runSoak(ctx context.Context, c config, bin, dir string, logf func(string, ...any)) (*soakResults, error) {
	res := &soakResults{Clients: c.soakClients}
	cl, err := newCluster(bin, dir, c.sync, c.basePort, logf)
	if err != nil {
		return res, err
	}
	defer cl.stopAll()
	if err := cl.startAll(); err != nil {
		return res, err
	}
	logf("soak: 3 fresh nodes started in %s (sync %q, default timeouts); waiting for n1 to lead", dir, c.sync)
	rs, err := cl.waitReady(ctx, "n1", c.readyTimeout)
	if err != nil {
		return res, fmt.Errorf("initial cluster: %w", err)
	}
	res.EpochStart, res.EpochEnd = rs.epoch, rs.epoch
	metrics0, metricsOK := failoverMetrics(ctx, cl)

	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	cache := newLeaderCache(cl)
	go cache.run(lctx)
	ld := &load{cache: cache, prefix: "soak", valueSize: c.valueSize}
	stopLoad := ld.run(lctx, c.soakClients)
	start := time.Now()
	series := []opsSample{{start, 0}}
	leader := rs.leader.id
	// As in runKillRounds: deferred after stopAll so the writers stop
	// first. Also called at the normal end, before the final metrics read.
	finished := false
	finish := func() {
		if finished {
			return
		}
		finished = true
		stopLoad()
		end := time.Now()
		res.Seconds = end.Sub(start).Seconds()
		res.Writes, res.WriteErrors = ld.ops.Load(), ld.errs.Load()
		res.OpsPerSec = float64(res.Writes) / res.Seconds
		res.MinOpsPerSec5s = minWindowRate(append(series, opsSample{end, res.Writes}), 5*time.Second)
		res.ErrorKinds = ld.errorKinds()
		lat := ld.lat
		slices.Sort(lat)
		res.P50Ms, res.P99Ms = pctMs(lat, 0.5), pctMs(lat, 0.99)
		res.P999Ms, res.MaxMs = pctMs(lat, 0.999), pctMs(lat, 1)
		res.EpochChanges = int(res.EpochEnd - res.EpochStart)
	}
	defer finish()
	logf("soak: %d writers for %s, status of every node every 500ms", c.soakClients, c.soak)

	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(c.soak)
	defer deadline.Stop()
	nextLog := start.Add(time.Minute)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline.C:
			done = true
		case <-tick.C:
		}
		if err := cl.checkAlive(); err != nil {
			return res, err
		}
		now := time.Now()
		series = append(series, opsSample{now, ld.ops.Load()})
		sts := cl.statusAll(ctx)
		res.Samples++
		for i, s := range sts {
			if s == nil {
				res.UnansweredSamples++
				continue
			}
			if s.Epoch > res.EpochEnd {
				res.EpochsSeen = append(res.EpochsSeen, fmt.Sprintf("+%.1fs: %s reports epoch %d (was %d), leader %s",
					now.Sub(start).Seconds(), cl.nodes[i].id, s.Epoch, res.EpochEnd, s.Leader))
				logf("soak: SPURIOUS FAILOVER? %s", res.EpochsSeen[len(res.EpochsSeen)-1])
				res.EpochEnd = s.Epoch
			}
			if s.Epoch == res.EpochEnd && s.Leader != "" && s.Leader != leader {
				res.LeaderChanges++
				leader = s.Leader
			}
		}
		res.countNearMisses(sts)
		if now.After(nextLog) {
			nextLog = nextLog.Add(time.Minute)
			logf("soak: +%.0fs %d writes (%.0f/s), %d errors, epoch %d, loadavg %s",
				now.Sub(start).Seconds(), ld.ops.Load(), float64(ld.ops.Load())/now.Sub(start).Seconds(),
				ld.errs.Load(), res.EpochEnd, loadAvg())
		}
	}
	finish()
	if metricsOK {
		if m1, ok := failoverMetrics(ctx, cl); ok {
			var d float64
			for i := range m1 {
				d += m1[i] - metrics0[i]
			}
			res.FailoversMetric = &d
		}
	}
	return res, nil
}

// countNearMisses looks at one sample for anything short of a failover
// that shows the failure detector under strain.
func (r *soakResults) countNearMisses(sts []*status) {
	var unhealthy, notStreaming bool
	for _, s := range sts {
		if s == nil {
			continue
		}
		if s.Role == "leader" {
			if s.State != "leading" {
				r.LeaderNotLeading++
			}
			for _, m := range s.Members {
				if !m.Healthy {
					unhealthy = true
				}
				r.LagSecondsMax = max(r.LagSecondsMax, m.LagSeconds)
				r.LagEntriesMax = max(r.LagEntriesMax, m.LagEntries)
			}
		} else if s.State != "streaming" {
			notStreaming = true
		}
	}
	if unhealthy {
		r.UnhealthySamples++
	}
	if notStreaming {
		r.NotStreamingSamples++
	}
}

// failoverMetrics reads replicant_failovers_total from every node; ok is
// false if any node fails to answer or lacks the metric.
func failoverMetrics(ctx context.Context, cl *cluster) ([]float64, bool) {
	out := make([]float64, len(cl.nodes))
	for i, n := range cl.nodes {
		v, ok, err := cl.failoversTotal(ctx, n)
		if err != nil || !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// minWindowRate is the lowest write rate over any window of at least w
// between two samples.
func minWindowRate(s []opsSample, w time.Duration) float64 {
	best := -1.0
	j := 0
	for i := range s {
		for j < len(s) && s[j].at.Sub(s[i].at) < w {
			j++
		}
		if j == len(s) {
			break
		}
		rate := float64(s[j].ops-s[i].ops) / s[j].at.Sub(s[i].at).Seconds()
		if best < 0 || rate < best {
			best = rate
		}
	}
	return max(best, 0)
}
