package multileader

import (
	"testing"
	"time"
)

// internal/node's tombstone test sleeps gcRoundsForTest (2 s) per round to
// show that nothing is collected: it must stay the collection interval.
func TestGCIntervalMatchesTheNodeTest(t *testing.T) {
	if gcInterval != 2*time.Second {
		t.Fatalf("gcInterval is %v: update gcRoundsForTest in internal/node/multileader_test.go", gcInterval)
	}
}
