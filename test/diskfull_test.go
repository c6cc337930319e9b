package test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size on a fresh directory (root only).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	// Registered after TempDir's cleanup, so it runs before the removal;
	// the node's own cleanup (kill) is registered later still.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("fill %s: %v", path, err)
		}
	}
}

// cpuSeconds is the user+system CPU time the process has used.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start at ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ)
}

func lines(s string) int { return strings.Count(s, "\n") }

// waitExit waits for a process expected to stop on its own.
func waitExit(t *testing.T, p *proc, d time.Duration) int {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(d):
		t.Fatalf("%s still running after %v:\n%s", p.ID, d, p.Log.String())
	}
	return p.ExitCode()
}

func noPanic(t *testing.T, p *proc) {
	t.Helper()
	if out := p.Log.String(); strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Fatalf("%s printed a panic or a stack dump:\n%s", p.ID, out)
	}
}

// TestDiskFull runs a one-node server on a 64 MiB tmpfs and fills it.
// Writes must fail at once with a clear error while reads go on, without
// a busy loop or a flood of log lines; once space is freed the next write
// succeeds without a restart; SIGTERM on a full disk exits cleanly; a
// restart on a still-full disk fails fast with a clear line instead of
// spinning; and after space returns every acknowledged write is there.
func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "64m")
	p := newProc(t, "n1", "--log-level", "info")
	p.Data = filepath.Join(mnt, "n1")
	p.start()
	kv := "http://" + p.HTTP + "/v1/kv/"
	put := func(k, v string) (int, string) {
		code, body, _ := httpDo(t, http.MethodPut, kv+k, v, nil)
		return code, body
	}
	mustGet := func(k, want string) {
		t.Helper()
		if code, body, _ := httpDo(t, http.MethodGet, kv+k, "", nil); code != http.StatusOK || body != want {
			t.Fatalf("GET %s = %d %q, want 200 %q", k, code, body, want)
		}
	}
	acked := map[string]string{}
	for i := range 20 {
		k, v := "k"+strconv.Itoa(i), strings.Repeat(strconv.Itoa(i), 100)
		if code, body := put(k, v); code != http.StatusNoContent {
			t.Fatalf("PUT %s = %d %s", k, code, body)
		}
		acked[k] = v
	}

	// Fill the disk but for 512 KiB: below the store's reserve (1/32 of
	// 64 MiB), so the store refuses writes, while the node's other files
	// (the control plane's log) still have room.
	spare, filler := filepath.Join(mnt, "spare"), filepath.Join(mnt, "filler")
	if err := os.WriteFile(spare, make([]byte, 512<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	fill(t, filler)
	if err := os.Remove(spare); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, body := put("refused", "x")
	if code != http.StatusInsufficientStorage || !strings.Contains(body, "disk full") {
		t.Fatalf("PUT on a full disk = %d %q, want 507 saying disk full", code, body)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("the refusal took %v", el)
	}
	t.Logf("write on a full disk: %d %s", code, strings.TrimSpace(body))
	// RESP says it as Redis does for writes it cannot persist.
	if err := p.redis().Set(context.Background(), "refused", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "MISCONF") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("SET on a full disk: %v, want MISCONF ... disk full", err)
	}
	for k, v := range acked {
		mustGet(k, v)
	}

	// Refused writes cost neither CPU nor log lines.
	pid := p.Pid()
	cpu0, lines0 := cpuSeconds(t, pid), lines(p.Log.String())
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if code, _ := put("refused", "x"); code < 400 {
			t.Fatalf("a write succeeded on a full disk")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cpu, logged := cpuSeconds(t, pid)-cpu0, lines(p.Log.String())-lines0
	t.Logf("3s on a full disk with writes refused: %.2fs CPU, %d log lines", cpu, logged)
	if cpu > 1 || logged > 20 {
		t.Fatalf("on a full disk: %.2fs CPU and %d log lines in 3s:\n%s", cpu, logged, p.Log.String())
	}

	// Space back: the very next write succeeds, no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, body := put("after", "y"); code != http.StatusNoContent {
		t.Fatalf("first PUT after space was freed = %d %q", code, body)
	}
	acked["after"] = "y"
	mustGet("after", "y")

	// SIGTERM with a completely full disk exits cleanly.
	fill(t, filler)
	_, _ = put("while-full", "z")
	p.stop()
	noPanic(t, p)

	// A restart on the still-full disk fails fast and says why, instead of
	// spinning (Pebble would retry the flush of its log forever).
	p.Log = &syncBuffer{}
	started := time.Now()
	p.startNoWait()
	if code := waitExit(t, p, 20*time.Second); code == 0 {
		t.Fatalf("server started on a full disk exited 0:\n%s", p.Log.String())
	}
	out := p.Log.String()
	t.Logf("restart on a full disk: exited after %v, %d lines; last: %s", time.Since(started).Round(time.Millisecond), lines(out), lastLine(out))
	noPanic(t, p)
	if !strings.Contains(lastLine(out), "disk full") || lines(out) > 20 {
		t.Fatalf("restart on a full disk: want a last line saying disk full and few lines, got:\n%s", out)
	}

	// Space back: every acknowledged write is there.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p.Log = &syncBuffer{}
	p.start()
	for k, v := range acked {
		mustGet(k, v)
	}
	p.stop()
	noPanic(t, p)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestCorruptTableExitsCleanly flips a byte in a table of a stopped node:
// once the restarted server reads the damaged block (at start, or at the
// first read of those keys: opening reads only the metadata), it must exit
// non-zero with one line naming the file, not a Go panic with a stack dump,
// and never serve what the block held.
func TestCorruptTableExitsCleanly(t *testing.T) {
	p := newProc(t, "n1", "--log-level", "info")
	p.start()
	kv := "http://" + p.HTTP + "/v1/kv/"
	for i := range 50 {
		if code, body, _ := httpDo(t, http.MethodPut, kv+"k"+strconv.Itoa(i), strings.Repeat("v", 200), nil); code != http.StatusNoContent {
			t.Fatalf("PUT = %d %s", code, body)
		}
	}
	p.stop() // a clean stop flushes the data into a table
	tables, _ := filepath.Glob(filepath.Join(p.Data, "store", "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table in the data directory")
	}
	f, err := os.OpenFile(tables[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 40); err != nil { // the first data block: the first keys
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, 40); err != nil {
		t.Fatal(err)
	}
	f.Close()

	p.Log = &syncBuffer{}
	p.startNoWait()
	// Read every key until the server stops; none may come back wrong.
	go func() {
		hc := http.Client{Timeout: time.Second}
		for i := 0; ; i = (i + 1) % 50 {
			select {
			case <-p.Done():
				return
			default:
			}
			resp, err := hc.Get(kv + "k" + strconv.Itoa(i))
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) != strings.Repeat("v", 200) {
				t.Errorf("GET k%d = %q from a corrupt table", i, body)
			}
		}
	}()
	if code := waitExit(t, p, 20*time.Second); code == 0 {
		t.Fatalf("server with a corrupt table exited 0:\n%s", p.Log.String())
	}
	out := p.Log.String()
	noPanic(t, p)
	naming := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, tables[0]) {
			naming++
		}
	}
	if naming != 1 || !strings.Contains(lastLine(out), tables[0]) || !strings.Contains(lastLine(out), "corrupt") {
		t.Fatalf("want exactly one line, the last, saying %s is corrupt; got:\n%s", tables[0], out)
	}
	t.Logf("corrupt table: %s", lastLine(out))
}
