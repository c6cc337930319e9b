package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
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

// Records in flight when mute is called finish before it returns: none
// lands after.
func TestLogGateMuteWaitsForRecordsInFlight(t *testing.T) {
	var buf bytes.Buffer
	lw := &lockedWriter{w: &buf}
	gate := &logGate{}
	log := slog.New(gatedHandler{h: slog.NewTextHandler(lw, nil), gate: gate})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				log.Info("noise")
			}
		}()
	}
	gate.mute()
	lw.mu.Lock()
	n := buf.Len()
	lw.mu.Unlock()
	wg.Wait()
	if buf.Len() != n {
		t.Fatalf("%d bytes logged after mute returned", buf.Len()-n)
	}
}
