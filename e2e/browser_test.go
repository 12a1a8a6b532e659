package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/tasks"
)

// Browser test knobs.
const (
	// browserInstallTimeout bounds apt-get update + install of chromium.
	browserInstallTimeout = 5 * time.Minute
	// browserRunTimeout bounds one headless Chromium run.
	browserRunTimeout = 60 * time.Second
	// virtualTimeBudget is the page time (ms) Chromium lets pass before it
	// dumps the DOM: the JS fetches /monitoring/api/queues meanwhile.
	virtualTimeBudget = "10000"
)

// chromiumFlags are the flags Chromium needs on these machines: no
// sandbox (root), no GPU, and no background connections to Google.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
	"--no-first-run", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
}

// findChromium returns Debian's chromium, installing it with apt-get when it
// is missing and this test runs as root on a machine with apt-get; it skips
// the test with the reason when neither works (fails instead with
// REQUIRE_BROWSER=1).
func findChromium(tb testing.TB) string {
	tb.Helper()
	look := func() string {
		if _, err := os.Stat("/usr/bin/chromium"); err == nil {
			return "/usr/bin/chromium"
		}
		if p, err := exec.LookPath("chromium"); err == nil {
			return p
		}
		return ""
	}
	if p := look(); p != "" {
		return p
	}
	unavailable := func(why string) {
		tb.Helper()
		msg := "browser test: Debian chromium is not installed and " + why +
			"; install it with `apt-get install -y chromium` to run this test"
		if os.Getenv("REQUIRE_BROWSER") == "1" {
			tb.Fatal(msg + " (REQUIRE_BROWSER=1)")
		}
		tb.Skip(msg)
	}
	if os.Geteuid() != 0 {
		unavailable("the test setup cannot install it (not running as root)")
	}
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		unavailable("the test setup cannot install it (no apt-get on this machine)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserInstallTimeout)
	defer cancel()
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "chromium"}} {
		tb.Logf("browser test setup: running %s %s", aptGet, strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, aptGet, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			unavailable("`apt-get " + strings.Join(args, " ") + "` failed (" + err.Error() + "): " + lastLines(out, 5))
		}
	}
	p := look()
	if p == "" {
		unavailable("apt-get install -y chromium succeeded but no chromium binary was found")
	}
	tb.Logf("browser test setup: installed %s", p)
	return p
}

// lastLines is the end of a command's output, for a message.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// dumpDOM loads url in headless Chromium with a fresh profile and returns
// the DOM as rendered after virtualTimeBudget of page time. Chromium and
// everything it forked are killed (by process group) when it is done or
// after browserRunTimeout, and the profile directory is removed.
func dumpDOM(tb testing.TB, chromium, url string) string {
	tb.Helper()
	profile, err := os.MkdirTemp("", "orderflow-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		// A renderer that was still exiting may write a file late: retry.
		for i := 0; ; i++ {
			err := os.RemoveAll(profile)
			if err == nil {
				return
			}
			if i == 20 {
				tb.Errorf("remove chromium profile %s: %v", profile, err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), browserRunTimeout)
	defer cancel()
	args := append(append([]string{}, chromiumFlags...),
		"--user-data-dir="+profile,
		"--virtual-time-budget="+virtualTimeBudget,
		"--dump-dom", url)
	cmd := exec.CommandContext(ctx, chromium, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	// Chromium's own HOME-relative caches go into the profile too.
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Start()
	if err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	pgid := cmd.Process.Pid
	err = cmd.Wait()
	// The browser's helpers (zygote, renderers) share its process group:
	// end whatever is left of it. (Its crashpad handlers start their own
	// sessions and exit when the browser has gone.)
	if kerr := syscall.Kill(-pgid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
		tb.Logf("kill chromium process group %d: %v", pgid, kerr)
	}
	if ctx.Err() != nil {
		tb.Fatalf("chromium did not finish within %s: %s", browserRunTimeout, lastLines(stderr.Bytes(), 10))
	}
	if err != nil {
		tb.Fatalf("chromium: %v: %s", err, lastLines(stderr.Bytes(), 10))
	}
	tb.Logf("chromium rendered %s in %s (%d bytes of DOM)", url, time.Since(start).Round(time.Millisecond), stdout.Len())
	return stdout.String()
}

// adminServer serves the admin handler of w on a loopback httptest server.
func adminServer(tb testing.TB, w *app.Worker, redisAddr, token string) *httptest.Server {
	tb.Helper()
	ts := httptest.NewServer(app.AdminHandler(app.AdminConfig{
		Worker: w,
		Redis:  asynq.RedisClientOpt{Addr: redisAddr},
		Token:  token,
		Logger: testLogger(),
	}))
	tb.Cleanup(ts.Close)
	if !app.IsLoopback(ts.Listener.Addr().String()) {
		tb.Fatalf("admin test server listens on %s, not loopback", ts.Listener.Addr())
	}
	return ts
}

// httpGet answers the status and body of a plain GET.
func httpGet(tb testing.TB, url string, header http.Header) (int, http.Header, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// TestWebUIListsQueues loads the asynq web UI at /monitoring/ in headless
// Chromium and checks that the page, once its JS has fetched
// /monitoring/api/queues, lists each provider's queue; and that the admin
// token guards the UI.
func TestWebUIListsQueues(t *testing.T) {
	chromium := findChromium(t)

	srv := redistest.Mini(t)
	ps := map[string]providers.Provider{
		providers.Xportcn: fakeprovider.New(providers.Xportcn),
		providers.Depal:   fakeprovider.New(providers.Depal),
	}
	w := startWorker(t, srv, ps)
	queues := []string{}
	for _, name := range w.ProviderNames() {
		req := providers.OrderRequest{
			Provider: name, OutOrderID: "ui-" + name,
			Address: providers.Address{FullName: "Li Lei", Mobile: "13800138000", Address: "1 Example Road"},
			Items:   []providers.Item{{ProductID: 623456789012, SkuID: "b5f2", Quantity: 1}},
		}
		res, err := pipeline.Submit(context.Background(), w.Store(), w.Client(), w.Inspector(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != pipeline.Accepted {
			t.Fatalf("submit %s: %s (%v)", req.OutOrderID, res.Outcome, res.Err)
		}
		queues = append(queues, tasks.Queue(name, tasks.KindPreview))
	}
	// The queues must exist for asynq before the page asks for them.
	known, err := w.Inspector().Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if !strings.Contains(strings.Join(known, " "), q) {
			t.Fatalf("asynq knows queues %v, want %s among them", known, q)
		}
	}

	t.Run("rendered page lists the queues", func(t *testing.T) {
		ts := adminServer(t, w, srv.Addr, "")
		// The HTML alone holds no queue: the names come from the API.
		_, _, html := httpGet(t, ts.URL+"/monitoring/", nil)
		for _, q := range queues {
			if strings.Contains(html, q) {
				t.Fatalf("the served HTML already holds %q: the browser check would prove nothing", q)
			}
		}
		dom := dumpDOM(t, chromium, ts.URL+"/monitoring/")
		if missing := unlistedQueues(dom, queues); len(missing) > 0 {
			t.Fatalf("rendered queue table does not list %v; page text: %s", missing, clip(pageText(dom), 1500))
		}
		t.Logf("rendered queue table lists %v", queues)
	})

	t.Run("token guards the page", func(t *testing.T) {
		const token = "ui-test-token"
		ts := adminServer(t, w, srv.Addr, token)
		for _, c := range []struct {
			name   string
			url    string
			header http.Header
			want   int
		}{
			{"no token", ts.URL + "/monitoring/", nil, http.StatusUnauthorized},
			{"wrong token", ts.URL + "/monitoring/?token=nope", nil, http.StatusUnauthorized},
			{"API without token", ts.URL + "/monitoring/api/queues", nil, http.StatusUnauthorized},
			{"query token", ts.URL + "/monitoring/?token=" + token, nil, http.StatusOK},
			{"bearer token", ts.URL + "/monitoring/", http.Header{"Authorization": {"Bearer " + token}}, http.StatusOK},
		} {
			t.Run(c.name, func(t *testing.T) {
				status, hdr, body := httpGet(t, c.url, c.header)
				if status != c.want {
					t.Fatalf("GET %s: status %d, want %d: %s", c.url, status, c.want, clip(body, 300))
				}
				if status == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				if status == http.StatusOK && !strings.Contains(body, `id="root"`) {
					t.Errorf("GET %s: 200 but not the web UI's page: %s", c.url, clip(body, 300))
				}
			})
		}
		t.Run("browser with ?token= lists the queues", func(t *testing.T) {
			dom := dumpDOM(t, chromium, ts.URL+"/monitoring/?token="+token)
			// The document request carries ?token=; the UI's scripts and its
			// /monitoring/api/ calls ride on the session cookie it set.
			if missing := unlistedQueues(dom, queues); len(missing) > 0 {
				t.Fatalf("with ?token= the rendered UI lacks %v; page text: %q", missing, clip(pageText(dom), 200))
			}
		})
	})
}

// unlistedQueues returns the queues that the rendered queue table (its
// tbody, one row per queue, the name a link to the queue's page) lacks.
func unlistedQueues(dom string, queues []string) []string {
	body := ""
	if i := strings.Index(dom, "<tbody"); i >= 0 {
		body = dom[i:]
		if j := strings.Index(body, "</tbody>"); j >= 0 {
			body = body[:j]
		}
	}
	var missing []string
	for _, q := range queues {
		if !strings.Contains(body, `href="/monitoring/queues/`+q+`">`+q+`</a>`) {
			missing = append(missing, q)
		}
	}
	return missing
}

// pageText is the visible text of a DOM dump, for a message.
func pageText(dom string) string {
	dom = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>`).ReplaceAllString(dom, " ")
	dom = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " ")
	return strings.Join(strings.Fields(dom), " ")
}

// clip shortens s for a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
