package test

// Network-namespace lab for partition tests: one Linux network namespace per
// node, each joined by a veth pair to a bridge in the root namespace where
// the test process runs. Cutting a node off is taking the host side of its
// veth down; healing is bringing it up again.
//
//	root ns:  bridge rpb<sfx> 10.77.X.1/24
//	            ├─ rpv<sfx>h1 ══ rpv<sfx>n1 10.77.X.11  (netns rp-<pid>-<sfx>-n1)
//	            ├─ rpv<sfx>h2 ══ rpv<sfx>n2 10.77.X.12  (netns rp-<pid>-<sfx>-n2)
//	            └─ …
//
// Names carry the test process id (netns names, bridge alias), so a later
// run can remove what a crashed run (go test -timeout, SIGKILL) left behind.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/check/local"
)

const (
	labAliasPrefix = "replicant-test-pid-"
	labRESPPort    = 6379
	labHTTPPort    = 8080
	labPeerPort    = 9090
)

// netLab is the set of namespaces, veths and the bridge of one test.
type netLab struct {
	t       *testing.T
	sfx     string // random, 4 hex digits
	subnet  int    // X in 10.77.X.0/24
	bridge  string
	n       int
	fwdRule []string // iptables rule inserted for br_netfilter, if any
}

// requireNetns skips the test unless network namespaces can be used.
func requireNetns(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("partition tests need Linux network namespaces (GOOS=%s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		t.Skip("partition tests need root (network namespaces, veths, a bridge); run as root to include them")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("partition tests need iproute2's ip command: not found in PATH")
	}
	// Probe: can this environment create a network namespace at all
	// (containers often lack CAP_SYS_ADMIN)?
	probe := fmt.Sprintf("rp-%d-probe%04x", os.Getpid(), rand.IntN(1<<16))
	if out, err := ipCmd("netns", "add", probe); err != nil {
		t.Skipf("partition tests need `ip netns`, which fails here: %v: %s", err, out)
	}
	if out, err := ipCmd("netns", "del", probe); err != nil {
		t.Fatalf("ip netns del %s: %v: %s", probe, err, out)
	}
}

// ipCmd runs ip with args and returns its combined output.
func ipCmd(args ...string) (string, error) {
	return runCmd(10*time.Second, "ip", args...)
}

func runCmd(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// newNetLab builds n namespaces on a fresh bridge; everything is removed
// in t.Cleanup whatever the outcome. Register it before starting processes
// in it, so that their cleanups (LIFO) kill them first.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	requireNetns(t)
	sweepStaleLabs(t)
	l := &netLab{t: t, sfx: fmt.Sprintf("%04x", rand.IntN(1<<16)), n: n}
	l.bridge = "rpb" + l.sfx
	l.subnet = pickSubnet(t)
	t.Cleanup(l.destroy)

	l.must("link", "add", l.bridge, "type", "bridge")
	l.must("link", "set", "dev", l.bridge, "alias", fmt.Sprintf("%s%d", labAliasPrefix, os.Getpid()))
	l.must("addr", "add", fmt.Sprintf("10.77.%d.1/24", l.subnet), "dev", l.bridge)
	l.must("link", "set", l.bridge, "up")
	for i := 1; i <= n; i++ {
		ns, host, peer := l.ns(i), l.hostVeth(i), l.nsVeth(i)
		l.must("netns", "add", ns)
		l.must("link", "add", host, "type", "veth", "peer", "name", peer)
		l.must("link", "set", peer, "netns", ns)
		l.must("link", "set", host, "master", l.bridge)
		l.must("link", "set", host, "up")
		l.must("-n", ns, "link", "set", "lo", "up")
		l.must("-n", ns, "addr", "add", l.ip(i)+"/24", "dev", peer)
		l.must("-n", ns, "link", "set", peer, "up")
	}
	// With br_netfilter loaded, bridged frames traverse iptables FORWARD,
	// whose policy is often DROP (Docker): let this bridge's traffic pass.
	if b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil && strings.TrimSpace(string(b)) == "1" {
		rule := []string{"FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT"}
		if out, err := runCmd(10*time.Second, "iptables", append([]string{"-I"}, rule...)...); err != nil {
			t.Logf("br_netfilter is active and iptables -I %v failed (%v: %s); node-to-node traffic may be dropped", rule, err, out)
		} else {
			l.fwdRule = rule
		}
	}
	return l
}

func (l *netLab) must(args ...string) {
	l.t.Helper()
	if out, err := ipCmd(args...); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (l *netLab) ns(i int) string       { return fmt.Sprintf("rp-%d-%s-n%d", os.Getpid(), l.sfx, i) }
func (l *netLab) hostVeth(i int) string { return fmt.Sprintf("rpv%sh%d", l.sfx, i) }
func (l *netLab) nsVeth(i int) string   { return fmt.Sprintf("rpv%sn%d", l.sfx, i) }
func (l *netLab) ip(i int) string       { return fmt.Sprintf("10.77.%d.%d", l.subnet, 10+i) }

// index maps a node id n<i> to i.
func (l *netLab) index(id string) int {
	l.t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(id, "n"))
	if err != nil || i < 1 || i > l.n {
		l.t.Fatalf("no node %q in the lab", id)
	}
	return i
}

// isolate cuts node id off from every other node and from the test
// process (its veth's bridge side goes down).
func (l *netLab) isolate(id string) {
	l.t.Helper()
	l.must("link", "set", l.hostVeth(l.index(id)), "down")
	l.t.Logf("partition: %s isolated (%s down)", id, l.hostVeth(l.index(id)))
}

// heal reconnects node id.
func (l *netLab) heal(id string) {
	l.t.Helper()
	l.must("link", "set", l.hostVeth(l.index(id)), "up")
	l.t.Logf("partition: %s healed (%s up)", id, l.hostVeth(l.index(id)))
}

// execIn runs a command inside node id's namespace with a timeout and
// returns its combined output.
func (l *netLab) execIn(id string, timeout time.Duration, name string, args ...string) (string, error) {
	return runCmd(timeout, "ip", append([]string{"netns", "exec", l.ns(l.index(id)), name}, args...)...)
}

// destroy removes everything of the lab; it never fails the test, it only
// reports what it could not remove.
func (l *netLab) destroy() {
	if l.fwdRule != nil {
		if out, err := runCmd(10*time.Second, "iptables", append([]string{"-D"}, l.fwdRule...)...); err != nil {
			l.t.Logf("cleanup: iptables -D %v: %v: %s", l.fwdRule, err, out)
		}
	}
	for i := 1; i <= l.n; i++ {
		ns := l.ns(i)
		// Processes still in the namespace (there should be none: the
		// nodes' own cleanups ran first) keep it and its veth alive.
		killNetnsPids(l.t, ns)
		if out, err := ipCmd("netns", "del", ns); err != nil && !strings.Contains(out, "No such file") {
			l.t.Logf("cleanup: ip netns del %s: %v: %s", ns, err, out)
		}
		// Normally gone with the namespace (a veth pair dies with either end).
		if _, err := ipCmd("link", "show", l.hostVeth(i)); err == nil {
			if out, err := ipCmd("link", "del", l.hostVeth(i)); err != nil && !strings.Contains(out, "Cannot find device") {
				l.t.Logf("cleanup: ip link del %s: %v: %s", l.hostVeth(i), err, out)
			}
		}
	}
	if out, err := ipCmd("link", "del", l.bridge); err != nil && !strings.Contains(out, "Cannot find device") {
		l.t.Logf("cleanup: ip link del %s: %v: %s", l.bridge, err, out)
	}
}

// killNetnsPids SIGKILLs the processes inside one of the lab's own
// namespaces (never anything outside it).
func killNetnsPids(t *testing.T, ns string) {
	out, err := ipCmd("netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			t.Logf("killing leftover pid %d in %s", pid, ns)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// pickSubnet picks X for 10.77.X.0/24 not used by any address or route.
func pickSubnet(t *testing.T) int {
	t.Helper()
	addrs, _ := ipCmd("-o", "-4", "addr", "show")
	routes, _ := ipCmd("-4", "route", "show", "table", "all")
	for range 50 {
		x := 100 + rand.IntN(150)
		p := fmt.Sprintf("10.77.%d.", x)
		if !strings.Contains(addrs, p) && !strings.Contains(routes, p) {
			return x
		}
	}
	t.Fatal("no free 10.77.X.0/24 subnet for the partition lab")
	return 0
}

// sweepStaleLabs removes namespaces and bridges left by test processes
// that no longer exist (a crashed or timed-out run cannot clean up).
func sweepStaleLabs(t *testing.T) {
	alive := func(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH }
	if out, err := ipCmd("netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !strings.HasPrefix(f[0], "rp-") {
				continue
			}
			parts := strings.SplitN(f[0], "-", 3)
			if len(parts) < 3 {
				continue
			}
			if pid, err := strconv.Atoi(parts[1]); err == nil && !alive(pid) {
				// Servers the dead run started are still in there.
				killNetnsPids(t, f[0])
				if o, err := ipCmd("netns", "del", f[0]); err != nil {
					t.Logf("stale lab: ip netns del %s: %v: %s", f[0], err, o)
				} else {
					t.Logf("stale lab: removed namespace %s", f[0])
				}
				// Orphaned TCP sockets of a cut-off node can keep the
				// namespace, and so the veth pair, alive for minutes.
				if sfx, node, ok := strings.Cut(parts[2], "-n"); ok {
					veth := "rpv" + sfx + "h" + node
					if _, err := ipCmd("link", "show", veth); err == nil {
						_, _ = ipCmd("link", "del", veth)
					}
				}
			}
		}
	}
	if out, err := ipCmd("-o", "link", "show", "type", "bridge"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			i := strings.Index(line, "alias "+labAliasPrefix)
			if i < 0 {
				continue
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name := strings.TrimSuffix(f[1], ":")
			pidStr := strings.Fields(line[i+len("alias "+labAliasPrefix):])
			if len(pidStr) == 0 {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(pidStr[0])); err == nil && !alive(pid) {
				if o, err := ipCmd("link", "del", name); err != nil {
					t.Logf("stale lab: ip link del %s: %v: %s", name, err, o)
				} else {
					t.Logf("stale lab: removed bridge %s", name)
				}
			}
		}
	}
}

// newNetProc prepares node n<i> listening on its namespace's address.
func (l *netLab) newNetProc(i int, extra ...string) *proc {
	ip := l.ip(i)
	id := fmt.Sprintf("n%d", i)
	return &proc{t: l.t, Node: &local.Node{ID: id, Binary: binary,
		RESP: fmt.Sprintf("%s:%d", ip, labRESPPort),
		HTTP: fmt.Sprintf("%s:%d", ip, labHTTPPort),
		Peer: fmt.Sprintf("%s:%d", ip, labPeerPort),
		Data: filepath.Join(l.t.TempDir(), id), Args: extra, Log: &local.Buffer{}}}
}

// startInLab starts p through `ip netns exec`. ip execs the command in
// place (no fork), so the process's pid is replicant's own and
// kill()/stop()/SIGSTOP reach the server itself; start checks that.
func (l *netLab) startInLab(p *proc) {
	p.t.Helper()
	p.Prefix = []string{"ip", "netns", "exec", l.ns(l.index(p.ID))}
	p.startNoWait()
}

// checkExeced fails unless p's pid runs the replicant binary itself.
func checkExeced(t *testing.T, p *proc) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid()))
	if err != nil {
		t.Fatalf("%s: %v", p.ID, err)
	}
	if want, _ := filepath.EvalSymlinks(binary); exe != binary && exe != want {
		t.Fatalf("%s: pid %d runs %s, not %s: `ip netns exec` forked, so kill() would miss the server", p.ID, p.Pid(), exe, binary)
	}
}

// newNetCluster is newCluster with every node in its own namespace of a
// fresh lab. It waits until n1 leads and every follower streams.
func newNetCluster(t *testing.T, n int, flags ...string) (*cluster, *netLab) {
	t.Helper()
	l := newNetLab(t, n)
	c := &cluster{t: t}
	var initial []string
	for i := 1; i <= n; i++ {
		p := l.newNetProc(i)
		c.nodes = append(c.nodes, p)
		initial = append(initial, p.ID+"="+p.Peer)
	}
	for _, p := range c.nodes {
		p.Args = append([]string{"--initial-cluster", strings.Join(initial, ",")}, flags...)
		l.startInLab(p)
	}
	for _, p := range c.nodes {
		p.waitHealthy()
		checkExeced(t, p)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		var why []string
		for _, p := range c.nodes {
			st, err := p.status()
			switch {
			case err != nil:
				ok = false
				why = append(why, fmt.Sprintf("%s: %v", p.ID, err))
			case st.Leader != "n1" || (p.ID != "n1" && st.State != "streaming"):
				ok = false
				why = append(why, fmt.Sprintf("%s: leader %q state %q %s", p.ID, st.Leader, st.State, st.Reason))
			}
		}
		if ok {
			return c, l
		}
		if time.Now().After(deadline) {
			hint := ""
			if b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("1")) {
				hint = " (br_netfilter is active: check that iptables FORWARD lets bridge " + l.bridge + " traffic through)"
			}
			t.Fatalf("netns cluster did not form in 30s%s: %s", hint, strings.Join(why, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reachable reports whether p's HTTP API answers from the root namespace.
func reachable(p *proc) bool {
	hc := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := hc.Get("http://" + p.HTTP + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}
