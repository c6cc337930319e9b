package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/replicant-db/replicant/internal/policy"
)

// Transport carries raft messages between members. Send must not block and
// may drop messages (raft retries). It routes each message by msg.To (a raft
// id); Group.PeerAddr maps raft ids to peer addresses. The receiving side
// hands each message to Group.Step. Send must not modify the messages.
type Transport interface {
	Send(msgs []*raftpb.Message)
}

// Duty is a piece of controller work. Duties run one after another on every
// tick while this member is the controller (the raft leader); a duty must
// return promptly once ctx ends and should bound its own waiting.
type Duty func(ctx context.Context, g *Group)

// Config configures a Group.
type Config struct {
	ID   string // member id; must equal Self.ID when that is set
	Dir  string // the control plane's own directory (e.g. DATA/control)
	Self Member

	// InitialCluster bootstraps a new cluster: the same list on every node;
	// the first member becomes the first data leader. Ignored when Dir holds
	// state. Empty: a one-member cluster of Self.
	InitialCluster []Member
	// Join starts with empty storage and waits to be added by AddMember on
	// the existing cluster.
	Join bool

	// Bootstrap settings (defaults "async", "durable", "block"). Like
	// InitialCluster they should be the same on every bootstrapping node; the
	// first controller re-asserts its own with the first appointment.
	InitialPolicy, InitialAck, InitialFallback string

	Transport    Transport     // nil: messages are dropped (fine for one member)
	TickInterval time.Duration // default 100ms; election timeout 10 ticks, heartbeat 1
	Logger       *slog.Logger  // default slog.Default()

	// SnapshotEntries: take a snapshot and compact the log every this many
	// applied entries (default 1000).
	SnapshotEntries uint64
	// Duties run after the built-in one (appoint the first data leader) on
	// every controller tick.
	Duties []Duty
	// NoDataLeader leaves out the built-in duty: the cluster's data has no
	// leader (leaderless mode), so the state keeps Leader empty and any
	// member can be removed.
	NoDataLeader bool
}

func builtinDuties(cfg Config) []Duty {
	if cfg.NoDataLeader {
		return cfg.Duties
	}
	return append([]Duty{appointFirstLeader}, cfg.Duties...)
}

const (
	electionTicks          = 10
	heartbeatTicks         = 1
	defaultTickInterval    = 100 * time.Millisecond
	defaultSnapshotEntries = 1000
	recvBuffer             = 256
	drainBatch             = 64
)

var errNoLeader = errors.New("control: no raft leader known")

// Group is one member of the control-plane raft group.
type Group struct {
	// campaignSoon asks the run loop to campaign after its first Ready.
	campaignSoon   bool
	bootstrapFirst bool // this node is the first of a new cluster
	id             string
	raftID         uint64
	self           Member
	log            *slog.Logger
	transport      Transport
	tick           time.Duration
	resend         time.Duration
	snapEvery      uint64
	duties         []Duty

	// Owned by the raft loop goroutine.
	rn        *raft.RawNode
	ms        *raft.MemoryStorage
	wal       *wal
	sm        *machine
	confState *raftpb.ConfState
	snapIndex uint64
	running   bool // set before the loop starts; false while Open replays

	recvc   chan *raftpb.Message
	propc   chan proposal
	reportc chan report
	stopc   chan struct{}
	donec   chan struct{}

	ctrlCancel context.CancelFunc
	ctrlDone   chan struct{}
	closeOnce  sync.Once
	closeErr   error

	nonce uint64
	seq   atomic.Uint64

	mu    sync.Mutex
	state State // latest applied state (published copy)
	// leaseSeen is when this member applied the latest change of (Epoch,
	// LeaseSeq), by its own clock: always after the renewal was sent, so a
	// controller may time the data leader's silence from it (LeaseObserved).
	leaseSeen time.Time
	lead      uint64
	leader    bool // this member is the raft leader
	subs      map[int]chan State
	nextSub   int
	waiters   map[string]chan result
	hints     map[uint64]string
	fatalErr  error
	closed    bool

	// names maps raft ids to member names for log lines; leads logs the
	// controller's changes (logger.go). Both belong to the raft loop.
	names *raftNames
	leads *leadWatch
}

type proposal struct {
	data  []byte
	cc    *raftpb.ConfChange
	reply chan error
	// transferTo asks the raft leader to hand leadership to this raft id
	// (no data, no conf change).
	transferTo uint64
}

type report struct {
	to          uint64
	unreachable bool
	snapStatus  raft.SnapshotStatus
}

type noTransport struct{}

func (noTransport) Send([]*raftpb.Message) {}

func normalizeMember(m Member) (Member, error) {
	if m.ID == "" {
		return m, fmt.Errorf("%w: member with an empty id", ErrInvalidArgument)
	}
	rid := RaftID(m.ID)
	if m.RaftID != 0 && m.RaftID != rid {
		return m, fmt.Errorf("%w: member %q has raft id %x, want %x", ErrInvalidArgument, m.ID, m.RaftID, rid)
	}
	m.RaftID = rid
	return m, nil
}

func normalizeConfig(cfg Config) (Config, error) {
	if cfg.ID == "" {
		cfg.ID = cfg.Self.ID
	}
	if cfg.Self.ID == "" {
		cfg.Self.ID = cfg.ID
	}
	if cfg.ID != cfg.Self.ID {
		return cfg, fmt.Errorf("%w: Config.ID %q differs from Self.ID %q", ErrInvalidArgument, cfg.ID, cfg.Self.ID)
	}
	if cfg.Dir == "" {
		return cfg, fmt.Errorf("%w: Config.Dir is empty", ErrInvalidArgument)
	}
	self, err := normalizeMember(cfg.Self)
	if err != nil {
		return cfg, err
	}
	cfg.Self = self
	cluster := make([]Member, 0, len(cfg.InitialCluster))
	for _, m := range cfg.InitialCluster {
		m, err := normalizeMember(m)
		if err != nil {
			return cfg, err
		}
		for _, o := range cluster {
			if o.ID == m.ID || o.RaftID == m.RaftID {
				return cfg, fmt.Errorf("%w: initial cluster lists %q and %q with the same id or raft id", ErrInvalidArgument, o.ID, m.ID)
			}
		}
		if m.ID == self.ID {
			// Our own addresses come from Self where the list leaves them out.
			if m.PeerAddr == "" {
				m.PeerAddr = self.PeerAddr
			}
			if m.RESPAddr == "" {
				m.RESPAddr = self.RESPAddr
			}
			if m.HTTPAddr == "" {
				m.HTTPAddr = self.HTTPAddr
			}
		}
		cluster = append(cluster, m)
	}
	if len(cluster) == 0 {
		cluster = []Member{self}
	}
	if !cfg.Join && !slices.ContainsFunc(cluster, func(m Member) bool { return m.ID == self.ID }) {
		return cfg, fmt.Errorf("%w: initial cluster does not list this member %q", ErrInvalidArgument, self.ID)
	}
	cfg.InitialCluster = cluster
	// Canonical text of the initial settings; the parsers read the empty
	// string as the default (async, durable, block).
	p, err := policy.ParseCommit(cfg.InitialPolicy)
	if err != nil {
		return cfg, fmt.Errorf("%w: initial policy: %w", ErrInvalidArgument, err)
	}
	a, err := policy.ParseAck(cfg.InitialAck)
	if err != nil {
		return cfg, fmt.Errorf("%w: initial ack level: %w", ErrInvalidArgument, err)
	}
	f, err := policy.ParseFallback(cfg.InitialFallback)
	if err != nil {
		return cfg, fmt.Errorf("%w: initial fallback: %w", ErrInvalidArgument, err)
	}
	cfg.InitialPolicy, cfg.InitialAck, cfg.InitialFallback = p.String(), a.String(), f.String()
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = defaultTickInterval
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = defaultSnapshotEntries
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = noTransport{}
	}
	return cfg, nil
}

// Open opens (bootstrapping, restarting or joining) the control plane member
// and starts its raft loop and controller goroutines.
func Open(cfg Config) (*Group, error) {
	cfg, err := normalizeConfig(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "control", "member", cfg.ID)
	w, recs, err := openWAL(cfg.Dir, walMeta{ID: cfg.ID, RaftID: cfg.Self.RaftID}, log)
	if err != nil {
		return nil, err
	}
	g, err := newGroup(cfg, log, w, recs)
	if err != nil {
		_ = w.close()
		return nil, err
	}
	// Replay what the log holds (and persist a bootstrap) before returning,
	// so that State() is complete as soon as Open returns.
	if err := g.handleReady(); err != nil {
		_ = w.close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.ctrlCancel = cancel
	g.running = true
	go g.run()
	go g.controllerLoop(ctx)
	return g, nil
}

func newGroup(cfg Config, log *slog.Logger, w *wal, recs []walRecord) (*Group, error) {
	rp, err := replay(w.path, recs)
	if err != nil {
		return nil, err
	}
	g := &Group{
		id:        cfg.ID,
		raftID:    cfg.Self.RaftID,
		self:      cfg.Self,
		log:       log,
		transport: cfg.Transport,
		tick:      cfg.TickInterval,
		resend:    2 * electionTicks * cfg.TickInterval,
		snapEvery: cfg.SnapshotEntries,
		duties:    builtinDuties(cfg),
		ms:        rp.storage,
		wal:       w,
		sm:        newMachine(),
		confState: &raftpb.ConfState{},
		recvc:     make(chan *raftpb.Message, recvBuffer),
		propc:     make(chan proposal),
		reportc:   make(chan report, recvBuffer),
		stopc:     make(chan struct{}),
		donec:     make(chan struct{}),
		ctrlDone:  make(chan struct{}),
		nonce:     rand.Uint64(),
		subs:      make(map[int]chan State),
		waiters:   make(map[string]chan result),
		hints:     make(map[uint64]string),
	}
	if rp.snap != nil {
		if err := g.sm.restore(rp.snap.GetData()); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, w.path, err)
		}
		g.snapIndex = rp.snap.GetMetadata().GetIndex()
		g.sm.state.Index = g.snapIndex
		if cs := rp.snap.GetMetadata().GetConfState(); cs != nil {
			g.confState = proto.Clone(cs).(*raftpb.ConfState)
		}
	}
	g.names = &raftNames{}
	g.names.add(cfg.Self)
	g.names.add(cfg.InitialCluster...)
	g.names.add(g.sm.state.Members...)
	g.leads = &leadWatch{log: log, names: g.names, quiet: 4 * electionTicks * cfg.TickInterval}
	rc := &raft.Config{
		ID:                        g.raftID,
		ElectionTick:              electionTicks,
		HeartbeatTick:             heartbeatTicks,
		Storage:                   freshSnapshots{MemoryStorage: g.ms, g: g},
		Applied:                   g.snapIndex,
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  8 << 20,
		MaxUncommittedEntriesSize: 64 << 20,
		MaxInflightMsgs:           256,
		CheckQuorum:               true,
		PreVote:                   true,
		StepDownOnRemoval:         true,
		Logger:                    newRaftLogger(log, g.names),
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("control: start raft: %w", err)
	}
	switch {
	case !rp.empty():
		log.Info("control: restarting from disk", "dir", cfg.Dir, "snapshot_index", g.snapIndex)
	case cfg.Join:
		log.Info("control: joining; waiting to be added to the cluster", "dir", cfg.Dir)
	default:
		peers := make([]raft.Peer, 0, len(cfg.InitialCluster))
		for i, m := range cfg.InitialCluster {
			cc := confContext{Member: &m}
			if i == 0 {
				cc.Init = &initSettings{Policy: cfg.InitialPolicy, Ack: cfg.InitialAck, Fallback: cfg.InitialFallback}
			}
			b, err := json.Marshal(cc)
			if err != nil {
				return nil, fmt.Errorf("control: encode bootstrap member: %w", err)
			}
			peers = append(peers, raft.Peer{ID: m.RaftID, Context: b})
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("control: bootstrap: %w", err)
		}
		log.Info("control: bootstrapping a new cluster", "dir", cfg.Dir, "members", len(peers))
	}
	// Campaign at once where waiting for an election timeout only delays
	// start-up: a one-member cluster, or the first member of a new one
	// (raft ignores the request if this node cannot be elected yet).
	// On bootstrap the membership entries must be applied first, so the
	// run loop campaigns after its first Ready.
	// On a restart the membership is only known once the replayed log is
	// applied, too: the run loop decides after its first Ready.
	g.campaignSoon = !rp.empty() || (!cfg.Join && len(cfg.InitialCluster) > 0 && cfg.InitialCluster[0].RaftID == g.raftID)
	g.bootstrapFirst = rp.empty() && g.campaignSoon
	g.rn = rn
	g.state = g.sm.state.Clone()
	return g, nil
}

// run is the raft loop: it owns rn, ms, wal and the state machine.
func (g *Group) run() {
	defer close(g.donec)
	defer func() {
		if err := g.wal.close(); err != nil {
			g.mu.Lock()
			g.closeErr = err
			g.mu.Unlock()
		}
	}()
	ticker := time.NewTicker(g.tick)
	defer ticker.Stop()
	for {
		if err := g.handleReady(); err != nil {
			g.fail(err)
			return
		}
		if g.campaignSoon {
			g.campaignSoon = false
			st := g.sm.state
			if g.bootstrapFirst || (len(st.Members) == 1 && st.Members[0].RaftID == g.raftID) {
				_ = g.rn.Campaign()
				continue
			}
		}
		select {
		case <-g.stopc:
			return
		case <-ticker.C:
			g.rn.Tick()
		case m := <-g.recvc:
			g.step(m)
		drain:
			for range drainBatch {
				select {
				case m := <-g.recvc:
					g.step(m)
				default:
					break drain
				}
			}
		case p := <-g.propc:
			p.reply <- g.propose(p)
		case r := <-g.reportc:
			if r.unreachable {
				g.rn.ReportUnreachable(r.to)
			} else {
				g.rn.ReportSnapshot(r.to, r.snapStatus)
			}
		}
	}
}

func (g *Group) fail(err error) {
	g.log.Error("control: raft loop stopped", "err", err)
	g.mu.Lock()
	g.fatalErr = err
	g.leader = false
	g.lead = raft.None
	g.mu.Unlock()
}

func (g *Group) step(m *raftpb.Message) {
	if err := g.rn.Step(m); err != nil {
		g.log.Debug("control: raft dropped a message", "type", m.GetType().String(), "from", m.GetFrom(), "err", err)
	}
}

func (g *Group) propose(p proposal) error {
	if g.rn.BasicStatus().Lead == raft.None {
		return errNoLeader
	}
	if p.transferTo != 0 {
		// Only the raft leader transfers; raft itself waits until the
		// target's log is caught up, then tells it to campaign at once.
		g.rn.TransferLeader(p.transferTo)
		return nil
	}
	if p.cc != nil {
		return g.rn.ProposeConfChange(p.cc)
	}
	return g.rn.Propose(p.data)
}

// handleReady follows raft's Ready contract: persist the hard state, entries
// and snapshot (fsynced), then send messages, then apply committed entries,
// then Advance.
func (g *Group) handleReady() error {
	for g.rn.HasReady() {
		rd := g.rn.Ready()
		changed := false
		if err := g.persist(rd); err != nil {
			return err
		}
		var snapTo []uint64
		// During Open (before the loop runs) messages are dropped, so the
		// transport is never called before Open has returned the Group; raft
		// resends what matters.
		if len(rd.Messages) > 0 && g.running {
			for _, m := range rd.Messages {
				if m.GetType() == raftpb.MsgSnap {
					snapTo = append(snapTo, m.GetTo())
				}
			}
			g.transport.Send(rd.Messages)
		}
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := g.sm.restore(rd.Snapshot.GetData()); err != nil {
				return fmt.Errorf("control: install snapshot from leader: %w", err)
			}
			g.sm.state.Index = rd.Snapshot.GetMetadata().GetIndex()
			g.snapIndex = g.sm.state.Index
			if cs := rd.Snapshot.GetMetadata().GetConfState(); cs != nil {
				g.confState = proto.Clone(cs).(*raftpb.ConfState)
			}
			changed = true
			g.log.Info("control: installed snapshot", "index", g.snapIndex)
		}
		var done []notification
		if len(rd.CommittedEntries) > 0 {
			done = g.apply(rd.CommittedEntries)
			changed = true
		}
		if changed {
			g.names.add(g.sm.state.Members...)
			// Publish before waking the proposers: a mutation that returns
			// is visible in State().
			g.mu.Lock()
			g.publishLocked()
			g.notifyLocked(done)
			g.mu.Unlock()
		}
		g.rn.Advance(rd)
		// The transport is best effort: report a sent snapshot as delivered.
		// If it was lost, the follower rejects the next append and the
		// leader sends a new snapshot.
		for _, to := range snapTo {
			g.rn.ReportSnapshot(to, raft.SnapshotFinish)
		}
		if err := g.maybeSnapshot(); err != nil {
			return err
		}
	}
	st := g.rn.BasicStatus()
	g.mu.Lock()
	g.lead = st.Lead
	g.leader = st.RaftState == raft.StateLeader
	g.mu.Unlock()
	g.leads.observe(time.Now(), st.Lead, st.GetTerm(), len(g.sm.state.Members))
	return nil
}

func (g *Group) persist(rd raft.Ready) error {
	snap := rd.Snapshot
	hasSnap := !raft.IsEmptySnap(snap)
	if err := g.wal.save(snap, rd.Entries, rd.HardState, rd.MustSync || hasSnap); err != nil {
		return err
	}
	if hasSnap {
		if err := g.ms.ApplySnapshot(snap); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return fmt.Errorf("control: apply snapshot to storage: %w", err)
		}
	}
	if hs := rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
		if err := g.ms.SetHardState(hs); err != nil {
			return fmt.Errorf("control: set hard state: %w", err)
		}
	}
	if err := g.ms.Append(rd.Entries); err != nil {
		return fmt.Errorf("control: append entries to storage: %w", err)
	}
	return nil
}

// notification is the result of one applied proposal, for its waiter.
type notification struct {
	req string
	res result
}

// apply applies committed entries to the state machine and returns the
// results to hand to waiting proposers.
func (g *Group) apply(ents []*raftpb.Entry) []notification {
	var done []notification
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= g.sm.state.Index {
			continue
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) == 0 {
				break // a new raft leader's empty entry, or a refused conf change
			}
			req, res, dup := g.sm.applyCommand(e.GetData())
			if !dup {
				if res.err != nil {
					g.log.Debug("control: command rejected", "index", idx, "err", res.err)
				}
				done = append(done, notification{req, res})
			}
		case raftpb.EntryConfChange:
			cc := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				g.log.Warn("control: undecodable conf change ignored", "index", idx, "err", err)
				break
			}
			d := g.sm.decideConfChange(cc, g.confState)
			if d.accept {
				g.confState = g.rn.ApplyConfChange(cc)
				g.sm.commitConfChange(cc, d)
				g.log.Info("control: membership changed", "index", idx, "change", cc.GetType().String(), "member", g.names.name(cc.GetNodeId()), "raft_id", cc.GetNodeId())
			} else if d.err != nil {
				g.log.Debug("control: conf change rejected", "index", idx, "err", d.err)
			}
			if !d.dup {
				done = append(done, notification{d.ctx.Req, result{err: d.err}})
			}
		default:
			// This package never proposes ConfChangeV2 (no joint consensus).
			g.log.Warn("control: unsupported entry type ignored", "index", idx, "type", e.GetType().String())
		}
		g.sm.state.Index = idx
	}
	return done
}

func (g *Group) notifyLocked(done []notification) {
	for _, n := range done {
		if n.req == "" {
			continue
		}
		if ch, ok := g.waiters[n.req]; ok {
			delete(g.waiters, n.req)
			select {
			case ch <- n.res:
			default:
			}
		}
	}
}

// freshSnapshots makes the snapshot raft sends to a lagging follower the
// state as applied right now, not the last periodic snapshot: a member added
// after that snapshot would otherwise receive a configuration that does not
// contain it, and refuse it. raft calls Snapshot only from the raft loop,
// which owns the state machine.
type freshSnapshots struct {
	*raft.MemoryStorage
	g *Group
}

func (s freshSnapshots) Snapshot() (*raftpb.Snapshot, error) {
	applied := s.g.sm.state.Index
	cur, err := s.MemoryStorage.Snapshot()
	if err != nil || applied <= cur.GetMetadata().GetIndex() {
		return cur, err
	}
	if last, err := s.MemoryStorage.LastIndex(); err != nil || applied > last {
		return cur, nil
	}
	data, err := s.g.sm.marshal()
	if err != nil {
		return nil, err
	}
	return s.MemoryStorage.CreateSnapshot(applied, s.g.confState, data)
}

// maybeSnapshot snapshots the state machine every snapEvery applied entries,
// compacts the in-memory log (keeping some entries for slow followers) and
// rewrites the file with only the snapshot and what follows it.
func (g *Group) maybeSnapshot() error {
	applied := g.sm.state.Index
	if applied < g.snapIndex+g.snapEvery {
		return nil
	}
	last, err := g.ms.LastIndex()
	if err != nil || applied > last {
		return nil
	}
	data, err := g.sm.marshal()
	if err != nil {
		return err
	}
	snap, err := g.ms.CreateSnapshot(applied, g.confState, data)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		// freshSnapshots already made one at this index for a follower.
		snap, err = g.ms.Snapshot()
	}
	if err == nil && snap.GetMetadata().GetIndex() != applied {
		err = fmt.Errorf("storage snapshot is at %d", snap.GetMetadata().GetIndex())
	}
	if err != nil {
		return fmt.Errorf("control: create snapshot at %d: %w", applied, err)
	}
	var tail []*raftpb.Entry
	if applied < last {
		tail, err = g.ms.Entries(applied+1, last+1, math.MaxUint64)
		if err != nil {
			return fmt.Errorf("control: read log tail: %w", err)
		}
	}
	hs, _, err := g.ms.InitialState()
	if err != nil {
		return fmt.Errorf("control: read hard state: %w", err)
	}
	if err := g.wal.compact(snap, tail, hs); err != nil {
		return err
	}
	// Keep half an interval of entries in memory so that a follower that
	// lags a little catches up from the log instead of a snapshot.
	if keep := g.snapEvery / 2; applied > keep {
		if first, _ := g.ms.FirstIndex(); applied-keep > first {
			if err := g.ms.Compact(applied - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
				return fmt.Errorf("control: compact log: %w", err)
			}
		}
	}
	g.snapIndex = applied
	g.log.Debug("control: snapshot taken", "index", applied)
	return nil
}

// publishLocked hands the latest state to State() and the subscribers.
func (g *Group) publishLocked() {
	if g.sm.state.Epoch != g.state.Epoch || g.sm.state.LeaseSeq != g.state.LeaseSeq || g.leaseSeen.IsZero() {
		g.leaseSeen = time.Now()
	}
	g.state = g.sm.state.Clone()
	for _, ch := range g.subs {
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- g.state.Clone():
		default:
		}
	}
}

// Step hands an inbound raft message (from the transport) to the raft loop.
func (g *Group) Step(ctx context.Context, m *raftpb.Message) error {
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrInvalidArgument)
	}
	if m.GetTo() != g.raftID {
		return fmt.Errorf("%w: message for raft id %x delivered to %x (%s)", ErrInvalidArgument, m.GetTo(), g.raftID, g.id)
	}
	if raft.IsLocalMsg(m.GetType()) {
		return fmt.Errorf("%w: local message type %v from the network", ErrInvalidArgument, m.GetType())
	}
	select {
	case g.recvc <- m:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("control: step: %w", ctx.Err())
	case <-g.donec:
		return g.closedErr()
	}
}

// ReportUnreachable tells raft that the last send to raftID failed (optional;
// for transports that know).
func (g *Group) ReportUnreachable(raftID uint64) {
	select {
	case g.reportc <- report{to: raftID, unreachable: true}:
	default:
	}
}

// ReportSnapshot tells raft how sending a snapshot to raftID ended (optional;
// the Group already reports every handed-off snapshot as finished).
func (g *Group) ReportSnapshot(raftID uint64, ok bool) {
	st := raft.SnapshotFinish
	if !ok {
		st = raft.SnapshotFailure
	}
	select {
	case g.reportc <- report{to: raftID, snapStatus: st}:
	default:
	}
}

// LeaseObserved returns the state's epoch and lease sequence as applied
// here, and when this member applied their latest change (by its own clock;
// the group's start if it never saw one). Every member tracks it, not only
// the controller, so a member that takes over as controller can time the
// data leader's silence from the renewal it last applied as a follower
// instead of from its takeover.
func (g *Group) LeaseObserved() (epoch, seq uint64, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state.Epoch, g.state.LeaseSeq, g.leaseSeen
}

// State returns a copy of the latest applied state.
func (g *Group) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state.Clone()
}

// Subscribe returns a channel that receives the current state at once and
// then the latest state after applied changes (coalesced: a buffer of one,
// latest wins), and a cancel function. The channel is closed by cancel and
// by Close.
func (g *Group) Subscribe() (<-chan State, func()) {
	ch := make(chan State, 1)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		close(ch)
		return ch, func() {}
	}
	id := g.nextSub
	g.nextSub++
	g.subs[id] = ch
	ch <- g.state.Clone()
	return ch, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if c, ok := g.subs[id]; ok {
			delete(g.subs, id)
			close(c)
		}
	}
}

// PeerAddr returns the peer address of a raft id: from the members, else from
// hints given with AddPeerHint.
func (g *Group) PeerAddr(raftID uint64) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m, ok := g.state.memberByRaftID(raftID); ok && m.PeerAddr != "" {
		return m.PeerAddr, true
	}
	a, ok := g.hints[raftID]
	return a, ok
}

// AddPeerHint records a peer address for a raft id that the state does not
// (yet) know, e.g. the cluster's members as seen by a joining node before it
// has received the log, or the sender of an inbound message.
func (g *Group) AddPeerHint(raftID uint64, peerAddr string) {
	if raftID == 0 || peerAddr == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hints[raftID] = peerAddr
}

// IsController reports whether this member is the raft leader.
func (g *Group) IsController() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leader
}

// ControllerID returns the member id of the raft leader as this member knows
// it, or "" when none is known.
func (g *Group) ControllerID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lead == raft.None {
		return ""
	}
	if m, ok := g.state.memberByRaftID(g.lead); ok {
		return m.ID
	}
	return ""
}

// ID returns this member's id.
func (g *Group) ID() string { return g.id }

// RaftID returns this member's raft id.
func (g *Group) RaftID() uint64 { return g.raftID }

// Self returns this member as configured.
func (g *Group) Self() Member { return g.self }

// Done is closed when the raft loop has stopped (Close or a fatal error).
func (g *Group) Done() <-chan struct{} { return g.donec }

// Err returns the fatal error that stopped the raft loop, if any.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fatalErr
}

func (g *Group) closedErr() error {
	if err := g.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return ErrClosed
}

// Close stops the controller and raft loop and closes the log file.
// Subscriber channels are closed. Close is idempotent.
func (g *Group) Close() error {
	g.closeOnce.Do(func() {
		g.ctrlCancel()
		<-g.ctrlDone
		close(g.stopc)
		<-g.donec
		g.mu.Lock()
		g.closed = true
		for id, ch := range g.subs {
			delete(g.subs, id)
			close(ch)
		}
		g.mu.Unlock()
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closeErr
}
