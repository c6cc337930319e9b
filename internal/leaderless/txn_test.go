package leaderless

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// Collection writes through the engine, the way the convergent adapter
// makes them: read the key's Coll, change it with the txn's stamps, put it
// back.

// collOp is one collection change inside a command.
type collOp func(ct engine.CollTxn, key []byte, c *crdt.Coll)

func hsetOp(field, value string) collOp {
	return func(ct engine.CollTxn, _ []byte, c *crdt.Coll) {
		c.Put(crdt.CollHash, []byte(field), []byte(value), ct.Stamp())
	}
}

func saddOp(member string) collOp {
	return func(ct engine.CollTxn, _ []byte, c *crdt.Coll) { c.Put(crdt.CollSet, []byte(member), nil, ct.Stamp()) }
}

func sremOp(member string) collOp {
	return func(ct engine.CollTxn, _ []byte, c *crdt.Coll) { c.Remove(crdt.CollSet, []byte(member), ct.Stamp()) }
}

// collStep is a collection write of key within a command (GetColl,
// change, PutColl).
func collStep(tx engine.Txn, key string, ops ...collOp) error {
	ct, ok := tx.(engine.CollTxn)
	if !ok {
		return errors.New("the leaderless txn is not an engine.CollTxn")
	}
	c, err := ct.GetColl([]byte(key))
	if err != nil {
		return err
	}
	for _, op := range ops {
		op(ct, []byte(key), &c)
	}
	ct.PutColl([]byte(key), c)
	return nil
}

func collWrite(e *Engine, ctx context.Context, key string, ops ...collOp) error {
	_, err := e.Write(ctx, func(tx engine.Txn) error { return collStep(tx, key, ops...) })
	return err
}

// lookup reads key through e (a quorum read) and describes what it holds:
// "string:VALUE", "hash[f=v …]", "set[m …]", or "none".
func lookup(t *testing.T, e *Engine, ctx context.Context, key string) string {
	t.Helper()
	r, err := e.Read(ctx, engine.Consistency{}, engine.Token{})
	if err != nil {
		t.Fatal(err)
	}
	v, ok, err := r.Get([]byte(key))
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	if !ok {
		return "none"
	}
	if v.Type == engine.TypeString {
		return "string:" + string(v.Value)
	}
	c, err := r.(engine.CollReader).GetColl([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return v.Type.String() + describe(c, crdt.CollType(v.Type))
}

func describe(c crdt.Coll, typ crdt.CollType) string {
	var out []string
	c.Range(typ, nil, func(m, v []byte) bool {
		if v != nil {
			out = append(out, string(m)+"="+string(v))
		} else {
			out = append(out, string(m))
		}
		return true
	})
	return fmt.Sprint(out)
}

// stored decodes node n's stored state of key.
func (n *htNode) stored(t *testing.T, key string) State {
	t.Helper()
	v, _, err := n.LocalRead().Get([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeState(v.Value)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A collection write coordinated by a node that is not one of the key's
// replicas reaches the three replicas, no other node, and every node reads
// it back.
func TestCollWriteReachesTheReplicas(t *testing.T) {
	c := newHTCluster(t, 5, Config{})
	key := "h"
	reps, _ := c.placement(key)
	var coord *htNode
	for _, n := range c.nodes {
		if !slices.Contains(reps, n) {
			coord = n
		}
	}
	ctx := context.Background()
	if err := collWrite(coord.eng, ctx, key, hsetOp("f", "1"), hsetOp("g", "2")); err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		waitUntil(t, r.id+" holds the hash", func() bool {
			v, ok := r.stored(t, key).Lookup(time.Now().UnixMilli())
			return ok && v.Type == engine.TypeHash
		})
	}
	for _, n := range c.nodes {
		if !slices.Contains(reps, n) && n.holds(key) {
			t.Errorf("%s holds %s without being a replica", n.id, key)
		}
		if got := lookup(t, n.eng, ctx, key); got != "hash[f=1 g=2]" {
			t.Errorf("read through %s = %s", n.id, got)
		}
	}
	// Scan (KEYS, SCAN, TYPE through the reader) shows the key as a hash.
	r, _ := reps[0].eng.Read(ctx, engine.Consistency{}, engine.Token{})
	var seen []string
	if err := r.Scan(nil, func(k []byte, v engine.Version) bool {
		seen = append(seen, string(k)+":"+v.Type.String())
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"h:hash"}) {
		t.Fatalf("Scan on a replica = %v", seen)
	}
}

// Commands that mix string writes and collection writes of one key: the
// command's last word on the key is what the key holds, and the command
// sees its own writes.
func TestCollAndStringWritesOfOneKey(t *testing.T) {
	set := func(v string) func(engine.Txn) error {
		return func(tx engine.Txn) error { tx.Set([]byte("k"), []byte(v), 0); return nil }
	}
	del := func(tx engine.Txn) error { tx.Del([]byte("k")); return nil }
	hset := func(f, v string) func(engine.Txn) error {
		return func(tx engine.Txn) error { return collStep(tx, "k", hsetOp(f, v)) }
	}
	sadd := func(m string) func(engine.Txn) error {
		return func(tx engine.Txn) error { return collStep(tx, "k", saddOp(m)) }
	}
	tests := []struct {
		name     string
		commands [][]func(engine.Txn) error // each inner list is one command
		want     string                     // what every read answers after
		sees     string                     // what the last command's Get saw at its end
	}{
		{"HSET", [][]func(engine.Txn) error{{hset("f", "1")}}, "hash[f=1]", "hash"},
		{"SET over a hash", [][]func(engine.Txn) error{{hset("f", "1")}, {set("v")}}, "string:v", "string:v"},
		{"DEL of a hash", [][]func(engine.Txn) error{{hset("f", "1")}, {del}}, "none", "none"},
		{"HSET after a DEL of the hash: the old field is gone", [][]func(engine.Txn) error{{hset("f", "1")}, {del}, {hset("g", "2")}}, "hash[g=2]", "hash"},
		{"SADD after SET and DEL", [][]func(engine.Txn) error{{set("v")}, {del}, {sadd("m")}}, "set[m]", "set"},
		{"DEL then HSET in one command", [][]func(engine.Txn) error{{set("v")}, {del, hset("f", "1")}}, "hash[f=1]", "hash"},
		{"SET then HSET in one command", [][]func(engine.Txn) error{{set("old")}, {set("v"), hset("f", "1")}}, "hash[f=1]", "hash"},
		{"HSET then SET in one command", [][]func(engine.Txn) error{{hset("f", "1"), set("v")}}, "string:v", "string:v"},
		{"HSET then DEL in one command", [][]func(engine.Txn) error{{hset("f", "1")}, {hset("g", "2"), del}}, "none", "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newHTCluster(t, 3, Config{})
			ctx := context.Background()
			ids := []string{"n1", "n2", "n3"}
			var sees string
			for i, cmd := range tc.commands {
				// Each command through another coordinator.
				_, err := c.nodes[ids[i%3]].eng.Write(ctx, func(tx engine.Txn) error {
					for _, step := range cmd {
						if err := step(tx); err != nil {
							return err
						}
					}
					v, ok, err := tx.Get([]byte("k"))
					switch {
					case err != nil:
						return err
					case !ok:
						sees = "none"
					case v.Type == engine.TypeString:
						sees = "string:" + string(v.Value)
					default:
						sees = v.Type.String()
					}
					return nil
				})
				if err != nil {
					t.Fatalf("command %d: %v", i, err)
				}
			}
			if sees != tc.sees {
				t.Errorf("the last command saw %s, want %s", sees, tc.sees)
			}
			for _, id := range ids {
				if got := lookup(t, c.nodes[id].eng, quorumCtx("all", "all"), "k"); got != tc.want {
					t.Errorf("read through %s = %s, want %s", id, got, tc.want)
				}
			}
		})
	}
}

// A string key that never held a collection stores no collection state:
// its encoding is the one from before collections.
func TestStringWritesStoreNoCollection(t *testing.T) {
	c := newHTCluster(t, 3, Config{})
	ctx := quorumCtx("all", "all")
	for _, f := range []func(engine.Txn){
		func(tx engine.Txn) { tx.Set([]byte("s"), []byte("v"), 0) },
		func(tx engine.Txn) { tx.Del([]byte("s")) },
	} {
		if _, err := c.nodes["n1"].eng.Write(ctx, func(tx engine.Txn) error { f(tx); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, n := range c.nodes {
			v, _, _ := n.LocalRead().Get([]byte("s"))
			if v.Value[0] != stateTag {
				t.Fatalf("%s stores the string key with tag %#x", n.id, v.Value[0])
			}
		}
	}
}

func TestIncrByOnACollectionIsWrongType(t *testing.T) {
	c := newHTCluster(t, 3, Config{})
	ctx := context.Background()
	if err := collWrite(c.nodes["n1"].eng, ctx, "h", hsetOp("f", "1")); err != nil {
		t.Fatal(err)
	}
	_, err := c.nodes["n2"].eng.Write(ctx, func(tx engine.Txn) error {
		_, err := tx.(engine.CounterTxn).IncrBy([]byte("h"), 1)
		return err
	})
	if !errors.Is(err, engine.ErrWrongType) {
		t.Fatalf("INCR on a hash: %v, want WRONGTYPE", err)
	}
	if got := lookup(t, c.nodes["n3"].eng, quorumCtx("all", "all"), "h"); got != "hash[f=1]" {
		t.Fatalf("after the refused INCR: %s", got)
	}
	// A command that writes a hash and then increments the key (its
	// collection write is not sent yet) is refused too.
	_, err = c.nodes["n2"].eng.Write(ctx, func(tx engine.Txn) error {
		if err := collStep(tx, "fresh", hsetOp("f", "1")); err != nil {
			return err
		}
		_, err := tx.(engine.CounterTxn).IncrBy([]byte("fresh"), 1)
		return err
	})
	if !errors.Is(err, engine.ErrWrongType) {
		t.Fatalf("HSET then INCR in one command: %v, want WRONGTYPE", err)
	}
	// A command that empties the hash and then increments the key counts:
	// the replica sees the emptied hash with the increment.
	var n int64
	_, err = c.nodes["n3"].eng.Write(ctx, func(tx engine.Txn) error {
		if err := collStep(tx, "h", func(ct engine.CollTxn, _ []byte, c *crdt.Coll) {
			c.Remove(crdt.CollHash, []byte("f"), ct.Stamp())
		}); err != nil {
			return err
		}
		var err error
		n, err = tx.(engine.CounterTxn).IncrBy([]byte("h"), 5)
		return err
	})
	if err != nil || n != 5 {
		t.Fatalf("HDEL of the last field then INCRBY 5 in one command = %d, %v; want 5", n, err)
	}
	if got := lookup(t, c.nodes["n1"].eng, quorumCtx("all", "all"), "h"); got != "string:5" {
		t.Fatalf("after HDEL and INCRBY: %s", got)
	}
}

// Stamp is newer than every stamp the command read, even one from a clock
// an hour ahead of this node's.
func TestStampFollowsWhatTheCommandRead(t *testing.T) {
	c := newHTCluster(t, 3, Config{})
	ahead := crdt.Stamp{Time: crdt.Timestamp{WallMs: time.Now().Add(time.Hour).UnixMilli(), Logical: 3}, Site: "n9"}
	var coll crdt.Coll
	coll.Put(crdt.CollHash, []byte("f"), []byte("future"), ahead)
	for _, n := range c.nodes {
		if _, err := n.eng.HandleReplica(context.Background(), &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte("h"),
			State: AppendState(nil, State{Coll: coll})}); err != nil {
			t.Fatal(err)
		}
	}
	// A fresh engine, whose clock saw nothing yet, coordinates.
	fresh := newHTCluster(t, 3, Config{}) // its own nodes; reads go to c's
	e := fresh.nodes["n1"].eng
	e.node = &htNode{c: c, id: "n1", data: c.nodes["n1"].data}
	var got crdt.Stamp
	if _, err := e.Write(context.Background(), func(tx engine.Txn) error {
		if _, err := tx.(engine.CollTxn).GetColl([]byte("h")); err != nil {
			return err
		}
		got = tx.(engine.CollTxn).Stamp()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !ahead.Less(got) || got.Site != "n1" {
		t.Fatalf("Stamp = %v, want one newer than %v from n1", got, ahead)
	}
	// And an HSET of the same field through it wins over the future one.
	if err := collWrite(e, context.Background(), "h", hsetOp("f", "now")); err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, c.nodes["n2"].eng, quorumCtx("all", "all"), "h"); got != "hash[f=now]" {
		t.Fatalf("after the HSET: %s", got)
	}
}

// Two coordinators that cannot see each other's writes (W=1, R=1, the
// other replicas down): an SREM does not remove the concurrent SADD it did
// not see (add-wins), HSETs of different fields both survive, and once
// every replica answers again a read at R=all converges them all.
func TestConcurrentCollWritesThroughTwoCoordinators(t *testing.T) {
	c := newHTCluster(t, 3, Config{})
	all := quorumCtx("all", "all")
	one := quorumCtx("1", "1")
	if err := collWrite(c.nodes["n1"].eng, all, "s", saddOp("m"), saddOp("x")); err != nil {
		t.Fatal(err)
	}
	alone := func(id string, f func(e *Engine) error) {
		t.Helper()
		for o := range c.nodes {
			c.setDown(o, o != id)
		}
		defer func() {
			for o := range c.nodes {
				c.setDown(o, false)
			}
		}()
		if err := f(c.nodes[id].eng); err != nil {
			t.Fatalf("write through %s alone: %v", id, err)
		}
	}
	alone("n1", func(e *Engine) error {
		if err := collWrite(e, one, "s", sremOp("m"), sremOp("x")); err != nil {
			return err
		}
		return collWrite(e, one, "h", hsetOp("f", "from n1"))
	})
	alone("n2", func(e *Engine) error {
		if err := collWrite(e, one, "s", saddOp("m")); err != nil { // n2 never saw the SREM
			return err
		}
		return collWrite(e, one, "h", hsetOp("g", "from n2"))
	})
	// n3 missed both; the others disagree.
	if a, b := c.nodes["n1"].stored(t, "s"), c.nodes["n2"].stored(t, "s"); a.Equal(b) {
		t.Fatal("the two coordinators' replicas agree before any repair: nothing concurrent was tested")
	}
	if got := lookup(t, c.nodes["n3"].eng, all, "s"); got != "set[m]" {
		t.Errorf("set after concurrent SREM m x and SADD m = %s, want set[m] (add wins, x stays removed)", got)
	}
	if got := lookup(t, c.nodes["n3"].eng, all, "h"); got != "hash[f=from n1 g=from n2]" {
		t.Errorf("hash after concurrent HSETs of two fields = %s", got)
	}
	// Read repair brings every replica to the same state.
	for _, key := range []string{"s", "h"} {
		waitUntil(t, "the replicas of "+key+" converge", func() bool {
			a := c.nodes["n1"].stored(t, key)
			return a.Equal(c.nodes["n2"].stored(t, key)) && a.Equal(c.nodes["n3"].stored(t, key))
		})
	}
}

// Read repair, hinted handoff, anti-entropy and rebalancing move whole
// states: each carries the collection.

func TestReadRepairCarriesTheCollection(t *testing.T) {
	c := newHTCluster(t, 3, Config{})
	c.setDown("n3", true)
	if err := collWrite(c.nodes["n1"].eng, quorumCtx("2", "2"), "h", hsetOp("f", "1")); err != nil {
		t.Fatal(err)
	}
	c.setDown("n3", false)
	if c.nodes["n3"].holds("h") {
		t.Fatal("n3 holds the write it was down for")
	}
	if got := lookup(t, c.nodes["n3"].eng, quorumCtx("1", "all"), "h"); got != "hash[f=1]" {
		t.Fatalf("R=all read = %s", got)
	}
	waitUntil(t, "read repair stores the hash on n3", func() bool {
		return c.nodes["n3"].holds("h") && c.nodes["n3"].stored(t, "h").Equal(c.nodes["n1"].stored(t, "h"))
	})
}

func TestHintedHandoffCarriesTheCollection(t *testing.T) {
	c := newHTCluster(t, 5, Config{SloppyQuorum: true})
	key := "hk"
	reps, fallbacks := c.placement(key)
	c.setDown(reps[1].id, true)
	c.setDown(reps[2].id, true)
	if err := collWrite(reps[0].eng, quorumCtx("3", "1"), key, saddOp("m")); err != nil {
		t.Fatalf("sloppy W=3 write with two replicas down: %v", err)
	}
	waitUntil(t, "both stand-ins keep a hint", func() bool { return fallbacks[0].hintCount()+fallbacks[1].hintCount() == 2 })
	c.setDown(reps[1].id, false)
	c.setDown(reps[2].id, false)
	for _, f := range fallbacks {
		for target := range f.eng.hints.counts() {
			if n, err := f.eng.handOver(context.Background(), target); err != nil || n != 1 {
				t.Fatalf("%s hands over to %s: %d, %v", f.id, target, n, err)
			}
		}
	}
	want := reps[0].stored(t, key)
	for _, r := range reps[1:] {
		if got := r.stored(t, key); !got.Equal(want) || describe(got.Coll, crdt.CollSet) != "[m]" {
			t.Fatalf("%s holds %s after the handoff", r.id, describe(got.Coll, crdt.CollSet))
		}
	}
}

func TestAntiEntropyCarriesTheCollection(t *testing.T) {
	net := newAENet(t, 3, "n1", "n2", "n3")
	var coll crdt.Coll
	coll.Put(crdt.CollZSet, []byte("m"), []byte("1.5"), crdt.Stamp{Time: crdt.Timestamp{WallMs: 1}, Site: "n1"})
	st := AppendState(nil, State{Coll: coll})
	for i := range 20 {
		if _, err := net.engines["n1"].HandleReplica(context.Background(), &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE,
			Key: []byte(fmt.Sprintf("z%d", i)), State: st}); err != nil {
			t.Fatal(err)
		}
	}
	// n2 holds one of them with another member: the comparison merges.
	var other crdt.Coll
	other.Put(crdt.CollZSet, []byte("n"), []byte("2"), crdt.Stamp{Time: crdt.Timestamp{WallMs: 2}, Site: "n2"})
	if _, err := net.engines["n2"].HandleReplica(context.Background(), &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE,
		Key: []byte("z0"), State: AppendState(nil, State{Coll: other})}); err != nil {
		t.Fatal(err)
	}
	if res := net.compare(t, "n1", "n2"); res.repaired() != 20 {
		t.Fatalf("repaired %d keys, want 20", res.repaired())
	}
	for i := range 20 {
		k := fmt.Sprintf("z%d", i)
		want := "[m=1.5]"
		if i == 0 {
			want = "[m=1.5 n=2]"
		}
		for _, id := range []string{"n1", "n2"} {
			if got := describe(net.state(t, id, k).Coll, crdt.CollZSet); got != want {
				t.Fatalf("%s holds %s as %s, want %s", id, k, got, want)
			}
		}
	}
	if res := net.compare(t, "n2", "n1"); res.repaired() != 0 {
		t.Fatalf("a second comparison repaired %d keys", res.repaired())
	}
}

func TestRebalancingCarriesTheCollection(t *testing.T) {
	c := newHTCluster(t, 5, Config{})
	e := c.nodes["n1"].eng
	old, err := NewRing([]string{"n1", "n2", "n3"}, DefaultVNodes)
	if err != nil {
		t.Fatal(err)
	}
	next := e.currentRing() // n1 … n5
	// Keys n1 holds whose replicas gain n4 or n5.
	var moved []string
	for i := 0; len(moved) < 5; i++ {
		k := fmt.Sprintf("k%d", i)
		if slices.ContainsFunc(next.Preference([]byte(k), 3), func(id string) bool { return id == "n4" || id == "n5" }) {
			moved = append(moved, k)
		}
	}
	for _, k := range moved {
		var coll crdt.Coll
		coll.Put(crdt.CollHash, []byte("f"), []byte(k), crdt.Stamp{Time: crdt.Timestamp{WallMs: 1}, Site: "n1"})
		if _, err := e.HandleReplica(context.Background(), &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte(k),
			State: AppendState(nil, State{Coll: coll})}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.pushMoved(context.Background(), old, next, ""); err != nil {
		t.Fatal(err)
	}
	for _, k := range moved {
		for _, id := range next.Preference([]byte(k), 3) {
			if id != "n4" && id != "n5" {
				continue
			}
			if got := describe(c.nodes[id].stored(t, k).Coll, crdt.CollHash); got != "[f="+k+"]" {
				t.Fatalf("%s holds %s as %s after the move", id, k, got)
			}
		}
	}
}

// A replica merges the state the coordinator read into its own before it
// adds: an increment reaching a replica that missed the write of a hash or
// of a non-integer string is judged on what the read saw.
func TestReplicaIncrMergesTheReadState(t *testing.T) {
	var hash crdt.Coll
	hash.Put(crdt.CollHash, []byte("f"), []byte("1"), crdt.Stamp{Time: crdt.Timestamp{WallMs: 1}, Site: "n2"})
	for _, tc := range []struct {
		name string
		read State
		want string
	}{
		{"a hash", State{Coll: hash}, ErrWrongType.Error()},
		{"a string that is not an integer", withSib(t, State{}, "n2", 1, "abc", 0, false), ErrNotInteger.Error()},
		{"nothing", State{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newHTCluster(t, 3, Config{})
			resp, err := c.nodes["n1"].eng.HandleReplica(context.Background(), &pb.ReplicaRequest{Op: pb.ReplicaRequest_INCR,
				Key: []byte("k"), Delta: 1, State: AppendState(nil, tc.read)})
			if err != nil || resp.Refusal != tc.want {
				t.Fatalf("INCR = %+v, %v; want the refusal %q", resp, err, tc.want)
			}
		})
	}
}

// Random commands — collection writes, SETs and DELs of a few keys —
// through random coordinators, each with a random set of nodes down
// (W=1, R=1, so coordinators miss each other's writes): once every node
// is up, reads at R=all through any node answer the same, and read repair
// leaves every replica holding the same state.
func TestCollWritesConvergeUnderPartitions(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := newHTCluster(t, 3, Config{})
		ids := []string{"n1", "n2", "n3"}
		keys := []string{"k1", "k2"}
		one := quorumCtx("1", "1")
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for range steps {
			coord := rapid.SampledFrom(ids).Draw(rt, "coordinator")
			for _, id := range ids {
				c.setDown(id, id != coord && rapid.Bool().Draw(rt, "down"))
			}
			key := rapid.SampledFrom(keys).Draw(rt, "key")
			m := rapid.SampledFrom([]string{"a", "b"}).Draw(rt, "member")
			var err error
			switch rapid.IntRange(0, 6).Draw(rt, "op") {
			case 0:
				err = collWrite(c.nodes[coord].eng, one, key, hsetOp(m, coord))
			case 1:
				err = collWrite(c.nodes[coord].eng, one, key, func(ct engine.CollTxn, _ []byte, c *crdt.Coll) {
					c.Remove(crdt.CollHash, []byte(m), ct.Stamp())
				})
			case 2:
				err = collWrite(c.nodes[coord].eng, one, key, saddOp(m))
			case 3:
				err = collWrite(c.nodes[coord].eng, one, key, sremOp(m))
			case 4:
				err = set(c.nodes[coord].eng, one, key, coord)
			case 5:
				_, err = c.nodes[coord].eng.Write(one, func(tx engine.Txn) error { tx.Del([]byte(key)); return nil })
			case 6:
				_, err = c.nodes[coord].eng.Write(one, func(tx engine.Txn) error {
					_, err := tx.(engine.CounterTxn).IncrBy([]byte(key), 1)
					if errors.Is(err, engine.ErrWrongType) || errors.Is(err, engine.ErrNotInteger) {
						return nil // refused, as Redis would
					}
					return err
				})
			}
			if err != nil {
				rt.Fatalf("step through %s: %v", coord, err)
			}
		}
		for _, id := range ids {
			c.setDown(id, false)
		}
		all := quorumCtx("all", "all")
		for _, key := range keys {
			want := lookup(t, c.nodes["n1"].eng, all, key)
			for _, id := range ids[1:] {
				if got := lookup(t, c.nodes[id].eng, all, key); got != want {
					rt.Fatalf("%s reads through %s as %s, through n1 as %s", key, id, got, want)
				}
			}
			waitUntil(t, "the replicas of "+key+" converge", func() bool {
				a := c.nodes["n1"].stored(t, key)
				return a.Equal(c.nodes["n2"].stored(t, key)) && a.Equal(c.nodes["n3"].stored(t, key))
			})
		}
	})
}
