package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/replicant-db/replicant/internal/engine"
)

// Switchover hands leadership to member to without losing anything: the
// leader stops taking writes and linearizable reads, waits until every
// entry it has is committed and durable on the target, then appoints the
// target (compare-and-set on the epoch) and steps down.
func (n *Node) Switchover(ctx context.Context, to string) error {
	l := n.currentLeader()
	if l == nil {
		return n.notLeaderErr()
	}
	if to == n.cfg.ID {
		return fmt.Errorf("%s already leads", to)
	}
	if _, ok := n.control.State().Member(to); !ok {
		return fmt.Errorf("no member %q", to)
	}
	n.admit.Lock()
	ok := n.switching.CompareAndSwap(false, true)
	n.admit.Unlock()
	if !ok {
		return errors.New("a switchover is already in progress")
	}
	resume := true
	defer func() {
		if resume {
			n.switching.Store(false)
		}
	}()
	n.log.Info("switchover: writes paused, waiting for the target to catch up", "to", to, "epoch", l.Epoch())
	// No write is in flight now and new ones are refused.
	for {
		// Take the notifications before looking: no missed wakeup. The
		// target's acknowledgements and the commit LSN are what move.
		acked, committed := l.ProgressChanged(), l.Changed()
		last := n.store.State().LastLSN
		if switchoverReady(to, last, l.Writer().CommitLSN(), l.Progress()) && n.store.State().LastLSN == last {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("switchover to %s: target did not catch up: %w", to, ctx.Err())
		case <-acked:
		case <-committed:
		}
	}
	if _, err := n.control.Appoint(ctx, to, l.Epoch()); err != nil {
		return fmt.Errorf("switchover to %s: %w", to, err)
	}
	// Stay paused: this node steps down as soon as it applies the
	// appointment (detachRoleLocked clears the pause).
	resume = false
	n.log.Info("switchover: handed over", "to", to)
	return nil
}

// checkWritable refuses work a pausing leader must not do.
func (n *Node) checkSwitching() error {
	if n.switching.Load() {
		return fmt.Errorf("%w", engine.ErrSwitchover)
	}
	return nil
}
