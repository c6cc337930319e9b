package logrec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// OpKind is the kind of a logical operation in a log entry.
type OpKind uint8

const (
	// OpSet stores Value under Key with an optional absolute expiry.
	OpSet OpKind = 1
	// OpDel removes Key.
	OpDel OpKind = 2
	// OpFlush removes every key (FLUSHDB/FLUSHALL).
	OpFlush OpKind = 3
)

func (k OpKind) String() string {
	switch k {
	case OpSet:
		return "SET"
	case OpDel:
		return "DEL"
	case OpFlush:
		return "FLUSH"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one logical change: a resulting value, never the command that
// produced it, so replicas never re-execute anything nondeterministic.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
	// ExpireAt is an absolute Unix time in milliseconds; 0 means no expiry.
	ExpireAt int64
	// Type is the Redis type of an OpSet's value (engine.Type; 0 is a
	// string). A collection's metadata is stored with its type so that a
	// key's type is known from its one version.
	Type uint8
}

// typedFlag marks, in an op's kind byte, that a type byte follows. Ops of
// strings (type 0) are encoded exactly as before types existed, so old
// logs decode unchanged.
const typedFlag = 0x80

// MaxType is the largest op type the codec accepts.
const MaxType = 4

// Entry is one record of the replication log. All its ops apply atomically.
type Entry struct {
	LSN   uint64
	Epoch uint64
	// Time is the leader's wall clock when the entry was created, in Unix
	// nanoseconds; followers use it to measure lag in seconds.
	Time int64
	Ops  []Op
}

const entryFormatV1 = 1

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrMalformedEntry is returned (wrapped) when an encoded entry cannot be
// decoded; it is never a reason to panic.
var ErrMalformedEntry = errors.New("malformed log entry")

// ErrChecksum is returned (wrapped) when an entry's checksum does not match.
var ErrChecksum = errors.New("checksum mismatch")

// EncodedSize is an upper bound of len(AppendEntry(nil, e)).
func (e *Entry) EncodedSize() int {
	n := 1 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + 4
	for i := range e.Ops {
		n += 2 + 3*binary.MaxVarintLen64 + len(e.Ops[i].Key) + len(e.Ops[i].Value)
	}
	return n
}

// AppendEntry appends the binary encoding of e (with its CRC-32C) to dst.
func AppendEntry(dst []byte, e *Entry) []byte {
	start := len(dst)
	dst = append(dst, entryFormatV1)
	dst = binary.AppendUvarint(dst, e.LSN)
	dst = binary.AppendUvarint(dst, e.Epoch)
	dst = binary.AppendVarint(dst, e.Time)
	dst = binary.AppendUvarint(dst, uint64(len(e.Ops)))
	for i := range e.Ops {
		op := &e.Ops[i]
		if op.Type != 0 {
			dst = append(dst, byte(op.Kind)|typedFlag, op.Type)
		} else {
			dst = append(dst, byte(op.Kind))
		}
		dst = binary.AppendUvarint(dst, uint64(len(op.Key)))
		dst = append(dst, op.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(op.Value)))
		dst = append(dst, op.Value...)
		dst = binary.AppendVarint(dst, op.ExpireAt)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// DecodeEntry decodes an entry produced by AppendEntry. The returned entry's
// keys and values alias b. Any malformed input yields an error wrapping
// ErrMalformedEntry or ErrChecksum.
func DecodeEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) < 5 {
		return e, fmt.Errorf("%w: %d bytes is too short", ErrMalformedEntry, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, crcTable); got != sum {
		return e, fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, sum, got)
	}
	if body[0] != entryFormatV1 {
		return e, fmt.Errorf("%w: unknown format version %d", ErrMalformedEntry, body[0])
	}
	d := decoder{b: body[1:]}
	e.LSN = d.uvarint()
	e.Epoch = d.uvarint()
	e.Time = d.varint()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) { // each op takes at least one byte
		return e, fmt.Errorf("%w: %d ops in %d bytes", ErrMalformedEntry, n, len(d.b))
	}
	if n > 0 {
		e.Ops = make([]Op, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var op Op
		kind := d.byte()
		op.Kind = OpKind(kind &^ typedFlag)
		if kind&typedFlag != 0 {
			op.Type = d.byte()
			if d.err == nil && (op.Type == 0 || op.Type > MaxType || op.Kind != OpSet) {
				return e, fmt.Errorf("%w: op %d has type %d on a %v", ErrMalformedEntry, i, op.Type, op.Kind)
			}
		}
		op.Key = d.bytes()
		op.Value = d.bytes()
		op.ExpireAt = d.varint()
		if d.err == nil && (op.Kind < OpSet || op.Kind > OpFlush) {
			return e, fmt.Errorf("%w: op %d has unknown kind %d", ErrMalformedEntry, i, op.Kind)
		}
		e.Ops = append(e.Ops, op)
	}
	if d.err != nil {
		return e, fmt.Errorf("%w: %v", ErrMalformedEntry, d.err)
	}
	if len(d.b) != 0 {
		return e, fmt.Errorf("%w: %d trailing bytes", ErrMalformedEntry, len(d.b))
	}
	return e, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated %s", what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		// A padded varint (…0x80 0x00) decodes to the same number as the
		// minimal one AppendEntry writes; refuse it so every entry has
		// exactly one encoding.
		d.err, d.b = errors.New("non-canonical uvarint"), nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.err, d.b = errors.New("non-canonical varint"), nil // see uvarint
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
