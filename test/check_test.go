package test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/check"
	"github.com/replicant-db/replicant/internal/check/local"
)

// runCheckJSON runs `replicant check ARGS --json` and returns its report
// and what it printed on stderr; the run must succeed.
func runCheckJSON(t *testing.T, args ...string) (check.Report, string) {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"check"}, args...), "--json")...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("replicant check %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errOut.String())
	}
	var rep check.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	return rep, errOut.String()
}

// TestCheckCommand runs `replicant check` as a user would: its own
// three-node cluster, a leader kill and a follower pause, and a report
// whose verdicts all held (FIRST 1 promises every one of them). The saved
// history re-checks to the same verdicts, and holds what the report
// counts: faults injected and healed, acknowledged inserts, session reads.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	hist := filepath.Join(dir, "history.json")
	rep, errOut := runCheckJSON(t, "--duration", "25s", "--nemesis", "kill-leader,pause-follower",
		"--seed", "3", "--data", filepath.Join(dir, "run"), "--history", hist)
	if !rep.Passed() || len(rep.Verdicts) < 4 {
		t.Fatalf("verdicts: %+v", rep.Verdicts)
	}
	if rep.Lost.Acked < 100 || rep.Sessions.Reads < 100 || rep.Linear.Ops < 100 {
		t.Fatalf("too little work to judge: %d inserts acknowledged, %d session reads, %d linearizability ops",
			rep.Lost.Acked, rep.Sessions.Reads, rep.Linear.Ops)
	}
	if len(rep.Availability) == 0 {
		t.Fatalf("no fault was injected:\n%s", errOut)
	}
	for _, a := range rep.Availability {
		if a.Fault.Healed <= a.Fault.Start {
			t.Fatalf("fault %+v was not healed", a.Fault)
		}
	}
	fh, err := os.Open(hist)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h, err := check.Load(fh)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) != rep.Operations || h.Setup["sync"] != "FIRST 1 (*)" {
		t.Fatalf("saved history: %d ops (report %d), setup %v", len(h.Ops), rep.Operations, h.Setup)
	}
	re, err := exec.Command(binary, "check", "recheck", hist).CombinedOutput()
	if err != nil || !strings.Contains(string(re), "no acknowledged write is lost:") {
		t.Fatalf("check recheck: %v\n%s", err, re)
	}
	// Bad input is refused with a clear error and starts nothing.
	bad, err := exec.Command(binary, "check", "--nemesis", "kill-everything").CombinedOutput()
	if err == nil || !strings.Contains(string(bad), `unknown nemesis "kill-everything"`) {
		t.Fatalf("unknown nemesis: %v\n%s", err, bad)
	}
}

// TestCheckCommandPartitions: with root, check runs each node in its own
// network namespace and cuts the leader, then a follower, off; every
// promise of FIRST 1 holds, and each partition cost a failover or a sync
// promotion, not an outage.
func TestCheckCommandPartitions(t *testing.T) {
	requireNetns(t)
	rep, errOut := runCheckJSON(t, "--duration", "25s", "--nemesis", "partition-leader,partition-follower",
		"--seed", "5", "--data", filepath.Join(t.TempDir(), "run"))
	if !rep.Passed() || rep.Lost.Acked < 100 {
		t.Fatalf("verdicts %+v after %d acknowledged inserts", rep.Verdicts, rep.Lost.Acked)
	}
	kinds := map[string]bool{}
	for _, a := range rep.Availability {
		kinds[a.Fault.Kind] = true
		if a.FirstAck < 0 {
			t.Fatalf("no write was acknowledged after %+v", a.Fault)
		}
	}
	if !kinds["partition-leader"] || !kinds["partition-follower"] {
		t.Fatalf("faults injected: %v\n%s", kinds, errOut)
	}
}

// TestCheckAgainstARunningCluster: --against runs the workload, without
// faults, on a cluster the user runs, found from one follower's address;
// every key it wrote carries its prefix, so nothing of the user's is
// touched.
func TestCheckAgainstARunningCluster(t *testing.T) {
	c := newCluster(t, 3, "--sync", "FIRST 1 (*)")
	ctx := ctxT(t, 60*time.Second)
	if err := c.node("n1").redis().Set(ctx, "mine", "keep", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rep, _ := runCheckJSON(t, "--against", c.node("n2").HTTP, "--duration", "4s", "--seed", "77")
	if !rep.Passed() || rep.Lost.Acked == 0 || rep.Setup["sync"] != "FIRST 1 (*)" || rep.Setup["nodes"] != "3" {
		t.Fatalf("report: setup %v, verdicts %+v, %d inserts", rep.Setup, rep.Verdicts, rep.Lost.Acked)
	}
	keys, err := c.node("n1").redis().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k != "mine" && !strings.HasPrefix(k, "check:77:") {
			t.Fatalf("check wrote %q outside its prefix", k)
		}
	}
	if v, err := c.node("n1").redis().Get(ctx, "mine").Result(); err != nil || v != "keep" {
		t.Fatalf("the user's key: %q, %v", v, err)
	}
	// Faults cannot be injected into someone else's processes.
	bad, err := exec.Command(binary, "check", "--against", c.node("n2").HTTP, "--nemesis", "kill-leader").CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "runs no faults") {
		t.Fatalf("--against with a nemesis: %v\n%s", err, bad)
	}
}

// TestCheckCommandLeaderless: five nodes, N=3, W=2 R=2, a node killed and
// one paused: no acknowledged write lost, every increment counted, and no
// quorum read missed a write acknowledged before it began.
func TestCheckCommandLeaderless(t *testing.T) {
	rep, _ := runCheckJSON(t, "--mode", "leaderless", "--duration", "20s", "--nemesis", "kill-node,pause-node",
		"--seed", "4", "--data", filepath.Join(t.TempDir(), "run"))
	if rep.Setup["n"] != "3" || rep.Setup["w"] != "2" || rep.Setup["r"] != "2" || rep.Setup["nodes"] != "5" {
		t.Fatalf("setup %v", rep.Setup)
	}
	if !rep.Passed() || rep.Quorum == nil || rep.Quorum.Reads < 100 || rep.Lost.Acked < 100 || len(rep.Availability) == 0 {
		t.Fatalf("verdicts %+v; quorum %+v; %d inserts; faults %d", rep.Verdicts, rep.Quorum, rep.Lost.Acked, len(rep.Availability))
	}
	last := rep.Verdicts[len(rep.Verdicts)-1]
	if !last.Promised || !last.Held {
		t.Fatalf("W=2 R=2 quorum reads: %+v", last)
	}
	bad, err := exec.Command(binary, "check", "--mode", "leaderless", "--nemesis", "kill-leader").CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "needs a leader") {
		t.Fatalf("kill-leader in leaderless mode: %v\n%s", err, bad)
	}
}

// TestCheckCommandMultiLeader: three one-node sites linked all-to-all,
// writes on every site (shared keys conflict), a site killed and one cut
// off: after healing every site holds the same data, no acknowledged
// write or increment is lost, and session reads on any site see the
// session's own writes (vector tokens).
func TestCheckCommandMultiLeader(t *testing.T) {
	nemesis := "kill-node,pause-node"
	if local.LabAvailable() == nil {
		nemesis += ",partition-node"
	}
	rep, _ := runCheckJSON(t, "--mode", "multi-leader", "--duration", "20s", "--nemesis", nemesis,
		"--seed", "4", "--data", filepath.Join(t.TempDir(), "run"))
	if !rep.Passed() || rep.Converge == nil || rep.Converge.Replicas != 3 || rep.Converge.Keys < 100 ||
		rep.Sessions.Reads < 50 || rep.Lost.Acked < 100 || rep.Conflicts == 0 || len(rep.Availability) == 0 {
		t.Fatalf("verdicts %+v; convergence %+v; %d session reads, %d inserts, %d conflicts, %d faults",
			rep.Verdicts, rep.Converge, rep.Sessions.Reads, rep.Lost.Acked, rep.Conflicts, len(rep.Availability))
	}
}

// TestCheckPartitionsWithoutRoot: an unprivileged user's check runs its
// partitions in a user namespace of its own (and leaves no namespace or
// interface behind on the host). Run as root, it drops to nobody.
func TestCheckPartitionsWithoutRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("this test switches to the nobody user, which needs root")
	}
	if out, err := exec.Command("su", "-s", "/bin/sh", "nobody", "-c", "unshare -Urnm true").CombinedOutput(); err != nil {
		t.Skipf("unprivileged user namespaces are not available here: %v: %s", err, out)
	}
	// nobody must be able to run the binary and write the data.
	dir, err := os.MkdirTemp("", "replicant-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "replicant")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	cmd := exec.Command("su", "-s", "/bin/sh", "nobody", "-c",
		bin+" check --duration 20s --nemesis partition-leader --seed 2 --json --data "+filepath.Join(dir, "run"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("check as nobody: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "running in a user namespace") {
		t.Fatalf("check did not go into a user namespace:\n%s", errOut.String())
	}
	var rep check.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	partitioned := false
	for _, a := range rep.Availability {
		partitioned = partitioned || a.Fault.Kind == "partition-leader"
	}
	if !rep.Passed() || !partitioned {
		t.Fatalf("verdicts %+v; faults %+v", rep.Verdicts, rep.Availability)
	}
	if after, _ := exec.Command("ip", "netns", "list").CombinedOutput(); !bytes.Equal(before, after) {
		t.Fatalf("the host's namespaces changed: before %q, after %q", before, after)
	}
}
