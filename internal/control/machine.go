package control

import (
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/replicant-db/replicant/internal/policy"
)

// recentRequests bounds the window of request ids remembered for
// de-duplication: a proposal that is re-sent (because its first copy may have
// been lost with a raft leader change) is applied at most once as long as
// its copies land within this many requests of each other.
const recentRequests = 1024

// Command operations (the "op" of a normal raft entry).
const (
	opPolicy  = "policy"
	opSyncSet = "syncset"
	opAppoint = "appoint"
	opNoop    = "noop"    // Barrier: changes nothing
	opAddrs   = "addrs"   // a member publishes its client addresses
	opRenew   = "renew"   // the data leader renews its lease
	opHandoff = "handoff" // a leaderless member finished handing off keys for a membership
)

// command is the JSON payload of a normal raft entry.
type command struct {
	Op  string `json:"op"`
	Req string `json:"req"` // unique per proposal; lets the proposer wait for it

	Policy   string   `json:"policy,omitempty"`
	Ack      string   `json:"ack,omitempty"`
	Fallback string   `json:"fallback,omitempty"`
	Epoch    uint64   `json:"epoch,omitempty"` // syncset: must equal State.Epoch; appoint: expected epoch
	Set      []string `json:"set,omitempty"`
	Leader   string   `json:"leader,omitempty"`
	Member   *Member  `json:"member,omitempty"` // addrs; handoff: its ID
	// Membership is what a handoff command finished for (MembershipID).
	Membership string `json:"membership,omitempty"`
	// CAS makes a syncset command conditional: it applies only if the
	// current sync set has exactly the members of From.
	CAS  bool     `json:"cas,omitempty"`
	From []string `json:"from,omitempty"`
}

// initSettings is carried by the bootstrap conf changes.
type initSettings struct {
	Policy   string `json:"policy"`
	Ack      string `json:"ack"`
	Fallback string `json:"fallback"`
}

// confContext is the JSON context of a raft ConfChange.
type confContext struct {
	Member *Member       `json:"member,omitempty"` // add
	ID     string        `json:"id,omitempty"`     // remove
	Req    string        `json:"req,omitempty"`
	Init   *initSettings `json:"init,omitempty"` // bootstrap only
}

// result is what the application of one proposal produced.
type result struct {
	epoch uint64
	err   error
}

// machine is the deterministic state machine. It is owned by the raft loop.
type machine struct {
	state  State
	recent []string // request ids applied, oldest first, at most recentRequests
	seen   map[string]struct{}
}

// snapshotData is what a raft snapshot carries.
type snapshotData struct {
	State  State    `json:"state"`
	Recent []string `json:"recent,omitempty"`
}

func newMachine() *machine {
	// Until bootstrap records its settings the defaults hold (the zero
	// policy.Ack would be "received").
	return &machine{seen: make(map[string]struct{}), state: State{Ack: policy.AckDurable, Fallback: policy.FallbackBlock}}
}

func (m *machine) marshal() ([]byte, error) {
	b, err := json.Marshal(snapshotData{State: m.state, Recent: m.recent})
	if err != nil {
		return nil, fmt.Errorf("control: encode snapshot: %w", err)
	}
	return b, nil
}

func (m *machine) restore(data []byte) error {
	var sd snapshotData
	if err := json.Unmarshal(data, &sd); err != nil {
		return fmt.Errorf("control: decode snapshot: %w", err)
	}
	m.state = sd.State.Clone()
	m.recent = slices.Clone(sd.Recent)
	m.seen = make(map[string]struct{}, len(m.recent))
	for _, r := range m.recent {
		m.seen[r] = struct{}{}
	}
	return nil
}

// duplicate reports whether req was already applied.
func (m *machine) duplicate(req string) bool {
	if req == "" {
		return false
	}
	_, ok := m.seen[req]
	return ok
}

// remember records req as applied.
func (m *machine) remember(req string) {
	if req == "" {
		return
	}
	m.seen[req] = struct{}{}
	m.recent = append(m.recent, req)
	if len(m.recent) > recentRequests {
		delete(m.seen, m.recent[0])
		m.recent = slices.Delete(m.recent, 0, 1)
	}
}

// applyCommand applies a normal entry's payload. It returns the request id
// (empty when the payload is undecodable) and the result. A duplicate request
// reports dup=true and changes nothing.
func (m *machine) applyCommand(data []byte) (req string, res result, dup bool) {
	var c command
	if err := json.Unmarshal(data, &c); err != nil {
		return "", result{err: fmt.Errorf("%w: undecodable command: %w", ErrInvalidArgument, err)}, false
	}
	if m.duplicate(c.Req) {
		return c.Req, result{}, true
	}
	m.remember(c.Req)
	switch c.Op {
	case opPolicy:
		return c.Req, result{err: m.setPolicy(c.Policy, c.Ack, c.Fallback)}, false
	case opSyncSet:
		if c.CAS && !sameMembers(m.state.SyncSet, c.From) {
			return c.Req, result{err: fmt.Errorf("%w: expected %v, found %v", ErrSyncSetChanged, c.From, m.state.SyncSet)}, false
		}
		return c.Req, result{err: m.setSyncSet(c.Epoch, c.Set)}, false
	case opAppoint:
		ep, err := m.appoint(c.Leader, c.Epoch)
		if err == nil && (c.Policy != "" || c.Ack != "" || c.Fallback != "") {
			// The bootstrap appointment re-asserts the controller's initial
			// settings so that all members agree on them from epoch 1 on.
			_ = m.setPolicy(c.Policy, c.Ack, c.Fallback)
		}
		return c.Req, result{epoch: ep, err: err}, false
	case opNoop:
		return c.Req, result{}, false
	case opAddrs:
		return c.Req, result{err: m.setAddrs(c.Member)}, false
	case opHandoff:
		return c.Req, result{err: m.handedOff(c.Member, c.Membership)}, false
	case opRenew:
		if c.Epoch != m.state.Epoch || c.Leader != m.state.Leader {
			return c.Req, result{err: fmt.Errorf("%w: lease renewal by %s for epoch %d; leader is %s at epoch %d", ErrStaleEpoch, c.Leader, c.Epoch, m.state.Leader, m.state.Epoch)}, false
		}
		m.state.LeaseSeq++
		return c.Req, result{epoch: m.state.Epoch}, false
	default:
		return c.Req, result{err: fmt.Errorf("%w: unknown command %q", ErrInvalidArgument, c.Op)}, false
	}
}

// sameMember compares members but for Joining, which changes after the
// member was added.
func sameMember(a, b Member) bool {
	a.Joining = b.Joining
	return a == b
}

// handedOff records that member u finished handing off keys for
// membership, and ends the joining of new members once every member has
// for the current membership. A report for another membership (a change
// raced it) is kept but counts for nothing.
func (m *machine) handedOff(u *Member, membership string) error {
	if u == nil {
		return fmt.Errorf("%w: handoff without a member", ErrInvalidArgument)
	}
	if _, ok := m.state.Member(u.ID); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownMember, u.ID)
	}
	if m.state.Handoffs == nil {
		m.state.Handoffs = map[string]string{}
	}
	m.state.Handoffs[u.ID] = membership
	m.settleJoins()
	return nil
}

// settleJoins clears Joining when every member has handed off for the
// current membership.
func (m *machine) settleJoins() {
	cur := MembershipID(m.state.MemberIDs())
	for _, mb := range m.state.Members {
		if m.state.Handoffs[mb.ID] != cur {
			return
		}
	}
	for i := range m.state.Members {
		m.state.Members[i].Joining = false
	}
}

// setAddrs updates a member's client (RESP, HTTP) addresses; its id, raft
// id and peer address are fixed by membership changes.
func (m *machine) setAddrs(u *Member) error {
	if u == nil {
		return fmt.Errorf("%w: addrs without a member", ErrInvalidArgument)
	}
	for i := range m.state.Members {
		if m.state.Members[i].ID == u.ID {
			m.state.Members[i].RESPAddr, m.state.Members[i].HTTPAddr = u.RESPAddr, u.HTTPAddr
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownMember, u.ID)
}

// setPolicy applies a policy command: its fields travel as text (empty
// keeps the current value) and are parsed here, so every member stores the
// same typed settings or rejects the same command.
func (m *machine) setPolicy(commit, ack, fallback string) error {
	s, err := parseSettings(m.state, commit, ack, fallback)
	if err != nil {
		return err
	}
	m.state.Policy, m.state.Ack, m.state.Fallback, m.state.Configured = s.Policy, s.Ack, s.Fallback, true
	return nil
}

// parseSettings returns cur's settings with the non-empty texts applied.
func parseSettings(cur State, commit, ack, fallback string) (State, error) {
	if commit != "" {
		p, err := policy.ParseCommit(commit)
		if err != nil {
			return cur, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		cur.Policy = p
	}
	if ack != "" {
		a, err := policy.ParseAck(ack)
		if err != nil {
			return cur, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		cur.Ack = a
	}
	if fallback != "" {
		f, err := policy.ParseFallback(fallback)
		if err != nil {
			return cur, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		cur.Fallback = f
	}
	return cur, nil
}

func (m *machine) setSyncSet(epoch uint64, set []string) error {
	if epoch != m.state.Epoch {
		return fmt.Errorf("%w: sync set for epoch %d, current epoch is %d", ErrStaleEpoch, epoch, m.state.Epoch)
	}
	if err := validateSyncSet(m.state, set); err != nil {
		return err
	}
	m.state.SyncSet = slices.Clone(set)
	if len(m.state.SyncSet) == 0 {
		m.state.SyncSet = nil
	}
	return nil
}

func sameMembers(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func validateSyncSet(s State, set []string) error {
	for i, id := range set {
		if _, ok := s.Member(id); !ok {
			return fmt.Errorf("%w: sync set names %q", ErrUnknownMember, id)
		}
		if id == s.Leader {
			return fmt.Errorf("%w: the data leader %q cannot be in its own sync set", ErrInvalidArgument, id)
		}
		if slices.Contains(set[:i], id) {
			return fmt.Errorf("%w: sync set names %q twice", ErrInvalidArgument, id)
		}
	}
	return nil
}

func (m *machine) appoint(leader string, expect uint64) (uint64, error) {
	if expect != m.state.Epoch {
		return 0, fmt.Errorf("%w: appointment expected epoch %d, current epoch is %d", ErrStaleEpoch, expect, m.state.Epoch)
	}
	if _, ok := m.state.Member(leader); !ok {
		return 0, fmt.Errorf("%w: cannot appoint %q", ErrUnknownMember, leader)
	}
	// Re-appointing the same leader (after it restarted) keeps the sync
	// set: its members still hold every acknowledged write. A new leader
	// starts with none and builds its own.
	if leader != m.state.Leader {
		m.state.SyncSet = nil
	}
	m.state.Leader = leader
	m.state.Epoch = expect + 1
	m.state.LeaseSeq = 0
	return m.state.Epoch, nil
}

// confDecision is the outcome of checking a conf change before raft applies it.
type confDecision struct {
	ctx    confContext
	accept bool // call ApplyConfChange and record the change
	dup    bool // a re-sent copy of an applied request: a no-op
	err    error
}

// decideConfChange validates a conf change entry against the current state
// and raft configuration. Rejected changes must not be passed to raft.
func (m *machine) decideConfChange(cc *raftpb.ConfChange, cs *raftpb.ConfState) confDecision {
	var d confDecision
	if len(cc.GetContext()) > 0 {
		if err := json.Unmarshal(cc.GetContext(), &d.ctx); err != nil {
			d.err = fmt.Errorf("%w: undecodable conf change context: %w", ErrInvalidArgument, err)
			return d
		}
	}
	if m.duplicate(d.ctx.Req) {
		d.dup = true
		return d
	}
	m.remember(d.ctx.Req)
	nodeID := cc.GetNodeId()
	if nodeID == 0 {
		d.err = fmt.Errorf("%w: conf change for raft id 0", ErrInvalidArgument)
		return d
	}
	if len(cs.GetVotersOutgoing()) > 0 {
		d.err = fmt.Errorf("%w: raft configuration is joint", ErrInvalidArgument)
		return d
	}
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode:
		mem := d.ctx.Member
		if mem == nil || mem.ID == "" || mem.RaftID != nodeID || RaftID(mem.ID) != nodeID {
			d.err = fmt.Errorf("%w: add-node conf change without a matching member", ErrInvalidArgument)
			return d
		}
		if old, ok := m.state.memberByRaftID(nodeID); ok && !sameMember(old, *mem) {
			d.err = fmt.Errorf("%w: %q is already a member as %+v", ErrMemberConflict, mem.ID, old)
			return d
		}
		d.accept = true
	case raftpb.ConfChangeRemoveNode:
		if d.ctx.ID == "" || RaftID(d.ctx.ID) != nodeID {
			d.err = fmt.Errorf("%w: remove-node conf change without a matching member id", ErrInvalidArgument)
			return d
		}
		if d.ctx.ID == m.state.Leader {
			d.err = fmt.Errorf("%w: %q", ErrRemoveLeader, d.ctx.ID)
			return d
		}
		if _, ok := m.state.Member(d.ctx.ID); !ok {
			d.err = fmt.Errorf("%w: %q", ErrUnknownMember, d.ctx.ID)
			return d
		}
		voters := cs.GetVoters()
		if len(voters) == 1 && voters[0] == nodeID || len(voters) == 0 {
			d.err = fmt.Errorf("%w: cannot remove the last member %q", ErrInvalidArgument, d.ctx.ID)
			return d
		}
		d.accept = true
	default:
		d.err = fmt.Errorf("%w: unsupported conf change type %v", ErrInvalidArgument, cc.GetType())
	}
	return d
}

// commitConfChange records an accepted conf change in the state.
func (m *machine) commitConfChange(cc *raftpb.ConfChange, d confDecision) {
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode:
		if _, ok := m.state.Member(d.ctx.Member.ID); !ok {
			m.state.Members = append(m.state.Members, *d.ctx.Member)
		}
		if in := d.ctx.Init; in != nil && m.state.Epoch == 0 && !m.state.Configured {
			// Validated by every member's Open; a bad one keeps the defaults.
			_ = m.setPolicy(in.Policy, in.Ack, in.Fallback)
		}
	case raftpb.ConfChangeRemoveNode:
		m.state.Members = slices.DeleteFunc(m.state.Members, func(x Member) bool { return x.ID == d.ctx.ID })
		m.state.SyncSet = slices.DeleteFunc(m.state.SyncSet, func(x string) bool { return x == d.ctx.ID })
		if len(m.state.SyncSet) == 0 {
			m.state.SyncSet = nil
		}
		delete(m.state.Handoffs, d.ctx.ID)
		if len(m.state.Members) > 0 {
			// The removed member may have been the last one to hand off.
			m.settleJoins()
		}
	}
}
