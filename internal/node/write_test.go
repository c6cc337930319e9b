package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

func openLeader(t *testing.T) *Node {
	t.Helper()
	n, err := Open(Config{ID: "n1", DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// TestWriteAsyncNeverWaitsBehindASwitchover: a connection holding queued
// writes must not block queueing another behind a switchover that waits
// for those very writes (the switchover takes admit exclusively). WriteAsync
// says so with nil; once the queued writes are answered, the switchover
// gets through.
func TestWriteAsyncNeverWaitsBehindASwitchover(t *testing.T) {
	n := openLeader(t)
	set := func(k string) func(engine.Txn) error {
		return func(tx engine.Txn) error { tx.Set([]byte(k), []byte("v"), 0); return nil }
	}
	var waits []func() (engine.Token, error)
	w := n.WriteAsync(context.Background(), set("k0"))
	if w == nil {
		t.Fatal("WriteAsync = nil with no switchover")
	}
	waits = append(waits, w)
	locked := make(chan struct{})
	go func() {
		n.admit.Lock() // what a switchover does
		close(locked)
		n.admit.Unlock()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; ; i++ {
		w := n.WriteAsync(context.Background(), set(fmt.Sprint("k", i)))
		if w == nil {
			break // the locker is waiting: refused without blocking
		}
		waits = append(waits, w)
		if time.Now().After(deadline) {
			t.Fatal("WriteAsync never reported the waiting switchover")
		}
		time.Sleep(time.Millisecond)
	}
	for i, w := range waits {
		if _, err := w(); err != nil {
			t.Fatalf("queued write %d: %v", i, err)
		}
	}
	select {
	case <-locked:
	case <-time.After(10 * time.Second):
		t.Fatal("the switchover's lock was never granted after the queued writes were answered")
	}
}
