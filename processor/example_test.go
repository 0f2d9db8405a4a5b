package processor_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/processor"
)

// A handler that learns its route after the span started renames it; the rename is
// streamed at once. Any bridge.Tail can be the sink; in production it is usually an
// *otlpexport.Exporter.
func Example() {
	sink := bridge.TailFunc(func(_ context.Context, events []bridge.Event) error {
		for _, e := range events {
			switch b := e.Body.(type) {
			case *bridge.SpanOpen:
				fmt.Println(e.Sequence, "open", b.Name)
			case *bridge.UpdateName:
				fmt.Println(e.Sequence, "rename", b.Name)
			default:
				fmt.Println(e.Sequence, e.Kind())
			}
		}
		return nil
	})
	p := processor.New(sink)
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tp := p.Wrap(sdk)

	ctx, span := tp.Tracer("example").Start(context.Background(), "GET")
	trace.SpanFromContext(ctx).SetName("GET /users/{id}")
	span.End()

	_ = sdk.Shutdown(context.Background()) // flushes, and shuts the sink down
	// Output:
	// 0 open GET
	// 1 rename GET /users/{id}
	// 2 span_end
}
