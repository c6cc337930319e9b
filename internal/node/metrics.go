package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/replication"
)

// Metrics are the node's Prometheus metrics, on a registry of its own (no
// global state, so several nodes can live in one test process).
type Metrics struct {
	reg          *prometheus.Registry
	writeLatency prometheus.Histogram
	batchEntries prometheus.Histogram
	batchBytes   prometheus.Histogram
	syncSeconds  prometheus.Histogram
	expired      prometheus.Counter
	gcRemoved    prometheus.Counter
	rolledBack   prometheus.Counter
	truncated    prometheus.Counter
	failovers    prometheus.Counter
	events       *prometheus.CounterVec
	// api holds the series the client APIs record into.
	api *engine.Metrics
}

func newMetrics(n *Node) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		writeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "replicant_write_commit_seconds", Help: "Time from proposal to commit acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18),
		}),
		batchEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "replicant_group_commit_entries", Help: "Log entries per group-commit batch (one fsync each).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "replicant_group_commit_bytes", Help: "Encoded bytes per group-commit batch.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 12),
		}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "replicant_fsync_wait_seconds", Help: "Time waiting for a batch's fsync.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicant_expired_keys_total", Help: "Keys deleted by active expiry (through the log).",
		}),
		gcRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicant_gc_versions_removed_total", Help: "Old versions removed by garbage collection.",
		}),
		rolledBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicant_rolled_back_entries_total", Help: "Divergent log entries rolled back (written to the rollback directory).",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicant_log_truncated_entries_total", Help: "Log entries dropped by retention.",
		}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicant_failovers_total", Help: "Leaders appointed by this node as controller after a lease expired.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicant_replication_events_total", Help: "Replication events: sync-promoted, sync-demoted, fallback-engaged, fallback-cleared, follower-unhealthy, follower-healthy.",
		}, []string{"kind"}),
		api: &engine.Metrics{Registry: reg,
			Ops: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "replicant_ops_total", Help: "API operations by api, command and result.",
			}, []string{"api", "cmd", "result"}),
			OpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "replicant_op_seconds", Help: "API operation latency by api and command.",
				Buckets: prometheus.ExponentialBuckets(20e-6, 2, 18),
			}, []string{"api", "cmd"}),
		},
	}
	lsn := func(name, help string, f func() uint64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	reg.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.writeLatency, m.batchEntries, m.batchBytes, m.syncSeconds, m.expired, m.gcRemoved, m.rolledBack, m.truncated, m.failovers, m.events, m.api.Ops, m.api.OpLatency,
		lsn("replicant_last_lsn", "Last LSN in the local log.", func() uint64 { return n.store.State().LastLSN }),
		lsn("replicant_applied_lsn", "Last LSN applied to the local state.", func() uint64 { return n.store.State().AppliedLSN }),
		lsn("replicant_commit_lsn", "Commit LSN this node reads at.", func() uint64 { l, _, _ := n.readPosition(); return l }),
		lsn("replicant_first_lsn", "First LSN still in the local log.", func() uint64 { return n.store.State().FirstLSN }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "replicant_is_leader", Help: "1 on the leader."}, func() float64 {
			if n.IsLeader() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "replicant_replica_lag_seconds", Help: "On a follower: how far its readable state is behind the leader."}, n.lagSeconds),
		newFollowerCollector(n),
	)
	return m
}

// Metrics returns the node's metrics for API packages to record into.
// Metrics are the series the client APIs record into (engine.Engine).
func (n *Node) Metrics() *engine.Metrics { return n.metrics.api }

func (m *Metrics) observeEvent(ev replication.Event) { m.events.WithLabelValues(ev.Kind).Inc() }

func (m *Metrics) observeBatch(s replication.BatchStats) {
	m.batchEntries.Observe(float64(s.Entries))
	m.batchBytes.Observe(float64(s.Bytes))
	m.syncSeconds.Observe(s.SyncTime.Seconds())
}

// followerCollector exports the leader's per-follower progress.
type followerCollector struct {
	n                                *Node
	lagEntries, lagSeconds, sync, ok *prometheus.Desc
}

func newFollowerCollector(n *Node) *followerCollector {
	l := []string{"follower"}
	return &followerCollector{n: n,
		lagEntries: prometheus.NewDesc("replicant_follower_lag_entries", "Entries the follower has not acknowledged at the ack level.", l, nil),
		lagSeconds: prometheus.NewDesc("replicant_follower_lag_seconds", "Age of the oldest entry the follower has not applied.", l, nil),
		sync:       prometheus.NewDesc("replicant_follower_sync", "1 when the follower's acknowledgements count for commit.", l, nil),
		ok:         prometheus.NewDesc("replicant_follower_healthy", "1 when the follower is healthy.", l, nil),
	}
}

func (c *followerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lagEntries
	ch <- c.lagSeconds
	ch <- c.sync
	ch <- c.ok
}

func (c *followerCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.n.currentLeader()
	if l == nil {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, p := range l.Progress() {
		ch <- prometheus.MustNewConstMetric(c.lagEntries, prometheus.GaugeValue, float64(p.LagEntries), p.ID)
		ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, p.LagSeconds, p.ID)
		ch <- prometheus.MustNewConstMetric(c.sync, prometheus.GaugeValue, b(p.Sync), p.ID)
		ch <- prometheus.MustNewConstMetric(c.ok, prometheus.GaugeValue, b(p.Healthy), p.ID)
	}
}
