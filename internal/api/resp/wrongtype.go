package resp

import (
	"context"
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
// this node's mode, or "". In the convergent modes (multi-leader,
// leaderless) a hash, set or sorted set is one crdt.Coll per key, merged
// like the rest of the key's state (package convergent runs the commands
// on it), but:
//   - lists are refused: positions written on two nodes at once need a
//     sequence CRDT, which replicant does not have;
//   - blocking commands are refused: a blocked client is served by the
//     one writer that sees every write of its keys, and these modes have
//     none;
//   - an engine whose mode cannot keep collections refuses them all.
func (s *Server) typeUnsupported(ctx context.Context, spec *command) string {
	if !spec.collection {
		return ""
	}
	if msg := s.convergentRefusal(spec); msg != "" {
		return msg
	}
	if m := s.convergentMode(); m != "" && !s.keepsCollections(ctx) {
		return "ERR " + strings.ToUpper(spec.name) + ": " + groupNoun[spec.group] + " are not supported in " + m + " mode by this build (its engine keeps no collection state)"
	}
	return ""
}

// convergentRefusal is typeUnsupported's answer for lists and blocking
// commands, which needs no read (scripts ask it on the write path).
func (s *Server) convergentRefusal(spec *command) string {
	m := s.convergentMode()
	if !spec.collection || m == "" {
		return ""
	}
	name := strings.ToUpper(spec.name)
	switch {
	case spec.group == "list":
		return "ERR " + name + ": lists are not supported in " + m +
			" mode (a list's positions written on two nodes at once cannot converge without a sequence CRDT; use a sorted set, or single-leader mode)"
	case spec.blocking:
		return "ERR " + name + ": blocking pops from " + groupNoun[spec.group] + " are not supported in " + m +
			" mode (no single writer sees every write to serve a blocked client; use " + strings.TrimPrefix(name, "B") + " and retry)"
	}
	return ""
}

var groupNoun = map[string]string{"hash": "hashes", "list": "lists", "set": "sets", "sorted-set": "sorted sets"}

const (
	collsUnknown int32 = iota
	collsYes
	collsNo
)

// keepsCollections reports whether the engine keeps collections in its
// convergent mode: whether its readers are engine.CollReaders (their
// Txns then are CollTxns). The answer is fixed by the build, so it is
// asked once; while a read fails, collection commands go on (their own
// read then fails, and a write refuses them if the mode cannot).
func (s *Server) keepsCollections(ctx context.Context) bool {
	switch s.collsCache.Load() {
	case collsYes:
		return true
	case collsNo:
		return false
	}
	r, err := s.b.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err != nil {
		return true
	}
	_, ok := r.(engine.CollReader)
	if ok {
		s.collsCache.Store(collsYes)
	} else {
		s.collsCache.Store(collsNo)
	}
	return ok
}

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
