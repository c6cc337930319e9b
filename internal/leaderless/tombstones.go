package leaderless

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicant-db/replicant/internal/engine"
)

// Tombstones. A DEL is a tombstone sibling, ordered against concurrent
// writes and replicated like one. A replica drops a key whose state holds
// only tombstones older than --tombstone-grace (and no live increments):
// by then every replica that was reachable has it (writes, read repair,
// anti-entropy, hints). A replica that comes back after more than the
// grace may bring the deleted value back, as in Cassandra's gc_grace: the
// grace must exceed the longest outage a replica may return from.

// tombstonesOnly reports whether a stored state holds nothing a read
// would show at nowMs: siblings that are all tombstones, no live
// increments, and a collection with no live entry (emptied by
// HDEL/SREM/ZREM, cleared by a DEL or a SET, or expired).
func tombstonesOnly(s State, nowMs int64) bool {
	if s.Counter.Active() || (s.Sibs.Len() == 0 && s.Coll.IsZero()) {
		return false
	}
	for _, x := range s.Sibs.Values() {
		if !x.Deleted {
			return false
		}
	}
	_, _, live := s.Coll.Visible(nowMs)
	return !live
}

// collectable reports whether a state is only tombstones (tombstonesOnly)
// and its newest stamp (a sibling's, or the collection's newest entry,
// removal or clear) is older than the grace at nowMs.
func collectable(s State, nowMs int64, grace time.Duration) bool {
	return tombstonesOnly(s, nowMs) && s.Top().Time.WallMs <= nowMs-grace.Milliseconds()
}

// tombstoneBatch bounds one collection entry.
const tombstoneBatch = 512

// tombstoneLoop drops collectable keys from this node's store.
func (e *Engine) tombstoneLoop(ctx context.Context) {
	every := min(max(e.cfg.TombstoneGrace/10, 100*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := e.collectTombstones(ctx); err != nil {
			e.log.Warn("tombstone collection", "err", err)
		} else if n > 0 {
			e.log.Debug("tombstones collected", "keys", n)
		}
	}
}

// collectTombstones scans the local store and drops what is collectable;
// it also counts the keys that hold only tombstones (the gauge
// replicant_tombstones).
func (e *Engine) collectTombstones(ctx context.Context) (int, error) {
	now := time.Now().UnixMilli()
	var keys [][]byte
	held := int64(0)
	err := e.node.LocalRead().Scan(nil, func(key []byte, v engine.Version) bool {
		if isReserved(key) {
			return true
		}
		st, err := DecodeState(v.Value)
		if err != nil {
			return true
		}
		if tombstonesOnly(st, now) { // whatever their age
			held++
		}
		if len(keys) < tombstoneBatch && collectable(st, now, e.cfg.TombstoneGrace) {
			keys = append(keys, append([]byte(nil), key...))
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	e.tombstonesHeld.Store(held - int64(len(keys)))
	if len(keys) == 0 {
		return 0, nil
	}
	dropped := 0
	_, err = e.node.LocalWrite(ctx, func(tx engine.Txn) error {
		dropped = 0
		for _, k := range keys {
			v, ok, err := tx.Get(k)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if st, err := DecodeState(v.Value); err == nil && collectable(st, now, e.cfg.TombstoneGrace) {
				tx.Del(k)
				dropped++
			}
		}
		return nil
	})
	if err != nil {
		e.tombstonesHeld.Store(held)
	}
	return dropped, err
}

// tombstoneCollector exports replicant_tombstones.
func (e *Engine) tombstoneCollector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "replicant_tombstones",
		Help: "Keys this replica holds only as tombstones (kept for --tombstone-grace)."},
		func() float64 { return float64(e.tombstonesHeld.Load()) })
}

// reservedPrefix starts the keys leaderless mode keeps for itself (hints).
var reservedPrefix = engine.ReservedPrefix

func isReserved(key []byte) bool { return engine.IsReserved(key) }
