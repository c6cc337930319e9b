package leaderless

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// Moving data when the membership changes. The ring follows the control
// plane's members; when it changes, every node pushes each key it holds to
// the nodes that became its replicas (a STORE: merged there, so several
// old replicas pushing the same key is harmless). A node that is asked to
// leave pushes its keys to their new replicas first, then leaves.

// handoffState is the progress of the current or last handoff.
type handoffState struct {
	mu       sync.Mutex
	cancel   context.CancelFunc
	status   engine.RebalanceStatus
	finished chan struct{}
	target   *Ring // the ring the current or last handoff moves keys to
}

// runningFor reports whether a handoff to r is running or finished.
func (h *handoffState) runningFor(r *Ring) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.target == r
}

func (h *handoffState) update(f func(*engine.RebalanceStatus)) {
	h.mu.Lock()
	f(&h.status)
	h.mu.Unlock()
}

func (h *handoffState) get() *engine.RebalanceStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status.State == "" {
		return nil
	}
	s := h.status
	return &s
}

// startHandoff moves data from old to next in the background, replacing a
// handoff still running (the new one covers what it had left).
func (e *Engine) startHandoff(ctx context.Context, old, next *Ring) {
	h := &e.handoff
	h.mu.Lock()
	if h.cancel != nil {
		// The old handoff must stop before this one's status is set: its
		// last update would otherwise mark this one interrupted.
		h.cancel()
		prev := h.finished
		h.mu.Unlock()
		<-prev
		h.mu.Lock()
	}
	hctx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	h.target = next
	h.status = engine.RebalanceStatus{State: "moving", Members: next.Members(), Started: time.Now().UTC().Format(time.RFC3339Nano)}
	done := make(chan struct{})
	h.finished = done
	h.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		for attempt := 0; ; attempt++ {
			err := e.pushMoved(hctx, old, next, "")
			var failed uint64
			h.update(func(s *engine.RebalanceStatus) {
				s.Finished = time.Now().UTC().Format(time.RFC3339Nano)
				failed = s.Failed
				switch {
				case err != nil:
					s.State, s.Error = "interrupted", err.Error()
				case s.Failed > 0:
					s.State = "done-with-failures"
				default:
					s.State = "done"
				}
			})
			if err == nil && failed == 0 {
				e.log.Info("handoff done", "members", next.Members())
				// Members that joined are read from once every member
				// reported (control.Member.Joining).
				if err = e.node.ReportHandoff(hctx, next.Members()); err == nil {
					return
				}
				e.log.Warn("handoff done but not recorded; retrying", "err", err)
			}
			if hctx.Err() != nil {
				return // replaced by a newer handoff, or stopping
			}
			// Some keys did not reach their new replicas (one is down):
			// push again, until they all have, before reporting.
			select {
			case <-hctx.Done():
				return
			case <-time.After(handoffRetry(attempt)):
			}
			h.update(func(s *engine.RebalanceStatus) {
				*s = engine.RebalanceStatus{State: "moving", Members: next.Members(), Started: time.Now().UTC().Format(time.RFC3339Nano)}
			})
		}
	}()
}

// handoffRetry is the pause before pushing again after a handoff that did
// not reach every new replica: 1 s, doubling up to 30 s.
func handoffRetry(attempt int) time.Duration {
	return min(time.Second<<min(attempt, 5), 30*time.Second)
}

// pushMoved stores every local key on the nodes that hold it in next but
// not in old (skip is a node never to push to: one that is leaving).
func (e *Engine) pushMoved(ctx context.Context, old, next *Ring, skip string) error {
	self := e.node.ID()
	type item struct {
		key   []byte
		state []byte
		to    []string
	}
	var batch []item
	flush := func() error {
		for _, it := range batch {
			for _, id := range it.to {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				_, err := e.call(ctx, id, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: it.key, State: it.state})
				e.handoff.update(func(s *engine.RebalanceStatus) {
					if err != nil {
						s.Failed++
					} else {
						s.Moved++
					}
				})
			}
		}
		batch = batch[:0]
		return nil
	}
	var start []byte
	for {
		var last []byte
		n := 0
		err := e.node.LocalRead().Scan(start, func(key []byte, v engine.Version) bool {
			if n >= 256 {
				return false
			}
			last = append(last[:0], key...)
			n++
			if isReserved(key) {
				return true
			}
			e.handoff.update(func(s *engine.RebalanceStatus) { s.Scanned++ })
			was := old.Preference(key, e.n)
			var to []string
			for _, id := range next.Preference(key, e.n) {
				if id != self && id != skip && !slices.Contains(was, id) {
					to = append(to, id)
				}
			}
			if len(to) > 0 {
				batch = append(batch, item{key: append([]byte(nil), key...), state: append([]byte(nil), v.Value...), to: to})
			}
			return true
		})
		if err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		if n < 256 {
			return nil
		}
		start = append(last, 0) // the next key after last
	}
}

// leave moves this node's keys to the replicas they have without it, then
// takes it out of the cluster.
func (e *Engine) leave(ctx context.Context) error {
	cur := e.currentRing()
	var rest []string
	for _, id := range cur.Members() {
		if id != e.node.ID() {
			rest = append(rest, id)
		}
	}
	next, err := NewRing(rest, DefaultVNodes)
	if err != nil {
		return err
	}
	e.handoff.update(func(s *engine.RebalanceStatus) {
		*s = engine.RebalanceStatus{State: "leaving", Members: rest, Started: time.Now().UTC().Format(time.RFC3339Nano)}
	})
	// Push to every new replica that this node was, for the key, the only
	// way to reach: simplest and safe is every replica in next.
	if err := e.pushMoved(ctx, &Ring{}, next, ""); err != nil {
		return err
	}
	// A member cannot see its own removal through: once removed, the
	// control plane stops talking to it. Another member removes it.
	var last error
	for _, id := range rest {
		if last = e.askRemoval(ctx, id); last == nil {
			e.handoff.update(func(s *engine.RebalanceStatus) {
				s.State = "left"
				s.Finished = time.Now().UTC().Format(time.RFC3339Nano)
			})
			e.log.Info("left the cluster", "removed_by", id)
			return nil
		}
	}
	return fmt.Errorf("leaderless: keys handed over, but no member removed this node: %w", last)
}

// askRemoval asks member id, through its HTTP API, to remove this node.
func (e *Engine) askRemoval(ctx context.Context, id string) error {
	_, httpAddr := e.node.MemberAddrs(id)
	if httpAddr == "" {
		return fmt.Errorf("no HTTP address known for %s", id)
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	set := e.node.Settings()
	scheme, hc := "http://", http.DefaultClient
	if set.MemberTLS != nil {
		// A TLS cluster serves HTTPS on every node (see docs/security.md).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = set.MemberTLS()
		scheme, hc = "https://", &http.Client{Transport: t}
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodDelete, scheme+httpAddr+"/v1/members/"+url.PathEscape(e.node.ID()), nil)
	if err != nil {
		return err
	}
	if pass := set.RequirePass; pass != "" {
		req.Header.Set("Authorization", "Bearer "+pass)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("%s answered %d: %s", id, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}
