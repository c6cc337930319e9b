package transport

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/certs"
	"github.com/replicant-db/replicant/internal/certs/certstest"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

func loadStore(t *testing.T, ca *certstest.CA, file, cn string, caFile string) *certs.Store {
	t.Helper()
	p := ca.Issue(file, cn, "127.0.0.1")
	s, err := certs.Load(certs.Files{Cert: p.CertFile, Key: p.KeyFile, CA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMutualTLSGuardsEveryRPC: a server with mutual TLS serves every RPC
// to a peer holding a certificate from the cluster's CA (and the secret),
// and refuses every RPC, before any handler runs, to a peer without TLS,
// with a certificate from another CA, or with the right certificate but
// not the secret.
func TestMutualTLSGuardsEveryRPC(t *testing.T) {
	ca := certstest.NewCA(t, "cluster")
	other := certstest.NewCA(t, "other")
	srvStore := loadStore(t, ca, "n1", "n1", ca.CertFile)
	member := loadStore(t, ca, "n2", "n2", ca.CertFile)
	// The stranger trusts the cluster's CA (it can verify the server) but
	// holds a certificate of its own CA.
	stranger := loadStore(t, other, "n9", "n9", other.CertFile)
	strangerCfg := func() *tls.Config {
		c := stranger.ClientConfig()
		c.RootCAs = member.ClientConfig().RootCAs
		return c
	}
	noCert := func() *tls.Config {
		c := member.ClientConfig()
		c.Certificates = nil
		return c
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{raft: make(chan int, 8)}
	srv := NewServer(h, 1<<20, "s3cret", WithServerTLS(srvStore.ServerConfig(tls.RequireAndVerifyClientCert, nil)))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	for _, tc := range []struct {
		name   string
		secret string
		opts   []Option
		ok     bool
	}{
		{"member with secret", "s3cret", []Option{WithClientTLS(member.ClientConfig)}, true},
		{"member without secret", "", []Option{WithClientTLS(member.ClientConfig)}, false},
		{"plaintext with secret", "s3cret", nil, false},
		{"no client certificate", "s3cret", []Option{WithClientTLS(noCert)}, false},
		{"certificate from another CA", "s3cret", []Option{WithClientTLS(strangerCfg)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.calls.Load()
			pool := NewPool(1<<20, tc.secret, tc.opts...)
			defer pool.Close()
			c, err := pool.Client(ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for rpc, err := range everyRPC(ctx, c) {
				if tc.ok && err != nil && (rpc == "Raft" || rpc == "Position" || rpc == "Join") {
					t.Errorf("%s: %v", rpc, err)
				}
				if !tc.ok && err == nil {
					t.Errorf("%s: served", rpc)
				}
			}
			if reached := h.calls.Load() - before; tc.ok != (reached > 0) {
				t.Fatalf("handlers reached %d times, want any: %v", reached, tc.ok)
			}
		})
	}
}

// TestPoolPresentsReloadedCertificate: a pool's new connections present
// the certificate its config function returns at dial time, so a node
// whose certificate was rotated reconnects with the new one.
func TestPoolPresentsReloadedCertificate(t *testing.T) {
	ca := certstest.NewCA(t, "cluster")
	srvStore := loadStore(t, ca, "n1", "n1", ca.CertFile)
	p := ca.Issue("n2", "n2", "127.0.0.1")
	member, err := certs.Load(certs.Files{Cert: p.CertFile, Key: p.KeyFile, CA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 4)
	cfg := srvStore.ServerConfig(tls.RequireAndVerifyClientCert, nil)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) > 0 {
			seen <- cs.PeerCertificates[0].SerialNumber.String()
		}
		return nil
	}
	// GetConfigForClient's config is the one used; wrap it to keep the
	// hook (the store's own config has none).
	get := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := get(hi)
		if c != nil {
			c.VerifyConnection = cfg.VerifyConnection
		}
		return c, err
	}
	for _, round := range []struct{ serial string }{{p.Serial.String()}, {""}} {
		if round.serial == "" {
			rotated := ca.IssueTo(p, "n2", "127.0.0.1")
			if err := member.Reload(); err != nil {
				t.Fatal(err)
			}
			round.serial = rotated.Serial.String()
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := NewServer(&fakeHandler{raft: make(chan int, 8)}, 1<<20, "", WithServerTLS(cfg))
		go func() { _ = srv.Serve(ln) }()
		pool := NewPool(1<<20, "", WithClientTLS(member.ClientConfig))
		c, err := pool.Client(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := c.Position(ctx, &pb.PositionRequest{}); err != nil {
			t.Fatal(err)
		}
		cancel()
		if got := <-seen; got != round.serial {
			t.Fatalf("client presented serial %s, want %s", got, round.serial)
		}
		pool.Close()
		srv.Stop()
	}
}
