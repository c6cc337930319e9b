package multileader

import (
	"context"
	"time"

	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/transport/pb"
)

// Tombstone collection. A DEL leaves a tombstone record so that an older
// write arriving late loses to it on every site. A site may drop a
// tombstone T (written by origin O in its entry at O's LSN p) once
//
//  1. every site has applied O up to p (T is everywhere), and
//  2. this site has applied every write each site Y had made when Y
//     reported (1): a write Y made before it applied T may be older than
//     T and still on its way here, and would come back to life without T;
//     a write Y made after applying T saw T's stamp and is newer anyway.
//
// Sites learn each other's applied vectors from the links (ChangesBatch
// carries the server's knowledge, its own vector and what it heard), so
// the rule works in any topology. Decisions use the vectors heard one
// round earlier, which this site has normally caught up with by then.

// tombstoneOnly reports whether a record is a tombstone and nothing else:
// a deleted register, no live increment, and no collection write newer
// than the delete (the delete cleared everything older). A collection
// written after the delete, even one whose entries are all removed again,
// keeps the key: the rule above names one write whose clear covers all
// the key held, and a field or member removal only covers what its writer
// saw, so a site that had not seen it could bring an older entry back
// after collection.
func tombstoneOnly(r Record) bool {
	return r.Reg.Deleted && !r.Counter.Active() && (r.Coll.IsZero() || !r.Reg.Stamp.Less(r.Coll.Top()))
}

// gcInterval is how often the site leader looks for tombstones to drop.
const gcInterval = 2 * time.Second

// collectible is rule (1) and (2) for a tombstone from origin at
// originLSN, given this site's positions and what every site reported.
// Every site this site knows of (every origin it applied, every site that
// reported) must have reported: an unknown site may still hold old writes.
func collectible(self, origin string, originLSN uint64, pos crdt.Vector, reported map[string]crdt.Vector) bool {
	sites := map[string]bool{self: true, origin: true}
	for s := range pos.All() {
		sites[s] = true
	}
	for s := range reported {
		sites[s] = true
	}
	for y := range sites {
		if y == self {
			if pos.Get(origin) < originLSN {
				return false
			}
			continue
		}
		v, ok := reported[y]
		if !ok || v.Get(origin) < originLSN || pos.Get(y) < v.Get(y) {
			return false
		}
	}
	return true
}

// learn takes in what a remote site knows.
func (e *Engine) learn(k []*pb.SiteVector) {
	e.knowMu.Lock()
	defer e.knowMu.Unlock()
	for _, sv := range k {
		if sv.GetSite() == e.site || crdt.ValidID(sv.GetSite()) != nil {
			continue
		}
		v, err := crdt.ParseVector(sv.GetVector())
		if err != nil {
			continue
		}
		// Each site's vector only grows: keep the largest report.
		e.know[sv.GetSite()] = e.know[sv.GetSite()].Merge(v)
	}
}

// knowledge is what this site tells the sites that pull from it.
func (e *Engine) knowledge(own crdt.Vector) []*pb.SiteVector {
	e.knowMu.Lock()
	defer e.knowMu.Unlock()
	out := []*pb.SiteVector{{Site: e.site, Vector: own.String()}}
	for s, v := range e.know {
		out = append(out, &pb.SiteVector{Site: s, Vector: v.String()})
	}
	return out
}

// knowledgeNow is knowledge with this site's committed positions.
func (e *Engine) knowledgeNow(ctx context.Context) []*pb.SiteVector {
	own, err := e.positions(ctx)
	if err != nil {
		own = crdt.Vector{}
	}
	return e.knowledge(own)
}

// gcLoop drops collectible tombstones while this node leads its site.
func (e *Engine) gcLoop(ctx context.Context) {
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	var prev map[string]crdt.Vector
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !e.node.IsLeader() {
			prev = nil
			continue
		}
		if prev != nil {
			if n, err := e.collect(ctx, prev); err != nil {
				e.log.Warn("tombstone collection", "err", err)
			} else if n > 0 {
				e.log.Debug("tombstones collected", "keys", n)
			}
		}
		e.knowMu.Lock()
		prev = make(map[string]crdt.Vector, len(e.know))
		for s, v := range e.know {
			prev[s] = v
		}
		e.knowMu.Unlock()
	}
}

// collectBatch bounds one collection's entry.
const collectBatch = 512

// collect drops the tombstones that rule (1)+(2) allows, given the
// vectors sites reported one round ago.
func (e *Engine) collect(ctx context.Context, reported map[string]crdt.Vector) (int, error) {
	r, err := e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err != nil {
		return 0, err
	}
	pos, err := positions(r)
	if err != nil {
		return 0, err
	}
	var keys [][]byte
	prefix := internalKey(kindTomb, "")
	err = r.Scan(prefix, func(key []byte, _ engine.Version) bool {
		kind, name, ok := parseInternal(key)
		if !ok || kind != kindTomb {
			return false
		}
		keys = append(keys, []byte(name))
		return len(keys) < collectBatch
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	dropped := 0
	_, err = e.rawWrite(ctx, func(tx lsnTxn) error {
		dropped = 0
		for _, k := range keys {
			v, ok, err := tx.Get(k)
			if err != nil {
				return err
			}
			if !ok {
				tx.Del(tombKey(k))
				continue
			}
			rec, err := DecodeRecord(v.Value)
			if err != nil {
				return err
			}
			if !tombstoneOnly(rec) {
				tx.Del(tombKey(k)) // written again since: not a tombstone any more
				continue
			}
			if collectible(e.site, rec.Reg.Stamp.Site, rec.Reg.OriginLSN, pos, reported) {
				// Physical deletes are this site's housekeeping: a DEL op
				// is never shipped on a link.
				tx.Del(k)
				tx.Del(tombKey(k))
				dropped++
			}
		}
		return nil
	})
	return dropped, err
}

// Tombstones counts the keys that may hold a tombstone not yet collected.
func (e *Engine) Tombstones(ctx context.Context) (int, error) {
	r, err := e.node.Read(ctx, engine.Consistency{Level: engine.LevelEventual}, engine.Token{})
	if err != nil {
		return 0, err
	}
	n := 0
	err = r.Scan(internalKey(kindTomb, ""), func(key []byte, _ engine.Version) bool {
		if kind, _, ok := parseInternal(key); !ok || kind != kindTomb {
			return false
		}
		n++
		return n < 1_000_000
	})
	return n, err
}
