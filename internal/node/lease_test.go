package node

import (
	"testing"
	"time"
)

func TestLease(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := Lease{}.Extended(3, t0.Add(500*time.Millisecond))
	for _, tc := range []struct {
		name  string
		l     Lease
		epoch uint64
		at    time.Time
		want  bool
	}{
		{"fresh lease", l, 3, t0, true},
		{"just before expiry", l, 3, t0.Add(499 * time.Millisecond), true},
		{"at expiry", l, 3, t0.Add(500 * time.Millisecond), false},
		{"other epoch", l, 4, t0, false},
		{"zero lease", Lease{}, 0, t0, false},
		// A slow renewal answering after a later one never shortens it.
		{"late renewal keeps the longer lease", l.Extended(3, t0.Add(100*time.Millisecond)), 3, t0.Add(400 * time.Millisecond), true},
		// A new epoch's lease replaces the old epoch's, even if shorter.
		{"new epoch replaces", l.Extended(4, t0.Add(100*time.Millisecond)), 3, t0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.l.ValidAt(tc.epoch, tc.at); got != tc.want {
				t.Fatalf("ValidAt = %v, want %v", got, tc.want)
			}
		})
	}
}

// Waiters on the lease wake when it is extended, not by polling.
func TestLeaseStateWakesWaiters(t *testing.T) {
	var ls leaseState
	ch := ls.wait()
	select {
	case <-ch:
		t.Fatal("woken before any extension")
	default:
	}
	ls.extend(1, time.Now().Add(time.Second))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("not woken by the extension")
	}
	if !ls.valid(1, time.Now()) {
		t.Fatal("extended lease not valid")
	}
}
