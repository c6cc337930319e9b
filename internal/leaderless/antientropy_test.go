package leaderless

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// An in-memory cluster for the anti-entropy driver: each node's store is
// a map, its log an LSN counter, and the peer transport calls the other
// engines' handlers directly (cloning messages as the wire would).

type aeNet struct {
	mu      sync.Mutex
	members []string
	engines map[string]*Engine
	nodes   map[string]*aeNode
	down    map[string]bool
}

type aeNode struct {
	id  string
	net *aeNet

	mu  sync.Mutex
	kv  map[string][]byte
	lsn uint64
	// log holds each entry's changes (entry i at LSN i+1) from LSN
	// first on; entries below it are gone, as after log retention.
	log   [][]Change
	first uint64

	aeCalls atomic.Int64 // AntiEntropy requests this node served
}

func (n *aeNode) ID() string { return n.id }

func (n *aeNode) LocalWrite(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	tx := &aeTxn{kv: maps.Clone(n.kv)}
	if err := fn(tx); err != nil {
		return engine.Token{}, err
	}
	if tx.changed {
		n.kv = tx.kv
		n.lsn++
		n.log = append(n.log, tx.changes)
	}
	return engine.Token{LSN: n.lsn}, nil
}

func (n *aeNode) LocalChanges(ctx context.Context, from, to uint64, fn func(Change) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if from < max(n.first, 1) {
		return fmt.Errorf("log starts at %d, %d asked", n.first, from)
	}
	for lsn := from; lsn <= to && lsn <= n.lsn; lsn++ {
		for _, c := range n.log[lsn-1] {
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// truncateLog drops the log below LSN upTo+1.
func (n *aeNode) truncateLog(upTo uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.first = upTo + 1
}

func (n *aeNode) LocalRead() engine.Reader {
	n.mu.Lock()
	defer n.mu.Unlock()
	return &aeReader{kv: maps.Clone(n.kv), lsn: n.lsn}
}

func (n *aeNode) Peers() map[string]string {
	out := map[string]string{}
	for _, id := range n.net.members {
		out[id] = id
	}
	return out
}

func (n *aeNode) MemberAddrs(string) (string, string) { return "", "" }

func (n *aeNode) PeerClient(addr string) (pb.PeerClient, error) {
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	if n.net.down[addr] {
		return nil, fmt.Errorf("%s is down", addr)
	}
	return &aePeerClient{e: n.net.engines[addr], n: n.net.nodes[addr]}, nil
}

func (n *aeNode) Settings() engine.Settings { return engine.Settings{} }
func (n *aeNode) CheckKey([]byte) error     { return nil }
func (n *aeNode) CheckValue(int) error      { return nil }
func (n *aeNode) Metrics() *engine.Metrics  { return nil }
func (n *aeNode) Joining() ([]string, bool) { return nil, true }
func (n *aeNode) ReportHandoff(context.Context, []string) error {
	return nil
}
func (n *aeNode) RemoveMember(context.Context, string) error {
	return errors.New("not in this fake")
}

type aeTxn struct {
	kv      map[string][]byte
	changed bool
	changes []Change
}

func (t *aeTxn) Get(key []byte) (engine.Version, bool, error) {
	v, ok := t.kv[string(key)]
	return engine.Version{Value: v}, ok, nil
}
func (t *aeTxn) Set(key, value []byte, _ int64) {
	t.kv[string(key)] = bytes.Clone(value)
	t.changed = true
	t.changes = append(t.changes, Change{Key: bytes.Clone(key), State: bytes.Clone(value)})
}
func (t *aeTxn) Del(key []byte) {
	delete(t.kv, string(key))
	t.changed = true
	t.changes = append(t.changes, Change{Key: bytes.Clone(key)})
}
func (t *aeTxn) FlushAll() {
	clear(t.kv)
	t.changed = true
	t.changes = append(t.changes, Change{Flush: true})
}
func (t *aeTxn) NowMs() int64 { return time.Now().UnixMilli() }

type aeReader struct {
	kv  map[string][]byte
	lsn uint64
}

func (r *aeReader) Get(key []byte) (engine.Version, bool, error) {
	v, ok := r.kv[string(key)]
	return engine.Version{Value: v}, ok, nil
}
func (r *aeReader) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	for _, k := range slices.Sorted(maps.Keys(r.kv)) {
		if k >= string(start) && !fn([]byte(k), engine.Version{Value: r.kv[k]}) {
			break
		}
	}
	return nil
}
func (r *aeReader) Token() engine.Token { return engine.Token{LSN: r.lsn} }
func (r *aeReader) NowMs() int64        { return time.Now().UnixMilli() }

// aePeerClient serves Replica and AntiEntropy; the embedded nil interface
// makes any other call panic.
type aePeerClient struct {
	pb.PeerClient
	e *Engine
	n *aeNode
}

func (c *aePeerClient) Replica(ctx context.Context, in *pb.ReplicaRequest, _ ...grpc.CallOption) (*pb.ReplicaResponse, error) {
	resp, err := c.e.HandleReplica(ctx, proto.Clone(in).(*pb.ReplicaRequest))
	if err != nil {
		return nil, err
	}
	return proto.Clone(resp).(*pb.ReplicaResponse), nil
}

func (c *aePeerClient) AntiEntropy(ctx context.Context, in *pb.AntiEntropyRequest, _ ...grpc.CallOption) (*pb.AntiEntropyResponse, error) {
	c.n.aeCalls.Add(1)
	resp, err := c.e.HandleAntiEntropy(ctx, proto.Clone(in).(*pb.AntiEntropyRequest))
	if err != nil {
		return nil, err
	}
	return proto.Clone(resp).(*pb.AntiEntropyResponse), nil
}

func newAENet(t *testing.T, n int, members ...string) *aeNet {
	t.Helper()
	net := &aeNet{members: members, engines: map[string]*Engine{}, nodes: map[string]*aeNode{}, down: map[string]bool{}}
	for _, id := range members {
		node := &aeNode{id: id, net: net, kv: map[string][]byte{}}
		e, err := New(Config{Node: node, Replicas: n, AntiEntropyInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		e.MembershipChanged()
		net.engines[id], net.nodes[id] = e, node
	}
	return net
}

// write makes node id coordinate a write of key (its own dot).
func (net *aeNet) write(t *testing.T, id, key, value string) {
	t.Helper()
	_, err := net.engines[id].HandleReplica(context.Background(), &pb.ReplicaRequest{Op: pb.ReplicaRequest_UPDATE, Key: []byte(key), Value: []byte(value)})
	if err != nil {
		t.Fatal(err)
	}
}

// raw returns node id's stored bytes of key.
func (net *aeNet) raw(id, key string) ([]byte, bool) {
	n := net.nodes[id]
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.kv[key]
	return v, ok
}

func (net *aeNet) state(t *testing.T, id, key string) State {
	t.Helper()
	v, _ := net.raw(id, key)
	st, err := DecodeState(v)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// compare runs one comparison of a with b.
func (net *aeNet) compare(t *testing.T, a, b string) *aeResult {
	t.Helper()
	e := net.engines[a]
	res, err := e.compareWith(context.Background(), e.currentRing(), b)
	if err != nil {
		t.Fatalf("comparison of %s with %s: %v", a, b, err)
	}
	return res
}

// Keys only one side holds, keys both hold with concurrent writes and
// keys both hold equal: one comparison leaves both sides with the merge,
// counts each repaired key once, and the next comparison is one TREE call.
func TestAntiEntropyRepairsBothSides(t *testing.T) {
	net := newAENet(t, 3, "n1", "n2", "n3")
	before := map[string][2]State{}
	for i := range 300 {
		net.write(t, "n1", fmt.Sprintf("a%d", i), "from n1")
		net.write(t, "n2", fmt.Sprintf("b%d", i), "from n2")
	}
	for i := range 100 {
		k := fmt.Sprintf("c%d", i) // concurrent writes: siblings after the merge
		net.write(t, "n1", k, "c on n1")
		net.write(t, "n2", k, "c on n2")
		k = fmt.Sprintf("d%d", i) // equal on both
		net.write(t, "n1", k, "d")
		v, _ := net.raw("n1", k)
		if _, err := net.engines["n2"].HandleReplica(context.Background(), &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte(k), State: v}); err != nil {
			t.Fatal(err)
		}
	}
	// A reserved key (a hint, which the node writes into its own store;
	// the Replica RPC refuses such keys) is never compared.
	hint := "\x00replicant\x00hint\x00n3\x00k"
	hintState, _ := net.raw("n1", "a0")
	net.nodes["n1"].kv[hint] = hintState
	for _, k := range slices.Collect(maps.Keys(net.nodes["n1"].kv)) {
		before[k] = [2]State{net.state(t, "n1", k), net.state(t, "n2", k)}
	}
	for _, k := range slices.Collect(maps.Keys(net.nodes["n2"].kv)) {
		before[k] = [2]State{net.state(t, "n1", k), net.state(t, "n2", k)}
	}

	res := net.compare(t, "n1", "n2")
	if got := res.repaired(); got != 700 {
		t.Errorf("repaired %d keys, want 700 (300 + 300 + 100 with siblings)", got)
	}
	if p, q := res.pulled.Load(), res.pushed.Load(); p != 400 || q != 400 {
		t.Errorf("pulled %d and pushed %d, want 400 and 400", p, q)
	}
	if _, ok := net.raw("n2", hint); ok {
		t.Errorf("the reserved key %q was copied", hint)
	}
	for k, b := range before {
		if k == hint {
			continue
		}
		want := b[0].Merge(b[1])
		for _, id := range []string{"n1", "n2"} {
			if got := net.state(t, id, k); !got.Equal(want) {
				t.Fatalf("%s holds %q as %v, want the merge %v", id, k, got.Sibs, want.Sibs)
			}
		}
		if k[0] == 'c' && len(want.Siblings(time.Now().UnixMilli())) != 2 {
			t.Fatalf("%q has siblings %q, want both concurrent writes", k, want.Siblings(time.Now().UnixMilli()))
		}
	}
	if _, ok := net.raw("n3", "a1"); ok {
		t.Errorf("n3 took part in a comparison of n1 with n2")
	}

	// In sync: the next comparison (from either side) is the root alone.
	calls := net.nodes["n2"].aeCalls.Load()
	if res := net.compare(t, "n1", "n2"); res.repaired() != 0 || res.leaves.Load() != 0 {
		t.Errorf("second comparison repaired %d keys over %d leaves", res.repaired(), res.leaves.Load())
	}
	if n := net.nodes["n2"].aeCalls.Load() - calls; n != 1 {
		t.Errorf("an in-sync comparison made %d calls, want 1", n)
	}
	if res := net.compare(t, "n2", "n1"); res.repaired() != 0 {
		t.Errorf("comparison from n2 repaired %d keys after n1's", res.repaired())
	}
}

// With more members than replicas, a comparison moves exactly the keys
// both nodes replicate.
func TestAntiEntropyOnlySharedKeys(t *testing.T) {
	net := newAENet(t, 3, "n1", "n2", "n3", "n4", "n5")
	ring := net.engines["n1"].currentRing()
	var want []string
	for i := range 600 {
		k := fmt.Sprintf("k%d", i)
		if !ring.Owns("n1", []byte(k), 3) {
			continue
		}
		net.write(t, "n1", k, "v")
		if ring.Owns("n2", []byte(k), 3) {
			want = append(want, k)
		}
	}
	if len(want) < 50 {
		t.Fatalf("only %d keys shared by n1 and n2", len(want))
	}
	res := net.compare(t, "n1", "n2")
	got := slices.Sorted(maps.Keys(net.nodes["n2"].kv))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("n2 holds %d keys after the comparison, want the %d it shares with n1", len(got), len(want))
	}
	if res.repaired() != len(want) {
		t.Errorf("repaired %d, want %d", res.repaired(), len(want))
	}
	for _, id := range []string{"n3", "n4", "n5"} {
		if len(net.nodes[id].kv) != 0 {
			t.Errorf("%s got keys from a comparison of n1 with n2", id)
		}
	}
	// n1 holds keys n2 does not replicate; they do not make the trees differ.
	if res := net.compare(t, "n2", "n1"); res.repaired() != 0 || res.leaves.Load() != 0 {
		t.Errorf("n2 with n1 afterwards: %d keys over %d leaves", res.repaired(), res.leaves.Load())
	}
}

// A leaf whose entries exceed one answer's bound is compared in finer
// leaves, down to single keys.
func TestAntiEntropySplitsLargeLeaves(t *testing.T) {
	defer func(m int) { aeMaxEntries = m }(aeMaxEntries)
	aeMaxEntries = 300 // a handful of keys per answer
	net := newAENet(t, 3, "n1", "n2", "n3")
	for i := range 400 {
		net.write(t, "n1", fmt.Sprintf("k%03d", i), "value")
	}
	// n2 has nothing: its tree is one leaf, which n1 cannot answer at once.
	res := net.compare(t, "n2", "n1")
	if len(net.nodes["n2"].kv) != 400 || res.pulled.Load() != 400 {
		t.Fatalf("n2 holds %d keys, pulled %d; want 400", len(net.nodes["n2"].kv), res.pulled.Load())
	}
	if res.leaves.Load() < 2 {
		t.Errorf("fetched %d leaves, want the first refused and finer ones", res.leaves.Load())
	}
}

// A round compares with every peer it shares ranges with and records the
// comparisons that completed; a peer that cannot be reached is skipped.
func TestAntiEntropyRoundRecordsPeers(t *testing.T) {
	net := newAENet(t, 3, "n1", "n2", "n3")
	net.write(t, "n2", "x", "1")
	net.down["n3"] = true
	e := net.engines["n1"]
	e.antiEntropyRound(context.Background())
	if e.ae.lastWith("n2") == "" || e.ae.lastWith("n3") != "" {
		t.Fatalf("last comparisons: n2 %q, n3 %q", e.ae.lastWith("n2"), e.ae.lastWith("n3"))
	}
	if _, ok := net.raw("n1", "x"); !ok {
		t.Fatalf("the round did not repair x")
	}
	if e.ae.rounds.Load() != 1 || e.ae.pulled.Load() != 1 {
		t.Errorf("rounds %d, pulled %d; want 1 and 1", e.ae.rounds.Load(), e.ae.pulled.Load())
	}
	st := e.Status()
	for _, m := range st.Members {
		if (m.ID == "n2") != (m.LastAntiEntropy != "") {
			t.Errorf("status of %s: last_anti_entropy %q", m.ID, m.LastAntiEntropy)
		}
		if m.ID == "n2" {
			if _, err := time.Parse(time.RFC3339, m.LastAntiEntropy); err != nil {
				t.Errorf("last_anti_entropy %q: %v", m.LastAntiEntropy, err)
			}
		}
	}
}

func TestAntiEntropyRejectsBadRequests(t *testing.T) {
	net := newAENet(t, 3, "n1", "n2", "n3")
	e := net.engines["n1"]
	for _, req := range []*pb.AntiEntropyRequest{
		{Op: pb.AntiEntropyRequest_TREE, Leaves: 0},
		{Op: pb.AntiEntropyRequest_TREE, Leaves: MaxLeaves + 1},
		{Op: pb.AntiEntropyRequest_ENTRIES, Leaves: 4, Leaf: 4},
		{Op: 7, Leaves: 1},
	} {
		if _, err := e.HandleAntiEntropy(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: %v, want InvalidArgument", req, err)
		}
	}
}

// The limiter lets a second of work through at once, then makes callers
// wait for what they take beyond it.
func TestAntiEntropyLimiter(t *testing.T) {
	var l aeLimiter
	ctx := context.Background()
	if err := l.wait(ctx, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	// In debt now: a caller would wait about a second, so a cancelled one
	// gives up.
	if err := l.wait(cctx, 1000, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait in debt with a cancelled context: %v", err)
	}
}
