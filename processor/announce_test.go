package processor

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// A span that ends within the announce delay leaves as one CompleteSpan carrying
// everything its SpanOpen and SpanEndData would have: the final name, kind, parent,
// start, end, attributes, events, links and status.
func TestAnnounceDelayShortSpanIsOneEvent(t *testing.T) {
	p, sdk, rec := setup(t, WithAnnounceDelay(time.Hour))
	tracer := p.Wrap(sdk).Tracer("t")
	ctx, root := tracer.Start(context.Background(), "GET", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.method", "GET")))
	link := trace.SpanContextFromContext(ctx)
	_, child := tracer.Start(ctx, "query", trace.WithLinks(trace.Link{SpanContext: link}))
	child.SetAttributes(attribute.Int("rows", 3))
	child.AddEvent("cache miss")
	child.SetStatus(codes.Error, "timeout")
	child.End()
	root.SetName("GET /users/{id}")
	root.End()
	flush(t, p)

	evs := rec.all()
	if got := kinds(evs); got != "span span" {
		t.Fatalf("events %q, want two CompleteSpans\n%s", got, dump(evs))
	}
	checkStreams(t, evs)
	rootID, childID := root.SpanContext().SpanID(), child.SpanContext().SpanID()
	e, c, ok := find[*bridge.CompleteSpan](evs, childID)
	if !ok {
		t.Fatalf("no CompleteSpan for the child\n%s", dump(evs))
	}
	if c.Open.Name != "query" || c.Open.Parent != rootID || len(c.Open.Links) != 1 ||
		c.End.Status != (bridge.Status{Code: codes.Error, Description: "timeout"}) ||
		len(c.End.Events) != 1 || len(c.End.Attributes) != 1 || c.End.Attributes[0].Key != "rows" {
		t.Fatalf("child CompleteSpan %+v open %+v end %+v", c, *c.Open, *c.End)
	}
	if c.Start.IsZero() || !e.Time.After(c.Start) && !e.Time.Equal(c.Start) {
		t.Fatalf("child start %v, end %v", c.Start, e.Time)
	}
	_, r, _ := find[*bridge.CompleteSpan](evs, rootID)
	if r.Open.Name != "GET /users/{id}" || r.Open.SpanKind != trace.SpanKindServer || r.Open.Parent.IsValid() ||
		len(r.Open.Attributes) != 1 || r.End.StreamContinues {
		t.Fatalf("root CompleteSpan open %+v end %+v", *r.Open, *r.End)
	}
	if c.Alone || r.Alone {
		t.Fatalf("a stream of two spans sent a span alone: child %v, root %v", c.Alone, r.Alone)
	}
	if st := p.Stats(); st.CompleteSpans != 2 || st.LateAnnounced != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A root span that ends within the announce delay, with nothing else of its stream
// sent or held back, is alone in its stream: sequence 0 under the stream id receivers
// derive (it travels without one). A root whose child is still held back is not.
func TestAnnounceDelaySpanAlone(t *testing.T) {
	p, sdk, rec := setup(t, WithAnnounceDelay(time.Hour))
	tracer := p.Wrap(sdk).Tracer("t")
	_, lone := tracer.Start(context.Background(), "GET /health")
	lone.End()
	remote := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true}))
	_, served := tracer.Start(remote, "POST /orders")
	served.End()
	ctx, parent := tracer.Start(context.Background(), "job")
	_, child := tracer.Start(ctx, "step")
	parent.End()
	child.End()
	flush(t, p)

	evs := rec.all()
	checkStreams(t, evs)
	for _, s := range []trace.Span{lone, served} {
		sc := s.SpanContext()
		e, c, ok := find[*bridge.CompleteSpan](evs, sc.SpanID())
		if !ok || !c.Alone || e.Sequence != 0 || e.StreamID != bridge.AloneStreamID(sc.TraceID(), sc.SpanID()) {
			t.Fatalf("span %s: alone %v, sequence %d, stream %s; want alone at 0 under the derived id\n%s",
				sc.SpanID(), c != nil && c.Alone, e.Sequence, e.StreamID, dump(evs))
		}
	}
	_, c, ok := find[*bridge.CompleteSpan](evs, parent.SpanContext().SpanID())
	if !ok || c.Alone || !c.End.StreamContinues {
		t.Fatalf("root ending before its held-back child: alone %v, continues %v\n%s", c != nil && c.Alone, c != nil && c.End.StreamContinues, dump(evs))
	}
}

// A span still open when the delay passes is announced then, as it stands: its
// current name, then the attributes and status set since it started. Its end follows
// as SpanEndData, as in protocol 1.0.
func TestAnnounceDelayLongSpanIsAnnounced(t *testing.T) {
	const delay = 30 * time.Millisecond
	p, sdk, rec := setup(t, WithAnnounceDelay(delay))
	tracer := p.Wrap(sdk).Tracer("t")
	_, span := tracer.Start(context.Background(), "job")
	started := time.Now()
	span.SetName("nightly-import") // before the announcement: no UpdateName
	span.SetAttributes(attribute.String("batch", "42"))
	span.SetStatus(codes.Error, "slow")
	evs := rec.waitFor(t, "the SpanOpen", func(evs []bridge.Event) bool { return count(evs, bridge.KindSpanOpen) == 1 })
	if waited := time.Since(started); waited < delay {
		t.Fatalf("announced after %v, before the %v delay", waited, delay)
	}
	if got := kinds(evs); got != "span_open attributes status" {
		t.Fatalf("events %q\n%s", got, dump(evs))
	}
	_, open, _ := find[*bridge.SpanOpen](evs, span.SpanContext().SpanID())
	if open.Name != "nightly-import" {
		t.Fatalf("announced as %q", open.Name)
	}
	span.SetName("nightly-import 2") // after: streamed at once
	span.End()
	flush(t, p)
	evs = rec.all()
	if got := kinds(evs); got != "span_open attributes status update_name span_end" {
		t.Fatalf("events %q\n%s", got, dump(evs))
	}
	checkStreams(t, evs)
	if st := p.Stats(); st.LateAnnounced != 1 || st.CompleteSpans != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// ForceFlush announces what is held back; Shutdown reports a held-back span as one
// unfinished CompleteSpan.
func TestAnnounceDelayFlushAndShutdown(t *testing.T) {
	p, sdk, rec := setup(t, WithAnnounceDelay(time.Hour))
	tracer := sdk.Tracer("t")
	_, announced := tracer.Start(context.Background(), "announced")
	flush(t, p)
	if got := kinds(rec.all()); got != "span_open" {
		t.Fatalf("after ForceFlush %q", got)
	}
	_, held := tracer.Start(context.Background(), "held")
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := rec.all()
	checkStreams(t, evs)
	_, c, ok := find[*bridge.CompleteSpan](evs, held.SpanContext().SpanID())
	if !ok || !c.End.Unfinished || c.Open.Name != "held" {
		t.Fatalf("held span at Shutdown\n%s", dump(evs))
	}
	_, end, ok := find[*bridge.SpanEndData](evs, announced.SpanContext().SpanID())
	if !ok || !end.Unfinished {
		t.Fatalf("announced span at Shutdown\n%s", dump(evs))
	}
}

// A root that ends while a descendant is still held back says that its stream goes
// on; the descendant's record and an Outcome follow, and the stream rules hold.
func TestAnnounceDelayRootEndsBeforeHeldChild(t *testing.T) {
	p, sdk, rec := setup(t, WithAnnounceDelay(time.Hour))
	tracer := sdk.Tracer("t")
	ctx, root := tracer.Start(context.Background(), "handler")
	_, child := tracer.Start(ctx, "background")
	root.End()
	child.End()
	flush(t, p)
	evs := rec.all()
	if got := kinds(evs); got != "span span outcome" {
		t.Fatalf("events %q\n%s", got, dump(evs))
	}
	_, r, _ := find[*bridge.CompleteSpan](evs, root.SpanContext().SpanID())
	if !r.End.StreamContinues {
		t.Fatalf("root's record does not say the stream continues\n%s", dump(evs))
	}
	if ended := checkStreams(t, evs); len(ended) != 1 {
		t.Fatalf("streams ended: %v\n%s", ended, dump(evs))
	}
}

// Held-back spans send no heartbeats: receivers do not know of their stream yet.
func TestAnnounceDelayNoHeartbeatBeforeAnnouncement(t *testing.T) {
	p, sdk, rec := setup(t, WithAnnounceDelay(time.Hour), WithHeartbeatInterval(time.Millisecond))
	_, span := sdk.Tracer("t").Start(context.Background(), "quiet")
	time.Sleep(30 * time.Millisecond)
	flush(t, p) // announces the span: heartbeats may follow from here on
	if evs := rec.all(); count(evs, bridge.KindHeartbeat) != 0 {
		t.Fatalf("heartbeat before the announcement\n%s", dump(evs))
	}
	span.End()
}
