package node

import (
	"context"
	"time"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

// sweepLoop deletes, on the leader and through the log, the elements of
// collections whose key no longer holds them (datatype.Sweeper): a DEL,
// an overwrite or an expiry of a large collection stays O(1) on the write
// path and its space comes back here, in batches of 1024 keys per entry.
func (n *Node) sweepLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.SweepInterval)
	defer t.Stop()
	sw := &datatype.Sweeper{
		Write: func(ctx context.Context, fn func(engine.Txn) error) error {
			_, err := n.Write(ctx, fn)
			return err
		},
		Read: func(ctx context.Context) (datatype.Scanner, error) {
			return n.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
		},
	}
	th := storage.Throttle{Min: n.cfg.SweepInterval, Max: time.Minute}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if !th.Ready(time.Now()) {
			continue
		}
		for n.ctx.Err() == nil && n.IsLeader() {
			deleted, more, err := sw.Pass(n.ctx, 64)
			n.metrics.swept.Add(float64(deleted))
			if err != nil {
				if n.ctx.Err() == nil && n.IsLeader() {
					if log, skipped := th.Fail(time.Now(), err); log {
						n.log.Warn("collection sweeper", "err", err, "suppressed", skipped)
					}
				}
				break
			}
			th.Succeed()
			if !more {
				break
			}
		}
	}
}
