package datadir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/storage"
)

// Epoch is the epoch a restored store's history ends in: the epoch of the
// new cluster's first leader.
const Epoch = 1

// stagingName is where the store is built inside the target directory.
const stagingName = ".restore-incomplete"

// MarkerName is the file, in the data directory, recording the restore.
const MarkerName = "restored-from-backup.json"

// Marker is what MarkerName holds.
type Marker struct {
	From   string        `json:"from"`
	SHA256 string        `json:"sha256"`
	Keys   uint64        `json:"keys"`
	Backup backup.Header `json:"backup"`
	// LSN and Epoch are the restored store's position.
	LSN      uint64    `json:"lsn"`
	Epoch    uint64    `json:"epoch"`
	Restored time.Time `json:"restored"`
}

// ReadMarker returns the marker of data directory dir, or nil if it was
// not restored from a backup.
func ReadMarker(dir string) (*Marker, error) {
	b, err := os.ReadFile(filepath.Join(dir, MarkerName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, MarkerName), err)
	}
	return &m, nil
}

// chunkBytes bounds one install batch.
const chunkBytes = 4 << 20

// Phases reported to RestoreOptions.Progress.
const (
	PhaseVerify  = "verify"
	PhaseInstall = "install"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	From string // the backup file
	Dir  string // the data directory to seed (absent or empty)
	// Progress, if set, is called now and then while the file is read
	// (twice: to verify it, then to install it).
	Progress func(phase string, keys uint64, fileBytes int64)
	Logger   *slog.Logger
}

// RestoreResult describes a finished restore.
type RestoreResult struct {
	Header  backup.Header
	Trailer backup.Trailer
	// LSN and Epoch are the restored store's position: the backup's LSN,
	// in epoch Epoch of the new cluster (0 for an empty backup at LSN 0).
	LSN, Epoch uint64
	Store      string // the store directory created
}

// ModeError refuses a backup of a mode restore does not support.
type ModeError struct{ Mode string }

func (e *ModeError) Error() string {
	return fmt.Sprintf("restore: the backup was taken in %s mode; only single-leader backups can be restored", e.Mode)
}

// Check verifies a backup file without writing anything.
func Check(ctx context.Context, from string, progress func(keys uint64, fileBytes int64)) (backup.Header, backup.Trailer, error) {
	f, err := os.Open(from)
	if err != nil {
		return backup.Header{}, backup.Trailer{}, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	d, err := backup.NewReader(f)
	if err != nil {
		return backup.Header{}, backup.Trailer{}, fmt.Errorf("restore: %s: %w", from, err)
	}
	for {
		if d.Keys()%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return d.Header(), backup.Trailer{}, err
			}
			if progress != nil {
				progress(d.Keys(), d.Offset())
			}
		}
		if _, err := d.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return d.Header(), backup.Trailer{}, fmt.Errorf("restore: %s: %w", from, err)
		}
	}
	if progress != nil {
		progress(d.Keys(), d.Offset())
	}
	return d.Header(), d.Trailer(), nil
}

// Restore seeds o.Dir from o.From. It refuses a directory that holds anything.
func Restore(ctx context.Context, o RestoreOptions) (RestoreResult, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkEmpty(o.Dir); err != nil {
		return RestoreResult{}, err
	}
	report := func(phase string) func(uint64, int64) {
		if o.Progress == nil {
			return nil
		}
		return func(k uint64, b int64) { o.Progress(phase, k, b) }
	}
	h, tr, err := Check(ctx, o.From, report(PhaseVerify))
	if err != nil {
		return RestoreResult{}, err
	}
	if h.Mode != engine.ModeSingleLeader {
		return RestoreResult{}, &ModeError{Mode: h.Mode}
	}
	// Checked again: the directory may have been filled meanwhile.
	if err := checkEmpty(o.Dir); err != nil {
		return RestoreResult{}, err
	}
	created := false
	if _, err := os.Stat(o.Dir); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	staging := filepath.Join(o.Dir, stagingName)
	res, err := install(ctx, o, staging, tr, report(PhaseInstall))
	if err == nil {
		// The marker first: a store without it would start unguarded.
		err = writeMarker(o, res)
	}
	if err == nil {
		res.Store = filepath.Join(o.Dir, "store")
		if err = os.Rename(staging, res.Store); err != nil {
			err = fmt.Errorf("restore: %w", err)
		} else if err = syncDir(o.Dir); err != nil {
			err = fmt.Errorf("restore: %w", err)
		}
	}
	if err != nil {
		// Leave the directory as it was found.
		_ = os.RemoveAll(staging)
		if res.Store != "" {
			_ = os.RemoveAll(res.Store)
		}
		_ = os.Remove(filepath.Join(o.Dir, MarkerName))
		if created {
			_ = os.Remove(o.Dir)
		}
		return RestoreResult{}, err
	}
	o.Logger.Info("restored", "from", o.From, "dir", o.Dir, "lsn", res.LSN, "keys", tr.Keys, "sha256", tr.Hex())
	return res, nil
}

// install builds the store in staging from a second read of the file.
func install(ctx context.Context, o RestoreOptions, staging string, verified backup.Trailer, progress func(uint64, int64)) (RestoreResult, error) {
	f, err := os.Open(o.From)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	d, err := backup.NewReader(f)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %s: %w", o.From, err)
	}
	h := d.Header()
	st, err := storage.Open(staging, storage.Options{Logger: o.Logger})
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = st.Close()
		}
	}()
	if err := st.BeginInstall(); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	var chunk []storage.KV
	size := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := st.InstallChunk(h.LSN, chunk); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		chunk, size = chunk[:0], 0
		if progress != nil {
			progress(d.Keys(), d.Offset())
		}
		return ctx.Err()
	}
	for {
		r, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return RestoreResult{}, fmt.Errorf("restore: reading %s again to install it: %w", o.From, err)
		}
		chunk = append(chunk, storage.KV{Key: r.Key, Value: r.Value, ExpireAt: r.ExpireAt, Type: r.Type})
		size += len(r.Key) + len(r.Value) + 16
		if size >= chunkBytes {
			if err := flush(); err != nil {
				return RestoreResult{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return RestoreResult{}, err
	}
	if d.Trailer() != verified {
		return RestoreResult{}, fmt.Errorf("restore: %s changed while it was restored (SHA-256 %s, verified %s)", o.From, d.Trailer().Hex(), verified.Hex())
	}
	var epochs []storage.EpochStart
	epoch := uint64(0)
	if h.LSN > 0 {
		epochs, epoch = []storage.EpochStart{{Epoch: Epoch, FirstLSN: 1}}, Epoch
	}
	if err := st.FinishInstall(h.LSN, epochs); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	// The node records its mode on first start; recording it here makes a
	// start in another mode fail with the node's own clear error.
	if err := st.PutMeta("mode", []byte(engine.ModeSingleLeader)); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	if err := st.Sync(); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	closed = true
	if err := st.Close(); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: close the store: %w", err)
	}
	return RestoreResult{Header: h, Trailer: verified, LSN: h.LSN, Epoch: epoch}, nil
}

func writeMarker(o RestoreOptions, res RestoreResult) error {
	from, err := filepath.Abs(o.From)
	if err != nil {
		from = o.From
	}
	b, err := json.MarshalIndent(Marker{From: from, SHA256: res.Trailer.Hex(), Keys: res.Trailer.Keys, Backup: res.Header,
		LSN: res.LSN, Epoch: res.Epoch, Restored: time.Now().UTC()}, "", "  ")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	p := filepath.Join(o.Dir, MarkerName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: write %s: %w", p, err)
	}
	return nil
}

// checkEmpty refuses a data directory that holds anything: restoring over
// a node's state would mix two histories.
func checkEmpty(dir string) error {
	if dir == "" {
		return errors.New("restore: no data directory given")
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("restore: %s exists and is not a directory", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, e := range ents {
		if e.Name() == stagingName {
			return fmt.Errorf("restore: %s holds %s, left by an interrupted restore; remove the directory and restore again", dir, stagingName)
		}
	}
	if len(ents) > 0 {
		return fmt.Errorf("restore: refusing to restore into %s: it is not empty (it holds %s); restore into a new directory", dir, ents[0].Name())
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
