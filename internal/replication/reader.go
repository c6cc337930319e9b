package replication

import (
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

// Reader reads the key-value state at one LSN, applying expiry at ClockMs.
type Reader struct {
	Store *storage.Store
	LSN   uint64
	Epoch uint64 // epoch of the entry at LSN (0 when LSN is 0)
	// ClockMs is the time expiry is judged at (Unix ms).
	ClockMs int64
}

var _ engine.Reader = (*Reader)(nil)

// NowMs is the time expiry is judged at.
func (r *Reader) NowMs() int64 { return r.ClockMs }

// Token is the token of the state this reader sees.
func (r *Reader) Token() engine.Token { return engine.Token{Epoch: r.Epoch, LSN: r.LSN} }

// Get returns key's live, unexpired version at the reader's LSN.
func (r *Reader) Get(key []byte) (engine.Version, bool, error) {
	v, ok, err := r.Store.Get(key, r.LSN)
	if err != nil || !ok || v.Expired(r.ClockMs) {
		return engine.Version{}, false, err
	}
	return asVersion(v), true, nil
}

// Scan calls fn for live, unexpired keys from start in key order until fn
// returns false.
func (r *Reader) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	return r.Store.Scan(r.LSN, start, func(k []byte, v storage.Version) bool {
		if v.Expired(r.ClockMs) {
			return true
		}
		return fn(k, asVersion(v))
	})
}

var _ engine.Versioned = (*Reader)(nil)

// StateLSN is the LSN the reader reads at.
func (r *Reader) StateLSN() uint64 { return r.LSN }

// ChangedSince reports whether key has a version written after lsn and at
// or below the reader's LSN.
func (r *Reader) ChangedSince(key []byte, lsn uint64) (bool, error) {
	return r.Store.ChangedSince(key, lsn, r.LSN)
}

// KeyCount returns the number of keys at the reader's LSN, and of those
// with an expiry, without visiting them (storage keeps the count). Keys
// whose expiry passed are left out, as reads hide them, unless more than
// storage's bound of them await their deletion: those beyond it still
// count, as Redis's DBSIZE counts expired keys it has not reclaimed.
func (r *Reader) KeyCount() (keys, expires int64, err error) {
	n, _, err := r.Store.UnexpiredKeyCount(r.LSN, r.ClockMs)
	return n.Keys, n.Expires, err
}
