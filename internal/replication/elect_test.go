package replication

import (
	"github.com/replicant-db/replicant/internal/policy"

	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestFailoverCandidates(t *testing.T) {
	members := []string{"n1", "n2", "n3", "n4"}
	for _, tc := range []struct {
		name    string
		syncSet []string
		policy  string
		cands   []string
		need    int
	}{
		{"async: any other member, one answer", nil, "async", []string{"n2", "n3", "n4"}, 1},
		{"FIRST 1 of a set of one", []string{"n2"}, "FIRST 1 (*)", []string{"n2"}, 1},
		{"FIRST 1 while promoting (set of two)", []string{"n2", "n3"}, "FIRST 1 (*)", []string{"n2", "n3"}, 2},
		{"ANY 2 of three", []string{"n2", "n3", "n4"}, "ANY 2 (*)", []string{"n2", "n3", "n4"}, 2},
		{"all: one member of the set holds everything", []string{"n2", "n3", "n4"}, "all", []string{"n2", "n3", "n4"}, 1},
		{"k above the set", []string{"n2"}, "ANY 3 (*)", []string{"n2"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.ParseCommit(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			cands, need := FailoverCandidates(members, "n1", tc.syncSet, p)
			if !slices.Equal(cands, tc.cands) || need != tc.need {
				t.Fatalf("got %v need %d, want %v need %d", cands, need, tc.cands, tc.need)
			}
		})
	}
}

func TestChooseSuccessor(t *testing.T) {
	cands := []string{"n2", "n3"}
	for _, tc := range []struct {
		name    string
		need    int
		answers []Position
		want    string // "" = error
	}{
		{"newest LSN", 1, []Position{{"n2", 1, 10}, {"n3", 1, 12}}, "n3"},
		{"newest epoch beats a longer log", 1, []Position{{"n2", 2, 5}, {"n3", 1, 12}}, "n2"},
		{"tie goes to the lower id", 1, []Position{{"n3", 1, 10}, {"n2", 1, 10}}, "n2"},
		{"too few answers", 2, []Position{{"n2", 1, 10}}, ""},
		{"non-candidates do not count", 2, []Position{{"n2", 1, 10}, {"n9", 5, 99}}, ""},
		{"duplicates do not count twice", 2, []Position{{"n2", 1, 10}, {"n2", 1, 10}}, ""},
		{"nobody answered", 1, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseSuccessor(cands, tc.need, tc.answers)
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("chose %v, want an error", got)
			case tc.want != "" && (err != nil || got.ID != tc.want):
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// The chosen successor is at least as up to date as every candidate that
// answered, and it is one of them: under a sync policy, when enough of the
// set answered, that is one holding every acknowledged write.
func TestChooseSuccessorIsNewest(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ids := []string{"n2", "n3", "n4", "n5"}
		var answers []Position
		for _, id := range ids {
			if rapid.Bool().Draw(t, "answers-"+id) {
				answers = append(answers, Position{ID: id, Epoch: rapid.Uint64Range(1, 3).Draw(t, "e"), LSN: rapid.Uint64Range(0, 20).Draw(t, "l")})
			}
		}
		need := rapid.IntRange(1, 4).Draw(t, "need")
		got, err := ChooseSuccessor(ids, need, answers)
		if len(answers) < need {
			if err == nil {
				t.Fatalf("chose %v from %d answers, need %d", got, len(answers), need)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range answers {
			if a.newerThan(got) {
				t.Fatalf("chose %v but %v is newer", got, a)
			}
		}
		if !slices.Contains(answers, got) {
			t.Fatalf("chose %v, which did not answer", got)
		}
	})
}
