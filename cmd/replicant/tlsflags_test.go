package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replicant-db/replicant/internal/certs/certstest"
)

// TestServerTLSFlags: the TLS flags are checked, and their files read,
// before the server listens or touches its data directory.
func TestServerTLSFlags(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	other := certstest.NewCA(t, "other")
	p := ca.Issue("n1", "n1", "127.0.0.1")
	foreign := other.Issue("n1x", "n1", "127.0.0.1")
	tests := []struct {
		name    string
		args    []string
		errPart string
	}{
		{"cert without key and CA", []string{"--tls-cert", p.CertFile}, "all of --tls-cert, --tls-key and --tls-ca"},
		{"no CA", []string{"--tls-cert", p.CertFile, "--tls-key", p.KeyFile}, "all of --tls-cert"},
		{"client auth without TLS", []string{"--tls-auth-clients", "yes"}, "--tls-auth-clients needs"},
		{"bad client auth", []string{"--tls-cert", p.CertFile, "--tls-key", p.KeyFile, "--tls-ca", ca.CertFile, "--tls-auth-clients", "maybe"}, "want no, optional or yes"},
		{"negative reload interval", []string{"--tls-cert", p.CertFile, "--tls-key", p.KeyFile, "--tls-ca", ca.CertFile, "--tls-reload-interval", "-1s"}, "must not be negative"},
		{"certificate of another CA", []string{"--tls-cert", foreign.CertFile, "--tls-key", foreign.KeyFile, "--tls-ca", ca.CertFile}, "not signed by the CA"},
		{"missing file", []string{"--tls-cert", p.CertFile + ".gone", "--tls-key", p.KeyFile, "--tls-ca", ca.CertFile}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			args := append([]string{"server", "--data", data, "--resp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--peer", "127.0.0.1:0", "--log-level", "error"}, tc.args...)
			if code := run(context.Background(), args, nil, &bytes.Buffer{}, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.errPart) {
				t.Fatalf("stderr %q, want it to contain %q", stderr.String(), tc.errPart)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("data directory created (stat: %v)", err)
			}
		})
	}
}

// TestClientTLSFlags: client commands read --cacert/--cert/--key before
// sending anything and say which flag is wrong.
func TestClientTLSFlags(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	p := ca.Issue("c", "c", "127.0.0.1")
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		errPart string
	}{
		{"cert without key", []string{"--cert", p.CertFile}, "--cert and --key go together"},
		{"CA file missing", []string{"--cacert", notPEM + ".gone"}, "--cacert"},
		{"CA file not PEM", []string{"--cacert", notPEM}, "holds no PEM certificate"},
		{"key of nothing", []string{"--cacert", ca.CertFile, "--cert", p.CertFile, "--key", notPEM}, "--cert/--key"},
	}
	for _, tc := range tests {
		for _, cmd := range [][]string{{"status"}, {"get", "k"}, {"link", "list"}, {"bench", "--duration", "1s"}} {
			t.Run(tc.name+" "+strings.Join(cmd, " "), func(t *testing.T) {
				var stderr bytes.Buffer
				// An address nothing listens on: the flags must fail first.
				args := append(append(append([]string(nil), cmd...), "--addr", "127.0.0.1:1"), tc.args...)
				if code := run(context.Background(), args, nil, &bytes.Buffer{}, &stderr); code != 1 {
					t.Fatalf("exit %d, want 1", code)
				}
				if !strings.Contains(stderr.String(), tc.errPart) {
					t.Fatalf("stderr %q, want it to contain %q", stderr.String(), tc.errPart)
				}
			})
		}
	}
}

// TestDevRefusesTLSServerFlags: dev checks and links its nodes over
// plaintext, so it refuses to start TLS nodes instead of failing later.
func TestDevRefusesTLSServerFlags(t *testing.T) {
	for _, flag := range []string{"--tls-cert", "--tls-key", "--tls-ca", "--tls-auth-clients"} {
		_, err := planDev(devConfig{nodes: 3, extra: []string{flag, "x"}})
		if err == nil || !strings.Contains(err.Error(), "without TLS") {
			t.Errorf("dev --server-flag %s: %v, want a refusal", flag, err)
		}
	}
}
