// Package storage is replicant's durable state: the replication log, in
// its own segment files (package wal), and the multi-version key-value
// data derived from it, in Pebble.
//
// Pebble layout (first byte of every Pebble key is its family):
//
//	0x02 esc(key) 0x00 0x01 BE64(^lsn)     -> encoded Version (user data)
//	0x03 name                              -> node metadata
//	0x04 BE64(expireAt) BE64(lsn) esc(key) -> "" (expiry index)
//	0x05 BE64(lsn)                         -> "" (FLUSHALL markers)
//	0x06 BE64(lsn)                         -> key count delta (keycount.go)
//
// (0x01 held the log in older directories; Open moves it to the files.)
//
// The log is the only thing fsynced on the write path. Pebble runs without
// its own write-ahead log: its writes are derived from the log and become
// durable when Pebble flushes a memtable, which persists a prefix of the
// batches applied, in order. Open replays the log above Pebble's durable
// applied LSN. So one entry costs one write and one shared fsync, and the
// memtable holds only versions.
//
// Invariants:
//   - An entry is in the log before its versions are in Pebble. A crash can
//     leave Pebble with versions of entries whose records never reached
//     the disk (never acknowledged): Open drops them (dropAbove).
//   - Pebble's durable applied LSN is never below the log's first entry
//     minus one: retention flushes Pebble before deleting a segment.
//   - When history is rewritten (suffix truncation, snapshot install),
//     Pebble is flushed before the log changes, and the "installing" mark
//     makes a crash in the middle start the install over.
//   - Versions are ordered newest first within a key (^lsn), so the newest
//     version at or below a read LSN is found with one SeekGE.
//   - A version with LSN v is visible at read LSN r iff v <= r, no newer
//     version of the key is <= r, and no FLUSHALL marker f satisfies v < f <= r.
//   - Log entries are contiguous from FirstLSN to LastLSN. Prefix truncation
//     raises FirstLSN; suffix truncation lowers LastLSN and removes the
//     versions, expiry entries and flush markers the dropped entries wrote.
//   - Every log record carries a CRC-32C (and so does its frame in the
//     segment file); a mismatch is reported as a *CorruptionError naming
//     the directory and LSN, never skipped.
//   - GC(floor) only removes versions that no read at an LSN >= floor can
//     observe; the floor is recorded before the first deletion.
//   - The key count at the applied LSN (meta key_count) and the per-entry
//     count deltas are written in the batch of the versions they count, so
//     KeyCount at any readable LSN equals the number of keys Scan visits
//     there (see keycount.go).
//   - The row cache (rowcache.go) holds, for a key, only a version no newer
//     version of which is visible to any reader: writers refresh it between
//     their Pebble commit and the applied LSN's publication, reads fill it
//     only when no writer touched the key's shard meanwhile, and history
//     rewrites empty it.
//   - No entry is appended after a log write or fsync failed: the store
//     refuses writes until Recover has reopened the log files and restored
//     every entry it had appended, so an LSN once shown never changes
//     contents. Writes that would eat into the free-space reserve are
//     refused before they reach the disk.
package storage
