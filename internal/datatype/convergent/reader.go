package convergent

import (
	"github.com/replicant-db/replicant/internal/datatype"
	"github.com/replicant-db/replicant/internal/engine"
)

// Reader is the read side of Txn: an engine.Reader over a mode's
// engine.CollReader that package datatype reads collections through.
type Reader struct {
	r  engine.CollReader
	sp space
}

var (
	_ engine.Reader         = (*Reader)(nil)
	_ engine.ReverseScanner = (*Reader)(nil)
	_ engine.Versioned      = versionedReader{}
)

// WrapReader returns the adapter over r when r is a convergent mode's
// reader (engine.CollReader), r itself otherwise. The adapter is an
// engine.Versioned when r is one.
func WrapReader(r engine.Reader, mode string) engine.Reader {
	cr, ok := r.(engine.CollReader)
	if !ok {
		return r
	}
	a := &Reader{r: cr, sp: newSpace(mode, cr.GetColl)}
	if _, ok := r.(engine.Versioned); ok {
		return versionedReader{a}
	}
	return a
}

// Unwrap is the mode's own reader.
func (r *Reader) Unwrap() engine.Reader { return r.r }

func (r *Reader) NowMs() int64        { return r.r.NowMs() }
func (r *Reader) Token() engine.Token { return r.r.Token() }

// Get reads a user key (a collection as the metadata of a virtual id) or
// an element key.
func (r *Reader) Get(key []byte) (engine.Version, bool, error) {
	if engine.IsReserved(key) {
		if id, sub, rest, ok := datatype.ParseElemKey(key); ok {
			v, found, err := r.sp.elemGet(id, sub, rest)
			return engine.Version{Value: v}, found, err
		}
		if datatype.IsOwnerKey(key) {
			return engine.Version{}, false, nil
		}
		return r.r.Get(key)
	}
	v, ok, err := r.r.Get(key)
	if err != nil || !ok || v.Type == engine.TypeString {
		return v, ok, err
	}
	return r.sp.bind(key, v)
}

// Scan lists users' keys as the mode shows them and, from inside the
// element space, the elements of the collections this reader read.
func (r *Reader) Scan(start []byte, fn func(key []byte, v engine.Version) bool) error {
	return r.sp.scan(start, bounded(r.r.Scan), fn)
}

// ScanReverse is Scan in descending order, below end.
func (r *Reader) ScanReverse(end []byte, fn func(key []byte, v engine.Version) bool) error {
	return r.sp.scanReverse(end, bounded(r.r.Scan), fn)
}

type versionedReader struct{ *Reader }

func (v versionedReader) StateLSN() uint64 { return v.r.(engine.Versioned).StateLSN() }

func (v versionedReader) ChangedSince(key []byte, lsn uint64) (bool, error) {
	return v.r.(engine.Versioned).ChangedSince(key, lsn)
}
