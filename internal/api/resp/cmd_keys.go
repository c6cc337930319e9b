package resp

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

func (s *Server) cmdDel(c *client, args [][]byte) {
	n := int64(0)
	c.writeThen(func(tx engine.Txn) error {
		n = 0
		for _, k := range args[1:] {
			_, ok, err := tx.Get(k)
			if err != nil {
				return err
			}
			if ok {
				tx.Del(k)
				n++
			}
		}
		return nil
	}, func() {
		c.int(n)
	})
}

// cmdExists serves EXISTS and TOUCH: the number of existing keys, counting
// repeats.
func (s *Server) cmdExists(c *client, args [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	n := int64(0)
	for _, k := range args[1:] {
		_, found, err := r.Get(k)
		if err != nil {
			c.backendErr(err)
			return
		}
		if found {
			n++
		}
	}
	c.int(n)
}

func (s *Server) cmdType(c *client, args [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	v, found, err := r.Get(args[1])
	if err != nil {
		c.backendErr(err)
		return
	}
	if found {
		c.simple(v.Type.String())
	} else {
		c.simple("none")
	}
}

func (s *Server) cmdRename(c *client, args [][]byte) {
	if s.rename(c, args[1], args[2], false) >= 0 {
		c.ok()
	}
}

func (s *Server) cmdRenameNX(c *client, args [][]byte) {
	if n := s.rename(c, args[1], args[2], true); n >= 0 {
		c.int(n)
	}
}

// rename moves src to dst with its expiry; it returns 1 if renamed, 0 if
// not (RENAMENX), or -1 after answering an error.
func (s *Server) rename(c *client, src, dst []byte, nx bool) int64 {
	res := int64(0)
	if !c.write(func(tx engine.Txn) error {
		res = 0
		v, ok, err := tx.Get(src)
		if err != nil {
			return err
		}
		if !ok {
			return replyError(msgNoSuchKey)
		}
		if bytes.Equal(src, dst) {
			res = b2i(!nx)
			return nil
		}
		if nx {
			_, exists, err := tx.Get(dst)
			if err != nil || exists {
				return err
			}
		}
		if v.Type != engine.TypeString {
			// O(1): the elements stay under the collection's id.
			if err := datatype.Rename(tx, src, v, dst); err != nil {
				return err
			}
			res = 1
			return nil
		}
		tx.Set(dst, v.Value, v.ExpireAt)
		tx.Del(src)
		res = 1
		return nil
	}) {
		return -1
	}
	return res
}

func (s *Server) cmdCopy(c *client, args [][]byte) {
	src, dst := args[1], args[2]
	replace := false
	for j := 3; j < len(args); j++ {
		opt := strings.ToLower(string(args[j]))
		switch {
		case opt == "replace":
			replace = true
		case opt == "db" && j+1 < len(args):
			db, ok := parseInt(args[j+1])
			if !ok || db < math.MinInt32 || db > math.MaxInt32 {
				c.err(msgNotInt)
				return
			}
			if db != 0 {
				c.err(msgDBRange)
				return
			}
			j++
		default:
			c.err(msgSyntax)
			return
		}
	}
	if bytes.Equal(src, dst) {
		c.err(msgSameObject)
		return
	}
	res := int64(0)
	if c.write(func(tx engine.Txn) error {
		res = 0
		v, ok, err := tx.Get(src)
		if err != nil || !ok {
			return err
		}
		_, exists, err := tx.Get(dst)
		if err != nil || (exists && !replace) {
			return err
		}
		if v.Type != engine.TypeString {
			if err := datatype.Copy(tx, src, v, dst); err != nil {
				return err
			}
		} else {
			tx.Set(dst, v.Value, v.ExpireAt)
		}
		res = 1
		return nil
	}) {
		c.int(res)
	}
}

// setExpiry rewrites v, the version at key, with a new expiry, keeping its
// value and type.
func setExpiry(tx engine.Txn, key []byte, v engine.Version, expireAt int64) error {
	if v.Type != engine.TypeString {
		return datatype.SetMeta(tx, key, v, expireAt)
	}
	tx.Set(key, v.Value, expireAt)
	return nil
}

// Expire condition flags.
const (
	expireNX = 1 << iota
	expireXX
	expireGT
	expireLT
)

// cmdExpire serves EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
func (s *Server) cmdExpire(c *client, args [][]byte) {
	name := strings.ToLower(string(args[0]))
	seconds := name == "expire" || name == "expireat"
	relative := name == "expire" || name == "pexpire"
	flags := 0
	for _, a := range args[3:] {
		switch strings.ToLower(string(a)) {
		case "nx":
			flags |= expireNX
		case "xx":
			flags |= expireXX
		case "gt":
			flags |= expireGT
		case "lt":
			flags |= expireLT
		default:
			c.errorf("ERR Unsupported option %s", a)
			return
		}
	}
	if flags&expireNX != 0 && flags&(expireXX|expireGT|expireLT) != 0 {
		c.err("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if flags&expireGT != 0 && flags&expireLT != 0 {
		c.err("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := parseInt(args[2])
	if !ok {
		c.err(msgNotInt)
		return
	}
	if seconds {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			c.backendErr(expireTimeErr(name))
			return
		}
		when *= 1000
	}
	key := args[1]
	res := int64(0)
	c.writeThen(func(tx engine.Txn) error {
		res = 0
		at := when
		if relative {
			if at > math.MaxInt64-tx.NowMs() {
				return expireTimeErr(name)
			}
			at += tx.NowMs()
		}
		v, ok, err := tx.Get(key)
		if err != nil || !ok {
			return err
		}
		cur := v.ExpireAt // 0: no expiry, i.e. infinite
		switch {
		case flags&expireNX != 0 && cur != 0,
			flags&expireXX != 0 && cur == 0,
			flags&expireGT != 0 && (cur == 0 || at <= cur),
			flags&expireLT != 0 && cur != 0 && at >= cur:
			return nil
		}
		if at <= tx.NowMs() {
			tx.Del(key)
		} else if err := setExpiry(tx, key, v, at); err != nil {
			return err
		}
		res = 1
		return nil
	}, func() {
		c.int(res)
	})
}

// cmdTTL serves TTL, PTTL, EXPIRETIME and PEXPIRETIME.
func (s *Server) cmdTTL(c *client, args [][]byte) {
	name := strings.ToLower(string(args[0]))
	r, ok := c.read()
	if !ok {
		return
	}
	v, found, err := r.Get(args[1])
	switch {
	case err != nil:
		c.backendErr(err)
	case !found:
		c.int(-2)
	case v.ExpireAt == 0:
		c.int(-1)
	case name == "expiretime":
		c.int(v.ExpireAt / 1000)
	case name == "pexpiretime":
		c.int(v.ExpireAt)
	default:
		ms := max(v.ExpireAt-r.NowMs(), 0)
		if name == "ttl" {
			c.int((ms + 500) / 1000)
		} else {
			c.int(ms)
		}
	}
}

func (s *Server) cmdPersist(c *client, args [][]byte) {
	key := args[1]
	res := int64(0)
	if c.write(func(tx engine.Txn) error {
		res = 0
		v, ok, err := tx.Get(key)
		if err != nil || !ok || v.ExpireAt == 0 {
			return err
		}
		if err := setExpiry(tx, key, v, 0); err != nil {
			return err
		}
		res = 1
		return nil
	}) {
		c.int(res)
	}
}

func (s *Server) cmdScan(c *client, args [][]byte) {
	cursor, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		c.err(msgInvalidCursr)
		return
	}
	count := int64(10)
	var pattern []byte
	typeName := ""
	for i := 2; i < len(args); i += 2 {
		opt := strings.ToLower(string(args[i]))
		if i+1 >= len(args) {
			c.err(msgSyntax)
			return
		}
		switch opt {
		case "count":
			n, ok := parseInt(args[i+1])
			if !ok {
				c.err(msgNotInt)
				return
			}
			if n < 1 {
				c.err(msgSyntax)
				return
			}
			count = n
		case "match":
			pattern = args[i+1]
			if string(pattern) == "*" {
				pattern = nil
			}
		case "type":
			typeName = strings.ToLower(string(args[i+1]))
		default:
			c.err(msgSyntax)
			return
		}
	}
	var start []byte
	if cursor != 0 {
		last, ok := s.cursors.get(cursor)
		if !ok {
			c.err(msgInvalidCursr)
			return
		}
		start = last
	}
	r, ok := c.read()
	if !ok {
		return
	}
	var keys [][]byte
	var last []byte
	examined, more := int64(0), false
	err = scanUser(r, start, func(k []byte, v engine.Version) bool {
		if start != nil && bytes.Equal(k, start) {
			return true
		}
		if examined == count {
			more = true
			return false
		}
		examined++
		last = k
		if (typeName == "" || typeName == v.Type.String()) && (pattern == nil || globMatch(pattern, k)) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return true
	})
	if err != nil {
		c.backendErr(err)
		return
	}
	next := uint64(0)
	if more {
		next = s.cursors.put(last)
	}
	c.array(2)
	c.bulkString(strconv.FormatUint(next, 10))
	c.array(len(keys))
	for _, k := range keys {
		c.bulk(k)
	}
}

func (s *Server) cmdKeys(c *client, args [][]byte) {
	pattern := args[1]
	all := string(pattern) == "*"
	r, ok := c.read()
	if !ok {
		return
	}
	var keys [][]byte
	err := scanUser(r, nil, func(k []byte, _ engine.Version) bool {
		if all || globMatch(pattern, k) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return true
	})
	if err != nil {
		c.backendErr(err)
		return
	}
	c.array(len(keys))
	for _, k := range keys {
		c.bulk(k)
	}
}

func (s *Server) cmdRandomKey(c *client, _ [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	// The first key at or after a random point, else the first key: not
	// uniform, but cheap and never empty when a key exists.
	var probe [8]byte
	for i := range probe {
		probe[i] = byte(rand.Uint32())
	}
	var key []byte
	first := func(k []byte, _ engine.Version) bool {
		if engine.IsReserved(k) {
			return true
		}
		key = append([]byte(nil), k...)
		return false
	}
	err := scanUser(r, probe[:], first)
	if err == nil && key == nil {
		err = scanUser(r, nil, first)
	}
	switch {
	case err != nil:
		c.backendErr(err)
	case key == nil:
		c.null()
	default:
		c.bulk(key)
	}
}

// countKeys counts live keys and those with an expiry.
func countKeys(r engine.Reader) (keys, expires int64, err error) {
	err = scanUser(r, nil, func(_ []byte, v engine.Version) bool {
		keys++
		if v.ExpireAt != 0 {
			expires++
		}
		return true
	})
	return keys, expires, err
}

func (s *Server) cmdDBSize(c *client, _ [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	n, _, err := dbSize(r)
	if err != nil {
		c.backendErr(err)
		return
	}
	c.int(n)
}

// cmdFlush serves FLUSHDB and FLUSHALL [ASYNC|SYNC].
func (s *Server) cmdFlush(c *client, args [][]byte) {
	if len(args) > 2 || (len(args) == 2 && !strings.EqualFold(string(args[1]), "async") && !strings.EqualFold(string(args[1]), "sync")) {
		c.err(msgSyntax)
		return
	}
	// An empty database needs no entry: answer from the committed state,
	// as the dry run of any other no-op write does (inside EXEC, from the
	// transaction's state, its own writes included).
	var r engine.Reader
	var err error
	if c.exec != nil {
		r, _ = c.read()
	} else if r, err = c.s.b.Read(c.ctx, engine.Consistency{Level: engine.LevelLinearizable}, engine.Token{}); err != nil {
		c.backendErr(err)
		return
	}
	empty := true
	if err := scanUser(r, nil, func([]byte, engine.Version) bool { empty = false; return false }); err != nil {
		c.backendErr(err)
		return
	}
	if empty {
		c.observeWrite(r.Token())
		c.ok()
		return
	}
	if c.write(func(tx engine.Txn) error {
		// FLUSHALL keeps function libraries, as in Redis (FUNCTION FLUSH
		// removes them): they are written again after the flush, in the
		// same entry.
		var state engine.Reader = txReader{tx}
		if c.exec != nil {
			state = c.exec.r // inside EXEC: the transaction's own state
		}
		var libs [][2][]byte
		// A mode whose transactions cannot scan has no libraries either
		// (FUNCTION LOAD needs the same scan).
		canScan := true
		if tr, ok := state.(txReader); ok {
			_, canScan = modeTxn(tr.tx).(engine.ScanTxn)
		}
		if canScan {
			var err error
			if libs, err = libraryKeys(state); err != nil {
				return err
			}
		}
		tx.FlushAll()
		for _, kv := range libs {
			tx.Set(kv[0], kv[1], 0)
		}
		return nil
	}) {
		c.ok()
	}
}
