package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// serverFlagsFrom parses args with the server's real flag set and applies
// the environment and, when file is not empty, a config file holding it.
func serverFlagsFrom(t *testing.T, args, environ []string, file string) (serverFlags, configLoad, error) {
	t.Helper()
	var f serverFlags
	cmd := &cobra.Command{Use: "server"}
	f.register(cmd)
	if file != "" {
		path := filepath.Join(t.TempDir(), "replicant.conf")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	loaded, err := loadConfig(cmd.Flags(), environ)
	f.loaded = loaded // as the server command's RunE does
	return f, loaded, err
}

func TestConfigPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		file    string
		want    time.Duration // --sync-timeout
		wantSrc string        // where it came from; "" for command line or default
	}{
		{name: "default", want: 2 * time.Second},
		{name: "file", file: "sync-timeout = 3s\n", want: 3 * time.Second, wantSrc: "replicant.conf:1"},
		{name: "env over file", env: []string{"REPLICANT_SYNC_TIMEOUT=4s"}, file: "sync-timeout = 3s\n",
			want: 4 * time.Second, wantSrc: "$REPLICANT_SYNC_TIMEOUT"},
		{name: "flag over env and file", args: []string{"--sync-timeout", "5s"}, env: []string{"REPLICANT_SYNC_TIMEOUT=4s"},
			file: "sync-timeout = 3s\n", want: 5 * time.Second},
		{name: "flag over file", args: []string{"--sync-timeout=5s"}, file: "sync-timeout = 3s\n", want: 5 * time.Second},
		// An empty variable is unset in effect (an env file's `NAME=`).
		{name: "empty env falls through to file", env: []string{"REPLICANT_SYNC_TIMEOUT="}, file: "sync-timeout = 3s\n",
			want: 3 * time.Second, wantSrc: "replicant.conf:1"},
		{name: "other variables untouched", env: []string{"SYNC_TIMEOUT=9s", "XREPLICANT_SYNC_TIMEOUT=9s"}, want: 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, loaded, err := serverFlagsFrom(t, tc.args, tc.env, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if f.syncTimeout != tc.want {
				t.Errorf("sync-timeout = %v, want %v", f.syncTimeout, tc.want)
			}
			if src := loaded.sources["sync-timeout"]; !strings.HasSuffix(src, tc.wantSrc) || (tc.wantSrc == "") != (src == "") {
				t.Errorf("source = %q, want %q", src, tc.wantSrc)
			}
		})
	}
}

// TestConfigCoversEveryFlag checks the claim the docs make: every server
// flag, whatever its type, can be set from the environment and the file.
func TestConfigCoversEveryFlag(t *testing.T) {
	var f serverFlags
	cmd := &cobra.Command{Use: "server"}
	f.register(cmd)
	n := 0
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if !configurable(fl) {
			return
		}
		n++
		if ownsEnv(fl) || fl.Name == configFlag {
			return
		}
		// A value of the flag's type that is not its default; for a type
		// this table lacks (a flag added later), its default, which at
		// least shows the layers accept and record it.
		v, known := map[string]string{"string": "x-1", "int": "7", "int32": "7", "int64": "7", "uint": "7", "uint32": "7",
			"uint64": "7", "float64": "7.5", "bool": "true", "duration": "7s", "stringSlice": "a,b"}[fl.Value.Type()]
		if fl.Value.Type() == "bool" && fl.DefValue == "true" {
			v = "false"
		}
		if !known {
			v = fl.DefValue
		}
		if v == "" || strings.HasPrefix(v, "[") {
			t.Logf("--%s (%s): no value to try", fl.Name, fl.Value.Type())
			return
		}
		for _, layer := range []struct {
			env  []string
			file string
		}{{env: []string{envName(fl.Name) + "=" + v}}, {file: fl.Name + " = " + v + "\n"}} {
			var g serverFlags
			c := &cobra.Command{Use: "server"}
			g.register(c)
			args := []string{}
			if layer.file != "" {
				path := filepath.Join(t.TempDir(), "c.conf")
				if err := os.WriteFile(path, []byte(layer.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			if err := c.Flags().Parse(args); err != nil {
				t.Fatal(err)
			}
			loaded, err := loadConfig(c.Flags(), layer.env)
			if err != nil {
				t.Errorf("--%s from %v%q: %v", fl.Name, layer.env, layer.file, err)
				continue
			}
			if loaded.sources[fl.Name] == "" {
				t.Errorf("--%s from %v%q: no source recorded", fl.Name, layer.env, layer.file)
			}
			want := v
			if fl.Value.Type() == "stringSlice" {
				want = "[" + v + "]" // how pflag prints it
			}
			if got := c.Flags().Lookup(fl.Name).Value.String(); got != want {
				t.Errorf("--%s from %v%q = %q, want %q", fl.Name, layer.env, layer.file, got, want)
			}
		}
	})
	if n < 30 {
		t.Fatalf("only %d server flags visited; the flag set is not the server's", n)
	}
}

func TestConfigSecretsKeepOneSource(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		file    string
		want    string
		errPart string
	}{
		{name: "env read by the secret's own code", env: []string{"REPLICANT_REQUIREPASS=s3"}, want: "s3"},
		{name: "file", file: "requirepass = \"s #1\"\n", want: "s #1"},
		// Two sources of one secret are refused, naming both, the file
		// by its path and line.
		{name: "file and env", env: []string{"REPLICANT_REQUIREPASS=s3"}, file: "requirepass = s1\n",
			errPart: "requirepass in "},
		{name: "flag and env", args: []string{"--requirepass", "s2"}, env: []string{"REPLICANT_REQUIREPASS=s3"},
			errPart: "--requirepass, $REPLICANT_REQUIREPASS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, loaded, err := serverFlagsFrom(t, tc.args, tc.env, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range loaded.notes {
				if strings.Contains(n, "REPLICANT_REQUIREPASS") {
					t.Errorf("note about a variable the server reads: %s", n)
				}
			}
			getenv := func(k string) string {
				for _, kv := range tc.env {
					if name, v, _ := strings.Cut(kv, "="); name == k {
						return v
					}
				}
				return ""
			}
			sec, err := resolveSecrets(f, getenv)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("resolveSecrets = %v; want an error containing %q", err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sec.requirePass != tc.want {
				t.Fatalf("requirepass = %q, want %q", sec.requirePass, tc.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		file    string
		errPart string
	}{
		{name: "unknown key with suggestion", file: "# x\nsync-timout = 3s\n", errPart: `replicant.conf:2: unknown key "sync-timout": no ` + "`replicant server`" + ` flag --sync-timout; did you mean "sync-timeout"?`},
		{name: "unknown key", file: "color = blue\n", errPart: `unknown key "color"`},
		{name: "help is no setting", file: "help = true\n", errPart: `unknown key "help"`},
		{name: "config in config", file: "config = /etc/other\n", errPart: `"config" cannot be set in a config file`},
		{name: "bad duration in file", file: "\nsync-timeout = soon\n", errPart: `replicant.conf:2: invalid value "soon" for sync-timeout`},
		{name: "bad int in env", env: []string{"REPLICANT_MAXCLIENTS=many"}, errPart: `$REPLICANT_MAXCLIENTS: invalid value "many" for --maxclients`},
		{name: "bad bool in env", env: []string{"REPLICANT_SLOPPY_QUORUM=maybe"}, errPart: "--sloppy-quorum"},
		{name: "duplicate key", file: "id = n1\nid = n2\n", errPart: "replicant.conf:2: id is already set on line 1"},
		{name: "no equals", file: "sloppy-quorum\n", errPart: "replicant.conf:1: want key = value"},
		{name: "dashes", file: "--id = n1\n", errPart: "without dashes: id = ..."},
		{name: "upper case key", file: "ID = n1\n", errPart: `invalid key "ID"`},
		{name: "unterminated quote", file: "requirepass = \"abc\n", errPart: "unterminated"},
		{name: "text after quote", file: "sync = 'ANY 1 (*)' x\n", errPart: `unexpected "x"`},
		{name: "missing file", args: []string{"--config", "/nonexistent/replicant.conf"}, errPart: "--config: open /nonexistent/replicant.conf"},
		{name: "missing file from env", env: []string{"REPLICANT_CONFIG=/nonexistent/r.conf"}, errPart: "/nonexistent/r.conf"},
		// A typo beside keys a higher layer overrides is still found:
		// it would otherwise surface only once that layer goes away.
		{name: "unknown key beside an overridden one", args: []string{"--sync-timeout", "1s"}, file: "sync-timeout = 3s\nsync-timeoutt = 3s\n", errPart: "unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := serverFlagsFrom(t, tc.args, tc.env, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("err = %v; want one containing %q", err, tc.errPart)
			}
		})
	}
}

func TestConfigEnvNotes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{name: "unknown variable warned, not fatal", env: []string{"REPLICANT_SYNC_TIMOUT=1s"},
			want: []string{"environment variable REPLICANT_SYNC_TIMOUT matches no server flag (would be --sync-timout); ignored"}},
		{name: "the client's password is not the server's business", env: []string{"REPLICANT_PASSWORD=x"}},
		{name: "shadowed by a flag", args: []string{"--id", "n2"}, env: []string{"REPLICANT_ID=n3"},
			want: []string{"--id on the command line overrides $REPLICANT_ID"}},
		{name: "sorted", env: []string{"REPLICANT_ZZ=1", "REPLICANT_AA=1"},
			want: []string{"environment variable REPLICANT_AA matches no server flag (would be --aa); ignored",
				"environment variable REPLICANT_ZZ matches no server flag (would be --zz); ignored"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, loaded, err := serverFlagsFrom(t, tc.args, tc.env, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(loaded.notes, tc.want) {
				t.Fatalf("notes = %q, want %q", loaded.notes, tc.want)
			}
		})
	}
}

func TestParseConfigFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []configEntry
	}{
		{name: "empty", in: "", want: nil},
		{name: "comments and blanks", in: "# a\n\n   # b\n\t\n", want: nil},
		{name: "spacing", in: "id=n1\n  data   =   /var/lib/replicant  \n",
			want: []configEntry{{"id", "n1", 1}, {"data", "/var/lib/replicant", 2}}},
		{name: "trailing comment", in: "sync-timeout = 2s # two seconds\nack = durable\t# tab\n",
			want: []configEntry{{"sync-timeout", "2s", 1}, {"ack", "durable", 2}}},
		// '#' without a space before it is part of the value.
		{name: "hash inside a value", in: "requirepass = a#b\n", want: []configEntry{{"requirepass", "a#b", 1}}},
		{name: "spaces inside a value", in: "sync = FIRST 1 (n2,n3)\n", want: []configEntry{{"sync", "FIRST 1 (n2,n3)", 1}}},
		{name: "single quotes literal", in: `sync = 'FIRST 1 (*)' # semi-sync` + "\n", want: []configEntry{{"sync", "FIRST 1 (*)", 1}}},
		{name: "double quotes escapes", in: `requirepass = "a \"b\" #c\t"` + "\n", want: []configEntry{{"requirepass", "a \"b\" #c\t", 1}}},
		{name: "empty value", in: "join =\nsite = ''\n", want: []configEntry{{"join", "", 1}, {"site", "", 2}}},
		{name: "equals in a value", in: "initial-cluster = n1=a:1,n2=b:2\n", want: []configEntry{{"initial-cluster", "n1=a:1,n2=b:2", 1}}},
		{name: "crlf and bom", in: "\xef\xbb\xbfid = n1\r\nack = applied\r\n", want: []configEntry{{"id", "n1", 1}, {"ack", "applied", 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfigFile("f", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseConfigFile(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		"sync-timeout":          "REPLICANT_SYNC_TIMEOUT",
		"id":                    "REPLICANT_ID",
		"anti-entropy-interval": "REPLICANT_ANTI_ENTROPY_INTERVAL",
		"maxclients":            "REPLICANT_MAXCLIENTS",
		"requirepass":           envRequirePass, // the name the secret code already reads
		"peer-secret":           envPeerSecret,
	} {
		if got := envName(flag); got != want {
			t.Errorf("envName(%q) = %q, want %q", flag, got, want)
		}
		if got := flagOfEnv(want); got != flag {
			t.Errorf("flagOfEnv(%q) = %q, want %q", want, got, flag)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "ab", 2}, {"sync", "sync", 0},
		{"sync-timout", "sync-timeout", 1}, {"kitten", "sitting", 3}, {"ack", "cak", 2},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestServerCommandReadsConfig runs `replicant server` itself, so the
// layers are shown to reach the server and not only loadConfig: every case
// fails in runServer's checks before anything listens, on a value only the
// environment or the file gave.
func TestServerCommandReadsConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		errPart string
	}{
		{name: "file value reaches the server", file: "log-format = xml\n", errPart: `invalid --log-format "xml"`},
		{name: "env value reaches the server", env: map[string]string{"REPLICANT_LOG_FORMAT": "xml"}, errPart: `invalid --log-format "xml"`},
		{name: "config file named by the environment", env: map[string]string{"REPLICANT_CONFIG": "FILE"}, file: "max-key-size = 0\n", errPart: "must be positive"},
		// The flag beats the bad variable, the file still applies.
		{name: "layers combine", args: []string{"--log-format", "text"}, env: map[string]string{"REPLICANT_LOG_FORMAT": "xml"},
			file: "max-value-size = -1\n", errPart: "must be positive"},
		{name: "unknown key stops the server", file: "sync-timout = 1s\n", errPart: `unknown key "sync-timout"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Were a layer ignored, the server would start: on ports of
			// its own, and only until the context ends, so that the test
			// fails instead of hanging.
			args := append([]string{"server", "--data", t.TempDir(), "--resp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--peer", "127.0.0.1:0"}, tc.args...)
			path := filepath.Join(t.TempDir(), "replicant.conf")
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				if tc.env["REPLICANT_CONFIG"] == "" {
					args = append(args, "--config", path)
				}
			}
			for k, v := range tc.env {
				if v == "FILE" {
					v = path
				}
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, args, nil, &out, &errOut)
			if code == 0 || !strings.Contains(errOut.String(), tc.errPart) {
				t.Fatalf("replicant %q: exit %d, stderr %q; want a failure containing %q", args, code, errOut.String(), tc.errPart)
			}
		})
	}
}
