package demo_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/internal/testenv"
)

// TestTopology runs the compose demo's topology as local processes: stwdemo →
// stwbridge → the Collector (built from Go modules, started with the compose file's
// config, testdata/collector/demo.yaml) → a sink standing in for the trace UI. It checks
// that the slow request is visible while still open, the renamed span arrives under
// its route, and the job that crashed the app arrives as unfinished.
func TestTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	otelcol := testenv.OtelcolPath(t)
	root := testenv.RepoRoot()
	bin := t.TempDir()
	for _, cmd := range []string{"stwbridge", "stwdemo"} {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "./cmd/"+cmd)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", cmd, err, out)
		}
	}

	// The sink records when each span_open record arrived.
	sink, err := otlpsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Stop)
	var mu sync.Mutex
	openSeen := map[string]time.Time{} // span name → arrival of its stw.span_open
	onLogs := func(req *collogspb.ExportLogsServiceRequest) error {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					if r.EventName == "stw.span_open" {
						if name := attr(r.Attributes, "stw.span.name"); name != "" {
							if _, ok := openSeen[name]; !ok {
								openSeen[name] = now
							}
						}
					}
				}
			}
		}
		return nil
	}
	sink.SetHooks(func(s *otlpsink.Sink) { s.OnLogs = onLogs })

	collectorAddr := testenv.FreeAddr(t)
	start(t, "collector", waitListen(collectorAddr), exec.Command(otelcol, "--config", "file:"+filepath.Join(root, "testdata/collector/demo.yaml")),
		"DEMO_OTLP_LISTEN="+collectorAddr, "DEMO_EXPORTERS=[debug, otlp_grpc/ui]", "DEMO_UI_ENDPOINT="+sink.Addr())

	grpcAddr, httpAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	start(t, "stwbridge", waitListen(grpcAddr), exec.Command(filepath.Join(bin, "stwbridge")),
		"STWBRIDGE_LISTEN="+grpcAddr, "STWBRIDGE_HTTP_LISTEN="+httpAddr,
		"STWBRIDGE_FORWARD=http://"+collectorAddr, "STWBRIDGE_FORWARD_EVENTS=true",
		"STWBRIDGE_STREAM_TIMEOUT=8s", "STWBRIDGE_ORPHAN_AFTER=2m")

	demoAddr := testenv.FreeAddr(t)
	demo := exec.Command(filepath.Join(bin, "stwdemo"))
	demoExit := start(t, "stwdemo", waitListen(demoAddr), demo,
		"OTEL_SERVICE_NAME=stwdemo", "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+grpcAddr,
		"STWDEMO_LISTEN="+demoAddr, "STWDEMO_TRAFFIC_INTERVAL=300ms", "STWDEMO_SLOW=3s",
		"STWDEMO_JOB_DELAY=4s", "STWDEMO_JOB_STEP=300ms", "STWDEMO_CRASH_AFTER_STEPS=3")

	// The job kills the demo on purpose.
	select {
	case err := <-demoExit:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Fatalf("stwdemo should exit with code 3 when its job crashes; got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stwdemo did not crash within 30 s")
	}

	find := func(name string, pred func(*tracepb.Span) bool) *tracepb.Span {
		for _, s := range sink.Spans() {
			if s.Name == name && (pred == nil || pred(s)) {
				return s
			}
		}
		return nil
	}
	unfinished := func(s *tracepb.Span) bool { return attr(s.Attributes, "stw.unfinished") == "true" }
	if !sink.WaitFor(30*time.Second, func(*otlpsink.Sink) bool {
		return find("slow work", nil) != nil && find("GET /users/{id}", nil) != nil && find("nightly-import", unfinished) != nil
	}) {
		var names []string
		for _, s := range sink.Spans() {
			names = append(names, s.Name)
		}
		t.Fatalf("expected spans did not reach the sink; got %q", names)
	}

	// Visible while open: the span_open of the slow span reached the sink before the
	// span ended.
	slow := find("slow work", nil)
	mu.Lock()
	seen, ok := openSeen["slow work"]
	mu.Unlock()
	end := time.Unix(0, int64(slow.EndTimeUnixNano))
	if !ok || !seen.Before(end) {
		t.Errorf("the slow span should be visible while open: span_open arrived %v, span ended %v", seen, end)
	} else {
		t.Logf("slow span visible %v before it ended", end.Sub(seen).Round(time.Millisecond))
	}
	if s := find("GET /users/{id}", nil); s.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("renamed span has kind %v, want server", s.Kind)
	}
	job := find("nightly-import", unfinished)
	if job.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("unfinished job span has status %v, want error", job.Status)
	}
}

// start runs cmd with extra environment, waits until ready reports true, stops it at
// cleanup and returns a channel with its exit error.
func start(t *testing.T, name string, ready func() bool, cmd *exec.Cmd, env ...string) <-chan error {
	t.Helper()
	var out bytes.Buffer
	var outMu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { outMu.Lock(); defer outMu.Unlock(); return out.Write(p) })
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			outMu.Lock()
			t.Logf("%s output:\n%s", name, lastLines(out.String(), 60))
			outMu.Unlock()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return exit
}

func waitListen(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// attr returns the string form of a string or bool attribute, "" when absent.
func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key != key {
			continue
		}
		switch v := kv.Value.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue
		case *commonpb.AnyValue_BoolValue:
			if v.BoolValue {
				return "true"
			}
			return "false"
		}
	}
	return ""
}
