package otlpexport_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stwbridge/stwbridge/internal/testenv"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkSDKOnly is the floor under BenchmarkThroughput's CPU figures: the same spans
// made by the SDK with no span processor at all, in CPU time of the process per span.
func BenchmarkSDKOnly(b *testing.B) {
	attrs := make([]attribute.KeyValue, 10)
	for i := range attrs {
		attrs[i] = attribute.String("attr."+string(rune('a'+i)), strings.Repeat(string(rune('a'+i)), 20))
	}
	res := resource.NewSchemaless(attribute.String("service.name", "bench"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res))
	tr := tp.Tracer("bench")
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
