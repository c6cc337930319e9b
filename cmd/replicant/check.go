package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/internal/check"
	"github.com/replicant-db/replicant/internal/check/local"
	"github.com/replicant-db/replicant/internal/check/workload"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/leaderless"
)

type checkFlags struct {
	mode, syncPolicy, nemesis string
	nodes                     int
	duration                  time.Duration
	seed                      uint64
	data, history, html       string
	keep, jsonOut             bool
	extra                     []string
	against                   string
	w, r                      string
	replicas                  int
}

func newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Run a workload under faults on a local cluster and report what each promise really held",
		Long: `check starts its own local cluster of real replicant server processes (as dev
does, on free ports), runs concurrent clients against it — register writes and
linearizable reads, unique inserts, a counter, session reads and eventual reads
on followers — injects the --nemesis faults in rounds (a seeded schedule:
--seed repeats it), heals, reads the final state and checks the history:
acknowledged writes lost, linearizability of leader reads, read-your-writes and
monotonic reads of session reads, staleness of eventual reads, counters, and
how long each fault kept writes from being acknowledged. It prints a verdict per
promise of the chosen setup and exits 1 when a promised one was broken. The
history is saved (--history) for re-checking with 'check --recheck FILE'.

Nemeses: kill-leader, pause-leader, partition-leader, kill-follower,
pause-follower, partition-follower: SIGKILL, SIGSTOP, or cutting off the
network of the node that leads, or of another node, when the fault starts.
Partitions run every node in its own network namespace (root and iproute2).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if f.mode == engine.ModeLeaderless && !cmd.Flags().Changed("nodes") {
				f.nodes = 5 // as dev: five nodes, N=3
			}
			if f.mode != engine.ModeSingleLeader && !cmd.Flags().Changed("nemesis") {
				f.nemesis = "kill-node,pause-node,partition-node"
			}
			if f.against != "" {
				if cmd.Flags().Changed("nemesis") && f.nemesis != "none" {
					return errors.New("check: --against runs no faults (it does not control that cluster's processes): leave out --nemesis or pass --nemesis none")
				}
				for _, name := range []string{"sync", "nodes", "mode", "server-flag", "data", "keep"} {
					if cmd.Flags().Changed(name) {
						return fmt.Errorf("check: --%s describes a cluster check starts itself; with --against the cluster is yours", name)
					}
				}
				return runCheckAgainst(ctx, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return runCheck(ctx, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "mode", engine.ModeSingleLeader, "replication mode: single-leader | multi-leader (one-node sites eu, us, ap, … linked all-to-all) | leaderless")
	fl.StringVar(&f.w, "w", "quorum", "with --mode leaderless: W of every write (a number, one, quorum or all)")
	fl.StringVar(&f.r, "r", "quorum", "with --mode leaderless: R of every read")
	fl.IntVar(&f.replicas, "replicas", 3, "with --mode leaderless: N")
	fl.StringVar(&f.syncPolicy, "sync", "FIRST 1 (*)", "commit policy of the cluster, e.g. async, 'FIRST 1 (*)', 'ANY 1 (*)', all")
	fl.StringVar(&f.nemesis, "nemesis", "kill-leader,pause-leader,kill-follower", "faults to inject, comma-separated, or none")
	fl.IntVar(&f.nodes, "nodes", 3, "number of nodes")
	fl.DurationVar(&f.duration, "duration", time.Minute, "how long the workload runs")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the fault schedule and the clients (0: from the clock)")
	fl.StringVar(&f.data, "data", "", "directory for the nodes' data and the history (default: a temporary one, removed unless --keep)")
	fl.StringVar(&f.history, "history", "", "write the history here (default: DATA/history.json when --data or --keep is given)")
	fl.BoolVar(&f.keep, "keep", false, "keep the data directory")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fl.StringVar(&f.html, "html", "", "also write the report with a timeline of the run as an HTML page to this file")
	fl.StringArrayVar(&f.extra, "server-flag", nil, "extra flag passed to every server")
	fl.StringVar(&f.against, "against", "", "run the workload and checks (no faults) against a running cluster instead: HTTP addresses of one or more of its nodes, comma-separated")
	recheck := &cobra.Command{
		Use:   "recheck FILE",
		Short: "Check a saved history again and print the report",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fh, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer fh.Close()
			h, err := check.Load(fh)
			if err != nil {
				return err
			}
			rep := check.Analyze(h, time.Minute)
			if f.html != "" {
				if err := writeHTML(f.html, rep, h); err != nil {
					return err
				}
			}
			return printReport(rep, f.jsonOut, cmd.OutOrStdout())
		},
	}
	recheck.Flags().BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	recheck.Flags().StringVar(&f.html, "html", "", "also write the report as an HTML page to this file")
	cmd.AddCommand(recheck)
	return cmd
}

// errBroken makes the command exit 1 after printing the report.
var errBroken = errors.New("check: a promised guarantee was broken (see the verdicts above)")

func runCheck(ctx context.Context, f checkFlags, stdout, stderr io.Writer) error {
	leaderless := f.mode == engine.ModeLeaderless
	multi := f.mode == engine.ModeMultiLeader
	if f.mode != engine.ModeSingleLeader && !leaderless && !multi {
		return fmt.Errorf("check: --mode %q: want single-leader, multi-leader or leaderless", f.mode)
	}
	kinds, err := check.ParseNemeses(f.nemesis)
	if err != nil {
		return err
	}
	if leaderless || multi {
		for _, k := range kinds {
			if !strings.HasSuffix(k, "-node") {
				return fmt.Errorf("check: nemesis %s needs a leader; in %s mode use kill-node, pause-node, partition-node", k, f.mode)
			}
		}
	}
	var w, r int
	if leaderless {
		if w, err = quorumLevel("--w", f.w, f.replicas); err != nil {
			return err
		}
		if r, err = quorumLevel("--r", f.r, f.replicas); err != nil {
			return err
		}
	}
	partitions := false
	for _, k := range kinds {
		partitions = partitions || strings.HasPrefix(k, "partition-")
	}
	if partitions {
		// Without root, the whole run goes into a user namespace of its
		// own, where it may build the partition lab.
		if inCheckUserNS() {
			if err := prepareUserNS(); err != nil {
				return err
			}
		} else if os.Geteuid() != 0 {
			fmt.Fprintln(stderr, "check: not root: running in a user namespace of its own for the partition nemeses")
			return rerunInUserNS(stdout, stderr)
		}
	}
	if f.nodes < 1 || f.nodes > 9 {
		return fmt.Errorf("check: --nodes %d: want 1-9", f.nodes)
	}
	if f.duration < 10*time.Second {
		return fmt.Errorf("check: --duration %s: want at least 10s (faults need time to show)", f.duration)
	}
	if f.seed == 0 {
		f.seed = uint64(time.Now().UnixNano())
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("check: locating the replicant binary: %w", err)
	}
	dir := f.data
	if dir == "" {
		if dir, err = os.MkdirTemp("", "replicant-check-"); err != nil {
			return err
		}
		if !f.keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if f.history == "" && (f.data != "" || f.keep) {
		f.history = filepath.Join(dir, "history.json")
	}
	flags := append([]string{"--sync", f.syncPolicy, "--log-level", "info"}, f.extra...)
	if leaderless {
		flags = append([]string{"--mode", engine.ModeLeaderless, "--replicas", fmt.Sprint(f.replicas), "--log-level", "info"}, f.extra...)
	}
	var c *local.Cluster
	var lab *local.Lab
	if partitions {
		// Each node in its own network namespace, so that a partition
		// can cut it off.
		if lab, err = local.NewLab(f.nodes, func(format string, args ...any) { fmt.Fprintf(stderr, "check: "+format+"\n", args...) }); err != nil {
			return fmt.Errorf("check: the partition nemeses need a network-namespace lab: %w", err)
		}
		defer lab.Destroy() // after the nodes are killed (defers run last first)
	}
	var ports local.Ports
	switch {
	case multi:
		// One-node sites, linked all-to-all once they run.
		c = &local.Cluster{}
		for i := 1; i <= f.nodes; i++ {
			id := fmt.Sprintf("n%d", i)
			args := append([]string{"--mode", engine.ModeMultiLeader, "--site", devSiteName(i), "--log-level", "info"}, f.extra...)
			var nd *local.Node
			if lab != nil {
				nd = lab.NewNode(i, bin, filepath.Join(dir, id), args...)
			} else if nd, err = local.NewNode(&ports, bin, id, filepath.Join(dir, id), args...); err != nil {
				return err
			}
			c.Nodes = append(c.Nodes, nd)
		}
	case lab != nil:
		c, err = local.NewLabCluster(lab, bin, dir, f.nodes, flags...)
	default:
		c, err = local.NewCluster(&ports, bin, dir, f.nodes, flags...)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stderr, "check: starting %d nodes in %s (seed %d)\n", f.nodes, dir, f.seed)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = c.Start(sctx)
	switch {
	case err != nil:
	case multi:
		err = linkCheckSites(sctx, c)
	case !leaderless:
		_, _, err = c.WaitLeader(sctx)
	}
	cancel()
	if err != nil {
		for _, nd := range c.Nodes {
			fmt.Fprintf(stderr, "--- log of %s ---\n%s", nd.ID, nd.Log.String())
		}
		return fmt.Errorf("check: starting the cluster: %w", err)
	}
	fmt.Fprintf(stderr, "check: running %s with faults %v\n", f.duration, kinds)
	setup := map[string]string{"mode": f.mode, "sync": f.syncPolicy, "nodes": fmt.Sprint(f.nodes),
		"nemesis": strings.Join(kinds, ","), "duration": f.duration.String(), "seed": fmt.Sprint(f.seed)}
	if leaderless {
		delete(setup, "sync")
		setup["n"], setup["w"], setup["r"] = fmt.Sprint(f.replicas), fmt.Sprint(w), fmt.Sprint(r)
	}
	if multi {
		delete(setup, "sync")
	}
	h, runErr := workload.Run(ctx, workload.Config{Cluster: c, Lab: lab, Duration: f.duration, Nemeses: kinds, Seed: f.seed,
		Progress: stderr, Setup: setup, Prefix: fmt.Sprintf("check:%d:", f.seed),
		Leaderless: leaderless, W: fmt.Sprint(w), R: fmt.Sprint(r), N: f.replicas, MultiLeader: multi})
	return finishCheck(f, h, runErr, stdout, stderr)
}

// runCheckAgainst runs the workload, without faults, on a cluster the
// user runs; its keys all start with check:SEED:.
func runCheckAgainst(ctx context.Context, f checkFlags, stdout, stderr io.Writer) error {
	if f.seed == 0 {
		f.seed = uint64(time.Now().UnixNano())
	}
	if f.duration < time.Second {
		return fmt.Errorf("check: --duration %s: want at least 1s", f.duration)
	}
	c, err := local.Discover(ctx, strings.Split(f.against, ","))
	if err != nil {
		return fmt.Errorf("check: --against: %w", err)
	}
	st, err := c.Nodes[0].Status(ctx)
	if err != nil {
		return fmt.Errorf("check: --against: %w", err)
	}
	if st.Mode != "" && st.Mode != engine.ModeSingleLeader {
		return fmt.Errorf("check: --against a %s cluster is not checked yet; only single-leader clusters are", st.Mode)
	}
	prefix := fmt.Sprintf("check:%d:", f.seed)
	fmt.Fprintf(stderr, "check: %d nodes found; running %s without faults; keys start with %s\n", len(c.Nodes), f.duration, prefix)
	setup := map[string]string{"mode": engine.ModeSingleLeader, "sync": st.SyncPolicy, "nodes": fmt.Sprint(len(c.Nodes)),
		"nemesis": "none", "duration": f.duration.String(), "seed": fmt.Sprint(f.seed), "against": f.against}
	h, runErr := workload.Run(ctx, workload.Config{Cluster: c, Duration: f.duration, Seed: f.seed,
		Progress: stderr, Setup: setup, Prefix: prefix})
	return finishCheck(f, h, runErr, stdout, stderr)
}

// finishCheck saves the history, checks it and prints the report.
func finishCheck(f checkFlags, h *check.History, runErr error, stdout, stderr io.Writer) error {
	if h != nil && f.history != "" {
		if err := saveHistory(f.history, h); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "check: history saved to %s\n", f.history)
	}
	if runErr != nil {
		return fmt.Errorf("check: %w", runErr)
	}
	rep := check.Analyze(h, time.Minute)
	if f.html != "" {
		if err := writeHTML(f.html, rep, h); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "check: report page written to %s\n", f.html)
	}
	if err := printReport(rep, f.jsonOut, stdout); err != nil {
		return err
	}
	if !rep.Passed() {
		return errBroken
	}
	return nil
}

// linkCheckSites links every site of c to every other (as dev does).
func linkCheckSites(ctx context.Context, c *local.Cluster) error {
	for _, x := range c.Nodes {
		for _, y := range c.Nodes {
			if x == y {
				continue
			}
			if err := addLinkRetrying(ctx, x.HTTP, y.Peer, "", 30*time.Second); err != nil {
				return fmt.Errorf("link %s to %s: %w", x.ID, y.ID, err)
			}
		}
	}
	return nil
}

// quorumLevel parses --w or --r for n replicas, as the server does.
func quorumLevel(flag, v string, n int) (int, error) {
	x, err := leaderless.ParseLevel(v, n)
	if err != nil {
		return 0, fmt.Errorf("check: %s: %w", flag, err)
	}
	return x, nil
}

func saveHistory(path string, h *check.History) error {
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if err := h.Save(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func writeHTML(path string, rep check.Report, h *check.History) error {
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if err := rep.WriteHTML(fh, h); err != nil {
		fh.Close()
		return fmt.Errorf("check: %s: %w", path, err)
	}
	return fh.Close()
}

func printReport(rep check.Report, asJSON bool, w io.Writer) error {
	if asJSON {
		return rep.WriteJSON(w)
	}
	return rep.WriteText(w)
}
