package test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
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
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one replicant server process.
type proc struct {
	t                *testing.T
	ID               string
	RESP, HTTP, Peer string
	Data             string
	Args             []string
	cmd              *exec.Cmd
	log              *syncBuffer
	done             chan struct{}
	cleanupSet       bool
	// Prefix runs the server through another command, e.g.
	// `ip netns exec NS`, which must exec it in place.
	Prefix []string
}

// freeAddrs reserves n distinct loopback addresses.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.used == nil {
		ports.used = map[int]bool{}
		ports.lo, ports.hi = portRange()
		ports.next = ports.lo + rand.IntN(ports.hi-ports.lo)
	}
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > ports.hi-ports.lo {
			t.Fatalf("no free port in %d-%d", ports.lo, ports.hi)
		}
		p := ports.next
		if ports.next++; ports.next >= ports.hi {
			ports.next = ports.lo
		}
		if ports.used[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // taken by someone else
		}
		ln.Close()
		ports.used[p] = true
		out = append(out, ln.Addr().String())
	}
	return out
}

// ports hands out each test port once per test run, from below the
// kernel's ephemeral range: a port taken from that range (listen on :0,
// close, start the server later) could meanwhile become the source port
// of some outgoing connection — the other nodes of a starting cluster dial
// each other — and the server's bind would fail ("address already in use",
// seen in CI).
var ports struct {
	mu           sync.Mutex
	used         map[int]bool
	lo, hi, next int
}

// portRange is [10000, start of the ephemeral range), at least 5000 wide.
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(string(b), &a, &z); err == nil && a-lo >= 5000 {
			hi = a
		}
	}
	return lo, hi
}

// newProc prepares a node with fresh addresses and data dir; extra flags are
// appended to the server command line.
func newProc(t *testing.T, id string, extra ...string) *proc {
	addrs := freeAddrs(t, 3)
	return &proc{t: t, ID: id, RESP: addrs[0], HTTP: addrs[1], Peer: addrs[2],
		Data: filepath.Join(t.TempDir(), id), Args: extra}
}

// start launches the process and waits for /healthz.
func (p *proc) start() {
	p.t.Helper()
	p.startNoWait()
	p.waitHealthy()
}

// startNoWait launches the process.
func (p *proc) startNoWait() {
	p.t.Helper()
	args := append([]string{binary, "server", "--id", p.ID, "--data", p.Data, "--resp", p.RESP,
		"--http", p.HTTP, "--peer", p.Peer, "--log-level", "debug"}, p.Args...)
	args = append(append([]string(nil), p.Prefix...), args...)
	p.cmd = exec.Command(args[0], args[1:]...)
	if p.log == nil {
		p.log = &syncBuffer{}
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.ID, err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	if p.cleanupSet {
		return
	}
	p.cleanupSet = true
	p.t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if p.t.Failed() {
			p.t.Logf("--- log of %s ---\n%s", p.ID, p.log.String())
		}
	})
}

// waitHealthy waits for /healthz.
func (p *proc) waitHealthy() {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + p.HTTP + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if !p.running() {
			p.t.Fatalf("%s exited during start-up:\n%s", p.ID, p.log.String())
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready after 20s:\n%s", p.ID, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%s did not stop within 20s after SIGTERM", p.ID)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("%s exited with %d after SIGTERM:\n%s", p.ID, code, p.log.String())
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
