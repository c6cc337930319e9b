//go:build !unix

package resp

import "time"

// cpuTimes has no source on this platform: INFO cpu is empty.
func cpuTimes() (sys, user, childSys, childUser time.Duration, ok bool) {
	return 0, 0, 0, 0, false
}
