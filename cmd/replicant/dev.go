package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type devNode struct {
	id, resp, http, peer, data, logPath string
	cmd                                 *exec.Cmd
	done                                chan error
}

func newDevCmd() *cobra.Command {
	var nodes int
	var data, syncPolicy string
	var extra []string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Start a local cluster of real replicant server processes",
		Long: `dev starts --nodes replicant server processes on this machine: node i (n1, n2, ...)
listens on RESP 127.0.0.1:638i, HTTP 127.0.0.1:808i and peer 127.0.0.1:908i.
Ctrl-C stops them all. Data is kept in --data, so a second run resumes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), nodes, data, syncPolicy, extra)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of nodes (1-9)")
	cmd.Flags().StringVar(&syncPolicy, "sync", "", "commit policy (default 'FIRST 1 (n2,…,nN)': n2 synchronous, the others asynchronous)")
	cmd.Flags().StringVar(&data, "data", ".replicant-dev", "directory holding one data directory per node")
	cmd.Flags().StringArrayVar(&extra, "server-flag", nil, "extra flag passed to every server, e.g. --server-flag=--requirepass=s3cret")
	return cmd
}

func runDev(ctx context.Context, n int, data, syncPolicy string, extra []string) error {
	if n < 1 || n > 9 {
		return fmt.Errorf("--nodes %d: want 1 to 9", n)
	}
	if syncPolicy == "" {
		syncPolicy = "async"
		if n > 1 {
			var ids []string
			for i := 2; i <= n; i++ {
				ids = append(ids, fmt.Sprintf("n%d", i))
			}
			syncPolicy = "FIRST 1 (" + strings.Join(ids, ",") + ")"
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", data, err)
	}
	var ns []*devNode
	for i := 1; i <= n; i++ {
		d := &devNode{
			id:   fmt.Sprintf("n%d", i),
			resp: fmt.Sprintf("127.0.0.1:%d", 6380+i),
			http: fmt.Sprintf("127.0.0.1:%d", 8080+i),
			peer: fmt.Sprintf("127.0.0.1:%d", 9080+i),
		}
		d.data = filepath.Join(data, d.id)
		d.logPath = filepath.Join(data, d.id+".log")
		ns = append(ns, d)
	}
	var initial []string
	for _, d := range ns {
		initial = append(initial, d.id+"="+d.peer)
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
			case <-time.After(10 * time.Second):
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
		args := []string{"server", "--id", d.id, "--data", d.data, "--resp", d.resp, "--http", d.http, "--peer", d.peer,
			"--initial-cluster", strings.Join(initial, ","), "--sync", syncPolicy}
		args = append(args, extra...)
		d.cmd = exec.Command(exe, args...)
		d.cmd.Stdout, d.cmd.Stderr = logf, logf
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
	deadline := time.Now().Add(15 * time.Second)
	for _, d := range ns {
		for {
			if err := ping(ctx, d.http); err == nil {
				break
			}
			select {
			case err := <-d.done:
				d.done <- err
				stopAll()
				return fmt.Errorf("%s exited during start-up (%v); see %s", d.id, err, d.logPath)
			default:
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				stopAll()
				return fmt.Errorf("%s did not become healthy; see %s", d.id, d.logPath)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPID\tRESP\tHTTP\tPEER\tDATA\tLOG")
	for _, d := range ns {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.id, d.cmd.Process.Pid, d.resp, d.http, d.peer, d.data, d.logPath)
	}
	_ = tw.Flush()
	fmt.Printf("\nCommit policy: %s (applies when the cluster is first created)\n", syncPolicy)
	fmt.Printf("Dashboard: http://%s/\nTry:       redis-cli -p %s set hello world\n", ns[0].http, strings.TrimPrefix(ns[0].resp, "127.0.0.1:"))
	if n > 1 {
		fmt.Printf("           redis-cli -p %s get hello        # read it on n2\n", strings.TrimPrefix(ns[1].resp, "127.0.0.1:"))
	}
	fmt.Printf("           go run ./cmd/replicant status --addr %s\nCtrl-C stops the cluster.\n", ns[0].http)
	// A node that dies (say, killed to watch a failover) leaves the others
	// running; say how to bring it back.
	for _, d := range ns {
		go func(d *devNode) {
			err := <-d.done
			d.done <- err
			if ctx.Err() == nil {
				fmt.Printf("\n%s exited (%v); the others keep running. Restart it with:\n  %s %s\n",
					d.id, err, shellQuote(exe), shellJoin(d.cmd.Args[1:]))
			}
		}(d)
	}
	<-ctx.Done()
	fmt.Println("\nstopping…")
	stopAll()
	return nil
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
