package resp

import (
	"crypto/tls"
	"time"

	"github.com/replicant-db/replicant/internal/api/budget"
)

// Defaults of Config.
const (
	// DefaultMaxClients is Redis's default maxclients.
	DefaultMaxClients = 10000
	// DefaultScriptHeapLimit is Config.ScriptHeapLimit's default.
	DefaultScriptHeapLimit = 256 << 20
	// DefaultAuthTimeout: with a password set, a connection gets this long
	// to authenticate. Redis has no such limit, but an unauthenticated
	// connection can do nothing useful, and thousands of them would
	// otherwise stay open forever.
	DefaultAuthTimeout = 10 * time.Second
	// DefaultCommandTimeout: once a command has started arriving, all of
	// it must arrive within this long (time spent waiting for the request
	// buffer budget not counted), so a slowloris client that sends part
	// of a command and then trickles or stops is closed. A 16 MiB value
	// needs about 560 KB/s.
	DefaultCommandTimeout = 30 * time.Second
)

// Config holds the RESP server's connection and memory limits. The zero
// value gives the defaults, which keep a server started without flags
// working as before for well-behaved clients.
type Config struct {
	// ScriptHeapLimit stops a script (EVAL, FCALL) once the process's
	// live heap grew by more than this while it ran, so that a script
	// allocating without bound cannot exhaust the node. 0 means
	// DefaultScriptHeapLimit; negative, no limit.
	ScriptHeapLimit int64
	// MaxClients caps open client connections, as Redis's maxclients:
	// one more is answered "-ERR max number of clients reached" and
	// closed. 0 means DefaultMaxClients; negative, no limit.
	MaxClients int
	// IdleTimeout closes a connection that starts no command for this
	// long, as Redis's timeout. 0 or negative: never (Redis's default).
	IdleTimeout time.Duration
	// AuthTimeout closes a connection that has not authenticated this
	// long after connecting, when a password is required. 0 means
	// DefaultAuthTimeout; negative, never.
	AuthTimeout time.Duration
	// NoEventLoop serves every connection from a goroutine waiting in
	// Go's poller, as TLS connections always are (evloop_linux.go).
	NoEventLoop bool
	// CommandTimeout closes a connection whose started command is not
	// complete this long after it started (see DefaultCommandTimeout).
	// 0 means DefaultCommandTimeout; negative, never.
	CommandTimeout time.Duration
	// ConfigFile is the file the server's settings were read from (INFO's
	// config_file; CONFIG REWRITE refuses to rewrite it). "" for none.
	ConfigFile string
	// Budget bounds the bytes of commands being read or run; share one
	// with the HTTP API. Commands that do not fit wait, then are refused
	// with an -OOM error. nil means a budget of the server's own with
	// budget.DefaultCapacity and budget.DefaultMaxWait.
	Budget *budget.Budget
	// TLS, when set, makes every accepted connection a TLS server
	// connection with it: plaintext clients fail the handshake. The
	// handshake must finish within HandshakeTimeout.
	TLS *tls.Config
}

// HandshakeTimeout bounds a TLS handshake on the RESP port, so that a
// client that connects and sends nothing holds no connection slot longer.
const HandshakeTimeout = 10 * time.Second

// withDefaults fills in the zero fields.
func (c Config) withDefaults() Config {
	if c.ScriptHeapLimit == 0 {
		c.ScriptHeapLimit = DefaultScriptHeapLimit
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.AuthTimeout == 0 {
		c.AuthTimeout = DefaultAuthTimeout
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.Budget == nil {
		c.Budget = budget.New(budget.DefaultCapacity, budget.DefaultMaxWait)
	}
	return c
}

func (c Config) timeouts() timeouts {
	return timeouts{idle: c.IdleTimeout, auth: c.AuthTimeout, command: c.CommandTimeout}
}
