package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicant-db/replicant/client"
	"github.com/replicant-db/replicant/internal/engine"
)

func TestCheckModeSite(t *testing.T) {
	tests := []struct {
		mode, site string
		errPart    string // "" for no error
	}{
		{"single-leader", "", ""},
		{"multi-leader", "eu", ""},
		{"multi-leader", "eu-west.1_a", ""},
		{"multi-leader", "Eu", ""},
		{"leaderless", "", ""},
		{"leaderless", "eu", "--site is only for --mode multi-leader"},
		{"multi", "eu", `invalid --mode "multi": want single-leader, multi-leader or leaderless`},
		{"", "", `invalid --mode ""`},
		{"Single-Leader", "", "invalid --mode"},
		{"multi-leader", "", "--mode multi-leader needs --site NAME"},
		{"single-leader", "eu", "--site is only for --mode multi-leader"},
		// A site must not make a vector token read as EPOCH:LSN, nor be
		// unprintable in one.
		{"multi-leader", "1eu", "must start with a letter"},
		{"multi-leader", "-eu", "must start with a letter"},
		{"multi-leader", "Ünterwald", "must start with a letter"},
		{"multi-leader", "eu:1", "':'"},
		{"multi-leader", "eu,us", "','"},
		{"multi-leader", "eu west", "' '"},
		{"multi-leader", strings.Repeat("e", 256), "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.mode+"/"+tc.site, func(t *testing.T) {
			err := checkModeSite(tc.mode, tc.site)
			if tc.errPart == "" {
				if err != nil {
					t.Fatalf("checkModeSite(%q, %q): %v", tc.mode, tc.site, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("checkModeSite(%q, %q) = %v, want an error containing %q", tc.mode, tc.site, err, tc.errPart)
			}
		})
	}
}

// The server refuses a bad --mode or --site before it listens or creates
// its data directory.
func TestServerModeFlagsRefused(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		errPart string
	}{
		{"unknown mode", []string{"--mode", "paxos"}, "want single-leader, multi-leader or leaderless"},
		{"multi without site", []string{"--mode", "multi-leader"}, "needs --site"},
		{"site without multi", []string{"--site", "eu"}, "only for --mode multi-leader"},
		{"digit site", []string{"--mode", "multi-leader", "--site", "9"}, `invalid --site: site "9" must start with a letter`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"server", "--data", data, "--resp", "127.0.0.1:0", "--http", "127.0.0.1:0",
				"--peer", "127.0.0.1:0", "--log-level", "error"}, tc.args...)
			_, err := runRoot(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("server %v: %v, want an error containing %q", tc.args, err, tc.errPart)
			}
			if _, statErr := os.Stat(data); !os.IsNotExist(statErr) {
				t.Errorf("data directory was created (stat: %v)", statErr)
			}
		})
	}
}

// siteNode fakes a multi-leader node's link routes and records what it
// was asked.
type siteNode struct {
	t        *testing.T
	mu       sync.Mutex
	requests []string // "METHOD PATH BODY AUTH"
	// answer returns the status and JSON body of a request.
	answer func(r *http.Request, body string) (int, string)
}

func (s *siteNode) start() *httptest.Server {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", r.Method, r.URL.EscapedPath(), b, r.Header.Get("Authorization"))))
		s.mu.Unlock()
		code, out := s.answer(r, string(b))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, out)
	}))
	s.t.Cleanup(hs.Close)
	return hs
}

func (s *siteNode) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

const usLinkJSON = `{"site":"us","peers":["127.0.0.1:9082"],"state":"streaming","connected":"n2","lag_entries":4,"lag_seconds":0.5,"applied_origin_lsn":120,"remote_lsn":131}`

func TestLinkCommands(t *testing.T) {
	header := []string{"SITE", "STATE", "CONNECTED", "LAG_ENTRIES", "LAG_SECONDS", "APPLIED_ORIGIN_LSN", "REMOTE_LSN", "REASON"}
	tests := []struct {
		name       string
		args       []string
		code       int    // the fake node's answer
		body       string // its JSON
		wantExit   int
		wantReq    string     // the request the node got ("" for none)
		wantRows   [][]string // stdout as fields; nil skips
		wantStdout string     // part of stdout
		wantStderr string     // part of stderr ("" for empty stderr)
	}{
		{name: "list", args: []string{"link", "list"}, code: 200,
			body:    `{"site":"eu","links":[` + usLinkJSON + `,{"site":"ap","state":"broken","reason":"peer unreachable","lag_entries":0,"lag_seconds":0,"applied_origin_lsn":7,"remote_lsn":7}]}`,
			wantReq: "GET /v1/links  Bearer pw",
			wantRows: [][]string{header,
				{"us", "streaming", "n2", "4", "0.500", "120", "131", "-"},
				{"ap", "broken", "-", "0", "0.000", "7", "7", "peer", "unreachable"}}},
		{name: "list empty", args: []string{"link", "list"}, code: 200, body: `{"site":"eu","links":[]}`,
			wantReq: "GET /v1/links  Bearer pw", wantRows: [][]string{header}, wantStderr: "site eu has no links"},
		{name: "list json", args: []string{"link", "list", "--json"}, code: 200, body: `{"site":"eu","links":[` + usLinkJSON + `]}`,
			wantReq: "GET /v1/links  Bearer pw", wantStdout: `"applied_origin_lsn": 120`},
		{name: "list on single-leader", args: []string{"link", "list"}, code: 409,
			body:     `{"error":"not in multi-leader mode (this cluster runs single-leader)"}`,
			wantExit: 1, wantReq: "GET /v1/links  Bearer pw",
			wantStderr: "Error: 409: not in multi-leader mode (this cluster runs single-leader)\n"},
		{name: "add", args: []string{"link", "add", "--peer", "127.0.0.1:9082"}, code: 200, body: usLinkJSON,
			wantReq:  `POST /v1/links {"peer":"127.0.0.1:9082"} Bearer pw`,
			wantRows: [][]string{header, {"us", "streaming", "n2", "4", "0.500", "120", "131", "-"}}},
		{name: "add without peer", args: []string{"link", "add"}, wantExit: 1,
			wantStderr: "Error: --peer is required"},
		{name: "add bad peer", args: []string{"link", "add", "--peer", "127.0.0.1"}, wantExit: 1,
			wantStderr: `Error: invalid --peer "127.0.0.1": want HOST:PORT`},
		{name: "add refused", args: []string{"link", "add", "--peer", "127.0.0.1:9081"}, code: 500,
			body: `{"error":"127.0.0.1:9081 is a node of this site (eu)"}`, wantExit: 1,
			wantReq: `POST /v1/links {"peer":"127.0.0.1:9081"} Bearer pw`, wantStderr: "Error: 500: 127.0.0.1:9081 is a node of this site (eu)\n"},
		{name: "remove", args: []string{"link", "remove", "us"}, code: 204,
			wantReq: "DELETE /v1/links/us  Bearer pw", wantStdout: "removed the link from site us\n"},
		{name: "remove escapes the site", args: []string{"link", "remove", "eu/west"}, code: 204,
			wantReq: "DELETE /v1/links/eu%2Fwest  Bearer pw"},
		{name: "remove unknown", args: []string{"link", "remove", "mars"}, code: 404, body: `{"error":"no link from site \"mars\""}`,
			wantExit: 1, wantReq: "DELETE /v1/links/mars  Bearer pw", wantStderr: "Error: 404: no link from site \"mars\"\n"},
		{name: "remove without site", args: []string{"link", "remove"}, wantExit: 1, wantStderr: "accepts 1 arg(s), received 0"},
		{name: "unknown subcommand", args: []string{"link", "ad"}, wantExit: 1, wantStderr: `unknown command "ad" for "replicant link"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node := &siteNode{t: t, answer: func(*http.Request, string) (int, string) { return tc.code, tc.body }}
			hs := node.start()
			code, stdout, stderr := runCLI(t, append(tc.args, "--addr", hostOf(hs), "--password", "pw")...)
			if code != tc.wantExit {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.wantExit, stdout, stderr)
			}
			reqs := node.got()
			switch {
			case tc.wantReq == "" && len(reqs) != 0:
				t.Errorf("the node got %q, want no request", reqs)
			case tc.wantReq != "" && (len(reqs) != 1 || reqs[0] != tc.wantReq):
				t.Errorf("the node got %q, want [%q]", reqs, tc.wantReq)
			}
			if tc.wantRows != nil {
				if got := fields(stdout); !reflect.DeepEqual(got, tc.wantRows) {
					t.Errorf("stdout:\n%s\nwant rows %q", stdout, tc.wantRows)
				}
			}
			if !strings.Contains(stdout, tc.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout, tc.wantStdout)
			}
			if (tc.wantStderr == "") != (stderr == "") || !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr, tc.wantStderr)
			}
		})
	}
}

// A link change sent to a site follower is redirected to the site leader:
// the CLI follows, with the same method, body and password, even when the
// leader is another host (net/http alone would drop the password there).
func TestLinkAddFollowsRedirect(t *testing.T) {
	leader := &siteNode{t: t, answer: func(*http.Request, string) (int, string) { return 200, usLinkJSON }}
	lhs := leader.start()
	// "localhost" is another host name than the follower's 127.0.0.1.
	leaderURL := "http://localhost:" + portOf(hostOf(lhs))
	// The follower answers as the API does on a site follower.
	fhs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", leaderURL+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
		fmt.Fprint(w, `{"error":"not the leader; leader=n1 resp=127.0.0.1:6381"}`)
	}))
	t.Cleanup(fhs.Close)
	tests := []struct {
		args    []string
		wantReq string
	}{
		{[]string{"link", "add", "--peer", "127.0.0.1:9082"}, `POST /v1/links {"peer":"127.0.0.1:9082"} Bearer pw`},
		{[]string{"link", "remove", "us"}, `DELETE /v1/links/us  Bearer pw`},
	}
	for _, tc := range tests {
		t.Run(tc.args[1], func(t *testing.T) {
			before := len(leader.got())
			code, stdout, stderr := runCLI(t, append(tc.args, "--addr", hostOf(fhs), "--password", "pw")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := leader.got()[before:]
			if len(got) != 1 || got[0] != tc.wantReq {
				t.Fatalf("the leader got %q, want [%q] (stdout %q)", got, tc.wantReq, stdout)
			}
		})
	}
}

// rawStatusServer serves doc as /v1/status.
func rawStatusServer(t *testing.T, doc string) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, doc)
	}))
	t.Cleanup(hs.Close)
	return hostOf(hs)
}

func TestStatusShowsMode(t *testing.T) {
	const common = `"id":"n1","role":"leader","leader":"n1","epoch":1,"state":"leading","sync_policy":"async","ack":"durable","sync_fallback":"block","members":[]`
	tests := []struct {
		name    string
		doc     string
		want    []string // lines of stdout, in order
		notWant []string
	}{
		{"single-leader", `{` + common + `,"mode":"single-leader","token":"1:5"}`,
			[]string{"node n1: leader, leading (leader n1), epoch 1, single-leader mode"}, []string{"site", "SITE"}},
		// A node from before modes existed has no "mode".
		{"no mode", `{` + common + `,"token":"1:5"}`,
			[]string{"node n1: leader, leading (leader n1), epoch 1, single-leader mode"}, []string{"site"}},
		{"multi-leader", `{` + common + `,"mode":"multi-leader","token":"eu:5,us:131","site":"eu","conflicts":3,"links":[` + usLinkJSON + `]}`,
			[]string{
				"node n1: leader, leading (leader n1), epoch 1, multi-leader mode",
				"token eu:5,us:131",
				"site eu: 1 links, 3 conflicts resolved by last-writer-wins",
				"SITE  STATE      CONNECTED  LAG_ENTRIES  LAG_SECONDS  APPLIED_ORIGIN_LSN  REMOTE_LSN  REASON",
				"us    streaming  n2         4            0.500        120                 131         -",
			}, nil},
		{"multi-leader without links", `{` + common + `,"mode":"multi-leader","token":"eu:5","site":"eu"}`,
			[]string{"multi-leader mode", "site eu: 0 links, 0 conflicts"}, []string{"SITE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "status", "--addr", rawStatusServer(t, tc.doc))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			rest := stdout
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order):\n%s", w, stdout)
				}
				rest = rest[i+len(w):]
			}
			for _, nw := range tc.notWant {
				if strings.Contains(stdout, nw) {
					t.Errorf("stdout has %q:\n%s", nw, stdout)
				}
			}
		})
	}
	// --json keeps the mode's fields.
	doc := `{` + common + `,"mode":"multi-leader","token":"eu:5","site":"eu","conflicts":3,"links":[` + usLinkJSON + `]}`
	code, stdout, stderr := runCLI(t, "status", "--json", "--addr", rawStatusServer(t, doc))
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, stderr)
	}
	var got struct {
		Mode      string              `json:"mode"`
		Site      string              `json:"site"`
		Conflicts uint64              `json:"conflicts"`
		Links     []engine.LinkStatus `json:"links"`
		ID        string              `json:"id"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Mode != "multi-leader" || got.Site != "eu" ||
		got.Conflicts != 3 || len(got.Links) != 1 || got.Links[0].RemoteLSN != 131 || got.ID != "n1" {
		t.Errorf("status --json = %+v (%v):\n%s", got, err, stdout)
	}
}

// A real single-leader node answers link commands with the mode it runs.
func TestLinkListRealSingleLeaderNode(t *testing.T) {
	addr := startNode(t)
	code, _, stderr := runCLI(t, "link", "list", "--addr", addr)
	if code != 1 || stderr != "Error: 409: not in multi-leader mode (this cluster runs single-leader)\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestPlanDev(t *testing.T) {
	cfg := func(mut func(*devConfig)) devConfig {
		c := defaultDevConfig()
		c.data = "d"
		mut(&c)
		return c
	}
	nodeArgs := func(i int) []string {
		return []string{"server", "--id", fmt.Sprintf("n%d", i), "--data", "", "--resp", fmt.Sprintf("127.0.0.1:638%d", i),
			"--http", fmt.Sprintf("127.0.0.1:808%d", i), "--peer", fmt.Sprintf("127.0.0.1:908%d", i)}
	}
	withData := func(args []string, data string) []string {
		args[4] = data
		return args
	}
	const initial3 = "n1=127.0.0.1:9081,n2=127.0.0.1:9082,n3=127.0.0.1:9083"
	tests := []struct {
		name      string
		cfg       devConfig
		wantArgs  [][]string // nil skips
		wantSites []string   // nil skips
		wantNotes []string
		wantPass  string
		errPart   string
	}{
		{name: "single-leader default", cfg: cfg(func(*devConfig) {}),
			wantArgs: [][]string{
				append(withData(nodeArgs(1), "d/n1"), "--initial-cluster", initial3, "--sync", "FIRST 1 (*)"),
				append(withData(nodeArgs(2), "d/n2"), "--initial-cluster", initial3, "--sync", "FIRST 1 (*)"),
				append(withData(nodeArgs(3), "d/n3"), "--initial-cluster", initial3, "--sync", "FIRST 1 (*)"),
			}, wantSites: []string{"", "", ""}},
		{name: "single-leader one node, sync, extra", cfg: cfg(func(c *devConfig) {
			c.nodes, c.syncPolicy, c.extra = 1, "all", []string{"--requirepass=s3cret"}
		}), wantArgs: [][]string{
			append(withData(nodeArgs(1), "d/n1"), "--initial-cluster", "n1=127.0.0.1:9081", "--sync", "all", "--requirepass=s3cret"),
		}},
		{name: "multi-leader: one-node sites, no initial cluster", cfg: cfg(func(c *devConfig) { c.mode = engine.ModeMultiLeader }),
			wantArgs: [][]string{
				append(withData(nodeArgs(1), "d/n1-eu"), "--mode", "multi-leader", "--site", "eu"),
				append(withData(nodeArgs(2), "d/n2-us"), "--mode", "multi-leader", "--site", "us"),
				append(withData(nodeArgs(3), "d/n3-ap"), "--mode", "multi-leader", "--site", "ap"),
			}, wantSites: []string{"eu", "us", "ap"}},
		{name: "multi-leader nine sites", cfg: cfg(func(c *devConfig) { c.mode, c.nodes = engine.ModeMultiLeader, 9 }),
			wantSites: []string{"eu", "us", "ap", "sa", "af", "oc", "me", "site8", "site9"}},
		{name: "multi-leader ignores --sync", cfg: cfg(func(c *devConfig) { c.mode, c.nodes, c.syncPolicy = engine.ModeMultiLeader, 2, "all" }),
			wantArgs: [][]string{
				append(withData(nodeArgs(1), "d/n1-eu"), "--mode", "multi-leader", "--site", "eu"),
				append(withData(nodeArgs(2), "d/n2-us"), "--mode", "multi-leader", "--site", "us"),
			}, wantNotes: []string{"--sync is ignored with --mode multi-leader: each site is one node, with no follower to acknowledge"}},
		{name: "multi-leader password from --server-flag", cfg: cfg(func(c *devConfig) {
			c.mode, c.nodes, c.extra = engine.ModeMultiLeader, 1, []string{"--requirepass", "s3cret"}
		}), wantArgs: [][]string{
			append(withData(nodeArgs(1), "d/n1-eu"), "--mode", "multi-leader", "--site", "eu", "--requirepass", "s3cret"),
		}, wantPass: "s3cret"},
		{name: "leaderless", cfg: cfg(func(c *devConfig) { c.mode, c.nodes = engine.ModeLeaderless, 2 }),
			wantArgs: [][]string{
				append(withData(nodeArgs(1), "d/n1-leaderless"), "--initial-cluster", "n1=127.0.0.1:9081,n2=127.0.0.1:9082", "--mode", "leaderless"),
				append(withData(nodeArgs(2), "d/n2-leaderless"), "--initial-cluster", "n1=127.0.0.1:9081,n2=127.0.0.1:9082", "--mode", "leaderless"),
			}},
		{name: "unknown mode", cfg: cfg(func(c *devConfig) { c.mode = "raft" }), errPart: "want single-leader, multi-leader or leaderless"},
		{name: "too many nodes", cfg: cfg(func(c *devConfig) { c.nodes = 10 }), errPart: "want 1 to 9"},
		{name: "server-flag sets the mode", cfg: cfg(func(c *devConfig) { c.extra = []string{"--mode=multi-leader"} }),
			errPart: "dev sets --mode itself"},
		{name: "server-flag sets the site", cfg: cfg(func(c *devConfig) { c.mode, c.extra = engine.ModeMultiLeader, []string{"--site", "x"} }),
			errPart: "dev sets --site itself"},
		{name: "server-flag unknown", cfg: cfg(func(c *devConfig) { c.extra = []string{"--nosuch"} }),
			errPart: "--server-flag: unknown flag: --nosuch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envRequirePass, "")
			p, err := planDev(tc.cfg)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("planDev: %v, want an error containing %q", err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("planDev: %v", err)
			}
			var args [][]string
			var sites []string
			for _, d := range p.nodes {
				args = append(args, d.args)
				sites = append(sites, d.site)
			}
			if tc.wantArgs != nil && !reflect.DeepEqual(args, tc.wantArgs) {
				t.Errorf("server arguments:\n%q\nwant\n%q", args, tc.wantArgs)
			}
			if tc.wantSites != nil && !reflect.DeepEqual(sites, tc.wantSites) {
				t.Errorf("sites %q, want %q", sites, tc.wantSites)
			}
			if !reflect.DeepEqual(p.notes, tc.wantNotes) {
				t.Errorf("notes %q, want %q", p.notes, tc.wantNotes)
			}
			if p.password != tc.wantPass {
				t.Errorf("password %q, want %q", p.password, tc.wantPass)
			}
			// Every site name is one the server accepts.
			for _, d := range p.nodes {
				if d.site != "" {
					if err := checkModeSite(engine.ModeMultiLeader, d.site); err != nil {
						t.Errorf("site %q: %v", d.site, err)
					}
				}
			}
		})
	}
}

// dev refuses a mode it cannot start before it starts anything.
func TestDevModeRefused(t *testing.T) {
	for _, tc := range []struct{ mode, errPart string }{
		{"multi", `invalid --mode "multi"`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "dev")
			_, err := runRoot(t, "dev", "--mode", tc.mode, "--data", data)
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("dev --mode %s: %v, want an error containing %q", tc.mode, err, tc.errPart)
			}
			if _, statErr := os.Stat(data); !os.IsNotExist(statErr) {
				t.Errorf("data directory was created (stat: %v)", statErr)
			}
		})
	}
}

func TestLinkSites(t *testing.T) {
	t.Run("all-to-all, retrying until a site leads", func(t *testing.T) {
		var ns []*devNode
		var fakes []*siteNode
		for i, site := range []string{"eu", "us", "ap"} {
			var mu sync.Mutex
			tries := 0
			f := &siteNode{t: t, answer: func(*http.Request, string) (int, string) {
				mu.Lock()
				defer mu.Unlock()
				tries++
				// us is not its site's leader yet for its first two tries.
				if site == "us" && tries <= 2 {
					return http.StatusServiceUnavailable, `{"error":"not the leader; leader unknown"}`
				}
				return 200, `{"site":"x","state":"connecting"}`
			}}
			hs := f.start()
			fakes = append(fakes, f)
			ns = append(ns, &devNode{id: fmt.Sprintf("n%d", i+1), site: site, http: hostOf(hs), peer: fmt.Sprintf("127.0.0.1:908%d", i+1)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := linkSites(ctx, ns, "pw", 10*time.Second); err != nil {
			t.Fatalf("linkSites: %v", err)
		}
		post := func(peer string) string { return `POST /v1/links {"peer":"` + peer + `"} Bearer pw` }
		want := [][]string{
			{post("127.0.0.1:9082"), post("127.0.0.1:9083")},
			{post("127.0.0.1:9081"), post("127.0.0.1:9081"), post("127.0.0.1:9081"), post("127.0.0.1:9083")},
			{post("127.0.0.1:9081"), post("127.0.0.1:9082")},
		}
		for i, f := range fakes {
			if got := f.got(); !reflect.DeepEqual(got, want[i]) {
				t.Errorf("%s got %q, want %q", ns[i].site, got, want[i])
			}
		}
	})
	t.Run("a refusal ends it at once", func(t *testing.T) {
		f := &siteNode{t: t, answer: func(*http.Request, string) (int, string) {
			return http.StatusConflict, `{"error":"not in multi-leader mode (this cluster runs single-leader)"}`
		}}
		hs := f.start()
		ns := []*devNode{
			{id: "n1", site: "eu", http: hostOf(hs), peer: "127.0.0.1:9081", logPath: "d/n1-eu.log"},
			{id: "n2", site: "us", http: "127.0.0.1:1", peer: "127.0.0.1:9082"},
		}
		start := time.Now()
		err := linkSites(context.Background(), ns, "", 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), "link site eu to us") || !strings.Contains(err.Error(), "not in multi-leader mode") ||
			!strings.Contains(err.Error(), "see d/n1-eu.log") {
			t.Fatalf("linkSites: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a 409 was retried for %s", d)
		}
		if got := f.got(); len(got) != 1 {
			t.Errorf("the node got %q, want one request", got)
		}
	})
	t.Run("gives up after the timeout", func(t *testing.T) {
		f := &siteNode{t: t, answer: func(*http.Request, string) (int, string) {
			return http.StatusServiceUnavailable, `{"error":"not the leader; leader unknown"}`
		}}
		hs := f.start()
		ns := []*devNode{{id: "n1", site: "eu", http: hostOf(hs), peer: "127.0.0.1:9081"}, {id: "n2", site: "us", peer: "127.0.0.1:9082"}}
		err := linkSites(context.Background(), ns, "", 500*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "still failing after 500ms") || !strings.Contains(err.Error(), "leader unknown") {
			t.Fatalf("linkSites: %v", err)
		}
	})
}

// freeBases returns port bases for a dev run of n nodes on which ports
// base+1 … base+n are free, for RESP, HTTP and peer.
func freeBases(t *testing.T, n int) (respBase, httpBase, peerBase int) {
	t.Helper()
	var bases []int
	for try := 0; len(bases) < 3 && try < 50; try++ {
		base := freePort(t) - 1
		ok := true
		for i := 1; i <= n && ok; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			bases = append(bases, base)
		}
	}
	if len(bases) < 3 {
		t.Skip("no free port ranges")
	}
	return bases[0], bases[1], bases[2]
}

// A real multi-leader dev run: one-node sites linked all-to-all, and a
// write on one site reaches the others.
func TestDevMultiLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three server processes")
	}
	t.Setenv(testAsEnv, "main") // the nodes are this test binary acting as replicant
	cfg := testDevConfig(t)
	cfg.mode, cfg.nodes, cfg.syncPolicy = engine.ModeMultiLeader, 3, "all"
	cfg.respBase, cfg.httpBase, cfg.peerBase = freeBases(t, 3)
	cfg.startupTimeout = 30 * time.Second
	out := &syncBuffer{}
	cfg.out = out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, cfg) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runDev: %v", err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops the cluster.") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("runDev returned %v before the cluster was up:\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not up after 60s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	text := out.String()
	for _, want := range []string{
		"note: --sync is ignored with --mode multi-leader",
		"Sites: eu, us, ap, each one node, linked all-to-all (6 links)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	rows := fields(text[strings.Index(text, "NODE"):])
	if len(rows) < 4 || !reflect.DeepEqual(rows[0][:3], []string{"NODE", "SITE", "PID"}) ||
		rows[1][1] != "eu" || rows[2][1] != "us" || rows[3][1] != "ap" {
		t.Errorf("node table:\n%s", text)
	}
	sites := []string{"eu", "us", "ap"}
	for i, site := range sites {
		addr := fmt.Sprintf("127.0.0.1:%d", cfg.httpBase+i+1)
		var ll linkList
		if err := callNode(ctx, addr, "", http.MethodGet, "/v1/links", nil, &ll); err != nil {
			t.Fatalf("links of %s: %v", site, err)
		}
		var got []string
		for _, l := range ll.Links {
			got = append(got, l.Site)
		}
		var want []string
		for _, s := range sites {
			if s != site {
				want = append(want, s)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if ll.Site != site || !reflect.DeepEqual(got, want) {
			t.Errorf("site %s: /v1/links = %+v, want links from %v", site, ll, want)
		}
	}
	// The CLI against a real site: status, link list, remove and add.
	eu := fmt.Sprintf("127.0.0.1:%d", cfg.httpBase+1)
	cli := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, append(args, "--addr", eu)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		return stdout
	}
	if st := cli("status"); !strings.Contains(st, "multi-leader mode") || !strings.Contains(st, "site eu: 2 links") {
		t.Errorf("status of eu:\n%s", st)
	}
	if rows := fields(cli("link", "list")); len(rows) != 3 || rows[0][0] != "SITE" {
		t.Errorf("link list on eu: %q", rows)
	}
	cli("link", "remove", "us")
	if rows := fields(cli("link", "list")); len(rows) != 2 || rows[1][0] != "ap" {
		t.Errorf("link list on eu after removing us: %q", rows)
	}
	if rows := fields(cli("link", "add", "--peer", fmt.Sprintf("127.0.0.1:%d", cfg.peerBase+2))); len(rows) != 2 || rows[1][0] != "us" {
		t.Errorf("link add of us: %q", rows)
	}
	// A write on eu reaches ap through the link.
	c := client.New(fmt.Sprintf("127.0.0.1:%d", cfg.httpBase+1), client.Options{})
	if err := c.Put(ctx, "hello", []byte("world"), 0); err != nil {
		t.Fatalf("put on eu: %v", err)
	}
	ap := client.New(fmt.Sprintf("127.0.0.1:%d", cfg.httpBase+3), client.Options{})
	for {
		v, err := ap.Get(ctx, "hello")
		if err == nil && string(v) == "world" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hello on ap: %q, %v", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that dev's goroutines and the test can
// share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
