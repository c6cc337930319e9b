package replication

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/storage/faultfs"
)

func openFaultyStore(t *testing.T, minFree int64) (*storage.Store, *faultfs.FS) {
	t.Helper()
	fs := faultfs.New(nil)
	s, err := storage.Open(t.TempDir(), storage.Options{CacheBytes: 1 << 20, FS: fs, MinFreeBytes: minFree})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, fs
}

func setKey(k, v string) func(engine.Txn) error {
	return func(tx engine.Txn) error { tx.Set([]byte(k), []byte(v), 0); return nil }
}

func wantDiskFullErr(t *testing.T, err error, phrase string) {
	t.Helper()
	var de *storage.DiskError
	if !errors.As(err, &de) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want a *storage.DiskError wrapping ENOSPC", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "disk full") || !strings.Contains(msg, phrase) {
		t.Fatalf("message %q: want it to say \"disk full\" and %q", msg, phrase)
	}
}

func readCommitted(t *testing.T, s *storage.Store, w *Writer, key string) string {
	t.Helper()
	v, ok, err := s.Get([]byte(key), w.CommitLSN())
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if !ok {
		return "-"
	}
	return string(v.Value)
}

// TestWriterRefusesOnFullDisk: below the store's reserve a write fails at
// once with a clear error saying nothing was written, reads go on, and the
// next write after space is freed succeeds: no restart, no retry.
func TestWriterRefusesOnFullDisk(t *testing.T) {
	s, fs := openFaultyStore(t, 0)
	w := startWriter(t, s, WriterConfig{})
	if _, err := w.Propose(ctxT(t), setKey("a", "1")); err != nil {
		t.Fatal(err)
	}
	fs.SetAvail(1 << 20)
	start := time.Now()
	_, err := w.Propose(ctxT(t), setKey("a", "2"))
	wantDiskFullErr(t, err, "write refused")
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("refusal took %v", el)
	}
	if got := readCommitted(t, s, w, "a"); got != "1" {
		t.Fatalf("read while full = %q, want 1", got)
	}
	if st := s.State(); st.LastLSN != 1 {
		t.Fatalf("LastLSN = %d after a refused write, want 1", st.LastLSN)
	}
	fs.SetAvail(-1)
	if _, err := w.Propose(ctxT(t), setKey("a", "3")); err != nil {
		t.Fatalf("first write after space returned: %v", err)
	}
	if got := readCommitted(t, s, w, "a"); got != "3" {
		t.Fatalf("read after space returned = %q, want 3", got)
	}
}

// TestWriterRecoversAfterLogFailure: when the store's log sync fails (the
// disk filled between its check and the write-back), the write in flight is
// reported as not acknowledged, later writes are refused quickly, reads go
// on, and once the disk works again writes succeed without a restart;
// the write whose sync failed was kept by the store and is committed with
// the next one, as its error said it might be.
func TestWriterRecoversAfterLogFailure(t *testing.T) {
	s, fs := openFaultyStore(t, -1)
	w := startWriter(t, s, WriterConfig{})
	if _, err := w.Propose(ctxT(t), setKey("a", "1")); err != nil {
		t.Fatal(err)
	}
	fs.FailWALSync.Store(true)
	_, err := w.Propose(ctxT(t), setKey("a", "2"))
	wantDiskFullErr(t, err, "may or may not be applied")
	for range 3 {
		start := time.Now()
		_, err := w.Propose(ctxT(t), setKey("b", "x"))
		wantDiskFullErr(t, err, "write refused")
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("refusal took %v", el)
		}
	}
	if got := readCommitted(t, s, w, "a"); got != "1" {
		t.Fatalf("read while failing = %q, want 1", got)
	}
	fs.FailWALSync.Store(false)
	deadline := time.Now().Add(waitTimeout)
	var tok engine.Token
	for {
		tok, err = w.Propose(ctxT(t), setKey("c", "3"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tok.LSN != 3 {
		t.Fatalf("resumed write at LSN %d, want 3 (after the kept LSN 2)", tok.LSN)
	}
	if got := readCommitted(t, s, w, "a"); got != "2" {
		t.Fatalf("a = %q after recovery, want the kept write 2", got)
	}
	if got := readCommitted(t, s, w, "c"); got != "3" {
		t.Fatalf("c = %q after recovery, want 3", got)
	}
}

// TestWriterRefusesWhenLogWriteFails: a log write that fails outright
// appended nothing: the write is refused (not "may or may not"), and once
// the disk works again the next write takes the same LSN.
func TestWriterRefusesWhenLogWriteFails(t *testing.T) {
	s, fs := openFaultyStore(t, -1)
	w := startWriter(t, s, WriterConfig{})
	if _, err := w.Propose(ctxT(t), setKey("a", "1")); err != nil {
		t.Fatal(err)
	}
	fs.FailWAL.Store(true)
	_, err := w.Propose(ctxT(t), setKey("a", "2"))
	wantDiskFullErr(t, err, "write refused")
	if got := readCommitted(t, s, w, "a"); got != "1" {
		t.Fatalf("read while failing = %q, want 1", got)
	}
	fs.FailWAL.Store(false)
	deadline := time.Now().Add(waitTimeout)
	var tok engine.Token
	for {
		tok, err = w.Propose(ctxT(t), setKey("a", "3"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tok.LSN != 2 {
		t.Fatalf("resumed write at LSN %d, want 2 (the refused write left nothing)", tok.LSN)
	}
	if got := readCommitted(t, s, w, "a"); got != "3" {
		t.Fatalf("a = %q after recovery, want 3", got)
	}
}
