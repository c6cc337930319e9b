package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startSites starts one one-node multi-leader site per name.
func startSites(t *testing.T, names ...string) []*proc {
	t.Helper()
	var out []*proc
	for i, s := range names {
		p := newProc(t, fmt.Sprintf("n%d", i+1), "--mode", "multi-leader", "--site", s)
		p.startNoWait()
		out = append(out, p)
	}
	for _, p := range out {
		p.waitHealthy()
	}
	return out
}

// addLink makes `to` pull from `from`, retrying while `to` elects itself.
func addLink(t *testing.T, to, from *proc) {
	t.Helper()
	body := fmt.Sprintf(`{"peer":%q}`, from.Peer)
	var last string
	ok := func() bool {
		resp, err := http.Post("http://"+to.HTTP+"/v1/links", "application/json", strings.NewReader(body))
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		last = fmt.Sprintf("%d %s", resp.StatusCode, b.String())
		return resp.StatusCode == http.StatusOK
	}
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("link %s <- %s not added within 20s; last answer: %s", to.ID, from.ID, last)
		}
	}
}

func removeLink(t *testing.T, on *proc, site string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+on.HTTP+"/v1/links/"+site, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("remove link: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remove link %s on %s: %d", site, on.ID, resp.StatusCode)
	}
}

// linkAll links every site to every other.
func linkAll(t *testing.T, sites []*proc) {
	t.Helper()
	for _, a := range sites {
		for _, b := range sites {
			if a != b {
				addLink(t, a, b)
			}
		}
	}
}

// snapshotData reads every key of a site with its value and absolute expiry.
func snapshotData(ctx context.Context, c *redis.Client) (map[string]string, error) {
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range keys {
		v, err := c.Get(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired or deleted between KEYS and GET
		}
		if err != nil {
			return nil, err
		}
		exp, err := c.PExpireTime(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		out[k] = fmt.Sprintf("%s@%d", v, exp.Milliseconds())
	}
	return out, nil
}

// linkCutter cuts a one-node site's outgoing log (every link pulling from
// it) by dropping TCP traffic to and from its peer port, when it may
// (root and iptables); the rules carry a comment naming this test process
// and are removed on cleanup.
type linkCutter struct {
	t   *testing.T
	tag string
	mu  sync.Mutex
	cut map[string]bool // peer port -> cut
}

func newLinkCutter(t *testing.T) *linkCutter {
	if os.Geteuid() != 0 {
		return nil
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil
	}
	c := &linkCutter{t: t, tag: fmt.Sprintf("replicant-test-%d", os.Getpid()), cut: map[string]bool{}}
	t.Cleanup(c.healAll)
	return c
}

func (c *linkCutter) rules(port string) [][]string {
	return [][]string{
		{"INPUT", "-p", "tcp", "--dport", port, "-m", "comment", "--comment", c.tag, "-j", "DROP"},
		{"INPUT", "-p", "tcp", "--sport", port, "-m", "comment", "--comment", c.tag, "-j", "DROP"},
	}
}

func (c *linkCutter) set(p *proc, cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	port := p.Peer[strings.LastIndex(p.Peer, ":")+1:]
	if c.cut[port] == cut {
		return
	}
	op := "-D"
	if cut {
		op = "-I"
	}
	for _, r := range c.rules(port) {
		if out, err := exec.Command("iptables", append([]string{op}, r...)...).CombinedOutput(); err != nil {
			c.t.Errorf("iptables %s %v: %v %s", op, r, err, out)
		}
	}
	c.cut[port] = cut
}

func (c *linkCutter) healAll() {
	c.mu.Lock()
	ports := make([]string, 0, len(c.cut))
	for p, cut := range c.cut {
		if cut {
			ports = append(ports, p)
		}
	}
	c.mu.Unlock()
	for _, port := range ports {
		for _, r := range c.rules(port) {
			_ = exec.Command("iptables", append([]string{"-D"}, r...)...).Run()
		}
		c.mu.Lock()
		c.cut[port] = false
		c.mu.Unlock()
	}
}

// mlHistory records what clients were told.
type mlHistory struct {
	mu       sync.Mutex
	acked    map[string]map[string]bool // register key -> values acknowledged
	ackedDel map[string]bool            // register key -> some DEL acknowledged
	sums     map[string]int64           // counter key -> acknowledged deltas
	unknown  map[string]int64           // counter key -> |deltas| whose outcome is unknown
	errs     int
}

// TestMultiLeaderSitesConvergeUnderLinkCuts: three sites take concurrent
// SET, DEL, EXPIRE and INCR/DECR on shared keys from several clients each,
// while links are cut and restored (iptables when root, link removal and
// re-adding otherwise). After healing, every site holds identical data,
// every counter equals the sum of its acknowledged increments, every value
// is one a client was told was written, and the conflicts were recorded.
func TestMultiLeaderSitesConvergeUnderLinkCuts(t *testing.T) {
	sites := startSites(t, "eu", "us", "ap")
	linkAll(t, sites)
	names := []string{"eu", "us", "ap"}
	cutter := newLinkCutter(t)

	h := &mlHistory{acked: map[string]map[string]bool{}, ackedDel: map[string]bool{}, sums: map[string]int64{}, unknown: map[string]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for si, s := range sites {
		for cl := 0; cl < 2; cl++ {
			wg.Add(1)
			go func(si, cl int, s *proc) {
				defer wg.Done()
				rdb := redis.NewClient(&redis.Options{Addr: s.RESP, MaxRetries: -1, PoolSize: 1})
				defer rdb.Close()
				rng := rand.New(rand.NewPCG(uint64(si), uint64(cl)))
				for i := 0; ctx.Err() == nil; i++ {
					reg := fmt.Sprintf("r%d", rng.IntN(6))
					ctr := fmt.Sprintf("c%d", rng.IntN(3))
					opCtx, opCancel := context.WithTimeout(context.Background(), 5*time.Second)
					switch n := rng.IntN(10); {
					case n < 4:
						v := fmt.Sprintf("%s-%d-%d", names[si], cl, i)
						err := rdb.Set(opCtx, reg, v, 0).Err()
						h.mu.Lock()
						if err == nil {
							if h.acked[reg] == nil {
								h.acked[reg] = map[string]bool{}
							}
							h.acked[reg][v] = true
						} else {
							h.errs++
						}
						h.mu.Unlock()
					case n < 5:
						err := rdb.Del(opCtx, reg).Err()
						h.mu.Lock()
						if err == nil {
							h.ackedDel[reg] = true
						} else {
							h.errs++
						}
						h.mu.Unlock()
					case n < 6:
						_ = rdb.Expire(opCtx, reg, time.Hour).Err() // expiry converges by LWW too
					default:
						d := int64(rng.IntN(7)) - 2
						err := rdb.IncrBy(opCtx, ctr, d).Err()
						h.mu.Lock()
						if err == nil {
							h.sums[ctr] += d
						} else {
							h.unknown[ctr] += max(d, -d)
							h.errs++
						}
						h.mu.Unlock()
					}
					opCancel()
				}
			}(si, cl, s)
		}
	}
	// The nemesis: cut and restore links at random.
	rng := rand.New(rand.NewPCG(7, 7))
	removed := map[[2]int]bool{}
	for round := 0; round < 12; round++ {
		i := rng.IntN(len(sites))
		if cutter != nil && rng.IntN(2) == 0 {
			cutter.set(sites[i], rng.IntN(2) == 0)
		} else {
			j := (i + 1 + rng.IntN(len(sites)-1)) % len(sites)
			if removed[[2]int{i, j}] {
				addLink(t, sites[i], sites[j])
				delete(removed, [2]int{i, j})
			} else {
				removeLink(t, sites[i], names[j])
				removed[[2]int{i, j}] = true
			}
		}
		time.Sleep(time.Duration(300+rng.IntN(500)) * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if cutter != nil {
		cutter.healAll()
	}
	for l := range removed {
		addLink(t, sites[l[0]], sites[l[1]])
	}

	// Converge: identical data everywhere.
	clients := make([]*redis.Client, len(sites))
	for i, s := range sites {
		clients[i] = s.redis()
	}
	var snaps []map[string]string
	var why string
	converged := func() bool {
		snaps = snaps[:0]
		for i, c := range clients {
			m, err := snapshotData(context.Background(), c)
			if err != nil {
				why = fmt.Sprintf("%s: %v", names[i], err)
				return false
			}
			snaps = append(snaps, m)
		}
		for i := 1; i < len(snaps); i++ {
			if d := diffMaps(snaps[0], snaps[i]); d != "" {
				why = fmt.Sprintf("eu vs %s: %s", names[i], d)
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(60 * time.Second); !converged(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sites did not converge within 60s: %s", why)
		}
	}
	final := snaps[0]
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("converged on %d keys; %d client errors", len(final), h.errs)
	for ctr, sum := range h.sums {
		got := int64(0)
		if v, ok := final[ctr]; ok {
			got, _ = strconv.ParseInt(v[:strings.IndexByte(v, '@')], 10, 64)
		}
		if d := got - sum; max(d, -d) > h.unknown[ctr] {
			t.Errorf("counter %s = %d, acknowledged increments sum to %d (±%d unknown)", ctr, got, sum, h.unknown[ctr])
		}
	}
	for reg, vals := range h.acked {
		v, ok := final[reg]
		if !ok {
			if !h.ackedDel[reg] {
				t.Errorf("register %s vanished though no DEL was acknowledged", reg)
			}
			continue
		}
		if val := v[:strings.IndexByte(v, '@')]; !vals[val] {
			t.Errorf("register %s = %q, never acknowledged", reg, val)
		}
	}
	// Conflicts: concurrent SETs of six keys from three sites conflict, and
	// every recorded loser is a value a client wrote.
	total := 0
	for i, s := range sites {
		resp, err := http.Get("http://" + s.HTTP + "/v1/conflicts?limit=1000")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Conflicts []struct {
				Key   string `json:"key"`
				Loser struct {
					Value   string `json:"value"`
					Deleted bool   `json:"deleted"`
				} `json:"loser"`
			} `json:"conflicts"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range body.Conflicts {
			if !c.Loser.Deleted && !h.acked[c.Key][c.Loser.Value] {
				t.Errorf("%s recorded a conflict on %s losing %q, a value nobody wrote", names[i], c.Key, c.Loser.Value)
			}
		}
		total += len(body.Conflicts)
	}
	if total == 0 {
		t.Error("no site recorded a conflict, though three sites wrote the same keys while cut apart")
	}
	t.Logf("%d conflicts recorded", total)
}

func diffMaps(a, b map[string]string) string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			return fmt.Sprintf("%s: %q vs %q", k, a[k], b[k])
		}
	}
	return ""
}

// TestMultiLeaderCountersAndSessionAcrossSites: the first steps,
// through redis clients: concurrent INCR on two sites sum, and a session
// token from one site makes a read on another wait for that write.
func TestMultiLeaderCountersAndSessionAcrossSites(t *testing.T) {
	sites := startSites(t, "eu", "us")
	linkAll(t, sites)
	eu, us := sites[0].redis(), sites[1].redis()
	ctx := ctxT(t, 60*time.Second)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			if err := eu.Incr(ctx, "c").Err(); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		if err := us.IncrBy(ctx, "c", 10).Err(); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	for i, c := range []*redis.Client{eu, us} {
		waitFor(t, fmt.Sprintf("site %d reads c = 15", i), 20*time.Second, func() bool {
			v, err := c.Get(ctx, "c").Result()
			return err == nil && v == "15"
		})
	}

	// Read-your-writes across sites: a write on eu, its token taken to us.
	// us stops pulling eu first, so the session read must wait for the
	// token rather than find the write already there.
	removeLink(t, sites[1], "eu")
	conn := eu.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, "moved", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	tok, err := conn.Do(ctx, "REPLICANT.TOKEN").Text()
	if err != nil || !strings.Contains(tok, "eu:") {
		t.Fatalf("token %q, %v: want a vector naming eu", tok, err)
	}
	session := func() *redis.Conn {
		c := us.Conn()
		if err := c.Do(ctx, "REPLICANT.SESSION", tok).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(ctx, "REPLICANT.CONSISTENCY", "session").Err(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	early := session()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	v, err := early.Get(short, "moved").Result()
	cancelShort()
	early.Close()
	if err == nil || errors.Is(err, redis.Nil) {
		// A value or a nil answer both mean the read did not wait.
		t.Fatalf("us answered %q, %v with eu's token %s while not pulling eu: the session read did not wait", v, err, tok)
	}
	// A write carries the session too: us must apply eu's write before
	// it stamps the session's next one, or a us clock behind eu's could
	// stamp it below the older write and last-writer-wins would show the
	// session its older value. While us cannot pull eu, it must wait.
	earlyW := session()
	shortW, cancelW := context.WithTimeout(ctx, time.Second)
	err = earlyW.Set(shortW, "after", "w", 0).Err()
	cancelW()
	earlyW.Close()
	if err == nil {
		t.Fatalf("us took a session write with eu's token %s while not pulling eu: the write did not wait for the token", tok)
	}
	addLink(t, sites[1], sites[0])
	usConn := session()
	defer usConn.Close()
	if v, err := usConn.Get(ctx, "moved").Result(); err != nil || v != "v1" {
		t.Fatalf("us with eu's token %s reads %q, %v", tok, v, err)
	}
	// Once covered, the session's write goes through and, stamped after
	// eu's, wins on both sites.
	if err := usConn.Set(ctx, "moved", "v2", 0).Err(); err != nil {
		t.Fatalf("session write on us after its token is covered: %v", err)
	}
	waitFor(t, "eu reads the session's newer moved = v2", 20*time.Second, func() bool {
		v, err := eu.Get(ctx, "moved").Result()
		return err == nil && v == "v2"
	})

	// FLUSHALL cannot converge: refused, nothing lost.
	if err := eu.FlushAll(ctx).Err(); err == nil || !strings.Contains(err.Error(), "multi-leader") {
		t.Fatalf("FLUSHALL = %v, want a refusal naming the mode", err)
	}
	if n, _ := eu.DBSize(ctx).Result(); n < 2 {
		t.Fatalf("DBSIZE %d after a refused FLUSHALL", n)
	}
}
