package node

import (
	"slices"

	"github.com/replicant-db/replicant/internal/control"
	"github.com/replicant-db/replicant/internal/replication"
)

// roleKind is the replication role a node runs.
type roleKind uint8

const (
	roleNone roleKind = iota
	roleLeader
	roleFollower
)

// runningRole identifies the role a node runs now: the kind, whom it
// follows and in which epoch.
type runningRole struct {
	kind   roleKind
	leader string // the leader followed (roleFollower)
	epoch  uint64
}

// roleAction is what the node must do to match the control plane.
type roleAction uint8

const (
	// actKeep: the running role matches.
	actKeep roleAction = iota
	// actReconfigure: keep leading, but hand the leader the new policy,
	// followers or sync set.
	actReconfigure
	// actRemoved: this node left the cluster: stop everything.
	actRemoved
	// actWait: no leader is appointed; keep whatever runs.
	actWait
	// actReappoint: this node led this epoch in an earlier life and must
	// take a fresh epoch before it writes again; stop the running role.
	actReappoint
	// actLead: stop the running role and lead epoch st.Epoch.
	actLead
	// actFollow: stop the running role and follow st.Leader.
	actFollow
)

func (a roleAction) String() string {
	return [...]string{"keep", "reconfigure", "removed", "wait", "reappoint", "lead", "follow"}[a]
}

// decideRole is the role decision as a pure function of the control plane
// state (st, and prev, the state the running role was last given), this
// node's id, the epoch the control plane had when this process started, and
// the role it runs.
func decideRole(prev, st control.State, self string, bootEpoch uint64, cur runningRole, removed bool) roleAction {
	if _, member := st.Member(self); !member && st.Index > 0 && len(st.Members) > 0 {
		if removed {
			return actKeep
		}
		return actRemoved
	}
	switch {
	case st.Leader == "":
		return actWait
	case st.Leader == self:
		if cur.kind == roleLeader && cur.epoch == st.Epoch {
			if !prev.Policy.Equal(st.Policy) || prev.Ack != st.Ack || prev.Fallback != st.Fallback ||
				!slices.Equal(followersOf(prev, self), followersOf(st, self)) || !slices.Equal(prev.SyncSet, st.SyncSet) {
				return actReconfigure
			}
			return actKeep
		}
		if st.Epoch <= bootEpoch {
			// Its log may have lost an unsynced tail that followers
			// received: writing again under the same epoch could make two
			// different entries share an (epoch, LSN).
			return actReappoint
		}
		return actLead
	default:
		if cur.kind == roleFollower && cur.leader == st.Leader && cur.epoch == st.Epoch {
			return actKeep
		}
		return actFollow
	}
}

// switchoverReady reports whether a pausing leader may hand over to target:
// everything it holds (last) is committed, and the target is connected and
// holds all of it durably. A target the leader has no progress for is not
// ready, whatever the commit LSN says.
func switchoverReady(target string, last, commit uint64, progress []replication.FollowerProgress) bool {
	if commit < last {
		return false
	}
	for _, p := range progress {
		if p.ID == target {
			return p.Connected && p.Durable >= last
		}
	}
	return false
}
