package wal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"
)

// model is the log as a slice: entries[i] is LSN first+i.
type model struct {
	first   uint64
	entries [][]byte
}

func (m *model) last() uint64 { return m.first + uint64(len(m.entries)) - 1 }

func (m *model) get(lsn uint64) []byte { return m.entries[lsn-m.first] }

// read is what Read must deliver, including the maxBytes rule: stop before
// an entry that would take the total above maxBytes, but deliver one.
func (m *model) read(from, to uint64, maxBytes int) []entry {
	var es []entry
	total := 0
	for lsn := from; lsn <= min(to, m.last()); lsn++ {
		p := m.get(lsn)
		if maxBytes > 0 && len(es) > 0 && total+len(p) > maxBytes {
			break
		}
		es = append(es, entry{lsn, p})
		total += len(p)
	}
	return es
}

func (m *model) bytes(from, to uint64) int64 {
	var n int64
	for lsn := max(from, m.first); lsn <= min(to, m.last()); lsn++ {
		n += int64(headerSize + len(m.get(lsn)))
	}
	return n
}

// TestModel drives the log through random operations, including reopening
// and crashing, and compares it with the model after each.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fs := vfs.NewCrashableMem()
		const dir = "/wal"
		// Mostly small segments, to cross rotations; sometimes ones large
		// enough that an unsynced tail spans several 4 KiB blocks, which a
		// crash may keep or lose independently.
		segBytes := rapid.OneOf(rapid.Int64Range(1, 1500), rapid.Int64Range(8<<10, 32<<10)).Draw(rt, "segBytes")
		l, err := Open(dir, Options{FS: fs, SegmentBytes: segBytes})
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { l.Close() }()
		m := &model{first: 1}
		payload := rapid.SliceOfN(rapid.Byte(), 0, 200)

		check := func(op string) {
			if l.FirstLSN() != m.first || l.LastLSN() != m.last() {
				rt.Fatalf("after %s: log %d..%d, model %d..%d", op, l.FirstLSN(), l.LastLSN(), m.first, m.last())
			}
			if l.SyncedLSN() > l.LastLSN() {
				rt.Fatalf("after %s: SyncedLSN %d > LastLSN %d", op, l.SyncedLSN(), l.LastLSN())
			}
		}
		reopen := func(fs2 vfs.FS) {
			_ = l.Close()
			var err error
			l, err = Open(dir, Options{FS: fs2, SegmentBytes: segBytes})
			if err != nil {
				rt.Fatalf("reopen: %v", err)
			}
			if l.SyncedLSN() != l.LastLSN() {
				rt.Fatalf("after Open SyncedLSN %d, LastLSN %d", l.SyncedLSN(), l.LastLSN())
			}
		}

		steps := rapid.IntRange(1, 80).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 12).Draw(rt, "op"); op {
			case 0, 1, 2, 3: // append
				ps := rapid.SliceOfN(payload, 0, 12).Draw(rt, "batch")
				if err := l.AppendBatch(m.last()+1, ps); err != nil {
					rt.Fatalf("AppendBatch: %v", err)
				}
				for _, p := range ps {
					m.entries = append(m.entries, bytes.Clone(p))
				}
				check("append")
			case 4: // append at the wrong place
				first := rapid.Uint64Range(0, m.last()+5).Filter(func(x uint64) bool { return x != m.last()+1 }).Draw(rt, "badFirst")
				if err := l.AppendBatch(first, [][]byte{{1}}); !errors.Is(err, ErrNotContiguous) {
					rt.Fatalf("AppendBatch(%d) with LastLSN %d: %v", first, m.last(), err)
				}
			case 5: // sync
				if err := l.Sync(); err != nil {
					rt.Fatal(err)
				}
				if l.SyncedLSN() != m.last() {
					rt.Fatalf("SyncedLSN %d after Sync, LastLSN %d", l.SyncedLSN(), m.last())
				}
			case 6: // retention
				lsn := rapid.Uint64Range(0, m.last()+3).Draw(rt, "frontLSN")
				if err := l.TruncateFront(lsn); err != nil {
					rt.Fatal(err)
				}
				nf := l.FirstLSN()
				if nf < m.first || nf > m.last()+1 || (nf > m.first && nf-1 > lsn) {
					rt.Fatalf("TruncateFront(%d) moved FirstLSN from %d to %d (last %d)", lsn, m.first, nf, m.last())
				}
				m.entries = m.entries[nf-m.first:]
				m.first = nf
				check("TruncateFront")
			case 7: // divergent suffix
				lsn := rapid.Uint64Range(m.first-1, m.last()).Draw(rt, "backLSN")
				if err := l.TruncateBack(lsn); err != nil {
					rt.Fatalf("TruncateBack(%d): %v", lsn, err)
				}
				m.entries = m.entries[:lsn+1-m.first]
				check("TruncateBack")
				if l.SyncedLSN() != lsn {
					rt.Fatalf("SyncedLSN %d after TruncateBack(%d)", l.SyncedLSN(), lsn)
				}
				if m.first >= 2 {
					if err := l.TruncateBack(m.first - 2); !errors.Is(err, ErrCompacted) {
						rt.Fatalf("TruncateBack below FirstLSN-1: %v", err)
					}
				}
			case 8: // reset
				next := rapid.Uint64Range(1, m.last()+20).Draw(rt, "next")
				if err := l.Reset(next); err != nil {
					rt.Fatal(err)
				}
				m.first, m.entries = next, nil
				check("Reset")
			case 9: // clean reopen
				reopen(fs)
				check("reopen")
			case 10: // crash: keep exactly what was synced
				synced := l.SyncedLSN()
				crashed := fs.CrashClone(vfs.CrashCloneCfg{})
				reopen(crashed)
				fs = crashed
				if l.FirstLSN() != m.first || l.LastLSN() < synced || l.LastLSN() > m.last() {
					rt.Fatalf("after a crash the log is %d..%d; it was %d..%d synced to %d",
						l.FirstLSN(), l.LastLSN(), m.first, m.last(), synced)
				}
				m.entries = m.entries[:l.LastLSN()+1-m.first]
				check("crash")
			case 12: // crash: keep a random part of what was not synced
				synced := l.SyncedLSN()
				seed := rapid.Uint64().Draw(rt, "crashSeed")
				crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, 0))})
				reopen(crashed)
				fs = crashed
				if l.FirstLSN() != m.first || l.LastLSN() < synced || l.LastLSN() > m.last() {
					rt.Fatalf("after a crash the log is %d..%d; it was %d..%d synced to %d",
						l.FirstLSN(), l.LastLSN(), m.first, m.last(), synced)
				}
				m.entries = m.entries[:l.LastLSN()+1-m.first]
				check("crash")
			case 11: // read and size
				from := rapid.Uint64Range(max(m.first, 2)-2, m.last()+2).Draw(rt, "from")
				to := from + rapid.Uint64Range(0, 40).Draw(rt, "span")
				maxBytes := rapid.IntRange(0, 600).Draw(rt, "maxBytes")
				got, err := tryRead(l, from, to, maxBytes)
				if from < m.first {
					if !errors.Is(err, ErrCompacted) {
						rt.Fatalf("Read(%d) below FirstLSN %d: %v", from, m.first, err)
					}
					break
				}
				if err != nil {
					rt.Fatalf("Read(%d, %d, %d): %v", from, to, maxBytes, err)
				}
				want := m.read(from, to, maxBytes)
				if len(got) != len(want) {
					rt.Fatalf("Read(%d, %d, %d) gave %d entries, want %d", from, to, maxBytes, len(got), len(want))
				}
				for i := range got {
					if got[i].lsn != want[i].lsn || !bytes.Equal(got[i].payload, want[i].payload) {
						rt.Fatalf("Read(%d, %d, %d) entry %d: LSN %d %x, want LSN %d %x", from, to, maxBytes, i, got[i].lsn, got[i].payload, want[i].lsn, want[i].payload)
					}
				}
				size, exact := int64(l.SizeBetween(from, to)), m.bytes(from, to)
				if slack := int64(2 * indexStride * (headerSize + 200)); size < exact-slack || size > exact+slack {
					rt.Fatalf("SizeBetween(%d, %d) = %d, exact %d", from, to, size, exact)
				}
			}
		}
		// Everything, after one last reopen.
		reopen(fs)
		check("final reopen")
		got, err := tryRead(l, m.first, m.last(), 0)
		if err != nil {
			rt.Fatal(err)
		}
		if len(got) != len(m.entries) {
			rt.Fatalf("final read: %d entries, want %d", len(got), len(m.entries))
		}
		for i, e := range got {
			if !bytes.Equal(e.payload, m.entries[i]) {
				rt.Fatalf("final read: LSN %d differs", e.lsn)
			}
		}
		if got, want := int64(l.SizeBetween(m.first, m.last())), m.bytes(m.first, m.last()); got != want {
			rt.Fatalf("SizeBetween over the whole log = %d, want exactly %d", got, want)
		}
	})
}
