package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/replicant-db/replicant/internal/backup"
	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

func TestBackupHoldsTheStateAtItsToken(t *testing.T) {
	e := startEnv(t, nil)
	want := map[string]string{}
	for i := range 50 {
		k, v := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i)
		e.put(t, "/v1/kv/"+k, []byte(v))
		want[k] = v
	}
	if r := e.do(t, http.MethodDelete, "/v1/kv/k07", nil, nil); r.code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.code, r.body)
	}
	delete(want, "k07")
	last := e.put(t, "/v1/kv/k01", []byte("again"))
	want["k01"] = "again"

	r := e.do(t, http.MethodGet, "/v1/backup", nil, nil)
	if r.code != http.StatusOK || r.header.Get("Content-Type") != BackupContentType {
		t.Fatalf("GET /v1/backup: %d %s %s", r.code, r.header.Get("Content-Type"), r.body)
	}
	// A write after the backup is not in it.
	e.put(t, "/v1/kv/later", []byte("x"))

	d, err := backup.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	h := d.Header()
	if h.Mode != engine.ModeSingleLeader || h.Node != "n1" || h.Role != "leader" || h.LSN < last.token.LSN ||
		h.Epoch != r.token.Epoch || h.LSN != r.token.LSN || r.header.Get(HeaderBackupLSN) != fmt.Sprint(h.LSN) {
		t.Fatalf("header %+v, response token %s, last write %s, LSN header %s", h, r.token, last.token, r.header.Get(HeaderBackupLSN))
	}
	got := map[string]string{}
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[string(rec.Key)] = string(rec.Value)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("backup holds %v\nwant %v", got, want)
	}
}

func TestBackupRequiresAuth(t *testing.T) {
	e := startEnv(t, func(c *node.Config) { c.RequirePass = "s3cret" })
	if r := e.do(t, http.MethodGet, "/v1/backup", nil, nil); r.code != http.StatusUnauthorized {
		t.Fatalf("without a password: %d %s", r.code, r.body)
	}
	if r := e.do(t, http.MethodGet, "/v1/backup", nil, map[string]string{"Authorization": "Bearer s3cret"}); r.code != http.StatusOK {
		t.Fatalf("with the password: %d %s", r.code, r.body)
	}
}

func TestBackupRefusedOutsideSingleLeader(t *testing.T) {
	for _, mode := range []string{engine.ModeMultiLeader, engine.ModeLeaderless} {
		rec := serveFake(t, newFakeEngine(mode, "", ""), http.MethodGet, "/v1/backup", "", nil)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), mode+" mode") {
			t.Errorf("%s: %d %s", mode, rec.Code, rec.Body)
		}
	}
}

// failingReader yields keys of valueSize bytes, then fails as a store read
// can.
type failingReader struct{ valueSize int }

func (failingReader) Get([]byte) (engine.Version, bool, error) { return engine.Version{}, false, nil }
func (failingReader) Token() engine.Token                      { return engine.Token{Epoch: 2, LSN: 40} }
func (failingReader) NowMs() int64                             { return 0 }
func (f failingReader) Scan(_ []byte, fn func([]byte, engine.Version) bool) error {
	fn([]byte("a"), engine.Version{Value: bytes.Repeat([]byte("1"), f.valueSize)})
	fn([]byte("b"), engine.Version{Value: bytes.Repeat([]byte("2"), f.valueSize)})
	return errors.New("storage: disk read error")
}

type failingEngine struct {
	*fakeEngine
	valueSize int
}

func (f failingEngine) Read(context.Context, engine.Consistency, engine.Token) (engine.Reader, error) {
	return failingReader{f.valueSize}, nil
}

func TestBackupFailureSaysWhy(t *testing.T) {
	t.Run("before anything was sent", func(t *testing.T) {
		rec := serveFake(t, failingEngine{newFakeEngine(engine.ModeSingleLeader, "", ""), 10}, http.MethodGet, "/v1/backup", "", nil)
		if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "disk read error") ||
			rec.Header().Get("Content-Disposition") != "" {
			t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
		}
	})
	t.Run("mid-stream", func(t *testing.T) {
		// Values beyond the writer's buffer: part of the file is out.
		rec := serveFake(t, failingEngine{newFakeEngine(engine.ModeSingleLeader, "", ""), 100 << 10}, http.MethodGet, "/v1/backup", "", nil)
		res := rec.Result()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", res.StatusCode, rec.Body)
		}
		// The file ends without a trailer, and the HTTP trailer says why.
		if _, _, err := backup.Verify(rec.Body); !errors.Is(err, backup.ErrTruncated) {
			t.Fatalf("verify: %v, want truncated", err)
		}
		if msg := res.Trailer.Get(HeaderBackupError); !strings.Contains(msg, "disk read error") {
			t.Fatalf("trailer %s = %q", HeaderBackupError, msg)
		}
	})
}
