package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configures Open.
type Options struct {
	FS           vfs.FS       // nil: vfs.Default
	SegmentBytes int64        // rotate once the active segment is at least this big; <= 0: 64 MiB
	Logger       *slog.Logger // nil: discard
	// Preallocate is how many bytes past the active segment's end are
	// kept written with zeros and synced, so that the fsync after an
	// append does not also have to commit a new file size (prealloc.go);
	// 0: none. Only files of the operating system are filled.
	Preallocate int64
}

const defaultSegmentBytes = 64 << 20

// readCacheSlots is how many read positions are remembered. A few, not one,
// so that several followers tailing at different points do not evict each
// other on every call.
const readCacheSlots = 8

// readPos is where entry lsn starts in seg, remembered from an earlier Read.
type readPos struct {
	seg *segment
	lsn uint64
	off int64
}

// Log is a segmented append-only log. See the package documentation.
type Log struct {
	dir      string
	fs       vfs.FS
	segBytes int64
	logger   *slog.Logger

	// Lock order: wmu, removeMu, syncMu, fillMu, mu.
	//
	// wmu serialises mutations (AppendBatch, TruncateFront, TruncateBack,
	// Reset, Close): there is one writer, but TruncateFront comes from
	// retention on another goroutine.
	wmu sync.Mutex
	// removeMu is held while TruncateFront deletes the files it detached,
	// after it let go of wmu; TruncateBack, Reset and Close take it so that
	// no deletion is still pending when they change or reuse file names.
	removeMu sync.Mutex
	// syncMu serialises fsyncs and every change of SyncedLSN. Waiting on it
	// is what merges concurrent Syncs: whoever gets it next finds that the
	// previous fsync already covered it, or covers everyone queued.
	syncMu sync.Mutex
	// mu guards the segment list, the mutable segment fields, the read cache
	// and gen. It is only held for in-memory work, never across I/O.
	mu        sync.Mutex
	segs      []*segment
	cache     [readCacheSlots]readPos
	cacheNext int
	// gen counts TruncateBack and Reset calls: a read position computed
	// before one of them may point into bytes that no longer mean the same.
	gen uint64

	// fillMu is held by the zero filler while it writes and by the writer
	// for a write beyond the active segment's alloc (prealloc.go).
	fillMu   sync.Mutex
	prealloc int64
	fillKick chan struct{}
	fillStop chan struct{}
	fillDone chan struct{}
	zeros    []byte

	first, last, synced atomic.Uint64
	closed              atomic.Bool
	failed              atomic.Pointer[FailedError]

	// Writer-only scratch, guarded by wmu.
	buf []byte
	idx []int64
}

// Open opens or creates the log in dir, recovering from a crash: it verifies
// every frame, truncates a torn tail in the last segment and fsyncs, so that
// afterwards SyncedLSN() == LastLSN().
func Open(dir string, o Options) (*Log, error) {
	l := &Log{dir: dir, fs: o.FS, segBytes: o.SegmentBytes, logger: o.Logger, prealloc: max(o.Preallocate, 0)}
	if l.fs == nil {
		l.fs = vfs.Default
	}
	if l.segBytes <= 0 {
		l.segBytes = defaultSegmentBytes
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	// If MkdirAll just created dir, its entry in the parent is not durable
	// yet, and losing it would lose every segment however well synced.
	if parent := l.fs.PathDir(dir); parent != dir {
		if err := syncDir(l.fs, parent); err != nil {
			return nil, err
		}
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.file.unref()
		}
		return nil, err
	}
	l.startFiller()
	return l, nil
}

func (l *Log) recover() error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", l.dir, err)
	}
	var firsts []uint64
	for _, name := range names {
		if strings.HasSuffix(name, tmpSuffix) {
			l.logger.Warn("wal: removing leftover of an interrupted truncation", "dir", l.dir, "file", name)
			if err := l.fs.Remove(l.fs.PathJoin(l.dir, name)); err != nil {
				return fmt.Errorf("wal: remove %s: %w", name, err)
			}
			continue
		}
		if first, ok := parseSegmentName(name); ok {
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)
	if len(firsts) == 0 {
		seg, err := l.createSegment(1)
		if err != nil {
			return err
		}
		l.segs = []*segment{seg}
	}
	for i, first := range firsts {
		name := segmentName(first)
		corrupt := func(off int64, lsn uint64, err error) error {
			return &CorruptionError{Dir: l.dir, Segment: name, Offset: off, LSN: lsn, Err: err}
		}
		if first == 0 {
			return corrupt(0, 0, errors.New("segment named LSN 0; LSNs start at 1"))
		}
		if i > 0 {
			if want := l.segs[i-1].last + 1; first != want {
				return corrupt(0, want, fmt.Errorf("segments are not contiguous: previous one ends at LSN %d, this one starts at %d", want-1, first))
			}
		}
		path := l.fs.PathJoin(l.dir, name)
		f, err := l.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("wal: open %s: %w", path, err)
		}
		seg := &segment{first: first, path: path, name: name, file: newSegFile(f)}
		l.segs = append(l.segs, seg)
		isLast := i == len(firsts)-1
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("wal: stat %s: %w", path, err)
		}
		size := st.Size()
		hdr := make([]byte, min(size, segHeaderSize))
		if m, err := f.ReadAt(hdr, 0); m < len(hdr) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("wal: read %s: %w", path, err)
		}
		if size < segHeaderSize || (size == segHeaderSize && checkSegHeader(hdr) != nil && tornHeader(hdr)) {
			// createSegment syncs the header before the segment is used, and
			// creates the next segment only after this one is complete.
			if !isLast {
				return corrupt(0, first, errors.New("segment is shorter than its header, or the header was never written"))
			}
			// The crash interrupted the creation of this segment: it never
			// held an entry. Create it again.
			l.logger.Warn("wal: rewriting the segment whose creation a crash interrupted", "segment", path, "size", size)
			seg.file.unref()
			l.segs = l.segs[:i]
			if seg, err = l.createSegment(first); err != nil {
				return err
			}
			l.segs = append(l.segs, seg)
			continue
		}
		if err := checkSegHeader(hdr); err != nil {
			return fmt.Errorf("wal: open %s: %w", path, err)
		}
		res, err := scanSegment(f, first, size)
		if err != nil {
			return fmt.Errorf("wal: read %s: %w", path, err)
		}
		seg.last, seg.size, seg.index = res.last, res.validEnd, res.index
		if res.bad == nil {
			continue
		}
		if !isLast || res.intact {
			return corrupt(res.validEnd, res.last+1, res.bad)
		}
		if l.prealloc > 0 {
			// Zeros from the filler, or unsynced frames whose blocks a
			// crash left as the filler wrote them: either way nothing
			// there was ever synced, and the zeros are kept for appends.
			zero, err := zeroTail(f, res.validEnd, size)
			if err != nil {
				return fmt.Errorf("wal: read %s: %w", path, err)
			}
			if zero {
				seg.alloc.Store(size)
				continue
			}
		}
		// A bad frame in the last segment. A crash can only damage bytes
		// that were not synced yet, so it is a torn write unless a later
		// frame records that the file had been synced past it.
		d, err := scanPastDamage(f, res.validEnd, size, res.last+1)
		if err != nil {
			return fmt.Errorf("wal: read %s: %w", path, err)
		}
		if d.vouched {
			return corrupt(res.validEnd, res.last+1, fmt.Errorf(
				"%w, but the intact frame for LSN %d at offset %d records that the file had been synced up to offset %d, so these bytes were durable and are damaged",
				res.bad, d.vouchLSN, d.vouchOff, d.vouchSynced))
		}
		args := []any{"segment", path, "offset", res.validEnd, "dropped_bytes", size - res.validEnd,
			"dropped_intact_entries", d.frames, "last_lsn", res.last, "reason", res.bad.Error()}
		if d.frames > 0 {
			args = append(args, "highest_dropped_lsn", d.lastLSN)
		}
		l.logger.Warn("wal: truncating the unsynced tail of the last segment at its first bad frame", args...)
		nf, err := truncateFile(l.fs, l.dir, path, f, res.validEnd)
		if err != nil {
			return err
		}
		if nf != f {
			seg.file.unref()
			seg.file = newSegFile(nf)
		}
	}
	// A process crash leaves unsynced entries in the page cache, where this
	// scan saw them; fsync them (and the directory, in case the last
	// rotation's entry was not yet durable) before calling them synced.
	active := l.segs[len(l.segs)-1]
	if err := active.file.f.SyncData(); err != nil {
		return fmt.Errorf("wal: sync %s: %w", active.path, err)
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return err
	}
	for _, s := range l.segs {
		s.synced.Store(s.size)
	}
	l.first.Store(l.segs[0].first)
	l.last.Store(active.last)
	l.synced.Store(active.last)
	l.logger.Debug("wal: opened", "dir", l.dir, "segments", len(l.segs),
		"first_lsn", l.first.Load(), "last_lsn", l.last.Load())
	return nil
}

// createSegment creates an empty segment named first (replacing a file of
// that name), writes its header and fsyncs it and the directory, so the
// segment (and the LSN its name promises) survives a crash before anything
// is written to it.
func (l *Log) createSegment(first uint64) (*segment, error) {
	name := segmentName(first)
	path := l.fs.PathJoin(l.dir, name)
	f, err := l.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", path, err)
	}
	if _, err := f.WriteAt(appendSegHeader(nil), 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("wal: write %s: %w", path, err)
	}
	if err := f.SyncData(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("wal: sync %s: %w", path, err)
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		_ = f.Close()
		return nil, err
	}
	seg := &segment{first: first, last: first - 1, path: path, name: name, size: segHeaderSize, file: newSegFile(f)}
	seg.synced.Store(segHeaderSize)
	return seg, nil
}

// FirstLSN is the first LSN held, LastLSN()+1 when the log is empty.
func (l *Log) FirstLSN() uint64 { return l.first.Load() }

// LastLSN is the last LSN appended, written but maybe not yet synced.
func (l *Log) LastLSN() uint64 { return l.last.Load() }

// SyncedLSN is the LSN up to which every entry is durable.
func (l *Log) SyncedLSN() uint64 { return l.synced.Load() }

// mutable returns why the log refuses mutations, if it does.
func (l *Log) mutable() error {
	if l.closed.Load() {
		return ErrClosed
	}
	if fe := l.failed.Load(); fe != nil {
		return fe
	}
	return nil
}

// fail records err as the failure that stops all later mutations (unless an
// earlier one already did) and returns the recorded failure.
func (l *Log) fail(err error) error {
	fe := &FailedError{Err: err}
	if l.failed.CompareAndSwap(nil, fe) {
		l.logger.Error("wal: write failed; the log refuses writes until reopened", "dir", l.dir, "err", err)
		return fe
	}
	return l.failed.Load()
}

// AppendBatch appends payloads as LSNs first, first+1, ... with a single
// write. They are readable when it returns and durable after the next Sync.
func (l *Log) AppendBatch(first uint64, payloads [][]byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.mutable(); err != nil {
		return err
	}
	if last := l.last.Load(); first != last+1 {
		return fmt.Errorf("%w: batch starts at LSN %d but the log ends at %d", ErrNotContiguous, first, last)
	}
	if len(payloads) == 0 {
		return nil
	}
	total := 0
	for i, p := range payloads {
		if int64(len(p)) > maxPayload {
			return fmt.Errorf("wal: payload for LSN %d is %d bytes, more than the limit of %d", first+uint64(i), len(p), maxPayload)
		}
		total += headerSize + len(p)
	}
	seg := l.segs[len(l.segs)-1]
	if seg.size >= l.segBytes && !seg.empty() {
		var err error
		if seg, err = l.rotate(seg); err != nil {
			return err
		}
	}
	buf := slices.Grow(l.buf[:0], total)
	idx := l.idx[:0]
	// Every frame records how much of the file was durable before it was
	// written, which is how recovery tells a torn write from damage to
	// synced data. A Sync finishing meanwhile only makes it an underestimate.
	synced := seg.synced.Load()
	for i, p := range payloads {
		lsn := first + uint64(i)
		if (lsn-seg.first)%indexStride == 0 {
			idx = append(idx, seg.size+int64(len(buf)))
		}
		buf = appendFrame(buf, lsn, synced, p)
	}
	// Beyond the zero-filled part the filler may be writing: keep it out.
	extend := l.prealloc > 0 && seg.size+int64(len(buf)) > seg.alloc.Load()
	if extend {
		l.fillMu.Lock()
	}
	if _, err := seg.file.f.WriteAt(buf, seg.size); err != nil {
		if extend {
			l.fillMu.Unlock()
		}
		return l.fail(fmt.Errorf("wal: write %s: %w", seg.path, err))
	}
	last := first + uint64(len(payloads)) - 1
	l.mu.Lock()
	seg.last = last
	seg.size += int64(len(buf))
	seg.index = append(seg.index, idx...)
	l.last.Store(last)
	size := seg.size
	l.mu.Unlock()
	if extend {
		l.fillMu.Unlock()
	}
	if l.lowOnZeros(seg, size) {
		l.kickFiller()
	}
	// Keep the buffer for the next batch unless one huge batch grew it.
	if cap(buf) > 8<<20 {
		buf = nil
	}
	l.buf, l.idx = buf, idx
	return nil
}

// rotate syncs the full active segment and starts the next one. The old
// segment is synced first so that every segment but the last is complete on
// disk, which is what lets recovery treat damage in them as corruption.
func (l *Log) rotate(old *segment) (*segment, error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced.Load() < old.last {
		if err := old.file.f.SyncData(); err != nil {
			return nil, l.fail(fmt.Errorf("wal: sync %s: %w", old.path, err))
		}
		l.synced.Store(old.last)
		old.synced.Store(old.size)
	}
	seg, err := l.createSegment(old.last + 1)
	if err != nil {
		return nil, l.fail(err)
	}
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
	return seg, nil
}

// Sync makes everything appended before the call durable. Concurrent calls
// share fsyncs; an append racing with the fsync lands in the next one.
func (l *Log) Sync() error {
	if err := l.mutable(); err != nil {
		return err
	}
	target := l.last.Load()
	if l.synced.Load() >= target {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.mutable(); err != nil {
		return err
	}
	if l.synced.Load() >= target {
		return nil // the fsync we queued behind covered us
	}
	return l.syncActive()
}

// syncActive fdatasyncs the active segment up to what is published now.
// Earlier segments were synced when they were rotated. syncMu must be held.
func (l *Log) syncActive() error {
	l.mu.Lock()
	seg := l.segs[len(l.segs)-1]
	sf, upto, size := seg.file, seg.last, seg.size
	sf.ref()
	l.mu.Unlock()
	err := sf.f.SyncData()
	sf.unref()
	if err != nil {
		return l.fail(fmt.Errorf("wal: sync %s: %w", seg.path, err))
	}
	if upto > l.synced.Load() {
		l.synced.Store(upto)
	}
	if size > seg.synced.Load() {
		seg.synced.Store(size)
	}
	return nil
}

// Read calls fn for the entries from..min(to, LastLSN()) in order. With
// maxBytes > 0 it stops before an entry that would take the payload total
// above maxBytes, but always delivers at least one entry. payload is valid
// only during fn; an error from fn stops the read and is returned as is.
func (l *Log) Read(from, to uint64, maxBytes int, fn func(lsn uint64, payload []byte) error) error {
	fr := getReader(nil, 0, 0)
	defer putReader(fr)
	lsn, total, delivered := from, 0, false
	for lsn <= to {
		l.mu.Lock()
		if l.closed.Load() {
			l.mu.Unlock()
			return ErrClosed
		}
		if first := l.first.Load(); lsn < first {
			l.mu.Unlock()
			return fmt.Errorf("%w: LSN %d is below the first held LSN %d", ErrCompacted, lsn, first)
		}
		i := l.findSeg(lsn)
		if i < 0 {
			l.mu.Unlock()
			return nil // past LastLSN
		}
		seg := l.segs[i]
		next, off := l.startPos(seg, lsn)
		end, size, sf, gen := min(to, seg.last), seg.size, seg.file, l.gen
		sf.ref()
		l.mu.Unlock()

		fr.reset(sf.f, off, size)
		var err error
		stop := false
		for next <= end {
			off = fr.pos()
			fm, ferr := fr.next()
			if ferr == nil && fm.lsn != next {
				ferr = wrongLSN(fm.lsn, next)
			}
			if ferr != nil {
				err = l.readError(seg, off, next, gen, ferr)
				break
			}
			if next >= lsn {
				if maxBytes > 0 && delivered && total+len(fm.payload) > maxBytes {
					stop = true
					break
				}
				if err = fn(next, fm.payload); err != nil {
					break
				}
				delivered = true
				total += len(fm.payload)
			}
			next++
			off = fr.pos()
		}
		sf.unref()
		if err != nil {
			return err
		}
		l.remember(seg, next, off, gen)
		if stop {
			return nil
		}
		lsn = next
	}
	return nil
}

// readError classifies a frame Read could not decode. The writer only ever
// appends after what readers may see, so a bad frame is corruption, unless
// TruncateBack or Reset rewrote the segment while we read it.
func (l *Log) readError(seg *segment, off int64, lsn, gen uint64, err error) error {
	l.mu.Lock()
	changed := l.gen != gen
	l.mu.Unlock()
	switch {
	case changed:
		return fmt.Errorf("wal: segment %s was truncated during the read of LSN %d: %w", seg.path, lsn, err)
	case isFrameError(err):
		return &CorruptionError{Dir: l.dir, Segment: seg.name, Offset: off, LSN: lsn, Err: err}
	default:
		return fmt.Errorf("wal: read %s: %w", seg.path, err)
	}
}

// findSeg returns the index of the segment holding lsn, or -1. mu must be
// held.
func (l *Log) findSeg(lsn uint64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > lsn }) - 1
	if i < 0 || lsn > l.segs[i].last {
		return -1
	}
	return i
}

// startPos returns the closest known entry start at or before lsn in seg:
// an index point or a position a previous Read stopped at. mu must be held.
func (l *Log) startPos(seg *segment, lsn uint64) (uint64, int64) {
	best, off := seg.indexed(lsn)
	for _, c := range l.cache {
		if c.seg == seg && c.lsn <= lsn && c.lsn > best {
			best, off = c.lsn, c.off
		}
	}
	return best, off
}

// remember records that entry lsn starts at off in seg, unless the segment
// was rewritten since the position was computed.
func (l *Log) remember(seg *segment, lsn uint64, off int64, gen uint64) {
	if (lsn-seg.first)%indexStride == 0 {
		return // the index already knows this one
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != gen {
		return
	}
	for i, c := range l.cache {
		if c.seg == seg && c.lsn == lsn {
			return
		}
		// A reader moving forward replaces the position it started from
		// rather than taking another slot.
		if c.seg == seg && c.lsn < lsn && lsn-c.lsn < 4*indexStride {
			l.cache[i] = readPos{seg, lsn, off}
			return
		}
	}
	l.cache[l.cacheNext] = readPos{seg, lsn, off}
	l.cacheNext = (l.cacheNext + 1) % readCacheSlots
}

// SizeBetween estimates the bytes (frames included) that the entries
// from..to occupy, clamped to what the log holds. It reads no files: within
// a segment it interpolates between index points.
func (l *Log) SizeBetween(from, to uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	from = max(from, l.first.Load())
	to = min(to, l.last.Load())
	if from > to || len(l.segs) == 0 {
		return 0
	}
	var total int64
	for i := max(l.findSeg(from), 0); i < len(l.segs); i++ {
		s := l.segs[i]
		if s.first > to {
			break
		}
		if s.empty() {
			continue
		}
		a, b := max(from, s.first), min(to, s.last)
		total += s.approxOffset(b+1) - s.approxOffset(a)
	}
	return uint64(total)
}

// TruncateFront deletes the segments all of whose entries are <= lsn,
// except the active one. FirstLSN becomes the first LSN of the oldest
// segment left, which may still be <= lsn.
func (l *Log) TruncateFront(lsn uint64) error {
	l.wmu.Lock()
	if err := l.mutable(); err != nil {
		l.wmu.Unlock()
		return err
	}
	k := 0
	for k < len(l.segs)-1 && l.segs[k].last <= lsn {
		k++
	}
	if k == 0 {
		l.wmu.Unlock()
		return nil
	}
	l.mu.Lock()
	dropped := slices.Clone(l.segs[:k])
	l.segs = slices.Clone(l.segs[k:])
	l.first.Store(l.segs[0].first)
	l.mu.Unlock()
	// Delete the files without holding up the writer, but keep removeMu
	// until done so that Reset or TruncateBack cannot reuse a name first.
	l.removeMu.Lock()
	l.wmu.Unlock()
	defer l.removeMu.Unlock()
	for _, s := range dropped {
		s.file.unref()
	}
	// Oldest first, each removal made durable before the next: whatever
	// survives a crash is then a suffix of the log, never one with a gap.
	for _, s := range dropped {
		if err := l.fs.Remove(s.path); err != nil && !isNotExist(err) {
			// The rest stay on disk until the next Open, which sees a longer
			// (still contiguous) log; the in-memory log is already shorter.
			return fmt.Errorf("wal: remove %s: %w", s.path, err)
		}
		if err := syncDir(l.fs, l.dir); err != nil {
			return l.fail(err)
		}
	}
	return nil
}

// TruncateBack removes every entry above lsn and makes that durable before
// returning; appends then continue at lsn+1.
func (l *Log) TruncateBack(lsn uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.mutable(); err != nil {
		return err
	}
	l.removeMu.Lock()
	defer l.removeMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	first, last := l.first.Load(), l.last.Load()
	if lsn+1 < first {
		return fmt.Errorf("%w: cannot truncate back to LSN %d, the log starts at %d", ErrCompacted, lsn, first)
	}
	if lsn > last {
		return fmt.Errorf("wal: cannot truncate back to LSN %d, past the last LSN %d", lsn, last)
	}
	if lsn == last {
		// Nothing to remove, but the caller relies on SyncedLSN == lsn.
		if l.synced.Load() < last {
			return l.syncActive()
		}
		return nil
	}
	l.mu.Lock()
	k := l.findSeg(lsn + 1)
	seg := l.segs[k]
	later := slices.Clone(l.segs[k+1:])
	l.mu.Unlock()
	off, err := l.offsetOf(seg, lsn+1)
	if err != nil {
		return err
	}

	// Hide the suffix from readers before touching the files, so that a new
	// Read never runs into bytes that are being cut.
	l.mu.Lock()
	l.segs = slices.Clone(l.segs[:k+1])
	seg.last, seg.size = lsn, off
	seg.index = seg.index[:(lsn+1-seg.first+indexStride-1)/indexStride]
	l.last.Store(lsn)
	if l.synced.Load() > lsn {
		l.synced.Store(lsn)
	}
	l.gen++
	l.cache = [readCacheSlots]readPos{}
	l.mu.Unlock()

	// Newest first, so that a crash part-way leaves a contiguous log that
	// merely still has some of the suffix.
	for i := len(later) - 1; i >= 0; i-- {
		s := later[i]
		s.file.unref()
		if err := l.fs.Remove(s.path); err != nil && !isNotExist(err) {
			return l.fail(fmt.Errorf("wal: remove %s: %w", s.path, err))
		}
	}
	if len(later) > 0 {
		if err := syncDir(l.fs, l.dir); err != nil {
			return l.fail(err)
		}
	}
	// The filler must not write into the file while it is cut (or
	// rewritten and renamed), and the zeros it counted are gone with it.
	l.fillMu.Lock()
	nf, err := truncateFile(l.fs, l.dir, seg.path, seg.file.f, off)
	seg.alloc.Store(0)
	l.fillMu.Unlock()
	if err != nil {
		return l.fail(err)
	}
	if nf != seg.file.f {
		l.mu.Lock()
		old := seg.file
		seg.file = newSegFile(nf)
		l.mu.Unlock()
		old.unref()
	}
	// truncateFile synced the whole kept prefix of this segment, and the
	// earlier segments were synced when they were rotated.
	seg.synced.Store(off)
	l.synced.Store(lsn)
	return nil
}

// offsetOf returns where entry lsn starts in seg (seg.size for the entry
// after its last). Only the writer calls it, so seg does not change meanwhile.
func (l *Log) offsetOf(seg *segment, lsn uint64) (int64, error) {
	if lsn > seg.last {
		return seg.size, nil
	}
	next, off := seg.indexed(lsn)
	fr := getReader(seg.file.f, off, seg.size)
	defer putReader(fr)
	for next < lsn {
		fm, err := fr.next()
		if err == nil && fm.lsn != next {
			err = wrongLSN(fm.lsn, next)
		}
		if err != nil {
			return 0, &CorruptionError{Dir: l.dir, Segment: seg.name, Offset: fr.pos(), LSN: next, Err: err}
		}
		next++
	}
	return fr.pos(), nil
}

// Reset deletes every segment and leaves an empty log that continues at
// next, durably.
func (l *Log) Reset(next uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.mutable(); err != nil {
		return err
	}
	if next == 0 {
		return errors.New("wal: cannot reset to LSN 0; LSNs start at 1")
	}
	l.removeMu.Lock()
	defer l.removeMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	old := l.segs
	l.mu.Unlock()
	// Oldest first, like TruncateFront, so a crash leaves a valid suffix
	// (the caller redoes the Reset when it finds the log not matching).
	for _, s := range old {
		if err := l.fs.Remove(s.path); err != nil && !isNotExist(err) {
			return l.fail(fmt.Errorf("wal: remove %s: %w", s.path, err))
		}
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return l.fail(err)
	}
	seg, err := l.createSegment(next)
	if err != nil {
		return l.fail(err)
	}
	l.mu.Lock()
	l.segs = []*segment{seg}
	l.first.Store(next)
	l.last.Store(next - 1)
	l.synced.Store(next - 1)
	l.gen++
	l.cache = [readCacheSlots]readPos{}
	l.mu.Unlock()
	for _, s := range old {
		s.file.unref()
	}
	l.kickFiller()
	return nil
}

// Close releases the files. It does not sync: call Sync first for
// durability. Reads still running finish with the files they hold.
func (l *Log) Close() error {
	l.StopPreallocating()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.removeMu.Lock()
	defer l.removeMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed.Store(true)
	segs := l.segs
	l.segs = nil
	l.cache = [readCacheSlots]readPos{}
	l.mu.Unlock()
	for _, s := range segs {
		s.file.unref()
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// tornHeader reports whether h, a header's worth of bytes, is what a crash
// during the header's first write can leave: a prefix of the header, then
// zeros.
func tornHeader(h []byte) bool {
	want := appendSegHeader(nil)
	k := 0
	for k < len(h) && h[k] == want[k] {
		k++
	}
	for _, c := range h[k:] {
		if c != 0 {
			return false
		}
	}
	return true
}
