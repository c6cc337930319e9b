package replication

import (
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

func TestStandingOf(t *testing.T) {
	// Epoch 6 from LSN 1, epoch 7 from LSN 98700 (a failover discarded
	// whatever epoch 6 wrote at or above 98700 elsewhere).
	h := []storage.EpochStart{{Epoch: 6, FirstLSN: 1}, {Epoch: 7, FirstLSN: 98700}}
	for _, tc := range []struct {
		name    string
		h       []storage.EpochStart
		readLSN uint64
		tok     engine.Token
		want    FloorStanding
	}{
		{"no floor", h, 5, engine.Token{}, FloorReached},
		{"same epoch reached", h, 98800, engine.Token{Epoch: 7, LSN: 98727}, FloorReached},
		{"older epoch kept below the new one", h, 98800, engine.Token{Epoch: 6, LSN: 98600}, FloorReached},
		{"not yet applied", h, 98720, engine.Token{Epoch: 7, LSN: 98727}, FloorAhead},
		// The case: the doomed 6:98736 on a node whose committed
		// history has epoch 7 from 98700.
		{"doomed suffix of an old leader", h, 98800, engine.Token{Epoch: 6, LSN: 98736}, FloorLost},
		{"doomed even before reaching its LSN", h, 98710, engine.Token{Epoch: 6, LSN: 98736}, FloorLost},
		// Epoch 7 from 98700 is above the read LSN: not committed here yet,
		// so it is no evidence of a loss.
		{"newer epoch not committed yet", h, 98650, engine.Token{Epoch: 6, LSN: 98736}, FloorAhead},
		// The partitioned old leader of epoch 6 holds its own entry at
		// 98727: it must roll back before it may serve 7:98727.
		{"old leader holds a divergent entry", []storage.EpochStart{{Epoch: 6, FirstLSN: 1}}, 98736, engine.Token{Epoch: 7, LSN: 98727}, FloorAhead},
		{"token from an epoch never seen, beyond the log", []storage.EpochStart{{Epoch: 6, FirstLSN: 1}}, 100, engine.Token{Epoch: 9, LSN: 200}, FloorAhead},
		{"empty history", nil, 0, engine.Token{Epoch: 1, LSN: 1}, FloorAhead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StandingOf(tc.h, tc.readLSN, tc.tok); got != tc.want {
				t.Fatalf("StandingOf(%v, %d, %s) = %s, want %s", tc.h, tc.readLSN, tc.tok, got, tc.want)
			}
		})
	}
}

func TestTokenAfter(t *testing.T) {
	for _, tc := range []struct {
		a, b engine.Token
		want bool
	}{
		{engine.Token{Epoch: 7, LSN: 98727}, engine.Token{Epoch: 6, LSN: 98736}, true},
		{engine.Token{Epoch: 6, LSN: 98736}, engine.Token{Epoch: 7, LSN: 98727}, false},
		{engine.Token{Epoch: 7, LSN: 10}, engine.Token{Epoch: 7, LSN: 9}, true},
		{engine.Token{Epoch: 7, LSN: 10}, engine.Token{Epoch: 7, LSN: 10}, false},
		{engine.Token{Epoch: 1, LSN: 1}, engine.Token{}, true},
	} {
		if got := tc.a.After(tc.b); got != tc.want {
			t.Errorf("%s.After(%s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := tc.a.Later(tc.b); got != tc.a && tc.want {
			t.Errorf("%s.Later(%s) = %s", tc.a, tc.b, got)
		}
	}
}

// A floor never stands ahead of a read whose history holds its exact write:
// once the node reaches the token in the same history, the read may go on.
func TestStandingOfReachedInOwnHistory(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// A history of increasing epochs with increasing first LSNs.
		n := rapid.IntRange(1, 5).Draw(t, "epochs")
		var h []storage.EpochStart
		lsn, ep := uint64(1), uint64(0)
		for range n {
			ep += rapid.Uint64Range(1, 3).Draw(t, "de")
			h = append(h, storage.EpochStart{Epoch: ep, FirstLSN: lsn})
			lsn += rapid.Uint64Range(1, 100).Draw(t, "dl")
		}
		last := lsn + 50
		at := rapid.Uint64Range(1, last).Draw(t, "at")
		tok := engine.Token{Epoch: epochAt(h, at), LSN: at}
		read := rapid.Uint64Range(0, last).Draw(t, "read")
		got := StandingOf(h, read, tok)
		switch {
		case read >= at && got != FloorReached:
			t.Fatalf("read %d covers %s in its own history, got %s", read, tok, got)
		case read < at && got != FloorAhead:
			t.Fatalf("read %d is below %s, got %s", read, tok, got)
		}
	})
}

func TestRestartFloor(t *testing.T) {
	for _, tc := range []struct{ boot, last, want uint64 }{
		{33621, 33621, 33621},
		{33621, 33700, 33621}, // appended since: the floor stays
		{33621, 33500, 33500}, // rolled back: the floor follows the log down
		{0, 10, 0},
	} {
		if got := RestartFloor(tc.boot, tc.last); got != tc.want {
			t.Errorf("RestartFloor(%d, %d) = %d, want %d", tc.boot, tc.last, got, tc.want)
		}
	}
}

func TestAdmitRead(t *testing.T) {
	leader := ReadPosition{Leader: true}
	appointed := ReadPosition{Appointed: true}
	fresh := ReadPosition{LagSeconds: 0.05}
	lagging := ReadPosition{LagSeconds: 2}
	for _, tc := range []struct {
		name  string
		c     engine.Consistency
		at    ReadPosition
		route ReadRoute
		stale bool
	}{
		{"default on the leader is linearizable", engine.Consistency{}, leader, RouteLeader, false},
		{"default on an appointed node waits for its role", engine.Consistency{}, appointed, RouteLeader, false},
		{"default on a replica is eventual", engine.Consistency{}, lagging, RouteLocal, false},
		{"linearizable anywhere needs the leader", engine.Consistency{Level: engine.LevelLinearizable}, fresh, RouteLeader, false},
		{"bounded within the bound", engine.Consistency{Level: engine.LevelBounded, MaxLagMs: 100}, fresh, RouteLocal, false},
		{"bounded beyond the bound", engine.Consistency{Level: engine.LevelBounded, MaxLagMs: 100}, lagging, RouteLocal, true},
		{"bounded on the leader", engine.Consistency{Level: engine.LevelBounded, MaxLagMs: 0}, leader, RouteLocal, false},
		{"session is local", engine.Consistency{Level: engine.LevelSession}, lagging, RouteLocal, false},
		{"eventual is local", engine.Consistency{Level: engine.LevelEventual}, leader, RouteLocal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			route, err := AdmitRead(tc.c, tc.at)
			if route != tc.route || errors.Is(err, engine.ErrStale) != tc.stale || (err != nil) != tc.stale {
				t.Fatalf("AdmitRead = %v, %v; want route %v, stale %v", route, err, tc.route, tc.stale)
			}
		})
	}
}
