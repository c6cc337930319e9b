package httpapi

import (
	"crypto/tls"
	"time"

	"github.com/replicant-db/replicant/internal/api/budget"
)

// Defaults of Config.
const (
	// DefaultMaxConns matches the RESP server's maxclients default.
	DefaultMaxConns = 10000
	// DefaultReadHeaderTimeout bounds reading a request's headers
	// (slowloris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds reading a PUT body once the handler
	// starts reading it (after any wait for the request buffer budget): a
	// 16 MiB value needs about 560 KB/s.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle this long.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes is net/http's default: room for a 64 KiB key
	// percent-encoded in the path.
	DefaultMaxHeaderBytes = 1 << 20
)

// Config holds the HTTP server's connection and memory limits. The zero
// value gives the defaults.
type Config struct {
	// MaxConns caps open connections; one more is answered 503 and
	// closed. 0 means DefaultMaxConns; negative, no limit.
	MaxConns int
	// ReadHeaderTimeout: 0 means DefaultReadHeaderTimeout; negative, none.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request body into memory. It is not
	// net/http's ReadTimeout, which would also cancel the context of any
	// handler still running when it expires (a write waiting for commit,
	// a failover, a CPU profile). 0 means DefaultBodyTimeout; negative,
	// none.
	BodyTimeout time.Duration
	// IdleTimeout: 0 means DefaultIdleTimeout; negative, none.
	IdleTimeout time.Duration
	// MaxHeaderBytes: 0 means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// Budget bounds the bytes of request bodies held in memory; share one
	// with the RESP server. A body that does not fit waits, then is
	// refused with 503. nil means a budget of the server's own with
	// budget.DefaultCapacity and budget.DefaultMaxWait.
	Budget *budget.Budget
	// TLS, when set, makes the API HTTPS only (HTTP/1.1 over TLS): every
	// accepted connection is a TLS server connection with it.
	TLS *tls.Config
	// Pprof serves /debug/pprof. Off by default: a profile shows code,
	// memory contents of goroutine stacks and timing to whoever asks, and
	// a CPU profile or trace costs the node while it runs. When a
	// password is set, pprof requires it like every other route.
	Pprof bool
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0 // net/http's "none"
		}
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.BodyTimeout, DefaultBodyTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.Budget == nil {
		c.Budget = budget.New(budget.DefaultCapacity, budget.DefaultMaxWait)
	}
	return c
}
