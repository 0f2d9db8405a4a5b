package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/bridge/workerd"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// streamTimeout is the stw connector's stream_timeout in these tests.
const streamTimeout = 2 * time.Second

// pipeline is an otelcol-stw Collector, run in the test from this distribution's
// components: otlp and stwworkerd receivers → stw connector → otlp exporter → sink.
type pipeline struct {
	otlp, workerd, metrics string // host:port of the OTLP/gRPC, stwworkerd and Prometheus endpoints
	sink                   *otlpsink.Sink
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	// The sink serves only once the Collector runs: the Collector sets gRPC's global
	// logger as it starts, which must not race with a gRPC server already logging.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{otlp: testenv.FreeAddr(t), workerd: testenv.FreeAddr(t), metrics: testenv.FreeAddr(t)}
	metricsHost, metricsPort, _ := strings.Cut(p.metrics, ":")
	cfg := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
  stwworkerd:
    endpoint: %s
connectors:
  stw:
    stream_timeout: %s
    sweep_interval: 100ms
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: %s
                port: %s
  pipelines:
    logs:
      receivers: [otlp, stwworkerd]
      exporters: [stw]
    traces:
      receivers: [stw]
      exporters: [otlp_grpc]
`, p.otlp, p.workerd, streamTimeout, lis.Addr(), metricsHost, metricsPort)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	set := settings()
	set.ConfigProviderSettings.ResolverSettings = confmap.ResolverSettings{
		URIs:              []string{"file:" + path},
		ProviderFactories: set.ConfigProviderSettings.ResolverSettings.ProviderFactories,
		DefaultScheme:     "env",
	}
	col, err := otelcol.NewCollector(set)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- col.Run(context.Background()) }()
	t.Cleanup(func() {
		col.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("the Collector stopped with %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for col.GetState() != otelcol.StateRunning {
		select {
		case err := <-done:
			t.Fatalf("the Collector did not start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the Collector did not start within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.sink = otlpsink.Serve(lis)
	t.Cleanup(p.sink.Stop)
	return p
}

// producer is an app instrumented with stwbridge's processor, exporting to the pipeline.
func (p *pipeline) producer(t *testing.T) (*sdktrace.TracerProvider, *processor.Processor, *otlpexport.Exporter) {
	t.Helper()
	exp, err := otlpexport.New(context.Background(), otlpexport.WithEndpoint(p.otlp), otlpexport.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	proc := processor.New(exp, processor.WithFlushInterval(10*time.Millisecond))
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc)), proc, exp
}

// waitSpans waits until the sink holds the spans cond accepts.
func (p *pipeline) waitSpans(t *testing.T, what string, cond func([]*tracepb.Span) bool) []*tracepb.Span {
	t.Helper()
	var spans []*tracepb.Span
	if !p.sink.WaitFor(60*time.Second, func(s *otlpsink.Sink) bool { spans = s.Spans(); return cond(spans) }) {
		t.Fatalf("the sink did not get %s within 60s; it has %d spans: %s", what, len(spans), names(spans))
	}
	return spans
}

func names(spans []*tracepb.Span) string {
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("%q(unfinished=%v)", s.Name, unfinished(s)))
	}
	return strings.Join(out, ", ")
}

func unfinished(s *tracepb.Span) bool {
	for _, kv := range s.Attributes {
		if kv.Key == "stw.unfinished" {
			return kv.Value.GetBoolValue()
		}
	}
	return false
}

func TestNormalRunWithRename(t *testing.T) {
	p := startPipeline(t)
	sdk, proc, _ := p.producer(t)
	tr := proc.Wrap(sdk).Tracer("e2e")
	ctx, root := tr.Start(context.Background(), "GET")
	_, child := tr.Start(ctx, "handler")
	child.SetName("GET /users/{id}")
	child.SetAttributes(attribute.Int("user.id", 7))
	child.End()
	root.End()
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := p.waitSpans(t, "the root and its renamed child", func(s []*tracepb.Span) bool { return len(s) >= 2 })
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2: %s", len(spans), names(spans))
	}
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		byName[s.Name] = s
		if unfinished(s) {
			t.Errorf("span %q came out unfinished", s.Name)
		}
	}
	r, c := byName["GET"], byName["GET /users/{id}"]
	if r == nil || c == nil {
		t.Fatalf("want spans GET and GET /users/{id} (the rename), got %s", names(spans))
	}
	if !slices.Equal(c.ParentSpanId, r.SpanId) || !slices.Equal(c.TraceId, r.TraceId) {
		t.Errorf("the child is not under the root")
	}
	if c.EndTimeUnixNano <= c.StartTimeUnixNano {
		t.Errorf("child end %d not after start %d", c.EndTimeUnixNano, c.StartTimeUnixNano)
	}
}

// An app that stops sending mid-span (as when killed with -9): its open spans come
// out unfinished once its stream has been silent for stream_timeout.
func TestKilledProducerSpansUnfinished(t *testing.T) {
	p := startPipeline(t)
	sdk, proc, exp := p.producer(t)
	tr := proc.Wrap(sdk).Tracer("e2e")
	ctx, root := tr.Start(context.Background(), "job")
	_, step := tr.Start(ctx, "step 1")
	if err := proc.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The process dies: nothing more leaves it (no end, no heartbeat, no shutdown report).
	_ = exp.Shutdown(context.Background())
	defer func() { step.End(); root.End(); _ = sdk.Shutdown(context.Background()) }()

	spans := p.waitSpans(t, "two unfinished spans", func(s []*tracepb.Span) bool { return len(s) >= 2 })
	waited := time.Since(killed)
	for _, s := range spans {
		if !unfinished(s) {
			t.Errorf("span %q not marked stw.unfinished=true", s.Name)
		}
		if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("span %q has status %v, want Error", s.Name, s.Status)
		}
	}
	if waited < streamTimeout {
		t.Errorf("unfinished spans came %v after the producer stopped, before stream_timeout %v", waited, streamTimeout)
	}
	t.Logf("open spans of the stopped producer reported unfinished after %v (stream_timeout %v)", waited.Round(time.Millisecond), streamTimeout)
}

// A bad stw.* record is rejected and counted; the good records of the same request
// become their span.
func TestBadRecordsRejectedGoodKept(t *testing.T) {
	p := startPipeline(t)
	sid := bridge.StreamID{1, 2, 3}
	tid := [16]byte{9, 9, 9}
	open := bridge.Event{TraceID: tid, SpanID: [8]byte{1}, StreamID: sid, Sequence: 0, Time: time.Now(), Body: &bridge.SpanOpen{Name: "good"}}
	end := bridge.Event{TraceID: tid, SpanID: [8]byte{1}, StreamID: sid, Sequence: 1, Time: time.Now().Add(time.Millisecond), Body: &bridge.SpanEndData{}}
	req := stwotlp.EventsRequest([]bridge.Event{open, end})
	sl := req.ResourceLogs[0].ScopeLogs[0]
	sl.LogRecords = append(sl.LogRecords, &logspb.LogRecord{
		EventName: "stw.span_open", TraceId: tid[:], SpanId: []byte{2, 2, 2, 2, 2, 2, 2, 2},
		Attributes: []*commonpb.KeyValue{{Key: "stw.stream_id", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "not hex"}}}},
	})
	conn, err := grpc.NewClient(p.otlp, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := collogspb.NewLogsServiceClient(conn).Export(context.Background(), req); err != nil {
		t.Fatalf("Export with one bad record among good ones: %v", err)
	}
	spans := p.waitSpans(t, "the good span", func(s []*tracepb.Span) bool { return len(s) >= 1 })
	if len(spans) != 1 || spans[0].Name != "good" || unfinished(spans[0]) {
		t.Fatalf("want the one complete span \"good\", got %s", names(spans))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := p.metric("otelcol_connector_stw_records_rejected")
		if err == nil && v == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("otelcol_connector_stw_records_rejected = %v (%v), want 1", v, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metric reads one counter from the Collector's own Prometheus endpoint.
func (p *pipeline) metric(name string) (float64, error) {
	res, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line)
		return strconv.ParseFloat(f[len(f)-1], 64)
	}
	return 0, fmt.Errorf("%s not among the Collector's metrics", name)
}

// workerd tail events POSTed to stwworkerd become the spans the forwarder's assembler
// makes of them.
func TestWorkerdEventsThroughStwworkerd(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "testdata", "workerd-stw-sample.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	events, errs := workerd.DecodeStream(sample)
	if len(errs) > 0 {
		t.Fatalf("the sample does not decode: %v", errs)
	}
	var want []string
	asm := bridge.NewAssembler(bridge.SpanConsumerFunc(func(_ context.Context, spans []bridge.Span) error {
		for _, s := range spans {
			parent := ""
			if s.Parent.IsValid() {
				parent = s.Parent.String()
			}
			want = append(want, fmt.Sprintf("%s %s %q", s.SpanID, parent, s.Name))
		}
		return nil
	}))
	if err := asm.Consume(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("the sample completes no span")
	}

	p := startPipeline(t)
	res, err := http.Post("http://"+p.workerd+"/v1/stw", "application/x-ndjson", strings.NewReader(string(sample)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/stw: %s", res.Status)
	}
	spans := p.waitSpans(t, fmt.Sprintf("the %d spans of the sample", len(want)), func(s []*tracepb.Span) bool { return len(s) >= len(want) })
	var got []string
	for _, s := range spans {
		got = append(got, fmt.Sprintf("%x %x %q", s.SpanId, s.ParentSpanId, s.Name))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("stwworkerd → stw gave\n%s\nthe assembler alone\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A malformed body is refused with 400 and a message.
	res, err = http.Post("http://"+p.workerd+"/v1/stw", "application/x-ndjson", strings.NewReader("{not json\n"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed body: %s, want 400", res.Status)
	}
}
