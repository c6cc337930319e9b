package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Multi-leader topologies and site failover, end to end: real sites
// linked through the HTTP API, written through RESP, observed through
// /v1/status (its multi-leader fields: mode, site, token, links,
// conflicts) and through reads on every node.

// mltStatus is the part of /v1/status these tests read, with the
// multi-leader fields the public client's Status does not carry.
type mltStatus struct {
	ID        string    `json:"id"`
	Mode      string    `json:"mode"`
	Role      string    `json:"role"`
	Leader    string    `json:"leader"`
	Epoch     uint64    `json:"epoch"`
	State     string    `json:"state"`
	Site      string    `json:"site"`
	Token     string    `json:"token"`
	Conflicts uint64    `json:"conflicts"`
	Links     []mltLink `json:"links"`
	Rolled    uint64    `json:"rolled_back_entries"`
}

// mltLink is one incoming link in a status.
type mltLink struct {
	Site             string   `json:"site"`
	Peers            []string `json:"peers"`
	State            string   `json:"state"`
	Reason           string   `json:"reason"`
	Connected        string   `json:"connected"`
	LagEntries       uint64   `json:"lag_entries"`
	LagSeconds       float64  `json:"lag_seconds"`
	AppliedOriginLSN uint64   `json:"applied_origin_lsn"`
	RemoteLSN        uint64   `json:"remote_lsn"`
}

func mltStatusOf(p *proc) (*mltStatus, error) {
	hc := http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get("http://" + p.HTTP + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("status of %s: %d %s", p.ID, resp.StatusCode, b)
	}
	var st mltStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("status of %s: %w", p.ID, err)
	}
	return &st, nil
}

func (s *mltStatus) link(site string) *mltLink {
	for i := range s.Links {
		if s.Links[i].Site == site {
			return &s.Links[i]
		}
	}
	return nil
}

// String is a one-line summary for failure messages.
func (s *mltStatus) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s[%s site=%s role=%s leader=%s epoch=%d state=%s token=%q conflicts=%d",
		s.ID, s.Mode, s.Site, s.Role, s.Leader, s.Epoch, s.State, s.Token, s.Conflicts)
	for _, l := range s.Links {
		fmt.Fprintf(&b, " link<-%s{%s conn=%s lag=%d/%.1fs applied=%d remote=%d reason=%q}",
			l.Site, l.State, l.Connected, l.LagEntries, l.LagSeconds, l.AppliedOriginLSN, l.RemoteLSN, l.Reason)
	}
	b.WriteString("]")
	return b.String()
}

// mltStatuses describes every node's status (or the error getting it).
func mltStatuses(nodes ...*proc) string {
	var out []string
	for _, p := range nodes {
		st, err := mltStatusOf(p)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", p.ID, err))
			continue
		}
		out = append(out, st.String())
	}
	return strings.Join(out, "\n  ")
}

// mltParseToken parses a vector token "eu:12,us:13".
func mltParseToken(s string) (map[string]uint64, error) {
	out := map[string]uint64{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		site, n, ok := strings.Cut(part, ":")
		if !ok || site == "" || site[0] >= '0' && site[0] <= '9' {
			return nil, fmt.Errorf("token %q: %q is not SITE:LSN", s, part)
		}
		v, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("token %q: %w", s, err)
		}
		out[site] = v
	}
	return out, nil
}

// mltWaitFor is waitFor whose failure shows what the condition last saw.
func mltWaitFor(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s\nlast seen:\n  %s", d, what, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mltStartSite starts the nodes of one site (ids[0] is the first
// leader) and waits until it leads and every other node streams. A
// one-node site gets no --initial-cluster: a node alone is a one-node
// cluster.
func mltStartSite(t *testing.T, site string, ids []string, flags ...string) []*proc {
	t.Helper()
	var nodes []*proc
	var initial []string
	for _, id := range ids {
		p := newProc(t, id)
		nodes = append(nodes, p)
		initial = append(initial, p.ID+"="+p.Peer)
	}
	for _, p := range nodes {
		p.Args = append([]string{"--mode", "multi-leader", "--site", site}, flags...)
		if len(nodes) > 1 {
			p.Args = append(p.Args, "--initial-cluster", strings.Join(initial, ","))
		}
		p.startNoWait()
	}
	for _, p := range nodes {
		p.waitHealthy()
	}
	mltWaitFor(t, fmt.Sprintf("site %s: %s leads and every other node streams", site, ids[0]), 30*time.Second, func() (bool, string) {
		for _, p := range nodes {
			st, err := mltStatusOf(p)
			if err != nil || st.Leader != ids[0] || st.Mode != "multi-leader" || st.Site != site {
				return false, mltStatuses(nodes...)
			}
			if p.ID != ids[0] && st.State != "streaming" {
				return false, mltStatuses(nodes...)
			}
		}
		return true, ""
	})
	return nodes
}

// mltPost sends a JSON POST without following redirects.
func mltPost(url, body string) (code int, location, respBody string, err error) {
	hc := http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b), nil
}

// mltAddLink makes at's site pull from the site whose node listens on
// peer (POST /v1/links), following one redirect to the site leader; it
// reports whether it was redirected.
func mltAddLink(t *testing.T, at *proc, peer string) (mltLink, bool) {
	t.Helper()
	body := fmt.Sprintf(`{"peer":%q}`, peer)
	url := "http://" + at.HTTP + "/v1/links"
	redirected := false
	for range 2 {
		code, loc, rb, err := mltPost(url, body)
		if err != nil {
			t.Fatalf("POST %s %s: %v", url, body, err)
		}
		switch code {
		case http.StatusOK:
			var l mltLink
			if err := json.Unmarshal([]byte(rb), &l); err != nil {
				t.Fatalf("POST %s %s: answer %q: %v", url, body, rb, err)
			}
			return l, redirected
		case http.StatusTemporaryRedirect:
			if loc == "" || redirected {
				t.Fatalf("POST %s %s: 307 to %q (%s)", url, body, loc, rb)
			}
			url, redirected = loc, true
		default:
			t.Fatalf("POST %s %s: %d %s", url, body, code, rb)
		}
	}
	t.Fatalf("POST %s: redirected twice", url)
	return mltLink{}, false
}

// mltRedis is a client whose commands fail fast instead of retrying.
func mltRedis(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 2,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 30 * time.Second, WriteTimeout: 5 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// mltValues reads keys on one node (eventual reads on followers, as a
// client of that node sees them); a missing key reads as "".
func mltValues(ctx context.Context, rdb *redis.Client, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	for i := 0; i < len(keys); i += 500 {
		chunk := keys[i:min(i+500, len(keys))]
		vals, err := rdb.MGet(ctx, chunk...).Result()
		if err != nil {
			return nil, err
		}
		for j, v := range vals {
			if s, ok := v.(string); ok {
				out[chunk[j]] = s
			} else {
				out[chunk[j]] = ""
			}
		}
	}
	return out, nil
}

// mltDiff describes how got differs from want (at most a few keys).
func mltDiff(want, got map[string]string) string {
	var keys []string
	for k := range want {
		if got[k] != want[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys[:min(5, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s=%q (want %q)", k, got[k], want[k]))
	}
	return fmt.Sprintf("%d of %d keys differ: %s", len(keys), len(want), strings.Join(parts, ", "))
}

var mltSites = []string{"eu", "us", "ap"}

// TestMultiLeaderRingAndStarDeliverEverywhereOnce: three one-node sites
// linked as a ring, then (fresh sites) as a star; every site writes its
// own keys and increments one shared counter; every write reaches every
// site, through the sites in between, and is applied exactly up to its
// origin's position (the tokens agree component by component with each
// origin's own last write); distinct keys never conflict; every
// increment counts once.
func TestMultiLeaderRingAndStarDeliverEverywhereOnce(t *testing.T) {
	t.Run("ring", func(t *testing.T) {
		// us pulls eu, ap pulls us, eu pulls ap: eu's writes reach ap
		// only through us.
		mltCheckTopology(t, [][2]string{{"us", "eu"}, {"ap", "us"}, {"eu", "ap"}}, "eu", "ap")
	})
	t.Run("star", func(t *testing.T) {
		// Hub eu: us's writes reach ap only through eu.
		mltCheckTopology(t, [][2]string{{"us", "eu"}, {"ap", "eu"}, {"eu", "us"}, {"eu", "ap"}}, "us", "ap")
	})
}

// mltCheckTopology starts one one-node site per name in mltSites, adds
// links (each {puller, source}), writes, and checks delivery. probeFrom
// writes a key that a session read on probeTo (which does not pull
// probeFrom directly) must see.
func mltCheckTopology(t *testing.T, links [][2]string, probeFrom, probeTo string) {
	const keysPerSite, incrsPerSite = 50, 20
	nodes := map[string]*proc{}
	var all []*proc
	for _, s := range mltSites {
		p := newProc(t, s+"1", "--mode", "multi-leader", "--site", s, "--read-timeout", "20s")
		nodes[s] = p
		all = append(all, p)
		p.startNoWait()
	}
	for _, p := range all {
		p.waitHealthy()
	}
	for _, l := range links {
		got, _ := mltAddLink(t, nodes[l[0]], nodes[l[1]].Peer)
		if got.Site != l[1] {
			t.Fatalf("link added on %s to %s's peer names site %q", l[0], l[1], got.Site)
		}
	}
	ctx := ctxT(t, 3*time.Minute)

	// Every site writes its own keys and increments the shared counter,
	// all sites at once, on one connection each (whose token then names
	// the site's last write).
	want := map[string]string{"ctr": strconv.Itoa(incrsPerSite * len(mltSites))}
	conns := map[string]*redis.Conn{}
	for _, s := range mltSites {
		conns[s] = mltRedis(t, nodes[s].RESP).Conn()
		t.Cleanup(func() { conns[s].Close() })
		for i := range keysPerSite {
			want[fmt.Sprintf("%s-k%02d", s, i)] = fmt.Sprintf("%s-v%02d", s, i)
		}
	}
	var wg sync.WaitGroup
	for _, s := range mltSites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[s]
			for i := range keysPerSite {
				if err := c.Set(ctx, fmt.Sprintf("%s-k%02d", s, i), fmt.Sprintf("%s-v%02d", s, i), 0).Err(); err != nil {
					t.Errorf("SET on %s: %v", s, err)
					return
				}
				if i < incrsPerSite {
					if err := c.Incr(ctx, "ctr").Err(); err != nil {
						t.Errorf("INCR on %s: %v", s, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Read-your-writes across regions: a session read on probeTo with
	// the token of a write on probeFrom waits until the write arrived
	// through the site in between.
	probe := "probe-" + probeFrom
	want[probe] = "from-" + probeFrom
	if err := conns[probeFrom].Set(ctx, probe, want[probe], 0).Err(); err != nil {
		t.Fatalf("SET %s on %s: %v", probe, probeFrom, err)
	}
	ptok, err := conns[probeFrom].Do(ctx, "REPLICANT.TOKEN").Text()
	if err != nil {
		t.Fatalf("REPLICANT.TOKEN on %s: %v", probeFrom, err)
	}
	reader := mltRedis(t, nodes[probeTo].RESP).Conn()
	defer reader.Close()
	if err := reader.Do(ctx, "REPLICANT.SESSION", ptok).Err(); err != nil {
		t.Fatalf("REPLICANT.SESSION %s on %s: %v", ptok, probeTo, err)
	}
	if got, err := reader.Get(ctx, probe).Result(); err != nil || got != want[probe] {
		t.Fatalf("session read of %s on %s with token %s (written on %s): %q, %v\n  %s",
			probe, probeTo, ptok, probeFrom, got, err, mltStatuses(all...))
	}

	// Each site's own position: the LSN of its last write, as its
	// connection's token says.
	own := map[string]uint64{}
	for _, s := range mltSites {
		tok, err := conns[s].Do(ctx, "REPLICANT.TOKEN").Text()
		if err != nil {
			t.Fatalf("REPLICANT.TOKEN on %s: %v", s, err)
		}
		v, err := mltParseToken(tok)
		if err != nil || v[s] == 0 || len(v) != 1 {
			t.Fatalf("token of %s's writing connection: %q (%v), want %s:LSN alone", s, tok, err, s)
		}
		own[s] = v[s]
	}

	// Every site converges: its token names exactly every origin's last
	// write, every key has its value, the counter counts each increment
	// once, and every link is streaming and idle.
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	readers := map[string]*redis.Client{}
	for _, s := range mltSites {
		readers[s] = mltRedis(t, nodes[s].RESP)
	}
	wantTok := fmt.Sprint(own)
	mltWaitFor(t, fmt.Sprintf("every site's token is %v and every site holds every value", own), 60*time.Second, func() (bool, string) {
		var seen []string
		ok := true
		for _, s := range mltSites {
			st, err := mltStatusOf(nodes[s])
			if err != nil {
				return false, err.Error()
			}
			seen = append(seen, st.String())
			tok, err := mltParseToken(st.Token)
			if err != nil || fmt.Sprint(tok) != wantTok {
				ok = false
			}
			for _, l := range links {
				if l[0] != s {
					continue
				}
				if ls := st.link(l[1]); ls == nil || ls.State != "streaming" || ls.LagEntries != 0 || ls.AppliedOriginLSN != own[l[1]] {
					ok = false
				}
			}
			got, err := mltValues(ctx, readers[s], keys)
			if err != nil {
				return false, fmt.Sprintf("reading on %s: %v", s, err)
			}
			if d := mltDiff(want, got); d != "" {
				ok = false
				seen = append(seen, s+": "+d)
			}
		}
		return ok, strings.Join(seen, "\n  ")
	})

	for _, s := range mltSites {
		st, err := mltStatusOf(nodes[s])
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode != "multi-leader" || st.Site != s {
			t.Errorf("%s: mode %q site %q, want multi-leader %s", st.ID, st.Mode, st.Site, s)
		}
		if st.Conflicts != 0 {
			t.Errorf("%s: %d conflicts, want 0 (every site wrote distinct keys; INCR is a counter)", st.ID, st.Conflicts)
		}
		var linked []string
		for _, l := range st.Links {
			linked = append(linked, l.Site)
		}
		var wantLinked []string
		for _, l := range links {
			if l[0] == s {
				wantLinked = append(wantLinked, l[1])
			}
		}
		slices.Sort(wantLinked)
		if !slices.Equal(linked, wantLinked) {
			t.Errorf("%s pulls from %v, want %v", s, linked, wantLinked)
		}
	}
	t.Logf("converged at token %v with %d keys on each of %v", own, len(want), mltSites)
}

// mltWriter writes to one site's current leader: INCR c and SET of
// unique keys w-SITE-i, recording every outcome. A write with no
// effect for certain (READONLY, no leader, refused connection) is
// retried elsewhere; any other error leaves the write's outcome unknown.
type mltWriter struct {
	site  string
	nodes []*proc

	cur     int
	clients []*redis.Client

	incrAcked, incrUnknown int
	acked                  map[string]string // key -> value
	unknown                map[string]string
	errs                   int // errors seen, retried ones included
	lastErrs               []string
}

func newMLTWriter(t *testing.T, site string, nodes []*proc) *mltWriter {
	w := &mltWriter{site: site, nodes: nodes, acked: map[string]string{}, unknown: map[string]string{}}
	for _, p := range nodes {
		c := redis.NewClient(&redis.Options{Addr: p.RESP, MaxRetries: -1, PoolSize: 1,
			DialTimeout: 300 * time.Millisecond, ReadTimeout: 8 * time.Second, WriteTimeout: time.Second})
		t.Cleanup(func() { c.Close() })
		w.clients = append(w.clients, c)
	}
	return w
}

// mltNoEffect: the command certainly did nothing.
func mltNoEffect(err error) bool {
	return definiteFailure(err) || strings.HasPrefix(err.Error(), "LOADING")
}

// next picks the node to try after err: the leader a READONLY names,
// else the next node.
func (w *mltWriter) next(err error) {
	w.errs++
	w.lastErrs = append(w.lastErrs, fmt.Sprintf("%s: %v", w.nodes[w.cur].ID, err))
	if len(w.lastErrs) > 8 {
		w.lastErrs = w.lastErrs[1:]
	}
	if i := strings.Index(err.Error(), "resp="); i >= 0 {
		addr := strings.TrimRight(strings.Fields(err.Error()[i+5:] + " ")[0], ");,")
		for j, p := range w.nodes {
			if p.RESP == addr && j != w.cur {
				w.cur = j
				return
			}
		}
	}
	w.cur = (w.cur + 1) % len(w.nodes)
}

// do runs one command until it is acknowledged or fails with an
// unknown outcome; a command refused for certain until ctx ends never
// took effect.
func (w *mltWriter) do(ctx context.Context, cmd func(*redis.Client) error) (acked, unknown bool) {
	for ctx.Err() == nil {
		err := cmd(w.clients[w.cur])
		if err == nil {
			return true, false
		}
		w.next(err)
		if !mltNoEffect(err) {
			return false, true
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false, false
}

func (w *mltWriter) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		acked, unknown := w.do(ctx, func(c *redis.Client) error { return c.Incr(context.Background(), "c").Err() })
		switch {
		case acked:
			w.incrAcked++
		case unknown:
			w.incrUnknown++
		}
		key, val := fmt.Sprintf("w-%s-%d", w.site, i), fmt.Sprintf("v-%s-%d", w.site, i)
		acked, unknown = w.do(ctx, func(c *redis.Client) error { return c.Set(context.Background(), key, val, 0).Err() })
		switch {
		case acked:
			w.acked[key] = val
		case unknown:
			w.unknown[key] = val
		}
	}
}

// TestMultiLeaderSiteFailoverKeepsLinks: site eu is three nodes under a
// sync policy, site us one node, linked both ways. Both sites take
// writes while eu's leader is killed with SIGKILL; eu's new leader
// takes over its links and writes, us's link moves to a live eu node,
// and both sites converge on every acknowledged write and increment.
// The killed node then returns and converges too.
func TestMultiLeaderSiteFailoverKeepsLinks(t *testing.T) {
	eu := mltStartSite(t, "eu", []string{"n1", "n2", "n3"},
		"--sync", "FIRST 1 (*)", "--failover-timeout", "1s", "--sync-timeout", "1s", "--write-timeout", "3s", "--read-timeout", "20s")
	us := mltStartSite(t, "us", []string{"u1"}, "--read-timeout", "20s")[0]
	n1, n2 := eu[0], eu[1]

	// us pulls eu (from n1, which tells it its site's other nodes); eu
	// pulls us, asked on a follower, which redirects to eu's leader.
	if l, _ := mltAddLink(t, us, n1.Peer); l.Site != "eu" {
		t.Fatalf("link on us to %s names site %q", n1.Peer, l.Site)
	}
	if l, redirected := mltAddLink(t, n2, us.Peer); l.Site != "us" || !redirected {
		t.Fatalf("link on eu's follower n2 to us: site %q, redirected %v; want us, redirected to n1", l.Site, redirected)
	}
	mltWaitFor(t, "both links stream, and us's link knows every eu node", 30*time.Second, func() (bool, string) {
		su, err1 := mltStatusOf(us)
		se, err2 := mltStatusOf(n1)
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		lu, le := su.link("eu"), se.link("us")
		ok := lu != nil && lu.State == "streaming" && len(lu.Peers) == 3 && le != nil && le.State == "streaming"
		return ok, su.String() + "\n  " + se.String()
	})

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	writers := []*mltWriter{newMLTWriter(t, "eu", eu), newMLTWriter(t, "us", []*proc{us})}
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx) }()
	}
	// Stop the writers before their clients close.
	t.Cleanup(func() { cancel(); wg.Wait() })
	// Load before the kill (a duration, not an assertion).
	time.Sleep(3 * time.Second)
	leaderID, epoch := leaderAmong(eu...)
	var killed *proc
	for _, p := range eu {
		if p.ID == leaderID {
			killed = p
		}
	}
	if killed == nil {
		t.Fatalf("no eu leader known before the kill:\n  %s", mltStatuses(eu...))
	}
	killed.kill()
	killedAt := time.Now()
	var live []*proc
	for _, p := range eu {
		if p != killed {
			live = append(live, p)
		}
	}
	mltWaitFor(t, "eu appoints a new leader", 20*time.Second, func() (bool, string) {
		l, ep := leaderAmong(live...)
		return l != "" && l != killed.ID && ep > epoch, mltStatuses(live...)
	})
	newLeaderID, newEpoch := leaderAmong(live...)
	t.Logf("killed eu leader %s (epoch %d); %s leads at epoch %d after %s", killed.ID, epoch, newLeaderID, newEpoch,
		time.Since(killedAt).Round(time.Millisecond))
	// Keep writing to the new leader.
	time.Sleep(time.Until(killedAt.Add(7 * time.Second)))
	cancel()
	wg.Wait()
	for _, w := range writers {
		t.Logf("site %s: INCR acknowledged %d, unknown outcome %d; SET acknowledged %d, unknown outcome %d; %d errors, the last %q",
			w.site, w.incrAcked, w.incrUnknown, len(w.acked), len(w.unknown), w.errs, w.lastErrs)
	}
	if wu := writers[1]; wu.errs != 0 {
		t.Errorf("us's writes failed while eu failed over (local writes never wait for another site): %q", wu.lastErrs)
	}
	if writers[0].incrAcked == 0 || len(writers[0].acked) == 0 {
		t.Fatalf("no write acknowledged on eu")
	}

	var newLeader *proc
	for _, p := range live {
		if p.ID == newLeaderID {
			newLeader = p
		}
	}
	incrAcked, incrUnknown := 0, 0
	wantKeys := map[string]string{}
	var keys []string
	for _, w := range writers {
		incrAcked += w.incrAcked
		incrUnknown += w.incrUnknown
		for k, v := range w.acked {
			wantKeys[k] = v
		}
		for k := range w.acked {
			keys = append(keys, k)
		}
		for k := range w.unknown {
			keys = append(keys, k)
		}
	}
	keys = append(keys, "c")
	sort.Strings(keys)

	rctx := ctxT(t, 3*time.Minute)
	readers := map[*proc]*redis.Client{}
	for _, p := range eu {
		readers[p] = mltRedis(t, p.RESP)
	}
	readers[us] = mltRedis(t, us.RESP)
	// converged waits until nodes report one token and read the same
	// values, every acknowledged key among them.
	converged := func(what string, nodes []*proc, extra func(map[string]*mltStatus) (bool, string)) map[string]string {
		t.Helper()
		var vals map[string]string
		mltWaitFor(t, what, 90*time.Second, func() (bool, string) {
			var seen []string
			sts := map[string]*mltStatus{}
			var tok0 string
			var vals0 map[string]string
			ok := true
			for i, p := range nodes {
				st, err := mltStatusOf(p)
				if err != nil {
					return false, err.Error()
				}
				sts[p.ID] = st
				seen = append(seen, st.String())
				tok, err := mltParseToken(st.Token)
				if err != nil {
					return false, err.Error()
				}
				got, err := mltValues(rctx, readers[p], keys)
				if err != nil {
					return false, fmt.Sprintf("reading on %s: %v\n  %s", p.ID, err, strings.Join(seen, "\n  "))
				}
				if d := mltDiff(wantKeys, got); d != "" {
					ok = false
					seen = append(seen, p.ID+": "+d)
				}
				if i == 0 {
					tok0, vals0 = fmt.Sprint(tok), got
					continue
				}
				if fmt.Sprint(tok) != tok0 {
					ok = false
				}
				if d := mltDiff(vals0, got); d != "" {
					ok = false
					seen = append(seen, fmt.Sprintf("%s against %s: %s", p.ID, nodes[0].ID, d))
				}
			}
			if ok && extra != nil {
				var more string
				ok, more = extra(sts)
				seen = append(seen, more)
			}
			vals = vals0
			return ok, strings.Join(seen, "\n  ")
		})
		return vals
	}

	nodes := append(append([]*proc(nil), live...), us)
	vals := converged("the live nodes of both sites converge", nodes, func(sts map[string]*mltStatus) (bool, string) {
		// us's link streams from a live eu node; eu's new leader runs
		// eu's link and streams from us.
		// The link follows eu's leader (it asks a node of eu which
		// node leads, then streams from that one).
		lu, le := sts[us.ID].link("eu"), sts[newLeaderID].link("us")
		ok := lu != nil && lu.State == "streaming" && lu.Connected == newLeader.Peer && lu.LagEntries == 0 &&
			le != nil && le.State == "streaming" && le.LagEntries == 0
		return ok, fmt.Sprintf("us link<-eu %+v; eu (%s) link<-us %+v", lu, newLeaderID, le)
	})
	c, err := strconv.Atoi(vals["c"])
	if err != nil {
		t.Fatalf("c = %q: %v", vals["c"], err)
	}
	t.Logf("c = %d: %d increments acknowledged, %d with an unknown outcome", c, incrAcked, incrUnknown)
	if c < incrAcked || c > incrAcked+incrUnknown {
		t.Errorf("c = %d, want between %d acknowledged increments and %d (plus %d with an unknown outcome)\n  %s",
			c, incrAcked, incrAcked+incrUnknown, incrUnknown, mltStatuses(nodes...))
	}
	for _, p := range nodes {
		st, err := mltStatusOf(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Conflicts != 0 {
			t.Errorf("%s: %d conflicts, want 0 (the sites wrote distinct keys and a counter)", p.ID, st.Conflicts)
		}
		if p != newLeader && p != us {
			if l := st.link("us"); l == nil || l.State != "idle" {
				t.Errorf("%s (an eu follower) shows link<-us %+v, want it idle (links run on the site leader)", p.ID, l)
			}
		}
	}
	stEU, err1 := mltStatusOf(newLeader)
	stUS, err2 := mltStatusOf(us)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	euPos, _ := mltParseToken(stEU.Token)
	if l := stUS.link("eu"); l == nil || l.AppliedOriginLSN != euPos["eu"] {
		t.Errorf("us's link from eu applied %+v, want applied_origin_lsn %d (eu's own position)", l, euPos["eu"])
	} else {
		from := l.Connected
		for _, p := range eu {
			if p.Peer == l.Connected {
				from = p.ID
			}
		}
		t.Logf("after the failover us's link streams from eu's %s (the new leader is %s); eu's link from us runs on %s", from, newLeaderID, newLeaderID)
	}

	// The killed node returns as a follower of the new leader and
	// converges with the others.
	killed.start()
	all := append(nodes, killed)
	converged(fmt.Sprintf("%s rejoins eu and every node converges", killed.ID), all, func(sts map[string]*mltStatus) (bool, string) {
		st := sts[killed.ID]
		return st.Role == "follower" && st.Leader == newLeaderID && st.State == "streaming", st.String()
	})
	if st, err := mltStatusOf(killed); err == nil {
		t.Logf("%s after its return: %s, rolled back %d entries", killed.ID, st, st.Rolled)
	}
}

// TestMultiLeaderModeIsKept: a data directory remembers the mode and
// site it was created with; a start with another mode or site is
// refused with a message naming them, and harms nothing.
func TestMultiLeaderModeIsKept(t *testing.T) {
	ctx := ctxT(t, 2*time.Minute)
	mlArgs := []string{"--mode", "multi-leader", "--site", "eu"}
	ml := newProc(t, "m1", mlArgs...)
	ml.start()
	if err := ml.redis().Set(ctx, "kept", "eu-value", 0).Err(); err != nil {
		t.Fatalf("SET on the multi-leader node: %v", err)
	}
	ml.stop()
	mltMustRefuse(t, ml, nil, "created in multi-leader mode", "site eu", "--mode multi-leader --site eu")
	mltMustRefuse(t, ml, []string{"--mode", "multi-leader", "--site", "us"}, "created in multi-leader mode", "site eu", "--site eu")
	ml.Args = mlArgs
	ml.start()
	if got, err := ml.redis().Get(ctx, "kept").Result(); err != nil || got != "eu-value" {
		t.Fatalf("after the refused starts, GET kept on %s: %q, %v", ml.ID, got, err)
	}
	if st, err := mltStatusOf(ml); err != nil || st.Mode != "multi-leader" || st.Site != "eu" {
		t.Fatalf("status after the refused starts: %v, %v", st, err)
	}
	ml.stop()

	sl := newProc(t, "s1")
	sl.start()
	if err := sl.redis().Set(ctx, "kept", "single-value", 0).Err(); err != nil {
		t.Fatalf("SET on the single-leader node: %v", err)
	}
	sl.stop()
	mltMustRefuse(t, sl, []string{"--mode", "multi-leader", "--site", "eu"}, "single-leader")
	sl.Args = nil
	sl.start()
	if got, err := sl.redis().Get(ctx, "kept").Result(); err != nil || got != "single-value" {
		t.Fatalf("after the refused start, GET kept on %s: %q, %v", sl.ID, got, err)
	}
	if st, err := mltStatusOf(sl); err != nil || st.Mode != "single-leader" {
		t.Fatalf("status after the refused start: %v, %v", st, err)
	}
}

// mltMustRefuse starts p with args and expects it to exit with an error
// whose output contains every want.
func mltMustRefuse(t *testing.T, p *proc, args []string, want ...string) {
	t.Helper()
	p.Args = args
	from := 0
	if p.Log != nil {
		from = len(p.Log.String())
	}
	p.startNoWait()
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		ready := "not ready"
		if resp, err := http.Get("http://" + p.HTTP + "/readyz"); err == nil {
			ready = resp.Status
			resp.Body.Close()
		}
		p.kill()
		t.Fatalf("%s started with %q over a data directory of another mode/site is still running after 20s (readyz: %s)", p.ID, args, ready)
	}
	out := p.Log.String()[from:]
	if code := p.ExitCode(); code == 0 {
		t.Fatalf("%s with %q exited 0, want a refusal:\n%s", p.ID, args, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s with %q: the refusal does not say %q:\n%s", p.ID, args, w, out)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%s with %q refused: %s", p.ID, args, strings.TrimSpace(lastLine(out)))
}
