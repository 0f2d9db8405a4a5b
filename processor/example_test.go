package processor_test

import (
	"context"
	"fmt"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/processor"
)

// A handler that learns its route after the span started renames it; the rename is
// streamed at once. Any bridge.Tail can be the sink; in production it is usually an
// *otlpexport.Exporter. WithAnnounceDelay(0) announces every span the moment it
// starts; by default a span that ends within the delay leaves as one event (see
// ExampleWithAnnounceDelay).
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
	p := processor.New(sink, processor.WithAnnounceDelay(0))
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

// By default a span's SpanOpen is held back for the announce delay: a span that ends
// sooner leaves as one CompleteSpan event, one that is still open is announced when
// the delay passes.
func ExampleWithAnnounceDelay() {
	sink := bridge.TailFunc(func(_ context.Context, events []bridge.Event) error {
		for _, e := range events {
			switch b := e.Body.(type) {
			case *bridge.CompleteSpan:
				fmt.Println(e.Sequence, "complete", b.Open.Name)
			case *bridge.SpanOpen:
				fmt.Println(e.Sequence, "open", b.Name)
			default:
				fmt.Println(e.Sequence, e.Kind())
			}
		}
		return nil
	})
	p := processor.New(sink, processor.WithAnnounceDelay(time.Second))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tracer := p.Wrap(sdk).Tracer("example")

	ctx, job := tracer.Start(context.Background(), "job")
	_, query := tracer.Start(ctx, "query")
	query.End()                            // within the delay: one event
	_ = p.ForceFlush(context.Background()) // announces what is still open
	job.End()

	_ = sdk.Shutdown(context.Background())
	// Output:
	// 0 complete query
	// 1 open job
	// 2 span_end
}
