package resp

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/certs"
	"github.com/replicant-db/replicant/internal/certs/certstest"
	"github.com/replicant-db/replicant/internal/node"
)

// TestTLS: with Config.TLS the server speaks RESP over TLS only. A
// plaintext command gets no reply and the connection is closed; a client
// that connects and never starts its handshake holds its own goroutine,
// not the accept loop; beyond MaxClients a connection is closed at once.
func TestTLS(t *testing.T) {
	ts := startServer(t, node.Config{})
	ca := certstest.NewCA(t, "ca")
	p := ca.Issue("n1", "n1", "127.0.0.1")
	st, err := certs.Load(certs.Files{Cert: p.CertFile, Key: p.KeyFile, CA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serveWith(t, ts, Config{MaxClients: 3, TLS: st.ServerConfig(tls.NoClientCert, nil)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsClient := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1,
			TLSConfig: &tls.Config{RootCAs: st.ClientConfig().RootCAs, ServerName: "127.0.0.1"}})
		t.Cleanup(func() { c.Close() })
		return c
	}

	// A client that says nothing: it stays in its handshake.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	a := tlsClient()
	if err := a.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS (with a silent client connected): %v", err)
	}
	if v, err := a.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET over TLS = %q, %v", v, err)
	}

	plain := dialRaw(t, addr)
	plain.send(encode("PING"))
	if got, err := plain.readRaw(); err == nil {
		t.Fatalf("plaintext PING answered %q", got)
	}
	if !plain.closed() {
		t.Fatal("plaintext connection not closed")
	}

	// silent and a hold two of three slots; the third is taken, the
	// fourth closed at once, and a keeps working.
	b := tlsClient()
	if err := b.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	over := dialRaw(t, addr)
	if !over.closed() {
		t.Fatal("a connection beyond MaxClients was not closed")
	}
	if err := a.Ping(ctx).Err(); err != nil {
		t.Fatalf("after a refused connection: %v", err)
	}
}
