package forwarder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// countingSink accepts traces and counts spans, keeping nothing.
type countingSink struct {
	coltracepb.UnimplementedTraceServiceServer
	spans chan int
}

func (c *countingSink) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	n := 0
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	c.spans <- n
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// loadRequests encodes n requests of 64 complete spans each (SpanOpen + SpanEnd), with
// the attributes of an HTTP server span.
func loadRequests(n int) []*collogspb.ExportLogsServiceRequest {
	reqs := make([]*collogspb.ExportLogsServiceRequest, n)
	now := time.Now()
	for r := range reqs {
		var events []bridge.Event
		for s := range 64 {
			st := bridge.StreamID{1, 2, byte(r >> 16), byte(r >> 8), byte(r), byte(s), 15: 1}
			t := trace.TraceID{1, byte(r >> 16), byte(r >> 8), byte(r), byte(s), 15: 1}
			sp := trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
			events = append(events,
				bridge.Event{TraceID: t, SpanID: sp, StreamID: st, Sequence: 0, Time: now, Resource: res, Body: &bridge.SpanOpen{
					Name: "GET /checkout/{id}", SpanKind: trace.SpanKindServer, Attributes: []attribute.KeyValue{
						attribute.String("http.request.method", "GET"), attribute.String("http.route", "/checkout/{id}"),
						attribute.String("url.path", fmt.Sprintf("/checkout/%d", s)), attribute.String("server.address", "shop.example.com"),
						attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"),
					}}},
				bridge.Event{TraceID: t, SpanID: sp, StreamID: st, Sequence: 1, Time: now.Add(time.Millisecond), Resource: res,
					Body: &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Int("http.response.status_code", 200)}}},
			)
		}
		reqs[r] = stwotlp.EventsRequest(events)
	}
	return reqs
}

// BenchmarkForwarderEvents measures the forwarder end to end in one process: lifecycle
// events in over OTLP/gRPC, assembled spans out to a sink. One op is one span.
func BenchmarkForwarderEvents(b *testing.B) {
	sink := &countingSink{spans: make(chan int, 1<<16)}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, sink)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	cfg := config.Default()
	cfg.Receivers.OTLP.GRPC.Endpoint = "127.0.0.1:0"
	cfg.Receivers.OTLP.HTTP.Endpoint = "127.0.0.1:0"
	cfg.Exporter.Endpoint = "http://" + lis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	f, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := collogspb.NewLogsServiceClient(conn)

	reqs := loadRequests((b.N + 63) / 64)
	b.ReportAllocs()
	b.ResetTimer()
	for _, req := range reqs {
		if _, err := client.Export(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	for got := 0; got < len(reqs)*64; {
		got += <-sink.spans
	}
	b.StopTimer()
	b.ReportMetric(float64(len(reqs)*64)/b.Elapsed().Seconds(), "spans/s")
}
