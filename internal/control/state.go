package control

import (
	"errors"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"github.com/replicant-db/replicant/internal/policy"
)

// Errors returned by the control plane. Callers test them with errors.Is;
// the returned errors wrap them with details.
var (
	// ErrStaleEpoch: a compare-and-set on the epoch (SetSyncSet, Appoint)
	// named an epoch that is no longer the current one.
	ErrStaleEpoch = errors.New("control: stale epoch")
	// ErrSyncSetChanged: a compare-and-set of the sync set found another set.
	ErrSyncSetChanged = errors.New("control: sync set changed")
	// ErrRemoveLeader: RemoveMember was asked to remove the current data leader.
	ErrRemoveLeader = errors.New("control: cannot remove the current data leader")
	// ErrUnknownMember: a member id that is not in State.Members.
	ErrUnknownMember = errors.New("control: unknown member")
	// ErrMemberConflict: AddMember with an id (or raft id) that is already used
	// by a member with different addresses.
	ErrMemberConflict = errors.New("control: member conflicts with an existing member")
	// ErrInvalidArgument: a malformed request (empty id, bad ack level, ...).
	ErrInvalidArgument = errors.New("control: invalid argument")
	// ErrClosed: the Group was closed (or stopped after a fatal error).
	ErrClosed = errors.New("control: group closed")
	// ErrCorrupt: the persisted raft log in Dir cannot be read back.
	ErrCorrupt = errors.New("control: corrupt persistence file")
)

// Member is one node of the cluster as the control plane knows it.
type Member struct {
	ID       string `json:"id"`
	PeerAddr string `json:"peer_addr,omitempty"`
	RESPAddr string `json:"resp_addr,omitempty"`
	HTTPAddr string `json:"http_addr,omitempty"`
	RaftID   uint64 `json:"raft_id"`
	// Joining (leaderless mode) marks a member that was added to a running
	// cluster and is not read from yet: coordinators keep reading the
	// ring without it, and count writes on both rings, until every
	// member has handed off its keys for the new membership
	// (State.Handoffs). Cleared by the state machine, never by a caller.
	Joining bool `json:"joining,omitempty"`
}

// RaftID derives the raft node id of a member id: FNV-64a of the id, never 0.
func RaftID(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	v := h.Sum64()
	if v == 0 {
		v = 1
	}
	return v
}

// State is the replicated cluster state. Every member applies the same
// sequence of States; State.Index is the raft index of the last applied entry.
type State struct {
	Members []Member `json:"members"` // bootstrap/priority order, joined members appended
	// The commit settings, typed; they persist as their canonical text, so
	// state written as plain strings reads back unchanged.
	Policy   policy.Commit   `json:"policy"`
	Ack      policy.Ack      `json:"ack"`
	Fallback policy.Fallback `json:"fallback"`
	// Configured is set once bootstrap or SetPolicy recorded the settings
	// (the zero values are valid settings, so they cannot say it).
	Configured bool     `json:"configured,omitempty"`
	Leader     string   `json:"leader"`     // data leader id, "" before the first appointment
	Epoch      uint64   `json:"epoch"`      // increases with every appointment
	SyncSet    []string `json:"sync_set"`   // followers whose acks currently count for commit
	Index      uint64   `json:"raft_index"` // raft index of the last applied entry
	// LeaseSeq counts the data leader's lease renewals in this epoch. Its
	// value means nothing across nodes; the controller only watches it
	// change, timing renewals by its own clock.
	LeaseSeq uint64 `json:"lease_seq"`
	// Handoffs (leaderless mode) records, per member, the membership
	// (MembershipID) it last finished handing keys off for. When every
	// member has finished for the current membership, no member is
	// Joining any more.
	Handoffs map[string]string `json:"handoffs,omitempty"`
}

// MembershipID names a set of members: their ids, sorted, comma-separated.
func MembershipID(ids []string) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return strings.Join(s, ",")
}

// MemberIDs returns the members' ids in State.Members order.
func (s State) MemberIDs() []string {
	out := make([]string, len(s.Members))
	for i, m := range s.Members {
		out[i] = m.ID
	}
	return out
}

// Member returns the member with the given id.
func (s State) Member(id string) (Member, bool) {
	for _, m := range s.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// InSyncSet reports whether id is in the sync set.
func (s State) InSyncSet(id string) bool {
	return slices.Contains(s.SyncSet, id)
}

// Clone returns a deep copy (the slices are not shared).
func (s State) Clone() State {
	c := s
	c.Members = slices.Clone(s.Members)
	c.SyncSet = slices.Clone(s.SyncSet)
	c.Policy.Members = slices.Clone(s.Policy.Members)
	c.Handoffs = maps.Clone(s.Handoffs)
	return c
}

func (s State) memberByRaftID(rid uint64) (Member, bool) {
	for _, m := range s.Members {
		if m.RaftID == rid {
			return m, true
		}
	}
	return Member{}, false
}
