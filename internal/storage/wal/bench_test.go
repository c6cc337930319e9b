package wal

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkAppendSync measures group-commit-sized batches (64 payloads of
// 100 bytes) each made durable on the real file system before the next,
// which is the replication write path's cost floor.
func BenchmarkAppendSync(b *testing.B) {
	l, err := Open(b.TempDir(), Options{FS: vfs.Default})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = make([]byte, 100)
	}
	b.SetBytes(int64(len(batch) * 100))
	b.ReportAllocs()
	for b.Loop() {
		if err := l.AppendBatch(l.LastLSN()+1, batch); err != nil {
			b.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "entries/s")
}
