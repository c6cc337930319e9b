package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicant-db/replicant/internal/engine"
)

// fakeEngine is the little of an engine the link routes use: status,
// token, settings and metrics. The embedded Engine is nil, so a handler
// that reaches for anything else panics and fails the test.
type fakeEngine struct {
	engine.Engine
	st      engine.Status
	pass    string
	metrics *engine.Metrics
}

func newFakeEngine(mode, site, pass string) *fakeEngine {
	return &fakeEngine{
		st:   engine.Status{ID: "n1", Mode: mode, Site: site},
		pass: pass,
		metrics: &engine.Metrics{
			Registry:  prometheus.NewRegistry(),
			Ops:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ops"}, []string{"api", "cmd", "result"}),
			OpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lat"}, []string{"api", "cmd"}),
		},
	}
}

func (f *fakeEngine) Status() engine.Status { return f.st }
func (f *fakeEngine) Token() engine.Token   { return engine.Token{Vector: "eu:7"} }
func (f *fakeEngine) Settings() engine.Settings {
	return engine.Settings{ID: f.st.ID, RequirePass: f.pass}
}
func (f *fakeEngine) Metrics() *engine.Metrics { return f.metrics }

// fakeSites is a multi-leader engine: fakeEngine plus engine.Sites, which
// records what the handlers asked and answers with err when it is set.
type fakeSites struct {
	*fakeEngine
	links     []engine.LinkStatus
	conflicts []engine.Conflict
	err       error

	gotPeer  string
	gotSite  string
	gotLimit int
}

func (f *fakeSites) Site() string { return f.st.Site }

func (f *fakeSites) Links(context.Context) ([]engine.LinkStatus, error) { return f.links, f.err }

func (f *fakeSites) AddLink(_ context.Context, peer string) (engine.LinkStatus, error) {
	f.gotPeer = peer
	if f.err != nil {
		return engine.LinkStatus{}, f.err
	}
	return engine.LinkStatus{Site: "us", Peers: []string{peer}, State: "connecting"}, nil
}

func (f *fakeSites) RemoveLink(_ context.Context, site string) error {
	f.gotSite = site
	return f.err
}

func (f *fakeSites) Conflicts(_ context.Context, limit int) ([]engine.Conflict, error) {
	f.gotLimit = limit
	return f.conflicts, f.err
}

var _ engine.Sites = (*fakeSites)(nil)

// serveFake answers one request with a Server around b, without a network.
func serveFake(t *testing.T, b engine.Engine, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	New(b, nil).Handler().ServeHTTP(rec, req)
	return rec
}

func TestLinkRoutes(t *testing.T) {
	streaming := engine.LinkStatus{Site: "us", Peers: []string{"10.0.0.2:9081"}, State: "streaming", Connected: "n2",
		LagEntries: 3, LagSeconds: 0.25, AppliedOriginLSN: 120, RemoteLSN: 130}
	conflict := engine.Conflict{Key: "k", Site: "eu",
		Winner: engine.ConflictWrite{Site: "us", HLC: "1700000000001,0", WallMs: 1700000000001, Value: "b"},
		Loser:  engine.ConflictWrite{Site: "eu", HLC: "1700000000000,3", WallMs: 1700000000000, Value: "a"}, ResolvedMs: 1700000000002}
	notLeader := &engine.NotLeaderError{LeaderID: "n2", LeaderRESP: "10.0.0.2:6381", LeaderHTTP: "10.0.0.2:8081"}

	tests := []struct {
		name         string
		single       bool // an engine without engine.Sites
		sites        fakeSites
		method, path string
		body         string
		want         int
		wantBody     string // the JSON answer, compared as values; "" skips
		wantErr      string // part of the JSON error; "" skips
		wantLocation string
		check        func(t *testing.T, f *fakeSites)
	}{
		{name: "list", sites: fakeSites{links: []engine.LinkStatus{streaming}}, method: "GET", path: "/v1/links", want: 200,
			wantBody: `{"site":"eu","links":[{"site":"us","peers":["10.0.0.2:9081"],"state":"streaming","connected":"n2",
				"lag_entries":3,"lag_seconds":0.25,"applied_origin_lsn":120,"remote_lsn":130}]}`},
		{name: "list empty is an array", method: "GET", path: "/v1/links", want: 200, wantBody: `{"site":"eu","links":[]}`},
		{name: "add", method: "POST", path: "/v1/links", body: `{"peer":"10.0.0.2:9081"}`, want: 200,
			wantBody: `{"site":"us","peers":["10.0.0.2:9081"],"state":"connecting","lag_entries":0,"lag_seconds":0,"applied_origin_lsn":0,"remote_lsn":0}`,
			check: func(t *testing.T, f *fakeSites) {
				if f.gotPeer != "10.0.0.2:9081" {
					t.Errorf("AddLink got peer %q", f.gotPeer)
				}
			}},
		{name: "add without body", method: "POST", path: "/v1/links", want: 400, wantErr: "invalid link JSON"},
		{name: "add not JSON", method: "POST", path: "/v1/links", body: `peer=x`, want: 400, wantErr: "invalid link JSON"},
		{name: "add unknown field", method: "POST", path: "/v1/links", body: `{"peer":"h:1","site":"us"}`, want: 400, wantErr: "unknown field"},
		{name: "add empty peer", method: "POST", path: "/v1/links", body: `{}`, want: 400, wantErr: "HOST:PORT"},
		{name: "add peer without port", method: "POST", path: "/v1/links", body: `{"peer":"10.0.0.2"}`, want: 400, wantErr: "HOST:PORT",
			check: func(t *testing.T, f *fakeSites) {
				if f.gotPeer != "" {
					t.Errorf("AddLink called with %q for a refused request", f.gotPeer)
				}
			}},
		// The site leader keeps the links: a site follower sends the
		// client there, to the same path, as KV writes do.
		{name: "add on a site follower", sites: fakeSites{err: notLeader}, method: "POST", path: "/v1/links",
			body: `{"peer":"10.0.0.3:9081"}`, want: 307, wantErr: "not the leader", wantLocation: "http://10.0.0.2:8081/v1/links"},
		{name: "add, site leader unknown", sites: fakeSites{err: &engine.NotLeaderError{}}, method: "POST", path: "/v1/links",
			body: `{"peer":"10.0.0.3:9081"}`, want: 503, wantErr: "leader unknown"},
		{name: "add times out", sites: fakeSites{err: context.DeadlineExceeded}, method: "POST", path: "/v1/links",
			body: `{"peer":"10.0.0.3:9081"}`, want: 504},
		{name: "remove", method: "DELETE", path: "/v1/links/us", want: 204,
			check: func(t *testing.T, f *fakeSites) {
				if f.gotSite != "us" {
					t.Errorf("RemoveLink got site %q", f.gotSite)
				}
			}},
		{name: "remove escaped site", method: "DELETE", path: "/v1/links/eu%2Fwest", want: 204,
			check: func(t *testing.T, f *fakeSites) {
				if f.gotSite != "eu/west" {
					t.Errorf("RemoveLink got site %q, want eu/west", f.gotSite)
				}
			}},
		{name: "remove unknown", sites: fakeSites{err: &engine.UnknownLinkError{Site: "mars"}}, method: "DELETE", path: "/v1/links/mars",
			want: 404, wantErr: `no link from site "mars"`},
		{name: "remove wrapped unknown", sites: fakeSites{err: fmtWrap(&engine.UnknownLinkError{Site: "mars"})}, method: "DELETE",
			path: "/v1/links/mars", want: 404},
		{name: "remove on a site follower", sites: fakeSites{err: notLeader}, method: "DELETE", path: "/v1/links/us",
			want: 307, wantLocation: "http://10.0.0.2:8081/v1/links/us"},
		{name: "conflicts", sites: fakeSites{conflicts: []engine.Conflict{conflict}}, method: "GET", path: "/v1/conflicts", want: 200,
			wantBody: `{"site":"eu","conflicts":[{"key":"k","site":"eu",
				"winner":{"site":"us","hlc":"1700000000001,0","wall_ms":1700000000001,"value":"b"},
				"loser":{"site":"eu","hlc":"1700000000000,3","wall_ms":1700000000000,"value":"a"},"resolved_ms":1700000000002}]}`,
			check: func(t *testing.T, f *fakeSites) {
				if f.gotLimit != defaultConflictLimit {
					t.Errorf("Conflicts got limit %d, want the default %d", f.gotLimit, defaultConflictLimit)
				}
			}},
		{name: "conflicts empty is an array", method: "GET", path: "/v1/conflicts", want: 200, wantBody: `{"site":"eu","conflicts":[]}`},
		{name: "conflicts limit", method: "GET", path: "/v1/conflicts?limit=5", want: 200,
			check: func(t *testing.T, f *fakeSites) {
				if f.gotLimit != 5 {
					t.Errorf("Conflicts got limit %d, want 5", f.gotLimit)
				}
			}},
		{name: "conflicts limit capped", method: "GET", path: "/v1/conflicts?limit=5000", want: 200,
			check: func(t *testing.T, f *fakeSites) {
				if f.gotLimit != maxConflictLimit {
					t.Errorf("Conflicts got limit %d, want the maximum %d", f.gotLimit, maxConflictLimit)
				}
			}},
		{name: "conflicts limit not a number", method: "GET", path: "/v1/conflicts?limit=ten", want: 400, wantErr: "invalid limit"},
		{name: "conflicts limit zero", method: "GET", path: "/v1/conflicts?limit=0", want: 400, wantErr: "invalid limit"},
		{name: "conflicts limit negative", method: "GET", path: "/v1/conflicts?limit=-1", want: 400, wantErr: "invalid limit"},
		{name: "single-leader list", single: true, method: "GET", path: "/v1/links", want: 409,
			wantErr: "not in multi-leader mode (this cluster runs single-leader)"},
		{name: "single-leader add", single: true, method: "POST", path: "/v1/links", body: `{"peer":"h:1"}`, want: 409,
			wantErr: "not in multi-leader mode"},
		{name: "single-leader remove", single: true, method: "DELETE", path: "/v1/links/us", want: 409, wantErr: "not in multi-leader mode"},
		{name: "single-leader conflicts", single: true, method: "GET", path: "/v1/conflicts", want: 409, wantErr: "not in multi-leader mode"},
		{name: "method not allowed", method: "PUT", path: "/v1/links", want: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.sites
			var b engine.Engine = &f
			if tc.single {
				b = newFakeEngine(engine.ModeSingleLeader, "", "")
			} else {
				f.fakeEngine = newFakeEngine(engine.ModeMultiLeader, "eu", "")
			}
			rec := serveFake(t, b, tc.method, tc.path, tc.body, nil)
			if rec.Code != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.want)
			}
			if rec.Header().Get(HeaderToken) == "" {
				t.Errorf("answer has no %s", HeaderToken)
			}
			if tc.wantBody != "" {
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				var got, want any
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("answer is not JSON: %v\n%s", err, rec.Body)
				}
				if err := json.Unmarshal([]byte(tc.wantBody), &want); err != nil {
					t.Fatalf("bad wantBody: %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("answer\n%s\nwant\n%s", rec.Body, tc.wantBody)
				}
			}
			if tc.wantErr != "" {
				var e struct {
					Error string `json:"error"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.wantErr) {
					t.Errorf("error %q (%v), want one containing %q", rec.Body, err, tc.wantErr)
				}
			}
			if got := rec.Header().Get("Location"); got != tc.wantLocation {
				t.Errorf("Location %q, want %q", got, tc.wantLocation)
			}
			if tc.check != nil {
				tc.check(t, &f)
			}
		})
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("control plane"), err) }

// The link routes sit behind --requirepass like every other route.
func TestLinkRoutesRequirePass(t *testing.T) {
	const pass = "s3cret"
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/links", ""},
		{"POST", "/v1/links", `{"peer":"10.0.0.2:9081"}`},
		{"DELETE", "/v1/links/us", ""},
		{"GET", "/v1/conflicts", ""},
	}
	creds := []struct {
		name string
		hdr  map[string]string
		ok   bool
	}{
		{"none", nil, false},
		{"wrong", map[string]string{"Authorization": "Bearer nope"}, false},
		{"right", map[string]string{"Authorization": "Bearer " + pass}, true},
	}
	for _, cr := range creds {
		for _, rt := range routes {
			t.Run(cr.name+" "+rt.method+" "+rt.path, func(t *testing.T) {
				f := &fakeSites{fakeEngine: newFakeEngine(engine.ModeMultiLeader, "eu", pass)}
				rec := serveFake(t, f, rt.method, rt.path, rt.body, cr.hdr)
				switch {
				case cr.ok && rec.Code >= 300:
					t.Fatalf("%d %s, want success", rec.Code, rec.Body)
				case !cr.ok && rec.Code != http.StatusUnauthorized:
					t.Fatalf("%d %s, want 401", rec.Code, rec.Body)
				}
				if !cr.ok && (f.gotPeer != "" || f.gotSite != "" || f.gotLimit != 0) {
					t.Error("an unauthenticated request reached the engine")
				}
			})
		}
	}
}

// A real single-leader node answers the multi-leader routes with 409.
func TestLinksOnSingleLeaderNode(t *testing.T) {
	e := startEnv(t, nil)
	for _, rt := range []struct{ method, path, body string }{
		{"GET", "/v1/links", ""},
		{"POST", "/v1/links", `{"peer":"127.0.0.1:9"}`},
		{"DELETE", "/v1/links/us", ""},
		{"GET", "/v1/conflicts", ""},
	} {
		var body io.Reader
		if rt.body != "" {
			body = strings.NewReader(rt.body)
		}
		r := e.do(t, rt.method, rt.path, body, nil)
		if r.code != http.StatusConflict {
			t.Errorf("%s %s: %d %s, want 409", rt.method, rt.path, r.code, r.body)
			continue
		}
		if msg := errorMessage(t, r); msg != "not in multi-leader mode (this cluster runs single-leader)" {
			t.Errorf("%s %s: error %q", rt.method, rt.path, msg)
		}
	}
}
