package replication

// FollowerState is where a follower's replication session stands. Its
// values are the words status shows.
type FollowerState string

// The follower's states.
const (
	// FollowerConnecting: no stream to the leader (starting, reconnecting, or
	// the local disk refuses writes).
	FollowerConnecting FollowerState = "connecting"
	// FollowerSnapshotting: installing a snapshot from the leader; reads are
	// refused (-LOADING) until it is installed.
	FollowerSnapshotting FollowerState = "snapshotting"
	// FollowerCatchingUp: streaming, not yet applied up to the commit LSN it
	// knows.
	FollowerCatchingUp FollowerState = "catching-up"
	// FollowerStreaming: streaming and caught up.
	FollowerStreaming FollowerState = "streaming"
	// FollowerFenced: the leader is from an older epoch than one this node has
	// seen; the follower stopped.
	FollowerFenced FollowerState = "fenced"
)

// followerEvent is an input to the follower's state machine.
type followerEvent uint8

const (
	evSessionFailed     followerEvent = iota // the stream ended with an error, or the disk refuses writes
	evFenced                                 // the leader is stale
	evSnapshotStarted                        // the leader asked for a snapshot install
	evSnapshotInstalled                      // the snapshot is installed; streaming follows
	evStreamStarted                          // the leader streams the log
	evCaughtUp                               // applied reached the known commit LSN
)

// next is the follower's state machine, a pure function. A failed session
// during an install keeps "snapshotting" (the install resumes, and status
// keeps its progress and reason); fenced is final.
func (s FollowerState) next(ev followerEvent) FollowerState {
	if s == FollowerFenced {
		return s
	}
	switch ev {
	case evSessionFailed:
		if s == FollowerSnapshotting {
			return s
		}
		return FollowerConnecting
	case evFenced:
		return FollowerFenced
	case evSnapshotStarted:
		return FollowerSnapshotting
	case evSnapshotInstalled, evStreamStarted:
		return FollowerCatchingUp
	case evCaughtUp:
		if s == FollowerCatchingUp {
			return FollowerStreaming
		}
	}
	return s
}
