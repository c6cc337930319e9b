package replication

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/replicant-db/replicant/internal/transport/pb"
)

// snapshotSink is the server side of a snapshot stream that records chunks.
type snapshotSink struct {
	ctx    context.Context
	chunks int
}

func (s *snapshotSink) Send(*pb.SnapshotChunk) error { s.chunks++; return nil }
func (s *snapshotSink) SetHeader(metadata.MD) error  { return nil }
func (s *snapshotSink) SendHeader(metadata.MD) error { return nil }
func (s *snapshotSink) SetTrailer(metadata.MD)       {}
func (s *snapshotSink) Context() context.Context     { return s.ctx }
func (s *snapshotSink) SendMsg(any) error            { return nil }
func (s *snapshotSink) RecvMsg(any) error            { return nil }

// A follower that already follows a newer epoch gets no snapshot from an
// older leader: the epoch on the request fences the old leader off.
func TestSnapshotRequestFromNewerEpochIsRefused(t *testing.T) {
	l := boundLeader(t) // epoch 1
	sink := &snapshotSink{ctx: context.Background()}
	err := l.ServeSnapshot(&pb.SnapshotRequest{FollowerId: "n2", Epoch: 2}, sink)
	if !errors.Is(err, ErrStaleLeader) || sink.chunks != 0 {
		t.Fatalf("snapshot for epoch 2 from a leader of epoch 1: err %v, %d chunks sent", err, sink.chunks)
	}
	if err := l.ServeSnapshot(&pb.SnapshotRequest{FollowerId: "n2", Epoch: 1}, sink); err != nil || sink.chunks == 0 {
		t.Fatalf("snapshot for the leader's own epoch: err %v, %d chunks", err, sink.chunks)
	}
}
