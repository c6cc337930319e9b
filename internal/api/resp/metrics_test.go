package resp

import (
	"context"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/node"
)

// series gathers the node's registry: metric name → its samples.
func series(t *testing.T, ts *testServer) map[string][]*dto.Metric {
	t.Helper()
	fams, err := ts.n.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*dto.Metric{}
	for _, f := range fams {
		out[f.GetName()] = f.GetMetric()
	}
	return out
}

// label returns m's value of label name.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// commandsIn lists the cmd labels of a per-command family.
func commandsIn(ms []*dto.Metric) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[label(m, "cmd")] = true
	}
	return out
}

func clients(t *testing.T, ts *testServer, api string) float64 {
	t.Helper()
	for _, m := range series(t, ts)["replicant_connected_clients"] {
		if label(m, "api") == api {
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no replicant_connected_clients{api=%q}", api)
	return 0
}

// An idle node exports no per-command series (before, every command of
// the table had a zero-filled histogram: most of /metrics), and has the
// operator's gauges; a command's series appear once it is used.
func TestMetricsOnlyForCommandsSeen(t *testing.T) {
	ts := startServer(t, node.Config{})
	// The leader holds its lease shortly after its appointment.
	waitFor(t, 10*time.Second, "replicant_has_leader 1", func() bool {
		ms := series(t, ts)["replicant_has_leader"]
		return len(ms) == 1 && ms[0].GetGauge().GetValue() == 1
	})
	idle := series(t, ts)
	for _, name := range []string{"replicant_ops_total", "replicant_op_seconds"} {
		if got := commandsIn(idle[name]); len(got) != 0 {
			t.Errorf("idle node exports %s for commands nobody sent: %v", name, got)
		}
	}
	for _, name := range []string{"replicant_build_info", "replicant_epoch", "replicant_has_leader", "replicant_control_has_leader",
		"replicant_leader_changes_total", "replicant_disk_bytes", "replicant_connected_clients", "replicant_replica_lag_entries"} {
		if len(idle[name]) == 0 {
			t.Errorf("idle node lacks %s", name)
		}
	}
	if bi := idle["replicant_build_info"]; len(bi) == 1 {
		m := bi[0]
		if m.GetGauge().GetValue() != 1 || label(m, "mode") != "single-leader" || !strings.HasPrefix(label(m, "go_version"), "go") || label(m, "version") == "" || label(m, "commit") == "" {
			t.Errorf("build_info %v = %v", m.GetLabel(), m.GetGauge().GetValue())
		}
	}
	one := func(name string) float64 {
		ms := idle[name]
		if len(ms) != 1 {
			t.Fatalf("%s: %d samples", name, len(ms))
		}
		if c := ms[0].GetCounter(); c != nil {
			return c.GetValue()
		}
		return ms[0].GetGauge().GetValue()
	}
	// A one-node cluster appointed itself: at epoch ≥ 1, and saw
	// that appointment.
	if one("replicant_epoch") < 1 || one("replicant_leader_changes_total") < 1 || one("replicant_control_has_leader") != 1 {
		t.Errorf("leader gauges: epoch %v leader_changes %v control_has_leader %v", one("replicant_epoch"), one("replicant_leader_changes_total"), one("replicant_control_has_leader"))
	}
	samples := 0
	for name, ms := range idle {
		if strings.HasPrefix(name, "replicant_") {
			samples += len(ms)
		}
	}
	// About 30 families, a few histograms: well under 100 samples.
	if samples > 100 {
		t.Errorf("idle node exports %d replicant_ samples", samples)
	}

	if got := clients(t, ts, "resp"); got != 0 {
		t.Fatalf("precondition: %v RESP clients before any connected", got)
	}
	c := ts.client(t, 2, func(o *redis.Options) { o.PoolSize = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}
	if got := clients(t, ts, "resp"); got != 1 {
		t.Errorf("%v RESP clients with one connection open", got)
	}
	used := series(t, ts)
	for _, name := range []string{"replicant_ops_total", "replicant_op_seconds"} {
		got := commandsIn(used[name])
		// go-redis may send HELLO or CLIENT SETINFO on connect; nothing
		// else was sent.
		delete(got, "hello")
		delete(got, "client")
		if len(got) != 2 || !got["set"] || !got["get"] {
			t.Errorf("%s after SET and GET: %v", name, got)
		}
	}
	c.Close()
	waitFor(t, 5*time.Second, "the RESP client count to drop to 0", func() bool { return clients(t, ts, "resp") == 0 })
}
