package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLeaderlessAntiEntropy: a replica that was down while 10 000 keys
// were written (W=2) gets every key it is a replica of back from
// anti-entropy alone — nothing reads those keys, so read repair plays no
// part — within a few --anti-entropy-interval, and the metrics, the log
// and the status say so.
func TestLeaderlessAntiEntropy(t *testing.T) {
	// REPLICANT_AE_KEYS raises it for a measurement (docs/benchmarks.md
	// records 100 000); the default keeps the suite quick.
	keys := 10000
	if v, err := strconv.Atoi(os.Getenv("REPLICANT_AE_KEYS")); err == nil && v > 0 {
		keys = v
	}
	c := newLeaderless(t, 5, "--anti-entropy-interval", "1s", "--read-repair=false")
	ctx := ctxT(t, 120*time.Second)
	victim := c.nodes[2]
	var live []*proc
	for _, p := range c.nodes {
		if p != victim {
			live = append(live, p)
		}
	}
	victim.stop()

	// 10 000 keys with W=2 through the other four nodes, 32 clients.
	start := time.Now()
	var want []string
	for i := 0; i < keys; i++ {
		k := fmt.Sprintf("ae:%05d", i)
		if c.ring.Owns(victim.ID, []byte(k), 3) {
			want = append(want, k)
		}
	}
	const clients = 32
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := 0; w < clients; w++ {
		conn := quorumConn(t, live[w%len(live)], "2", "2")
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < keys; i += clients {
				k := fmt.Sprintf("ae:%05d", i)
				if err := conn.Set(ctx, k, "value of "+k, 0).Err(); err != nil {
					errs <- fmt.Errorf("SET %s: %v", k, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("wrote %d keys with W=2 in %s; %s is a replica of %d of them", keys, time.Since(start).Round(time.Millisecond), victim.ID, len(want))

	// What the live nodes' comparisons had pushed before the victim
	// returns (they repair each other's in-flight writes too).
	pushedBefore, bytesBefore := 0.0, 0.0
	for _, p := range live {
		pushedBefore += aeMetric(p, `replicant_anti_entropy_keys_repaired_total{direction="pushed"}`)
		bytesBefore += aeMetric(p, "replicant_anti_entropy_bytes_total")
	}

	victim.start()
	back := time.Now()
	// Nothing reads the keys: only anti-entropy can bring them. KEYS on a
	// leaderless node lists the keys it holds itself.
	vc := victim.redis()
	var held int
	deadline := back.Add(time.Duration(max(1, keys/10000)) * 20 * time.Second) // 20 s per 10 000 keys
	for {
		got, err := vc.Keys(ctx, "ae:*").Result()
		if err == nil {
			held = len(got)
			if held == len(want) {
				set := make(map[string]bool, len(got))
				for _, k := range got {
					set[k] = true
				}
				missing := 0
				for _, k := range want {
					if !set[k] {
						missing++
					}
				}
				if missing != 0 {
					t.Fatalf("%s holds %d keys but lacks %d of its own: it holds keys it is not a replica of", victim.ID, held, missing)
				}
				break
			}
			if held > len(want) {
				t.Fatalf("%s holds %d keys, more than the %d it is a replica of", victim.ID, held, len(want))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d of its %d keys %s after it returned", victim.ID, held, len(want), time.Since(back).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(back)

	// Every key the victim gained was counted: pulled by the victim, or
	// pushed to it by one of its peers.
	// A push is counted once the victim acknowledged it, which can be just
	// after the victim shows the key: wait for the counts to catch up.
	var pulled, pushed float64
	for counted := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		pulled = aeMetric(victim, `replicant_anti_entropy_keys_repaired_total{direction="pulled"}`)
		pushed = -pushedBefore
		for _, p := range live {
			pushed += aeMetric(p, `replicant_anti_entropy_keys_repaired_total{direction="pushed"}`)
		}
		if pulled+pushed >= float64(len(want)) || time.Now().After(counted) {
			break
		}
	}
	bytes := -bytesBefore
	for _, p := range c.nodes {
		bytes += aeMetric(p, "replicant_anti_entropy_bytes_total")
	}
	t.Logf("%s holds all %d of its keys %s after it was ready (interval 1s): pulled %.0f, peers pushed %.0f (one key may be pushed by several), %.0f bytes moved by anti-entropy since it returned",
		victim.ID, len(want), took.Round(time.Millisecond), pulled, pushed, bytes)
	if pulled+pushed < float64(len(want)) {
		t.Errorf("keys repaired: %s pulled %.0f, its peers pushed %.0f; want at least the %d it lacked", victim.ID, pulled, pushed, len(want))
	}
	var lines []string
	for _, p := range c.nodes {
		for _, l := range strings.Split(p.Log.String(), "\n") {
			if strings.Contains(l, "anti-entropy repaired") && strings.Contains(l, victim.ID) {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		t.Errorf("no log line says anti-entropy repaired keys with %s", victim.ID)
	}
	for i, l := range lines {
		if i < 4 {
			t.Logf("log: %s", l)
		}
	}

	// The victim's status shows its comparisons with every other node.
	waitFor(t, victim.ID+" shows last_anti_entropy for every peer", 10*time.Second, func() bool {
		ms, err := aeMembers(victim)
		if err != nil || len(ms) != len(live) {
			return false
		}
		for _, m := range ms {
			if _, err := time.Parse(time.RFC3339, m.LastAntiEntropy); err != nil {
				return false
			}
		}
		return true
	})
	if r := aeMetric(victim, "replicant_anti_entropy_rounds_total"); r < 1 {
		t.Errorf("%s completed %.0f anti-entropy rounds", victim.ID, r)
	}
}

// aeMetric reads one series (name with its labels, exactly as /metrics
// prints it) from a node; 0 when absent.
func aeMetric(p *proc, series string) float64 {
	resp, err := http.Get("http://" + p.HTTP + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// aeMembers reads the members of a node's /v1/status with their
// last_anti_entropy.
func aeMembers(p *proc) ([]struct {
	ID              string `json:"id"`
	LastAntiEntropy string `json:"last_anti_entropy"`
}, error) {
	hc := http.Client{Timeout: 2 * time.Second}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+p.HTTP+"/v1/status", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Members []struct {
			ID              string `json:"id"`
			LastAntiEntropy string `json:"last_anti_entropy"`
		} `json:"members"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st.Members, err
}
