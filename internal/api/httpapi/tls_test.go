package httpapi

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/certs"
	"github.com/replicant-db/replicant/internal/certs/certstest"
	"github.com/replicant-db/replicant/internal/node"
)

// TestPprofOffByDefaultAndBehindPassword: /debug/pprof is not served
// unless Config.Pprof is set, and when a password is set it needs it.
func TestPprofOffByDefaultAndBehindPassword(t *testing.T) {
	const pass = "s3cret"
	open := startEnv(t, nil)
	locked := startEnv(t, func(c *node.Config) { c.RequirePass = pass })
	for _, tc := range []struct {
		name  string
		env   *testEnv
		pprof bool
		auth  string
		want  int
	}{
		{"off by default", open, false, "", http.StatusNotFound},
		{"off by default even with the password", locked, false, "Bearer " + pass, http.StatusNotFound},
		{"on without a password set", open, true, "", http.StatusOK},
		{"on, password set, none sent", locked, true, "", http.StatusUnauthorized},
		{"on, password set, wrong one", locked, true, "Bearer nope", http.StatusUnauthorized},
		{"on, password set and sent", locked, true, "Bearer " + pass, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewWithConfig(tc.env.n, nil, Config{Pprof: tc.pprof}).Handler()
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/symbol"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Fatalf("GET %s: %d, want %d", path, rec.Code, tc.want)
				}
			}
		})
	}
}

// TestServeTLS: with Config.TLS the API answers HTTPS and refuses
// plaintext HTTP.
func TestServeTLS(t *testing.T) {
	e := startEnv(t, nil)
	ca := certstest.NewCA(t, "ca")
	p := ca.Issue("n1", "n1", "127.0.0.1")
	st, err := certs.Load(certs.Files{Cert: p.CertFile, Key: p.KeyFile, CA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := NewWithConfig(e.n, nil, Config{TLS: st.ServerConfig(tls.NoClientCert, nil)})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := ln.Addr().String()

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: st.ClientConfig().RootCAs}}}
	resp, err := hc.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("HTTPS /healthz: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	// A plaintext request is not served: net/http answers 400 "Client
	// sent an HTTP request to an HTTPS server" (or the connection fails).
	resp, err = (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plaintext HTTP answered %d, want 400", resp.StatusCode)
		}
	}
}
