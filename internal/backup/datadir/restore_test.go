package datadir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/storage"
)

func writeBackup(t *testing.T, h backup.Header, recs []backup.Record) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Add(r.Key, r.Value, r.ExpireAt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "b.rbk")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func records(n int) []backup.Record {
	var recs []backup.Record
	for i := range n {
		r := backup.Record{Key: fmt.Appendf(nil, "key-%06d", i), Value: bytes.Repeat([]byte{byte(i)}, (i%64)*32)}
		if i%7 == 0 {
			r.ExpireAt = time.Now().Add(time.Hour).UnixMilli()
		}
		recs = append(recs, r)
	}
	return recs
}

func TestRestoreSeedsAStoreAtTheBackupLSN(t *testing.T) {
	recs := records(10_000) // about 10 MB: three install chunks
	from := writeBackup(t, backup.Header{Mode: "single-leader", Epoch: 4, LSN: 977, Node: "n2", Role: "follower"}, recs)
	dir := filepath.Join(t.TempDir(), "n1")
	var phases []string
	res, err := Restore(context.Background(), RestoreOptions{From: from, Dir: dir, Progress: func(p string, _ uint64, _ int64) {
		if len(phases) == 0 || phases[len(phases)-1] != p {
			phases = append(phases, p)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.LSN != 977 || res.Epoch != Epoch || res.Trailer.Keys != uint64(len(recs)) {
		t.Fatalf("result %+v", res)
	}
	if !slices.Equal(phases, []string{PhaseVerify, PhaseInstall}) {
		t.Fatalf("progress phases %v", phases)
	}
	if _, err := os.Stat(filepath.Join(dir, stagingName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging directory left behind: %v", err)
	}
	m, err := ReadMarker(dir)
	if err != nil || m == nil || m.LSN != 977 || m.Epoch != Epoch || m.Backup.Node != "n2" || m.SHA256 != res.Trailer.Hex() {
		t.Fatalf("marker %+v, %v", m, err)
	}
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.State()
	want := storage.State{FirstLSN: 978, LastLSN: 977, LastEpoch: Epoch, AppliedLSN: 977, CommitLSN: 977}
	if s != want {
		t.Fatalf("state %+v, want %+v", s, want)
	}
	if h := st.EpochHistory(); !slices.Equal(h, []storage.EpochStart{{Epoch: 1, FirstLSN: 1}}) {
		t.Fatalf("epoch history %v", h)
	}
	if m, err := st.GetMeta("mode"); err != nil || string(m) != "single-leader" {
		t.Fatalf("mode %q, %v", m, err)
	}
	i := 0
	err = st.Scan(977, nil, func(k []byte, v storage.Version) bool {
		r := recs[i]
		if !bytes.Equal(k, r.Key) || !bytes.Equal(v.Value, r.Value) || v.ExpireAt != r.ExpireAt || v.LSN != 977 {
			t.Fatalf("key %d: got %q (%d bytes, exp %d, lsn %d), want %q (%d bytes, exp %d)", i, k, len(v.Value), v.ExpireAt, v.LSN, r.Key, len(r.Value), r.ExpireAt)
		}
		i++
		return true
	})
	if err != nil || i != len(recs) {
		t.Fatalf("scanned %d of %d keys: %v", i, len(recs), err)
	}
	// Nothing is visible below the backup's LSN: the state begins there.
	if _, ok, _ := st.Get(recs[1].Key, 976); ok {
		t.Fatal("a restored key is visible below the backup's LSN")
	}
}

func TestRestoreEmptyBackup(t *testing.T) {
	from := writeBackup(t, backup.Header{Mode: "single-leader"}, nil)
	dir := filepath.Join(t.TempDir(), "n1")
	res, err := Restore(context.Background(), RestoreOptions{From: from, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.LSN != 0 || res.Epoch != 0 {
		t.Fatalf("result %+v", res)
	}
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s := st.State(); s.LastLSN != 0 || s.FirstLSN != 1 {
		t.Fatalf("state %+v", s)
	}
}

func TestRestoreRefuses(t *testing.T) {
	good := writeBackup(t, backup.Header{Mode: "single-leader", Epoch: 2, LSN: 10}, records(100))
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name string, f func([]byte) []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, f(append([]byte(nil), raw...)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := variant("corrupt", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
	truncated := variant("truncated", func(b []byte) []byte { return b[:len(b)-40] })
	ml := writeBackup(t, backup.Header{Mode: "multi-leader", Epoch: 1, LSN: 5}, records(3))
	for _, tc := range []struct {
		name    string
		from    string
		prepare func(t *testing.T, dir string) // nil: the directory does not exist
		want    error
		keep    []string // what the directory must still hold after (nil: absent)
	}{
		{"corrupt file, no directory", corrupt, nil, backup.ErrChecksum, nil},
		{"corrupt file, empty directory", corrupt, mkdir, backup.ErrChecksum, []string{}},
		{"truncated file", truncated, nil, backup.ErrTruncated, nil},
		{"not a backup", variant("text", func([]byte) []byte { return []byte("SET a b\n") }), nil, backup.ErrNotBackup, nil},
		{"missing file", filepath.Join(t.TempDir(), "nope"), nil, os.ErrNotExist, nil},
		{"multi-leader backup", ml, nil, &ModeError{}, nil},
		{"non-empty directory", good, func(t *testing.T, dir string) { mkdir(t, dir); touch(t, dir, "store") }, nil, []string{"store"}},
		{"interrupted restore", good, func(t *testing.T, dir string) { mkdir(t, dir); touch(t, dir, stagingName) }, nil, []string{stagingName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "n1")
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			_, err := Restore(context.Background(), RestoreOptions{From: tc.from, Dir: dir})
			if err == nil {
				t.Fatal("restore succeeded")
			}
			var me *ModeError
			switch {
			case tc.want == nil:
			case errors.As(tc.want, &me):
				if !errors.As(err, &me) || me.Mode != "multi-leader" {
					t.Fatalf("got %v, want a mode error naming multi-leader", err)
				}
			case !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			ents, statErr := os.ReadDir(dir)
			if tc.keep == nil {
				if !errors.Is(statErr, os.ErrNotExist) {
					t.Fatalf("the directory was created (%v)", statErr)
				}
				return
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, tc.keep) && !(len(names) == 0 && len(tc.keep) == 0) {
				t.Fatalf("the directory holds %v, want %v", names, tc.keep)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}
