package bridge

import "context"

// Tail consumes the events of a pipeline, in batches, in sequence order per stream.
//
// Consume must not keep the events slice after it returns (the pipeline reuses it);
// it may keep the Event values, whose bodies are immutable. A returned error is
// counted and logged by the pipeline; the batch is not delivered again.
type Tail interface {
	Consume(ctx context.Context, events []Event) error
}

// TailFunc adapts a function to a Tail, as http.HandlerFunc does for http.Handler.
type TailFunc func(ctx context.Context, events []Event) error

// Consume calls f(ctx, events).
func (f TailFunc) Consume(ctx context.Context, events []Event) error { return f(ctx, events) }

// Flusher is implemented by tails that buffer: the pipeline's ForceFlush calls it after
// delivering what it holds.
type Flusher interface {
	ForceFlush(ctx context.Context) error
}

// Shutdowner is implemented by tails that hold resources: the pipeline's Shutdown calls
// it once, after the last delivery.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// Handlers is a Tail made of one optional handler per event type, like the handler
// object of a workerd streaming tail. Events without a handler are skipped.
type Handlers struct {
	SpanOpen         func(ctx context.Context, e Event, b *SpanOpen)
	UpdateName       func(ctx context.Context, e Event, b *UpdateName)
	Attributes       func(ctx context.Context, e Event, b *Attributes)
	Status           func(ctx context.Context, e Event, b *StatusUpdate)
	SpanEnd          func(ctx context.Context, e Event, b *SpanEndData)
	Heartbeat        func(ctx context.Context, e Event, b *Heartbeat)
	Onset            func(ctx context.Context, e Event, b *Onset)
	Outcome          func(ctx context.Context, e Event, b *Outcome)
	Log              func(ctx context.Context, e Event, b *Log)
	Exception        func(ctx context.Context, e Event, b *Exception)
	Return           func(ctx context.Context, e Event, b *Return)
	StreamDiagnostic func(ctx context.Context, e Event, b *StreamDiagnostic)
	CompleteSpan     func(ctx context.Context, e Event, b *CompleteSpan)
}

var _ Tail = Handlers{}

// Consume dispatches each event to its handler.
func (h Handlers) Consume(ctx context.Context, events []Event) error {
	for _, e := range events {
		switch b := e.Body.(type) {
		case *SpanOpen:
			call(ctx, h.SpanOpen, e, b)
		case *UpdateName:
			call(ctx, h.UpdateName, e, b)
		case *Attributes:
			call(ctx, h.Attributes, e, b)
		case *StatusUpdate:
			call(ctx, h.Status, e, b)
		case *SpanEndData:
			call(ctx, h.SpanEnd, e, b)
		case *Heartbeat:
			call(ctx, h.Heartbeat, e, b)
		case *Onset:
			call(ctx, h.Onset, e, b)
		case *Outcome:
			call(ctx, h.Outcome, e, b)
		case *Log:
			call(ctx, h.Log, e, b)
		case *Exception:
			call(ctx, h.Exception, e, b)
		case *Return:
			call(ctx, h.Return, e, b)
		case *StreamDiagnostic:
			call(ctx, h.StreamDiagnostic, e, b)
		case *CompleteSpan:
			call(ctx, h.CompleteSpan, e, b)
		}
	}
	return nil
}

func call[B any](ctx context.Context, f func(context.Context, Event, B), e Event, b B) {
	if f != nil {
		f(ctx, e, b)
	}
}

// SpanConsumer receives complete spans, from an Assembler for example. The caller may
// reuse the slice once ConsumeSpans returns: a consumer that keeps spans copies the
// values (the spans' own contents are never reused).
type SpanConsumer interface {
	ConsumeSpans(ctx context.Context, spans []Span) error
}

// SpanConsumerFunc adapts a function to a SpanConsumer.
type SpanConsumerFunc func(ctx context.Context, spans []Span) error

// ConsumeSpans calls f(ctx, spans).
func (f SpanConsumerFunc) ConsumeSpans(ctx context.Context, spans []Span) error {
	return f(ctx, spans)
}

// Delivery is what a tail that delivers elsewhere (an exporter) holds and lost, in
// its own items (events, or spans): Pending are accepted and not yet acknowledged
// downstream, Lost were given up (refused, failed, or dropped for lack of room).
type Delivery struct {
	Pending uint64
	Lost    uint64
}

// DeliveryReporter is implemented by tails that deliver elsewhere, so that the owner
// of a pipeline can account for the whole path, not only its queue.
type DeliveryReporter interface {
	Delivery() Delivery
}
