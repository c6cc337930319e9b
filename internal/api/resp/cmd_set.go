package resp

import (
	"bytes"
	"cmp"
	"slices"
	"strings"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// setCommands are the set family's rows of the command table.
func (s *Server) setCommands() []cmdDef {
	return []cmdDef{
		{"sadd", -3, "write denyoom fast", 1, 1, 1, "set", "1.0.0", "Adds members to a set, creating the set if needed.", s.cmdSAdd},
		{"srem", -3, "write fast", 1, 1, 1, "set", "1.0.0", "Removes members from a set; the set goes when its last member does.", s.cmdSRem},
		{"sismember", 3, "readonly fast", 1, 1, 1, "set", "1.0.0", "Tells whether a value is a member of a set.", s.cmdSIsMember},
		{"smismember", -3, "readonly fast", 1, 1, 1, "set", "6.2.0", "Tells, for each value, whether it is a member of a set.", s.cmdSMIsMember},
		{"smembers", 2, "readonly", 1, 1, 1, "set", "1.0.0", "Returns every member of a set.", s.cmdSMembers},
		{"scard", 2, "readonly fast", 1, 1, 1, "set", "1.0.0", "Returns the number of members of a set.", s.cmdSCard},
		{"spop", -2, "write fast", 1, 1, 1, "set", "1.0.0", "Removes random members from a set and returns them.", s.cmdSPop},
		{"srandmember", -2, "readonly", 1, 1, 1, "set", "1.0.0", "Returns random members of a set, distinct or with repetitions.", s.cmdSRandMember},
		{"smove", 4, "write fast", 1, 2, 1, "set", "1.0.0", "Moves a member from one set to another.", s.cmdSMove},
		{"sinter", -2, "readonly", 1, -1, 1, "set", "1.0.0", "Returns the members common to every given set.", s.cmdSInter},
		{"sintercard", -3, "readonly movablekeys", 0, 0, 0, "set", "7.0.0", "Returns the size of the intersection of sets, counting up to a limit.", s.cmdSInterCard},
		{"sunion", -2, "readonly", 1, -1, 1, "set", "1.0.0", "Returns the members of any of the given sets.", s.cmdSUnion},
		{"sdiff", -2, "readonly", 1, -1, 1, "set", "1.0.0", "Returns the members of the first set that no other given set has.", s.cmdSDiff},
		{"sinterstore", -3, "write denyoom", 1, -1, 1, "set", "1.0.0", "Stores the intersection of sets in a key.", s.cmdSInterStore},
		{"sunionstore", -3, "write denyoom", 1, -1, 1, "set", "1.0.0", "Stores the union of sets in a key.", s.cmdSUnionStore},
		{"sdiffstore", -3, "write denyoom", 1, -1, 1, "set", "1.0.0", "Stores the difference of sets in a key.", s.cmdSDiffStore},
		{"sscan", -3, "readonly", 1, 1, 1, "set", "2.6.0", "Walks the members of a set with a cursor.", s.cmdSScan},
	}
}

// readSets opens the sets at keys on one reader (one consistent state);
// a missing key is nil. On failure it has answered. Every key's type is
// checked, as Redis does before it computes anything.
func (c *client) readSets(keys [][]byte) ([]*datatype.View, bool) {
	r, ok := c.read()
	if !ok {
		return nil, false
	}
	sets, err := openSets(r, keys)
	if err != nil {
		c.backendErr(err)
		return nil, false
	}
	return sets, true
}

// openSets opens the sets at keys in s; a missing key is nil.
func openSets(s datatype.Scanner, keys [][]byte) ([]*datatype.View, error) {
	sets := make([]*datatype.View, len(keys))
	for i, k := range keys {
		v, found, err := datatype.Read(s, k, engine.TypeSet)
		if err != nil {
			return nil, err
		}
		if found {
			sets[i] = v
		}
	}
	return sets, nil
}

func (s *Server) checkMembers(members [][]byte) error {
	for _, m := range members {
		if err := s.checkElem("set member", m); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) cmdSAdd(c *client, args [][]byte) {
	if err := s.checkMembers(args[2:]); err != nil {
		c.backendErr(err)
		return
	}
	var n int64
	c.writeThen(func(tx engine.Txn) error {
		n = 0
		set, err := datatype.Open(tx, args[1], engine.TypeSet)
		if err != nil {
			return err
		}
		for _, m := range args[2:] {
			added, err := datatype.SetAdd(set, m)
			if err != nil {
				return err
			}
			if added {
				n++
			}
		}
		return set.Save()
	}, func() {
		c.int(n)
	})
}

func (s *Server) cmdSRem(c *client, args [][]byte) {
	var n int64
	c.writeThen(func(tx engine.Txn) error {
		n = 0
		set, err := datatype.Open(tx, args[1], engine.TypeSet)
		if err != nil || !set.Exists() {
			return err
		}
		for _, m := range args[2:] {
			removed, err := datatype.SetRem(set, m)
			if err != nil {
				return err
			}
			if removed {
				n++
			}
		}
		return set.Save()
	}, func() {
		c.int(n)
	})
}

// membership answers whether each of members is in the set at key.
func (c *client) membership(key []byte, members [][]byte) ([]bool, bool) {
	sets, ok := c.readSets([][]byte{key})
	if !ok {
		return nil, false
	}
	in := make([]bool, len(members))
	if sets[0] == nil {
		return in, true
	}
	for i, m := range members {
		var err error
		if in[i], err = sets[0].Has(datatype.SubMember, m); err != nil {
			c.backendErr(err)
			return nil, false
		}
	}
	return in, true
}

func (s *Server) cmdSIsMember(c *client, args [][]byte) {
	if in, ok := c.membership(args[1], args[2:]); ok {
		c.int(b2i(in[0]))
	}
}

func (s *Server) cmdSMIsMember(c *client, args [][]byte) {
	in, ok := c.membership(args[1], args[2:])
	if !ok {
		return
	}
	c.array(len(in))
	for _, b := range in {
		c.int(b2i(b))
	}
}

// members answers a list of members as a set (an array in RESP2), small
// integer sets in numeric order as Redis lists its intsets.
func (c *client) members(ms [][]byte) {
	sortIntset(ms)
	c.setHeader(len(ms))
	for _, m := range ms {
		c.bulk(m)
	}
}

func (s *Server) cmdSMembers(c *client, args [][]byte) {
	sets, ok := c.readSets(args[1:2])
	if !ok {
		return
	}
	var ms [][]byte
	if sets[0] != nil {
		all, err := sets[0].All(datatype.SubMember)
		if err != nil {
			c.backendErr(err)
			return
		}
		ms = elemRests(all)
	}
	c.members(ms)
}

// sortIntset puts members in numeric order when they would make an
// intset (at most 512 integers), the order Redis lists such a set in;
// otherwise it leaves them alone. Clients should not depend on the order
// of a set's members, but small integer sets are common, and Redis's
// order for them stable, so some do.
func sortIntset(members [][]byte) {
	if len(members) > intsetEntries {
		return
	}
	nums := make([]int64, len(members))
	for i, m := range members {
		n, ok := redisInt(m)
		if !ok {
			return
		}
		nums[i] = n
	}
	idx := make([]int, len(members))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(nums[a], nums[b]) })
	sorted := make([][]byte, len(members))
	for i, j := range idx {
		sorted[i] = members[j]
	}
	copy(members, sorted)
}

func elemRests(es []datatype.Elem) [][]byte {
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.Rest
	}
	return out
}

func (s *Server) cmdSCard(c *client, args [][]byte) {
	sets, ok := c.readSets(args[1:2])
	if !ok {
		return
	}
	n := int64(0)
	if sets[0] != nil {
		n = sets[0].Meta.Len
	}
	c.int(n)
}

// cmdSPop serves SPOP key [count]: one member (bulk or null) without a
// count, a set of up to count members with one.
func (s *Server) cmdSPop(c *client, args [][]byte) {
	count, withCount := int64(1), len(args) == 3
	switch {
	case len(args) > 3:
		c.err(msgSyntax)
		return
	case withCount:
		n, ok := parseInt(args[2])
		if !ok || n < 0 {
			c.err("ERR value is out of range, must be positive")
			return
		}
		count = n
	}
	var popped [][]byte
	c.writeThen(func(tx engine.Txn) error {
		popped = nil
		set, err := datatype.Open(tx, args[1], engine.TypeSet)
		if err != nil || !set.Exists() || count == 0 {
			return err
		}
		if popped, err = datatype.SetPop(set, collRand, count); err != nil {
			return err
		}
		return set.Save()
	}, func() {
		if withCount {
			c.members(popped)
			return
		}
		if len(popped) == 0 {
			c.null()
			return
		}
		c.bulk(popped[0])
	})
}

// cmdSRandMember serves SRANDMEMBER key [count].
func (s *Server) cmdSRandMember(c *client, args [][]byte) {
	if len(args) > 3 {
		c.err(msgSyntax)
		return
	}
	if len(args) == 2 {
		sets, ok := c.readSets(args[1:2])
		if !ok {
			return
		}
		if sets[0] == nil {
			c.null()
			return
		}
		e, found, err := sets[0].RandomOne(collRand, datatype.SubMember)
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
	sets, ok := c.readSets(args[1:2])
	if !ok {
		return
	}
	elems, err := randomElems(sets[0], datatype.SubMember, count, false)
	if err != nil {
		c.backendErr(err)
		return
	}
	c.array(len(elems))
	for _, e := range elems {
		c.bulk(e.Rest)
	}
}

// cmdSMove serves SMOVE source destination member.
func (s *Server) cmdSMove(c *client, args [][]byte) {
	src, dst, member := args[1], args[2], args[3]
	if err := s.checkElem("set member", member); err != nil {
		c.backendErr(err)
		return
	}
	var moved bool
	if c.write(func(tx engine.Txn) error {
		moved = false
		from, err := datatype.Open(tx, src, engine.TypeSet)
		if err != nil || !from.Exists() {
			return err // a missing source moves nothing, whatever dst is
		}
		if bytes.Equal(src, dst) {
			moved, err = from.Has(datatype.SubMember, member)
			return err
		}
		to, err := datatype.Open(tx, dst, engine.TypeSet)
		if err != nil {
			return err
		}
		if moved, err = datatype.SetRem(from, member); err != nil || !moved {
			return err
		}
		if _, err := datatype.SetAdd(to, member); err != nil {
			return err
		}
		if err := from.Save(); err != nil {
			return err
		}
		return to.Save()
	}) {
		c.int(b2i(moved))
	}
}

// setAlgebra computes SINTER (with limit for SINTERCARD; 0: none), SUNION
// or SDIFF of the sets at keys read from s.
func setAlgebra(s datatype.Scanner, op string, keys [][]byte, limit int64) ([][]byte, error) {
	sets, err := openSets(s, keys)
	if err != nil {
		return nil, err
	}
	switch op {
	case "union":
		return datatype.SetUnion(sets)
	case "diff":
		return datatype.SetDiff(sets)
	}
	var out [][]byte
	for _, v := range sets {
		if v == nil {
			return nil, nil // a missing key is an empty set
		}
	}
	err = datatype.SetInter(sets, func(m []byte) bool {
		out = append(out, m)
		return limit == 0 || int64(len(out)) < limit
	})
	return out, err
}

// setRead serves SINTER, SUNION and SDIFF.
func (s *Server) setRead(c *client, op string, keys [][]byte) {
	r, ok := c.read()
	if !ok {
		return
	}
	ms, err := setAlgebra(r, op, keys, 0)
	if err != nil {
		c.backendErr(err)
		return
	}
	c.members(ms)
}

func (s *Server) cmdSInter(c *client, args [][]byte) { s.setRead(c, "inter", args[1:]) }
func (s *Server) cmdSUnion(c *client, args [][]byte) { s.setRead(c, "union", args[1:]) }
func (s *Server) cmdSDiff(c *client, args [][]byte)  { s.setRead(c, "diff", args[1:]) }

// cmdSInterCard serves SINTERCARD numkeys key [key ...] [LIMIT limit].
func (s *Server) cmdSInterCard(c *client, args [][]byte) {
	n, ok := parseInt(args[1])
	if !ok || n < 1 {
		c.err("ERR numkeys should be greater than 0")
		return
	}
	if n > int64(len(args)-2) {
		c.err("ERR Number of keys can't be greater than number of args")
		return
	}
	keys := args[2 : 2+n]
	limit := int64(0)
	for j := 2 + int(n); j < len(args); j++ {
		if !strings.EqualFold(string(args[j]), "limit") || j+1 == len(args) {
			c.err(msgSyntax)
			return
		}
		j++
		l, ok := parseInt(args[j])
		if !ok || l < 0 {
			c.err("ERR LIMIT can't be negative")
			return
		}
		limit = l
	}
	// Its keys are found by numkeys, not by the table's key positions:
	// refuse reserved ones here, as the dispatcher does for the others.
	for _, k := range keys {
		if engine.IsReserved(k) {
			c.err(msgReserved)
			return
		}
	}
	r, ok := c.read()
	if !ok {
		return
	}
	ms, err := setAlgebra(r, "inter", keys, limit)
	if err != nil {
		c.backendErr(err)
		return
	}
	c.int(int64(len(ms)))
}

// setStore serves SINTERSTORE, SUNIONSTORE and SDIFFSTORE: the result,
// computed inside the write on the newest state, replaces dst as a new
// set (a new id); an empty result deletes dst.
func (s *Server) setStore(c *client, op string, dst []byte, keys [][]byte) {
	var n int64
	if c.write(func(tx engine.Txn) error {
		n = 0
		sc, err := scanner(tx)
		if err != nil {
			return err
		}
		ms, err := setAlgebra(sc, op, keys, 0)
		if err != nil {
			return err
		}
		n = int64(len(ms))
		return datatype.StoreSet(tx, dst, ms)
	}) {
		c.int(n)
	}
}

func (s *Server) cmdSInterStore(c *client, args [][]byte) { s.setStore(c, "inter", args[1], args[2:]) }
func (s *Server) cmdSUnionStore(c *client, args [][]byte) { s.setStore(c, "union", args[1], args[2:]) }
func (s *Server) cmdSDiffStore(c *client, args [][]byte)  { s.setStore(c, "diff", args[1], args[2:]) }

func (s *Server) cmdSScan(c *client, args [][]byte) {
	s.cmdCollScan(c, args, engine.TypeSet, datatype.SubMember)
}
