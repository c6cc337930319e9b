package datatype

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/replicant-db/replicant/internal/engine"
)

// ErrWrongType is a command on a key that holds another type. Its text is
// Redis's reply. It is engine's, which the modes return too.
var ErrWrongType = engine.ErrWrongType

// ErrCorrupt is a collection's stored metadata or element that does not
// decode.
var ErrCorrupt = errors.New("corrupt collection record")

// ErrUnsupported is returned by Open on a mode whose Txn does not store
// collections (engine.TypedTxn).
var ErrUnsupported = errors.New("collection types are not supported")

// Meta is a collection's metadata, stored at its key.
type Meta struct {
	ID  uint64 // keys its elements
	Len int64  // number of elements (members, fields)
	// Head is, for a list, the index key of its first element; elements
	// are at Head, Head+1, … Head+Len-1. Zero for the other types.
	Head int64
	// Low and High bound a sorted set's score index: with LowSet no live
	// member has a score whose encoding (EncodeScore, as a big-endian
	// uint64) is below Low, with HighSet none above High. A pop moves the
	// bound of its end to the last score it popped and an add beyond a
	// bound moves it out, so a pop or range read starts past the
	// tombstones of the members popped before it instead of walking them
	// (ZPOPMIN on a large set was quadratic; docs/benchmarks.md §14).
	LowSet, HighSet bool
	Low, High       uint64
}

// metaFormat is the encoding without score bounds, metaFormatBounds the
// one with them. A node that knows only metaFormat refuses the other as
// corrupt, which is what it must do: ignoring the bounds, it would keep
// them while adding members beyond them.
const (
	metaFormat       = 1
	metaFormatBounds = 2
)

// Encode is the metadata's stored value.
func (m Meta) Encode() []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+17)
	format := byte(metaFormat)
	if m.LowSet || m.HighSet {
		format = metaFormatBounds
	}
	b = append(b, format)
	b = binary.AppendUvarint(b, m.ID)
	b = binary.AppendUvarint(b, uint64(m.Len))
	b = binary.AppendVarint(b, m.Head)
	if format == metaFormat {
		return b
	}
	var flags byte
	if m.LowSet {
		flags |= 1
	}
	if m.HighSet {
		flags |= 2
	}
	b = append(b, flags)
	if m.LowSet {
		b = binary.BigEndian.AppendUint64(b, m.Low)
	}
	if m.HighSet {
		b = binary.BigEndian.AppendUint64(b, m.High)
	}
	return b
}

// DecodeMeta decodes a stored metadata value.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) < 1 || (b[0] != metaFormat && b[0] != metaFormatBounds) {
		return m, fmt.Errorf("%w: metadata format %x", ErrCorrupt, b[:min(len(b), 1)])
	}
	format := b[0]
	b = b[1:]
	id, n := binary.Uvarint(b)
	if n <= 0 {
		return m, fmt.Errorf("%w: metadata id", ErrCorrupt)
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || l > 1<<62 {
		return m, fmt.Errorf("%w: metadata length", ErrCorrupt)
	}
	b = b[n:]
	h, n := binary.Varint(b)
	if n <= 0 || (format == metaFormat && n != len(b)) {
		return m, fmt.Errorf("%w: metadata head", ErrCorrupt)
	}
	m = Meta{ID: id, Len: int64(l), Head: h}
	if format == metaFormat {
		return m, nil
	}
	b = b[n:]
	if len(b) < 1 || b[0]&^3 != 0 || b[0] == 0 {
		return Meta{}, fmt.Errorf("%w: metadata bounds", ErrCorrupt)
	}
	m.LowSet, m.HighSet = b[0]&1 != 0, b[0]&2 != 0
	b = b[1:]
	want := 0
	if m.LowSet {
		want += 8
	}
	if m.HighSet {
		want += 8
	}
	if len(b) != want {
		return Meta{}, fmt.Errorf("%w: metadata bounds of %d bytes", ErrCorrupt, len(b))
	}
	if m.LowSet {
		m.Low, b = binary.BigEndian.Uint64(b), b[8:]
	}
	if m.HighSet {
		m.High = binary.BigEndian.Uint64(b)
	}
	return m, nil
}

// Getter reads one key: engine.Reader and engine.Txn both are.
type Getter interface {
	Get(key []byte) (engine.Version, bool, error)
}

// Scanner lists keys in order: engine.Reader and engine.ScanTxn are.
type Scanner interface {
	Getter
	Scan(start []byte, fn func(key []byte, v engine.Version) bool) error
}

// Lookup reads the metadata of the collection of type t at key: found is
// false when the key does not exist; ErrWrongType when it holds another
// type.
func Lookup(g Getter, key []byte, t engine.Type) (m Meta, found bool, err error) {
	v, ok, err := g.Get(key)
	if err != nil || !ok {
		return m, false, err
	}
	return metaOf(key, v, t)
}

func metaOf(key []byte, v engine.Version, t engine.Type) (Meta, bool, error) {
	if v.Type != t {
		return Meta{}, false, ErrWrongType
	}
	m, err := DecodeMeta(v.Value)
	if err != nil {
		return m, false, fmt.Errorf("key %q: %w", key, err)
	}
	return m, true, nil
}
