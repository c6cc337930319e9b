package datadir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/replication"
	"github.com/replicant-db/replicant/internal/storage"
)

// holdAll is an apply delay no logged entry is old enough for.
const holdAll = 100 * 365 * 24 * time.Hour

// BackupOptions configure Backup.
type BackupOptions struct {
	Dir string // the data directory of a stopped node
	// LSN is the state to back up; 0 means the commit LSN the node
	// recorded, unless Before is set.
	LSN uint64
	// Before, if set, picks the state just before the first committed
	// entry written (by its leader's clock) at or after it, as
	// PostgreSQL's recovery_target_time.
	Before time.Time
	// ClusterCommit is the cluster's commit LSN as the caller learned it
	// (replicant status on the leader): a node records the commit LSN it
	// learns about once a second, so its last commits may be missing from
	// its directory. Entries it holds up to ClusterCommit count as
	// committed.
	ClusterCommit uint64
	// Node names the node in the backup's header (optional: the directory
	// does not record its node's id).
	Node     string
	Progress func(keys uint64, fileBytes int64)
	Logger   *slog.Logger
}

// Target is the state an offline backup holds, and why.
type Target struct {
	LSN, Epoch uint64
	// Next is the first entry after the target that the log holds (LSN 0
	// when none), with its leader's time: what the backup leaves out.
	NextLSN  uint64
	NextTime time.Time
}

// Backup writes a backup of the stopped node's directory o.Dir to out.
func Backup(ctx context.Context, o BackupOptions, out io.Writer) (backup.Header, backup.Trailer, Target, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LSN != 0 && !o.Before.IsZero() {
		return backup.Header{}, backup.Trailer{}, Target{}, errors.New("backup: give an LSN or a time, not both")
	}
	st, err := storage.Open(filepath.Join(o.Dir, "store"), storage.Options{Logger: o.Logger, ApplyDelay: holdAll})
	if err != nil {
		return backup.Header{}, backup.Trailer{}, Target{}, fmt.Errorf("backup: open %s (stop its node first): %w", o.Dir, err)
	}
	defer st.Close()
	if m, err := st.GetMeta("mode"); err != nil {
		return backup.Header{}, backup.Trailer{}, Target{}, fmt.Errorf("backup: %w", err)
	} else if m != nil && string(m) != engine.ModeSingleLeader {
		return backup.Header{}, backup.Trailer{}, Target{}, fmt.Errorf("backup: %s holds %s mode data; backup is supported in single-leader mode only", o.Dir, m)
	}
	tg, err := chooseTarget(st, o)
	if err != nil {
		return backup.Header{}, backup.Trailer{}, Target{}, err
	}
	if tg.LSN > st.State().AppliedLSN {
		if err := st.ApplyUpTo(tg.LSN); err != nil {
			return backup.Header{}, backup.Trailer{}, Target{}, fmt.Errorf("backup: apply the log up to LSN %d: %w", tg.LSN, err)
		}
	}
	now := time.Now()
	h := backup.Header{Mode: engine.ModeSingleLeader, Epoch: tg.Epoch, LSN: tg.LSN, Node: o.Node, Role: "stopped", Created: now.UTC()}
	w, err := backup.NewWriter(out, h)
	if err != nil {
		return h, backup.Trailer{}, tg, err
	}
	// The reader the node's own reads use, at the chosen LSN.
	rd := &replication.Reader{Store: st, LSN: tg.LSN, Epoch: tg.Epoch, ClockMs: now.UnixMilli()}
	var addErr error
	err = rd.Scan(nil, func(k []byte, v engine.Version) bool {
		if addErr = w.AddTyped(k, uint8(v.Type), v.Value, v.ExpireAt); addErr != nil {
			return false
		}
		if keys, n := w.Progress(); keys%4096 == 0 {
			if addErr = ctx.Err(); addErr != nil {
				return false
			}
			if o.Progress != nil {
				o.Progress(keys, n)
			}
		}
		return true
	})
	if err == nil {
		err = addErr
	}
	if err != nil {
		return h, backup.Trailer{}, tg, fmt.Errorf("backup: %w", err)
	}
	tr, err := w.Close()
	return h, tr, tg, err
}

// chooseTarget picks and checks the backup's LSN.
func chooseTarget(st *storage.Store, o BackupOptions) (Target, error) {
	s := st.State()
	s.CommitLSN = max(s.CommitLSN, min(o.ClusterCommit, s.LastLSN))
	tg := Target{LSN: s.CommitLSN}
	switch {
	case o.LSN != 0:
		tg.LSN = o.LSN
	case !o.Before.IsZero():
		lsn, err := lastBefore(st, s, o.Before)
		if err != nil {
			return Target{}, err
		}
		tg.LSN = lsn
	}
	if tg.LSN > s.CommitLSN {
		return Target{}, fmt.Errorf("backup: LSN %d is above the commit LSN %d this node recorded (entries above it may never have committed; "+
			"a node records what it learns about once a second: if the cluster's commit LSN, from replicant status on its leader, is at least %d, pass it as --cluster-commit)",
			tg.LSN, s.CommitLSN, tg.LSN)
	}
	if floor := st.GCFloor(); tg.LSN < floor {
		return Target{}, fmt.Errorf("backup: LSN %d is below %d, where this node has already collected old versions; the earliest state it can back up is LSN %d", tg.LSN, floor, floor)
	}
	tg.Epoch = st.EpochAt(tg.LSN)
	if tg.LSN < s.LastLSN && tg.LSN+1 >= s.FirstLSN {
		e, err := st.Entry(tg.LSN + 1)
		if err != nil {
			return Target{}, fmt.Errorf("backup: %w", err)
		}
		tg.NextLSN, tg.NextTime = e.LSN, time.Unix(0, e.Time)
	}
	return tg, nil
}

// lastBefore is the LSN just before the first committed entry written at
// or after t. Leader clocks of different epochs may disagree a little: the
// first such entry in log order decides, so the backup is a prefix of the
// history that holds no entry written at or after t.
func lastBefore(st *storage.Store, s storage.State, t time.Time) (uint64, error) {
	if s.CommitLSN < s.FirstLSN {
		return 0, fmt.Errorf("backup: the log holds no committed entry to compare with %s", t.Format(time.RFC3339Nano))
	}
	cut := t.UnixNano()
	found, first := uint64(0), true
	var firstTime int64
	stop := errors.New("past the time")
	err := st.ReadLog(s.FirstLSN, s.CommitLSN, 0, func(e storage.Entry) error {
		if first {
			first, firstTime = false, e.Time
		}
		if e.Time >= cut {
			return stop
		}
		found = e.LSN
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return 0, fmt.Errorf("backup: read the log: %w", err)
	}
	if found == 0 {
		// Even the oldest entry kept is not older: the state before it is
		// only known to be older than that entry.
		return 0, fmt.Errorf("backup: the log here starts at LSN %d, written at %s, not before %s; pick an LSN (the earliest is %d)",
			s.FirstLSN, time.Unix(0, firstTime).UTC().Format(time.RFC3339Nano), t.UTC().Format(time.RFC3339Nano), max(st.GCFloor(), s.FirstLSN-1))
	}
	return found, nil
}
