package main

import (
	"context"
	"fmt"
	"time"
)

// round is one kill -9 of the leader.
type round struct {
	N           int    `json:"round"`
	Killed      string `json:"killed"`
	EpochBefore uint64 `json:"epoch_before"`
	NewLeader   string `json:"new_leader,omitempty"`
	// Epoch is the new leader's epoch, read from its status right after
	// its first acknowledged write.
	Epoch uint64 `json:"epoch,omitempty"`
	// Seconds runs from just before SIGKILL to the reply of the first write
	// acknowledged by another node; -1 when none came within -round-timeout.
	Seconds  float64 `json:"seconds"`
	TimedOut bool    `json:"timed_out,omitempty"`
	// WriteErrors counts failed write attempts during that gap (connection
	// refused, READONLY, ...; each writer retries after 10 ms).
	WriteErrors int64 `json:"write_errors"`
	// RecoverySeconds runs from restarting the killed node until every
	// node streams from the new leader and has caught up.
	RecoverySeconds float64 `json:"recovery_seconds"`
	LoadAvg         string  `json:"loadavg"`
}

type killResults struct {
	Clients int     `json:"clients"`
	Rounds  []round `json:"rounds"`
	// Over the rounds that ended with an acknowledged write.
	MinSeconds float64 `json:"min_seconds"`
	P50Seconds float64 `json:"p50_seconds"`
	P90Seconds float64 `json:"p90_seconds"`
	MaxSeconds float64 `json:"max_seconds"`
	// Rounds over 1.5 s and over 3 s (the targets); a timed-out
	// round counts in both.
	Over1500ms int     `json:"rounds_over_1_5s"`
	Over3s     int     `json:"rounds_over_3s"`
	TimedOut   int     `json:"rounds_timed_out"`
	Writes     int64   `json:"writes"`
	Errors     int64   `json:"write_errors"`
	Seconds    float64 `json:"seconds"`
	// Discoveries is how many times the writers' leader cache polled status.
	Discoveries int64 `json:"leader_discoveries"`
	// ErrorKinds counts failed write attempts by kind (connection refused,
	// READONLY, ...), with the first message of each.
	ErrorKinds map[string]errKind `json:"error_kinds,omitempty"`
}

func (k *killResults) summarize() {
	var ok []float64
	k.Over1500ms, k.Over3s, k.TimedOut = 0, 0, 0
	for _, r := range k.Rounds {
		if r.TimedOut {
			k.TimedOut++
			k.Over1500ms++
			k.Over3s++
			continue
		}
		ok = append(ok, r.Seconds)
		if r.Seconds > 1.5 {
			k.Over1500ms++
		}
		if r.Seconds > 3 {
			k.Over3s++
		}
	}
	if len(ok) == 0 {
		return
	}
	k.MinSeconds = percentile(ok, 0)
	k.P50Seconds = percentile(ok, 0.5)
	k.P90Seconds = percentile(ok, 0.9)
	k.MaxSeconds = percentile(ok, 1)
}

// runKillRounds starts a cluster in dir, puts it under write load and kills
// its leader c.rounds times. It returns the rounds done so far also on error.
func runKillRounds(ctx context.Context, c config, bin, dir string, logf func(string, ...any)) (*killResults, error) {
	res := &killResults{Clients: c.clients}
	cl, err := newCluster(bin, dir, c.sync, c.basePort, logf)
	if err != nil {
		return res, err
	}
	defer cl.stopAll()
	if err := cl.startAll(); err != nil {
		return res, err
	}
	logf("kill rounds: 3 nodes started in %s (sync %q, default timeouts); waiting for n1 to lead", dir, c.sync)
	if _, err := cl.waitReady(ctx, "n1", c.readyTimeout); err != nil {
		return res, fmt.Errorf("initial cluster: %w", err)
	}

	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	cache := newLeaderCache(cl)
	go cache.run(lctx)
	watch := &roundWatch{}
	ld := &load{cache: cache, watch: watch, prefix: "failover", valueSize: c.valueSize}
	stopLoad := ld.run(lctx, c.clients)
	phaseStart := time.Now()
	// Deferred after stopAll, so it runs first: the writers stop before
	// the servers do, and shutdown is not counted as failed writes.
	finish := func() {
		stopLoad()
		res.Seconds = time.Since(phaseStart).Seconds()
		res.Writes, res.Errors = ld.ops.Load(), ld.errs.Load()
		res.Discoveries = cache.discoveries.Load()
		res.ErrorKinds = ld.errorKinds()
		res.summarize()
	}
	defer finish()

	// Writes must be flowing before the first kill, or the first round would
	// also measure the writers' start-up.
	if err := waitWrites(ctx, ld, 30*time.Second); err != nil {
		return res, err
	}
	logf("kill rounds: %d writers running; %d rounds", c.clients, c.rounds)
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return res, err
	}

	for r := 1; r <= c.rounds; r++ {
		rs, err := cl.waitReady(ctx, "", c.readyTimeout)
		if err != nil {
			return res, fmt.Errorf("round %d: before the kill: %w", r, err)
		}
		victim := rs.leader
		rd := round{N: r, Killed: victim.id, EpochBefore: rs.epoch}
		errs0 := ld.errs.Load()
		done := watch.arm(victim.id)
		t0, err := cl.kill(ctx, victim)
		if err != nil {
			watch.disarm()
			return res, fmt.Errorf("round %d: %w", r, err)
		}
		timer := time.NewTimer(c.roundTimeout)
		select {
		case <-done:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		watch.disarm()
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rd.WriteErrors = ld.errs.Load() - errs0
		if at, id, ok := watch.result(); ok {
			rd.Seconds, rd.NewLeader = at.Sub(t0).Seconds(), id
			if st, err := cl.status(ctx, cl.node(id)); err == nil {
				rd.Epoch = st.Epoch
			}
		} else {
			rd.Seconds, rd.TimedOut = -1, true
		}
		rd.LoadAvg = loadAvg()

		restarted := time.Now()
		if err := cl.start(victim); err != nil {
			res.Rounds = append(res.Rounds, rd)
			return res, fmt.Errorf("round %d: restart %s: %w", r, victim.id, err)
		}
		if _, err := cl.waitReady(ctx, "", c.readyTimeout); err != nil {
			res.Rounds = append(res.Rounds, rd)
			return res, fmt.Errorf("round %d: after restarting %s: %w", r, victim.id, err)
		}
		rd.RecoverySeconds = time.Since(restarted).Seconds()
		res.Rounds = append(res.Rounds, rd)
		if rd.TimedOut {
			logf("round %d/%d: killed %s (epoch %d): NO write acknowledged by another node within %s (%d failed attempts); %s back and caught up in %.1fs (loadavg %s)",
				r, c.rounds, rd.Killed, rd.EpochBefore, c.roundTimeout, rd.WriteErrors, victim.id, rd.RecoverySeconds, rd.LoadAvg)
		} else {
			logf("round %d/%d: killed %s (epoch %d) -> first write acknowledged by %s after %.3fs (epoch %d, %d failed attempts); %s back and caught up in %.1fs (loadavg %s)",
				r, c.rounds, rd.Killed, rd.EpochBefore, rd.NewLeader, rd.Seconds, rd.Epoch, rd.WriteErrors, victim.id, rd.RecoverySeconds, rd.LoadAvg)
		}
		// Let the restarted node settle (compactions, connection churn)
		// before the next kill, so rounds stay independent.
		if err := sleepCtx(ctx, time.Second); err != nil {
			return res, err
		}
	}
	return res, nil
}

// waitWrites waits until ld has had at least one write acknowledged.
func waitWrites(ctx context.Context, ld *load, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for ld.ops.Load() == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no write acknowledged within %s; errors: %v", timeout, ld.errorKinds())
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
