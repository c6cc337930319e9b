package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	// segHeaderSize is the segment header: magic and format version.
	segHeaderSize = 12
	// formatVersion is the only segment format this package reads and writes.
	formatVersion = 1
	// headerSize is the fixed part of a frame: length, CRC, LSN, synced
	// offset.
	headerSize = 24
	// indexStride is how many entries apart the sparse index records an
	// offset. 32 keeps the index at a quarter of a byte per entry while a
	// lookup scans at most 31 frames, which for typical entries is a few
	// kilobytes that one ReadAt fetches anyway.
	indexStride = 32
	// MaxPayload is the largest payload AppendBatch accepts. Recovery also
	// treats a larger length field as garbage, so a corrupted length cannot
	// make Open allocate gigabytes.
	MaxPayload = 1 << 30

	segmentSuffix = ".log"
	tmpSuffix     = ".log.tmp"
	// readChunk is how much a reader fetches per ReadAt when frames are
	// small.
	readChunk = 64 << 10
)

// maxPayload is MaxPayload; a variable only so that tests can exercise the
// limit without allocating a gigabyte.
var maxPayload int64 = MaxPayload

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segMagic opens every segment. Its fourth byte, 'L' (0x4c), is above the
// highest value (0x40) the fourth byte of a frame's length can take, so a
// file that starts with a frame, as segments of the unreleased headerless
// format did, can never pass for a segment.
var segMagic = [8]byte{'R', 'E', 'P', 'L', 'W', 'A', 'L', '\n'}

// appendSegHeader encodes the segment header onto buf.
func appendSegHeader(buf []byte) []byte {
	buf = append(buf, segMagic[:]...)
	return binary.LittleEndian.AppendUint32(buf, formatVersion)
}

// checkSegHeader verifies a complete segment header.
func checkSegHeader(h []byte) error {
	if [8]byte(h[:8]) != segMagic {
		return fmt.Errorf("%w: it starts with % x, not the segment magic %q (written by an older, unreleased format or not a segment at all)", ErrUnknownFormat, h, segMagic[:])
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != formatVersion {
		return fmt.Errorf("%w: format version %d, this build reads version %d", ErrUnknownFormat, v, formatVersion)
	}
	return nil
}

func segmentName(first uint64) string {
	return fmt.Sprintf("%016x%s", first, segmentSuffix)
}

// parseSegmentName accepts only names segmentName produces, so that a file
// such as "foo.log" or an upper-case variant is ignored rather than read as
// a segment.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != 16+len(segmentSuffix) || !strings.HasSuffix(name, segmentSuffix) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[:16], 16, 64)
	if err != nil || segmentName(v) != name {
		return 0, false
	}
	return v, true
}

// appendFrame encodes one frame onto buf. synced is how much of the
// segment file was known to be durable when the frame was written; see the
// package documentation.
func appendFrame(buf []byte, lsn uint64, synced int64, payload []byte) []byte {
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.LittleEndian.AppendUint32(buf, 0) // CRC, filled below
	buf = binary.LittleEndian.AppendUint64(buf, lsn)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(synced))
	buf = append(buf, payload...)
	crc := crc32.Checksum(buf[start+8:], castagnoli)
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
	return buf
}

// segFile is a segment's open file shared between the segment list and the
// readers and syncers using it. The list holds one reference; the file is
// closed when the last one is dropped, so deleting a segment (which drops the
// list's reference) never closes a file under a reader.
type segFile struct {
	f    vfs.File
	refs atomic.Int64
}

func newSegFile(f vfs.File) *segFile {
	s := &segFile{f: f}
	s.refs.Store(1)
	return s
}

// ref must be called with Log.mu held while the segment is still in the
// list, which guarantees the count is not zero.
func (s *segFile) ref() { s.refs.Add(1) }

func (s *segFile) unref() {
	if s.refs.Add(-1) == 0 {
		_ = s.f.Close()
	}
}

// segment describes one segment file. first and path never change; the
// other fields are written only with both Log.wmu and Log.mu held, so either
// lock is enough to read them.
type segment struct {
	first uint64
	path  string
	name  string

	last  uint64  // first-1 when empty
	size  int64   // bytes of the header and the whole, published frames
	index []int64 // index[k] is the offset of entry first+k*indexStride
	file  *segFile

	// alloc is how much of the file the zero filler has written and
	// synced (0: none; prealloc.go). Bytes from size up to alloc are
	// zeros, and a write that ends within alloc needs no fillMu.
	alloc atomic.Int64

	// synced is how many bytes of the file are known to be durable, which
	// every frame written records. It only changes with Log.syncMu held (or
	// before the segment is published) and is read by the writer without it.
	synced atomic.Int64
}

func (s *segment) empty() bool { return s.last < s.first }

// indexed returns the nearest indexed entry at or below lsn, which must be
// within the segment.
func (s *segment) indexed(lsn uint64) (uint64, int64) {
	k := (lsn - s.first) / indexStride
	return s.first + k*indexStride, s.index[k]
}

// approxOffset estimates where entry lsn starts (s.size when lsn is past the
// last entry) by interpolating between the surrounding index points: exact
// at index points and segment ends, otherwise off by less than a stride's
// worth of size variation.
func (s *segment) approxOffset(lsn uint64) int64 {
	if lsn > s.last {
		return s.size
	}
	k := (lsn - s.first) / indexStride
	loLSN, lo := s.first+k*indexStride, s.index[k]
	hiLSN, hi := s.last+1, s.size
	if int(k)+1 < len(s.index) {
		hiLSN, hi = loLSN+indexStride, s.index[k+1]
	}
	return lo + (hi-lo)*int64(lsn-loLSN)/int64(hiLSN-loLSN)
}

// frameError marks a frame that cannot be decoded, as opposed to an I/O
// error reading it.
type frameError string

func (e frameError) Error() string { return string(e) }

const (
	errShortFrame = frameError("frame extends beyond the end of the file")
	errLongFrame  = frameError("frame length exceeds the payload limit")
	errChecksum   = frameError("frame checksum mismatch")
)

// wrongLSN describes an intact frame found where another LSN belongs.
func wrongLSN(got, want uint64) error {
	return frameError(fmt.Sprintf("frame holds LSN %d where %d was expected", got, want))
}

// syncedBeyondFrame describes an intact frame claiming that the file was
// synced past the frame's own start, which no writer can have known.
func syncedBeyondFrame(synced uint64, off int64) error {
	return frameError(fmt.Sprintf("frame claims the file was synced up to offset %d, beyond its own offset %d", synced, off))
}

func isFrameError(err error) bool {
	var fe frameError
	return errors.As(err, &fe)
}

// frameReader decodes consecutive frames of one file through ReadAt (so
// concurrent readers and the writer never share a file position), reading
// ahead in chunks and never past end.
type frameReader struct {
	f      vfs.File
	end    int64
	bufOff int64 // file offset of buf[0]
	buf    []byte
	r, w   int // buf[r:w] holds unread bytes
}

var readerPool = sync.Pool{New: func() any { return &frameReader{buf: make([]byte, readChunk)} }}

func getReader(f vfs.File, off, end int64) *frameReader {
	fr := readerPool.Get().(*frameReader)
	fr.reset(f, off, end)
	return fr
}

func putReader(fr *frameReader) {
	fr.f = nil
	// A reader that grew for a huge payload is dropped rather than pinning
	// that memory in the pool.
	if cap(fr.buf) <= 4*readChunk {
		readerPool.Put(fr)
	}
}

func (fr *frameReader) reset(f vfs.File, off, end int64) {
	fr.f, fr.end, fr.bufOff, fr.r, fr.w = f, end, off, 0, 0
}

// pos is the file offset of the next frame.
func (fr *frameReader) pos() int64 { return fr.bufOff + int64(fr.r) }

// ensure makes n bytes from pos available in buf[r:].
func (fr *frameReader) ensure(n int) error {
	if fr.w-fr.r >= n {
		return nil
	}
	if fr.pos()+int64(n) > fr.end {
		return errShortFrame
	}
	if fr.r > 0 {
		copy(fr.buf, fr.buf[fr.r:fr.w])
		fr.w -= fr.r
		fr.bufOff += int64(fr.r)
		fr.r = 0
	}
	if n > len(fr.buf) {
		nb := make([]byte, max(n, 2*len(fr.buf)))
		copy(nb, fr.buf[:fr.w])
		fr.buf = nb
	}
	want := int64(len(fr.buf))
	if rest := fr.end - fr.bufOff; rest < want {
		want = rest
	}
	m, err := fr.f.ReadAt(fr.buf[fr.w:want], fr.bufOff+int64(fr.w))
	fr.w += m
	if fr.w < n {
		if err == nil || err == io.EOF {
			// The file is shorter than the size we believed it had.
			return errShortFrame
		}
		return err
	}
	return nil
}

// frame is a decoded frame.
type frame struct {
	lsn     uint64
	synced  uint64 // the synced offset the frame records
	payload []byte
}

// decodeFrame checks the checksum of the whole frame b (header and payload,
// length already validated) and decodes it; payload aliases b.
func decodeFrame(b []byte) (frame, bool) {
	if crc32.Checksum(b[8:], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return frame{}, false
	}
	return frame{
		lsn:     binary.LittleEndian.Uint64(b[8:]),
		synced:  binary.LittleEndian.Uint64(b[16:]),
		payload: b[headerSize:len(b):len(b)],
	}, true
}

// next decodes the frame at pos. It returns io.EOF exactly at end, a
// frameError for a frame that is cut short, too long or fails its checksum,
// or an I/O error. The payload aliases the reader's buffer.
func (fr *frameReader) next() (frame, error) {
	if fr.pos() >= fr.end {
		return frame{}, io.EOF
	}
	if err := fr.ensure(headerSize); err != nil {
		return frame{}, err
	}
	n := int64(binary.LittleEndian.Uint32(fr.buf[fr.r:]))
	if n > maxPayload {
		return frame{}, errLongFrame
	}
	if fr.pos()+headerSize+n > fr.end {
		return frame{}, errShortFrame
	}
	if err := fr.ensure(headerSize + int(n)); err != nil {
		return frame{}, err
	}
	b := fr.buf[fr.r : fr.r+headerSize+int(n)]
	fm, ok := decodeFrame(b)
	if !ok {
		return frame{}, errChecksum
	}
	fr.r += len(b)
	return fm, nil
}

// scanResult is what recovery learns from reading a segment front to back.
type scanResult struct {
	last     uint64  // last LSN of the valid prefix (first-1 if none)
	validEnd int64   // offset just past the valid prefix
	index    []int64 // sparse index of the valid prefix
	bad      error   // why the frame at validEnd is invalid; nil if the file ends cleanly
	// intact is set when the frame at validEnd passes its checksum but does
	// not fit where it is (an unexpected LSN, or a synced offset beyond
	// itself), which a torn write cannot produce.
	intact bool
}

// scanSegment reads every frame of a segment of the given size whose first
// LSN is first, from just after the segment header. Only I/O errors are
// returned as err; invalid frames end the scan and are reported in the
// result.
func scanSegment(f vfs.File, first uint64, size int64) (scanResult, error) {
	res := scanResult{last: first - 1}
	fr := getReader(f, segHeaderSize, size)
	defer putReader(fr)
	for {
		off := fr.pos()
		fm, err := fr.next()
		switch {
		case err == io.EOF:
			res.validEnd = off
			return res, nil
		case isFrameError(err):
			res.validEnd, res.bad = off, err
			return res, nil
		case err != nil:
			return res, err
		case fm.lsn != res.last+1:
			res.validEnd, res.intact = off, true
			res.bad = wrongLSN(fm.lsn, res.last+1)
			return res, nil
		case fm.synced > uint64(off):
			res.validEnd, res.intact = off, true
			res.bad = syncedBeyondFrame(fm.synced, off)
			return res, nil
		}
		if (fm.lsn-first)%indexStride == 0 {
			res.index = append(res.index, off)
		}
		res.last = fm.lsn
	}
}

// pastDamage is what recovery finds in the last segment after a bad frame.
type pastDamage struct {
	// frames counts the intact frames found after the bad one with LSNs
	// above the one expected there, the highest of which is lastLSN.
	frames  int
	lastLSN uint64
	// vouched is set when one of them, at vouchOff with vouchLSN, records
	// that the file had been synced up to vouchSynced, past the bad frame:
	// the damaged bytes were durable before, so it is not a torn write.
	vouched     bool
	vouchOff    int64
	vouchLSN    uint64
	vouchSynced uint64
}

// scanPastDamage looks byte by byte from start+1 to size for intact frames
// whose LSN is above expected, the LSN of the invalid frame at start,
// stopping at the first one that vouches for the bytes at start having
// been synced. It skips over the frames it finds, so that a payload that
// happens to hold a frame's encoding is not taken for one.
func scanPastDamage(f vfs.File, start, size int64, expected uint64) (pastDamage, error) {
	var d pastDamage
	w := fileWindow{f: f, end: size}
	for pos := start + 1; pos+headerSize <= size; {
		h, err := w.bytes(pos, headerSize)
		if err != nil {
			return d, err
		}
		length := int64(binary.LittleEndian.Uint32(h))
		lsn := binary.LittleEndian.Uint64(h[8:])
		// Cheap filters first, so that scanning megabytes of garbage does
		// not checksum at every byte: the frames expected..lsn-1 would need
		// at least headerSize bytes each between start and pos.
		if lsn <= expected || lsn-expected > uint64(pos-start)/headerSize ||
			length > maxPayload || pos+headerSize+length > size {
			pos++
			continue
		}
		b, err := w.bytes(pos, headerSize+int(length))
		if err != nil {
			return d, err
		}
		fm, ok := decodeFrame(b)
		if !ok {
			pos++
			continue
		}
		d.frames++
		d.lastLSN = max(d.lastLSN, fm.lsn)
		if fm.synced > uint64(start) {
			d.vouched, d.vouchOff, d.vouchLSN, d.vouchSynced = true, pos, fm.lsn, fm.synced
			return d, nil
		}
		pos += int64(len(b))
	}
	return d, nil
}

// fileWindow serves byte ranges of a file through a buffer refilled by
// ReadAt, for scans that move forward a byte at a time.
type fileWindow struct {
	f   vfs.File
	end int64
	off int64 // file offset of buf[0]
	buf []byte
}

// bytes returns the n bytes at pos, which must lie within end. The result
// is valid until the next call.
func (w *fileWindow) bytes(pos int64, n int) ([]byte, error) {
	if pos >= w.off && pos+int64(n) <= w.off+int64(len(w.buf)) {
		return w.buf[pos-w.off:][:n], nil
	}
	m := int(min(max(int64(n), 1<<20), w.end-pos))
	if cap(w.buf) < m {
		w.buf = make([]byte, m)
	}
	w.buf = w.buf[:m]
	if k, err := w.f.ReadAt(w.buf, pos); k < m {
		w.buf = w.buf[:0]
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	w.off = pos
	return w.buf[:n], nil
}

// truncateFile cuts the file at path (open as f) to size and makes that
// durable. It returns the handle to use from now on, which is f unless the
// file had to be rewritten.
func truncateFile(fs vfs.FS, dir, path string, f vfs.File, size int64) (vfs.File, error) {
	if t, ok := f.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(size); err != nil {
			return nil, fmt.Errorf("wal: truncate %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("wal: sync %s: %w", path, err)
		}
		return f, nil
	}
	// vfs.File has no Truncate, and wrappers (in-memory or fault-injecting
	// file systems) hide the one os.File has. Rewrite the prefix and rename
	// it over the segment instead: the rename is atomic, so a crash leaves
	// either the old file or the new one (plus a stray .tmp).
	tmp := path + ".tmp"
	out, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", tmp, err)
	}
	err = copyPrefix(out, f, size)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(fs, dir)
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return nil, fmt.Errorf("wal: truncate %s by rewriting: %w", path, err)
	}
	// Reopen by name rather than keeping the temporary handle so that the
	// file system sees the segment's real name (fault injection keys on it).
	nf, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("wal: reopen %s: %w", path, err)
	}
	return nf, nil
}

func copyPrefix(dst, src vfs.File, size int64) error {
	buf := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; {
		n := int(min(int64(len(buf)), size-off))
		if m, err := src.ReadAt(buf[:n], off); m < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// syncDir fsyncs a directory so that files created, renamed or removed in
// it stay that way after a crash.
func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("wal: open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: sync directory %s: %w", dir, err)
	}
	return nil
}
