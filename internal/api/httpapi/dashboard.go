package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

//go:embed dashboard.js
var dashboardJS []byte

// relayTimeout bounds the relay's request to the leader: the dashboard
// polls every second and must show "leader unreachable" rather than hang.
const relayTimeout = 1500 * time.Millisecond

// ClusterView is the answer of GET /v1/cluster: the cluster as its leader
// sees it, fetched through whichever node the dashboard was opened on.
type ClusterView struct {
	// Node is the node that answered.
	Node string `json:"node"`
	// Self is that node's own status (with its timeline).
	Self engine.Status `json:"self"`
	// Leader is the leader's status as the leader reported it, when it
	// could be reached (Self when the answering node leads).
	Leader *engine.Status `json:"leader,omitempty"`
	// LeaderError says why Leader is missing although a leader is named.
	LeaderError string `json:"leader_error,omitempty"`
	// History holds the leader's samples newer than ?since= when the
	// leader was reached, else the answering node's.
	History History `json:"history"`
}

// dashboardScript serves the dashboard's script (embedded, like the page).
func (s *Server) dashboardScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(dashboardJS)
}

// history serves GET /v1/history?since=MS: this node's chart samples.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, s.historyDoc(since))
}

func (s *Server) historyDoc(since int64) History {
	return History{Node: s.b.Settings().ID, IntervalMs: s.mon.interval.Milliseconds(), Samples: s.mon.history(since)}
}

// statusDoc is this node's status with its timeline, the document
// /v1/status serves.
func (s *Server) statusDoc() engine.Status { return s.mon.poll() }

// cluster serves GET /v1/cluster?since=MS[&local=1]. Without local=1 a
// follower asks the leader for its own view (local=1, so a relay never
// relays again) and passes it on with its own status: the page shows the
// leader's view of every member wherever it was opened, and this node's
// view of the leader (reachable or not) beside it.
func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	self := s.statusDoc()
	v := ClusterView{Node: self.ID, Self: self, History: s.historyDoc(since)}
	switch {
	case self.Role == "leader":
		v.Leader = &v.Self
	case r.URL.Query().Get("local") == "1", self.Mode == engine.ModeLeaderless:
	case self.Leader == "":
		v.LeaderError = "no leader is known"
	default:
		lv, err := s.fetchLeader(r, &self, since)
		if err != nil {
			v.LeaderError = err.Error()
			break
		}
		v.Leader, v.History = &lv.Self, lv.History
	}
	writeJSON(w, http.StatusOK, v)
}

// fetchLeader asks the leader named in self for its local view, with the
// caller's credentials (every node of a cluster is given the same
// --requirepass; a node that was not answers 401, and the page says so).
func (s *Server) fetchLeader(r *http.Request, self *engine.Status, since int64) (*ClusterView, error) {
	addr := ""
	for _, m := range self.Members {
		if m.ID == self.Leader {
			addr = m.HTTP
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("leader %s: its HTTP address is unknown here", self.Leader)
	}
	ctx, cancel := context.WithTimeout(r.Context(), relayTimeout)
	defer cancel()
	u := url.URL{Scheme: "http", Host: addr, Path: "/v1/cluster",
		RawQuery: url.Values{"local": {"1"}, "since": {strconv.FormatInt(since, 10)}}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("leader %s: %w", self.Leader, err)
	}
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	resp, err := s.relay.Do(req)
	if err != nil {
		return nil, fmt.Errorf("leader %s at %s unreachable: %w", self.Leader, addr, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("leader %s at %s answered %s: %s", self.Leader, addr, resp.Status, msg)
	}
	var lv ClusterView
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&lv); err != nil {
		return nil, fmt.Errorf("leader %s at %s: bad answer: %w", self.Leader, addr, err)
	}
	if lv.Self.Role != "leader" {
		// Mid-failover the named leader may already follow another:
		// its view is not the leader's.
		return nil, fmt.Errorf("%s no longer leads (it is %s, following %q)", self.Leader, lv.Self.Role, lv.Self.Leader)
	}
	return &lv, nil
}

// withCORS lets the dashboard page of one member read this member's
// cluster view: when the node a page was loaded from goes down, the page
// carries on through the others. Only origins that are members' own
// dashboards are allowed, so another web site open in the operator's
// browser cannot read the cluster's status.
func (s *Server) withCORS(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && s.memberOrigin(o, r.Host) {
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Set("Access-Control-Allow-Headers", "Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "GET")
			w.Header().Set("Access-Control-Max-Age", "600")
		}
		w.Header().Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	}
}

// memberOrigin reports whether origin (scheme://host:port) is the
// dashboard of a member: its host:port is a member's HTTP address, or it
// names this request's host with a member's HTTP port (members bound to a
// wildcard address, reached by a host name).
func (s *Server) memberOrigin(origin, reqHost string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	oHost, oPort := splitHostPort(u.Host, u.Scheme)
	rHost, _ := splitHostPort(reqHost, "http")
	st := s.b.Status()
	addrs := []string{st.HTTP}
	for _, m := range st.Members {
		addrs = append(addrs, m.HTTP)
	}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		h, p := splitHostPort(a, "http")
		if p == oPort && (h == oHost || oHost == rHost) {
			return true
		}
	}
	return false
}

func splitHostPort(hp, scheme string) (string, string) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		if scheme == "https" {
			return hp, "443"
		}
		return hp, "80"
	}
	return h, p
}

func sinceParam(r *http.Request) (int64, error) {
	q := r.URL.Query().Get("since")
	if q == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid since %q: want Unix milliseconds", q)
	}
	return v, nil
}
