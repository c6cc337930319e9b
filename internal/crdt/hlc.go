package crdt

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Timestamp is a hybrid logical clock reading (Kulkarni, Demirbas et al.,
// "Logical Physical Clocks"): WallMs is the highest physical time, in Unix
// milliseconds, that the issuing clock had seen, and Logical counts the
// events that shared that WallMs. Timestamps order first by WallMs, then by
// Logical, so they respect causality (a clock that received a timestamp
// only issues greater ones) while staying close to physical time, which is
// what makes last-writer-wins between sites mean "the later write" to a
// human reader.
//
// The zero Timestamp is below every timestamp a Clock issues.
type Timestamp struct {
	WallMs  int64
	Logical uint32
}

// TimestampSize is the length of a Timestamp's binary encoding.
const TimestampSize = 12

var _ encoding.BinaryAppender = Timestamp{}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.WallMs < u.WallMs:
		return -1
	case t.WallMs > u.WallMs:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// Less reports whether t is before u.
func (t Timestamp) Less(u Timestamp) bool { return t.Compare(u) < 0 }

// IsZero reports whether t is the zero Timestamp.
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// String formats t as "WALLMS,LOGICAL", e.g. "1700000000123,2". A comma
// rather than a dot so that the logical part is not mistaken for a
// decimal fraction ("…,10" is after "…,9").
func (t Timestamp) String() string { return fmt.Sprintf("%d,%d", t.WallMs, t.Logical) }

// AppendBinary appends the TimestampSize-byte encoding of t to b: WallMs
// big-endian with its sign bit flipped, then Logical big-endian. The
// encoding is fixed-size, so it can be embedded in other records without a
// length, and it sorts bytewise exactly as Compare orders timestamps
// (negative WallMs included, thanks to the flipped sign bit), so it can be
// used inside storage keys. The error is always nil; the signature is
// encoding.BinaryAppender's.
func (t Timestamp) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, uint64(t.WallMs)^(1<<63))
	return binary.BigEndian.AppendUint32(b, t.Logical), nil
}

// DecodeTimestamp decodes exactly TimestampSize bytes produced by
// AppendBinary. Every TimestampSize-byte input is a valid timestamp; any
// other length is an error wrapping ErrMalformed.
func DecodeTimestamp(b []byte) (Timestamp, error) {
	if len(b) != TimestampSize {
		return Timestamp{}, fmt.Errorf("%w: timestamp is %d bytes, want %d", ErrMalformed, len(b), TimestampSize)
	}
	return Timestamp{
		WallMs:  int64(binary.BigEndian.Uint64(b) ^ (1 << 63)),
		Logical: binary.BigEndian.Uint32(b[8:]),
	}, nil
}

// next returns the smallest timestamp after t. When Logical is exhausted
// the clock borrows a millisecond from the future rather than wrap, which
// would break monotonicity; this only happens after 2^32 events in one
// millisecond. ok is false only at the very top of the int64 range.
func (t Timestamp) next() (Timestamp, bool) {
	if t.Logical < math.MaxUint32 {
		return Timestamp{t.WallMs, t.Logical + 1}, true
	}
	if t.WallMs == math.MaxInt64 {
		return t, false
	}
	return Timestamp{t.WallMs + 1, 0}, true
}

// Stamp is a Timestamp qualified by the site (or node) that issued it. Two
// sites' clocks can issue the same Timestamp, so last-writer-wins orders by
// Stamp instead: the site id breaks the tie the same way everywhere. Since a
// Clock never issues the same Timestamp twice, a Stamp names one write.
type Stamp struct {
	Time Timestamp
	Site string
}

// Compare orders stamps by Time, then by Site (bytewise). It is a total
// order, which is what makes last-writer-wins deterministic on every site.
func (s Stamp) Compare(o Stamp) int {
	if c := s.Time.Compare(o.Time); c != 0 {
		return c
	}
	return strings.Compare(s.Site, o.Site)
}

// Less reports whether s is before o.
func (s Stamp) Less(o Stamp) bool { return s.Compare(o) < 0 }

// String formats s as "WALLMS,LOGICAL@SITE".
func (s Stamp) String() string { return s.Time.String() + "@" + s.Site }

// Clock is a hybrid logical clock. It never reads the time itself: every
// method takes the caller's physical clock reading in Unix milliseconds, so
// the clock is a pure state machine that tests can drive with any sequence
// of readings, including ones that go backwards (NTP steps, VM migration).
// Whatever the readings, the timestamps it issues strictly increase.
//
// A Clock is not safe for concurrent use; the driver that owns it
// serialises access (one per site leader or node).
type Clock struct {
	maxOffsetMs int64
	last        Timestamp
}

// NewClock returns a clock that refuses remote timestamps more than
// maxOffsetMs ahead of the local physical time (see Update). maxOffsetMs <=
// 0 disables the check; the zero Clock is such a clock.
func NewClock(maxOffsetMs int64) *Clock { return &Clock{maxOffsetMs: max(maxOffsetMs, 0)} }

// MaxOffsetMs is the configured maximum offset, 0 when unchecked.
func (c *Clock) MaxOffsetMs() int64 { return c.maxOffsetMs }

// Last is the latest timestamp the clock issued or restored (zero for a new
// clock). Drivers persist it so that a restarted node can Restore it.
func (c *Clock) Last() Timestamp { return c.last }

// Restore raises the clock to at least floor, without the offset check.
// It is for a node's own timestamps read back after a restart (the highest
// one it persisted): the clock must never issue them again, even if the
// physical clock now reads earlier, and they are not evidence of a remote
// clock's skew.
func (c *Clock) Restore(floor Timestamp) {
	if c.last.Less(floor) {
		c.last = floor
	}
}

// Now issues a timestamp for a local event (a write) at physical time
// physMs: physMs itself with Logical 0 when the physical clock has moved
// past every timestamp seen so far, otherwise one logical tick after the
// latest. The result is always greater than every timestamp issued before.
//
// Now panics only if the clock has reached the last representable
// timestamp, which needs a physical reading within 2^32 events of
// math.MaxInt64 milliseconds (292 million years from now): no caller with a
// real clock gets there, and issuing a non-increasing timestamp instead
// would silently break last-writer-wins.
func (c *Clock) Now(physMs int64) Timestamp {
	if physMs > c.last.WallMs {
		c.last = Timestamp{WallMs: physMs}
		return c.last
	}
	t, ok := c.last.next()
	if !ok {
		panic("crdt: hybrid logical clock exhausted (WallMs at math.MaxInt64)")
	}
	c.last = t
	return t
}

// ErrClockExhausted is returned by Update when the clock would have to move
// past the last representable timestamp.
var ErrClockExhausted = errors.New("crdt: hybrid logical clock exhausted (WallMs at math.MaxInt64)")

// ClockSkewError is Update's refusal of a remote timestamp too far ahead of
// the local physical clock.
type ClockSkewError struct {
	Remote      Timestamp // the refused timestamp
	PhysMs      int64     // the local physical reading it was checked against
	MaxOffsetMs int64     // the configured bound
}

// AheadMs is how far Remote is ahead of the local physical clock.
func (e *ClockSkewError) AheadMs() uint64 { return uint64(e.Remote.WallMs) - uint64(e.PhysMs) }

func (e *ClockSkewError) Error() string {
	return fmt.Sprintf("crdt: remote timestamp %v is %dms ahead of the local clock (%d), more than the maximum offset %dms",
		e.Remote, e.AheadMs(), e.PhysMs, e.MaxOffsetMs)
}

// Update records the receipt of a remote timestamp at physical time physMs
// and returns the timestamp of the receive event: greater than both the
// clock's latest timestamp and remote. This is how causality crosses
// sites: a write made after applying a remote write gets a later stamp, so
// last-writer-wins never lets an older write beat one that saw it.
//
// If remote is more than the maximum offset ahead of physMs the clock is
// left unchanged and the error is a *ClockSkewError. Jumping instead would
// let one site with a runaway clock drag every clock it talks to into the
// future, after which its writes, and theirs, would win every conflict
// until real time caught up. The caller decides what to do (refuse the
// link, alert); it is not a crdt decision.
func (c *Clock) Update(remote Timestamp, physMs int64) (Timestamp, error) {
	// remote.WallMs > physMs makes the unsigned difference exact even
	// when the signed one would overflow.
	if c.maxOffsetMs > 0 && remote.WallMs > physMs && uint64(remote.WallMs)-uint64(physMs) > uint64(c.maxOffsetMs) {
		return c.last, &ClockSkewError{Remote: remote, PhysMs: physMs, MaxOffsetMs: c.maxOffsetMs}
	}
	// The receive rule of the HLC paper, folded: the new wall time is the
	// largest of the three; Logical restarts at 0 if the physical clock
	// alone supplied it, otherwise it ticks past the larger of the
	// timestamps that share it.
	base := c.last
	if base.Less(remote) {
		base = remote
	}
	if physMs > base.WallMs {
		c.last = Timestamp{WallMs: physMs}
		return c.last, nil
	}
	t, ok := base.next()
	if !ok {
		return c.last, ErrClockExhausted
	}
	c.last = t
	return t, nil
}
