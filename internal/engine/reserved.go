package engine

import "bytes"

// ReservedPrefix starts the keys a mode's engine keeps for itself in the
// replicated key space (multi-leader origins, cursors and conflicts;
// leaderless hints): a zero byte, "replicant", a zero byte. User commands
// cannot write such keys and reads, KEYS and SCAN never show them, in
// every mode, so an engine's own state travels with the data it
// describes (same log entry, same snapshot) without a second store.
var ReservedPrefix = []byte("\x00replicant\x00")

// IsReserved reports whether key lies in the reserved space.
func IsReserved(key []byte) bool { return bytes.HasPrefix(key, ReservedPrefix) }
