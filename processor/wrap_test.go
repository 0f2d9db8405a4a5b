package processor

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// Renames through a wrapped span are published inside SetName: visible while the span
// is open, with the scan off.
func TestWrapRenamePublishedAtOnce(t *testing.T) {
	p, sdk, rec := setup(t)
	tp := p.Wrap(sdk)
	ctx, s := tp.Tracer("t").Start(context.Background(), "GET")
	if got := trace.SpanFromContext(ctx); got != s {
		t.Fatalf("SpanFromContext returns %T, want the wrapper", got)
	}
	trace.SpanFromContext(ctx).SetName("GET /users/{id}")
	s.SetName("GET /users/{id}") // unchanged: no second event
	flush(t, p)
	evs := rec.all()
	if got := kinds(evs); got != "span_open update_name" {
		t.Fatalf("while open: %s", got)
	}
	if _, u, _ := find[*bridge.UpdateName](evs, s.SpanContext().SpanID()); u.Name != "GET /users/{id}" {
		t.Fatalf("UpdateName %q", u.Name)
	}
	s.SetName("GET /users/{id}/edit")
	s.End()
	s.SetName("after end") // ignored: nothing after SpanEndData
	flush(t, p)
	evs = rec.all()
	checkStreams(t, evs)
	if got := kinds(evs); got != "span_open update_name update_name span_end" {
		t.Fatalf("events: %s", got)
	}
}

// Renames through an unwrapped span are found by the background scan while the span is
// still open.
func TestScanFindsUnwrappedRename(t *testing.T) {
	_, sdk, rec := setup(t, WithScanInterval(5e6))
	_, s := sdk.Tracer("t").Start(context.Background(), "before")
	s.SetName("after")
	evs := rec.waitFor(t, "the scan's UpdateName", func(evs []bridge.Event) bool { return count(evs, bridge.KindUpdateName) == 1 })
	if _, u, _ := find[*bridge.UpdateName](evs, s.SpanContext().SpanID()); u.Name != "after" {
		t.Fatalf("UpdateName %q", u.Name)
	}
	s.End()
	evs = rec.waitFor(t, "the SpanEndData", func(evs []bridge.Event) bool { return count(evs, bridge.KindSpanEnd) == 1 })
	checkStreams(t, evs)
	if got := kinds(evs); got != "span_open update_name span_end" {
		t.Fatalf("events: %s (the rename must not be repeated at the end)", got)
	}
}

// With the scan off, a rename through an unwrapped span comes at the end, right before
// SpanEndData.
func TestRenameAtEnd(t *testing.T) {
	p, sdk, rec := setup(t)
	_, s := sdk.Tracer("t").Start(context.Background(), "before")
	s.SetName("middle")
	s.SetName("after")
	flush(t, p)
	if got := kinds(rec.all()); got != "span_open" {
		t.Fatalf("with the scan off, before the end: %s", got)
	}
	s.End()
	flush(t, p)
	evs := rec.all()
	checkStreams(t, evs)
	if got := kinds(evs); got != "span_open update_name span_end" {
		t.Fatalf("events: %s", got)
	}
	e, u, _ := find[*bridge.UpdateName](evs, s.SpanContext().SpanID())
	ee, _, _ := find[*bridge.SpanEndData](evs, s.SpanContext().SpanID())
	if u.Name != "after" || !e.Time.Equal(ee.Time) {
		t.Fatalf("UpdateName %q at %v, want %q at the end time %v", u.Name, e.Time, "after", ee.Time)
	}
}

func TestWrapStatusAndAttributes(t *testing.T) {
	p, sdk, rec := setup(t, WithMaxAttributes(2), WithMaxAttributeValueLength(4))
	tp := p.Wrap(sdk)
	_, s := tp.Tracer("t").Start(context.Background(), "s")
	kv := []attribute.KeyValue{attribute.String("k", "value"), attribute.Int("n", 1), attribute.Int("dropped", 2)}
	s.SetAttributes(kv...)
	kv[1] = attribute.Int("n", 99) // the caller reuses its slice: the event keeps its copy
	s.SetAttributes()              // nothing to send
	s.SetStatus(codes.Unset, "")   // the status the span has: nothing to send
	s.SetStatus(codes.Error, "bad")
	s.SetStatus(codes.Error, "bad") // unchanged
	s.SetStatus(codes.Ok, "")
	s.SetStatus(codes.Error, "ignored after Ok by the SDK")
	flush(t, p)
	evs := rec.all()
	if got := kinds(evs); got != "span_open attributes status status" {
		t.Fatalf("events: %s", got)
	}
	_, a, _ := find[*bridge.Attributes](evs, s.SpanContext().SpanID())
	if len(a.Attributes) != 2 || a.Attributes[0].Value.AsString() != "valu" || a.Attributes[1].Value.AsInt64() != 1 {
		t.Fatalf("Attributes event %v, want k=valu n=1", a.Attributes)
	}
	var statuses []bridge.Status
	for _, e := range evs {
		if b, ok := e.Body.(*bridge.StatusUpdate); ok {
			statuses = append(statuses, b.Status)
		}
	}
	if statuses[0] != (bridge.Status{Code: codes.Error, Description: "bad"}) || statuses[1] != (bridge.Status{Code: codes.Ok}) {
		t.Fatalf("statuses %v", statuses)
	}
	st := p.Stats()
	if st.AttributesDropped != 1 || st.AttributesTruncated != 1 {
		t.Fatalf("stats %+v: want 1 dropped and 1 truncated", st)
	}
	s.End()
	flush(t, p)
	_, end, _ := find[*bridge.SpanEndData](rec.all(), s.SpanContext().SpanID())
	if end.Status.Code != codes.Ok || len(end.Attributes) != 2 || end.DroppedAttributes != 1 {
		t.Fatalf("end %+v", end)
	}
}

// Spans started under a wrapped span are wrapped, their provider stays wrapped, and
// their parent's child count includes them.
func TestWrapChildrenAndProvider(t *testing.T) {
	p, sdk, rec := setup(t)
	tp := p.Wrap(sdk)
	if p.Wrap(tp) != tp {
		t.Fatal("wrapping twice must return the same provider")
	}
	if tp.Tracer("a") != tp.Tracer("a") {
		t.Fatal("Tracer must return one wrapper per tracer")
	}
	ctx, root := tp.Tracer("t").Start(context.Background(), "root")
	if root.TracerProvider() != tp {
		t.Fatal("span.TracerProvider() is not the wrapped provider")
	}
	cctx, child := root.TracerProvider().Tracer("other").Start(ctx, "child")
	if _, ok := child.(*span); !ok {
		t.Fatalf("child is %T, want a wrapped span", child)
	}
	if trace.SpanFromContext(cctx) != child {
		t.Fatal("SpanFromContext of the child's context is not the wrapped child")
	}
	child.SetName("child renamed")
	flush(t, p)
	if got := kinds(rec.all()); got != "span_open span_open update_name" {
		t.Fatalf("events: %s", got)
	}
	child.End()
	root.End()
	flush(t, p)
	evs := rec.all()
	checkStreams(t, evs)
	_, end, _ := find[*bridge.SpanEndData](evs, root.SpanContext().SpanID())
	if end.ChildSpanCount != 1 {
		t.Fatalf("root ChildSpanCount = %d, want 1", end.ChildSpanCount)
	}
	// Unsampled spans are wrapped too, so their provider stays wrapped.
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(p))
	_, ns := p.Wrap(never).Tracer("t").Start(context.Background(), "never")
	if w, ok := ns.TracerProvider().(*tracerProvider); !ok || w.tp != never {
		t.Fatal("unsampled span's provider is not wrapped")
	}
	ns.SetName("x")
	ns.End()
}

// A panic through a deferred End of a wrapped span is recorded as the SDK records it,
// and goes on.
func TestWrapEndRecordsPanic(t *testing.T) {
	p, sdk, rec := setup(t)
	panicking := func(tr trace.Tracer) (id trace.SpanID) {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the panic to go on", r)
			}
		}()
		_, s := tr.Start(context.Background(), "panics")
		id = s.SpanContext().SpanID()
		defer s.End(trace.WithStackTrace(true))
		panic("boom")
	}
	wrapped := panicking(p.Wrap(sdk).Tracer("t"))
	plain := panicking(sdk.Tracer("t"))
	flush(t, p)
	attrs := func(id trace.SpanID) map[attribute.Key]string {
		_, end, ok := find[*bridge.SpanEndData](rec.all(), id)
		if !ok || len(end.Events) != 1 || end.Events[0].Name != "exception" {
			t.Fatalf("end %+v: want an exception event", end)
		}
		got := map[attribute.Key]string{}
		for _, kv := range end.Events[0].Attributes {
			got[kv.Key] = kv.Value.AsString()
		}
		return got
	}
	w, sdkAttrs := attrs(wrapped), attrs(plain)
	if w["exception.message"] != "boom" || w["exception.type"] != sdkAttrs["exception.type"] ||
		w["exception.stacktrace"] == "" || sdkAttrs["exception.stacktrace"] == "" {
		t.Fatalf("wrapped span's exception %v, the SDK's %v", w, sdkAttrs)
	}
}
