package resp

import (
	"errors"
	"time"

	"github.com/replicant-db/replicant/internal/replication"
	"github.com/replicant-db/replicant/internal/storage"
)

// kv is what a write command's closure runs against: *replication.Txn on
// the write path, or a dry run over committed state.
type kv interface {
	Get(key []byte) (storage.Version, bool, error)
	Set(key, value []byte, expireAtMs int64)
	Del(key []byte)
	FlushAll()
	NowMs() int64
}

var _ kv = (*replication.Txn)(nil)

// errRetry makes the write path drop a proposal whose outcome differs from
// the dry run's (see client.write).
var errRetry = errors.New("resp: outcome changed; retry")

// defaultWriteTimeout bounds a write's retries when the backend's
// configuration does not.
const defaultWriteTimeout = 10 * time.Second

// write runs fn as one write command. On failure it has answered; on
// success the caller writes the reply fn computed (fn must set all its
// results on every run: it may run more than once).
//
// fn first runs as a dry run against the committed state (a linearizable
// read). If it would change nothing, or fails, that is the answer: it
// depends only on committed state, and no log entry is written. Otherwise
// fn runs again on the write path, against the newest state. If there it
// changes nothing or fails (a concurrent, not yet committed write changed
// the outcome) the proposal is dropped and the dry run repeated once that
// write had a moment to commit. So every reply depends on committed state
// only, and every proposal writes an entry.
func (c *client) write(fn func(tx kv) error) bool {
	timeout := c.s.b.Config().WriteTimeout
	if timeout <= 0 {
		timeout = defaultWriteTimeout
	}
	deadline := time.Now().Add(timeout)
	backoff := 500 * time.Microsecond
	for {
		r, err := c.s.b.Read(c.ctx, replication.Consistency{Level: replication.LevelLinearizable}, replication.Token{})
		if err != nil {
			c.backendErr(err)
			return false
		}
		d := &dryRun{r: r, vals: map[string]storage.Version{}}
		if err := fn(d); err != nil {
			c.observeWrite(r.Token())
			c.backendErr(err)
			return false
		}
		if !d.writes {
			c.observeWrite(r.Token())
			return true
		}
		t, err := c.s.b.Write(c.ctx, func(tx *replication.Txn) error {
			rec := &recordingTxn{Txn: tx}
			if err := fn(rec); err != nil || !rec.writes {
				return errRetry
			}
			return nil
		})
		if err == nil {
			c.observeWrite(t)
			return true
		}
		if !errors.Is(err, errRetry) {
			c.backendErr(err)
			return false
		}
		c.s.writeRetries.Add(1)
		if time.Now().After(deadline) {
			c.err("ERR write did not settle: concurrent writes to the same keys kept changing its outcome")
			return false
		}
		select {
		case <-c.ctx.Done():
			c.backendErr(c.ctx.Err())
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 20*time.Millisecond)
	}
}

// observeWrite records the token of a write's outcome.
func (c *client) observeWrite(t replication.Token) {
	c.observe(t)
	if newer(t, c.lastWrite) {
		c.lastWrite = t
	}
}

// recordingTxn notes whether a closure wrote anything.
type recordingTxn struct {
	*replication.Txn
	writes bool
}

func (t *recordingTxn) Set(key, value []byte, expireAtMs int64) {
	t.writes = true
	t.Txn.Set(key, value, expireAtMs)
}

func (t *recordingTxn) Del(key []byte) {
	t.writes = true
	t.Txn.Del(key)
}

func (t *recordingTxn) FlushAll() {
	t.writes = true
	t.Txn.FlushAll()
}

// dryRun evaluates a closure against a reader, with its own writes layered
// on top so that the closure sees them as it would in a Txn.
type dryRun struct {
	r       *replication.Reader
	vals    map[string]storage.Version
	flushed bool
	writes  bool
}

func (d *dryRun) NowMs() int64 { return d.r.NowMs }

func (d *dryRun) Get(key []byte) (storage.Version, bool, error) {
	if v, ok := d.vals[string(key)]; ok {
		if v.Deleted || v.Expired(d.r.NowMs) {
			return storage.Version{}, false, nil
		}
		return v, true, nil
	}
	if d.flushed {
		return storage.Version{}, false, nil
	}
	return d.r.Get(key)
}

func (d *dryRun) Set(key, value []byte, expireAtMs int64) {
	d.writes = true
	d.vals[string(key)] = storage.Version{Value: append([]byte(nil), value...), ExpireAt: expireAtMs}
}

func (d *dryRun) Del(key []byte) {
	d.writes = true
	d.vals[string(key)] = storage.Version{Deleted: true}
}

func (d *dryRun) FlushAll() {
	d.writes = true
	d.flushed = true
	d.vals = map[string]storage.Version{}
}

// writeBlind runs fn, which reads nothing and always writes, straight on
// the write path: with nothing to read there is no outcome a dry run could
// decide, so it is skipped (the hot path of plain SET).
func (c *client) writeBlind(fn func(tx kv)) bool {
	t, err := c.s.b.Write(c.ctx, func(tx *replication.Txn) error {
		fn(tx)
		return nil
	})
	if err != nil {
		c.backendErr(err)
		return false
	}
	c.observeWrite(t)
	return true
}
