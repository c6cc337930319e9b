package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replicant-db/replicant/internal/check/local"
)

// TestDockerComposeFailover is issue 12's packaging check, run the way an
// operator would: it builds the static binary and the FROM scratch image
// from the repository's Dockerfile, starts deploy/compose/single-leader.yaml,
// writes through the leader while `docker kill` takes the leader's container
// away, and checks that a survivor is appointed leader and holds every
// acknowledged write.
//
// It skips, saying why, only when Docker cannot be used here (no docker
// binary, no daemon or no permission to it, no compose); `.ci/run` starts
// the daemon when it can.
func TestDockerComposeFailover(t *testing.T) {
	compose := dockerCompose(t)
	ctx := ctxT(t, 4*time.Minute)
	suffix := randomHex(t, 4)

	image := "replicant-e2e:" + suffix
	buildImage(t, ctx, image)

	// Unique project: parallel runs and leftovers of a crashed run never
	// share containers, networks or volumes with this one.
	project := "replicante2e" + suffix
	file, err := filepath.Abs("../deploy/compose/single-leader.yaml")
	if err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 6)
	nodes := make([]*proc, 3)
	env := append(os.Environ(), "REPLICANT_IMAGE="+image)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		nodes[i] = &proc{t: t, Node: &local.Node{ID: id, RESP: addrs[2*i], HTTP: addrs[2*i+1], Log: &local.Buffer{}}}
		// Published on loopback only, at ports free on this machine.
		up := strings.ToUpper(id)
		env = append(env, up+"_RESP="+nodes[i].RESP, up+"_HTTP="+nodes[i].HTTP)
	}
	run := func(ctx context.Context, args ...string) (string, error) {
		full := append(append(append([]string(nil), compose[1:]...), "-p", project, "-f", file), args...)
		cmd := exec.CommandContext(ctx, compose[0], full...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	t.Cleanup(func() {
		// Always, even after a failure or a timeout of ctx: a fresh
		// context for the teardown.
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			logs, _ := run(cctx, "logs", "--no-color")
			t.Logf("--- compose logs ---\n%s", logs)
		}
		if out, err := run(cctx, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	if out, err := run(ctx, "up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}

	waitFor(t, "all three containers ready (/readyz)", 90*time.Second, func() bool {
		for _, n := range nodes {
			if st, err := n.status(); err != nil || st.Leader == "" || !ready(n) {
				return false
			}
		}
		return true
	})
	st := nodes[0].mustStatus()
	old := nodeByID(t, nodes, st.Leader)
	oldEpoch := st.Epoch
	// The nodes must have advertised their compose names, not the
	// wildcard they listen on: a follower's READONLY names the leader.
	follower := nodes[(indexOf(nodes, old)+1)%3]
	err = follower.redis().Set(ctx, "probe", "x", 0).Err()
	if want := fmt.Sprintf("READONLY You can't write against a read only replica. leader=%s resp=%s:6379", old.ID, old.ID); err == nil || err.Error() != want {
		t.Fatalf("write to follower %s: %v, want %q", follower.ID, err, want)
	}

	// Write through the leader until its container is killed; remember
	// what it acknowledged.
	acked := map[string]string{}
	var mu sync.Mutex
	wctx, stopWriting := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c := redis.NewClient(&redis.Options{Addr: old.RESP, MaxRetries: -1, PoolSize: 1,
			DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
		defer c.Close()
		for i := 0; wctx.Err() == nil; i++ {
			k, v := fmt.Sprintf("k%05d", i), fmt.Sprintf("v%d-%s", i, suffix)
			if c.Set(wctx, k, v, 0).Err() == nil {
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}
	}()
	waitFor(t, "200 writes acknowledged by the leader", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	id, err := run(ctx, "ps", "-q", old.ID)
	if err != nil || strings.TrimSpace(id) == "" {
		t.Fatalf("container of %s: %v %q", old.ID, err, id)
	}
	if out, err := exec.CommandContext(ctx, "docker", "kill", strings.TrimSpace(id)).CombinedOutput(); err != nil {
		t.Fatalf("docker kill %s: %v\n%s", old.ID, err, out)
	}
	stopWriting()
	<-writerDone
	killedAt := time.Now()

	var survivors []*proc
	for _, n := range nodes {
		if n != old {
			survivors = append(survivors, n)
		}
	}
	var leader *proc
	waitFor(t, "a survivor appointed leader", 60*time.Second, func() bool {
		for _, n := range survivors {
			st, err := n.status()
			if err == nil && st.Role == "leader" && st.ID == n.ID && st.Epoch > oldEpoch {
				leader = n
				return true
			}
		}
		return false
	})
	t.Logf("%s killed after %d acknowledged writes; %s leads after %v", old.ID, len(acked), leader.ID, time.Since(killedAt).Round(time.Millisecond))

	c := leader.redis()
	waitFor(t, "the new leader takes writes", 30*time.Second, func() bool {
		return c.Set(ctx, "after-failover", suffix, 0).Err() == nil
	})
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for k, want := range acked {
		got, err := c.Get(ctx, k).Result()
		if err != nil || got != want {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged %s=%s, new leader %s answers %q, %v", k, want, leader.ID, got, err)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes missing after the failover", lost, len(acked))
	}
}

// dockerCompose returns the compose command to use (["docker", "compose"]
// or ["docker-compose"]), or skips the test when Docker is unusable.
func dockerCompose(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the Docker test builds an image and runs containers")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed: cannot build the image or run compose")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("docker cannot reach its daemon (not running, or no permission on its socket): %v: %s", err, bytes.TrimSpace(out))
	}
	// The compose plugin (v2) first, as Docker documents it; Debian's
	// docker-compose package is v1, whose file format this file also is.
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Skip("neither `docker compose` nor `docker-compose` is installed")
	return nil
}

// buildImage builds the static binary and the image from the repository's
// Dockerfile and .dockerignore, in a build context of its own (as `make
// image` lays it out), and removes the image when the test ends.
func buildImage(t *testing.T, ctx context.Context, image string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin/static/data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "bin/static/replicant"), "../cmd/replicant")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	// A static binary has no program interpreter (the dynamic loader a
	// FROM scratch image lacks).
	if b, err := os.ReadFile(filepath.Join(dir, "bin/static/replicant")); err != nil || bytes.Contains(b[:min(len(b), 4096)], []byte("ld-linux")) {
		t.Fatalf("bin/static/replicant is not static (%v)", err)
	}
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", image, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(cctx, "docker", "rmi", "-f", image).CombinedOutput(); err != nil {
			t.Logf("docker rmi %s: %v\n%s", image, err, out)
		}
	})
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", image, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "replicant ") {
		t.Fatalf("docker run %s --version: %v: %q", image, err, out)
	}
}

// ready reports whether p answers 200 on /readyz (it knows a leader and
// has applied what it acknowledged).
func ready(p *proc) bool {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + p.HTTP + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func nodeByID(t *testing.T, nodes []*proc, id string) *proc {
	t.Helper()
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no node %q among %d", id, len(nodes))
	return nil
}

func indexOf(nodes []*proc, p *proc) int {
	for i, n := range nodes {
		if n == p {
			return i
		}
	}
	return -1
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random suffix: %v", err)
	}
	return hex.EncodeToString(b)
}
