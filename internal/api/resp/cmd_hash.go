package resp

import (
	"math"
	"math/big"
	"strings"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// hashCommands are the hash family's rows of the command table.
func (s *Server) hashCommands() []cmdDef {
	return []cmdDef{
		{"hset", -4, "write denyoom fast", 1, 1, 1, "hash", "2.0.0", "Sets fields of a hash to values, creating the hash if needed.", s.cmdHSet},
		{"hmset", -4, "write denyoom fast", 1, 1, 1, "hash", "2.0.0", "Sets fields of a hash to values (HSET answering OK).", s.cmdHSet},
		{"hsetnx", 4, "write denyoom fast", 1, 1, 1, "hash", "2.0.0", "Sets a hash field only if it is not set yet.", s.cmdHSetNX},
		{"hget", 3, "readonly fast", 1, 1, 1, "hash", "2.0.0", "Returns the value of a hash field.", s.cmdHGet},
		{"hmget", -3, "readonly fast", 1, 1, 1, "hash", "2.0.0", "Returns the values of several hash fields.", s.cmdHMGet},
		{"hgetall", 2, "readonly", 1, 1, 1, "hash", "2.0.0", "Returns every field and value of a hash.", s.cmdHGetAll},
		{"hkeys", 2, "readonly", 1, 1, 1, "hash", "2.0.0", "Returns every field of a hash.", s.cmdHKeys},
		{"hvals", 2, "readonly", 1, 1, 1, "hash", "2.0.0", "Returns every value of a hash.", s.cmdHVals},
		{"hlen", 2, "readonly fast", 1, 1, 1, "hash", "2.0.0", "Returns the number of fields of a hash.", s.cmdHLen},
		{"hexists", 3, "readonly fast", 1, 1, 1, "hash", "2.0.0", "Tells whether a hash has a field.", s.cmdHExists},
		{"hdel", -3, "write fast", 1, 1, 1, "hash", "2.0.0", "Removes fields from a hash; the hash goes when its last field does.", s.cmdHDel},
		{"hincrby", 4, "write denyoom fast", 1, 1, 1, "hash", "2.0.0", "Adds an integer to a hash field's integer value (0 if unset).", s.cmdHIncrBy},
		{"hincrbyfloat", 4, "write denyoom fast", 1, 1, 1, "hash", "2.6.0", "Adds a decimal number to a hash field's numeric value (0 if unset).", s.cmdHIncrByFloat},
		{"hstrlen", 3, "readonly fast", 1, 1, 1, "hash", "3.2.0", "Returns the length of a hash field's value.", s.cmdHStrlen},
		{"hrandfield", -2, "readonly", 1, 1, 1, "hash", "6.2.0", "Returns random fields of a hash, optionally with their values.", s.cmdHRandField},
		{"hscan", -3, "readonly", 1, 1, 1, "hash", "2.8.0", "Walks the fields and values of a hash with a cursor.", s.cmdHScan},
	}
}

// readHash opens the hash at key on the connection's reader; v is nil
// when the key does not exist. On failure it has answered.
func (c *client) readHash(key []byte) (v *datatype.View, ok bool) {
	r, ok := c.read()
	if !ok {
		return nil, false
	}
	v, found, err := datatype.Read(r, key, engine.TypeHash)
	if err != nil {
		c.backendErr(err)
		return nil, false
	}
	if !found {
		return nil, true
	}
	return v, true
}

// checkPairs refuses fields and values above the node's limits before
// anything is written.
func (s *Server) checkPairs(pairs [][]byte) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := s.checkElem("hash field", pairs[i]); err != nil {
			return err
		}
		if err := s.b.CheckValue(len(pairs[i+1])); err != nil {
			return err
		}
	}
	return nil
}

// cmdHSet serves HSET (the number of fields created) and HMSET (OK).
func (s *Server) cmdHSet(c *client, args [][]byte) {
	name := strings.ToLower(string(args[0]))
	if len(args)%2 != 0 {
		c.arityErr(name)
		return
	}
	pairs := args[2:]
	if err := s.checkPairs(pairs); err != nil {
		c.backendErr(err)
		return
	}
	var created int64
	c.writeThen(func(tx engine.Txn) error {
		created = 0
		h, err := datatype.Open(tx, args[1], engine.TypeHash)
		if err != nil {
			return err
		}
		for i := 0; i < len(pairs); i += 2 {
			added, err := datatype.HashSet(h, pairs[i], pairs[i+1])
			if err != nil {
				return err
			}
			if added {
				created++
			}
		}
		return h.Save()
	}, func() {
		if name == "hmset" {
			c.ok()
			return
		}
		c.int(created)
	})
}

func (s *Server) cmdHSetNX(c *client, args [][]byte) {
	if err := s.checkPairs(args[2:]); err != nil {
		c.backendErr(err)
		return
	}
	var added bool
	c.writeThen(func(tx engine.Txn) error {
		added = false
		h, err := datatype.Open(tx, args[1], engine.TypeHash)
		if err != nil {
			return err
		}
		if h.Exists() {
			found, err := h.Has(datatype.SubField, args[2])
			if err != nil || found {
				return err
			}
		}
		if added, err = datatype.HashSet(h, args[2], args[3]); err != nil {
			return err
		}
		return h.Save()
	}, func() {
		c.int(b2i(added))
	})
}

func (s *Server) cmdHGet(c *client, args [][]byte) {
	h, ok := c.readHash(args[1])
	if !ok {
		return
	}
	if h == nil {
		c.null()
		return
	}
	val, found, err := h.Get(datatype.SubField, args[2])
	switch {
	case err != nil:
		c.backendErr(err)
	case !found:
		c.null()
	default:
		c.bulk(val)
	}
}

func (s *Server) cmdHMGet(c *client, args [][]byte) {
	h, ok := c.readHash(args[1])
	if !ok {
		return
	}
	vals := make([][]byte, len(args)-2)
	found := make([]bool, len(vals))
	if h != nil {
		for i, f := range args[2:] {
			var err error
			if vals[i], found[i], err = h.Get(datatype.SubField, f); err != nil {
				c.backendErr(err)
				return
			}
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

// hashAll reads every field of the hash at key (none when it does not
// exist). On failure it has answered.
func (c *client) hashAll(key []byte) ([]datatype.Elem, bool) {
	h, ok := c.readHash(key)
	if !ok || h == nil {
		return nil, ok
	}
	all, err := h.All(datatype.SubField)
	if err != nil {
		c.backendErr(err)
		return nil, false
	}
	return all, true
}

func (s *Server) cmdHGetAll(c *client, args [][]byte) {
	all, ok := c.hashAll(args[1])
	if !ok {
		return
	}
	c.mapHeader(len(all))
	for _, e := range all {
		c.bulk(e.Rest)
		c.bulk(e.Value)
	}
}

func (s *Server) cmdHKeys(c *client, args [][]byte) {
	all, ok := c.hashAll(args[1])
	if !ok {
		return
	}
	c.array(len(all))
	for _, e := range all {
		c.bulk(e.Rest)
	}
}

func (s *Server) cmdHVals(c *client, args [][]byte) {
	all, ok := c.hashAll(args[1])
	if !ok {
		return
	}
	c.array(len(all))
	for _, e := range all {
		c.bulk(e.Value)
	}
}

func (s *Server) cmdHLen(c *client, args [][]byte) {
	h, ok := c.readHash(args[1])
	if !ok {
		return
	}
	if h == nil {
		c.int(0)
		return
	}
	c.int(h.Meta.Len)
}

func (s *Server) cmdHExists(c *client, args [][]byte) {
	h, ok := c.readHash(args[1])
	if !ok {
		return
	}
	found := false
	if h != nil {
		var err error
		if found, err = h.Has(datatype.SubField, args[2]); err != nil {
			c.backendErr(err)
			return
		}
	}
	c.int(b2i(found))
}

func (s *Server) cmdHStrlen(c *client, args [][]byte) {
	h, ok := c.readHash(args[1])
	if !ok {
		return
	}
	n := 0
	if h != nil {
		val, _, err := h.Get(datatype.SubField, args[2])
		if err != nil {
			c.backendErr(err)
			return
		}
		n = len(val)
	}
	c.int(int64(n))
}

func (s *Server) cmdHDel(c *client, args [][]byte) {
	var n int64
	c.writeThen(func(tx engine.Txn) error {
		n = 0
		h, err := datatype.Open(tx, args[1], engine.TypeHash)
		if err != nil || !h.Exists() {
			return err
		}
		for _, f := range args[2:] {
			removed, err := datatype.HashDel(h, f)
			if err != nil {
				return err
			}
			if removed {
				n++
			}
		}
		return h.Save()
	}, func() {
		c.int(n)
	})
}

func (s *Server) cmdHIncrBy(c *client, args [][]byte) {
	if err := s.checkElem("hash field", args[2]); err != nil {
		c.backendErr(err)
		return
	}
	incr, ok := parseInt(args[3])
	if !ok {
		c.err(msgNotInt)
		return
	}
	var res int64
	c.writeThen(func(tx engine.Txn) error {
		h, err := datatype.Open(tx, args[1], engine.TypeHash)
		if err != nil {
			return err
		}
		cur := int64(0)
		old, found, err := h.Get(datatype.SubField, args[2])
		if err != nil {
			return err
		}
		if found {
			if cur, ok = parseInt(old); !ok {
				return replyError("ERR hash value is not an integer")
			}
		}
		if (incr < 0 && cur < math.MinInt64-incr) || (incr > 0 && cur > math.MaxInt64-incr) {
			return replyError(msgOverflow)
		}
		res = cur + incr
		if _, err := datatype.HashSet(h, args[2], formatInt(res)); err != nil {
			return err
		}
		return h.Save()
	}, func() {
		c.int(res)
	})
}

func (s *Server) cmdHIncrByFloat(c *client, args [][]byte) {
	if err := s.checkElem("hash field", args[2]); err != nil {
		c.backendErr(err)
		return
	}
	incr, inf, ok := parseLongDouble(args[3])
	if !ok {
		c.err(msgNotFloat)
		return
	}
	if inf {
		c.err("ERR value is NaN or Infinity")
		return
	}
	var res string
	if c.write(func(tx engine.Txn) error {
		h, err := datatype.Open(tx, args[1], engine.TypeHash)
		if err != nil {
			return err
		}
		old, found, err := h.Get(datatype.SubField, args[2])
		if err != nil {
			return err
		}
		if res, err = hashAddFloat(old, found, incr); err != nil {
			return err
		}
		if _, err := datatype.HashSet(h, args[2], []byte(res)); err != nil {
			return err
		}
		return h.Save()
	}) {
		c.bulkString(res)
	}
}

// hashAddFloat is HINCRBYFLOAT's sum of a field's value (0 when unset)
// and a finite increment, in long double precision as Redis computes it.
func hashAddFloat(cur []byte, exists bool, incr *big.Float) (string, error) {
	v := new(big.Float).SetPrec(ldPrec)
	if exists {
		f, inf, ok := parseLongDouble(cur)
		switch {
		case !ok:
			return "", replyError("ERR hash value is not a float")
		case inf:
			return "", replyError(msgNaN)
		}
		v = f
	}
	r := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Add(v, incr)
	if r.Sign() != 0 && r.MantExp(nil) > ldMaxExp {
		return "", replyError(msgNaN)
	}
	return formatLongDouble(r), nil
}

// cmdHRandField serves HRANDFIELD key [count [WITHVALUES]].
func (s *Server) cmdHRandField(c *client, args [][]byte) {
	if len(args) == 2 {
		h, ok := c.readHash(args[1])
		if !ok {
			return
		}
		if h == nil {
			c.null()
			return
		}
		e, found, err := h.RandomOne(collRand, datatype.SubField)
		switch {
		case err != nil:
			c.backendErr(err)
		case !found:
			c.null()
		default:
			c.bulk(e.Rest)
		}
		return
	}
	count, err := parseCount(args[2])
	if err != nil {
		c.backendErr(err)
		return
	}
	withValues := false
	switch {
	case len(args) > 4 || (len(args) == 4 && !strings.EqualFold(string(args[3]), "withvalues")):
		c.err(msgSyntax)
		return
	case len(args) == 4:
		withValues = true
		// Redis's bound: the reply's length, twice the count, must fit.
		if count < -math.MaxInt64/2 || count > math.MaxInt64/2 {
			c.err("ERR value is out of range")
			return
		}
	}
	h, ok := c.readHash(args[1])
	if !ok {
		return
	}
	elems, err := randomElems(h, datatype.SubField, count, withValues)
	if err != nil {
		c.backendErr(err)
		return
	}
	if !withValues {
		c.array(len(elems))
		for _, e := range elems {
			c.bulk(e.Rest)
		}
		return
	}
	// Pairs: nested in RESP3, flat in RESP2 (as Redis).
	if c.proto == 3 {
		c.array(len(elems))
	} else {
		c.array(2 * len(elems))
	}
	for _, e := range elems {
		if c.proto == 3 {
			c.array(2)
		}
		c.bulk(e.Rest)
		c.bulk(e.Value)
	}
}

// randomElems is the choice of HRANDFIELD and SRANDMEMBER with a count
// from the collection v (nil: missing): distinct elements for a positive
// count, |count| independent choices for a negative one.
func randomElems(v *datatype.View, sub byte, count int64, values bool) ([]datatype.Elem, error) {
	switch {
	case v == nil || count == 0:
		return nil, nil
	case count > 0:
		return v.RandomDistinct(collRand, sub, count)
	case -count > maxRandomRepeats:
		return nil, errRandomTooMany
	}
	elems, err := v.RandomRepeat(collRand, sub, -count)
	if err != nil {
		return nil, err
	}
	return elems, checkRepeatsSize(elems, values)
}

func (s *Server) cmdHScan(c *client, args [][]byte) {
	s.cmdCollScan(c, args, engine.TypeHash, datatype.SubField)
}
