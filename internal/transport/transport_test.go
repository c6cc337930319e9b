package transport

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/transport/pb"
)

type fakeHandler struct {
	raft  chan int
	calls atomic.Int64 // handler invocations of any kind
}

func (f *fakeHandler) HandleRaft(_ context.Context, msgs []*raftpb.Message) error {
	f.calls.Add(1)
	select {
	case f.raft <- len(msgs):
	default:
	}
	return nil
}
func (f *fakeHandler) HandleReplicate(pb.Peer_ReplicateServer) error { f.calls.Add(1); return nil }
func (f *fakeHandler) HandleSnapshot(*pb.SnapshotRequest, pb.Peer_SnapshotServer) error {
	f.calls.Add(1)
	return nil
}
func (f *fakeHandler) HandleJoin(context.Context, *pb.JoinRequest) (*pb.JoinResponse, error) {
	f.calls.Add(1)
	return &pb.JoinResponse{}, nil
}
func (f *fakeHandler) HandlePosition(context.Context, *pb.PositionRequest) (*pb.PositionResponse, error) {
	f.calls.Add(1)
	return &pb.PositionResponse{Id: "x", LastLsn: 7}, nil
}

// TestClusterSecret: with a secret, peers without it (or with another one)
// are refused as Unauthenticated, for unary and streaming calls alike.
func TestClusterSecret(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(&fakeHandler{raft: make(chan int, 8)}, 1<<20, "s3cret")
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	for _, tc := range []struct {
		secret string
		ok     bool
	}{{"s3cret", true}, {"", false}, {"wrong", false}} {
		pool := NewPool(1<<20, tc.secret)
		c, err := pool.Client(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := c.Position(ctx, &pb.PositionRequest{})
		if tc.ok && (err != nil || r.GetLastLsn() != 7) {
			t.Errorf("secret %q: unary call failed: %v", tc.secret, err)
		}
		if !tc.ok && status.Code(err) != codes.Unauthenticated {
			t.Errorf("secret %q: unary call: got %v, want Unauthenticated", tc.secret, err)
		}
		st, err := c.Replicate(ctx)
		if err == nil {
			_, err = st.Recv()
		}
		if !tc.ok && status.Code(err) != codes.Unauthenticated {
			t.Errorf("secret %q: stream: got %v, want Unauthenticated", tc.secret, err)
		}
		cancel()
		pool.Close()
	}
}

// everyRPC calls each method of the peer service once and returns each
// call's error (for streams: the error of the first Recv, where gRPC
// reports a refusal).
func everyRPC(ctx context.Context, c pb.PeerClient) map[string]error {
	out := map[string]error{}
	_, out["Raft"] = c.Raft(ctx, &pb.RaftBatch{})
	if st, err := c.Replicate(ctx); err != nil {
		out["Replicate"] = err
	} else {
		_ = st.Send(&pb.FollowerMsg{Msg: &pb.FollowerMsg_Hello{Hello: &pb.Hello{FollowerId: "n2"}}})
		_, out["Replicate"] = st.Recv()
	}
	if st, err := c.Snapshot(ctx, &pb.SnapshotRequest{FollowerId: "n2"}); err != nil {
		out["Snapshot"] = err
	} else {
		_, out["Snapshot"] = st.Recv()
	}
	_, out["Join"] = c.Join(ctx, &pb.JoinRequest{})
	_, out["Position"] = c.Position(ctx, &pb.PositionRequest{})
	if st, err := c.Changes(ctx, &pb.ChangesRequest{Site: "us"}); err != nil {
		out["Changes"] = err
	} else {
		_, out["Changes"] = st.Recv()
	}
	_, out["SiteInfo"] = c.SiteInfo(ctx, &pb.SiteInfoRequest{})
	_, out["Replica"] = c.Replica(ctx, &pb.ReplicaRequest{})
	_, out["AntiEntropy"] = c.AntiEntropy(ctx, &pb.AntiEntropyRequest{})
	return out
}

// TestPeerSecretGuardsEveryRPC: with a cluster secret, a peer without it,
// with another one, or with the client password of some other node is
// refused on every RPC of the peer service (raft, log stream, snapshot,
// join, position) before any handler runs, and told which flag must match;
// the peer holding the secret reaches every handler.
func TestPeerSecretGuardsEveryRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{raft: make(chan int, 8)}
	srv := NewServer(h, 1<<20, "peer-s3cret")
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	methods := len(pb.Peer_ServiceDesc.Methods) + len(pb.Peer_ServiceDesc.Streams)
	for _, secret := range []string{"", "wrong", "peer-s3cre", "peer-s3cret2", "client-password"} {
		pool := NewPool(1<<20, secret)
		c, err := pool.Client(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res := everyRPC(ctx, c)
		cancel()
		pool.Close()
		if len(res) != methods {
			t.Fatalf("the test calls %d RPCs, the peer service has %d: call the new one too", len(res), methods)
		}
		for name, err := range res {
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("secret %q: %s: got %v, want Unauthenticated", secret, name, err)
			} else if !strings.Contains(status.Convert(err).Message(), "--peer-secret") {
				t.Errorf("secret %q: %s: refusal %q does not name --peer-secret", secret, name, status.Convert(err).Message())
			}
		}
	}
	if n := h.calls.Load(); n != 0 {
		t.Fatalf("%d handler calls ran for peers without the secret", n)
	}

	pool := NewPool(1<<20, "peer-s3cret")
	defer pool.Close()
	c, err := pool.Client(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, err := range everyRPC(ctx, c) {
		if status.Code(err) == codes.Unauthenticated {
			t.Errorf("with the secret: %s refused: %v", name, err)
		}
	}
	if n := h.calls.Load(); n != int64(methods) {
		t.Fatalf("with the secret %d handler calls ran, want %d (one per RPC)", n, methods)
	}
}

func (f *fakeHandler) HandleChanges(*pb.ChangesRequest, pb.Peer_ChangesServer) error {
	f.calls.Add(1)
	return errors.New("not a multi-leader site")
}

func (f *fakeHandler) HandleSiteInfo(context.Context, *pb.SiteInfoRequest) (*pb.SiteInfoResponse, error) {
	f.calls.Add(1)
	return nil, errors.New("not a multi-leader site")
}

func (f *fakeHandler) HandleReplica(context.Context, *pb.ReplicaRequest) (*pb.ReplicaResponse, error) {
	f.calls.Add(1)
	return nil, errors.New("not a leaderless node")
}

func (f *fakeHandler) HandleAntiEntropy(context.Context, *pb.AntiEntropyRequest) (*pb.AntiEntropyResponse, error) {
	f.calls.Add(1)
	return nil, errors.New("not a leaderless node")
}
