// Package storage is replicant's durable state: the replication log and the
// multi-version key-value data derived from it, both in one Pebble database.
//
// Layout (first byte of every Pebble key is its family):
//
//	0x01 BE64(lsn)                         -> encoded Entry (the replication log)
//	0x02 esc(key) 0x00 0x01 BE64(^lsn)     -> encoded Version (user data)
//	0x03 name                              -> node metadata
//	0x04 BE64(expireAt) BE64(lsn) esc(key) -> "" (expiry index)
//	0x05 BE64(lsn)                         -> "" (FLUSHALL markers)
//
// Invariants:
//   - An entry's log record and its versions are written in the same Pebble
//     batch when the entry is applied together with its append; a follower
//     may append first and apply later, but never applies what it has not
//     appended.
//   - Versions are ordered newest first within a key (^lsn), so the newest
//     version at or below a read LSN is found with one SeekGE.
//   - A version with LSN v is visible at read LSN r iff v <= r, no newer
//     version of the key is <= r, and no FLUSHALL marker f satisfies v < f <= r.
//   - Log entries are contiguous from FirstLSN to LastLSN. Prefix truncation
//     raises FirstLSN; suffix truncation lowers LastLSN and removes the
//     versions, expiry entries and flush markers the dropped entries wrote.
//   - Every log record carries a CRC-32C; a mismatch is reported as a
//     *CorruptionError naming the directory and LSN, never skipped.
//   - GC(floor) only removes versions that no read at an LSN >= floor can
//     observe.
//   - No write reaches Pebble after one failed on the disk (Pebble cannot
//     continue from that): the store refuses writes until Recover has
//     reopened the database and restored every entry it had appended, so
//     an LSN once shown never changes contents. Writes that would eat into
//     the free-space reserve are refused before Pebble sees them.
package storage
