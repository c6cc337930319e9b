package replication

import (
	"fmt"

	"github.com/replicant-db/replicant/internal/storage"
)

// StartPlan is how a follower's log stream begins: from which LSN, after
// truncating a divergent suffix, or with a snapshot instead.
type StartPlan struct {
	// Common is the last LSN on which both logs agree.
	Common       uint64
	NeedSnapshot bool
	Reason       string // why a snapshot is needed
	Truncate     bool   // the follower drops its log above TruncateTo first
	TruncateTo   uint64
	FromLSN      uint64 // the first LSN the leader streams
}

// PlanStart decides the stream's start from the follower's log (epoch
// history fe, last LSN fl) and the leader's (history le, positions st). It is
// a pure function.
//
//   - A follower with an empty log joins from a snapshot when the leader has
//     committed anything (its log may no longer start at LSN 1, and a
//     snapshot is cheaper than replaying history).
//   - A follower whose agreeing prefix ends below the leader's log start
//     (retention) needs a snapshot too, and is told why.
//   - Otherwise the stream starts after the common prefix, and a follower
//     holding entries beyond it (a divergent suffix from an older epoch)
//     truncates them first.
func PlanStart(fe []storage.EpochStart, fl uint64, le []storage.EpochStart, st storage.State) StartPlan {
	common := commonPrefix(fe, fl, le, st.LastLSN)
	p := StartPlan{Common: common}
	switch {
	case fl == 0 && st.AppliedLSN > 0 && st.FirstLSN > 1:
		p.NeedSnapshot, p.Reason = true, fmt.Sprintf("new follower: log starts at %d", st.FirstLSN)
	case fl == 0 && st.AppliedLSN > 0 && st.CommitLSN > 0:
		// Only once something is committed: a snapshot is taken at the
		// commit LSN, and one at LSN 0 would leave the follower as new as
		// before, asking again forever (seen after a switchover whose
		// first entry waited for this very follower).
		p.NeedSnapshot, p.Reason = true, "new follower: initial snapshot"
	case common+1 < st.FirstLSN:
		p.NeedSnapshot = true
		p.Reason = fmt.Sprintf("fell behind log retention: needs LSN %d, leader log starts at %d", common+1, st.FirstLSN)
	default:
		if common < fl {
			p.Truncate, p.TruncateTo = true, common
		}
		p.FromLSN = common + 1
	}
	return p
}

// commonPrefix returns the highest LSN up to which a follower's log (epoch
// history fe, last LSN fl) agrees with the leader's (le, ll). Entries of one
// epoch are written by one leader in order, so two logs agree up to the end
// of the newest epoch they share.
func commonPrefix(fe []storage.EpochStart, fl uint64, le []storage.EpochStart, ll uint64) uint64 {
	end := func(h []storage.EpochStart, i int, last uint64) uint64 {
		if i+1 < len(h) {
			return h[i+1].FirstLSN - 1
		}
		return last
	}
	for i := len(fe) - 1; i >= 0; i-- {
		for j := len(le) - 1; j >= 0; j-- {
			if le[j].Epoch != fe[i].Epoch {
				continue
			}
			if le[j].FirstLSN != fe[i].FirstLSN {
				// The same epoch starting elsewhere cannot happen with one
				// leader per epoch; agree only below both starts.
				return max(min(le[j].FirstLSN, fe[i].FirstLSN), 1) - 1
			}
			return min(end(fe, i, fl), end(le, j, ll), fl, ll)
		}
	}
	return 0
}

// checkHello refuses a hello whose last epoch contradicts its own epoch
// history: the divergence check relies on that history, so a follower that
// reports one inconsistently must not be streamed to.
func checkHello(fl, lastEpoch uint64, fe []storage.EpochStart) error {
	if fl == 0 || lastEpoch == 0 || len(fe) == 0 {
		return nil
	}
	if ep := epochAt(fe, fl); ep != lastEpoch {
		return fmt.Errorf("last entry %d claimed in epoch %d, but its epoch history puts it in epoch %d", fl, lastEpoch, ep)
	}
	return nil
}
