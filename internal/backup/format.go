package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"slices"
	"time"
)

// FormatVersion is the version this package writes. A reader reads it and
// every older one (version 1 had no typed records), and refuses a newer
// one: it may hold records it would misread.
const FormatVersion = 2

// Limits a decoder enforces before it trusts a length field.
const (
	// MaxHeaderBytes bounds the JSON header (a few hundred bytes in practice).
	MaxHeaderBytes = 1 << 20
	// MaxFieldBytes bounds one key or value. The server's own limits
	// (--max-key-size, --max-value-size) are far lower by default; this only
	// keeps a corrupt length from meaning "read forever".
	MaxFieldBytes = 1 << 30
)

// magic opens every backup file (see doc.go for why these bytes).
var magic = [8]byte{0x89, 'R', 'P', 'L', 'B', 'A', 'K', '\n'}

const (
	tagTrailer byte = 0x00
	tagRecord  byte = 0x01
	tagTyped   byte = 0x02 // a record with a type byte after the tag
)

// readChunk is how much a decoder allocates ahead of the bytes actually
// delivered for one field.
const readChunk = 1 << 20

// Error kinds; every decoding error wraps one of them.
var (
	ErrNotBackup = errors.New("not a replicant backup file")
	ErrVersion   = errors.New("unsupported backup format version")
	ErrTruncated = errors.New("backup file is truncated")
	ErrCorrupt   = errors.New("backup file is corrupt")
	ErrChecksum  = errors.New("backup file checksum mismatch")
)

// Header describes the state a backup holds. It is JSON in the file, so
// fields can be added within one format version (readers ignore unknown
// ones).
type Header struct {
	// Mode is the source cluster's replication mode.
	Mode string `json:"mode"`
	// Epoch and LSN name the state: everything committed up to LSN, whose
	// entry was written in Epoch (the source's token EPOCH:LSN).
	Epoch uint64 `json:"epoch"`
	LSN   uint64 `json:"lsn"`
	// Node, Role and Leader say where it was taken: a follower's backup is
	// at the position it had applied, behind its leader's.
	Node   string `json:"node,omitempty"`
	Role   string `json:"role,omitempty"`
	Leader string `json:"leader,omitempty"`
	// Created is when the backup started (UTC).
	Created time.Time `json:"created"`
}

// Trailer closes a backup: its counts and its digest.
type Trailer struct {
	Keys uint64 // records
	// Bytes is the sum of the keys' and values' lengths.
	Bytes  uint64
	SHA256 [sha256.Size]byte // of every byte of the file before it
}

// Hex is the digest in hex, as sha256sum prints it.
func (t Trailer) Hex() string { return hex.EncodeToString(t.SHA256[:]) }

// Record is one key of a backup.
type Record struct {
	Key, Value []byte
	ExpireAt   int64 // Unix ms, 0 = never
	// Type is the value's Redis type (engine.Type): 0 for a string, else
	// a collection's metadata (its elements are records of their own).
	Type uint8
}

// MaxType is the largest record type a reader accepts.
const MaxType = 4

// Writer encodes a backup onto an io.Writer.
type Writer struct {
	bw      *bufio.Writer
	out     io.Writer // bw and the digest
	sum     hash.Hash
	written int64
	keys    uint64
	data    uint64
	last    []byte
	started bool
	err     error
	scratch [binary.MaxVarintLen64]byte
}

// NewWriter writes the file's opening (magic, version, header) to w and
// returns a Writer for its records. Close writes the trailer; w is not
// closed.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.Mode == "" {
		return nil, errors.New("backup: header without a mode")
	}
	raw, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("backup: encode header: %w", err)
	}
	return newWriterRaw(w, raw)
}

// newWriterRaw writes raw as the header as is (the fuzz test re-encodes a
// decoded file with the header bytes it read).
func newWriterRaw(w io.Writer, raw []byte) (*Writer, error) {
	if len(raw) > MaxHeaderBytes {
		return nil, fmt.Errorf("backup: header of %d bytes exceeds %d", len(raw), MaxHeaderBytes)
	}
	bw := &Writer{bw: bufio.NewWriterSize(w, 64<<10), sum: sha256.New()}
	bw.out = io.MultiWriter(bw.bw, bw.sum)
	var open [8 + 2 + 4]byte
	copy(open[:], magic[:])
	binary.BigEndian.PutUint16(open[8:], FormatVersion)
	binary.BigEndian.PutUint32(open[10:], uint32(len(raw)))
	bw.write(open[:])
	bw.write(raw)
	return bw, bw.err
}

func (w *Writer) write(p []byte) {
	if w.err != nil {
		return
	}
	n, err := w.out.Write(p)
	w.written += int64(n)
	if err != nil {
		w.err = fmt.Errorf("backup: write: %w", err)
	}
}

func (w *Writer) uvarint(v uint64) {
	w.write(w.scratch[:binary.PutUvarint(w.scratch[:], v)])
}

// Add appends one key. Keys must come in strictly ascending order, as a
// store scan yields them.
func (w *Writer) Add(key, value []byte, expireAt int64) error {
	return w.AddTyped(key, 0, value, expireAt)
}

// AddTyped is Add for a value of Redis type typ (0: a string).
func (w *Writer) AddTyped(key []byte, typ uint8, value []byte, expireAt int64) error {
	if w.err != nil {
		return w.err
	}
	switch {
	case w.started && bytes.Compare(key, w.last) <= 0:
		return fmt.Errorf("backup: key %q after %q: keys must ascend", key, w.last)
	case len(key) > MaxFieldBytes || len(value) > MaxFieldBytes:
		return fmt.Errorf("backup: key %q: key or value above %d bytes", key, MaxFieldBytes)
	case expireAt < 0:
		return fmt.Errorf("backup: key %q: negative expiry time %d", key, expireAt)
	case typ > MaxType:
		return fmt.Errorf("backup: key %q: unknown type %d", key, typ)
	}
	if typ != 0 {
		w.write([]byte{tagTyped, typ})
	} else {
		w.write([]byte{tagRecord})
	}
	w.uvarint(uint64(len(key)))
	w.write(key)
	w.uvarint(uint64(len(value)))
	w.write(value)
	w.uvarint(uint64(expireAt))
	w.keys++
	w.data += uint64(len(key) + len(value))
	w.last = append(w.last[:0], key...)
	w.started = true
	return w.err
}

// Progress is how many keys and file bytes were written so far.
func (w *Writer) Progress() (keys uint64, fileBytes int64) { return w.keys, w.written }

// Close writes the trailer and flushes; the backup is complete once it
// returns nil.
func (w *Writer) Close() (Trailer, error) {
	if w.err != nil {
		return Trailer{}, w.err
	}
	var t [1 + 8 + 8]byte
	t[0] = tagTrailer
	binary.BigEndian.PutUint64(t[1:], w.keys)
	binary.BigEndian.PutUint64(t[9:], w.data)
	w.write(t[:])
	tr := Trailer{Keys: w.keys, Bytes: w.data}
	w.sum.Sum(tr.SHA256[:0])
	// The digest covers everything before it, so it bypasses the hash.
	if w.err == nil {
		n, err := w.bw.Write(tr.SHA256[:])
		w.written += int64(n)
		if err != nil {
			w.err = fmt.Errorf("backup: write: %w", err)
		}
	}
	if w.err == nil {
		if err := w.bw.Flush(); err != nil {
			w.err = fmt.Errorf("backup: write: %w", err)
		}
	}
	if w.err != nil {
		return Trailer{}, w.err
	}
	w.err = errors.New("backup: writer closed")
	return tr, nil
}

// Reader decodes a backup and verifies it as it goes.
type Reader struct {
	in      digestReader
	hdr     Header
	raw     []byte
	keys    uint64
	data    uint64
	last    []byte
	started bool
	version uint16
	trailer Trailer
	err     error // sticky: set once decoding failed or ended
}

// NewReader reads and checks the file's opening (magic, version, header).
func NewReader(r io.Reader) (*Reader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	d := &Reader{in: digestReader{src: br, sum: sha256.New()}}
	var m [8]byte
	n, err := io.ReadFull(&d.in, m[:])
	if err != nil {
		if n > 0 && bytes.Equal(m[:n], magic[:n]) {
			return nil, d.truncated("in the file's magic number")
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: the file is %d bytes long", ErrNotBackup, n)
		}
		return nil, err
	}
	if m != magic {
		return nil, fmt.Errorf("%w: it starts with %q, not %q", ErrNotBackup, m[:], magic[:])
	}
	var v [2 + 4]byte
	if err := d.full(v[:], "in the format version and header length"); err != nil {
		return nil, err
	}
	if ver := binary.BigEndian.Uint16(v[:]); ver == 0 || ver > FormatVersion {
		newer := ""
		if ver > FormatVersion {
			newer = " (written by a newer replicant)"
		}
		return nil, fmt.Errorf("%w: the file is format version %d%s; this replicant reads versions 1 to %d", ErrVersion, ver, newer, FormatVersion)
	}
	d.version = binary.BigEndian.Uint16(v[:])
	hl := binary.BigEndian.Uint32(v[2:])
	if hl > MaxHeaderBytes {
		return nil, fmt.Errorf("%w: header length %d exceeds %d bytes", ErrCorrupt, hl, MaxHeaderBytes)
	}
	raw, err := d.bytes(uint64(hl), "in the header")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &d.hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if d.hdr.Mode == "" {
		return nil, fmt.Errorf("%w: header names no mode", ErrCorrupt)
	}
	d.raw = raw
	return d, nil
}

// Header is the file's header.
func (d *Reader) Header() Header { return d.hdr }

// Offset is how many bytes of the file were read so far.
func (d *Reader) Offset() int64 { return d.in.off }

// Keys is how many records were read so far.
func (d *Reader) Keys() uint64 { return d.keys }

// Trailer is the verified trailer, once Next has returned io.EOF.
func (d *Reader) Trailer() Trailer { return d.trailer }

// digestReader feeds the digest: every byte consumed through it is
// covered, and off counts them.
type digestReader struct {
	src *bufio.Reader
	sum hash.Hash
	off int64
}

func (r *digestReader) Read(p []byte) (int, error) {
	n, err := r.src.Read(p)
	r.sum.Write(p[:n])
	r.off += int64(n)
	return n, err
}

func (r *digestReader) ReadByte() (byte, error) {
	b, err := r.src.ReadByte()
	if err == nil {
		r.sum.Write([]byte{b})
		r.off++
	}
	return b, err
}

func (d *Reader) truncated(where string) error {
	return fmt.Errorf("%w: it ends at byte %d, %s", ErrTruncated, d.in.off, where)
}

// full reads len(p) bytes, reporting a short read as truncation.
func (d *Reader) full(p []byte, where string) error {
	if _, err := io.ReadFull(&d.in, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return d.truncated(where)
		}
		return err
	}
	return nil
}

// bytes reads an n-byte field, growing its buffer as the data arrives so a
// lying length in a short file costs at most one chunk.
func (d *Reader) bytes(n uint64, where string) ([]byte, error) {
	if n > MaxFieldBytes {
		return nil, fmt.Errorf("%w: at byte %d: a length of %d bytes %s exceeds %d", ErrCorrupt, d.in.off, n, where, MaxFieldBytes)
	}
	buf := make([]byte, 0, min(n, readChunk))
	for uint64(len(buf)) < n {
		c := int(min(n-uint64(len(buf)), readChunk))
		buf = slices.Grow(buf, c)
		if err := d.full(buf[len(buf):len(buf)+c], where); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+c]
	}
	return buf, nil
}

// uvarint reads a minimally encoded uvarint.
func (d *Reader) uvarint(where string) (uint64, error) {
	start := d.in.off
	var v uint64
	for i := 0; ; i++ {
		b, err := d.in.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, d.truncated(where)
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, fmt.Errorf("%w: at byte %d: varint %s overflows 64 bits", ErrCorrupt, start, where)
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				// One value, one encoding: see doc.go.
				return 0, fmt.Errorf("%w: at byte %d: varint %s is not minimally encoded", ErrCorrupt, start, where)
			}
			return v, nil
		}
	}
}

// Next returns the next record. After the last one it reads and verifies
// the trailer and returns io.EOF only if the whole file is intact.
func (d *Reader) Next() (Record, error) {
	if d.err != nil {
		return Record{}, d.err
	}
	rec, err := d.next()
	if err != nil {
		d.err = err
	}
	return rec, err
}

func (d *Reader) next() (Record, error) {
	at := d.in.off
	var typ uint8
	tag, err := d.in.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Record{}, d.truncated(fmt.Sprintf("after %d keys, without a trailer", d.keys))
		}
		return Record{}, err
	}
	switch tag {
	case tagTrailer:
		return Record{}, d.readTrailer()
	case tagRecord:
	case tagTyped:
		if d.version < 2 {
			return Record{}, fmt.Errorf("%w: at byte %d: a typed record in a version %d file", ErrCorrupt, at, d.version)
		}
		t, err := d.in.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Record{}, d.truncated(fmt.Sprintf("in the type of key %d", d.keys+1))
			}
			return Record{}, err
		}
		if t == 0 || t > MaxType {
			return Record{}, fmt.Errorf("%w: at byte %d: unknown type %d", ErrCorrupt, at, t)
		}
		typ = t
	default:
		return Record{}, fmt.Errorf("%w: at byte %d: unknown record tag 0x%02x", ErrCorrupt, at, tag)
	}
	if d.hdr.LSN == 0 {
		return Record{}, fmt.Errorf("%w: at byte %d: a key in a backup at LSN 0 (nothing was ever written there)", ErrCorrupt, at)
	}
	where := fmt.Sprintf("in key %d", d.keys+1)
	kl, err := d.uvarint(where)
	if err != nil {
		return Record{}, err
	}
	key, err := d.bytes(kl, where)
	if err != nil {
		return Record{}, err
	}
	if d.started && bytes.Compare(key, d.last) <= 0 {
		return Record{}, fmt.Errorf("%w: at byte %d: key %q does not follow %q in order", ErrCorrupt, at, key, d.last)
	}
	where = fmt.Sprintf("in the value of key %q", key)
	vl, err := d.uvarint(where)
	if err != nil {
		return Record{}, err
	}
	val, err := d.bytes(vl, where)
	if err != nil {
		return Record{}, err
	}
	exp, err := d.uvarint(fmt.Sprintf("in the expiry of key %q", key))
	if err != nil {
		return Record{}, err
	}
	if exp > math.MaxInt64 {
		return Record{}, fmt.Errorf("%w: at byte %d: key %q expires at %d, beyond int64", ErrCorrupt, at, key, exp)
	}
	d.keys++
	d.data += kl + vl
	d.last = append(d.last[:0], key...)
	d.started = true
	return Record{Key: key, Value: val, ExpireAt: int64(exp), Type: typ}, nil
}

func (d *Reader) readTrailer() error {
	var c [16]byte
	if err := d.full(c[:], "in the trailer"); err != nil {
		return err
	}
	keys, data := binary.BigEndian.Uint64(c[:]), binary.BigEndian.Uint64(c[8:])
	var want [sha256.Size]byte
	d.in.sum.Sum(want[:0])
	var got [sha256.Size]byte
	// The digest itself is not part of what it covers: read around Read.
	if n, err := io.ReadFull(d.in.src, got[:]); err != nil {
		d.in.off += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return d.truncated("in the trailer's checksum")
		}
		return err
	}
	d.in.off += sha256.Size
	if got != want {
		return fmt.Errorf("%w: the file's SHA-256 is %x, its trailer says %x (the file was altered or damaged)", ErrChecksum, want, got)
	}
	// The digest matched, so a count mismatch is a writer's bug, not damage.
	if keys != d.keys || data != d.data {
		return fmt.Errorf("%w: the trailer counts %d keys and %d bytes, the file holds %d and %d", ErrCorrupt, keys, data, d.keys, d.data)
	}
	if _, err := d.in.src.ReadByte(); err == nil {
		return fmt.Errorf("%w: data follows the trailer at byte %d", ErrCorrupt, d.in.off)
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	d.trailer = Trailer{Keys: keys, Bytes: data, SHA256: got}
	return io.EOF
}

// Verify reads a whole backup from r and returns its header and trailer if
// it is intact.
func Verify(r io.Reader) (Header, Trailer, error) {
	d, err := NewReader(r)
	if err != nil {
		return Header{}, Trailer{}, err
	}
	for {
		if _, err := d.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return d.Header(), d.Trailer(), nil
			}
			return d.Header(), Trailer{}, err
		}
	}
}
