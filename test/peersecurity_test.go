package test

// Peer-port security, found by a security pass: without a password, a
// client opened a log stream in the name of the paused sync follower and
// acknowledged LSN 2^64-1, and writes no follower held were acknowledged
// (and lost after a leader kill); the same port handed out a snapshot of
// all data and accepted a rogue member's join.

import (
	"context"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/transport"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// peerClient is a stranger's client for a node's peer port, presenting
// secret ("" presents none).
func peerClient(t *testing.T, addr, secret string) pb.PeerClient {
	t.Helper()
	pool := transport.NewPool(64<<20, secret)
	t.Cleanup(pool.Close)
	c, err := pool.Client(addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPeerFakeSyncFollowerCannotAckWrites: with FIRST 1 (n2) and n2 paused,
// a stranger opens a log stream claiming to be n2, with a hello matching the
// leader's log, and acknowledges LSN 2^64-1 over and over. No write may be
// acknowledged because of it: the leader closes that stream, and the write
// waits for a real sync follower and fails with the policy's error.
func TestPeerFakeSyncFollowerCannotAckWrites(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (n2)", "--sync-timeout", "1s", "--write-timeout", "3s")
	leader, n2 := c.node("n1"), c.node("n2")
	rdb := leader.redis()
	ctx := ctxT(t, 2*time.Minute)
	if err := rdb.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.waitCaughtUp(leader, n2)
	if err := n2.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n2.Signal(syscall.SIGCONT) })
	st := leader.mustStatus()

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	stream, err := peerClient(t, leader.Peer, "").Replicate(sctx)
	if err != nil {
		t.Fatal(err)
	}
	// The hello a caught-up n2 would send: the leader's whole log, epoch 1
	// from LSN 1 (the cluster has had one leader).
	hello := &pb.Hello{FollowerId: "n2", LastLsn: st.LastLSN, LastEpoch: st.Epoch, Epoch: st.Epoch,
		Epochs: []*pb.EpochStart{{Epoch: st.Epoch, FirstLsn: 1}}}
	if err := stream.Send(&pb.FollowerMsg{Msg: &pb.FollowerMsg_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil {
		t.Fatalf("fake follower: no start: %v", err)
	}
	if s := m.GetStart(); s == nil || s.GetNeedSnapshot() || s.GetTruncate() || s.GetFromLsn() != st.LastLSN+1 {
		t.Fatalf("fake follower was not taken for a caught-up n2 (start %v): the test proves nothing", m)
	}
	recvErr := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				recvErr <- err
				return
			}
		}
	}()
	go func() {
		for sctx.Err() == nil {
			ack := &pb.Ack{Received: math.MaxUint64, Durable: math.MaxUint64, Applied: math.MaxUint64}
			if stream.Send(&pb.FollowerMsg{Msg: &pb.FollowerMsg_Ack{Ack: ack}}) != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = rdb.Set(wctx, "k", "after-fake-ack", 0).Err()
	if err == nil {
		t.Fatal("a write was acknowledged while the only sync follower was paused: the fake ack of LSN 2^64-1 counted")
	}
	if !strings.Contains(err.Error(), "not enough synchronous followers") {
		t.Fatalf("write failed, but not for want of the sync follower: %v", err)
	}
	select {
	case err := <-recvErr:
		if !strings.Contains(err.Error(), "beyond what this stream was sent") {
			t.Fatalf("fake stream ended with %v, want the leader to refuse its ack", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leader kept the fake follower's stream open")
	}
	stop()

	// The real n2 comes back, takes its place again, and writes commit.
	if err := n2.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitFor("n2 streams again", 30*time.Second, func() bool {
		s, err := n2.status()
		return err == nil && s.State == "streaming"
	})
	if err := rdb.Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Fatalf("write with n2 back: %v", err)
	}
	c.waitCaughtUp(leader, n2)
	if v, err := n2.redis().Get(ctx, "k").Result(); err != nil || v != "after" {
		t.Fatalf("n2 has k=%q (%v), want after", v, err)
	}
}

// TestPeerSecretRefusesStrangers: three nodes get one --peer-secret, each
// from another source (flag, file, environment), and replicate with it; a
// stranger without it, or with a wrong one, is refused for the log stream,
// the snapshot stream and a join, and the rogue member never joins.
func TestPeerSecretRefusesStrangers(t *testing.T) {
	const secret = "peer-s3cret"
	file := filepath.Join(t.TempDir(), "peer-secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t}
	var initial []string
	for _, id := range []string{"n1", "n2", "n3"} {
		p := newProc(t, id)
		c.nodes = append(c.nodes, p)
		initial = append(initial, p.ID+"="+p.Peer)
	}
	base := []string{"--initial-cluster", strings.Join(initial, ","), "--sync", "FIRST 1 (n2,n3)"}
	c.nodes[0].Args = slices.Concat(base, []string{"--peer-secret", secret})
	c.nodes[1].Args = slices.Concat(base, []string{"--peer-secret-file", file})
	c.nodes[2].Args = base
	c.nodes[2].Prefix = []string{"env", "REPLICANT_PEER_SECRET=" + secret}
	for _, p := range c.nodes {
		p.startNoWait()
	}
	for _, p := range c.nodes {
		p.waitHealthy()
	}
	c.waitFor("n1 leads and both followers stream with the secret", 30*time.Second, func() bool {
		for _, p := range c.nodes {
			st, err := p.status()
			if err != nil || st.Leader != "n1" || (p.ID != "n1" && st.State != "streaming") {
				return false
			}
		}
		return true
	})
	leader := c.node("n1")
	ctx := ctxT(t, 2*time.Minute)
	if err := leader.redis().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.waitCaughtUp(leader, c.nodes[1:]...)

	refused := func(who, what string, err error) {
		t.Helper()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %s: got %v, want Unauthenticated", who, what, err)
		}
	}
	for _, stranger := range []string{"", "wrong", secret + "x"} {
		who := "stranger with secret " + strings.Repeat("*", len(stranger))
		for _, p := range c.nodes {
			cl := peerClient(t, p.Peer, stranger)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			st, err := cl.Replicate(cctx)
			if err == nil {
				_ = st.Send(&pb.FollowerMsg{Msg: &pb.FollowerMsg_Hello{Hello: &pb.Hello{FollowerId: "n2", Epoch: 1}}})
				_, err = st.Recv()
			}
			refused(who, "Replicate on "+p.ID, err)
			sn, err := cl.Snapshot(cctx, &pb.SnapshotRequest{FollowerId: "n2", Epoch: 1})
			if err == nil {
				_, err = sn.Recv()
			}
			refused(who, "Snapshot on "+p.ID, err)
			_, err = cl.Join(cctx, &pb.JoinRequest{Id: "rogue", PeerAddr: "127.0.0.1:1"})
			refused(who, "Join on "+p.ID, err)
			cancel()
		}
	}
	for _, m := range leader.mustStatus().Members {
		if m.ID == "rogue" {
			t.Fatal("the rogue member joined")
		}
	}
	// The refusals were the secret's doing: with it, the snapshot flows.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sn, err := peerClient(t, leader.Peer, secret).Snapshot(cctx, &pb.SnapshotRequest{FollowerId: "n3", Epoch: 1})
	if err == nil {
		_, err = sn.Recv()
	}
	if err != nil {
		t.Fatalf("snapshot with the secret: %v", err)
	}
}

// runServerFails runs `replicant server` with args and env, expecting it to
// exit non-zero before serving; it returns the output.
func runServerFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	addrs := freeAddrs(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, slices.Concat([]string{"server", "--id", "n1", "--data", t.TempDir(),
		"--resp", addrs[0], "--http", addrs[1], "--peer", addrs[2]}, args)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("server %v started; want it refused:\n%s", args, out)
	}
	return string(out)
}

// TestPeerSecretSources: each secret comes from exactly one of flag, file
// or environment (two at once is an error naming both), an empty secret
// file is refused, without --peer-secret the peer port falls back to
// --requirepass (as before the flag existed), and with it the client
// password no longer opens the peer port.
func TestPeerSecretSources(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	pass := filepath.Join(dir, "pass")
	for f, v := range map[string]string{empty: "\n", pass: "clientpw\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"REPLICANT_PEER_SECRET=b"}, []string{"--peer-secret", "a"}, "--peer-secret is set 2 ways (--peer-secret, $REPLICANT_PEER_SECRET)"},
		{nil, []string{"--requirepass", "a", "--requirepass-file", pass}, "--requirepass is set 2 ways (--requirepass, --requirepass-file " + pass + ")"},
		{[]string{"REPLICANT_REQUIREPASS=b"}, []string{"--requirepass-file", pass}, "--requirepass is set 2 ways"},
		{nil, []string{"--peer-secret-file", empty}, "is empty"},
		{nil, []string{"--peer-secret-file", filepath.Join(dir, "missing")}, "no such file"},
	} {
		if out := runServerFails(t, tc.env, tc.args...); !strings.Contains(out, tc.want) {
			t.Errorf("server %v (env %v): output lacks %q:\n%s", tc.args, tc.env, tc.want, out)
		}
	}

	position := func(addr, secret string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := peerClient(t, addr, secret).Position(ctx, &pb.PositionRequest{})
		return err
	}
	// Only a client password, from a file: the peer port requires it too.
	old := newProc(t, "n1", "--requirepass-file", pass)
	old.start()
	if err := position(old.Peer, ""); status.Code(err) != codes.Unauthenticated {
		t.Errorf("--requirepass only: peer without it: got %v, want Unauthenticated", err)
	}
	if err := position(old.Peer, "clientpw"); err != nil {
		t.Errorf("--requirepass only: peer with it: %v", err)
	}
	old.stop()

	// Both: the peer port wants the peer secret, not the client password.
	both := newProc(t, "n1", "--requirepass", "clientpw")
	both.Prefix = []string{"env", "REPLICANT_PEER_SECRET=peerpw"}
	both.start()
	if err := position(both.Peer, "clientpw"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("with --peer-secret: peer presenting the client password: got %v, want Unauthenticated", err)
	}
	if err := position(both.Peer, "peerpw"); err != nil {
		t.Errorf("with --peer-secret: peer with it: %v", err)
	}
	both.stop()
}

// TestPeerPortsBeyondLoopbackWarn: a node listening on every interface
// without authentication says so loudly for each such port, on stderr as a
// plain line; with --requirepass and --peer-secret it does not.
func TestPeerPortsBeyondLoopbackWarn(t *testing.T) {
	wild := func(addr string) string {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return "0.0.0.0:" + port
	}
	open := newProc(t, "n1")
	// Later flags win: the same ports, on every interface (the harness
	// still reaches them on loopback).
	open.Args = []string{"--resp", wild(open.RESP), "--http", wild(open.HTTP), "--peer", wild(open.Peer)}
	open.start()
	logs := open.Log.String()
	open.stop()
	for _, want := range []string{
		"WARNING: --resp " + wild(open.RESP) + " listens beyond loopback without authentication",
		"WARNING: --http " + wild(open.HTTP) + " listens beyond loopback without authentication",
		"WARNING: --peer " + wild(open.Peer) + " listens beyond loopback without authentication",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no warning %q in:\n%s", want, logs)
		}
	}

	closed := newProc(t, "n1")
	closed.Args = []string{"--resp", wild(closed.RESP), "--http", wild(closed.HTTP), "--peer", wild(closed.Peer),
		"--requirepass", "clientpw", "--peer-secret", "peerpw"}
	closed.start()
	logs = closed.Log.String()
	closed.stop()
	if strings.Contains(logs, "without authentication") {
		t.Errorf("warned although every port requires a secret:\n%s", logs)
	}
}
