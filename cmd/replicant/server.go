package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/internal/api/httpapi"
	"github.com/replicant-db/replicant/internal/api/resp"
	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/node"
)

type serverFlags struct {
	id, data            string
	respAddr, httpAddr  string
	peerAddr            string
	initialCluster      string
	join                string
	syncPolicy, ack     string
	fallback            string
	syncTimeout         time.Duration
	writeTimeout        time.Duration
	applyDelay          time.Duration
	failoverTimeout     time.Duration
	logRetention        uint64
	requirePass         string
	maxKey, maxValue    int
	logLevel, logFormat string
	readTimeout         time.Duration
}

func newServerCmd() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run one replicant node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.id, "id", "n1", "node id, unique in the cluster")
	fl.StringVar(&f.data, "data", "", "data directory (default ./data/<id>)")
	fl.StringVar(&f.respAddr, "resp", "127.0.0.1:6381", "Redis protocol listen address")
	fl.StringVar(&f.httpAddr, "http", "127.0.0.1:8081", "HTTP API listen address")
	fl.StringVar(&f.peerAddr, "peer", "127.0.0.1:9081", "node-to-node listen address")
	fl.StringVar(&f.initialCluster, "initial-cluster", "", "bootstrap a new cluster: id=peeraddr,... (same on every node; the first is the first leader); ignored on restart")
	fl.StringVar(&f.join, "join", "", "peer address of a running cluster to join as a follower (snapshot, then catch-up)")
	fl.StringVar(&f.syncPolicy, "sync", "async", "commit policy at bootstrap: async | all | 'FIRST k (n2,n3)' | 'ANY k (*)'")
	fl.StringVar(&f.ack, "ack", "durable", "what a sync follower acknowledges: received | durable | applied")
	fl.StringVar(&f.fallback, "sync-fallback", "block", "when too few sync followers are healthy: block | async")
	fl.DurationVar(&f.syncTimeout, "sync-timeout", 2*time.Second, "a sync follower silent or lagging this long is replaced")
	fl.DurationVar(&f.writeTimeout, "write-timeout", 10*time.Second, "how long a write waits for commit before failing")
	fl.DurationVar(&f.failoverTimeout, "failover-timeout", 5*time.Second, "appoint a new leader when the leader's lease renewals stop this long (its lease is half of it)")
	fl.DurationVar(&f.applyDelay, "apply-delay", 0, "as a follower, apply entries only when they are this old (delayed replica)")
	fl.Uint64Var(&f.logRetention, "log-retention", 1_000_000, "log entries kept behind the newest; followers further behind get a snapshot")
	fl.StringVar(&f.requirePass, "requirepass", "", "require RESP AUTH / HTTP bearer token")
	fl.IntVar(&f.maxKey, "max-key-size", node.DefaultMaxKeySize, "largest accepted key in bytes")
	fl.IntVar(&f.maxValue, "max-value-size", node.DefaultMaxValueSize, "largest accepted value in bytes")
	fl.DurationVar(&f.readTimeout, "read-timeout", 5*time.Second, "how long a read waits for a token's LSN")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug|info|warn|error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text|json")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: want text or json", format)
}

func runServer(ctx context.Context, f serverFlags) error {
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if f.data == "" {
		f.data = "data/" + f.id
	}
	if f.maxKey <= 0 || f.maxValue <= 0 {
		return errors.New("--max-key-size and --max-value-size must be positive")
	}
	initial, err := parseInitialCluster(f.initialCluster)
	if err != nil {
		return err
	}
	if f.join != "" && len(initial) > 0 {
		return errors.New("--join and --initial-cluster are exclusive: join a running cluster or bootstrap a new one")
	}
	// Listen before opening the store so a port clash fails fast and leaves
	// the data directory untouched.
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, a := range []struct{ flag, addr string }{{"--resp", f.respAddr}, {"--http", f.httpAddr}, {"--peer", f.peerAddr}} {
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen %s: %w", a.flag, err)
		}
		lns = append(lns, ln)
	}
	respLn, httpLn, peerLn := lns[0], lns[1], lns[2]
	n, err := node.Open(node.Config{
		ID: f.id, DataDir: f.data,
		RESPAddr: respLn.Addr().String(), HTTPAddr: httpLn.Addr().String(), PeerAddr: peerLn.Addr().String(),
		PeerListener:   peerLn,
		InitialCluster: initial, Join: f.join,
		SyncPolicy: f.syncPolicy, Ack: f.ack, SyncFallback: f.fallback,
		SyncTimeout: f.syncTimeout, WriteTimeout: f.writeTimeout, ApplyDelay: f.applyDelay,
		FailoverTimeout: f.failoverTimeout,
		LogRetention:    f.logRetention,
		MaxKeySize:      f.maxKey, MaxValueSize: f.maxValue,
		RequirePass: f.requirePass, ReadTimeout: f.readTimeout,
		Logger: log,
	})
	if err != nil {
		closeAll()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rs := resp.New(n, log)
	hs := httpapi.New(n, log)
	errc := make(chan error, 2)
	go func() { errc <- rs.Serve(ctx, respLn) }()
	go func() { errc <- hs.Serve(ctx, httpLn) }()
	log.Info("replicant ready", "id", f.id, "resp", respLn.Addr().String(), "http", httpLn.Addr().String(),
		"data", f.data)
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("server stopped", "err", runErr)
	}
	cancel()
	for range 2 - boolToInt(runErr != nil) {
		if err := <-errc; err != nil && !strings.Contains(err.Error(), "closed") {
			log.Warn("listener", "err", err)
		}
	}
	if err := n.Close(); err != nil {
		return fmt.Errorf("close node: %w", err)
	}
	log.Info("stopped cleanly")
	return runErr
}

// parseInitialCluster parses id=peeraddr,id=peeraddr.
func parseInitialCluster(s string) ([]control.Member, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []control.Member
	seen := map[string]bool{}
	seenAddr := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(part, "=")
		// "n1 = host:port" means n1, not "n1 " (which would never match
		// --id and fail later with a confusing message).
		id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("invalid --initial-cluster entry %q: want id=host:port", strings.TrimSpace(part))
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("invalid --initial-cluster address %q for %s: %w", addr, id, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("--initial-cluster lists %s twice", id)
		}
		if other, dup := seenAddr[addr]; dup {
			return nil, fmt.Errorf("--initial-cluster gives %s and %s the same address %s", other, id, addr)
		}
		seen[id] = true
		seenAddr[addr] = id
		out = append(out, control.Member{ID: id, PeerAddr: addr})
	}
	return out, nil
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
