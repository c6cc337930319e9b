//go:build linux

package test

// Multi-leader geography: three one-node sites, each in its own network
// namespace, linked all-to-all, first with no delay between them and then
// with a 50 ms one-way WAN delay. DESIGN.md: "Local writes never wait for
// the WAN: their latency stays a site's latency while cross-site lag is
// the link's."
//
// The delay is netem on the namespace side of every veth (each site's
// egress: 50 ms one way, 100 ms round trip between two sites) when the
// kernel has sch_netem. Without it, every site-to-site connection goes
// through a delay proxy in the test process: inside each site's namespace
// an iptables DNAT rule sends connections to another site's peer port to
// the proxy in front of that site (on the bridge address), which holds
// every chunk for the delay in both directions (50 ms one way, 100 ms
// round trip on the site-to-site path; links keep the sites' real peer
// addresses, so a link that follows the remote leader is delayed too).
// The test logs which one it used.
//
// Every client is local to its site: local write latency is measured by
// `replicant bench` run inside the site's namespace, and the lag probes
// dial from inside the namespaces (setns on a locked thread), so no
// measurement crosses a delayed veth.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"
)

const (
	mlgOneWay    = 50 * time.Millisecond
	mlgLagWrites = 50
	mlgBenchFor  = 2 * time.Second
)

// mlgLatency is one site's local SET latency as `replicant bench` saw it.
type mlgLatency struct {
	p50, p99 float64 // ms
	opsPerS  float64
	errors   int
}

// mlgStatus is the part of /v1/status this test reads.
type mlgStatus struct {
	Site  string `json:"site"`
	Token string `json:"token"`
	Links []struct {
		Site      string `json:"site"`
		State     string `json:"state"`
		Reason    string `json:"reason"`
		Connected string `json:"connected"`
	} `json:"links"`
}

func mlgStatusOf(p *proc) (*mlgStatus, error) {
	hc := http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get("http://" + p.HTTP + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st mlgStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// mlgWait polls cond (which says what it sees) until it holds or d passes.
func mlgWait(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", d, what, seen)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// mlgDelayProxy forwards TCP connections to target, holding every chunk
// read in either direction for the current delay before writing it on.
type mlgDelayProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	opened atomic.Int64 // connections forwarded
	wg     sync.WaitGroup
}

func mlgStartProxy(t *testing.T, listenIP, target string) *mlgDelayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(listenIP, "0"))
	if err != nil {
		t.Fatalf("delay proxy for %s: %v", target, err)
	}
	p := &mlgDelayProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *mlgDelayProxy) addr() string { return p.ln.Addr().String() }

func (p *mlgDelayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *mlgDelayProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.opened.Add(1)
		if !p.track(in) || !p.track(out) {
			in.Close()
			out.Close()
			return
		}
		p.wg.Add(2)
		go p.pump(in, out)
		go p.pump(out, in)
	}
}

// pump copies src to dst through a delay line: a reader stamps each chunk
// with when it may leave, a writer sends chunks in order once due.
func (p *mlgDelayProxy) pump(src, dst net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		b   []byte
		due time.Time
	}
	line := make(chan chunk, 4096)
	go func() {
		defer close(line)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				line <- chunk{buf[:n], time.Now().Add(time.Duration(p.delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range line {
		time.Sleep(time.Until(c.due)) // the delay line itself, not a wait for a condition
		if _, err := dst.Write(c.b); err != nil {
			src.Close()
			dst.Close()
			for range line {
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

func (p *mlgDelayProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// mlgDialIn returns a dialer whose sockets are created inside network
// namespace ns: the dialing goroutine's thread joins ns, creates and
// connects the socket, and returns to the test's namespace.
func mlgDialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			home, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer home.Close()
			target, err := os.Open("/run/netns/" + ns)
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			// A thread that cannot return home stays locked: the runtime
			// discards it when this goroutine ends.
			if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// mlgClient is a one-connection client dialing from inside namespace ns.
func mlgClient(t *testing.T, ns, addr string) *redis.Conn {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: mlgDialIn(ns), PoolSize: 1, MaxRetries: -1,
		DialTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second})
	conn := rdb.Conn()
	t.Cleanup(func() { conn.Close(); rdb.Close() })
	return conn
}

var mlgBenchLine = regexp.MustCompile(`: ([0-9.]+) ops/s\s+p50 ([0-9.]+) ms\s+p99 ([0-9.]+) ms.*errors (\d+)`)

// mlgLocalLatency runs one sequential SET client per site for
// mlgBenchFor, all sites at once, each from inside its site's namespace.
func mlgLocalLatency(t *testing.T, lab *netLab, sites []*proc, names []string) map[string]mlgLatency {
	t.Helper()
	out := map[string]mlgLatency{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var fails []string
	for i, p := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := lab.execIn(p.ID, mlgBenchFor+30*time.Second, binary, "bench", "--addr", p.RESP,
				"--clients", "1", "--duration", mlgBenchFor.String(), "--op", "set", "--keys", "10000")
			mu.Lock()
			defer mu.Unlock()
			m := mlgBenchLine.FindStringSubmatch(res)
			if err != nil || m == nil {
				fails = append(fails, fmt.Sprintf("%s: bench: %v: %s", names[i], err, res))
				return
			}
			var l mlgLatency
			l.opsPerS, _ = strconv.ParseFloat(m[1], 64)
			l.p50, _ = strconv.ParseFloat(m[2], 64)
			l.p99, _ = strconv.ParseFloat(m[3], 64)
			l.errors, _ = strconv.Atoi(m[4])
			out[names[i]] = l
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("local latency: %s", strings.Join(fails, "; "))
	}
	for _, n := range names {
		if out[n].errors > 0 {
			t.Errorf("local latency on %s: %d SETs failed", n, out[n].errors)
		}
	}
	return out
}

// mlgParseToken parses a vector token "eu:120,us:98".
func mlgParseToken(s string) map[string]uint64 {
	m := map[string]uint64{}
	for _, part := range strings.Split(s, ",") {
		site, n, ok := strings.Cut(part, ":")
		if !ok {
			continue
		}
		v, _ := strconv.ParseUint(n, 10, 64)
		m[site] = v
	}
	return m
}

// mlgWaitQuiet waits until every site has applied every other's writes
// (equal vector tokens), so a lag probe waits for its own write only.
func mlgWaitQuiet(t *testing.T, sites []*proc) {
	t.Helper()
	mlgWait(t, "every site to apply every other site's writes (equal tokens)", 60*time.Second, func() (bool, string) {
		var toks []string
		var first map[string]uint64
		same := true
		for i, p := range sites {
			st, err := mlgStatusOf(p)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", p.ID, err)
			}
			toks = append(toks, st.Site+"="+st.Token)
			m := mlgParseToken(st.Token)
			if i == 0 {
				first = m
			} else if len(m) != len(first) {
				same = false
			} else {
				for k, v := range first {
					if m[k] != v {
						same = false
					}
				}
			}
		}
		return same && len(first) > 0, strings.Join(toks, " ")
	})
}

// mlgWaitLinks waits until every site streams from every other site's
// node.
func mlgWaitLinks(t *testing.T, sites []*proc, names []string) {
	t.Helper()
	mlgWait(t, "every site streaming from every other site", 30*time.Second, func() (bool, string) {
		var seen []string
		ok := true
		for i, p := range sites {
			st, err := mlgStatusOf(p)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", names[i], err)
			}
			got := map[string]string{}
			for _, l := range st.Links {
				seen = append(seen, fmt.Sprintf("%s<-%s %s via %s %s", names[i], l.Site, l.State, l.Connected, l.Reason))
				if l.State == "streaming" {
					got[l.Site] = l.Connected
				}
			}
			for j, other := range names {
				if j != i && got[other] != sites[j].Peer {
					ok = false
				}
			}
		}
		return ok, strings.Join(seen, "; ")
	})
}

// mlgMeasureLag writes mlgLagWrites unique values on the writer's site and
// times, for every reader, from the write's acknowledgement until a
// session read carrying the write's token returns it (the read waits
// until the site has applied the write; no polling interval).
func mlgMeasureLag(t *testing.T, phase string, writer *redis.Conn, readers map[string]*redis.Conn) map[string][]time.Duration {
	t.Helper()
	ctx := ctxT(t, 5*time.Minute)
	for name, c := range readers {
		if err := c.Do(ctx, "REPLICANT.CONSISTENCY", "session").Err(); err != nil {
			t.Fatalf("REPLICANT.CONSISTENCY session on %s: %v", name, err)
		}
	}
	lags := map[string][]time.Duration{}
	type seen struct {
		site string
		lag  time.Duration
		err  error
	}
	for i := range mlgLagWrites {
		key := fmt.Sprintf("geo:%s:%d", phase, i)
		val := fmt.Sprintf("%s-%d-%d", phase, i, time.Now().UnixNano())
		if err := writer.Set(ctx, key, val, 0).Err(); err != nil {
			t.Fatalf("SET %s on the writing site: %v", key, err)
		}
		acked := time.Now()
		tok, err := writer.Do(ctx, "REPLICANT.TOKEN").Text()
		if err != nil {
			t.Fatalf("REPLICANT.TOKEN after SET %s: %v", key, err)
		}
		ch := make(chan seen, len(readers))
		for name, c := range readers {
			go func() {
				rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				defer cancel()
				var get *redis.StringCmd
				_, err := c.Pipelined(rctx, func(p redis.Pipeliner) error {
					p.Do(rctx, "REPLICANT.SESSION", tok)
					get = p.Get(rctx, key)
					return nil
				})
				visible := time.Now()
				if err == nil && get.Val() != val {
					err = fmt.Errorf("read %q, want %q", get.Val(), val)
				}
				ch <- seen{name, visible.Sub(acked), err}
			}()
		}
		for range readers {
			s := <-ch
			if s.err != nil {
				t.Fatalf("%s: session read of %s with token %s (written %s ago): %v", s.site, key, tok, time.Since(acked).Round(time.Millisecond), s.err)
			}
			lags[s.site] = append(lags[s.site], s.lag)
		}
	}
	return lags
}

// mlgPct is the p-th percentile of ds (as bench computes it).
func mlgPct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func mlgMs(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// mlgNetem tries netem on the namespace side of lab node 1's veth and
// says why it cannot be used, if it cannot.
func mlgNetem(lab *netLab) (bool, string) {
	dev := lab.nsVeth(1)
	out, err := lab.execIn("n1", 10*time.Second, "tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "1ms")
	if err != nil {
		return false, fmt.Sprintf("tc qdisc add dev %s root netem: %v: %s", dev, err, out)
	}
	if out, err := lab.execIn("n1", 10*time.Second, "tc", "qdisc", "del", "dev", dev, "root"); err != nil {
		return false, fmt.Sprintf("tc qdisc del dev %s root: %v: %s", dev, err, out)
	}
	return true, ""
}

// TestMultiLeaderGeography: with a WAN delay between sites, local writes
// keep their no-delay latency (the WAN is not on the write path) and a
// write becomes visible on the other sites about one link delay after it
// was acknowledged.
func TestMultiLeaderGeography(t *testing.T) {
	names := []string{"eu", "us", "ap"}
	lab := newNetLab(t, len(names)) // skips when namespaces are not available
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("geography test needs tc (iproute2) for the WAN delay: not found in PATH")
	}
	useNetem, why := mlgNetem(lab)

	sites := make([]*proc, len(names))
	for i, name := range names {
		sites[i] = lab.newNetProc(i+1, "--mode", "multi-leader", "--site", name)
	}
	var proxies []*mlgDelayProxy
	if useNetem {
		t.Logf("WAN delay: netem %v on the namespace side of every site's veth (each site's egress: %v one way, %v round trip between two sites)", mlgOneWay, mlgOneWay, 2*mlgOneWay)
	} else {
		if _, err := exec.LookPath("iptables"); err != nil {
			t.Skipf("geography test: netem is not available (%s) and the fallback needs iptables: not found in PATH", why)
		}
		t.Logf("WAN delay: netem is not available here (%s); site-to-site connections go through delay proxies instead (DNAT inside each site's namespace; %v each way: %v one way, %v round trip between two sites)", why, mlgOneWay, mlgOneWay, 2*mlgOneWay)
		bridgeIP := fmt.Sprintf("10.77.%d.1", lab.Subnet())
		for j := range names {
			proxies = append(proxies, mlgStartProxy(t, bridgeIP, sites[j].Peer))
		}
		// Rules live in the sites' namespaces and go with them.
		for i := range names {
			for j := range names {
				if i == j {
					continue
				}
				rule := []string{"-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", lab.ip(j + 1), "--dport", strconv.Itoa(labPeerPort),
					"-j", "DNAT", "--to-destination", proxies[j].addr()}
				if out, err := lab.execIn(sites[i].ID, 10*time.Second, "iptables", rule...); err != nil {
					t.Fatalf("iptables %s in %s: %v: %s", strings.Join(rule, " "), lab.ns(i+1), err, out)
				}
			}
		}
	}
	for _, p := range sites {
		lab.startInLab(p)
	}
	for _, p := range sites {
		p.waitHealthy()
		checkExeced(t, p)
	}
	linkAll(t, sites)
	mlgWaitLinks(t, sites, names)
	for j, px := range proxies {
		// Every other site's link (at least) connected through it.
		if n := px.opened.Load(); n < int64(len(names)-1) {
			t.Fatalf("the delay proxy in front of %s forwarded %d connections; the links bypass it", names[j], n)
		}
	}

	eu := mlgClient(t, lab.ns(1), sites[0].RESP)
	readers := map[string]*redis.Conn{
		"us": mlgClient(t, lab.ns(2), sites[1].RESP),
		"ap": mlgClient(t, lab.ns(3), sites[2].RESP),
	}

	type phase struct {
		label string
		local map[string]mlgLatency
		lag   map[string][]time.Duration
	}
	mode := "netem"
	if !useNetem {
		mode = "delay proxy"
	}
	// measure logs one copyable line (docs/benchmarks.md) per measurement.
	measure := func(label string) phase {
		t.Helper()
		ph := phase{label: label}
		ph.local = mlgLocalLatency(t, lab, sites, names)
		var parts []string
		for _, n := range names {
			l := ph.local[n]
			parts = append(parts, fmt.Sprintf("%s p50 %.3f ms p99 %.3f ms (%.0f ops/s)", n, l.p50, l.p99, l.opsPerS))
		}
		t.Logf("geography [%s, %s]: local SET, 1 client per site, %v: %s", mode, label, mlgBenchFor, strings.Join(parts, "; "))

		mlgWaitQuiet(t, sites)
		ph.lag = mlgMeasureLag(t, strings.ReplaceAll(label, " ", ""), eu, readers)
		var all []time.Duration
		parts = nil
		for _, n := range []string{"us", "ap"} {
			all = append(all, ph.lag[n]...)
			parts = append(parts, fmt.Sprintf("%s p50 %s p99 %s", n, mlgMs(mlgPct(ph.lag[n], 0.5)), mlgMs(mlgPct(ph.lag[n], 0.99))))
		}
		t.Logf("geography [%s, %s]: cross-site lag eu -> us,ap, ack to visible, %d writes: p50 %s p99 %s (%s)",
			mode, label, mlgLagWrites, mlgMs(mlgPct(all, 0.5)), mlgMs(mlgPct(all, 0.99)), strings.Join(parts, "; "))
		// Still streaming where they started: nothing fell back or broke.
		mlgWaitLinks(t, sites, names)
		return ph
	}

	base := measure("no delay")

	// The WAN gets slow.
	if useNetem {
		for i := 1; i <= len(names); i++ {
			dev := lab.nsVeth(i)
			id := fmt.Sprintf("n%d", i)
			if out, err := lab.execIn(id, 10*time.Second, "tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", mlgOneWay.String()); err != nil {
				t.Fatalf("netem on %s in %s: %v: %s", dev, lab.ns(i), err, out)
			}
			t.Cleanup(func() {
				if out, err := lab.execIn(id, 10*time.Second, "tc", "qdisc", "del", "dev", dev, "root"); err != nil && !strings.Contains(out, "Cannot find") {
					t.Logf("cleanup: tc qdisc del dev %s root in %s: %v: %s", dev, lab.ns(i), err, out)
				}
			})
		}
	} else {
		for _, px := range proxies {
			px.delay.Store(int64(mlgOneWay))
		}
	}
	slow := measure(fmt.Sprintf("%v one-way", mlgOneWay))

	// The WAN is not on the write path.
	for _, n := range names {
		if b, s := base.local[n].p50, slow.local[n].p50; s > b+2 {
			t.Errorf("%s: local SET p50 %.3f ms with a %v WAN delay, %.3f ms without: more than 2 ms slower, so writes wait for the WAN", n, s, mlgOneWay, b)
		}
	}
	// Lag is the link's delay, not more.
	for _, n := range []string{"us", "ap"} {
		if p50 := mlgPct(slow.lag[n], 0.5); p50 < mlgOneWay || p50 > 5*mlgOneWay {
			sorted := slices.Clone(slow.lag[n])
			slices.Sort(sorted)
			t.Errorf("eu -> %s lag p50 %s with a %v one-way delay: want between %v and %v; all lags: %v", n, mlgMs(p50), mlgOneWay, mlgOneWay, 5*mlgOneWay, sorted)
		}
	}
}
