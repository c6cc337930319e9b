package replication

import (
	"testing"

	"github.com/replicant-db/replicant/internal/storage"
)

func TestPlanStart(t *testing.T) {
	h := func(pairs ...uint64) []storage.EpochStart {
		var out []storage.EpochStart
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, storage.EpochStart{Epoch: pairs[i], FirstLSN: pairs[i+1]})
		}
		return out
	}
	leader := h(1, 1, 2, 50, 4, 80)
	full := storage.State{FirstLSN: 1, LastLSN: 100, AppliedLSN: 100, CommitLSN: 100}
	retained := storage.State{FirstLSN: 60, LastLSN: 100, AppliedLSN: 100, CommitLSN: 100}
	for _, tc := range []struct {
		name string
		fe   []storage.EpochStart
		fl   uint64
		st   storage.State
		want StartPlan
	}{
		{"new follower of an empty leader streams from 1", nil, 0, storage.State{FirstLSN: 1}, StartPlan{FromLSN: 1}},
		{"new follower gets a snapshot", nil, 0, full, StartPlan{NeedSnapshot: true, Reason: "new follower: initial snapshot"}},
		{"new follower of a leader with nothing committed streams from 1", nil, 0, storage.State{FirstLSN: 1, LastLSN: 1, AppliedLSN: 1}, StartPlan{FromLSN: 1}},
		{"new follower after retention", nil, 0, retained, StartPlan{NeedSnapshot: true, Reason: "new follower: log starts at 60"}},
		{"caught-up follower", leader, 100, full, StartPlan{Common: 100, FromLSN: 101}},
		{"behind in the same epoch", leader, 90, full, StartPlan{Common: 90, FromLSN: 91}},
		{"behind, older epoch", h(1, 1, 2, 50), 60, full, StartPlan{Common: 60, FromLSN: 61}},
		// The old leader of epoch 3 wrote 80..95 that epoch 4 replaced.
		{"divergent suffix is truncated", h(1, 1, 2, 50, 3, 80), 95, full, StartPlan{Common: 79, Truncate: true, TruncateTo: 79, FromLSN: 80}},
		{"behind retention", h(1, 1), 30, retained, StartPlan{Common: 30, NeedSnapshot: true, Reason: "fell behind log retention: needs LSN 31, leader log starts at 60"}},
		{"ahead of the leader in the same epoch", leader, 120, full, StartPlan{Common: 100, Truncate: true, TruncateTo: 100, FromLSN: 101}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PlanStart(tc.fe, tc.fl, leader, tc.st); got != tc.want {
				t.Fatalf("PlanStart = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCheckHello(t *testing.T) {
	h := []storage.EpochStart{{Epoch: 1, FirstLSN: 1}, {Epoch: 3, FirstLSN: 10}}
	for _, tc := range []struct {
		fl, epoch uint64
		ok        bool
	}{
		{0, 0, true}, {5, 1, true}, {12, 3, true}, {12, 1, false}, {5, 3, false},
	} {
		if err := checkHello(tc.fl, tc.epoch, h); (err == nil) != tc.ok {
			t.Errorf("checkHello(%d, %d) = %v, want ok=%v", tc.fl, tc.epoch, err, tc.ok)
		}
	}
}
