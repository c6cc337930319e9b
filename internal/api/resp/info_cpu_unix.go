//go:build unix

package resp

import (
	"syscall"
	"time"
)

// cpuTimes is the process's and its children's CPU time (getrusage).
func cpuTimes() (sys, user, childSys, childUser time.Duration, ok bool) {
	var self, kids syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids) != nil {
		return 0, 0, 0, 0, false
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Stime), tv(self.Utime), tv(kids.Stime), tv(kids.Utime), true
}
