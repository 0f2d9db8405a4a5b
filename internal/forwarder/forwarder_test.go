package forwarder

import (
	"context"
	"encoding/hex"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

type syncBuffer = testenv.SyncBuffer

type running struct {
	f      *Forwarder
	out    *syncBuffer
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
	conn   *grpc.ClientConn
}

// start runs a forwarder on free loopback ports with cfg changed by edit.
func start(t *testing.T, edit func(*config.Config)) *running {
	t.Helper()
	cfg := config.Default()
	cfg.Receivers.OTLP.GRPC.Endpoint = "127.0.0.1:0"
	cfg.Receivers.OTLP.HTTP.Endpoint = "127.0.0.1:0"
	cfg.Pipeline.Batch.Timeout = config.Duration(10 * time.Millisecond)
	cfg.Exporter.Compression = "none"
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	if edit != nil {
		edit(&cfg)
	}
	r := &running{out: &syncBuffer{}, logs: &syncBuffer{}, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	f, err := New(ctx, cfg, log, r.out)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r.f, r.cancel = f, cancel
	go func() { r.done <- f.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	r.conn, err = grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.conn.Close() })
	return r
}

// stop cancels Run and returns its error (once; later calls return nil).
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the forwarder did not stop within 10s")
	}
	return nil
}

var (
	res = resource.NewSchemaless(attribute.String("service.name", "shop"))
	tid = trace.TraceID{0xaa, 15: 1}
)

func stream(b byte) bridge.StreamID { return bridge.StreamID{0xee, 15: b} }

func ev(st bridge.StreamID, seq uint64, span byte, at time.Time, body bridge.Body) bridge.Event {
	return bridge.Event{TraceID: tid, SpanID: trace.SpanID{7: span}, StreamID: st, Sequence: seq, Time: at, Resource: res, Body: body}
}

func sendEvents(t *testing.T, conn *grpc.ClientConn, events ...bridge.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := collogspb.NewLogsServiceClient(conn).Export(ctx, stwotlp.EventsRequest(events))
	if err != nil || resp.PartialSuccess != nil {
		t.Fatalf("export events: %v %v", resp, err)
	}
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

func spanNamed(s *otlpsink.Sink, name string) *tracepb.Span {
	for _, sp := range s.Spans() {
		if sp.Name == name {
			return sp
		}
	}
	return nil
}

func boolAttr(sp *tracepb.Span, key string) bool {
	for _, kv := range sp.Attributes {
		if kv.Key == key {
			return kv.Value.GetBoolValue()
		}
	}
	return false
}

func TestForwardsAssembledSpansAndPassThrough(t *testing.T) {
	sink := startSink(t)
	r := start(t, func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + sink.Addr()
		c.ForwardEvents = true
	})
	now := time.Now()
	st := stream(1)
	sendEvents(t, r.conn,
		ev(st, 0, 1, now, &bridge.SpanOpen{Name: "handler", Attributes: []attribute.KeyValue{attribute.String("http.request.method", "GET")}}),
		ev(st, 1, 1, now, &bridge.UpdateName{Name: "GET /orders/{id}"}),
	)
	sendEvents(t, r.conn, ev(st, 2, 1, now.Add(5*time.Millisecond), &bridge.SpanEndData{}))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	plain := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{
		Spans: []*tracepb.Span{{TraceId: tid[:], SpanId: []byte{1, 1, 1, 1, 1, 1, 1, 1}, Name: "plain span"}}}}}}}
	if _, err := coltracepb.NewTraceServiceClient(r.conn).Export(ctx, plain); err != nil {
		t.Fatal(err)
	}
	plainLog := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{ScopeLogs: []*logspb.ScopeLogs{{
		LogRecords: []*logspb.LogRecord{{Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "hello"}}}}}}}}}
	if _, err := collogspb.NewLogsServiceClient(r.conn).Export(ctx, plainLog); err != nil {
		t.Fatal(err)
	}

	ok := sink.WaitFor(5*time.Second, func(s *otlpsink.Sink) bool {
		events := 0
		plainLogs := 0
		for _, rec := range s.LogRecords() {
			if strings.HasPrefix(rec.EventName, "stw.") {
				events++
			} else if rec.Body.GetStringValue() == "hello" {
				plainLogs++
			}
		}
		return spanNamed(s, "GET /orders/{id}") != nil && spanNamed(s, "plain span") != nil && events == 3 && plainLogs == 1
	})
	if !ok {
		t.Fatalf("sink did not get the renamed span, the plain span, 3 lifecycle events and the plain log: spans %v logs %v", sink.Spans(), sink.LogRecords())
	}
	sp := spanNamed(sink, "GET /orders/{id}")
	if boolAttr(sp, "stw.unfinished") || sp.EndTimeUnixNano-sp.StartTimeUnixNano != uint64(5*time.Millisecond) {
		t.Errorf("assembled span wrong: %v", sp)
	}

	// Metrics reflect what went through.
	body := scrape(t, r.f.HTTPAddr())
	for _, want := range []string{
		"stwbridge_received_events_total 3", "stwbridge_received_spans_total 1", "stwbridge_received_logs_total 1",
		"stwbridge_assembled_spans_total 1", "stwbridge_forwarded_spans_total 1", "stwbridge_open_spans 0",
		`stwbridge_exporter_sent_total{signal="traces"}`, "stwbridge_pipeline_queue_depth", "stwbridge_live_watchers 0",
		"stwbridge_stwingest_requests_total 0", "process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run returned %v after a clean shutdown", err)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestSilentProducerSpansBecomeUnfinished(t *testing.T) {
	sink := startSink(t)
	r := start(t, func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + sink.Addr()
		c.Assembler.StreamTimeout = config.Duration(300 * time.Millisecond)
	})
	begin := time.Now()
	sendEvents(t, r.conn, ev(stream(2), 0, 1, time.Now(), &bridge.SpanOpen{Name: "crashed work"}))
	if !sink.WaitFor(5*time.Second, func(s *otlpsink.Sink) bool { return spanNamed(s, "crashed work") != nil }) {
		t.Fatal("the open span of a silent producer never arrived as unfinished")
	}
	if sp := spanNamed(sink, "crashed work"); !boolAttr(sp, "stw.unfinished") || sp.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("span not marked unfinished: %v", sp)
	}
	if took := time.Since(begin); took < 300*time.Millisecond {
		t.Errorf("reported unfinished after %v, before the stream timeout", took)
	}
	if body := scrape(t, r.f.HTTPAddr()); !strings.Contains(body, "stwbridge_unfinished_spans_total 1") {
		t.Error("unfinished span not counted in /metrics")
	}
}

func TestOrphanAfter(t *testing.T) {
	sink := startSink(t)
	r := start(t, func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + sink.Addr()
		c.Assembler.OrphanAfter = config.Duration(300 * time.Millisecond)
	})
	st := stream(3)
	sendEvents(t, r.conn, ev(st, 0, 1, time.Now(), &bridge.SpanOpen{Name: "too long"}))
	// The producer stays alive (heartbeats) but the span never ends.
	deadline := time.Now().Add(5 * time.Second)
	seq := uint64(1)
	for spanNamed(sink, "too long") == nil && time.Now().Before(deadline) {
		sendEvents(t, r.conn, ev(st, seq, 1, time.Now(), &bridge.Heartbeat{}))
		seq++
		sink.WaitFor(100*time.Millisecond, func(s *otlpsink.Sink) bool { return spanNamed(s, "too long") != nil })
	}
	if sp := spanNamed(sink, "too long"); sp == nil || !boolAttr(sp, "stw.unfinished") {
		t.Fatalf("span open past --orphan-after not exported as unfinished: %v", sp)
	}
}

func TestShutdownExportsOpenSpansAsUnfinished(t *testing.T) {
	sink := startSink(t)
	r := start(t, func(c *config.Config) { c.Exporter.Endpoint = "http://" + sink.Addr() })
	now := time.Now()
	st := stream(4)
	sendEvents(t, r.conn,
		ev(st, 0, 1, now, &bridge.SpanOpen{Name: "done"}),
		ev(st, 1, 2, now, &bridge.SpanOpen{Name: "still open"}),
		ev(st, 2, 1, now, &bridge.SpanEndData{}),
	)
	if err := r.stop(t); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// Everything acknowledged is downstream by the time Run returns.
	if spanNamed(sink, "done") == nil {
		t.Error("a complete span acknowledged before shutdown was lost")
	}
	if sp := spanNamed(sink, "still open"); sp == nil || !boolAttr(sp, "stw.unfinished") {
		t.Errorf("the open span was not exported as unfinished at shutdown: %v", sp)
	}
	if !strings.Contains(r.logs.String(), "unfinished_at_shutdown=1") {
		t.Errorf("shutdown log does not report the open span:\n%s", r.logs.String())
	}
}

func TestStdoutTree(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.Stdout.GroupWait = config.Duration(50 * time.Millisecond)
		c.ForwardEvents = true
	})
	now := time.Now()
	st := stream(5)
	sendEvents(t, r.conn,
		ev(st, 0, 1, now, &bridge.SpanOpen{Name: "GET /"}),
		ev(st, 1, 2, now, &bridge.SpanOpen{Name: "query", Parent: trace.SpanID{7: 1}}),
		ev(st, 2, 2, now.Add(time.Millisecond), &bridge.SpanEndData{}),
		ev(st, 3, 1, now.Add(2*time.Millisecond), &bridge.SpanEndData{}),
	)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.out.String(), "└─ query") {
		if time.Now().After(deadline) {
			t.Fatalf("no tree on stdout:\n%s", r.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := r.out.String()
	if !strings.Contains(out, "trace "+hex.EncodeToString(tid[:])+"  service=shop  2 spans") || !strings.Contains(out, "event stw.span_open") {
		t.Errorf("stdout:\n%s", out)
	}
}

func TestHealthAndHTTPRoutes(t *testing.T) {
	r := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	base := "http://" + r.f.HTTPAddr()
	for path, want := range map[string]int{"/healthz": 200, "/metrics": 200} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	// workerd events reach the pipeline through /v1/stw.
	post, err := http.Post(base+"/v1/stw", "application/json", strings.NewReader("[]"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode >= 500 {
		t.Errorf("POST /v1/stw: %d", post.StatusCode)
	}
	if body := scrape(t, r.f.HTTPAddr()); !strings.Contains(body, "stwbridge_stwingest_requests_total 1") {
		t.Error("/v1/stw request not counted")
	}
	// A live watcher does not hold up the shutdown.
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/live", nil)
		if live, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, live.Body)
			live.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for r.f.hub.Stats().Watchers != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the live watcher never connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown with a live watcher took %v", took)
	}
}

func TestMaxOpenSpansOverflowIsCountedAndLogged(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.Assembler.MaxOpenSpans = 1
		c.Assembler.SweepInterval = config.Duration(20 * time.Millisecond)
	})
	now := time.Now()
	st := stream(6)
	sendEvents(t, r.conn, ev(st, 0, 1, now, &bridge.SpanOpen{Name: "a"}), ev(st, 1, 2, now, &bridge.SpanOpen{Name: "b"}), ev(st, 2, 3, now, &bridge.SpanOpen{Name: "c"}))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.logs.String(), "open span limit reached") {
		if time.Now().After(deadline) {
			t.Fatalf("overflow not logged:\n%s", r.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if body := scrape(t, r.f.HTTPAddr()); !strings.Contains(body, "stwbridge_assembler_overflow_total 2") {
		t.Errorf("overflow not counted:\n%s", body)
	}
	if n := strings.Count(r.logs.String(), "open span limit reached"); n != 1 {
		t.Errorf("overflow logged %d times, want once (rate-limited)", n)
	}
}

func TestListenErrorsNameTheFlag(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct{ flag string }{{"--listen"}, {"--http-listen"}} {
		cfg := config.Default()
		cfg.Receivers.OTLP.GRPC.Endpoint = "127.0.0.1:0"
		cfg.Receivers.OTLP.HTTP.Endpoint = "127.0.0.1:0"
		if tc.flag == "--listen" {
			cfg.Receivers.OTLP.GRPC.Endpoint = busy.Addr().String()
		} else {
			cfg.Receivers.OTLP.HTTP.Endpoint = busy.Addr().String()
		}
		_, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%s on a busy port: err = %v", tc.flag, err)
		}
	}
}

func TestExporterOptionsFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Exporter.Endpoint = "https://collector:4317"
	cfg.Exporter.TLS.CAFile = "/nonexistent/ca.pem"
	if _, err := exporterOptions(cfg, slog.Default()); err == nil || !strings.Contains(err.Error(), "exporter.tls") || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("missing CA file: err = %v", err)
	}
	cfg.Exporter.TLS = config.TLS{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}
	if _, err := exporterOptions(cfg, slog.Default()); err == nil || !strings.Contains(err.Error(), "exporter.tls") || !strings.Contains(err.Error(), "/nonexistent/c.pem") {
		t.Errorf("missing cert: err = %v", err)
	}
	cfg.Exporter.TLS = config.TLS{ServerName: "x"}
	cfg.Exporter.SendingQueue = config.SendingQueue{QueueSize: 5, QueueBytes: 5000, NumConsumers: 3}
	cfg.Exporter.MaxRequestBytes = 4096
	cfg.Exporter.RetryOnFailure = config.RetryOnFailure{Enabled: true, InitialInterval: config.Duration(time.Second)}
	opts, err := exporterOptions(cfg, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	// Each optional setting adds its option: 6 fixed + TLS + retry + 3 queue + 1 request size.
	if len(opts) != 12 {
		t.Errorf("%d options, want 12", len(opts))
	}
	exp, err := otlpexport.New(context.Background(), opts...)
	if err != nil {
		t.Fatalf("the options do not build an exporter: %v", err)
	}
	_ = exp.Shutdown(context.Background())
}
