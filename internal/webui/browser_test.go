package webui_test

// Browser tests: the real forwarder serves the page, a real app (this test binary run
// as a child, with the OTel SDK, stwbridge's processor and otlpexport) streams spans
// to it, and Debian's chromium, driven by chromedp, shows them.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stwbridge/stwbridge/internal/auth/authtest"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/forwarder"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
)

// Environment of the helper app (this binary run as a child).
const (
	helperEndpoint = "STWBRIDGE_WEBUI_HELPER" // the forwarder's gRPC address: run as the app
	helperCA       = "STWBRIDGE_WEBUI_HELPER_CA"
	helperToken    = "STWBRIDGE_WEBUI_HELPER_TOKEN"
)

func TestMain(m *testing.M) {
	if endpoint := os.Getenv(helperEndpoint); endpoint != "" {
		os.Exit(helperApp(endpoint, os.Getenv(helperCA), os.Getenv(helperToken)))
	}
	os.Exit(m.Run())
}

// helperApp streams a checkout trace whose root and one child stay open, with a
// renamed span and a failed one, says READY, and waits to be killed.
func helperApp(endpoint, caFile, token string) int {
	ctx := context.Background()
	opts := []otlpexport.Option{otlpexport.WithEndpoint(endpoint)}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper app:", err)
			return 1
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		tc.RootCAs = certPool(pem)
		opts = append(opts, otlpexport.WithTLSConfig(tc))
	} else {
		opts = append(opts, otlpexport.WithInsecure())
	}
	if token != "" {
		opts = append(opts, otlpexport.WithHeaders(map[string]string{"authorization": "Bearer " + token}))
	}
	exp, err := otlpexport.New(ctx, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper app:", err)
		return 1
	}
	p := processor.New(exp, processor.WithHeartbeatInterval(100*time.Millisecond), processor.WithFlushInterval(20*time.Millisecond),
		processor.WithAnnounceDelay(0)) // the rename streams at once
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p),
		sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", "shop"))))
	tr := p.Wrap(sdk).Tracer("shop")

	// A finished trace first, so the list holds more than one.
	_, done := tr.Start(ctx, "GET /healthz")
	time.Sleep(3 * time.Millisecond)
	done.End()

	ctx, root := tr.Start(ctx, "POST /checkout")
	root.SetAttributes(attribute.String("http.request.method", "POST"), attribute.String("user.id", "u-1842"))
	_, stock := tr.Start(ctx, "reserve stock")
	time.Sleep(40 * time.Millisecond)
	stock.End()
	_, cart := tr.Start(ctx, "GET")
	cart.SetName("GET /cart/{id}")
	time.Sleep(25 * time.Millisecond)
	cart.End()
	_, coupon := tr.Start(ctx, "apply coupon")
	time.Sleep(15 * time.Millisecond)
	coupon.SetStatus(codes.Error, "coupon expired")
	coupon.End()
	cctx, charge := tr.Start(ctx, "charge card")
	charge.SetAttributes(attribute.String("payment.provider", "acme-pay"), attribute.Int("payment.amount_cents", 4999))
	_, call := tr.Start(cctx, "POST api.acme-pay.example/v2/charges")
	_ = call
	time.Sleep(300 * time.Millisecond) // > the flush interval: the events are on their way
	fmt.Println("READY")
	select {} // killed here, spans open
}

// bridge is an in-process forwarder for a test.
type bridge struct {
	httpURL string
	grpc    string
}

// startForwarder runs the real forwarder on free ports; with pki and token set, both
// listeners take TLS and require the token.
func startForwarder(t *testing.T, pki *authtest.PKI, token string) *bridge {
	t.Helper()
	cfg := config.Default()
	cfg.Receivers.OTLP.GRPC.Endpoint = testenv.FreeAddr(t)
	cfg.Receivers.OTLP.HTTP.Endpoint = testenv.FreeAddr(t)
	cfg.Assembler.StreamTimeout = config.Duration(time.Second) // a killed app is noticed soon
	scheme := "http"
	if pki != nil {
		scheme = "https"
		for _, tc := range []*config.ServerTLS{&cfg.Receivers.OTLP.GRPC.TLS, &cfg.Receivers.OTLP.HTTP.TLS} {
			tc.CertFile, tc.KeyFile = pki.ServerCertFile, pki.ServerKeyFile
		}
	}
	if token != "" {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Receivers.Auth.BearerTokenFile = file
	}
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	f, err := forwarder.New(ctx, cfg, log, io.Discard)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("forwarder log:\n%s", logs.String())
		}
		if token != "" && strings.Contains(logs.String(), token) {
			t.Errorf("the forwarder logged the bearer token")
		}
	})
	return &bridge{httpURL: scheme + "://" + f.HTTPAddr(), grpc: f.GRPCAddr()}
}

// startApp runs the helper app against b and waits until its spans are on their way.
func startApp(t *testing.T, b *bridge, caFile, token string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEndpoint+"="+b.grpc, helperCA+"="+caFile, helperToken+"="+token)
	cmd.Stderr = os.Stderr
	testenv.StartUntilLine(t, cmd, "READY", 30*time.Second)
	return cmd
}

// newBrowser starts headless chromium; it fails under `make test` when chromium is
// missing, and skips elsewhere.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := testenv.LookPath(t, "chromium")
	opts := append(append(chromedp.DefaultExecAllocatorOptions[:0:0], chromedp.DefaultExecAllocatorOptions[:]...),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	return ctx
}

// get runs one browser action within a generous deadline and returns its value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		page, _ := chromedp.Run(pctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\npage text:\n%s", what, err, page)
	}
	return v
}

// do runs browser steps within a generous deadline.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, ctx, what, chromedp.Steps(steps...))
}

type css = chromedp.CSS

// text returns the text of the first element matching the CSS selector sel, read in
// one step: the page redraws its rows while spans are open.
func text(t *testing.T, ctx context.Context, what, sel string) string {
	t.Helper()
	return get(t, ctx, what, chromedp.Evaluate[string](fmt.Sprintf(
		`(() => { const e = document.querySelector(%q); return e ? e.innerText : "<none>"; })()`, sel)))
}

// waitText waits until the element matching sel reads want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got = text(t, ctx, "reading "+sel, sel); got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s reads %q, want %q", sel, got, want)
		}
	}
}

// clickAt clicks with the mouse at the middle of the first element matching sel.
func clickAt(t *testing.T, ctx context.Context, sel string) chromedp.Action[chromedp.Void] {
	t.Helper()
	xy := get(t, ctx, "finding "+sel, chromedp.Evaluate[[]float64](fmt.Sprintf(
		`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.x + r.width / 4, r.y + r.height / 2]; })()`, sel)))
	return chromedp.MouseClickXY(xy[0], xy[1])
}

// openSeconds reads the "open 1.23s" label of the span named name, in seconds.
func openSeconds(t *testing.T, ctx context.Context, name string) float64 {
	t.Helper()
	label := get(t, ctx, "reading the open time of "+name, chromedp.Evaluate[string](fmt.Sprintf(
		`(() => { for (const r of document.querySelectorAll('.span[data-state="open"]')) {
			if (r.querySelector('.s-name').textContent === %q) return r.querySelector('.dur').textContent; }
			return ""; })()`, name)))
	d, err := time.ParseDuration(strings.TrimPrefix(label, "open "))
	if !strings.HasPrefix(label, "open ") || err != nil {
		t.Fatalf("span %q shows %q, want \"open <duration>\"", name, label)
	}
	return d.Seconds()
}

func TestLiveViewShowsOpenRenamedAndUnfinishedSpans(t *testing.T) {
	ctx := newBrowser(t)
	b := startForwarder(t, nil, "")
	do(t, ctx, "opening the live view",
		chromedp.Navigate(b.httpURL+"/"),
		chromedp.WaitVisible(css(`#conn[data-state="up"]`)),
		chromedp.WaitVisible(css(`#empty`)))
	app := startApp(t, b, "", "")

	// / led to /ui/; the checkout trace is in the list, open, and its waterfall shows.
	do(t, ctx, "waiting for the open trace",
		chromedp.WaitVisible(css(`.trace[data-state="open"]`)),
		chromedp.WaitVisible(css(`.span[data-state="open"] .dur`)),
	)
	loc := get(t, ctx, "reading the location", chromedp.Location())
	if !strings.HasSuffix(loc, "/ui/") {
		t.Errorf("/ led to %s, want /ui/", loc)
	}
	listed := text(t, ctx, "reading the trace list", `.trace[data-state="open"]`)
	for _, want := range []string{"POST /checkout", "shop", "3/6"} {
		if !strings.Contains(listed, want) {
			t.Errorf("the open trace's row %q lacks %q", listed, want)
		}
	}

	// The open span's duration grows while we watch.
	first := openSeconds(t, ctx, "charge card")
	var grown float64
	for deadline := time.Now().Add(20 * time.Second); ; {
		time.Sleep(300 * time.Millisecond)
		if grown = openSeconds(t, ctx, "charge card"); grown >= first+0.5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the open span's duration did not grow: %.2fs then %.2fs", first, grown)
		}
	}

	// The rename shows as new ← old.
	newName := text(t, ctx, "reading the renamed span", `.span:has(.old-name) .s-name`)
	oldName := text(t, ctx, "reading the old name", `.span .old-name`)
	if newName != "GET /cart/{id}" || oldName != "GET" {
		t.Errorf("rename shows %q ← %q, want \"GET /cart/{id}\" ← \"GET\"", newName, oldName)
	}
	errored := text(t, ctx, "reading the failed span", `.span[data-state="error"] .s-name`)
	if errored != "apply coupon" {
		t.Errorf("the span marked error is %q, want \"apply coupon\"", errored)
	}

	// A click shows the span's attributes.
	do(t, ctx, "opening a span's attributes",
		clickAt(t, ctx, `.span[data-state="open"]:nth-last-child(2)`),
		chromedp.WaitVisible(css(`.span-detail .attrs`)))
	attrs := text(t, ctx, "reading a span's attributes", `.span-detail`)
	if !strings.Contains(attrs, "payment.provider") || !strings.Contains(attrs, "acme-pay") {
		t.Errorf("span detail %q lacks the attribute payment.provider=acme-pay", attrs)
	}
	if path := os.Getenv("STWBRIDGE_SCREENSHOT"); path != "" {
		do(t, ctx, "letting the bars grow", chromedp.Sleep(time.Second))
		png := get(t, ctx, "taking a screenshot", chromedp.CaptureScreenshot())
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The app dies with spans open: they turn unfinished, and stop growing.
	if err := app.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "waiting for the unfinished spans",
		chromedp.WaitVisible(css(`.span[data-state="unfinished"] .badge.unfinished`)),
		chromedp.WaitNotPresent(css(`.span[data-state="open"]`)),
		chromedp.WaitVisible(css(`.trace[data-state="unfinished"]`)))
	n := get(t, ctx, "counting the unfinished spans", chromedp.Evaluate[int](`document.querySelectorAll('.span[data-state="unfinished"]').length`))
	if n != 3 {
		t.Errorf("%d spans shown unfinished, want 3 (the root, charge card and its call)", n)
	}
}

// TestLiveViewWithTokenAndTLS: over TLS with --bearer-token-file, the page asks for the
// token once and then streams with it.
func TestLiveViewWithTokenAndTLS(t *testing.T) {
	ctx := newBrowser(t, chromedp.Flag("ignore-certificate-errors", true))
	pki := authtest.NewPKI(t, t.TempDir(), "webui")
	const token = "s3cret-webui-token"
	b := startForwarder(t, pki, token)
	startApp(t, b, pki.CAFile, token)

	do(t, ctx, "opening the live view",
		chromedp.Navigate(b.httpURL+"/ui/"),
		chromedp.WaitVisible(css(`#auth`)),
		chromedp.SendKeys(css(`#token`), "wrong-token"),
		chromedp.Click(css(`#auth button`)),
		chromedp.WaitVisible(css(`#auth`)),
	)
	waitText(t, ctx, `#conn-text`, "the token was refused")
	do(t, ctx, "connecting with the token",
		chromedp.SendKeys(css(`#token`), token),
		chromedp.Click(css(`#auth button`)),
		chromedp.WaitVisible(css(`.trace[data-state="open"]`)),
		chromedp.WaitVisible(css(`#conn[data-state="up"]`)),
		chromedp.WaitNotVisible(css(`#auth`)),
	)
	url := get(t, ctx, "reading the location", chromedp.Location())
	if strings.Contains(url, token) {
		t.Errorf("the token is in the page's URL %s", url)
	}
}

func certPool(pem []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pem)
	return p
}
