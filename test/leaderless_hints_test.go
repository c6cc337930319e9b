package test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// hintMembers reads each member's hints_pending from a node's status (nil
// when the field is missing).
func hintMembers(p *proc) (map[string]*uint64, error) {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + p.HTTP + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Members []struct {
			ID           string  `json:"id"`
			HintsPending *uint64 `json:"hints_pending"`
		} `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	out := map[string]*uint64{}
	for _, m := range st.Members {
		out[m.ID] = m.HintsPending
	}
	return out, nil
}

// TestLeaderlessHintedHandoff: with --sloppy-quorum and two of a key's
// three replicas killed, a W=2 write succeeds through a stand-in, which
// keeps a hint (hints_pending in its status) and not the key itself; when
// the replicas return, the hints are handed over (KEYS on each lists the
// key) and hints_pending drops to 0 everywhere.
func TestLeaderlessHintedHandoff(t *testing.T) {
	// Anti-entropy would also bring the key to the returned replicas;
	// keep it out of the way so that the test sees the hand-over.
	c := newLeaderless(t, 5, "--sloppy-quorum", "--anti-entropy-interval", "1h")
	ctx := ctxT(t, 90*time.Second)
	key := "hinted"
	reps, others := c.replicasOf(key)

	// Every member shows hints_pending, 0 included.
	for _, p := range c.nodes {
		hm, err := hintMembers(p)
		if err != nil {
			t.Fatal(err)
		}
		for id, n := range hm {
			if n == nil || *n != 0 {
				t.Fatalf("status of %s: hints_pending of %s = %v, want 0", p.ID, id, n)
			}
		}
	}

	reps[1].kill()
	reps[2].kill()
	w2 := quorumConn(t, reps[0], "2", "1")
	if err := w2.Set(ctx, key, "handed-over", 0).Err(); err != nil {
		t.Fatalf("W=2 with two replicas down and --sloppy-quorum: %v", err)
	}

	// Each killed replica gets a stand-in among the other nodes (the
	// second one in the background, after the client's answer).
	waitFor(t, "the stand-ins keep a hint for each killed replica", 20*time.Second, func() bool {
		for _, down := range reps[1:] {
			var held uint64
			for _, s := range others {
				hm, err := hintMembers(s)
				if err != nil || hm[down.ID] == nil {
					return false
				}
				held += *hm[down.ID]
			}
			if held != 1 {
				return false
			}
		}
		return true
	})
	for _, s := range others {
		if keys, err := s.redis().Keys(ctx, key).Result(); err != nil || len(keys) != 0 {
			t.Fatalf("KEYS %s on stand-in %s = %q, %v: a hint must not show as the stand-in's own key", key, s.ID, keys, err)
		}
	}

	reps[1].start()
	reps[2].start()
	waitFor(t, "the hints are handed over and hints_pending is 0 everywhere", 30*time.Second, func() bool {
		for _, p := range c.nodes {
			hm, err := hintMembers(p)
			if err != nil || len(hm) != len(c.nodes)-1 {
				return false
			}
			for _, n := range hm {
				if n == nil || *n != 0 {
					return false
				}
			}
		}
		return true
	})
	// Nothing read the key since the replicas returned (no read repair)
	// and anti-entropy is off: the hand-over put it there.
	for _, p := range reps[1:] {
		if keys, err := p.redis().Keys(ctx, key).Result(); err != nil || len(keys) != 1 || keys[0] != key {
			t.Fatalf("KEYS %s on returned replica %s = %q, %v", key, p.ID, keys, err)
		}
	}
	var delivered float64
	for _, s := range others {
		if keys, err := s.redis().Keys(ctx, key).Result(); err != nil || len(keys) != 0 {
			t.Fatalf("KEYS %s on stand-in %s after the hand-over = %q, %v", key, s.ID, keys, err)
		}
		delivered += max(metricValue(s, "replicant_hints_delivered_total"), 0)
	}
	if delivered != 2 {
		t.Errorf("replicant_hints_delivered_total on the stand-ins adds up to %v, want 2", delivered)
	}
	if v, err := quorumConn(t, reps[1], "one", "all").Get(ctx, key).Result(); err != nil || v != "handed-over" {
		t.Fatalf("R=all GET on %s = %q, %v", reps[1].ID, v, err)
	}
}
