package otlpexport_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/internal/testenv"
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
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
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
// plain spans, and spans whose stw.span_end or stw.span record arrived. With onOpen
// set, it is called for each stw.span_open record.
type benchSink struct {
	*otlpsink.Sink
	bytes, spans, ends atomic.Int64
	onOpen             func(r *logspb.LogRecord)
}

func newBenchSink(b *testing.B) *benchSink {
	s, err := startBenchSink()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	return s
}

// startBenchSink starts a benchSink on 127.0.0.1.
func startBenchSink() (*benchSink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
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
					switch r.EventName {
					case stwotlp.EventSpanEnd, stwotlp.EventSpan:
						s.ends.Add(1)
					case stwotlp.EventSpanOpen:
						if s.onOpen != nil {
							s.onOpen(r)
						}
					}
				}
			}
		}
		return nil
	}
	return s, nil
}

// benchSinkEnv, set to 1, makes the test binary the sink process of
// BenchmarkThroughput (see TestMain).
const benchSinkEnv = "STWBRIDGE_BENCH_SINK_PROCESS"

// TestMain runs the tests, or, with benchSinkEnv set, serves as a sink process.
func TestMain(m *testing.M) {
	if os.Getenv(benchSinkEnv) == "1" {
		if err := serveSinkProcess(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench sink:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// serveSinkProcess runs a benchSink, writes its address to out, then answers each
// line read from in with its counts ("bytes spans ends"), until in closes.
func serveSinkProcess(in io.Reader, out io.Writer) error {
	s, err := startBenchSink()
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Fprintln(out, s.Addr())
	for sc := bufio.NewScanner(in); sc.Scan(); {
		fmt.Fprintln(out, s.bytes.Load(), s.spans.Load(), s.ends.Load())
	}
	return nil
}

// sinkProcess is a benchSink in a process of its own (the test binary, re-run with
// benchSinkEnv), so that the CPU time of the benchmark's process is the
// application's and its exporter's alone, not the receiver's decoding too.
type sinkProcess struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
}

func newSinkProcess(b *testing.B) *sinkProcess {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchSinkEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &sinkProcess{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	b.Cleanup(func() {
		p.in.Close()
		if err := p.cmd.Wait(); err != nil {
			b.Errorf("bench sink process: %v", err)
		}
	})
	if !p.out.Scan() {
		b.Fatalf("bench sink process wrote no address: %v", p.out.Err())
	}
	p.addr = p.out.Text()
	return p
}

// counts asks the sink process for the bytes it read, the spans and the span ends
// (stw.span_end and stw.span records) it received.
func (p *sinkProcess) counts(b *testing.B) (bytes, spans, ends int64) {
	if _, err := fmt.Fprintln(p.in, "counts"); err != nil {
		b.Fatal(err)
	}
	if !p.out.Scan() {
		b.Fatalf("bench sink process: no counts: %v", p.out.Err())
	}
	if _, err := fmt.Sscan(p.out.Text(), &bytes, &spans, &ends); err != nil {
		b.Fatalf("bench sink process: counts %q: %v", p.out.Text(), err)
	}
	return bytes, spans, ends
}

// benchChunk is how many spans are made between two ForceFlush calls: less than the
// BatchSpanProcessor's queue (2048 spans) and the processor's (4096 events, two per
// span), so neither drops and both deliver every span.
const benchChunk = 1000

// specAttrs are the attributes of the OpenTelemetry SDK benchmarks' span: 10 strings
// of 20 characters.
func specAttrs() []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 10)
	for i := range attrs {
		attrs[i] = attribute.String("attr."+string(rune('a'+i)), strings.Repeat(string(rune('a'+i)), 20))
	}
	return attrs
}

// benchResource is the Resource of the benchmarks' tracer providers.
func benchResource() *resource.Resource {
	return resource.NewSchemaless(attribute.String("service.name", "bench"))
}

// BenchmarkSDKOnly is the floor under BenchmarkThroughput's CPU figures: the same spans
// made by the SDK with no span processor at all, in CPU time of the process per span.
func BenchmarkSDKOnly(b *testing.B) {
	attrs := specAttrs()
	tr := sdktrace.NewTracerProvider(sdktrace.WithResource(benchResource())).Tracer("bench")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testenv.CPUTime()
	for range b.N {
		_, s := tr.Start(ctx, "operation", trace.WithAttributes(attrs...))
		s.End()
	}
	b.ReportMetric(float64((testenv.CPUTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/span")
}

// BenchmarkThroughput compares, against one loopback sink in a process of its own,
// end to end: spans per second delivered, bytes on the wire per span, and the CPU time
// of the application's process (the SDK, the span processor and the exporter) per span, for (a) the SDK's
// BatchSpanProcessor with otlptracegrpc (plain spans), (b) processor + otlpexport in
// events mode (protocol 1.1: the default announce delay, so these short spans leave
// as one stw.span each), (c) in both mode, (d) events mode announcing every span at
// once (protocol 1.0: stw.span_open + stw.span_end). Compression is off on both sides, then gzip on
// both (the _gzip runs). Each span has 10 string attributes of 20 characters.
func BenchmarkThroughput(b *testing.B) {
	attrs, res := specAttrs(), benchResource()

	// delivered picks, of the sink's counts, the spans delivered.
	run := func(b *testing.B, sink *sinkProcess, tp *sdktrace.TracerProvider, delivered func(spans, ends int64) int64) {
		ctx := context.Background()
		tr := tp.Tracer("bench")
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := testenv.CPUTime()
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
		cpu := testenv.CPUTime() - cpu0
		b.StopTimer()
		bytes, spans, ends := sink.counts(b)
		if got := delivered(spans, ends); got != int64(b.N) {
			b.Fatalf("delivered %d spans of %d", got, b.N)
		}
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "spans/s")
		b.ReportMetric(float64(bytes)/float64(b.N), "bytes/span")
		// CPU time of the application's process (SDK, processor, exporter; the sink
		// runs in its own) per span: steadier than spans/s on a busy machine.
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
			sink := newSinkProcess(b)
			opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(sink.addr), otlptracegrpc.WithInsecure()}
			if gzip {
				opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
			}
			exp, err := otlptracegrpc.New(context.Background(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
			run(b, sink, tp, func(spans, _ int64) int64 { return spans })
		})
		for _, m := range []struct {
			name string
			mode otlpexport.Mode
			opts []processor.Option
		}{
			{"b_processor_events", otlpexport.ModeEvents, nil},
			{"c_processor_both", otlpexport.ModeBoth, nil},
			{"d_processor_events_v10", otlpexport.ModeEvents, []processor.Option{processor.WithAnnounceDelay(0)}},
		} {
			b.Run(m.name+suffix, func(b *testing.B) {
				sink := newSinkProcess(b)
				exp, err := otlpexport.New(context.Background(), otlpexport.WithEndpoint(sink.addr),
					otlpexport.WithInsecure(), otlpexport.WithCompression(compression), otlpexport.WithMode(m.mode))
				if err != nil {
					b.Fatal(err)
				}
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(processor.New(exp, m.opts...)), sdktrace.WithResource(res))
				delivered := func(_, ends int64) int64 { return ends }
				if m.mode == otlpexport.ModeBoth {
					delivered = func(spans, ends int64) int64 { return min(ends, spans) }
				}
				run(b, sink, tp, delivered)
			})
		}
	}
}

// BenchmarkAnnounceLatency measures, for spans that stay open longer than the announce
// delay (100 ms, the default), the time from a span's start to its stw.span_open at a
// loopback sink, at about 10k spans/s (spans of 150 ms, started in steady batches):
// the delay plus what the pipeline and the network add. It reports the p50 and p99.
func BenchmarkAnnounceLatency(b *testing.B) {
	const rate, life = 10_000, 150 * time.Millisecond
	sink := newBenchSink(b)
	var mu sync.Mutex
	var lat []time.Duration
	sink.onOpen = func(r *logspb.LogRecord) {
		d := time.Since(time.Unix(0, int64(r.TimeUnixNano)))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	}
	exp, err := otlpexport.New(context.Background(), otlpexport.WithEndpoint(sink.Addr()), otlpexport.WithInsecure())
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(processor.New(exp)))
	tr := tp.Tracer("bench")
	ctx := context.Background()
	b.ResetTimer()
	tick := time.NewTicker(10 * time.Millisecond) // rate/100 spans per tick
	defer tick.Stop()
	for range b.N { // each iteration: one second of load, every span living its full life
		var open []trace.Span
		var started []time.Time
		for n := 0; n < rate || len(open) > 0; {
			now := <-tick.C
			for k := 0; k < rate/100 && n < rate; k++ {
				_, s := tr.Start(ctx, "long")
				open, started = append(open, s), append(started, now)
				n++
			}
			for len(open) > 0 && time.Since(started[0]) >= life {
				open[0].End()
				open, started = open[1:], started[1:]
			}
		}
	}
	b.StopTimer()
	if err := tp.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		b.Fatal("no stw.span_open arrived")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}
