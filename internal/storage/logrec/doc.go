// Package logrec is the binary encoding of replication log entries: logical
// operations (resulting values, never commands) with the entry's LSN, epoch
// and leader time, sealed by a CRC-32C.
//
// Invariants:
//   - DecodeEntry never panics; every failure wraps ErrMalformedEntry or
//     ErrChecksum.
//   - The encoding is canonical: what decodes re-encodes to the same bytes,
//     so replicas cannot disagree about a record they both accept.
//
// It is a package of its own so that its fuzz target does not link Pebble
// (coverage instrumentation of a large dependency slows fuzzing to a crawl).
package logrec
