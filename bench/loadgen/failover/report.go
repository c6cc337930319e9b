package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
)

// results is everything one run measured; -json prints it as is.
type results struct {
	Sync         string       `json:"sync"`
	ValueSize    int          `json:"value_size"`
	CPUs         int          `json:"cpus"`
	Started      string       `json:"started"`
	LoadAvgStart string       `json:"loadavg_start"`
	LoadAvgEnd   string       `json:"loadavg_end"`
	Kill         *killResults `json:"kill_rounds,omitempty"`
	Soak         *soakResults `json:"soak,omitempty"`
}

// percentile is the nearest-rank percentile (p in [0,1]) of v; v is not
// modified.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[rank(len(s), p)]
}

func rank(n int, p float64) int {
	k := int(math.Ceil(p*float64(n))) - 1
	return min(max(k, 0), n-1)
}

// pctMs is the nearest-rank percentile of sorted µs latencies, in ms.
func pctMs(sorted []uint32, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[rank(len(sorted), p)]) / 1000
}

func printSummary(w io.Writer, r *results) {
	fmt.Fprintf(w, "failover benchmark: 3 nodes, sync %q, default timeouts, %d CPUs, started %s, loadavg %s -> %s\n",
		r.Sync, r.CPUs, r.Started, r.LoadAvgStart, r.LoadAvgEnd)
	if k := r.Kill; k != nil {
		fmt.Fprintf(w, "\nkill -9 of the leader -> first write acknowledged by the new leader (%d writers, %d rounds)\n", k.Clients, len(k.Rounds))
		fmt.Fprintln(w, "| round | killed | epoch | new leader | new epoch | seconds | failed attempts | recovery s | loadavg |")
		fmt.Fprintln(w, "|---:|---|---:|---|---:|---:|---:|---:|---|")
		for _, rd := range k.Rounds {
			secs := fmt.Sprintf("%.3f", rd.Seconds)
			if rd.TimedOut {
				secs = "timed out"
			}
			fmt.Fprintf(w, "| %d | %s | %d | %s | %d | %s | %d | %.1f | %s |\n",
				rd.N, rd.Killed, rd.EpochBefore, dash(rd.NewLeader), rd.Epoch, secs, rd.WriteErrors, rd.RecoverySeconds, rd.LoadAvg)
		}
		fmt.Fprintf(w, "min %.3f s, p50 %.3f s, p90 %.3f s, max %.3f s; over 1.5 s: %d, over 3 s: %d, timed out: %d (of %d)\n",
			k.MinSeconds, k.P50Seconds, k.P90Seconds, k.MaxSeconds, k.Over1500ms, k.Over3s, k.TimedOut, len(k.Rounds))
		fmt.Fprintf(w, "writes %d acknowledged, %d failed attempts in %.0f s; leader discoveries %d\n",
			k.Writes, k.Errors, k.Seconds, k.Discoveries)
	}
	if s := r.Soak; s != nil {
		fmt.Fprintf(w, "\nsoak: %d writers, no faults, %.0f s\n", s.Clients, s.Seconds)
		fmt.Fprintf(w, "epoch %d -> %d: %d spurious failover(s)", s.EpochStart, s.EpochEnd, s.EpochChanges)
		if s.FailoversMetric != nil {
			fmt.Fprintf(w, "; replicant_failovers_total +%.0f", *s.FailoversMetric)
		} else {
			fmt.Fprint(w, "; replicant_failovers_total not available")
		}
		fmt.Fprintln(w)
		for _, e := range s.EpochsSeen {
			fmt.Fprintf(w, "  %s\n", e)
		}
		fmt.Fprintf(w, "writes %d acknowledged (%.0f/s, slowest 5 s window %.0f/s), %d failed attempts; latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.1f ms\n",
			s.Writes, s.OpsPerSec, s.MinOpsPerSec5s, s.WriteErrors, s.P50Ms, s.P99Ms, s.P999Ms, s.MaxMs)
		fmt.Fprintf(w, "%d status samples: node unanswered %d, leader not leading %d, follower unhealthy %d, follower not streaming %d; follower lag max %.3f s / %d entries\n",
			s.Samples, s.UnansweredSamples, s.LeaderNotLeading, s.UnhealthySamples, s.NotStreamingSamples, s.LagSecondsMax, s.LagEntriesMax)
	}
	if r.Kill != nil {
		printErrorKinds(w, "kill rounds", r.Kill.ErrorKinds)
	}
	if r.Soak != nil {
		printErrorKinds(w, "soak", r.Soak.ErrorKinds)
	}
}

func printErrorKinds(w io.Writer, phase string, kinds map[string]errKind) {
	if len(kinds) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s: failed write attempts by kind (each writer retries 10 ms later):\n", phase)
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		fmt.Fprintf(w, "  %-24s %7d  first: %s\n", k, kinds[k].Count, kinds[k].First)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
