package main

import (
	"context"
	"log/slog"
	"sync"
)

// logGate lets the server silence its log for good. A node that stops on
// corrupt data prints the error as its last line (operators and scripts
// read the last line for the cause); goroutines still running until the
// process exits — an election, a peer stream — must not log after it.
type logGate struct {
	mu    sync.RWMutex
	muted bool
}

// mute stops every logger of the gate. Once it returns no record is being
// written or will be.
func (g *logGate) mute() {
	g.mu.Lock()
	g.muted = true
	g.mu.Unlock()
}

// gatedHandler is a slog.Handler that drops records once its gate is muted.
type gatedHandler struct {
	h    slog.Handler
	gate *logGate
}

func (h gatedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.h.Enabled(ctx, l)
}

func (h gatedHandler) Handle(ctx context.Context, r slog.Record) error {
	// The read lock is held while the record is written, so mute waits
	// for records already past the check.
	h.gate.mu.RLock()
	defer h.gate.mu.RUnlock()
	if h.gate.muted {
		return nil
	}
	return h.h.Handle(ctx, r)
}

func (h gatedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return gatedHandler{h: h.h.WithAttrs(as), gate: h.gate}
}

func (h gatedHandler) WithGroup(name string) slog.Handler {
	return gatedHandler{h: h.h.WithGroup(name), gate: h.gate}
}
