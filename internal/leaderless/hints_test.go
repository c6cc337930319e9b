package leaderless

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

func TestHintKeyEncoding(t *testing.T) {
	for _, tc := range []struct {
		target string
		key    []byte
	}{
		{"n1", []byte("k")},
		{"n10", []byte("k")},
		{"node-é", []byte("a\x00b\x00")},
		{"n2", []byte("\x00replicant\x00hint\x00n1\x00k")},
		{"n3", bytes.Repeat([]byte{0xff}, 300)},
	} {
		hk := hintKey(tc.target, tc.key)
		if !isReserved(hk) || !bytes.HasPrefix(hk, hintPrefix) {
			t.Fatalf("hintKey(%q, %q) = %q: not in the reserved prefix", tc.target, tc.key, hk)
		}
		target, key, ok := parseHintKey(hk)
		if !ok || target != tc.target || !bytes.Equal(key, tc.key) {
			t.Fatalf("parseHintKey(hintKey(%q, %q)) = %q, %q, %v", tc.target, tc.key, target, key, ok)
		}
		if !bytes.HasPrefix(hk, hintTargetPrefix(tc.target)) {
			t.Fatalf("hint key %q lacks its target's prefix", hk)
		}
	}
	// One target's prefix never covers another's hints ("n1" and "n10").
	if bytes.HasPrefix(hintKey("n10", []byte("k")), hintTargetPrefix("n1")) {
		t.Fatal("the hints of n10 fall under n1's prefix")
	}
	// A target's hints sort by key.
	a, b := hintKey("n1", []byte("a")), hintKey("n1", []byte("b"))
	if bytes.Compare(a, b) >= 0 {
		t.Fatal("hints of one target do not sort by key")
	}
	for _, bad := range [][]byte{
		[]byte("k"),
		hintPrefix,
		append(bytes.Clone(hintPrefix), "n1"...), // no separator
		append(bytes.Clone(hintPrefix), "n1\x00"...),       // no key
		append(bytes.Clone(hintPrefix), "\x00k"...),        // no target
		append(bytes.Clone(reservedPrefix), "other"...),    // another reserved key
		[]byte("\x00replicant\x01hint\x00n1\x00k"),         // just after the prefix
		[]byte("\x00replicant\x00hinT\x00n1\x00k"),         // not the hint kind
		append([]byte("x"), hintKey("n1", []byte("k"))...), // not at the start
	} {
		if _, _, ok := parseHintKey(bad); ok {
			t.Errorf("parseHintKey(%q) accepted", bad)
		}
	}
	if isReserved([]byte("\x00replicant")) || isReserved([]byte("replicant\x00hint\x00")) || !isReserved(reservedPrefix) {
		t.Fatal("isReserved is off at the prefix's edges")
	}
	if !bytes.Equal(reservedEnd, []byte("\x00replicant\x01")) {
		t.Fatalf("reservedEnd = %q", reservedEnd)
	}
}

func TestHintValueEncoding(t *testing.T) {
	st, _, err := State{}.IncrBy("n1", 5, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []hint{{createdMs: 0}, {createdMs: 1_700_000_000_000, state: st}} {
		got, err := decodeHint(appendHint(nil, h))
		if err != nil || got.createdMs != h.createdMs || !got.state.Equal(h.state) {
			t.Fatalf("decodeHint(appendHint(%+v)) = %+v, %v", h, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {hintTag}, {0x01, 0x00}, {hintTag, 0x80}, append([]byte{hintTag, 1}, 0x42)} {
		if _, err := decodeHint(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeHint(%x) = %v, want ErrMalformed", bad, err)
		}
	}
}

// An in-process cluster: each node's store is a map, and the peer
// transport calls the other engines' HandleReplica directly.

type htCluster struct {
	mu    sync.Mutex
	nodes map[string]*htNode
	down  map[string]bool
}

type htNode struct {
	c      *htCluster
	id     string
	mu     sync.Mutex
	data   map[string][]byte
	lsn    uint64
	writes int // entries that changed something
	eng    *Engine
}

func newHTCluster(t *testing.T, n int, cfg Config) *htCluster {
	t.Helper()
	c := &htCluster{nodes: map[string]*htNode{}, down: map[string]bool{}}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.nodes[id] = &htNode{c: c, id: id, data: map[string][]byte{}}
	}
	for _, nd := range c.nodes {
		cfg := cfg
		cfg.Node = nd
		if cfg.Timeout == 0 {
			cfg.Timeout = time.Second
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.MembershipChanged()
		nd.eng = e
	}
	return c
}

func (c *htCluster) setDown(id string, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[id] = down
}

func (c *htCluster) isDown(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down[id]
}

func (n *htNode) ID() string { return n.id }

func (n *htNode) LocalWrite(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	tx := &htTxn{n: n, ops: map[string][]byte{}, nowMs: time.Now().UnixMilli()}
	if err := fn(tx); err != nil {
		return engine.Token{}, err
	}
	if len(tx.ops) == 0 {
		return engine.Token{LSN: n.lsn}, nil
	}
	n.lsn++
	n.writes++
	for k, v := range tx.ops {
		if v == nil {
			delete(n.data, k)
		} else {
			n.data[k] = v
		}
	}
	return engine.Token{LSN: n.lsn}, nil
}

// LocalChanges: this fake keeps no log, so the anti-entropy index
// rebuilds from a scan whenever it is used.
func (n *htNode) LocalChanges(context.Context, uint64, uint64, func(Change) error) error {
	return errors.New("no log in this fake")
}

func (n *htNode) LocalRead() engine.Reader {
	n.mu.Lock()
	defer n.mu.Unlock()
	snap := make(map[string][]byte, len(n.data))
	for k, v := range n.data {
		snap[k] = v
	}
	return &htReader{data: snap, lsn: n.lsn}
}

func (n *htNode) Peers() map[string]string {
	out := map[string]string{}
	for id := range n.c.nodes {
		out[id] = id
	}
	return out
}

func (n *htNode) MemberAddrs(string) (string, string) { return "", "" }
func (n *htNode) PeerClient(addr string) (pb.PeerClient, error) {
	return &htClient{c: n.c, to: addr}, nil
}
func (n *htNode) Settings() engine.Settings { return engine.Settings{ID: n.id} }
func (n *htNode) CheckKey([]byte) error     { return nil }
func (n *htNode) CheckValue(int) error      { return nil }
func (n *htNode) Metrics() *engine.Metrics  { return nil }
func (n *htNode) Joining() ([]string, bool) { return nil, true }
func (n *htNode) ReportHandoff(context.Context, []string) error {
	return nil
}
func (n *htNode) RemoveMember(context.Context, string) error {
	return errors.New("membership changes are not part of this test")
}

// holds reports whether the node stores key in its own data.
func (n *htNode) holds(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.data[key]
	return ok
}

func (n *htNode) hintCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for k := range n.data {
		if bytes.HasPrefix([]byte(k), hintPrefix) {
			c++
		}
	}
	return c
}

type htTxn struct {
	n     *htNode
	ops   map[string][]byte // nil value: deleted
	nowMs int64
}

func (t *htTxn) Get(key []byte) (engine.Version, bool, error) {
	if v, ok := t.ops[string(key)]; ok {
		return engine.Version{Value: v}, v != nil, nil
	}
	v, ok := t.n.data[string(key)]
	return engine.Version{Value: v}, ok, nil
}
func (t *htTxn) Set(key, value []byte, _ int64) { t.ops[string(key)] = bytes.Clone(value) }
func (t *htTxn) Del(key []byte) {
	if _, ok := t.n.data[string(key)]; ok {
		t.ops[string(key)] = nil
	} else {
		delete(t.ops, string(key))
	}
}
func (t *htTxn) FlushAll()    {}
func (t *htTxn) NowMs() int64 { return t.nowMs }

type htReader struct {
	data map[string][]byte
	lsn  uint64
}

func (r *htReader) Get(key []byte) (engine.Version, bool, error) {
	v, ok := r.data[string(key)]
	return engine.Version{Value: v}, ok, nil
}
func (r *htReader) Scan(start []byte, fn func([]byte, engine.Version) bool) error {
	keys := make([]string, 0, len(r.data))
	for k := range r.data {
		if k >= string(start) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !fn([]byte(k), engine.Version{Value: r.data[k]}) {
			return nil
		}
	}
	return nil
}
func (r *htReader) Token() engine.Token { return engine.Token{LSN: r.lsn} }
func (r *htReader) NowMs() int64        { return time.Now().UnixMilli() }

type htClient struct {
	pb.PeerClient // only Replica is used
	c             *htCluster
	to            string
}

func (cl *htClient) Replica(ctx context.Context, req *pb.ReplicaRequest, _ ...grpc.CallOption) (*pb.ReplicaResponse, error) {
	if cl.c.isDown(cl.to) {
		return nil, status.Errorf(codes.Unavailable, "%s is down", cl.to)
	}
	return cl.c.nodes[cl.to].eng.HandleReplica(ctx, req)
}

// quorumCtx carries W and R as REPLICANT.QUORUM sets them.
func quorumCtx(w, r string) context.Context {
	return engine.WithQuorum(context.Background(), engine.QuorumSetting{W: w, R: r})
}

func set(e *Engine, ctx context.Context, key, value string) error {
	_, err := e.Write(ctx, func(tx engine.Txn) error {
		tx.Set([]byte(key), []byte(value), 0)
		return nil
	})
	return err
}

// placement returns key's replicas and stand-ins on c's ring.
func (c *htCluster) placement(key string) (reps, fallbacks []*htNode) {
	r := c.nodes["n1"].eng.currentRing()
	for _, id := range r.Preference([]byte(key), 3) {
		reps = append(reps, c.nodes[id])
	}
	for _, id := range r.Fallbacks([]byte(key), 3) {
		fallbacks = append(fallbacks, c.nodes[id])
	}
	return reps, fallbacks
}

func TestReservedPrefixIsHidden(t *testing.T) {
	c := newHTCluster(t, 3, Config{})
	e := c.nodes["n1"].eng
	ctx := context.Background()
	reserved := "\x00replicant\x00hint\x00n2\x00k"
	for name, fn := range map[string]func(engine.Txn) error{
		"SET": func(tx engine.Txn) error { tx.Set([]byte(reserved), []byte("v"), 0); return nil },
		"DEL": func(tx engine.Txn) error { tx.Del([]byte(reserved)); return nil },
		"INCR": func(tx engine.Txn) error {
			_, err := tx.(engine.CounterTxn).IncrBy([]byte(reserved), 1)
			return err
		},
	} {
		_, err := e.Write(ctx, fn)
		var ue *engine.UnsupportedError
		if !errors.As(err, &ue) {
			t.Fatalf("%s of a reserved key: %v, want an UnsupportedError", name, err)
		}
	}
	for _, op := range []pb.ReplicaRequest_Op{pb.ReplicaRequest_FETCH, pb.ReplicaRequest_STORE, pb.ReplicaRequest_UPDATE, pb.ReplicaRequest_INCR} {
		_, err := e.HandleReplica(ctx, &pb.ReplicaRequest{Op: op, Key: []byte(reserved)})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("%v of a reserved key: %v, want InvalidArgument", op, err)
		}
	}
	// A hint kept on n1 and user keys around the reserved prefix.
	if _, err := e.HandleReplica(ctx, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte("k"), HintFor: "n2",
		State: AppendState(nil, State{})}); err != nil {
		t.Fatal(err)
	}
	st, _, _ := State{}.IncrBy("n1", 1, 0)
	for _, k := range []string{"\x00a", "\x00replicant", "\x00s", "b"} {
		if _, err := e.HandleReplica(ctx, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte(k), State: AppendState(nil, st)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.HandleReplica(ctx, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte("k2"), HintFor: "n2",
		State: AppendState(nil, st)}); err != nil {
		t.Fatal(err)
	}
	if c.nodes["n1"].hintCount() != 1 { // k's state was empty: nothing to keep
		t.Fatalf("n1 keeps %d hints, want 1", c.nodes["n1"].hintCount())
	}
	r, err := e.Read(ctx, engine.Consistency{}, engine.Token{})
	if err != nil {
		t.Fatal(err)
	}
	for _, start := range []string{"", "\x00replicant\x00", "\x00replicant\x00hint\x00n2\x00k3"} {
		var got []string
		if err := r.Scan([]byte(start), func(k []byte, _ engine.Version) bool { got = append(got, string(k)); return true }); err != nil {
			t.Fatal(err)
		}
		want := []string{"\x00a", "\x00replicant", "\x00s", "b"}
		for len(want) > 0 && want[0] < start {
			want = want[1:]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Scan from %q = %q, want %q", start, got, want)
		}
	}
	if _, ok, err := r.Get([]byte(hintKey("n2", []byte("k2")))); ok || err != nil {
		t.Fatalf("GET of a hint key: %v, %v", ok, err)
	}
}

func TestHintStoreIsBounded(t *testing.T) {
	c := newHTCluster(t, 3, Config{})
	n1 := c.nodes["n1"]
	e := n1.eng
	e.hints.limit = 3
	ctx := context.Background()
	st, _, _ := State{}.IncrBy("n1", 1, 0)
	store := func(target, key string, s State) *pb.ReplicaResponse {
		t.Helper()
		resp, err := e.HandleReplica(ctx, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte(key), HintFor: target, State: AppendState(nil, s)})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i, target := range []string{"n2", "n2", "n3"} {
		if r := store(target, fmt.Sprintf("k%d", i), st); r.Refusal != "" {
			t.Fatalf("hint %d refused: %s", i, r.Refusal)
		}
	}
	if r := store("n3", "k3", st); r.Refusal == "" {
		t.Fatal("a fourth hint was kept beyond the bound of 3")
	}
	if n1.hintCount() != 3 || e.hints.refused.Load() != 1 {
		t.Fatalf("%d hints kept, %d refused; want 3 and 1", n1.hintCount(), e.hints.refused.Load())
	}
	// A hint that exists merges, even at the bound.
	more, _, _ := st.IncrBy("n1", 1, 0)
	if r := store("n2", "k0", more); r.Refusal != "" {
		t.Fatalf("merging into an existing hint refused: %s", r.Refusal)
	}
	v, _, _ := n1.LocalRead().Get(hintKey("n2", []byte("k0")))
	if h, err := decodeHint(v.Value); err != nil || !h.state.Equal(more) {
		t.Fatalf("hint after the merge: %v, %v", h.state, err)
	}
	if *e.hints.pendingFor("n2") != 2 || *e.hints.pendingFor("n3") != 1 || *e.hints.pendingFor("n4") != 0 {
		t.Fatalf("pending: n2 %d, n3 %d, n4 %d", *e.hints.pendingFor("n2"), *e.hints.pendingFor("n3"), *e.hints.pendingFor("n4"))
	}
	// A hint for itself or for an invalid id is refused outright.
	for _, target := range []string{"n1", "bad id"} {
		if _, err := e.HandleReplica(ctx, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte("x"), HintFor: target,
			State: AppendState(nil, st)}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("hint for %q: %v, want InvalidArgument", target, err)
		}
	}
	// Handing n2's hints over frees room.
	if n, err := e.handOver(ctx, "n2"); err != nil || n != 2 {
		t.Fatalf("handOver(n2) = %d, %v", n, err)
	}
	if !c.nodes["n2"].holds("k0") || !c.nodes["n2"].holds("k1") {
		t.Fatal("n2 does not hold the hints handed to it")
	}
	if r := store("n3", "k3", st); r.Refusal != "" {
		t.Fatalf("hint refused after hand-over freed room: %s", r.Refusal)
	}
	// A fresh engine over the same store counts what is there.
	e2, err := New(Config{Node: n1})
	if err != nil {
		t.Fatal(err)
	}
	e2.loadHints()
	if *e2.hints.pendingFor("n3") != 2 || *e2.hints.pendingFor("n2") != 0 {
		t.Fatalf("after a restart: n3 %d, n2 %d, want 2 and 0", *e2.hints.pendingFor("n3"), *e2.hints.pendingFor("n2"))
	}
}

// A sloppy write with two of three replicas down reaches W=2 through a
// stand-in; the hints go to the replicas when they return and are then
// removed; a strict write in the same situation fails.
func TestSloppyWriteAndHandOver(t *testing.T) {
	c := newHTCluster(t, 5, Config{SloppyQuorum: true})
	key := "hk"
	reps, fallbacks := c.placement(key)
	c.setDown(reps[1].id, true)
	c.setDown(reps[2].id, true)
	ctx := quorumCtx("2", "1")
	if err := set(reps[0].eng, ctx, key, "v1"); err != nil {
		t.Fatalf("sloppy W=2 write with two replicas down: %v", err)
	}
	// Both down replicas get a stand-in (the second in the background).
	deadline := time.Now().Add(5 * time.Second)
	for fallbacks[0].hintCount()+fallbacks[1].hintCount() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("stand-ins keep %d and %d hints, want one each", fallbacks[0].hintCount(), fallbacks[1].hintCount())
		}
		time.Sleep(time.Millisecond)
	}
	for _, f := range fallbacks {
		if f.holds(key) {
			t.Fatalf("stand-in %s holds %s as its own key", f.id, key)
		}
		if f.hintCount() != 1 {
			t.Fatalf("stand-in %s keeps %d hints", f.id, f.hintCount())
		}
	}

	// Without the sloppy quorum the same write fails and no hint is kept.
	strict := newHTCluster(t, 5, Config{})
	sreps, sfall := strict.placement(key)
	strict.setDown(sreps[1].id, true)
	strict.setDown(sreps[2].id, true)
	err := set(sreps[0].eng, ctx, key, "v1")
	var nq *NoQuorumError
	if !errors.As(err, &nq) || nq.Stored != 1 {
		t.Fatalf("strict W=2 write with two replicas down: %v, want NOQUORUM stored on 1", err)
	}
	if sfall[0].hintCount()+sfall[1].hintCount() != 0 {
		t.Fatal("a strict write left hints")
	}

	// The replicas return; each stand-in hands its hint over.
	c.setDown(reps[1].id, false)
	c.setDown(reps[2].id, false)
	for _, f := range fallbacks {
		target := ""
		for t := range f.eng.hints.counts() {
			target = t
		}
		if n, err := f.eng.handOver(context.Background(), target); err != nil || n != 1 {
			t.Fatalf("%s hands over to %s: %d, %v", f.id, target, n, err)
		}
		if f.hintCount() != 0 || *f.eng.hints.pendingFor(target) != 0 || f.eng.hints.delivered.Load() != 1 {
			t.Fatalf("%s after hand-over: %d hints, %d pending", f.id, f.hintCount(), *f.eng.hints.pendingFor(target))
		}
	}
	for _, r := range reps {
		v, ok, _ := r.LocalRead().Get([]byte(key))
		st, err := DecodeState(v.Value)
		if !ok || err != nil {
			t.Fatalf("%s lacks %s after hand-over", r.id, key)
		}
		if val, _, live := st.Visible(time.Now().UnixMilli()); !live || string(val) != "v1" {
			t.Fatalf("%s holds %q for %s", r.id, val, key)
		}
	}
}

// With every replica down nothing is stored, not even as a hint; with
// more replicas down than stand-ins can replace, the write fails.
func TestSloppyWriteStoredNowhere(t *testing.T) {
	c := newHTCluster(t, 5, Config{SloppyQuorum: true})
	key := "nk"
	reps, fallbacks := c.placement(key)
	for _, r := range reps {
		c.setDown(r.id, true)
	}
	_, err := fallbacks[0].eng.writeKey(context.Background(), []byte(key), Quorum{N: 3, W: 1, R: 1},
		&pb.ReplicaRequest{Op: pb.ReplicaRequest_UPDATE, Value: []byte("v")})
	if !errors.Is(err, engine.ErrNoQuorum) {
		t.Fatalf("write with every replica down: %v, want NOQUORUM", err)
	}
	for _, n := range c.nodes {
		if n.writes != 0 {
			t.Fatalf("%s wrote %d entries for a write that failed", n.id, n.writes)
		}
	}

	// Four of five down: the one replica up coordinates; W=3 cannot be
	// reached, so the write fails (it stays on that replica and its
	// stand-ins, as NOQUORUM says).
	c2 := newHTCluster(t, 5, Config{SloppyQuorum: true})
	reps, fallbacks = c2.placement(key)
	c2.setDown(reps[1].id, true)
	c2.setDown(reps[2].id, true)
	c2.setDown(fallbacks[0].id, true)
	err = set(reps[0].eng, quorumCtx("3", "1"), key, "v")
	var nq *NoQuorumError
	if !errors.As(err, &nq) || nq.Needed != 3 {
		t.Fatalf("W=3 with one stand-in for two down replicas: %v, want NOQUORUM", err)
	}
}

// Hand-over removes a hint only if it did not change since it was read,
// and a sweep drops hints older than HintMaxAge.
func TestHintRemovalAndExpiry(t *testing.T) {
	c := newHTCluster(t, 3, Config{HintMaxAge: time.Hour})
	n1 := c.nodes["n1"]
	e := n1.eng
	ctx := context.Background()
	st, _, _ := State{}.IncrBy("n1", 1, 0)
	store := func(key string, s State) {
		t.Helper()
		if _, err := e.HandleReplica(ctx, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: []byte(key), HintFor: "n2", State: AppendState(nil, s)}); err != nil {
			t.Fatal(err)
		}
	}
	store("a", st)
	hk := hintKey("n2", []byte("a"))
	v, _, _ := n1.LocalRead().Get(hk)
	old := storedHint{target: "n2", hk: hk, raw: v.Value}
	more, _, _ := st.IncrBy("n1", 1, 0)
	store("a", more) // merged after old was read
	if n, err := e.removeHints(ctx, []storedHint{old}); err != nil || n != 0 {
		t.Fatalf("removing a hint that changed: %d, %v", n, err)
	}
	if n1.hintCount() != 1 || *e.hints.pendingFor("n2") != 1 {
		t.Fatal("a changed hint was removed")
	}

	// A second hint, recent; the first is made two hours old, older than
	// HintMaxAge: the sweep drops it.
	store("b", st)
	rewrite := func(key string, createdMs int64) {
		_, err := n1.LocalWrite(ctx, func(tx engine.Txn) error {
			k := hintKey("n2", []byte(key))
			v, _, _ := tx.Get(k)
			h, err := decodeHint(v.Value)
			if err != nil {
				return err
			}
			h.createdMs = createdMs
			tx.Set(k, appendHint(nil, h), 0)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rewrite("a", time.Now().Add(-2*time.Hour).UnixMilli())
	if err := e.sweepHints(ctx); err != nil {
		t.Fatal(err)
	}
	if n1.hintCount() != 1 || e.hints.dropped.Load() != 1 || *e.hints.pendingFor("n2") != 1 {
		t.Fatalf("after the sweep: %d hints, %d dropped, %d pending; want 1, 1, 1", n1.hintCount(), e.hints.dropped.Load(), *e.hints.pendingFor("n2"))
	}
	if _, ok, _ := n1.LocalRead().Get(hintKey("n2", []byte("b"))); !ok {
		t.Fatal("the recent hint was dropped")
	}
	// The sweep also corrects a count that drifted.
	e.hints.release("n2")
	if err := e.sweepHints(ctx); err != nil || *e.hints.pendingFor("n2") != 1 {
		t.Fatalf("recount: %d, %v", *e.hints.pendingFor("n2"), err)
	}
}

// Hand-over goes through more hints than one batch, and with the target
// down removes nothing.
func TestHandOverInBatches(t *testing.T) {
	c := newHTCluster(t, 3, Config{})
	e := c.nodes["n1"].eng
	ctx := context.Background()
	st, _, _ := State{}.IncrBy("n1", 1, 0)
	const n = hintBatch*2 + 5
	for i := range n {
		if _, err := e.HandleReplica(ctx, &pb.ReplicaRequest{Op: pb.ReplicaRequest_STORE, Key: fmt.Appendf(nil, "k%04d", i), HintFor: "n2",
			State: AppendState(nil, st)}); err != nil {
			t.Fatal(err)
		}
	}
	c.setDown("n2", true)
	if got, err := e.handOver(ctx, "n2"); err == nil || got != 0 || c.nodes["n1"].hintCount() != n {
		t.Fatalf("hand-over to a down target: %d, %v; %d hints left", got, err, c.nodes["n1"].hintCount())
	}
	c.setDown("n2", false)
	if got, err := e.handOver(ctx, "n2"); err != nil || got != n {
		t.Fatalf("hand-over: %d, %v; want %d", got, err, n)
	}
	if c.nodes["n1"].hintCount() != 0 || *e.hints.pendingFor("n2") != 0 || !c.nodes["n2"].holds(fmt.Sprintf("k%04d", n-1)) {
		t.Fatal("hints left after the hand-over, or the last one did not arrive")
	}
}
