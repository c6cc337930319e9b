package control

import (
	"context"
	"errors"
	"time"
)

// controllerLoop runs the duties on every tick while this member is the
// controller (the raft leader).
func (g *Group) controllerLoop(ctx context.Context) {
	defer close(g.ctrlDone)
	t := time.NewTicker(g.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, d := range g.duties {
			if ctx.Err() != nil || !g.IsController() {
				break
			}
			d(ctx, g)
		}
	}
}

// TickInterval is how often duties run (and raft ticks).
func (g *Group) TickInterval() time.Duration { return g.tick }

// DutyTimeout is a reasonable bound for one duty's waiting: two election
// timeouts.
func (g *Group) DutyTimeout() time.Duration { return g.resend }

// appointFirstLeader is the built-in duty: when no data leader has ever been
// appointed, appoint the first member (epoch 0 -> 1), re-asserting this
// controller's policy so that all members agree on it from epoch 1 on.
func appointFirstLeader(ctx context.Context, g *Group) {
	s := g.State()
	if s.Leader != "" || len(s.Members) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, g.DutyTimeout())
	defer cancel()
	first := s.Members[0].ID
	ep, err := g.appoint(ctx, command{
		Op: opAppoint, Leader: first, Epoch: s.Epoch,
		Policy: s.Policy.String(), Ack: s.Ack.String(), Fallback: s.Fallback.String(),
	})
	switch {
	case err == nil:
		g.log.Info("control: appointed the first data leader", "leader", first, "epoch", ep)
	case errors.Is(err, ErrStaleEpoch), ctx.Err() != nil:
		// Someone else appointed first, or we stopped: nothing to do.
	default:
		g.log.Warn("control: first appointment failed", "leader", first, "err", err)
	}
}
