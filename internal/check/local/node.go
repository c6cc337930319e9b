package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/replicant-db/replicant/client"
)

// Buffer is a goroutine-safe log sink.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Node is one replicant server process.
type Node struct {
	ID               string
	RESP, HTTP, Peer string
	Data             string
	Binary           string
	// Args are extra server flags; Prefix runs the server through another
	// command (e.g. `ip netns exec NS`), which must exec it in place.
	Args   []string
	Prefix []string
	// Log collects the process's output, across restarts.
	Log *Buffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// NewNode prepares a node with fresh addresses from ports.
func NewNode(ports *Ports, binary, id, data string, args ...string) (*Node, error) {
	a, err := ports.Addrs(3)
	if err != nil {
		return nil, err
	}
	return &Node{ID: id, RESP: a[0], HTTP: a[1], Peer: a[2], Data: data, Binary: binary, Args: args, Log: &Buffer{}}, nil
}

// Command returns the server's command line.
func (n *Node) Command() []string {
	args := append([]string{n.Binary, "server", "--id", n.ID, "--data", n.Data, "--resp", n.RESP,
		"--http", n.HTTP, "--peer", n.Peer, "--log-level", "debug"}, n.Args...)
	return append(append([]string(nil), n.Prefix...), args...)
}

// Start launches the process (it does not wait for it to be ready).
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() {
		return fmt.Errorf("local: %s is already running", n.ID)
	}
	args := n.Command()
	cmd := exec.Command(args[0], args[1:]...)
	if n.Log == nil {
		n.Log = &Buffer{}
	}
	cmd.Stdout, cmd.Stderr = n.Log, n.Log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("local: start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	return nil
}

// Running reports whether the process is alive (a paused one is).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

func (n *Node) runningLocked() bool {
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Done is closed when the current process exits (nil before Start).
func (n *Node) Done() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

// Pid is the current process's id (0 before Start).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// ExitCode is the last process's exit code (-1 while it runs).
func (n *Node) ExitCode() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.ProcessState == nil {
		return -1
	}
	return n.cmd.ProcessState.ExitCode()
}

// WaitReady waits until /readyz answers 200, the process exits, or ctx
// ends.
func (n *Node) WaitReady(ctx context.Context) error {
	hc := http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get("http://" + n.HTTP + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !n.Running() {
			return fmt.Errorf("local: %s exited during start-up (exit code %d)", n.ID, n.ExitCode())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local: %s not ready: %w", n.ID, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Signal sends sig to the running process.
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return fmt.Errorf("local: %s is not running", n.ID)
	}
	return n.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to be gone; a node that is
// not running is left alone.
func (n *Node) Kill() error {
	done := n.Done()
	if !n.Running() {
		return nil
	}
	if err := n.Signal(syscall.SIGKILL); err != nil && n.Running() {
		return err
	}
	<-done
	return nil
}

// ErrExit is wrapped by Stop when the process exited with a non-zero
// code after SIGTERM.
var ErrExit = errors.New("local: unclean exit")

// Stop sends SIGTERM (resuming a paused process first) and waits for a
// clean exit, or ctx.
func (n *Node) Stop(ctx context.Context) error {
	done := n.Done()
	if !n.Running() {
		return nil
	}
	_ = n.Signal(syscall.SIGCONT)
	if err := n.Signal(syscall.SIGTERM); err != nil && n.Running() {
		return err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("local: %s did not stop after SIGTERM: %w", n.ID, ctx.Err())
	}
	if code := n.ExitCode(); code != 0 {
		return fmt.Errorf("%w: %s exited with %d after SIGTERM", ErrExit, n.ID, code)
	}
	return nil
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (n *Node) Pause() error  { return n.Signal(syscall.SIGSTOP) }
func (n *Node) Resume() error { return n.Signal(syscall.SIGCONT) }

// Status reads the node's /v1/status (through the public Go client).
func (n *Node) Status(ctx context.Context) (*client.Status, error) {
	st, err := client.New(n.HTTP, client.Options{}).Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("local: status of %s: %w", n.ID, err)
	}
	return st, nil
}
