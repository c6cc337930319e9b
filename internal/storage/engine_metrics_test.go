package storage

import (
	"errors"
	"fmt"
	"testing"
)

// TestEngineMetrics: written versions show in the memtable; a flush moves
// them to a table that point reads consult (read amplification at least
// one); a closed store reports ErrClosed rather than a zero shape.
func TestEngineMetrics(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	var ops []Op
	for i := range 200 {
		ops = append(ops, set(fmt.Sprintf("k%03d", i), "value"))
	}
	mustAppend(t, s, applySync, ent(1, 1, ops...))
	m, err := s.EngineMetrics()
	if err != nil || m.MemtableBytes == 0 {
		t.Fatalf("after a write: %+v, %v; want memtable bytes", m, err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err = s.EngineMetrics()
	if err != nil || m.ReadAmp < 1 {
		t.Fatalf("after a flush: %+v, %v; want a table to read", m, err)
	}
	_ = s.Close()
	if _, err := s.EngineMetrics(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed store: %v, want ErrClosed", err)
	}
}
