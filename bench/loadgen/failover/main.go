// Command failover measures how fast a 3-node replicant cluster recovers
// from the loss of its leader, and whether it fails over when nothing failed.
//
//	failover -bin bin/replicant -rounds 20 -clients 16 -soak 10m -soak-clients 64
//
// It starts three real `replicant server` processes at their default timeouts
// and runs two phases:
//
//   - kill rounds: closed-loop writers write unique keys to whichever node
//     leads; each round sends SIGKILL to the leader and measures the time
//     from the signal to the first write acknowledged by another node (the
//     new leader), then restarts the killed node on its data directory and
//     waits until every node streams and has caught up;
//   - soak: a fresh cluster under full write load with no faults at all,
//     /v1/status of every node sampled every 500 ms; every epoch change is a
//     spurious failover.
//
// Progress goes to stderr; the summary (text, or JSON with -json) to stdout.
// Every process it started is killed on exit, also on Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

type config struct {
	bin          string
	rounds       int
	clients      int
	soak         time.Duration
	soakClients  int
	sync         string
	basePort     int
	jsonOut      bool
	keep         bool
	out          string
	valueSize    int
	roundTimeout time.Duration
	readyTimeout time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin/replicant", "path to the replicant binary")
	flag.IntVar(&c.rounds, "rounds", 20, "kill rounds (0 skips them)")
	flag.IntVar(&c.clients, "clients", 16, "closed-loop writers during the kill rounds")
	flag.DurationVar(&c.soak, "soak", 10*time.Minute, "duration of the no-fault full-load run (0 skips it)")
	flag.IntVar(&c.soakClients, "soak-clients", 64, "closed-loop writers during the soak")
	flag.StringVar(&c.sync, "sync", "FIRST 1 (*)", "commit policy (--sync) of the cluster")
	flag.IntVar(&c.basePort, "base-port", 17400, "node i listens on RESP base+i, HTTP base+10+i, peer base+20+i")
	flag.BoolVar(&c.jsonOut, "json", false, "print the results as JSON instead of text")
	flag.BoolVar(&c.keep, "keep", false, "keep the data directories and server logs")
	flag.StringVar(&c.out, "out", "", "also write the results as JSON to this file")
	flag.IntVar(&c.valueSize, "value-size", 64, "value size in bytes")
	flag.DurationVar(&c.roundTimeout, "round-timeout", 30*time.Second, "a round without a write acknowledged by a new leader this long after the kill counts as failed")
	flag.DurationVar(&c.readyTimeout, "ready-timeout", 2*time.Minute, "how long to wait for a (restarted) cluster to stream and catch up")
	flag.Parse()
	if c.rounds < 0 || c.clients < 1 || c.soakClients < 1 || c.soak < 0 || c.valueSize < 0 ||
		c.basePort < 1024 || c.basePort+23 > 65535 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "failover: need -rounds >= 0, -clients >= 1, -soak-clients >= 1, -soak >= 0, 1024 <= -base-port <= 65512, no arguments")
		os.Exit(2)
	}

	// go-redis logs every failed dial of its pools; against a killed leader
	// that is dozens of lines a round, all of them counted by kind in the
	// results already.
	redis.SetLogger(discardLogger{})

	// Ctrl-C and SIGTERM cancel the context; run's deferred cleanup then
	// stops the servers. The servers run in their own process group, so the
	// terminal's SIGINT does not reach them first and cleanup stays ours.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, c, os.Stderr)
	if res != nil {
		if werr := writeResults(c, res, os.Stdout); werr != nil {
			fmt.Fprintln(os.Stderr, "failover:", werr)
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = fmt.Errorf("interrupted; the results above are partial (%w)", err)
		}
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

func writeResults(c config, res *results, stdout io.Writer) error {
	if c.out != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return fmt.Errorf("encode results: %w", err)
		}
		if err := os.WriteFile(c.out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", c.out, err)
		}
	}
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("encode results: %w", err)
		}
		return nil
	}
	printSummary(stdout, res)
	return nil
}

// run performs both phases. It returns whatever results it has also when a
// phase fails, so that an interrupted run still reports its finished rounds.
func run(ctx context.Context, c config, logw io.Writer) (*results, error) {
	bin, err := filepath.Abs(c.bin)
	if err != nil {
		return nil, fmt.Errorf("resolve -bin: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("replicant binary: %w", err)
	}
	work, err := os.MkdirTemp("", "replicant-failover-")
	if err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	defer func() {
		if c.keep {
			logf("kept %s (data directories and server logs)", work)
			return
		}
		os.RemoveAll(work)
	}()

	res := &results{
		Sync: c.sync, ValueSize: c.valueSize, CPUs: runtime.NumCPU(),
		Started: time.Now().UTC().Format(time.RFC3339), LoadAvgStart: loadAvg(),
	}
	if c.rounds > 0 {
		kr, err := runKillRounds(ctx, c, bin, filepath.Join(work, "rounds"), logf)
		res.Kill = kr
		if err != nil {
			res.LoadAvgEnd = loadAvg()
			return res, fmt.Errorf("kill rounds: %w", err)
		}
	}
	if c.soak > 0 {
		sr, err := runSoak(ctx, c, bin, filepath.Join(work, "soak"), logf)
		res.Soak = sr
		if err != nil {
			res.LoadAvgEnd = loadAvg()
			return res, fmt.Errorf("soak: %w", err)
		}
	}
	res.LoadAvgEnd = loadAvg()
	return res, nil
}

// loadAvg is the machine's 1/5/15-minute load average: the machine these
// numbers come from is shared, so every result says how busy it was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// discardLogger drops go-redis's internal log lines.
type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// errNodeDied reports a server process that exited on its own.
var errNodeDied = errors.New("server process exited")
