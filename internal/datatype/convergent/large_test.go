package convergent

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/datatype/memstate"
	"github.com/replicant-db/replicant/internal/engine"
)

// TestLargeReadsMatchSingleLeader: on collections above datatype's
// FairLimit, the reads that seek around the element space (random
// choices by descent of the member trie, ranks and ranges from either
// end) answer exactly as over the single-leader layout, given the same
// random source: the virtual element space lists the same keys in the
// same order.
func TestLargeReadsMatchSingleLeader(t *testing.T) {
	const n = 3000
	ref := &memstate.State{Clock: 1000}
	site := newSite("s1")
	fill := func(tx engine.Txn) error {
		s, err := datatype.Open(tx, []byte("s"), engine.TypeSet)
		if err != nil {
			return err
		}
		h, err := datatype.Open(tx, []byte("h"), engine.TypeHash)
		if err != nil {
			return err
		}
		z, err := datatype.OpenZSet(tx, []byte("z"))
		if err != nil {
			return err
		}
		for i := range n {
			m := []byte(fmt.Sprintf("user:%d", i)) // unpadded: the descent's worst shape
			if _, err := datatype.SetAdd(s, m); err != nil {
				return err
			}
			if _, err := datatype.HashSet(h, m, []byte(fmt.Sprint(i%7))); err != nil {
				return err
			}
			if _, err := z.Add(m, float64(i%50), datatype.ZAddFlags{}); err != nil {
				return err
			}
		}
		for _, c := range []*datatype.Coll{s, h, z.Coll} {
			if err := c.Save(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := fill(ref); err != nil {
		t.Fatal(err)
	}
	if err := site.write(testMode, fill); err != nil {
		t.Fatal(err)
	}
	reads := func(s datatype.Scanner) (string, error) {
		out := ""
		rng := rand.New(rand.NewPCG(7, 9))
		for _, k := range []struct {
			key string
			typ engine.Type
			sub byte
		}{{"s", engine.TypeSet, datatype.SubMember}, {"h", engine.TypeHash, datatype.SubField}} {
			v, _, err := datatype.Read(s, []byte(k.key), k.typ)
			if err != nil {
				return "", err
			}
			one, _, err := v.RandomOne(rng, k.sub)
			if err != nil {
				return "", err
			}
			some, err := v.RandomDistinct(rng, k.sub, 9)
			if err != nil {
				return "", err
			}
			rep, err := v.RandomRepeat(rng, k.sub, 9)
			if err != nil {
				return "", err
			}
			out += fmt.Sprintf("%s: %q %q %q\n", k.key, one.Rest, rests(some), rests(rep))
		}
		z, _, err := datatype.ReadZSet(s, []byte("z"))
		if err != nil {
			return "", err
		}
		low, err := z.ByRank(5, 9, false)
		if err != nil {
			return "", err
		}
		high, err := z.ByRank(2, 4, true)
		if err != nil {
			return "", err
		}
		mid, err := z.ByScore(datatype.ScoreRange{Min: 20, Max: 21}, true, 3, 4)
		if err != nil {
			return "", err
		}
		rank, score, _, err := z.Rank([]byte("user:2999"), true)
		if err != nil {
			return "", err
		}
		pop, err := z.AtRanks([]int64{0, n - 1, n / 2})
		if err != nil {
			return "", err
		}
		out += fmt.Sprintf("z: %s| %s| %s| %d %v | %s\n", renderZ(low), renderZ(high), renderZ(mid), rank, score, renderZ(pop))
		return out, nil
	}
	want, err := reads(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reads(site.reader(testMode).(datatype.Scanner))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("convergent:\n%s\nsingle-leader:\n%s", got, want)
	}
}

func rests(es []datatype.Elem) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Rest)
	}
	return out
}
