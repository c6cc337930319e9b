package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/control"
)

func TestParseInitialCluster(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []control.Member
		errPart string // non-empty: want an error containing this
	}{
		// Without --initial-cluster a node is a one-node cluster: nil, no
		// error.
		{name: "empty", in: "", want: nil},
		{name: "blank", in: "   ", want: nil},
		{name: "one", in: "n1=127.0.0.1:9081", want: []control.Member{{ID: "n1", PeerAddr: "127.0.0.1:9081"}}},
		{name: "three in order", in: "n1=127.0.0.1:9081,n2=127.0.0.1:9082,n3=host.example:9083",
			want: []control.Member{
				{ID: "n1", PeerAddr: "127.0.0.1:9081"},
				{ID: "n2", PeerAddr: "127.0.0.1:9082"},
				{ID: "n3", PeerAddr: "host.example:9083"},
			}},
		{name: "ipv6", in: "n1=[::1]:9081", want: []control.Member{{ID: "n1", PeerAddr: "[::1]:9081"}}},
		// Shell-friendly spacing must not end up inside ids or addresses,
		// or --id n1 would not find itself in the list.
		{name: "spaces", in: " n1 = 127.0.0.1:9081 , n2=127.0.0.1:9082 ",
			want: []control.Member{{ID: "n1", PeerAddr: "127.0.0.1:9081"}, {ID: "n2", PeerAddr: "127.0.0.1:9082"}}},
		{name: "duplicate id", in: "n1=127.0.0.1:9081,n1=127.0.0.1:9082", errPart: "n1 twice"},
		// Two members cannot listen on one address.
		{name: "duplicate address", in: "n1=127.0.0.1:9081,n2=127.0.0.1:9081", errPart: "same address"},
		{name: "missing =", in: "n1=127.0.0.1:9081,n2", errPart: "want id=host:port"},
		{name: "empty id", in: "=127.0.0.1:9081", errPart: "want id=host:port"},
		{name: "empty address", in: "n1=", errPart: "want id=host:port"},
		{name: "empty entry", in: "n1=127.0.0.1:9081,,n2=127.0.0.1:9082", errPart: "want id=host:port"},
		{name: "trailing comma", in: "n1=127.0.0.1:9081,", errPart: "want id=host:port"},
		{name: "address without port", in: "n1=127.0.0.1", errPart: "invalid --initial-cluster address"},
		{name: "address with scheme", in: "n1=http://127.0.0.1:9081", errPart: "invalid --initial-cluster address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInitialCluster(tc.in)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("parseInitialCluster(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseInitialCluster(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseInitialCluster(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		level, format string
		errPart       string
	}{
		{"info", "text", ""},
		{"debug", "json", ""},
		{"WARN", "text", ""}, // levels are case-insensitive, as slog parses them
		{"error", "json", ""},
		{"loud", "text", "--log-level"},
		{"", "text", "--log-level"},
		{"info", "xml", "--log-format"},
		{"info", "", "--log-format"},
	}
	for _, tc := range tests {
		t.Run(tc.level+"/"+tc.format, func(t *testing.T) {
			log, err := newLogger(tc.level, tc.format)
			if tc.errPart == "" {
				if err != nil || log == nil {
					t.Fatalf("newLogger(%q, %q) = %v, %v; want a logger", tc.level, tc.format, log, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("newLogger(%q, %q) error %v, want one naming %s", tc.level, tc.format, err, tc.errPart)
			}
		})
	}
}

// runRoot executes the CLI with args and returns its error and output. The
// context bounds the run in case a regression starts something long-lived.
func runRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(""))
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// Every case fails in argument checking, before any network or disk work:
// nothing here starts a server or contacts one.
func TestRootRejects(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		errPart string
	}{
		{"unknown flag", []string{"--nosuch"}, "unknown flag: --nosuch"},
		{"unknown subcommand", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown server flag", []string{"server", "--nosuch"}, "unknown flag: --nosuch"},
		{"server positional arg", []string{"server", "extra"}, `unknown command "extra"`},
		{"bad duration", []string{"server", "--sync-timeout", "soon"}, "invalid argument"},
		{"get without key", []string{"get"}, "accepts 1 arg"},
		{"put with too many args", []string{"put", "k", "v", "x"}, "accepts between 1 and 2 arg"},
		{"config set unknown setting", []string{"config", "set", "color", "blue"}, "unknown setting"},
		{"dev too many nodes", []string{"dev", "--nodes", "10"}, "want 1 to 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runRoot(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("replicant %s: error %v, want one containing %q (output %q)", strings.Join(tc.args, " "), err, tc.errPart, out)
			}
		})
	}
}

func TestRootHelp(t *testing.T) {
	out, err := runRoot(t, "--help")
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	// Help lists the subcommands a user needs to discover.
	for _, sub := range []string{"server", "dev", "get", "put", "del", "status", "config", "member"} {
		if !strings.Contains(out, sub) {
			t.Errorf("help output lacks %q:\n%s", sub, out)
		}
	}
}

// TestRunServerRefusesBeforeListening: flag errors are reported before any
// listener opens or the data directory is touched. Each listen address is a
// port this test already holds, so a run that got as far as listening would
// fail with a "listen" error instead of the expected one.
func TestRunServerRefusesBeforeListening(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	busy := held.Addr().String()
	base := func() serverFlags {
		return serverFlags{
			id: "n1", data: filepath.Join(t.TempDir(), "data"),
			respAddr: busy, httpAddr: busy, peerAddr: busy,
			syncPolicy: "async", ack: "durable", fallback: "block",
			maxKey: 64, maxValue: 1024, logLevel: "error", logFormat: "text", cacheSize: 16 << 20,
		}
	}
	tests := []struct {
		name    string
		mut     func(*serverFlags)
		errPart string
	}{
		{"join with initial cluster", func(f *serverFlags) {
			f.join, f.initialCluster = "x", "n1=127.0.0.1:1"
		}, "exclusive"},
		{"bad initial cluster", func(f *serverFlags) { f.initialCluster = "n1" }, "want id=host:port"},
		{"bad log level", func(f *serverFlags) { f.logLevel = "loud" }, "--log-level"},
		{"bad log format", func(f *serverFlags) { f.logFormat = "xml" }, "--log-format"},
		{"zero max value", func(f *serverFlags) { f.maxValue = 0 }, "must be positive"},
		{"negative max key", func(f *serverFlags) { f.maxKey = -1 }, "must be positive"},
		{"cache below the minimum", func(f *serverFlags) { f.cacheSize = 1 << 20 }, "--cache-size must be at least"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := base()
			tc.mut(&f)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- runServer(ctx, f) }()
			var err error
			select {
			case err = <-errc:
			case <-time.After(5 * time.Second):
				cancel()
				t.Fatalf("runServer did not return within 5s; want a flag error at once")
			}
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("runServer: %v, want an error containing %q", err, tc.errPart)
			}
			if _, statErr := os.Stat(f.data); !os.IsNotExist(statErr) {
				t.Errorf("data directory %s was created (stat: %v)", f.data, statErr)
			}
		})
	}
}

// The same refusal through the command line, as a user meets it.
func TestServerCommandJoinExclusive(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	start := time.Now()
	_, err := runRoot(t, "server", "--join", "x", "--initial-cluster", "n1=127.0.0.1:1",
		"--data", data, "--resp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--peer", "127.0.0.1:0", "--log-level", "error")
	if err == nil || !strings.Contains(err.Error(), "exclusive") {
		t.Fatalf("server --join --initial-cluster: %v, want the exclusive error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusal took %s", d)
	}
	if _, statErr := os.Stat(data); !os.IsNotExist(statErr) {
		t.Errorf("data directory was created (stat: %v)", statErr)
	}
}

func TestShellJoinRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"server", "--sync", "FIRST 1 (n2,n3)"}, `server --sync 'FIRST 1 (n2,n3)'`},
		{[]string{"--data", "a b", "it's", ""}, `--data 'a b' 'it'\''s' ''`},
		{[]string{"--peer", "127.0.0.1:9081"}, `--peer 127.0.0.1:9081`},
	} {
		if got := shellJoin(tc.in); got != tc.want {
			t.Errorf("shellJoin(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
