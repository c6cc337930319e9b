package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// checkPayloadShape accepts payloadFor(lsn, s) for any salt s: used where
// TruncateBack rewrites entries with other salts concurrently.
func checkPayloadShape(lsn uint64, p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("LSN %d: empty payload", lsn)
	}
	if want := payloadFor(lsn, p[0]^byte(lsn)); !bytes.Equal(p, want) {
		return fmt.Errorf("LSN %d: payload %x is not one of this LSN's", lsn, p)
	}
	return nil
}

// TestConcurrentReadersAppendTruncateFront runs a writer, a syncer, a
// retention loop and several readers against one log with small segments,
// so that readers regularly hold segments that are deleted under them. Run
// with -race.
func TestConcurrentReadersAppendTruncateFront(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		const last = 20000
		l := mustOpen(t, fs, dir, 4096)
		defer l.Close()
		var done atomic.Bool
		var wg sync.WaitGroup
		fail := func(err error) {
			t.Error(err)
			done.Store(true)
		}

		wg.Go(func() { // writer
			defer done.Store(true)
			rng := rand.New(rand.NewPCG(1, 1))
			for lsn := uint64(1); lsn <= last && !done.Load(); {
				n := min(uint64(rng.IntN(40)+1), last-lsn+1)
				ps := make([][]byte, n)
				for i := range ps {
					ps[i] = payloadFor(lsn+uint64(i), 0)
				}
				if err := l.AppendBatch(lsn, ps); err != nil {
					fail(err)
					return
				}
				lsn += n
			}
		})
		wg.Go(func() { // syncer
			for !done.Load() {
				before := l.LastLSN()
				if err := l.Sync(); err != nil {
					fail(err)
					return
				}
				if s := l.SyncedLSN(); s < before || s > l.LastLSN() {
					fail(fmt.Errorf("SyncedLSN %d outside %d..%d", s, before, l.LastLSN()))
					return
				}
			}
		})
		wg.Go(func() { // retention
			for !done.Load() {
				if lsn := l.LastLSN(); lsn > 1000 {
					if err := l.TruncateFront(lsn - 1000); err != nil {
						fail(err)
						return
					}
				}
			}
		})
		for r := range 4 {
			wg.Go(func() { // random readers
				rng := rand.New(rand.NewPCG(uint64(r), 2))
				for !done.Load() {
					first, lastNow := l.FirstLSN(), l.LastLSN()
					if lastNow < first {
						continue
					}
					from := first + rng.Uint64N(lastNow-first+1)
					to := from + rng.Uint64N(300)
					next := from
					err := l.Read(from, to, rng.IntN(5000), func(lsn uint64, p []byte) error {
						if lsn != next {
							return fmt.Errorf("got LSN %d, want %d", lsn, next)
						}
						next++
						return checkPayloadShape(lsn, p)
					})
					if err != nil && !errors.Is(err, ErrCompacted) {
						fail(fmt.Errorf("Read(%d, %d): %w", from, to, err))
						return
					}
					if err == nil && next == from && from <= lastNow {
						fail(fmt.Errorf("Read(%d, %d) returned nothing with LastLSN %d", from, to, lastNow))
						return
					}
					_ = l.SizeBetween(from, to)
				}
			})
		}
		wg.Go(func() { // a tailer, jumping ahead when retention overtakes it
			next := uint64(1)
			for !done.Load() || next <= l.LastLSN() {
				err := l.Read(next, next+50, 2000, func(lsn uint64, p []byte) error {
					if lsn != next {
						return fmt.Errorf("tailer got LSN %d, want %d", lsn, next)
					}
					next++
					return checkPayloadShape(lsn, p)
				})
				if errors.Is(err, ErrCompacted) {
					next = l.FirstLSN()
				} else if err != nil {
					fail(err)
					return
				}
			}
		})
		wg.Wait()
		if l.LastLSN() != last {
			t.Fatalf("LastLSN %d", l.LastLSN())
		}
	})
}

// TestConcurrentReadersTruncateBack has the writer cut the log back and
// rewrite it while readers read. Readers may be told their read raced with
// the truncation, but must never crash, hang or see a wrong entry.
func TestConcurrentReadersTruncateBack(t *testing.T) {
	forEachFS(t, func(t *testing.T, fs vfs.FS, dir string) {
		l := mustOpen(t, fs, dir, 2048)
		defer l.Close()
		var done atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			defer done.Store(true)
			rng := rand.New(rand.NewPCG(3, 3))
			for round := range 400 {
				salt := byte(round)
				last := l.LastLSN()
				switch rng.IntN(10) {
				case 0:
					cut := last - min(last, rng.Uint64N(200))
					if err := l.TruncateBack(max(cut, l.FirstLSN()-1)); err != nil {
						t.Error(err)
						return
					}
				case 1:
					if last > 3000 {
						if err := l.TruncateFront(last - 2000); err != nil {
							t.Error(err)
							return
						}
					}
				default:
					if err := appendRangeErr(l, last+1, last+uint64(rng.IntN(60)+1), 16, salt); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
		for r := range 3 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(r), 4))
				for !done.Load() {
					first, last := l.FirstLSN(), l.LastLSN()
					if last < first {
						continue
					}
					from := first + rng.Uint64N(last-first+1)
					_ = l.Read(from, from+100, 0, func(lsn uint64, p []byte) error {
						if err := checkPayloadShape(lsn, p); err != nil {
							t.Error(err)
						}
						return nil
					})
				}
			})
		}
		wg.Wait()
	})
}
