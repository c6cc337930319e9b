package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicant-db/replicant/client"
	"github.com/replicant-db/replicant/internal/api/httpapi"
	"github.com/replicant-db/replicant/internal/node"
)

// testAsEnv makes the test binary act as something else when it is
// started as a child process: "main" runs the CLI (to see the real exit
// code), "fake-server" prints fakeOutputEnv to stderr and exits 1 (a node
// that dies at start, for dev).
const (
	testAsEnv     = "REPLICANT_TEST_AS"
	fakeOutputEnv = "REPLICANT_TEST_FAKE_OUTPUT"
)

func TestMain(m *testing.M) {
	switch os.Getenv(testAsEnv) {
	case "main":
		main()
	case "fake-server":
		fmt.Fprint(os.Stderr, os.Getenv(fakeOutputEnv))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// runCLI runs the command line as main does and returns the exit code and
// what went to stdout and stderr.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUnknownCommands(t *testing.T) {
	tests := []struct {
		args []string
		// wantErr are the lines stderr must start with.
		wantErr []string
	}{
		{[]string{"frobnicate"}, []string{`Error: unknown command "frobnicate" for "replicant"`, "Run 'replicant --help' for usage."}},
		{[]string{"member", "add", "n4"}, []string{`Error: unknown command "add" for "replicant member"`, "Run 'replicant member --help' for usage."}},
		// The flag is not the mistake; the subcommand is.
		{[]string{"member", "add", "--peer", "127.0.0.1:9084"}, []string{`Error: unknown command "add" for "replicant member"`, "Run 'replicant member --help' for usage."}},
		{[]string{"member", "lst"}, []string{`Error: unknown command "lst" for "replicant member"`, "", "Did you mean this?", "\tlist", "Run 'replicant member --help' for usage."}},
		{[]string{"config", "show"}, []string{`Error: unknown command "show" for "replicant config"`, "Run 'replicant config --help' for usage."}},
		{[]string{"completion", "frobnicate"}, []string{`Error: unknown command "frobnicate" for "replicant completion"`, "Run 'replicant completion --help' for usage."}},
		{[]string{"member", "--nosuch"}, []string{"Error: unknown flag: --nosuch", "Run 'replicant member --help' for usage."}},
		{[]string{"get"}, []string{"Error: accepts 1 arg(s), received 0", "Run 'replicant get --help' for usage."}},
		{[]string{"member", "list", "extra"}, []string{`Error: unknown command "extra" for "replicant member list"`, "Run 'replicant member list --help' for usage."}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code == 0 {
				t.Errorf("exit code 0, want non-zero")
			}
			if want := strings.Join(tc.wantErr, "\n") + "\n"; stderr != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
			}
			// A mistake is not answered with the help text, which hid it.
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// A parent command alone is a request for its help, not a mistake.
func TestParentCommandAloneShowsHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"member"}, {"config"}, {"member", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, args...)
			if code != 0 || stderr != "" || !strings.Contains(stdout, "Usage:") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and help", code, stdout, stderr)
			}
		})
	}
	_, stdout, _ := runCLI(t, "member")
	for _, sub := range []string{"list", "remove"} {
		if !strings.Contains(stdout, sub) {
			t.Errorf("member help lacks %q:\n%s", sub, stdout)
		}
	}
}

// The exit code of the real process, through main and os.Exit.
func TestProcessExitCode(t *testing.T) {
	cmd := exec.Command(os.Args[0], "member", "add", "n4")
	cmd.Env = append(os.Environ(), testAsEnv+"=main")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("replicant member add: %v, want exit status 1", err)
	}
	if !strings.HasPrefix(stderr.String(), `Error: unknown command "add" for "replicant member"`) {
		t.Errorf("stderr %q", stderr.String())
	}
}

// startNode serves a real one-node cluster's HTTP API and returns its
// address.
func startNode(t *testing.T) string {
	t.Helper()
	n, err := node.Open(node.Config{ID: "n1", DataDir: t.TempDir(), PeerAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("node.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("node did not become leader within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A new leader may report "lease-expired" for a moment after it
	// leads; these tests are about the CLI, so start from "leading".
	for n.Status().State != "leading" {
		if time.Now().After(deadline) {
			t.Fatalf("node state %q after 20s, want leading", n.Status().State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	hs := httptest.NewServer(httpapi.New(n, nil).Handler())
	t.Cleanup(hs.Close)
	return strings.TrimPrefix(hs.URL, "http://")
}

func TestErrorPrefixOnce(t *testing.T) {
	addr := startNode(t)
	tests := []struct {
		name string
		args []string
		want string // all of stderr
	}{
		{"get missing", []string{"get", "--addr", addr, "nokey"}, "Error: key \"nokey\" not found\n"},
		{"del missing", []string{"del", "--addr", addr, "nokey"}, "Error: key \"nokey\" not found\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != 1 || stderr != tc.want {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
		})
	}
	// A transport error: one prefix too, and no usage hint (the command
	// line was right).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	code, _, stderr := runCLI(t, "get", "--addr", dead, "k")
	if code != 1 || !strings.HasPrefix(stderr, "Error: GET /v1/kv/k: ") || strings.Count(stderr, "replicant:") != 0 || strings.Contains(stderr, "--help") {
		t.Errorf("get from a closed port: exit %d, stderr %q", code, stderr)
	}
}

// statusServer serves st as /v1/status.
func statusServer(t *testing.T, st *client.Status) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func hostOf(hs *httptest.Server) string { return strings.TrimPrefix(hs.URL, "http://") }

// leaderStatus is n1 leading n2 (sync, streaming) and n3 (dead: the
// leader's log holds entries it never sent there, and no sizes for them).
func leaderStatus() *client.Status {
	return &client.Status{
		ID: "n1", Role: "leader", Leader: "n1", Epoch: 3, State: "leading", SyncSet: []string{"n2"},
		RESP: "127.0.0.1:6381", HTTP: "127.0.0.1:8081", Peer: "127.0.0.1:9081",
		Members: []client.Member{
			{ID: "n3", Role: "follower", Healthy: false, State: "disconnected", LagEntries: 172618, LagBytes: 0, LagSeconds: 41.5,
				RESP: "127.0.0.1:6383", HTTP: "127.0.0.1:8083", Peer: "127.0.0.1:9083"},
			{ID: "n2", Role: "follower", Sync: true, Healthy: true, State: "streaming", LagEntries: 2, LagBytes: 512, LagSeconds: 0.002,
				RESP: "127.0.0.1:6382", HTTP: "127.0.0.1:8082", Peer: "127.0.0.1:9082"},
		},
	}
}

// fields splits a table's lines into columns.
func fields(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func TestMemberList(t *testing.T) {
	leader := statusServer(t, leaderStatus())
	// n2 is a follower that knows n1's HTTP address: the test server's.
	follower := func(leaderHTTP string) *client.Status {
		return &client.Status{
			ID: "n2", Role: "follower", Leader: "n1", Epoch: 3, State: "streaming", SyncSet: []string{"n2"}, LagSeconds: 0.25,
			RESP: "127.0.0.1:6382", HTTP: "127.0.0.1:8082", Peer: "127.0.0.1:9082",
			Members: []client.Member{
				{ID: "n1", Role: "leader", Healthy: true, State: "leading", HTTP: leaderHTTP, RESP: "127.0.0.1:6381", Peer: "127.0.0.1:9081"},
				// What a follower's status says of another follower:
				// zeros it cannot know.
				{ID: "n3", Role: "follower", HTTP: "127.0.0.1:8083", RESP: "127.0.0.1:6383", Peer: "127.0.0.1:9083"},
			},
		}
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()

	leaderTable := [][]string{
		{"ID", "ROLE", "SYNC", "HEALTHY", "STATE", "PEER", "RESP", "HTTP", "LAG", "LAG(s)"},
		{"n1", "leader", "-", "true", "leading", "127.0.0.1:9081", "127.0.0.1:6381", "127.0.0.1:8081", "0", "0.000"},
		{"n2", "follower", "sync", "true", "streaming", "127.0.0.1:9082", "127.0.0.1:6382", "127.0.0.1:8082", "2", "0.002"},
		{"n3", "follower", "async", "false", "disconnected", "127.0.0.1:9083", "127.0.0.1:6383", "127.0.0.1:8083", "172618", "41.500"},
	}
	tests := []struct {
		name     string
		addr     string
		want     [][]string
		wantNote string // part of the note on stderr; "" for none
	}{
		{"asked the leader", hostOf(leader), leaderTable, ""},
		{"asked a follower", hostOf(statusServer(t, follower(hostOf(leader)))), leaderTable, ""},
		{"leader unreachable", hostOf(statusServer(t, follower(deadAddr))),
			[][]string{
				{"ID", "ROLE", "SYNC", "HEALTHY", "STATE", "PEER", "RESP", "HTTP", "LAG", "LAG(s)"},
				{"n1", "leader", "-", "true", "leading", "127.0.0.1:9081", "127.0.0.1:6381", deadAddr, "-", "-"},
				{"n2", "follower", "sync", "true", "streaming", "127.0.0.1:9082", "127.0.0.1:6382", "127.0.0.1:8082", "-", "0.250"},
				{"n3", "follower", "async", "-", "-", "127.0.0.1:9083", "127.0.0.1:6383", "127.0.0.1:8083", "-", "-"},
			}, "leader n1 at " + deadAddr + " did not answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "member", "list", "--addr", tc.addr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got := fields(stdout); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("table:\n%s\nwant rows %v", stdout, tc.want)
			}
			if tc.wantNote == "" && stderr != "" || !strings.Contains(stderr, tc.wantNote) {
				t.Errorf("stderr %q, want a note containing %q", stderr, tc.wantNote)
			}
		})
	}
}

func TestMemberListJSON(t *testing.T) {
	leader := statusServer(t, leaderStatus())
	code, stdout, stderr := runCLI(t, "member", "list", "--json", "--addr", hostOf(leader))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		Source  string `json:"source"`
		Leader  string `json:"leader"`
		Epoch   uint64 `json:"epoch"`
		Members []struct {
			ID         string   `json:"id"`
			Role       string   `json:"role"`
			Sync       bool     `json:"sync"`
			Healthy    *bool    `json:"healthy"`
			Peer       string   `json:"peer"`
			LagEntries *uint64  `json:"lag_entries"`
			LagBytes   *uint64  `json:"lag_bytes"`
			LagSeconds *float64 `json:"lag_seconds"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("decode %s: %v", stdout, err)
	}
	if got.Source != "n1" || got.Leader != "n1" || got.Epoch != 3 || len(got.Members) != 3 {
		t.Fatalf("got %+v", got)
	}
	n2, n3 := got.Members[1], got.Members[2]
	if n2.ID != "n2" || !n2.Sync || n2.Healthy == nil || !*n2.Healthy || n2.Peer != "127.0.0.1:9082" ||
		n2.LagEntries == nil || *n2.LagEntries != 2 || n2.LagBytes == nil || *n2.LagBytes != 512 {
		t.Errorf("n2: %+v", n2)
	}
	// Unknown bytes are null, not 0.
	if n3.ID != "n3" || n3.LagEntries == nil || *n3.LagEntries != 172618 || n3.LagBytes != nil {
		t.Errorf("n3: %+v", n3)
	}
}

// A real node: the list has itself, with its peer address.
func TestMemberListRealNode(t *testing.T) {
	addr := startNode(t)
	code, stdout, stderr := runCLI(t, "member", "list", "--addr", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := fields(stdout)
	if len(rows) != 2 || rows[1][0] != "n1" || rows[1][1] != "leader" || rows[1][3] != "true" || !strings.HasPrefix(rows[1][5], "127.0.0.1:") {
		t.Fatalf("member list of a one-node cluster:\n%s", stdout)
	}
}

func TestStatusLagBytes(t *testing.T) {
	leader := statusServer(t, leaderStatus())
	code, stdout, stderr := runCLI(t, "status", "--addr", hostOf(leader))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// MEMBER ROLE SYNC HEALTHY RECEIVED DURABLE APPLIED LAG LAG(bytes) ...
	want := map[string][2]string{"n2": {"2", "512"}, "n3": {"172618", "-"}}
	seen := 0
	for _, row := range fields(stdout) {
		if w, ok := want[row[0]]; ok && len(row) >= 9 {
			seen++
			if row[7] != w[0] || row[8] != w[1] {
				t.Errorf("%s: LAG %s LAG(bytes) %s, want %s %s", row[0], row[7], row[8], w[0], w[1])
			}
		}
	}
	if seen != len(want) {
		t.Errorf("member rows missing:\n%s", stdout)
	}
}

func TestLagBytes(t *testing.T) {
	tests := []struct {
		name           string
		entries, bytes uint64
		want           uint64
		known          bool
	}{
		{"caught up", 0, 0, 0, true},
		{"behind, sizes known", 3, 900, 900, true},
		{"behind, sizes unknown", 172618, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := lagBytes(client.Member{LagEntries: tc.entries, LagBytes: tc.bytes})
			if got != tc.want || ok != tc.known {
				t.Errorf("lagBytes = %d, %v; want %d, %v", got, ok, tc.want, tc.known)
			}
		})
	}
}

func TestCompareIDs(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"n2", "n10", -1},
		{"n1", "n2", -1},
		{"n3", "n3", 0},
		{"eu", "us", -1},
		{"n10", "n9", 1},
	}
	for _, tc := range tests {
		got := compareIDs(tc.a, tc.b)
		if (got < 0) != (tc.want < 0) || (got > 0) != (tc.want > 0) {
			t.Errorf("compareIDs(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// freePort returns a port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestCheckPortsFree(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	busy := held.Addr().String()
	// A replicant node already on a port: say which.
	other := statusServer(t, &client.Status{ID: "n7", Role: "leader"})
	free := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	tests := []struct {
		name  string
		ports []devPort
		want  []string // parts of the error; nil for no error
	}{
		{"all free", []devPort{{"n1", "RESP", free}}, nil},
		{"something listens", []devPort{{"n1", "RESP", free}, {"n2", "peer", busy}},
			[]string{busy + " (n2 peer): port already in use: something else is listening there", "sport = :" + portOf(busy)}},
		{"a replicant node listens", []devPort{{"n1", "HTTP", hostOf(other)}},
			[]string{hostOf(other) + " (n1 HTTP)", "replicant node n7 is listening there"}},
		{"both named", []devPort{{"n1", "HTTP", hostOf(other)}, {"n2", "peer", busy}},
			[]string{hostOf(other) + " (n1 HTTP)", busy + " (n2 peer)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := checkPortsFree(ctx, tc.ports)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("checkPortsFree: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("checkPortsFree: nil, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// testDevConfig is a one-node dev run on free ports, with data in a
// temporary directory and the test binary as the server.
func testDevConfig(t *testing.T) devConfig {
	cfg := defaultDevConfig()
	cfg.nodes = 1
	cfg.data = filepath.Join(t.TempDir(), "dev")
	cfg.respBase, cfg.httpBase, cfg.peerBase = freePort(t)-1, freePort(t)-1, freePort(t)-1
	cfg.exe = os.Args[0]
	cfg.out = &bytes.Buffer{}
	cfg.startupTimeout, cfg.stopTimeout = 10*time.Second, 5*time.Second
	return cfg
}

// dev refuses a port in use before it starts or creates anything.
func TestDevPortInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	cfg := testDevConfig(t)
	cfg.httpBase = held.Addr().(*net.TCPAddr).Port - 1 // n1's HTTP port
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = runDev(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), held.Addr().String()+" (n1 HTTP): port already in use") {
		t.Fatalf("runDev with n1's HTTP port held: %v, want an error naming %s", err, held.Addr())
	}
	if _, statErr := os.Stat(cfg.data); !os.IsNotExist(statErr) {
		t.Errorf("data directory was created (stat: %v)", statErr)
	}
}

// A node that dies at start: dev says why, from the node's own output.
func TestDevNodeDiesAtStart(t *testing.T) {
	t.Setenv(testAsEnv, "fake-server")
	t.Setenv(fakeOutputEnv, "level=INFO msg=\"storage recovered\"\nlevel=INFO msg=listening\n"+
		"Error: listen tcp 127.0.0.1:6381: bind: address already in use\n")
	cfg := testDevConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := runDev(ctx, cfg)
	if err == nil {
		t.Fatal("runDev: nil, want the node's death")
	}
	msg := err.Error()
	for _, want := range []string{
		"n1 exited during start-up (exit status 1): listen tcp 127.0.0.1:6381: bind: address already in use",
		"last lines of its output (all of it in " + filepath.Join(cfg.data, "n1.log") + ")",
		`  | level=INFO msg="storage recovered"`,
		"  | level=INFO msg=listening",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	// The error line is the headline, not repeated among the context.
	if strings.Count(msg, "address already in use") != 1 || strings.Contains(msg, "Error:") {
		t.Errorf("error repeats the node's error line:\n%s", msg)
	}
	// The log file still has everything.
	log, err := os.ReadFile(filepath.Join(cfg.data, "n1.log"))
	if err != nil || !strings.Contains(string(log), "Error: listen tcp") {
		t.Errorf("n1.log: %q, %v", log, err)
	}
}

func TestDescribeExit(t *testing.T) {
	killed := exec.Command("sh", "-c", "kill -9 $$")
	killErr := killed.Run()
	exit1 := exec.Command("sh", "-c", "exit 1")
	exit1Err := exit1.Run()
	tests := []struct {
		name   string
		err    error
		output string
		want   string
	}{
		{"killed: only the signal", killErr, "level=INFO msg=serving\n", "n2 exited (signal: killed)\n"},
		{"error line and context", exit1Err, "z\na\nb\nc\nError: boom\nshutting down\n",
			"n2 exited (exit status 1): boom\nlast lines of its output (all of it in n2.log):\n  | a\n  | b\n  | c\n"},
		{"panic", exit1Err, "a\npanic: nil map\n\ngoroutine 1 [running]:\nmain.main()\n",
			"n2 exited (exit status 1): panic: nil map\nlast lines of its output (all of it in n2.log):\n  | a\n"},
		{"no error line: last lines", exit1Err, "a\nb\nc\nd\n",
			"n2 exited (exit status 1)\nlast lines of its output (all of it in n2.log):\n  | b\n  | c\n  | d\n"},
		{"no output", nil, "", "n2 exited (exit status 0); its output is in n2.log\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &devNode{id: "n2", logPath: "n2.log", tail: &tailWriter{max: 10}}
			_, _ = d.tail.Write([]byte(tc.output))
			if got := describeExit(d, tc.err, "", 3); got != tc.want {
				t.Errorf("describeExit:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestErrorLine(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  int
	}{
		{"none", []string{"a", "b"}, -1},
		{"last Error wins", []string{"Error: one", "x", "Error: two", "y"}, 2},
		{"Error before panic", []string{"Error: bad", "panic: worse"}, 0},
		{"panic", []string{"a", "panic: x", "goroutine 1"}, 1},
		{"fatal error", []string{"fatal error: concurrent map writes", "x"}, 0},
		{"slog text", []string{"level=INFO msg=a", "level=ERROR msg=disk", "level=INFO msg=b"}, 1},
		{"slog json", []string{`{"level":"ERROR","msg":"disk"}`}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorLine(tc.lines); got != tc.want {
				t.Errorf("errorLine(%q) = %d, want %d", tc.lines, got, tc.want)
			}
		})
	}
}

func TestTailWriter(t *testing.T) {
	long := strings.Repeat("x", maxPartial+10)
	tests := []struct {
		name   string
		max    int
		writes []string
		want   []string
	}{
		{"lines split across writes", 5, []string{"he", "llo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"keeps the last max", 2, []string{"1\n2\n3\n", "4\n"}, []string{"3", "4"}},
		{"unfinished line included", 5, []string{"a\nb"}, []string{"a", "b"}},
		{"empty lines kept", 5, []string{"a\n\nb\n"}, []string{"a", "", "b"}},
		{"long unfinished line keeps its end", 5, []string{long, "end"}, []string{long[len(long)+3-maxPartial:] + "end"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := &tailWriter{max: tc.max}
			for _, w := range tc.writes {
				if n, err := tw.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := tw.Lines(); fmt.Sprint(got) != fmt.Sprint(tc.want) || len(got) != len(tc.want) {
				t.Errorf("Lines() = %q, want %q", got, tc.want)
			}
		})
	}
}
