package multileader

import (
	"github.com/replicant-db/replicant/internal/crdt"
	"github.com/replicant-db/replicant/internal/engine"
)

// reader shows a site's state as clients see it: records decoded into
// values, deleted and expired keys absent, reserved keys hidden, and a
// vector token of the per-origin positions the state includes.
type reader struct {
	r   engine.Reader
	pos crdt.Vector
}

func (r *reader) NowMs() int64 { return r.r.NowMs() }

func (r *reader) Token() engine.Token { return engine.VectorToken(r.pos) }

func (r *reader) Get(key []byte) (engine.Version, bool, error) {
	if IsReserved(key) {
		return engine.Version{}, false, nil
	}
	v, ok, err := r.r.Get(key)
	if err != nil || !ok {
		return engine.Version{}, false, err
	}
	return r.decode(key, v)
}

func (r *reader) decode(key []byte, v engine.Version) (engine.Version, bool, error) {
	rec, err := DecodeRecord(v.Value)
	if err != nil {
		return engine.Version{}, false, &corruptError{key: key, err: err}
	}
	out, ok := rec.Version(v.LSN, r.NowMs())
	return out, ok, nil
}

// GetColl returns key's collection state, shown or not
// (engine.CollReader). A reserved key has none.
func (r *reader) GetColl(key []byte) (crdt.Coll, error) {
	if IsReserved(key) {
		return crdt.Coll{}, nil
	}
	v, ok, err := r.r.Get(key)
	if err != nil || !ok {
		return crdt.Coll{}, err
	}
	rec, err := DecodeRecord(v.Value)
	if err != nil {
		return crdt.Coll{}, &corruptError{key: key, err: err}
	}
	return rec.Coll, nil
}

func (r *reader) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	var derr error
	err := r.r.Scan(start, func(key []byte, v engine.Version) bool {
		if IsReserved(key) {
			return true
		}
		dv, ok, err := r.decode(key, v)
		if err != nil {
			derr = err
			return false
		}
		if !ok {
			return true
		}
		return fn(key, dv)
	})
	if err != nil {
		return err
	}
	return derr
}

type corruptError struct {
	key []byte
	err error
}

func (e *corruptError) Error() string {
	return "multileader: key " + string(e.key) + ": " + e.err.Error()
}
func (e *corruptError) Unwrap() error { return e.err }

// positions reads the per-origin positions stored in a state.
func positions(r engine.Reader) (crdt.Vector, error) {
	m := map[string]uint64{}
	prefix := internalKey(kindOrigin, "")
	err := r.Scan(prefix, func(key []byte, v engine.Version) bool {
		kind, name, ok := parseInternal(key)
		if !ok || kind != kindOrigin {
			return false
		}
		if crdt.ValidID(name) == nil {
			m[name] = parseU64(v.Value)
		}
		return true
	})
	return crdt.VectorOf(m), err
}

var (
	_ engine.Versioned  = (*reader)(nil)
	_ engine.CollReader = (*reader)(nil)
)

// StateLSN and ChangedSince delegate to the site's reader (see txn).
func (r *reader) StateLSN() uint64 {
	if v, ok := r.r.(engine.Versioned); ok {
		return v.StateLSN()
	}
	return 0
}

func (r *reader) ChangedSince(key []byte, lsn uint64) (bool, error) {
	v, ok := r.r.(engine.Versioned)
	if !ok {
		return true, nil
	}
	return v.ChangedSince(key, lsn)
}
