package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/internal/engine"
	"github.com/replicant-db/replicant/internal/node"
)

// testMaxValue is small so the limit tests stay fast; 1 MiB is still far
// above anything the other tests write.
const testMaxValue = 1 << 20

type testEnv struct {
	n   *node.Node
	s   *Server
	url string
}

// startEnv opens a real one-node cluster in a temporary directory and serves
// its HTTP API on a loopback httptest server. mut may adjust the node's
// configuration before it opens.
func startEnv(t *testing.T, mut func(*node.Config)) *testEnv {
	t.Helper()
	cfg := node.Config{
		ID:           "n1",
		DataDir:      t.TempDir(),
		PeerAddr:     "127.0.0.1:0",
		MaxValueSize: testMaxValue,
		// Short so a session read of an unreachable token fails quickly.
		ReadTimeout: 200 * time.Millisecond,
	}
	if mut != nil {
		mut(&cfg)
	}
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatalf("node.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	// A one-node cluster appoints itself leader through its control plane;
	// writes before that would be refused as "not leader".
	waitFor(t, 20*time.Second, "node to become leader", n.IsLeader)
	s := New(n, nil)
	hs := httptest.NewServer(s.Handler())
	// Registered after the node's cleanup, so it runs first: no request is
	// in flight when the node closes.
	t.Cleanup(hs.Close)
	return &testEnv{n: n, s: s, url: hs.URL}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type result struct {
	code   int
	header http.Header
	body   []byte
	token  engine.Token
}

// noRedirect lets tests see 3xx answers instead of following them.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends one request and checks the invariant every test relies on: the
// answer, whatever its status, carries a parseable Replicant-Token.
func (e *testEnv) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	raw := resp.Header.Get(HeaderToken)
	if raw == "" {
		t.Fatalf("%s %s: %d answer has no %s header", method, path, resp.StatusCode, HeaderToken)
	}
	tok, err := engine.ParseToken(raw)
	if err != nil {
		t.Fatalf("%s %s: %d answer has bad %s %q: %v", method, path, resp.StatusCode, HeaderToken, raw, err)
	}
	return result{code: resp.StatusCode, header: resp.Header, body: data, token: tok}
}

func (e *testEnv) put(t *testing.T, path string, value []byte) result {
	t.Helper()
	r := e.do(t, http.MethodPut, path, bytes.NewReader(value), nil)
	if r.code != http.StatusNoContent {
		t.Fatalf("PUT %s: %d %s", path, r.code, r.body)
	}
	return r
}

// readKey reads key straight from the node, bypassing HTTP, so tests can
// tell which key bytes a request path really named.
func (e *testEnv) readKey(t *testing.T, key string) ([]byte, bool) {
	t.Helper()
	rd, err := e.n.Read(context.Background(), engine.Consistency{}, engine.Token{})
	if err != nil {
		t.Fatalf("node read: %v", err)
	}
	v, ok, err := rd.Get([]byte(key))
	if err != nil {
		t.Fatalf("node get %q: %v", key, err)
	}
	return v.Value, ok
}

// before reports whether a is older than b (by LSN, then epoch).
func before(a, b engine.Token) bool {
	return a.LSN < b.LSN || (a.LSN == b.LSN && a.Epoch < b.Epoch)
}

// errorMessage decodes the {"error": …} body handlers send with failures.
func errorMessage(t *testing.T, r result) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("%d answer is not a JSON error: %q (%v)", r.code, r.body, err)
	}
	return e.Error
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestKeyValueRoundTrip(t *testing.T) {
	e := startEnv(t, nil)
	// path is what goes on the wire after /v1/kv/; key is the key it must
	// name after percent-decoding. Keys are part of the data model, so any
	// byte string must be addressable.
	tests := []struct {
		name  string
		path  string
		key   string
		value []byte
	}{
		{"plain", "plain", "plain", []byte("hello")},
		{"slashes", "a/b/c", "a/b/c", []byte("nested")},
		{"escaped slash", "x%2Fy", "x/y", []byte("escaped")},
		{"double slash escaped", "p%2F%2Fq", "p//q", []byte("dbl")},
		{"dot segments escaped", "%2E%2E%2Fetc", "../etc", []byte("dots")},
		{"percent", "100%25", "100%", []byte("pct")},
		{"question mark", "what%3F", "what?", []byte("q")},
		{"space and utf8", "caf%C3%A9%20au%20lait", "café au lait", []byte("utf8")},
		{"binary key", "%00%01%FF%FE", "\x00\x01\xff\xfe", []byte("bin key")},
		{"binary value", "binval", "binval", allBytes()},
		{"empty value", "empty", "empty", []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := "/v1/kv/" + tc.path
			w := e.put(t, p, tc.value)

			// The key the server stored is the decoded path, byte for byte.
			got, ok := e.readKey(t, tc.key)
			if !ok || !bytes.Equal(got, tc.value) {
				t.Fatalf("node has %q=%q (found %v), want %q", tc.key, got, ok, tc.value)
			}

			r := e.do(t, http.MethodGet, p, nil, nil)
			if r.code != http.StatusOK || !bytes.Equal(r.body, tc.value) {
				t.Fatalf("GET: %d %q, want 200 %q", r.code, r.body, tc.value)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("GET Content-Type %q, want application/octet-stream", ct)
			}
			// A read after a write must not show an older state than the
			// write's token.
			if before(r.token, w.token) {
				t.Errorf("GET token %v older than PUT token %v", r.token, w.token)
			}

			// HEAD answers like GET without the body.
			h := e.do(t, http.MethodHead, p, nil, nil)
			if h.code != http.StatusOK || len(h.body) != 0 {
				t.Fatalf("HEAD: %d with %d body bytes, want 200 and none", h.code, len(h.body))
			}
			if cl := h.header.Get("Content-Length"); cl != strconv.Itoa(len(tc.value)) {
				t.Errorf("HEAD Content-Length %q, want %d", cl, len(tc.value))
			}

			if r := e.do(t, http.MethodDelete, p, nil, nil); r.code != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s, want 204", r.code, r.body)
			}
			if _, ok := e.readKey(t, tc.key); ok {
				t.Fatalf("key %q still present after DELETE", tc.key)
			}
			if r := e.do(t, http.MethodGet, p, nil, nil); r.code != http.StatusNotFound {
				t.Fatalf("GET after DELETE: %d, want 404", r.code)
			}
		})
	}
}

func TestMissingKey(t *testing.T) {
	e := startEnv(t, nil)
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			r := e.do(t, method, "/v1/kv/never-written", nil, nil)
			if r.code != http.StatusNotFound {
				t.Fatalf("%s missing key: %d %s, want 404", method, r.code, r.body)
			}
			if method != http.MethodHead && !strings.Contains(errorMessage(t, r), "never-written") {
				t.Errorf("404 message %q does not name the key", r.body)
			}
		})
	}
	// A DELETE of a missing key must not write a tombstone entry: the log
	// position stays where it was.
	last := e.n.Status().LastLSN
	e.do(t, http.MethodDelete, "/v1/kv/never-written", nil, nil)
	if got := e.n.Status().LastLSN; got != last {
		t.Errorf("DELETE of a missing key moved last LSN %d -> %d", last, got)
	}
}

// Every answer carries a Replicant-Token, including errors produced by the
// mux itself (404, 405) and refusals before the handler runs; do() checks
// it, this table just reaches each kind of answer.
func TestEveryResponseCarriesToken(t *testing.T) {
	e := startEnv(t, nil)
	e.put(t, "/v1/kv/present", []byte("v"))
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		want   int
	}{
		{"get ok", "GET", "/v1/kv/present", "", nil, 200},
		{"head ok", "HEAD", "/v1/kv/present", "", nil, 200},
		{"get missing", "GET", "/v1/kv/absent", "", nil, 404},
		{"delete missing", "DELETE", "/v1/kv/absent", "", nil, 404},
		{"unknown path", "GET", "/no/such/path", "", nil, 404},
		{"method not allowed", "POST", "/v1/kv/present", "x", nil, 405},
		{"bad token", "GET", "/v1/kv/present", "", map[string]string{HeaderToken: "nope"}, 400},
		{"bad consistency", "GET", "/v1/kv/present", "", map[string]string{HeaderConsistency: "psychic"}, 400},
		{"bad ttl", "PUT", "/v1/kv/x?ttl=soon", "v", nil, 400},
		{"bad config", "PUT", "/v1/config", "{", nil, 400},
		{"remove unknown member", "DELETE", "/v1/members/nosuch", "", nil, 409},
		{"status", "GET", "/v1/status", "", nil, 200},
		{"config", "GET", "/v1/config", "", nil, 200},
		{"metrics", "GET", "/metrics", "", nil, 200},
		{"healthz", "GET", "/healthz", "", nil, 200},
		{"readyz", "GET", "/readyz", "", nil, 200},
		{"dashboard", "GET", "/", "", nil, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := e.do(t, tc.method, tc.path, body, tc.hdr)
			if r.code != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, r.code, r.body, tc.want)
			}
		})
	}
}

func TestMethodNotAllowedListsMethods(t *testing.T) {
	e := startEnv(t, nil)
	r := e.do(t, http.MethodPost, "/v1/kv/k", strings.NewReader("v"), nil)
	if r.code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", r.code)
	}
	// Clients learn the right verb from Allow.
	allow := r.header.Get("Allow")
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if !strings.Contains(allow, m) {
			t.Errorf("Allow %q lacks %s", allow, m)
		}
	}
}

func TestTokensAndSessionReads(t *testing.T) {
	e := startEnv(t, nil)
	t0 := e.do(t, http.MethodGet, "/healthz", nil, nil).token
	w1 := e.put(t, "/v1/kv/s", []byte("one"))
	if !before(t0, w1.token) {
		t.Fatalf("PUT token %v is not after the earlier token %v", w1.token, t0)
	}
	w2 := e.put(t, "/v1/kv/s", []byte("two"))
	if !before(w1.token, w2.token) {
		t.Fatalf("second PUT token %v is not after the first %v", w2.token, w1.token)
	}

	session := func(tok string) map[string]string {
		return map[string]string{HeaderConsistency: "session", HeaderToken: tok}
	}
	tests := []struct {
		name    string
		hdr     map[string]string
		want    int
		body    string // expected body for 200
		errPart string // expected substring of the error for non-200
	}{
		// Read-your-writes: the write's own token is satisfied at once.
		{"own token", session(w2.token.String()), 200, "two", ""},
		{"older token", session(w1.token.String()), 200, "two", ""},
		{"no token", map[string]string{HeaderConsistency: "session"}, 200, "two", ""},
		{"linearizable", map[string]string{HeaderConsistency: "linearizable"}, 200, "two", ""},
		{"eventual", map[string]string{HeaderConsistency: "eventual"}, 200, "two", ""},
		{"bounded", map[string]string{HeaderConsistency: "bounded:1s"}, 200, "two", ""},
		// A token this node never reaches: after ReadTimeout the read
		// fails instead of returning state older than the client saw.
		{"future token", session("1:1000000000"), 503, "", "not reached"},
		// The LSN exists here under a later epoch: the token's older-epoch
		// write was replaced in a failover, and the read must say so
		// rather than go back in time.
		{"replaced epoch", session(engine.Token{Epoch: w2.token.Epoch - 1, LSN: w2.token.LSN}.String()), 410, "", "epoch"},
		// A token of an epoch this node never saw: this node may be the
		// stale one (a cut-off old leader), so it cannot call the write
		// lost; it waits and fails as not reached.
		{"unseen epoch", session(engine.Token{Epoch: w2.token.Epoch + 5, LSN: w2.token.LSN}.String()), 503, "", "not reached"},
		{"malformed token", session("12"), 400, "", "token"},
		{"non-numeric token", session("a:b"), 400, "", "token"},
		{"unknown consistency", map[string]string{HeaderConsistency: "psychic"}, 400, "", "consistency"},
		{"bad bound", map[string]string{HeaderConsistency: "bounded:soon"}, 400, "", "bounded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := e.do(t, http.MethodGet, "/v1/kv/s", nil, tc.hdr)
			if r.code != tc.want {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.want)
			}
			if tc.want == 200 {
				if string(r.body) != tc.body {
					t.Errorf("body %q, want %q", r.body, tc.body)
				}
				if before(r.token, w2.token) {
					t.Errorf("read token %v older than the last write %v", r.token, w2.token)
				}
				return
			}
			if msg := errorMessage(t, r); !strings.Contains(msg, tc.errPart) {
				t.Errorf("error %q does not mention %q", msg, tc.errPart)
			}
			// Waiting is bounded by ReadTimeout (200ms), not the HTTP
			// client's timeout.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("refusal took %s", d)
			}
		})
	}
}

func TestValueLimit(t *testing.T) {
	e := startEnv(t, nil)
	// chunked hides the length so the server must count what it reads.
	chunked := func(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }
	atLimit := bytes.Repeat([]byte{'a'}, testMaxValue)
	overLimit := bytes.Repeat([]byte{'b'}, testMaxValue+1)
	tests := []struct {
		name string
		body io.Reader
		want int
	}{
		{"at limit, sized", bytes.NewReader(atLimit), 204},
		{"at limit, chunked", chunked(atLimit), 204},
		{"over limit, sized", bytes.NewReader(overLimit), 413},
		{"over limit, chunked", chunked(overLimit), 413},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := "/v1/kv/big" + strconv.Itoa(i)
			r := e.do(t, http.MethodPut, p, tc.body, nil)
			if r.code != tc.want {
				t.Fatalf("PUT: %d %s, want %d", r.code, r.body, tc.want)
			}
			_, ok := e.readKey(t, "big"+strconv.Itoa(i))
			if tc.want == 413 {
				if msg := errorMessage(t, r); !strings.Contains(msg, "too large") {
					t.Errorf("413 message %q does not say the value is too large", msg)
				}
				// Refused whole: nothing written.
				if ok {
					t.Fatal("an over-limit PUT wrote the key")
				}
			} else if !ok {
				t.Fatal("an at-limit PUT did not write the key")
			}
		})
	}
}

// failingBody fails the test if anyone reads it: a PUT whose declared length
// is over the limit must be refused before its body is read, so a client
// cannot make the server buffer a huge upload only to throw it away.
type failingBody struct{ reads int }

func (b *failingBody) Read(p []byte) (int, error) {
	b.reads++
	return 0, io.ErrUnexpectedEOF
}

func (b *failingBody) Close() error { return nil }

func TestDeclaredLengthOverLimitRefusedBeforeReading(t *testing.T) {
	e := startEnv(t, nil)
	body := &failingBody{}
	req := httptest.NewRequest(http.MethodPut, "/v1/kv/huge", nil)
	req.Body = body
	req.ContentLength = 1 << 40
	rec := httptest.NewRecorder()
	e.s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT with Content-Length 1 TiB: %d %s, want 413", rec.Code, rec.Body)
	}
	if body.reads != 0 {
		t.Fatalf("the body was read %d times before refusing", body.reads)
	}
	if _, ok := e.readKey(t, "huge"); ok {
		t.Fatal("the refused PUT wrote the key")
	}
}

func TestKeyLimit(t *testing.T) {
	e := startEnv(t, func(c *node.Config) { c.MaxKeySize = 16 })
	tests := []struct {
		key  string
		want int
	}{
		{strings.Repeat("k", 16), 204},
		{strings.Repeat("k", 17), 413},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(len(tc.key)), func(t *testing.T) {
			r := e.do(t, http.MethodPut, "/v1/kv/"+tc.key, strings.NewReader("v"), nil)
			if r.code != tc.want {
				t.Fatalf("PUT %d-byte key: %d %s, want %d", len(tc.key), r.code, r.body, tc.want)
			}
			if _, ok := e.readKey(t, tc.key); ok != (tc.want == 204) {
				t.Fatalf("key written = %v, want %v", ok, tc.want == 204)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	e := startEnv(t, nil)
	t.Run("expires", func(t *testing.T) {
		e.put(t, "/v1/kv/short?ttl=50ms", []byte("v"))
		// Expiry is time-based; poll rather than sleep a guessed amount.
		waitFor(t, 10*time.Second, "key with ttl=50ms to expire", func() bool {
			return e.do(t, http.MethodGet, "/v1/kv/short", nil, nil).code == http.StatusNotFound
		})
	})
	t.Run("expire-at header", func(t *testing.T) {
		start := time.Now()
		e.put(t, "/v1/kv/long?ttl=1h", []byte("v"))
		r := e.do(t, http.MethodGet, "/v1/kv/long", nil, nil)
		if r.code != 200 {
			t.Fatalf("GET: %d", r.code)
		}
		at, err := time.Parse(time.RFC3339Nano, r.header.Get("Replicant-Expire-At"))
		if err != nil {
			t.Fatalf("Replicant-Expire-At: %v", err)
		}
		if d := at.Sub(start); d < 59*time.Minute || d > 61*time.Minute {
			t.Errorf("expires %s after the PUT, want about 1h", d)
		}
	})
	for _, q := range []string{"bad", "0s", "-5s", "10"} {
		t.Run("invalid "+q, func(t *testing.T) {
			r := e.do(t, http.MethodPut, "/v1/kv/ttlbad?ttl="+q, strings.NewReader("v"), nil)
			if r.code != http.StatusBadRequest {
				t.Fatalf("ttl=%s: %d %s, want 400", q, r.code, r.body)
			}
			if msg := errorMessage(t, r); !strings.Contains(msg, "ttl") {
				t.Errorf("message %q does not mention ttl", msg)
			}
			if _, ok := e.readKey(t, "ttlbad"); ok {
				t.Fatal("a PUT with an invalid ttl wrote the key")
			}
		})
	}
}

func TestStatus(t *testing.T) {
	e := startEnv(t, nil)
	w := e.put(t, "/v1/kv/k", []byte("v"))
	r := e.do(t, http.MethodGet, "/v1/status", nil, nil)
	if r.code != 200 {
		t.Fatalf("status: %d %s", r.code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	// Decode generically: the Contract is about field names and JSON
	// types, which a typed decode would hide.
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, r.body)
	}
	strs := map[string]string{"id": "n1", "role": "leader", "leader": "n1", "sync_policy": "async"}
	for k, want := range strs {
		if got, ok := doc[k].(string); !ok || got != want {
			t.Errorf("%s = %#v, want %q", k, doc[k], want)
		}
	}
	for _, k := range []string{"epoch", "commit_lsn", "applied_lsn", "last_lsn"} {
		v, ok := doc[k].(float64)
		if !ok {
			t.Errorf("%s = %#v, want a number", k, doc[k])
			continue
		}
		// The PUT was acknowledged, so every position has reached it.
		floor := float64(w.token.LSN)
		if k == "epoch" {
			floor = 1
		}
		if v < floor {
			t.Errorf("%s = %v, want >= %v", k, v, floor)
		}
	}
	// A one-node cluster has no other members, but the field is still an
	// array (not null) so tools can iterate it.
	if m, ok := doc["members"].([]any); !ok || len(m) != 0 {
		t.Errorf("members = %#v, want an empty array", doc["members"])
	}
}

func TestMetrics(t *testing.T) {
	e := startEnv(t, nil)
	// replicant_ops_total has labels, so it appears only once an op ran.
	e.put(t, "/v1/kv/m", []byte("v"))
	e.do(t, http.MethodGet, "/v1/kv/m", nil, nil)
	r := e.do(t, http.MethodGet, "/metrics", nil, nil)
	if r.code != 200 {
		t.Fatalf("/metrics: %d", r.code)
	}
	for _, want := range []string{
		`replicant_ops_total{api="http",cmd="put",result="ok"} 1`,
		`replicant_ops_total{api="http",cmd="get",result="ok"} 1`,
		"replicant_group_commit_entries_bucket",
		"replicant_commit_lsn ",
		"replicant_storage_read_amplification ",
		"replicant_storage_compaction_debt_bytes ",
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestMetricsCacheBudget: the node's cache budget (--cache-size) is split
// evenly between the key cache and the block cache, as /metrics shows.
func TestMetricsCacheBudget(t *testing.T) {
	e := startEnv(t, func(c *node.Config) { c.CacheBytes = 16 << 20 })
	r := e.do(t, http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{
		`replicant_storage_cache_budget_bytes{cache="blocks"} 8.388608e+06`,
		`replicant_storage_cache_budget_bytes{cache="rows"} 8.388608e+06`,
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestHealthReadyDashboard(t *testing.T) {
	e := startEnv(t, nil)
	tests := []struct {
		path, contentType, bodyPart string
	}{
		{"/healthz", "", "ok"},
		{"/readyz", "", "ready"},
		{"/", "text/html", "<html"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := e.do(t, http.MethodGet, tc.path, nil, nil)
			if r.code != 200 {
				t.Fatalf("%d %s", r.code, r.body)
			}
			if !strings.HasPrefix(r.header.Get("Content-Type"), tc.contentType) {
				t.Errorf("Content-Type %q, want %q", r.header.Get("Content-Type"), tc.contentType)
			}
			if !bytes.Contains(r.body, []byte(tc.bodyPart)) {
				t.Errorf("body lacks %q", tc.bodyPart)
			}
		})
	}
}

func TestRequirePass(t *testing.T) {
	const pass = "s3cret"
	e := startEnv(t, func(c *node.Config) { c.RequirePass = pass })
	auth := func(v string) map[string]string { return map[string]string{"Authorization": v} }
	endpoints := []struct {
		method, path, body string
		ok                 int
	}{
		{"PUT", "/v1/kv/a", "v", 204},
		{"GET", "/v1/kv/a", "", 200},
		{"HEAD", "/v1/kv/a", "", 200},
		{"DELETE", "/v1/kv/a", "", 204},
		{"GET", "/v1/status", "", 200},
		{"GET", "/v1/config", "", 200},
		{"PUT", "/v1/config", `{"ack":"durable"}`, 200},
		{"GET", "/metrics", "", 200},
	}
	creds := []struct {
		name string
		hdr  map[string]string
		ok   bool
	}{
		{"none", nil, false},
		{"wrong password", auth("Bearer wrong"), false},
		{"basic scheme", auth("Basic " + pass), false},
		{"empty bearer", auth("Bearer "), false},
		{"right password", auth("Bearer " + pass), true},
	}
	for _, cr := range creds {
		for _, ep := range endpoints {
			t.Run(cr.name+" "+ep.method+" "+ep.path, func(t *testing.T) {
				var body io.Reader
				if ep.body != "" {
					body = strings.NewReader(ep.body)
				}
				r := e.do(t, ep.method, ep.path, body, cr.hdr)
				want := ep.ok
				if !cr.ok {
					want = http.StatusUnauthorized
				}
				if r.code != want {
					t.Fatalf("%d %s, want %d", r.code, r.body, want)
				}
				if !cr.ok && r.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			})
		}
	}
	// Refused requests must not have written anything.
	if _, ok := e.readKey(t, "a"); ok {
		t.Error("key a exists after the authorised DELETE")
	}
	if last := e.n.Status().LastLSN; last == 0 {
		t.Error("the authorised PUT wrote nothing")
	}
	// Probes stay open so orchestrators need no secret.
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := e.do(t, http.MethodGet, p, nil, nil); r.code != 200 {
			t.Errorf("%s without credentials: %d, want 200", p, r.code)
		}
	}
}

func TestConfig(t *testing.T) {
	// Short timeouts bound the blocked write and the wait for the async
	// fallback below.
	e := startEnv(t, func(c *node.Config) {
		c.WriteTimeout = 300 * time.Millisecond
		c.SyncTimeout = 200 * time.Millisecond
	})
	getConfig := func(t *testing.T) ClusterConfig {
		t.Helper()
		r := e.do(t, http.MethodGet, "/v1/config", nil, nil)
		var c ClusterConfig
		if r.code != 200 || json.Unmarshal(r.body, &c) != nil {
			t.Fatalf("GET /v1/config: %d %s", r.code, r.body)
		}
		return c
	}
	if c := getConfig(t); c.Sync != "async" || c.Ack != "durable" || c.Fallback != "block" {
		t.Fatalf("initial config %+v, want async/durable/block", c)
	}

	// Refusals first, while the node still has its initial policy, so each
	// can check that nothing changed.
	refusals := []struct {
		name, body, errPart string
	}{
		{"k zero", `{"sync":"FIRST 0 (x)"}`, "k must be >= 1"},
		{"k over list", `{"sync":"FIRST 3 (n2,n3)"}`, "k exceeds"},
		{"garbage policy", `{"sync":"sometimes"}`, "unknown policy"},
		{"bad ack", `{"ack":"eventually"}`, "eventually"},
		{"bad fallback", `{"sync_fallback":"panic"}`, "panic"},
		{"unknown field", `{"sync":"async","bogus":1}`, "unknown field"},
		{"not json", `sync=async`, "invalid config JSON"},
		{"empty object", `{}`, "nothing to change"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, http.MethodPut, "/v1/config", strings.NewReader(tc.body), nil)
			if r.code != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", r.code, r.body)
			}
			if msg := errorMessage(t, r); !strings.Contains(msg, tc.errPart) {
				t.Errorf("error %q does not mention %q", msg, tc.errPart)
			}
			if c := getConfig(t); c.Sync != "async" || c.Ack != "durable" || c.Fallback != "block" {
				t.Errorf("a refused change altered the config: %+v", c)
			}
		})
	}

	t.Run("ack and fallback", func(t *testing.T) {
		r := e.do(t, http.MethodPut, "/v1/config", strings.NewReader(`{"ack":"applied","sync_fallback":"async"}`), nil)
		if r.code != 200 {
			t.Fatalf("%d %s, want 200", r.code, r.body)
		}
		// The answer and a later GET agree, and unset fields are kept.
		want := ClusterConfig{Sync: "async", Ack: "applied", Fallback: "async"}
		var got ClusterConfig
		if err := json.Unmarshal(r.body, &got); err != nil || got != want {
			t.Errorf("PUT answered %+v (%v), want %+v", got, err, want)
		}
		if c := getConfig(t); c != want {
			t.Errorf("GET after PUT: %+v, want %+v", c, want)
		}
	})

	// A policy over every follower is meaningful on a one-node cluster
	// (followers may join later), so it may be accepted; if it is refused
	// the reason must be stated.
	t.Run("ANY 1 (*) on one node", func(t *testing.T) {
		r := e.do(t, http.MethodPut, "/v1/config", strings.NewReader(`{"sync":"ANY 1 (*)","sync_fallback":"block"}`), nil)
		switch r.code {
		case 200:
		case 400:
			if msg := errorMessage(t, r); len(msg) < 10 {
				t.Errorf("refused with an unhelpful message %q", msg)
			}
			return
		default:
			t.Fatalf("%d %s, want 200 or 400", r.code, r.body)
		}
		// Accepted: the answer, GET /v1/config and status all show it at
		// once (a client that changed the policy reads its own change).
		var got ClusterConfig
		if err := json.Unmarshal(r.body, &got); err != nil || got.Sync != "ANY 1 (*)" || got.Fallback != "block" {
			t.Errorf("PUT answered %s, want sync ANY 1 (*) and fallback block", r.body)
		}
		if c := getConfig(t); c.Sync != "ANY 1 (*)" {
			t.Errorf("GET shows sync %q", c.Sync)
		}
		if s := e.n.Status().SyncPolicy; s != "ANY 1 (*)" {
			t.Errorf("status shows sync_policy %q", s)
		}
		// With no follower to acknowledge and fallback "block", a write
		// waits WriteTimeout and then fails saying why, as 503 (retry
		// later), not as an internal error.
		w := e.do(t, http.MethodPut, "/v1/kv/blocked", strings.NewReader("v"), nil)
		if w.code != http.StatusServiceUnavailable {
			t.Fatalf("PUT under an unsatisfiable policy: %d %s, want 503", w.code, w.body)
		}
		if msg := errorMessage(t, w); !strings.Contains(msg, "synchronous follower") {
			t.Errorf("error %q does not say synchronous followers are missing", msg)
		}
		// Falling back to async lets writes commit again once the fallback
		// engages (after SyncTimeout from the leader's start).
		if r := e.do(t, http.MethodPut, "/v1/config", strings.NewReader(`{"sync_fallback":"async"}`), nil); r.code != 200 {
			t.Fatalf("set fallback async: %d %s", r.code, r.body)
		}
		waitFor(t, 10*time.Second, "the async fallback to engage", func() bool { return e.n.Status().FallbackActive })
		if w := e.do(t, http.MethodPut, "/v1/kv/after", strings.NewReader("v"), nil); w.code != http.StatusNoContent {
			t.Fatalf("PUT with fallback async: %d %s, want 204", w.code, w.body)
		}
		// The refused write was already in the log; as its error said, it
		// commits once the policy no longer holds it back.
		if r := e.do(t, http.MethodGet, "/v1/kv/blocked", nil, nil); r.code != 200 {
			t.Errorf("the write that timed out is not visible after the fallback: %d", r.code)
		}
	})
}

func TestRemoveMember(t *testing.T) {
	e := startEnv(t, nil)
	tests := []struct {
		name, id, errPart string
	}{
		{"unknown", "nosuch", "nosuch"},
		// Removing the data leader would leave the cluster without one.
		{"leader itself", "n1", "leader"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, http.MethodDelete, "/v1/members/"+tc.id, nil, nil)
			if r.code != http.StatusConflict {
				t.Fatalf("%d %s, want 409", r.code, r.body)
			}
			if msg := errorMessage(t, r); !strings.Contains(msg, tc.errPart) {
				t.Errorf("error %q does not mention %q", msg, tc.errPart)
			}
		})
	}
	if !e.n.IsLeader() {
		t.Error("the node lost leadership after refused removals")
	}
}
