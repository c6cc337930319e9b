package replication

import (
	"fmt"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

// FloorStanding is how a node's readable state relates to a session floor.
type FloorStanding uint8

const (
	// FloorReached: the state at the read LSN includes the floor's write.
	FloorReached FloorStanding = iota
	// FloorAhead: the node has not (yet) got the floor's write in its
	// readable state; it may still arrive (catch-up, or the rollback of a
	// divergent suffix this node holds at that LSN).
	FloorAhead
	// FloorLost: this node's committed history has a later epoch starting
	// at or below the floor's LSN, so the write the floor names was
	// discarded in a failover and will never be readable anywhere that
	// follows this history.
	FloorLost
)

func (s FloorStanding) String() string {
	switch s {
	case FloorReached:
		return "reached"
	case FloorAhead:
		return "ahead"
	case FloorLost:
		return "lost"
	}
	return "unknown"
}

// StandingOf decides whether a read at readLSN, on a node whose log has the
// epoch history h, may serve a client whose floor is t. It is a pure
// function of its inputs.
//
// Only epochs that start at or below readLSN count as evidence of a loss:
// entries above the read LSN are not committed yet and could themselves be
// rolled back.
func StandingOf(h []storage.EpochStart, readLSN uint64, t engine.Token) FloorStanding {
	if t.LSN == 0 {
		return FloorReached
	}
	for _, e := range h {
		if e.Epoch > t.Epoch && e.FirstLSN <= min(t.LSN, readLSN) {
			return FloorLost
		}
	}
	if readLSN < t.LSN {
		return FloorAhead
	}
	if epochAt(h, t.LSN) != t.Epoch {
		// An older epoch's entry sits at that LSN here: this node holds a
		// suffix the floor's epoch superseded and must roll it back first.
		return FloorAhead
	}
	return FloorReached
}

// epochAt returns the epoch of the entry at lsn according to h.
func epochAt(h []storage.EpochStart, lsn uint64) uint64 {
	var ep uint64
	for _, e := range h {
		if e.FirstLSN > lsn {
			break
		}
		ep = e.Epoch
	}
	return ep
}

// RestartFloor is the lowest read LSN a node that restarted with its log
// ending at bootLast may serve, given that its log now ends at last.
//
// Whatever a node served or acknowledged before it stopped was durable in
// its log (a leader commits only what it has fsynced; a follower exposes
// only entries it has fsynced), so bootLast bounds it from above. A log
// that since shrank below bootLast lost that tail to a rollback or a
// snapshot install: those entries were never committed in the surviving
// history, so the floor follows the log down.
func RestartFloor(bootLast, last uint64) uint64 { return min(bootLast, last) }

// ReadRoute is how a read is served on a node.
type ReadRoute uint8

const (
	// RouteLocal reads this node's readable state (committed, applied and
	// durable here), subject to the session floor.
	RouteLocal ReadRoute = iota
	// RouteLeader needs this node's leader role: a valid lease and a
	// commit LSN past the log it inherited (a follower answers with where
	// the leader is; an appointed node waits for the role).
	RouteLeader
)

// ReadPosition is what AdmitRead knows of the node: its role and, for a
// replica, how far behind the leader it is.
type ReadPosition struct {
	Leader    bool // runs the leader role
	Appointed bool // the control plane names it the leader (it may not run the role yet)
	// LagSeconds is this replica's staleness (0 on the leader).
	LagSeconds float64
}

// AdmitRead decides how a read at consistency c is served, or refuses it;
// a pure function of the level and the node's position.
//
//   - default: linearizable on a node that leads or is appointed to,
//     eventual elsewhere;
//   - linearizable: the leader role serves it;
//   - bounded: a replica lagging more than the bound refuses (stale); the
//     leader is never behind itself;
//   - session and eventual: local; the session floor is judged afterwards
//     (StandingOf), at every level.
func AdmitRead(c engine.Consistency, at ReadPosition) (ReadRoute, error) {
	switch c.Level {
	case engine.LevelDefault:
		if at.Leader || at.Appointed {
			return RouteLeader, nil
		}
		return RouteLocal, nil
	case engine.LevelLinearizable:
		return RouteLeader, nil
	case engine.LevelBounded:
		if !at.Leader && at.LagSeconds*1000 > float64(c.MaxLagMs) {
			return RouteLocal, fmt.Errorf("%w: this replica lags %.3fs, more than the %dms bound", engine.ErrStale, at.LagSeconds, c.MaxLagMs)
		}
	}
	return RouteLocal, nil
}
