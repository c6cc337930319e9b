package resp

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cmdStat is one command's (or subcommand's) INFO commandstats line.
type cmdStat struct {
	calls, usec, rejected, failed atomic.Uint64
}

// maxErrorKinds caps errorstats, as Redis does (128): error kinds come
// from replicant's own replies, so the cap is only a guard.
const maxErrorKinds = 128

// serverStats are the counters INFO commandstats and errorstats show,
// kept by the resp server as commands run. A command's own counters live
// in its table entry (no lock on the common path); subcommands' ("client|list")
// and error kinds' in maps under mu.
type serverStats struct {
	s    *Server
	mu   sync.Mutex
	cmds map[string]*cmdStat
	errs map[string]*atomic.Uint64
	// errorReplies is INFO stats' total_error_replies.
	errorReplies atomic.Uint64
}

// stat returns name's counters, creating them on first use. The common
// path (a command seen before) is one map read under the mutex.
func (st *serverStats) stat(name string) *cmdStat {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cmds == nil {
		st.cmds = map[string]*cmdStat{}
	}
	cs := st.cmds[name]
	if cs == nil {
		cs = &cmdStat{}
		st.cmds[name] = cs
	}
	return cs
}

// executed records one command of c that took d: a call, or a rejected
// call when it was refused before running. Unknown commands have no
// commandstats line (as in Redis); their error counts in errorstats.
func (st *serverStats) executed(spec *command, c *client, d time.Duration) {
	if spec == nil {
		return
	}
	cs := &spec.stat
	if name := c.lastCmd; len(name) > len(spec.name) && strings.HasPrefix(name, spec.name) && name[len(spec.name)] == '|' {
		cs = st.stat(name)
	}
	if c.rejected {
		cs.rejected.Add(1)
		return
	}
	cs.calls.Add(1)
	cs.usec.Add(uint64(d.Microseconds()))
	if c.failed {
		cs.failed.Add(1)
	}
}

// ran records a command EXEC ran for its transaction (tx.go).
func (st *serverStats) ran(spec *command, failed bool, d time.Duration) {
	spec.stat.calls.Add(1)
	spec.stat.usec.Add(uint64(d.Microseconds()))
	if failed {
		spec.stat.failed.Add(1)
	}
}

// errored counts an error reply by its kind, the first word ("ERR",
// "WRONGTYPE", "READONLY").
func (st *serverStats) errored(msg string) {
	st.errorReplies.Add(1)
	kind := msg
	if i := strings.IndexByte(msg, ' '); i >= 0 {
		kind = msg[:i]
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.errs == nil {
		st.errs = map[string]*atomic.Uint64{}
	}
	n := st.errs[kind]
	if n == nil {
		if len(st.errs) >= maxErrorKinds {
			return
		}
		n = new(atomic.Uint64)
		st.errs[kind] = n
	}
	n.Add(1)
}

// reset is CONFIG RESETSTAT's part.
func (st *serverStats) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.cmds, st.errs = nil, nil
	st.errorReplies.Store(0)
	for _, cmd := range st.s.cmds {
		cmd.stat.calls.Store(0)
		cmd.stat.usec.Store(0)
		cmd.stat.rejected.Store(0)
		cmd.stat.failed.Store(0)
	}
}

// commandLines renders the commandstats section's lines, by name.
func (st *serverStats) commandLines() []string {
	stats := map[string]*cmdStat{}
	for n, cmd := range st.s.cmds {
		if cmd.stat.calls.Load()+cmd.stat.rejected.Load() > 0 {
			stats[n] = &cmd.stat
		}
	}
	st.mu.Lock()
	for n, cs := range st.cmds {
		stats[n] = cs
	}
	st.mu.Unlock()
	names := make([]string, 0, len(stats))
	for n := range stats {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		cs := stats[n]
		calls, usec := cs.calls.Load(), cs.usec.Load()
		per := 0.0
		if calls > 0 {
			per = float64(usec) / float64(calls)
		}
		out = append(out, fmt.Sprintf("cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d",
			n, calls, usec, per, cs.rejected.Load(), cs.failed.Load()))
	}
	return out
}

// errorLines renders the errorstats section's lines, by kind.
func (st *serverStats) errorLines() []string {
	st.mu.Lock()
	kinds := make([]string, 0, len(st.errs))
	counts := make(map[string]uint64, len(st.errs))
	for k, n := range st.errs {
		kinds = append(kinds, k)
		counts[k] = n.Load()
	}
	st.mu.Unlock()
	slices.Sort(kinds)
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, fmt.Sprintf("errorstat_%s:count=%d", k, counts[k]))
	}
	return out
}
