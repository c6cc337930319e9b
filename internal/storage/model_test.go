package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"
)

// The model test runs random sequences of writer and reader operations
// against a real Store and against storeModel, a deliberately naive
// in-memory model that keeps every entry and replays the log from LSN 1 for
// each read. Anything the Store does cleverly (one-seek reads, flush
// markers, GC, rollback) must agree with that replay.

// modelKeys is a small key space, so ops collide often; it includes keys
// that differ only in the bytes the key escaping rewrites.
var modelKeys = []string{"", "a", "a\x00", "a\x00\x01", "a\x01", "b"}

type modelVersion struct {
	value    string
	lsn      uint64
	expireAt int64
}

type storeModel struct {
	entries  map[uint64]Entry // every entry 1..last, even below first
	first    uint64           // FirstLSN
	last     uint64
	applied  uint64
	commit   uint64
	epochs   []EpochStart
	maxFloor uint64 // highest GC floor used; reads below it are not checked
	// installed is the LSN of the last snapshot install: the expiry index
	// holds nothing of the entries before it.
	installed uint64
}

func (m *storeModel) lastEpoch() uint64 {
	if len(m.epochs) == 0 {
		return 0
	}
	return m.epochs[len(m.epochs)-1].Epoch
}

func (m *storeModel) state() State {
	return State{FirstLSN: m.first, LastLSN: m.last, LastEpoch: m.lastEpoch(), AppliedLSN: m.applied, CommitLSN: m.commit}
}

// at replays applied entries up to LSN r, ops in order.
func (m *storeModel) at(r uint64) map[string]modelVersion {
	kv := map[string]modelVersion{}
	for lsn := uint64(1); lsn <= min(r, m.applied); lsn++ {
		for _, op := range m.entries[lsn].Ops {
			switch op.Kind {
			case OpSet:
				kv[string(op.Key)] = modelVersion{string(op.Value), lsn, op.ExpireAt}
			case OpDel:
				delete(kv, string(op.Key))
			case OpFlush:
				clear(kv)
			}
		}
	}
	return kv
}

// expiryRecords lists the expiry index the applied entries leave: one
// record per SET with an expiry that survived its entry's own FLUSH.
func (m *storeModel) expiryRecords() []string {
	seen := map[string]bool{}
	for lsn := max(m.installed, 1); lsn <= m.applied; lsn++ {
		ops := m.entries[lsn].Ops
		first := 0
		for i, op := range ops {
			if op.Kind == OpFlush {
				first = i
			}
		}
		for _, op := range ops[first:] {
			if op.Kind == OpSet && op.ExpireAt != 0 {
				seen[fmt.Sprintf("%d/%d/%q", op.ExpireAt, lsn, op.Key)] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type storeMachine struct {
	dir string
	// fs is an in-memory file system that can be "crashed": a clone keeps
	// what was synced and, at random, some of what was not.
	fs *vfs.MemFS
	s  *Store
	m  storeModel
	// durable is the last LSN the store has reported durable (a synced
	// Append waited for, a suffix truncation): a crash must keep it.
	durable uint64
	// rowBytes is the row cache's budget: off, about one entry per shard
	// (evicting all the time), or the default.
	rowBytes int64
}

func (sm *storeMachine) open(t *rapid.T) {
	// Tiny segments, so that retention deletes whole segment files and
	// recovery crosses segment boundaries.
	s, err := Open(sm.dir, Options{CacheBytes: 1 << 20, FS: sm.fs, SegmentBytes: 300, RowCacheBytes: sm.rowBytes})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sm.s = s
}

// readLSN draws a read LSN in [maxFloor, last], or Latest.
func (sm *storeMachine) readLSN(t *rapid.T) uint64 {
	if rapid.IntRange(0, 9).Draw(t, "latest") == 0 {
		return Latest
	}
	return rapid.Uint64Range(sm.m.maxFloor, sm.m.last).Draw(t, "at")
}

func (sm *storeMachine) genEntries(t *rapid.T) []Entry {
	n := rapid.IntRange(1, 4).Draw(t, "entries")
	epoch := max(sm.m.lastEpoch(), 1)
	es := make([]Entry, n)
	for i := range es {
		epoch += uint64(rapid.SampledFrom([]int{0, 0, 0, 0, 1, 2}).Draw(t, "epochStep"))
		lsn := sm.m.last + 1 + uint64(i)
		nops := rapid.IntRange(0, 3).Draw(t, "ops")
		ops := make([]Op, 0, nops)
		for j := range nops {
			key := []byte(rapid.SampledFrom(modelKeys).Draw(t, "key"))
			switch rapid.IntRange(0, 9).Draw(t, "kind") {
			case 0, 1:
				ops = append(ops, Op{Kind: OpDel, Key: key})
			case 2:
				ops = append(ops, Op{Kind: OpFlush})
			default:
				exp := rapid.SampledFrom([]int64{0, 0, 50, 100}).Draw(t, "expireAt")
				ops = append(ops, Op{Kind: OpSet, Key: key, Value: fmt.Appendf(nil, "v%d.%d", lsn, j), ExpireAt: exp})
			}
		}
		es[i] = Entry{LSN: lsn, Epoch: epoch, Time: int64(lsn), Ops: ops}
	}
	return es
}

func (sm *storeMachine) Append(t *rapid.T) {
	es := sm.genEntries(t)
	apply := sm.m.applied == sm.m.last && rapid.IntRange(0, 3).Draw(t, "follower") != 0
	sync := rapid.Bool().Draw(t, "sync")
	commit := rapid.Uint64Range(0, sm.m.last+uint64(len(es))+2).Draw(t, "commitLSN")
	p, err := sm.s.Append(es, AppendOptions{Apply: apply, Sync: sync, CommitLSN: commit})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	for _, e := range es {
		sm.m.entries[e.LSN] = e
		if len(sm.m.epochs) == 0 || e.Epoch > sm.m.lastEpoch() {
			sm.m.epochs = append(sm.m.epochs, EpochStart{Epoch: e.Epoch, FirstLSN: e.LSN})
		}
	}
	sm.m.last += uint64(len(es))
	if apply {
		sm.m.applied = sm.m.last
	}
	if sync {
		sm.durable = sm.m.last
	}
	if commit > sm.m.commit {
		sm.m.commit = min(commit, sm.m.last)
	}
}

// AppendInvalid tries batches the store must refuse whole: a gap, a
// repeated LSN, or an epoch going backwards.
func (sm *storeMachine) AppendInvalid(t *rapid.T) {
	es := sm.genEntries(t)
	var want error
	switch rapid.IntRange(0, 2).Draw(t, "how") {
	case 0:
		es[len(es)-1].LSN += 1 + uint64(rapid.IntRange(0, 2).Draw(t, "gap"))
		want = ErrNotContiguous
	case 1:
		if sm.m.last == 0 {
			t.Skip("no LSN to repeat")
		}
		es[0].LSN = rapid.Uint64Range(1, sm.m.last).Draw(t, "repeat")
		want = ErrNotContiguous
	case 2:
		if sm.m.lastEpoch() <= 1 {
			t.Skip("no lower epoch")
		}
		es[len(es)-1].Epoch = rapid.Uint64Range(1, sm.m.lastEpoch()-1).Draw(t, "lowerEpoch")
	}
	_, err := sm.s.Append(es, AppendOptions{Apply: sm.m.applied == sm.m.last, Sync: true})
	if err == nil || (want != nil && !errors.Is(err, want)) {
		t.Fatalf("invalid Append = %v, want an error (%v)", err, want)
	}
}

func (sm *storeMachine) ApplyUpTo(t *rapid.T) {
	if sm.m.applied == sm.m.last {
		t.Skip("nothing to apply")
	}
	to := rapid.Uint64Range(sm.m.applied+1, sm.m.last).Draw(t, "to")
	if err := sm.s.ApplyUpTo(to); err != nil {
		t.Fatalf("ApplyUpTo(%d): %v", to, err)
	}
	sm.m.applied = to
}

func (sm *storeMachine) Get(t *rapid.T) {
	key := rapid.SampledFrom(modelKeys).Draw(t, "key")
	at := sm.readLSN(t)
	v, ok, err := sm.s.Get([]byte(key), at)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want, wantOK := sm.m.at(at)[key]
	if ok != wantOK || (ok && (string(v.Value) != want.value || v.LSN != want.lsn || v.ExpireAt != want.expireAt || v.Deleted)) {
		t.Fatalf("Get(%q, %d) = %+v, %v; model %+v, %v", key, at, v, ok, want, wantOK)
	}
}

func (sm *storeMachine) Scan(t *rapid.T) {
	at := sm.readLSN(t)
	var start []byte
	if rapid.Bool().Draw(t, "withStart") {
		start = []byte(rapid.SampledFrom(append([]string{"a\x00\x00", "c"}, modelKeys...)).Draw(t, "start"))
	}
	limit := rapid.IntRange(1, len(modelKeys)+1).Draw(t, "limit")
	var got []string
	err := sm.s.Scan(at, start, func(k []byte, v Version) bool {
		got = append(got, fmt.Sprintf("%q=%s@%d/%d", k, v.Value, v.LSN, v.ExpireAt))
		return len(got) < limit
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	kv := sm.m.at(at)
	var want []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range kv {
			if !yield(k) {
				return
			}
		}
	}) {
		if start != nil && k < string(start) {
			continue
		}
		if len(want) < limit {
			v := kv[k]
			want = append(want, fmt.Sprintf("%q=%s@%d/%d", k, v.value, v.lsn, v.expireAt))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Scan(%d, %q, limit %d) =\n %s\nmodel:\n %s", at, start, limit, strings.Join(got, " "), strings.Join(want, " "))
	}
}

// ScanReverse must list, below a random end, what Scan lists, backwards.
func (sm *storeMachine) ScanReverse(t *rapid.T) {
	at := sm.readLSN(t)
	var end []byte
	if rapid.Bool().Draw(t, "withEnd") {
		end = []byte(rapid.SampledFrom(append([]string{"a\x00\x00", "c", ""}, modelKeys...)).Draw(t, "end"))
	}
	limit := rapid.IntRange(1, len(modelKeys)+1).Draw(t, "limit")
	var got []string
	err := sm.s.ScanReverse(at, end, func(k []byte, v Version) bool {
		got = append(got, fmt.Sprintf("%q=%s@%d/%d", k, v.Value, v.LSN, v.ExpireAt))
		return len(got) < limit
	})
	if err != nil {
		t.Fatalf("ScanReverse: %v", err)
	}
	kv := sm.m.at(at)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range kv {
			if !yield(k) {
				return
			}
		}
	})
	var want []string
	for i := len(keys) - 1; i >= 0 && len(want) < limit; i-- {
		if k := keys[i]; end == nil || k < string(end) {
			v := kv[k]
			want = append(want, fmt.Sprintf("%q=%s@%d/%d", k, v.value, v.lsn, v.expireAt))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ScanReverse(%d, %q, limit %d) =\n %s\nmodel:\n %s", at, end, limit, strings.Join(got, " "), strings.Join(want, " "))
	}
}

// KeyCount must equal the number of keys the replay holds at the read
// LSN (expired or not), whatever happened before: rollback, crash, GC,
// retention, snapshot install.
func (sm *storeMachine) KeyCount(t *rapid.T) {
	at := sm.readLSN(t)
	n, err := sm.s.KeyCount(at)
	if err != nil {
		t.Fatalf("KeyCount(%d): %v", at, err)
	}
	var want KeyCount
	for _, v := range sm.m.at(at) {
		want.Keys++
		if v.expireAt != 0 {
			want.Expires++
		}
	}
	if n != want {
		t.Fatalf("KeyCount(%d) = %+v, model %+v", at, n, want)
	}
}

// UnexpiredKeyCount leaves out the keys expired at a random time, as the
// replay holds them.
func (sm *storeMachine) UnexpiredKeyCount(t *rapid.T) {
	at := sm.readLSN(t)
	now := rapid.SampledFrom([]int64{0, 49, 50, 99, 100, 1 << 40}).Draw(t, "nowMs")
	n, complete, err := sm.s.UnexpiredKeyCount(at, now)
	if err != nil || !complete {
		t.Fatalf("UnexpiredKeyCount(%d, %d): %v (complete %v)", at, now, err, complete)
	}
	var want KeyCount
	for _, v := range sm.m.at(at) {
		if v.expireAt != 0 && v.expireAt <= now {
			continue
		}
		want.Keys++
		if v.expireAt != 0 {
			want.Expires++
		}
	}
	if n != want {
		t.Fatalf("UnexpiredKeyCount(%d, %d) = %+v, model %+v", at, now, n, want)
	}
}

// Install replaces the store with a snapshot of its own state at the
// applied LSN (as a new follower installs its leader's), in chunks, one of
// them sent twice as a retried stream would.
func (sm *storeMachine) Install(t *rapid.T) {
	at := sm.m.applied
	kv := sm.m.at(at)
	var kvs []KV
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range kv {
			if !yield(k) {
				return
			}
		}
	}) {
		kvs = append(kvs, KV{Key: []byte(k), Value: []byte(kv[k].value), ExpireAt: kv[k].expireAt})
	}
	epochs := append([]EpochStart(nil), sm.m.epochs...)
	for len(epochs) > 0 && epochs[len(epochs)-1].FirstLSN > at {
		epochs = epochs[:len(epochs)-1]
	}
	if err := sm.s.BeginInstall(); err != nil {
		t.Fatalf("BeginInstall: %v", err)
	}
	split := rapid.IntRange(0, len(kvs)).Draw(t, "split")
	for _, chunk := range [][]KV{kvs[:split], kvs[split:], kvs[:split]} {
		if err := sm.s.InstallChunk(at, chunk); err != nil {
			t.Fatalf("InstallChunk: %v", err)
		}
	}
	if err := sm.s.FinishInstall(at, epochs); err != nil {
		t.Fatalf("FinishInstall: %v", err)
	}
	// The state is the same, but every key's version is now at LSN at and
	// nothing older is left: in the model, the entry at at becomes a
	// FLUSHALL followed by the installed keys. The log starts after at.
	if at > 0 {
		ops := []Op{{Kind: OpFlush}}
		for _, x := range kvs {
			ops = append(ops, Op{Kind: OpSet, Key: x.Key, Value: x.Value, ExpireAt: x.ExpireAt})
		}
		e := sm.m.entries[at]
		e.Ops = ops
		sm.m.entries[at] = e
	}
	for lsn := at + 1; lsn <= sm.m.last; lsn++ {
		delete(sm.m.entries, lsn)
	}
	sm.m.first, sm.m.last, sm.m.applied, sm.m.commit, sm.m.epochs = at+1, at, at, at, epochs
	sm.m.maxFloor, sm.m.installed = at, at
	sm.durable = at
}

func (sm *storeMachine) GC(t *rapid.T) {
	floor := rapid.Uint64Range(0, sm.m.applied).Draw(t, "floor")
	if _, err := sm.s.GC(floor); err != nil {
		t.Fatalf("GC(%d): %v", floor, err)
	}
	// The store collects only up to its durable log end.
	sm.m.maxFloor = max(sm.m.maxFloor, min(floor, sm.durable))
}

func (sm *storeMachine) TruncateSuffix(t *rapid.T) {
	// Rolling back below a GC floor is outside the contract: GC may have
	// dropped the older versions such a rollback would uncover.
	lo := max(sm.m.maxFloor, sm.m.first-1)
	if lo > sm.m.last {
		t.Skip("nothing may be rolled back")
	}
	x := rapid.Uint64Range(lo, sm.m.last).Draw(t, "x")
	removed, err := sm.s.TruncateSuffix(x)
	if err != nil {
		t.Fatalf("TruncateSuffix(%d): %v", x, err)
	}
	if len(removed) != int(sm.m.last-x) {
		t.Fatalf("TruncateSuffix(%d) returned %d entries, want %d", x, len(removed), sm.m.last-x)
	}
	for i, e := range removed {
		if want := sm.m.entries[x+1+uint64(i)]; !sameEntry(e, want) {
			t.Fatalf("removed[%d] = %+v, want %+v", i, e, want)
		}
	}
	for lsn := x + 1; lsn <= sm.m.last; lsn++ {
		delete(sm.m.entries, lsn)
	}
	if x < sm.m.last {
		sm.durable = x // the truncated log is synced
	}
	sm.m.last = x
	sm.m.applied = min(sm.m.applied, x)
	sm.m.commit = min(sm.m.commit, x)
	for len(sm.m.epochs) > 0 && sm.m.epochs[len(sm.m.epochs)-1].FirstLSN > x {
		sm.m.epochs = sm.m.epochs[:len(sm.m.epochs)-1]
	}
}

func (sm *storeMachine) TruncateSuffixCompacted(t *rapid.T) {
	if sm.m.first < 2 {
		t.Skip("log not truncated")
	}
	x := rapid.Uint64Range(0, sm.m.first-2).Draw(t, "x")
	if _, err := sm.s.TruncateSuffix(x); !errors.Is(err, ErrCompacted) {
		t.Fatalf("TruncateSuffix(%d) below FirstLSN %d = %v, want ErrCompacted", x, sm.m.first, err)
	}
}

func (sm *storeMachine) TruncatePrefix(t *rapid.T) {
	x := rapid.Uint64Range(0, sm.m.applied+1).Draw(t, "x")
	err := sm.s.TruncatePrefix(x)
	if x > sm.m.applied {
		if err == nil {
			t.Fatalf("TruncatePrefix(%d) beyond applied %d succeeded", x, sm.m.applied)
		}
		return
	}
	if err != nil {
		t.Fatalf("TruncatePrefix(%d): %v", x, err)
	}
	sm.m.first = max(sm.m.first, x+1)
}

func (sm *storeMachine) ReadLog(t *rapid.T) {
	if sm.m.first > 1 && rapid.IntRange(0, 4).Draw(t, "belowFirst") == 0 {
		from := rapid.Uint64Range(0, sm.m.first-1).Draw(t, "from")
		if err := sm.s.ReadLog(from, sm.m.last, 0, func(Entry) error { return nil }); !errors.Is(err, ErrCompacted) {
			t.Fatalf("ReadLog(%d) below FirstLSN %d = %v, want ErrCompacted", from, sm.m.first, err)
		}
		return
	}
	if sm.m.first > sm.m.last {
		t.Skip("log empty")
	}
	from := rapid.Uint64Range(sm.m.first, sm.m.last).Draw(t, "from")
	to := rapid.Uint64Range(from, sm.m.last+1).Draw(t, "to")
	next := from
	err := sm.s.ReadLog(from, to, 0, func(e Entry) error {
		if want := sm.m.entries[next]; !sameEntry(e, want) {
			t.Fatalf("ReadLog entry %d = %+v, want %+v", next, e, want)
		}
		next++
		return nil
	})
	if err != nil {
		t.Fatalf("ReadLog(%d, %d): %v", from, to, err)
	}
	if want := min(to, sm.m.last) + 1; next != want {
		t.Fatalf("ReadLog(%d, %d) stopped before %d, want %d", from, to, next, want)
	}
}

func (sm *storeMachine) EpochAt(t *rapid.T) {
	lsn := rapid.Uint64Range(0, sm.m.last+1).Draw(t, "lsn")
	want := uint64(0)
	if lsn >= 1 && lsn <= sm.m.last {
		want = sm.m.entries[lsn].Epoch
	}
	if got := sm.s.EpochAt(lsn); got != want {
		t.Fatalf("EpochAt(%d) = %d, want %d", lsn, got, want)
	}
}

func (sm *storeMachine) Expiring(t *rapid.T) {
	recs, err := sm.s.Expiring(1<<62, 1000)
	if err != nil {
		t.Fatalf("Expiring: %v", err)
	}
	got := make([]string, 0, len(recs))
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%d/%d/%q", r.ExpireAt, r.LSN, r.Key))
	}
	slices.Sort(got)
	if want := sm.m.expiryRecords(); !slices.Equal(got, want) {
		t.Fatalf("expiry index %v, model %v", got, want)
	}
}

func (sm *storeMachine) Reopen(t *rapid.T) {
	if err := sm.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sm.open(t)
	// Open applies the whole log (a node that is not a delayed replica
	// would apply it next anyway), and syncs it.
	sm.m.applied = sm.m.last
	sm.durable = sm.m.last
}

// Flush makes Pebble write its memtable to a table, which moves the point
// a crash recovery replays the log from.
func (sm *storeMachine) Flush(t *rapid.T) {
	if err := sm.s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// Crash is kill -9 (or a power cut): the store reopens on a copy of the
// files holding everything synced and, at random, parts of what was not.
// Everything reported durable must come back unchanged; what comes back
// beyond it must be a prefix of what was appended; and the data must be
// exactly what the recovered log's entries write (checked by the other
// actions against the model, which follows the recovered store).
func (sm *storeMachine) Crash(t *rapid.T) {
	pct := rapid.SampledFrom([]int{0, 30, 100}).Draw(t, "unsyncedPercent")
	seed := rapid.Uint64().Draw(t, "seed")
	clone := sm.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, 1))})
	_ = sm.s.Close() // closes the old files; the clone is already taken
	sm.fs = clone
	sm.open(t)
	st := sm.s.State()
	if st.LastLSN < sm.durable || st.LastLSN > sm.m.last {
		t.Fatalf("after a crash LastLSN = %d, want between durable %d and appended %d", st.LastLSN, sm.durable, sm.m.last)
	}
	if st.FirstLSN > sm.m.first {
		t.Fatalf("after a crash FirstLSN = %d, above the %d before it", st.FirstLSN, sm.m.first)
	}
	if err := sm.s.ReadLog(st.FirstLSN, st.LastLSN, 0, func(e Entry) error {
		if want := sm.m.entries[e.LSN]; !sameEntry(e, want) {
			t.Fatalf("after a crash entry %d = %+v, want %+v", e.LSN, e, want)
		}
		return nil
	}); err != nil {
		t.Fatalf("ReadLog after a crash: %v", err)
	}
	for lsn := st.LastLSN + 1; lsn <= sm.m.last; lsn++ {
		delete(sm.m.entries, lsn)
	}
	sm.m.last = st.LastLSN
	sm.m.first = st.FirstLSN
	sm.m.maxFloor = min(sm.m.maxFloor, sm.m.last)
	for len(sm.m.epochs) > 0 && sm.m.epochs[len(sm.m.epochs)-1].FirstLSN > sm.m.last {
		sm.m.epochs = sm.m.epochs[:len(sm.m.epochs)-1]
	}
	// Open applies the whole recovered log; the commit LSN is re-learned
	// from the leader, so it may come back lower, never higher.
	sm.m.applied = sm.m.last
	if st.CommitLSN > min(sm.m.commit, sm.m.last) {
		t.Fatalf("after a crash CommitLSN = %d, above the %d before it", st.CommitLSN, min(sm.m.commit, sm.m.last))
	}
	sm.m.commit = st.CommitLSN
	sm.durable = sm.m.last
}

// Check runs after every action: positions and the epoch history must
// always match the model exactly.
func (sm *storeMachine) Check(t *rapid.T) {
	if st := sm.s.State(); st != sm.m.state() {
		t.Fatalf("State = %+v, model %+v", st, sm.m.state())
	}
	if h := sm.s.EpochHistory(); !slices.Equal(h, sm.m.epochs) && !(len(h) == 0 && len(sm.m.epochs) == 0) {
		t.Fatalf("EpochHistory = %v, model %v", h, sm.m.epochs)
	}
}

func TestStoreMatchesModel(t *testing.T) {
	base := t.TempDir()
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp(base, "store")
		if err != nil {
			t.Fatal(err)
		}
		mfs := vfs.NewCrashableMem()
		if err := mfs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// The directory itself survives a crash (a node's data directory
		// exists before it starts).
		for p := dir; ; p = mfs.PathDir(p) {
			d, err := mfs.OpenDir(mfs.PathDir(p))
			if err != nil {
				t.Fatal(err)
			}
			if err := firstErr(d.Sync(), d.Close()); err != nil {
				t.Fatal(err)
			}
			if mfs.PathDir(p) == p || mfs.PathDir(p) == "/" {
				break
			}
		}
		sm := &storeMachine{dir: dir, fs: mfs, m: storeModel{entries: map[uint64]Entry{}, first: 1},
			rowBytes: rapid.SampledFrom([]int64{-1, rowShards * 150, 0}).Draw(t, "rowBytes")}
		sm.open(t)
		defer func() {
			_ = sm.s.Close()
			_ = os.RemoveAll(dir)
		}()
		t.Repeat(rapid.StateMachineActions(sm))
	})
}
