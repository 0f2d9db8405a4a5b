package stwotlp

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

// checkEventsWire fails t unless AppendEvents's bytes decode to treeEncodeEvents(events),
// and, split with a limit, to requests of at most that size holding the same records.
func checkEventsWire(t testing.TB, events []bridge.Event) {
	t.Helper()
	want := treeEncodeEvents(events)
	b := checkAppendWire(t, "AppendEvents", func(buf []byte) []byte { return AppendEvents(buf, events) },
		want, &collogspb.ExportLogsServiceRequest{})
	if b == nil {
		return
	}
	// Same fields, none left out that proto.Marshal leaves out: the same size.
	if n := proto.Size(want); len(b) != n {
		t.Errorf("AppendEvents wrote %d bytes, proto.Marshal %d", len(b), n)
	}
	checkEventsSplit(t, events, want, proto.Size(want)/3+1)
}

// checkEventsSplit writes events as requests of at most limit bytes and checks them
// against want (see checkSplit).
func checkEventsSplit(t testing.TB, events []bridge.Event, want *collogspb.ExportLogsServiceRequest, limit int) {
	t.Helper()
	buf, parts := SplitEvents(nil, events, limit, nil)
	items := 0
	for i := range events {
		if events[i].Body != nil {
			items++
		}
	}
	checkSplit(t, buf, parts, items, limit, want, func(req *collogspb.ExportLogsServiceRequest) (out []proto.Message) {
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					out = append(out, &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
						Resource: rl.Resource, SchemaUrl: rl.SchemaUrl,
						ScopeLogs: []*logspb.ScopeLogs{{Scope: sl.Scope, SchemaUrl: sl.SchemaUrl, LogRecords: []*logspb.LogRecord{r}}},
					}}})
				}
			}
		}
		return out
	})
}

// checkSplit checks the requests parts of buf, a split encoding of items items: each
// decodes, is within limit unless it holds one item, counts its items right, and
// together they hold want's items in order. flat lists a request's items, each as a
// request of its own with its resource and scope, so that an item under the wrong
// group does not pass.
func checkSplit[R proto.Message](t testing.TB, buf []byte, parts []Part, items, limit int, want R, flat func(R) []proto.Message) {
	t.Helper()
	if items == 0 {
		if len(parts) != 0 || len(buf) != 0 {
			t.Fatalf("nothing to encode, yet %d requests (%d bytes)", len(parts), len(buf))
		}
		return
	}
	var got []proto.Message
	total := 0
	for i, p := range parts {
		part := want.ProtoReflect().New().Interface().(R)
		if err := proto.Unmarshal(buf[p.Start:p.End], part); err != nil {
			t.Fatalf("request %d does not decode: %v", i, err)
		}
		in := flat(part)
		if n := len(in); n != p.Items {
			t.Errorf("request %d: %d items, counted %d", i, n, p.Items)
		}
		if size := p.End - p.Start; size > limit && len(in) != 1 {
			t.Errorf("request %d: %d bytes, above the limit %d with %d items", i, size, limit, len(in))
		}
		total += len(in)
		got = append(got, in...)
	}
	wantFlat := flat(want)
	if total != items || len(got) != len(wantFlat) {
		t.Fatalf("split into %d items (counted %d), want %d", len(got), total, len(wantFlat))
	}
	for i := range got {
		if !proto.Equal(got[i], wantFlat[i]) {
			t.Fatalf("item %d after splitting:\n got %v\nwant %v", i, got[i], wantFlat[i])
		}
	}
	if len(parts) < 2 && len(buf) > limit && items > 1 {
		t.Errorf("%d bytes in %d request(s), limit %d", len(buf), len(parts), limit)
	}
}

func TestAppendEventsMatchesOracle(t *testing.T) {
	other := resource.NewWithAttributes("https://schema/1", attribute.String("service.name", "other"))
	scope2 := &instrumentation.Scope{Name: "two", Version: "2", SchemaURL: "https://s", Attributes: attribute.NewSet(attribute.Int("a", 1))}
	mk := func(seq uint64, r *resource.Resource, s *instrumentation.Scope) bridge.Event {
		return bridge.Event{TraceID: testTraceID, SpanID: testSpanID, StreamID: testStreamID, Sequence: seq,
			Time: at(0), Resource: r, Scope: s, Body: &bridge.UpdateName{Name: "n"}}
	}
	compact := sampleEvents()
	for i := range compact {
		compact[i].StreamID = bridge.StreamID(compact[i].TraceID)
	}
	// A copy of the resource at another address groups with the original.
	resCopy := resource.NewWithAttributes(testResource.SchemaURL(), testResource.Attributes()...)
	long := mk(1, testResource, testScope)
	long.Body = &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.String("big", strings.Repeat("x", 20000))}}
	many := make([]bridge.Event, 300)
	for i := range many {
		many[i] = mk(uint64(i), []*resource.Resource{testResource, other, nil}[i%3], []*instrumentation.Scope{testScope, scope2, nil}[i%2])
	}
	cases := map[string][]bridge.Event{
		"none":        nil,
		"sample":      sampleEvents(),
		"compact":     compact,
		"grouping":    {mk(1, testResource, testScope), mk(2, other, testScope), mk(3, testResource, scope2), mk(4, resCopy, testScope), mk(5, nil, nil)},
		"long":        {long, mk(2, testResource, testScope)},
		"many groups": many,
		"zero":        {{Body: &bridge.Heartbeat{}}},
		"no body":     {{}, mk(1, nil, nil), {}},
		"empty trigger": {{StreamID: testStreamID, Body: &bridge.Onset{}},
			{StreamID: testStreamID, Body: &bridge.Onset{Info: bridge.TriggerInfo{Headers: []bridge.Header{{}}}}}},
		"bad utf8":  {mk(1, testResource, testScope), {Body: &bridge.UpdateName{Name: "\xff"}}},
		"bad attr":  {{Body: &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.StringSlice("s", []string{"ok", "\xfe"})}}}},
		"bad scope": {mk(1, nil, &instrumentation.Scope{Name: "\xff"})},
		"bad onset": {{Body: &bridge.Onset{Info: bridge.TriggerInfo{Headers: []bridge.Header{{Name: "\xff"}}}}}},
	}
	for name, events := range cases {
		t.Run(name, func(t *testing.T) { checkEventsWire(t, events) })
	}
}

// randString returns a short string, now and then empty, long, or not valid UTF-8
// (when bad is set).
func randString(r *rand.Rand, bad bool) string {
	switch r.IntN(12) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("é", 100+r.IntN(200))
	case 2:
		if bad {
			return "a\xffb"
		}
	}
	const letters = "abcdefghijklmnopqrstuvwxyz._/ 0123456789"
	b := make([]byte, 1+r.IntN(24))
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

// randValue returns a value of any attribute type, nested up to depth.
func randValue(r *rand.Rand, depth int, bad bool) attribute.Value {
	n := r.IntN(4)
	switch t := r.IntN(13); {
	case t == 0:
		return attribute.BoolValue(r.IntN(2) == 0)
	case t == 1:
		return attribute.Int64Value(r.Int64() >> r.IntN(64) * int64(1-2*r.IntN(2)))
	case t == 2:
		return attribute.Float64Value(r.NormFloat64() * 1e6)
	case t == 3:
		return attribute.StringValue(randString(r, bad))
	case t == 4:
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return attribute.ByteSliceValue(b)
	case t == 5:
		s := make([]bool, n)
		for i := range s {
			s[i] = r.IntN(2) == 0
		}
		return attribute.BoolSliceValue(s)
	case t == 6:
		s := make([]int64, n)
		for i := range s {
			s[i] = r.Int64() - r.Int64()
		}
		return attribute.Int64SliceValue(s)
	case t == 7:
		s := make([]float64, n)
		for i := range s {
			s[i] = r.Float64()
		}
		return attribute.Float64SliceValue(s)
	case t == 8:
		s := make([]string, n)
		for i := range s {
			s[i] = randString(r, bad)
		}
		return attribute.StringSliceValue(s)
	case t == 9 && depth > 0:
		s := make([]attribute.Value, n)
		for i := range s {
			s[i] = randValue(r, depth-1, bad)
		}
		return attribute.SliceValue(s...)
	case t == 10 && depth > 0:
		return attribute.MapValue(randAttrs(r, depth-1, bad)...)
	case t == 11:
		return attribute.Value{}
	}
	return attribute.StringValue(randString(r, bad))
}

func randAttrs(r *rand.Rand, depth int, bad bool) []attribute.KeyValue {
	if r.IntN(4) == 0 {
		return nil
	}
	a := make([]attribute.KeyValue, 1+r.IntN(6))
	for i := range a {
		a[i] = attribute.KeyValue{Key: attribute.Key(randString(r, bad)), Value: randValue(r, depth, bad)}
	}
	return a
}

func randID(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	if r.IntN(8) != 0 { // now and then all zero
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
	}
	return b
}

func randTime(r *rand.Rand) time.Time {
	if r.IntN(8) == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.Int64N(4e18)).UTC()
}

func randLinks(r *rand.Rand, bad bool) []bridge.Link {
	if r.IntN(3) != 0 {
		return nil
	}
	links := make([]bridge.Link, 1+r.IntN(3))
	for i := range links {
		var cfg trace.SpanContextConfig
		copy(cfg.TraceID[:], randID(r, 16))
		copy(cfg.SpanID[:], randID(r, 8))
		cfg.TraceFlags, cfg.Remote = trace.TraceFlags(r.IntN(256)), r.IntN(2) == 0
		if r.IntN(2) == 0 {
			cfg.TraceState, _ = trace.ParseTraceState("k=v,vendor=" + []string{"a", "b1"}[r.IntN(2)])
		}
		links[i] = bridge.Link{SpanContext: trace.NewSpanContext(cfg), Attributes: randAttrs(r, 1, bad), DroppedAttributeCount: r.IntN(3)}
	}
	return links
}

// randSpanOpen returns a SpanOpen with fields set at random.
func randSpanOpen(r *rand.Rand, bad bool) *bridge.SpanOpen {
	str := func() string { return randString(r, bad) }
	ts, _ := trace.ParseTraceState([]string{"", "a=1", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}[r.IntN(3)])
	var parent trace.SpanID
	copy(parent[:], randID(r, 8))
	return &bridge.SpanOpen{Name: str(), SpanKind: trace.SpanKind(r.IntN(6)), Parent: parent, TraceState: ts,
		TraceFlags: trace.TraceFlags(r.IntN(256)), RemoteParent: r.IntN(2) == 0, Attributes: randAttrs(r, 2, bad), Links: randLinks(r, bad)}
}

// randSpanEnd returns a SpanEndData with fields set at random.
func randSpanEnd(r *rand.Rand, bad bool) *bridge.SpanEndData {
	str := func() string { return randString(r, bad) }
	var events []bridge.SpanEvent
	for range r.IntN(3) {
		events = append(events, bridge.SpanEvent{Name: str(), Time: randTime(r), Attributes: randAttrs(r, 1, bad), DroppedAttributeCount: r.IntN(2)})
	}
	return &bridge.SpanEndData{Status: bridge.Status{Code: codes.Code(r.IntN(3)), Description: str()},
		Attributes: randAttrs(r, 2, bad), Events: events, Links: randLinks(r, bad),
		DroppedAttributes: r.IntN(3), DroppedEvents: r.IntN(3), DroppedLinks: r.IntN(3), ChildSpanCount: r.IntN(3),
		Unfinished: r.IntN(2) == 0, StreamContinues: r.IntN(2) == 0, Outcome: []string{"", "ok", "canceled"}[r.IntN(3)]}
}

// randBody returns a body of any kind, with fields set at random.
func randBody(r *rand.Rand, bad bool) bridge.Body {
	str := func() string { return randString(r, bad) }
	switch r.IntN(15) {
	case 0:
		return randSpanOpen(r, bad)
	case 1:
		return &bridge.UpdateName{Name: str()}
	case 2:
		return &bridge.Attributes{Attributes: randAttrs(r, 2, bad)}
	case 3:
		return &bridge.StatusUpdate{Status: bridge.Status{Code: codes.Code(r.IntN(3)), Description: str()}}
	case 4:
		return randSpanEnd(r, bad)
	case 5:
		return &bridge.Heartbeat{}
	case 6:
		var parent trace.SpanID
		copy(parent[:], randID(r, 8))
		var tags []string
		for range r.IntN(3) {
			tags = append(tags, str())
		}
		var headers []bridge.Header
		for range r.IntN(3) {
			headers = append(headers, bridge.Header{Name: str(), Value: str()})
		}
		info := bridge.TriggerInfo{}
		if r.IntN(3) != 0 {
			info = bridge.TriggerInfo{Type: str(), Method: str(), URL: str(), Headers: headers, CfJSON: str(),
				MethodName: str(), Cron: str(), ScheduledTime: randTime(r), QueueName: str(), BatchSize: r.IntN(3),
				MailFrom: str(), RcptTo: str(), RawSize: r.IntN(3), Raw: str()}
		}
		return &bridge.Onset{Parent: parent, ExecutionModel: str(), ScriptName: str(), ScriptVersion: str(),
			Entrypoint: str(), ScriptTags: tags, Info: info, DispatchNamespace: str(), Attributes: randAttrs(r, 2, bad), Unsampled: r.IntN(2) == 0}
	case 7:
		return &bridge.Outcome{Outcome: []string{"ok", "exception", ""}[r.IntN(3)],
			CPUTime: time.Duration(r.IntN(1e6)), WallTime: time.Duration(r.IntN(1e9))}
	case 8:
		return &bridge.Log{Level: []string{"debug", "info", "log", "warn", "error", "", "trace"}[r.IntN(7)], Message: str(), Truncated: r.IntN(2) == 0}
	case 9:
		return &bridge.Exception{Name: str(), Message: str(), Stack: str()}
	case 10:
		return &bridge.Return{StatusCode: r.IntN(600)}
	case 11:
		return &bridge.StreamDiagnostic{DroppedEvents: r.Uint64() >> r.IntN(64)}
	case 12:
		return &bridge.DiagnosticChannel{Channel: str(), Message: str()}
	case 13:
		return &bridge.CompleteSpan{Start: randTime(r), Open: randSpanOpen(r, bad), End: randSpanEnd(r, bad), Alone: r.IntN(3) == 0}
	}
	return nil // an event without a body
}

// randEvents returns a batch of events of every kind over a few resources and scopes,
// some compact (stream id = trace id); bad allows strings that are not valid UTF-8.
func randEvents(r *rand.Rand, bad bool) []bridge.Event {
	resources := []*resource.Resource{nil, testResource,
		resource.NewWithAttributes("", attribute.String("service.name", randString(r, bad))),
		resource.NewWithAttributes("https://s/1", randAttrs(r, 1, bad)...)}
	scopes := []*instrumentation.Scope{nil, testScope,
		{Name: randString(r, bad), Version: randString(r, bad), SchemaURL: randString(r, bad), Attributes: attribute.NewSet(randAttrs(r, 1, bad)...)}}
	events := make([]bridge.Event, r.IntN(40))
	for i := range events {
		e := &events[i]
		copy(e.TraceID[:], randID(r, 16))
		copy(e.SpanID[:], randID(r, 8))
		if r.IntN(2) == 0 {
			e.StreamID = bridge.StreamID(e.TraceID)
		} else {
			copy(e.StreamID[:], randID(r, 16))
		}
		e.Sequence = r.Uint64() >> r.IntN(64)
		e.Time = randTime(r)
		e.Resource, e.Scope = resources[r.IntN(len(resources))], scopes[r.IntN(len(scopes))]
		e.Body = randBody(r, bad)
	}
	return events
}

// TestAppendEventsRandom checks AppendEvents against EncodeEvents on many
// generated batches: every event kind, every attribute value type, grouping, splitting.
func TestAppendEventsRandom(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	for seed := range n {
		r := rand.New(rand.NewPCG(uint64(seed), 42))
		events := randEvents(r, seed%5 == 4)
		t.Run("", func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("seed %d", seed)
				}
			}()
			checkEventsWire(t, events)
		})
	}
}

// FuzzAppendEvents generates a batch of events from a fuzzed seed and checks
// AppendEvents against EncodeEvents.
func FuzzAppendEvents(f *testing.F) {
	for _, s := range []uint64{0, 1, 7, 1 << 40} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, seed uint64, bad bool) {
		r := rand.New(rand.NewPCG(seed, seed>>7))
		checkEventsWire(t, randEvents(r, bad))
	})
}

func BenchmarkEncodeEventsWire(b *testing.B) {
	attrs := make([]attribute.KeyValue, 10)
	for i := range attrs {
		attrs[i] = attribute.String("attr."+string(rune('a'+i)), strings.Repeat(string(rune('a'+i)), 20))
	}
	events := make([]bridge.Event, 1000)
	for i := range events {
		e := &events[i]
		e.TraceID, e.SpanID = testTraceID, trace.SpanID{byte(i), byte(i >> 8), 1}
		e.TraceID[0] = byte(i)
		e.StreamID, e.Sequence, e.Time = bridge.StreamID(e.TraceID), uint64(i%2), at(time.Duration(i))
		e.Resource, e.Scope = testResource, testScope
		if i%2 == 0 {
			e.Body = &bridge.SpanOpen{Name: "operation", TraceFlags: trace.FlagsSampled, Attributes: attrs}
		} else {
			e.Body = &bridge.SpanEndData{}
		}
	}
	b.Run("tree+Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(treeEncodeEvents(events)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("AppendEvents", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendEvents(buf[:0], events)
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
}

// TestInvalidUTF8Replaced checks that a string that is not valid UTF-8 is sent with
// U+FFFD in place of each bad sequence, its event and the events beside it kept:
// proto.Marshal would refuse the whole request.
func TestInvalidUTF8Replaced(t *testing.T) {
	bad := &bridge.SpanOpen{Name: "a\xffb", Attributes: []attribute.KeyValue{
		attribute.String("k\xfe", "v\xc3"), attribute.StringSlice("s", []string{"ok", "\x80x"})}}
	events := []bridge.Event{
		{TraceID: testTraceID, SpanID: testSpanID, StreamID: testStreamID, Sequence: 0, Time: at(0),
			Resource: resource.NewSchemaless(attribute.String("service.name", "svc\xff")),
			Scope:    &instrumentation.Scope{Name: "\xffscope"}, Body: bad},
		{TraceID: testTraceID, SpanID: testSpanID, StreamID: testStreamID, Sequence: 1, Time: at(1),
			Body: &bridge.Log{Level: "info", Message: "fine"}},
	}
	d, err := DecodeEvents(AppendEvents(nil, events))
	if err != nil || len(d.Rejected) != 0 || len(d.Events) != 2 {
		t.Fatalf("decoded %d events, rejected %v, err %v", len(d.Events), d.Rejected, err)
	}
	open := d.Events[0].Body.(*bridge.SpanOpen)
	want := []attribute.KeyValue{attribute.String("k\uFFFD", "v\uFFFD"), attribute.StringSlice("s", []string{"ok", "\uFFFDx"})}
	if open.Name != "a\uFFFDb" || !slices.Equal(open.Attributes, want) {
		t.Errorf("span_open decoded as %q %v, want %q %v", open.Name, open.Attributes, "a\uFFFDb", want)
	}
	if v, _ := d.Events[0].Resource.Set().Value("service.name"); v.AsString() != "svc\uFFFD" || d.Events[0].Scope.Name != "\uFFFDscope" {
		t.Errorf("resource %v, scope %q", d.Events[0].Resource, d.Events[0].Scope.Name)
	}
	if l := d.Events[1].Body.(*bridge.Log); l.Message != "fine" {
		t.Errorf("the event beside it decoded as %+v", l)
	}
	spans := []bridge.Span{{TraceID: testTraceID, SpanID: testSpanID, Name: "\xff", Status: bridge.Status{Description: "\xfe"}}}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(AppendSpans(nil, spans), &req); err != nil {
		t.Fatal(err)
	}
	if sp := req.ResourceSpans[0].ScopeSpans[0].Spans[0]; sp.Name != "\uFFFD" || sp.Status.Message != "\uFFFD" {
		t.Errorf("span sent as %q, status %q", sp.Name, sp.Status.Message)
	}
}
