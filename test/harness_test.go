package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/check/local"
)

// binary is the replicant binary built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "replicant-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "replicant")
	build := exec.Command("go", "build", "-o", binary, "../cmd/replicant")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build replicant:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = local.Buffer

// proc is one replicant server process: a local.Node (the process code
// replicant check runs on too) that fails its test instead of returning
// errors, and prints its log when the test failed.
type proc struct {
	*local.Node
	t          *testing.T
	cleanupSet bool
}

// ports hands out each test port once per test run.
var ports local.Ports

// freeAddrs reserves n distinct loopback addresses.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	a, err := ports.Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newProc prepares a node with fresh addresses and data dir; extra flags are
// appended to the server command line.
func newProc(t *testing.T, id string, extra ...string) *proc {
	t.Helper()
	nd, err := local.NewNode(&ports, binary, id, filepath.Join(t.TempDir(), id), extra...)
	if err != nil {
		t.Fatal(err)
	}
	return &proc{Node: nd, t: t}
}

// start launches the process and waits for /readyz.
func (p *proc) start() {
	p.t.Helper()
	p.startNoWait()
	p.waitHealthy()
}

// startNoWait launches the process.
func (p *proc) startNoWait() {
	p.t.Helper()
	if err := p.Start(); err != nil {
		p.t.Fatal(err)
	}
	if p.cleanupSet {
		return
	}
	p.cleanupSet = true
	p.t.Cleanup(func() {
		_ = p.Kill()
		if p.t.Failed() {
			p.t.Logf("--- log of %s ---\n%s", p.ID, p.Log.String())
		}
	})
}

// waitHealthy waits for /readyz (20 s at most).
func (p *proc) waitHealthy() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		p.t.Fatalf("%v:\n%s", err, p.Log.String())
	}
}

func (p *proc) running() bool { return p.Running() }

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.Kill(); err != nil {
		p.t.Fatal(err)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		p.t.Fatalf("%v:\n%s", err, p.Log.String())
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
