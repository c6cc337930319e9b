package multileader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// Record is what multi-leader mode stores under a user key: a
// last-writer-wins register (the value a SET wrote, or a DEL's tombstone)
// and a PN-counter (the increments of INCR and friends that no SET or DEL
// has reset). Sites exchange whole records and merge them, so a site that
// receives the same record twice, or records in another order, ends in the
// same state (Merge is a join).
type Record struct {
	Reg     Register
	Counter crdt.PNCounter
}

// Register is the last-writer-wins part of a record.
type Register struct {
	// Stamp orders writes: (HLC, site). The zero stamp is a register
	// never written (a key that only ever saw increments).
	Stamp crdt.Stamp
	// Prev is the stamp of the register this write replaced on its
	// origin site: a write whose Prev is the stamp a site holds is that
	// value's successor, not a conflict.
	Prev crdt.Stamp
	// OriginLSN is the LSN of the entry that wrote this register on its
	// origin site (Stamp.Site): a site may drop a tombstone once every
	// site has applied its origin up to there (see gc.go).
	OriginLSN uint64
	Deleted   bool
	Value     []byte
	ExpireAt  int64 // Unix ms; 0 = never
}

// Live reports whether the record holds a value at nowMs: a register that
// is neither deleted nor expired, or increments no reset has seen.
func (r Record) Live(nowMs int64) bool {
	if r.expired(nowMs) {
		return false
	}
	return r.regLive() || r.Counter.Active()
}

func (r Record) regLive() bool { return !r.Reg.Stamp.Time.IsZero() && !r.Reg.Deleted }

func (r Record) expired(nowMs int64) bool { return r.Reg.ExpireAt != 0 && r.Reg.ExpireAt <= nowMs }

// Value is what a GET answers for a live record. A register holding an
// integer and a counter add up (SET 10 then INCR on two sites gives 12); a
// register holding anything else is the value as written, whatever the
// counter says (a string SET concurrent with an INCR elsewhere wins by
// being a string: documented in docs/design/multileader.md).
func (r Record) Value() []byte {
	if !r.Counter.Active() {
		return r.Reg.Value
	}
	var base int64
	if r.regLive() {
		n, err := strconv.ParseInt(string(r.Reg.Value), 10, 64)
		if err != nil {
			return r.Reg.Value
		}
		base = n
	}
	c, err := r.Counter.Value()
	if err != nil {
		return []byte(r.Counter.Text())
	}
	if s, ok := addInt(base, c); ok {
		return strconv.AppendInt(nil, s, 10)
	}
	return []byte(r.Counter.Text()) // beyond int64: show the counter's exact sum
}

func addInt(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// Set is a local SET (or any command whose result is a new value) at
// stamp: it replaces the register and resets every increment it has seen.
func (r Record) Set(stamp crdt.Stamp, value []byte, expireAt int64) Record {
	return Record{
		Reg:     Register{Stamp: stamp, Prev: r.Reg.Stamp, Value: value, ExpireAt: expireAt},
		Counter: r.Counter.Reset(r.Counter),
	}
}

// Del is a local DEL at stamp: a tombstone that resets what it has seen.
func (r Record) Del(stamp crdt.Stamp) Record {
	return Record{
		Reg:     Register{Stamp: stamp, Prev: r.Reg.Stamp, Deleted: true},
		Counter: r.Counter.Reset(r.Counter),
	}
}

// IncrBy is a local INCRBY by site at nowMs: the delta goes into the
// counter under site, so increments on other sites all count. An expired
// record is first deleted at stamp (Redis starts an expired key from 0).
func (r Record) IncrBy(site string, stamp crdt.Stamp, delta int64, nowMs int64) (Record, int64, error) {
	if r.expired(nowMs) {
		r = r.Del(stamp)
	}
	var base int64
	if r.regLive() {
		n, err := strconv.ParseInt(string(r.Reg.Value), 10, 64)
		if err != nil {
			return r, 0, engine.ErrNotInteger
		}
		base = n
	}
	c, err := r.Counter.Value()
	if err != nil {
		return r, 0, engine.ErrNotInteger
	}
	cur, ok := addInt(base, c)
	if !ok {
		return r, 0, engine.ErrNotInteger
	}
	res, ok := addInt(cur, delta)
	if !ok {
		return r, 0, engine.ErrOverflow
	}
	ctr, err := r.Counter.Increment(site, delta)
	if err != nil {
		return r, 0, engine.ErrOverflow
	}
	r.Counter = ctr
	return r, res, nil
}

// Conflict is a write that lost to a concurrent one.
type Conflict struct {
	Winner, Loser Register
}

// Merge joins a local and a remote record: the register with the greater
// stamp wins, counters merge. It reports a conflict when both registers
// were written and neither replaced the other knowingly (neither's Prev
// is the other's stamp): concurrent writes, one of which is now lost.
func Merge(local, remote Record) (Record, *Conflict) {
	out := Record{Reg: local.Reg, Counter: local.Counter.Merge(remote.Counter)}
	c := local.Reg.Stamp.Compare(remote.Reg.Stamp)
	if c < 0 {
		out.Reg = remote.Reg
	}
	if c == 0 || local.Reg.Stamp.Time.IsZero() || remote.Reg.Stamp.Time.IsZero() {
		return out, nil
	}
	if remote.Reg.Prev == local.Reg.Stamp || local.Reg.Prev == remote.Reg.Stamp {
		return out, nil
	}
	if c < 0 {
		return out, &Conflict{Winner: remote.Reg, Loser: local.Reg}
	}
	return out, &Conflict{Winner: local.Reg, Loser: remote.Reg}
}

// Equal reports whether two records are the same state.
func (r Record) Equal(o Record) bool {
	return r.Reg.Stamp == o.Reg.Stamp && r.Reg.Prev == o.Reg.Prev && r.Reg.OriginLSN == o.Reg.OriginLSN && r.Reg.Deleted == o.Reg.Deleted &&
		r.Reg.ExpireAt == o.Reg.ExpireAt && bytes.Equal(r.Reg.Value, o.Reg.Value) && r.Counter.Equal(o.Counter)
}

// Encoding: a tag byte and layout version, then
//
//	flags (bit 0 deleted, bit 1 counter present)
//	stamp, prev: timestamp (crdt's 12 bytes), site (uvarint length, bytes)
//	origin LSN (uvarint), expireAt (varint), value (uvarint length, bytes)
//	counter (crdt encoding, to the end) if present
const recordTag = 0xA2 // 0xA1 had no origin LSN (never released)

const (
	flagDeleted = 1 << 0
	flagCounter = 1 << 1
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("multileader: malformed record")

// AppendRecord appends r's encoding to b.
func AppendRecord(b []byte, r Record) []byte {
	var flags byte
	if r.Reg.Deleted {
		flags |= flagDeleted
	}
	hasCounter := r.Counter.Len() > 0
	if hasCounter {
		flags |= flagCounter
	}
	b = append(b, recordTag, flags)
	b = appendStamp(b, r.Reg.Stamp)
	b = appendStamp(b, r.Reg.Prev)
	b = binary.AppendUvarint(b, r.Reg.OriginLSN)
	b = binary.AppendVarint(b, r.Reg.ExpireAt)
	b = binary.AppendUvarint(b, uint64(len(r.Reg.Value)))
	b = append(b, r.Reg.Value...)
	if hasCounter {
		b, _ = r.Counter.AppendBinary(b) // appending to a slice cannot fail
	}
	return b
}

func appendStamp(b []byte, s crdt.Stamp) []byte {
	b, _ = s.Time.AppendBinary(b)
	b = binary.AppendUvarint(b, uint64(len(s.Site)))
	return append(b, s.Site...)
}

// DecodeRecord decodes an encoded record; the value aliases b.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < 2 || b[0] != recordTag {
		return r, fmt.Errorf("%w: not a record", ErrMalformed)
	}
	flags := b[1]
	if flags&^(flagDeleted|flagCounter) != 0 {
		return r, fmt.Errorf("%w: unknown flags %#x", ErrMalformed, flags)
	}
	b = b[2:]
	var err error
	if r.Reg.Stamp, b, err = decodeStamp(b); err != nil {
		return r, err
	}
	if r.Reg.Prev, b, err = decodeStamp(b); err != nil {
		return r, err
	}
	olsn, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) {
		return r, fmt.Errorf("%w: origin LSN", ErrMalformed)
	}
	r.Reg.OriginLSN = olsn
	b = b[n:]
	// Varints must be minimal (no 0x80 0x00 padding): one encoding per
	// record, so that equal records have equal bytes.
	exp, n := binary.Varint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) {
		return r, fmt.Errorf("%w: expiry", ErrMalformed)
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) || l > uint64(len(b)-n) {
		return r, fmt.Errorf("%w: value length", ErrMalformed)
	}
	r.Reg.ExpireAt, r.Reg.Deleted = exp, flags&flagDeleted != 0
	r.Reg.Value = b[n : n+int(l) : n+int(l)]
	b = b[n+int(l):]
	if flags&flagCounter != 0 {
		if r.Counter, err = crdt.DecodePNCounter(b); err != nil {
			return r, fmt.Errorf("%w: counter: %v", ErrMalformed, err)
		}
	} else if len(b) != 0 {
		return r, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return r, nil
}

func decodeStamp(b []byte) (crdt.Stamp, []byte, error) {
	var s crdt.Stamp
	if len(b) < crdt.TimestampSize {
		return s, nil, fmt.Errorf("%w: short timestamp", ErrMalformed)
	}
	t, err := crdt.DecodeTimestamp(b[:crdt.TimestampSize])
	if err != nil {
		return s, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	b = b[crdt.TimestampSize:]
	l, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) || l > crdt.MaxIDLen || l > uint64(len(b)-n) {
		return s, nil, fmt.Errorf("%w: site length", ErrMalformed)
	}
	s.Time, s.Site = t, string(b[n:n+int(l)])
	return s, b[n+int(l):], nil
}
