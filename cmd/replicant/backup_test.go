package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/api/httpapi"
	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/backup/datadir"
)

func TestRestoredStartGuard(t *testing.T) {
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.Header{Mode: "single-leader", Epoch: 2, LSN: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "b.backup")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "n1")
	if _, err := datadir.Restore(context.Background(), datadir.RestoreOptions{From: file, Dir: restored}); err != nil {
		t.Fatal(err)
	}
	started := filepath.Join(t.TempDir(), "n2")
	if _, err := datadir.Restore(context.Background(), datadir.RestoreOptions{From: file, Dir: started}); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(started, "control"), 0o750); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	for _, tc := range []struct {
		name, id, data, initial, join string
		refused                       string // part of the error; "" = allowed
	}{
		{"not restored, listed second", "n2", plain, "n1=a:1,n2=a:2", "", ""},
		{"restored, alone", "n1", restored, "", "", ""},
		{"restored, listed first", "n1", restored, "n1=a:1,n2=a:2", "", ""},
		{"restored, listed second", "n1", restored, "n2=a:2,n1=a:1", "", "list this node (n1) first"},
		{"restored, joining", "n1", restored, "", "a:9", "joining a running cluster"},
		{"restored and started before", "n2", started, "n1=a:1,n2=a:2", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkRestoredStart(tc.id, tc.data, tc.initial, tc.join)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, want a refusal mentioning %q", err, tc.refused)
			}
		})
	}
}

// TestRestoredStartGuardSeesEveryLayer starts the server command with the
// restored directory and --initial-cluster given by the environment and by
// a --config file: the guard refuses as it does for flags, before the
// server listens or writes anything.
func TestRestoredStartGuardSeesEveryLayer(t *testing.T) {
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.Header{Mode: "single-leader", Epoch: 1, LSN: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "b.backup")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "n1")
	if _, err := datadir.Restore(context.Background(), datadir.RestoreOptions{From: file, Dir: restored}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "replicant.conf")
	if err := os.WriteFile(conf, []byte("data = "+restored+"\ninitial-cluster = n2=127.0.0.1:1,n1=127.0.0.1:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"environment", map[string]string{"REPLICANT_DATA": restored, "REPLICANT_INITIAL_CLUSTER": "n2=127.0.0.1:1,n1=127.0.0.1:2"}, nil},
		{"config file", nil, []string{"--config", conf}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			// Bounded: a server the guard let through runs until ctx ends.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			t.Chdir(t.TempDir()) // where a wrongly started server's default data/n1 would go
			args := append([]string{"server", "--id", "n1", "--resp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--peer", "127.0.0.1:0"}, tc.args...)
			if code := run(ctx, args, strings.NewReader(""), &bytes.Buffer{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "list this node (n1) first") {
				t.Fatalf("exit %d, stderr %q", code, &stderr)
			}
			if _, err := os.Stat(filepath.Join(restored, "control")); !os.IsNotExist(err) {
				t.Fatalf("the refused start created a control plane (%v)", err)
			}
		})
	}
}

func TestBackupAndRestoreUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup"}, "--to FILE is required"},
		{[]string{"restore", "--data", "x"}, "--from FILE is required"},
		{[]string{"restore", "--from", "f"}, "--data DIR is required"},
		{[]string{"backup", "--to", "f", "--lsn", "3"}, "--lsn applies to a stopped node's --data DIR"},
		{[]string{"backup", "--to", "f", "--data", "d", "--addr", "x:1"}, "--addr and --token do not apply"},
		{[]string{"backup", "--to", "f", "--data", "d", "--before", "yesterday"}, "RFC 3339"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, strings.NewReader(""), &bytes.Buffer{}, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr.String())
		}
	}
}

// TestBackupKeepsOnlyVerifiedFiles runs `replicant backup` against a node
// stand-in that serves a whole backup, one that fails mid-stream with its
// reason in the HTTP trailer, and one that refuses.
func TestBackupKeepsOnlyVerifiedFiles(t *testing.T) {
	var whole bytes.Buffer
	w, err := backup.NewWriter(&whole, backup.Header{Mode: "single-leader", Epoch: 3, LSN: 70, Node: "n2", Role: "follower", Leader: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if err := w.Add(fmt.Appendf(nil, "k%05d", i), bytes.Repeat([]byte("v"), 100), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	file := whole.Bytes()
	for _, tc := range []struct {
		name    string
		serve   http.HandlerFunc
		stderr  string // part of it; "" = success
		wantOut string
	}{
		{"whole", func(rw http.ResponseWriter, r *http.Request) {
			rw.Write(file)
		}, "", "backup of n2 (follower of n1) at epoch 3, LSN 70: 3000 keys"},
		{"cut, with the node's reason", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Trailer", httpapi.HeaderBackupError)
			rw.Write(file[:len(file)/2])
			rw.Header().Set(httpapi.HeaderBackupError, "storage: disk read error")
		}, "backup failed on the node: storage: disk read error", ""},
		{"cut", func(rw http.ResponseWriter, r *http.Request) {
			rw.Write(file[:len(file)-10])
		}, "truncated", ""},
		{"refused", func(rw http.ResponseWriter, r *http.Request) {
			http.Error(rw, `{"error":"backup is supported in single-leader mode only; this node runs leaderless mode"}`, http.StatusConflict)
		}, "409: backup is supported in single-leader mode only", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.serve)
			defer srv.Close()
			dir := t.TempDir()
			to := filepath.Join(dir, "b.backup")
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"backup", "--to", to, "--addr", srv.URL}, strings.NewReader(""), &stdout, &stderr)
			ents, _ := os.ReadDir(dir)
			if tc.stderr == "" {
				got, err := os.ReadFile(to)
				if code != 0 || err != nil || !bytes.Equal(got, file) || !strings.Contains(stdout.String(), tc.wantOut) || len(ents) != 1 {
					t.Fatalf("exit %d, file %d bytes (%v), %d entries in the directory\nstdout %s\nstderr %s", code, len(got), err, len(ents), &stdout, &stderr)
				}
				return
			}
			if code == 0 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want a failure mentioning %q", code, &stderr, tc.stderr)
			}
			if len(ents) != 0 {
				t.Fatalf("a failed backup left %s behind", ents[0].Name())
			}
		})
	}
}
