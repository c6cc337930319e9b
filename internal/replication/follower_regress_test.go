// Regression test (found in review, fixed): a delayed replica's apply queue (Follower.applyq)
// is not trimmed when a divergent suffix is rolled back. The stale stamps name
// LSNs that were truncated; once the new leader's entries reuse those LSNs the
// apply loop applies them on the old entries' (earlier) timestamps, and while
// the log is shorter than the stale stamps ApplyUpTo fails "beyond last LSN",
// which ends applyLoop; its error is never acted on (stream() only reads errc
// after recvLoop returns), so the delayed replica silently stops applying.
package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

func TestReviewRollbackLeavesStaleApplyQueue(t *testing.T) {
	s := openStore(t)
	old := time.Now().Add(-time.Hour).UnixNano()
	var es []storage.Entry
	for lsn := uint64(1); lsn <= 5; lsn++ {
		es = append(es, storage.Entry{LSN: lsn, Epoch: 1, Time: old,
			Ops: []storage.Op{{Kind: storage.OpSet, Key: []byte("k"), Value: []byte{byte('0' + lsn)}}}})
	}
	p, err := s.Append(es, storage.AppendOptions{Sync: true}) // received, not applied
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	f := NewFollower(FollowerConfig{ID: "n2", Store: s, Epoch: 2, ApplyDelay: time.Minute, RollbackDir: t.TempDir()})
	if err := f.rollback(2, 2); err != nil { // the new leader of epoch 2 has only LSN 1..2
		t.Fatal(err)
	}
	last := s.State().LastLSN
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, st := range f.applyq {
		if st.lsn > last {
			t.Fatalf("apply queue still names LSN %d after rollback to %d (queue %v); applyLoop would call ApplyUpTo(%d) and fail",
				st.lsn, last, f.applyq, f.applyq[len(f.applyq)-1].lsn)
		}
	}
}

// Regression test (found in review, fixed): Follower.Run ignores cancellation while it
// installs a snapshot (session passes context.WithoutCancel to
// installSnapshot). node.stopRoleLocked cancels the follower and then waits
// for it while holding n.mu, so a snapshot stream from a stalled or
// partitioned leader freezes the whole node (every n.mu user: reads, writes,
// status, role changes, HandleReplicate) until the stream ends.
type reviewClient struct {
	pb.PeerClient               // nil: methods the test does not use (keeps compiling as the service grows)
	stop          chan struct{} // test cleanup: unblocks everything
}

func (c *reviewClient) Raft(context.Context, *pb.RaftBatch, ...grpc.CallOption) (*pb.Empty, error) {
	return nil, errors.New("unused")
}
func (c *reviewClient) Join(context.Context, *pb.JoinRequest, ...grpc.CallOption) (*pb.JoinResponse, error) {
	return nil, errors.New("unused")
}
func (c *reviewClient) Replicate(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[pb.FollowerMsg, pb.LeaderMsg], error) {
	return &reviewClientStream{ctx: ctx, stop: c.stop, first: &pb.LeaderMsg{Msg: &pb.LeaderMsg_Start{Start: &pb.Start{
		Epoch: 1, LeaderId: "n1", NeedSnapshot: true, Reason: "test"}}}}, nil
}
func (c *reviewClient) Snapshot(ctx context.Context, _ *pb.SnapshotRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[pb.SnapshotChunk], error) {
	return &reviewSnapStream{reviewClientStream{ctx: ctx, stop: c.stop}}, nil
}

type reviewClientStream struct {
	ctx   context.Context
	stop  chan struct{}
	first *pb.LeaderMsg
}

func (s *reviewClientStream) Send(*pb.FollowerMsg) error { return nil }
func (s *reviewClientStream) Recv() (*pb.LeaderMsg, error) {
	if m := s.first; m != nil {
		s.first = nil
		return m, nil
	}
	return nil, s.block()
}
func (s *reviewClientStream) block() error {
	// A leader that stopped sending: only the call's context ends the wait.
	select {
	case <-s.ctx.Done():
		return s.ctx.Err()
	case <-s.stop:
		return errors.New("test over")
	}
}
func (s *reviewClientStream) Header() (metadata.MD, error) { return nil, nil }
func (s *reviewClientStream) Trailer() metadata.MD         { return nil }
func (s *reviewClientStream) CloseSend() error             { return nil }
func (s *reviewClientStream) Context() context.Context     { return s.ctx }
func (s *reviewClientStream) SendMsg(any) error            { return nil }
func (s *reviewClientStream) RecvMsg(any) error            { return nil }

type reviewSnapStream struct{ reviewClientStream }

func (s *reviewSnapStream) Recv() (*pb.SnapshotChunk, error) { return nil, s.block() }

func TestReviewFollowerRunIgnoresCancelDuringSnapshot(t *testing.T) {
	s := openStore(t)
	c := &reviewClient{stop: make(chan struct{})}
	defer close(c.stop)
	f := NewFollower(FollowerConfig{ID: "n2", Store: s, LeaderID: "n1", Epoch: 1,
		Dial: func() (pb.PeerClient, error) { return c, nil }, RollbackDir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	for deadline := time.Now().Add(2 * time.Second); f.Status().State != "snapshotting"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("follower never started the snapshot")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Follower.Run did not return within 1s of cancellation while installing a snapshot")
	}
}
