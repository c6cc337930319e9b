package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/replicant-db/replicant/internal/replication"
	"github.com/replicant-db/replicant/internal/storage"
)

// Defaults for the Contract's limits.
const (
	DefaultMaxKeySize   = 64 << 10
	DefaultMaxValueSize = 16 << 20
)

// Config configures a node.
type Config struct {
	ID       string
	DataDir  string
	RESPAddr string
	HTTPAddr string
	PeerAddr string

	MaxKeySize   int
	MaxValueSize int
	RequirePass  string
	// ReadTimeout bounds how long a read waits for a token's LSN.
	ReadTimeout time.Duration
	// ExpiryInterval is how often the active expirer runs (default 100ms).
	ExpiryInterval time.Duration
	// GCInterval is how often old versions are collected (default 30s).
	GCInterval time.Duration
	Logger     *slog.Logger
}

// Node is a running replicant node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	store   *storage.Store
	writer  *replication.Writer
	metrics *Metrics
	started time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens the data directory and starts the node's background work.
func Open(cfg Config) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("node: --id is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("node: --data is required")
	}
	if cfg.MaxKeySize <= 0 {
		cfg.MaxKeySize = DefaultMaxKeySize
	}
	if cfg.MaxValueSize <= 0 {
		cfg.MaxValueSize = DefaultMaxValueSize
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.ExpiryInterval <= 0 {
		cfg.ExpiryInterval = 100 * time.Millisecond
	}
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("node", cfg.ID)
	st, err := storage.Open(cfg.DataDir, storage.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n := &Node{cfg: cfg, log: log, store: st, started: time.Now()}
	n.metrics = newMetrics(n)
	epoch := st.State().LastEpoch
	if epoch == 0 {
		epoch = 1
	}
	n.writer = replication.NewWriter(replication.WriterConfig{
		Store:   st,
		Epoch:   epoch,
		Logger:  log,
		OnBatch: n.metrics.observeBatch,
	})
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(2)
	go n.expireLoop(ctx)
	go n.gcLoop(ctx)
	log.Info("node started", "data", cfg.DataDir, "epoch", epoch, "last_lsn", st.State().LastLSN)
	return n, nil
}

// Close stops background work and the write path, then closes the store.
func (n *Node) Close() error {
	n.cancel()
	n.wg.Wait()
	n.writer.Close()
	if err := n.store.SetCommitLSN(n.writer.CommitLSN()); err != nil && !errors.Is(err, storage.ErrClosed) {
		n.log.Warn("record commit LSN at shutdown", "err", err)
	}
	if err := n.store.Sync(); err != nil {
		n.log.Warn("final sync", "err", err)
	}
	return n.store.Close()
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Store exposes the store (for status and tests).
func (n *Node) Store() *storage.Store { return n.store }

// Registry is the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }

// IsLeader reports whether this node accepts writes.
func (n *Node) IsLeader() bool { return true }

// Write runs fn on the leader's write path and returns the token of the
// committed result. Keys and values are checked against the limits first.
func (n *Node) Write(ctx context.Context, fn func(*replication.Txn) error) (replication.Token, error) {
	start := time.Now()
	tok, err := n.writer.Propose(ctx, fn)
	n.metrics.writeLatency.Observe(time.Since(start).Seconds())
	return tok, err
}

// CheckKey returns a *replication.LimitError if key is too large.
func (n *Node) CheckKey(key []byte) error {
	if len(key) > n.cfg.MaxKeySize {
		return &replication.LimitError{What: "key", Size: len(key), Limit: n.cfg.MaxKeySize}
	}
	return nil
}

// CheckValue returns a *replication.LimitError if value is too large.
func (n *Node) CheckValue(size int) error {
	if size > n.cfg.MaxValueSize {
		return &replication.LimitError{What: "value", Size: size, Limit: n.cfg.MaxValueSize}
	}
	return nil
}

// Read returns a reader at the freshest state this node may show for the
// consistency level, no older than floor.
func (n *Node) Read(ctx context.Context, c replication.Consistency, floor replication.Token) (*replication.Reader, error) {
	lsn := n.writer.CommitLSN()
	if floor.LSN > lsn {
		// On the leader every acknowledged write is at or below the commit
		// LSN, so a token above it was issued by another history.
		return nil, fmt.Errorf("%w: token %s is ahead of this node's commit LSN %d", replication.ErrStale, floor, lsn)
	}
	if floor.LSN > 0 {
		if ep := n.store.EpochAt(floor.LSN); ep != 0 && ep != floor.Epoch {
			return nil, fmt.Errorf("%w: token %s, but LSN %d here has epoch %d", replication.ErrLostWrite, floor, floor.LSN, ep)
		}
	}
	return &replication.Reader{Store: n.store, LSN: lsn, Epoch: n.store.EpochAt(lsn), NowMs: time.Now().UnixMilli()}, nil
}

// Token returns the token of the node's current read state.
func (n *Node) Token() replication.Token {
	lsn := n.writer.CommitLSN()
	return replication.Token{Epoch: n.store.EpochAt(lsn), LSN: lsn}
}

// expireLoop actively deletes expired keys through the log, so replicas
// expire keys in the same order as the leader.
func (n *Node) expireLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			more, err := n.expireOnce(ctx, 256)
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("active expiry", "err", err)
				}
				break
			}
			if !more {
				break
			}
		}
	}
}

// expireOnce handles up to limit due expiry records; it reports whether
// there may be more.
func (n *Node) expireOnce(ctx context.Context, limit int) (bool, error) {
	recs, err := n.store.Expiring(time.Now().UnixMilli(), limit)
	if err != nil || len(recs) == 0 {
		return false, err
	}
	deleted := 0
	_, err = n.Write(ctx, func(tx *replication.Txn) error {
		deleted = 0
		for _, r := range recs {
			// Only the version the record names, and only if it is still
			// the current one: a newer SET may have replaced it.
			_, ok, err := tx.Get(r.Key)
			if err != nil {
				return err
			}
			if ok {
				continue // present and not expired at tx time: a newer version
			}
			cur, exists, err := n.store.Get(r.Key, storage.Latest)
			if err != nil {
				return err
			}
			if exists && cur.LSN == r.LSN && cur.Expired(tx.NowMs()) {
				tx.Del(r.Key)
				deleted++
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	n.metrics.expired.Add(float64(deleted))
	if err := n.store.DropExpiring(recs); err != nil {
		return false, err
	}
	return len(recs) == limit, nil
}

func (n *Node) gcLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.GCInterval)
	defer t.Stop()
	prevCommit := uint64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Readers read at the commit LSN of the moment they start and live
		// far shorter than GCInterval, so the commit LSN of the previous
		// tick is a floor no reader is still below.
		floor := prevCommit
		prevCommit = n.writer.CommitLSN()
		if floor == 0 {
			continue
		}
		removed, err := n.store.GC(floor)
		if err != nil {
			n.log.Warn("version gc", "err", err)
			continue
		}
		n.metrics.gcRemoved.Add(float64(removed))
	}
}

// Ready reports whether the node can serve: nil once it is up (a follower
// later also requires being caught up).
func (n *Node) Ready() error { return nil }
