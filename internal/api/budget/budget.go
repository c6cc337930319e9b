package budget

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults. A write costs several times its size until it is committed
// (the request, the transaction's copy, the log entry, the Pebble batch
// holding entry and version), and Go's collector lets the heap grow to
// twice what is live: measured, 50 clients each writing 16 MiB values
// peak at about 1.3 GiB of RSS with 48 MiB here (3 such writes at once)
// and 1.5 GiB with 64 MiB, against 10.6 GiB with no budget. Large writes
// are bound by the disk, so few at once cost no throughput.
const (
	DefaultCapacity = 48 << 20
	DefaultMaxWait  = 10 * time.Second
)

// ErrExhausted means the budget had no room for a request within the wait
// limit.
var ErrExhausted = errors.New("request buffer budget exhausted")

// Budget is a weighted semaphore of bytes with FIFO grants and a bounded
// wait. A nil *Budget grants everything at once.
type Budget struct {
	capacity int64 // <= 0: unlimited
	maxWait  time.Duration

	mu      sync.Mutex
	used    int64
	waiters list.List // of *waiter, oldest first
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

// New returns a budget of capacity bytes (capacity <= 0: unlimited, only
// counted) whose Acquire waits at most maxWait for room (maxWait <= 0:
// refuse at once when there is none).
func New(capacity int64, maxWait time.Duration) *Budget {
	return &Budget{capacity: capacity, maxWait: maxWait}
}

// Capacity is the budget's size in bytes; 0 means unlimited.
func (b *Budget) Capacity() int64 {
	if b == nil || b.capacity < 0 {
		return 0
	}
	return b.capacity
}

// InUse is the number of bytes granted and not yet released.
func (b *Budget) InUse() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Acquire reserves n bytes, waiting in line for room until the wait limit
// or ctx ends. Its errors wrap ErrExhausted or ctx's error. Every
// successful Acquire must be matched by Release(n). A request larger than
// the capacity is counted as the whole capacity: it runs alone rather than
// never (the servers cap single requests, so that bounds the excess).
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	if b == nil || n <= 0 {
		return nil
	}
	n = b.clamp(n)
	b.mu.Lock()
	if b.fits(n) && b.waiters.Len() == 0 {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	if b.maxWait <= 0 {
		used := b.used
		b.mu.Unlock()
		return fmt.Errorf("%w: %d bytes needed, %d of %d in use", ErrExhausted, n, used, b.capacity)
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	elem := b.waiters.PushBack(w)
	b.mu.Unlock()

	start := time.Now()
	timer := time.NewTimer(b.maxWait)
	defer timer.Stop()
	var cause error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timer.C:
		cause = ErrExhausted
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready:
		// Granted while giving up: keep it, the caller releases it.
		return nil
	default:
	}
	first := b.waiters.Front() == elem
	b.waiters.Remove(elem)
	if first {
		// The next in line may fit where this one did not.
		b.grantLocked()
	}
	return fmt.Errorf("waited %v for %d bytes of the request buffer budget (%d of %d in use): %w",
		time.Since(start).Round(time.Millisecond), n, b.used, b.capacity, cause)
}

// TryAcquire reserves n bytes if they fit now, with nobody waiting
// before, and reports whether it did; it never waits. A true result must
// be matched by Release(n).
func (b *Budget) TryAcquire(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	n = b.clamp(n)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fits(n) && b.waiters.Len() == 0 {
		b.used += n
		return true
	}
	return false
}

// Release returns n bytes granted by Acquire.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	n = b.clamp(n)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.used < 0 {
		// More released than acquired: the invariant is already broken
		// and every later grant would be wrong.
		panic(fmt.Sprintf("budget: released %d bytes more than acquired", -b.used))
	}
	b.grantLocked()
}

func (b *Budget) clamp(n int64) int64 {
	if b.capacity > 0 {
		return min(n, b.capacity)
	}
	return n
}

func (b *Budget) fits(n int64) bool { return b.capacity <= 0 || b.used+n <= b.capacity }

// grantLocked grants waiters in order while the oldest fits.
func (b *Budget) grantLocked() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*waiter)
		if !b.fits(w.n) {
			return
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}
