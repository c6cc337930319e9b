package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/replicant-db/replicant/internal/crdt"
)

// Token names a point in the replicated history. A read carrying a token
// must observe state at least that new.
//
// In single-leader mode it is EPOCH:LSN: the epoch of the entry at LSN,
// and LSN. In multi-leader mode it is a vector of per-site positions
// ("eu:120,us:98", Vector set, Epoch and LSN zero): for each site, the
// highest LSN of that site's own writes the state includes. The two forms
// never mix in one cluster; site names start with a letter, so the text
// of one never parses as the other.
type Token struct {
	Epoch uint64
	LSN   uint64
	// Vector is the canonical text of a multi-leader token (crdt.Vector's
	// text form), kept as text so that Token stays comparable.
	Vector string
}

// String renders the token as EPOCH:LSN, or as its vector.
func (t Token) String() string {
	if t.Vector != "" {
		return t.Vector
	}
	return fmt.Sprintf("%d:%d", t.Epoch, t.LSN)
}

// IsZero reports whether t is the empty token.
func (t Token) IsZero() bool { return t.Epoch == 0 && t.LSN == 0 && t.Vector == "" }

// After reports whether t names a later point of the history than u: the
// later epoch wins, then the higher LSN. Epoch first because one leader
// writes each epoch and a new epoch starts after everything its leader
// kept: of two tokens from one history the later epoch also has the higher
// LSN, and when the LSNs disagree (7:98727 against 6:98736) the lower epoch
// names a suffix the later epoch discarded. A session floor is the After-
// maximum of the tokens it saw, so a doomed write of an old leader never
// outranks a newer acknowledged one. Vector tokens are not ordered by
// After (see Later).
func (t Token) After(u Token) bool {
	return t.Epoch > u.Epoch || (t.Epoch == u.Epoch && t.LSN > u.LSN)
}

// Later returns the later of t and u (see After). For vector tokens it is
// their merge (each site's maximum), which covers both. A multi-leader
// write's token also carries the site's EPOCH:LSN of the write, which
// String does not show and ParseToken does not restore: it only serves
// the connection that wrote (WAIT).
func (t Token) Later(u Token) Token {
	if t.Vector != "" || u.Vector != "" {
		// The EPOCH:LSN part, kept beside the vector, is the position in
		// this site's own log (what WAIT waits for).
		site := Token{Epoch: t.Epoch, LSN: t.LSN}.Later(Token{Epoch: u.Epoch, LSN: u.LSN})
		site.Vector = mergeVectors(t.Vector, u.Vector)
		return site
	}
	if u.After(t) {
		return u
	}
	return t
}

// ErrBadToken is returned (wrapped) for tokens that do not parse.
var ErrBadToken = errors.New("invalid token")

// ParseToken parses EPOCH:LSN or a vector token ("eu:120,us:98").
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	ep, lsn, ok := strings.Cut(s, ":")
	if !ok {
		return Token{}, fmt.Errorf("%w %q: want EPOCH:LSN or SITE:LSN,…", ErrBadToken, s)
	}
	if ep != "" && (ep[0] < '0' || ep[0] > '9') {
		v, err := crdt.ParseVector(s)
		if err != nil {
			return Token{}, fmt.Errorf("%w %q: %v", ErrBadToken, s, err)
		}
		return Token{Vector: v.String()}, nil
	}
	e, err1 := strconv.ParseUint(ep, 10, 64)
	l, err2 := strconv.ParseUint(lsn, 10, 64)
	if err1 != nil || err2 != nil {
		return Token{}, fmt.Errorf("%w %q: want EPOCH:LSN with decimal numbers", ErrBadToken, s)
	}
	return Token{Epoch: e, LSN: l}, nil
}

// VectorToken returns the token of a vector of per-site positions.
func VectorToken(v crdt.Vector) Token {
	if v.IsEmpty() {
		return Token{}
	}
	return Token{Vector: v.String()}
}

// Positions returns a vector token's per-site positions (empty for an
// EPOCH:LSN token).
func (t Token) Positions() crdt.Vector {
	if t.Vector == "" {
		return crdt.Vector{}
	}
	v, err := crdt.ParseVector(t.Vector)
	if err != nil { // only ParseToken and VectorToken fill Vector
		return crdt.Vector{}
	}
	return v
}

func mergeVectors(a, b string) string {
	va, vb := Token{Vector: a}.Positions(), Token{Vector: b}.Positions()
	return va.Merge(vb).String()
}

// Consistency is a read consistency level.
type Consistency struct {
	Level Level
	// MaxLagMs bounds replica staleness for LevelBounded.
	MaxLagMs int64
}

// Level enumerates read consistency levels.
type Level uint8

const (
	// LevelDefault picks linearizable on the leader, eventual on followers.
	LevelDefault Level = iota
	// LevelLinearizable reads on the leader at its commit LSN under a lease.
	LevelLinearizable
	// LevelSession gives read-your-writes and monotonic reads via tokens.
	LevelSession
	// LevelBounded refuses when this replica lags more than MaxLagMs.
	LevelBounded
	// LevelEventual reads local state.
	LevelEventual
)

func (c Consistency) String() string {
	switch c.Level {
	case LevelLinearizable:
		return "linearizable"
	case LevelSession:
		return "session"
	case LevelBounded:
		return fmt.Sprintf("bounded:%dms", c.MaxLagMs)
	case LevelEventual:
		return "eventual"
	}
	return "default"
}

// ParseConsistency parses linearizable|session|eventual|bounded:<duration>
// (or "bounded <ms>" as the RESP extension sends it).
func ParseConsistency(s string) (Consistency, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "", "default":
		return Consistency{}, nil
	case "linearizable", "strong":
		return Consistency{Level: LevelLinearizable}, nil
	case "session":
		return Consistency{Level: LevelSession}, nil
	case "eventual":
		return Consistency{Level: LevelEventual}, nil
	}
	if rest, ok := strings.CutPrefix(s, "bounded"); ok {
		rest = strings.TrimLeft(rest, ": ")
		ms, err := parseDurationMs(rest)
		if err != nil {
			return Consistency{}, fmt.Errorf("invalid bounded staleness %q: %w", rest, err)
		}
		return Consistency{Level: LevelBounded, MaxLagMs: ms}, nil
	}
	return Consistency{}, fmt.Errorf("unknown consistency %q (want linearizable, session, eventual or bounded:<duration>)", s)
}

// LaterToken is the session floor after seeing token tok on top of cur
// (both in their text form; "" is no token): the Later of the two. A tok
// that does not parse leaves cur as it is.
func LaterToken(cur, tok string) string {
	t, err := ParseToken(tok)
	if tok == "" || err != nil {
		return cur
	}
	c, err := ParseToken(cur)
	if cur == "" || err != nil {
		return t.String()
	}
	return c.Later(t).String()
}
