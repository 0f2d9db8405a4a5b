package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

func TestOpenAndEnd(t *testing.T) {
	p, sdk, rec := setup(t)
	tr := sdk.Tracer("test/scope", trace.WithInstrumentationVersion("1.2.3"))
	linked := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{9, 9}, SpanID: trace.SpanID{8, 8}, TraceFlags: trace.FlagsSampled,
	})
	start := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	ctx, root := tr.Start(context.Background(), "root",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("a", "1"), attribute.Int("b", 2)),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.Bool("l", true)}}))
	_, child := tr.Start(ctx, "child")

	evs := rec.waitFor(t, "two SpanOpens", func(evs []bridge.Event) bool { return count(evs, bridge.KindSpanOpen) == 2 })
	rootID, childID := root.SpanContext().SpanID(), child.SpanContext().SpanID()
	e, open, ok := find[*bridge.SpanOpen](evs, rootID)
	if !ok {
		t.Fatalf("no SpanOpen for the root:\n%s", dump(evs))
	}
	if open.Name != "root" || open.SpanKind != trace.SpanKindServer || open.Parent.IsValid() || open.RemoteParent ||
		!open.TraceFlags.IsSampled() || len(open.Attributes) != 2 || len(open.Links) != 1 ||
		!open.Links[0].SpanContext.Equal(linked) || len(open.Links[0].Attributes) != 1 {
		t.Fatalf("root SpanOpen = %+v", open)
	}
	if !e.Time.Equal(start) || e.TraceID != root.SpanContext().TraceID() || e.Sequence != 0 || !e.StreamID.IsValid() {
		t.Fatalf("root SpanOpen envelope = %+v", e)
	}
	// Even a root with no parent gets a random stream id of its own, not its trace id.
	if e.StreamID == bridge.StreamID(e.TraceID) {
		t.Fatalf("stream id %s is the trace id, want a random one", e.StreamID)
	}
	if e.Resource == nil || !e.Resource.Set().HasValue("service.name") || e.Scope == nil || e.Scope.Name != "test/scope" || e.Scope.Version != "1.2.3" {
		t.Fatalf("resource %v, scope %+v", e.Resource, e.Scope)
	}
	ce, copen, _ := find[*bridge.SpanOpen](evs, childID)
	if copen.Parent != rootID || ce.StreamID != e.StreamID || ce.Sequence != 1 {
		t.Fatalf("child SpanOpen %+v in stream %s seq %d, want parent %s in stream %s seq 1", copen, ce.StreamID, ce.Sequence, rootID, e.StreamID)
	}
	if ce.Scope != e.Scope || ce.Resource != e.Resource {
		t.Fatal("the spans of one tracer do not share their Resource and Scope pointers")
	}

	root.SetAttributes(attribute.String("a", "changed"), attribute.String("c", "new"), attribute.Int("b", 2))
	root.AddEvent("something", trace.WithAttributes(attribute.Int("n", 1)))
	root.AddLink(trace.Link{SpanContext: linked})
	root.SetStatus(codes.Error, "broken")
	child.End()
	end := time.Now()
	root.End(trace.WithTimestamp(end))

	flush(t, p)
	evs = rec.all()
	// The root ended last: its end ends the stream, no Outcome follows.
	if ends := checkStreams(t, evs); len(ends) != 1 || ends[e.StreamID] != "" {
		t.Fatalf("stream ends %v, want one by its root's end", ends)
	}
	if got := kinds(evs); got != "span_open span_open span_end span_end" {
		t.Fatalf("events = %s", got)
	}
	for _, ev := range evs {
		if ev.StreamID != e.StreamID {
			t.Fatalf("event of the stream %s carries stream id %s:\n%s", e.StreamID, ev.StreamID, dump(evs))
		}
	}
	ee, endData, _ := find[*bridge.SpanEndData](evs, rootID)
	if !ee.Time.Equal(end) || endData.Unfinished || endData.Status != (bridge.Status{Code: codes.Error, Description: "broken"}) {
		t.Fatalf("root end %+v at %v", endData, ee.Time)
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range endData.Attributes {
		got[kv.Key] = kv.Value
	}
	if len(got) != 2 || got["a"].AsString() != "changed" || got["c"].AsString() != "new" {
		t.Fatalf("end attributes = %v, want a=changed and c=new only", endData.Attributes)
	}
	if len(endData.Events) != 1 || endData.Events[0].Name != "something" || len(endData.Links) != 1 || endData.ChildSpanCount != 1 {
		t.Fatalf("end events %v, links %v, children %d", endData.Events, endData.Links, endData.ChildSpanCount)
	}
	_, cend, _ := find[*bridge.SpanEndData](evs, childID)
	if cend.Attributes != nil || cend.Events != nil || cend.Links != nil {
		t.Fatalf("child end carries unchanged data: %+v", cend)
	}
	if n := p.Stats().OpenSpans; n != 0 {
		t.Fatalf("open spans after all ended: %d", n)
	}
}

// Many goroutines start, rename and end spans of one stream at once: the sink gets
// every stream's events in sequence order, each span's in lifecycle order.
func TestNestedSpansAcrossGoroutinesInOrder(t *testing.T) {
	p, sdk, rec := setup(t, WithScanInterval(time.Millisecond))
	tp := p.Wrap(sdk)
	tr := tp.Tracer("nested")
	const workers, depth = 8, 5
	var roots []trace.Span
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		ctx, root := tr.Start(context.Background(), fmt.Sprintf("root-%d", r))
		roots = append(roots, root)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := ctx
				var spans []trace.Span
				for d := 0; d < depth; d++ {
					var s trace.Span
					ctx, s = tr.Start(ctx, "work")
					s.SetName(fmt.Sprintf("work-%d-%d", w, d))
					spans = append(spans, s)
				}
				for i := len(spans) - 1; i >= 0; i-- {
					// Unwrapped renames too: found by the scan or at the end.
					trace.Span(spans[i].(*span).Span).SetName(fmt.Sprintf("final-%d", i))
					spans[i].End()
				}
			}()
		}
	}
	wg.Wait()
	for _, root := range roots {
		root.End()
	}
	want := 3 * (workers*depth + 1)
	rec.waitFor(t, "every span's end", func(evs []bridge.Event) bool { return count(evs, bridge.KindSpanEnd) == want })
	flush(t, p)
	evs := rec.all()
	// Each root ended last, so its end ended its stream.
	ends := checkStreams(t, evs)
	streams := map[bridge.StreamID]bool{}
	for _, e := range evs {
		streams[e.StreamID] = true
	}
	if len(streams) != 3 || len(ends) != 3 || count(evs, bridge.KindOutcome) != 0 {
		t.Fatalf("%d streams, %d ended, %d outcomes; want 3, 3, 0", len(streams), len(ends), count(evs, bridge.KindOutcome))
	}
	// The last name published for every span is its final one.
	last := map[trace.SpanID]string{}
	for _, e := range evs {
		switch b := e.Body.(type) {
		case *bridge.SpanOpen:
			last[e.SpanID] = b.Name
		case *bridge.UpdateName:
			last[e.SpanID] = b.Name
		}
	}
	for id, name := range last {
		if name != "final-0" && name != "final-1" && name != "final-2" && name != "final-3" && name != "final-4" && name[:4] != "root" {
			t.Fatalf("span %s ends named %q", id, name)
		}
	}
}

// A local child that ends after its root keeps the stream open; the Outcome comes
// after the last end.
func TestOutcomeAfterRootAndChildren(t *testing.T) {
	p, sdk, rec := setup(t)
	tr := sdk.Tracer("t")
	ctx, root := tr.Start(context.Background(), "root")
	_, child := tr.Start(ctx, "child")
	cctx, child2 := tr.Start(ctx, "child2")
	_, grandchild := tr.Start(cctx, "grandchild")
	root.End()
	child2.End()
	flush(t, p)
	if n := count(rec.all(), bridge.KindOutcome); n != 0 {
		t.Fatalf("Outcome with spans still open:\n%s", dump(rec.all()))
	}
	grandchild.End()
	flush(t, p)
	if n := count(rec.all(), bridge.KindOutcome); n != 0 {
		t.Fatalf("Outcome with a child still open:\n%s", dump(rec.all()))
	}
	child.End()
	evs := rec.waitFor(t, "the Outcome", func(evs []bridge.Event) bool { return count(evs, bridge.KindOutcome) == 1 })
	if ends := checkStreams(t, evs); len(ends) != 1 || ends[evs[0].StreamID] != OutcomeOK {
		t.Fatalf("stream ends %v, want one by Outcome ok", ends)
	}
	if evs[len(evs)-1].Kind() != bridge.KindOutcome || evs[len(evs)-2].SpanID != child.SpanContext().SpanID() {
		t.Fatalf("the Outcome must follow the last end:\n%s", dump(evs))
	}
	// The wall time runs from the root's start to the last end.
	oe, oc, _ := find[*bridge.Outcome](evs, root.SpanContext().SpanID())
	re, _, _ := find[*bridge.SpanOpen](evs, root.SpanContext().SpanID())
	if want := oe.Time.Sub(re.Time); want <= 0 || oc.WallTime != want {
		t.Fatalf("outcome %+v: want the wall time %v", oc, want)
	}
	// A span started under the closed stream's root opens a stream of its own, with a
	// random id: its trace id is the first stream's.
	_, late := tr.Start(ctx, "late")
	late.End()
	evs = rec.waitFor(t, "the late span's end", func(evs []bridge.Event) bool {
		_, _, ok := find[*bridge.SpanEndData](evs, late.SpanContext().SpanID())
		return ok
	})
	flush(t, p)
	evs = rec.all()
	if ends := checkStreams(t, evs); len(ends) != 2 || count(evs, bridge.KindOutcome) != 1 {
		t.Fatalf("stream ends %v, want 2, the late one by its root's end:\n%s", ends, dump(evs))
	}
	le, lopen, _ := find[*bridge.SpanOpen](evs, late.SpanContext().SpanID())
	if le.StreamID == evs[0].StreamID || le.StreamID == bridge.StreamID(le.TraceID) || le.Sequence != 0 || lopen.Parent != root.SpanContext().SpanID() {
		t.Fatalf("late span: stream %s seq %d parent %s", le.StreamID, le.Sequence, lopen.Parent)
	}
}

func TestRemoteParentStartsStream(t *testing.T) {
	p, sdk, rec := setup(t)
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	_, s := sdk.Tracer("t").Start(ctx, "server")
	s.End()
	flush(t, p)
	evs := rec.all()
	if ends := checkStreams(t, evs); len(ends) != 1 || kinds(evs) != "span_open span_end" {
		t.Fatalf("stream ends %v, events %s; want the root's end to end the stream", ends, kinds(evs))
	}
	e, open, _ := find[*bridge.SpanOpen](evs, s.SpanContext().SpanID())
	if !open.RemoteParent || open.Parent != remote.SpanID() || e.TraceID != remote.TraceID() || e.Sequence != 0 {
		t.Fatalf("SpanOpen %+v seq %d", open, e.Sequence)
	}
	// The trace comes from elsewhere: other processes may stream it too, so the
	// stream id is a random one, not the trace id.
	if !e.StreamID.IsValid() || e.StreamID == bridge.StreamID(e.TraceID) {
		t.Fatalf("stream id %s for a remote parent's trace %s", e.StreamID, e.TraceID)
	}
}

// Only sampled spans are published, as the BatchSpanProcessor exports only those.
func TestOnlySampledSpans(t *testing.T) {
	rec := &recorder{}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p), sdktrace.WithSampler(recordOnly{}))
	_, s := sdk.Tracer("t").Start(context.Background(), "recorded, not sampled")
	if !s.IsRecording() || s.SpanContext().IsSampled() {
		t.Fatal("the sampler should record without sampling")
	}
	s.End()
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	_, s2 := sampled.Tracer("t").Start(context.Background(), "sampled")
	s2.End()
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := rec.all()
	if got := kinds(evs); got != "span_open span_end" || evs[0].SpanID != s2.SpanContext().SpanID() {
		t.Fatalf("events: %s\n%s", got, dump(evs))
	}
}

type recordOnly struct{}

func (recordOnly) ShouldSample(sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return sdktrace.SamplingResult{Decision: sdktrace.RecordOnly}
}
func (recordOnly) Description() string { return "RecordOnly" }

// A span that never ends is seen open, then unfinished at Shutdown.
func TestUnendedSpanUnfinishedAtShutdown(t *testing.T) {
	rec := &recorder{}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := sdk.Tracer("t")
	ctx, root := tr.Start(context.Background(), "hangs", trace.WithAttributes(attribute.String("a", "1")))
	_, done := tr.Start(ctx, "done")
	done.End()
	root.SetAttributes(attribute.String("late", "yes"))
	root.SetName("renamed")
	rec.waitFor(t, "the SpanOpen", func(evs []bridge.Event) bool {
		_, _, ok := find[*bridge.SpanOpen](evs, root.SpanContext().SpanID())
		return ok
	})
	if p.Stats().OpenSpans != 1 {
		t.Fatalf("open spans = %d, want 1", p.Stats().OpenSpans)
	}
	before := time.Now()
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	evs := rec.all()
	checkStreams(t, evs)
	e, end, ok := find[*bridge.SpanEndData](evs, root.SpanContext().SpanID())
	if !ok || !end.Unfinished || end.Status.Code != codes.Error || end.Status.Description != UnfinishedDescription || e.Time.Before(before) {
		t.Fatalf("unfinished end %+v at %v:\n%s", end, e.Time, dump(evs))
	}
	if len(end.Attributes) != 1 || end.Attributes[0].Key != "late" || end.ChildSpanCount != 1 {
		t.Fatalf("unfinished end attributes %v, children %d", end.Attributes, end.ChildSpanCount)
	}
	// The root was the stream's only open span: its unfinished end ends the stream.
	if got := kinds(ofSpan(evs, root.SpanContext().SpanID())); got != "span_open update_name span_end" {
		t.Fatalf("root events: %s", got)
	}
	if _, n := rec.counts(); n != 1 {
		t.Fatalf("sink shut down %d times, want 1", n)
	}
	// Ending it after Shutdown publishes nothing more.
	root.End()
	if n := len(rec.all()); n != len(evs) {
		t.Fatalf("events after Shutdown: %d more", n-len(evs))
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatalf("ForceFlush after Shutdown: %v", err)
	}
}

// A sink that never returns never blocks OnStart, OnEnd or SetName: they all finish
// well within a deadline while the queue overflows, and the drops are counted.
func TestBlockedSinkNeverBlocks(t *testing.T) {
	rec := &recorder{block: make(chan struct{})}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond), WithMaxQueueEvents(256), WithScanInterval(time.Millisecond),
		WithHeartbeatInterval(time.Millisecond), WithExportTimeout(time.Hour))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tp := p.Wrap(sdk)
	const spans = 8000
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < spans/4; i++ {
					ctx, s := tp.Tracer("t").Start(context.Background(), "s")
					_, c := tp.Tracer("t").Start(ctx, "c")
					s.SetName("renamed")
					c.SetStatus(codes.Ok, "")
					c.End()
					s.End()
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("OnStart/OnEnd/SetName blocked behind a blocked sink")
	}
	st := p.Stats()
	if st.Dropped == 0 || st.Suppressed == 0 {
		t.Fatalf("stats %+v: want drops and suppressed events", st)
	}
	if st.Pipeline.Dropped != st.Dropped {
		t.Fatalf("processor counted %d drops, pipeline %d", st.Dropped, st.Pipeline.Dropped)
	}
	// Shutdown gives up at its deadline, as the sink still blocks.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := sdk.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a blocked sink: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v past its deadline", d)
	}
	close(rec.block)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// Drops are reported to the sink: StreamDiagnostic events account for every dropped
// sequence number, and no end arrives without its open.
func TestDropsReported(t *testing.T) {
	rec := &recorder{block: make(chan struct{})}
	p, sdk := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond), WithMaxQueueEvents(20), WithBatchSize(5)), (*sdktrace.TracerProvider)(nil)
	sdk = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := p.Wrap(sdk).Tracer("t")
	ctx, root := tr.Start(context.Background(), "root")
	for i := 0; i < 100; i++ {
		_, s := tr.Start(ctx, "child")
		s.SetName(fmt.Sprint("child-", i))
		s.End()
	}
	root.End()
	st := p.Stats()
	if st.Dropped == 0 || st.Suppressed == 0 {
		t.Fatalf("stats %+v, want drops", st)
	}
	close(rec.block)
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := rec.all()
	checkStreams(t, evs)
	var reported uint64
	for _, e := range evs {
		if d, ok := e.Body.(*bridge.StreamDiagnostic); ok {
			reported += d.DroppedEvents
		}
	}
	if reported != st.Dropped {
		t.Fatalf("diagnostics report %d drops, processor counted %d", reported, st.Dropped)
	}
	if count(evs, bridge.KindSpanOpen) < 2 || count(evs, bridge.KindSpanEnd) < 1 {
		t.Fatalf("want the first spans delivered:\n%s", dump(evs))
	}
}

// Heartbeats reach a stream whose span stays open and silent.
func TestHeartbeatForLongOpenSpan(t *testing.T) {
	p, sdk, rec := setup(t, WithHeartbeatInterval(20*time.Millisecond))
	_, s := sdk.Tracer("t").Start(context.Background(), "long")
	evs := rec.waitFor(t, "two heartbeats", func(evs []bridge.Event) bool { return count(evs, bridge.KindHeartbeat) >= 2 })
	checkStreams(t, evs)
	if evs[1].SpanID != s.SpanContext().SpanID() || evs[1].StreamID != evs[0].StreamID {
		t.Fatalf("heartbeat not on the span's stream:\n%s", dump(evs))
	}
	s.End()
	flush(t, p)
	n := count(rec.all(), bridge.KindHeartbeat)
	// Once the stream closed, no heartbeat follows: wait for several periods.
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	flush(t, p)
	if got := count(rec.all(), bridge.KindHeartbeat); got != n {
		t.Fatalf("%d heartbeats after the stream closed", got-n)
	}
	if p.Stats().Heartbeats != uint64(n) {
		t.Fatalf("Stats.Heartbeats = %d, want %d", p.Stats().Heartbeats, n)
	}
}

// A busy stream gets no heartbeat, a silent one does: ticks are driven by hand so
// the test does not depend on the machine's speed.
func TestHeartbeatOnlyForSilentStreams(t *testing.T) {
	p, sdk, rec := setup(t, WithHeartbeatInterval(time.Hour), WithScanInterval(15*time.Minute))
	if p.period != 15*time.Minute || p.hbTicks != 4 || p.scanEvery != 1 {
		t.Fatalf("period %v, hbTicks %d, scanEvery %d", p.period, p.hbTicks, p.scanEvery)
	}
	tr := p.Wrap(sdk).Tracer("t")
	_, quiet := tr.Start(context.Background(), "quiet")
	_, busy := tr.Start(context.Background(), "busy")
	var buf []*spanState
	for i := 0; i < 12; i++ {
		busy.SetAttributes(attribute.Int("i", i))
		n := p.tick.Add(1)
		buf = p.scan(n, time.Now(), false, buf)
	}
	flush(t, p)
	evs := rec.all()
	checkStreams(t, evs)
	quietBeats := count(ofSpan(evs, quiet.SpanContext().SpanID()), bridge.KindHeartbeat)
	busyBeats := count(ofSpan(evs, busy.SpanContext().SpanID()), bridge.KindHeartbeat)
	// Silent for more than 4 ticks: heartbeats at ticks 5 and 10.
	if quietBeats != 2 || busyBeats != 0 {
		t.Fatalf("heartbeats: quiet %d (want 2), busy %d (want 0)\n%s", quietBeats, busyBeats, dump(evs))
	}
	quiet.End()
	busy.End()
}

func TestForceFlushAndShutdownDeadlines(t *testing.T) {
	rec := &recorder{block: make(chan struct{})}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond), WithExportTimeout(time.Hour))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	_, s := sdk.Tracer("t").Start(context.Background(), "s")
	s.End()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.ForceFlush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ForceFlush with a blocked sink: %v, want DeadlineExceeded", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := p.Shutdown(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a blocked sink: %v, want DeadlineExceeded", err)
	}
	close(rec.block)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// A healthy sink: ForceFlush delivers and flushes the sink.
	p2, sdk2, rec2 := setup(t, WithFlushInterval(time.Hour))
	_, s2 := sdk2.Tracer("t").Start(context.Background(), "s")
	s2.End()
	flush(t, p2)
	if got, n := kinds(rec2.all()), fl(rec2); got != "span_open span_end" || n != 1 {
		t.Fatalf("after ForceFlush: %s, %d sink flushes", got, n)
	}
}

func fl(r *recorder) int { n, _ := r.counts(); return n }

// A nil sink is a mistake New reports, not a panic; spans still work.
func TestNilSink(t *testing.T) {
	var logs strings.Builder
	p := New(nil, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	_, s := sdk.Tracer("t").Start(context.Background(), "s")
	s.End()
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "nil sink") {
		t.Fatalf("no warning about the nil sink: %q", logs.String())
	}
}

// Spans ending while Shutdown reports the open ones as unfinished: each span ends
// once (really or unfinished), and no stream gets an event after its Outcome.
func TestShutdownRacesWithEnds(t *testing.T) {
	rec := &recorder{}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond), WithScanInterval(time.Millisecond), WithHeartbeatInterval(time.Millisecond))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := p.Wrap(sdk).Tracer("t")
	var spans []trace.Span
	for i := 0; i < 50; i++ {
		ctx, root := tr.Start(context.Background(), "root")
		_, child := tr.Start(ctx, "child")
		spans = append(spans, root, child)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(spans); i += 4 {
				spans[i].SetName("renamed")
				spans[i].End()
			}
			// New spans keep starting and ending while Shutdown runs.
			for i := 0; i < 200; i++ {
				ctx, s := tr.Start(context.Background(), "late")
				_, c := tr.Start(ctx, "late child")
				c.End()
				s.End()
			}
		}()
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	evs := rec.all()
	ended := checkStreams(t, evs)
	// Every span that was seen open was seen to end, and every stream ended.
	opens, ends := count(evs, bridge.KindSpanOpen), count(evs, bridge.KindSpanEnd)
	streams := map[bridge.StreamID]bool{}
	for _, e := range evs {
		streams[e.StreamID] = true
	}
	if opens < len(spans) || ends != opens || len(ended) != len(streams) {
		t.Fatalf("%d opens, %d ends, %d of %d streams ended", opens, ends, len(ended), len(streams))
	}
}

// repeatingIDs gives every trace the same span ids: spans are told apart by trace id.
type repeatingIDs struct {
	mu sync.Mutex
	n  byte
}

func (g *repeatingIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	return trace.TraceID{g.n}, trace.SpanID{1}
}

func (g *repeatingIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return trace.SpanID{2} }

func TestSpanIDsRepeatedAcrossTraces(t *testing.T) {
	rec := &recorder{}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p), sdktrace.WithIDGenerator(&repeatingIDs{}))
	tr := sdk.Tracer("t")
	ctx1, root1 := tr.Start(context.Background(), "root1")
	ctx2, root2 := tr.Start(context.Background(), "root2")
	_, child1 := tr.Start(ctx1, "child1")
	_, child2 := tr.Start(ctx2, "child2")
	child2.End()
	root1.End()
	child1.End()
	if p.Stats().OpenSpans != 1 {
		t.Fatalf("open spans %d, want 1 (root2)", p.Stats().OpenSpans)
	}
	root2.End()
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := rec.all()
	checkStreams(t, evs)
	byStream := map[bridge.StreamID]trace.TraceID{}
	for _, e := range evs {
		if id, ok := byStream[e.StreamID]; ok && id != e.TraceID {
			t.Fatalf("stream %s mixes traces %s and %s\n%s", e.StreamID, id, e.TraceID, dump(evs))
		}
		byStream[e.StreamID] = e.TraceID
		if end, ok := e.Body.(*bridge.SpanEndData); ok && end.Unfinished {
			t.Fatalf("span %s of trace %s reported unfinished", e.SpanID, e.TraceID)
		}
	}
	// root1 ended before child1: an Outcome ends its stream; root2 ended last.
	if len(byStream) != 2 || count(evs, bridge.KindOutcome) != 1 || count(evs, bridge.KindSpanEnd) != 4 {
		t.Fatalf("want 2 streams, 4 ends, 1 outcome:\n%s", dump(evs))
	}
}

// sameTraceIDs gives every new trace the same trace id, and spans distinct span ids.
type sameTraceIDs struct {
	mu sync.Mutex
	n  uint64
}

func (g *sameTraceIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	return trace.TraceID{7, 7, 7}, g.NewSpanID(ctx, trace.TraceID{})
}

func (g *sameTraceIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	return trace.SpanID{1, byte(g.n >> 8), byte(g.n)}
}

// Every stream gets a random id of its own, carried on each of its events: roots of
// fresh traces, roots that share a trace id with an open stream (an IDGenerator that
// repeats trace ids) and roots that reuse the trace id of an ended one alike.
func TestStreamIDsAreRandomAndDistinct(t *testing.T) {
	rec := &recorder{}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond), WithScanInterval(-1), WithHeartbeatInterval(-1))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p), sdktrace.WithIDGenerator(&sameTraceIDs{}))
	tr := sdk.Tracer("t")
	ctx1, root1 := tr.Start(context.Background(), "root1")
	_, child1 := tr.Start(ctx1, "child1")
	_, root2 := tr.Start(context.Background(), "root2") // same trace id, root1 still open
	child1.End()
	root1.End()
	_, root3 := tr.Start(context.Background(), "root3") // same trace id, root1 ended
	root2.End()
	root3.End()
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := rec.all()
	if ends := checkStreams(t, evs); len(ends) != 3 || count(evs, bridge.KindOutcome) != 0 {
		t.Fatalf("stream ends %v, want 3 by their roots' ends:\n%s", ends, dump(evs))
	}
	// Every event of a span carries the stream id of its SpanOpen.
	streamOf := func(s trace.Span) bridge.StreamID {
		id := s.SpanContext().SpanID()
		e, _, ok := find[*bridge.SpanOpen](evs, id)
		if !ok {
			t.Fatalf("no SpanOpen for %s:\n%s", id, dump(evs))
		}
		n := 0
		for _, ev := range evs {
			if ev.SpanID == id {
				n++
				if ev.StreamID != e.StreamID {
					t.Fatalf("span %s: %s event in stream %s, its SpanOpen in %s", id, ev.Kind(), ev.StreamID, e.StreamID)
				}
			}
		}
		if n != 2 {
			t.Fatalf("span %s has %d events, want 2:\n%s", id, n, dump(evs))
		}
		return e.StreamID
	}
	traceID := bridge.StreamID(trace.TraceID{7, 7, 7})
	if s1, c1 := streamOf(root1), streamOf(child1); s1 != c1 {
		t.Fatalf("root1's stream %s, child1's %s, want one stream", s1, c1)
	}
	seen := map[bridge.StreamID]string{}
	for _, s := range []struct {
		name string
		span trace.Span
	}{{"root1", root1}, {"root2", root2}, {"root3", root3}} {
		id := streamOf(s.span)
		if !id.IsValid() || id == traceID {
			t.Fatalf("%s: stream id %s, want a random one (trace id %s)", s.name, id, traceID)
		}
		if other, ok := seen[id]; ok {
			t.Fatalf("%s and %s share stream id %s", other, s.name, id)
		}
		seen[id] = s.name
	}

	// Roots of fresh traces under the default IDGenerator: distinct random ids too.
	p2, sdk2, rec2 := setup(t)
	tr2 := sdk2.Tracer("t")
	const roots = 32
	for range roots {
		_, s := tr2.Start(context.Background(), "root")
		s.End()
	}
	flush(t, p2)
	evs2 := rec2.all()
	if ends := checkStreams(t, evs2); len(ends) != roots {
		t.Fatalf("%d streams for %d roots:\n%s", len(ends), roots, dump(evs2))
	}
	ids := map[bridge.StreamID]bool{}
	for _, e := range evs2 {
		if !e.StreamID.IsValid() || e.StreamID == bridge.StreamID(e.TraceID) {
			t.Fatalf("stream id %s for trace %s, want a random one", e.StreamID, e.TraceID)
		}
		ids[e.StreamID] = true
	}
	if len(ids) != roots || len(evs2) != 2*roots {
		t.Fatalf("%d stream ids over %d events for %d roots, want %d and %d", len(ids), len(evs2), roots, roots, 2*roots)
	}
}

// At Shutdown, a stream whose root and a child are open ends with Outcome "canceled"
// after both unfinished ends (the root's first), as does one whose root ended but a
// child is still open.
func TestShutdownCancelsStreamsWithOpenSpans(t *testing.T) {
	rec := &recorder{}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond), WithScanInterval(-1), WithHeartbeatInterval(-1))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := sdk.Tracer("t")
	ctx, root := tr.Start(context.Background(), "root")
	cctx, child := tr.Start(ctx, "child")
	_, grandchild := tr.Start(cctx, "grandchild")
	_, done := tr.Start(ctx, "done")
	done.End()
	ctx2, root2 := tr.Start(context.Background(), "root2")
	_, child2 := tr.Start(ctx2, "child2")
	root2.End()
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := rec.all()
	ends := checkStreams(t, evs)
	e1, _, _ := find[*bridge.SpanOpen](evs, root.SpanContext().SpanID())
	e2, _, _ := find[*bridge.SpanOpen](evs, root2.SpanContext().SpanID())
	if len(ends) != 2 || ends[e1.StreamID] != OutcomeCanceled || ends[e2.StreamID] != OutcomeCanceled {
		t.Fatalf("stream ends %v, want both by Outcome canceled:\n%s", ends, dump(evs))
	}
	var first []trace.SpanID
	for _, e := range evs {
		if end, ok := e.Body.(*bridge.SpanEndData); ok && end.Unfinished && e.StreamID == e1.StreamID {
			first = append(first, e.SpanID)
		}
	}
	if len(first) != 3 || first[0] != root.SpanContext().SpanID() {
		t.Fatalf("unfinished ends %v, want 3, the root's (%s) first", first, root.SpanContext().SpanID())
	}
	for _, s := range []trace.Span{child, grandchild, child2} {
		if _, end, ok := find[*bridge.SpanEndData](evs, s.SpanContext().SpanID()); !ok || !end.Unfinished {
			t.Fatalf("span %s not reported unfinished", s.SpanContext().SpanID())
		}
	}
}

// A child whose SpanOpen was dropped does not keep its stream from ending with the
// root's end: a receiver never learned of it, so it sees the root end last too.
func TestRootEndEndsStreamDespiteSuppressedChild(t *testing.T) {
	rec := &recorder{block: make(chan struct{})}
	p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond), WithMaxQueueEvents(16), WithBatchSize(4),
		WithScanInterval(-1), WithHeartbeatInterval(-1), WithExportTimeout(time.Hour))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	var unblock sync.Once
	release := func() { unblock.Do(func() { close(rec.block) }) }
	defer func() { release(); _ = sdk.Shutdown(context.Background()) }()
	tr := sdk.Tracer("t")
	ctx, root := tr.Start(context.Background(), "root")
	// Fill the queue (the sink blocks) with spans of other streams.
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Dropped == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the queue never filled")
		}
		_, s := tr.Start(context.Background(), "filler")
		s.End()
	}
	_, child := tr.Start(ctx, "child") // its SpanOpen is dropped
	suppressed := p.Stats().Suppressed // the fillers' ends whose opens were dropped
	release()
	flush(t, p)
	root.End()
	child.End()
	flush(t, p)
	evs := rec.all()
	ends := checkStreams(t, evs)
	e, _, ok := find[*bridge.SpanOpen](evs, root.SpanContext().SpanID())
	if !ok {
		t.Fatalf("root's SpanOpen lost:\n%s", dump(evs))
	}
	if how, ok := ends[e.StreamID]; !ok || how != "" {
		t.Fatalf("root's stream ended %v (%q), want by its root's end:\n%s", ok, how, dump(evs))
	}
	if _, _, ok := find[*bridge.SpanOpen](evs, child.SpanContext().SpanID()); ok {
		t.Fatal("the child's SpanOpen was delivered: the test did not drop it")
	}
	if p.Stats().Suppressed != suppressed+1 {
		t.Fatalf("stats %+v: want the child's end suppressed (%d before)", p.Stats(), suppressed)
	}
}

// Every span allocates one spanState, and in a busy application the bytes allocated
// set how often the garbage collector runs: it must stay within the 512-byte size
// class (the next is 576 bytes).
func TestSpanStateFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(spanState{}); n > 512 {
		t.Fatalf("spanState is %d bytes: over the 512-byte size class of the allocator", n)
	}
}
