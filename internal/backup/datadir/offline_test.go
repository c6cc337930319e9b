package datadir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/storage"
)

// stoppedReplica builds the directory of a stopped delayed replica: LSNs
// 1..5 applied (k1..k5), 6 a FLUSHALL and 7 a SET received and committed
// but not applied, 8 received and not known to be committed. Entry i was
// written at base+i seconds.
func stoppedReplica(t *testing.T) (dir string, base time.Time) {
	t.Helper()
	dir = t.TempDir()
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base = time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	entry := func(lsn uint64, ops ...storage.Op) storage.Entry {
		return storage.Entry{LSN: lsn, Epoch: 2, Time: base.Add(time.Duration(lsn) * time.Second).UnixNano(), Ops: ops}
	}
	set := func(k, v string) storage.Op { return storage.Op{Kind: storage.OpSet, Key: []byte(k), Value: []byte(v)} }
	var applied []storage.Entry
	for i := uint64(1); i <= 5; i++ {
		applied = append(applied, entry(i, set(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))))
	}
	p, err := st.Append(applied, storage.AppendOptions{Apply: true, Sync: true, CommitLSN: 5})
	if err != nil || p.Wait() != nil {
		t.Fatal(err)
	}
	pending := []storage.Entry{entry(6, storage.Op{Kind: storage.OpFlush}), entry(7, set("after", "flush")), entry(8, set("uncommitted", "x"))}
	if p, err = st.Append(pending, storage.AppendOptions{Sync: true}); err != nil || p.Wait() != nil {
		t.Fatal(err)
	}
	if err := st.SetCommitLSN(7); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, base
}

func TestOfflineBackupTargets(t *testing.T) {
	for _, tc := range []struct {
		name     string
		o        BackupOptions
		wantLSN  uint64
		wantKeys string // sorted key=value list
		wantNext uint64
		refused  string
	}{
		{"default: the commit LSN", BackupOptions{}, 7, "after=flush", 8, ""},
		{"before the bad write, by LSN", BackupOptions{LSN: 5}, 5, "k1=v1 k2=v2 k3=v3 k4=v4 k5=v5", 6, ""},
		{"below what was applied", BackupOptions{LSN: 3}, 3, "k1=v1 k2=v2 k3=v3", 4, ""},
		{"before the bad write, by time", BackupOptions{Before: time.Date(2026, 11, 30, 14, 0, 5, 500, time.UTC)}, 5, "k1=v1 k2=v2 k3=v3 k4=v4 k5=v5", 6, ""},
		{"a time before the log", BackupOptions{Before: time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)}, 0, "", 0, "the log here starts at LSN 1"},
		{"above the commit LSN", BackupOptions{LSN: 8}, 0, "", 0, "above the commit LSN 7"},
		{"vouched for by the cluster", BackupOptions{LSN: 8, ClusterCommit: 8}, 8, "after=flush uncommitted=x", 0, ""},
		{"the cluster's commit beyond the log", BackupOptions{ClusterCommit: 100}, 8, "after=flush uncommitted=x", 0, ""},
		{"LSN and time", BackupOptions{LSN: 3, Before: time.Now()}, 0, "", 0, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := stoppedReplica(t)
			tc.o.Dir = dir
			var buf bytes.Buffer
			h, tr, tg, err := Backup(context.Background(), tc.o, &buf)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("got %v, want a refusal mentioning %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.LSN != tc.wantLSN || h.Epoch != 2 || tg.NextLSN != tc.wantNext || h.Role != "stopped" {
				t.Fatalf("header %+v, target %+v; want LSN %d, next %d", h, tg, tc.wantLSN, tc.wantNext)
			}
			d, err := backup.NewReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for {
				r, err := d.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(r.Key)+"="+string(r.Value))
			}
			if strings.Join(got, " ") != tc.wantKeys || d.Trailer() != tr {
				t.Fatalf("backup holds %q, want %q", got, tc.wantKeys)
			}
			// The directory applied nothing beyond the target.
			st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{ApplyDelay: holdAll})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if a := st.State().AppliedLSN; a != max(5, tc.wantLSN) {
				t.Fatalf("applied LSN %d after the backup, want %d", a, max(5, tc.wantLSN))
			}
		})
	}
}

func TestOfflineBackupBelowTheGCFloor(t *testing.T) {
	dir, _ := stoppedReplica(t)
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{ApplyDelay: holdAll})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GC(4); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = Backup(context.Background(), BackupOptions{Dir: dir, LSN: 3}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "earliest state it can back up is LSN 4") {
		t.Fatalf("got %v", err)
	}
}

func TestOfflineBackupOfARunningNode(t *testing.T) {
	dir, _ := stoppedReplica(t)
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{ApplyDelay: holdAll})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, _, err := Backup(context.Background(), BackupOptions{Dir: dir}, io.Discard); err == nil || !strings.Contains(err.Error(), "stop its node first") {
		t.Fatalf("a directory in use was backed up: %v", err)
	}
}
