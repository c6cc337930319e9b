package resp

import (
	"strconv"
	"strings"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// Leaderless mode's commands: the per-connection quorum, siblings and the
// causal context of the next write. In other modes they answer an error
// naming the mode.

func (s *Server) leaderless(c *client, cmd string) (engine.SiblingReader, bool) {
	sr, ok := s.b.(engine.SiblingReader)
	if !ok {
		c.errorf("ERR %s applies to leaderless mode only", cmd)
	}
	return sr, ok
}

// validLevel accepts what ParseLevel does, before N is known: one, quorum,
// all or a positive number (the engine checks it against N).
func validLevel(s string) bool {
	switch strings.ToLower(s) {
	case "one", "quorum", "all":
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1
}

// REPLICANT.QUORUM <w> <r>
func (s *Server) cmdQuorum(c *client, args [][]byte) {
	if _, ok := s.leaderless(c, "REPLICANT.QUORUM"); !ok {
		return
	}
	w, r := strings.ToLower(string(args[1])), strings.ToLower(string(args[2]))
	if !validLevel(w) || !validLevel(r) {
		c.err("ERR quorum must be one, quorum, all or a number of replicas")
		return
	}
	c.ctx = engine.WithQuorum(c.base, engine.QuorumSetting{W: w, R: r})
	c.ok()
}

// REPLICANT.SIBLINGS key: the causal context, then each live sibling.
func (s *Server) cmdSiblings(c *client, args [][]byte) {
	sr, ok := s.leaderless(c, "REPLICANT.SIBLINGS")
	if !ok {
		return
	}
	ctx, vals, err := sr.Siblings(c.ctx, args[1])
	if err != nil {
		c.backendErr(err)
		return
	}
	c.array(1 + len(vals))
	c.bulkString(ctx)
	for _, v := range vals {
		c.bulk(v)
	}
}

// REPLICANT.CONTEXT ctx: the next write supersedes what ctx saw.
func (s *Server) cmdContext(c *client, args [][]byte) {
	if _, ok := s.leaderless(c, "REPLICANT.CONTEXT"); !ok {
		return
	}
	if _, err := crdt.ParseVector(string(args[1])); err != nil {
		c.err("ERR invalid causal context: " + err.Error())
		return
	}
	c.causal = string(args[1])
	c.ok()
}
