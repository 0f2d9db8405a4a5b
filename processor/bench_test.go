package processor

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/testenv"
)

type noopExporter struct{}

func (noopExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (noopExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkStartEnd starts and ends a span with 10 string attributes of 20 characters
// (the OTel specification's performance benchmark shape) through no processor, the
// BatchSpanProcessor with a no-op exporter, this processor with a no-op sink, and this
// processor through Wrap with one SetName; serially and from GOMAXPROCS goroutines.
func BenchmarkStartEnd(b *testing.B) {
	attrs := make([]attribute.KeyValue, 10)
	for i := range attrs {
		attrs[i] = attribute.String("attribute.key."+string(rune('a'+i)), strings.Repeat(string(rune('a'+i)), 20))
	}
	type setup struct {
		name    string
		provide func() (trace.TracerProvider, func() Stats, func())
		rename  bool
	}
	noopSink := bridge.TailFunc(func(context.Context, []bridge.Event) error { return nil })
	stw := func(wrap bool) func() (trace.TracerProvider, func() Stats, func()) {
		return func() (trace.TracerProvider, func() Stats, func()) {
			p := New(noopSink, WithLogger(slog.New(slog.DiscardHandler)))
			sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
			var tp trace.TracerProvider = sdk
			if wrap {
				tp = p.Wrap(sdk)
			}
			return tp, p.Stats, func() { _ = sdk.Shutdown(context.Background()) }
		}
	}
	setups := []setup{
		{name: "none", provide: func() (trace.TracerProvider, func() Stats, func()) {
			sdk := sdktrace.NewTracerProvider()
			return sdk, nil, func() { _ = sdk.Shutdown(context.Background()) }
		}},
		{name: "bsp", provide: func() (trace.TracerProvider, func() Stats, func()) {
			sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(noopExporter{}))
			return sdk, nil, func() { _ = sdk.Shutdown(context.Background()) }
		}},
		{name: "stw", provide: stw(false)},
		{name: "stw-wrap-setname", provide: stw(true), rename: true},
	}
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			for _, mode := range []string{"serial", "parallel"} {
				b.Run(mode, func(b *testing.B) {
					tp, stats, stop := s.provide()
					defer stop()
					tr := tp.Tracer("bench")
					ctx := context.Background()
					one := func() {
						_, span := tr.Start(ctx, "span", trace.WithAttributes(attrs...))
						if s.rename {
							span.SetName("renamed")
						}
						span.End()
					}
					b.ReportAllocs()
					cpu0 := testenv.CPUTime()
					b.ResetTimer()
					if mode == "serial" {
						for b.Loop() {
							one()
						}
					} else {
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								one()
							}
						})
					}
					b.StopTimer()
					// CPU time of the whole process (workers and GC included) per span: steadier
					// than ns/op on a machine shared with other work.
					if cpu := testenv.CPUTime() - cpu0; cpu > 0 {
						b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
					}
					if stats != nil {
						// Dropped events make a run look cheaper than it is: report them,
						// those lost past the queue included.
						st := stats()
						b.ReportMetric(float64(st.Dropped+st.Lost)/float64(b.N), "dropped/op")
					}
				})
			}
		})
	}
}
