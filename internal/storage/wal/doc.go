// Package wal is the replication log: an append-only sequence of opaque
// payloads numbered by consecutive LSNs, stored in segment files that the
// writer fsyncs itself. It replaces storing the log as Pebble keys, so an
// entry is written once (not once to Pebble's WAL and again by a flush and
// by compactions) and Pebble keeps only the state derived from the log.
//
// # Files
//
// A log directory holds segment files named "<first LSN as 16 lower-case hex
// digits>.log", e.g. 00000000000003e8.log holds entries from LSN 1000 on. The
// name is the only place a segment's first LSN is recorded, which is what
// lets an empty segment (created by rotation or Reset) say where the log
// continues. Other files are ignored, except "*.log.tmp" files: those are
// leftovers of an interrupted truncation (see below) and are deleted by Open.
//
// A segment is a sequence of frames, all integers little-endian:
//
//	offset 0   u32  payload length n (at most MaxPayload)
//	offset 4   u32  CRC-32C (Castagnoli) of bytes 8 .. 16+n, i.e. the LSN and the payload
//	offset 8   u64  LSN
//	offset 16  n bytes of payload
//
// There is no segment header and no padding: the file size is the end of
// the last frame. The LSN is stored (and checksummed) in every frame although
// it could be derived from the position, so that a frame read from the wrong
// place, or a stale frame surviving in a reused block, can never be mistaken
// for the entry being looked for.
//
// # Invariants
//
//   - Segments are contiguous: sorted by name, each segment's first LSN is
//     the previous segment's last LSN + 1, and the LSNs inside a segment are
//     consecutive from its name. Only the last (active) segment can be empty,
//     and only it is ever written.
//   - A segment is rotated only between batches, once it is at least
//     Options.SegmentBytes long, and only after it has been fsynced; the new
//     segment's directory entry is fsynced before anything is written to it.
//     So every segment except the last is complete and durable, and any
//     damage in one is corruption, never a torn write.
//   - Entries are published to readers (LastLSN, Read) only after their
//     write returned, and a reader never reads past the published size of a
//     segment, so it never observes a half-written frame.
//   - SyncedLSN only grows while entries are appended; TruncateBack and Reset
//     lower it together with LastLSN. Everything at or below SyncedLSN
//     survives a crash.
//   - After a failed write or fsync the log refuses every later mutation
//     with an error wrapping the first failure (a *FailedError): after a
//     failed fsync the kernel may have dropped the dirty pages and marked
//     them clean, so neither the page cache nor our offsets can be trusted.
//     Reopening rebuilds the state from what is really on disk.
//
// # Recovery
//
// Open scans every segment, verifying each frame's checksum and LSN, and
// rebuilds the in-memory index. A bad frame in any segment but the last is
// a *CorruptionError. In the last segment the first bad frame is taken as
// the tail of a write torn by a crash and the file is truncated there,
// unless a valid frame with a higher LSN follows it somewhere in the file:
// then the damage is in the middle of entries that were written after it
// (and may have been synced and acknowledged), so Open refuses with a
// *CorruptionError rather than silently dropping them.
//
// Truncating a file uses ftruncate when the vfs.File offers it (the default
// file system does); otherwise the kept prefix is copied to
// "<segment>.log.tmp", synced and renamed over the segment, which an
// interrupted run leaves as a harmless temporary file.
//
// # Memory
//
// Per segment the log keeps its first and last LSN, its size, an open file
// handle and the file offset of every indexStride-th entry, so millions of
// entries cost a few hundred kilobytes. Read seeks to the nearest indexed
// entry (or to where a previous Read stopped, so a follower tailing the log
// does not rescan) and scans forward.
//
// # Concurrency
//
// AppendBatch, TruncateBack and Reset come from a single writer; Sync,
// TruncateFront, Read, SizeBetween and the LSN getters may be called from
// any goroutine at the same time. No lock is held across a read of a
// segment or an fsync except the one that serialises fsyncs themselves:
// readers pin the segment's file with a reference count, so a segment
// deleted by TruncateFront stays readable through the handle they hold.
package wal
