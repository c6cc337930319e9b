package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogGateMutesEveryDerivedLogger(t *testing.T) {
	var buf bytes.Buffer
	gate := &logGate{}
	log := slog.New(gatedHandler{h: slog.NewTextHandler(&buf, nil), gate: gate})
	sub := log.With("node", "n1").WithGroup("g")
	log.Info("before")
	sub.Info("before-sub")
	gate.mute()
	log.Info("after")
	sub.Error("after-sub")
	out := buf.String()
	for _, want := range []string{"before", "before-sub"} {
		if !strings.Contains(out, "msg="+want) {
			t.Errorf("log lacks %q before mute:\n%s", want, out)
		}
	}
	if strings.Contains(out, "after") {
		t.Errorf("log written after mute:\n%s", out)
	}
}

// A record being written when mute is called finishes before mute
// returns, and none is written after: the handler holds the gate while it
// writes. The writer blocks mid-record, so the order is forced, not hoped
// for.
func TestLogGateMuteWaitsForRecordsInFlight(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	gate := &logGate{}
	log := slog.New(gatedHandler{h: slog.NewTextHandler(w, nil), gate: gate})
	logged := make(chan struct{})
	go func() {
		log.Info("in flight")
		close(logged)
	}()
	<-w.entered // the record is being written
	muted := make(chan struct{})
	go func() {
		gate.mute()
		close(muted)
	}()
	select {
	case <-muted:
		t.Fatal("mute returned while a record was still being written")
	case <-time.After(50 * time.Millisecond):
	}
	close(w.release)
	<-logged
	<-muted
	log.Info("after")
	if got := w.buf.String(); !strings.Contains(got, "in flight") || strings.Contains(got, "after") {
		t.Fatalf("log = %q; want the record in flight and nothing after mute", got)
	}
}

// blockingWriter blocks its first Write until released.
type blockingWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	first := false
	w.once.Do(func() { first = true })
	if first {
		close(w.entered)
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
