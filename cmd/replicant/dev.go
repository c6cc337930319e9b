package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/client"
	"github.com/replicant-db/replicant/internal/engine"
)

type devNode struct {
	id, resp, http, peer, data, logPath string
	// site is the node's site in multi-leader mode ("" otherwise).
	site string
	// args are the arguments of its `replicant server`.
	args []string
	cmd  *exec.Cmd
	done chan error
	tail *tailWriter
}

// devConfig is one `replicant dev` run.
type devConfig struct {
	nodes             int
	data, syncPolicy  string
	mode              string
	extra             []string
	respBase          int // node i listens on respBase+i, httpBase+i, peerBase+i
	httpBase          int
	peerBase          int
	exe               string    // server binary; empty: this binary
	out               io.Writer // the node table and what happens to the nodes
	startupTimeout    time.Duration
	stopTimeout       time.Duration
	tailLinesOnReport int
	// linkTimeout bounds the tries of each link of a multi-leader run: a
	// node takes writes (and link changes) only once it leads its site,
	// shortly after it answers /healthz.
	linkTimeout time.Duration
}

// defaultDevConfig has the Contract's ports: node i on 638i, 808i, 908i.
func defaultDevConfig() devConfig {
	return devConfig{
		nodes: 3, data: ".replicant-dev", mode: engine.ModeSingleLeader,
		respBase: 6380, httpBase: 8080, peerBase: 9080,
		startupTimeout: 15 * time.Second, stopTimeout: 10 * time.Second,
		tailLinesOnReport: 5, linkTimeout: 10 * time.Second,
	}
}

func newDevCmd() *cobra.Command {
	cfg := defaultDevConfig()
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Start a local cluster of real replicant server processes",
		Long: `dev starts --nodes replicant server processes on this machine: node i (n1, n2, ...)
listens on RESP 127.0.0.1:638i, HTTP 127.0.0.1:808i and peer 127.0.0.1:908i.
Ctrl-C stops them all. Data is kept in --data, so a second run resumes.

With --mode multi-leader each node is a one-node site (eu, us, ap, sa, af,
oc, me, then site8, site9), and dev links every site to every other.
With --mode leaderless it starts five nodes (N=3): any node takes reads and
writes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.out = cmd.OutOrStdout()
			if cfg.mode == engine.ModeLeaderless && !cmd.Flags().Changed("nodes") {
				cfg.nodes = 5 // the Contract's leaderless dev cluster: five nodes, N=3
			}
			return runDev(cmd.Context(), cfg)
		},
	}
	cmd.Flags().IntVar(&cfg.nodes, "nodes", cfg.nodes, "number of nodes (1-9; default 3, 5 with --mode leaderless); with --mode multi-leader, of one-node sites")
	cmd.Flags().StringVar(&cfg.mode, "mode", cfg.mode, "replication mode: single-leader | multi-leader | leaderless")
	cmd.Flags().StringVar(&cfg.syncPolicy, "sync", "", "commit policy (default 'FIRST 1 (*)': the first healthy follower synchronous, the others asynchronous)")
	cmd.Flags().StringVar(&cfg.data, "data", cfg.data, "directory holding one data directory per node")
	cmd.Flags().StringArrayVar(&cfg.extra, "server-flag", nil, "extra flag passed to every server, e.g. --server-flag=--requirepass=s3cret")
	return cmd
}

// devSiteNames name the sites of a multi-leader run, in node order; nodes
// beyond the list get site8, site9.
var devSiteNames = []string{"eu", "us", "ap", "sa", "af", "oc", "me"}

func devSiteName(i int) string {
	if i <= len(devSiteNames) {
		return devSiteNames[i-1]
	}
	return fmt.Sprintf("site%d", i)
}

// devPlan is what a dev run starts.
type devPlan struct {
	nodes []*devNode
	// syncPolicy is the single-leader cluster's commit policy.
	syncPolicy string
	// password is what the nodes require (from --server-flag or the
	// environment), which dev needs to link the sites.
	password string
	// notes are said before anything starts.
	notes []string
}

// planDev checks cfg and lays out the nodes with their server arguments;
// it starts nothing.
func planDev(cfg devConfig) (*devPlan, error) {
	n := cfg.nodes
	if n < 1 || n > 9 {
		return nil, fmt.Errorf("--nodes %d: want 1 to 9", n)
	}
	if cfg.mode == "" {
		cfg.mode = engine.ModeSingleLeader
	}
	if err := checkMode(cfg.mode); err != nil {
		return nil, err
	}
	sf, err := parseServerFlags(cfg.extra)
	if err != nil {
		return nil, err
	}
	p := &devPlan{}
	multi := cfg.mode == engine.ModeMultiLeader
	leaderless := cfg.mode == engine.ModeLeaderless
	if leaderless {
		if cfg.syncPolicy != "" {
			p.notes = append(p.notes, "--sync is ignored with --mode leaderless: W and R are chosen per request (REPLICANT.QUORUM)")
		}
	} else if multi {
		// The nodes read the same flags and environment.
		sec, err := resolveSecrets(sf, os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("--server-flag: %w", err)
		}
		p.password = sec.requirePass
		if cfg.syncPolicy != "" {
			p.notes = append(p.notes, "--sync is ignored with --mode multi-leader: each site is one node, with no follower to acknowledge")
		}
	} else {
		p.syncPolicy = cfg.syncPolicy
		if p.syncPolicy == "" {
			p.syncPolicy = "async"
			if n > 1 {
				// The list names every member, the leader included (which
				// never counts itself), so the policy keeps a synchronous
				// follower after any failover.
				p.syncPolicy = "FIRST 1 (*)"
			}
		}
	}
	for i := 1; i <= n; i++ {
		d := &devNode{
			id:   fmt.Sprintf("n%d", i),
			resp: fmt.Sprintf("127.0.0.1:%d", cfg.respBase+i),
			http: fmt.Sprintf("127.0.0.1:%d", cfg.httpBase+i),
			peer: fmt.Sprintf("127.0.0.1:%d", cfg.peerBase+i),
			tail: &tailWriter{max: 200},
		}
		dir := d.id
		if multi {
			d.site = devSiteName(i)
			// A node records its mode in its data directory and refuses
			// another; naming the site keeps a multi-leader run from
			// reusing a single-leader run's n1 (and says which site the
			// directory holds).
			dir = d.id + "-" + d.site
		}
		if leaderless {
			dir = d.id + "-leaderless" // not a single-leader run's n1 (a node keeps its mode)
		}
		d.data = filepath.Join(cfg.data, dir)
		d.logPath = filepath.Join(cfg.data, dir+".log")
		p.nodes = append(p.nodes, d)
	}
	var initial []string
	for _, d := range p.nodes {
		initial = append(initial, d.id+"="+d.peer)
	}
	for _, d := range p.nodes {
		d.args = []string{"server", "--id", d.id, "--data", d.data, "--resp", d.resp, "--http", d.http, "--peer", d.peer}
		switch {
		case multi:
			// No --initial-cluster: each site is a one-node cluster.
			d.args = append(d.args, "--mode", cfg.mode, "--site", d.site)
		case leaderless:
			// One control plane for the ring's membership; no leader.
			d.args = append(d.args, "--initial-cluster", strings.Join(initial, ","), "--mode", cfg.mode)
		default:
			d.args = append(d.args, "--initial-cluster", strings.Join(initial, ","), "--sync", p.syncPolicy)
		}
		d.args = append(d.args, cfg.extra...)
	}
	return p, nil
}

// parseServerFlags parses dev's --server-flag values as the server will,
// so that a mistake is reported before anything starts and dev learns the
// password the nodes require. The mode and the sites are dev's to set.
func parseServerFlags(extra []string) (serverFlags, error) {
	var f serverFlags
	cmd := &cobra.Command{Use: "server"}
	f.register(cmd)
	fl := cmd.Flags()
	if err := fl.Parse(extra); err != nil {
		return f, fmt.Errorf("--server-flag: %w", err)
	}
	for _, name := range []string{"mode", "site"} {
		if fl.Changed(name) {
			return f, fmt.Errorf("--server-flag --%s: dev sets --%s itself; use dev's --mode", name, name)
		}
	}
	// dev checks and links its nodes over plaintext HTTP; a TLS cluster
	// is started with `replicant server` (docs/security.md).
	for _, name := range []string{"tls-cert", "tls-key", "tls-ca", "tls-auth-clients"} {
		if fl.Changed(name) {
			return f, fmt.Errorf("--server-flag --%s: dev runs its nodes without TLS; start a TLS cluster with `replicant server` (see docs/security.md)", name)
		}
	}
	return f, nil
}

func runDev(ctx context.Context, cfg devConfig) error {
	plan, err := planDev(cfg)
	if err != nil {
		return err
	}
	ns := plan.nodes
	multi := cfg.mode == engine.ModeMultiLeader
	// Several goroutines report on the nodes; one line at a time.
	out := &lockedWriter{w: cfg.out}
	for _, note := range plan.notes {
		fmt.Fprintln(out, "note:", note)
	}
	// Before starting anything: a node that cannot listen dies with the
	// reason in its log only, and a port held by an earlier cluster's node
	// would even pass the health check below on that node's behalf.
	var ports []devPort
	for _, d := range ns {
		ports = append(ports, devPort{d.id, "RESP", d.resp}, devPort{d.id, "HTTP", d.http}, devPort{d.id, "peer", d.peer})
	}
	if err := checkPortsFree(ctx, ports); err != nil {
		return err
	}
	exe := cfg.exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find own binary: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.data, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", cfg.data, err)
	}
	stopAll := func() {
		for _, d := range ns {
			if d.cmd != nil && d.cmd.Process != nil {
				_ = d.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, d := range ns {
			if d.done == nil {
				continue
			}
			select {
			case <-d.done:
			case <-time.After(cfg.stopTimeout):
				_ = d.cmd.Process.Kill()
				<-d.done
			}
		}
	}
	for _, d := range ns {
		logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			stopAll()
			return fmt.Errorf("open %s: %w", d.logPath, err)
		}
		d.cmd = exec.Command(exe, d.args...)
		// The log file gets everything; the tail keeps the last lines to
		// say why the node exited. One writer for both streams keeps their
		// order (exec then copies them through one pipe).
		w := io.MultiWriter(logf, d.tail)
		d.cmd.Stdout, d.cmd.Stderr = w, w
		// Own process group: Ctrl-C in the terminal reaches dev only, which
		// then stops the nodes in order.
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := d.cmd.Start(); err != nil {
			logf.Close()
			stopAll()
			return fmt.Errorf("start %s: %w", d.id, err)
		}
		d.done = make(chan error, 1)
		go func(d *devNode, f *os.File) { d.done <- d.cmd.Wait(); f.Close() }(d, logf)
	}
	// Wait until every node answers /healthz (or one exits).
	deadline := time.Now().Add(cfg.startupTimeout)
	for _, d := range ns {
		for {
			if err := ping(ctx, d.http); err == nil {
				break
			}
			select {
			case err := <-d.done:
				d.done <- err
				stopAll()
				return errors.New(strings.TrimSuffix(describeExit(d, err, "during start-up", cfg.tailLinesOnReport), "\n"))
			default:
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				stopAll()
				return fmt.Errorf("%s did not become healthy; see %s", d.id, d.logPath)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if multi {
		if err := linkSites(ctx, ns, plan.password, cfg.linkTimeout); err != nil {
			stopAll()
			return err
		}
	}
	printDevNodes(out, ns, multi)
	switch {
	case multi:
		fmt.Fprintf(out, "\nSites: %s, each one node, linked all-to-all (%d links)\n", siteList(ns), len(ns)*(len(ns)-1))
	case cfg.mode == engine.ModeLeaderless:
		fmt.Fprintf(out, "\nLeaderless: %d nodes, every key on 3 of them (N=3); any node takes reads and writes.\n"+
			"Quorums per connection: redis-cli then REPLICANT.QUORUM 2 2 (W R; one|quorum|all|number)\n", len(ns))
	default:
		fmt.Fprintf(out, "\nCommit policy: %s (applies when the cluster is first created)\n", plan.syncPolicy)
	}
	fmt.Fprintf(out, "Dashboard: http://%s/\nTry:       redis-cli -p %s set hello world\n", ns[0].http, portOf(ns[0].resp))
	if len(ns) > 1 {
		where := "n2"
		if multi {
			where = ns[1].site + ", once the link has brought it"
		}
		fmt.Fprintf(out, "           redis-cli -p %s get hello        # read it on %s\n", portOf(ns[1].resp), where)
	}
	fmt.Fprintf(out, "           go run ./cmd/replicant status --addr %s\n", ns[0].http)
	if multi {
		fmt.Fprintf(out, "           go run ./cmd/replicant link list --addr %s\n", ns[0].http)
	}
	fmt.Fprintln(out, "Ctrl-C stops the cluster.")
	// A node that dies (say, killed to watch a failover) leaves the others
	// running; say why it died and how to bring it back.
	for _, d := range ns {
		go func(d *devNode) {
			err := <-d.done
			d.done <- err
			if ctx.Err() == nil {
				fmt.Fprintf(out, "\n%sThe others keep running. Restart it with:\n  %s %s\n",
					describeExit(d, err, "", cfg.tailLinesOnReport), shellQuote(exe), shellJoin(d.cmd.Args[1:]))
			}
		}(d)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping…")
	stopAll()
	return nil
}

// printDevNodes prints the node table; a multi-leader run adds the site.
func printDevNodes(w io.Writer, ns []*devNode, multi bool) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if multi {
		fmt.Fprintln(tw, "NODE\tSITE\tPID\tRESP\tHTTP\tPEER\tDATA\tLOG")
	} else {
		fmt.Fprintln(tw, "NODE\tPID\tRESP\tHTTP\tPEER\tDATA\tLOG")
	}
	for _, d := range ns {
		site := ""
		if multi {
			site = d.site + "\t"
		}
		fmt.Fprintf(tw, "%s\t%s%d\t%s\t%s\t%s\t%s\t%s\n", d.id, site, d.cmd.Process.Pid, d.resp, d.http, d.peer, d.data, d.logPath)
	}
	_ = tw.Flush()
}

func siteList(ns []*devNode) string {
	var sites []string
	for _, d := range ns {
		sites = append(sites, d.site)
	}
	return strings.Join(sites, ", ")
}

// linkSites links every site to every other through the HTTP API: on each
// node, one link from each other site (six for three sites).
func linkSites(ctx context.Context, ns []*devNode, password string, timeout time.Duration) error {
	for _, x := range ns {
		for _, y := range ns {
			if x == y {
				continue
			}
			if err := addLinkRetrying(ctx, x.http, y.peer, password, timeout); err != nil {
				return fmt.Errorf("link site %s to %s (POST http://%s/v1/links {\"peer\":%q}): %w; see %s",
					x.site, y.site, x.http, y.peer, err, x.logPath)
			}
		}
	}
	return nil
}

// addLinkRetrying adds a link on the node at httpAddr, retrying for up to
// timeout: a node answers /healthz before it leads its site, and until
// then a link change fails (no leader yet, 503) or cannot reach the other
// site's node. A refusal that retrying cannot change (a bad request, the
// wrong password, a node in another mode) ends it at once.
func addLinkRetrying(parent context.Context, httpAddr, peer, password string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	for {
		err := callNode(ctx, httpAddr, password, http.MethodPost, "/v1/links", map[string]string{"peer": peer}, nil)
		if err == nil {
			return nil
		}
		var se *client.StatusError
		if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 && se.Code != http.StatusRequestTimeout && se.Code != http.StatusTooManyRequests {
			return err
		}
		select {
		case <-ctx.Done():
			if perr := parent.Err(); perr != nil {
				return perr // Ctrl-C: not the link's fault
			}
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return port
}

// devPort is one address a dev node will listen on.
type devPort struct {
	node, name, addr string
}

// checkPortsFree reports every port that cannot be listened on, naming
// the node and listener it was meant for and, when something answers
// there, saying so (and which replicant node, if it is one).
func checkPortsFree(ctx context.Context, ports []devPort) error {
	var problems []string
	for _, p := range ports {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			ln.Close()
			continue
		}
		problems = append(problems, fmt.Sprintf("  %s (%s %s): %s", p.addr, p.node, p.name, portProblem(ctx, p, err)))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("cannot start the cluster, nothing was started:\n%s", strings.Join(problems, "\n"))
}

// portProblem explains why listening on p failed.
func portProblem(ctx context.Context, p devPort, listenErr error) string {
	if !errors.Is(listenErr, syscall.EADDRINUSE) {
		return listenErr.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		// Bound but not accepting (or not reachable from here): still
		// taken, nothing to name.
		return "port already in use"
	}
	conn.Close()
	if p.name == "HTTP" {
		if st, err := client.New(p.addr, client.Options{}).Status(ctx); err == nil && st.ID != "" {
			return fmt.Sprintf("port already in use: replicant node %s is listening there (an earlier `replicant dev` still running?)", st.ID)
		}
	}
	return fmt.Sprintf("port already in use: something else is listening there (`ss -ltnp 'sport = :%s'` shows which process)", portOf(p.addr))
}

// describeExit says that node d exited and why, as far as its output
// tells: the error line it printed last, then up to contextLines lines
// before it. when is "" or a phrase such as "during start-up". A node killed by a signal
// was stopped from outside, and its output cannot say why: only the
// signal is named then.
func describeExit(d *devNode, err error, when string, contextLines int) string {
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	head := d.id + " exited"
	if when != "" {
		head += " " + when
	}
	head += " (" + status + ")"
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return head + "\n"
		}
	}
	lines := d.tail.Lines()
	i := errorLine(lines)
	var b strings.Builder
	b.WriteString(head)
	if i >= 0 {
		b.WriteString(": ")
		// The node is this binary, which prefixes its error with
		// "Error:"; dev's own report must not say it twice.
		b.WriteString(strings.TrimPrefix(lines[i], "Error: "))
		lines = lines[:i]
	}
	lines = lines[max(0, len(lines)-contextLines):]
	if len(lines) > 0 {
		fmt.Fprintf(&b, "\nlast lines of its output (all of it in %s):\n", d.logPath)
		for _, l := range lines {
			b.WriteString("  | " + l + "\n")
		}
	} else {
		fmt.Fprintf(&b, "; its output is in %s\n", d.logPath)
	}
	return b.String()
}

// errorLine finds the line that says why a process ended: the last
// "Error:" line (replicant's own report), a Go panic or fatal error, or an
// ERROR log record; -1 if there is none.
func errorLine(lines []string) int {
	for _, prefixes := range [][]string{{"Error: "}, {"panic: ", "fatal error: "}} {
		for i := len(lines) - 1; i >= 0; i-- {
			for _, p := range prefixes {
				if strings.HasPrefix(lines[i], p) {
					return i
				}
			}
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "level=ERROR") || strings.Contains(lines[i], `"level":"ERROR"`) {
			return i
		}
	}
	return -1
}

// tailWriter keeps the last max lines written to it.
type tailWriter struct {
	max     int
	mu      sync.Mutex
	lines   []string
	partial []byte
}

// maxPartial bounds a line without a newline yet; its end is kept.
const maxPartial = 4096

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.partial = append(t.partial, p...)
			if len(t.partial) > maxPartial {
				t.partial = append(t.partial[:0], t.partial[len(t.partial)-maxPartial:]...)
			}
			break
		}
		line := string(t.partial) + string(p[:i])
		t.partial = t.partial[:0]
		p = p[i+1:]
		if len(t.lines) == t.max {
			// Shift rather than reslice, so the backing array does not
			// grow for as long as the node runs.
			copy(t.lines, t.lines[1:])
			t.lines = t.lines[:t.max-1]
		}
		t.lines = append(t.lines, line)
	}
	return n, nil
}

// Lines returns the kept lines, the unfinished last one included.
func (t *tailWriter) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	return out
}

// lockedWriter serialises writes from the goroutines that report on nodes.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// shellJoin renders args so that a shell reads them back unchanged.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
