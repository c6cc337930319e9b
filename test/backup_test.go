package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/engine"
)

// runCLI runs the replicant binary and returns its stdout and stderr.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// keyWrite is one write of the load: a SET (del false) or a DEL of key,
// acknowledged at lsn, or not (lsn 0: failed or unknown outcome).
type keyWrite struct {
	val        string
	del        bool
	lsn        uint64
	start, end time.Time
}

// writeLog records every write of the load per key, in the order each
// key's single writer issued them.
type writeLog struct {
	mu     sync.Mutex
	byKey  map[string][]keyWrite
	acked  atomic.Int64
	failed atomic.Int64
}

func (l *writeLog) add(key string, w keyWrite) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byKey[key] = append(l.byKey[key], w)
	if w.lsn != 0 {
		l.acked.Add(1)
	} else {
		l.failed.Add(1)
	}
}

// runLoad writes through the leader's HTTP API until ctx ends: each writer
// creates fresh keys and overwrites and deletes keys of its own, so every
// key has one writer and its writes' order is their LSN order.
func runLoad(ctx context.Context, leader *proc, writers int, l *writeLog) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 15 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				key, method := fmt.Sprintf("w%d-new-%d", w, i), http.MethodPut
				switch i % 4 {
				case 1:
					key = fmt.Sprintf("w%d-hot-%d", w, i%16)
				case 3:
					key, method = fmt.Sprintf("w%d-hot-%d", w, (i+5)%16), http.MethodDelete
				}
				val := fmt.Sprintf("%s=%d", key, i)
				var body *strings.Reader
				if method == http.MethodPut {
					body = strings.NewReader(val)
				} else {
					body = strings.NewReader("")
				}
				req, _ := http.NewRequestWithContext(ctx, method, "http://"+leader.HTTP+"/v1/kv/"+key, body)
				kw := keyWrite{val: val, del: method == http.MethodDelete, start: time.Now()}
				resp, err := hc.Do(req)
				kw.end = time.Now()
				if err == nil {
					if resp.StatusCode == http.StatusNoContent || (kw.del && resp.StatusCode == http.StatusNotFound) {
						if tok, perr := engine.ParseToken(resp.Header.Get("Replicant-Token")); perr == nil {
							kw.lsn = tok.LSN
						}
					}
					resp.Body.Close()
				}
				if ctx.Err() != nil && kw.lsn == 0 {
					return // cancelled in flight: outcome unknown, and the load is over
				}
				l.add(key, kw)
			}
		}()
	}
	return &wg
}

// expectedAt is the state the writes leave at LSN at: for each key, its
// last acknowledged write at or below at. Keys with a failed write are
// uncertain (it may or may not have happened) and left out.
func (l *writeLog) expectedAt(at uint64) (present map[string]string, absent []string, uncertain int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	present = map[string]string{}
	for key, ws := range l.byKey {
		sure := true
		for _, w := range ws {
			sure = sure && w.lsn != 0
		}
		if !sure {
			uncertain++
			continue
		}
		var last *keyWrite
		for i := range ws {
			if ws[i].lsn <= at {
				last = &ws[i]
			}
		}
		if last == nil || last.del {
			absent = append(absent, key)
		} else {
			present[key] = last.val
		}
	}
	return present, absent, uncertain
}

// during counts acknowledged writes that were in flight while a backup ran
// from start to end, and those acknowledged above the backup's LSN.
func (l *writeLog) during(start, end time.Time, lsn uint64) (overlapping, newer int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ws := range l.byKey {
		for _, w := range ws {
			if w.lsn != 0 && w.start.Before(end) && w.end.After(start) {
				overlapping++
			}
			if w.lsn > lsn {
				newer++
			}
		}
	}
	return overlapping, newer
}

func readBackupHeader(t *testing.T, file string) (backup.Header, backup.Trailer) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, tr, err := backup.Verify(f)
	if err != nil {
		t.Fatalf("the backup %s does not verify: %v", file, err)
	}
	return h, tr
}

// TestBackupUnderLoadRestoresExactly takes backups from a follower and
// from the leader of a 3-node cluster while clients write, restores each
// into a new data directory, starts a one-node cluster on it, and checks
// every key against the acknowledged writes: each one at or below the
// backup's LSN is there with its value (or deleted), nothing newer is.
func TestBackupUnderLoadRestoresExactly(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.node("n1")
	// A preloaded bulk makes each backup take a while, so writes go on
	// during it.
	rdb := leader.redis()
	ctx := ctxT(t, 5*time.Minute)
	const bulk, bulkValue = 20_000, 400
	for i := 0; i < bulk; i += 500 {
		var kv []any
		for j := i; j < i+500; j++ {
			kv = append(kv, fmt.Sprintf("bulk-%05d", j), strings.Repeat(string(rune('a'+j%26)), bulkValue))
		}
		if err := rdb.MSet(ctx, kv...).Err(); err != nil {
			t.Fatalf("preload: %v", err)
		}
	}

	l := &writeLog{byKey: map[string][]keyWrite{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	wg := runLoad(loadCtx, leader, 4, l)
	defer func() { stopLoad(); wg.Wait() }()
	waitFor(t, "the load to get going", 30*time.Second, func() bool { return l.acked.Load() >= 200 })

	type taken struct {
		from       *proc
		file       string
		start, end time.Time
	}
	var backups []taken
	for _, from := range []*proc{c.node("n2"), leader} {
		file := filepath.Join(t.TempDir(), "from-"+from.ID+".backup")
		start := time.Now()
		out, errOut, err := runCLI(t, "backup", "--to", file, "--addr", from.HTTP)
		if err != nil {
			t.Fatalf("backup from %s: %v\n%s%s", from.ID, err, out, errOut)
		}
		backups = append(backups, taken{from, file, start, time.Now()})
		t.Logf("backup from %s: %s%s", from.ID, errOut, out)
		lsn := readBackupLSN(t, file)
		waitFor(t, "more writes after the backup", 30*time.Second, func() bool {
			_, newer := l.during(start, start, lsn)
			return newer >= 50
		})
	}
	stopLoad()
	wg.Wait()
	t.Logf("load: %d writes acknowledged, %d failed", l.acked.Load(), l.failed.Load())
	leaderLSN := leader.mustStatus().CommitLSN

	for _, b := range backups {
		t.Run("from-"+b.from.ID, func(t *testing.T) {
			h, tr := readBackupHeader(t, b.file)
			wantRole := map[bool]string{true: "leader", false: "follower"}[b.from == leader]
			if h.Node != b.from.ID || h.Role != wantRole || h.Leader != "n1" || h.Mode != engine.ModeSingleLeader || h.Epoch == 0 || h.LSN == 0 || h.LSN > leaderLSN {
				t.Fatalf("header %+v (leader's commit LSN %d)", h, leaderLSN)
			}
			overlapping, newer := l.during(b.start, b.end, h.LSN)
			if overlapping == 0 || newer == 0 {
				t.Fatalf("precondition: the backup at LSN %d did not run under load (%d writes in flight during it, %d acknowledged above it)", h.LSN, overlapping, newer)
			}
			present, absent, uncertain := l.expectedAt(h.LSN)
			if uncertain > len(present)/100 {
				t.Fatalf("precondition: %d keys had failed writes (of %d present)", uncertain, len(present))
			}
			for i := range bulk {
				present[fmt.Sprintf("bulk-%05d", i)] = strings.Repeat(string(rune('a'+i%26)), bulkValue)
			}
			if tr.Keys < uint64(len(present)) || tr.Keys > uint64(len(present)+uncertain) {
				t.Fatalf("the backup holds %d keys; the writes up to LSN %d leave %d (+%d uncertain)", tr.Keys, h.LSN, len(present), uncertain)
			}

			p := newProc(t, "n1")
			out, errOut, err := runCLI(t, "restore", "--from", b.file, "--data", p.Data)
			if err != nil {
				t.Fatalf("restore: %v\n%s%s", err, out, errOut)
			}
			p.start()
			st := p.mustStatus()
			if st.Leader != "n1" || st.CommitLSN < h.LSN || st.Epoch != 1 {
				t.Fatalf("restored node: leader %q, epoch %d, commit LSN %d (backup LSN %d)", st.Leader, st.Epoch, st.CommitLSN, h.LSN)
			}
			r := p.redis()
			checkKeys(ctx, t, r, present, absent)
			n, err := r.DBSize(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if n < int64(len(present)) || n > int64(len(present)+uncertain) {
				t.Fatalf("the restored node holds %d keys, want %d (+%d uncertain)", n, len(present), uncertain)
			}
			// It is a working cluster: it takes writes after the restored state.
			if err := r.Set(ctx, "after-restore", "x", 0).Err(); err != nil {
				t.Fatalf("write to the restored node: %v", err)
			}
			t.Logf("restored from %s at %d:%d: %d keys present, %d absent checked, %d uncertain", b.from.ID, h.Epoch, h.LSN, len(present), len(absent), uncertain)
		})
	}
}

func readBackupLSN(t *testing.T, file string) uint64 {
	h, _ := readBackupHeader(t, file)
	return h.LSN
}

// checkKeys reads every key of present and absent from r.
func checkKeys(ctx context.Context, t *testing.T, r *redis.Client, present map[string]string, absent []string) {
	t.Helper()
	keys := make([]string, 0, len(present))
	for k := range present {
		keys = append(keys, k)
	}
	keys = append(keys, absent...)
	for i := 0; i < len(keys); i += 500 {
		batch := keys[i:min(i+500, len(keys))]
		vals, err := r.MGet(ctx, batch...).Result()
		if err != nil {
			t.Fatal(err)
		}
		for j, k := range batch {
			want, ok := present[k]
			switch {
			case ok && vals[j] == nil:
				t.Fatalf("key %s is missing; want %q", k, want)
			case ok && vals[j] != want:
				t.Fatalf("key %s = %q, want %q", k, vals[j], want)
			case !ok && vals[j] != nil:
				t.Fatalf("key %s = %q, want it absent at the backup's LSN", k, vals[j])
			}
		}
	}
}

// TestRestoreRefusesABadBackup corrupts and truncates a good backup:
// restore refuses both and creates nothing. A good one restores, and the
// restored directory will not start as anything but the first leader.
func TestRestoreRefusesABadBackup(t *testing.T) {
	src := newProc(t, "n1")
	src.start()
	ctx := ctxT(t, 2*time.Minute)
	rdb := src.redis()
	for i := range 200 {
		if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), strings.Repeat("v", 100), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	good := filepath.Join(t.TempDir(), "good.backup")
	if out, errOut, err := runCLI(t, "backup", "--to", good, "--addr", src.HTTP); err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := runCLI(t, "restore", "--from", good, "--check"); err != nil || !strings.Contains(out, "intact") {
		t.Fatalf("check of the good file: %v\n%s%s", err, out, errOut)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"one flipped bit", flip(raw, len(raw)/2), "checksum mismatch"},
		{"truncated", raw[:len(raw)*2/3], "truncated"},
		{"not a backup", []byte("*1\r\n$4\r\nPING\r\n"), "not a replicant backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(file, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "data-"+filepath.Base(file))
			out, errOut, err := runCLI(t, "restore", "--from", file, "--data", target)
			if err == nil || !strings.Contains(errOut, tc.want) {
				t.Fatalf("restore of a bad file: err %v, stderr %q, want it refused with %q\n%s", err, errOut, tc.want, out)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Fatalf("the data directory was created (%v)", err)
			}
			if out, errOut, err := runCLI(t, "restore", "--from", file, "--check"); err == nil {
				t.Fatalf("--check passed a bad file:\n%s%s", out, errOut)
			}
		})
	}

	// Listed second, the restored node would follow an empty leader and
	// roll its data back: the server refuses that first start.
	restored := filepath.Join(dir, "restored")
	if out, errOut, err := runCLI(t, "restore", "--from", good, "--data", restored, "--id", "n2"); err != nil {
		t.Fatalf("restore: %v\n%s%s", err, out, errOut)
	}
	p := newProc(t, "n2")
	p.Data = restored
	first := freeAddrs(t, 1)[0]
	p.Args = []string{"--initial-cluster", "n1=" + first + ",n2=" + p.Peer}
	p.startNoWait()
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the server started a restored directory listed second in --initial-cluster")
	}
	if code := p.ExitCode(); code == 0 || !strings.Contains(p.Log.String(), "list this node (n2) first") {
		t.Fatalf("exit %d, output:\n%s", code, p.Log.String())
	}
	if _, err := os.Stat(filepath.Join(restored, "control")); !os.IsNotExist(err) {
		t.Fatalf("the refused start created a control plane (%v)", err)
	}

	// The documented way: the restored node first, the others empty; they
	// receive the data as a snapshot.
	n1, n2 := newProc(t, "n1"), newProc(t, "n2")
	if out, errOut, err := runCLI(t, "restore", "--from", good, "--data", n1.Data); err != nil {
		t.Fatalf("restore: %v\n%s%s", err, out, errOut)
	}
	initial := "n1=" + n1.Peer + ",n2=" + n2.Peer
	for _, p := range []*proc{n1, n2} {
		p.Args = []string{"--initial-cluster", initial}
		p.startNoWait()
	}
	n1.waitHealthy()
	n2.waitHealthy()
	r2 := n2.redis()
	waitFor(t, "n2 to hold the restored keys", 30*time.Second, func() bool {
		n, err := r2.DBSize(ctx).Result()
		return err == nil && n == 200
	})
	if v, err := r2.Get(ctx, "k7").Result(); err != nil || v != strings.Repeat("v", 100) {
		t.Fatalf("k7 on n2: %q, %v", v, err)
	}
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x10
	return out
}

// TestPointInTimeRecoveryFromADelayedReplica follows docs/backup.md: a
// FLUSHALL by mistake reaches a delayed replica, which is stopped before it
// applies it; a backup of its directory from just before the mistake holds
// every key, and a cluster restored from it serves them.
func TestPointInTimeRecoveryFromADelayedReplica(t *testing.T) {
	c := newCluster(t, 2, "--apply-delay", "1h")
	leader, delayed := c.node("n1"), c.node("n2")
	ctx := ctxT(t, 2*time.Minute)
	var goodLSN uint64
	for i := range 100 {
		code, _, tok := httpDo(t, http.MethodPut, "http://"+leader.HTTP+fmt.Sprintf("/v1/kv/k%d", i), fmt.Sprintf("v%d", i), nil)
		parsed, err := engine.ParseToken(tok)
		if code != http.StatusNoContent || err != nil {
			t.Fatalf("PUT: %d %q", code, tok)
		}
		goodLSN = parsed.LSN
	}
	mistakeAt := time.Now() // after every good write was acknowledged
	if err := leader.redis().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	badLSN := leader.mustStatus().CommitLSN
	if badLSN <= goodLSN {
		t.Fatalf("precondition: FLUSHALL did not commit past LSN %d", goodLSN)
	}
	waitFor(t, "the delayed replica to receive the FLUSHALL", 30*time.Second, func() bool {
		st, err := delayed.status()
		return err == nil && st.LastLSN >= badLSN
	})
	if st := delayed.mustStatus(); st.AppliedLSN >= badLSN {
		t.Fatalf("precondition: the delayed replica applied LSN %d already", st.AppliedLSN)
	}
	delayed.stop()

	// Without a target the backup is at the commit LSN: after the mistake.
	after := filepath.Join(t.TempDir(), "after.backup")
	if out, errOut, err := runCLI(t, "backup", "--data", delayed.Data, "--to", after, "--cluster-commit", fmt.Sprint(badLSN)); err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}
	if h, tr := readBackupHeader(t, after); h.LSN < badLSN || tr.Keys != 0 {
		t.Fatalf("the backup at the commit LSN: LSN %d, %d keys; want at least %d and no keys", h.LSN, tr.Keys, badLSN)
	}

	before := filepath.Join(t.TempDir(), "before.backup")
	out, errOut, err := runCLI(t, "backup", "--data", delayed.Data, "--to", before, "--id", "n2",
		"--before", mistakeAt.UTC().Format(time.RFC3339Nano), "--cluster-commit", fmt.Sprint(badLSN))
	if err != nil {
		t.Fatalf("backup --before: %v\n%s%s", err, out, errOut)
	}
	t.Logf("%s%s", errOut, out)
	h, tr := readBackupHeader(t, before)
	if h.LSN < goodLSN || h.LSN >= badLSN || tr.Keys != 100 || h.Node != "n2" {
		t.Fatalf("backup before the mistake: LSN %d (good writes end at %d, the FLUSHALL is at %d), %d keys, node %q", h.LSN, goodLSN, badLSN, tr.Keys, h.Node)
	}

	p := newProc(t, "n1")
	if out, errOut, err := runCLI(t, "restore", "--from", before, "--data", p.Data); err != nil {
		t.Fatalf("restore: %v\n%s%s", err, out, errOut)
	}
	p.start()
	want := map[string]string{}
	for i := range 100 {
		want[fmt.Sprintf("k%d", i)] = fmt.Sprintf("v%d", i)
	}
	checkKeys(ctx, t, p.redis(), want, nil)
}
