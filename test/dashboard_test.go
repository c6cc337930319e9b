package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium (or a Chrome) for the browser test.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// page drives one headless browser tab showing a dashboard.
type page struct {
	t   *testing.T
	ctx context.Context
}

// text evaluates a JavaScript expression that returns a string.
func (p *page) text(js string) (string, error) {
	return chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
}

// waitText polls js until it returns a non-empty string, and returns it.
// On timeout it fails with what the page shows, so a failure says why.
func (p *page) waitText(what string, d time.Duration, js string) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	var last string
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = p.text(js)
		if lastErr == nil && last != "" {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	shown, _ := p.text(`document.getElementById('via').textContent + '\nbanners: ' +
		document.getElementById('banners').innerText + '\nleader: ' + document.getElementById('leader').textContent +
		'\nnodes:\n' + document.getElementById('nodes').innerText + '\ntimeline:\n' + document.getElementById('timeline').innerText`)
	p.t.Fatalf("dashboard: timed out after %s waiting for %s (last %q, %v); the page shows:\n%s", d, what, last, lastErr, shown)
	return ""
}

// TestDashboardInBrowser opens a follower's dashboard in headless
// Chromium and checks it tells the story: the leader's view of every
// member, a failover in the event timeline after the leader is killed, a
// "writes blocked" banner when the sync policy cannot be met, and the page
// carrying on through another member when its own node goes down.
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromiumPath()
	if chrome == "" {
		t.Skip("chromium is not installed (Debian package chromium; .ci/run installs it): cannot run the browser test")
	}
	c := newCluster(t, 3, "--sync", "FIRST 1 (*)", "--failover-timeout", "1s", "--sync-timeout", "1s", "--write-timeout", "2s")
	n2 := c.node("n2")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctxT(t, 90*time.Second), opts...)
	t.Cleanup(cancelAlloc)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tabCtx, chromedp.Navigate("http://"+n2.HTTP+"/")); err != nil {
		t.Fatalf("open n2's dashboard: %v", err)
	}
	p := &page{t: t, ctx: tabCtx}

	// 1. A follower's page shows the leader's view: n1 leads, every member
	// is listed with a link to its own dashboard, the sync follower is
	// healthy and sync, and nothing is wrong.
	p.waitText("n1 as leader and rows for n1, n2, n3", 30*time.Second, `(() => {
		const rows = [...document.querySelectorAll('#nodes tr')].map(r => r.dataset.node).sort().join(',');
		return document.getElementById('leader').textContent === 'n1' && rows === 'n1,n2,n3' ? rows : '';
	})()`)
	syncRow := p.waitText("a healthy sync follower in the leader's view", 10*time.Second, `(() => {
		for (const r of document.querySelectorAll('#nodes tr')) {
			const c = r.querySelectorAll('td');
			if (r.dataset.node !== 'n1' && c[2].textContent === 'sync' && c[3].textContent === 'yes') return r.innerText;
		}
		return '';
	})()`)
	t.Logf("sync follower row: %s", syncRow)
	links, err := p.text(`[...document.querySelectorAll('#nodes tr a')].map(a => a.href).sort().join(' ')`)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		if !strings.Contains(links, "http://"+n.HTTP+"/") {
			t.Errorf("no link to %s's dashboard (http://%s/) among %q", n.ID, n.HTTP, links)
		}
	}
	if b, _ := p.text(`document.getElementById('banners').innerText`); strings.TrimSpace(b) != "" {
		t.Fatalf("a healthy cluster shows banners: %q", b)
	}

	// 2. kill -9 the leader: the timeline shows the failover with the new
	// epoch and leader, as the cluster reports it.
	c.node("n1").kill()
	var newLeader string
	var epoch uint64
	c.waitFor("a new leader after n1 is killed", 20*time.Second, func() bool {
		newLeader, epoch = leaderOf(c, "n1")
		return newLeader != ""
	})
	t.Logf("new leader %s at epoch %d", newLeader, epoch)
	ev := p.waitText("the failover event in the timeline", 20*time.Second, fmt.Sprintf(`(() => {
		for (const li of document.querySelectorAll('#timeline li[data-kind="leader-changed"]'))
			if (li.textContent.includes('leader n1 → %s') && li.textContent.includes('→ %d)')) return li.innerText;
		return '';
	})()`, newLeader, epoch))
	t.Logf("timeline: %s", ev)
	p.waitText("the new leader in the summary", 10*time.Second,
		fmt.Sprintf(`document.getElementById('leader').textContent === %q ? 'ok' : ''`, newLeader))

	// 3. A policy that cannot be met with fallback block: ALL counts n1,
	// which is down. The page says writes are blocked, and they are.
	leader := c.node(newLeader)
	for _, kv := range [][2]string{{"sync-fallback", "block"}, {"sync", "ALL"}} {
		if out, err := exec.Command(binary, "config", "set", kv[0], kv[1], "--addr", leader.HTTP).CombinedOutput(); err != nil {
			t.Fatalf("config set %s %s: %v: %s", kv[0], kv[1], err, out)
		}
	}
	banner := p.waitText("the writes-blocked banner", 20*time.Second,
		`(document.querySelector('#banners [data-kind="writes-blocked"]') || {}).textContent || ''`)
	t.Logf("banner: %s", banner)
	if !strings.Contains(banner, "Writes blocked") || !strings.Contains(banner, "n1") {
		t.Errorf("blocked banner %q does not say writes are blocked for want of n1", banner)
	}
	code, err := putStatus(leader, "blocked-key", 10*time.Second)
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("a write while the banner says blocked answered %d, %v; want 503", code, err)
	}
	p.waitText("the writes-blocked event in the timeline", 10*time.Second,
		`(document.querySelector('#timeline li[data-kind="writes-blocked"]') || {}).textContent || ''`)

	// 4. The page's own node goes down: the page keeps running, says
	// since when n2 is unreachable, and shows the cluster through n3.
	n2.kill()
	down := p.waitText("the page's node reported unreachable", 20*time.Second,
		`(document.querySelector('#banners [data-kind="origin-down"]') || {}).textContent || ''`)
	t.Logf("banner: %s", down)
	if !strings.Contains(down, "n2 unreachable since") || !strings.Contains(down, "through n3") {
		t.Errorf("origin-down banner %q, want n2 unreachable since …, through n3", down)
	}
	p.waitText("n3 marked as the answering node", 10*time.Second,
		`(document.querySelector('#nodes tr[data-node="n3"]') || {textContent: ''}).textContent.includes('answering') ? 'ok' : ''`)
}

// putStatus writes key on p over HTTP and returns the status code.
func putStatus(p *proc, key string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+p.HTTP+"/v1/kv/"+key, strings.NewReader("v"))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		return resp.StatusCode, errors.New("unexpected " + strconv.Itoa(resp.StatusCode))
	}
	return resp.StatusCode, nil
}
