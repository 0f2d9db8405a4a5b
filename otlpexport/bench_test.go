package otlpexport_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// countingListener counts the bytes read from its connections: what came over the
// wire, HTTP/2 framing and headers included.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, n: l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// benchSink is a loopback sink that counts bytes on the wire and the spans delivered:
// plain spans, and spans whose stw.span_end record arrived.
type benchSink struct {
	*otlpsink.Sink
	bytes, spans, ends atomic.Int64
}

func newBenchSink(b *testing.B) *benchSink {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSink{}
	s.Sink = otlpsink.Serve(countingListener{Listener: lis, n: &s.bytes})
	s.OnTraces = func(req *coltracepb.ExportTraceServiceRequest) error {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				s.spans.Add(int64(len(ss.Spans)))
			}
		}
		return nil
	}
	s.OnLogs = func(req *collogspb.ExportLogsServiceRequest) error {
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					if r.EventName == stwotlp.EventSpanEnd {
						s.ends.Add(1)
					}
				}
			}
		}
		return nil
	}
	b.Cleanup(s.Stop)
	return s
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchChunk is how many spans are made between two ForceFlush calls: less than the
// BatchSpanProcessor's queue (2048 spans) and the processor's (4096 events, two per
// span), so neither drops and both deliver every span.
const benchChunk = 1000

// BenchmarkThroughput compares, against one loopback sink, end to end: spans per
// second delivered and bytes on the wire per span, for (a) the SDK's
// BatchSpanProcessor with otlptracegrpc (plain spans), (b) processor + otlpexport in
// events mode, (c) in both mode. Compression is off on both sides, then gzip on
// both (the _gzip runs). Each span has 10 string attributes of 20 characters.
func BenchmarkThroughput(b *testing.B) {
	attrs := make([]attribute.KeyValue, 10)
	for i := range attrs {
		attrs[i] = attribute.String("attr."+string(rune('a'+i)), strings.Repeat(string(rune('a'+i)), 20))
	}
	res := resource.NewSchemaless(attribute.String("service.name", "bench"))

	run := func(b *testing.B, sink *benchSink, tp *sdktrace.TracerProvider, delivered func() int64) {
		ctx := context.Background()
		tr := tp.Tracer("bench")
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		start := time.Now()
		for i := range b.N {
			_, s := tr.Start(ctx, "operation", trace.WithAttributes(attrs...))
			s.End()
			if (i+1)%benchChunk == 0 {
				if err := tp.ForceFlush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := tp.ForceFlush(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		cpu := cpuTime() - cpu0
		b.StopTimer()
		if got := delivered(); got != int64(b.N) {
			b.Fatalf("delivered %d spans of %d", got, b.N)
		}
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "spans/s")
		b.ReportMetric(float64(sink.bytes.Load())/float64(b.N), "bytes/span")
		// CPU time of the whole process (app, exporter and sink) per span: steadier
		// than spans/s on a busy machine.
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/span")
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
	}

	// Each setup also runs with gzip on both sides (suffix _gzip): what a deployment
	// that turns compression on pays on the wire.
	for _, gzip := range []bool{false, true} {
		suffix, compression := "", "none"
		if gzip {
			suffix, compression = "_gzip", "gzip"
		}
		b.Run("a_bsp_otlptracegrpc"+suffix, func(b *testing.B) {
			sink := newBenchSink(b)
			opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(sink.Addr()), otlptracegrpc.WithInsecure()}
			if gzip {
				opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
			}
			exp, err := otlptracegrpc.New(context.Background(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
			run(b, sink, tp, sink.spans.Load)
		})
		for _, m := range []struct {
			name string
			mode otlpexport.Mode
		}{{"b_processor_events", otlpexport.ModeEvents}, {"c_processor_both", otlpexport.ModeBoth}} {
			b.Run(m.name+suffix, func(b *testing.B) {
				sink := newBenchSink(b)
				exp, err := otlpexport.New(context.Background(), otlpexport.WithEndpoint(sink.Addr()),
					otlpexport.WithInsecure(), otlpexport.WithCompression(compression), otlpexport.WithMode(m.mode))
				if err != nil {
					b.Fatal(err)
				}
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(processor.New(exp)), sdktrace.WithResource(res))
				delivered := sink.ends.Load
				if m.mode == otlpexport.ModeBoth {
					delivered = func() int64 { return min(sink.ends.Load(), sink.spans.Load()) }
				}
				run(b, sink, tp, delivered)
			})
		}
	}
}
