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
	"github.com/stwbridge/stwbridge/internal/testenv"
	"github.com/stwbridge/stwbridge/internal/wirecodec"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
)

// benchSpansPerRequest is the spans of one request of the load (stwload sends about
// 100 per request at 20k spans/s).
const benchSpansPerRequest = 128

// sinkServiceDesc serves TraceService/Export, counting the spans of each request on
// spans without decoding the request.
func sinkServiceDesc(spans chan<- int) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var req wirecodec.Bytes
				if err := dec(&req); err != nil {
					return nil, err
				}
				spans <- countSpans(req)
				return &coltracepb.ExportTraceServiceResponse{}, nil
			},
		}},
	}
}

// countSpans counts the spans of a serialized ExportTraceServiceRequest: the fields 2
// (spans) of the fields 2 (scope_spans) of its fields 1 (resource_spans).
func countSpans(b []byte) int {
	n := 0
	forEachMessage(b, 1, func(rs []byte) {
		forEachMessage(rs, 2, func(ss []byte) {
			forEachMessage(ss, 2, func([]byte) { n++ })
		})
	})
	return n
}

// forEachMessage calls fn with each length-delimited field num of message b.
func forEachMessage(b []byte, num protowire.Number, fn func([]byte)) {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return
		}
		b = b[l:]
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return
		}
		if n == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			fn(v)
		}
		b = b[l:]
	}
}

// httpServerAttrs are the attributes of the load's HTTP server spans.
func httpServerAttrs(s int) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("http.request.method", "GET"), attribute.String("http.route", "/checkout/{id}"),
		attribute.String("url.path", fmt.Sprintf("/checkout/%d", s)), attribute.String("server.address", "shop.example.com"),
		attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"),
	}
}

// A benchLoad makes the events of request r: spans of distinct traces and streams.
type benchLoad func(r int, now time.Time) []bridge.Event

// benchLoads are the shapes of load the benchmark feeds: protocol 1.0 (SpanOpen and
// SpanEnd for every span), and protocol 1.1 (one stw.span record per span, as the
// processor sends spans that end within its announce delay): traces of a server span
// and three children, and single-span traces, whose span is alone in its stream.
var benchLoads = []struct {
	name string
	load benchLoad
}{
	{"v10", loadOpenEnd},
	{"v11", loadComplete(4)},
	{"v11-alone", loadComplete(1)},
}

// ids returns the trace and stream ids of trace t of request r.
func ids(r, t int) (trace.TraceID, bridge.StreamID) {
	tid := trace.TraceID{1, byte(r >> 16), byte(r >> 8), byte(r), byte(t >> 8), byte(t), 15: 1}
	return tid, bridge.StreamID{1, 2, byte(r >> 16), byte(r >> 8), byte(r), byte(t >> 8), byte(t), 15: 1}
}

// loadOpenEnd: one root span per stream, as a SpanOpen and a SpanEnd.
func loadOpenEnd(r int, now time.Time) []bridge.Event {
	var events []bridge.Event
	for s := range benchSpansPerRequest {
		tid, st := ids(r, s)
		sp := trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
		events = append(events,
			bridge.Event{TraceID: tid, SpanID: sp, StreamID: st, Sequence: 0, Time: now, Resource: res, Body: &bridge.SpanOpen{
				Name: "GET /checkout/{id}", SpanKind: trace.SpanKindServer, Attributes: httpServerAttrs(s)}},
			bridge.Event{TraceID: tid, SpanID: sp, StreamID: st, Sequence: 1, Time: now.Add(time.Millisecond), Resource: res,
				Body: &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Int("http.response.status_code", 200)}}},
		)
	}
	return events
}

// loadComplete: traces of perTrace spans, each span one CompleteSpan: the children
// first (a database query, with a local parent), then the server span, which ends the
// stream; a trace of one span is alone in its stream.
func loadComplete(perTrace int) benchLoad {
	return func(r int, now time.Time) []bridge.Event {
		var events []bridge.Event
		for t := range benchSpansPerRequest / perTrace {
			tid, st := ids(r, t)
			root := trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
			for c := 1; c < perTrace; c++ {
				events = append(events, bridge.Event{TraceID: tid, SpanID: trace.SpanID{2, byte(c), 3, 4, 5, 6, 7, 8}, StreamID: st,
					Sequence: uint64(c - 1), Time: now.Add(time.Millisecond), Resource: res, Body: &bridge.CompleteSpan{
						Start: now,
						Open: &bridge.SpanOpen{Name: "SELECT orders", SpanKind: trace.SpanKindClient, Parent: root, TraceFlags: trace.FlagsSampled,
							Attributes: []attribute.KeyValue{
								attribute.String("db.system.name", "postgresql"), attribute.String("db.namespace", "shop"),
								attribute.String("db.operation.name", "SELECT"),
								attribute.String("db.query.text", "SELECT id, total, status FROM orders WHERE user_id = $1 LIMIT 20"),
								attribute.String("server.address", "db.internal"), attribute.Int("server.port", 5432),
							}},
						End: &bridge.SpanEndData{},
					}})
			}
			e := bridge.Event{TraceID: tid, SpanID: root, StreamID: st, Sequence: uint64(perTrace - 1), Time: now.Add(2 * time.Millisecond),
				Resource: res, Body: &bridge.CompleteSpan{
					Start: now,
					Open: &bridge.SpanOpen{Name: "GET /checkout/{id}", SpanKind: trace.SpanKindServer, TraceFlags: trace.FlagsSampled,
						Attributes: append(httpServerAttrs(t), attribute.Int("http.response.status_code", 200))},
					End:   &bridge.SpanEndData{},
					Alone: perTrace == 1,
				}}
			if perTrace == 1 {
				e.StreamID, e.Sequence = bridge.AloneStreamID(e.TraceID, e.SpanID), 0
			}
			events = append(events, e)
		}
		return events
	}
}

// BenchmarkForwarderEvents measures the forwarder end to end in one process: lifecycle
// records in over OTLP/gRPC, assembled spans out to a sink. One op is one span, so
// allocs/op are the allocations per span (the client's and the sink's gRPC calls
// included; the requests are encoded before, and the sink decodes nothing), and
// cpu-ns/span the process's CPU time per span (client and sink included too).
func BenchmarkForwarderEvents(b *testing.B) {
	for _, l := range benchLoads {
		b.Run(l.name, func(b *testing.B) { benchForwarder(b, l.load) })
	}
}

func benchForwarder(b *testing.B, load benchLoad) {
	spans := make(chan int, 1<<16)
	codec := wirecodec.New()
	srv := grpc.NewServer(grpc.ForceServerCodecV2(codec))
	srv.RegisterService(sinkServiceDesc(spans), nil)
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
	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codec)))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	now := time.Now()
	reqs := make([]wirecodec.Bytes, (b.N+benchSpansPerRequest-1)/benchSpansPerRequest)
	for r := range reqs {
		reqs[r] = stwotlp.AppendEvents(nil, load(r, now))
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testenv.CPUTime()
	for _, req := range reqs {
		if err := conn.Invoke(ctx, collogspb.LogsService_Export_FullMethodName, req, &collogspb.ExportLogsServiceResponse{}); err != nil {
			b.Fatal(err)
		}
	}
	for got := 0; got < len(reqs)*benchSpansPerRequest; {
		got += <-spans
	}
	b.StopTimer()
	n := float64(len(reqs) * benchSpansPerRequest)
	b.ReportMetric(n/b.Elapsed().Seconds(), "spans/s")
	if cpu := testenv.CPUTime() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/span")
	}
	if st := f.asm.Stats(); st.Rejected > 0 {
		b.Fatalf("the assembler rejected %d events of the load", st.Rejected)
	}
}
