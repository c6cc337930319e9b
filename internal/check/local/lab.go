package local

// Network-namespace lab for partitions: one Linux network namespace per
// node, each joined by a veth pair to a bridge in the root namespace where
// the caller runs. Cutting a node off is taking the host side of its veth
// down; healing is bringing it up again.
//
//	root ns:  bridge rpb<sfx> 10.77.X.1/24
//	            ├─ rpv<sfx>h1 ══ rpv<sfx>n1 10.77.X.11  (netns rp-<pid>-<sfx>-n1)
//	            ├─ rpv<sfx>h2 ══ rpv<sfx>n2 10.77.X.12  (netns rp-<pid>-<sfx>-n2)
//	            └─ …
//
// Names carry the creating process's id (netns names, bridge alias), so a
// later run removes what a crashed run (SIGKILL, a test timeout) left
// behind. Everything the lab touches is its own: it never changes another
// interface, namespace or rule.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	labAliasPrefix = "replicant-test-pid-"
	// Ports every node listens on inside its own namespace.
	LabRESPPort = 6379
	LabHTTPPort = 8080
	LabPeerPort = 9090
)

// Lab is the set of namespaces, veths and the bridge of one run.
type Lab struct {
	sfx     string // random, 4 hex digits
	subnet  int    // X in 10.77.X.0/24
	Bridge  string
	n       int
	fwdRule []string // iptables rule inserted for br_netfilter, if any
	// Logf reports what cleanup could not do and stale labs removed
	// (nil: silent).
	Logf func(format string, args ...any)
}

func (l *Lab) logf(format string, args ...any) {
	if l.Logf != nil {
		l.Logf(format, args...)
	}
}

// ErrNoLab is wrapped by LabAvailable's errors: partitions cannot be made
// here (not Linux, not root, no ip command, no network namespaces).
var ErrNoLab = errors.New("local: network namespaces unavailable")

// LabAvailable reports why a Lab cannot be built here, or nil.
func LabAvailable() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: partitions need Linux network namespaces (GOOS=%s)", ErrNoLab, runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: partitions need root (network namespaces, veths, a bridge)", ErrNoLab)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: partitions need iproute2's ip command: not found in PATH", ErrNoLab)
	}
	// Containers often lack CAP_SYS_ADMIN: try one.
	probe := fmt.Sprintf("rp-%d-probe%04x", os.Getpid(), rand.IntN(1<<16))
	if out, err := ipCmd("netns", "add", probe); err != nil {
		return fmt.Errorf("%w: `ip netns add` fails here: %v: %s", ErrNoLab, err, out)
	}
	if out, err := ipCmd("netns", "del", probe); err != nil {
		return fmt.Errorf("local: ip netns del %s: %v: %s", probe, err, out)
	}
	return nil
}

func ipCmd(args ...string) (string, error) { return runCmd(10*time.Second, "ip", args...) }

func runCmd(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// NewLab builds n namespaces on a fresh bridge, after removing what dead
// runs left. On error it removes what it built. The caller must Destroy
// it, after killing the processes it started in it.
func NewLab(n int, logf func(string, ...any)) (*Lab, error) {
	if err := LabAvailable(); err != nil {
		return nil, err
	}
	l := &Lab{sfx: fmt.Sprintf("%04x", rand.IntN(1<<16)), n: n, Logf: logf}
	l.sweepStale()
	l.Bridge = "rpb" + l.sfx
	var err error
	if l.subnet, err = pickSubnet(); err != nil {
		return nil, err
	}
	if err := l.build(); err != nil {
		l.Destroy()
		return nil, err
	}
	return l, nil
}

func (l *Lab) build() error {
	steps := [][]string{
		{"link", "add", l.Bridge, "type", "bridge"},
		{"link", "set", "dev", l.Bridge, "alias", fmt.Sprintf("%s%d", labAliasPrefix, os.Getpid())},
		{"addr", "add", fmt.Sprintf("10.77.%d.1/24", l.subnet), "dev", l.Bridge},
		{"link", "set", l.Bridge, "up"},
	}
	for i := 1; i <= l.n; i++ {
		ns, host, peer := l.NS(i), l.hostVeth(i), l.nsVeth(i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"link", "add", host, "type", "veth", "peer", "name", peer},
			[]string{"link", "set", peer, "netns", ns},
			[]string{"link", "set", host, "master", l.Bridge},
			[]string{"link", "set", host, "up"},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", ns, "addr", "add", l.IP(i) + "/24", "dev", peer},
			[]string{"-n", ns, "link", "set", peer, "up"},
		)
	}
	for _, s := range steps {
		if out, err := ipCmd(s...); err != nil {
			return fmt.Errorf("local: ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	// With br_netfilter loaded, bridged frames traverse iptables FORWARD,
	// whose policy is often DROP (Docker): let this bridge's traffic pass.
	if b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil && strings.TrimSpace(string(b)) == "1" {
		rule := []string{"FORWARD", "-i", l.Bridge, "-o", l.Bridge, "-j", "ACCEPT"}
		if out, err := runCmd(10*time.Second, "iptables", append([]string{"-I"}, rule...)...); err != nil {
			l.logf("br_netfilter is active and iptables -I %v failed (%v: %s); node-to-node traffic may be dropped", rule, err, out)
		} else {
			l.fwdRule = rule
		}
	}
	return nil
}

// NS is node i's namespace; IP its address.
func (l *Lab) NS(i int) string       { return fmt.Sprintf("rp-%d-%s-n%d", os.Getpid(), l.sfx, i) }
func (l *Lab) IP(i int) string       { return fmt.Sprintf("10.77.%d.%d", l.subnet, 10+i) }
func (l *Lab) hostVeth(i int) string { return fmt.Sprintf("rpv%sh%d", l.sfx, i) }
func (l *Lab) nsVeth(i int) string   { return fmt.Sprintf("rpv%sn%d", l.sfx, i) }

// NSVeth is node i's interface inside its namespace (where tc netem
// delays its traffic); HostVeth(id) the bridge side Isolate takes down.
func (l *Lab) NSVeth(i int) string { return l.nsVeth(i) }
func (l *Lab) HostVeth(id string) string {
	i, _ := l.index(id)
	return l.hostVeth(i)
}

// Subnet is X of the lab's 10.77.X.0/24.
func (l *Lab) Subnet() int { return l.subnet }

// index maps a node id n<i> to i.
func (l *Lab) index(id string) (int, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(id, "n"))
	if err != nil || i < 1 || i > l.n {
		return 0, fmt.Errorf("local: no node %q in the lab", id)
	}
	return i, nil
}

// Isolate cuts node id off from every other node and from the root
// namespace (its veth's bridge side goes down); Heal reconnects it.
func (l *Lab) Isolate(id string) error { return l.setLink(id, "down") }
func (l *Lab) Heal(id string) error    { return l.setLink(id, "up") }

func (l *Lab) setLink(id, state string) error {
	i, err := l.index(id)
	if err != nil {
		return err
	}
	if out, err := ipCmd("link", "set", l.hostVeth(i), state); err != nil {
		return fmt.Errorf("local: ip link set %s %s: %v: %s", l.hostVeth(i), state, err, out)
	}
	return nil
}

// ExecIn runs a command inside node id's namespace and returns its
// combined output.
func (l *Lab) ExecIn(id string, timeout time.Duration, name string, args ...string) (string, error) {
	i, err := l.index(id)
	if err != nil {
		return "", err
	}
	return runCmd(timeout, "ip", append([]string{"netns", "exec", l.NS(i), name}, args...)...)
}

// NewNode prepares node n<i> listening on its namespace's address and
// started through `ip netns exec`, which execs the server in place (no
// fork): the node's pid is the server's own, so Kill and Pause reach it
// (CheckExeced verifies it).
func (l *Lab) NewNode(i int, binary, data string, extra ...string) *Node {
	ip := l.IP(i)
	return &Node{ID: fmt.Sprintf("n%d", i), Binary: binary,
		RESP: fmt.Sprintf("%s:%d", ip, LabRESPPort),
		HTTP: fmt.Sprintf("%s:%d", ip, LabHTTPPort),
		Peer: fmt.Sprintf("%s:%d", ip, LabPeerPort),
		Data: data, Args: extra, Log: &Buffer{},
		Prefix: []string{"ip", "netns", "exec", l.NS(i)}}
}

// CheckExeced fails unless nd's pid runs binary itself.
func CheckExeced(nd *Node, binary string) error {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", nd.Pid()))
	if err != nil {
		return fmt.Errorf("local: %s: %w", nd.ID, err)
	}
	if want, _ := filepath.EvalSymlinks(binary); exe != binary && exe != want {
		return fmt.Errorf("local: %s: pid %d runs %s, not %s: `ip netns exec` forked, so Kill would miss the server", nd.ID, nd.Pid(), exe, binary)
	}
	return nil
}

// Destroy removes everything of the lab; it reports through Logf what it
// could not remove.
func (l *Lab) Destroy() {
	if l.fwdRule != nil {
		if out, err := runCmd(10*time.Second, "iptables", append([]string{"-D"}, l.fwdRule...)...); err != nil {
			l.logf("cleanup: iptables -D %v: %v: %s", l.fwdRule, err, out)
		}
	}
	for i := 1; i <= l.n; i++ {
		ns := l.NS(i)
		// Processes still in the namespace keep it and its veth alive.
		l.killNetnsPids(ns)
		if out, err := ipCmd("netns", "del", ns); err != nil && !strings.Contains(out, "No such file") {
			l.logf("cleanup: ip netns del %s: %v: %s", ns, err, out)
		}
		// Normally gone with the namespace (a veth pair dies with either end).
		if _, err := ipCmd("link", "show", l.hostVeth(i)); err == nil {
			if out, err := ipCmd("link", "del", l.hostVeth(i)); err != nil && !strings.Contains(out, "Cannot find device") {
				l.logf("cleanup: ip link del %s: %v: %s", l.hostVeth(i), err, out)
			}
		}
	}
	if out, err := ipCmd("link", "del", l.Bridge); err != nil && !strings.Contains(out, "Cannot find device") {
		l.logf("cleanup: ip link del %s: %v: %s", l.Bridge, err, out)
	}
}

// killNetnsPids SIGKILLs the processes inside one of the lab's own
// namespaces (never anything outside it).
func (l *Lab) killNetnsPids(ns string) {
	out, err := ipCmd("netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			l.logf("killing leftover pid %d in %s", pid, ns)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// pickSubnet picks X for 10.77.X.0/24 not used by any address or route.
func pickSubnet() (int, error) {
	addrs, _ := ipCmd("-o", "-4", "addr", "show")
	routes, _ := ipCmd("-4", "route", "show", "table", "all")
	for range 50 {
		x := 100 + rand.IntN(150)
		p := fmt.Sprintf("10.77.%d.", x)
		if !strings.Contains(addrs, p) && !strings.Contains(routes, p) {
			return x, nil
		}
	}
	return 0, errors.New("local: no free 10.77.X.0/24 subnet for the partition lab")
}

// sweepStale removes namespaces and bridges left by processes that no
// longer exist.
func (l *Lab) sweepStale() {
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
				l.killNetnsPids(f[0])
				if o, err := ipCmd("netns", "del", f[0]); err != nil {
					l.logf("stale lab: ip netns del %s: %v: %s", f[0], err, o)
				} else {
					l.logf("stale lab: removed namespace %s", f[0])
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
					l.logf("stale lab: ip link del %s: %v: %s", name, err, o)
				} else {
					l.logf("stale lab: removed bridge %s", name)
				}
			}
		}
	}
}
