package resp

import (
	"bytes"
	"math"
	"strings"

	"github.com/replicant-db/replicant/internal/bitmap"
	"github.com/replicant-db/replicant/internal/engine"
)

// Bitmaps are strings (TYPE answers string): every command here reads a
// value through strValue and writes plain string values, so the log
// records the whole resulting string, as it does for SETRANGE.

const (
	msgBitOffset    = "ERR bit offset is not an integer or out of range"
	msgBitValue     = "ERR bit is not an integer or out of range"
	msgBitArg       = "ERR The bit argument must be 1 or 0."
	msgBitopNot     = "ERR BITOP NOT must be called with a single source key."
	msgBitfieldType = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
	msgOverflowType = "ERR Invalid OVERFLOW type specified"
	msgBitfieldRO   = "ERR BITFIELD_RO only supports the GET subcommand"
)

// parseBitOffset reads a bit offset as Redis does: a non-negative integer
// whose byte lies below the 512 MB string limit. With hash (BITFIELD), an
// offset written "#n" means n fields of width bits; like Redis, the
// multiplication wraps around on overflow rather than failing.
func parseBitOffset(arg []byte, hash bool, width int) (uint64, bool) {
	fields := hash && len(arg) > 0 && arg[0] == '#'
	if fields {
		arg = arg[1:]
	}
	n, ok := parseInt(arg)
	if !ok {
		return 0, false
	}
	if fields {
		n *= int64(width)
	}
	if n < 0 || n>>3 >= maxStringLen {
		return 0, false
	}
	return uint64(n), true
}

// readString reads key as a string at the connection's read state: its
// value (nil when missing), whether it exists, or WRONGTYPE. On a failure
// it has answered.
func (c *client) readString(key []byte) (val []byte, found, ok bool) {
	r, ok := c.read()
	if !ok {
		return nil, false, false
	}
	v, found, err := r.Get(key)
	if err == nil && found {
		val, err = strValue(v)
	}
	if err != nil {
		c.backendErr(err)
		return nil, false, false
	}
	return val, found, true
}

func (s *Server) cmdSetBit(c *client, args [][]byte) {
	key := args[1]
	off, ok := parseBitOffset(args[2], false, 0)
	if !ok {
		c.err(msgBitOffset)
		return
	}
	bit, ok := parseInt(args[3])
	if !ok || bit&^1 != 0 {
		c.err(msgBitValue)
		return
	}
	var old int
	if c.write(func(tx engine.Txn) error {
		v, found, err := tx.Get(key)
		if err != nil {
			return err
		}
		cur, err := strValue(v)
		if err != nil {
			return err
		}
		old = bitmap.Bit(cur, off)
		size := max(len(cur), int(off>>3)+1)
		if found && size == len(cur) && old == int(bit) {
			return nil // nothing changes: nothing is written
		}
		if err := s.b.CheckValue(size); err != nil {
			return err
		}
		nv := make([]byte, size)
		copy(nv, cur)
		bitmap.SetBit(nv, off, int(bit))
		tx.Set(key, nv, v.ExpireAt)
		return nil
	}) {
		c.int(int64(old))
	}
}

func (s *Server) cmdGetBit(c *client, args [][]byte) {
	off, ok := parseBitOffset(args[2], false, 0)
	if !ok {
		c.err(msgBitOffset)
		return
	}
	val, _, ok := c.readString(args[1])
	if ok {
		c.int(int64(bitmap.Bit(val, off)))
	}
}

// bitRange resolves a BITCOUNT/BITPOS start and end (bytes, or bits with
// isBit) against a string of n bytes as Redis does: negative indexes
// count from the end, both are clamped to the string, and the result is
// the bit offsets lo to hi, or empty.
func bitRange(start, end int64, isBit bool, n int) (lo, hi uint64, empty bool) {
	total := int64(n)
	if isBit {
		total *= 8
	}
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	start, end = max(start, 0), max(end, 0)
	if end >= total {
		end = total - 1
	}
	if start > end {
		return 0, 0, true
	}
	if isBit {
		return uint64(start), uint64(end), false
	}
	return uint64(start) * 8, uint64(end)*8 + 7, false
}

// parseBitUnit reads BITCOUNT/BITPOS's BYTE|BIT option.
func parseBitUnit(arg []byte) (isBit, ok bool) {
	switch strings.ToLower(string(arg)) {
	case "bit":
		return true, true
	case "byte":
		return false, true
	}
	return false, false
}

func (s *Server) cmdBitCount(c *client, args [][]byte) {
	// Redis 7 looks the key up before it reads the range: a missing key
	// counts 0 whatever the other arguments.
	val, found, ok := c.readString(args[1])
	if !ok {
		return
	}
	if !found {
		c.int(0)
		return
	}
	switch len(args) {
	case 2:
		c.int(bitmap.Count(val, 0, math.MaxUint64))
	case 4, 5:
		start, ok1 := parseInt(args[2])
		end, ok2 := parseInt(args[3])
		if !ok1 || !ok2 {
			c.err(msgNotInt)
			return
		}
		isBit := false
		if len(args) == 5 {
			if isBit, ok = parseBitUnit(args[4]); !ok {
				c.err(msgSyntax)
				return
			}
		}
		if start < 0 && end < 0 && start > end {
			c.int(0)
			return
		}
		lo, hi, empty := bitRange(start, end, isBit, len(val))
		if empty {
			c.int(0)
			return
		}
		c.int(bitmap.Count(val, lo, hi))
	default:
		c.err(msgSyntax)
	}
}

func (s *Server) cmdBitPos(c *client, args [][]byte) {
	bit, ok := parseInt(args[2])
	if !ok {
		c.err(msgNotInt)
		return
	}
	if bit != 0 && bit != 1 {
		c.err(msgBitArg)
		return
	}
	val, found, ok := c.readString(args[1])
	if !ok {
		return
	}
	if !found {
		// A missing key is an endless run of zeros (Redis 7 answers
		// before it reads the range).
		c.int(-bit)
		return
	}
	start, end := int64(0), int64(len(val))-1
	isBit, endGiven := false, false
	switch len(args) {
	case 3:
	case 4, 5, 6:
		// Redis's order: start, then the unit, then end.
		if start, ok = parseInt(args[3]); !ok {
			c.err(msgNotInt)
			return
		}
		if len(args) == 6 {
			if isBit, ok = parseBitUnit(args[5]); !ok {
				c.err(msgSyntax)
				return
			}
		}
		if len(args) >= 5 {
			if end, ok = parseInt(args[4]); !ok {
				c.err(msgNotInt)
				return
			}
			endGiven = true
		}
	default:
		c.err(msgSyntax)
		return
	}
	lo, hi, empty := bitRange(start, end, isBit, len(val))
	if empty {
		c.int(-1)
		return
	}
	pos := bitmap.Pos(val, int(bit), lo, hi)
	if pos < 0 && bit == 0 && !endGiven {
		// Without an end the string goes on as zeros: the first clear
		// bit is the one right after it.
		pos = int64(hi) + 1
	}
	c.int(pos)
}

func (s *Server) cmdBitOp(c *client, args [][]byte) {
	var op bitmap.Op
	switch strings.ToLower(string(args[1])) {
	case "and":
		op = bitmap.And
	case "or":
		op = bitmap.Or
	case "xor":
		op = bitmap.Xor
	case "not":
		op = bitmap.Not
	default:
		c.err(msgSyntax)
		return
	}
	if op == bitmap.Not && len(args) != 4 {
		c.err(msgBitopNot)
		return
	}
	dest, keys := args[2], args[3:]
	var n int
	if c.write(func(tx engine.Txn) error {
		n = 0
		srcs := make([][]byte, len(keys))
		for i, k := range keys {
			v, found, err := tx.Get(k)
			if err != nil {
				return err
			}
			if found {
				if srcs[i], err = strValue(v); err != nil {
					return err
				}
			}
		}
		res := bitmap.Apply(op, srcs)
		if len(res) == 0 {
			// An empty result deletes the destination, of any type.
			_, found, err := tx.Get(dest)
			if err == nil && found {
				tx.Del(dest)
			}
			return err
		}
		if err := s.b.CheckValue(len(res)); err != nil {
			return err
		}
		n = len(res)
		// The destination is replaced whatever it held, without expiry.
		tx.Set(dest, res, 0)
		return nil
	}) {
		c.int(int64(n))
	}
}

// bitfield operation kinds.
const (
	bfGet = iota
	bfSet
	bfIncrBy
)

// bfOp is one parsed BITFIELD operation.
type bfOp struct {
	kind   int
	signed bool
	width  int
	off    uint64
	arg    int64 // SET's value, INCRBY's increment
	ow     bitmap.Overflow
}

// parseBitfieldType reads a field type: i1 to i64, u1 to u63.
func parseBitfieldType(arg []byte) (signed bool, width int, ok bool) {
	if len(arg) < 2 || (arg[0] != 'i' && arg[0] != 'u') {
		return false, 0, false
	}
	signed = arg[0] == 'i'
	n, ok := parseInt(arg[1:])
	if !ok || n < 1 || (signed && n > 64) || (!signed && n > 63) {
		return false, 0, false
	}
	return signed, int(n), true
}

// parseBitfield parses BITFIELD's operations as Redis does, failing on
// the first bad one: the operations, the highest bit a SET or INCRBY
// touches, and whether any does.
func parseBitfield(args [][]byte) (ops []bfOp, top uint64, writes bool, errMsg string) {
	ow := bitmap.Wrap
	for j := 0; j < len(args); j++ {
		rest := len(args) - j - 1
		var op bfOp
		switch sub := strings.ToLower(string(args[j])); {
		case sub == "get" && rest >= 2:
			op.kind = bfGet
		case sub == "set" && rest >= 3:
			op.kind = bfSet
		case sub == "incrby" && rest >= 3:
			op.kind = bfIncrBy
		case sub == "overflow" && rest >= 1:
			j++
			switch strings.ToLower(string(args[j])) {
			case "wrap":
				ow = bitmap.Wrap
			case "sat":
				ow = bitmap.Sat
			case "fail":
				ow = bitmap.Fail
			default:
				return nil, 0, false, msgOverflowType
			}
			continue
		default:
			return nil, 0, false, msgSyntax
		}
		var ok bool
		if op.signed, op.width, ok = parseBitfieldType(args[j+1]); !ok {
			return nil, 0, false, msgBitfieldType
		}
		if op.off, ok = parseBitOffset(args[j+2], true, op.width); !ok {
			return nil, 0, false, msgBitOffset
		}
		op.ow = ow
		if op.kind != bfGet {
			writes = true
			top = max(top, op.off+uint64(op.width)-1)
			if op.arg, ok = parseInt(args[j+3]); !ok {
				return nil, 0, false, msgNotInt
			}
			j++
		}
		j += 2
		ops = append(ops, op)
	}
	return ops, top, writes, ""
}

// runBitfield runs ops on buf, which holds every bit a write touches:
// each result, and false for an operation that failed on overflow.
func runBitfield(ops []bfOp, buf []byte) (res []int64, done []bool) {
	res, done = make([]int64, len(ops)), make([]bool, len(ops))
	for i, op := range ops {
		if op.kind == bfGet {
			done[i] = true
			if op.signed {
				res[i] = bitmap.Int(buf, op.off, op.width)
			} else {
				res[i] = int64(bitmap.Uint(buf, op.off, op.width))
			}
			continue
		}
		var old, nv int64
		var ok bool
		if op.signed {
			old = bitmap.Int(buf, op.off, op.width)
			if op.kind == bfIncrBy {
				nv, ok = bitmap.AddInt(old, op.arg, op.width, op.ow)
			} else {
				nv, ok = bitmap.FitInt(op.arg, op.width, op.ow)
			}
		} else {
			u := bitmap.Uint(buf, op.off, op.width)
			var nu uint64
			if op.kind == bfIncrBy {
				nu, ok = bitmap.AddUint(u, op.arg, op.width, op.ow)
			} else {
				nu, ok = bitmap.FitUint(op.arg, op.width, op.ow)
			}
			old, nv = int64(u), int64(nu) // both below 2^63
		}
		if !ok {
			continue // FAIL: nil, and the field stays
		}
		done[i] = true
		bitmap.PutUint(buf, op.off, op.width, uint64(nv))
		res[i] = old // SET answers the old value
		if op.kind == bfIncrBy {
			res[i] = nv // INCRBY the new one
		}
	}
	return res, done
}

// replyBitfield answers BITFIELD's results.
func (c *client) replyBitfield(res []int64, done []bool) {
	c.array(len(res))
	for i, v := range res {
		if done[i] {
			c.int(v)
		} else {
			c.null()
		}
	}
}

func (s *Server) cmdBitField(c *client, args [][]byte) {
	key := args[1]
	ops, top, writes, msg := parseBitfield(args[2:])
	if msg != "" {
		c.err(msg)
		return
	}
	// BITFIELD is a write command even when it only reads (Redis refuses
	// it on a replica; BITFIELD_RO is the read-only form): it runs on the
	// write path and writes only when the string changes.
	var res []int64
	var done []bool
	if c.write(func(tx engine.Txn) error {
		res, done = nil, nil
		v, found, err := tx.Get(key)
		if err != nil {
			return err
		}
		cur, err := strValue(v)
		if err != nil {
			return err
		}
		if !writes {
			res, done = runBitfield(ops, cur)
			return nil
		}
		// The string grows to hold the highest bit a write touches, even
		// when that write fails on overflow (as in Redis, where the key
		// is then created or grown all the same). Its size is checked
		// before anything is allocated.
		size := max(len(cur), int(top>>3)+1)
		if err := s.b.CheckValue(size); err != nil {
			return err
		}
		nv := make([]byte, size)
		copy(nv, cur)
		res, done = runBitfield(ops, nv)
		if found && bytes.Equal(nv, cur) {
			return nil // nothing changes: nothing is written
		}
		tx.Set(key, nv, v.ExpireAt)
		return nil
	}) {
		c.replyBitfield(res, done)
	}
}

func (s *Server) cmdBitFieldRO(c *client, args [][]byte) {
	ops, _, writes, msg := parseBitfield(args[2:])
	switch {
	case msg != "":
		c.err(msg)
		return
	case writes:
		c.err(msgBitfieldRO)
		return
	}
	val, _, ok := c.readString(args[1])
	if ok {
		c.replyBitfield(runBitfield(ops, val))
	}
}
