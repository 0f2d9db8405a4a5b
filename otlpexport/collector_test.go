package otlpexport_test

// Integration tests through a real OpenTelemetry Collector (internal/tools/otelcol,
// built by `make tools`): exporter → Collector OTLP receiver → batch processor →
// Collector OTLP exporter → otlpsink.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// decodeAll decodes the lifecycle events of every logs request the sink got, failing
// on any rejected record.
func decodeAll(t *testing.T, sink *otlpsink.Sink) []bridge.Event {
	t.Helper()
	var out []bridge.Event
	for _, req := range sink.LogRequests() {
		dec := stwotlp.DecodeEventsRequest(req)
		if len(dec.Rejected) > 0 {
			t.Fatalf("records rejected by the decoder after the Collector: %v", dec.Rejected)
		}
		out = append(out, dec.Events...)
	}
	return out
}

// checkStreamOrder checks that per stream the events arrived as 0, 1, 2, ... with no
// gap and no duplicate, and returns the number of streams.
func checkStreamOrder(t *testing.T, events []bridge.Event) int {
	t.Helper()
	next := map[bridge.StreamID]uint64{}
	for _, e := range events {
		if e.Sequence != next[e.StreamID] {
			t.Fatalf("stream %s: got sequence %d, want %d (out of order, gap or duplicate)", e.StreamID, e.Sequence, next[e.StreamID])
		}
		next[e.StreamID]++
	}
	return len(next)
}

// TestCollectorRoundTripSDK: SDK + processor + otlpexport → Collector → sink, in each
// mode. Every lifecycle event arrives, decodes, is in sequence order per stream, and
// the spans assembled from them, like the spans sent as traces, equal what the SDK
// recorded.
func TestCollectorRoundTripSDK(t *testing.T) {
	for _, mode := range []otlpexport.Mode{otlpexport.ModeEvents, otlpexport.ModeSpans, otlpexport.ModeBoth} {
		t.Run(mode.String(), func(t *testing.T) { roundTrip(t, mode) })
	}
}

func roundTrip(t *testing.T, mode otlpexport.Mode) {
	sink := exSink(t)
	col := testenv.StartCollector(t, testenv.CollectorConfig{ForwardTo: sink.Addr()})
	exp := exNew(t, col.Endpoint(), otlpexport.WithMode(mode))

	rec := tracetest.NewSpanRecorder()
	p := processor.New(exp, processor.WithFlushInterval(20*time.Millisecond))
	res := resource.NewSchemaless(attribute.String("service.name", "roundtrip"), attribute.Int("pid", 42))
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(p), sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res),
	)
	tp := p.Wrap(sdk)
	workload(tp)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sdk.Shutdown(ctx); err != nil {
		t.Fatalf("SDK Shutdown: %v", err)
	}
	st := exp.Stats()
	if st.Logs.Failed+st.Logs.Dropped+st.Logs.Rejected+st.Traces.Failed+st.Traces.Dropped+st.Traces.Rejected != 0 {
		t.Fatalf("exporter stats %+v", st)
	}
	if mode == otlpexport.ModeSpans && st.Logs.Sent != 0 || mode != otlpexport.ModeSpans && st.Logs.Sent == 0 ||
		mode == otlpexport.ModeEvents && st.Traces.Sent != 0 || mode != otlpexport.ModeEvents && st.Traces.Sent == 0 {
		t.Fatalf("mode %s sent %d records and %d spans", mode, st.Logs.Sent, st.Traces.Sent)
	}
	if !sink.WaitFor(30*time.Second, func(s *otlpsink.Sink) bool {
		return uint64(len(s.LogRecords())) >= st.Logs.Sent && uint64(len(s.Spans())) >= st.Traces.Sent
	}) {
		t.Fatalf("the sink got %d records and %d spans through the Collector, the exporter sent %d and %d",
			len(sink.LogRecords()), len(sink.Spans()), st.Logs.Sent, st.Traces.Sent)
	}

	want := rec.Ended()
	// The SDK counts a child only when its parent in the context is the SDK's own span
	// type, which a span of Wrap is not; the truth is the recorded parents.
	children := map[trace.SpanID]int{}
	for _, w := range want {
		children[w.Parent().SpanID()]++
	}
	// OTLP spans have no child count: only the events carry it.
	check := func(what string, got map[trace.SpanID]bridge.Span, withChildCount bool) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d spans, the SDK recorded %d", what, len(got), len(want))
		}
		for _, w := range want {
			g, ok := got[w.SpanContext().SpanID()]
			if !ok {
				t.Errorf("%s: span %q (%s) missing", what, w.Name(), w.SpanContext().SpanID())
				continue
			}
			n := -1
			if withChildCount {
				n = children[w.SpanContext().SpanID()]
			}
			compareSpan(t, g, w, n)
		}
	}

	if mode != otlpexport.ModeSpans {
		events := decodeAll(t, sink)
		if uint64(len(events)) != st.Logs.Sent {
			t.Fatalf("decoded %d events, sent %d", len(events), st.Logs.Sent)
		}
		streams := checkStreamOrder(t, events)
		got := map[trace.SpanID]bridge.Span{}
		asm := bridge.NewAssembler(bridge.SpanConsumerFunc(func(_ context.Context, spans []bridge.Span) error {
			for _, s := range spans {
				got[s.SpanID] = s
			}
			return nil
		}))
		if err := asm.Consume(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		if err := asm.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		check("assembled from the events", got, true)
		t.Logf("%d spans in %d streams, %d events through the Collector", len(want), streams, len(events))
	}
	if mode != otlpexport.ModeEvents {
		got := map[trace.SpanID]bridge.Span{}
		for _, req := range sink.TraceRequests() {
			spans, errs := stwotlp.DecodeSpans(req)
			if len(errs) > 0 {
				t.Fatalf("spans rejected by the decoder after the Collector: %v", errs)
			}
			for _, s := range spans {
				got[s.SpanID] = s
			}
		}
		check("sent as traces", got, false)
	}
}

// workload makes spans with every attribute type, renames, events, links, statuses,
// kinds, remote parents and several streams, some from concurrent goroutines.
func workload(tp trace.TracerProvider) {
	tr := tp.Tracer("roundtrip", trace.WithInstrumentationVersion("1.2.3"))
	ctx := context.Background()
	all := []attribute.KeyValue{
		attribute.String("s", "text"), attribute.Bool("b", true), attribute.Int64("i", -7),
		attribute.Float64("f", 2.5), attribute.StringSlice("ss", []string{"a", "b"}),
		attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, 2, 3}),
		attribute.Float64Slice("fs", []float64{0.5, -1}),
	}

	rootCtx, root := tr.Start(ctx, "GET /users/{id}", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(all...))
	root.SetName("GET /users/42")

	_, linked := tr.Start(ctx, "linked-root")
	linked.End()

	childCtx, child := tr.Start(rootCtx, "db", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: linked.SpanContext(), Attributes: []attribute.KeyValue{attribute.String("why", "retry")}}))
	child.SetAttributes(attribute.String("db.statement", "SELECT 1"), attribute.Int("i", 8))
	child.AddEvent("rows", trace.WithAttributes(attribute.Int("count", 3)))
	_, grandchild := tr.Start(childCtx, "parse")
	grandchild.SetStatus(codes.Error, "bad row")
	grandchild.RecordError(errors.New("boom"))
	grandchild.End()
	child.SetStatus(codes.Ok, "")
	child.End()

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			cctx, c := tr.Start(rootCtx, fmt.Sprintf("worker-%d", g), trace.WithSpanKind(trace.SpanKindInternal))
			for i := range 5 {
				_, s := tr.Start(cctx, "task", trace.WithSpanKind(trace.SpanKindProducer),
					trace.WithAttributes(attribute.Int("task", i)))
				s.SetName(fmt.Sprintf("task-%d-%d", g, i))
				s.End()
			}
			c.End()
		})
	}
	wg.Wait()
	root.End()

	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{9, 9, 9}, SpanID: trace.SpanID{8, 8}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ts, _ := trace.ParseTraceState("vendor=value")
	remote = remote.WithTraceState(ts)
	_, consumer := tr.Start(trace.ContextWithRemoteSpanContext(ctx, remote), "consume", trace.WithSpanKind(trace.SpanKindConsumer))
	consumer.End()
}

// compareSpan checks that an assembled span equals the SDK's record of it, and has
// children children (unless children < 0).
func compareSpan(t *testing.T, g bridge.Span, w sdktrace.ReadOnlySpan, children int) {
	t.Helper()
	name := w.Name()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("span %q: "+format, append([]any{name}, args...)...)
	}
	if g.Name != w.Name() {
		errorf("name %q", g.Name)
	}
	if g.TraceID != w.SpanContext().TraceID() || g.Parent != w.Parent().SpanID() || g.RemoteParent != w.Parent().IsRemote() {
		errorf("ids: trace %s parent %s remote %v, want %s %s %v", g.TraceID, g.Parent, g.RemoteParent,
			w.SpanContext().TraceID(), w.Parent().SpanID(), w.Parent().IsRemote())
	}
	if g.TraceState.String() != w.SpanContext().TraceState().String() || g.TraceFlags != w.SpanContext().TraceFlags() {
		errorf("trace state %q flags %v, want %q %v", g.TraceState, g.TraceFlags, w.SpanContext().TraceState(), w.SpanContext().TraceFlags())
	}
	if g.SpanKind != w.SpanKind() {
		errorf("kind %v, want %v", g.SpanKind, w.SpanKind())
	}
	if !g.Start.Equal(w.StartTime()) || !g.End.Equal(w.EndTime()) {
		errorf("times %v–%v, want %v–%v", g.Start, g.End, w.StartTime(), w.EndTime())
	}
	if !sameAttrs(g.Attributes, w.Attributes()) {
		errorf("attributes %v, want %v", g.Attributes, w.Attributes())
	}
	if g.Status.Code != w.Status().Code || g.Status.Description != w.Status().Description {
		errorf("status %+v, want %+v", g.Status, w.Status())
	}
	if len(g.Events) != len(w.Events()) {
		errorf("%d events, want %d", len(g.Events), len(w.Events()))
	} else {
		for i, we := range w.Events() {
			ge := g.Events[i]
			if ge.Name != we.Name || !ge.Time.Equal(we.Time) || !sameAttrs(ge.Attributes, we.Attributes) {
				errorf("event %d: %+v, want %+v", i, ge, we)
			}
		}
	}
	if len(g.Links) != len(w.Links()) {
		errorf("%d links, want %d", len(g.Links), len(w.Links()))
	} else {
		for i, wl := range w.Links() {
			gl := g.Links[i]
			if gl.SpanContext.TraceID() != wl.SpanContext.TraceID() || gl.SpanContext.SpanID() != wl.SpanContext.SpanID() ||
				!sameAttrs(gl.Attributes, wl.Attributes) {
				errorf("link %d: %+v, want %+v", i, gl, wl)
			}
		}
	}
	if children >= 0 && g.ChildSpanCount != children {
		errorf("child count %d, want %d", g.ChildSpanCount, children)
	}
	if g.Unfinished {
		errorf("marked unfinished")
	}
	if g.Scope == nil || g.Scope.Name != w.InstrumentationScope().Name || g.Scope.Version != w.InstrumentationScope().Version {
		errorf("scope %+v, want %+v", g.Scope, w.InstrumentationScope())
	}
	if g.Resource == nil || !sameAttrs(g.Resource.Attributes(), w.Resource().Attributes()) {
		errorf("resource %v, want %v", g.Resource, w.Resource())
	}
}

// sameAttrs compares attribute sets regardless of order.
func sameAttrs(a, b []attribute.KeyValue) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(kv attribute.KeyValue) string {
		return string(kv.Key) + "=" + kv.Value.Emit() + "/" + kv.Value.Type().String()
	}
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		as[i], bs[i] = key(a[i]), key(b[i])
	}
	sort.Strings(as)
	sort.Strings(bs)
	return slices.Equal(as, bs)
}

// collectorPipe is the setup of the failure-path tests: a sink, a Collector forwarding
// to it (not started yet), and an exporter that retries fast and long.
func collectorPipe(t *testing.T) (*otlpsink.Sink, *testenv.Collector, *otlpexport.Exporter) {
	sink := exSink(t)
	col := testenv.NewCollector(t, testenv.CollectorConfig{ForwardTo: sink.Addr()})
	exp := exNew(t, col.Endpoint(), otlpexport.WithRetry(otlpexport.RetryConfig{
		Enabled: true, InitialInterval: 50 * time.Millisecond, MaxInterval: 300 * time.Millisecond,
		MaxElapsedTime: 2 * time.Minute,
	}), otlpexport.WithTimeout(5*time.Second))
	return sink, col, exp
}

// sendStreams consumes batches of events of a few streams, continuing their sequences.
type streamSender struct {
	seq  map[bridge.StreamID]uint64
	sent int
}

func (s *streamSender) send(t *testing.T, exp *otlpexport.Exporter, spans int) {
	t.Helper()
	if s.seq == nil {
		s.seq = map[bridge.StreamID]uint64{}
	}
	var batch []bridge.Event
	for k := range 3 {
		id := streamID(byte(40 * (k + 1)))
		evs := spanEvents(id, trace.TraceID{byte(k + 1), 1}, spans, s.seq[id])
		s.seq[id] += uint64(len(evs))
		batch = append(batch, evs...)
	}
	if err := exp.Consume(context.Background(), batch); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	s.sent += len(batch)
}

// waitEvents waits until the sink decoded n events through the Collector, then checks
// their order.
func waitEvents(t *testing.T, sink *otlpsink.Sink, n int) {
	t.Helper()
	if !sink.WaitFor(60*time.Second, func(s *otlpsink.Sink) bool { return len(s.LogRecords()) >= n }) {
		t.Fatalf("the sink got %d records, want %d", len(sink.LogRecords()), n)
	}
	events := decodeAll(t, sink)
	if len(events) != n {
		t.Fatalf("decoded %d events, want %d", len(events), n)
	}
	checkStreamOrder(t, events)
}

// TestCollectorNotStartedYet: the app (SDK + processor + exporter) starts before the
// Collector; the exporter retries, and once the Collector is up every event arrives
// and every span assembles.
func TestCollectorNotStartedYet(t *testing.T) {
	sink, col, exp := collectorPipe(t)
	rec := tracetest.NewSpanRecorder()
	p := processor.New(exp, processor.WithFlushInterval(20*time.Millisecond))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p), sdktrace.WithSpanProcessor(rec))
	tr := p.Wrap(sdk).Tracer("early")
	for i := range 20 {
		ctx, root := tr.Start(context.Background(), "request", trace.WithAttributes(attribute.Int("i", i)))
		for range 3 {
			_, c := tr.Start(ctx, "step")
			c.SetName(fmt.Sprintf("step-of-%d", i))
			c.End()
		}
		root.End()
	}
	if !waitCond(10*time.Second, func() bool { return exp.Stats().Retries >= 2 }) {
		t.Fatalf("the exporter did not retry while the Collector was down: %+v", exp.Stats())
	}
	col.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sdk.Shutdown(ctx); err != nil {
		t.Fatalf("SDK Shutdown: %v", err)
	}
	st := exp.Stats()
	if st.Logs.Sent == 0 || st.Logs.Failed+st.Logs.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	waitEvents(t, sink, int(st.Logs.Sent))
	got := map[trace.SpanID]bridge.Span{}
	asm := bridge.NewAssembler(bridge.SpanConsumerFunc(func(_ context.Context, spans []bridge.Span) error {
		for _, s := range spans {
			got[s.SpanID] = s
		}
		return nil
	}))
	_ = asm.Consume(context.Background(), decodeAll(t, sink))
	_ = asm.Shutdown(context.Background())
	if len(got) != len(rec.Ended()) || len(got) != 80 {
		t.Fatalf("assembled %d spans, the SDK recorded %d", len(got), len(rec.Ended()))
	}
	for _, w := range rec.Ended() {
		if g := got[w.SpanContext().SpanID()]; g.Name != w.Name() || g.Unfinished {
			t.Errorf("span %q arrived as %+v", w.Name(), g)
		}
	}
}

// TestCollectorRestart: the Collector stops mid-run and comes back on the same port;
// nothing within the queue is lost.
func TestCollectorRestart(t *testing.T) {
	sink, col, exp := collectorPipe(t)
	col.Start()
	var s streamSender
	s.send(t, exp, 10)
	flush(t, exp)
	waitEvents(t, sink, s.sent)

	col.Stop()
	before := exp.Stats().Retries
	for range 4 {
		s.send(t, exp, 10)
	}
	if !waitCond(5*time.Second, func() bool { return exp.Stats().Retries > before }) {
		t.Fatalf("the exporter did not retry while the Collector was down: %+v", exp.Stats())
	}
	col.Start()
	s.send(t, exp, 10)
	flush(t, exp)
	waitEvents(t, sink, s.sent)
	if st := exp.Stats(); st.Logs.Sent != uint64(s.sent) || st.Logs.Failed+st.Logs.Dropped != 0 {
		t.Errorf("stats %+v, want %d sent", st, s.sent)
	}
}

// TestCollectorRejectsOversized: a Collector that accepts at most 1 MiB refuses a
// 2 MiB request with a clear, counted error (not retried); with a smaller
// WithMaxRequestBytes the same data is split and goes through.
func TestCollectorRejectsOversized(t *testing.T) {
	sink := exSink(t)
	col := testenv.StartCollector(t, testenv.CollectorConfig{ForwardTo: sink.Addr(), MaxRecvMsgSizeMiB: 1})
	logs := &logBuffer{t: t}
	big := exNew(t, col.Endpoint(), logs.logger(), otlpexport.WithMaxRequestBytes(8<<20))
	_ = big.ExportLogs(context.Background(), rawLogs("big", 2000, 1000))
	flush(t, big)
	st := big.Stats()
	if st.Logs.Failed != 2000 || st.Logs.Sent != 0 || st.Retries != 0 {
		t.Errorf("stats %+v, want 2000 failed and no retry", st)
	}
	out := logs.String()
	for _, want := range []string{"export failed", "ResourceExhausted", "larger than max", "not retryable", "lower WithMaxRequestBytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}

	small := exNew(t, col.Endpoint(), otlpexport.WithMaxRequestBytes(512<<10))
	_ = small.ExportLogs(context.Background(), rawLogs("big", 2000, 1000))
	flush(t, small)
	if st := small.Stats(); st.Logs.Sent != 2000 || st.Logs.Requests < 4 {
		t.Errorf("split export: stats %+v, want 2000 sent in at least 4 requests", st)
	}
	waitRecords(t, sink, 2000)
}

// waitCond polls cond until it holds or timeout passes.
func waitCond(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestCollectorRequiresToken: a Collector that requires a bearer token refuses an
// exporter without it (Unauthenticated: counted, not retried, the log says what to
// check), and accepts one that sends it with WithHeaders.
func TestCollectorRequiresToken(t *testing.T) {
	sink := exSink(t)
	col := testenv.StartCollector(t, testenv.CollectorConfig{ForwardTo: sink.Addr(), BearerToken: "s3cret"})
	logs := &logBuffer{t: t}
	anonymous := exNew(t, col.Endpoint(), logs.logger())
	_ = anonymous.ExportLogs(context.Background(), rawLogs("anon", 3, 0))
	flush(t, anonymous)
	if st := anonymous.Stats(); st.Logs.Failed != 3 || st.Logs.Sent != 0 || st.Retries != 0 {
		t.Errorf("without a token: stats %+v, want 3 failed, no retry", st)
	}
	for _, want := range []string{"Unauthenticated", "WithHeaders"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}

	authorized := exNew(t, col.Endpoint(), otlpexport.WithHeaders(map[string]string{"authorization": "Bearer s3cret"}))
	_ = authorized.ExportLogs(context.Background(), rawLogs("auth", 3, 0))
	flush(t, authorized)
	if st := authorized.Stats(); st.Logs.Sent != 3 {
		t.Errorf("with the token: stats %+v", st)
	}
	waitRecords(t, sink, 3)
}
