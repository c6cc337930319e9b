package storage

import "time"

// Throttle paces a loop that retries work which keeps failing — on a full
// or failing disk, every background loop does. It spaces attempts out
// exponentially and says which failures deserve a log line: the first, one
// whose message changed, and then one per Quiet period (with how many
// identical ones it held back). One goroutine owns a Throttle.
type Throttle struct {
	Min, Max time.Duration // backoff bounds; defaults 100ms and 30s
	Quiet    time.Duration // identical failures are logged at most this often; default 1m

	fails      int
	next       time.Time
	lastMsg    string
	lastLog    time.Time
	suppressed int
}

// Ready reports whether an attempt may run at now.
func (t *Throttle) Ready(now time.Time) bool { return !now.Before(t.next) }

// Delay is how long after now the next attempt may run.
func (t *Throttle) Delay(now time.Time) time.Duration { return max(t.next.Sub(now), 0) }

// Fail records a failed attempt at now. It reports whether to log it and
// how many identical failures went unlogged since the last line.
func (t *Throttle) Fail(now time.Time, err error) (log bool, suppressed int) {
	lo, hi, quiet := t.Min, t.Max, t.Quiet
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	if quiet <= 0 {
		quiet = time.Minute
	}
	t.fails++
	d := lo << min(t.fails-1, 20)
	if d <= 0 || d > hi {
		d = hi
	}
	t.next = now.Add(d)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != t.lastMsg || now.Sub(t.lastLog) >= quiet {
		n := t.suppressed
		t.lastMsg, t.lastLog, t.suppressed = msg, now, 0
		return true, n
	}
	t.suppressed++
	return false, 0
}

// Failing reports whether the last attempt failed.
func (t *Throttle) Failing() bool { return t.fails > 0 }

// Succeed records a successful attempt; it reports whether the loop had
// been failing (worth a line saying it works again).
func (t *Throttle) Succeed() (recovered bool) {
	recovered = t.fails > 0
	t.fails, t.next, t.lastMsg, t.suppressed = 0, time.Time{}, "", 0
	return recovered
}
