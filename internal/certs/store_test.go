package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/certs/certstest"
)

func TestLoadRefusesUnusableSets(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	other := certstest.NewCA(t, "other")
	good := ca.Issue("node", "n1", "127.0.0.1")
	foreign := other.Issue("foreign", "n1", "127.0.0.1")
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files Files
		want  string // substring of the error; "" means success
	}{
		{"good", Files{good.CertFile, good.KeyFile, ca.CertFile}, ""},
		{"missing key", Files{Cert: good.CertFile, CA: ca.CertFile}, "all needed"},
		{"no such file", Files{good.CertFile + ".gone", good.KeyFile, ca.CertFile}, "no such file"},
		{"key of another certificate", Files{good.CertFile, foreign.KeyFile, ca.CertFile}, "private key does not match"},
		{"certificate from another CA", Files{foreign.CertFile, foreign.KeyFile, ca.CertFile}, "not signed by the CA"},
		{"CA file without a certificate", Files{good.CertFile, good.KeyFile, empty}, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(tc.files)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if s.Leaf().Subject.CommonName != "n1" {
					t.Fatalf("leaf CN %q", s.Leaf().Subject.CommonName)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// serve accepts TLS connections on a loopback listener with cfg and
// completes each handshake; it returns the address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if tc, ok := c.(*tls.Conn); ok && tc.Handshake() == nil {
					// TLS 1.3 servers verify the client's certificate
					// after the client's handshake returns; a read
					// makes the client see that alert.
					_, _ = tc.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial handshakes with addr using cfg and returns the server's leaf
// serial, or the error the client saw (including a refusal of its own
// certificate, which under TLS 1.3 arrives on the first read).
func dial(addr string, cfg *tls.Config) (*big.Int, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func TestPeerConfigRequiresACertificateFromTheCA(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	other := certstest.NewCA(t, "other")
	srvPair := ca.Issue("srv", "n1", "127.0.0.1")
	srv, err := Load(Files{srvPair.CertFile, srvPair.KeyFile, ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	rejected := make(chan error, 16)
	onReject := func(remote string, err error) {
		if remote == "" {
			err = fmt.Errorf("no remote address for %w", err)
		}
		rejected <- err
	}
	addr := serve(t, srv.ServerConfig(tls.RequireAndVerifyClientCert, onReject))
	optional := serve(t, srv.ServerConfig(tls.VerifyClientCertIfGiven, onReject))

	member := ca.Issue("member", "n2", "127.0.0.1")
	memberStore, err := Load(Files{member.CertFile, member.KeyFile, ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	stranger := other.Issue("stranger", "n9", "127.0.0.1")
	strangerCert, err := tls.LoadX509KeyPair(stranger.CertFile, stranger.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	withCert := func(c tls.Certificate) *tls.Config {
		cfg := memberStore.ClientConfig()
		cfg.Certificates = []tls.Certificate{c}
		return cfg
	}
	noCert := memberStore.ClientConfig()
	noCert.Certificates = nil
	wrongName := memberStore.ClientConfig()
	wrongName.ServerName = "elsewhere.example"

	for _, tc := range []struct {
		name     string
		addr     string
		cfg      *tls.Config
		ok       bool
		reported string // what onReject is told, if anything
	}{
		{"member of the CA", addr, memberStore.ClientConfig(), true, ""},
		{"no client certificate", addr, noCert, false, ""},
		{"certificate from another CA", addr, withCert(strangerCert), false, "unknown authority"},
		{"server name not in the certificate", addr, wrongName, false, ""},
		{"optional: member of the CA", optional, memberStore.ClientConfig(), true, ""},
		{"optional: no client certificate", optional, noCert, true, ""},
		{"optional: certificate from another CA", optional, withCert(strangerCert), false, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serial, err := dial(tc.addr, tc.cfg)
			if tc.ok != (err == nil) {
				t.Fatalf("handshake error %v, want success %v", err, tc.ok)
			}
			if tc.ok && serial.Cmp(srvPair.Serial) != 0 {
				t.Fatalf("server presented serial %v, want %v", serial, srvPair.Serial)
			}
			select {
			case err := <-rejected:
				if tc.reported == "" || !strings.Contains(err.Error(), tc.reported) {
					t.Fatalf("onReject told %v, want %q", err, tc.reported)
				}
			default:
				if tc.reported != "" {
					t.Fatalf("onReject not told about the refusal")
				}
			}
		})
	}
}

// TestReloadServesTheNewCertificate: after the files are replaced, the
// next handshake presents the new certificate (found by ReloadIfChanged
// and by Watch); a broken replacement keeps the old one in use.
func TestReloadServesTheNewCertificate(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	p := ca.Issue("srv", "n1", "127.0.0.1")
	s, err := Load(Files{p.CertFile, p.KeyFile, ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.ServerConfig(tls.NoClientCert, nil))
	client := &tls.Config{RootCAs: s.ClientConfig().RootCAs}
	mustServe := func(want *big.Int) {
		t.Helper()
		got, err := dial(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("server presented serial %v, want %v", got, want)
		}
	}
	mustServe(p.Serial)
	if changed, err := s.ReloadIfChanged(); changed || err != nil {
		t.Fatalf("ReloadIfChanged on unchanged files = %v, %v", changed, err)
	}

	rotated := ca.IssueTo(p, "n1", "127.0.0.1")
	if changed, err := s.ReloadIfChanged(); !changed || err != nil {
		t.Fatalf("ReloadIfChanged after rotation = %v, %v", changed, err)
	}
	mustServe(rotated.Serial)

	// A key that does not match the certificate: the reload fails and the
	// rotated certificate goes on being served.
	other := ca.Issue("other", "n1", "127.0.0.1")
	key, err := os.ReadFile(other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.KeyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("Reload accepted a key that does not match the certificate")
	}
	mustServe(rotated.Serial)

	// Watch picks up the next good rotation by itself.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloaded := make(chan struct{}, 16)
	go s.Watch(ctx, 10*time.Millisecond, func(ok bool, _ error) {
		if ok {
			reloaded <- struct{}{}
		}
	})
	third := ca.IssueTo(p, "n1", "127.0.0.1")
	select {
	case <-reloaded:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not reload the rotated files")
	}
	mustServe(third.Serial)
}
