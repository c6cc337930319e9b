package storage

import (
	"errors"
	"fmt"
	"testing"
)

// TestEngineMetrics: the shape is Pebble's at the moment of the call — no
// table before the first flush, one after it (a constant or a zero shape
// fails one of the two) — and the caches' budgets are the options'; a
// closed store reports ErrClosed rather than a zero shape.
func TestEngineMetrics(t *testing.T) {
	s, err := Open(t.TempDir(), Options{CacheBytes: 1 << 20, RowCacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var ops []Op
	for i := range 200 {
		ops = append(ops, set(fmt.Sprintf("k%03d", i), "value"))
	}
	mustAppend(t, s, applySync, ent(1, 1, ops...))
	m, err := s.EngineMetrics()
	if err != nil || m.MemtableBytes == 0 {
		t.Fatalf("after a write: %+v, %v; want memtable bytes", m, err)
	}
	if m.ReadAmp != 0 || m.L0Files != 0 {
		t.Fatalf("before any flush: %+v; want no table", m)
	}
	if m.RowCacheBudget != 8<<20 || m.BlockCacheBudget != 1<<20 {
		t.Fatalf("budgets %d and %d, want the options' 8 MiB and 1 MiB", m.RowCacheBudget, m.BlockCacheBudget)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err = s.EngineMetrics()
	if err != nil || m.ReadAmp < 1 || m.L0Files < 1 || m.L0Sublevels < 1 {
		t.Fatalf("after a flush: %+v, %v; want a table to read", m, err)
	}
	_ = s.Close()
	if _, err := s.EngineMetrics(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed store: %v, want ErrClosed", err)
	}
}
