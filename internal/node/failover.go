package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/replication"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// Leader leases and failover.
//
// The data leader renews a lease through the control plane every
// FailoverTimeout/10. It holds the lease until (send time of its last
// successful renewal) + FailoverTimeout/2: past that it accepts no write,
// acknowledges no write and serves no linearizable read. The controller
// times renewals with its own clock from when it sees them applied (which
// is after they were sent) and only fails over once none was seen for
// FailoverTimeout, so the old leader has stopped acknowledging long before
// (clocks need only measure intervals at similar rates).
//
// The controller then asks the candidates for their durable positions:
// under a sync policy the sync-set members, of which at least |set|-k+1 must
// answer (every acknowledged write is on k of them, so any |set|-k+1 include
// one holding it); under async any follower (async may lose acknowledged
// writes; that is its documented trade-off). It appoints the most
// up-to-date by (last epoch, last LSN), compare-and-set on the epoch.

// Lease is a leader's lease as a value: the leader of Epoch may act until
// Until, by its own clock. Time is an input, never read here.
type Lease struct {
	Epoch uint64
	Until time.Time
}

// ValidAt reports whether the lease lets the leader of epoch act at now.
func (l Lease) ValidAt(epoch uint64, now time.Time) bool {
	return l.Epoch == epoch && now.Before(l.Until)
}

// Extended is the lease after a successful renewal for epoch that lasts
// until until: a renewal never shortens the lease of the same epoch (a
// slow renewal may answer after a quicker, later one).
func (l Lease) Extended(epoch uint64, until time.Time) Lease {
	if l.Epoch != epoch || until.After(l.Until) {
		return Lease{Epoch: epoch, Until: until}
	}
	return l
}

// leaseState holds the leader's lease and wakes those waiting for it.
type leaseState struct {
	mu      sync.Mutex
	lease   Lease
	changed chan struct{} // closed when the lease is extended
}

func (l *leaseState) valid(epoch uint64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lease.ValidAt(epoch, now)
}

// wait returns a channel closed at the next extension.
func (l *leaseState) wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

func (l *leaseState) extend(epoch uint64, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lease = l.lease.Extended(epoch, until)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

func (n *Node) leaseDuration() time.Duration { return n.cfg.FailoverTimeout / 2 }

// leaseLoop renews the lease while this node leads.
func (n *Node) leaseLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.FailoverTimeout / 10)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-n.renewNow:
		}
		l := n.currentLeader()
		if l == nil {
			continue
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(n.ctx, n.leaseDuration())
		err := n.control.RenewLease(ctx, n.cfg.ID, l.Epoch())
		cancel()
		switch {
		case err == nil:
			n.lease.extend(l.Epoch(), sent.Add(n.leaseDuration()))
		case errors.Is(err, control.ErrStaleEpoch):
			n.log.Warn("lease renewal refused: another leader was appointed", "epoch", l.Epoch(), "err", err)
		default:
			if n.ctx.Err() == nil {
				n.log.Warn("lease renewal failed", "epoch", l.Epoch(), "err", err)
			}
		}
	}
}

// leaseValid reports whether the leader of epoch may act now.
func (n *Node) leaseValid(epoch uint64) bool { return n.lease.valid(epoch, time.Now()) }

// HandlePosition implements transport.Handler: a failover candidate makes
// its log durable and reports where it ends.
func (n *Node) HandlePosition(ctx context.Context, req *pb.PositionRequest) (*pb.PositionResponse, error) {
	if known := n.control.State().Epoch; req.GetEpoch() != 0 && req.GetEpoch() < known {
		// The asking controller decides on an older cluster state than
		// this node has applied: its failover would be stale. (Epoch 0
		// asks without deciding anything: a probe.)
		return nil, fmt.Errorf("position: asked for epoch %d, but epoch %d is already appointed", req.GetEpoch(), known)
	}
	if err := n.store.Sync(); err != nil {
		return nil, fmt.Errorf("position: %w", err)
	}
	st := n.store.State()
	return &pb.PositionResponse{Id: n.cfg.ID, LastEpoch: st.LastEpoch, LastLsn: st.LastLSN}, nil
}

// failoverDuty is the controller's failover: see the comment at the top.
type failoverDuty struct {
	n       *Node
	epoch   uint64
	seq     uint64
	seen    time.Time // when a renewal (or the epoch) was last seen change
	lastRun time.Time
	// transferAt is when this controller last asked to hand its role to
	// the data leader.
	transferAt time.Time
}

func (d *failoverDuty) run(ctx context.Context, g *control.Group) {
	now := time.Now()
	timeout := d.n.cfg.FailoverTimeout
	// A gap is measured from the end of the previous run: a run that
	// waited (barrier, probe, positions) is not a takeover.
	defer func() { d.lastRun = time.Now() }()
	if now.Sub(d.lastRun) > 3*g.TickInterval() {
		// This member just took over as controller (or stalled). Time the
		// leader's silence from the last renewal it applied, which it may
		// have applied long ago as a follower: that is what makes a
		// failover after a dead controller+leader take one timeout rather
		// than an election plus a timeout. That time is safe only once
		// every entry committed before the takeover is applied here (a
		// renewal it has not applied could be newer): the barrier ensures
		// it, and whatever it applies is stamped now.
		bctx, cancel := context.WithTimeout(ctx, g.DutyTimeout())
		err := g.Barrier(bctx)
		cancel()
		if err != nil {
			return // not (or no longer) the controller; try next tick
		}
		ep, seq, at := g.LeaseObserved()
		d.epoch, d.seq, d.seen = ep, seq, at
		st := g.State()
		if st.Leader != "" && st.Leader != d.n.cfg.ID && time.Since(d.seen) > timeout/2 && d.n.leaderAnswers(ctx, st) {
			// The leader is alive; its renewals could not commit while
			// the control plane had no controller. Give it half a timeout
			// to renew through this one before judging it.
			d.seen = time.Now().Add(-timeout / 2)
		}
		return
	}
	st := g.State()
	if ep, seq, at := g.LeaseObserved(); ep != d.epoch || seq != d.seq {
		d.epoch, d.seq, d.seen = ep, seq, at
	}
	if st.Leader == "" {
		return
	}
	if now.Sub(d.seen) < timeout {
		d.colocate(ctx, g, st, now)
		return
	}
	best, why, err := d.n.pickCandidate(ctx, st)
	if err != nil {
		d.n.log.Warn("leader lease expired but no safe failover candidate", "leader", st.Leader, "epoch", st.Epoch, "why", err)
		d.seen = now.Add(-timeout + time.Second) // retry in a second
		return
	}
	actx, cancel := context.WithTimeout(ctx, g.DutyTimeout())
	defer cancel()
	next, err := g.Appoint(actx, best, st.Epoch)
	if err != nil {
		d.n.log.Warn("failover appointment failed", "candidate", best, "err", err)
		return
	}
	d.n.log.Warn("FAILOVER: appointed a new leader", "old_leader", st.Leader, "new_leader", best, "epoch", next, "why", why,
		"silent_for", now.Sub(d.seen).Round(time.Millisecond).String())
	d.n.metrics.failovers.Inc()
}

// colocate hands the controller role to a live data leader. A data leader
// that is not the controller renews its lease through another node, and if
// that node fails the lease lapses while raft elects a new controller:
// writes stall over a fault of a node they do not depend on. With both roles
// on one node, only that node's failure interrupts writes, and then the
// failover (from the renewal the next controller applied) takes about one
// timeout. A leader renewing within half a timeout counts as live.
func (d *failoverDuty) colocate(ctx context.Context, g *control.Group, st control.State, now time.Time) {
	timeout := d.n.cfg.FailoverTimeout
	if st.Leader == d.n.cfg.ID || now.Sub(d.seen) > timeout/2 || now.Sub(d.transferAt) < 5*timeout {
		return
	}
	d.transferAt = now
	if err := g.TransferLeadership(ctx, st.Leader); err != nil {
		d.n.log.Debug("hand the controller role to the data leader", "leader", st.Leader, "err", err)
		return
	}
	d.n.log.Info("handing the controller role to the data leader", "leader", st.Leader)
}

// leaderAnswers asks the data leader, briefly, whether it is alive. It only
// spares a live leader a failover; safety never rests on the answer.
func (n *Node) leaderAnswers(ctx context.Context, st control.State) bool {
	m, ok := st.Member(st.Leader)
	if !ok {
		return false
	}
	c, err := n.pool.Client(m.PeerAddr)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.FailoverTimeout/5)
	defer cancel()
	_, err = c.Position(ctx, &pb.PositionRequest{Epoch: st.Epoch})
	return err == nil
}

// pickCandidate asks the eligible followers for their positions and picks
// the most up-to-date (replication.FailoverCandidates and ChooseSuccessor
// decide; this only does the asking), or explains why none is safe.
func (n *Node) pickCandidate(ctx context.Context, st control.State) (string, string, error) {
	members := make([]string, len(st.Members))
	for i, m := range st.Members {
		members[i] = m.ID
	}
	cands, need := replication.FailoverCandidates(members, st.Leader, st.SyncSet, st.Policy)
	var mu sync.Mutex
	var got []replication.Position
	var errs []string
	var wg sync.WaitGroup
	for _, id := range cands {
		m, ok := st.Member(id)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			var r *pb.PositionResponse
			var err error
			if id == n.cfg.ID {
				r, err = n.HandlePosition(qctx, &pb.PositionRequest{Epoch: st.Epoch})
			} else if c, cerr := n.pool.Client(m.PeerAddr); cerr != nil {
				err = cerr
			} else {
				r, err = c.Position(qctx, &pb.PositionRequest{Epoch: st.Epoch})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", id, err))
				return
			}
			got = append(got, replication.Position{ID: id, Epoch: r.GetLastEpoch(), LSN: r.GetLastLsn()})
		}()
	}
	wg.Wait()
	best, err := replication.ChooseSuccessor(cands, need, got)
	if err != nil {
		return "", "", fmt.Errorf("%w (%v)", err, errs)
	}
	return best.ID, fmt.Sprintf("lease of %s expired; %s has the newest log (epoch %d, LSN %d) of %d answering candidates", st.Leader, best.ID, best.Epoch, best.LSN, len(got)), nil
}
