package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

func TestDecideHealth(t *testing.T) {
	leader := healthFacts{Mode: engine.ModeSingleLeader, Role: "leader", State: "leading", Leader: "n1", Epoch: 3}
	follower := healthFacts{Mode: engine.ModeSingleLeader, Role: "follower", State: "streaming", Leader: "n1", Epoch: 3,
		LagSeconds: 0.4, LagEntries: 7}
	with := func(f healthFacts, mut func(*healthFacts)) healthFacts { mut(&f); return f }
	secs := func(d time.Duration) lagBound { return lagBound{Duration: d, HasDuration: true} }
	entries := func(n uint64) lagBound { return lagBound{Entries: n, HasEntries: true} }
	leaderless := healthFacts{Mode: engine.ModeLeaderless, Role: "replica", State: "serving", Replicas: 3, RingSize: 5, Reachable: 5}

	for _, tc := range []struct {
		name   string
		check  healthCheck
		facts  healthFacts
		bound  lagBound
		code   int
		reason string // a substring of the reason
	}{
		{"leader with a lease", checkLeader, leader, lagBound{}, 200, "is the leader (epoch 3)"},
		{"leader whose lease expired", checkLeader, with(leader, func(f *healthFacts) {
			f.State, f.Reason = "lease-expired", "cannot renew"
		}), lagBound{}, 503, "lease-expired: cannot renew"},
		{"leader not ready", checkLeader, with(leader, func(f *healthFacts) { f.NotReady = "loading" }), lagBound{}, 503, "not ready: loading"},
		{"follower on the leader check", checkLeader, follower, lagBound{}, 503, "the leader is n1"},
		{"no leader known", checkLeader, with(follower, func(f *healthFacts) {
			f.Leader, f.State = "", "waiting-for-leader"
		}), lagBound{}, 503, "no leader is known"},
		{"site leader in multi-leader mode", checkLeader, with(leader, func(f *healthFacts) {
			f.Mode, f.Site = engine.ModeMultiLeader, "eu"
		}), lagBound{}, 200, "leader of site eu"},

		{"streaming follower, no bound", checkReplica, follower, lagBound{}, 200, "streaming from n1"},
		{"within a time bound", checkReplica, follower, secs(time.Second), 200, "0.400s"},
		{"beyond a time bound", checkReplica, follower, secs(100 * time.Millisecond), 503, "exceeds the bound 100ms"},
		{"at an entry bound", checkReplica, follower, entries(7), 200, "7 entries"},
		{"beyond an entry bound", checkReplica, follower, entries(6), 503, "lag 7 entries exceeds the bound 6"},
		{"both bounds, time fails", checkReplica, follower, lagBound{Duration: time.Millisecond, HasDuration: true, Entries: 100, HasEntries: true}, 503, "exceeds the bound 1ms"},
		{"a zero time bound is a bound", checkReplica, follower, secs(0), 503, "exceeds the bound 0s"},
		{"caught-up follower, zero bound", checkReplica, with(follower, func(f *healthFacts) { f.LagSeconds, f.LagEntries = 0, 0 }), entries(0), 200, "0 entries"},
		{"connecting follower", checkReplica, with(follower, func(f *healthFacts) {
			f.State, f.Reason = "connecting", "dial: connection refused"
		}), lagBound{}, 503, "it is connecting (dial: connection refused)"},
		{"follower without control-plane quorum", checkReplica, with(follower, func(f *healthFacts) { f.State = "no-quorum" }), lagBound{}, 503, "no-quorum"},
		{"loading follower", checkReplica, with(follower, func(f *healthFacts) { f.NotReady = "follower is catching-up" }), lagBound{}, 503, "not ready"},
		{"leader on the replica check", checkReplica, leader, lagBound{}, 503, "is the leader, not a replica"},
		{"site follower in multi-leader mode", checkReplica, with(follower, func(f *healthFacts) { f.Mode, f.Site = engine.ModeMultiLeader, "eu" }), lagBound{}, 200, "streaming"},

		{"leaderless node takes writes", checkLeader, leaderless, lagBound{}, 200, "coordinates writes"},
		{"leaderless node serves reads, bound ignored", checkReplica, leaderless, secs(time.Millisecond), 200, "does not apply"},
		{"leaderless with a bare quorum", checkLeader, with(leaderless, func(f *healthFacts) { f.Reachable = 2 }), lagBound{}, 200, "reaches 2 of 5"},
		{"leaderless below quorum", checkReplica, with(leaderless, func(f *healthFacts) { f.Reachable = 1 }), lagBound{}, 503, "fewer than a default quorum (2 of N=3)"},
		{"leaderless ring smaller than N", checkLeader, with(leaderless, func(f *healthFacts) { f.RingSize, f.Reachable = 1, 1 }), lagBound{}, 200, "quorum 1 of N=1"},
		{"leaderless not ready", checkLeader, with(leaderless, func(f *healthFacts) { f.NotReady = "loading" }), lagBound{}, 503, "not ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := decideHealth(tc.check, tc.facts, tc.bound)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Fatalf("decideHealth = %d %q, want %d and a reason containing %q", code, reason, tc.code, tc.reason)
			}
		})
	}
}

func TestParseLagBound(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  lagBound
		err   string
	}{
		{"", lagBound{}, ""},
		{"max_lag=1s", lagBound{Duration: time.Second, HasDuration: true}, ""},
		{"lag=250ms", lagBound{Duration: 250 * time.Millisecond, HasDuration: true}, ""},
		{"max_lag=100", lagBound{Entries: 100, HasEntries: true}, ""},
		{"lag=0", lagBound{Entries: 0, HasEntries: true}, ""},
		{"max_lag=-1s", lagBound{}, "invalid lag bound"},
		{"max_lag=soon", lagBound{}, "invalid lag bound"},
		{"max_lag=1s&lag=2s", lagBound{}, "once"},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLagBound(q)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.query, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

// On a real one-node cluster the leader check passes, the replica check
// fails, and neither needs the password that protects /v1/status.
func TestHealthEndpointsWithoutPassword(t *testing.T) {
	e := startEnv(t, func(c *node.Config) { c.RequirePass = "secret" })
	get := func(path string) (int, healthReply) {
		t.Helper()
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h healthReply
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
			if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
				t.Fatalf("%s: decode: %v", path, err)
			}
		}
		return resp.StatusCode, h
	}
	if code, _ := get("/v1/status"); code != http.StatusUnauthorized {
		t.Fatalf("precondition: /v1/status without the password answered %d, want 401", code)
	}
	// The leader holds its lease shortly after its appointment; until then
	// it rightly fails the check.
	waitFor(t, 10*time.Second, "the leader check to pass", func() bool {
		code, _ := get("/v1/health/leader")
		return code == http.StatusOK
	})
	if code, h := get("/v1/health/leader"); code != http.StatusOK || !h.Healthy || h.Role != "leader" || h.Node != "n1" || h.Check != "leader" {
		t.Fatalf("/v1/health/leader on the leader: %d %+v", code, h)
	}
	if code, h := get("/v1/health/replica?max_lag=1s"); code != http.StatusServiceUnavailable || h.Healthy || !strings.Contains(h.Reason, "not a replica") {
		t.Fatalf("/v1/health/replica on the leader: %d %+v", code, h)
	}
	if code, _ := get("/v1/health/replica?max_lag=soon"); code != http.StatusBadRequest {
		t.Fatalf("/v1/health/replica?max_lag=soon: %d, want 400", code)
	}
	resp, err := http.Head(e.url + "/v1/health/leader")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD /v1/health/leader: %d", resp.StatusCode)
	}
}
