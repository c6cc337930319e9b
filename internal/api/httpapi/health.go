package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// Health checks for load balancers, as Patroni's /primary and /replica:
// the answer is the status code (200 or 503), so that HAProxy, an AWS
// target group or a Kubernetes Service can route writes to the leader and
// reads to replicas that are close enough to it. The body says why, for
// the operator looking at a failing check.

// healthCheck names one of the health endpoints.
type healthCheck string

const (
	// checkLeader passes on a node that takes writes now.
	checkLeader healthCheck = "leader"
	// checkReplica passes on a node that serves reads from a live stream,
	// within the lag bound.
	checkReplica healthCheck = "replica"
)

// healthFacts is what the decision needs to know about a node, taken from
// its status and readiness.
type healthFacts struct {
	Mode   string
	Role   string // leader, follower, replica (leaderless)
	State  string // leading, lease-expired, streaming, no-quorum, …
	Reason string // the status's reason for State, if any
	Leader string
	Site   string
	Epoch  uint64
	// NotReady is why the node cannot serve yet ("" when it can).
	NotReady   string
	LagSeconds float64
	LagEntries uint64
	// Leaderless mode: N, the ring's size, and how many ring members
	// (this node included) it reaches now.
	Replicas, RingSize, Reachable int
}

// lagBound is a replica check's bound: at most Duration behind (when
// HasDuration) and at most Entries behind (when HasEntries).
type lagBound struct {
	Duration    time.Duration
	Entries     uint64
	HasDuration bool
	HasEntries  bool
}

// decideHealth is the health decision: a pure function of what a node
// knows about itself, so that every case is a row of a table test.
//
// Modes: in multi-leader mode a site's leader takes writes, so it passes
// the leader check (every site has one); a site's followers are its
// replicas. In leaderless mode every node coordinates reads and writes, so
// both checks pass on every ready node that reaches at least a default
// quorum (a majority of N) of the ring, and the lag bound does not apply
// (a read asks R replicas and answers the newest version).
func decideHealth(check healthCheck, f healthFacts, b lagBound) (code int, reason string) {
	if f.NotReady != "" {
		return http.StatusServiceUnavailable, "not ready: " + f.NotReady
	}
	if f.Mode == engine.ModeLeaderless {
		return leaderlessHealth(check, f, b)
	}
	where := ""
	if f.Mode == engine.ModeMultiLeader && f.Site != "" {
		where = " of site " + f.Site
	}
	switch check {
	case checkLeader:
		switch {
		case f.Role == "leader" && f.State == "leading":
			return http.StatusOK, fmt.Sprintf("this node is the leader%s (epoch %d) and holds a valid lease", where, f.Epoch)
		case f.Role == "leader":
			return http.StatusServiceUnavailable, fmt.Sprintf("this node leads%s but is %s: %s", where, f.State, f.Reason)
		case f.Leader == "":
			return http.StatusServiceUnavailable, "this node is not the leader" + where + "; no leader is known"
		default:
			return http.StatusServiceUnavailable, fmt.Sprintf("this node is a %s; the leader%s is %s", f.Role, where, f.Leader)
		}
	case checkReplica:
		switch {
		case f.Role == "leader":
			return http.StatusServiceUnavailable, "this node is the leader" + where + ", not a replica"
		case f.State != "streaming":
			msg := fmt.Sprintf("this node does not stream from the leader: it is %s", f.State)
			if f.Reason != "" {
				msg += " (" + f.Reason + ")"
			}
			return http.StatusServiceUnavailable, msg
		case b.HasDuration && f.LagSeconds > b.Duration.Seconds():
			return http.StatusServiceUnavailable, fmt.Sprintf("lag %.3fs exceeds the bound %s", f.LagSeconds, b.Duration)
		case b.HasEntries && f.LagEntries > b.Entries:
			return http.StatusServiceUnavailable, fmt.Sprintf("lag %d entries exceeds the bound %d", f.LagEntries, b.Entries)
		default:
			return http.StatusOK, fmt.Sprintf("streaming from %s, %.3fs and %d entries behind", f.Leader, f.LagSeconds, f.LagEntries)
		}
	}
	return http.StatusNotFound, fmt.Sprintf("unknown check %q", check)
}

// leaderlessHealth: every node serves, as long as a default quorum is
// possible at all (with fewer reachable members than a majority of N, no
// key can reach its default W or R).
func leaderlessHealth(check healthCheck, f healthFacts, b lagBound) (int, string) {
	n := f.Replicas
	if f.RingSize > 0 && f.RingSize < n {
		n = f.RingSize
	}
	quorum := n/2 + 1
	if f.Reachable < quorum {
		return http.StatusServiceUnavailable, fmt.Sprintf("leaderless: this node reaches %d of %d ring members, fewer than a default quorum (%d of N=%d)", f.Reachable, f.RingSize, quorum, n)
	}
	verb := "writes"
	if check == checkReplica {
		verb = "reads"
	}
	msg := fmt.Sprintf("leaderless: every node coordinates %s; this node reaches %d of %d ring members (default quorum %d of N=%d)", verb, f.Reachable, f.RingSize, quorum, n)
	if check == checkReplica && (b.HasDuration || b.HasEntries) {
		msg += "; the lag bound does not apply in leaderless mode"
	}
	return http.StatusOK, msg
}

// parseLagBound reads a replica check's bound from max_lag (or Patroni's
// name, lag): a duration ("1s", "250ms") bounds the lag in time, a plain
// number the lag in log entries.
func parseLagBound(q map[string][]string) (lagBound, error) {
	var vals []string
	for _, name := range []string{"max_lag", "lag"} {
		vals = append(vals, q[name]...)
	}
	var b lagBound
	switch len(vals) {
	case 0:
		return b, nil
	case 1:
	default:
		return b, errors.New("give one lag bound: max_lag (or lag) once")
	}
	v := strings.TrimSpace(vals[0])
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		b.Entries, b.HasEntries = n, true
		return b, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return b, fmt.Errorf("invalid lag bound %q: want a duration such as 1s or 500ms, or a number of log entries", v)
	}
	b.Duration, b.HasDuration = d, true
	return b, nil
}

// healthFactsOf reads the facts from the engine.
func healthFactsOf(b engine.Engine) healthFacts {
	st := b.Status()
	f := healthFacts{Mode: st.Mode, Role: st.Role, State: st.State, Reason: st.Reason, Leader: st.Leader,
		Site: st.Site, Epoch: st.Epoch, LagSeconds: st.LagSeconds, LagEntries: st.LagEntries,
		Replicas: st.Replicas, RingSize: len(st.Ring)}
	if f.Mode == "" {
		f.Mode = engine.ModeSingleLeader
	}
	for _, r := range st.Ring {
		if r.Healthy {
			f.Reachable++
		}
	}
	if err := b.Ready(); err != nil {
		f.NotReady = err.Error()
	}
	return f
}

// healthReply is the body of a health check's answer.
type healthReply struct {
	Check      string  `json:"check"`
	Healthy    bool    `json:"healthy"`
	Reason     string  `json:"reason"`
	Node       string  `json:"node"`
	Mode       string  `json:"mode"`
	Role       string  `json:"role"`
	State      string  `json:"state"`
	Leader     string  `json:"leader,omitempty"`
	Site       string  `json:"site,omitempty"`
	Epoch      uint64  `json:"epoch"`
	LagSeconds float64 `json:"lag_seconds"`
	LagEntries uint64  `json:"lag_entries"`
}

// health serves GET /v1/health/{check}. Like /healthz it needs no
// password: a load balancer probes it, and it reveals no data.
func (s *Server) health(check healthCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var bound lagBound
		if check == checkReplica {
			var err error
			if bound, err = parseLagBound(r.URL.Query()); err != nil {
				writeError(w, http.StatusBadRequest, err)
				return
			}
		}
		f := healthFactsOf(s.b)
		code, reason := decideHealth(check, f, bound)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(healthReply{Check: string(check), Healthy: code == http.StatusOK, Reason: reason,
			Node: s.b.Settings().ID, Mode: f.Mode, Role: f.Role, State: f.State, Leader: f.Leader, Site: f.Site,
			Epoch: f.Epoch, LagSeconds: f.LagSeconds, LagEntries: f.LagEntries})
	}
}
