package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/storage/faultfs"
)

// openFaulty opens dir through a fault-injecting file system.
func openFaulty(t *testing.T, dir string, minFree int64) (*Store, *faultfs.FS) {
	t.Helper()
	fs := faultfs.New(nil)
	s, err := Open(dir, Options{CacheBytes: 1 << 20, FS: fs, MinFreeBytes: minFree})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, fs
}

func wantDiskFull(t *testing.T, err error) *DiskError {
	t.Helper()
	var de *DiskError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want a *DiskError", err)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want it to wrap ENOSPC", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "disk full: ") || strings.Contains(msg, "\n") {
		t.Fatalf("message %q: want one line starting with \"disk full: \"", msg)
	}
	return de
}

// TestDiskFullRefusedEarly: below the reserve, writes are refused before
// Pebble sees them (nothing written, the store not degraded), reads go
// on, and writes work again as soon as there is room: no reopen needed.
func TestDiskFullRefusedEarly(t *testing.T) {
	s, fs := openFaulty(t, t.TempDir(), 0)
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1")))
	fs.SetAvail(1 << 20) // 1 MiB of 1 GiB: below the 32 MiB reserve
	_, err := s.Append([]Entry{ent(2, 1, set("a", "2"))}, applySync)
	de := wantDiskFull(t, err)
	if !de.Early || !de.Refused || de.Reserve != 32<<20 || de.Avail != 1<<20 {
		t.Fatalf("DiskError = %+v, want an early refusal naming 1 MiB free and the 32 MiB reserve", de)
	}
	if !strings.Contains(err.Error(), "1.0 MiB free") || !strings.Contains(err.Error(), "32.0 MiB") {
		t.Fatalf("message %q does not say how much is free and reserved", err)
	}
	if st := s.State(); st.LastLSN != 1 {
		t.Fatalf("LastLSN = %d after a refused append, want 1", st.LastLSN)
	}
	if s.degraded.Load() {
		t.Fatal("an early refusal degraded the store")
	}
	if got := getStr(t, s, "a", 1); got != "1@1" {
		t.Fatalf("read while full = %s, want 1@1", got)
	}
	if err := s.Writable(); err == nil {
		t.Fatal("Writable() = nil on a full disk")
	}
	if err := s.DropExpiring(nil); err == nil {
		t.Fatal("DropExpiring with 1 MiB free succeeded")
	}
	// Small deletions may use most of the reserve: they give space back.
	fs.SetAvail(10 << 20)
	if err := s.DropExpiring(nil); err != nil {
		t.Fatalf("DropExpiring with 10 MiB free: %v", err)
	}
	_, err = s.Append([]Entry{ent(2, 1, set("a", "2"))}, applySync)
	wantDiskFull(t, err)
	fs.SetAvail(-1)
	mustAppend(t, s, applySync, ent(2, 1, set("a", "2")))
	if got := getStr(t, s, "a", 2); got != "2@2" {
		t.Fatalf("read after space returned = %s, want 2@2", got)
	}
}

// TestLogSyncFailureRecovers: when the log's fsync fails (the disk filled
// between the check and the write-back), the batch is reported as a
// DiskError, further writes are refused, reads go on, and Recover reopens
// the log once the disk works again — keeping the entry whose sync failed,
// since it was already visible to the write path and its followers.
func TestLogSyncFailureRecovers(t *testing.T) {
	dir := t.TempDir()
	s, fs := openFaulty(t, dir, -1)
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1")), ent(2, 1, set("b", "1")))
	fs.FailWALSync.Store(true)
	p, err := s.Append([]Entry{ent(3, 1, set("a", "3"))}, applySync)
	if err != nil {
		t.Fatalf("Append: %v (the failure should surface at Wait)", err)
	}
	de := wantDiskFull(t, p.Wait())
	if de.Refused {
		t.Fatalf("a failed sync is reported as refused: %+v", de)
	}
	_, err = s.Append([]Entry{ent(4, 1, set("a", "4"))}, applySync)
	if de := wantDiskFull(t, err); !de.Refused {
		t.Fatalf("append on a degraded store: %+v, want Refused", de)
	}
	if err := s.SetCommitLSN(3); err == nil {
		t.Fatal("SetCommitLSN on a degraded store succeeded")
	}
	if got := getStr(t, s, "a", 2); got != "1@1" {
		t.Fatalf("read on a degraded store = %s, want 1@1", got)
	}
	// Still failing: the reopened log's restore cannot be synced. The store
	// stays degraded but keeps serving reads.
	if err := s.Recover(); err == nil {
		t.Fatal("Recover succeeded while the disk still fails")
	}
	if got := getStr(t, s, "a", 3); got != "3@3" {
		t.Fatalf("read after a failed recovery = %s, want 3@3", got)
	}
	fs.FailWALSync.Store(false)
	waitRecover(t, s)
	if st := s.State(); st.LastLSN != 3 || st.AppliedLSN != 3 {
		t.Fatalf("state after recovery = %+v, want last and applied 3", st)
	}
	mustAppend(t, s, applySync, ent(4, 1, set("a", "4")))
	if got := getStr(t, s, "a", 4); got != "4@4" {
		t.Fatalf("read after recovery = %s, want 4@4", got)
	}
	// Everything, the restored entry included, is durable.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openTestStore(t, dir)
	var lsns []uint64
	if err := s2.ReadLog(1, 4, 0, func(e Entry) error { lsns = append(lsns, e.LSN); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lsns) != "[1 2 3 4]" {
		t.Fatalf("log after reopening = %v, want [1 2 3 4]", lsns)
	}
	if got := getStr(t, s2, "a", 3); got != "3@3" {
		t.Fatalf("restored version = %s, want 3@3", got)
	}
}

// TestLogWriteFailureRefuses: a write the log could not take leaves
// nothing behind: the append is refused, the positions stay, and after
// Recover the log continues where it was (a torn frame on disk is cut off).
func TestLogWriteFailureRefuses(t *testing.T) {
	dir := t.TempDir()
	s, fs := openFaulty(t, dir, -1)
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1")))
	fs.FailWAL.Store(true)
	_, err := s.Append([]Entry{ent(2, 1, set("a", "2"))}, applySync)
	if de := wantDiskFull(t, err); !de.Refused {
		t.Fatalf("failed write: %+v, want Refused", de)
	}
	if st := s.State(); st.LastLSN != 1 || st.AppliedLSN != 1 {
		t.Fatalf("state after a refused append = %+v, want last and applied 1", st)
	}
	if got := getStr(t, s, "a", 2); got != "1@1" {
		t.Fatalf("read after a refused append = %s, want 1@1", got)
	}
	fs.FailWAL.Store(false)
	waitRecover(t, s)
	mustAppend(t, s, applySync, ent(2, 1, set("a", "2b")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t, dir)
	if got := getStr(t, s2, "a", 2); got != "2b@2" {
		t.Fatalf("after reopening = %s, want 2b@2", got)
	}
}

// TestRecoverKeepsUnsyncedApply: versions a follower applied are still
// there after the log is reopened (Pebble stays open), so its reads never
// go back.
func TestRecoverKeepsUnsyncedApply(t *testing.T) {
	s, fs := openFaulty(t, t.TempDir(), -1)
	mustAppend(t, s, AppendOptions{Sync: false}, ent(1, 1, set("a", "1")), ent(2, 1, set("a", "2")))
	if err := s.ApplyUpTo(2); err != nil {
		t.Fatal(err)
	}
	fs.FailWALSync.Store(true)
	if err := s.Sync(); err == nil {
		t.Fatal("Sync succeeded on a failing log")
	}
	fs.FailWALSync.Store(false)
	waitRecover(t, s)
	if st := s.State(); st.AppliedLSN != 2 || st.LastLSN != 2 {
		t.Fatalf("state after recovery = %+v, want last and applied 2", st)
	}
	if got := getStr(t, s, "a", 2); got != "2@2" {
		t.Fatalf("read after recovery = %s, want 2@2", got)
	}
}

func waitRecover(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Recover()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Recover: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCloseAfterLogFailure is the SIGTERM-on-a-full-disk path: a final
// Sync fails cleanly and Close neither panics nor reports the known failure.
func TestCloseAfterLogFailure(t *testing.T) {
	s, fs := openFaulty(t, t.TempDir(), -1)
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1")))
	fs.FailWALSync.Store(true)
	p, err := s.Append([]Entry{ent(2, 1, set("a", "2"))}, applySync)
	if err != nil {
		t.Fatal(err)
	}
	wantDiskFull(t, p.Wait())
	if err := s.Sync(); err == nil {
		t.Fatal("final Sync succeeded on a failing log")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after a log failure: %v", err)
	}
}

// TestFlushFailureBacksOff: Pebble retries a failed flush at once and
// forever; the store's listener spaces the retries out and logs the
// repeated error once, and the flush completes when the disk has room.
func TestFlushFailureBacksOff(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fs := faultfs.New(nil)
	s, err := Open(t.TempDir(), Options{CacheBytes: 1 << 20, FS: fs, MinFreeBytes: -1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1")))
	fs.FailTables.Store(true)
	flushed, err := s.db.AsyncFlush()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n := fs.TableFailures.Load(); n == 0 || n > 20 {
		t.Fatalf("%d failed flush attempts in a second, want a few (backoff)", n)
	}
	mu.Lock()
	lines := strings.Count(logs.String(), "background flush or compaction failed")
	mu.Unlock()
	if lines != 1 {
		t.Fatalf("%d log lines for the same flush error, want 1:\n%s", lines, logs.String())
	}
	fs.FailTables.Store(false)
	select {
	case <-flushed:
	case <-time.After(15 * time.Second):
		t.Fatal("flush did not complete after the disk came back")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestOpenOnFullDiskServesReads: opening writes nothing (the log is
// replayed into Pebble's memtable, not a table), so a node whose disk is
// full still starts and serves reads; and a replayed memtable that cannot
// be flushed there is retried in the background, not in a loop at Open.
func TestOpenOnFullDiskServesReads(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	mustAppend(t, s, applySync, ent(1, 1, set("a", "1")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fs := faultfs.New(nil)
	fs.FailTables.Store(true)
	start := time.Now()
	s2, err := Open(dir, Options{CacheBytes: 1 << 20, FS: fs})
	if err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Open took %v", el)
	}
	if got := getStr(t, s2, "a", 1); got != "1@1" {
		t.Fatalf("read on a full disk = %s", got)
	}
	fs.FailTables.Store(false)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

// flushedStore writes entries and closes the store (which flushes them to
// a table) twice. It returns the tables.
func flushedStore(t *testing.T, dir string) []string {
	t.Helper()
	s := openTestStore(t, dir)
	for i := uint64(1); i <= 50; i++ {
		mustAppend(t, s, applySync, ent(i, 1, set(fmt.Sprint("k", i), strings.Repeat("v", 100))))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table after reopening")
	}
	return tables
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptTableIsCorruptionError: a flipped byte in a table is a
// *CorruptionError naming the file, on one line, and stops the store —
// not a Go panic from Pebble's Fatalf.
func TestCorruptTableIsCorruptionError(t *testing.T) {
	dir := t.TempDir()
	tables := flushedStore(t, dir)
	flipByte(t, tables[0], 40) // inside the first data block: the first versions
	// Open reads only the metadata; the damage surfaces at Open or at the
	// first read of the block, and either way as corruption.
	s, err := Open(dir, Options{CacheBytes: 1 << 20})
	if err == nil {
		err = s.Scan(Latest, nil, func([]byte, Version) bool { return true })
		_ = s.Close()
		if err == nil {
			t.Fatal("Open and a full scan succeeded on a corrupt table")
		}
	}
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *CorruptionError", err)
	}
	if ce.Path != tables[0] {
		t.Fatalf("CorruptionError.Path = %q, want %q", ce.Path, tables[0])
	}
	if msg := err.Error(); !strings.Contains(msg, tables[0]) || strings.Contains(msg, "\n") {
		t.Fatalf("message %q: want one line naming %s", msg, tables[0])
	}
}

// TestCorruptLogFileIsCorruptionError: a flipped byte in the middle of
// the log's segment file is reported at Open as corruption, not silently
// truncated.
func TestCorruptLogFileIsCorruptionError(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	for i := uint64(1); i <= 50; i++ {
		mustAppend(t, s, applySync, ent(i, 1, set(fmt.Sprint("k", i), strings.Repeat("v", 1000))))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.log"))
	if len(logs) != 1 {
		t.Fatalf("log files %v, want one", logs)
	}
	img, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	// The segment ends with the zeros the log keeps ahead of its end:
	// flip a byte a third into the frames.
	end := len(bytes.TrimRight(img, "\x00"))
	flipByte(t, logs[0], int64(end/3))
	s2, err := Open(dir, Options{CacheBytes: 1 << 20})
	if err == nil {
		_ = s2.Close()
		t.Fatal("Open succeeded on a corrupt log file")
	}
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *CorruptionError", err)
	}
	if ce.Path != logs[0] {
		t.Fatalf("CorruptionError.Path = %q, want %q", ce.Path, logs[0])
	}
	if msg := err.Error(); !strings.Contains(msg, logs[0]) || strings.Contains(msg, "\n") {
		t.Fatalf("message %q: want one line naming %s", msg, logs[0])
	}
}

// TestPebbleFatalStopsStore: Pebble's Fatalf outside a commit (a failed
// MANIFEST write, say) must not panic: the store reports it on Fatal and
// the calling goroutine stays parked, as Pebble requires.
func TestPebbleFatalStopsStore(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	returned := make(chan struct{})
	go func() {
		pebbleLogger{s: s, ev: s.ev}.Fatalf("MANIFEST sync failed: %v", fmt.Errorf("sync %s: %w", "MANIFEST-000001", syscall.EIO))
		close(returned)
	}()
	select {
	case <-s.Fatal():
	case <-time.After(5 * time.Second):
		t.Fatal("Fatal not closed")
	}
	if msg := s.FatalErr().Error(); !strings.Contains(msg, "MANIFEST sync failed") || strings.Contains(msg, "\n") {
		t.Fatalf("FatalErr = %q, want one line with Pebble's message", msg)
	}
	if _, err := s.Append([]Entry{ent(1, 1)}, applySync); err == nil {
		t.Fatal("append after a fatal error succeeded")
	}
	select {
	case <-returned:
		t.Fatal("Fatalf returned")
	case <-time.After(50 * time.Millisecond):
	}
	// Close must not touch Pebble, whose locks the parked goroutine may hold.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close hangs after a fatal error")
	}
}

func TestCommitFatalFormatPanicsWithCause(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	cause := fmt.Errorf("write 000002.log: %w", syscall.ENOSPC)
	defer func() {
		cp, ok := recover().(commitPanic)
		if !ok || cp.err != cause {
			t.Fatalf("recovered %#v, want commitPanic carrying the cause", cp)
		}
	}()
	pebbleLogger{s: s, ev: s.ev}.Fatalf(commitFatalFormat+": %v", cause)
}

func TestThrottle(t *testing.T) {
	var th Throttle
	now := time.Unix(0, 0)
	e1 := errors.New("disk full")
	start := now
	logged := 0
	for i := range 100 {
		if !th.Ready(now) {
			t.Fatalf("attempt %d not ready at its backoff time", i)
		}
		if th.Ready(now.Add(-time.Millisecond)) && i > 0 {
			t.Fatalf("attempt %d ready before its backoff", i)
		}
		if log, _ := th.Fail(now, e1); log {
			logged++
		}
		now = th.next
	}
	// One line per quiet minute, plus the first.
	if max := int(now.Sub(start)/time.Minute) + 2; logged > max {
		t.Fatalf("%d lines for 100 identical failures over %v, want at most %d", logged, now.Sub(start), max)
	}
	if th.next.Sub(now.Add(-30*time.Second)) < 0 {
		t.Fatal("backoff exceeds Max")
	}
	if log, _ := th.Fail(now, errors.New("other")); !log {
		t.Fatal("a new error was not logged")
	}
	if !th.Succeed() || th.Succeed() {
		t.Fatal("Succeed reports recovery once")
	}
}
