package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// node is one `replicant server` process and what it needs to be
// restarted exactly as it was started.
type node struct {
	id               string
	resp, http, peer string
	dir, logPath     string
	args             []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
	killed bool          // the exit was ours (kill or stop), not a crash
}

// alive reports whether the node's current process is running.
func (n *node) alive() bool {
	n.mu.Lock()
	ch := n.exited
	n.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// cluster is three replicant servers on 127.0.0.1.
type cluster struct {
	bin   string
	nodes []*node
	hc    *http.Client
	logf  func(string, ...any)
}

func newCluster(bin, dir, sync string, basePort int, logf func(string, ...any)) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	c := &cluster{bin: bin, logf: logf,
		// Status polls must not outlive a frozen or dying node for long: a
		// stuck poll would delay leader discovery and the round's clock.
		hc: &http.Client{Timeout: time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
	}
	var initial []string
	for i := 1; i <= 3; i++ {
		initial = append(initial, fmt.Sprintf("n%d=127.0.0.1:%d", i, basePort+20+i))
	}
	for i := 1; i <= 3; i++ {
		n := &node{
			id:      fmt.Sprintf("n%d", i),
			resp:    fmt.Sprintf("127.0.0.1:%d", basePort+i),
			http:    fmt.Sprintf("127.0.0.1:%d", basePort+10+i),
			peer:    fmt.Sprintf("127.0.0.1:%d", basePort+20+i),
			dir:     filepath.Join(dir, fmt.Sprintf("n%d", i)),
			logPath: filepath.Join(dir, fmt.Sprintf("n%d.log", i)),
		}
		// Default timeouts on purpose: the benchmark measures what a user
		// gets without tuning. --initial-cluster is ignored on restart.
		n.args = []string{"server", "--id", n.id, "--data", n.dir,
			"--resp", n.resp, "--http", n.http, "--peer", n.peer,
			"--initial-cluster", strings.Join(initial, ","), "--sync", sync, "--log-level", "info"}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

func (c *cluster) node(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// startAll starts every node of a fresh cluster.
func (c *cluster) startAll() error {
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			return err
		}
	}
	return nil
}

// start launches n's process, appending to its log file (a restart keeps
// the earlier output next to the new one).
func (c *cluster) start(n *node) error {
	lf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", n.id, err)
	}
	fmt.Fprintf(lf, "=== failover bench: start %s at %s\n", n.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.bin, n.args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: Ctrl-C reaches only this tool, which then
		// stops the servers itself (and counts nothing twice).
		Setpgid: true,
		// If this tool itself is killed, the kernel kills the servers, so
		// no cluster is left holding the ports.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited, n.killed = cmd, exited, false
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		lf.Close()
		n.mu.Lock()
		ours := n.killed
		n.mu.Unlock()
		if !ours {
			c.logf("%s exited on its own (%v); see %s", n.id, err, n.logPath)
		}
		close(exited)
	}()
	return nil
}

// kill sends SIGKILL to n and waits until it is gone. It returns the time
// taken immediately before the signal: the start of the failover clock.
func (c *cluster) kill(ctx context.Context, n *node) (time.Time, error) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.killed = true
	n.mu.Unlock()
	if cmd == nil {
		return time.Time{}, fmt.Errorf("%s is not running", n.id)
	}
	t0 := time.Now()
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return t0, fmt.Errorf("kill %s: %w", n.id, err)
	}
	select {
	case <-exited:
		return t0, nil
	case <-ctx.Done():
		return t0, ctx.Err()
	}
}

// stopAll sends SIGTERM to every running server, and SIGKILL to those still
// running after 10 s. It does not take a context: it is the cleanup that
// must also run after Ctrl-C.
func (c *cluster) stopAll() {
	var wait []chan struct{}
	for _, n := range c.nodes {
		n.mu.Lock()
		cmd, exited := n.cmd, n.exited
		n.killed = true
		n.mu.Unlock()
		if cmd == nil || !n.alive() {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		wait = append(wait, exited)
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for _, ch := range wait {
		select {
		case <-ch:
		case <-deadline.C:
			for _, n := range c.nodes {
				n.mu.Lock()
				if n.cmd != nil {
					_ = n.cmd.Process.Kill()
				}
				n.mu.Unlock()
			}
			for _, ch := range wait {
				<-ch
			}
			return
		}
	}
}

// checkAlive returns an error naming the first node that died on its own.
func (c *cluster) checkAlive() error {
	for _, n := range c.nodes {
		n.mu.Lock()
		started, killed := n.cmd != nil, n.killed
		n.mu.Unlock()
		if started && !killed && !n.alive() {
			return fmt.Errorf("%s: %w; last log lines:\n%s", n.id, errNodeDied, tail(n.logPath, 10))
		}
	}
	return nil
}

// tail returns the last k lines of a file, for error messages.
func tail(path string, k int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > k {
		lines = lines[len(lines)-k:]
	}
	return strings.Join(lines, "\n")
}

// status is the part of /v1/status (DESIGN.md, Contract) this tool reads.
type status struct {
	ID         string         `json:"id"`
	Role       string         `json:"role"`
	Leader     string         `json:"leader"`
	Epoch      uint64         `json:"epoch"`
	CommitLSN  uint64         `json:"commit_lsn"`
	AppliedLSN uint64         `json:"applied_lsn"`
	State      string         `json:"state"`
	RESP       string         `json:"resp"`
	Members    []memberStatus `json:"members"`
}

type memberStatus struct {
	ID         string  `json:"id"`
	Role       string  `json:"role"`
	Healthy    bool    `json:"healthy"`
	State      string  `json:"state"`
	LagEntries uint64  `json:"lag_entries"`
	LagSeconds float64 `json:"lag_seconds"`
	RESP       string  `json:"resp"`
}

func (c *cluster) status(ctx context.Context, n *node) (*status, error) {
	body, err := c.get(ctx, "http://"+n.http+"/v1/status")
	if err != nil {
		return nil, err
	}
	var s status
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("%s status: %w", n.id, err)
	}
	return &s, nil
}

func (c *cluster) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// statusAll polls every running node concurrently; a node that does not
// answer has a nil entry.
func (c *cluster) statusAll(ctx context.Context) []*status {
	out := make([]*status, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		if !n.alive() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := c.status(ctx, n); err == nil {
				out[i] = s
			}
		}()
	}
	wg.Wait()
	return out
}

// failoversTotal reads replicant_failovers_total from n's /metrics: the
// leaders n appointed as controller after a lease expired (it resets when
// the process restarts). ok is false when the metric is missing.
func (c *cluster) failoversTotal(ctx context.Context, n *node) (v float64, ok bool, err error) {
	body, err := c.get(ctx, "http://"+n.http+"/metrics")
	if err != nil {
		return 0, false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, "replicant_failovers_total")
		if !found || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: parse %q: %w", n.id, line, err)
		}
		return v, true, nil
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("%s metrics: %w", n.id, err)
	}
	return 0, false, nil
}

// readyState is a consistent cluster: one leader everyone agrees on, every
// other node streaming from it and caught up.
type readyState struct {
	leader *node
	epoch  uint64
}

// waitReady waits until all three nodes run, agree on one leader and
// epoch, the leader sees every follower healthy, every follower's own state
// is streaming, and every follower has applied at least the leader's commit
// LSN as it was when the rest first held (under write load followers are
// always a little behind; this is the "caught up" that terminates).
// wantLeader, when set, must be the leader.
func (c *cluster) waitReady(ctx context.Context, wantLeader string, timeout time.Duration) (readyState, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var target uint64
	why := "no status yet"
	for {
		if err := c.checkAlive(); err != nil {
			return readyState{}, err
		}
		sts := c.statusAll(ctx)
		rs, reason := c.consistent(sts, wantLeader)
		if reason == "" {
			ls := sts[c.index(rs.leader)]
			if target == 0 {
				target = ls.CommitLSN
			}
			reason = c.caughtUp(sts, rs.leader, target)
			if reason == "" {
				return rs, nil
			}
		}
		why = reason
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return readyState{}, fmt.Errorf("cluster not ready (%s): %w", why, err)
		}
	}
}

func (c *cluster) index(n *node) int {
	for i, m := range c.nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// consistent checks everything but catch-up; reason says what is missing.
func (c *cluster) consistent(sts []*status, wantLeader string) (readyState, string) {
	var leader *status
	for i, s := range sts {
		if s == nil {
			return readyState{}, c.nodes[i].id + " does not answer"
		}
		if s.Role == "leader" {
			if leader != nil {
				return readyState{}, "two nodes report role leader"
			}
			leader = s
		}
	}
	if leader == nil {
		return readyState{}, "no leader"
	}
	if leader.State != "leading" {
		return readyState{}, "leader " + leader.ID + " is " + leader.State
	}
	if wantLeader != "" && leader.ID != wantLeader {
		return readyState{}, "leader is " + leader.ID + ", want " + wantLeader
	}
	for _, s := range sts {
		if s.Epoch != leader.Epoch || s.Leader != leader.ID {
			return readyState{}, fmt.Sprintf("%s sees leader %s epoch %d, leader says %s epoch %d", s.ID, s.Leader, s.Epoch, leader.ID, leader.Epoch)
		}
		if s != leader && s.State != "streaming" {
			return readyState{}, s.ID + " is " + s.State
		}
	}
	healthy := 0
	for _, m := range leader.Members {
		if m.Healthy {
			healthy++
		}
	}
	if healthy < len(c.nodes)-1 {
		return readyState{}, fmt.Sprintf("leader sees %d of %d followers healthy", healthy, len(c.nodes)-1)
	}
	return readyState{leader: c.node(leader.ID), epoch: leader.Epoch}, ""
}

func (c *cluster) caughtUp(sts []*status, leader *node, target uint64) string {
	for _, s := range sts {
		if s.ID != leader.id && s.AppliedLSN < target {
			return fmt.Sprintf("%s applied %d < %d", s.ID, s.AppliedLSN, target)
		}
	}
	return ""
}

// errNoLeader is returned by discoverLeader while no node names a leader.
var errNoLeader = errors.New("no leader known")

// discoverLeader finds the node to write to from the statuses of the
// running nodes: a node that says it leads (the highest epoch wins), else
// the leader named by the node with the highest epoch. The latter may be a
// leader that just died (followers name it until the new epoch): writing to
// it fails at once and the caller asks again.
func (c *cluster) discoverLeader(ctx context.Context) (id, addr string, err error) {
	sts := c.statusAll(ctx)
	var self, best *status
	for _, s := range sts {
		if s == nil {
			continue
		}
		if s.Role == "leader" && s.State == "leading" && (self == nil || s.Epoch > self.Epoch) {
			self = s
		}
		if s.Leader != "" && (best == nil || s.Epoch > best.Epoch) {
			best = s
		}
	}
	switch {
	case self != nil && self.RESP != "":
		return self.ID, self.RESP, nil
	case self != nil:
		best = self
	case best == nil:
		return "", "", errNoLeader
	}
	for _, m := range best.Members {
		if m.ID == best.Leader && m.RESP != "" {
			return m.ID, m.RESP, nil
		}
	}
	// Status without addresses (older builds): the ports are ours anyway.
	if n := c.node(best.Leader); n != nil {
		return n.id, n.resp, nil
	}
	return "", "", fmt.Errorf("%w: leader %s has no RESP address in status", errNoLeader, best.Leader)
}
