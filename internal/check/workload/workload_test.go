package workload

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/replicant-db/replicant/internal/check"
)

// What a client learns from a failed request decides whether a write may
// have happened: only a request that never reached a server, or that the
// server refused as invalid, certainly did not.
func TestOutcomeOf(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	read := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, tc := range []struct {
		name   string
		status int
		err    error
		want   check.Outcome
	}{
		{"connection refused", 0, fmt.Errorf("put: %w", dial), check.Fail},
		{"connection reset mid-request", 0, fmt.Errorf("put: %w", read), check.Unknown},
		{"timeout", 0, errors.New("context deadline exceeded"), check.Unknown},
		{"bad request", 400, nil, check.Fail},
		{"too large", 413, nil, check.Fail},
		{"sync unavailable", 503, nil, check.Unknown},
		{"gateway timeout", 504, nil, check.Unknown},
	} {
		if got := outcomeOf(tc.status, tc.err); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestLeaderRESP(t *testing.T) {
	for msg, want := range map[string]string{
		"READONLY You can't write against a read only replica. leader=n1 resp=127.0.0.1:6381": "127.0.0.1:6381",
		"READONLY You can't write against a read only replica.":                               "",
		"READONLY … resp=10.77.3.11:6379 more":                                                "10.77.3.11:6379",
	} {
		if got := leaderRESP(msg); got != want {
			t.Errorf("%q: %q, want %q", msg, got, want)
		}
	}
}
