// Regression tests for two Leader bugs found in review (both fixed).
//
//  1. TestReviewLeaderCoreStartsAtCommitZero: NewLeader never seeds
//     CoreConfig.CommitLSN, so the core believes nothing is committed after a
//     leader (re)start. holdsCommit() then lets the sync set shrink to a
//     follower that does not hold the writes acknowledged before the
//     restart, breaking "a failover that picks among C can find one that
//     holds every acknowledged write".
//  2. TestReviewLeaderStaleStreamDisconnectsLiveStream: when a follower
//     reconnects, the replaced stream's deferred core.Disconnected runs
//     whenever that stream finally ends (e.g. after its Send, blocked on a
//     dead connection, fails) and marks the follower disconnected although
//     the new stream is live; nothing reconnects it until the next stream.
package replication

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/replicant-db/replicant/internal/policy"
	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

type reviewCAS struct {
	mu    sync.Mutex
	calls [][]string
	ch    chan []string
}

func (c *reviewCAS) CompareAndSetSyncSet(_ context.Context, _ uint64, _, set []string) error {
	c.mu.Lock()
	c.calls = append(c.calls, set)
	c.mu.Unlock()
	c.ch <- set
	return nil
}

func TestReviewLeaderCoreStartsAtCommitZero(t *testing.T) {
	s := openStore(t)
	var es []storage.Entry
	for lsn := uint64(1); lsn <= 100; lsn++ {
		es = append(es, storage.Entry{LSN: lsn, Epoch: 1, Ops: []storage.Op{{Kind: storage.OpSet, Key: []byte("k"), Value: []byte("v")}}})
	}
	// A previous life of this leader committed (and acknowledged) 1..100
	// with n2 as the only sync member.
	p, err := s.Append(es, storage.AppendOptions{Apply: true, Sync: true, CommitLSN: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.ParseCommit("FIRST 1 (n2,n3)")
	if err != nil {
		t.Fatal(err)
	}
	cas := &reviewCAS{ch: make(chan []string, 16)}
	l := NewLeader(LeaderConfig{ID: "n1", Store: s, Epoch: 2, Control: cas,
		Core: CoreConfig{Policy: pol, Ack: policy.AckDurable, Fallback: policy.FallbackBlock, Followers: []string{"n2", "n3"}, CommittedSyncSet: []string{"n2"}}})
	defer l.Close()
	// n2 is down; n3 is healthy but holds only up to 50.
	l.mu.Lock()
	l.core.Connected("n3", 50, time.Now())
	l.core.Ack("n3", 50, 50, 50, time.Now())
	l.handleReadyLocked()
	l.mu.Unlock()
	wait := func() []string {
		select {
		case set := <-cas.ch:
			return set
		case <-time.After(2 * time.Second):
			return nil
		}
	}
	if set := wait(); !slices.Equal(set, []string{"n2", "n3"}) {
		t.Fatalf("first proposal = %v, want [n2 n3]", set)
	}
	l.SyncSetCommitted([]string{"n2", "n3"})
	if set := wait(); set != nil {
		t.Fatalf("sync set proposed to shrink to %v although that follower holds only LSN 50 of 100 committed", set)
	}
}

// reviewStream is a fake server-side log stream.
type reviewStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	in     chan *pb.FollowerMsg
	mu     sync.Mutex
	sent   []*pb.LeaderMsg
	// block: after the first message (Start), Send blocks until release is
	// closed and then fails, like Send on a dead connection.
	block   bool
	release chan struct{}
}

func newReviewStream(block bool) *reviewStream {
	ctx, cancel := context.WithCancel(context.Background())
	return &reviewStream{ctx: ctx, cancel: cancel, in: make(chan *pb.FollowerMsg, 16), block: block, release: make(chan struct{})}
}

func (s *reviewStream) Send(m *pb.LeaderMsg) error {
	s.mu.Lock()
	n := len(s.sent)
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	if s.block && n > 0 {
		<-s.release
		return errors.New("connection reset")
	}
	return nil
}

func (s *reviewStream) Recv() (*pb.FollowerMsg, error) {
	select {
	case m := <-s.in:
		return m, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

func (s *reviewStream) nsent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

func (s *reviewStream) SetHeader(metadata.MD) error  { return nil }
func (s *reviewStream) SendHeader(metadata.MD) error { return nil }
func (s *reviewStream) SetTrailer(metadata.MD)       {}
func (s *reviewStream) Context() context.Context     { return s.ctx }
func (s *reviewStream) SendMsg(any) error            { return nil }
func (s *reviewStream) RecvMsg(any) error            { return nil }

func hello(id string) *pb.FollowerMsg {
	return &pb.FollowerMsg{Msg: &pb.FollowerMsg_Hello{Hello: &pb.Hello{FollowerId: id, Epoch: 1}}}
}

func TestReviewLeaderStaleStreamDisconnectsLiveStream(t *testing.T) {
	s := openStore(t)
	l := NewLeader(LeaderConfig{ID: "n1", Store: s, Epoch: 1, Heartbeat: 5 * time.Millisecond,
		Core: CoreConfig{Policy: policy.Commit{Kind: policy.Async}, Followers: []string{"n2"}}})
	defer l.Close()
	connected := func() bool {
		for _, p := range l.Progress() {
			if p.ID == "n2" {
				return p.Connected
			}
		}
		return false
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}

	a := newReviewStream(true)
	defer a.cancel()
	a.in <- hello("n2")
	aDone := make(chan error, 1)
	go func() { aDone <- l.ServeFollower(a) }()
	eventually("stream A to block in Send", func() bool { return a.nsent() >= 2 })

	b := newReviewStream(false)
	defer b.cancel()
	b.in <- hello("n2")
	bDone := make(chan error, 1)
	go func() { bDone <- l.ServeFollower(b) }()
	eventually("stream B to connect", func() bool { return b.nsent() >= 1 && connected() })

	close(a.release) // A's dead connection finally errors out
	select {
	case <-aDone:
	case <-time.After(2 * time.Second):
		t.Fatal("stream A did not end")
	}
	a.cancel() // as gRPC does when the handler returns
	time.Sleep(20 * time.Millisecond)
	if !connected() {
		t.Errorf("n2 streams on B, but the core says it is disconnected (stale Disconnected from replaced stream A)")
	}
	b.cancel()
	<-bDone
}
