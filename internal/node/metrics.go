package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
	// Ops counts API operations by api (resp|http), command and result.
	Ops *prometheus.CounterVec
	// OpLatency observes API operation latency by api and command.
	OpLatency *prometheus.HistogramVec
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
		Ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicant_ops_total", Help: "API operations by api, command and result.",
		}, []string{"api", "cmd", "result"}),
		OpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "replicant_op_seconds", Help: "API operation latency by api and command.",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2, 18),
		}, []string{"api", "cmd"}),
	}
	lsn := func(name, help string, f func() uint64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	reg.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.writeLatency, m.batchEntries, m.batchBytes, m.syncSeconds, m.expired, m.gcRemoved, m.Ops, m.OpLatency,
		lsn("replicant_last_lsn", "Last LSN in the local log.", func() uint64 { return n.store.State().LastLSN }),
		lsn("replicant_applied_lsn", "Last LSN applied to the local state.", func() uint64 { return n.store.State().AppliedLSN }),
		lsn("replicant_commit_lsn", "Commit LSN known to this node.", func() uint64 { return n.writer.CommitLSN() }),
		lsn("replicant_epoch", "Current epoch.", func() uint64 { return n.writer.Epoch() }),
	)
	return m
}

// Metrics returns the node's metrics for API packages to record into.
func (n *Node) Metrics() *Metrics { return n.metrics }

func (m *Metrics) observeBatch(s replication.BatchStats) {
	m.batchEntries.Observe(float64(s.Entries))
	m.batchBytes.Observe(float64(s.Bytes))
	m.syncSeconds.Observe(s.SyncTime.Seconds())
}

// Registry is the registry holding every metric of the node.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
