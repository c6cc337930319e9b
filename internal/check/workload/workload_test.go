package workload

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/replicant-db/replicant/internal/check"
	"github.com/replicant-db/replicant/internal/check/local"
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

// Rollback files are read back into the history: the workload's integer
// values, with the node and file that kept them.
func TestRollbacks(t *testing.T) {
	dir := t.TempDir()
	nd := &local.Node{ID: "n1", Data: dir}
	if err := os.MkdirAll(filepath.Join(dir, "rollback"), 0o755); err != nil {
		t.Fatal(err)
	}
	// As replication.writeRollbackFile writes them: keys and values are
	// base64 (JSON []byte).
	body := `{"lsn":41,"epoch":2,"time":"2026-11-30T00:00:00Z","ops":[{"op":"SET","key":"dTEtNQ==","value":"NQ=="},{"op":"SET","key":"eA==","value":"bm90LWEtbnVtYmVy"}]}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "rollback", "rollback-1-to-epoch-3.jsonl"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := rollbacks(&local.Cluster{Nodes: []*local.Node{nd, {ID: "remote"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "u1-5" || got[0].Value != 5 || got[0].LSN != 41 || got[0].Epoch != 2 ||
		got[0].Node != "n1" || got[0].File != filepath.Join("rollback", "rollback-1-to-epoch-3.jsonl") {
		t.Fatalf("%+v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "rollback", "bad.jsonl"), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rollbacks(&local.Cluster{Nodes: []*local.Node{nd}}); err == nil {
		t.Fatal("a corrupt rollback file was read without an error")
	}
}
