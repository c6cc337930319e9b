package test

// Partition tests run nodes in a network-namespace lab (local.Lab: one
// namespace per node on a bridge; isolating a node takes its veth down).
// These helpers adapt it to testing.T.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/check/local"
)

const (
	labRESPPort = local.LabRESPPort
	labHTTPPort = local.LabHTTPPort
	labPeerPort = local.LabPeerPort
)

// netLab is one test's lab.
type netLab struct {
	*local.Lab
	t *testing.T
}

// requireNetns skips the test unless network namespaces can be used.
func requireNetns(t *testing.T) {
	t.Helper()
	if err := local.LabAvailable(); err != nil {
		if errors.Is(err, local.ErrNoLab) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
}

// newNetLab builds n namespaces on a fresh bridge; everything is removed
// in t.Cleanup whatever the outcome. Register it before starting processes
// in it, so that their cleanups (LIFO) kill them first.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	requireNetns(t)
	l, err := local.NewLab(n, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Destroy)
	return &netLab{Lab: l, t: t}
}

func (l *netLab) ns(i int) string     { return l.NS(i) }
func (l *netLab) nsVeth(i int) string { return l.NSVeth(i) }
func (l *netLab) ip(i int) string     { return l.IP(i) }

// isolate cuts node id off from every other node and from the test
// process; heal reconnects it.
func (l *netLab) isolate(id string) {
	l.t.Helper()
	if err := l.Isolate(id); err != nil {
		l.t.Fatal(err)
	}
	l.t.Logf("partition: %s isolated (%s down)", id, l.HostVeth(id))
}

func (l *netLab) heal(id string) {
	l.t.Helper()
	if err := l.Heal(id); err != nil {
		l.t.Fatal(err)
	}
	l.t.Logf("partition: %s healed (%s up)", id, l.HostVeth(id))
}

// execIn runs a command inside node id's namespace.
func (l *netLab) execIn(id string, timeout time.Duration, name string, args ...string) (string, error) {
	return l.ExecIn(id, timeout, name, args...)
}

// newNetProc prepares node n<i> listening on its namespace's address.
func (l *netLab) newNetProc(i int, extra ...string) *proc {
	return &proc{t: l.t, Node: l.NewNode(i, binary, filepath.Join(l.t.TempDir(), fmt.Sprintf("n%d", i)), extra...)}
}

// startInLab starts p in its namespace (local.Lab.NewNode set the prefix).
func (l *netLab) startInLab(p *proc) {
	p.t.Helper()
	p.startNoWait()
}

// checkExeced fails unless p's pid runs the replicant binary itself.
func checkExeced(t *testing.T, p *proc) {
	t.Helper()
	if err := local.CheckExeced(p.Node, binary); err != nil {
		t.Fatal(err)
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
				hint = " (br_netfilter is active: check that iptables FORWARD lets bridge " + l.Bridge + " traffic through)"
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
