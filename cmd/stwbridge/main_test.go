package main

// Process-level tests: they build the stwbridge binary and run it as an operator would,
// between real OTel SDK apps, a real OpenTelemetry Collector and an OTLP test sink.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// helperEnv makes the test binary run as a small instrumented app instead of the tests.
const helperEnv = "STWBRIDGE_TEST_HELPER_APP"

var binary string // the stwbridge binary built by TestMain

func TestMain(m *testing.M) {
	if endpoint := os.Getenv(helperEnv); endpoint != "" {
		os.Exit(helperApp(endpoint))
	}
	dir, err := os.MkdirTemp("", "stwbridge-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "stwbridge")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building stwbridge:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newTracing returns an SDK whose processor streams to a stwbridge at endpoint, and the
// wrapped provider that streams renames at once.
func newTracing(ctx context.Context, endpoint string, heartbeat time.Duration) (*sdktrace.TracerProvider, trace.TracerProvider, error) {
	exp, err := otlpexport.New(ctx, otlpexport.WithEndpoint(endpoint), otlpexport.WithInsecure())
	if err != nil {
		return nil, nil, err
	}
	p := processor.New(exp, processor.WithHeartbeatInterval(heartbeat), processor.WithFlushInterval(20*time.Millisecond),
		processor.WithAnnounceDelay(0)) // every event streamed, renames included
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p),
		sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", "helper-app"))))
	return sdk, p.Wrap(sdk), nil
}

// helperApp opens two spans, says READY once their SpanOpen left, and then waits to be
// killed: the crashed producer of TestKilledAppSpansBecomeUnfinished.
func helperApp(endpoint string) int {
	ctx := context.Background()
	_, tp, err := newTracing(ctx, endpoint, 100*time.Millisecond)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper app:", err)
		return 1
	}
	tr := tp.Tracer("helper")
	ctx, root := tr.Start(ctx, "doomed request")
	_, child := tr.Start(ctx, "doomed query")
	child.SetName("doomed query renamed")
	_ = root
	time.Sleep(300 * time.Millisecond) // > the flush interval: the events are on their way
	fmt.Println("READY")
	select {} // killed here, spans open
}

// bridgeProc is a running stwbridge.
type bridgeProc struct {
	cmd            *exec.Cmd
	grpc, http     string
	stdout, stderr *syncBuffer
	done           chan struct{}
}

type syncBuffer = testenv.SyncBuffer

// startBridge runs stwbridge with args on free ports and waits until it is healthy.
func startBridge(t *testing.T, args ...string) *bridgeProc {
	t.Helper()
	return startBridgeOn(t, testenv.FreeAddr(t), testenv.FreeAddr(t), args...)
}

// startBridgeOn runs stwbridge with args on the given addresses (to restart one in
// place) and waits until it is healthy.
func startBridgeOn(t *testing.T, grpcAddr, httpAddr string, args ...string) *bridgeProc {
	t.Helper()
	b := &bridgeProc{grpc: grpcAddr, http: httpAddr,
		stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	b.cmd = exec.Command(binary, append([]string{"--listen", b.grpc, "--http-listen", b.http}, args...)...)
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.done
		if t.Failed() {
			t.Logf("stwbridge stderr:\n%s\nstdout:\n%s", b.stderr.String(), b.stdout.String())
		}
	})
	conn, err := grpc.NewClient(b.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return b
		}
		select {
		case <-b.done:
			t.Fatalf("stwbridge exited at start: %v\n%s", b.cmd.ProcessState, b.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("stwbridge not healthy after 20s:\n%s", b.stderr.String())
		}
	}
}

// terminate sends SIGTERM and returns the exit code.
func (b *bridgeProc) terminate(t *testing.T, within time.Duration) int {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
		return b.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("stwbridge did not exit within %v of SIGTERM", within)
	}
	return -1
}

func findSpan(s *otlpsink.Sink, name string) *tracepb.Span {
	for _, sp := range s.Spans() {
		if sp.Name == name {
			return sp
		}
	}
	return nil
}

func unfinished(sp *tracepb.Span) bool {
	for _, kv := range sp.GetAttributes() {
		if kv.Key == stwotlp.AttrUnfinished {
			return kv.Value.GetBoolValue()
		}
	}
	return false
}

func startSink(t *testing.T) *otlpsink.Sink {
	t.Helper()
	s, err := otlpsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// TestAppToCollector: an app with the real SDK and the processor streams to stwbridge,
// which forwards through a real Collector to a sink; complete spans and their renames
// arrive, as spans and (with --forward-events) as lifecycle events.
func TestAppToCollector(t *testing.T) {
	sink := startSink(t)
	col := testenv.StartCollector(t, testenv.CollectorConfig{ForwardTo: sink.Addr()})
	b := startBridge(t, "--forward", "http://"+col.Endpoint(), "--forward-events")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sdk, tp, err := newTracing(ctx, b.grpc, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tr := tp.Tracer("app")
	cctx, root := tr.Start(ctx, "handler", trace.WithAttributes(attribute.String("http.request.method", "GET")))
	root.SetName("GET /orders/{id}")
	_, child := tr.Start(cctx, "db query")
	child.End()
	root.End()
	if err := sdk.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	ok := sink.WaitFor(15*time.Second, func(s *otlpsink.Sink) bool {
		renames := 0
		for _, r := range s.LogRecords() {
			if r.EventName == stwotlp.EventUpdateName {
				renames++
			}
		}
		return findSpan(s, "GET /orders/{id}") != nil && findSpan(s, "db query") != nil && renames >= 1
	})
	if !ok {
		t.Fatalf("the sink did not get both spans and the rename event: spans %v", sink.Spans())
	}
	rootSpan, childSpan := findSpan(sink, "GET /orders/{id}"), findSpan(sink, "db query")
	if unfinished(rootSpan) || !bytes.Equal(childSpan.ParentSpanId, rootSpan.SpanId) || !bytes.Equal(childSpan.TraceId, rootSpan.TraceId) {
		t.Errorf("spans not assembled as one trace: root %v child %v", rootSpan, childSpan)
	}
	if code := b.terminate(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

// TestKilledAppSpansBecomeUnfinished: an app killed with SIGKILL mid-span has its open
// spans reach the sink, through the Collector, as unfinished once its heartbeats stop.
func TestKilledAppSpansBecomeUnfinished(t *testing.T) {
	sink := startSink(t)
	col := testenv.StartCollector(t, testenv.CollectorConfig{ForwardTo: sink.Addr()})
	const streamTimeout = 1500 * time.Millisecond
	b := startBridge(t, "--forward", "http://"+col.Endpoint(), "--stream-timeout", streamTimeout.String(), "--orphan-after", "10m")

	app := exec.Command(os.Args[0], "-test.run=^$")
	app.Env = append(os.Environ(), helperEnv+"="+b.grpc)
	app.Stderr = os.Stderr
	testenv.StartUntilLine(t, app, "READY", 20*time.Second)
	// While the app lives, its heartbeats keep its open spans from being reported.
	time.Sleep(2 * streamTimeout)
	if sp := findSpan(sink, "doomed request"); sp != nil {
		t.Fatalf("an open span of a live app was reported as unfinished: %v", sp)
	}

	if err := app.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = app.Wait()
	killed := time.Now()
	ok := sink.WaitFor(streamTimeout+5*time.Second, func(s *otlpsink.Sink) bool {
		return findSpan(s, "doomed request") != nil && findSpan(s, "doomed query renamed") != nil
	})
	if !ok {
		t.Fatalf("the killed app's open spans did not arrive within %v: %v", streamTimeout+5*time.Second, sink.Spans())
	}
	t.Logf("open spans of the killed app reached the sink %v after SIGKILL (stream timeout %v)", time.Since(killed).Round(time.Millisecond), streamTimeout)
	for _, name := range []string{"doomed request", "doomed query renamed"} {
		if sp := findSpan(sink, name); !unfinished(sp) || sp.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("%s not reported as unfinished with status Error: %v", name, sp)
		}
	}
}

// TestSIGTERMLosesNothingAcknowledged: every event stwbridge acknowledged before SIGTERM
// reaches downstream, complete spans as spans, open ones as unfinished, and the exit
// code is 0.
func TestSIGTERMLosesNothingAcknowledged(t *testing.T) {
	sink := startSink(t)
	b := startBridge(t, "--forward", "http://"+sink.Addr())
	conn, err := grpc.NewClient(b.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := collogspb.NewLogsServiceClient(conn)
	const streams, complete, open = 20, 20, 5 // spans per stream
	now := time.Now()
	for s := range streams {
		st := bridge.StreamID{0x5e, 14: byte(s >> 8), 15: byte(s)}
		tid := trace.TraceID{0x7e, 14: byte(s >> 8), 15: byte(s)}
		var events []bridge.Event
		seq := uint64(0)
		add := func(span int, body bridge.Body) {
			events = append(events, bridge.Event{TraceID: tid, SpanID: trace.SpanID{6: byte(span >> 8), 7: byte(span + 1)},
				StreamID: st, Sequence: seq, Time: now, Body: body})
			seq++
		}
		for i := range complete + open {
			add(i, &bridge.SpanOpen{Name: fmt.Sprintf("span-%d-%d", s, i)})
		}
		for i := range complete {
			add(i, &bridge.SpanEndData{})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := client.Export(ctx, stwotlp.EventsRequest(events))
		cancel()
		if err != nil {
			t.Fatalf("export: %v", err)
		}
	}
	// SIGTERM at once: the events are acknowledged but maybe not yet assembled.
	if code := b.terminate(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, b.stderr.String())
	}
	got := map[string]bool{}
	for _, sp := range sink.Spans() {
		got[sp.Name] = unfinished(sp)
	}
	lostComplete, lostOpen := 0, 0
	for s := range streams {
		for i := range complete + open {
			name := fmt.Sprintf("span-%d-%d", s, i)
			isUnfinished, ok := got[name]
			switch {
			case !ok && i < complete:
				lostComplete++
			case !ok:
				lostOpen++
			case isUnfinished != (i >= complete):
				t.Errorf("%s: unfinished=%v", name, isUnfinished)
			}
		}
	}
	t.Logf("acknowledged %d complete and %d open spans; downstream after SIGTERM: %d spans", streams*complete, streams*open, len(got))
	if lostComplete+lostOpen > 0 {
		t.Fatalf("lost after SIGTERM: %d complete spans, %d open spans", lostComplete, lostOpen)
	}
}

// TestStdoutDefault: with no --forward, spans are printed as a tree on stdout.
func TestStdoutDefault(t *testing.T) {
	b := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sdk, tp, err := newTracing(ctx, b.grpc, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tr := tp.Tracer("app")
	cctx, root := tr.Start(ctx, "checkout")
	_, child := tr.Start(cctx, "charge card")
	child.End()
	root.End()
	_ = sdk.Shutdown(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.stdout.String(), "└─ charge card") {
		if time.Now().After(deadline) {
			t.Fatalf("no tree on stdout:\n%s", b.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(b.stdout.String(), "service=helper-app") {
		t.Errorf("tree lacks the service name:\n%s", b.stdout.String())
	}
	if !strings.Contains(b.stderr.String(), "stwbridge listening") || !strings.Contains(b.stderr.String(), b.grpc) {
		t.Errorf("start log does not say where it listens:\n%s", b.stderr.String())
	}
	if code := b.terminate(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestBadCommandLine: a wrong flag, value or config key exits non-zero at once, naming it.
func TestBadCommandLine(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(cfg, []byte("assembler:\n  orphan_afterr: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--listne", ":1"}, nil, "--listne"},
		{[]string{"--orphan-after", "forever"}, nil, "orphan-after"},
		{[]string{"serve", "--forward", "collector:4317"}, nil, "http://host:port"},
		{[]string{"--config", cfg}, nil, "assembler.orphan_afterr"},
		{nil, []string{"STWBRIDGE_LOG_FORMAT=xml"}, "STWBRIDGE_LOG_FORMAT"},
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, binary, tc.args...)
		cmd.Env = append(os.Environ(), tc.env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() == 0 {
			t.Errorf("%q: exit %v, want non-zero", tc.args, err)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q does not name %q", tc.args, stderr.String(), tc.want)
		}
	}
	out, err := exec.Command(binary, "--help").Output()
	if err != nil || !strings.Contains(string(out), "STWBRIDGE_ORPHAN_AFTER") {
		t.Errorf("--help: %v\n%s", err, out)
	}
}
