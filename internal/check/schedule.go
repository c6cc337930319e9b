package check

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Nemeses are the faults a run can inject: what, and to which node (the
// leader or a follower as the cluster stands when the fault starts).
var Nemeses = []string{
	"kill-leader", "pause-leader", "partition-leader",
	"kill-follower", "pause-follower", "partition-follower",
	"kill-node", "pause-node", "partition-node", // any node (the only kinds in leaderless mode)
}

// ParseNemeses parses a comma-separated list of Nemeses ("" or "none":
// no faults).
func ParseNemeses(s string) ([]string, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(Nemeses, n) {
			return nil, fmt.Errorf("check: unknown nemesis %q (known: %s)", n, strings.Join(Nemeses, ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Planned is one fault of a schedule: its kind, when it starts and when
// it is healed (offsets from the start of the run).
type Planned struct {
	Kind     string
	At, Heal time.Duration
	NodePick uint64 // picks among the candidate nodes when the fault starts
}

// Schedule plans faults for a run of duration: rounds of a quiet spell
// (2–4 s: the cluster settles and clients see it healthy), a fault of the
// next kind in a seeded shuffle of kinds, held 3–8 s, then healed. The
// last round ends at least 5 s before the end so the run ends healed. The
// same seed, duration and kinds give the same schedule.
func Schedule(seed uint64, duration time.Duration, kinds []string) []Planned {
	if len(kinds) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	order := slices.Clone(kinds)
	var out []Planned
	at := time.Duration(0)
	for i := 0; ; i++ {
		if i%len(order) == 0 {
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		}
		at += 2*time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))
		hold := 3*time.Second + time.Duration(rng.Int64N(int64(5*time.Second)))
		if at+hold > duration-5*time.Second {
			return out
		}
		out = append(out, Planned{Kind: order[i%len(order)], At: at, Heal: at + hold, NodePick: rng.Uint64()})
		at += hold
	}
}
