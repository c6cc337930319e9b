package resp

import (
	"bytes"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// listCommands are the list family's rows of the command table.
func (s *Server) listCommands() []cmdDef {
	return []cmdDef{
		{"lpush", -3, "write denyoom fast", 1, 1, 1, "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", s.pushCmd(true, false)},
		{"rpush", -3, "write denyoom fast", 1, 1, 1, "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", s.pushCmd(false, false)},
		{"lpushx", -3, "write denyoom fast", 1, 1, 1, "list", "2.2.0", "Prepends one or more elements to a list only when the list exists.", s.pushCmd(true, true)},
		{"rpushx", -3, "write denyoom fast", 1, 1, 1, "list", "2.2.0", "Appends an element to a list only when the list exists.", s.pushCmd(false, true)},
		{"lpop", -2, "write fast", 1, 1, 1, "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", s.popCmd(true)},
		{"rpop", -2, "write fast", 1, 1, 1, "list", "1.0.0", "Returns and removes the last elements of the list. Deletes the list if the last element was popped.", s.popCmd(false)},
		{"llen", 2, "readonly fast", 1, 1, 1, "list", "1.0.0", "Returns the length of a list.", s.cmdLLen},
		{"lrange", 4, "readonly", 1, 1, 1, "list", "1.0.0", "Returns a range of elements from a list.", s.cmdLRange},
		{"lindex", 3, "readonly", 1, 1, 1, "list", "1.0.0", "Returns an element from a list by its index.", s.cmdLIndex},
		{"lset", 4, "write denyoom", 1, 1, 1, "list", "1.0.0", "Sets the value of an element in a list by its index.", s.cmdLSet},
		{"linsert", 5, "write denyoom", 1, 1, 1, "list", "2.2.0", "Inserts an element before or after another element in a list.", s.cmdLInsert},
		{"lrem", 4, "write", 1, 1, 1, "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", s.cmdLRem},
		{"ltrim", 4, "write", 1, 1, 1, "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", s.cmdLTrim},
		{"lpos", -3, "readonly", 1, 1, 1, "list", "6.0.6", "Returns the index of matching elements in a list.", s.cmdLPos},
		{"lmove", 5, "write denyoom", 1, 2, 1, "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", s.cmdLMove},
		{"rpoplpush", 3, "write denyoom", 1, 2, 1, "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", s.cmdRPopLPush},
		{"lmpop", -4, "write movablekeys", 0, 0, 0, "list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", s.cmdLMPop},
		{"blpop", -3, "write noscript blocking", 1, -2, 1, "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", s.bpopCmd(true)},
		{"brpop", -3, "write noscript blocking", 1, -2, 1, "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", s.bpopCmd(false)},
		{"blmove", 6, "write denyoom noscript blocking", 1, 2, 1, "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", s.cmdBLMove},
		{"brpoplpush", 4, "write denyoom noscript blocking", 1, 2, 1, "list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", s.cmdBRPopLPush},
		{"blmpop", -5, "write blocking movablekeys", 0, 0, 0, "list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", s.cmdBLMPop},
	}
}

// Redis 7.2's list errors.
const (
	msgPopCount     = "ERR value is out of range, must be positive"
	msgIndexRange   = "ERR index out of range"
	msgRankZero     = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
	msgRankRange    = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
	msgCountNeg     = "ERR COUNT can't be negative"
	msgMaxlenNeg    = "ERR MAXLEN can't be negative"
	msgNumkeys      = "ERR numkeys should be greater than 0"
	msgMPopCount    = "ERR count should be greater than 0"
	msgTimeoutFloat = "ERR timeout is not a float or out of range"
	msgTimeoutNeg   = "ERR timeout is negative"
	msgTimeoutRange = "ERR timeout is out of range"
)

// checkValues answers the first element above the value size limit.
func (c *client) checkValues(vals [][]byte) bool {
	for _, v := range vals {
		if err := c.s.b.CheckValue(len(v)); err != nil {
			c.backendErr(err)
			return false
		}
	}
	return true
}

// side parses LEFT or RIGHT.
func side(b []byte) (left, ok bool) {
	switch strings.ToLower(string(b)) {
	case "left":
		return true, true
	case "right":
		return false, true
	}
	return false, false
}

// bulks answers an array of bulk strings.
func (c *client) bulks(vals [][]byte) {
	c.array(len(vals))
	for _, v := range vals {
		c.bulk(v)
	}
}

// readList opens key's list for a read command: found is false (nothing
// answered) when the key does not exist; ok is false when it answered an
// error.
func (c *client) readList(key []byte) (l datatype.ListView, found, ok bool) {
	r, ok := c.read()
	if !ok {
		return l, false, false
	}
	l, found, err := datatype.ReadList(r, key)
	if err != nil {
		c.backendErr(err)
		return l, false, false
	}
	return l, found, true
}

func (s *Server) pushCmd(left, onlyExisting bool) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		key, elems := args[1], args[2:]
		if !c.checkValues(elems) {
			return
		}
		var n int64
		c.writeThen(func(tx engine.Txn) error {
			n = 0
			l, err := datatype.OpenList(tx, key)
			if err != nil || (onlyExisting && !l.Exists()) {
				return err
			}
			if err := l.Push(left, elems); err != nil {
				return err
			}
			n = l.Len()
			return l.Save()
		}, func() {
			c.int(n)
		})
	}
}

func (s *Server) popCmd(left bool) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		count, withCount := int64(1), len(args) > 2
		if len(args) > 3 {
			c.arityErr(strings.ToLower(string(args[0])))
			return
		}
		if withCount {
			n, ok := parseInt(args[2])
			if !ok || n < 0 {
				c.err(msgPopCount)
				return
			}
			count = n
		}
		var out [][]byte
		var found bool
		c.writeThen(func(tx engine.Txn) error {
			out, found = nil, false
			l, err := datatype.OpenList(tx, args[1])
			if err != nil || !l.Exists() {
				return err
			}
			found = true
			if out, err = l.Pop(left, count); err != nil {
				return err
			}
			return l.Save()
		}, func() {
			switch {
			case !withCount && len(out) == 0:
				c.null()
			case !withCount:
				c.bulk(out[0])
			case !found:
				c.nullArray()
			default:
				c.bulks(out)
			}
		})
	}
}

func (s *Server) cmdLLen(c *client, args [][]byte) {
	l, found, ok := c.readList(args[1])
	if !ok {
		return
	}
	if !found {
		c.int(0)
		return
	}
	c.int(l.Len())
}

func (s *Server) cmdLRange(c *client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	stop, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.err(msgNotInt)
		return
	}
	l, found, ok := c.readList(args[1])
	if !ok {
		return
	}
	if !found {
		c.array(0)
		return
	}
	n := l.Len()
	if start < 0 {
		start = max(start+n, 0)
	}
	if stop < 0 {
		stop += n
	}
	stop = min(stop, n-1)
	if start > stop {
		c.array(0)
		return
	}
	// Copied first: a read that fails halfway must not leave half an
	// array on the connection.
	out := make([][]byte, 0, stop-start+1)
	if err := l.Range(start, stop, func(_ int64, v []byte) bool {
		out = append(out, bytes.Clone(v))
		return true
	}); err != nil {
		c.backendErr(err)
		return
	}
	c.bulks(out)
}

func (s *Server) cmdLIndex(c *client, args [][]byte) {
	// Redis looks the key up before it parses the index.
	l, found, ok := c.readList(args[1])
	if !ok {
		return
	}
	if !found {
		c.null()
		return
	}
	i, ok := parseInt(args[2])
	if !ok {
		c.err(msgNotInt)
		return
	}
	if i < 0 {
		i += l.Len()
	}
	if i < 0 || i >= l.Len() {
		c.null()
		return
	}
	v, err := l.Index(i)
	if err != nil {
		c.backendErr(err)
		return
	}
	c.bulk(v)
}

func (s *Server) cmdLSet(c *client, args [][]byte) {
	if !c.checkValues(args[3:]) {
		return
	}
	if !c.write(func(tx engine.Txn) error {
		l, err := datatype.OpenList(tx, args[1])
		if err != nil {
			return err
		}
		if !l.Exists() {
			return replyError(msgNoSuchKey)
		}
		i, ok := parseInt(args[2])
		if !ok {
			return replyError(msgNotInt)
		}
		if i < 0 {
			i += l.Len()
		}
		if i < 0 || i >= l.Len() {
			return replyError(msgIndexRange)
		}
		if err := l.Set(i, args[3]); err != nil {
			return err
		}
		return l.Save()
	}) {
		return
	}
	c.ok()
}

func (s *Server) cmdLInsert(c *client, args [][]byte) {
	var before bool
	switch strings.ToLower(string(args[2])) {
	case "before":
		before = true
	case "after":
	default:
		c.err(msgSyntax)
		return
	}
	if !c.checkValues(args[4:]) {
		return
	}
	var n int64
	if !c.write(func(tx engine.Txn) error {
		n = 0
		l, err := datatype.OpenList(tx, args[1])
		if err != nil || !l.Exists() {
			return err
		}
		found, err := l.Insert(args[3], args[4], before)
		if err != nil {
			return err
		}
		if !found {
			n = -1
			return nil
		}
		n = l.Len()
		return l.Save()
	}) {
		return
	}
	c.int(n)
}

func (s *Server) cmdLRem(c *client, args [][]byte) {
	count, ok := parseInt(args[2])
	if !ok {
		c.err(msgNotInt)
		return
	}
	var n int64
	if !c.write(func(tx engine.Txn) error {
		n = 0
		l, err := datatype.OpenList(tx, args[1])
		if err != nil || !l.Exists() {
			return err
		}
		if n, err = l.Remove(count, args[3]); err != nil {
			return err
		}
		return l.Save()
	}) {
		return
	}
	c.int(n)
}

func (s *Server) cmdLTrim(c *client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	stop, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.err(msgNotInt)
		return
	}
	if !c.write(func(tx engine.Txn) error {
		l, err := datatype.OpenList(tx, args[1])
		if err != nil || !l.Exists() {
			return err
		}
		n := l.Len()
		from, to := start, stop
		if from < 0 {
			from = max(from+n, 0)
		}
		if to < 0 {
			to += n
		}
		to = min(to, n-1)
		if err := l.Trim(from, to); err != nil { // from > to empties it
			return err
		}
		return l.Save()
	}) {
		return
	}
	c.ok()
}

func (s *Server) cmdLPos(c *client, args [][]byte) {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(args); j += 2 {
		if j+1 >= len(args) {
			c.err(msgSyntax)
			return
		}
		v := args[j+1]
		switch strings.ToLower(string(args[j])) {
		case "rank":
			n, ok := parseInt(v)
			switch {
			case !ok:
				c.err(msgNotInt)
				return
			case n == math.MinInt64:
				// -n would not fit: Redis 7.2 refuses it.
				c.err(msgRankRange)
				return
			case n == 0:
				c.err(msgRankZero)
				return
			}
			rank = n
		case "count":
			n, ok := parseInt(v)
			if !ok || n < 0 {
				c.err(msgCountNeg)
				return
			}
			count = n
		case "maxlen":
			n, ok := parseInt(v)
			if !ok || n < 0 {
				c.err(msgMaxlenNeg)
				return
			}
			maxlen = n
		default:
			c.err(msgSyntax)
			return
		}
	}
	l, found, ok := c.readList(args[1])
	if !ok {
		return
	}
	var pos []int64
	if found {
		var err error
		want := count
		if want < 0 {
			want = 1 // no COUNT: the first match only
		}
		if pos, err = l.Pos(args[2], rank, want, maxlen); err != nil {
			c.backendErr(err)
			return
		}
	}
	if count < 0 {
		if len(pos) == 0 {
			c.null()
			return
		}
		c.int(pos[0])
		return
	}
	c.array(len(pos))
	for _, p := range pos {
		c.int(p)
	}
}

// moveElem pops one element from an end of src and pushes it onto an end
// of dst (LMOVE): found is false when src does not exist. dst's type is
// checked before anything is written.
func moveElem(tx engine.Txn, src, dst []byte, fromLeft, toLeft bool) (elem []byte, found bool, err error) {
	sl, err := datatype.OpenList(tx, src)
	if err != nil || !sl.Exists() {
		return nil, false, err
	}
	dl := sl
	if !bytes.Equal(src, dst) {
		if dl, err = datatype.OpenList(tx, dst); err != nil {
			return nil, false, err
		}
	} else if fromLeft == toLeft || sl.Len() == 1 {
		// Popped and pushed back where it was: the list does not
		// change, so nothing is written.
		i := int64(0)
		if !fromLeft {
			i = sl.Len() - 1
		}
		elem, err := sl.Index(i)
		return elem, err == nil, err
	}
	out, err := sl.Pop(fromLeft, 1)
	if err != nil {
		return nil, false, err
	}
	if err := dl.Push(toLeft, out); err != nil {
		return nil, false, err
	}
	if dl != sl {
		if err := dl.Save(); err != nil {
			return nil, false, err
		}
	}
	return out[0], true, sl.Save()
}

// move serves LMOVE and RPOPLPUSH; it reports whether it answered, which
// it does not when the source does not exist (the caller answers that).
func (c *client) move(src, dst []byte, fromLeft, toLeft bool) (answered bool) {
	var elem []byte
	var found bool
	if !c.write(func(tx engine.Txn) error {
		var err error
		elem, found, err = moveElem(tx, src, dst, fromLeft, toLeft)
		return err
	}) {
		return true
	}
	if !found {
		return false
	}
	c.bulk(elem)
	return true
}

func (s *Server) cmdLMove(c *client, args [][]byte) {
	from, ok1 := side(args[3])
	to, ok2 := side(args[4])
	if !ok1 || !ok2 {
		c.err(msgSyntax)
		return
	}
	if !c.move(args[1], args[2], from, to) {
		c.null()
	}
}

func (s *Server) cmdRPopLPush(c *client, args [][]byte) {
	if !c.move(args[1], args[2], false, true) {
		c.null()
	}
}

// mpopArgs are LMPOP's arguments after numkeys' position.
type mpopArgs struct {
	keys  [][]byte
	left  bool
	count int64
}

// parseMPop parses numkeys key… LEFT|RIGHT [COUNT count] from args[at].
func (c *client) parseMPop(args [][]byte, at int) (mpopArgs, bool) {
	var a mpopArgs
	n, ok := parseInt(args[at])
	if !ok || n < 1 {
		c.err(msgNumkeys)
		return a, false
	}
	if n > int64(len(args)-at-2) {
		c.err(msgSyntax)
		return a, false
	}
	a.keys = args[at+1 : at+1+int(n)]
	j := at + 1 + int(n)
	if a.left, ok = side(args[j]); !ok {
		c.err(msgSyntax)
		return a, false
	}
	a.count = 1
	counted := false
	for j++; j < len(args); j += 2 {
		if counted || j+1 >= len(args) || !strings.EqualFold(string(args[j]), "count") {
			c.err(msgSyntax)
			return a, false
		}
		cnt, ok := parseInt(args[j+1])
		if !ok || cnt < 1 {
			c.err(msgMPopCount)
			return a, false
		}
		a.count, counted = cnt, true
	}
	return a, c.checkKeys(a.keys)
}

// popFirst pops up to count elements from the first of keys that holds a
// list, in one write; key is nil when none does. A key of another type
// before it answers WRONGTYPE, as Redis looks at the keys in order.
// answered is false only when nothing was answered (no list found).
func (c *client) popFirst(keys [][]byte, left bool, count int64, reply func(key []byte, vals [][]byte)) (answered bool) {
	return popFromFirst(c, keys, func(tx engine.Txn, k []byte) ([][]byte, bool, error) {
		l, err := datatype.OpenList(tx, k)
		if err != nil || !l.Exists() {
			return nil, false, err
		}
		vals, err := l.Pop(left, count)
		if err != nil {
			return nil, false, err
		}
		return vals, true, l.Save()
	}, reply)
}

// popFromFirst is the multi-key pop of lists and sorted sets (xMPOP, the
// blocking pops): in one write, pop runs on each of keys in order until
// one holds a collection (found), then reply answers with what it took.
// It reports whether it answered (popped, or an error such as WRONGTYPE):
// false when no key held a collection, having written and answered
// nothing.
func popFromFirst[T any](c *client, keys [][]byte, pop func(tx engine.Txn, key []byte) (T, bool, error), reply func(key []byte, got T)) bool {
	var from []byte
	var got T
	if !c.write(func(tx engine.Txn) error {
		from = nil
		for _, k := range keys {
			v, found, err := pop(tx, k)
			if err != nil {
				return err
			}
			if found {
				from, got = k, v
				return nil
			}
		}
		return nil
	}) {
		return true
	}
	if from == nil {
		return false
	}
	reply(from, got)
	return true
}

// mpopReply answers LMPOP's [key, [elements]].
func (c *client) mpopReply(key []byte, vals [][]byte) {
	c.array(2)
	c.bulk(key)
	c.bulks(vals)
}

func (s *Server) cmdLMPop(c *client, args [][]byte) {
	a, ok := c.parseMPop(args, 1)
	if !ok {
		return
	}
	if !c.popFirst(a.keys, a.left, a.count, c.mpopReply) {
		c.nullArray()
	}
}

// parseTimeout parses a blocking command's timeout in seconds as Redis
// 7.2 does: a long double, made milliseconds rounded up; 0 waits forever.
// It returns the reply error's text on failure.
func parseTimeout(b []byte, nowMs int64) (time.Duration, string) {
	f, inf, ok := parseLongDouble(b)
	switch {
	case !ok:
		return 0, msgTimeoutFloat
	case inf && b[0] == '-':
		return 0, msgTimeoutNeg
	case inf:
		return 0, msgTimeoutRange
	}
	ms := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Mul(f, big.NewFloat(1000))
	if ms.Cmp(new(big.Float).SetInt64(math.MaxInt64)) > 0 {
		return 0, msgTimeoutRange
	}
	i, acc := ms.Int(nil) // toward zero
	if acc == big.Below {
		i.Add(i, big.NewInt(1)) // a positive fraction rounds up
	}
	if !i.IsInt64() {
		return 0, msgTimeoutNeg // below MinInt64: negative all the same
	}
	n := i.Int64()
	switch {
	case n < 0:
		return 0, msgTimeoutNeg
	case n > math.MaxInt64-nowMs:
		return 0, msgTimeoutRange // the deadline would overflow
	case n > int64(math.MaxInt64/time.Millisecond):
		return 0, "" // beyond what a timer holds (292 years): forever
	}
	return time.Duration(n) * time.Millisecond, ""
}

// timeout parses a blocking command's timeout argument; on failure it has
// answered.
func (c *client) timeout(b []byte) (time.Duration, bool) {
	d, msg := parseTimeout(b, time.Now().UnixMilli())
	if msg != "" {
		c.err(msg)
		return 0, false
	}
	return d, true
}

// blockedNoPop answers a blocking pop that popped nothing: the timeout's
// null array, or inside a transaction nullInTx (BLMOVE and BRPOPLPUSH
// answer a null bulk there, as Redis does).
func (c *client) blockedNoPop(r blockResult, nullInTx func()) {
	if r != blockServed {
		c.wroteNothing = true
	}
	switch r {
	case blockTimedOut:
		c.nullArray()
	case blockDenied:
		nullInTx()
	}
}

func (s *Server) bpopCmd(left bool) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		d, ok := c.timeout(args[len(args)-1])
		if !ok {
			return
		}
		keys := args[1 : len(args)-1]
		r := c.blockOnKeys(keys, d, func() bool {
			return c.popFirst(keys, left, 1, func(key []byte, vals [][]byte) {
				c.array(2)
				c.bulk(key)
				c.bulk(vals[0])
			})
		})
		c.blockedNoPop(r, c.nullArray)
	}
}

func (s *Server) cmdBLMPop(c *client, args [][]byte) {
	a, ok := c.parseMPop(args, 2)
	if !ok {
		return
	}
	d, ok := c.timeout(args[1])
	if !ok {
		return
	}
	r := c.blockOnKeys(a.keys, d, func() bool {
		return c.popFirst(a.keys, a.left, a.count, c.mpopReply)
	})
	c.blockedNoPop(r, c.nullArray)
}

// blockingMove serves BLMOVE and BRPOPLPUSH.
func (c *client) blockingMove(src, dst []byte, fromLeft, toLeft bool, timeout []byte) {
	d, ok := c.timeout(timeout)
	if !ok {
		return
	}
	r := c.blockOnKeys([][]byte{src}, d, func() bool {
		return c.move(src, dst, fromLeft, toLeft)
	})
	c.blockedNoPop(r, c.null)
}

func (s *Server) cmdBLMove(c *client, args [][]byte) {
	from, ok1 := side(args[3])
	to, ok2 := side(args[4])
	if !ok1 || !ok2 {
		c.err(msgSyntax)
		return
	}
	c.blockingMove(args[1], args[2], from, to, args[5])
}

func (s *Server) cmdBRPopLPush(c *client, args [][]byte) {
	c.blockingMove(args[1], args[2], false, true, args[3])
}
