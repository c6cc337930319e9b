package multileader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// Node is what the multi-leader engine needs from the node it runs on: the
// site's single-leader engine (every write of this mode, local or from a
// link, goes through the site's log and commit policy), read access to the
// site's committed log (to serve links), and the peer transport.
type Node interface {
	engine.Engine
	// ReadCommitted calls fn for committed entries from..commit, stopping
	// after about maxBytes; it returns the commit LSN it read up to.
	ReadCommitted(from uint64, maxBytes int, fn func(storage.Entry) error) (commit uint64, err error)
	// LogBounds returns the first LSN the log holds and the commit LSN.
	LogBounds() (first, commit uint64)
	// Changed returns a channel closed when the commit LSN or the role
	// may have changed.
	Changed() <-chan struct{}
	// PeerClient dials another node's peer address.
	PeerClient(addr string) (pb.PeerClient, error)
	// SitePeers are the peer addresses of this site's nodes, leader first.
	SitePeers() []string
}

// Config configures the engine.
type Config struct {
	Site        string
	Node        Node
	Logger      *slog.Logger
	ReadTimeout time.Duration
}

// Engine is multi-leader mode's engine.Engine: the site's single-leader
// engine with records instead of plain values, vector tokens, and links
// that pull the other sites' logs.
type Engine struct {
	engine.Engine // the site's own engine: status, limits, administration
	node          Node
	site          string
	log           *slog.Logger
	readTimeout   time.Duration

	clockMu sync.Mutex
	clock   *crdt.Clock

	links *linkSet

	knowMu sync.Mutex
	know   map[string]crdt.Vector // what other sites reported they applied

	posMu sync.Mutex
	posAt engine.Token // the state pos was read at
	pos   crdt.Vector  // immutable
}

var (
	_ engine.Engine = (*Engine)(nil)
	_ engine.Sites  = (*Engine)(nil)
)

// New creates the engine; Run starts its links.
func New(cfg Config) (*Engine, error) {
	if err := ValidSite(cfg.Site); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	e := &Engine{Engine: cfg.Node, node: cfg.Node, site: cfg.Site, log: cfg.Logger.With("site", cfg.Site),
		readTimeout: cfg.ReadTimeout, clock: crdt.NewClock(0), know: map[string]crdt.Vector{}}
	e.links = newLinkSet(e)
	if m := cfg.Node.Metrics(); m != nil && m.Registry != nil {
		if err := m.Registry.Register(newCollector(e)); err != nil {
			return nil, fmt.Errorf("multileader: metrics: %w", err)
		}
	}
	return e, nil
}

// ValidSite checks a site name: an id the vector token can carry, starting
// with a letter so that "eu:12" never reads as an EPOCH:LSN token.
func ValidSite(site string) error {
	if site == "" {
		return errors.New("multi-leader mode needs a site name (--site)")
	}
	if err := crdt.ValidID(site); err != nil {
		return fmt.Errorf("site %q: %w", site, err)
	}
	if c := site[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return fmt.Errorf("site %q must start with a letter", site)
	}
	return nil
}

// Site is this engine's site name.
func (e *Engine) Site() string { return e.site }

// Run runs the links until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); e.gcLoop(ctx) }()
	e.links.run(ctx)
	<-done
}

// clockAfter returns a timestamp after prev and after every timestamp the
// clock issued, near physMs.
func (e *Engine) clockAfter(prev crdt.Timestamp, physMs int64) crdt.Timestamp {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	t, err := e.clock.Update(prev, physMs)
	if err != nil { // exhausted at MaxInt64 ms: cannot happen with real clocks
		return e.clock.Last()
	}
	return t
}

// observe takes a remote stamp into the clock.
func (e *Engine) observe(t crdt.Timestamp) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.clock.Restore(t)
}

// rawWrite runs fn on the site's write path with the single-leader
// transaction, for the engine's own state and for links.
func (e *Engine) rawWrite(ctx context.Context, fn func(lsnTxn) error) (engine.Token, error) {
	return e.node.Write(ctx, func(tx engine.Txn) error {
		lt, ok := tx.(lsnTxn)
		if !ok {
			return fmt.Errorf("multileader: the site's transaction (%T) does not say its LSN", tx)
		}
		return fn(lt)
	})
}

// Write runs a client command.
func (e *Engine) Write(ctx context.Context, fn func(engine.Txn) error) (engine.Token, error) {
	if floor, ok := engine.WriteFloorFrom(ctx); ok && floor.Vector != "" {
		// The session wrote on other sites: apply those writes here first,
		// so the clock has seen their stamps and this write's stamp is
		// later. Without it a site whose clock is behind could stamp the
		// session's newer write below its older one, and last-writer-wins
		// would show the older value to the session.
		if _, err := e.Read(ctx, engine.Consistency{Level: engine.LevelSession}, floor); err != nil {
			return engine.Token{}, err
		}
	}
	var t *txn
	tok, err := e.rawWrite(ctx, func(tx lsnTxn) error {
		t = &txn{e: e, tx: tx}
		if err := fn(t); err != nil {
			return err
		}
		return t.finish()
	})
	if t == nil {
		return engine.Token{}, err
	}
	if t.wrote && err == nil {
		out := engine.VectorToken(crdt.Vector{}.Set(e.site, tok.LSN))
		out.Epoch, out.LSN = tok.Epoch, tok.LSN
		return out, nil
	}
	// A command that wrote nothing depends on the state it read: the
	// newest own write this site holds is the position to wait for.
	if tok.IsZero() {
		return tok, err
	}
	r, rerr := e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if rerr != nil {
		return tok, err
	}
	pos, perr := positions(r)
	if perr != nil {
		return tok, err
	}
	out := engine.VectorToken(crdt.Vector{}.Set(e.site, pos.Get(e.site)))
	out.Epoch, out.LSN = tok.Epoch, tok.LSN
	return out, err
}

// Read returns a reader at state that covers floor: a vector token waits
// until this site has applied every write it names, from any site.
func (e *Engine) Read(ctx context.Context, c engine.Consistency, floor engine.Token) (engine.Reader, error) {
	want := floor.Positions()
	siteFloor := engine.Token{Epoch: floor.Epoch, LSN: floor.LSN}
	if floor.Vector != "" {
		// The EPOCH:LSN part of a vector token is the site's own
		// position (for WAIT); it means nothing on another site.
		siteFloor = engine.Token{}
	}
	var deadline <-chan time.Time
	for {
		changed := e.node.Changed()
		r, err := e.node.Read(ctx, c, siteFloor)
		if err != nil {
			return nil, err
		}
		pos, err := e.positionsAt(r)
		if err != nil {
			return nil, err
		}
		if pos.Covers(want) {
			return &reader{r: r, pos: pos}, nil
		}
		if deadline == nil {
			timer := time.NewTimer(e.readTimeout)
			defer timer.Stop()
			deadline = timer.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, fmt.Errorf("%w: site %s has applied %s, the token asks for %s", engine.ErrStale, e.site, pos, want)
		case <-changed:
		case <-time.After(50 * time.Millisecond): // a role change closes no changed channel of the new role
		}
	}
}

// positionsAt returns the positions of the state r reads. A state at an
// LSN never changes, so the last answer is kept for reads at the same LSN
// and epoch (most reads of a busy site between two commits).
func (e *Engine) positionsAt(r engine.Reader) (crdt.Vector, error) {
	at := r.Token() // EPOCH:LSN: after a rollback an LSN may hold other writes
	e.posMu.Lock()
	if at.LSN != 0 && at == e.posAt {
		pos := e.pos
		e.posMu.Unlock()
		return pos, nil
	}
	e.posMu.Unlock()
	pos, err := positions(r)
	if err != nil {
		return pos, err
	}
	e.posMu.Lock()
	e.posAt, e.pos = at, pos
	e.posMu.Unlock()
	return pos, nil
}

// positions reads this site's current per-origin positions.
func (e *Engine) positions(ctx context.Context) (crdt.Vector, error) {
	r, err := e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err != nil {
		return crdt.Vector{}, err
	}
	return e.positionsAt(r)
}

// Token is the vector of what this site has applied.
func (e *Engine) Token() engine.Token {
	pos, err := e.positions(context.Background())
	if err != nil {
		return engine.Token{}
	}
	return engine.VectorToken(pos)
}

// Status is the site node's status with the site, its links and conflicts.
func (e *Engine) Status() engine.Status {
	st := e.node.Status()
	st.Mode, st.Site = engine.ModeMultiLeader, e.site
	st.Token = e.Token().Vector // "" before any write: not the "0:0" of EPOCH:LSN
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st.Links, _ = e.Links(ctx)
	st.Conflicts, _ = e.conflictCount(ctx)
	return st
}

// conflictCount is how many conflicts this site ever recorded.
func (e *Engine) conflictCount(ctx context.Context) (uint64, error) {
	r, err := e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err != nil {
		return 0, err
	}
	v, ok, err := r.Get(internalKey(keyConflicts, ""))
	if err != nil || !ok {
		return 0, err
	}
	return parseU64(v.Value), nil
}

// Conflicts returns the newest recorded conflicts first.
func (e *Engine) Conflicts(ctx context.Context, limit int) ([]engine.Conflict, error) {
	r, err := e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err != nil {
		return nil, err
	}
	var n uint64
	if v, ok, err := r.Get(internalKey(keyConflicts, "")); err != nil {
		return nil, err
	} else if ok {
		n = parseU64(v.Value)
	}
	out := []engine.Conflict{}
	for seq := n; seq > 0 && len(out) < limit && n-seq < conflictSlots; seq-- {
		v, ok, err := r.Get(conflictKey(seq))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		var c engine.Conflict
		if err := json.Unmarshal(v.Value, &c); err != nil {
			return nil, fmt.Errorf("multileader: conflict %d: %w", seq, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// linkConfig is a link's stored settings.
type linkConfig struct {
	Peers []string `json:"peers"`
}

// AddLink makes this site pull from the site peer belongs to.
func (e *Engine) AddLink(ctx context.Context, peer string) (engine.LinkStatus, error) {
	if !e.node.IsLeader() {
		// Say where the leader is before dialing anything.
		if _, err := e.rawWrite(ctx, func(lsnTxn) error { return nil }); err != nil {
			return engine.LinkStatus{}, err
		}
	}
	cl, err := e.node.PeerClient(peer)
	if err != nil {
		return engine.LinkStatus{}, fmt.Errorf("link to %s: %w", peer, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := cl.SiteInfo(ictx, &pb.SiteInfoRequest{})
	if err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return engine.LinkStatus{}, fmt.Errorf("%w: link to %s: %s", engine.ErrInvalid, peer, status.Convert(err).Message())
		}
		return engine.LinkStatus{}, fmt.Errorf("link to %s: asking it for its site: %w", peer, err)
	}
	if info.Mode != engine.ModeMultiLeader || ValidSite(info.Site) != nil {
		return engine.LinkStatus{}, fmt.Errorf("%w: link to %s: it runs %s mode with site %q, not a multi-leader site", engine.ErrInvalid, peer, info.Mode, info.Site)
	}
	if info.Site == e.site {
		return engine.LinkStatus{}, fmt.Errorf("%w: link to %s: that node belongs to this site (%s)", engine.ErrInvalid, peer, e.site)
	}
	cfg := linkConfig{Peers: []string{peer}}
	for _, p := range info.Peers {
		if !slices.Contains(cfg.Peers, p) {
			cfg.Peers = append(cfg.Peers, p)
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return engine.LinkStatus{}, err
	}
	if _, err := e.rawWrite(ctx, func(tx lsnTxn) error {
		tx.Set(linkKey(info.Site), b, 0)
		return nil
	}); err != nil {
		return engine.LinkStatus{}, err
	}
	e.links.wake()
	e.log.Info("link added", "from_site", info.Site, "peers", cfg.Peers)
	return engine.LinkStatus{Site: info.Site, Peers: cfg.Peers, State: "connecting"}, nil
}

// RemoveLink stops pulling from site.
func (e *Engine) RemoveLink(ctx context.Context, site string) error {
	var missing bool
	_, err := e.rawWrite(ctx, func(tx lsnTxn) error {
		_, ok, err := tx.Get(linkKey(site))
		if err != nil {
			return err
		}
		if missing = !ok; missing {
			return nil
		}
		tx.Del(linkKey(site))
		return nil
	})
	if err != nil {
		return err
	}
	if missing {
		return &engine.UnknownLinkError{Site: site}
	}
	e.links.wake()
	e.log.Info("link removed", "from_site", site)
	return nil
}

// Links lists the configured links with their state.
func (e *Engine) Links(ctx context.Context) ([]engine.LinkStatus, error) {
	r, err := e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err != nil {
		return nil, err
	}
	cfgs, err := readLinks(r)
	if err != nil {
		return nil, err
	}
	pos, _ := positions(r)
	out := make([]engine.LinkStatus, 0, len(cfgs))
	for _, site := range sortedKeys(cfgs) {
		ls := e.links.status(site)
		ls.Site, ls.Peers = site, cfgs[site].Peers
		ls.AppliedOriginLSN = pos.Get(site)
		if v, ok, err := r.Get(cursorKey(site)); err == nil && ok && ls.RemoteLSN == 0 {
			ls.RemoteLSN = parseU64(v.Value)
		}
		out = append(out, ls)
	}
	return out, nil
}

// readLinks reads every link's settings from a state.
func readLinks(r engine.Reader) (map[string]linkConfig, error) {
	out := map[string]linkConfig{}
	var derr error
	err := r.Scan(internalKey(kindLink, ""), func(key []byte, v engine.Version) bool {
		kind, name, ok := parseInternal(key)
		if !ok || kind != kindLink {
			return false
		}
		var c linkConfig
		if err := json.Unmarshal(v.Value, &c); err != nil {
			derr = fmt.Errorf("multileader: link %s settings: %w", name, err)
			return false
		}
		out[name] = c
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, derr
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// SiteInfo answers another site asking who this node is.
func (e *Engine) SiteInfo(ctx context.Context) (*pb.SiteInfoResponse, error) {
	return &pb.SiteInfoResponse{Site: e.site, Mode: engine.ModeMultiLeader, Node: e.Settings().ID,
		Leader: e.node.IsLeader(), Peers: e.node.SitePeers()}, nil
}
