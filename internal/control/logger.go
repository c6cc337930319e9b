package control

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// raftLogger adapts slog to raft's Logger interface for one Group (raft's
// global SetLogger would mix the members of every group in a process). It
// writes member names where raft writes its hex ids, and keeps raft's
// running commentary (votes sent and received, elections started: a line
// every election timeout while there is no quorum) at DEBUG. What an
// operator acts on stays visible: this member becoming the raft leader or
// a follower in a new term at INFO, a leader stepping down for lack of
// quorum, and raft's own warnings and errors at WARN and ERROR. Controller
// changes as the group sees them are logged by leadWatch.
//
// Fatal and Panic keep raft's contract (they never return): raft only
// calls them on broken internal invariants.
type raftLogger struct {
	l     *slog.Logger
	names *raftNames
	// followerTerm is the last term a "became follower" line went out at
	// INFO: a pre-candidate whose pre-vote fails becomes a follower again
	// in the same term, every election timeout, which is not news.
	followerTerm atomic.Uint64
}

func newRaftLogger(l *slog.Logger, names *raftNames) *raftLogger {
	return &raftLogger{l: l.With("raft", true), names: names}
}

// Format strings of go.etcd.io/raft/v3 whose lines matter (compared with
// the format, not the text, so the arguments are at hand).
const (
	fmtBecameLeader   = "%x became leader at term %d"
	fmtBecameFollower = "%x became follower at term %d"
	fmtElected        = "raft.node: %x elected leader %x at term %d"
	fmtChangedLeader  = "raft.node: %x changed leader from %x to %x at term %d"
	fmtLostLeader     = "raft.node: %x lost leader %x at term %d"
)

// infoLevel is the level of a raft Info line.
func (r *raftLogger) infoLevel(format string, v []any) slog.Level {
	switch format {
	case fmtBecameLeader, fmtElected, fmtChangedLeader:
		return slog.LevelInfo
	case fmtLostLeader:
		return slog.LevelWarn
	case fmtBecameFollower:
		if len(v) == 2 {
			if term, ok := v[1].(uint64); ok && r.followerTerm.Swap(term) != term {
				return slog.LevelInfo
			}
		}
	}
	return slog.LevelDebug
}

func (r *raftLogger) log(level slog.Level, msg string) {
	r.l.Log(context.Background(), level, r.names.rewrite(msg))
}

func (r *raftLogger) Debug(v ...any) { r.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (r *raftLogger) Debugf(format string, v ...any) {
	r.log(slog.LevelDebug, fmt.Sprintf(format, v...))
}
func (r *raftLogger) Info(v ...any) { r.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (r *raftLogger) Infof(format string, v ...any) {
	r.log(r.infoLevel(format, v), fmt.Sprintf(format, v...))
}
func (r *raftLogger) Warning(v ...any) { r.log(slog.LevelWarn, fmt.Sprint(v...)) }
func (r *raftLogger) Warningf(format string, v ...any) {
	r.log(slog.LevelWarn, fmt.Sprintf(format, v...))
}
func (r *raftLogger) Error(v ...any) { r.log(slog.LevelError, fmt.Sprint(v...)) }
func (r *raftLogger) Errorf(format string, v ...any) {
	r.log(slog.LevelError, fmt.Sprintf(format, v...))
}
func (r *raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r *raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }
func (r *raftLogger) Panic(v ...any) {
	s := r.names.rewrite(fmt.Sprint(v...))
	r.l.Error(s)
	panic(s)
}
func (r *raftLogger) Panicf(format string, v ...any) {
	s := r.names.rewrite(fmt.Sprintf(format, v...))
	r.l.Error(s)
	panic(s)
}

// raftNames maps raft ids to member names. The raft loop updates it when
// the membership changes; the logger reads it from the same loop, but it
// is atomic so that no reader ever needs the Group's lock.
type raftNames struct {
	m atomic.Pointer[map[uint64]string]
}

// add records the names of members, keeping those already known (a
// removed member's id still names it in the lines about its removal).
func (n *raftNames) add(members ...Member) {
	old := n.m.Load()
	next := make(map[uint64]string, len(members))
	if old != nil {
		for id, name := range *old {
			next[id] = name
		}
	}
	changed := old == nil
	for _, m := range members {
		id := m.RaftID
		if id == 0 {
			id = RaftID(m.ID)
		}
		if next[id] != m.ID {
			next[id], changed = m.ID, true
		}
	}
	if changed {
		n.m.Store(&next)
	}
}

// name is a raft id's member name, or the id in raft's hex when unknown.
func (n *raftNames) name(id uint64) string {
	if m := n.m.Load(); m != nil {
		if s, ok := (*m)[id]; ok {
			return s
		}
	}
	return strconv.FormatUint(id, 16)
}

// rewrite replaces every word of msg that is a known raft id in hex (as
// raft prints them with %x) by the member's name. Words are runs of
// letters and digits, so ids inside "voters=(8b37d07b558d826 …)" are found
// and no hex-looking part of a longer word is touched.
func (n *raftNames) rewrite(msg string) string {
	m := n.m.Load()
	if m == nil || len(*m) == 0 {
		return msg
	}
	var b strings.Builder
	start := -1
	flush := func(end int) {
		word := msg[start:end]
		if id, err := strconv.ParseUint(word, 16, 64); err == nil && isLowerHex(word) {
			if name, ok := (*m)[id]; ok {
				b.WriteString(name)
				return
			}
		}
		b.WriteString(word)
	}
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if isAlnum(c) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			flush(i)
			start = -1
		}
		b.WriteByte(c)
	}
	if start >= 0 {
		flush(len(msg))
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// leadWatch logs the controller (raft leader) as this member sees it
// change, with names: who it is, when contact with it is lost, and — once,
// after a while without one — that this member reaches no majority, which
// is when failover, membership and policy changes stop. The raft loop
// calls observe after every Ready; it holds no lock and does no I/O
// beyond logging.
type leadWatch struct {
	log   *slog.Logger
	names *raftNames
	// quiet is how long a member may be without a controller (an ordinary
	// election) before it warns.
	quiet time.Duration

	lead    uint64
	last    uint64    // the last controller known (0: none yet)
	lostAt  time.Time // when the controller was last lost (zero: one is known, or never seen)
	started time.Time
	warned  bool
}

// observe takes the raft status after a Ready: lead is the raft leader's id
// (0 for none), members how many voters the member knows of.
func (w *leadWatch) observe(now time.Time, lead, term uint64, members int) {
	if w.started.IsZero() {
		w.started = now
	}
	if lead != w.lead {
		w.lead = lead
		switch {
		case lead == 0:
			w.lostAt, w.warned = now, false
			w.log.Info("control: lost the controller; electing one", "previous", w.names.name(w.last), "term", term)
		default:
			args := []any{"controller", w.names.name(lead), "term", term}
			if w.last != 0 && w.last != lead {
				args = append(args, "previous", w.names.name(w.last))
			}
			w.last = lead
			if w.warned {
				args = append(args, "without_controller", now.Sub(w.since()).Round(time.Millisecond).String())
			}
			w.lostAt, w.warned = time.Time{}, false
			w.log.Info("control: controller elected", args...)
		}
		return
	}
	if lead == 0 && !w.warned && now.Sub(w.since()) >= w.quiet {
		w.warned = true
		w.log.Warn("control: no controller: this member reaches no majority of the control plane; failover, membership and policy changes wait until one is elected",
			"for", now.Sub(w.since()).Round(time.Millisecond).String(), "term", term, "members", members)
	}
}

// since is when the current stretch without a controller began.
func (w *leadWatch) since() time.Time {
	if w.lostAt.IsZero() {
		return w.started
	}
	return w.lostAt
}
