package replication

import (
	"github.com/replicant-db/replicant/internal/policy"

	"fmt"
	"slices"
)

// Position is a failover candidate's durable log end, as it reported it.
type Position struct {
	ID    string
	Epoch uint64 // epoch of its last entry
	LSN   uint64 // its last LSN
}

// newerThan orders positions by (epoch, LSN), the lower id first on a tie
// so that every controller picks the same candidate from the same answers.
func (p Position) newerThan(q Position) bool {
	if p.Epoch != q.Epoch {
		return p.Epoch > q.Epoch
	}
	if p.LSN != q.LSN {
		return p.LSN > q.LSN
	}
	return p.ID < q.ID
}

// FailoverCandidates returns the members that may succeed leader and how
// many of them must report their positions before one may be chosen.
//
// Under a sync policy every acknowledged write is on k members of the sync
// set, so the candidates are the sync set and any |set|-k+1 of them include
// one holding every acknowledged write. Without a sync set (async) any other
// member may be chosen and one answer suffices: async may lose acknowledged
// writes, which is its documented trade-off.
func FailoverCandidates(members []string, leader string, syncSet []string, p policy.Commit) (cands []string, need int) {
	if len(syncSet) > 0 {
		k := len(syncSet) // "all": every member of the set holds every write
		if p.Kind == policy.First || p.Kind == policy.Any {
			k = min(p.K, len(syncSet))
		}
		return slices.Clone(syncSet), len(syncSet) - k + 1
	}
	for _, id := range members {
		if id != leader {
			cands = append(cands, id)
		}
	}
	return cands, 1
}

// ChooseSuccessor picks the most up-to-date of the candidates that
// answered, or says why none may be chosen (fewer than need answered).
// Answers from non-candidates are ignored.
func ChooseSuccessor(cands []string, need int, answers []Position) (Position, error) {
	if len(cands) == 0 {
		return Position{}, fmt.Errorf("no candidate: no other member")
	}
	var best Position
	n := 0
	seen := map[string]bool{}
	for _, a := range answers {
		if !slices.Contains(cands, a.ID) || seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		if n == 0 || a.newerThan(best) {
			best = a
		}
		n++
	}
	if n < need {
		return Position{}, fmt.Errorf("need positions from %d of %v, got %d", need, cands, n)
	}
	return best, nil
}
