package test

// TLS end to end: a cluster whose every port speaks TLS (mutual TLS on the
// peer port) replicates, fails over, refuses plaintext, keeps out a node
// whose certificate another CA signed, and serves rotated certificates
// without a restart. The CAs are made in the test; no key is committed.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/client"
	"github.com/replicant-db/replicant/internal/certs/certstest"
	"github.com/replicant-db/replicant/internal/transport"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// tlsCluster is a cluster of TLS nodes and what a client needs to talk
// to them.
type tlsCluster struct {
	t     *testing.T
	ca    *certstest.CA
	nodes []*proc
	pairs map[string]certstest.Pair
	roots *x509.CertPool
	// clientCert is the test's own certificate from the CA, presented to
	// nodes that ask for one (--tls-auth-clients).
	clientCert tls.Certificate
}

// tlsFlags are the server flags for a node holding pair.
func tlsFlags(caFile string, pair certstest.Pair) []string {
	return []string{"--tls-cert", pair.CertFile, "--tls-key", pair.KeyFile, "--tls-ca", caFile}
}

func newTLSCluster(t *testing.T, n int, perNode map[string][]string, flags ...string) *tlsCluster {
	t.Helper()
	c := &tlsCluster{t: t, ca: certstest.NewCA(t, "cluster"), pairs: map[string]certstest.Pair{}}
	b, err := os.ReadFile(c.ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	c.roots = x509.NewCertPool()
	if !c.roots.AppendCertsFromPEM(b) {
		t.Fatal("test CA does not parse")
	}
	cp := c.ca.Issue("tester", "tester", "127.0.0.1")
	if c.clientCert, err = tls.LoadX509KeyPair(cp.CertFile, cp.KeyFile); err != nil {
		t.Fatal(err)
	}
	var initial []string
	for i := 1; i <= n; i++ {
		p := newProc(t, fmt.Sprintf("n%d", i))
		c.nodes = append(c.nodes, p)
		initial = append(initial, p.ID+"="+p.Peer)
		c.pairs[p.ID] = c.ca.Issue(p.ID, p.ID, "127.0.0.1", "localhost")
	}
	for _, p := range c.nodes {
		p.Args = append(append([]string{"--initial-cluster", strings.Join(initial, ",")}, tlsFlags(c.ca.CertFile, c.pairs[p.ID])...), flags...)
		p.Args = append(p.Args, perNode[p.ID]...)
		p.startNoWait()
	}
	for _, p := range c.nodes {
		c.waitReady(p)
	}
	return c
}

// waitStreaming waits until n1 leads and every follower streams.
func (c *tlsCluster) waitStreaming() {
	c.t.Helper()
	waitFor(c.t, "n1 leads and every follower streams", 30*time.Second, func() bool {
		for _, p := range c.nodes {
			st, err := c.status(p)
			if err != nil || st.Leader != "n1" || (p.ID != "n1" && st.State != "streaming") {
				return false
			}
		}
		return true
	})
}

// tlsConfig trusts the cluster's CA and presents the test's certificate
// when asked for one.
func (c *tlsCluster) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: c.roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{c.clientCert}}
}

func (c *tlsCluster) client(p *proc) *client.Client {
	return client.New(p.HTTP, client.Options{TLS: c.tlsConfig()})
}

func (c *tlsCluster) status(p *proc) (*nodeStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.client(p).Status(ctx)
}

// waitReady polls https://HTTP/readyz (the harness's waitHealthy speaks
// plaintext).
func (c *tlsCluster) waitReady(p *proc) {
	c.t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tlsConfig()}}
	waitFor(c.t, p.ID+" ready over HTTPS", 30*time.Second, func() bool {
		if !p.running() {
			c.t.Fatalf("%s exited during start-up:\n%s", p.ID, p.Log.String())
		}
		resp, err := hc.Get("https://" + p.HTTP + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (c *tlsCluster) redis(p *proc) *redis.Client {
	r := redis.NewClient(&redis.Options{Addr: p.RESP, MaxRetries: -1, TLSConfig: c.tlsConfig()})
	c.t.Cleanup(func() { r.Close() })
	return r
}

// serial is the serial number of the certificate addr presents.
func (c *tlsCluster) serial(addr string, clientCert *tls.Certificate) (*big.Int, error) {
	cfg := c.tlsConfig()
	cfg.Certificates = nil
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func TestTLSCluster(t *testing.T) {
	// n1 reloads only on SIGHUP; n2 watches its files.
	c := newTLSCluster(t, 3, map[string][]string{
		"n1": {"--tls-reload-interval", "0"},
		"n2": {"--tls-reload-interval", "100ms"},
	}, "--sync", "FIRST 1 (*)")
	c.waitStreaming()
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	ctx := ctxT(t, 3*time.Minute)

	t.Run("replicates over TLS", func(t *testing.T) {
		if err := c.redis(n1).Set(ctx, "k", "v1", 0).Err(); err != nil {
			t.Fatalf("SET over TLS: %v", err)
		}
		for _, p := range []*proc{n2, n3} {
			waitFor(t, p.ID+" has k", 20*time.Second, func() bool {
				v, err := c.redis(p).Get(ctx, "k").Result()
				return err == nil && v == "v1"
			})
		}
		// A write sent to a follower over HTTPS is redirected to the
		// leader's https:// URL and succeeds there.
		if err := c.client(n3).Put(ctx, "via-follower", []byte("ok"), 0); err != nil {
			t.Fatalf("PUT through a follower: %v", err)
		}
		if v, err := c.redis(n1).Get(ctx, "via-follower").Result(); err != nil || v != "ok" {
			t.Fatalf("leader has via-follower = %q, %v", v, err)
		}
	})

	t.Run("certificate expiry metric", func(t *testing.T) {
		conn, err := tls.Dial("tcp", n1.HTTP, c.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		notAfter := conn.ConnectionState().PeerCertificates[0].NotAfter.Unix()
		conn.Close()
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tlsConfig()}}
		resp, err := hc.Get("https://" + n1.HTTP + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("replicant_tls_certificate_expiry_timestamp_seconds %g", float64(notAfter))
		if !strings.Contains(string(body), want+"\n") {
			t.Fatalf("/metrics has no %q", want)
		}
	})

	t.Run("CLI with --cacert", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, binary, "put", "cli", "yes", "--addr", n2.HTTP, "--cacert", c.ca.CertFile).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "OK") {
			t.Fatalf("replicant put --cacert: %v\n%s", err, out)
		}
		out, err = exec.CommandContext(ctx, binary, "get", "cli", "--addr", n1.HTTP, "--cacert", c.ca.CertFile).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "yes" {
			t.Fatalf("replicant get --cacert: %v\n%s", err, out)
		}
		// Without the CA the CLI refuses the node's certificate, and says so.
		out, err = exec.CommandContext(ctx, binary, "status", "--addr", "https://"+n1.HTTP).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "certificate") {
			t.Fatalf("status without --cacert: %v\n%s", err, out)
		}
	})

	t.Run("plaintext refused", func(t *testing.T) {
		plain := redis.NewClient(&redis.Options{Addr: n1.RESP, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
		defer plain.Close()
		if err := plain.Ping(ctx).Err(); err == nil {
			t.Fatal("plaintext RESP PING answered")
		}
		hc := &http.Client{Timeout: 2 * time.Second}
		if resp, err := hc.Get("http://" + n1.HTTP + "/v1/status"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("plaintext HTTP status answered 200")
			}
		}
		pool := transport.NewPool(1<<20, "")
		defer pool.Close()
		pc, err := pool.Client(n1.Peer)
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := pc.Position(pctx, &pb.PositionRequest{}); err == nil {
			t.Fatal("plaintext peer call answered")
		}
	})

	t.Run("node with a certificate from another CA cannot join or call peers", func(t *testing.T) {
		other := certstest.NewCA(t, "other")
		rogue := newProc(t, "n4")
		pair := other.Issue("n4", "n4", "127.0.0.1")
		// Its CA file trusts both CAs, so that it can verify the
		// cluster's certificates: what stops it is that the cluster does
		// not trust its own.
		both := rogue.Data + "-cas.pem"
		a, _ := os.ReadFile(other.CertFile)
		b, _ := os.ReadFile(c.ca.CertFile)
		if err := os.WriteFile(both, append(a, b...), 0o600); err != nil {
			t.Fatal(err)
		}
		rogue.Args = append(tlsFlags(both, pair), "--join", n1.Peer)
		rogue.startNoWait()
		defer rogue.kill()
		waitFor(t, "n4 to report that the cluster refuses it", 30*time.Second, func() bool {
			return strings.Contains(rogue.Log.String(), "cannot join the cluster yet") || !rogue.running()
		})
		// The node asked says why in its log: the client sees only a
		// closed connection.
		waitFor(t, "n1 to log that it refused n4's certificate", 10*time.Second, func() bool {
			l := n1.Log.String()
			return strings.Contains(l, "TLS certificate refused") && strings.Contains(l, `client certificate \"n4\" refused`)
		})
		st, err := c.status(n1)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st.Members {
			if m.ID == "n4" {
				t.Fatalf("n4 became a member: %+v", m)
			}
		}
		// The same certificate in a hand-made peer client: no RPC of
		// any kind (raft, log stream, snapshot, join) reaches a handler.
		cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := transport.NewPool(1<<20, "", transport.WithClientTLS(func() *tls.Config {
			cfg := c.tlsConfig()
			cfg.ServerName = ""
			cfg.Certificates = []tls.Certificate{cert}
			return cfg
		}))
		defer pool.Close()
		pc, err := pool.Client(n1.Peer)
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := pc.Raft(pctx, &pb.RaftBatch{}); err == nil {
			t.Error("raft batch accepted from a foreign certificate")
		}
		if _, err := pc.Join(pctx, &pb.JoinRequest{Id: "n4", PeerAddr: rogue.Peer}); err == nil {
			t.Error("join accepted from a foreign certificate")
		}
		if s, err := pc.Snapshot(pctx, &pb.SnapshotRequest{FollowerId: "n4"}); err == nil {
			if _, err := s.Recv(); err == nil {
				t.Error("snapshot streamed to a foreign certificate")
			}
		}
		if s, err := pc.Replicate(pctx); err == nil {
			_ = s.Send(&pb.FollowerMsg{Msg: &pb.FollowerMsg_Hello{Hello: &pb.Hello{FollowerId: "n2"}}})
			if _, err := s.Recv(); err == nil {
				t.Error("log stream opened for a foreign certificate")
			}
		}
	})

	t.Run("certificates reload without a restart", func(t *testing.T) {
		before, err := c.serial(n1.RESP, nil)
		if err != nil {
			t.Fatal(err)
		}
		if before.Cmp(c.pairs["n1"].Serial) != 0 {
			t.Fatalf("n1 serves serial %v, want %v: the test proves nothing", before, c.pairs["n1"].Serial)
		}
		// n1: rotate, then SIGHUP (its reload interval is 0, so only the
		// signal can make it load the new files).
		rotated := c.ca.IssueTo(c.pairs["n1"], "n1", "127.0.0.1", "localhost")
		if err := n1.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		peerCert, err := tls.LoadX509KeyPair(c.pairs["n3"].CertFile, c.pairs["n3"].KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, port := range []struct {
			name, addr string
			cert       *tls.Certificate
		}{{"RESP", n1.RESP, nil}, {"HTTP", n1.HTTP, nil}, {"peer", n1.Peer, &peerCert}} {
			waitFor(t, "n1 "+port.name+" to serve the rotated certificate", 20*time.Second, func() bool {
				s, err := c.serial(port.addr, port.cert)
				return err == nil && s.Cmp(rotated.Serial) == 0
			})
		}
		// n2: rotate and let it notice the change by itself.
		rotated2 := c.ca.IssueTo(c.pairs["n2"], "n2", "127.0.0.1", "localhost")
		waitFor(t, "n2 to serve its rotated certificate", 20*time.Second, func() bool {
			s, err := c.serial(n2.RESP, nil)
			return err == nil && s.Cmp(rotated2.Serial) == 0
		})
		if !n1.running() || !n2.running() {
			t.Fatal("a node exited on reload")
		}
		// The cluster still replicates with the new certificates.
		if err := c.redis(n1).Set(ctx, "after-reload", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "n2 has after-reload", 20*time.Second, func() bool {
			v, err := c.redis(n2).Get(ctx, "after-reload").Result()
			return err == nil && v == "1"
		})
	})

	t.Run("fails over over TLS", func(t *testing.T) {
		if err := c.redis(n1).Set(ctx, "before-failover", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		n1.kill()
		var leader *proc
		waitFor(t, "a new leader among n2 and n3", 30*time.Second, func() bool {
			for _, p := range []*proc{n2, n3} {
				st, err := c.status(p)
				if err == nil && st.Role == "leader" {
					leader = p
					return true
				}
			}
			return false
		})
		// Every acknowledged write survived (FIRST 1: a sync follower had it).
		if v, err := c.redis(leader).Get(ctx, "before-failover").Result(); err != nil || v != "1" {
			t.Fatalf("new leader %s: before-failover = %q, %v", leader.ID, v, err)
		}
		var err error
		waitFor(t, "a write on the new leader", 30*time.Second, func() bool {
			err = c.redis(leader).Set(ctx, "after-failover", "1", 0).Err()
			return err == nil
		})
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	})
}

// TestTLSLeaderlessLeave: a leaderless node asked to leave hands its keys
// over and then asks another member, over that member's HTTPS API and
// with its own certificate, to remove it.
func TestTLSLeaderlessLeave(t *testing.T) {
	c := newTLSCluster(t, 4, nil, "--mode", "leaderless", "--tls-auth-clients", "yes")
	ctx := ctxT(t, 2*time.Minute)
	// Clients must present a certificate too (--tls-auth-clients yes);
	// c.client presents the test's.
	cl := c.client
	noCert := c.tlsConfig()
	noCert.Certificates = nil
	if _, err := client.New(c.nodes[0].HTTP, client.Options{TLS: noCert}).Status(ctx); err == nil {
		t.Fatal("a client without a certificate was served with --tls-auth-clients yes")
	}
	// ... and knows their HTTP addresses (published through the control
	// plane once each node runs): n4 needs one to ask for its removal.
	waitFor(t, "every node sees the three others healthy, with their HTTP addresses", 30*time.Second, func() bool {
		for _, p := range c.nodes {
			st, err := cl(p).Status(ctx)
			if err != nil || len(st.Members) != 3 {
				return false
			}
			for _, m := range st.Members {
				if !m.Healthy || m.HTTP == "" {
					return false
				}
			}
		}
		return true
	})
	for i := range 50 {
		if err := cl(c.nodes[0]).Put(ctx, fmt.Sprintf("k%02d", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	n4 := c.nodes[3]
	if err := cl(n4).RemoveMember(ctx, "n4"); err != nil {
		t.Fatalf("remove n4 through itself: %v\n%s", err, n4.Log.String())
	}
	st, err := cl(n4).Status(ctx)
	if err != nil || st.Rebalance == nil || st.Rebalance.State != "left" {
		t.Fatalf("n4's status after leaving: %+v, %v; want rebalance left", st, err)
	}
	waitFor(t, "n1 no longer lists n4", 30*time.Second, func() bool {
		st, err := cl(c.nodes[0]).Status(ctx)
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ID == "n4" {
				return false
			}
		}
		return true
	})
}
