package replication

import (
	"errors"
	"fmt"

	"github.com/replicant-db/replicant/internal/storage"
)

// NotLeaderError is returned for writes (and linearizable reads) sent to a
// node that is not the leader. The fields say where the leader is, if known.
type NotLeaderError struct {
	LeaderID   string
	LeaderRESP string
	LeaderHTTP string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader; leader unknown"
	}
	return fmt.Sprintf("not the leader; leader=%s resp=%s", e.LeaderID, e.LeaderRESP)
}

// ErrStale is returned (wrapped) when a read cannot be served at the
// requested freshness within its timeout.
var ErrStale = errors.New("replica too stale")

// ErrLostWrite is returned (wrapped) when a token names an LSN this node
// holds under a different epoch: the write it names was lost in a failover.
var ErrLostWrite = errors.New("token names a write lost in a failover")

// Reader reads the key-value state at one LSN, applying expiry at NowMs.
type Reader struct {
	Store *storage.Store
	LSN   uint64
	Epoch uint64 // epoch of the entry at LSN (0 when LSN is 0)
	NowMs int64
}

// Token is the token of the state this reader sees.
func (r *Reader) Token() Token { return Token{Epoch: r.Epoch, LSN: r.LSN} }

// Get returns key's live, unexpired version at the reader's LSN.
func (r *Reader) Get(key []byte) (storage.Version, bool, error) {
	v, ok, err := r.Store.Get(key, r.LSN)
	if err != nil || !ok || v.Expired(r.NowMs) {
		return storage.Version{}, false, err
	}
	return v, true, nil
}

// Scan calls fn for live, unexpired keys from start in key order until fn
// returns false.
func (r *Reader) Scan(start []byte, fn func(key []byte, v storage.Version) bool) error {
	return r.Store.Scan(r.LSN, start, func(k []byte, v storage.Version) bool {
		if v.Expired(r.NowMs) {
			return true
		}
		return fn(k, v)
	})
}
