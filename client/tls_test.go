package client_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/replicant-db/replicant/client"
	"github.com/replicant-db/replicant/internal/api/httpapi"
)

// TestTLSOption: with Options.TLS trusting the node's CA, a client given
// host:port talks HTTPS to it; without the CA it refuses the node's
// certificate, and without TLS it gets no answer it can use.
func TestTLSOption(t *testing.T) {
	n, _ := startNode(t, nil)
	hs := httptest.NewTLSServer(httpapi.New(n, nil).Handler())
	t.Cleanup(hs.Close)
	hostport := strings.TrimPrefix(hs.URL, "https://")
	roots := x509.NewCertPool()
	roots.AddCert(hs.Certificate())
	ctx := ctxT(t)

	c := client.New(hostport, client.Options{TLS: &tls.Config{RootCAs: roots}})
	if err := c.Put(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatalf("Put over TLS: %v", err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get over TLS = %q, %v", v, err)
	}
	for _, tc := range []struct {
		name string
		opts client.Options
		want string
	}{
		{"CA not trusted", client.Options{TLS: &tls.Config{RootCAs: x509.NewCertPool()}}, "certificate"},
		{"plaintext", client.Options{}, "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.New(hostport, tc.opts).Get(ctx, "k")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Get = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
