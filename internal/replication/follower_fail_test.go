package replication

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/storage/faultfs"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// failStream is a leader's log stream that delivers one batch of entries,
// then nothing more (a leader with no new writes): only the session's end
// ends Recv. Acks with a durable position fail when failDurable is set.
type failStream struct {
	reviewClientStream
	batch       *pb.LeaderMsg
	onBatch     func()
	failDurable bool
	durableSent atomic.Bool
}

var errAckLost = errors.New("ack lost")

func (s *failStream) Recv() (*pb.LeaderMsg, error) {
	if m := s.batch; m != nil {
		s.batch = nil
		s.onBatch()
		return m, nil
	}
	return nil, s.block()
}

func (s *failStream) Send(m *pb.FollowerMsg) error {
	if a := m.GetAck(); a != nil && a.GetDurable() > 0 {
		s.durableSent.Store(true)
		if s.failDurable {
			return errAckLost
		}
	}
	return nil
}

// TestFollowerSessionEndsWhenAckingFails: when the fsync of a received
// batch fails, or its durable ack cannot be sent, the follower's session
// ends with that error although the leader sends nothing more. (A failed
// fsync used to wait for the batches still queued before it ended the
// stream, and only the stream's end closes that queue: the session hung.)
func TestFollowerSessionEndsWhenAckingFails(t *testing.T) {
	for _, tc := range []struct {
		name        string
		failSync    bool
		failDurable bool
		want        string
	}{
		{"fsync fails", true, false, "fsync"},
		{"durable ack cannot be sent", false, true, errAckLost.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ffs := faultfs.New(nil)
			s, err := storage.Open(t.TempDir(), storage.Options{CacheBytes: 1 << 20, FS: ffs})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			e := storage.Entry{LSN: 1, Epoch: 1, Time: time.Now().UnixNano(),
				Ops: []storage.Op{{Kind: storage.OpSet, Key: []byte("k"), Value: []byte("v")}}}
			stop := make(chan struct{})
			t.Cleanup(func() { close(stop) })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st := &failStream{
				reviewClientStream: reviewClientStream{ctx: ctx, stop: stop},
				batch: &pb.LeaderMsg{Msg: &pb.LeaderMsg_Entries{Entries: &pb.Entries{
					Entries: [][]byte{storage.AppendEntry(nil, &e)}, CommitLsn: 1}}},
				// After the session's opening fsync, before the batch's.
				onBatch:     func() { ffs.FailWALSync.Store(tc.failSync) },
				failDurable: tc.failDurable,
			}
			f := NewFollower(FollowerConfig{ID: "n2", Store: s, Epoch: 1, RollbackDir: t.TempDir()})
			done := make(chan error, 1)
			go func() { done <- f.stream(ctx, cancel, st) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("session ended with %v, want an error saying %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the session did not end after its ack failed")
			}
			if tc.failDurable && !st.durableSent.Load() {
				t.Fatal("no durable ack was attempted")
			}
		})
	}
}
