// Package backup is the file format of `replicant backup`: a versioned,
// self-checking stream of one consistent state of the key-value data,
// written while the node serves (GET /v1/backup) and read back by
// `replicant restore`.
//
// Layout (integers big-endian unless said otherwise):
//
//	magic    8 bytes  "\x89RPLBAK\n"
//	version  uint16   FormatVersion
//	hdrlen   uint32   length of the header, at most MaxHeaderBytes
//	header   JSON     Header: mode, epoch, LSN, source node, created time
//	records  …        per key: 0x01 (a string) or 0x02 and a type byte (a
//	                  collection's metadata, version 2), uvarint len(key), key,
//	                  uvarint len(value), value, uvarint expire-at (Unix ms, 0 = never)
//	trailer           0x00, uint64 keys, uint64 data bytes (keys + values),
//	                  SHA-256 of every byte before the digest
//
// The magic starts with a non-ASCII byte and holds "\n", so a file sent
// through a text-mode transfer or cut at the first line is refused as not
// a backup rather than read wrongly (PNG's trick).
//
// Invariants:
//   - Records are in strictly ascending key order (the order of a store
//     scan): a decoder refuses a repeated or out-of-order key, so a restore
//     never has to choose between two values of one key.
//   - The encoding is canonical: varints are minimal, and what decodes
//     re-encodes to the same bytes.
//   - A file is valid only once its trailer is read, its counts match the
//     records and its digest matches the bytes; Reader.Next reports io.EOF
//     only then, and nothing follows the trailer.
//   - Decoding never panics and never allocates more than the input
//     delivered plus a bounded chunk: a length field claiming gigabytes in
//     a short file fails as truncated, not as out of memory. Every error
//     wraps ErrNotBackup, ErrVersion, ErrTruncated, ErrCorrupt or
//     ErrChecksum, or is the underlying reader's own error.
//
// It is a package without storage dependencies so that its fuzz target
// does not link Pebble (see internal/storage/logrec); the work on a
// data directory (restore, and the backup of a stopped node) is package
// backup/datadir.
package backup
