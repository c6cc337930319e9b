package httpapi

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

var metricName = regexp.MustCompile(`replicant_[a-z0-9_]+`)

// documentedMetrics are the metric names docs/metrics.md lists in its
// tables (a row starts with the name in backquotes).
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	row := regexp.MustCompile("^\\| `(replicant_[a-z0-9_]+)`")
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			out[m[1]] = true
		}
	}
	if len(out) < 30 {
		t.Fatalf("precondition: only %d metrics found in docs/metrics.md", len(out))
	}
	return out
}

// Every replicant_ family a node serves on /metrics is documented, and the
// Grafana dashboard is JSON that uses documented metrics only.
func TestMetricsDocumentedAndDashboardValid(t *testing.T) {
	docs := documentedMetrics(t)
	e := startEnv(t, nil)
	// One write and one read over HTTP, so that the per-command and
	// commit series have samples.
	if r := e.do(t, http.MethodPut, "/v1/kv/k", strings.NewReader("v"), nil); r.code != http.StatusNoContent {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	if r := e.do(t, http.MethodGet, "/v1/kv/k", nil, nil); r.code != http.StatusOK {
		t.Fatalf("GET: %d %s", r.code, r.body)
	}
	r := e.do(t, http.MethodGet, "/metrics", nil, nil)
	if r.code != http.StatusOK {
		t.Fatalf("/metrics: %d", r.code)
	}
	served := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(r.body)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "replicant_") {
			served[f[2]] = true
		}
	}
	for _, must := range []string{"replicant_ops_total", "replicant_op_seconds", "replicant_build_info", "replicant_disk_bytes"} {
		if !served[must] {
			t.Fatalf("precondition: /metrics lacks %s", must)
		}
	}
	for name := range served {
		if !docs[name] {
			t.Errorf("%s is served but not documented in docs/metrics.md", name)
		}
	}

	b, err := os.ReadFile("../../../deploy/grafana/replicant.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct {
				H, W, X, Y int
			} `json:"gridPos"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/replicant.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels")
	}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if !docs[base] {
					t.Errorf("panel %q queries %s, which docs/metrics.md does not document", p.Title, m)
				}
			}
		}
	}
}
