package resp

import (
	"strings"

	"github.com/replicant-db/replicant/internal/engine"
)

const msgWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"

// strValue is the string a string command reads from v, or WRONGTYPE when
// the key holds a collection. Every string command reads through it.
func strValue(v engine.Version) ([]byte, error) {
	if v.Type != engine.TypeString {
		return nil, replyError(msgWrongType)
	}
	return v.Value, nil
}

// msgReserved answers a command naming a key in the engines' reserved
// space (engine.ReservedPrefix), which no client may read or write.
const msgReserved = "ERR keys starting with \"\\x00replicant\\x00\" are reserved for replicant's own records"

// collectionGroups are the command groups of the collection types.
var collectionGroups = map[string]bool{"hash": true, "list": true, "set": true, "sorted-set": true}

// typeUnsupported returns why the collection command spec is refused in
// this node's mode, or "". Collections need one write path whose
// transactions hold a whole collection (single-leader); in multi-leader
// and leaderless modes a hash or list written concurrently on two nodes
// would have no merge that keeps its metadata and its elements in
// agreement, so they are refused rather than left to diverge.
func (s *Server) typeUnsupported(spec *command) string {
	if !spec.collection {
		return ""
	}
	switch m := s.mode(); m {
	case engine.ModeMultiLeader, engine.ModeLeaderless:
		return "ERR " + strings.ToUpper(spec.name) + ": " + groupNoun[spec.group] + " are not supported in " + m +
			" mode (they cannot converge there; use strings and counters, or single-leader mode)"
	}
	return ""
}

var groupNoun = map[string]string{"hash": "hashes", "list": "lists", "set": "sets", "sorted-set": "sorted sets"}

// reservedEnd is the first key after the reserved space.
var reservedEnd = func() []byte {
	e := append([]byte(nil), engine.ReservedPrefix...)
	e[len(e)-1]++
	return e
}()

// scanUser is r.Scan over the keys clients see (KEYS, SCAN, RANDOMKEY,
// DBSIZE by scan): the reserved space, where collections keep their
// elements, is skipped in one seek rather than key by key.
func scanUser(r interface {
	Scan(start []byte, fn func(key []byte, v engine.Version) bool) error
}, start []byte, fn func(key []byte, v engine.Version) bool) error {
	jump := false
	err := r.Scan(start, func(k []byte, v engine.Version) bool {
		if engine.IsReserved(k) {
			jump = true
			return false
		}
		return fn(k, v)
	})
	if err != nil || !jump {
		return err
	}
	return r.Scan(reservedEnd, fn)
}
