package multileader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// linkSet runs one driver per configured link while this node leads its
// site (only the site leader writes, so only it can apply what a link
// brings); a follower runs none.
type linkSet struct {
	e      *Engine
	wakeCh chan struct{}

	mu      sync.Mutex
	drivers map[string]*driver
}

func newLinkSet(e *Engine) *linkSet {
	return &linkSet{e: e, wakeCh: make(chan struct{}, 1), drivers: map[string]*driver{}}
}

func (s *linkSet) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func (s *linkSet) run(ctx context.Context) {
	defer s.stopAll()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wakeCh:
		case <-t.C:
		}
	}
}

// reconcile starts and stops drivers to match the links in the site's
// state, or stops them all when this node does not lead the site.
func (s *linkSet) reconcile(ctx context.Context) {
	want := map[string]linkConfig{}
	if s.e.node.IsLeader() {
		r, err := s.e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
		if err == nil {
			want, err = readLinks(r)
		}
		if err != nil {
			s.e.log.Warn("reading link settings", "err", err)
			return
		}
	}
	s.mu.Lock()
	var stopped []*driver
	for site, d := range s.drivers {
		if c, ok := want[site]; !ok || !slices.Equal(c.Peers, d.peers) {
			d.cancel()
			stopped = append(stopped, d)
			delete(s.drivers, site)
		}
	}
	s.mu.Unlock()
	// A replaced driver finishes before its successor starts: two drivers
	// of one link would write its cursor over each other.
	for _, d := range stopped {
		<-d.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for site, c := range want {
		if _, ok := s.drivers[site]; !ok {
			d := newDriver(s.e, site, c.Peers)
			dctx, cancel := context.WithCancel(ctx)
			d.cancel = cancel // set before the goroutine starts: stop may come at once
			s.drivers[site] = d
			go d.run(dctx)
		}
	}
}

// stopAll stops every driver and waits for them, so that nothing writes
// through the node once Run has returned.
func (s *linkSet) stopAll() {
	s.mu.Lock()
	drivers := s.drivers
	s.drivers = map[string]*driver{}
	s.mu.Unlock()
	for _, d := range drivers {
		d.cancel()
	}
	for _, d := range drivers {
		<-d.done
	}
}

// status is a link's live state; a link without a driver is idle.
func (s *linkSet) status(site string) engine.LinkStatus {
	s.mu.Lock()
	d := s.drivers[site]
	s.mu.Unlock()
	if d == nil {
		return engine.LinkStatus{State: "idle", Reason: "links run on the site leader"}
	}
	return d.status()
}

// driver pulls one remote site's committed log and applies it here.
type driver struct {
	e      *Engine
	site   string
	peers  []string
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	state     string
	reason    string
	connected string
	cursor    uint64 // remote LSN scanned up to
	commit    uint64 // the remote's commit LSN, last heard
	lagSec    float64
	persisted time.Time // when the cursor was last written (driver goroutine only)
}

func newDriver(e *Engine, site string, peers []string) *driver {
	return &driver{e: e, site: site, peers: peers, done: make(chan struct{}), state: "connecting"}
}

func (d *driver) status() engine.LinkStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	lag := uint64(0)
	if d.commit > d.cursor {
		lag = d.commit - d.cursor
	}
	return engine.LinkStatus{State: d.state, Reason: d.reason, Connected: d.connected,
		LagEntries: lag, LagSeconds: d.lagSec, RemoteLSN: d.cursor}
}

func (d *driver) set(state, reason, connected string) {
	d.mu.Lock()
	d.state, d.reason, d.connected = state, reason, connected
	d.mu.Unlock()
}

func (d *driver) run(ctx context.Context) {
	defer close(d.done)
	defer d.cancel()
	const firstBackoff = 100 * time.Millisecond
	backoff := firstBackoff
	known := slices.Clone(d.peers)
	for i := 0; ctx.Err() == nil; i++ {
		peer, learned := d.locate(ctx, known[i%len(known)])
		for _, p := range learned {
			if !slices.Contains(known, p) {
				known = append(known, p) // nodes the remote site gained since the link was added
			}
		}
		delivered, err := d.stream(ctx, peer)
		if ctx.Err() != nil {
			return
		}
		if delivered {
			backoff = firstBackoff // a stream that worked ends a run of failures
		}
		state := "connecting"
		if status.Code(err) == codes.OutOfRange {
			state = "broken" // the remote no longer has what this link needs
		}
		d.set(state, err.Error(), "")
		d.e.log.Debug("link stream ended", "from_site", d.site, "peer", peer, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// locate asks a node of the remote site for its site's nodes, leader
// first, and returns the node to stream from: the remote leader when
// known (the freshest committed log; any node could serve it), else peer.
func (d *driver) locate(ctx context.Context, peer string) (string, []string) {
	cl, err := d.e.node.PeerClient(peer)
	if err != nil {
		return peer, nil
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := cl.SiteInfo(ictx, &pb.SiteInfoRequest{})
	if err != nil || info.Site != d.site || len(info.Peers) == 0 {
		return peer, nil
	}
	return info.Peers[0], info.Peers
}

// silentStream is how long a link waits for a batch or heartbeat.
const silentStream = 3 * time.Second

// stream pulls from one remote node until the stream fails; delivered
// says whether any batch arrived.
func (d *driver) stream(ctx context.Context, peer string) (delivered bool, err error) {
	start, err := d.resumeAt(ctx)
	if err != nil {
		return false, err
	}
	cl, err := d.e.node.PeerClient(peer)
	if err != nil {
		return false, err
	}
	// The server sends at least a heartbeat every second. A stream that
	// stays silent much longer is on a dead path (a partition drops
	// packets without closing anything); give up on it rather than wait
	// for TCP or gRPC keepalives to notice.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchdog := time.AfterFunc(silentStream, cancel)
	defer watchdog.Stop()
	st, err := cl.Changes(sctx, &pb.ChangesRequest{Site: d.e.site, FromLsn: start})
	if err != nil {
		return false, err
	}
	for {
		b, err := st.Recv()
		if err == io.EOF {
			return delivered, errors.New("remote ended the stream")
		}
		if err != nil {
			if ctx.Err() == nil && sctx.Err() != nil {
				return delivered, fmt.Errorf("no word from %s for %v", peer, silentStream)
			}
			return delivered, err
		}
		delivered = true
		watchdog.Reset(silentStream)
		if b.Site != d.site {
			return delivered, fmt.Errorf("%s belongs to site %q, not %q", peer, b.Site, d.site)
		}
		d.set("streaming", "", peer)
		if err := d.apply(ctx, b); err != nil {
			return delivered, err
		}
	}
}

// resumeAt is the first remote LSN to ask for: after the durable cursor,
// or after what this driver already scanned if that is further (entries
// it skipped as already applied are not worth a write).
func (d *driver) resumeAt(ctx context.Context) (uint64, error) {
	r, err := d.e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err != nil {
		return 0, err
	}
	v, ok, err := r.Get(cursorKey(d.site))
	if err != nil {
		return 0, err
	}
	var c uint64
	if ok {
		c = parseU64(v.Value)
	}
	d.mu.Lock()
	c = max(c, d.cursor)
	d.cursor = c
	d.mu.Unlock()
	return c + 1, nil
}

// apply writes one batch from the remote site as one entry of this site.
func (d *driver) apply(ctx context.Context, b *pb.ChangesBatch) error {
	entries := make([]storage.Entry, 0, len(b.Entries))
	for i, raw := range b.Entries {
		en, err := storage.DecodeEntry(raw)
		if err != nil {
			return fmt.Errorf("entry %d of a batch from site %s: %w", i, d.site, err)
		}
		entries = append(entries, en)
	}
	now := time.Now()
	if len(entries) > 0 && (d.fresh(ctx, entries) || now.Sub(d.persisted) > time.Second) {
		if _, err := d.e.rawWrite(ctx, func(tx lsnTxn) error {
			return d.e.applyRemote(tx, d.site, entries, b.ScannedLsn, now.UnixMilli())
		}); err != nil {
			return fmt.Errorf("applying entries from site %s: %w", d.site, err)
		}
		d.persisted = now
	}
	d.e.learn(b.Knowledge)
	d.mu.Lock()
	d.cursor = max(d.cursor, b.ScannedLsn)
	d.commit = b.CommitLsn
	switch {
	case d.cursor >= d.commit:
		d.lagSec = 0
	case len(entries) > 0:
		// Behind: how old the newest entry applied is.
		d.lagSec = max(0, now.Sub(time.Unix(0, entries[len(entries)-1].Time)).Seconds())
	}
	d.mu.Unlock()
	return nil
}

// fresh reports whether some entry may carry writes this site has not
// applied. Entries that reached this site by another link already (in an
// all-to-all topology every site forwards every other's writes) need no
// write here, except now and then to move the durable cursor. The check
// reads committed positions, which only lag the ones the write path
// would see, so a false "fresh" costs a write and a false "stale" cannot
// happen.
func (d *driver) fresh(ctx context.Context, entries []storage.Entry) bool {
	pos, err := d.e.positions(ctx)
	if err != nil {
		return true
	}
	for i := range entries {
		for _, o := range originsOf(&entries[i]) {
			if o.site != d.e.site && o.lsn > pos.Get(o.site) {
				return true
			}
		}
	}
	return false
}

// origin is one (site, LSN) an entry carries.
type origin struct {
	site string
	lsn  uint64
}

// originsOf lists the origins an entry records: the sites whose writes
// it carries, each with the highest own-write LSN it brings.
func originsOf(e *storage.Entry) []origin {
	var out []origin
	for i := range e.Ops {
		op := &e.Ops[i]
		if op.Kind != storage.OpSet {
			continue
		}
		if kind, name, ok := parseInternal(op.Key); ok && kind == kindOrigin {
			out = append(out, origin{site: name, lsn: parseU64(op.Value)})
		}
	}
	return out
}

// applyRemote merges entries pulled from site `from` into this site's
// state, in one transaction: every record merges with the local one
// (a join, so an entry that arrives twice, by two paths, changes nothing
// the second time), origin positions rise, conflicts are recorded, and
// the link's cursor moves to scanned.
func (e *Engine) applyRemote(tx lsnTxn, from string, entries []storage.Entry, scanned uint64, nowMs int64) error {
	pos := map[string]uint64{}
	posOf := func(site string) (uint64, error) {
		if p, ok := pos[site]; ok {
			return p, nil
		}
		v, ok, err := tx.Get(originKey(site))
		if err != nil {
			return 0, err
		}
		var p uint64
		if ok {
			p = parseU64(v.Value)
		}
		pos[site] = p
		return p, nil
	}
	var conflicts []engine.Conflict
	for i := range entries {
		en := &entries[i]
		origins := originsOf(en)
		fresh := false
		for _, o := range origins {
			p, err := posOf(o.site)
			if err != nil {
				return err
			}
			if o.lsn > p && o.site != e.site && crdt.ValidID(o.site) == nil {
				fresh = true
			}
		}
		if !fresh {
			continue
		}
		for j := range en.Ops {
			op := &en.Ops[j]
			if op.Kind != storage.OpSet || IsReserved(op.Key) {
				continue // deletes are local housekeeping; reserved keys are the remote's own state
			}
			remote, err := DecodeRecord(op.Value)
			if err != nil {
				return fmt.Errorf("multileader: record of key %q from site %s (its LSN %d): %w", op.Key, from, en.LSN, err)
			}
			t := &txn{e: e, tx: tx}
			local, err := t.record(op.Key)
			if err != nil {
				return err
			}
			if local.Reg.Stamp.Time.IsZero() && local.Counter.Len() == 0 && local.Coll.IsZero() {
				// The key is absent here: it may have been a tombstone
				// that was collected (gc.go), and this an old copy riding
				// in a batch with fresh entries.
				var keep bool
				if remote, keep, err = dropCollected(remote, posOf); err != nil {
					return err
				}
				if !keep {
					continue
				}
			}
			merged, c := Merge(local, remote)
			e.observe(remote.Top().Time)
			if !merged.Equal(local) {
				tx.Set(op.Key, AppendRecord(nil, merged), 0)
				if merged.Reg.Deleted && (!local.Reg.Deleted || local.Reg.Stamp != merged.Reg.Stamp) {
					tx.Set(tombKey(op.Key), nil, 0)
				}
			}
			if c != nil {
				conflicts = append(conflicts, engine.Conflict{Key: string(op.Key), Site: e.site, ResolvedMs: nowMs,
					Winner: conflictWrite(c.Winner, c.WinnerType), Loser: conflictWrite(c.Loser, c.LoserType)})
			}
		}
		for _, o := range origins {
			if o.site == e.site || crdt.ValidID(o.site) != nil || o.lsn <= pos[o.site] {
				continue
			}
			pos[o.site] = o.lsn
			tx.Set(originKey(o.site), formatU64(o.lsn), 0)
		}
	}
	if len(conflicts) > 0 {
		var n uint64
		if v, ok, err := tx.Get(internalKey(keyConflicts, "")); err != nil {
			return err
		} else if ok {
			n = parseU64(v.Value)
		}
		for _, c := range conflicts {
			n++
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			tx.Set(conflictKey(n), b, 0)
		}
		tx.Set(internalKey(keyConflicts, ""), formatU64(n), 0)
	}
	// The cursor only moves forward.
	if v, ok, err := tx.Get(cursorKey(from)); err != nil {
		return err
	} else if !ok || parseU64(v.Value) < scanned {
		tx.Set(cursorKey(from), formatU64(scanned), 0)
	}
	return nil
}

// dropCollected is what of a remote record may merge into a key that is
// absent here. If this site already applied the write that stamped a
// part (the register's origin LSN, or the collection's top's), that part
// is old: the key held it and a tombstone that was collected replaced
// it, and merging it would bring back what the tombstone deleted. A part
// whose write is new here is kept: it was made after its site applied the
// tombstone (the collection rule, gc.go), so it holds the tombstone's
// clear or nothing older. keep is false when nothing is left to merge.
func dropCollected(remote Record, posOf func(site string) (uint64, error)) (out Record, keep bool, err error) {
	applied := func(site string, lsn uint64) (bool, error) {
		if lsn == 0 {
			return false, nil // unknown write: keep it rather than lose it
		}
		p, err := posOf(site)
		return p >= lsn, err
	}
	regOld, err := applied(remote.Reg.Stamp.Site, remote.Reg.OriginLSN)
	if err != nil {
		return remote, false, err
	}
	var collOld bool
	if !remote.Coll.IsZero() {
		if collOld, err = applied(remote.Coll.Top().Site, remote.CollLSN); err != nil {
			return remote, false, err
		}
	}
	if regOld {
		// An increment made after the delete rides on the old register:
		// keep the increments, drop the register (an INCR does not
		// restamp it).
		remote.Reg = Register{}
	}
	if collOld {
		remote.Coll, remote.CollLSN = crdt.Coll{}, 0
	}
	if (regOld || collOld) && remote.Reg.Stamp.Time.IsZero() && !remote.Counter.Active() && remote.Coll.IsZero() {
		return remote, false, nil
	}
	return remote, true, nil
}

// conflictWrite is one side of a conflict as the conflict log shows it; a
// collection has no one value, so its type stands in for it ("(hash)").
func conflictWrite(r Register, t engine.Type) engine.ConflictWrite {
	v := string(r.Value)
	if t != engine.TypeString {
		v = "(" + t.String() + ")"
	}
	return engine.ConflictWrite{Site: r.Stamp.Site, HLC: r.Stamp.Time.String(), WallMs: r.Stamp.Time.WallMs,
		Value: v, Deleted: r.Deleted}
}

// maxBatchBytes bounds one batch a link server sends.
const maxBatchBytes = 1 << 20

// ServeChanges streams this site's committed log to a pulling site, from
// req.FromLsn on: entries that carry replicated writes, except those
// whose only origin is the caller (they would go straight back).
func (e *Engine) ServeChanges(req *pb.ChangesRequest, stream pb.Peer_ChangesServer) error {
	ctx := stream.Context()
	from := max(req.FromLsn, 1)
	heartbeat := time.NewTicker(time.Second)
	defer heartbeat.Stop()
	for ctx.Err() == nil {
		changed := e.node.Changed()
		first, commit := e.node.LogBounds()
		if from < first && from <= commit {
			return status.Errorf(codes.OutOfRange, "link broken: site %s's log starts at LSN %d, the link asks for %d (raise --log-retention on %s; the data this site missed must be copied by hand)", e.site, first, from, e.site)
		}
		if from <= commit {
			b := &pb.ChangesBatch{Site: e.site, ScannedLsn: from - 1}
			size := 0
			c, err := e.node.ReadCommitted(from, maxBatchBytes, func(en storage.Entry) error {
				b.ScannedLsn = en.LSN
				b.CommitTime = en.Time
				origins := originsOf(&en)
				ship := false
				for _, o := range origins {
					if o.site != req.Site {
						ship = true
					}
				}
				if ship {
					raw := storage.AppendEntry(nil, &en)
					size += len(raw)
					b.Entries = append(b.Entries, raw)
				}
				return nil
			})
			if err != nil {
				return err
			}
			b.CommitLsn = c
			b.Knowledge = e.knowledgeNow(ctx)
			if err := stream.Send(b); err != nil {
				return err
			}
			from = b.ScannedLsn + 1
			continue
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-heartbeat.C:
			if err := stream.Send(&pb.ChangesBatch{Site: e.site, CommitLsn: commit, ScannedLsn: from - 1, Knowledge: e.knowledgeNow(ctx)}); err != nil {
				return err
			}
		case <-time.After(100 * time.Millisecond): // the role may change without closing changed
		}
	}
	return ctx.Err()
}
