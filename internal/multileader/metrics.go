package multileader

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the mode's series, computed when scraped: the conflict
// count lives in the site's state (every node of the site reports the
// same total), link lag in the drivers of the site leader.
type collector struct {
	e         *Engine
	conflicts *prometheus.Desc
	lagEnt    *prometheus.Desc
	lagSec    *prometheus.Desc
	up        *prometheus.Desc
	tombs     *prometheus.Desc
}

func newCollector(e *Engine) *collector {
	return &collector{e: e,
		conflicts: prometheus.NewDesc("replicant_conflicts_total",
			"Concurrent writes this site resolved by last-writer-wins (the losers are in /v1/conflicts).", nil, nil),
		lagEnt: prometheus.NewDesc("replicant_link_lag_entries",
			"Committed entries of a linked site not yet applied here (site leader only).", []string{"site"}, nil),
		lagSec: prometheus.NewDesc("replicant_link_lag_seconds",
			"Age of the newest entry applied from a linked site while behind, 0 when caught up (site leader only).", []string{"site"}, nil),
		up: prometheus.NewDesc("replicant_link_streaming",
			"1 when the link streams from the remote site, 0 otherwise.", []string{"site"}, nil),
		tombs: prometheus.NewDesc("replicant_tombstones",
			"Deleted keys whose tombstone is kept until every site has applied the delete.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conflicts
	ch <- c.lagEnt
	ch <- c.lagSec
	ch <- c.up
	ch <- c.tombs
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if n, err := c.e.conflictCount(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.conflicts, prometheus.CounterValue, float64(n))
	}
	if n, err := c.e.Tombstones(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.tombs, prometheus.GaugeValue, float64(n))
	}
	links, err := c.e.Links(ctx)
	if err != nil {
		return
	}
	for _, l := range links {
		ch <- prometheus.MustNewConstMetric(c.lagEnt, prometheus.GaugeValue, float64(l.LagEntries), l.Site)
		ch <- prometheus.MustNewConstMetric(c.lagSec, prometheus.GaugeValue, l.LagSeconds, l.Site)
		up := 0.0
		if l.State == "streaming" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, l.Site)
	}
}
