package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
)

// Limits of GET /v1/conflicts?limit=N.
const (
	defaultConflictLimit = 100
	maxConflictLimit     = 1000
)

// linkTimeout bounds a link change: it goes through the site's control
// plane (and, for a new link, asks the peer which site it belongs to), and
// a client should hear why it failed rather than hang.
const linkTimeout = 10 * time.Second

// linkList is GET /v1/links's answer.
type linkList struct {
	Site  string              `json:"site"`
	Links []engine.LinkStatus `json:"links"`
}

// conflictList is GET /v1/conflicts's answer.
type conflictList struct {
	Site      string            `json:"site"`
	Conflicts []engine.Conflict `json:"conflicts"`
}

// sites returns the engine's multi-leader side. Engines of other modes
// have no links or conflicts; that is the cluster's configuration, not a
// missing resource, hence 409 rather than 404.
func (s *Server) sites(w http.ResponseWriter) (engine.Sites, bool) {
	if ss, ok := s.b.(engine.Sites); ok {
		return ss, true
	}
	mode := s.b.Status().Mode
	if mode == "" {
		mode = engine.ModeSingleLeader // engines from before modes existed
	}
	writeError(w, http.StatusConflict, fmt.Errorf("not in multi-leader mode (this cluster runs %s)", mode))
	return nil, false
}

func (s *Server) listLinks(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.sites(w)
	if !ok {
		return
	}
	links, err := ss.Links(r.Context())
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	if links == nil {
		links = []engine.LinkStatus{} // tools iterate it; null would break them
	}
	writeJSON(w, http.StatusOK, linkList{Site: ss.Site(), Links: links})
}

func (s *Server) addLink(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.sites(w)
	if !ok {
		return
	}
	var req struct {
		Peer string `json:"peer"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`invalid link JSON, want {"peer":"HOST:PORT"}: %w`, err))
		return
	}
	if _, _, err := net.SplitHostPort(req.Peer); err != nil || req.Peer == "" {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`invalid peer %q: want {"peer":"HOST:PORT"}, a peer address of a node of the other site`, req.Peer))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), linkTimeout)
	defer cancel()
	ls, err := ss.AddLink(ctx, req.Peer)
	if err != nil {
		s.writeLinkError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ls)
}

func (s *Server) removeLink(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.sites(w)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), linkTimeout)
	defer cancel()
	if err := ss.RemoveLink(ctx, r.PathValue("site")); err != nil {
		s.writeLinkError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) conflicts(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.sites(w)
	if !ok {
		return
	}
	limit := defaultConflictLimit
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("invalid limit %q: want a number from 1 to %d", q, maxConflictLimit))
			return
		}
		limit = min(n, maxConflictLimit)
	}
	cs, err := ss.Conflicts(r.Context(), limit)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	if cs == nil {
		cs = []engine.Conflict{}
	}
	writeJSON(w, http.StatusOK, conflictList{Site: ss.Site(), Conflicts: cs})
}

// writeLinkError answers a failed link change: an unknown link is 404,
// everything else as a write's error (a site follower redirects to the
// site leader, which is the node that keeps the links).
func (s *Server) writeLinkError(w http.ResponseWriter, r *http.Request, err error) {
	var ul *engine.UnknownLinkError
	if errors.As(err, &ul) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	s.writeOpError(w, r, err)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
