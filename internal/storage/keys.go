package storage

import (
	"bytes"
	"encoding/binary"

	"github.com/replicant-db/replicant/internal/storage/logrec"
)

const (
	famLog     byte = 0x01
	famVersion byte = 0x02
	famMeta    byte = 0x03
	famExpiry  byte = 0x04
	famFlush   byte = 0x05
)

func logKey(lsn uint64) []byte {
	k := make([]byte, 9)
	k[0] = famLog
	binary.BigEndian.PutUint64(k[1:], lsn)
	return k
}

// appendEscaped appends key so that the encoding is order-preserving and
// self-delimiting: 0x00 becomes 0x00 0xFF and the key ends with 0x00 0x01.
func appendEscaped(dst, key []byte) []byte {
	for {
		i := bytes.IndexByte(key, 0)
		if i < 0 {
			break
		}
		dst = append(dst, key[:i+1]...)
		dst = append(dst, 0xFF)
		key = key[i+1:]
	}
	dst = append(dst, key...)
	return append(dst, 0x00, 0x01)
}

// unescape decodes a key written by appendEscaped from the front of b and
// returns it with the rest of b.
func unescape(b []byte) (key, rest []byte, ok bool) {
	key = make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			key = append(key, b[i])
			continue
		}
		if i+1 >= len(b) {
			return nil, nil, false
		}
		switch b[i+1] {
		case 0xFF:
			key = append(key, 0)
			i++
		case 0x01:
			return key, b[i+2:], true
		default:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// versionPrefix is the prefix shared by every version of key.
func versionPrefix(key []byte) []byte {
	dst := make([]byte, 0, len(key)+12)
	dst = append(dst, famVersion)
	return appendEscaped(dst, key)
}

func versionKey(key []byte, lsn uint64) []byte {
	p := versionPrefix(key)
	return binary.BigEndian.AppendUint64(p, ^lsn)
}

// versionKeyEnd sorts after every version of the key whose prefix is p and
// before every version of any greater key.
func versionKeyEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	e[len(e)-1] = 0x02
	return e
}

// parseVersionKey splits a version key into user key and LSN.
func parseVersionKey(k []byte) (key []byte, lsn uint64, ok bool) {
	if len(k) < 1+2+8 || k[0] != famVersion {
		return nil, 0, false
	}
	key, rest, ok := unescape(k[1:])
	if !ok || len(rest) != 8 {
		return nil, 0, false
	}
	return key, ^binary.BigEndian.Uint64(rest), true
}

func metaKey(name string) []byte { return append([]byte{famMeta}, name...) }

func expiryKey(expireAt int64, lsn uint64, key []byte) []byte {
	k := make([]byte, 17, 17+len(key)+2)
	k[0] = famExpiry
	binary.BigEndian.PutUint64(k[1:], uint64(expireAt))
	binary.BigEndian.PutUint64(k[9:], lsn)
	return appendEscaped(k, key)
}

func flushKey(lsn uint64) []byte {
	k := make([]byte, 9)
	k[0] = famFlush
	binary.BigEndian.PutUint64(k[1:], lsn)
	return k
}

// Version values: kind byte, expireAt varint, value bytes; a typed value
// (a collection's metadata) has its type byte after the kind. Strings keep
// the untyped encoding, so directories written before types decode as
// they were.
const (
	verValue     byte = 1
	verTombstone byte = 2
	verTyped     byte = 3
)

func encodeVersion(op *Op) []byte {
	return appendVersion(make([]byte, 0, 2+binary.MaxVarintLen64+len(op.Value)), op)
}

// appendVersion appends op's version encoding to dst.
func appendVersion(dst []byte, op *Op) []byte {
	if op.Kind == OpDel {
		return append(dst, verTombstone)
	}
	if op.Type != 0 {
		dst = append(dst, verTyped, op.Type)
	} else {
		dst = append(dst, verValue)
	}
	dst = binary.AppendVarint(dst, op.ExpireAt)
	return append(dst, op.Value...)
}

// appendVersionKey appends key's version key at lsn to dst.
func appendVersionKey(dst, key []byte, lsn uint64) []byte {
	dst = append(dst, famVersion)
	dst = appendEscaped(dst, key)
	return binary.BigEndian.AppendUint64(dst, ^lsn)
}

func decodeVersion(b []byte) (v Version, ok bool) {
	if len(b) == 0 {
		return v, false
	}
	switch b[0] {
	case verTombstone:
		v.Deleted = true
		return v, len(b) == 1
	case verValue:
		exp, n := binary.Varint(b[1:])
		if n <= 0 {
			return v, false
		}
		v.ExpireAt = exp
		v.Value = b[1+n:]
		return v, true
	case verTyped:
		if len(b) < 2 || b[1] == 0 || b[1] > logrec.MaxType {
			return v, false
		}
		v.Type = b[1]
		exp, n := binary.Varint(b[2:])
		if n <= 0 {
			return v, false
		}
		v.ExpireAt = exp
		v.Value = b[2+n:]
		return v, true
	}
	return v, false
}
