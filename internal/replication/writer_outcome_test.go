package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// A command that fails on state not yet committed is answered only once
// that state commits (then its error is authoritative, like a successful
// reply); it writes no entry.
func TestFailedCommandWaitsForTheStateItRead(t *testing.T) {
	s := openStore(t)
	// With OnDurable set, only AdvanceCommit moves the commit LSN: the
	// test plays the followers.
	w := startWriter(t, s, WriterConfig{OnDurable: func(uint64) {}})
	ctx := ctxT(t)
	first := make(chan error, 1)
	go func() {
		_, err := w.Propose(ctx, func(tx engine.Txn) error {
			tx.Set([]byte("k"), []byte("not a number"), 0)
			return nil
		})
		first <- err
	}()
	boundEventually(t, "the first write is appended", func() bool { return s.State().LastLSN == 1 })

	errNotInt := errors.New("ERR value is not an integer or out of range")
	type answer struct {
		tok engine.Token
		err error
	}
	second := make(chan answer, 1)
	go func() {
		tok, err := w.Propose(ctx, func(tx engine.Txn) error {
			v, ok, err := tx.Get([]byte("k"))
			if err != nil || !ok || string(v.Value) != "not a number" {
				return errors.New("the command did not see the uncommitted write")
			}
			tx.Set([]byte("k"), []byte("1"), 0) // dropped: the command fails
			return errNotInt
		})
		second <- answer{tok, err}
	}()
	select {
	case a := <-second:
		t.Fatalf("answered before the state it read committed: %v, %v", a.tok, a.err)
	case <-time.After(100 * time.Millisecond):
	}
	w.AdvanceCommit(1)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	a := <-second
	var ce *CommandError
	if !errors.As(a.err, &ce) || !errors.Is(a.err, errNotInt) || a.tok.LSN != 1 {
		t.Fatalf("got %v, %v; want the command's error at LSN 1", a.tok, a.err)
	}
	if last := s.State().LastLSN; last != 1 {
		t.Fatalf("a failed command appended an entry: last LSN %d", last)
	}
	if _, err := w.Propose(context.Background(), func(tx engine.Txn) error {
		v, _, _ := tx.Get([]byte("k"))
		if string(v.Value) != "not a number" {
			return errors.New("the failed command's write leaked")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
