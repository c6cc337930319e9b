package node

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

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
	swept        prometheus.Counter
	gcRemoved    prometheus.Counter
	rolledBack   prometheus.Counter
	truncated    prometheus.Counter
	failovers    prometheus.Counter
	events       *prometheus.CounterVec
	// leaderChanges counts the leaders this node saw appointed (every
	// node, not only the controller that appointed them).
	leaderChanges prometheus.Counter
	// diskBytes is the data directory's size, set by diskLoop.
	diskBytes prometheus.Gauge
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
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicant_swept_elements_total", Help: "Elements of deleted, overwritten or expired collections deleted by the sweeper (through the log).",
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
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replicant_leader_changes_total", Help: "Data leaders this node saw appointed (a new epoch with a leader), counted on every node; the first one after start counts.",
		}),
		diskBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replicant_disk_bytes", Help: "Size of the data directory in bytes (sum of file sizes), sampled every " + diskSampleInterval.String() + ".",
		}),
		api: &engine.Metrics{Registry: reg,
			Ops: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "replicant_ops_total", Help: "API operations by api, command and result.",
			}, []string{"api", "cmd", "result"}),
			OpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "replicant_op_seconds", Help: "API operation latency by api and command.",
				Buckets: prometheus.ExponentialBuckets(20e-6, 2, 18),
			}, []string{"api", "cmd"}),
			Clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "replicant_connected_clients", Help: "Open client connections by api (resp, http).",
			}, []string{"api"}),
		},
	}
	// Both APIs always exist: show 0 rather than nothing before the first
	// connection.
	m.api.Clients.WithLabelValues("resp")
	m.api.Clients.WithLabelValues("http")
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	lsn := func(name, help string, f func() uint64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	reg.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.writeLatency, m.batchEntries, m.batchBytes, m.syncSeconds, m.expired, m.swept, m.gcRemoved, m.rolledBack, m.truncated, m.failovers, m.events, m.api.Ops, m.api.OpLatency,
		m.leaderChanges, m.diskBytes, m.api.Clients, newBuildInfo(n.mode()), engineCollector{n: n},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "replicant_epoch", Help: "The cluster's (in multi-leader mode: the site's) epoch as this node knows it; it rises with every leader appointment."}, func() float64 {
			n.mu.Lock()
			defer n.mu.Unlock()
			return float64(n.state.Epoch)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "replicant_control_has_leader", Help: "1 when this node's control plane (raft group) knows its leader, the controller; 0 means it reaches no majority: no failover, membership or policy change can happen."}, func() float64 {
			return b(n.control != nil && n.control.ControllerID() != "")
		}),
		lsn("replicant_replica_lag_entries", "On a follower: entries the leader holds (as its latest message said) beyond what this node can serve.", n.lagEntries),
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
	if n.mode() != engine.ModeLeaderless {
		// Leaderless mode has no data leader: a gauge stuck at 0 there would
		// only trip has_leader alerts.
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "replicant_has_leader",
			Help: "1 while this node is the data leader with a valid lease, or a follower whose stream from the leader is up."}, func() float64 { return b(n.hasLeader()) }))
	}
	return m
}

// hasLeader reports whether this node is in touch with a data leader: it
// leads with a valid lease, or its stream from the leader is up (also
// while it installs a snapshot or catches up).
func (n *Node) hasLeader() bool {
	n.mu.Lock()
	l, fo := n.leader, n.follower
	n.mu.Unlock()
	switch {
	case l != nil:
		return n.leaseValid(l.Epoch())
	case fo != nil:
		switch fo.f.State() {
		case replication.FollowerStreaming, replication.FollowerCatchingUp, replication.FollowerSnapshotting:
			return true
		}
	}
	return false
}

// lagEntries is, on a follower, how many entries the leader holds beyond
// what this node serves (0 elsewhere).
func (n *Node) lagEntries() uint64 {
	n.mu.Lock()
	fo := n.follower
	n.mu.Unlock()
	if fo == nil {
		return 0
	}
	last, read := fo.f.Status().LeaderLast, fo.f.ReadLSN()
	if last <= read {
		return 0
	}
	return last - read
}

// newBuildInfo is replicant_build_info: constant 1, its labels the build.
// The version and commit are what the Go toolchain stamped into the binary
// (go build in a git checkout records the revision; "(devel)" and
// "unknown" otherwise).
func newBuildInfo(mode string) prometheus.Gauge {
	version, commit := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit != "unknown" {
			commit += "-dirty"
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "replicant_build_info", Help: "Always 1; the labels say which build runs, in which mode.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "go_version": runtime.Version(), "mode": mode}})
	g.Set(1)
	return g
}

// diskSampleInterval is how often the data directory is measured: walking
// it costs a stat per file, too much for every scrape of a large store, and
// its size changes slowly next to a scrape interval.
const diskSampleInterval = 15 * time.Second

// diskLoop keeps replicant_disk_bytes current.
func (n *Node) diskLoop() {
	defer n.wg.Done()
	t := time.NewTicker(diskSampleInterval)
	defer t.Stop()
	for {
		if size, err := dirSize(n.cfg.DataDir); err == nil {
			n.metrics.diskBytes.Set(float64(size))
		} else {
			n.log.Debug("measure the data directory", "err", err)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dirSize sums the sizes of the regular files under dir. Files that vanish
// while it walks (compactions, segment removal) are skipped.
func dirSize(dir string) (uint64, error) {
	var total uint64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		total += uint64(info.Size())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("node: size of %s: %w", dir, err)
	}
	return total, nil
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
	lagBytes                         *prometheus.Desc
}

func newFollowerCollector(n *Node) *followerCollector {
	l := []string{"follower"}
	return &followerCollector{n: n,
		lagEntries: prometheus.NewDesc("replicant_follower_lag_entries", "Entries the follower has not acknowledged at the ack level.", l, nil),
		lagSeconds: prometheus.NewDesc("replicant_follower_lag_seconds", "Age of the oldest entry the follower has not applied.", l, nil),
		sync:       prometheus.NewDesc("replicant_follower_sync", "1 when the follower's acknowledgements count for commit.", l, nil),
		ok:         prometheus.NewDesc("replicant_follower_healthy", "1 when the follower is healthy.", l, nil),
		lagBytes: prometheus.NewDesc("replicant_follower_lag_bytes",
			"Encoded log bytes the leader holds beyond the follower's applied LSN (exact for recent batches, estimated from the store for older entries).", l, nil),
	}
}

func (c *followerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lagEntries
	ch <- c.lagSeconds
	ch <- c.sync
	ch <- c.ok
	ch <- c.lagBytes
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
		ch <- prometheus.MustNewConstMetric(c.lagBytes, prometheus.GaugeValue, float64(l.LagBytes(p.Applied)), p.ID)
	}
}

// engineCollector reports the storage engine's shape (storage.EngineMetrics)
// on each scrape: one read of Pebble's metrics for all of its gauges.
type engineCollector struct{ n *Node }

var engineDescs = struct{ readAmp, l0Sublevels, l0Files, debt, memtable, budget, blocks *prometheus.Desc }{
	readAmp: prometheus.NewDesc("replicant_storage_read_amplification",
		"Tables a point read that misses the row cache may consult: L0's sublevels plus the non-empty levels below it. It grows when compactions fall behind sustained writes, and reads slow down with it.", nil, nil),
	l0Sublevels: prometheus.NewDesc("replicant_storage_l0_sublevels", "Sublevels of the storage engine's level 0.", nil, nil),
	l0Files:     prometheus.NewDesc("replicant_storage_l0_files", "Tables in the storage engine's level 0.", nil, nil),
	debt: prometheus.NewDesc("replicant_storage_compaction_debt_bytes",
		"Bytes the storage engine's compactions estimate they still have to rewrite to bring its levels to their target sizes.", nil, nil),
	memtable: prometheus.NewDesc("replicant_storage_memtable_bytes", "Memory the storage engine's memtables hold, flushing or not.", nil, nil),
	budget: prometheus.NewDesc("replicant_storage_cache_budget_bytes",
		"The caches' sizes as configured (--cache-size): cache=\"rows\" holds the newest versions of recently used keys, cache=\"blocks\" the storage engine's blocks.", []string{"cache"}, nil),
	blocks: prometheus.NewDesc("replicant_storage_block_cache_bytes", "Bytes the storage engine's block cache holds now.", nil, nil),
}

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- engineDescs.readAmp
	ch <- engineDescs.l0Sublevels
	ch <- engineDescs.l0Files
	ch <- engineDescs.debt
	ch <- engineDescs.memtable
	ch <- engineDescs.budget
	ch <- engineDescs.blocks
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	m, err := c.n.store.EngineMetrics()
	if err != nil {
		return // a closed or reopening store: no shape to report
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(engineDescs.readAmp, float64(m.ReadAmp))
	gauge(engineDescs.l0Sublevels, float64(m.L0Sublevels))
	gauge(engineDescs.l0Files, float64(m.L0Files))
	gauge(engineDescs.debt, float64(m.CompactionDebt))
	gauge(engineDescs.memtable, float64(m.MemtableBytes))
	gauge(engineDescs.budget, float64(m.RowCacheBudget), "rows")
	gauge(engineDescs.budget, float64(m.BlockCacheBudget), "blocks")
	gauge(engineDescs.blocks, float64(m.BlockCacheBytes))
}
