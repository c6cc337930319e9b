//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// Partitions without root: check re-runs itself in a new user namespace
// with its own network and mount namespaces, where it is root over those
// namespaces only (as `unshare -Urnm` does). There it can build the same
// network-namespace lab it builds as root, for nodes that exist only
// inside it; nothing outside is touched. Needs unprivileged user
// namespaces (most Linux distributions allow them) and iproute2.

// inUserNSEnv marks the re-run process.
const inUserNSEnv = "REPLICANT_CHECK_USERNS"

// inCheckUserNS reports whether this process is the re-run in its own
// user namespace.
func inCheckUserNS() bool { return os.Getenv(inUserNSEnv) == "1" }

// rerunInUserNS runs this command again in new user, network and mount
// namespaces, passing its output through, and returns its error (an
// *exec.ExitError carries the exit code).
func rerunInUserNS(stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), inUserNSEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return errRerunFailed{code: ee.ExitCode()}
		}
		return fmt.Errorf("check: running in a user namespace (partitions without root): %w", err)
	}
	return nil
}

// errRerunFailed is the re-run's failure: it printed its own report or
// error already.
type errRerunFailed struct{ code int }

func (e errRerunFailed) Error() string {
	return fmt.Sprintf("check: the run in a user namespace exited with %d (see above)", e.code)
}

// prepareUserNS readies the namespaces the re-run is in: mounts stay in
// them, `ip netns` gets a /run/netns it can write (a tmpfs over /run when
// it has none), and loopback is up.
func prepareUserNS() error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("check: user namespace: making mounts private: %w", err)
	}
	if st, err := os.Stat("/run/netns"); err != nil || !st.IsDir() {
		if err := syscall.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
			return fmt.Errorf("check: user namespace: tmpfs on /run: %w", err)
		}
		if err := os.MkdirAll("/run/netns", 0o755); err != nil {
			return fmt.Errorf("check: user namespace: %w", err)
		}
	}
	if err := syscall.Mount("tmpfs", "/run/netns", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("check: user namespace: tmpfs on /run/netns: %w", err)
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("check: user namespace: ip link set lo up: %v: %s", err, out)
	}
	return nil
}
