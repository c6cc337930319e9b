package replication

import "testing"

// Each case is a transcript: events in order, and the state after each.
func TestFollowerStateMachine(t *testing.T) {
	type step struct {
		ev   followerEvent
		want FollowerState
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"stream and catch up", []step{
			{evStreamStarted, FollowerCatchingUp},
			{evCaughtUp, FollowerStreaming},
			{evCaughtUp, FollowerStreaming},
			{evSessionFailed, FollowerConnecting},
			{evCaughtUp, FollowerConnecting}, // no stream, nothing to catch up with
			{evStreamStarted, FollowerCatchingUp},
		}},
		{"snapshot survives a failed session", []step{
			{evSnapshotStarted, FollowerSnapshotting},
			{evSessionFailed, FollowerSnapshotting},
			{evSnapshotStarted, FollowerSnapshotting},
			{evSnapshotInstalled, FollowerCatchingUp},
			{evCaughtUp, FollowerStreaming},
		}},
		{"fenced is final", []step{
			{evStreamStarted, FollowerCatchingUp},
			{evFenced, FollowerFenced},
			{evStreamStarted, FollowerFenced},
			{evSessionFailed, FollowerFenced},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := FollowerConnecting
			for i, st := range tc.steps {
				s = s.next(st.ev)
				if s != st.want {
					t.Fatalf("step %d: state %s, want %s", i, s, st.want)
				}
			}
		})
	}
}
