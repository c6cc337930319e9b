package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Mutations propose through raft (a follower forwards to the raft leader)
// and return once the change has been applied on this member, or ctx ends.
//
// A proposal can be lost in flight when the raft leader changes; so it is
// re-sent every two election timeouts until it is applied. Every proposal
// carries a unique request id and the state machine applies a request id at
// most once, so re-sending never applies a change twice.

func (g *Group) newReq() string {
	return fmt.Sprintf("%x.%x.%d", g.raftID, g.nonce, g.seq.Add(1))
}

// Barrier commits an empty command through raft and waits for it to apply
// here: once it returns, State() reflects every change committed before the
// call (a controller uses it after winning an election, before acting on
// the state).
func (g *Group) Barrier(ctx context.Context) error {
	res, err := g.proposeCommand(ctx, command{Op: opNoop})
	if err != nil {
		return fmt.Errorf("control: barrier: %w", err)
	}
	return res.err
}

// SetPolicy changes the commit policy, ack level and fallback, given in the
// syntax of package policy; an empty argument keeps the current value.
// Invalid text is refused here (and again, deterministically, when the
// command applies on every member).
func (g *Group) SetPolicy(ctx context.Context, commit, ack, fallback string) error {
	s, err := parseSettings(State{}, commit, ack, fallback)
	if err != nil {
		return err
	}
	if commit == "" && ack == "" && fallback == "" {
		return nil
	}
	// Send the canonical text.
	c := command{Op: opPolicy}
	if commit != "" {
		c.Policy = s.Policy.String()
	}
	if ack != "" {
		c.Ack = s.Ack.String()
	}
	if fallback != "" {
		c.Fallback = s.Fallback.String()
	}
	res, err := g.proposeCommand(ctx, c)
	if err != nil {
		return fmt.Errorf("control: set policy: %w", err)
	}
	if res.err != nil {
		return fmt.Errorf("control: set policy: %w", res.err)
	}
	return nil
}

// UpdateMember records a member's client addresses (RESP, HTTP). Members
// learn their peers' client addresses this way, since --initial-cluster only
// names peer addresses.
func (g *Group) UpdateMember(ctx context.Context, m Member) error {
	if _, ok := g.State().Member(m.ID); !ok {
		return fmt.Errorf("control: update member: %w: %q", ErrUnknownMember, m.ID)
	}
	res, err := g.proposeCommand(ctx, command{Op: opAddrs, Member: &Member{ID: m.ID, RESPAddr: m.RESPAddr, HTTPAddr: m.HTTPAddr}})
	if err != nil {
		return fmt.Errorf("control: update member %s: %w", m.ID, err)
	}
	if res.err != nil {
		return fmt.Errorf("control: update member %s: %w", m.ID, res.err)
	}
	return nil
}

// ReportHandoff records that member id finished handing off its keys for
// membership (MembershipID of the members it handed off for). See
// Member.Joining.
func (g *Group) ReportHandoff(ctx context.Context, id, membership string) error {
	res, err := g.proposeCommand(ctx, command{Op: opHandoff, Member: &Member{ID: id}, Membership: membership})
	if err != nil {
		return fmt.Errorf("control: report handoff of %s: %w", id, err)
	}
	if res.err != nil {
		return fmt.Errorf("control: report handoff of %s: %w", id, res.err)
	}
	return nil
}

// CompareAndSetSyncSet replaces the sync set with set only if it still
// holds exactly the members of from (ErrSyncSetChanged otherwise) and epoch
// is current (ErrStaleEpoch). The leader uses it so that a delayed, older
// proposal can never overwrite a newer set.
func (g *Group) CompareAndSetSyncSet(ctx context.Context, epoch uint64, from, set []string) error {
	if cur := g.State().Epoch; epoch < cur {
		return fmt.Errorf("control: set sync set: %w: epoch %d, current epoch is %d", ErrStaleEpoch, epoch, cur)
	}
	res, err := g.proposeCommand(ctx, command{Op: opSyncSet, Epoch: epoch, Set: slices.Clone(set), CAS: true, From: slices.Clone(from)})
	if err != nil {
		return fmt.Errorf("control: set sync set: %w", err)
	}
	if res.err != nil {
		return fmt.Errorf("control: set sync set: %w", res.err)
	}
	return nil
}

// RenewLease records a lease renewal by leader for epoch. It fails with
// ErrStaleEpoch if leader no longer leads that epoch. The caller times its
// lease from before the call: the controller sees the renewal later.
func (g *Group) RenewLease(ctx context.Context, leader string, epoch uint64) error {
	res, err := g.proposeCommand(ctx, command{Op: opRenew, Epoch: epoch, Leader: leader})
	if err != nil {
		return fmt.Errorf("control: renew lease: %w", err)
	}
	if res.err != nil {
		return fmt.Errorf("control: renew lease: %w", res.err)
	}
	return nil
}

// SetSyncSet replaces the sync set. It is rejected with ErrStaleEpoch unless
// epoch is the current State.Epoch, so only the leader of the current epoch
// changes it. Members must exist and the data leader cannot be in it.
func (g *Group) SetSyncSet(ctx context.Context, epoch uint64, set []string) error {
	if cur := g.State().Epoch; epoch < cur {
		// Epochs never decrease: this is stale whatever the log holds.
		return fmt.Errorf("control: set sync set: %w: epoch %d, current epoch is %d", ErrStaleEpoch, epoch, cur)
	}
	res, err := g.proposeCommand(ctx, command{Op: opSyncSet, Epoch: epoch, Set: slices.Clone(set)})
	if err != nil {
		return fmt.Errorf("control: set sync set: %w", err)
	}
	if res.err != nil {
		return fmt.Errorf("control: set sync set: %w", res.err)
	}
	return nil
}

// Appoint makes leader the data leader if the epoch is still expectEpoch
// (compare-and-set): Leader = leader, Epoch = expectEpoch+1, SyncSet = nil.
// It returns the new epoch, or ErrStaleEpoch.
func (g *Group) Appoint(ctx context.Context, leader string, expectEpoch uint64) (uint64, error) {
	return g.appoint(ctx, command{Op: opAppoint, Leader: leader, Epoch: expectEpoch})
}

func (g *Group) appoint(ctx context.Context, c command) (uint64, error) {
	if c.Leader == "" {
		return 0, fmt.Errorf("control: appoint: %w: empty leader id", ErrInvalidArgument)
	}
	if cur := g.State().Epoch; c.Epoch < cur {
		return 0, fmt.Errorf("control: appoint %s: %w: expected epoch %d, current epoch is %d", c.Leader, ErrStaleEpoch, c.Epoch, cur)
	}
	res, err := g.proposeCommand(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("control: appoint %s: %w", c.Leader, err)
	}
	if res.err != nil {
		return 0, fmt.Errorf("control: appoint %s: %w", c.Leader, res.err)
	}
	return res.epoch, nil
}

// AddMember adds a member (a raft voter, appended to State.Members). Adding
// the same member again is a no-op; an id or raft id already used with other
// addresses is ErrMemberConflict. The new node should have been opened with
// Config.Join.
func (g *Group) AddMember(ctx context.Context, m Member) error {
	m, err := normalizeMember(m)
	if err != nil {
		return fmt.Errorf("control: add member: %w", err)
	}
	st := g.State()
	if old, ok := st.memberByRaftID(m.RaftID); ok {
		// Joining is the state machine's to clear: a member added again
		// (a retried join) may have finished joining meanwhile.
		if sameMember(old, m) {
			return nil
		}
		return fmt.Errorf("control: add member %s: %w: %+v", m.ID, ErrMemberConflict, old)
	}
	req := g.newReq()
	b, err := json.Marshal(confContext{Member: &m, Req: req})
	if err != nil {
		return fmt.Errorf("control: add member %s: encode: %w", m.ID, err)
	}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(m.RaftID), Context: b}
	res, err := g.proposeAndWait(ctx, req, proposal{cc: cc})
	if err != nil {
		return fmt.Errorf("control: add member %s: %w", m.ID, err)
	}
	if res.err != nil {
		return fmt.Errorf("control: add member %s: %w", m.ID, res.err)
	}
	return nil
}

// RemoveMember removes a member from raft and State.Members and drops it
// from the sync set. Removing the current data leader is refused with
// ErrRemoveLeader (appoint another leader first); an unknown id is
// ErrUnknownMember.
func (g *Group) RemoveMember(ctx context.Context, id string) error {
	st := g.State()
	m, ok := st.Member(id)
	if !ok {
		return fmt.Errorf("control: remove member: %w: %q", ErrUnknownMember, id)
	}
	if id == st.Leader {
		return fmt.Errorf("control: remove member: %w: %q", ErrRemoveLeader, id)
	}
	req := g.newReq()
	b, err := json.Marshal(confContext{ID: id, Req: req})
	if err != nil {
		return fmt.Errorf("control: remove member %s: encode: %w", id, err)
	}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(m.RaftID), Context: b}
	res, err := g.proposeAndWait(ctx, req, proposal{cc: cc})
	if err != nil {
		return fmt.Errorf("control: remove member %s: %w", id, err)
	}
	if res.err != nil {
		return fmt.Errorf("control: remove member %s: %w", id, res.err)
	}
	return nil
}

func (g *Group) proposeCommand(ctx context.Context, c command) (result, error) {
	c.Req = g.newReq()
	b, err := json.Marshal(c)
	if err != nil {
		return result{}, fmt.Errorf("encode command: %w", err)
	}
	return g.proposeAndWait(ctx, c.Req, proposal{data: b})
}

// proposeAndWait registers a waiter for req, proposes (re-sending as needed)
// and waits for the application of req on this member.
func (g *Group) proposeAndWait(ctx context.Context, req string, p proposal) (result, error) {
	ch := make(chan result, 1)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return result{}, g.closedErr()
	}
	g.waiters[req] = ch
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.waiters, req)
		g.mu.Unlock()
	}()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case r := <-ch:
			return r, nil
		case <-ctx.Done():
			return result{}, fmt.Errorf("waiting for the change to apply: %w", ctx.Err())
		case <-g.donec:
			return result{}, g.closedErr()
		case <-retry.C:
			err := g.submit(ctx, p)
			switch {
			case err == nil:
				retry.Reset(g.resend)
			case errors.Is(err, errNoLeader), errors.Is(err, raft.ErrProposalDropped):
				// Not appended anywhere: safe to try again soon.
				retry.Reset(g.tick)
			default:
				return result{}, err
			}
		}
	}
}

// TransferLeadership asks this member, if it is the controller, to hand
// the controller role to member id (etcd raft's leadership transfer). It
// returns once the request reached the raft loop; the transfer itself
// completes, or is abandoned after an election timeout, asynchronously.
func (g *Group) TransferLeadership(ctx context.Context, id string) error {
	if !g.IsController() {
		return fmt.Errorf("%w: only the controller transfers leadership", ErrInvalidArgument)
	}
	m, ok := g.State().Member(id)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	if err := g.submit(ctx, proposal{transferTo: m.RaftID}); err != nil {
		return fmt.Errorf("control: transfer leadership to %s: %w", id, err)
	}
	return nil
}

// submit hands a proposal to the raft loop and returns raft's verdict.
func (g *Group) submit(ctx context.Context, p proposal) error {
	p.reply = make(chan error, 1)
	select {
	case g.propc <- p:
	case <-ctx.Done():
		return fmt.Errorf("proposing: %w", ctx.Err())
	case <-g.donec:
		return g.closedErr()
	}
	select {
	case err := <-p.reply:
		return err
	case <-g.donec:
		return g.closedErr()
	}
}
