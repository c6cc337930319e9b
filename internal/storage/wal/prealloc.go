package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Zero-filling ahead of the writer.
//
// An fdatasync after an append that grew the file must also commit the new
// file size, a journal transaction on ext4 and XFS; after a write into
// blocks that already exist and hold data it flushes only the data. On the
// 2-core test machine that is 0.20–0.22 ms against 0.12–0.13 ms per
// write+fdatasync of 2 KiB, and the fsync is most of a durable write's
// latency. PostgreSQL zero-fills its WAL segments for the same reason.
//
// So, with Options.Preallocate > 0, a background filler keeps that many
// bytes past the active segment's last frame written with zeros and synced,
// in fillChunk steps. Zeros never pass for a frame (a zero header fails its
// checksum), so recovery reads them as the end of the log and keeps them
// for later appends (see recover). The filler:
//   - never writes past SegmentBytes, so a segment is never rotated with a
//     zero tail: only the last segment can have one, and the other
//     segments stay exactly their frames, as recovery requires;
//   - writes only at or beyond max(alloc, size), holding fillMu; the
//     writer takes fillMu for a write that goes beyond alloc, so the two
//     never write the same bytes and zeros never land on a frame;
//   - uses its own file descriptor: a failed fsync is reported once per
//     open file description, so the filler's fsync must not be the one
//     that swallows a writeback error the writer's fsync has to see, and a
//     failed write of zeros (a full disk) must not count as a failure of
//     the log. The writer, extending the file as it did without the
//     filler, meets any real trouble itself.
//
// It works only on files of the operating system (vfs.File.Fd); on other
// file systems (in-memory, fault-injecting) it stays off.

const (
	// fillChunk is how much the filler writes and syncs at a time: small
	// enough that a writer's fdatasync running at the same time has little
	// of it to flush.
	fillChunk = 256 << 10
	// fillRetry is how long the filler rests after a failed write.
	fillRetry = time.Second
)

// startFiller starts the filler if Options.Preallocate asks for it and the
// active segment is an operating-system file.
func (l *Log) startFiller() {
	if l.prealloc <= 0 {
		return
	}
	active := l.segs[len(l.segs)-1]
	if active.file.f.Fd() == vfs.InvalidFd {
		l.prealloc = 0
		return
	}
	l.fillKick = make(chan struct{}, 1)
	l.fillStop = make(chan struct{})
	l.fillDone = make(chan struct{})
	l.zeros = make([]byte, fillChunk)
	go l.fillLoop()
	l.kickFiller()
}

// StopPreallocating stops the zero filler and waits for it; later appends
// extend the file. Close calls it, and so does a store reopening the log's
// directory, on the instance it replaces, whose filler would otherwise go
// on writing zeros where the new instance writes frames. It must not be
// called with fillMu held.
func (l *Log) StopPreallocating() {
	if l.fillStop == nil {
		return
	}
	select {
	case <-l.fillStop:
	default:
		close(l.fillStop)
	}
	<-l.fillDone
}

// kickFiller asks the filler to look at the active segment, without
// waiting.
func (l *Log) kickFiller() {
	if l.fillKick == nil {
		return
	}
	select {
	case l.fillKick <- struct{}{}:
	default:
	}
}

// lowOnZeros reports whether seg, the active segment now size bytes long,
// has less than half of Preallocate zero-filled ahead of its end.
func (l *Log) lowOnZeros(seg *segment, size int64) bool {
	if l.prealloc <= 0 {
		return false
	}
	alloc := seg.alloc.Load()
	return alloc < l.segBytes && alloc-size < l.prealloc/2
}

func (l *Log) fillLoop() {
	defer close(l.fillDone)
	var restUntil time.Time
	warned := false // once per run of failures: a full disk fails every try
	for {
		select {
		case <-l.fillStop:
			return
		case <-l.fillKick:
		}
		if time.Now().Before(restUntil) {
			continue
		}
		err := l.fill()
		switch {
		case err != nil && !warned:
			l.logger.Warn("wal: could not zero-fill ahead of the log's end; appends extend the file instead", "dir", l.dir, "err", err)
			warned = true
		case err == nil && warned:
			l.logger.Info("wal: zero-filling ahead of the log's end again", "dir", l.dir)
			warned = false
		}
		if err != nil {
			restUntil = time.Now().Add(fillRetry)
		}
	}
}

// fill zero-fills the active segment up to Preallocate bytes past its end
// (never past SegmentBytes) and syncs each chunk before counting it.
func (l *Log) fill() error {
	l.fillMu.Lock()
	defer l.fillMu.Unlock()
	if l.mutable() != nil {
		return nil
	}
	l.mu.Lock()
	seg := l.segs[len(l.segs)-1]
	size := seg.size
	l.mu.Unlock()
	start := max(seg.alloc.Load(), size)
	target := min(size+l.prealloc, l.segBytes)
	if start >= target {
		return nil
	}
	// The segment may be removed meanwhile (Reset, TruncateFront after a
	// rotation): zeros written to a removed file are harmless.
	f, err := os.OpenFile(seg.path, os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open %s: %w", seg.path, err)
	}
	defer f.Close()
	for start < target {
		select {
		case <-l.fillStop:
			return nil
		default:
		}
		if l.mutable() != nil {
			return nil // failed or closed: the log writes no more
		}
		n := min(int64(len(l.zeros)), target-start)
		if _, err := f.WriteAt(l.zeros[:n], start); err != nil {
			return fmt.Errorf("write zeros to %s: %w", seg.path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", seg.path, err)
		}
		start += n
		seg.alloc.Store(start)
	}
	return nil
}

// zeroTail reports whether the bytes of f from off to end are all zero: a
// tail the filler wrote and no frame reached.
func zeroTail(f vfs.File, off, end int64) (bool, error) {
	buf := make([]byte, min(end-off, 1<<20))
	for off < end {
		n := min(int64(len(buf)), end-off)
		m, err := f.ReadAt(buf[:n], off)
		if int64(m) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return false, err
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		off += n
	}
	return true, nil
}
