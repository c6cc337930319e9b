package crdt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error a binary decoder returns.
var ErrMalformed = errors.New("crdt: malformed encoding")

// MaxIDLen is the longest replica, site or node id, in bytes.
const MaxIDLen = 255

// Format tags: the first byte of each top-level encoding. A tag names both
// the type and the version of its layout, so decoding one type's bytes as
// another fails loudly, and a future layout gets a new tag instead of
// being misread.
const (
	tagVector    = 'V'
	tagPNCounter = 'C'
	tagSiblings  = 'S'
)

// ValidID reports whether id can name a replica, site or node in this
// package: 1 to MaxIDLen bytes of valid UTF-8 without spaces, control
// characters, ',' or ':'. The restriction exists for the text form of a
// Vector ("eu:120,us:98"), which is a user-visible token: every id that a
// Vector can hold must print and parse back unambiguously. Callers
// validate their configured ids once with ValidID; the operations that take
// an id panic on an invalid one, as on any other programming error.
func ValidID(id string) error {
	if id == "" {
		return errors.New("crdt: empty id")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("crdt: id of %d bytes is longer than %d", len(id), MaxIDLen)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("crdt: id %q is not valid UTF-8", id)
	}
	for _, r := range id {
		if r == ',' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("crdt: id %q contains %q (ids may not contain spaces, control characters, ',' or ':')", id, r)
		}
	}
	return nil
}

// mustValidID panics on an invalid id; see ValidID for why.
func mustValidID(id string) {
	if err := ValidID(id); err != nil {
		panic(err)
	}
}

// decoder reads a canonical encoding. The first failure sticks: later reads
// return zero values, and the caller checks err once at the end, which
// keeps the per-type decoders linear and makes it hard to forget a check
// that would otherwise turn into an out-of-range panic.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	d.b = nil
}

// uvarint reads a minimal-length unsigned varint. Go's reader also accepts
// padded forms (0x80 0x00 for 0); refusing them keeps one encoding per
// value, so that equal states always have equal bytes.
func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overflowing varint for %s", what)
		return 0
	}
	if n != uvarintLen(v) {
		d.fail("non-minimal varint for %s", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated before %s", what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns the next n bytes, aliasing the input.
func (d *decoder) bytes(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("%s of %d bytes but only %d remain", what, n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// id reads a length-prefixed id and checks it with ValidID, so that
// whatever decodes can also be printed and parsed as text.
func (d *decoder) id(what string) string {
	n := d.uvarint(what + " length")
	if d.err == nil && n > MaxIDLen {
		d.fail("%s of %d bytes is longer than %d", what, n, MaxIDLen)
	}
	p := d.bytes(n, what)
	if d.err != nil {
		return ""
	}
	s := string(p)
	if err := ValidID(s); err != nil {
		d.fail("%s: %v", what, err)
		return ""
	}
	return s
}

// count reads a collection length and bounds it by the bytes left, given
// that every element takes at least minSize bytes: a corrupt length then
// fails here instead of making the caller allocate gigabytes.
func (d *decoder) count(what string, minSize int) int {
	n := d.uvarint(what)
	if d.err == nil && n > uint64(len(d.b)/minSize) {
		d.fail("%d %s cannot fit in %d bytes", n, what, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) tag(want byte, what string) {
	if c := d.byte(what + " format tag"); d.err == nil && c != want {
		d.fail("format tag %#02x is not %s's %#02x", c, what, want)
	}
}

// end fails unless every byte was consumed: trailing bytes mean the input is
// not what the encoder produced.
func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes after %s", len(d.b), what)
	}
	return d.err
}

func appendID(b []byte, id string) []byte {
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(b, id...)
}
