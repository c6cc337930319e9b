package wal

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/replicant-db/replicant/internal/storage/faultfs"
)

// checkFailedForGood checks that every mutation now returns the recorded
// first failure, that reads still work, and that reopening clears it.
func checkFailedForGood(t *testing.T, l *Log, ffs *faultfs.FS, first error, readable uint64) {
	t.Helper()
	var fe *FailedError
	if !errors.As(first, &fe) || !errors.Is(first, syscall.ENOSPC) {
		t.Fatalf("first failure %v is not a *FailedError wrapping ENOSPC", first)
	}
	// Even with the disk healthy again: the page cache is not to be
	// trusted after a failed write or fsync.
	ffs.FailWAL.Store(false)
	ffs.FailWALCreate.Store(false)
	last := l.LastLSN()
	for name, err := range map[string]error{
		"AppendBatch":   l.AppendBatch(last+1, [][]byte{[]byte("again")}),
		"Sync":          l.Sync(),
		"TruncateFront": l.TruncateFront(last),
		"TruncateBack":  l.TruncateBack(last - 1),
		"Reset":         l.Reset(last + 10),
	} {
		var got *FailedError
		if !errors.As(err, &got) || got != fe {
			t.Errorf("%s after the failure returned %v, want the first failure %v", name, err, first)
		}
	}
	if l.LastLSN() != last {
		t.Fatalf("LastLSN moved from %d to %d", last, l.LastLSN())
	}
	checkEntries(t, readAll(t, l, 1, readable, 0), 1, readable, salt0)
	if l.SizeBetween(1, readable) == 0 {
		t.Fatal("SizeBetween stopped working")
	}
}

func TestFailedWrite(t *testing.T) {
	ffs := faultfs.New(vfs.NewMem())
	l := mustOpen(t, ffs, "/wal", 0)
	appendRange(t, l, 1, 10, 5, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	ffs.FailWAL.Store(true)
	err := l.AppendBatch(11, [][]byte{[]byte("lost")})
	if err == nil {
		t.Fatal("AppendBatch succeeded on a failing disk")
	}
	checkPositions(t, l, 1, 10) // the failed batch was never published
	checkFailedForGood(t, l, ffs, err, 10)
	if l.SyncedLSN() != 10 {
		t.Fatalf("SyncedLSN %d", l.SyncedLSN())
	}
	l = reopen(t, l, ffs, "/wal", 0)
	checkPositions(t, l, 1, 10)
	appendRange(t, l, 11, 20, 5, 0)
	checkEntries(t, readAll(t, l, 1, 20, 0), 1, 20, salt0)
	mustClose(t, l)
}

func TestFailedSync(t *testing.T) {
	forEachFS(t, func(t *testing.T, base vfs.FS, dir string) {
		ffs := faultfs.New(base)
		l := mustOpen(t, ffs, dir, 0)
		appendRange(t, l, 1, 10, 5, 0)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		appendRange(t, l, 11, 20, 5, 0)
		ffs.FailWAL.Store(true)
		err := l.Sync()
		if err == nil {
			t.Fatal("Sync succeeded on a failing disk")
		}
		if l.SyncedLSN() != 10 {
			t.Fatalf("SyncedLSN %d after a failed Sync", l.SyncedLSN())
		}
		// Entries written before the failure stay readable.
		checkFailedForGood(t, l, ffs, err, 20)
		l = reopen(t, l, ffs, dir, 0)
		if l.LastLSN() < 10 {
			t.Fatalf("synced entries lost: LastLSN %d", l.LastLSN())
		}
		checkEntries(t, readAll(t, l, 1, 100, 0), 1, l.LastLSN(), salt0)
		mustClose(t, l)
	})
}

// TestFailedRotation fails at each step of starting a new segment: syncing
// the full one, and creating the next.
func TestFailedRotation(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*faultfs.FS)
	}{
		{"sync of the full segment", func(f *faultfs.FS) { f.FailWAL.Store(true) }},
		{"creation of the next segment", func(f *faultfs.FS) { f.FailWALCreate.Store(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ffs := faultfs.New(vfs.NewMem())
			l := mustOpen(t, ffs, "/wal", 100)
			appendRange(t, l, 1, 10, 10, 0) // more than 100 bytes: next batch rotates
			tc.set(ffs)
			err := l.AppendBatch(11, [][]byte{[]byte("x")})
			if err == nil {
				t.Fatal("rotation succeeded on a failing disk")
			}
			checkFailedForGood(t, l, ffs, err, 10)
			l = reopen(t, l, ffs, "/wal", 100)
			checkPositions(t, l, 1, 10)
			appendRange(t, l, 11, 30, 3, 0)
			l = reopen(t, l, ffs, "/wal", 100)
			checkEntries(t, readAll(t, l, 1, 100, 0), 1, 30, salt0)
			mustClose(t, l)
		})
	}
}

// TestFailedSyncConcurrent has many goroutines syncing when the disk fails:
// all of them, and everyone after, get the same failure.
func TestFailedSyncConcurrent(t *testing.T) {
	ffs := faultfs.New(vfs.NewMem())
	l := mustOpen(t, ffs, "/wal", 0)
	defer l.Close()
	appendRange(t, l, 1, 10, 5, 0)
	ffs.FailWAL.Store(true)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() { errs[i] = l.Sync() })
	}
	wg.Wait()
	var first *FailedError
	for i, err := range errs {
		var fe *FailedError
		if !errors.As(err, &fe) {
			t.Fatalf("Sync %d: %v", i, err)
		}
		if first == nil {
			first = fe
		} else if fe != first {
			t.Fatalf("Sync %d failed with %v, another with %v", i, fe, first)
		}
	}
}

func TestOpenOnFailingDisk(t *testing.T) {
	ffs := faultfs.New(vfs.NewMem())
	ffs.FailWALCreate.Store(true)
	if _, err := Open("/wal", Options{FS: ffs}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open with segment creation failing: %v", err)
	}
	ffs.FailWALCreate.Store(false)
	mustClose(t, mustOpen(t, ffs, "/wal", 0))
	ffs.FailWAL.Store(true)
	if _, err := Open("/wal", Options{FS: ffs}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open with syncs failing: %v", err)
	}
}

// slowSyncFS counts fdatasyncs of segments and makes each take a while, so
// that concurrent Syncs pile up behind one.
type slowSyncFS struct {
	vfs.FS
	syncs atomic.Int64
	delay time.Duration
}

func (s *slowSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := s.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return &slowSyncFile{File: f, fs: s}, nil
}

func (s *slowSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := s.FS.OpenReadWrite(name, c, opts...)
	if err != nil {
		return nil, err
	}
	return &slowSyncFile{File: f, fs: s}, nil
}

type slowSyncFile struct {
	vfs.File
	fs *slowSyncFS
}

func (f *slowSyncFile) SyncData() error {
	f.fs.syncs.Add(1)
	time.Sleep(f.fs.delay)
	return f.File.SyncData()
}

func TestGroupCommit(t *testing.T) {
	fs := &slowSyncFS{FS: vfs.NewMem(), delay: 20 * time.Millisecond}
	l := mustOpen(t, fs, "/wal", 0)
	defer l.Close()
	fs.syncs.Store(0)

	// Nothing to sync: no fsync at all.
	if err := l.Sync(); err != nil || fs.syncs.Load() != 0 {
		t.Fatalf("Sync of a synced log: %v, %d fsyncs", err, fs.syncs.Load())
	}

	// Many Syncs for the same entries share one fsync.
	appendRange(t, l, 1, 10, 10, 0)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if err := l.Sync(); err != nil {
				t.Error(err)
			}
			if l.SyncedLSN() < 10 {
				t.Errorf("Sync returned with SyncedLSN %d", l.SyncedLSN())
			}
		})
	}
	wg.Wait()
	if n := fs.syncs.Load(); n != 1 {
		t.Fatalf("32 concurrent Syncs took %d fsyncs, want 1", n)
	}

	// An append during an fsync is not claimed by it, and the next Sync
	// covers it.
	fs.syncs.Store(0)
	appendRange(t, l, 11, 11, 1, 0)
	done := make(chan error)
	go func() { done <- l.Sync() }()
	for fs.syncs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	appendRange(t, l, 12, 12, 1, 0) // while the fsync sleeps
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := l.SyncedLSN(); s != 11 {
		t.Fatalf("SyncedLSN %d after an fsync that started before LSN 12 was published", s)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if s, n := l.SyncedLSN(), fs.syncs.Load(); s != 12 || n != 2 {
		t.Fatalf("SyncedLSN %d after %d fsyncs", s, n)
	}
}
