package datatype

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/replicant-db/replicant/internal/engine"
)

// Redis 7.2's default thresholds of its compact encodings.
const (
	hashMaxListpackEntries = 128 // hash-max-listpack-entries
	hashMaxListpackValue   = 64  // hash-max-listpack-value
	setMaxIntsetEntries    = 512 // set-max-intset-entries
	setMaxListpackEntries  = 128 // set-max-listpack-entries
	setMaxListpackValue    = 64  // set-max-listpack-value
)

// Encoding is the name OBJECT ENCODING gives the hash or set v in Redis
// 7.2 with default settings, judged by its current contents: "listpack"
// (or "intset" for a set of integers) while small, "hashtable" beyond.
// Redis never converts back to the compact form when a collection
// shrinks; this judges by size now. Compact means a small collection:
// its SCAN answers it whole in one page, as Redis does for compact
// encodings. It reads at most 512 elements.
func (v *View) Encoding() (name string, compact bool, err error) {
	switch v.Type {
	case engine.TypeHash:
		if v.Meta.Len > hashMaxListpackEntries {
			return "hashtable", false, nil
		}
		small := true
		err = v.Scan(SubField, nil, func(rest, value []byte) bool {
			small = len(rest) <= hashMaxListpackValue && len(value) <= hashMaxListpackValue
			return small
		})
		if err != nil || !small {
			return "hashtable", false, err
		}
		return "listpack", true, nil
	case engine.TypeSet:
		if v.Meta.Len > setMaxIntsetEntries {
			return "hashtable", false, nil
		}
		ints, small := true, v.Meta.Len <= setMaxListpackEntries
		err = v.Scan(SubMember, nil, func(rest, _ []byte) bool {
			ints = ints && isInt64(rest)
			small = small && len(rest) <= setMaxListpackValue
			return ints || small
		})
		switch {
		case err != nil:
			return "", false, err
		case ints:
			return "intset", true, nil
		case small:
			return "listpack", true, nil
		}
		return "hashtable", false, nil
	}
	return "", false, nil
}

// isInt64 reports whether b is an integer as Redis writes one (no sign
// '+', no leading zeros, no spaces, within int64): such members make an
// intset.
func isInt64(b []byte) bool {
	if len(b) == 0 || len(b) > 20 {
		return false
	}
	if len(b) == 1 && b[0] == '0' {
		return true
	}
	i, neg := 0, false
	if b[0] == '-' {
		i, neg = 1, true
	}
	if i == len(b) || b[i] < '1' || b[i] > '9' {
		return false
	}
	var u uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 || u > (math.MaxUint64-uint64(d))/10 {
			return false
		}
		u = u*10 + uint64(d)
	}
	if neg {
		return u <= 1<<63
	}
	return u <= math.MaxInt64
}

// SortIntset puts members in numeric order when they would make an
// intset (at most 512 integers), the order Redis lists such a set in;
// otherwise it leaves them alone. Clients should not depend on the order
// of a set's members, but small integer sets are common enough, and
// Redis's order for them stable enough, that some do.
func SortIntset(members [][]byte) {
	if len(members) > setMaxIntsetEntries {
		return
	}
	for _, m := range members {
		if !isInt64(m) {
			return
		}
	}
	slices.SortFunc(members, func(a, b []byte) int {
		x, _ := strconv.ParseInt(string(a), 10, 64)
		y, _ := strconv.ParseInt(string(b), 10, 64)
		return cmp.Compare(x, y)
	})
}
