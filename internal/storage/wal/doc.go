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
// A segment is a 12-byte header followed by a sequence of frames, all
// integers little-endian:
//
//	header:
//	offset 0   8 bytes  magic "REPLWAL\n"
//	offset 8   u32      format version, 1
//
//	frame, at offset off:
//	offset 0   u32  payload length n (at most MaxPayload)
//	offset 4   u32  CRC-32C (Castagnoli) of bytes 8 .. 24+n: LSN, synced offset and payload
//	offset 8   u64  LSN
//	offset 16  u64  synced offset: the file was durable up to here when the frame was written
//	offset 24  n bytes of payload
//
// The header is written and fsynced when the segment is created, before
// anything else. Open refuses a segment whose header carries another magic
// or version with an error wrapping ErrUnknownFormat and leaves the file
// alone; that includes segments of the headerless format of earlier,
// unreleased builds, whose first frame's length can never match the magic
// (its fourth byte, 'L', exceeds any length's high byte). There is no
// padding between frames, and the end of the last frame is the end of the
// file, except that with Options.Preallocate the last segment may go on
// with zeros that a background filler wrote ahead of the writer
// (prealloc.go): an fdatasync then finds the file's size unchanged and
// flushes data only. Zeros never decode as a frame; recovery keeps such a
// tail and appends into it, and the filler never writes past SegmentBytes,
// so a rotated segment never has one. The LSN is stored
// (and checksummed) in every frame although it could be derived from the
// position, so that a frame read from the wrong place, or a stale frame
// surviving in a reused block, can never be mistaken for the entry being
// looked for.
//
// The synced offset is how many bytes of its segment file (header
// included) the writer knew to be fsynced when it wrote the frame: the
// segment's size as of its last completed fsync (by Sync, by creation,
// which syncs the header, by Open or by TruncateBack), so always a frame
// boundary at or below the frame's own offset. A frame
// thereby vouches that every byte before that offset had been made durable,
// which is what lets recovery tell a write torn by a crash from damage to
// data that had been synced (the idea of the "sync chunks" of Pebble's
// WAL). An fsync finishing while a batch is encoded only makes the value
// an underestimate; it is never more than the truth.
//
// # Invariants
//
//   - Segments are contiguous: sorted by name, each segment's first LSN is
//     the previous segment's last LSN + 1, and the LSNs inside a segment are
//     consecutive from its name. Only the last (active) segment can be empty,
//     and only it is ever written.
//   - A segment is rotated only between batches, once it is at least
//     Options.SegmentBytes long, and only after it has been fsynced; the new
//     segment's header and directory entry are fsynced before any frame is
//     written to it.
//     So every segment except the last is complete and durable, and any
//     damage in one is corruption, never a torn write.
//   - Entries are published to readers (LastLSN, Read) only after their
//     write returned, and a reader never reads past the published size of a
//     segment, so it never observes a half-written frame.
//   - SyncedLSN only grows while entries are appended; TruncateBack and Reset
//     lower it together with LastLSN. Everything at or below SyncedLSN
//     survives a crash.
//   - A frame's synced offset never exceeds the part of its file that was
//     really fsynced before the frame was written, nor the frame's offset.
//   - After a failed write or fsync the log refuses every later mutation
//     with an error wrapping the first failure (a *FailedError): after a
//     failed fsync the kernel may have dropped the dirty pages and marked
//     them clean, so neither the page cache nor our offsets can be trusted.
//     Reopening rebuilds the state from what is really on disk.
//
// # Recovery
//
// Open scans every segment, verifying its header and each frame's checksum,
// LSN and synced offset, and rebuilds the in-memory index. A bad frame in
// any segment but the last is a *CorruptionError, since those segments were
// complete and synced before the next one was created; so is an intact
// frame (checksum right) that does not belong where it is, with the wrong
// LSN or a synced offset beyond its own offset, even at the very end of
// the last segment: a torn write cannot produce one.
//
// A crash may lose any unsynced bytes, not only a suffix: when more than a
// page was written since the last fsync, the disk may keep a later page and
// lose an earlier one, leaving intact frames after a hole. So in the last
// segment, at the first bad frame, at offset X, Open looks further on for
// intact frames with higher LSNs and reads their synced offsets:
//
//   - If one records a synced offset above X, the bytes at X had been
//     fsynced before that frame was written, and no crash can damage them:
//     a *CorruptionError naming the LSN expected at X, and Open refuses
//     rather than drop entries that may have been acknowledged.
//   - Otherwise nothing in the file shows that any byte from X on was ever
//     synced. The segment is truncated at X, dropping the intact frames
//     after the hole too (they were unsynced, and the log cannot have a
//     gap), with a warning giving the bytes and intact entries dropped.
//
// A crash therefore only ever loses unsynced entries and never stops the
// log from opening. What remains ambiguous is damage to synced bytes with
// no later frame to vouch for them: typically the frames of the last
// synced batch, when nothing was written after its fsync, or when
// everything written after it was lost as well. That is indistinguishable
// from a torn write and is truncated like one, silently losing synced
// entries (Pebble's and etcd's WALs make the same trade-off); it takes
// real media damage at exactly the end of the log, which checksums alone
// cannot tell from a crash.
//
// A last segment shorter than a header, or holding only a header's worth
// of bytes that are a prefix of the header followed by zeros, is one whose
// creation a crash interrupted before anything was written to it: Open writes it again, and the log continues at the LSN its
// name gives. In any other segment that is corruption.
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
// The zero filler runs on its own goroutine and file descriptor; it and
// the writer never write the same bytes (fillMu, prealloc.go).
//
// AppendBatch, TruncateBack and Reset come from a single writer; Sync,
// TruncateFront, Read, SizeBetween and the LSN getters may be called from
// any goroutine at the same time. No lock is held across a read of a
// segment or an fsync except the one that serialises fsyncs themselves:
// readers pin the segment's file with a reference count, so a segment
// deleted by TruncateFront stays readable through the handle they hold.
package wal
