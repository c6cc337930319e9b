package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/policy"
	"github.com/replicant-db/replicant/internal/replication"
	"github.com/replicant-db/replicant/internal/transport"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// startCluster starts the peer server and the control plane, and joins a
// running cluster when asked to.
func (n *Node) startCluster() error {
	maxMsg := transport.MaxMessageBytes(n.cfg.MaxValueSize, n.cfg.MaxKeySize)
	peerSecret := n.cfg.PeerSecret
	if peerSecret == "" {
		peerSecret = n.cfg.RequirePass // see Config.PeerSecret
	}
	var poolOpts, serverOpts []transport.Option
	if n.cfg.PeerServerTLS != nil {
		serverOpts = append(serverOpts, transport.WithServerTLS(n.cfg.PeerServerTLS))
	}
	if n.cfg.PeerClientTLS != nil {
		poolOpts = append(poolOpts, transport.WithClientTLS(n.cfg.PeerClientTLS))
	}
	n.pool = transport.NewPool(maxMsg, peerSecret, poolOpts...)
	ln := n.cfg.PeerListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.cfg.PeerAddr); err != nil {
			return fmt.Errorf("node: listen --peer: %w", err)
		}
	}
	n.peerLn = ln
	self := control.Member{ID: n.cfg.ID, PeerAddr: n.advertisedPeer(), RESPAddr: n.cfg.RESPAddr, HTTPAddr: n.cfg.HTTPAddr, RaftID: control.RaftID(n.cfg.ID)}
	initial := n.cfg.InitialCluster
	if len(initial) == 0 && n.cfg.Join == "" {
		initial = []control.Member{self}
	}
	for i := range initial {
		initial[i].RaftID = control.RaftID(initial[i].ID)
		if initial[i].ID == n.cfg.ID {
			initial[i].RESPAddr, initial[i].HTTPAddr = n.cfg.RESPAddr, n.cfg.HTTPAddr
		}
	}
	if n.cfg.Join == "" && !slices.ContainsFunc(initial, func(m control.Member) bool { return m.ID == n.cfg.ID }) {
		return fmt.Errorf("node: --initial-cluster does not list this node's id %q", n.cfg.ID)
	}
	n.sender = transport.NewRaftSender(n.pool, n.resolveRaft, n.log)
	g, err := control.Open(control.Config{
		ID: n.cfg.ID, Dir: filepath.Join(n.cfg.DataDir, "control"), Self: self,
		InitialCluster: initial, Join: n.cfg.Join != "",
		InitialPolicy: n.cfg.SyncPolicy, InitialAck: n.cfg.Ack, InitialFallback: n.cfg.SyncFallback,
		Transport: n.sender, Logger: n.log,
		// Raft elects a new controller within 10-20 ticks; it must be
		// quicker than a failover, which a dead controller+leader waits for.
		TickInterval: min(100*time.Millisecond, n.cfg.FailoverTimeout/20),
		Duties:       n.duties(),
		NoDataLeader: n.cfg.Mode == engine.ModeLeaderless,
	})
	if err != nil {
		return fmt.Errorf("node: control plane: %w", err)
	}
	n.control = g
	n.peer = transport.NewServer(n, maxMsg, peerSecret, serverOpts...)
	go func() {
		if err := n.peer.Serve(ln); err != nil {
			n.log.Error("peer server", "err", err)
		}
	}()
	if n.cfg.Join != "" {
		if err := n.join(self); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) advertisedPeer() string {
	if n.cfg.PeerAddr != "" {
		if host, port, err := net.SplitHostPort(n.cfg.PeerAddr); err == nil && port != "0" && host != "" {
			return n.cfg.PeerAddr
		}
	}
	return n.peerLn.Addr().String()
}

func (n *Node) join(self control.Member) error {
	ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
	defer cancel()
	if n.control.State().Index > 0 {
		if _, ok := n.control.State().Member(n.cfg.ID); ok {
			return nil // already a member: a restart of a joined node
		}
	}
	var last error
	// Retry with backoff and log the first failure and then one line per
	// ten seconds: a dead --join address should not flood the log.
	backoff := 200 * time.Millisecond
	var loggedAt time.Time
	attempts := 0
	for ctx.Err() == nil {
		c, err := n.pool.Client(n.cfg.Join)
		if err == nil {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			var resp *pb.JoinResponse
			resp, err = c.Join(rctx, &pb.JoinRequest{Id: self.ID, PeerAddr: self.PeerAddr, RespAddr: self.RESPAddr, HttpAddr: self.HTTPAddr})
			rcancel()
			if err == nil {
				// Until the raft log reaches this node it knows no peer
				// addresses: take them from the answer.
				for _, m := range resp.GetMembers() {
					n.control.AddPeerHint(control.RaftID(m.GetId()), m.GetPeerAddr())
				}
				n.log.Info("joined the cluster", "via", n.cfg.Join)
				return nil
			}
		}
		last = err
		attempts++
		if time.Since(loggedAt) >= 10*time.Second {
			loggedAt = time.Now()
			n.log.Warn("cannot join the cluster yet; retrying", "via", n.cfg.Join, "attempts", attempts, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 3*time.Second)
	}
	return fmt.Errorf("node: could not join via %s after %d attempts in %s: %w", n.cfg.Join, attempts, time.Minute, last)
}

func (n *Node) stopCluster() {
	if n.peer != nil {
		n.peer.Stop()
	}
	if n.control != nil {
		_ = n.control.Close()
	}
	if n.sender != nil {
		n.sender.Close()
	}
	if n.pool != nil {
		n.pool.Close()
	}
}

func (n *Node) resolveRaft(id uint64) (string, bool) {
	if n.control == nil {
		return "", false
	}
	return n.control.PeerAddr(id)
}

// reconcileLoop follows the control plane's state and changes this node's
// role to match it.
func (n *Node) reconcileLoop() {
	defer n.wg.Done()
	ch, cancel := n.control.Subscribe()
	defer cancel()
	n.reconcile(n.control.State())
	n.publishAddrs()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case st, ok := <-ch:
			if !ok {
				return // the control plane stopped
			}
			n.reconcile(st)
		case <-t.C:
			n.reconcile(n.control.State())
			n.publishAddrs()
		}
	}
}

// publishAddrs records this node's client addresses in the control plane
// (bootstrap only knows peer addresses), so followers can name the leader's
// RESP and HTTP addresses in redirects.
//
// Bootstrap membership entries are written locally on each node, so each
// node's copy names only its own client addresses: publish once through the
// log after every start, and again whenever the replicated copy differs.
func (n *Node) publishAddrs() {
	st := n.control.State()
	m, ok := st.Member(n.cfg.ID)
	if !ok || (n.published && m.RESPAddr == n.cfg.RESPAddr && m.HTTPAddr == n.cfg.HTTPAddr) {
		return
	}
	m.RESPAddr, m.HTTPAddr = n.cfg.RESPAddr, n.cfg.HTTPAddr
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	if err := n.control.UpdateMember(ctx, m); err != nil {
		if n.ctx.Err() == nil {
			n.log.Debug("publish client addresses", "err", err)
		}
		return
	}
	n.published = true
}

func followersOf(st control.State, self string) []string {
	var out []string
	for _, m := range st.Members {
		if m.ID != self {
			out = append(out, m.ID)
		}
	}
	return out
}

// coreConfig is the commit core's configuration from the control plane's
// typed settings (parsed once, when the command that set them applied).
func (n *Node) coreConfig(st control.State) replication.CoreConfig {
	return replication.CoreConfig{SyncTimeout: n.cfg.SyncTimeout, Policy: st.Policy, Ack: st.Ack, Fallback: st.Fallback,
		Followers: followersOf(st, n.cfg.ID), CommittedSyncSet: st.SyncSet}
}

func (n *Node) reconcile(st control.State) {
	n.mu.Lock()
	if n.ctx.Err() != nil {
		n.mu.Unlock()
		return
	}
	prev := n.state
	n.state = st
	close(n.stateCh) // wake awaitControlIndex
	n.stateCh = make(chan struct{})
	if prev.Leader != st.Leader || prev.Epoch != st.Epoch {
		// Wake those waiting for a leader (awaitLeader): they may now be
		// told where it is.
		n.roleChangedLocked()
	}
	if st.Epoch != prev.Epoch && st.Leader != "" {
		n.metrics.leaderChanges.Inc()
	}
	if n.ll != nil {
		// Leaderless: the control plane holds the ring's membership only;
		// no node leads the data.
		n.mu.Unlock()
		n.ll.MembershipChanged()
		return
	}
	act := decideRole(prev, st, n.cfg.ID, n.bootEpoch, n.runningLocked(), n.removed)
	switch act {
	case actKeep, actWait:
		n.mu.Unlock()
		return
	case actReconfigure:
		cc := n.coreConfig(st)
		if !prev.Policy.Equal(st.Policy) || prev.Ack != st.Ack || prev.Fallback != st.Fallback || !slices.Equal(followersOf(prev, n.cfg.ID), cc.Followers) {
			n.leader.Configure(cc.Policy, cc.Ack, cc.Fallback, cc.Followers)
		}
		if !slices.Equal(prev.SyncSet, st.SyncSet) {
			n.leader.SyncSetCommitted(st.SyncSet)
		}
		n.mu.Unlock()
		return
	}
	// The running role stops. It is detached under the lock (reads and
	// writes see no role and wait or fall back to the store), and closed
	// outside it: closing waits for in-flight fsyncs, and reads, writes and
	// status must not stall on n.mu meanwhile. Only this goroutine starts
	// roles, so no new role can start before the old one is closed.
	old := n.detachRoleLocked()
	if act == actRemoved {
		n.log.Warn("this node is no longer a member of the cluster; it stops replicating and serving")
		n.removed = true
		n.roleChangedLocked()
	}
	n.mu.Unlock()
	old.close(n)

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ctx.Err() != nil || n.state.Index != st.Index {
		// Stopping or a newer state arrived meanwhile: the next reconcile
		// decides from that one.
		return
	}
	switch act {
	case actReappoint:
		if !n.reappointing {
			n.reappointing = true
			n.wg.Add(1)
			go n.reappoint(st.Epoch)
		}
	case actLead:
		n.startLeaderLocked(st)
	case actFollow:
		n.startFollowerLocked(st)
	}
}

// runningLocked describes the role this node runs.
func (n *Node) runningLocked() runningRole {
	switch {
	case n.leader != nil:
		return runningRole{kind: roleLeader, epoch: n.leader.Epoch()}
	case n.follower != nil:
		return runningRole{kind: roleFollower, leader: n.follower.leaderID, epoch: n.follower.epoch}
	}
	return runningRole{}
}

// detachedRole is a role taken out of the node, to be closed without n.mu.
type detachedRole struct {
	leader   *replication.Leader
	follower *follower
}

// detachRoleLocked takes the running role out of the node and wakes those
// waiting on a role change.
func (n *Node) detachRoleLocked() detachedRole {
	d := detachedRole{leader: n.leader, follower: n.follower}
	if d.leader != nil {
		n.log.Info("stepping down as leader", "epoch", d.leader.Epoch())
		n.leader = nil
		n.switching.Store(false)
	}
	// Until the next role starts, reads fall back to the store's positions:
	// record what the old role let readers see, so the gap never shows
	// older state (and a leader started next begins its commit LSN there).
	var seen uint64
	switch {
	case d.leader != nil:
		seen = d.leader.Writer().CommitLSN()
	case d.follower != nil:
		seen = d.follower.f.ReadLSN()
	}
	if seen > 0 {
		if err := n.store.SetCommitLSN(seen); err != nil {
			n.log.Warn("record commit LSN on role change", "err", err)
		}
	}
	n.follower = nil
	if d.leader != nil || d.follower != nil {
		n.roleChangedLocked()
	}
	return d
}

// close stops a detached role and waits for it.
func (d detachedRole) close(n *Node) {
	if d.leader != nil {
		d.leader.Close()
	}
	if d.follower != nil {
		d.follower.cancel()
		<-d.follower.done
	}
}

// reappoint asks the control plane to re-appoint this node with a new epoch.
func (n *Node) reappoint(epoch uint64) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		n.reappointing = false
		n.mu.Unlock()
	}()
	for n.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		next, err := n.control.Appoint(ctx, n.cfg.ID, epoch)
		cancel()
		if err == nil {
			n.log.Info("re-appointed as leader with a new epoch after restart", "old_epoch", epoch, "epoch", next)
			return
		}
		if errors.Is(err, control.ErrStaleEpoch) || errors.Is(err, control.ErrClosed) {
			return // the cluster moved on; reconcile follows it
		}
		n.log.Debug("re-appointment failed; retrying", "err", err)
		select {
		case <-n.ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (n *Node) roleChangedLocked() {
	close(n.roleCh)
	n.roleCh = make(chan struct{})
}

func (n *Node) startLeaderLocked(st control.State) {
	n.log.Info("becoming leader", "epoch", st.Epoch, "policy", st.Policy, "ack", st.Ack, "fallback", st.Fallback)
	n.leader = replication.NewLeader(replication.LeaderConfig{
		ID: n.cfg.ID, Store: n.store, Epoch: st.Epoch, Core: n.coreConfig(st), Control: n.control,
		Logger: n.log, OnBatch: n.metrics.observeBatch, OnEvent: n.metrics.observeEvent,
		IsMember: func(id string) bool { _, ok := n.control.State().Member(id); return ok },
	})
	n.roleChangedLocked()
	select {
	case n.renewNow <- struct{}{}: // take the lease at once
	default:
	}
}

func (n *Node) startFollowerLocked(st control.State) {
	leader, _ := st.Member(st.Leader)
	n.log.Info("following", "leader", st.Leader, "epoch", st.Epoch, "leader_peer", leader.PeerAddr)
	ctx, cancel := context.WithCancel(n.ctx)
	fo := &follower{leaderID: st.Leader, epoch: st.Epoch, cancel: cancel, done: make(chan struct{})}
	addr := leader.PeerAddr
	fo.f = replication.NewFollower(replication.FollowerConfig{
		ID: n.cfg.ID, Store: n.store, LeaderID: st.Leader, Epoch: st.Epoch,
		Dial:        func() (pb.PeerClient, error) { return n.pool.Client(addr) },
		ApplyDelay:  n.cfg.ApplyDelay,
		RollbackDir: filepath.Join(n.cfg.DataDir, "rollback"),
		Logger:      n.log,
		OnRollback:  func(k int) { n.metrics.rolledBack.Add(float64(k)) },
	})
	go func() {
		defer close(fo.done)
		err := fo.f.Run(ctx)
		switch {
		case errors.Is(err, replication.ErrNotMember):
			// Removed while it could not hear the control plane say so
			// (a removed member is no longer sent its log): stop serving.
			n.mu.Lock()
			if !n.removed {
				n.log.Warn("this node is no longer a member of the cluster; it stops replicating and serving", "err", err)
				n.removed = true
				n.roleChangedLocked()
			}
			n.mu.Unlock()
		case err != nil:
			n.log.Error("follower stopped", "err", err)
		}
	}()
	n.follower = fo
	n.roleChangedLocked()
}

// HandleRaft implements transport.Handler.
func (n *Node) HandleRaft(ctx context.Context, msgs []*raftpb.Message) error {
	for _, m := range msgs {
		if err := n.control.Step(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// HandleReplicate implements transport.Handler.
func (n *Node) HandleReplicate(stream pb.Peer_ReplicateServer) error {
	l := n.currentLeader()
	if l == nil {
		return n.notLeaderErr()
	}
	return l.ServeFollower(stream)
}

// HandleSnapshot implements transport.Handler.
func (n *Node) HandleSnapshot(req *pb.SnapshotRequest, stream pb.Peer_SnapshotServer) error {
	l := n.currentLeader()
	if l == nil {
		return n.notLeaderErr()
	}
	return l.ServeSnapshot(req, stream)
}

// HandleJoin implements transport.Handler: add the caller as a member.
func (n *Node) HandleJoin(ctx context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	if req.GetId() == "" || req.GetPeerAddr() == "" {
		return nil, errors.New("join: id and peer address are required")
	}
	m := control.Member{ID: req.GetId(), PeerAddr: req.GetPeerAddr(), RESPAddr: req.GetRespAddr(), HTTPAddr: req.GetHttpAddr(), RaftID: control.RaftID(req.GetId())}
	// A leaderless node is read from only once the others have handed
	// it its keys (control.Member.Joining).
	m.Joining = n.ll != nil
	if err := n.control.AddMember(ctx, m); err != nil {
		return nil, fmt.Errorf("join %s: %w", m.ID, err)
	}
	n.log.Info("member joined", "member", m.ID, "peer", m.PeerAddr)
	resp := &pb.JoinResponse{}
	for _, x := range n.control.State().Members {
		resp.Members = append(resp.Members, &pb.Member{Id: x.ID, PeerAddr: x.PeerAddr, RespAddr: x.RESPAddr, HttpAddr: x.HTTPAddr})
	}
	return resp, nil
}

// SetPolicy validates and records a new commit policy, ack level or
// fallback (empty strings keep the current value).
func (n *Node) SetPolicy(ctx context.Context, commit, ack, fallback string) error {
	if commit != "" {
		p, err := policy.ParseCommit(commit)
		if err != nil {
			return err
		}
		if err := checkPolicyMembers(p, n.control.State().Members); err != nil {
			return err
		}
		commit = p.String()
	}
	if ack != "" {
		a, err := policy.ParseAck(ack)
		if err != nil {
			return err
		}
		ack = a.String()
	}
	if fallback != "" {
		f, err := policy.ParseFallback(fallback)
		if err != nil {
			return err
		}
		fallback = f.String()
	}
	if err := n.control.SetPolicy(ctx, commit, ack, fallback); err != nil {
		return err
	}
	// The change is applied in the control plane, but this node's own view
	// (status, /v1/config, the leader's configuration) follows it through
	// the reconcile loop: wait for that, so the caller's next read shows its
	// own change. Best effort: the change stands even if ctx ends first.
	n.awaitControlIndex(ctx, n.control.State().Index)
	return nil
}

// checkPolicyMembers refuses a policy that names a node outside the cluster:
// such a name can never acknowledge, so a policy that relies on it would
// block every write. The leader may be named (it never counts itself).
func checkPolicyMembers(p policy.Commit, members []control.Member) error {
	var unknown []string
	for _, id := range p.Members {
		if !slices.ContainsFunc(members, func(m control.Member) bool { return m.ID == id }) {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	return &policy.Error{Input: p.String(),
		Reason: fmt.Sprintf("%s %s not a member of the cluster (members: %s)", strings.Join(unknown, ", "), isAre(len(unknown)), strings.Join(ids, ", "))}
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// awaitControlIndex waits until the reconcile loop has taken in the control
// plane state at raft index idx, or ctx or the node ends.
func (n *Node) awaitControlIndex(ctx context.Context, idx uint64) {
	for {
		n.mu.Lock()
		seen, taken := n.state.Index, n.stateCh
		n.mu.Unlock()
		if seen >= idx {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-n.ctx.Done():
			return
		case <-taken:
		}
	}
}

// RemoveMember takes a member out of the cluster.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	return n.control.RemoveMember(ctx, id)
}
