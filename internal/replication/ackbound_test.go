package replication

// Tests for the per-stream acknowledgement bound: a follower's ack counts
// only up to what its own stream was sent (or held when it started). Found
// by a security pass: a client on the unauthenticated peer port opened a
// log stream in the name of a paused sync follower and acknowledged LSN
// 2^64-1, and writes no follower held were acknowledged to clients.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/policy"
	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// boundFollower is the server side of a log stream driven by the test: what
// the test puts in `in` the leader receives as the follower's messages.
type boundFollower struct {
	ctx    context.Context
	cancel context.CancelFunc
	in     chan *pb.FollowerMsg
	mu     sync.Mutex
	last   uint64 // highest LSN the leader sent on this stream
	start  *pb.Start
	// queued counts messages put in `in`; recvs counts the leader's Recv
	// calls. The leader has handled every queued message once it calls
	// Recv again: recvs > queued.
	queued, recvs int
}

func newBoundFollower(id string, lastLSN uint64, epochs []*pb.EpochStart) *boundFollower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &boundFollower{ctx: ctx, cancel: cancel, in: make(chan *pb.FollowerMsg, 16), queued: 1}
	f.in <- &pb.FollowerMsg{Msg: &pb.FollowerMsg_Hello{Hello: &pb.Hello{
		FollowerId: id, Epoch: 1, LastLsn: lastLSN, LastEpoch: 1, Epochs: epochs}}}
	return f
}

func (f *boundFollower) Send(m *pb.LeaderMsg) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := m.GetStart(); s != nil {
		f.start = s
	}
	for _, raw := range m.GetEntries().GetEntries() {
		e, err := storage.DecodeEntry(raw)
		if err != nil {
			return err
		}
		f.last = max(f.last, e.LSN)
	}
	return nil
}

func (f *boundFollower) Recv() (*pb.FollowerMsg, error) {
	f.mu.Lock()
	f.recvs++
	f.mu.Unlock()
	select {
	case m := <-f.in:
		return m, nil
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
}

func (f *boundFollower) ack(received, durable, applied uint64) {
	f.mu.Lock()
	f.queued++
	f.mu.Unlock()
	f.in <- &pb.FollowerMsg{Msg: &pb.FollowerMsg_Ack{Ack: &pb.Ack{Received: received, Durable: durable, Applied: applied}}}
}

func (f *boundFollower) lastSent() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// handled reports whether the leader has processed every queued message.
func (f *boundFollower) handled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recvs > f.queued
}

func (f *boundFollower) started() bool { return f.startMsg() != nil }

func (f *boundFollower) startMsg() *pb.Start {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.start
}

func (f *boundFollower) SetHeader(metadata.MD) error  { return nil }
func (f *boundFollower) SendHeader(metadata.MD) error { return nil }
func (f *boundFollower) SetTrailer(metadata.MD)       {}
func (f *boundFollower) Context() context.Context     { return f.ctx }
func (f *boundFollower) SendMsg(any) error            { return nil }
func (f *boundFollower) RecvMsg(any) error            { return nil }

// boundLeader is a leader whose only sync follower is n2 (FIRST 1 (n2),
// durable acks, fallback block): no write commits without n2's ack.
func boundLeader(t *testing.T) *Leader {
	t.Helper()
	pol, err := policy.ParseCommit("FIRST 1 (n2)")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLeader(LeaderConfig{ID: "n1", Store: openStore(t), Epoch: 1, Heartbeat: 5 * time.Millisecond,
		Core: CoreConfig{Policy: pol, Ack: policy.AckDurable, Fallback: policy.FallbackBlock,
			Followers: []string{"n2", "n3"}, CommittedSyncSet: []string{"n2"}}})
	t.Cleanup(l.Close)
	return l
}

func boundEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func boundPut(key string) func(engine.Txn) error {
	return func(tx engine.Txn) error {
		tx.Set([]byte(key), []byte("v"), 0)
		return nil
	}
}

// serve runs the leader's side of f and returns the channel its result
// arrives on.
func boundServe(l *Leader, f *boundFollower) <-chan error {
	done := make(chan error, 1)
	go func() { done <- l.ServeFollower(f) }()
	return done
}

func boundProgressN2(l *Leader) FollowerProgress {
	for _, p := range l.Progress() {
		if p.ID == "n2" {
			return p
		}
	}
	return FollowerProgress{}
}

// TestFakeFollowerAckingMaxLSNCommitsNothing: a stream claiming to be the
// sync follower that acknowledges LSN 2^64-1 — before anything was sent,
// or after some entries were — must not advance the commit LSN, and the
// leader closes that stream.
func TestFakeFollowerAckingMaxLSNCommitsNothing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		writeFirst bool // an entry is sent on the stream before the ack
	}{{"nothing sent yet", false}, {"after an entry was sent", true}} {
		t.Run(tc.name, func(t *testing.T) {
			l := boundLeader(t)
			f := newBoundFollower("n2", 0, nil)
			defer f.cancel()
			done := boundServe(l, f)
			boundEventually(t, "the leader to answer the hello", f.started)
			boundEventually(t, "n2 to count as connected", func() bool { return boundProgressN2(l).Connected })

			var pending chan error
			if tc.writeFirst {
				pending = make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
					defer cancel()
					_, err := l.Propose(ctx, boundPut("a"))
					pending <- err
				}()
				boundEventually(t, "LSN 1 to be sent to n2", func() bool { return f.lastSent() >= 1 })
			}

			f.ack(math.MaxUint64, math.MaxUint64, math.MaxUint64)
			var ended error
			boundEventually(t, "the leader to handle the ack", func() bool {
				select {
				case ended = <-done:
					return true
				default:
					return f.handled()
				}
			})
			if c := l.Writer().CommitLSN(); c != 0 {
				t.Fatalf("commit LSN is %d after a fake ack; nothing was on any follower", c)
			}
			if p := boundProgressN2(l); p.Durable != 0 || p.Received > f.lastSent() {
				t.Fatalf("n2's progress took the fake ack: received=%d durable=%d (sent up to %d)", p.Received, p.Durable, f.lastSent())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := l.Propose(ctx, boundPut("b")); !errors.Is(err, engine.ErrSyncUnavailable) {
				t.Fatalf("write after the fake ack: got %v, want engine.ErrSyncUnavailable", err)
			}
			if pending != nil {
				if err := <-pending; !errors.Is(err, engine.ErrSyncUnavailable) {
					t.Fatalf("write sent to the fake follower: got %v, want engine.ErrSyncUnavailable", err)
				}
			}
			if ended == nil {
				select {
				case ended = <-done:
				case <-time.After(waitTimeout):
					t.Fatal("the leader kept a stream that acknowledged LSN 2^64-1 open")
				}
			}
			if !errors.Is(ended, ErrAckBeyondSent) {
				t.Fatalf("stream ended with %v, want ErrAckBeyondSent", ended)
			}
			if c := l.Writer().CommitLSN(); c != 0 {
				t.Fatalf("commit LSN is %d; no follower acknowledged anything", c)
			}
		})
	}
}

// TestAckBoundedBySentStillCommits: acks within what was sent work as
// before, and an ack whose applied position is above its received one (a
// correct follower's loops can report that for a moment) is clamped to
// received instead of closing the stream.
func TestAckBoundedBySentStillCommits(t *testing.T) {
	l := boundLeader(t)
	f := newBoundFollower("n2", 0, nil)
	defer f.cancel()
	done := boundServe(l, f)
	boundEventually(t, "n2 to count as connected", func() bool { return boundProgressN2(l).Connected })

	write := func(key string) chan error {
		res := make(chan error, 1)
		go func() {
			_, err := l.Propose(ctxT(t), boundPut(key))
			res <- err
		}()
		return res
	}
	first := write("a")
	boundEventually(t, "LSN 1 to be sent", func() bool { return f.lastSent() >= 1 })
	f.ack(1, 1, 1)
	if err := <-first; err != nil {
		t.Fatalf("write acknowledged by n2: %v", err)
	}

	second := write("b")
	boundEventually(t, "LSN 2 to be sent", func() bool { return f.lastSent() >= 2 })
	f.ack(1, 1, 2) // applied above received, both within what was sent
	boundEventually(t, "the leader to handle the ack", f.handled)
	select {
	case err := <-done:
		t.Fatalf("the stream was closed for an ack within what was sent: %v", err)
	default:
	}
	if p := boundProgressN2(l); p.Applied != 1 {
		t.Fatalf("applied = %d, want it clamped to received (1)", p.Applied)
	}
	if c := l.Writer().CommitLSN(); c != 1 {
		t.Fatalf("commit LSN = %d before n2 acknowledged LSN 2 as durable, want 1", c)
	}
	f.ack(2, 2, 2)
	if err := <-second; err != nil {
		t.Fatalf("second write: %v", err)
	}
	f.cancel()
	<-done
}

// TestAckBoundStartsAtTheStreamsStartPoint: a follower reconnecting with a
// log that agrees with the leader's up to LSN x may acknowledge up to x at
// once (it holds those entries), but not beyond.
func TestAckBoundStartsAtTheStreamsStartPoint(t *testing.T) {
	l := boundLeader(t)
	// n2 streams, receives 1..2 and acknowledges them.
	a := newBoundFollower("n2", 0, nil)
	aDone := boundServe(l, a)
	// Before the first write: an empty follower of a leader with data is
	// sent to fetch a snapshot instead.
	boundEventually(t, "n2 to count as connected", func() bool { return boundProgressN2(l).Connected })
	for i, key := range []string{"a", "b"} {
		res := make(chan error, 1)
		go func() {
			_, err := l.Propose(ctxT(t), boundPut(key))
			res <- err
		}()
		lsn := uint64(i + 1)
		boundEventually(t, fmt.Sprintf("LSN %d to be sent", lsn), func() bool { return a.lastSent() >= lsn })
		a.ack(lsn, lsn, lsn)
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
	a.cancel()
	<-aDone

	// It comes back claiming LSN 2 of epoch 1.
	epochs := []*pb.EpochStart{{Epoch: 1, FirstLsn: 1}}
	b := newBoundFollower("n2", 2, epochs)
	defer b.cancel()
	bDone := boundServe(l, b)
	boundEventually(t, "the leader to answer the hello", b.started)
	if got := b.startMsg().GetFromLsn(); got != 3 {
		t.Fatalf("stream starts at %d, want 3", got)
	}
	b.ack(2, 2, 2)
	b.ack(3, 3, 3)
	select {
	case err := <-bDone:
		if !errors.Is(err, ErrAckBeyondSent) {
			t.Fatalf("stream ended with %v, want ErrAckBeyondSent", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("an ack of LSN 3, never written, kept the stream open")
	}
	if p := boundProgressN2(l); p.Durable != 2 {
		t.Fatalf("n2 durable = %d, want 2 (its start point; the ack of 3 refused)", p.Durable)
	}
}
