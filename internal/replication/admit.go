package replication

import (
	"errors"

	"github.com/replicant-db/replicant/internal/storage"
)

// ErrLoading is returned (wrapped) while a restarted node cannot yet prove
// that its readable state is at least as new as what it served or
// acknowledged before it stopped. Clients retry, as they do on Redis's
// -LOADING.
var ErrLoading = errors.New("LOADING")

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
func StandingOf(h []storage.EpochStart, readLSN uint64, t Token) FloorStanding {
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
