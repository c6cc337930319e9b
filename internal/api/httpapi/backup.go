package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/engine"
)

// Response headers of GET /v1/backup. The error is an HTTP trailer: the
// status line is long gone when a scan fails mid-stream, and without it a
// client would only see a file that ends before its trailer.
const (
	HeaderBackupLSN   = "Replicant-Backup-Lsn"
	HeaderBackupEpoch = "Replicant-Backup-Epoch"
	HeaderBackupError = "Replicant-Backup-Error"
)

// BackupContentType is the media type of a backup file.
const BackupContentType = "application/vnd.replicant.backup"

// backup streams a consistent backup of this node's state (GET /v1/backup,
// as etcd's snapshot save or rqlite's /db/backup). It reads at the
// position a read with the request's consistency would see: on the leader
// its commit LSN (lease-checked by default), on a follower what it has
// applied; the header names that EPOCH:LSN. One store iterator serves the
// whole scan, the same consistent view a follower's snapshot stream uses,
// so writes go on meanwhile and are not in the file.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := s.b.Status()
	if st.Mode != engine.ModeSingleLeader {
		writeError(w, http.StatusConflict, fmt.Errorf("backup is supported in single-leader mode only; this node runs %s mode", st.Mode))
		return
	}
	c, floor, err := readParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rd, err := s.b.Read(r.Context(), c, floor)
	if err != nil {
		s.record("backup", start, err)
		s.writeOpError(w, r, err)
		return
	}
	tok := rd.Token()
	id := s.b.Settings().ID
	h := backup.Header{Mode: st.Mode, Epoch: tok.Epoch, LSN: tok.LSN, Node: id, Role: st.Role, Leader: st.Leader, Created: start.UTC()}
	s.setToken(w, tok)
	hdr := w.Header()
	hdr.Set("Content-Type", BackupContentType)
	hdr.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="replicant-%s-%d-%d.backup"`, id, tok.Epoch, tok.LSN))
	hdr.Set(HeaderBackupLSN, fmt.Sprint(tok.LSN))
	hdr.Set(HeaderBackupEpoch, fmt.Sprint(tok.Epoch))
	hdr.Set("Trailer", HeaderBackupError)
	s.log.Info("backup started", "remote", r.RemoteAddr, "epoch", tok.Epoch, "lsn", tok.LSN, "role", st.Role)
	cw := &countingWriter{w: w}
	bw, err := backup.NewWriter(cw, h)
	var tr backup.Trailer
	if err == nil {
		var addErr error
		err = rd.Scan(nil, func(k []byte, v engine.Version) bool {
			addErr = bw.AddTyped(k, uint8(v.Type), v.Value, v.ExpireAt)
			return addErr == nil
		})
		if err == nil {
			err = addErr
		}
	}
	if err == nil {
		tr, err = bw.Close()
	}
	s.record("backup", start, err)
	el := time.Since(start)
	if err != nil {
		keys, sent := uint64(0), int64(0)
		if bw != nil {
			keys, sent = bw.Progress()
		}
		if cw.n == 0 {
			// Nothing sent yet (the writer buffers): a plain error answer.
			for _, k := range []string{"Content-Disposition", HeaderBackupLSN, HeaderBackupEpoch, "Trailer"} {
				hdr.Del(k)
			}
			s.writeOpError(w, r, err)
		} else {
			hdr.Set(HeaderBackupError, err.Error())
		}
		s.log.Warn("backup failed", "remote", r.RemoteAddr, "lsn", tok.LSN, "keys", keys, "bytes", sent, "seconds", el.Seconds(), "err", err)
		return
	}
	_, sent := bw.Progress()
	s.log.Info("backup sent", "remote", r.RemoteAddr, "epoch", tok.Epoch, "lsn", tok.LSN, "keys", tr.Keys, "bytes", sent,
		"seconds", el.Seconds(), "sha256", tr.Hex())
}

// countingWriter tells whether any of the response went out.
type countingWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
