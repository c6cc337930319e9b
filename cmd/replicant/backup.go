package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicant-db/replicant/client"
	"github.com/replicant-db/replicant/internal/api/httpapi"
	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/backup/datadir"
)

// progressEvery is how often backup and restore report progress on stderr.
const progressEvery = time.Second

func newBackupCmd() *cobra.Command {
	var cf clientFlags
	var to, token, data, id, before string
	var lsn, clusterCommit uint64
	cmd := &cobra.Command{
		Use:   "backup --to FILE",
		Short: "Save a consistent backup of a node's data (leader or follower) to FILE",
		Long: `Streams a consistent backup of the data at one point of the replicated
history from the node at --addr while it keeps serving: on the leader at its
commit LSN, on a follower at what it has applied (a delayed replica's backup
is as old as its delay). The file records that EPOCH:LSN, the source node and
a SHA-256 checksum, which is verified before the file is kept. Restore it
with 'replicant restore'.

With --data DIR it reads the data directory of a STOPPED node instead, at its
commit LSN or at an earlier point: --lsn N, or --before TIME (the last entry
written before TIME). Stopping a delayed replica (--apply-delay) before it
applies a bad write and backing it up --before that write is point-in-time
recovery (docs/backup.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return &usageError{cmd: cmd, err: errors.New("--to FILE is required")}
			}
			if data == "" {
				for _, f := range []string{"lsn", "before", "id", "cluster-commit"} {
					if cmd.Flags().Changed(f) {
						return &usageError{cmd: cmd, err: fmt.Errorf("--%s applies to a stopped node's --data DIR", f)}
					}
				}
				return writeBackup(to, cmd.OutOrStdout(), func(f *os.File) (string, error) {
					return streamBackup(cmd.Context(), cf, token, f, cmd.ErrOrStderr())
				})
			}
			if cmd.Flags().Changed("addr") || token != "" {
				return &usageError{cmd: cmd, err: errors.New("--data reads a stopped node's directory: --addr and --token do not apply")}
			}
			o := datadir.BackupOptions{Dir: data, LSN: lsn, Node: id, ClusterCommit: clusterCommit}
			if before != "" {
				t, err := time.Parse(time.RFC3339Nano, before)
				if err != nil {
					return &usageError{cmd: cmd, err: fmt.Errorf("--before %q: want an RFC 3339 time such as 2026-11-30T14:03:00Z", before)}
				}
				o.Before = t
			}
			return writeBackup(to, cmd.OutOrStdout(), func(f *os.File) (string, error) {
				return offlineBackup(cmd.Context(), o, f, cmd.ErrOrStderr())
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "file to write (must not exist)")
	cmd.Flags().StringVar(&token, "token", "", "EPOCH:LSN the backup must include at least (with --consistency session)")
	cmd.Flags().StringVar(&data, "data", "", "back up this STOPPED node's data directory instead of asking a running node")
	cmd.Flags().Uint64Var(&lsn, "lsn", 0, "with --data: back up the state at this LSN (default: the node's commit LSN)")
	cmd.Flags().StringVar(&before, "before", "", "with --data: back up the state before the first entry written at or after this RFC 3339 time")
	cmd.Flags().StringVar(&id, "id", "", "with --data: the stopped node's id, recorded in the backup")
	cmd.Flags().Uint64Var(&clusterCommit, "cluster-commit", 0, "with --data: the cluster's commit LSN (replicant status on its leader), when it is past what the stopped node recorded")
	cf.register(cmd)
	return cmd
}

// writeBackup creates FILE through fill, which writes a backup into the
// file it is given and returns a summary of it. The file is written aside
// and renamed once complete and verified: FILE is never a partial or
// damaged backup.
func writeBackup(to string, stdout io.Writer, fill func(*os.File) (string, error)) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("%s exists; choose another name or remove it first", to)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(to), "."+filepath.Base(to)+".*.part")
	if err != nil {
		return err
	}
	kept := false
	defer func() {
		if !kept {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	summary, err := fill(f)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", to, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", to, err)
	}
	if err := os.Rename(f.Name(), to); err != nil {
		return err
	}
	kept = true
	if dir, err := os.Open(filepath.Dir(to)); err == nil {
		_ = dir.Sync() // the rename survives a crash
		dir.Close()
	}
	fmt.Fprintf(stdout, "%swritten to %s\n", summary, to)
	return nil
}

// offlineBackup writes a stopped node's backup into f and reads it back.
func offlineBackup(ctx context.Context, o datadir.BackupOptions, f *os.File, stderr io.Writer) (string, error) {
	start := time.Now()
	p := progressPrinter(stderr, "backup")
	o.Progress = func(k uint64, n int64) { p("read", k, n) }
	h, tr, tg, err := datadir.Backup(ctx, o, f)
	if err != nil {
		return "", err
	}
	// What is on the disk is what counts: read it back.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, got, err := backup.Verify(f); err != nil || got != tr {
		return "", fmt.Errorf("backup: the file written does not read back intact: %v", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "backup: %d keys, %s in %.1fs, checksum verified\n", tr.Keys, sizeText(fi.Size()), time.Since(start).Seconds())
	s := fmt.Sprintf("backup of %s in %s at epoch %d, LSN %d: %d keys, %s, sha256 %s\n",
		sourceText(h), o.Dir, h.Epoch, h.LSN, tr.Keys, sizeText(fi.Size()), tr.Hex())
	if tg.NextLSN != 0 {
		s += fmt.Sprintf("not in it: LSN %d (written %s) and later\n", tg.NextLSN, tg.NextTime.UTC().Format(time.RFC3339Nano))
	}
	return s, nil
}

// streamBackup streams a running node's backup into f, verifying it as it
// arrives.
func streamBackup(ctx context.Context, cf clientFlags, token string, f *os.File, stderr io.Writer) (string, error) {
	resp, err := requestBackup(ctx, cf, token)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	fmt.Fprintf(stderr, "backup: streaming from %s at epoch %s, LSN %s\n", cf.addr,
		resp.Header.Get(httpapi.HeaderBackupEpoch), resp.Header.Get(httpapi.HeaderBackupLSN))
	d, err := backup.NewReader(io.TeeReader(resp.Body, f))
	if err != nil {
		return "", backupFailed(resp, err)
	}
	start, last := time.Now(), time.Now()
	for {
		_, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", backupFailed(resp, err)
		}
		if time.Since(last) >= progressEvery {
			last = time.Now()
			fmt.Fprintf(stderr, "backup: %d keys, %s\n", d.Keys(), sizeText(d.Offset()))
		}
	}
	h, tr := d.Header(), d.Trailer()
	fmt.Fprintf(stderr, "backup: %d keys, %s in %.1fs, checksum verified\n", tr.Keys, sizeText(d.Offset()), time.Since(start).Seconds())
	return fmt.Sprintf("backup of %s at epoch %d, LSN %d: %d keys, %s, sha256 %s\n",
		sourceText(h), h.Epoch, h.LSN, tr.Keys, sizeText(d.Offset()), tr.Hex()), nil
}

// backupHTTP has no overall timeout: a backup takes as long as the data
// takes to stream; ctx (Ctrl-C) ends it.
var backupHTTP = &http.Client{CheckRedirect: nodeHTTP.CheckRedirect}

func requestBackup(ctx context.Context, cf clientFlags, token string) (*http.Response, error) {
	base := cf.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/backup", nil)
	if err != nil {
		return nil, err
	}
	if cf.consistency != "" {
		req.Header.Set(httpapi.HeaderConsistency, cf.consistency)
	}
	if token != "" {
		req.Header.Set(httpapi.HeaderToken, token)
	}
	if cf.password != "" {
		req.Header.Set("Authorization", "Bearer "+cf.password)
	}
	resp, err := backupHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		msg := strings.TrimSpace(string(data))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, fmt.Errorf("backup: %w", &client.StatusError{Code: resp.StatusCode, Message: msg})
	}
	return resp, nil
}

// backupFailed explains a stream that did not verify, with the node's own
// reason when it sent one.
func backupFailed(resp *http.Response, err error) error {
	// The trailer is only there once the body was read to its end.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if why := resp.Trailer.Get(httpapi.HeaderBackupError); why != "" {
		return fmt.Errorf("backup failed on the node: %s (%w)", why, err)
	}
	return fmt.Errorf("backup: %w; nothing was kept", err)
}

func sourceText(h backup.Header) string {
	switch {
	case h.Role == "follower" && h.Leader != "":
		return fmt.Sprintf("%s (follower of %s)", h.Node, h.Leader)
	case h.Role == "stopped" && h.Node == "":
		return "a stopped node"
	case h.Role != "":
		return fmt.Sprintf("%s (%s)", h.Node, h.Role)
	}
	return h.Node
}

// sizeText renders n bytes as the size units users read (1.5 MB).
func sizeText(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

func newRestoreCmd() *cobra.Command {
	var from, data, id string
	var check bool
	cmd := &cobra.Command{
		Use:   "restore --from FILE --data DIR",
		Short: "Seed a new node's data directory from a backup (it then starts a new cluster)",
		Long: `Verifies the backup (structure and SHA-256), then writes its data into
DIR, which must be absent or empty. 'replicant server --data DIR' then starts
a NEW cluster holding exactly that data: the node must be the first member of
--initial-cluster (the first leader); members started with empty directories
receive the data from it as a snapshot. Only single-leader backups can be
restored. --check only verifies the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return &usageError{cmd: cmd, err: errors.New("--from FILE is required")}
			}
			if check {
				return runRestoreCheck(cmd.Context(), from, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if data == "" {
				if !cmd.Flags().Changed("id") {
					return &usageError{cmd: cmd, err: errors.New("--data DIR is required (or --id ID for data/ID, as the server's default)")}
				}
				data = "data/" + id
			}
			return runRestore(cmd.Context(), from, data, id, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup file to restore")
	cmd.Flags().StringVar(&data, "data", "", "data directory to create (absent or empty); default data/<id>")
	cmd.Flags().StringVar(&id, "id", "n1", "id of the node that will run on the directory (for the default --data and the start command printed)")
	cmd.Flags().BoolVar(&check, "check", false, "only verify the file and print what it holds")
	return cmd
}

// progressPrinter prints at most one progress line per progressEvery.
func progressPrinter(w io.Writer, what string) func(phase string, keys uint64, n int64) {
	last := time.Now()
	return func(phase string, keys uint64, n int64) {
		if time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "%s: %s: %d keys, %s\n", what, phase, keys, sizeText(n))
	}
}

func runRestoreCheck(ctx context.Context, from string, stdout, stderr io.Writer) error {
	p := progressPrinter(stderr, "check")
	h, tr, err := datadir.Check(ctx, from, func(k uint64, n int64) { p(datadir.PhaseVerify, k, n) })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: intact\nsource: %s, %s mode, epoch %d, LSN %d, taken %s\ncontents: %d keys, %s of keys and values, sha256 %s\n",
		from, sourceText(h), h.Mode, h.Epoch, h.LSN, h.Created.Format(time.RFC3339), tr.Keys, sizeText(int64(tr.Bytes)), tr.Hex())
	return nil
}

func runRestore(ctx context.Context, from, data, id string, stdout, stderr io.Writer) error {
	res, err := datadir.Restore(ctx, datadir.RestoreOptions{From: from, Dir: data, Progress: progressPrinter(stderr, "restore")})
	if err != nil {
		return err
	}
	h := res.Header
	fmt.Fprintf(stdout, "restored %d keys into %s from the backup of %s at epoch %d, LSN %d (sha256 %s)\n",
		res.Trailer.Keys, data, sourceText(h), h.Epoch, h.LSN, res.Trailer.Hex())
	fmt.Fprintf(stdout, `The directory starts a NEW cluster at LSN %d (epoch %d; its log continues at LSN %d).
Start it as the first member of --initial-cluster, e.g.
  replicant server --id %s --data %s --peer PEERADDR --initial-cluster %s=PEERADDR[,n2=…]
Members listed after it start with empty directories and receive the data as a snapshot.
Tokens of the old cluster mean nothing to the new one: drop them.
`, res.LSN, res.Epoch, res.LSN+1, id, data, id)
	return nil
}
