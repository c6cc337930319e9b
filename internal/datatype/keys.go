package datatype

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/replicant-db/replicant/internal/engine"
)

// Sub-spaces of a collection's elements (the byte after the id).
const (
	SubField  byte = 'f' // hash: field → value
	SubMember byte = 'm' // set: member → ""; sorted set: member → score (8 bytes)
	SubScore  byte = 's' // sorted set: EncodeScore(score) member → ""
	SubIndex  byte = 'i' // list: EncodeIndex(i) → element
)

// Reserved sub-spaces of this package.
const (
	spaceElem  byte = 'e'
	spaceOwner byte = 'o'
)

// elemsStart is where every collection's elements begin in key order.
func elemsStart() []byte {
	return append(append([]byte(nil), engine.ReservedPrefix...), spaceElem)
}

// ElemPrefix is the common prefix of id's elements in sub-space sub.
func ElemPrefix(id uint64, sub byte) []byte {
	b := make([]byte, 0, len(engine.ReservedPrefix)+10)
	b = append(b, engine.ReservedPrefix...)
	b = append(b, spaceElem)
	b = binary.BigEndian.AppendUint64(b, id)
	return append(b, sub)
}

// ElemKey is the key of one element: ElemPrefix(id, sub) followed by rest.
func ElemKey(id uint64, sub byte, rest []byte) []byte {
	p := ElemPrefix(id, sub)
	out := make([]byte, len(p)+len(rest))
	copy(out, p)
	copy(out[len(p):], rest)
	return out
}

// idPrefix is the prefix of every element of id, whatever its sub-space.
func idPrefix(id uint64) []byte {
	p := ElemPrefix(id, 0)
	return p[:len(p)-1]
}

// ownerKey records which key created id.
func ownerKey(id uint64) []byte {
	b := make([]byte, 0, len(engine.ReservedPrefix)+9)
	b = append(b, engine.ReservedPrefix...)
	b = append(b, spaceOwner)
	return binary.BigEndian.AppendUint64(b, id)
}

// EncodeIndex is a list index's key suffix: big-endian with the sign bit
// flipped, so byte order is numeric order.
func EncodeIndex(i int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(i)^(1<<63))
}

// DecodeIndex inverts EncodeIndex; ok is false on a suffix that is not 8
// bytes.
func DecodeIndex(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), true
}

// EncodeScore is a score's key prefix in a sorted set's score index: the
// IEEE bits made to sort as the numbers do (negatives have every bit
// flipped, the others only the sign bit). -0 sorts as 0. NaN is never
// stored (commands refuse it).
func EncodeScore(f float64) []byte {
	if f == 0 {
		f = 0 // -0 → +0
	}
	u := math.Float64bits(f)
	if u&(1<<63) != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(nil, u)
}

// DecodeScore inverts EncodeScore on the first 8 bytes of b.
func DecodeScore(b []byte) (float64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	u := binary.BigEndian.Uint64(b)
	if u&(1<<63) != 0 {
		u &^= 1 << 63
	} else {
		u = ^u
	}
	return math.Float64frombits(u), true
}

// ScanElems calls fn with the suffix (the bytes after the sub-space) and
// value of id's elements in sub-space sub, in key order, starting at the
// suffix from, until fn returns false or the sub-space ends.
func ScanElems(s Scanner, id uint64, sub byte, from []byte, fn func(rest, value []byte) bool) error {
	p := ElemPrefix(id, sub)
	start := append(append([]byte(nil), p...), from...)
	return s.Scan(start, func(k []byte, v engine.Version) bool {
		if !bytes.HasPrefix(k, p) {
			return false
		}
		return fn(k[len(p):], v.Value)
	})
}

// ElemSpace returns the bounds of every collection's elements in key
// order: each element key k has start <= k < end.
func ElemSpace() (start, end []byte) {
	start = elemsStart()
	end = append([]byte(nil), start...)
	end[len(end)-1]++
	return start, end
}

// ParseElemKey splits an element key (ElemKey) into its id, sub-space and
// suffix; ok is false for any other key. rest aliases k.
func ParseElemKey(k []byte) (id uint64, sub byte, rest []byte, ok bool) {
	n := len(engine.ReservedPrefix)
	if len(k) < n+10 || !engine.IsReserved(k) || k[n] != spaceElem {
		return 0, 0, nil, false
	}
	return binary.BigEndian.Uint64(k[n+1:]), k[n+9], k[n+10:], true
}

// IsOwnerKey reports whether k is an owner record's key (which key
// created an id; see the package doc).
func IsOwnerKey(k []byte) bool {
	n := len(engine.ReservedPrefix)
	return len(k) == n+9 && engine.IsReserved(k) && k[n] == spaceOwner
}
