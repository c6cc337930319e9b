package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/replicant-db/replicant/internal/storage"
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

// failingSink fails every Send from the failAt-th on.
type failingSink struct {
	snapshotSink
	failAt int
	pairs  int
	done   bool
}

var errSinkBroken = errors.New("follower went away")

func (s *failingSink) Send(c *pb.SnapshotChunk) error {
	s.chunks++
	if s.failAt > 0 && s.chunks >= s.failAt {
		return errSinkBroken
	}
	s.pairs += len(c.GetPairs())
	s.done = s.done || c.GetDone() != nil
	return nil
}

// A snapshot is scanned while earlier chunks are being sent: every key
// arrives, in chunks, and a send that fails ends the snapshot with its
// error (the scan stops; goleak checks the sender goroutine is gone).
func TestSnapshotStreamsAllChunksOrStopsOnSendFailure(t *testing.T) {
	s := openStore(t)
	var ents []storage.Entry
	for i := 1; i <= 200; i++ {
		ents = append(ents, storage.Entry{LSN: uint64(i), Epoch: 1, Ops: []storage.Op{
			{Kind: storage.OpSet, Key: fmt.Appendf(nil, "k%03d", i), Value: bytes.Repeat([]byte("v"), 100)}}})
	}
	p, err := s.Append(ents, storage.AppendOptions{Apply: true, Sync: true, CommitLSN: 200})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	l := NewLeader(LeaderConfig{ID: "n1", Store: s, Epoch: 1, MaxSendBytes: 1 << 10})
	t.Cleanup(l.Close)

	all := &failingSink{snapshotSink: snapshotSink{ctx: context.Background()}}
	if err := l.ServeSnapshot(&pb.SnapshotRequest{FollowerId: "n2", Epoch: 1}, all); err != nil {
		t.Fatal(err)
	}
	if all.pairs != 200 || !all.done || all.chunks < 10 {
		t.Fatalf("snapshot sent %d pairs in %d chunks (done %v), want 200 pairs in many chunks and the end", all.pairs, all.chunks, all.done)
	}

	broken := &failingSink{snapshotSink: snapshotSink{ctx: context.Background()}, failAt: 3}
	if err := l.ServeSnapshot(&pb.SnapshotRequest{FollowerId: "n2", Epoch: 1}, broken); !errors.Is(err, errSinkBroken) {
		t.Fatalf("snapshot over a broken stream = %v, want its send error", err)
	}
	if broken.done {
		t.Fatal("a snapshot whose send failed still sent its end")
	}
}
