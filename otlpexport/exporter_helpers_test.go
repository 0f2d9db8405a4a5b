package otlpexport_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/otlpexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// fastRetry keeps retry tests quick.
var fastRetry = otlpexport.RetryConfig{
	Enabled:         true,
	InitialInterval: 10 * time.Millisecond,
	MaxInterval:     50 * time.Millisecond,
	MaxElapsedTime:  10 * time.Second,
}

// exSink starts an otlpsink on loopback, stopped when the test ends.
func exSink(t testing.TB, opts ...grpc.ServerOption) *otlpsink.Sink {
	t.Helper()
	s, err := otlpsink.Start("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// exNew makes an exporter to addr in plaintext with fast retries; Shutdown at the end.
func exNew(t testing.TB, addr string, opts ...otlpexport.Option) *otlpexport.Exporter {
	t.Helper()
	all := append([]otlpexport.Option{
		otlpexport.WithEndpoint(addr),
		otlpexport.WithInsecure(),
		otlpexport.WithRetry(fastRetry),
		otlpexport.WithLogger(slog.New(slog.NewTextHandler(&testWriter{t: t}, nil))),
	}, opts...)
	e, err := otlpexport.New(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e
}

// flush calls ForceFlush with a deadline.
func flush(t testing.TB, e *otlpexport.Exporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
}

// testWriter sends log lines to the test log.
type testWriter struct {
	t testing.TB
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// logBuffer collects log lines for assertions, and echoes them to the test log.
type logBuffer struct {
	t  testing.TB
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() otlpexport.Option {
	return otlpexport.WithLogger(slog.New(slog.NewTextHandler(l, nil)))
}

// rawLogs is a logs request of n records named prefix-i, each with a body of pad bytes.
func rawLogs(prefix string, n, pad int) *collogspb.ExportLogsServiceRequest {
	recs := make([]*logspb.LogRecord, n)
	for i := range recs {
		recs[i] = &logspb.LogRecord{
			EventName:    fmt.Sprintf("%s-%d", prefix, i),
			TimeUnixNano: uint64(i + 1),
			Body:         &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: strings.Repeat("x", pad)}},
		}
	}
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "test"}, LogRecords: recs}},
	}}}
}

// rawTraces is a traces request of n spans named prefix-i.
func rawTraces(prefix string, n int) *coltracepb.ExportTraceServiceRequest {
	spans := make([]*tracepb.Span, n)
	for i := range spans {
		spans[i] = &tracepb.Span{
			TraceId: bytes.Repeat([]byte{1}, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, byte(i + 1)},
			Name: fmt.Sprintf("%s-%d", prefix, i), StartTimeUnixNano: 1, EndTimeUnixNano: 2,
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

// recordCount waits until the sink holds n log records.
func waitRecords(t testing.TB, s *otlpsink.Sink, n int) {
	t.Helper()
	if !s.WaitFor(20*time.Second, func(s *otlpsink.Sink) bool { return len(s.LogRecords()) >= n }) {
		t.Fatalf("the sink got %d log records, want %d", len(s.LogRecords()), n)
	}
}

var (
	testResource = resource.NewSchemaless(attribute.String("service.name", "otlpexport-test"))
	testScope    = &instrumentation.Scope{Name: "otlpexport-test", Version: "1"}
)

// spanEvents makes the lifecycle events of n spans in one stream: per span SpanOpen,
// UpdateName and SpanEndData, numbered from seq.
func spanEvents(stream bridge.StreamID, traceID trace.TraceID, n int, seq uint64) []bridge.Event {
	var out []bridge.Event
	t0 := time.Unix(1_700_000_000, 0)
	for i := range n {
		var sid trace.SpanID
		sid[0], sid[1], sid[2], sid[3] = 0xAA, stream[0], byte(i>>8), byte(i)
		env := func(b bridge.Body, at time.Duration) bridge.Event {
			ev := bridge.Event{
				TraceID: traceID, SpanID: sid, StreamID: stream, Sequence: seq,
				Time: t0.Add(at), Resource: testResource, Scope: testScope, Body: b,
			}
			seq++
			return ev
		}
		out = append(out,
			env(&bridge.SpanOpen{
				Name: fmt.Sprintf("span-%d", i), SpanKind: trace.SpanKindServer,
				TraceFlags: trace.FlagsSampled,
				Attributes: []attribute.KeyValue{attribute.String("k", strings.Repeat("v", 20)), attribute.Int("i", i)},
			}, time.Duration(i)*time.Millisecond),
			env(&bridge.UpdateName{Name: fmt.Sprintf("renamed-%d", i)}, time.Duration(i)*time.Millisecond+1),
			env(&bridge.SpanEndData{
				Status:     bridge.Status{Code: codes.Ok},
				Attributes: []attribute.KeyValue{attribute.Bool("done", true)},
			}, time.Duration(i)*time.Millisecond+2),
		)
	}
	return out
}

func streamID(b byte) bridge.StreamID {
	var id bridge.StreamID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}
