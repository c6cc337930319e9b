package test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// healthReply is the body of /v1/health/{leader,replica}.
type healthReply struct {
	Check      string  `json:"check"`
	Healthy    bool    `json:"healthy"`
	Reason     string  `json:"reason"`
	Node       string  `json:"node"`
	Role       string  `json:"role"`
	State      string  `json:"state"`
	Leader     string  `json:"leader"`
	LagSeconds float64 `json:"lag_seconds"`
	LagEntries uint64  `json:"lag_entries"`
}

// health asks p's health endpoint path (with its query) and returns the
// status code and body.
func (p *proc) health(path string) (int, healthReply, error) {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + p.HTTP + path)
	if err != nil {
		return 0, healthReply{}, err
	}
	defer resp.Body.Close()
	var h healthReply
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return resp.StatusCode, h, err
	}
	return resp.StatusCode, h, nil
}

func (p *proc) mustHealth(path string) (int, healthReply) {
	p.t.Helper()
	code, h, err := p.health(path)
	if err != nil {
		p.t.Fatalf("%s %s: %v", p.ID, path, err)
	}
	return code, h
}

// A load balancer finds the leader with /v1/health/leader and replicas
// within a lag bound with /v1/health/replica?max_lag=, also across a
// failover; a delayed replica fails a bound its delay exceeds.
func TestHealthEndpointsLeaderAndReplicas(t *testing.T) {
	// Followers apply each entry only when it is 3 s old: lag to see.
	c := newCluster(t, 3, "--apply-delay", "3s")
	n1, n2, n3 := c.node("n1"), c.node("n2"), c.node("n3")
	// A new leader's lease comes shortly after its appointment.
	c.waitFor("n1 passes the leader check", 10*time.Second, func() bool {
		code, _, err := n1.health("/v1/health/leader")
		return err == nil && code == http.StatusOK
	})
	for _, p := range []*proc{n2, n3} {
		if code, h := p.mustHealth("/v1/health/leader"); code != http.StatusServiceUnavailable || h.Healthy || !strings.Contains(h.Reason, "the leader is n1") {
			t.Fatalf("leader check on follower %s: %d %+v", p.ID, code, h)
		}
		if code, h := p.mustHealth("/v1/health/replica?max_lag=10s"); code != http.StatusOK || !h.Healthy || h.Role != "follower" || h.Leader != "n1" {
			t.Fatalf("replica check on idle follower %s: %d %+v", p.ID, code, h)
		}
	}
	if code, h := n1.mustHealth("/v1/health/replica"); code != http.StatusServiceUnavailable || !strings.Contains(h.Reason, "not a replica") {
		t.Fatalf("replica check on the leader: %d %+v", code, h)
	}
	if code, _, _ := n2.health("/v1/health/replica?max_lag=soon"); code != http.StatusBadRequest {
		t.Fatalf("replica check with a malformed bound: %d, want 400", code)
	}

	// A write is applied on the followers 3 s later: meanwhile they lag
	// (in entries at once, in seconds as the entry ages) and fail tight
	// bounds, while a loose one still passes; then they catch up.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n1.redis().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.waitFor("n2 fails max_lag=0 (entries) and max_lag=300ms while the write waits to be applied", 2500*time.Millisecond, func() bool {
		code0, h0, err0 := n2.health("/v1/health/replica?max_lag=0")
		codeT, hT, errT := n2.health("/v1/health/replica?max_lag=300ms")
		return err0 == nil && errT == nil && code0 == http.StatusServiceUnavailable && h0.LagEntries >= 1 &&
			strings.Contains(h0.Reason, "entries exceeds the bound 0") &&
			codeT == http.StatusServiceUnavailable && strings.Contains(hT.Reason, "exceeds the bound 300ms")
	})
	if code, h := n2.mustHealth("/v1/health/replica?lag=30s"); code != http.StatusOK {
		t.Fatalf("replica check with a loose bound while lagging: %d %+v", code, h)
	}
	c.waitFor("n2 passes max_lag=0 once it applied the write", 10*time.Second, func() bool {
		code, _, err := n2.health("/v1/health/replica?max_lag=0")
		return err == nil && code == http.StatusOK
	})

	// Failover: the leader check moves to the new leader.
	n1.kill()
	var leader, other *proc
	c.waitFor("n2 or n3 passes the leader check after n1 died", 20*time.Second, func() bool {
		for _, p := range []*proc{n2, n3} {
			if code, _, err := p.health("/v1/health/leader"); err == nil && code == http.StatusOK {
				leader = p
				return true
			}
		}
		return false
	})
	other = n2
	if leader == n2 {
		other = n3
	}
	if code, h := leader.mustHealth("/v1/health/replica"); code != http.StatusServiceUnavailable {
		t.Fatalf("replica check on the new leader %s: %d %+v", leader.ID, code, h)
	}
	c.waitFor(other.ID+" passes the replica check, streaming from "+leader.ID, 20*time.Second, func() bool {
		code, h, err := other.health("/v1/health/replica?max_lag=10s")
		return err == nil && code == http.StatusOK && h.Leader == leader.ID
	})
	if code, h := other.mustHealth("/v1/health/leader"); code != http.StatusServiceUnavailable || !strings.Contains(h.Reason, "the leader is "+leader.ID) {
		t.Fatalf("leader check on %s after the failover: %d %+v", other.ID, code, h)
	}
}

// Every one-node site leads its site (multi-leader), and every leaderless
// node serves reads and writes while it reaches a default quorum of the
// ring — and fails both checks once it does not.
func TestHealthEndpointsInOtherModes(t *testing.T) {
	sites := startSites(t, "eu", "us")
	for _, p := range sites {
		waitFor(t, p.ID+" passes the leader check as its site's leader", 20*time.Second, func() bool {
			code, h, err := p.health("/v1/health/leader")
			return err == nil && code == http.StatusOK && strings.Contains(h.Reason, "leader of site")
		})
		if code, h := p.mustHealth("/v1/health/replica"); code != http.StatusServiceUnavailable {
			t.Fatalf("replica check on a one-node site %s: %d %+v", p.ID, code, h)
		}
	}

	c := newLeaderless(t, 3)
	for _, p := range c.nodes {
		for _, check := range []string{"/v1/health/leader", "/v1/health/replica?max_lag=1ms"} {
			if code, h := p.mustHealth(check); code != http.StatusOK || !strings.Contains(h.Reason, "leaderless") {
				t.Fatalf("%s on leaderless %s: %d %+v", check, p.ID, code, h)
			}
		}
	}
	n1 := c.node("n1")
	c.node("n2").kill()
	c.node("n3").kill()
	waitFor(t, "n1 fails the leader check once it reaches no quorum of the ring", 20*time.Second, func() bool {
		code, h, err := n1.health("/v1/health/leader")
		return err == nil && code == http.StatusServiceUnavailable && strings.Contains(h.Reason, "fewer than a default quorum")
	})
}
