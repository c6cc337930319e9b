package multileader

import (
	"testing"

	"github.com/replicant-db/replicant/internal/crdt"
)

func vec(s string) crdt.Vector {
	v, err := crdt.ParseVector(s)
	if err != nil {
		panic(err)
	}
	return v
}

// A tombstone from eu at eu's LSN 10, seen from us.
func TestCollectible(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pos      string            // us's positions
		reported map[string]string // what the other sites reported
		want     bool
	}{
		{"everyone has it and us has everything they had", "eu:12,ap:7,us:30",
			map[string]string{"eu": "eu:12,us:30,ap:7", "ap": "eu:10,ap:7,us:3"}, true},
		{"ap has not applied the tombstone", "eu:12,ap:7,us:30",
			map[string]string{"eu": "eu:12,us:30,ap:7", "ap": "eu:9,ap:7"}, false},
		{"ap never reported", "eu:12,ap:7,us:30",
			map[string]string{"eu": "eu:12,us:30,ap:7"}, false},
		{"ap wrote more than us has applied from it (a write older than the tombstone may be in flight)", "eu:12,ap:7,us:30",
			map[string]string{"eu": "eu:12,us:30,ap:7", "ap": "eu:10,ap:8"}, false},
		{"us itself has not applied it", "eu:9,ap:7,us:30",
			map[string]string{"eu": "eu:12", "ap": "eu:10,ap:7"}, false},
		{"two sites, both have it", "eu:10,us:4",
			map[string]string{"eu": "eu:10,us:4"}, true},
		{"eu reported less of its own writes than us applied: fine", "eu:15,us:4",
			map[string]string{"eu": "eu:10,us:4"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := map[string]crdt.Vector{}
			for s, v := range tc.reported {
				rep[s] = vec(v)
			}
			if got := collectible("us", "eu", 10, vec(tc.pos), rep); got != tc.want {
				t.Fatalf("collectible = %v, want %v", got, tc.want)
			}
		})
	}
}
