package engine

import (
	"context"
	"errors"
	"fmt"
)

// Replication modes, as --mode names them and /v1/status shows them.
const (
	ModeSingleLeader = "single-leader"
	ModeMultiLeader  = "multi-leader"
	ModeLeaderless   = "leaderless"
)

// Sites is implemented by engines in multi-leader mode: the links that
// make this site pull other sites' logs, and the conflicts resolved here.
// The APIs serve /v1/links and /v1/conflicts from it; an engine without it
// answers those with "not in multi-leader mode".
type Sites interface {
	// Site is this node's site.
	Site() string
	// Links lists this site's incoming links (the sites it pulls from).
	Links(ctx context.Context) ([]LinkStatus, error)
	// AddLink makes this site pull from the site that owns peer (a peer
	// address of any of its nodes) and returns the new link. Adding a
	// link to a site already linked updates its address.
	AddLink(ctx context.Context, peer string) (LinkStatus, error)
	// RemoveLink stops pulling from site; *UnknownLinkError if there is
	// no such link.
	RemoveLink(ctx context.Context, site string) error
	// Conflicts returns up to limit recorded conflicts, newest first.
	Conflicts(ctx context.Context, limit int) ([]Conflict, error)
}

// LinkStatus is one incoming link as /v1/status and /v1/links show it.
type LinkStatus struct {
	// Site is the remote site this site pulls from.
	Site string `json:"site"`
	// Peers are the remote site's peer addresses this link knows.
	Peers []string `json:"peers,omitempty"`
	// State: connecting, streaming, broken, idle (not the site leader,
	// which is the only node that runs links).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Connected is the remote node this link streams from now.
	Connected string `json:"connected,omitempty"`
	// LagEntries is how many committed remote log entries are not yet
	// applied here; LagSeconds how old the oldest of them is.
	LagEntries uint64  `json:"lag_entries"`
	LagSeconds float64 `json:"lag_seconds"`
	// AppliedOriginLSN is the highest LSN of entries written at Site that
	// this site has applied.
	AppliedOriginLSN uint64 `json:"applied_origin_lsn"`
	// RemoteLSN is the position in the remote site's log this link has
	// read up to (where it resumes).
	RemoteLSN uint64 `json:"remote_lsn"`
}

// Conflict is one concurrent write that lost to another by last-writer-wins.
type Conflict struct {
	Key string `json:"key"`
	// Site is where this conflict was observed (the site answering).
	Site   string        `json:"site"`
	Winner ConflictWrite `json:"winner"`
	Loser  ConflictWrite `json:"loser"`
	// ResolvedMs is when this site resolved it, Unix milliseconds.
	ResolvedMs int64 `json:"resolved_ms"`
}

// ConflictWrite is one side of a conflict.
type ConflictWrite struct {
	Site string `json:"site"`
	// HLC is the write's hybrid logical clock timestamp ("wallms,logical");
	// WallMs its physical part, Unix milliseconds.
	HLC     string `json:"hlc"`
	WallMs  int64  `json:"wall_ms"`
	Value   string `json:"value"`
	Deleted bool   `json:"deleted,omitempty"`
}

// ErrNoQuorum: a leaderless read or write reached fewer replicas than its
// quorum. Its message starts with NOQUORUM and says how many it reached.
var ErrNoQuorum = errors.New("NOQUORUM")

// ErrInvalid is wrapped by refusals of a request that can never succeed
// as given (a link to the site itself, or to a node of another mode); the
// HTTP API answers 400.
var ErrInvalid = errors.New("invalid request")

// UnknownLinkError: RemoveLink named a site with no link.
type UnknownLinkError struct{ Site string }

func (e *UnknownLinkError) Error() string { return fmt.Sprintf("no link from site %q", e.Site) }

// UnsupportedError: a command that this mode cannot run without letting
// replicas diverge; it is refused, and nothing is written.
type UnsupportedError struct {
	Command string
	Mode    string
	Why     string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s is not supported in %s mode: %s", e.Command, e.Mode, e.Why)
}

// Errors a CounterTxn returns, which the APIs answer as Redis does.
// ErrWrongType is also any command's on a key holding another type (its
// text is Redis's reply); it lives here so that the modes, below the
// collection layer, can return it.
var (
	ErrNotInteger = errors.New("value is not an integer or out of range")
	ErrOverflow   = errors.New("increment or decrement would overflow")
	ErrWrongType  = errors.New("WRONGTYPE Operation against a key holding the wrong kind of value")
)

// CounterTxn is implemented by the Txn of modes where concurrent
// increments must all count (multi-leader, leaderless): the counter
// commands (INCR, INCRBY, DECR, DECRBY) call IncrBy instead of reading,
// adding and setting, so that the mode can record the increment itself
// rather than the resulting value. It returns the new value, or an error
// wrapping ErrNotInteger or ErrOverflow.
type CounterTxn interface {
	IncrBy(key []byte, delta int64) (int64, error)
}

// QuorumSetting is a leaderless request's W and R as a client chose them
// (REPLICANT.QUORUM, Replicant-W / Replicant-R): "one", "quorum", "all" or
// a number; empty means the default (a majority of N).
type QuorumSetting struct{ W, R string }

type quorumKey struct{}
type causalKey struct{}

// WithQuorum returns ctx carrying a request's quorum setting.
func WithQuorum(ctx context.Context, q QuorumSetting) context.Context {
	return context.WithValue(ctx, quorumKey{}, q)
}

// QuorumFrom returns the quorum setting ctx carries.
func QuorumFrom(ctx context.Context) QuorumSetting {
	q, _ := ctx.Value(quorumKey{}).(QuorumSetting)
	return q
}

// WithCausalContext returns ctx carrying the causal context a leaderless
// write supersedes (REPLICANT.CONTEXT, Replicant-Context).
func WithCausalContext(ctx context.Context, c string) context.Context {
	return context.WithValue(ctx, causalKey{}, c)
}

// CausalContextFrom returns the causal context ctx carries, if any.
func CausalContextFrom(ctx context.Context) (string, bool) {
	c, ok := ctx.Value(causalKey{}).(string)
	return c, ok
}

// SiblingReader is implemented by engines whose keys can hold concurrent
// values (leaderless): the causal context of key and its live values.
type SiblingReader interface {
	Siblings(ctx context.Context, key []byte) (causal string, values [][]byte, err error)
}

// RingMember is one node's place on a leaderless ring, in /v1/status.
type RingMember struct {
	ID string `json:"id"`
	// Share is the fraction of the hash space this node holds as one of
	// the N replicas; Primary the fraction it holds first.
	Share   float64 `json:"share"`
	Primary float64 `json:"primary"`
	Ranges  int     `json:"ranges"`
	Healthy bool    `json:"healthy"`
	// Joining: the member joined and receives writes, but reads do not
	// ask it until every member has handed off its keys for the new ring.
	Joining bool `json:"joining,omitempty"`
}

type writeFloorKey struct{}

// WithWriteFloor returns ctx carrying a session's token for a write. A
// mode whose sites take writes concurrently (multi-leader) first applies
// everything the token covers, so the write is ordered after the
// session's earlier writes made on other sites: last-writer-wins then
// keeps read-your-writes across sites. Other modes need not: their write
// path already sees every acknowledged write.
func WithWriteFloor(ctx context.Context, floor Token) context.Context {
	if floor.IsZero() {
		return ctx
	}
	return context.WithValue(ctx, writeFloorKey{}, floor)
}

// WriteFloorFrom returns the token WithWriteFloor put in ctx.
func WriteFloorFrom(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(writeFloorKey{}).(Token)
	return t, ok
}
