package control

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func testNames() *raftNames {
	n := &raftNames{}
	n.add(Member{ID: "n1", RaftID: RaftID("n1")}, Member{ID: "n2", RaftID: RaftID("n2")}, Member{ID: "n3"})
	return n
}

func TestRaftNamesRewrite(t *testing.T) {
	names := testNames()
	hex := func(id string) string { return fmt.Sprintf("%x", RaftID(id)) }
	unknown := fmt.Sprintf("%x", RaftID("n9"))
	for _, tc := range []struct{ in, want string }{
		{hex("n1") + " is starting a new election at term 3", "n1 is starting a new election at term 3"},
		{"switched to configuration voters=(" + hex("n1") + " " + hex("n2") + " " + hex("n3") + ")", "switched to configuration voters=(n1 n2 n3)"},
		{hex("n2") + " [logterm: 1, index: 5] sent MsgPreVote request to " + hex("n3") + " at term 3", "n2 [logterm: 1, index: 5] sent MsgPreVote request to n3 at term 3"},
		// Unknown ids, numbers and words that happen to be hex stay.
		{unknown + " received MsgVoteResp from " + hex("n1"), unknown + " received MsgVoteResp from n1"},
		{"cafe 3 dead beef", "cafe 3 dead beef"},
		// An id glued into a longer word is not a word of its own.
		{"x" + hex("n1"), "x" + hex("n1")},
		{"", ""},
	} {
		if got := names.rewrite(tc.in); got != tc.want {
			t.Errorf("rewrite(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := names.name(RaftID("n9")); got != unknown {
		t.Errorf("name of an unknown id = %q, want %q", got, unknown)
	}
}

// logLines returns what a logger at DEBUG wrote, one "LEVEL msg" per line.
func captureLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(h), &buf
}

func TestRaftLoggerLevels(t *testing.T) {
	id1, id2 := RaftID("n1"), RaftID("n2")
	for _, tc := range []struct {
		name  string
		log   func(r *raftLogger)
		level string // the level of the last line
		text  string
	}{
		{"an election start is chatter", func(r *raftLogger) { r.Infof("%x is starting a new election at term %d", id1, uint64(3)) }, "DEBUG", "n1 is starting a new election at term 3"},
		{"votes are chatter", func(r *raftLogger) {
			r.Infof("%x received %s from %x at term %d", id1, "MsgPreVoteResp", id2, uint64(3))
		}, "DEBUG", "n1 received MsgPreVoteResp from n2 at term 3"},
		{"becoming leader matters", func(r *raftLogger) { r.Infof(fmtBecameLeader, id1, uint64(4)) }, "INFO", "n1 became leader at term 4"},
		{"becoming follower in a new term matters", func(r *raftLogger) { r.Infof(fmtBecameFollower, id2, uint64(4)) }, "INFO", "n2 became follower at term 4"},
		{"becoming follower again in the same term does not", func(r *raftLogger) {
			r.Infof(fmtBecameFollower, id2, uint64(4))
			r.Infof(fmtBecameFollower, id2, uint64(4))
		}, "DEBUG", "n2 became follower at term 4"},
		{"losing the leader warns", func(r *raftLogger) { r.Infof(fmtLostLeader, id2, id1, uint64(5)) }, "WARN", "raft.node: n2 lost leader n1 at term 5"},
		{"stepping down without quorum warns", func(r *raftLogger) {
			r.Warningf("%x stepped down to follower since quorum is not active", id1)
		}, "WARN", "n1 stepped down to follower since quorum is not active"},
		{"errors stay errors", func(r *raftLogger) { r.Errorf("%x invalid format", id1) }, "ERROR", "n1 invalid format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, buf := captureLogger()
			r := newRaftLogger(l, testNames())
			tc.log(r)
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, "level="+tc.level+" ") || !strings.Contains(last, fmt.Sprintf("msg=%q", tc.text)) {
				t.Fatalf("logged %q, want level %s and message %q", last, tc.level, tc.text)
			}
		})
	}
}

func TestRaftLoggerPanicsWithNames(t *testing.T) {
	l, _ := captureLogger()
	r := newRaftLogger(l, testNames())
	defer func() {
		if p := recover(); p != "n1 broke" {
			t.Fatalf("recovered %v, want the message with names", p)
		}
	}()
	r.Panicf("%x broke", RaftID("n1"))
}

// The controller as a member sees it: elected, lost, and — only once the
// quiet period passes without one — a warning that no majority is reached.
func TestLeadWatch(t *testing.T) {
	l, buf := captureLogger()
	w := &leadWatch{log: l, names: testNames(), quiet: 2 * time.Second}
	t0 := time.Unix(1000, 0)
	n1, n2 := RaftID("n1"), RaftID("n2")
	steps := []struct {
		at   time.Duration
		lead uint64
		term uint64
		want string // the new line, "" for none
	}{
		{0, 0, 1, ""},
		{time.Second, n1, 2, `level=INFO msg="control: controller elected" controller=n1 term=2`},
		{1500 * time.Millisecond, n1, 2, ""},
		{3 * time.Second, 0, 2, `level=INFO msg="control: lost the controller; electing one" previous=n1 term=2`},
		{4 * time.Second, 0, 3, ""},
		{5 * time.Second, 0, 3, `level=WARN msg="control: no controller: this member reaches no majority of the control plane; failover, membership and policy changes wait until one is elected" for=2s term=3 members=3`},
		{8 * time.Second, 0, 3, ""},
		{9 * time.Second, n2, 4, `level=INFO msg="control: controller elected" controller=n2 term=4 previous=n1 without_controller=6s`},
	}
	seen := 0
	for _, s := range steps {
		w.observe(t0.Add(s.at), s.lead, s.term, 3)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if buf.Len() == 0 {
			lines = nil
		}
		switch {
		case s.want == "" && len(lines) != seen:
			t.Fatalf("at %s: unexpected line %q", s.at, lines[len(lines)-1])
		case s.want != "" && (len(lines) != seen+1 || lines[len(lines)-1] != s.want):
			t.Fatalf("at %s: lines %q, want a new one %q", s.at, lines[seen:], s.want)
		}
		seen = len(lines)
	}
}
