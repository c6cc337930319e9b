// Package faultfs is a Pebble file system for tests that makes the disk
// fill up or fail on demand: writes and syncs of the write-ahead log or of
// tables return ENOSPC, and the free space the store sees can be set.
package faultfs

import (
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS wraps a vfs.FS. The zero flags fail nothing.
type FS struct {
	vfs.FS
	// FailWAL makes writes and syncs of *.log files fail with ENOSPC.
	FailWAL atomic.Bool
	// FailWALSync makes only syncs of *.log files fail (the write reached
	// the page cache; the disk refused to make it durable).
	FailWALSync atomic.Bool
	// FailWALCreate makes creating a *.log file fail with ENOSPC.
	FailWALCreate atomic.Bool
	// FailTables makes writes and syncs of *.sst files fail with ENOSPC.
	FailTables atomic.Bool
	// TableFailures counts table writes that failed.
	TableFailures atomic.Int64
	avail         atomic.Int64
}

// New wraps fs (vfs.Default when nil).
func New(fs vfs.FS) *FS {
	if fs == nil {
		fs = vfs.Default
	}
	f := &FS{FS: fs}
	f.avail.Store(-1)
	return f
}

// SetAvail makes GetDiskUsage report n free bytes of 1 GiB; negative
// reports the real file system.
func (f *FS) SetAvail(n int64) { f.avail.Store(n) }

// GetDiskUsage implements vfs.FS.
func (f *FS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	if n := f.avail.Load(); n >= 0 {
		return vfs.DiskUsage{AvailBytes: uint64(n), TotalBytes: 1 << 30, UsedBytes: 1<<30 - uint64(n)}, nil
	}
	return f.FS.GetDiskUsage(path)
}

func (f *FS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return file, err
	}
	switch {
	case strings.HasSuffix(name, ".log"):
		return &faultFile{File: file, fail: &f.FailWAL, failSync: &f.FailWALSync, name: name}, nil
	case strings.HasSuffix(name, ".sst"):
		return &faultFile{File: file, fail: &f.FailTables, name: name, count: &f.TableFailures}, nil
	}
	return file, nil
}

// Create implements vfs.FS.
func (f *FS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasSuffix(name, ".log") && f.FailWALCreate.Load() {
		return nil, enospc("create", name)
	}
	file, err := f.FS.Create(name, c)
	return f.wrap(name, file, err)
}

// ReuseForWrite implements vfs.FS.
func (f *FS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasSuffix(newname, ".log") && f.FailWALCreate.Load() {
		return nil, enospc("create", newname)
	}
	file, err := f.FS.ReuseForWrite(oldname, newname, c)
	return f.wrap(newname, file, err)
}

// OpenReadWrite implements vfs.FS.
func (f *FS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.OpenReadWrite(name, c, opts...)
	return f.wrap(name, file, err)
}

// Unwrap implements vfs.FS.
func (f *FS) Unwrap() vfs.FS { return f.FS }

func enospc(op, name string) error {
	return fmt.Errorf("%s %s: %w", op, name, syscall.ENOSPC)
}

type faultFile struct {
	vfs.File
	fail     *atomic.Bool
	failSync *atomic.Bool // nil: syncs fail with fail only
	count    *atomic.Int64
	name     string
}

func (f *faultFile) failed(op string) error {
	if !f.fail.Load() {
		return nil
	}
	if f.count != nil {
		f.count.Add(1)
	}
	return enospc(op, f.name)
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.failed("write"); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.failed("write"); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) syncFailed() error {
	if f.failSync != nil && f.failSync.Load() {
		return enospc("sync", f.name)
	}
	return f.failed("sync")
}

func (f *faultFile) Sync() error {
	if err := f.syncFailed(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) SyncData() error {
	if err := f.syncFailed(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *faultFile) SyncTo(length int64) (bool, error) {
	if err := f.syncFailed(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}
