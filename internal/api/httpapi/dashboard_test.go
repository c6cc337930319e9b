package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/replicant-db/replicant/internal/engine"
)

// clusterOf asks h for /v1/cluster with the given headers.
func clusterOf(t *testing.T, h http.Handler, hdr map[string]string) (int, ClusterView, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/v1/cluster?since=0", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var v ClusterView
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("cluster view is not JSON: %v\n%s", err, rec.Body)
		}
	}
	return rec.Code, v, rec.Header()
}

// A follower's /v1/cluster carries the leader's own view, fetched with the
// caller's credentials; when the leader cannot give it, it says why and
// still answers with its own.
func TestClusterViewRelaysTheLeader(t *testing.T) {
	leader := newFakeEngine(engine.ModeSingleLeader, "", "pw")
	leader.st = engine.Status{ID: "n1", Mode: engine.ModeSingleLeader, Role: "leader", Leader: "n1", Epoch: 4,
		WritesBlocked: true, BlockedReason: "ALL needs n3",
		Members: []engine.MemberStatus{{ID: "n2", Role: "follower", Healthy: true}, {ID: "n3", Role: "follower"}}}
	var leaderHits atomic.Int32
	leaderSrv := NewWithConfig(leader, nil, Config{})
	ls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaderHits.Add(1)
		if r.URL.Query().Get("local") != "1" {
			t.Errorf("relay asked the leader for %s, want local=1 (a relay must not relay again)", r.URL)
		}
		leaderSrv.Handler().ServeHTTP(w, r)
	}))
	defer ls.Close()
	leaderAddr := strings.TrimPrefix(ls.URL, "http://")

	follower := newFakeEngine(engine.ModeSingleLeader, "", "pw")
	follower.st = engine.Status{ID: "n2", Mode: engine.ModeSingleLeader, Role: "follower", Leader: "n1", Epoch: 4, State: "streaming",
		Members: []engine.MemberStatus{{ID: "n1", Role: "leader", HTTP: leaderAddr}, {ID: "n3", Role: "follower"}}}
	h := NewWithConfig(follower, nil, Config{}).Handler()
	auth := map[string]string{"Authorization": "Bearer pw"}

	tests := []struct {
		name      string
		setup     func()
		hdr       map[string]string
		code      int
		leaderID  string
		errSubstr string
	}{
		{name: "leader relayed", hdr: auth, code: 200, leaderID: "n1"},
		{name: "caller not authenticated", hdr: nil, code: 401},
		{name: "leader refuses other credentials", setup: func() { leader.pass = "other" }, hdr: auth, code: 200, errSubstr: "401"},
		{name: "named leader follows another now", setup: func() { leader.pass, leader.st.Role = "pw", "follower" }, hdr: auth, code: 200, errSubstr: "no longer leads"},
		{name: "leader address unknown", setup: func() { follower.st.Members[0].HTTP = "" }, hdr: auth, code: 200, errSubstr: "HTTP address is unknown"},
		{name: "leader down", setup: func() { follower.st.Members[0].HTTP = leaderAddr; ls.Close() }, hdr: auth, code: 200, errSubstr: "unreachable"},
		{name: "no leader known", setup: func() { follower.st.Leader = "" }, hdr: auth, code: 200, errSubstr: "no leader is known"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			code, v, _ := clusterOf(t, h, tc.hdr)
			if code != tc.code {
				t.Fatalf("code %d, want %d", code, tc.code)
			}
			if code != 200 {
				return
			}
			if v.Node != "n2" || v.Self.ID != "n2" {
				t.Errorf("answered by %q with self %q, want n2", v.Node, v.Self.ID)
			}
			if tc.leaderID != "" {
				if v.Leader == nil || v.Leader.ID != tc.leaderID || !v.Leader.WritesBlocked || v.LeaderError != "" {
					t.Fatalf("leader view %+v (error %q), want %s's own status, writes blocked", v.Leader, v.LeaderError, tc.leaderID)
				}
				if v.History.Node != "n1" {
					t.Errorf("history from %q, want the leader's", v.History.Node)
				}
				return
			}
			if v.Leader != nil || !strings.Contains(v.LeaderError, tc.errSubstr) {
				t.Errorf("leader %+v, error %q; want no leader view and an error containing %q", v.Leader, v.LeaderError, tc.errSubstr)
			}
			if v.History.Node != "n2" {
				t.Errorf("history from %q, want this node's when the leader is missing", v.History.Node)
			}
		})
	}
	if leaderHits.Load() == 0 {
		t.Error("the leader was never asked")
	}
}

// The leader answers with its own status, without asking anyone.
func TestClusterViewOnTheLeader(t *testing.T) {
	e := newFakeEngine(engine.ModeSingleLeader, "", "")
	e.st = engine.Status{ID: "n1", Mode: engine.ModeSingleLeader, Role: "leader", Leader: "n1", Epoch: 2,
		Members: []engine.MemberStatus{{ID: "n2", HTTP: "127.0.0.1:1"}}}
	code, v, _ := clusterOf(t, NewWithConfig(e, nil, Config{}).Handler(), nil)
	if code != 200 || v.Leader == nil || v.Leader.ID != "n1" || v.LeaderError != "" {
		t.Fatalf("code %d, leader %+v, error %q; want n1's own view", code, v.Leader, v.LeaderError)
	}
	if len(v.History.Samples) != 1 || v.History.Samples[0].Epoch != 2 {
		t.Errorf("history %+v, want the sample taken by this request", v.History)
	}
}

// Only the dashboards of members may read the cluster view from another
// origin: a member whose page is gone carries on through the others, and
// a foreign web page cannot read the cluster's status.
func TestClusterViewCORS(t *testing.T) {
	e := newFakeEngine(engine.ModeSingleLeader, "", "pw")
	e.st = engine.Status{ID: "n1", Mode: engine.ModeSingleLeader, Role: "leader", Leader: "n1", HTTP: "127.0.0.1:8081",
		Members: []engine.MemberStatus{{ID: "n2", HTTP: "127.0.0.1:8082"}, {ID: "n3", HTTP: "0.0.0.0:8083"}}}
	h := NewWithConfig(e, nil, Config{}).Handler()
	tests := []struct {
		origin, host string
		allowed      bool
	}{
		{"http://127.0.0.1:8082", "127.0.0.1:8081", true},
		{"http://127.0.0.1:8081", "127.0.0.1:8081", true},
		{"http://db1.example:8083", "db1.example:8081", true}, // wildcard-bound member reached by name
		{"http://db1.example:8083", "127.0.0.1:8081", false},  // another host on a member's port
		{"http://127.0.0.1:9999", "127.0.0.1:8081", false},
		{"https://evil.example", "127.0.0.1:8081", false},
		{"null", "127.0.0.1:8081", false},
	}
	for _, tc := range tests {
		t.Run(tc.origin+" to "+tc.host, func(t *testing.T) {
			// The preflight carries no credentials and must not need them.
			pre := httptest.NewRequest(http.MethodOptions, "http://"+tc.host+"/v1/cluster", nil)
			pre.Header.Set("Origin", tc.origin)
			pre.Header.Set("Access-Control-Request-Headers", "authorization")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, pre)
			if rec.Code != http.StatusNoContent {
				t.Fatalf("preflight answered %d", rec.Code)
			}
			got := rec.Header().Get("Access-Control-Allow-Origin")
			if tc.allowed != (got == tc.origin) || (!tc.allowed && got != "") {
				t.Fatalf("preflight Allow-Origin %q, allowed=%v", got, tc.allowed)
			}
			if tc.allowed && !strings.Contains(strings.ToLower(rec.Header().Get("Access-Control-Allow-Headers")), "authorization") {
				t.Errorf("preflight does not allow the Authorization header")
			}
			req := httptest.NewRequest(http.MethodGet, "http://"+tc.host+"/v1/cluster", nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Authorization", "Bearer pw")
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("GET answered %d", rec.Code)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); (got == tc.origin) != tc.allowed {
				t.Errorf("GET Allow-Origin %q, allowed=%v", got, tc.allowed)
			}
		})
	}
}

// /v1/status carries the timeline; the page and its script are served.
func TestStatusTimelineAndDashboardAssets(t *testing.T) {
	e := newFakeEngine(engine.ModeSingleLeader, "", "")
	e.st = engine.Status{ID: "n1", Mode: engine.ModeSingleLeader, Role: "leader", Leader: "n1", Epoch: 1, State: "leading"}
	h := NewWithConfig(e, nil, Config{}).Handler()
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	get("/v1/status")
	e.st.Epoch, e.st.Leader, e.st.Role, e.st.State = 2, "n3", "follower", "streaming"
	rec := get("/v1/status")
	var st engine.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range st.Timeline {
		kinds = append(kinds, ev.Kind)
	}
	if strings.Join(kinds, ",") != EventLeaderChanged+","+EventStateChanged {
		t.Errorf("timeline kinds %v, want leader-changed then state-changed", kinds)
	}
	if rec := get("/"); !strings.Contains(rec.Body.String(), `<script src="/dashboard.js">`) {
		t.Errorf("dashboard page does not load its script")
	}
	if rec := get("/dashboard.js"); rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") ||
		!strings.Contains(rec.Body.String(), "/v1/cluster") {
		t.Errorf("dashboard.js: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec := get("/v1/history?since=x"); rec.Code != http.StatusBadRequest {
		t.Errorf("history with a bad since answered %d, want 400", rec.Code)
	}
}
