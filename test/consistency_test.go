package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// httpDo sends one request and returns status, body and Replicant-Token.
func httpDo(t *testing.T, method, url, body string, hdr map[string]string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	hc := http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Replicant-Token")
}

// TestReadGuaranteesOnADelayedFollower uses a follower that applies entries
// only when they are 1.5s old, so replication lag is real and large, and
// checks the guarantees that tame it.
func TestReadGuaranteesOnADelayedFollower(t *testing.T) {
	c := newCluster(t, 2, "--sync", "FIRST 1 (n2)", "--ack", "received", "--apply-delay", "1500ms", "--read-timeout", "10s")
	leader, n2 := c.node("n1"), c.node("n2")
	code, _, tok := httpDo(t, http.MethodPut, "http://"+leader.HTTP+"/v1/kv/k", "v1", nil)
	if code != http.StatusNoContent || tok == "" {
		t.Fatalf("PUT on leader: %d token %q", code, tok)
	}
	// The leader sees the lag: entries and bytes n2 has not applied.
	for _, m := range leader.mustStatus().Members {
		if m.ID == "n2" && (m.LagEntries == 0 || m.LagBytes == 0) {
			t.Errorf("leader status while n2 delays applying: lag_entries %d, lag_bytes %d", m.LagEntries, m.LagBytes)
		}
	}
	// Bounded staleness: once the unapplied entry is older than 100ms (it
	// waits 1.5s to be applied), the follower knows it lags more than that
	// and refuses.
	time.Sleep(300 * time.Millisecond)
	code, body, _ := httpDo(t, http.MethodGet, "http://"+n2.HTTP+"/v1/kv/k", "", map[string]string{"Replicant-Consistency": "bounded:100ms"})
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "lags") {
		t.Fatalf("bounded read on a lagging follower: %d %s", code, body)
	}
	// Read-your-writes: with the write's token the follower waits until it
	// has applied that LSN, then answers.
	start := time.Now()
	code, body, rtok := httpDo(t, http.MethodGet, "http://"+n2.HTTP+"/v1/kv/k", "", map[string]string{"Replicant-Consistency": "session", "Replicant-Token": tok})
	if code != http.StatusOK || body != "v1" {
		t.Fatalf("session read on follower with the write's token: %d %q", code, body)
	}
	t.Logf("session read waited %s for the delayed follower", time.Since(start).Round(time.Millisecond))
	// Monotonic reads: the token a read returns is never older than the
	// one it was given.
	wt, err1 := engine.ParseToken(tok)
	rt, err2 := engine.ParseToken(rtok)
	if err1 != nil || err2 != nil || rt.LSN < wt.LSN {
		t.Fatalf("read returned token %q, not at least the write's %q", rtok, tok)
	}
	// Linearizable reads are the leader's: a follower refuses them.
	code, _, _ = httpDo(t, http.MethodGet, "http://"+n2.HTTP+"/v1/kv/k", "", map[string]string{"Replicant-Consistency": "linearizable"})
	if code != http.StatusTemporaryRedirect {
		t.Fatalf("linearizable read on follower: want a redirect to the leader, got %d", code)
	}
	// A token naming an LSN that a later epoch of this node's history
	// replaced names a write lost in a failover: fail loudly instead of
	// going back in time. (Epoch 1 starts at LSN 1 here, so no epoch-0
	// entry survives at LSN 1. A token of an epoch this node has not seen,
	// like 7:1, is not judged: the node may be the stale one; see
	// TestTokenFromDiscardedEpochIsLost and replication.StandingOf.)
	code, body, _ = httpDo(t, http.MethodGet, "http://"+leader.HTTP+"/v1/kv/k", "", map[string]string{"Replicant-Consistency": "session", "Replicant-Token": "0:1"})
	if code != http.StatusGone || !strings.Contains(body, "lost") {
		t.Fatalf("token from a replaced history: %d %s", code, body)
	}
	// Eventually the follower applies it for everyone.
	waitFor(t, "the delayed follower applies the write", 20*time.Second, func() bool {
		code, body, _ := httpDo(t, http.MethodGet, "http://"+n2.HTTP+"/v1/kv/k", "", nil)
		return code == http.StatusOK && body == "v1"
	})
}
