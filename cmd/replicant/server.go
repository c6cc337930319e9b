package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/internal/api/budget"
	"github.com/replicant-db/replicant/internal/api/httpapi"
	"github.com/replicant-db/replicant/internal/api/resp"
	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/multileader"
	"github.com/replicant-db/replicant/internal/node"
)

type serverFlags struct {
	id, data            string
	mode, site          string
	replicas            int
	sloppyQuorum        bool
	readRepair          bool
	antiEntropyInterval time.Duration
	tombstoneGrace      time.Duration
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
	requirePassFile     string
	peerSecret          string
	peerSecretFile      string
	maxKey, maxValue    int
	logLevel, logFormat string
	readTimeout         time.Duration
	maxClients          int
	maxRequestBuffer    int64
	cacheSize           int64
	requestBufferWait   time.Duration
	idleTimeout         time.Duration
	authTimeout         time.Duration
	clientReadTimeout   time.Duration
	configFile          string
	// advertise* are the addresses other nodes and clients are given
	// (empty: derived from the listen address, see advertised).
	advertiseRESP, advertiseHTTP, advertisePeer string
	// loaded is what the environment and --config layers set (config.go).
	loaded configLoad
	tls    serverTLSFlags
	pprof  bool
}

func newServerCmd() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run one replicant node",
		Args:  cobra.NoArgs,
		Long: `Run one replicant node.

Every flag can also be set by an environment variable, REPLICANT_ and the
flag's name in upper case with '_' for '-' (--sync-timeout is
REPLICANT_SYNC_TIMEOUT), or by a "name = value" line in the --config file.
A flag on the command line wins over the environment, which wins over the
file (docs/deploy.md).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loaded, err := loadConfig(cmd.Flags(), os.Environ())
			if err != nil {
				return err
			}
			f.loaded = loaded
			return runServer(cmd.Context(), f)
		},
	}
	f.register(cmd)
	return cmd
}

// register defines the server's flags on cmd. dev parses its --server-flag
// values with them too, to learn the password its nodes require.
func (f *serverFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.id, "id", "n1", "node id, unique in the cluster")
	fl.StringVar(&f.mode, "mode", engine.ModeSingleLeader, "replication mode, chosen when the cluster is created: single-leader | multi-leader | leaderless")
	fl.IntVar(&f.replicas, "replicas", 3, "with --mode leaderless: N, how many nodes hold each key")
	fl.BoolVar(&f.readRepair, "read-repair", true, "with --mode leaderless: after a read, write the merged value to replicas that answered with less")
	fl.BoolVar(&f.sloppyQuorum, "sloppy-quorum", false, "with --mode leaderless: a write that cannot reach W replicas counts stand-ins that keep a hint (hinted handoff)")
	fl.DurationVar(&f.antiEntropyInterval, "anti-entropy-interval", 30*time.Second, "with --mode leaderless: how often each key range is compared with its other replicas")
	fl.DurationVar(&f.tombstoneGrace, "tombstone-grace", 10*time.Minute, "with --mode leaderless: how long a delete's tombstone is kept")
	fl.StringVar(&f.site, "site", "", "with --mode multi-leader: this node's site, e.g. eu (an ASCII letter first; no spaces, ',' or ':'); the nodes of one site share --initial-cluster")
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
	fl.DurationVar(&f.failoverTimeout, "failover-timeout", node.DefaultFailoverTimeout, "appoint a new leader when the leader's lease renewals stop this long (its lease is half of it)")
	fl.DurationVar(&f.applyDelay, "apply-delay", 0, "as a follower, apply entries only when they are this old (delayed replica)")
	fl.Uint64Var(&f.logRetention, "log-retention", 1_000_000, "log entries kept behind the newest; followers further behind get a snapshot")
	fl.StringVar(&f.requirePass, "requirepass", "", "require RESP AUTH / HTTP bearer token (visible in ps: prefer --requirepass-file or $"+envRequirePass+")")
	fl.StringVar(&f.requirePassFile, "requirepass-file", "", "read --requirepass from this file (one trailing newline is ignored)")
	fl.StringVar(&f.peerSecret, "peer-secret", "", "cluster secret every peer must present on the peer port (raft, log and snapshot streams, join); the same on every node; default: --requirepass (visible in ps: prefer --peer-secret-file or $"+envPeerSecret+")")
	fl.StringVar(&f.peerSecretFile, "peer-secret-file", "", "read --peer-secret from this file (one trailing newline is ignored)")
	fl.IntVar(&f.maxKey, "max-key-size", engine.DefaultMaxKeySize, "largest accepted key in bytes")
	fl.IntVar(&f.maxValue, "max-value-size", engine.DefaultMaxValueSize, "largest accepted value in bytes")
	fl.DurationVar(&f.readTimeout, "read-timeout", 5*time.Second, "how long a read waits for a token's LSN")
	fl.IntVar(&f.maxClients, "maxclients", resp.DefaultMaxClients, "client connections per API (RESP, HTTP); more are refused; 0: no limit")
	fl.Int64Var(&f.maxRequestBuffer, "max-request-buffer", budget.DefaultCapacity, "bytes of requests held in memory at once, shared by RESP and HTTP; 0: no limit")
	fl.Int64Var(&f.cacheSize, "cache-size", node.DefaultCacheBytes, "bytes of memory caching data: half for recently used keys' newest versions, half for storage blocks")
	fl.DurationVar(&f.requestBufferWait, "request-buffer-wait", budget.DefaultMaxWait, "how long a request waits for room in --max-request-buffer before it is refused (-OOM / 503); 0: refuse at once")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 0, "close RESP connections idle this long (Redis's timeout); 0: never")
	fl.DurationVar(&f.authTimeout, "auth-timeout", resp.DefaultAuthTimeout, "with --requirepass, close connections not authenticated this long; 0: never")
	fl.DurationVar(&f.clientReadTimeout, "client-read-timeout", resp.DefaultCommandTimeout, "a RESP command or HTTP body, once started, must arrive within this; 0: never")
	f.tls.register(fl)
	fl.BoolVar(&f.pprof, "pprof", false, "serve Go's profiler at /debug/pprof on the HTTP port (behind --requirepass when set)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug|info|warn|error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text|json")
	fl.StringVar(&f.configFile, configFlag, "", "read flags from `FILE`, one \"name = value\" line per flag (names without --); the command line and REPLICANT_* environment variables win over it")
	fl.StringVar(&f.advertiseRESP, "advertise-resp", "", "RESP address given to clients and other nodes (redirects, status); default --resp, or this host's name and --resp's port when --resp listens on every interface (containers)")
	fl.StringVar(&f.advertiseHTTP, "advertise-http", "", "HTTP address given to clients and other nodes (307 redirects, status); default as --advertise-resp")
	fl.StringVar(&f.advertisePeer, "advertise-peer", "", "peer address other nodes dial (sent on --join, used by a one-node cluster); default this node's --initial-cluster entry, else as --advertise-resp")
	// These two read $REPLICANT_REQUIREPASS / $REPLICANT_PEER_SECRET
	// themselves, refusing a second source (resolveSecrets).
	_ = fl.SetAnnotation("requirepass", ownEnvAnnotation, []string{envRequirePass})
	_ = fl.SetAnnotation("peer-secret", ownEnvAnnotation, []string{envPeerSecret})
}

func newLogger(level, format string) (*slog.Logger, error) {
	log, _, err := newGatedLogger(level, format)
	return log, err
}

// newGatedLogger is newLogger with a gate that can silence it (logGate).
func newGatedLogger(level, format string) (*slog.Logger, *logGate, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("invalid --log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return nil, nil, fmt.Errorf("invalid --log-format %q: want text or json", format)
	}
	gate := &logGate{}
	return slog.New(gatedHandler{h: h, gate: gate}), gate, nil
}

func runServer(ctx context.Context, f serverFlags) error {
	log, logs, err := newGatedLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if f.data == "" {
		f.data = "data/" + f.id
	}
	if f.maxKey <= 0 || f.maxValue <= 0 {
		return errors.New("--max-key-size and --max-value-size must be positive")
	}
	if f.cacheSize < node.MinCacheBytes {
		return fmt.Errorf("--cache-size must be at least %d bytes (%d MiB)", node.MinCacheBytes, node.MinCacheBytes>>20)
	}
	if f.mode == "" {
		f.mode = engine.ModeSingleLeader // as node.Config reads it
	}
	if err := checkModeSite(f.mode, f.site); err != nil {
		return err
	}
	initial, err := parseInitialCluster(f.initialCluster)
	if err != nil {
		return err
	}
	if f.join != "" && len(initial) > 0 {
		return errors.New("--join and --initial-cluster are exclusive: join a running cluster or bootstrap a new one")
	}
	for _, note := range f.loaded.notes {
		log.Warn(note)
	}
	for _, name := range sortedKeys(f.loaded.sources) {
		// Names and sources only: a value may be a secret.
		log.Info("flag set outside the command line", "flag", name, "from", f.loaded.sources[name])
	}
	sec, err := resolveSecrets(f, os.Getenv)
	if err != nil {
		return err
	}
	sec.logNotes(log)
	tlsCfg, err := f.tls.load(log)
	if err != nil {
		return err
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
	adv, err := advertiseAll(f, initial, respLn.Addr(), httpLn.Addr(), peerLn.Addr(), os.Hostname)
	if err != nil {
		closeAll()
		return err
	}
	for _, note := range adv.notes {
		log.Info(note)
	}
	// With TLS the peer port admits only holders of a certificate from
	// the CA, and the client ports do too with --tls-auth-clients yes.
	clientMTLS := tlsCfg != nil && tlsCfg.clientAuth == tls.RequireAndVerifyClientCert
	warnUnauthenticated(log, os.Stderr, sec, []listenerFlag{
		{"--resp", f.respAddr, respLn.Addr(), clientMTLS}, {"--http", f.httpAddr, httpLn.Addr(), clientMTLS},
		{"--peer", f.peerAddr, peerLn.Addr(), tlsCfg != nil}})
	if f.pprof && sec.requirePass == "" && !onlyLoopback(httpLn.Addr()) && !clientMTLS {
		log.Warn("--pprof without --requirepass on an HTTP port beyond loopback: anyone who reaches it can profile this node")
	}
	n, err := node.Open(node.Config{
		ID: f.id, DataDir: f.data, Mode: f.mode, Site: f.site, Replicas: f.replicas,
		SloppyQuorum: f.sloppyQuorum, NoReadRepair: !f.readRepair, AntiEntropyInterval: f.antiEntropyInterval, TombstoneGrace: f.tombstoneGrace,
		RESPAddr: adv.resp, HTTPAddr: adv.http, PeerAddr: adv.peer,
		PeerListener:   peerLn,
		InitialCluster: initial, Join: f.join,
		SyncPolicy: f.syncPolicy, Ack: f.ack, SyncFallback: f.fallback,
		SyncTimeout: f.syncTimeout, WriteTimeout: f.writeTimeout, ApplyDelay: f.applyDelay, CacheBytes: f.cacheSize,
		FailoverTimeout: f.failoverTimeout,
		LogRetention:    f.logRetention,
		MaxKeySize:      f.maxKey, MaxValueSize: f.maxValue,
		RequirePass: sec.requirePass, PeerSecret: sec.peerSecret, ReadTimeout: f.readTimeout,
		PeerServerTLS: tlsCfg.peerServer(), PeerClientTLS: tlsCfg.peerClient(),
		Logger: log,
	})
	if err != nil {
		closeAll()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One budget for the request bytes both APIs hold in memory.
	buf := budget.New(f.maxRequestBuffer, f.requestBufferWait)
	rs := resp.NewWithConfig(n.Engine(), log, resp.Config{MaxClients: noneIfZero(f.maxClients), IdleTimeout: f.idleTimeout,
		AuthTimeout: noneIfZero(f.authTimeout), CommandTimeout: noneIfZero(f.clientReadTimeout), Budget: buf,
		TLS: tlsCfg.clientPorts(), ConfigFile: f.configFile})
	hs := httpapi.NewWithConfig(n.Engine(), log, httpapi.Config{MaxConns: noneIfZero(f.maxClients),
		BodyTimeout: noneIfZero(f.clientReadTimeout), Budget: buf, TLS: tlsCfg.clientPorts(), Pprof: f.pprof})
	if err := tlsCfg.registerMetrics(n.Engine().Metrics().Registry); err != nil {
		_ = n.Close()
		closeAll()
		return err
	}
	go tlsCfg.reload(ctx)
	errc := make(chan error, 2)
	go func() { errc <- rs.Serve(ctx, respLn) }()
	go func() { errc <- hs.Serve(ctx, httpLn) }()
	build := currentBuild()
	log.Info("replicant ready", "id", f.id, "resp", respLn.Addr().String(), "http", httpLn.Addr().String(),
		"data", f.data, "version", build.Version, "commit", build.Commit, "tls", tlsCfg != nil)
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("server stopped", "err", runErr)
	case <-n.Store().Fatal():
		// Corrupt data, or a storage failure Pebble cannot go on from.
		// Closing the node would write (a final sync, Pebble's close) and
		// could wait on Pebble's stopped goroutine; everything acknowledged
		// is already durable. The error is the one line main prints,
		// and the last: the goroutines left running log no more.
		logs.mute()
		return n.Store().FatalErr()
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

// checkMode refuses a --mode this binary cannot run, naming the ones it can.
func checkMode(mode string) error {
	switch mode {
	case engine.ModeSingleLeader, engine.ModeMultiLeader, engine.ModeLeaderless:
		return nil
	}
	return fmt.Errorf("invalid --mode %q: want %s, %s or %s", mode, engine.ModeSingleLeader, engine.ModeMultiLeader, engine.ModeLeaderless)
}

// checkModeSite checks --mode and --site together: a multi-leader node
// must name its site, and a site means nothing in single-leader mode.
func checkModeSite(mode, site string) error {
	if err := checkMode(mode); err != nil {
		return err
	}
	switch {
	case mode == engine.ModeMultiLeader && site == "":
		return errors.New("--mode multi-leader needs --site NAME: the site (region) this node belongs to, e.g. --site eu")
	case mode != engine.ModeMultiLeader && site != "":
		return fmt.Errorf("--site is only for --mode multi-leader (this node runs %s)", mode)
	case mode == engine.ModeMultiLeader:
		return checkSiteName(site)
	}
	return nil
}

// checkSiteName applies the engine's rule for site names (an id a vector
// token can carry, starting with a letter so that "eu:12" never reads as
// EPOCH:LSN) before anything listens.
func checkSiteName(site string) error {
	if err := multileader.ValidSite(site); err != nil {
		return fmt.Errorf("invalid --site: %w", err)
	}
	return nil
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

// Environment variables a secret may come from instead of argv (which every
// local user can read in ps).
const (
	envRequirePass = "REPLICANT_REQUIREPASS"
	envPeerSecret  = "REPLICANT_PEER_SECRET"
)

// secrets are the server's resolved secrets and where they came from.
type secrets struct {
	requirePass, requirePassFrom string
	// peerSecret is what the peer port requires: --peer-secret, or
	// --requirepass when no peer secret is set (as before --peer-secret
	// existed, so existing clusters keep working).
	peerSecret, peerSecretFrom string
	notes                      []string // warnings found while reading them
}

// resolveSecrets reads --requirepass and --peer-secret from their flag,
// file or environment variable. Sources are looked at in that order, and
// at most one may be set for each secret: two at once (say a flag and a
// stale variable in the environment) is refused rather than one silently
// winning, as etcd refuses a flag that shadows its environment variable.
func resolveSecrets(f serverFlags, getenv func(string) string) (secrets, error) {
	var s secrets
	var err error
	s.requirePass, s.requirePassFrom, err = readSecret("--requirepass", f.loaded.from("requirepass"), f.requirePass, f.requirePassFile, envRequirePass, getenv, &s.notes)
	if err != nil {
		return s, err
	}
	s.peerSecret, s.peerSecretFrom, err = readSecret("--peer-secret", f.loaded.from("peer-secret"), f.peerSecret, f.peerSecretFile, envPeerSecret, getenv, &s.notes)
	if err != nil {
		return s, err
	}
	if s.peerSecret == "" && s.requirePass != "" {
		s.peerSecret, s.peerSecretFrom = s.requirePass, "--requirepass (no --peer-secret set)"
	}
	return s, nil
}

// readSecret returns the one secret set among flag value, file and
// environment variable (empty when none is), and a description of its
// source for the log (never the secret itself). valueFrom says where the
// flag's value was given (the command line or the --config file).
func readSecret(flag, valueFrom, value, file, env string, getenv func(string) string, notes *[]string) (string, string, error) {
	type source struct{ name, value string }
	var set []source
	if value != "" {
		set = append(set, source{valueFrom, value})
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", "", fmt.Errorf("%s-file: %w", flag, err)
		}
		// One trailing newline is what `echo secret > file` and most
		// editors leave; it is not part of the secret.
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", "", fmt.Errorf("%s-file %s is empty: refusing to run without the secret it was meant to hold", flag, file)
		}
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
			*notes = append(*notes, fmt.Sprintf("%s-file %s is readable by other users (mode %v); chmod 600 it", flag, file, fi.Mode().Perm()))
		}
		set = append(set, source{flag + "-file " + file, v})
	}
	if v := getenv(env); v != "" {
		set = append(set, source{"$" + env, v})
	}
	switch len(set) {
	case 0:
		return "", "", nil
	case 1:
		return set[0].value, set[0].name, nil
	}
	names := make([]string, len(set))
	for i, s := range set {
		names[i] = s.name
	}
	return "", "", fmt.Errorf("%s is set %d ways (%s): give it in exactly one of %s, %s-file or $%s",
		flag, len(set), strings.Join(names, ", "), flag, flag, env)
}

// logNotes logs where the secrets came from and what looked wrong.
func (s secrets) logNotes(log *slog.Logger) {
	for _, n := range s.notes {
		log.Warn(n)
	}
	if s.requirePassFrom != "" {
		log.Info("client password set", "from", s.requirePassFrom)
	}
	if s.peerSecretFrom != "" {
		log.Info("peer port requires the cluster secret", "from", s.peerSecretFrom)
	}
}

// warnUnauthenticated warns, in the log and as a plain line on stderr (seen
// even with --log-format json or --log-level error), about every port that
// listens beyond loopback without authentication: anyone who can reach it
// can read and write every key (RESP, HTTP) or, on the peer port, join the
// cluster, copy all data and pose as a follower.
func warnUnauthenticated(log *slog.Logger, stderr io.Writer, s secrets, lns []listenerFlag) {
	for _, ln := range lns {
		secret, need := s.requirePass, "--requirepass"
		risk := "anyone who reaches it can read and write every key"
		if ln.flag == "--peer" {
			secret, need = s.peerSecret, "--peer-secret"
			risk = "anyone who reaches it can join the cluster, copy all data and pose as a follower whose acknowledgements count"
		}
		if secret != "" || ln.mtls || onlyLoopback(ln.addr) {
			continue
		}
		// Name the address as given: a wildcard listener reports itself as
		// [::] even when the flag said 0.0.0.0.
		msg := fmt.Sprintf("%s %s listens beyond loopback without authentication: %s; set %s", ln.flag, ln.given, risk, need)
		log.Warn(msg)
		fmt.Fprintln(stderr, "replicant: WARNING: "+msg)
	}
}

// listenerFlag is a listener with the flag and address it was opened for.
type listenerFlag struct {
	flag, given string
	addr        net.Addr
	// mtls: only holders of a certificate from --tls-ca get through.
	mtls bool
}

// onlyLoopback reports whether a listener's address is reachable from this
// machine only. A wildcard address (0.0.0.0, ::) is not.
func onlyLoopback(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return false
}

// noneIfZero maps a flag's 0 ("no limit") to the API configs' negative
// value for "none" (their 0 means "the default").
func noneIfZero[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}
