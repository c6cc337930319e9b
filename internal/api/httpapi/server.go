package httpapi

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/replicant-db/replicant/internal/engine"
)

// Header names of the Contract.
const (
	HeaderToken       = "Replicant-Token"
	HeaderConsistency = "Replicant-Consistency"
)

//go:embed dashboard.html
var dashboardHTML []byte

// Server is the HTTP API of one node.
type Server struct {
	b   engine.Engine
	cfg Config
	log *slog.Logger
	srv *http.Server
	// mon keeps the timeline and chart samples (events.go); relay asks
	// the leader for its view (dashboard.go).
	mon   *monitor
	relay *http.Client
}

// New builds the handler tree with the default Config.
func New(b engine.Engine, log *slog.Logger) *Server { return NewWithConfig(b, log, Config{}) }

// NewWithConfig builds the handler tree with the limits of cfg.
func NewWithConfig(b engine.Engine, log *slog.Logger, cfg Config) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{b: b, cfg: cfg.withDefaults(), log: log, mon: newMonitor(b.Status),
		// Peers are dialled directly: an HTTP_PROXY meant for clients
		// must not sit between members.
		relay: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.auth(s.status))
	// The dashboard's data (dashboard.go): the leader's view relayed,
	// readable by the other members' dashboard pages (CORS).
	mux.HandleFunc("GET /v1/cluster", s.withCORS(s.auth(s.cluster)))
	mux.HandleFunc("OPTIONS /v1/cluster", s.withCORS(nil))
	mux.HandleFunc("GET /v1/history", s.auth(s.history))
	mux.HandleFunc("GET /dashboard.js", s.dashboardScript)
	mux.HandleFunc("GET /v1/config", s.auth(s.getConfig))
	mux.HandleFunc("PUT /v1/config", s.auth(s.putConfig))
	mux.HandleFunc("DELETE /v1/members/{id}", s.auth(s.removeMember))
	mux.HandleFunc("POST /v1/failover", s.auth(s.failover))
	mux.HandleFunc("GET /v1/backup", s.auth(s.backup)) // backup.go
	// Multi-leader mode (links.go); other modes answer 409.
	mux.HandleFunc("GET /v1/links", s.auth(s.listLinks))
	mux.HandleFunc("POST /v1/links", s.auth(s.addLink))
	mux.HandleFunc("DELETE /v1/links/{site}", s.auth(s.removeLink))
	mux.HandleFunc("GET /v1/conflicts", s.auth(s.conflicts))
	// Profiling, as Go services usually offer it, only when asked for
	// (--pprof) and behind --requirepass when one is set.
	if s.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", s.auth(pprof.Index))
		mux.HandleFunc("GET /debug/pprof/profile", s.auth(pprof.Profile))
		mux.HandleFunc("GET /debug/pprof/trace", s.auth(pprof.Trace))
		mux.HandleFunc("GET /debug/pprof/symbol", s.auth(pprof.Symbol))
	}
	mux.Handle("GET /metrics", s.authH(promhttp.HandlerFor(b.Metrics().Registry, promhttp.HandlerOpts{})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s.setToken(w, b.Token())
		fmt.Fprintln(w, "ok")
	})
	// Load balancer checks (health.go): 200 only on the leader, or only on
	// a replica within ?max_lag=; no password, as /healthz.
	mux.HandleFunc("GET /v1/health/leader", s.health(checkLeader))
	mux.HandleFunc("GET /v1/health/replica", s.health(checkReplica))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		s.setToken(w, b.Token())
		if err := b.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.setToken(w, b.Token())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(dashboardHTML)
	})
	// No ReadTimeout: bodies get theirs in readBody (see BodyTimeout).
	s.srv = &http.Server{
		Handler:           s.withToken(mux),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnState:         s.countConns(),
	}
	return s
}

// Handler returns the root handler (for tests).
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Serve serves on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.MaxConns > 0 {
		ln = &limitListener{Listener: ln, max: int64(s.cfg.MaxConns)}
	}
	if s.cfg.TLS != nil {
		// Outside the limit, so that net/http sees a *tls.Conn (it runs
		// the handshake under ReadHeaderTimeout and sets r.TLS), and
		// offering only HTTP/1.1, whose deadlines readBody relies on.
		cfg := s.cfg.TLS.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(ln, cfg)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	// The monitor reads the engine's status: it stops before Serve
	// returns, so the caller may close the engine then.
	mctx, stopMonitor := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() { defer close(monDone); s.mon.run(mctx) }()
	defer func() { stopMonitor(); <-monDone; s.relay.CloseIdleConnections() }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
	<-errc
	return nil
}

// withToken makes sure every response carries Replicant-Token, even errors
// produced outside the handlers (404, 405): handlers that know better set it
// first.
func (s *Server) withToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderToken, s.b.Token().String())
		if strings.HasPrefix(r.URL.Path, kvPrefix) {
			// Keys are routed here, not by the mux: it cleans paths
			// ("a//b", "a/../b") and would redirect to another key.
			s.kv(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

const kvPrefix = "/v1/kv/"

// kvKey is the key a /v1/kv/ request names: the rest of the unescaped path,
// byte for byte.
func kvKey(r *http.Request) []byte { return []byte(strings.TrimPrefix(r.URL.Path, kvPrefix)) }

func (s *Server) kv(w http.ResponseWriter, r *http.Request) {
	r = withQuorumHeaders(r)
	if engine.IsReserved(kvKey(r)) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("keys starting with %q are reserved for replicant's own records", engine.ReservedPrefix))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.auth(s.getKey)(w, r)
	case http.MethodPut:
		s.auth(s.putKey)(w, r)
	case http.MethodDelete:
		s.auth(s.deleteKey)(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed on %s", r.Method, kvPrefix))
	}
}

func (s *Server) authH(h http.Handler) http.Handler { return s.auth(h.ServeHTTP) }

// withQuorumHeaders carries a leaderless request's Replicant-W,
// Replicant-R and Replicant-Context headers into its context (other modes
// ignore them).
func withQuorumHeaders(r *http.Request) *http.Request {
	q := engine.QuorumSetting{W: r.Header.Get("Replicant-W"), R: r.Header.Get("Replicant-R")}
	c, hasCtx := r.Header["Replicant-Context"]
	if q == (engine.QuorumSetting{}) && !hasCtx {
		return r
	}
	ctx := r.Context()
	if q != (engine.QuorumSetting{}) {
		ctx = engine.WithQuorum(ctx, q)
	}
	if hasCtx && len(c) > 0 {
		ctx = engine.WithCausalContext(ctx, c[0])
	}
	return r.WithContext(ctx)
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if pass := s.b.Settings().RequirePass; pass != "" {
			scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			ok = ok && strings.EqualFold(scheme, "Bearer")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(pass)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="replicant"`)
				writeError(w, http.StatusUnauthorized, errors.New("authentication required: send Authorization: Bearer <password>"))
				return
			}
		}
		h(w, r)
	}
}

func (s *Server) setToken(w http.ResponseWriter, t engine.Token) {
	w.Header().Set(HeaderToken, t.String())
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (s *Server) record(cmd string, start time.Time, err error) {
	m := s.b.Metrics()
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.Ops.WithLabelValues("http", cmd, result).Inc()
	m.OpLatency.WithLabelValues("http", cmd).Observe(time.Since(start).Seconds())
}

// writeFloor carries a write's Replicant-Token into its context: in
// multi-leader mode the site first applies what the token covers
// (engine.WithWriteFloor).
func writeFloor(r *http.Request) (context.Context, error) {
	t := r.Header.Get(HeaderToken)
	if t == "" {
		return r.Context(), nil
	}
	floor, err := engine.ParseToken(t)
	if err != nil {
		return nil, err
	}
	return engine.WithWriteFloor(r.Context(), floor), nil
}

// readParams parses the consistency and token headers.
func readParams(r *http.Request) (engine.Consistency, engine.Token, error) {
	c, err := engine.ParseConsistency(r.Header.Get(HeaderConsistency))
	if err != nil {
		return c, engine.Token{}, err
	}
	var floor engine.Token
	if t := r.Header.Get(HeaderToken); t != "" {
		if floor, err = engine.ParseToken(t); err != nil {
			return c, floor, err
		}
	}
	return c, floor, nil
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key := kvKey(r)
	c, floor, err := readParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if sr, ok := s.b.(engine.SiblingReader); ok {
		// Leaderless: concurrent writes are siblings. More than one
		// answers 300 Multiple Choices with all of them and the context
		// a write resolving them sends back (Replicant-Context).
		causal, vals, err := sr.Siblings(r.Context(), key)
		if err != nil {
			s.record("get", start, err)
			s.writeOpError(w, r, err)
			return
		}
		w.Header().Set("Replicant-Context", causal)
		if len(vals) > 1 {
			s.record("get", start, nil)
			sibs := make([]string, len(vals))
			for i, v := range vals {
				sibs[i] = string(v)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMultipleChoices)
			_ = json.NewEncoder(w).Encode(map[string]any{"context": causal, "siblings": sibs})
			return
		}
	}
	rd, err := s.b.Read(r.Context(), c, floor)
	if err != nil {
		s.record("get", start, err)
		s.writeOpError(w, r, err)
		return
	}
	s.setToken(w, rd.Token())
	v, ok, err := rd.Get(key)
	s.record("get", start, err)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("key %q not found", key))
		return
	}
	if v.Type != engine.TypeString {
		// A collection has no single value to send: 409, as a Redis GET
		// answers WRONGTYPE.
		writeError(w, http.StatusConflict, fmt.Errorf("WRONGTYPE key %q holds a %s; read it with the Redis API", key, v.Type))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Replicant-Version-Lsn", fmt.Sprint(v.LSN))
	if v.ExpireAt != 0 {
		w.Header().Set("Replicant-Expire-At", time.UnixMilli(v.ExpireAt).UTC().Format(time.RFC3339Nano))
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(v.Value)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(v.Value)
}

func (s *Server) putKey(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key := kvKey(r)
	if err := s.b.CheckKey(key); err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, err)
		return
	}
	var ttl time.Duration
	if q := r.URL.Query().Get("ttl"); q != "" {
		d, err := time.ParseDuration(q)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("invalid ttl %q: want a positive duration such as 30s", q))
			return
		}
		ttl = d
	}
	if r.ContentLength > 0 {
		if err := s.b.CheckValue(int(min(r.ContentLength, 1<<40))); err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, err)
			return
		}
	}
	limit := int64(s.b.Settings().MaxValueSize)
	body, release, code, err := s.readBody(w, r, limit)
	defer release()
	if err != nil {
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		if errors.Is(err, errBodyTooLarge) {
			err = fmt.Errorf("value too large (more than max %d bytes)", limit)
		}
		writeError(w, code, err)
		return
	}
	if err := s.b.CheckValue(len(body)); err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("value too large (more than max %d bytes)", limit))
		return
	}
	ctx, err := writeFloor(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	tok, err := s.b.Write(ctx, func(tx engine.Txn) error {
		var exp int64
		if ttl > 0 {
			exp = tx.NowMs() + ttl.Milliseconds()
		}
		tx.Set(key, body, exp)
		return nil
	})
	s.record("put", start, err)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.setToken(w, tok)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key := kvKey(r)
	existed := false
	ctx, err := writeFloor(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	tok, err := s.b.Write(ctx, func(tx engine.Txn) error {
		_, ok, err := tx.Get(key)
		if err != nil {
			return err
		}
		existed = ok
		if ok {
			tx.Del(key)
		}
		return nil
	})
	s.record("delete", start, err)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.setToken(w, tok)
	if !existed {
		writeError(w, http.StatusNotFound, fmt.Errorf("key %q not found", key))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) writeOpError(w http.ResponseWriter, r *http.Request, err error) {
	var nl *engine.NotLeaderError
	switch {
	case errors.As(err, &nl):
		if nl.LeaderHTTP == "" {
			writeError(w, http.StatusServiceUnavailable, err)
			return
		}
		// Every node of a cluster serves HTTPS or none does (--tls-cert
		// is set on all), so the leader speaks the scheme this node does.
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		u := url.URL{Scheme: scheme, Host: nl.LeaderHTTP, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
		w.Header().Set("Location", u.String())
		writeError(w, http.StatusTemporaryRedirect, err)
	case errors.Is(err, engine.ErrStale), errors.Is(err, engine.ErrSyncUnavailable), errors.Is(err, engine.ErrLeaseExpired),
		errors.Is(err, engine.ErrLoading), errors.Is(err, engine.ErrRemoved), errors.Is(err, engine.ErrNoQuorum):
		writeError(w, http.StatusServiceUnavailable, err)
	case errors.Is(err, engine.ErrLostWrite):
		writeError(w, http.StatusGone, err)
	case errors.Is(err, engine.ErrInvalid), errors.As(err, new(*engine.UnsupportedError)):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, err)
	default:
		var le *engine.LimitError
		if errors.As(err, &le) {
			writeError(w, http.StatusRequestEntityTooLarge, err)
			return
		}
		if errors.Is(err, engine.ErrDiskFull) {
			// WebDAV's code for "the server cannot store this": clients and
			// proxies tell it from a crash (500), and it is retryable.
			writeError(w, http.StatusInsufficientStorage, err)
			return
		}
		writeError(w, http.StatusInternalServerError, err)
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.statusDoc()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}

// ClusterConfig is the run-time configurable replication policy.
type ClusterConfig struct {
	Sync     string `json:"sync,omitempty"`
	Ack      string `json:"ack,omitempty"`
	Fallback string `json:"sync_fallback,omitempty"`
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	st := s.b.Status()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ClusterConfig{Sync: st.SyncPolicy, Ack: st.Ack, Fallback: st.Fallback})
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	var c ClusterConfig
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("invalid config JSON: %w", err))
		return
	}
	if c.Sync == "" && c.Ack == "" && c.Fallback == "" {
		writeError(w, http.StatusBadRequest, errors.New("nothing to change: set sync, ack or sync_fallback"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.b.SetPolicy(ctx, c.Sync, c.Ack, c.Fallback); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			code = http.StatusGatewayTimeout // the control plane did not answer in time
		}
		writeError(w, code, err)
		return
	}
	s.getConfig(w, r)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.b.RemoveMember(ctx, r.PathValue("id")); err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// failover performs a planned switchover: POST /v1/failover {"to":"n2"}.
// Sent to a follower, it is redirected to the leader.
func (s *Server) failover(w http.ResponseWriter, r *http.Request) {
	var req struct {
		To string `json:"to"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.To == "" {
		writeError(w, http.StatusBadRequest, errors.New(`want {"to":"<member id>"}`))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := s.b.Switchover(ctx, req.To); err != nil {
		var nl *engine.NotLeaderError
		if errors.As(err, &nl) {
			s.writeOpError(w, r, err)
			return
		}
		writeError(w, http.StatusConflict, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"leader": req.To})
}
