package budget

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAcquireImmediate covers the answers that need no waiting.
func TestAcquireImmediate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		b       *Budget
		held    int64 // acquired first
		n       int64
		wantErr error
	}{
		{"fits", New(100, time.Second), 60, 40, nil},
		{"zero bytes", New(100, time.Second), 100, 0, nil},
		{"nil budget", nil, 0, 1 << 40, nil},
		{"unlimited", New(0, 0), 1 << 40, 1 << 40, nil},
		{"larger than capacity, alone", New(100, time.Second), 0, 150, nil},
		{"larger than capacity, not alone", New(100, 0), 1, 150, ErrExhausted},
		{"no room, no waiting", New(100, 0), 60, 41, ErrExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.b.Acquire(context.Background(), tc.held); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := tc.b.Acquire(context.Background(), tc.n)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Acquire(%d) = %v, want %v", tc.n, err, tc.wantErr)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("took %v, want an immediate answer", d)
			}
			want := tc.held
			if err == nil {
				want += tc.n
			}
			if tc.b != nil {
				want = tc.b.clamp(want)
			}
			if tc.b != nil && tc.b.InUse() != want {
				t.Errorf("InUse = %d, want %d", tc.b.InUse(), want)
			}
		})
	}
}

// TestAcquireWaits: a request without room waits until a release makes
// room, until the wait limit, or until its context ends.
func TestAcquireWaits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxWait  time.Duration
		release  bool // release the blocking bytes after 50ms
		ctxAfter time.Duration
		wantErr  error
	}{
		{"granted on release", 5 * time.Second, true, 0, nil},
		{"wait limit", 100 * time.Millisecond, false, 0, ErrExhausted},
		{"context ends", 5 * time.Second, false, 100 * time.Millisecond, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(100, tc.maxWait)
			if err := b.Acquire(context.Background(), 80); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tc.ctxAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxAfter)
				defer cancel()
			}
			if tc.release {
				time.AfterFunc(50*time.Millisecond, func() { b.Release(80) })
			}
			err := b.Acquire(ctx, 50)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Acquire = %v, want %v", err, tc.wantErr)
			}
			want := int64(80)
			if tc.release {
				want = 50
			}
			if b.InUse() != want {
				t.Errorf("InUse = %d, want %d", b.InUse(), want)
			}
			if b.waiters.Len() != 0 {
				t.Errorf("%d waiters left behind", b.waiters.Len())
			}
		})
	}
}

// TestFIFO: a small request does not overtake a large one waiting before
// it, and a waiter that gives up lets the next in line through.
func TestFIFO(t *testing.T) {
	b := New(100, 5*time.Second)
	if err := b.Acquire(context.Background(), 60); err != nil {
		t.Fatal(err)
	}
	bigCtx, giveUp := context.WithCancel(context.Background())
	bigDone := make(chan error, 1)
	go func() { bigDone <- b.Acquire(bigCtx, 90) }()
	waitWaiters(t, b, 1)
	smallDone := make(chan error, 1)
	go func() { smallDone <- b.Acquire(context.Background(), 10) }()
	waitWaiters(t, b, 2)
	select {
	case err := <-smallDone:
		t.Fatalf("small request overtook the large one: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	giveUp()
	if err := <-bigDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("large request: %v", err)
	}
	if err := <-smallDone; err != nil {
		t.Fatalf("small request after the large one gave up: %v", err)
	}
	if b.InUse() != 70 {
		t.Fatalf("InUse = %d, want 70", b.InUse())
	}
}

// TestNeverOverCommitted: under concurrent use the granted bytes never
// exceed the capacity and everything is returned at the end.
func TestNeverOverCommitted(t *testing.T) {
	const capacity = 1000
	b := New(capacity, 5*time.Second)
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n := int64(1 + (g*37+i*11)%400)
				if err := b.Acquire(context.Background(), n); err != nil {
					t.Error(err)
					return
				}
				h := held.Add(n)
				if h > capacity {
					t.Errorf("%d bytes granted at once, capacity %d", h, capacity)
				}
				for p := peak.Load(); h > p && !peak.CompareAndSwap(p, h); p = peak.Load() {
				}
				held.Add(-n)
				b.Release(n)
			}
		}()
	}
	wg.Wait()
	if b.InUse() != 0 {
		t.Fatalf("InUse = %d after everything was released", b.InUse())
	}
	t.Logf("peak %d of %d", peak.Load(), capacity)
}

// TestOversizedRequestRunsAlone: a request above the capacity waits for
// everything else to be released, holds the whole budget, and gives it
// all back.
func TestOversizedRequestRunsAlone(t *testing.T) {
	b := New(100, 5*time.Second)
	if err := b.Acquire(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Acquire(context.Background(), 500) }()
	waitWaiters(t, b, 1)
	b.Release(10)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.InUse() != 100 {
		t.Fatalf("InUse = %d, want the whole capacity", b.InUse())
	}
	b.Release(500)
	if b.InUse() != 0 {
		t.Fatalf("InUse = %d after release", b.InUse())
	}
}

func TestReleaseMoreThanAcquiredPanics(t *testing.T) {
	b := New(100, 0)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	b.Release(1)
}

func waitWaiters(t *testing.T, b *Budget, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		got := b.waiters.Len()
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}
