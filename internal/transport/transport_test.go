package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/transport/pb"
)

type fakeHandler struct{ raft chan int }

func (f *fakeHandler) HandleRaft(_ context.Context, msgs []*raftpb.Message) error {
	f.raft <- len(msgs)
	return nil
}
func (f *fakeHandler) HandleReplicate(pb.Peer_ReplicateServer) error { return nil }
func (f *fakeHandler) HandleSnapshot(*pb.SnapshotRequest, pb.Peer_SnapshotServer) error {
	return nil
}
func (f *fakeHandler) HandleJoin(context.Context, *pb.JoinRequest) (*pb.JoinResponse, error) {
	return &pb.JoinResponse{}, nil
}
func (f *fakeHandler) HandlePosition(context.Context, *pb.PositionRequest) (*pb.PositionResponse, error) {
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
