package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallTables: an install's versions reach Pebble through tables of
// its own, however the chunks are cut and ordered — in order across many
// small tables, out of order (each step back starts a new table), and
// resent (the later copy of a key wins, as a later batch did) — and the
// store reads exactly the installed state afterwards.
func TestInstallTables(t *testing.T) {
	defer func(n uint64) { installTableBytes = n }(installTableBytes)
	installTableBytes = 2 << 10 // many tables per install

	kv := func(k, v string) KV { return KV{Key: []byte(k), Value: []byte(v)} }
	keys := func(prefix string, n int) []KV {
		var out []KV
		for i := range n {
			out = append(out, kv(fmt.Sprintf("%s%04d", prefix, i), strings.Repeat("v", 100)+prefix))
		}
		return out
	}
	tests := []struct {
		name   string
		chunks [][]KV
		want   map[string]string // spot checks; the count is checked for all
		count  int
	}{
		{"in order, many tables", [][]KV{keys("a", 100), keys("b", 100)},
			map[string]string{"a0000": strings.Repeat("v", 100) + "a", "b0099": strings.Repeat("v", 100) + "b"}, 200},
		{"out of order", [][]KV{keys("m", 50), keys("c", 50), {kv("z", "1"), kv("d", "2"), kv("e", "3")}},
			map[string]string{"c0049": strings.Repeat("v", 100) + "c", "z": "1", "d": "2", "e": "3"}, 103},
		{"a chunk resent with new values", [][]KV{{kv("k1", "old"), kv("k2", "old")}, {kv("k1", "new"), kv("k2", "new")}},
			map[string]string{"k1": "new", "k2": "new"}, 2},
		{"keys that need escaping", [][]KV{{kv("a\x00", "1"), kv("a\x00\x00", "2"), kv("a\x01", "3")}},
			map[string]string{"a\x00": "1", "a\x00\x00": "2", "a\x01": "3"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir)
			mustAppend(t, s, applySync, ent(1, 1, set("gone", "x")))
			if err := s.BeginInstall(); err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.chunks {
				if err := s.InstallChunk(7, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.FinishInstall(7, []EpochStart{{Epoch: 1, FirstLSN: 1}}); err != nil {
				t.Fatal(err)
			}
			check := func(s *Store) {
				t.Helper()
				for k, want := range tt.want {
					v, ok, err := s.Get([]byte(k), Latest)
					if err != nil || !ok || string(v.Value) != want {
						t.Fatalf("Get(%q) = %q, %v, %v; want %q", k, v.Value, ok, err, want)
					}
				}
				if _, ok, _ := s.Get([]byte("gone"), Latest); ok {
					t.Fatal("a key from before the install survived it")
				}
				if got := countAt(t, s, Latest); got.Keys != int64(tt.count) {
					t.Fatalf("key count %+v, want %d", got, tt.count)
				}
				n := 0
				if err := s.Scan(Latest, nil, func(k []byte, v Version) bool { n++; return true }); err != nil {
					t.Fatal(err)
				}
				if n != tt.count {
					t.Fatalf("scan found %d keys, want %d", n, tt.count)
				}
			}
			check(s)
			if left := installFiles(t, dir); len(left) > 0 {
				t.Fatalf("install tables left behind: %v", left)
			}
			// The ingested tables are durable without the log: reopen.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			check(openTestStore(t, dir))
		})
	}
}

// TestInstallInterrupted: an install cut off between chunks (a closed
// store, a crash) leaves neither its half-written table nor its keys.
func TestInstallInterrupted(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	if err := s.BeginInstall(); err != nil {
		t.Fatal(err)
	}
	if err := s.InstallChunk(5, []KV{{Key: []byte("half"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if len(installFiles(t, dir)) != 1 {
		t.Fatalf("want the table being written in %s", dir)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash leaves the file: put one back as a crash would have.
	if err := os.WriteFile(filepath.Join(dir, installTablePrefix+"9.sst"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if left := installFiles(t, dir); len(left) > 0 {
		t.Fatalf("open left install tables: %v", left)
	}
	if _, ok, err := s.Get([]byte("half"), Latest); err != nil || ok {
		t.Fatalf("Get(half) = %v, %v after an interrupted install; want nothing", ok, err)
	}
	if st := s.State(); st.LastLSN != 0 {
		t.Fatalf("state after an interrupted install: %+v", st)
	}
}

func installFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, installTablePrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
