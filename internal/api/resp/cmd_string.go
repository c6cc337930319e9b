package resp

import (
	"errors"
	"math"
	"strings"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// maxStringLen is Redis's proto-max-bulk-len, the largest string SETRANGE
// and APPEND may build (the node's value limit applies as well).
const maxStringLen = 512 << 20

// Expiry kinds of SET/GETEX options.
const (
	expNone = iota
	expEX
	expPX
	expEXAT
	expPXAT
)

// setOpts are the parsed options of SET (and GETEX, which shares Redis's
// parser): condition, GET, and expiry.
type setOpts struct {
	nx, xx, get, keepTTL, persist bool
	exp                           int
	expArg                        []byte // the expiry as given, until parseExpiry
	ms                            int64  // EX/PX: relative ms; EXAT/PXAT: absolute ms
}

// parseSetOpts parses opts as Redis's parseExtendedStringArgumentsOrReply
// does, for SET (isSet) or GETEX. It checks the syntax only: the expiry's
// value is read by parseExpiry, which SET calls at once and GETEX only
// once it found a string under the key (as Redis does, so GETEX of a
// missing key answers nil whatever the expiry).
func parseSetOpts(opts [][]byte, isSet bool) (setOpts, error) {
	var o setOpts
	for j := 0; j < len(opts); j++ {
		opt := strings.ToLower(string(opts[j]))
		next := j+1 < len(opts)
		switch {
		case opt == "nx" && !o.xx && isSet:
			o.nx = true
		case opt == "xx" && !o.nx && isSet:
			o.xx = true
		case opt == "get" && isSet:
			o.get = true
		case opt == "keepttl" && !o.persist && o.exp == expNone && isSet:
			o.keepTTL = true
		case opt == "persist" && !isSet && o.exp == expNone && !o.keepTTL:
			o.persist = true
		case opt == "ex" && !o.keepTTL && !o.persist && (o.exp == expNone || o.exp == expEX) && next:
			o.exp, o.expArg = expEX, opts[j+1]
			j++
		case opt == "px" && !o.keepTTL && !o.persist && (o.exp == expNone || o.exp == expPX) && next:
			o.exp, o.expArg = expPX, opts[j+1]
			j++
		case opt == "exat" && !o.keepTTL && !o.persist && (o.exp == expNone || o.exp == expEXAT) && next:
			o.exp, o.expArg = expEXAT, opts[j+1]
			j++
		case opt == "pxat" && !o.keepTTL && !o.persist && (o.exp == expNone || o.exp == expPXAT) && next:
			o.exp, o.expArg = expPXAT, opts[j+1]
			j++
		default:
			return o, replyError(msgSyntax)
		}
	}
	return o, nil
}

// parseExpiry reads the expiry option's value; cmd names the command in
// errors.
func (o *setOpts) parseExpiry(cmd string) error {
	if o.exp == expNone {
		return nil
	}
	ms, err := parseExpire(o.expArg, o.exp == expEX || o.exp == expEXAT, cmd)
	if err != nil {
		return err
	}
	o.ms = ms
	return nil
}

// parseExpire parses a SET-style expire argument: a positive integer in
// seconds or milliseconds, returned in milliseconds.
func parseExpire(arg []byte, seconds bool, cmd string) (int64, error) {
	ms, ok := parseInt(arg)
	if !ok {
		return 0, replyError(msgNotInt)
	}
	if ms <= 0 || (seconds && ms > math.MaxInt64/1000) {
		return 0, expireTimeErr(cmd)
	}
	if seconds {
		ms *= 1000
	}
	return ms, nil
}

// expireAt returns the absolute expiry of the options at nowMs (0: none).
func (o setOpts) expireAt(nowMs int64, cmd string) (int64, error) {
	switch o.exp {
	case expEX, expPX:
		if o.ms > math.MaxInt64-nowMs {
			return 0, expireTimeErr(cmd)
		}
		return nowMs + o.ms, nil
	case expEXAT, expPXAT:
		return o.ms, nil
	}
	return 0, nil
}

func (s *Server) cmdGet(c *client, args [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	v, found, err := r.Get(args[1])
	if err != nil {
		c.backendErr(err)
		return
	}
	if !found {
		c.null()
		return
	}
	val, err := strValue(v)
	if err != nil {
		c.backendErr(err)
		return
	}
	c.bulk(val)
}

// set runs a SET-family write; reply, once it succeeded, answers from
// whether the key was set (the condition held) and the previous value.
func (s *Server) set(c *client, key, val []byte, o setOpts, cmd string, reply func(did bool, old []byte, found bool)) {
	if err := s.b.CheckValue(len(val)); err != nil {
		c.backendErr(err)
		return
	}
	if !o.nx && !o.xx && !o.get && !o.keepTTL {
		// A plain SET depends on nothing it could read (the hot path).
		// Its expiry is validated first: a bad one writes nothing.
		if _, err := o.expireAt(time.Now().UnixMilli(), cmd); err != nil {
			c.backendErr(err)
			return
		}
		c.writeBlindThen(func(tx engine.Txn) {
			at, _ := o.expireAt(tx.NowMs(), cmd)
			if at != 0 && at <= tx.NowMs() {
				tx.Del(key)
			} else {
				tx.Set(key, val, at)
			}
		}, func() { reply(true, nil, false) })
		return
	}
	var did, found bool
	var old []byte
	c.writeThen(func(tx engine.Txn) error {
		did, old, found = false, nil, false
		at, err := o.expireAt(tx.NowMs(), cmd)
		if err != nil {
			return err
		}
		v, exists, err := tx.Get(key)
		if err != nil {
			return err
		}
		if o.get && exists {
			// SET ... GET answers the old string: a collection is
			// WRONGTYPE and stays as it is. Without GET, SET replaces a
			// value of any type.
			if old, err = strValue(v); err != nil {
				return err
			}
		}
		found = exists
		if (o.nx && exists) || (o.xx && !exists) {
			return nil
		}
		did = true
		if o.keepTTL && exists {
			at = v.ExpireAt
		}
		if at != 0 && at <= tx.NowMs() {
			// An absolute expiry in the past: the key is set and expires
			// at once, which is a delete.
			if exists {
				tx.Del(key)
			}
			return nil
		}
		tx.Set(key, val, at)
		return nil
	}, func() { reply(did, old, found) })
}

func (s *Server) cmdSet(c *client, args [][]byte) {
	o, err := parseSetOpts(args[3:], true)
	if err == nil {
		err = o.parseExpiry("set")
	}
	if err != nil {
		c.backendErr(err)
		return
	}
	s.set(c, args[1], args[2], o, "set", func(did bool, old []byte, found bool) {
		switch {
		case o.get && found:
			c.bulk(old)
		case o.get || !did:
			c.null()
		default:
			c.ok()
		}
	})
}

func (s *Server) cmdSetNX(c *client, args [][]byte) {
	s.set(c, args[1], args[2], setOpts{nx: true}, "setnx", func(did bool, _ []byte, _ bool) {
		c.int(b2i(did))
	})
}

func (s *Server) cmdSetEX(c *client, args [][]byte)  { s.setEx(c, args, true, "setex") }
func (s *Server) cmdPSetEX(c *client, args [][]byte) { s.setEx(c, args, false, "psetex") }

func (s *Server) setEx(c *client, args [][]byte, seconds bool, cmd string) {
	ms, err := parseExpire(args[2], seconds, cmd)
	if err != nil {
		c.backendErr(err)
		return
	}
	s.set(c, args[1], args[3], setOpts{exp: expPX, ms: ms}, cmd, func(bool, []byte, bool) { c.ok() })
}

func (s *Server) cmdGetSet(c *client, args [][]byte) {
	s.set(c, args[1], args[2], setOpts{get: true}, "getset", func(_ bool, old []byte, found bool) {
		if found {
			c.bulk(old)
			return
		}
		c.null()
	})
}

func (s *Server) cmdGetDel(c *client, args [][]byte) {
	key := args[1]
	var old []byte
	var found bool
	c.writeThen(func(tx engine.Txn) error {
		old, found = nil, false
		v, ok, err := tx.Get(key)
		if err != nil || !ok {
			return err
		}
		if old, err = strValue(v); err != nil {
			return err
		}
		found = true
		tx.Del(key)
		return nil
	}, func() {
		if !found {
			c.null()
			return
		}
		c.bulk(old)
	})
}

func (s *Server) cmdGetEx(c *client, args [][]byte) {
	o, err := parseSetOpts(args[2:], false)
	if err != nil {
		c.backendErr(err)
		return
	}
	if o.exp == expNone && !o.persist {
		s.cmdGet(c, args[:2])
		return
	}
	key := args[1]
	var val []byte
	var found bool
	if !c.write(func(tx engine.Txn) error {
		val, found = nil, false
		v, ok, err := tx.Get(key)
		if err != nil || !ok {
			return err
		}
		// Redis's order: a missing key is nil, a collection WRONGTYPE,
		// and only then is the expiry read.
		if val, err = strValue(v); err != nil {
			return err
		}
		o := o // the closure may run more than once
		if err := o.parseExpiry("getex"); err != nil {
			return err
		}
		at, err := o.expireAt(tx.NowMs(), "getex")
		if err != nil {
			return err
		}
		found = true
		switch {
		case o.exp != expNone && at <= tx.NowMs():
			tx.Del(key)
		case o.exp != expNone:
			tx.Set(key, val, at)
		case o.persist && v.ExpireAt != 0:
			tx.Set(key, val, 0)
		}
		return nil
	}) {
		return
	}
	if !found {
		c.null()
		return
	}
	c.bulk(val)
}

func (s *Server) cmdMGet(c *client, args [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	vals := make([][]byte, len(args)-1)
	found := make([]bool, len(args)-1)
	for i, k := range args[1:] {
		v, f, err := r.Get(k)
		if err != nil {
			c.backendErr(err)
			return
		}
		if !f {
			continue
		}
		// A key holding another type reads as missing, as in Redis.
		if val, err := strValue(v); err == nil {
			vals[i], found[i] = val, true
		}
	}
	c.array(len(vals))
	for i, v := range vals {
		if found[i] {
			c.bulk(v)
		} else {
			c.null()
		}
	}
}

// msetArgs checks MSET/MSETNX arguments; on failure it has answered.
func (s *Server) msetArgs(c *client, args [][]byte, cmd string) bool {
	if len(args)%2 == 0 {
		c.arityErr(cmd)
		return false
	}
	for i := 2; i < len(args); i += 2 {
		if err := s.b.CheckValue(len(args[i])); err != nil {
			c.backendErr(err)
			return false
		}
	}
	return true
}

func (s *Server) cmdMSet(c *client, args [][]byte) {
	if !s.msetArgs(c, args, "mset") {
		return
	}
	c.writeThen(func(tx engine.Txn) error {
		for i := 1; i < len(args); i += 2 {
			tx.Set(args[i], args[i+1], 0)
		}
		return nil
	}, func() {
		c.ok()
	})
}

func (s *Server) cmdMSetNX(c *client, args [][]byte) {
	if !s.msetArgs(c, args, "msetnx") {
		return
	}
	did := false
	if c.write(func(tx engine.Txn) error {
		did = false
		for i := 1; i < len(args); i += 2 {
			_, exists, err := tx.Get(args[i])
			if err != nil || exists {
				return err
			}
		}
		for i := 1; i < len(args); i += 2 {
			tx.Set(args[i], args[i+1], 0)
		}
		did = true
		return nil
	}) {
		c.int(b2i(did))
	}
}

func (s *Server) cmdIncr(c *client, args [][]byte) { s.incrBy(c, args[1], 1) }
func (s *Server) cmdDecr(c *client, args [][]byte) { s.incrBy(c, args[1], -1) }

func (s *Server) cmdIncrBy(c *client, args [][]byte) {
	d, ok := parseInt(args[2])
	if !ok {
		c.err(msgNotInt)
		return
	}
	s.incrBy(c, args[1], d)
}

func (s *Server) cmdDecrBy(c *client, args [][]byte) {
	d, ok := parseInt(args[2])
	if !ok {
		c.err(msgNotInt)
		return
	}
	if d == math.MinInt64 {
		c.err("ERR decrement would overflow")
		return
	}
	s.incrBy(c, args[1], -d)
}

// incrBy adds delta to key's integer value, keeping its expiry.
func (s *Server) incrBy(c *client, key []byte, delta int64) {
	var res int64
	c.writeThen(func(tx engine.Txn) error {
		if ct, ok := tx.(engine.CounterTxn); ok {
			// The mode counts increments itself (a PN-counter), so that
			// concurrent INCRs on different sites all count.
			n, err := ct.IncrBy(key, delta)
			switch {
			case errors.Is(err, engine.ErrNotInteger):
				return replyError(msgNotInt)
			case errors.Is(err, engine.ErrOverflow):
				return replyError(msgOverflow)
			}
			res = n
			return err
		}
		v, found, err := tx.Get(key)
		if err != nil {
			return err
		}
		var cur int64
		if found {
			str, err := strValue(v)
			if err != nil {
				return err
			}
			n, ok := parseInt(str)
			if !ok {
				return replyError(msgNotInt)
			}
			cur = n
		}
		if (delta < 0 && cur < 0 && delta < math.MinInt64-cur) || (delta > 0 && cur > 0 && delta > math.MaxInt64-cur) {
			return replyError(msgOverflow)
		}
		res = cur + delta
		tx.Set(key, formatInt(res), v.ExpireAt)
		return nil
	}, func() {
		c.int(res)
	})
}

func (s *Server) cmdIncrByFloat(c *client, args [][]byte) {
	key, incr := args[1], args[2]
	var res string
	c.writeThen(func(tx engine.Txn) error {
		v, found, err := tx.Get(key)
		if err != nil {
			return err
		}
		cur, err := strValue(v)
		if err != nil {
			return err
		}
		res, err = addLongDouble(cur, found, incr)
		if err != nil {
			return err
		}
		if err := s.b.CheckValue(len(res)); err != nil {
			return err
		}
		tx.Set(key, []byte(res), v.ExpireAt)
		return nil
	}, func() {
		// Redis answers with a bulk string in RESP3 as well.
		c.bulkString(res)
	})
}

func (s *Server) cmdAppend(c *client, args [][]byte) {
	key, add := args[1], args[2]
	var n int
	c.writeThen(func(tx engine.Txn) error {
		v, found, err := tx.Get(key)
		if err != nil {
			return err
		}
		cur, err := strValue(v)
		if err != nil {
			return err
		}
		n = len(cur)
		if found && len(add) == 0 {
			return nil
		}
		if int64(n)+int64(len(add)) > maxStringLen {
			return replyError(msgTooBig)
		}
		if err := s.b.CheckValue(n + len(add)); err != nil {
			return err
		}
		nv := make([]byte, 0, n+len(add))
		nv = append(append(nv, cur...), add...)
		n = len(nv)
		tx.Set(key, nv, v.ExpireAt)
		return nil
	}, func() {
		c.int(int64(n))
	})
}

func (s *Server) cmdStrlen(c *client, args [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	v, _, err := r.Get(args[1])
	var val []byte
	if err == nil {
		val, err = strValue(v)
	}
	if err != nil {
		c.backendErr(err)
		return
	}
	c.int(int64(len(val)))
}

func (s *Server) cmdGetRange(c *client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	end, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.err(msgNotInt)
		return
	}
	r, ok := c.read()
	if !ok {
		return
	}
	v, _, err := r.Get(args[1])
	var val []byte
	if err == nil {
		val, err = strValue(v)
	}
	if err != nil {
		c.backendErr(err)
		return
	}
	c.bulk(substr(val, start, end))
}

// substr applies GETRANGE's index rules.
func substr(s []byte, start, end int64) []byte {
	n := int64(len(s))
	if start < 0 && end < 0 && start > end {
		return []byte{}
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if n == 0 || start > end {
		return []byte{}
	}
	return s[start : end+1]
}

func (s *Server) cmdSetRange(c *client, args [][]byte) {
	key, val := args[1], args[3]
	off, ok := parseInt(args[2])
	if !ok {
		c.err(msgNotInt)
		return
	}
	if off < 0 {
		c.err(msgOffsetRange)
		return
	}
	var n int64
	if c.write(func(tx engine.Txn) error {
		v, _, err := tx.Get(key)
		if err != nil {
			return err
		}
		cur, err := strValue(v)
		if err != nil {
			return err
		}
		n = int64(len(cur))
		if len(val) == 0 {
			return nil // nothing to write, found or not
		}
		if off > maxStringLen-int64(len(val)) {
			return replyError(msgTooBig)
		}
		size := max(n, off+int64(len(val)))
		if err := s.b.CheckValue(int(size)); err != nil {
			return err
		}
		nv := make([]byte, size)
		copy(nv, cur)
		copy(nv[off:], val)
		n = size
		tx.Set(key, nv, v.ExpireAt)
		return nil
	}) {
		c.int(n)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
