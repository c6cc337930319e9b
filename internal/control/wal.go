package control

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The control plane persists everything in one append-only file,
// Dir/raft.wal, as a sequence of framed records:
//
//	uint32 LE  n = length of (type byte + payload)
//	uint32 LE  CRC-32C of the 4 length bytes
//	uint32 LE  CRC-32C of (type byte + payload)
//	byte       record type
//	payload    n-1 bytes
//
// A damaged record is reported as ErrCorrupt naming the file and offset; only
// an incomplete record at the very end (a torn write after a crash, whose
// header is intact or missing, or a zero-filled tail) is dropped on open.
//
// The first record is always recMeta. Later records are raft HardStates,
// entries and snapshots (protobuf). Replaying them in order rebuilds the raft
// storage: a snapshot record resets the log, an entry record overwrites any
// entries at or after its index, the last HardState wins. Compaction
// atomically replaces the file with [meta, snapshot, hardstate, entries after
// the snapshot] (write to a temporary file, fsync, rename, fsync the dir).
const (
	walName = "raft.wal"
	tmpName = "raft.wal.tmp"

	recMeta      byte = 1
	recSnapshot  byte = 2
	recHardState byte = 3
	recEntry     byte = 4

	recHeader = 12
	maxRecord = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// walMeta identifies whose log a file holds.
type walMeta struct {
	ID     string `json:"id"`
	RaftID uint64 `json:"raft_id"`
}

type walRecord struct {
	typ  byte
	data []byte
}

type wal struct {
	dir  string
	path string
	f    *os.File
	meta []byte
	buf  bytes.Buffer
}

func appendRecord(buf *bytes.Buffer, typ byte, payload []byte) {
	var hdr [recHeader]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)+1))
	binary.LittleEndian.PutUint32(hdr[4:8], crc32.Checksum(hdr[0:4], crcTable))
	crc := crc32.Update(0, crcTable, []byte{typ})
	crc = crc32.Update(crc, crcTable, payload)
	binary.LittleEndian.PutUint32(hdr[8:12], crc)
	buf.Write(hdr[:])
	buf.WriteByte(typ)
	buf.Write(payload)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// decodeRecords parses a whole file. It returns the records, the offset just
// past the last complete record, and an error for a record that is damaged.
// An incomplete record at the very end (a torn write) is not an error:
// good < len(b) tells the caller to truncate it.
func decodeRecords(b []byte) (recs []walRecord, good int, err error) {
	off := 0
	for off < len(b) {
		rest := b[off:]
		if len(rest) < recHeader || allZero(rest) {
			return recs, off, nil
		}
		if crc32.Checksum(rest[0:4], crcTable) != binary.LittleEndian.Uint32(rest[4:8]) {
			return recs, off, fmt.Errorf("record at offset %d has a damaged header", off)
		}
		n := int(binary.LittleEndian.Uint32(rest[0:4]))
		if n < 1 || n > maxRecord {
			return recs, off, fmt.Errorf("record at offset %d has invalid length %d", off, n)
		}
		if len(rest)-recHeader < n {
			return recs, off, nil
		}
		body := rest[recHeader : recHeader+n]
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(rest[8:12]) {
			return recs, off, fmt.Errorf("record at offset %d fails its checksum", off)
		}
		typ := body[0]
		if typ < recMeta || typ > recEntry {
			return recs, off, fmt.Errorf("record at offset %d has unknown type %d", off, typ)
		}
		recs = append(recs, walRecord{typ: typ, data: body[1:]})
		off += recHeader + n
	}
	return recs, off, nil
}

// openWAL opens (or creates) Dir/raft.wal and returns its records after the
// meta record. A file written for another member id is refused.
func openWAL(dir string, meta walMeta, log *slog.Logger) (*wal, []walRecord, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("control: create %s: %w", dir, err)
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		return nil, nil, fmt.Errorf("control: encode wal meta: %w", err)
	}
	w := &wal{dir: dir, path: filepath.Join(dir, walName), meta: mb}
	_ = os.Remove(filepath.Join(dir, tmpName)) // an interrupted compaction
	data, err := os.ReadFile(w.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := w.rewrite(nil); err != nil {
			return nil, nil, err
		}
		return w, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("control: read %s: %w", w.path, err)
	}
	recs, good, derr := decodeRecords(data)
	if derr != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, w.path, derr)
	}
	if len(recs) == 0 || recs[0].typ != recMeta {
		if len(recs) == 0 {
			// Created but never completed its first write: start afresh.
			if err := w.rewrite(nil); err != nil {
				return nil, nil, err
			}
			return w, nil, nil
		}
		return nil, nil, fmt.Errorf("%w: %s: first record is not the header", ErrCorrupt, w.path)
	}
	var got walMeta
	if err := json.Unmarshal(recs[0].data, &got); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: header: %w", ErrCorrupt, w.path, err)
	}
	if got.ID != meta.ID || got.RaftID != meta.RaftID {
		return nil, nil, fmt.Errorf("control: %s belongs to member %q (raft id %x), not %q", w.path, got.ID, got.RaftID, meta.ID)
	}
	f, err := os.OpenFile(w.path, os.O_RDWR, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("control: open %s: %w", w.path, err)
	}
	if good < len(data) {
		log.Warn("control: dropping a torn record at the end of the raft log", "file", w.path, "offset", good, "bytes", len(data)-good)
		if err := f.Truncate(int64(good)); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("control: truncate %s: %w", w.path, err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("control: sync %s: %w", w.path, err)
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("control: seek %s: %w", w.path, err)
	}
	w.f = f
	return w, recs[1:], nil
}

// save appends a snapshot, entries and a hard state (any may be empty) and
// fsyncs when sync is set.
func (w *wal) save(snap *raftpb.Snapshot, ents []*raftpb.Entry, hs *raftpb.HardState, sync bool) error {
	w.buf.Reset()
	if err := encodeRaft(&w.buf, snap, ents, hs); err != nil {
		return err
	}
	if w.buf.Len() == 0 {
		return nil
	}
	if _, err := w.f.Write(w.buf.Bytes()); err != nil {
		return fmt.Errorf("control: write %s: %w", w.path, err)
	}
	if sync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("control: sync %s: %w", w.path, err)
		}
	}
	return nil
}

func encodeRaft(buf *bytes.Buffer, snap *raftpb.Snapshot, ents []*raftpb.Entry, hs *raftpb.HardState) error {
	if snap != nil && !raft.IsEmptySnap(snap) {
		b, err := proto.Marshal(snap)
		if err != nil {
			return fmt.Errorf("control: encode snapshot: %w", err)
		}
		appendRecord(buf, recSnapshot, b)
	}
	for _, e := range ents {
		b, err := proto.Marshal(e)
		if err != nil {
			return fmt.Errorf("control: encode entry: %w", err)
		}
		appendRecord(buf, recEntry, b)
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		b, err := proto.Marshal(hs)
		if err != nil {
			return fmt.Errorf("control: encode hard state: %w", err)
		}
		appendRecord(buf, recHardState, b)
	}
	return nil
}

// compact atomically replaces the file by one holding only the snapshot, the
// hard state and the entries after the snapshot.
func (w *wal) compact(snap *raftpb.Snapshot, ents []*raftpb.Entry, hs *raftpb.HardState) error {
	var body bytes.Buffer
	if err := encodeRaft(&body, snap, ents, hs); err != nil {
		return err
	}
	return w.rewrite(body.Bytes())
}

// rewrite replaces the file by [meta] + body.
func (w *wal) rewrite(body []byte) error {
	var buf bytes.Buffer
	appendRecord(&buf, recMeta, w.meta)
	buf.Write(body)
	tmp := filepath.Join(w.dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("control: create %s: %w", tmp, err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		_ = f.Close()
		return fmt.Errorf("control: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("control: sync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, w.path); err != nil {
		_ = f.Close()
		return fmt.Errorf("control: rename %s: %w", tmp, err)
	}
	if err := syncDir(w.dir); err != nil {
		_ = f.Close()
		return err
	}
	if w.f != nil {
		_ = w.f.Close()
	}
	w.f = f // positioned at the end, and now named w.path
	return nil
}

func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("control: close %s: %w", w.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("control: open dir %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("control: sync dir %s: %w", dir, err)
	}
	return nil
}

// replayed is the raft state rebuilt from the log file.
type replayed struct {
	storage *raft.MemoryStorage
	snap    *raftpb.Snapshot // nil if none
	hs      *raftpb.HardState
	entries int
}

func (r *replayed) empty() bool {
	return r.snap == nil && r.hs == nil && r.entries == 0
}

// replay rebuilds a MemoryStorage from the records. path only names the file
// in errors.
func replay(path string, recs []walRecord) (*replayed, error) {
	r := &replayed{storage: raft.NewMemoryStorage()}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, path, fmt.Sprintf(format, args...))
	}
	for i, rec := range recs {
		switch rec.typ {
		case recMeta:
			return nil, corrupt("record %d: a second header", i+1)
		case recSnapshot:
			snap := &raftpb.Snapshot{}
			if err := proto.Unmarshal(rec.data, snap); err != nil {
				return nil, corrupt("record %d: snapshot: %v", i+1, err)
			}
			if raft.IsEmptySnap(snap) {
				return nil, corrupt("record %d: empty snapshot", i+1)
			}
			if r.snap != nil && snap.GetMetadata().GetIndex() <= r.snap.GetMetadata().GetIndex() {
				return nil, corrupt("record %d: snapshot index %d does not advance past %d", i+1,
					snap.GetMetadata().GetIndex(), r.snap.GetMetadata().GetIndex())
			}
			// A snapshot replaces the whole log.
			r.storage = raft.NewMemoryStorage()
			if err := r.storage.ApplySnapshot(snap); err != nil {
				return nil, corrupt("record %d: apply snapshot: %v", i+1, err)
			}
			r.snap = snap
			r.entries = 0
		case recEntry:
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(rec.data, e); err != nil {
				return nil, corrupt("record %d: entry: %v", i+1, err)
			}
			first, _ := r.storage.FirstIndex()
			last, _ := r.storage.LastIndex()
			idx := e.GetIndex()
			switch {
			case idx == 0:
				return nil, corrupt("record %d: entry with index 0", i+1)
			case idx < first:
				continue // covered by the snapshot
			case idx > last+1:
				return nil, corrupt("record %d: entry %d leaves a gap after %d", i+1, idx, last)
			}
			if err := r.storage.Append([]*raftpb.Entry{e}); err != nil {
				return nil, corrupt("record %d: append entry %d: %v", i+1, idx, err)
			}
			r.entries++
		case recHardState:
			hs := &raftpb.HardState{}
			if err := proto.Unmarshal(rec.data, hs); err != nil {
				return nil, corrupt("record %d: hard state: %v", i+1, err)
			}
			r.hs = hs
		}
	}
	if r.hs != nil {
		snapIdx := r.snap.GetMetadata().GetIndex()
		last, _ := r.storage.LastIndex()
		hs := proto.Clone(r.hs).(*raftpb.HardState)
		if hs.GetCommit() < snapIdx {
			// Everything in a snapshot is committed; a hard state older than
			// the snapshot (lost with a torn tail) is raised to it.
			hs.Commit = new(snapIdx)
		}
		if hs.GetCommit() > last {
			return nil, corrupt("hard state commit %d is beyond the last entry %d", hs.GetCommit(), last)
		}
		if err := r.storage.SetHardState(hs); err != nil {
			return nil, corrupt("hard state: %v", err)
		}
		r.hs = hs
	} else if r.snap != nil {
		hs := &raftpb.HardState{Term: new(r.snap.GetMetadata().GetTerm()), Commit: new(r.snap.GetMetadata().GetIndex())}
		if err := r.storage.SetHardState(hs); err != nil {
			return nil, corrupt("hard state: %v", err)
		}
		r.hs = hs
	}
	return r, nil
}
