package multileader

import (
	"bytes"
	"strconv"

	"github.com/replicant-db/replicant/internal/engine"
)

// Reserved keys. Multi-leader mode keeps its own state (per-origin applied
// positions, link settings and cursors, the conflict log) in the site's
// replicated key space, under a prefix that user commands cannot write and
// reads never show: it is then written in the same log entry as the data
// it describes, replicated to the site's followers, rolled back with it
// and carried by snapshots, like PostgreSQL's replication origins.
var reserved = engine.ReservedPrefix

const (
	kindOrigin   = "origin\x00"   // + site: highest own-write LSN of site applied here
	kindCursor   = "cursor\x00"   // + site: the link's position in site's log
	kindLink     = "link\x00"     // + site: the link's settings (JSON)
	kindConflict = "conflict\x00" // + 16 hex digits: one conflict (JSON)
	kindTomb     = "tomb\x00"     // + user key: the key may hold a collectable tombstone
	keyConflicts = "conflicts"    // how many conflicts were ever recorded
)

// IsReserved reports whether key lies in multi-leader mode's reserved space.
func IsReserved(key []byte) bool { return engine.IsReserved(key) }

func internalKey(kind, name string) []byte {
	k := make([]byte, 0, len(reserved)+len(kind)+len(name))
	k = append(k, reserved...)
	k = append(k, kind...)
	return append(k, name...)
}

func originKey(site string) []byte { return internalKey(kindOrigin, site) }
func cursorKey(site string) []byte { return internalKey(kindCursor, site) }
func linkKey(site string) []byte   { return internalKey(kindLink, site) }
func tombKey(key []byte) []byte    { return internalKey(kindTomb, string(key)) }

// conflictSlots bounds the conflict log: the newest this many are kept.
const conflictSlots = 1000

func conflictKey(seq uint64) []byte {
	return internalKey(kindConflict, strconv.FormatUint(seq%conflictSlots+1<<60, 16))
}

// parseInternal splits a reserved key into its kind and name.
func parseInternal(key []byte) (kind, name string, ok bool) {
	if !IsReserved(key) {
		return "", "", false
	}
	rest := key[len(reserved):]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return string(rest), "", true
	}
	return string(rest[:i+1]), string(rest[i+1:]), true
}

func formatU64(n uint64) []byte { return strconv.AppendUint(nil, n, 10) }

func parseU64(b []byte) uint64 {
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
