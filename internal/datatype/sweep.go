package datatype

import (
	"bytes"
	"context"
	"encoding/binary"

	"github.com/replicant-db/replicant/internal/engine"
)

// Sweeper deletes the elements of collections whose key no longer holds
// them: deleted (DEL, or a write that emptied the collection leaves none,
// but DEL of a non-empty one leaves all), overwritten (SET), expired, or
// renamed away and replaced. Deleting them when the key goes would make
// DEL of a large collection, and the active expirer, O(elements) on the
// write path; instead the key goes in O(1) and its elements, invisible from
// then on (every read starts at the metadata), are deleted here in bounded
// batches through the same write path, so every replica drops them in the
// leader's order.
type Sweeper struct {
	// Write runs fn on the leader's write path (one log entry).
	Write func(ctx context.Context, fn func(engine.Txn) error) error
	// Read returns a recent state to find candidates in.
	Read func(ctx context.Context) (Scanner, error)
	// Batch bounds the keys one write deletes (default 1024).
	Batch int
}

// Pass finds up to limit swept ids and deletes their elements; it returns
// the number of element keys deleted and whether more ids may await.
func (s *Sweeper) Pass(ctx context.Context, limit int) (deleted int, more bool, err error) {
	r, err := s.Read(ctx)
	if err != nil {
		return 0, false, err
	}
	var ids []uint64
	prefix := ownerKey(0)[:len(engine.ReservedPrefix)+1]
	var scanErr error
	err = r.Scan(prefix, func(k []byte, v engine.Version) bool {
		if !bytes.HasPrefix(k, prefix) {
			return false
		}
		if len(k) != len(prefix)+8 {
			return true // not ours: leave it
		}
		id := binary.BigEndian.Uint64(k[len(prefix):])
		live, err := holds(r, v.Value, id)
		if err != nil {
			scanErr = err
			return false
		}
		if !live {
			ids = append(ids, id)
		}
		return len(ids) < limit
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return 0, false, err
	}
	batch := s.Batch
	if batch <= 0 {
		batch = 1024
	}
	for _, id := range ids {
		for {
			if err := ctx.Err(); err != nil {
				return deleted, true, err
			}
			n, done, err := s.sweepOne(ctx, id, batch)
			deleted += n
			if err != nil {
				return deleted, true, err
			}
			if done {
				break
			}
		}
	}
	return deleted, len(ids) == limit, nil
}

// holds reports whether key (an owner record's value) still holds the
// collection id.
func holds(g Getter, key []byte, id uint64) (bool, error) {
	v, ok, err := g.Get(key)
	if err != nil || !ok || v.Type == engine.TypeString {
		return false, err
	}
	m, err := DecodeMeta(v.Value)
	if err != nil {
		// A corrupt metadata record is not evidence that its elements
		// are garbage: keep them.
		return true, nil
	}
	return m.ID == id, nil
}

// sweepOne deletes up to batch elements of id, deciding again on the
// newest state (the key may hold the id again only if it was renamed back,
// which re-records the owner; then nothing is deleted).
func (s *Sweeper) sweepOne(ctx context.Context, id uint64, batch int) (deleted int, done bool, err error) {
	err = s.Write(ctx, func(tx engine.Txn) error {
		deleted, done = 0, false
		sc, ok := tx.(Scanner)
		if !ok {
			return ErrUnsupported
		}
		owner, ok, err := tx.Get(ownerKey(id))
		if err != nil {
			return err
		}
		if !ok {
			done = true
			return nil
		}
		if live, err := holds(tx, owner.Value, id); err != nil || live {
			done = true
			return err
		}
		p := idPrefix(id)
		var keys [][]byte
		err = sc.Scan(p, func(k []byte, _ engine.Version) bool {
			if !bytes.HasPrefix(k, p) {
				return false
			}
			keys = append(keys, append([]byte(nil), k...))
			return len(keys) < batch
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			tx.Del(k)
		}
		deleted = len(keys)
		if len(keys) < batch {
			tx.Del(ownerKey(id))
			done = true
		}
		return nil
	})
	return deleted, done, err
}
