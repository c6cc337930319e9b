package storage

import "github.com/replicant-db/replicant/internal/storage/logrec"

// The log entry types and codec live in package logrec; these aliases keep
// storage's API self-contained for its callers.
type (
	// OpKind is the kind of a logical operation.
	OpKind = logrec.OpKind
	// Op is one logical change.
	Op = logrec.Op
	// Entry is one record of the replication log.
	Entry = logrec.Entry
)

// Operation kinds.
const (
	OpSet   = logrec.OpSet
	OpDel   = logrec.OpDel
	OpFlush = logrec.OpFlush
)

// Codec errors (see logrec).
var (
	ErrMalformedEntry = logrec.ErrMalformedEntry
	ErrChecksum       = logrec.ErrChecksum
)

// AppendEntry appends e's encoding to dst.
func AppendEntry(dst []byte, e *Entry) []byte { return logrec.AppendEntry(dst, e) }

// DecodeEntry decodes one encoded entry.
func DecodeEntry(b []byte) (Entry, error) { return logrec.DecodeEntry(b) }
