package replication

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// A follower behind entries written before this leader started (so outside
// its own size history) still shows lag in bytes, not 0 beside thousands of
// entries.
func TestLagBytesCoversEntriesFromBeforeTheLeader(t *testing.T) {
	s := openStore(t)
	w := startWriter(t, s, WriterConfig{})
	ctx := context.Background()
	for i := range 200 {
		if _, err := w.Propose(ctx, func(tx engine.Txn) error {
			v := make([]byte, 100)
			_, _ = rand.Read(v) // incompressible, like real values
			tx.Set([]byte(fmt.Sprintf("k%03d", i)), v, 0)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	l := NewLeader(LeaderConfig{ID: "n1", Store: s, Epoch: 2, Heartbeat: 5 * time.Millisecond})
	t.Cleanup(l.Close)
	last := s.State().LastLSN
	if got := l.LagBytes(0); got < 100*last/2 {
		t.Fatalf("lag bytes of a follower at LSN 0 behind %d entries of 100+ bytes: %d", last, got)
	}
	if got := l.LagBytes(last); got != 0 {
		t.Fatalf("a caught-up follower lags %d bytes", got)
	}
}
