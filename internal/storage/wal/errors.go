package wal

import (
	"errors"
	"fmt"
)

var (
	// ErrNotContiguous is returned by AppendBatch when the batch does not
	// start right after LastLSN.
	ErrNotContiguous = errors.New("wal: batch is not contiguous with the log")
	// ErrCompacted is returned by Read (and TruncateBack) for LSNs below
	// FirstLSN, which TruncateFront or Reset removed.
	ErrCompacted = errors.New("wal: entries compacted away")
	// ErrClosed is returned by every method of a closed Log.
	ErrClosed = errors.New("wal: log is closed")
	// ErrUnknownFormat is wrapped by the error Open returns for a segment
	// file that does not start with the header of the format this package
	// reads (another version, or the headerless format of earlier, never
	// released builds). Open leaves such a file untouched.
	ErrUnknownFormat = errors.New("wal: segment file is not in a format this version reads")
)

// CorruptionError reports a segment whose contents are not a valid log: a
// damaged frame that cannot be a torn write, or segments that are not
// contiguous. The log cannot be opened until an operator intervenes.
type CorruptionError struct {
	Dir     string
	Segment string // file name within Dir
	Offset  int64  // byte offset of the bad frame within Segment
	LSN     uint64 // LSN expected at Offset
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corruption in %s/%s at offset %d (LSN %d): %v", e.Dir, e.Segment, e.Offset, e.LSN, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// FailedError is returned by every mutation (and Sync) after a write or an
// fsync failed. Err is the first failure. After a failed fsync the kernel may
// have discarded the unwritten pages and marked them clean, so retrying
// could report success for data that is gone; the only safe way on is to
// Close the Log and Open it again, which rebuilds the state from the disk.
type FailedError struct {
	Err error
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("wal: log failed, reopen it to continue: %v", e.Err)
}

func (e *FailedError) Unwrap() error { return e.Err }
