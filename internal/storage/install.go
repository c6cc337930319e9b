package storage

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A snapshot install writes its versions into tables of its own and hands
// them to Pebble whole (ingestion), instead of through the memtable: the
// memtable path copied every byte into the batch and the skiplist, then
// flushed it to a table and compacted that table again — a joining node
// spent most of its CPU on that. The snapshot streams keys in order, so
// one table takes a run of them; a key out of order (a resent chunk, a
// restore from a file) closes the table and starts the next, and Pebble's
// ingestion orders overlapping tables by when they were ingested, so the
// later write wins, as it did in a batch.
//
// The tables are temporary files in the store's directory
// ("install-N.sst"): Pebble links them in on ingestion and the originals
// are removed. An install that stops halfway leaves at most one such
// file, removed when the next install begins or the store opens; what was
// ingested is wiped by the "installing" mark as before.

// installTableBytes is the size at which an install's table is ingested
// and the next begins. A variable so that tests can make tables small.
var installTableBytes uint64 = 64 << 20

const installTablePrefix = "install-"

// installer holds the table an install is writing.
type installer struct {
	mu   sync.Mutex
	seq  int
	path string
	w    *sstable.Writer
	last []byte // the last key written to w
}

// installPut adds one version record to the install's table, in a new
// table when key does not sort after the last one. The caller holds dbmu
// and inst.mu.
func (s *Store) installPut(key, value []byte) error {
	in := &s.inst
	if in.w != nil && comparer.Compare(key, in.last) <= 0 {
		if err := s.installIngest(); err != nil {
			return err
		}
	}
	if in.w == nil {
		in.seq++
		path := s.fs.PathJoin(s.dir, installTablePrefix+strconv.Itoa(in.seq)+".sst")
		f, err := s.fs.Create(path, "")
		if err != nil {
			return &DiskError{Dir: s.dir, Op: "snapshot install", Refused: true, Err: err}
		}
		in.path = path
		in.w = sstable.NewWriter(newTableFile(f), sstable.WriterOptions{
			Comparer:     comparer,
			TableFormat:  s.db.TableFormat(),
			FilterPolicy: bloomPolicy,
		})
	}
	if err := in.w.Set(key, value); err != nil {
		s.installAbort()
		return &DiskError{Dir: s.dir, Op: "snapshot install", Refused: true, Err: err}
	}
	in.last = append(in.last[:0], key...)
	return nil
}

// installIngest closes the install's table and hands it to Pebble. The
// caller holds dbmu and inst.mu.
func (s *Store) installIngest() error {
	in := &s.inst
	if in.w == nil {
		return nil
	}
	w, path := in.w, in.path
	in.w, in.path = nil, ""
	defer func() { _ = s.fs.Remove(path) }()
	if err := w.Close(); err != nil {
		return &DiskError{Dir: s.dir, Op: "snapshot install", Refused: true, Err: err}
	}
	if err := s.db.Ingest(context.Background(), []string{path}); err != nil {
		if pe := s.readErr(err); isCorruption(pe) {
			return pe
		}
		return s.degrade("snapshot install", err)
	}
	return nil
}

// installFull reports whether the install's table should be ingested.
// The caller holds inst.mu.
func (s *Store) installFull() bool {
	return s.inst.w != nil && s.inst.w.Raw().EstimatedSize() >= installTableBytes
}

// installAbort drops the table being written, if any. The caller holds
// inst.mu.
func (s *Store) installAbort() {
	in := &s.inst
	if in.w == nil {
		return
	}
	_ = in.w.Close()
	_ = s.fs.Remove(in.path)
	in.w, in.path = nil, ""
}

// removeInstallTables deletes tables an interrupted install left in the
// store's directory (at open, and when an install begins).
func (s *Store) removeInstallTables() error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", s.dir, err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, installTablePrefix) && strings.HasSuffix(n, ".sst") {
			if err := s.fs.Remove(s.fs.PathJoin(s.dir, n)); err != nil {
				return fmt.Errorf("storage: remove %s: %w", n, err)
			}
		}
	}
	return nil
}

// tableFile is an install table's file, written through a large buffer.
// Pebble's own writable buffers 4 KiB: block-sized writes at unaligned
// offsets, and the kernel here (large page-cache folios) zeroed the rest
// of a folio on each, which took as much CPU as the copy itself (perf: a
// joining node's top two kernel symbols).
type tableFile struct {
	f  vfs.File
	bw *bufio.Writer
}

const tableFileBuffer = 1 << 20

func newTableFile(f vfs.File) *tableFile {
	return &tableFile{f: f, bw: bufio.NewWriterSize(f, tableFileBuffer)}
}

func (t *tableFile) Write(p []byte) error {
	_, err := t.bw.Write(p)
	return err
}

func (t *tableFile) Finish() error {
	err := t.bw.Flush()
	if err == nil {
		err = t.f.Sync()
	}
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (t *tableFile) Abort() { _ = t.f.Close() }
