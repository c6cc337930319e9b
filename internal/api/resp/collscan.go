package resp

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// Helpers shared by the hash and set families: element size checks,
// random choices, and the HSCAN/SSCAN cursor walk.

// collRand is the randomness of SPOP, SRANDMEMBER and HRANDFIELD. Its
// source is the runtime's, which is safe for concurrent use, and
// rand.Rand keeps no state of its own.
var collRand = rand.New(runtimeSource{})

type runtimeSource struct{}

func (runtimeSource) Uint64() uint64 { return rand.Uint64() }

// Bounds of a reply of random elements with repetitions (a negative
// count): Redis builds any such reply, and a count of -2^62 exhausts its
// memory; replicant refuses instead.
const (
	maxRandomRepeats    = 1 << 20
	maxRandomReplyBytes = maxStringLen
)

var errRandomTooMany = replyError("ERR value is out of range, at most " + strconv.Itoa(maxRandomRepeats) +
	" random elements with repetitions per call")

var errRandomTooLarge = replyError("ERR the random elements asked for exceed " + strconv.Itoa(maxRandomReplyBytes>>20) +
	" MiB; ask for fewer")

// checkRepeatsSize refuses a reply of random elements larger than
// maxRandomReplyBytes.
func checkRepeatsSize(elems []datatype.Elem, values bool) error {
	total := 0
	for _, e := range elems {
		total += len(e.Rest)
		if values {
			total += len(e.Value)
		}
		if total > maxRandomReplyBytes {
			return errRandomTooLarge
		}
	}
	return nil
}

// msgRange is Redis's error for a count outside ±(2^63-1).
const msgRange = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"

// parseCount parses a SRANDMEMBER or HRANDFIELD count as Redis does
// (an integer, not -2^63).
func parseCount(b []byte) (int64, error) {
	n, ok := parseInt(b)
	switch {
	case !ok:
		return 0, replyError(msgNotInt)
	case n == math.MinInt64:
		return 0, replyError(msgRange)
	}
	return n, nil
}

// checkElem refuses a hash field or set member above the node's key size
// limit: each is stored as a key of its own.
func (s *Server) checkElem(what string, b []byte) error {
	err := s.b.CheckKey(b)
	var le *engine.LimitError
	if errors.As(err, &le) {
		return &engine.LimitError{What: what, Size: le.Size, Limit: le.Limit}
	}
	return err
}

// scanner is the state a write command reads collections from.
func scanner(tx engine.Txn) (datatype.Scanner, error) {
	sc, ok := tx.(datatype.Scanner)
	if !ok {
		return nil, datatype.ErrUnsupported
	}
	return sc, nil
}

// parseScanCursor parses a SCAN-family cursor as Redis does (C's strtoul:
// an optional sign, then decimal digits; a negative number wraps around;
// the empty string is 0).
func parseScanCursor(b []byte) (uint64, bool) {
	s := string(b)
	if s == "" {
		return 0, true
	}
	neg := s[0] == '-'
	if s[0] == '+' || s[0] == '-' {
		s = s[1:]
	}
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		u = -u
	}
	return u, true
}

// collCursorTag starts the cursor table entries of HSCAN and SSCAN (the
// sub-space byte follows, then the last element suffix returned). It lies
// in the reserved space, so no SCAN entry (a user key) starts with it, and
// a cursor of one family is refused by the others.
var collCursorTag = append(append([]byte(nil), engine.ReservedPrefix...), "cursor:"...)

// cmdCollScan serves HSCAN and SSCAN: key cursor [MATCH pattern]
// [COUNT count]. A compact collection (collectionEncoding) is answered
// whole with cursor 0, whatever the cursor and COUNT, as Redis answers its
// listpack and intset encodings. A larger one is walked in key order,
// COUNT elements per call; the cursor maps (cursorTable) to the last
// element returned, so a walk resumes after it whatever was added or
// removed meanwhile: every element present for the whole walk is
// returned exactly once.
// scanOptions parses HSCAN, SSCAN and ZSCAN's [MATCH pattern] [COUNT
// count] (pattern nil for "*", count 10 by default); on failure it has
// answered.
func (c *client) scanOptions(opts [][]byte) (count int64, pattern []byte, ok bool) {
	count = 10
	for i := 0; i < len(opts); i += 2 {
		if i+1 >= len(opts) {
			c.err(msgSyntax)
			return 0, nil, false
		}
		switch strings.ToLower(string(opts[i])) {
		case "count":
			n, ok := parseInt(opts[i+1])
			if !ok {
				c.err(msgNotInt)
				return 0, nil, false
			}
			if n < 1 {
				c.err(msgSyntax)
				return 0, nil, false
			}
			count = n
		case "match":
			pattern = opts[i+1]
			if string(pattern) == "*" {
				pattern = nil
			}
		default:
			c.err(msgSyntax)
			return 0, nil, false
		}
	}
	return count, pattern, true
}

func (s *Server) cmdCollScan(c *client, args [][]byte, t engine.Type, sub byte) {
	cursor, ok := parseScanCursor(args[2])
	if !ok {
		c.err(msgInvalidCursr)
		return
	}
	r, ok := c.read()
	if !ok {
		return
	}
	v, found, err := datatype.Read(r, args[1], t)
	if err != nil {
		c.backendErr(err)
		return
	}
	if !found {
		c.array(2)
		c.bulkString("0")
		c.array(0)
		return
	}
	count, pattern, ok := c.scanOptions(args[3:])
	if !ok {
		return
	}
	enc, err := collectionEncoding(r, args[1], t)
	if err != nil {
		c.backendErr(err)
		return
	}
	compact := enc != "hashtable"
	tag := append(collCursorTag[:len(collCursorTag):len(collCursorTag)], sub)
	var from []byte
	switch {
	case compact:
		count = math.MaxInt64
	case cursor != 0:
		last, ok := s.cursors.get(cursor)
		if !ok || !bytes.HasPrefix(last, tag) {
			c.err(msgInvalidCursr)
			return
		}
		from = append(last[len(tag):len(last):len(last)], 0) // just after it
	}
	var out []datatype.Elem
	var last []byte
	examined, more := int64(0), false
	err = v.Scan(sub, from, func(rest, value []byte) bool {
		if examined == count {
			more = true
			return false
		}
		examined++
		last = append(last[:0], rest...)
		if pattern == nil || globMatch(pattern, rest) {
			out = append(out, datatype.Elem{Rest: append([]byte(nil), rest...), Value: append([]byte(nil), value...)})
		}
		return true
	})
	if err != nil {
		c.backendErr(err)
		return
	}
	if compact && sub == datatype.SubMember && len(out) > 0 {
		// An intset is listed in numeric order, as Redis does.
		ms := elemRests(out)
		sortIntset(ms)
		for i := range out {
			out[i].Rest = ms[i]
		}
	}
	next := uint64(0)
	if more {
		next = s.cursors.put(append(tag, last...))
	}
	withValues := sub == datatype.SubField
	c.array(2)
	c.bulkString(strconv.FormatUint(next, 10))
	if withValues {
		c.array(2 * len(out))
	} else {
		c.array(len(out))
	}
	for _, e := range out {
		c.bulk(e.Rest)
		if withValues {
			c.bulk(e.Value)
		}
	}
}
