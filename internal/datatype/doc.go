// Package datatype stores Redis's collection types — hashes, lists, sets
// and sorted sets — in the flat, versioned key space a mode's engine.Txn
// and engine.Reader offer, so that a collection replicates, rolls back,
// snapshots and backs up exactly as strings do, with no mode knowing about
// collections.
//
// Layout (Kvrocks's idea of metadata plus subkeys on an LSM; our own
// encoding):
//
//   - The user key K holds the collection's metadata as a typed version
//     (engine.Version.Type): its id, its length and, for lists, the index
//     of its first element. So TYPE, EXISTS, EXPIRE, TTL, DEL, KEYS, SCAN
//     and DBSIZE see one key, and a collection's expiry is its metadata's.
//   - Each field, member or element is its own key in the reserved space:
//     ReservedPrefix "e" id(8, big-endian) sub(1) rest. An HSET on a hash of
//     a million fields writes the field and the metadata, nothing else, and
//     the log records those resulting values, never the command.
//   - Elements are keyed by the collection's id, not by K: a key deleted,
//     overwritten by a string or expired and created again gets a new id,
//     so it never sees its old elements, and RENAME moves only the
//     metadata.
//   - ReservedPrefix "o" id(8) → K records which key created the id. The
//     sweeper (sweep.go) finds ids whose key no longer holds them (deleted,
//     overwritten, expired, renamed away and replaced) and deletes their
//     elements through the write path in bounded batches.
//
// Invariants:
//   - A live collection has Len ≥ 1: a write that empties it deletes K
//     (Redis deletes empty collections), so "exists" means "non-empty".
//   - Len is the number of element keys under its id (for a sorted set,
//     of member keys; its score index holds as many).
//   - The elements of an id whose metadata is not at K are invisible: every
//     read starts at the metadata.
//   - Ids are unique over the state's history (engine.TypedTxn.NewID).
//
// The multi-leader and leaderless modes keep a collection as one
// convergent value per key instead; package convergent shows it to this
// package as this layout (virtual ids and element keys), so the same code
// serves them.
package datatype
