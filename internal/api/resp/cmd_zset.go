package resp

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// Sorted sets, as Redis 7.2 answers them (docs/redis-compat.md, "Sorted
// sets"); the layout and the costs are internal/datatype's (zset.go).
// BZPOPMIN, BZPOPMAX and BZMPOP wait for the blocking support the list
// commands bring.

// zsetCommands are the zset family's rows of the command table.
func (s *Server) zsetCommands() []cmdDef {
	const g = "sorted-set"
	return []cmdDef{
		{"zadd", -4, "write denyoom fast", 1, 1, 1, g, "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", s.cmdZAdd},
		{"zincrby", 4, "write denyoom fast", 1, 1, 1, g, "1.2.0", "Increments the score of a member in a sorted set.", s.cmdZIncrBy},
		{"zrem", -3, "write fast", 1, 1, 1, g, "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", s.cmdZRem},
		{"zscore", 3, "readonly fast", 1, 1, 1, g, "1.2.0", "Returns the score of a member in a sorted set.", s.cmdZScore},
		{"zmscore", -3, "readonly fast", 1, 1, 1, g, "6.2.0", "Returns the score of one or more members in a sorted set.", s.cmdZMScore},
		{"zcard", 2, "readonly fast", 1, 1, 1, g, "1.2.0", "Returns the number of members in a sorted set.", s.cmdZCard},
		{"zcount", 4, "readonly fast", 1, 1, 1, g, "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", s.cmdZCount},
		{"zlexcount", 4, "readonly fast", 1, 1, 1, g, "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", s.cmdZLexCount},
		{"zrank", -3, "readonly fast", 1, 1, 1, g, "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", s.cmdZRank},
		{"zrevrank", -3, "readonly fast", 1, 1, 1, g, "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", s.cmdZRank},
		{"zrange", -4, "readonly", 1, 1, 1, g, "1.2.0", "Returns members in a sorted set within a range of indexes.", s.cmdZRange},
		{"zrangestore", -5, "write denyoom", 1, 2, 1, g, "6.2.0", "Stores a range of members from sorted set in a key.", s.cmdZRange},
		{"zrevrange", -4, "readonly", 1, 1, 1, g, "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", s.cmdZRange},
		{"zrangebyscore", -4, "readonly", 1, 1, 1, g, "1.0.5", "Returns members in a sorted set within a range of scores.", s.cmdZRange},
		{"zrevrangebyscore", -4, "readonly", 1, 1, 1, g, "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", s.cmdZRange},
		{"zrangebylex", -4, "readonly", 1, 1, 1, g, "2.8.9", "Returns members in a sorted set within a lexicographical range.", s.cmdZRange},
		{"zrevrangebylex", -4, "readonly", 1, 1, 1, g, "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", s.cmdZRange},
		{"zremrangebyrank", 4, "write", 1, 1, 1, g, "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", s.cmdZRemRange},
		{"zremrangebyscore", 4, "write", 1, 1, 1, g, "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", s.cmdZRemRange},
		{"zremrangebylex", 4, "write", 1, 1, 1, g, "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", s.cmdZRemRange},
		{"zpopmin", -2, "write fast", 1, 1, 1, g, "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", s.cmdZPop},
		{"zpopmax", -2, "write fast", 1, 1, 1, g, "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", s.cmdZPop},
		{"bzpopmin", -3, "write noscript blocking fast", 1, -2, 1, g, "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", s.bzpopCmd(false)},
		{"bzpopmax", -3, "write noscript blocking fast", 1, -2, 1, g, "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", s.bzpopCmd(true)},
		{"bzmpop", -5, "write blocking movablekeys", 0, 0, 0, g, "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", s.cmdBZMPop},
		{"zmpop", -4, "write movablekeys", 0, 0, 0, g, "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", s.cmdZMPop},
		{"zrandmember", -2, "readonly", 1, 1, 1, g, "6.2.0", "Returns one or more random members from a sorted set.", s.cmdZRandMember},
		{"zscan", -3, "readonly", 1, 1, 1, g, "2.8.0", "Iterates over members and scores of a sorted set.", s.cmdZScan},
		{"zunion", -3, "readonly movablekeys", 0, 0, 0, g, "6.2.0", "Returns the union of multiple sorted sets.", s.cmdZSetOp},
		{"zinter", -3, "readonly movablekeys", 0, 0, 0, g, "6.2.0", "Returns the intersect of multiple sorted sets.", s.cmdZSetOp},
		{"zdiff", -3, "readonly movablekeys", 0, 0, 0, g, "6.2.0", "Returns the difference between multiple sorted sets.", s.cmdZSetOp},
		{"zintercard", -3, "readonly movablekeys", 0, 0, 0, g, "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.", s.cmdZSetOp},
		{"zunionstore", -4, "write denyoom movablekeys", 1, 1, 1, g, "2.0.0", "Stores the union of multiple sorted sets in a key.", s.cmdZSetOp},
		{"zinterstore", -4, "write denyoom movablekeys", 1, 1, 1, g, "2.0.0", "Stores the intersect of multiple sorted sets in a key.", s.cmdZSetOp},
		{"zdiffstore", -4, "write denyoom movablekeys", 1, 1, 1, g, "6.2.0", "Stores the difference of multiple sorted sets in a key.", s.cmdZSetOp},
	}
}

// Redis's error replies of the sorted-set commands.
const (
	msgNotScore     = "ERR min or max is not a float"
	msgNotLex       = "ERR min or max not valid string range item"
	msgNotWeight    = "ERR weight value is not a float"
	msgNotPositive  = "ERR value is out of range, must be positive"
	msgLimitNoRange = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
	msgLexScores    = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
)

// zsetListpackEntries is Redis's zset-max-listpack-entries: ZSCAN returns
// a set this small whole, in score order, as Redis does for a set in its
// compact encoding.
const zsetListpackEntries = 128

// score writes a score: RESP3's double, a bulk string in RESP2, both in
// Redis 7.2's text (formatScore).
func (c *client) score(f float64) {
	if c.proto == 3 {
		c.conn.WriteRaw([]byte("," + formatScore(f) + "\r\n"))
		return
	}
	c.conn.WriteBulkString(formatScore(f))
}

// zentries writes members, with their scores when withScores: a flat
// array in RESP2, an array of [member, score] pairs in RESP3 (nested), as
// Redis's range replies do.
func (c *client) zentries(es []datatype.ZEntry, withScores bool) {
	nested := withScores && c.proto == 3
	switch {
	case withScores && !nested:
		c.array(2 * len(es))
	default:
		c.array(len(es))
	}
	for _, e := range es {
		c.zentry(e, withScores, nested)
	}
}

func (c *client) zentry(e datatype.ZEntry, withScore, nested bool) {
	if nested {
		c.array(2)
	}
	c.bulk(e.Member)
	if withScore {
		c.score(e.Score)
	}
}

// readZSet reads the sorted set at key on the connection's read state. On
// failure it has answered.
func (c *client) readZSet(key []byte) (z datatype.ZView, found, ok bool) {
	r, ok := c.read()
	if !ok {
		return z, false, false
	}
	z, found, err := datatype.ReadZSet(r, key)
	if err != nil {
		c.backendErr(err)
		return z, false, false
	}
	return z, found, true
}

// zsetErr turns the datatype's reply-shaped errors into replies.
func zsetErr(err error) error {
	if errors.Is(err, datatype.ErrNaNScore) {
		return replyError(err.Error())
	}
	return err
}

// checkMembers refuses members above the value limit, as a string value
// would be. On failure it has answered.
func (c *client) checkMembers(members ...[]byte) bool {
	for _, m := range members {
		if err := c.s.b.CheckValue(len(m)); err != nil {
			c.backendErr(err)
			return false
		}
	}
	return true
}

// checkKeys refuses keys in the engines' reserved space among the keys a
// numkeys argument names (the dispatcher checks only fixed positions). On
// failure it has answered.
func (c *client) checkKeys(keys [][]byte) bool {
	for _, k := range keys {
		if engine.IsReserved(k) {
			c.err(msgReserved)
			return false
		}
	}
	return true
}

// zaddPair is one score and member of ZADD.
type zaddPair struct {
	score  float64
	member []byte
}

func (s *Server) cmdZAdd(c *client, args [][]byte) {
	var f datatype.ZAddFlags
	ch := false
	i := 2
opts:
	for ; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "nx":
			f.NX = true
		case "xx":
			f.XX = true
		case "ch":
			ch = true
		case "incr":
			f.Incr = true
		case "gt":
			f.GT = true
		case "lt":
			f.LT = true
		default:
			break opts
		}
	}
	rest := args[i:]
	switch {
	case len(rest) == 0 || len(rest)%2 != 0:
		c.err(msgSyntax)
		return
	case f.NX && f.XX:
		c.err("ERR XX and NX options at the same time are not compatible")
		return
	case (f.GT && f.NX) || (f.LT && f.NX) || (f.GT && f.LT):
		c.err("ERR GT, LT, and/or NX options at the same time are not compatible")
		return
	case f.Incr && len(rest) > 2:
		c.err("ERR INCR option supports a single increment-element pair")
		return
	}
	pairs := make([]zaddPair, len(rest)/2)
	for j := range pairs {
		score, ok := parseScore(rest[2*j])
		if !ok {
			c.err(msgNotFloat)
			return
		}
		pairs[j] = zaddPair{score, rest[2*j+1]}
		if !c.checkMembers(pairs[j].member) {
			return
		}
	}
	s.zadd(c, args[1], pairs, f, ch)
}

// cmdZIncrBy is ZADD key INCR increment member, with Redis's quirk that
// the increment is first read as a ZADD option (so "nx" is a syntax error).
func (s *Server) cmdZIncrBy(c *client, args [][]byte) {
	switch strings.ToLower(string(args[2])) {
	case "nx", "xx", "ch", "incr", "gt", "lt":
		c.err(msgSyntax)
		return
	}
	incr, ok := parseScore(args[2])
	if !ok {
		c.err(msgNotFloat)
		return
	}
	if !c.checkMembers(args[3]) {
		return
	}
	s.zadd(c, args[1], []zaddPair{{incr, args[3]}}, datatype.ZAddFlags{Incr: true}, false)
}

func (s *Server) zadd(c *client, key []byte, pairs []zaddPair, f datatype.ZAddFlags, ch bool) {
	var added, updated, processed int64
	var last float64
	c.writeThen(func(tx engine.Txn) error {
		added, updated, processed, last = 0, 0, 0, 0
		z, err := datatype.OpenZSet(tx, key)
		if err != nil {
			return err
		}
		for _, p := range pairs {
			res, err := z.Add(p.member, p.score, f)
			if err != nil {
				return zsetErr(err)
			}
			added += b2i(res.Added)
			updated += b2i(res.Updated)
			if !res.Skipped {
				processed++
				last = res.Score
			}
		}
		return z.Save()
	}, func() {
		switch {
		case !f.Incr:
			c.int(added + b2i(ch)*updated)
		case processed > 0:
			c.score(last)
		default:
			c.null()
		}
	})
}

func (s *Server) cmdZRem(c *client, args [][]byte) {
	n := int64(0)
	c.writeThen(func(tx engine.Txn) error {
		n = 0
		z, err := datatype.OpenZSet(tx, args[1])
		if err != nil || !z.Exists() {
			return err
		}
		for _, m := range args[2:] {
			ok, err := z.Remove(m)
			if err != nil {
				return err
			}
			n += b2i(ok)
			if z.Meta.Len == 0 {
				break
			}
		}
		return z.Save()
	}, func() {
		c.int(n)
	})
}

func (s *Server) cmdZScore(c *client, args [][]byte) {
	z, found, ok := c.readZSet(args[1])
	if !ok {
		return
	}
	if !found {
		c.null()
		return
	}
	f, ok, err := z.Score(args[2])
	switch {
	case err != nil:
		c.backendErr(err)
	case !ok:
		c.null()
	default:
		c.score(f)
	}
}

func (s *Server) cmdZMScore(c *client, args [][]byte) {
	z, found, ok := c.readZSet(args[1])
	if !ok {
		return
	}
	scores := make([]float64, 0, len(args)-2)
	have := make([]bool, 0, len(args)-2)
	for _, m := range args[2:] {
		f, ok := 0.0, false
		if found {
			var err error
			if f, ok, err = z.Score(m); err != nil {
				c.backendErr(err)
				return
			}
		}
		scores, have = append(scores, f), append(have, ok)
	}
	c.array(len(scores))
	for i, f := range scores {
		if have[i] {
			c.score(f)
		} else {
			c.null()
		}
	}
}

func (s *Server) cmdZCard(c *client, args [][]byte) {
	z, found, ok := c.readZSet(args[1])
	if !ok {
		return
	}
	if !found {
		c.int(0)
		return
	}
	c.int(z.Len())
}

func (s *Server) cmdZCount(c *client, args [][]byte) {
	r, ok := parseScoreRange(args[2], args[3])
	if !ok {
		c.err(msgNotScore)
		return
	}
	z, found, ok := c.readZSet(args[1])
	if !ok {
		return
	}
	n := int64(0)
	if found {
		var err error
		if n, err = z.CountByScore(r); err != nil {
			c.backendErr(err)
			return
		}
	}
	c.int(n)
}

func (s *Server) cmdZLexCount(c *client, args [][]byte) {
	r, ok := parseLexRange(args[2], args[3])
	if !ok {
		c.err(msgNotLex)
		return
	}
	z, found, ok := c.readZSet(args[1])
	if !ok {
		return
	}
	n := int64(0)
	if found {
		var err error
		if n, err = z.CountByLex(r); err != nil {
			c.backendErr(err)
			return
		}
	}
	c.int(n)
}

// cmdZRank serves ZRANK and ZREVRANK [WITHSCORE] (Redis 7.2).
func (s *Server) cmdZRank(c *client, args [][]byte) {
	rev := strings.EqualFold(string(args[0]), "zrevrank")
	withScore := false
	switch {
	case len(args) > 4:
		c.arityErr(strings.ToLower(string(args[0])))
		return
	case len(args) == 4:
		if !strings.EqualFold(string(args[3]), "withscore") {
			c.err(msgSyntax)
			return
		}
		withScore = true
	}
	missing := c.null
	if withScore {
		missing = c.nullArray
	}
	z, found, ok := c.readZSet(args[1])
	if !ok {
		return
	}
	if !found {
		missing()
		return
	}
	rank, score, found, err := z.Rank(args[2], rev)
	switch {
	case err != nil:
		c.backendErr(err)
	case !found:
		missing()
	case withScore:
		c.array(2)
		c.int(rank)
		c.score(score)
	default:
		c.int(rank)
	}
}

// Kinds of range of the ZRANGE family.
const (
	zrAuto = iota
	zrRank
	zrScore
	zrLex
)

// zrangeReq is a parsed ZRANGE-family command.
type zrangeReq struct {
	kind       int
	rev        bool
	withScores bool
	offset     int64
	limit      int64 // -1: no limit
	start, end int64 // by rank
	score      datatype.ScoreRange
	lex        datatype.LexRange
}

// zrangeShapes gives each command of the family its fixed kind and
// direction (ZRANGE and ZRANGESTORE take them as options).
var zrangeShapes = map[string]struct {
	kind int
	rev  int // 0: an option; 1: forward; 2: reverse
}{
	"zrange": {zrAuto, 0}, "zrangestore": {zrAuto, 0}, "zrevrange": {zrRank, 2},
	"zrangebyscore": {zrScore, 1}, "zrevrangebyscore": {zrScore, 2},
	"zrangebylex": {zrLex, 1}, "zrevrangebylex": {zrLex, 2},
}

// parseZRange parses args (key, min, max, options...) in Redis's order:
// options, their conflicts, then the range. store refuses WITHSCORES.
func parseZRange(name string, args [][]byte, store bool) (zrangeReq, error) {
	shape := zrangeShapes[name]
	q := zrangeReq{kind: shape.kind, rev: shape.rev == 2, limit: -1}
	for j := 3; j < len(args); j++ {
		left := len(args) - j - 1
		opt := strings.ToLower(string(args[j]))
		switch {
		case !store && opt == "withscores":
			q.withScores = true
		case opt == "limit" && left >= 2:
			var ok1, ok2 bool
			q.offset, ok1 = parseInt(args[j+1])
			q.limit, ok2 = parseInt(args[j+2])
			if !ok1 || !ok2 {
				return q, replyError(msgNotInt)
			}
			j += 2
		case shape.rev == 0 && opt == "rev":
			// Repeated, it is refused: the direction is no longer "auto".
			shape.rev, q.rev = 2, true
		case q.kind == zrAuto && opt == "bylex":
			q.kind = zrLex
		case q.kind == zrAuto && opt == "byscore":
			q.kind = zrScore
		default:
			return q, replyError(msgSyntax)
		}
	}
	if q.kind == zrAuto {
		q.kind = zrRank
	}
	switch {
	case q.limit != -1 && q.kind == zrRank:
		return q, replyError(msgLimitNoRange)
	case q.withScores && q.kind == zrLex:
		return q, replyError(msgLexScores)
	}
	lo, hi := args[1], args[2]
	if q.rev && q.kind != zrRank {
		lo, hi = hi, lo // given as max, min
	}
	var ok bool
	switch q.kind {
	case zrRank:
		var ok2 bool
		q.start, ok = parseInt(lo)
		q.end, ok2 = parseInt(hi)
		if !ok || !ok2 {
			return q, replyError(msgNotInt)
		}
	case zrScore:
		if q.score, ok = parseScoreRange(lo, hi); !ok {
			return q, replyError(msgNotScore)
		}
	case zrLex:
		if q.lex, ok = parseLexRange(lo, hi); !ok {
			return q, replyError(msgNotLex)
		}
	}
	return q, nil
}

// run returns the members the request selects in z.
func (q zrangeReq) run(z datatype.ZView) ([]datatype.ZEntry, error) {
	switch q.kind {
	case zrScore:
		return z.ByScore(q.score, q.rev, q.offset, q.limit)
	case zrLex:
		return z.ByLex(q.lex, q.rev, q.offset, q.limit)
	}
	start, end, ok := rankRange(q.start, q.end, z.Len())
	if !ok {
		return nil, nil
	}
	return z.ByRank(start, end, q.rev)
}

// rankRange clamps a start and end index (negative ones count from the
// end) to a set of n members as Redis does; ok is false when the range is
// empty.
func rankRange(start, end, n int64) (int64, int64, bool) {
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start = max(start, 0)
	if start > end || start >= n {
		return 0, 0, false
	}
	return start, min(end, n-1), true
}

// cmdZRange serves ZRANGE, ZRANGESTORE, ZREVRANGE, Z[REV]RANGEBYSCORE and
// Z[REV]RANGEBYLEX.
func (s *Server) cmdZRange(c *client, args [][]byte) {
	name := strings.ToLower(string(args[0]))
	if name == "zrangestore" {
		s.zrangeStore(c, args)
		return
	}
	q, err := parseZRange(name, args[1:], false)
	if err != nil {
		c.backendErr(err)
		return
	}
	z, found, ok := c.readZSet(args[1])
	if !ok {
		return
	}
	if !found {
		c.array(0)
		return
	}
	es, err := q.run(z)
	if err != nil {
		c.backendErr(err)
		return
	}
	c.zentries(es, q.withScores)
}

// zrangeStore is ZRANGESTORE dst src min max [options]: the selected
// members replace dst (an empty selection deletes it).
func (s *Server) zrangeStore(c *client, args [][]byte) {
	dst := args[1]
	q, err := parseZRange("zrangestore", args[2:], true)
	if err != nil {
		c.backendErr(err)
		return
	}
	n := int64(0)
	if c.write(func(tx engine.Txn) error {
		n = 0
		sc, ok := tx.(datatype.Scanner)
		if !ok {
			return datatype.ErrUnsupported
		}
		src, found, err := datatype.ReadZSet(sc, args[2])
		if err != nil {
			return err
		}
		var es []datatype.ZEntry
		if found {
			if es, err = q.run(src); err != nil {
				return err
			}
		}
		n = int64(len(es))
		return storeZSet(tx, dst, es)
	}) {
		c.int(n)
	}
}

// storeZSet replaces whatever dst holds with a sorted set of es (entries
// with distinct members), or deletes it when es is empty. The old value's
// elements, if any, are the sweeper's.
func storeZSet(tx engine.Txn, dst []byte, es []datatype.ZEntry) error {
	_, exists, err := tx.Get(dst)
	if err != nil {
		return err
	}
	if exists {
		tx.Del(dst)
	}
	if len(es) == 0 {
		return nil
	}
	z, err := datatype.OpenZSet(tx, dst)
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := z.PutNew(e); err != nil {
			return err
		}
	}
	return z.Save()
}

// cmdZRemRange serves ZREMRANGEBYRANK, ZREMRANGEBYSCORE and ZREMRANGEBYLEX.
func (s *Server) cmdZRemRange(c *client, args [][]byte) {
	q := zrangeReq{limit: -1}
	var ok bool
	switch strings.ToLower(string(args[0])) {
	case "zremrangebyrank":
		q.kind = zrRank
		var ok2 bool
		q.start, ok = parseInt(args[2])
		q.end, ok2 = parseInt(args[3])
		if !ok || !ok2 {
			c.err(msgNotInt)
			return
		}
	case "zremrangebyscore":
		q.kind = zrScore
		if q.score, ok = parseScoreRange(args[2], args[3]); !ok {
			c.err(msgNotScore)
			return
		}
	default:
		q.kind = zrLex
		if q.lex, ok = parseLexRange(args[2], args[3]); !ok {
			c.err(msgNotLex)
			return
		}
	}
	n := int64(0)
	if c.write(func(tx engine.Txn) error {
		n = 0
		z, err := datatype.OpenZSet(tx, args[1])
		if err != nil || !z.Exists() {
			return err
		}
		es, err := q.run(z.View())
		if err != nil {
			return err
		}
		z.RemoveAll(es)
		n = int64(len(es))
		return z.Save()
	}) {
		c.int(n)
	}
}

// cmdZPop serves ZPOPMIN and ZPOPMAX key [count].
func (s *Server) cmdZPop(c *client, args [][]byte) {
	if len(args) > 3 {
		c.err(msgSyntax)
		return
	}
	count, hasCount := int64(1), len(args) == 3
	if hasCount {
		var ok bool
		if count, ok = parseInt(args[2]); !ok || count < 0 {
			c.err(msgNotPositive)
			return
		}
	}
	high := strings.EqualFold(string(args[0]), "zpopmax")
	var popped []datatype.ZEntry
	c.writeThen(func(tx engine.Txn) error {
		popped = nil
		z, err := datatype.OpenZSet(tx, args[1])
		if err != nil || !z.Exists() || count == 0 {
			return err
		}
		if popped, err = z.Pop(count, high); err != nil {
			return err
		}
		return z.Save()
	}, func() {
		// RESP3 pairs only with a count: a single pop is [member, score].
		nested := hasCount && c.proto == 3
		if nested {
			c.array(len(popped))
		} else {
			c.array(2 * len(popped))
		}
		for _, e := range popped {
			c.zentry(e, true, nested)
		}
	})
}

// cmdZMPop is ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: it pops
// from the first non-empty set.
func (s *Server) cmdZMPop(c *client, args [][]byte) {
	keys, high, count, ok := c.parseZMPop(args[1:])
	if !ok {
		return
	}
	if !c.zpopFirst(keys, high, count, c.zmpopReply) {
		c.nullArray()
	}
}

// cmdBZMPop is BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]:
// ZMPOP that waits for a member (blocking.go).
func (s *Server) cmdBZMPop(c *client, args [][]byte) {
	// Redis reads the timeout first.
	d, ok := c.timeout(args[1])
	if !ok {
		return
	}
	keys, high, count, ok := c.parseZMPop(args[2:])
	if !ok {
		return
	}
	r := c.blockOnKeys(keys, d, func() bool {
		return c.zpopFirst(keys, high, count, c.zmpopReply)
	})
	c.blockedNoPop(r, c.nullArray)
}

// bzpopCmd serves BZPOPMIN and BZPOPMAX key [key ...] timeout: one member
// from the first non-empty set, answered [key, member, score], waiting
// for one (blocking.go).
func (s *Server) bzpopCmd(high bool) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		d, ok := c.timeout(args[len(args)-1])
		if !ok {
			return
		}
		keys := args[1 : len(args)-1]
		r := c.blockOnKeys(keys, d, func() bool {
			return c.zpopFirst(keys, high, 1, func(key []byte, popped []datatype.ZEntry) {
				c.array(3)
				c.bulk(key)
				c.zentry(popped[0], true, false)
			})
		})
		c.blockedNoPop(r, c.nullArray)
	}
}

func (c *client) zmpopReply(key []byte, popped []datatype.ZEntry) {
	c.array(2)
	c.bulk(key)
	c.array(len(popped))
	for _, e := range popped {
		c.zentry(e, true, true)
	}
}

// zpopFirst pops up to count members from the first non-empty set of keys
// in one write and answers through reply; it reports whether it answered
// (popped, or an error such as WRONGTYPE) — false when every set was
// empty, having written and answered nothing.
func (c *client) zpopFirst(keys [][]byte, high bool, count int64, reply func(key []byte, popped []datatype.ZEntry)) bool {
	return popFromFirst(c, keys, func(tx engine.Txn, k []byte) ([]datatype.ZEntry, bool, error) {
		z, err := datatype.OpenZSet(tx, k)
		if err != nil || !z.Exists() {
			return nil, false, err
		}
		popped, err := z.Pop(count, high)
		if err != nil {
			return nil, false, err
		}
		return popped, true, z.Save()
	}, reply)
}

// parseZMPop parses numkeys key [key ...] MIN|MAX [COUNT count] (ZMPOP's
// arguments, BZMPOP's after the timeout); on failure it has answered.
func (c *client) parseZMPop(args [][]byte) (keys [][]byte, high bool, count int64, ok bool) {
	numkeys, ok := parseInt(args[0])
	if !ok || numkeys < 1 {
		c.err("ERR numkeys should be greater than 0")
		return nil, false, 0, false
	}
	if numkeys >= int64(len(args))-1 {
		c.err(msgSyntax)
		return nil, false, 0, false
	}
	keys = args[1 : 1+numkeys]
	where := strings.ToLower(string(args[1+numkeys]))
	if where != "min" && where != "max" {
		c.err(msgSyntax)
		return nil, false, 0, false
	}
	count = -1
	for j := 2 + int(numkeys); j < len(args); j++ {
		if count != -1 || !strings.EqualFold(string(args[j]), "count") || j+1 >= len(args) {
			c.err(msgSyntax)
			return nil, false, 0, false
		}
		j++
		if count, ok = parseInt(args[j]); !ok || count < 1 {
			c.err("ERR count should be greater than 0")
			return nil, false, 0, false
		}
	}
	if count == -1 {
		count = 1
	}
	if !c.checkKeys(keys) {
		return nil, false, 0, false
	}
	return keys, where == "max", count, true
}

// zrandFlush is how much reply ZRANDMEMBER with a large negative count
// buffers before sending: Redis streams such replies too.
const zrandFlush = 1 << 20

// cmdZRandMember is ZRANDMEMBER key [count [WITHSCORES]]. A positive count
// gives distinct members, a negative one may repeat them. Picking costs a
// walk of the index to the chosen ranks (one pass for a whole reply).
func (s *Server) cmdZRandMember(c *client, args [][]byte) {
	if len(args) == 2 {
		z, found, ok := c.readZSet(args[1])
		if !ok {
			return
		}
		if !found {
			c.null()
			return
		}
		es, err := z.AtRanks([]int64{rand.Int64N(z.Len())})
		if err != nil {
			c.backendErr(err)
			return
		}
		c.bulk(es[0].Member)
		return
	}
	l, ok := parseInt(args[2])
	switch {
	case !ok:
		c.err(msgNotInt)
		return
	case l == math.MinInt64:
		c.err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		return
	case len(args) > 4 || (len(args) == 4 && !strings.EqualFold(string(args[3]), "withscores")):
		c.err(msgSyntax)
		return
	}
	withScores := len(args) == 4
	if withScores && (l < -math.MaxInt64/2 || l > math.MaxInt64/2) {
		c.err("ERR value is out of range")
		return
	}
	z, found, ok := c.readZSet(args[1])
	if !ok {
		return
	}
	if !found || l == 0 {
		c.array(0)
		return
	}
	n := z.Len()
	nested := withScores && c.proto == 3
	header := func(k int64) {
		if withScores && !nested {
			k *= 2
		}
		c.array(int(k))
	}
	if l > 0 && l >= n {
		// The whole set, from the highest score down, as Redis's
		// iterator gives it.
		es, err := z.ByRank(0, n-1, true)
		if err != nil {
			c.backendErr(err)
			return
		}
		header(n)
		for _, e := range es {
			c.zentry(e, withScores, nested)
		}
		return
	}
	if l > 0 {
		// l distinct ranks, in random order.
		var picks []int64
		if n > 4*l {
			// Few of many: draw distinct ranks rather than permute all.
			seen := make(map[int64]bool, l)
			for int64(len(picks)) < l {
				if r := rand.Int64N(n); !seen[r] {
					seen[r] = true
					picks = append(picks, r)
				}
			}
		} else {
			for _, r := range rand.Perm(int(n))[:l] {
				picks = append(picks, int64(r))
			}
		}
		es, err := z.AtRanks(picks)
		if err != nil {
			c.backendErr(err)
			return
		}
		header(l)
		for _, e := range es {
			c.zentry(e, withScores, nested)
		}
		return
	}
	// -l picks with repetition, in batches (the count may be far larger
	// than the set), each resolved by one pass.
	total := -l
	header(total)
	for done := int64(0); done < total; {
		batch := min(total-done, 1000)
		picks := make([]int64, batch)
		for i := range picks {
			picks[i] = rand.Int64N(n)
		}
		es, err := z.AtRanks(picks)
		if err != nil {
			// The header is out: a connection error is all that is left
			// to say, as Redis would close a client it cannot answer.
			c.s.log.Error("ZRANDMEMBER read failed mid-reply", "err", err)
			c.quit = true
			_ = c.conn.Close()
			return
		}
		for _, e := range es {
			c.zentry(e, withScores, nested)
		}
		done += batch
		if len(c.conn.out) >= zrandFlush {
			if err := c.conn.flush(); err != nil {
				return // the client is gone
			}
		}
	}
}

// zscanCursorTag marks ZSCAN's entries in the server's cursor table (SCAN
// keeps keys there), so another command's cursor is not taken for one.
const zscanCursorTag = "\x00zscan\x00"

// cmdZScan is ZSCAN key cursor [MATCH pattern] [COUNT count]. A set of at
// most zset-max-listpack-entries members comes whole, in score order,
// whatever the cursor, as Redis returns a set in its compact encoding; a
// larger one comes in
// member order, COUNT members a call, its cursor naming the last member
// returned (so members present throughout are returned exactly once, and
// changing a score does not move a member).
func (s *Server) cmdZScan(c *client, args [][]byte) {
	cursor, err := strconv.ParseUint(string(args[2]), 10, 64)
	if err != nil {
		c.err(msgInvalidCursr)
		return
	}
	// Redis reads the key before the options: a missing key answers an
	// empty scan whatever they are, another type WRONGTYPE.
	z, found, ok := c.readZSet(args[1])
	if !ok {
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
	small := z.Len() <= zsetListpackEntries
	var from []byte
	if cursor != 0 && !small {
		last, ok := s.cursors.get(cursor)
		if !ok || !strings.HasPrefix(string(last), zscanCursorTag) {
			c.err(msgInvalidCursr)
			return
		}
		// Resume just after the last member returned.
		from = append(append([]byte(nil), last[len(zscanCursorTag):]...), 0)
	}
	var out []datatype.ZEntry
	keep := func(e datatype.ZEntry) {
		if pattern == nil || globMatch(pattern, e.Member) {
			out = append(out, e)
		}
	}
	next := uint64(0)
	if small {
		// Whatever the cursor, as Redis answers a set in its compact
		// encoding (a cursor of this set from when it was larger included).
		err = z.Ascend(nil, func(e datatype.ZEntry) bool { keep(e); return true })
	} else {
		var last []byte
		examined, more := int64(0), false
		err = z.Each(from, func(member []byte, score float64) bool {
			if examined == count {
				more = true
				return false
			}
			examined++
			last = append(last[:0], member...)
			keep(datatype.ZEntry{Member: append([]byte(nil), member...), Score: score})
			return true
		})
		if more {
			next = s.cursors.put(append([]byte(zscanCursorTag), last...))
		}
	}
	if err != nil {
		c.backendErr(err)
		return
	}
	c.array(2)
	c.bulkString(strconv.FormatUint(next, 10))
	c.array(2 * len(out))
	for _, e := range out {
		c.bulk(e.Member)
		c.bulkString(formatScore(e.Score))
	}
}

// zsetOp is a parsed ZUNION/ZINTER/ZDIFF/ZINTERCARD and STORE command.
type zsetOp struct {
	name       string
	op         string // union, inter, diff
	dst        []byte // the STORE forms
	card       bool   // ZINTERCARD
	keys       [][]byte
	rest       [][]byte // the options, parsed once the keys are read
	agg        datatype.Aggregate
	weights    []float64
	withScores bool
	limit      int64
}

// parseZSetOpKeys parses the part before the options: numkeys and the keys.
func parseZSetOpKeys(args [][]byte) (zsetOp, error) {
	name := strings.ToLower(string(args[0]))
	o := zsetOp{name: name}
	at := 1
	if strings.HasSuffix(name, "store") {
		o.dst, at = args[1], 2
	}
	switch {
	case strings.HasPrefix(name, "zunion"):
		o.op = "union"
	case strings.HasPrefix(name, "zdiff"):
		o.op = "diff"
	default:
		o.op, o.card = "inter", name == "zintercard"
	}
	n, ok := parseInt(args[at])
	switch {
	case !ok:
		return o, replyError(msgNotInt)
	case n < 1:
		return o, replyError("ERR at least 1 input key is needed for '" + name + "' command")
	case n > int64(len(args)-at-1):
		return o, replyError(msgSyntax)
	}
	o.keys = args[at+1 : at+1+int(n)]
	o.rest = args[at+1+int(n):]
	return o, nil
}

// parseOptions parses WEIGHTS, AGGREGATE, WITHSCORES and LIMIT where the
// command takes them, in Redis's way (after the keys were read, so a
// WRONGTYPE key is reported first).
func (o *zsetOp) parseOptions() error {
	o.weights = slices.Repeat([]float64{1}, len(o.keys))
	full := o.op != "diff" && !o.card
	for j := 0; j < len(o.rest); {
		left := len(o.rest) - j
		opt := strings.ToLower(string(o.rest[j]))
		switch {
		case full && left >= len(o.keys)+1 && opt == "weights":
			for i := range o.keys {
				f, ok := parseScore(o.rest[j+1+i])
				if !ok {
					return replyError(msgNotWeight)
				}
				o.weights[i] = f
			}
			j += 1 + len(o.keys)
		case full && left >= 2 && opt == "aggregate":
			switch strings.ToLower(string(o.rest[j+1])) {
			case "sum":
				o.agg = datatype.AggSum
			case "min":
				o.agg = datatype.AggMin
			case "max":
				o.agg = datatype.AggMax
			default:
				return replyError(msgSyntax)
			}
			j += 2
		case o.dst == nil && !o.card && opt == "withscores":
			o.withScores = true
			j++
		case o.card && left >= 2 && opt == "limit":
			n, ok := parseInt(o.rest[j+1])
			if !ok || n < 0 {
				return replyError("ERR LIMIT can't be negative")
			}
			o.limit = n
			j += 2
		default:
			return replyError(msgSyntax)
		}
	}
	return nil
}

// run reads the sources from s and combines them.
func (o *zsetOp) run(s datatype.Scanner) (es []datatype.ZEntry, card int64, err error) {
	srcs := make([]datatype.ZSource, len(o.keys))
	for i, k := range o.keys {
		if srcs[i], err = datatype.OpenZSource(s, k); err != nil {
			return nil, 0, err
		}
	}
	if err := o.parseOptions(); err != nil {
		return nil, 0, err
	}
	for i := range srcs {
		srcs[i].Weight = o.weights[i]
	}
	switch o.op {
	case "union":
		es, err = datatype.ZUnion(srcs, o.agg)
	case "diff":
		es, err = datatype.ZDiff(srcs)
	default:
		es, card, err = datatype.ZInter(srcs, o.agg, o.card, o.limit)
	}
	return es, card, err
}

// cmdZSetOp serves ZUNION, ZINTER, ZDIFF, ZINTERCARD and ZUNIONSTORE,
// ZINTERSTORE, ZDIFFSTORE. The result is built in memory, as Redis builds
// it; ZINTER reads its smallest input whole and looks members up in the
// others.
func (s *Server) cmdZSetOp(c *client, args [][]byte) {
	o, err := parseZSetOpKeys(args)
	if err != nil {
		c.backendErr(err)
		return
	}
	if !c.checkKeys(o.keys) {
		return
	}
	if o.dst != nil {
		n := int64(0)
		if c.write(func(tx engine.Txn) error {
			sc, ok := tx.(datatype.Scanner)
			if !ok {
				return datatype.ErrUnsupported
			}
			es, _, err := o.run(sc)
			if err != nil {
				return err
			}
			n = int64(len(es))
			return storeZSet(tx, o.dst, es)
		}) {
			c.int(n)
		}
		return
	}
	r, ok := c.read()
	if !ok {
		return
	}
	es, card, err := o.run(r)
	if err != nil {
		c.backendErr(err)
		return
	}
	if o.card {
		c.int(card)
		return
	}
	c.zentries(es, o.withScores)
}
