package stwotlp

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// referenceDecode is what DecodeEvents must match: proto.Unmarshal + DecodeEventsRequest.
func referenceDecode(data []byte) (DecodedLogs, error) {
	req := &collogspb.ExportLogsServiceRequest{}
	if err := proto.Unmarshal(data, req); err != nil {
		return DecodedLogs{}, err
	}
	return DecodeEventsRequest(req), nil
}

// sameDecoded fails t unless got and want are equal: events deeply, rejections by
// position and message, pass-through records with proto.Equal.
func sameDecoded(t testing.TB, got, want DecodedLogs) {
	t.Helper()
	if len(got.Events) != len(want.Events) || (got.Events == nil) != (want.Events == nil) {
		t.Fatalf("%d events (nil %v), want %d (nil %v)", len(got.Events), got.Events == nil, len(want.Events), want.Events == nil)
	}
	for i := range got.Events {
		if !reflect.DeepEqual(got.Events[i], want.Events[i]) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, dump(got.Events[i]), dump(want.Events[i]))
		}
	}
	if len(got.Rejected) != len(want.Rejected) {
		t.Fatalf("rejected %v, want %v", got.Rejected, want.Rejected)
	}
	for i := range got.Rejected {
		g, w := got.Rejected[i].(*RecordError), want.Rejected[i].(*RecordError)
		if g.Resource != w.Resource || g.Scope != w.Scope || g.Record != w.Record || g.Error() != w.Error() {
			t.Fatalf("rejection %d: %v, want %v", i, g, w)
		}
	}
	if (got.Other == nil) != (want.Other == nil) || !proto.Equal(got.Other, want.Other) {
		t.Fatalf("other %v, want %v", got.Other, want.Other)
	}
}

// checkWire decodes data both ways and fails t when they differ; it reports whether
// the request decoded.
func checkWire(t testing.TB, data []byte) bool {
	t.Helper()
	want, werr := referenceDecode(data)
	got, gerr := DecodeEvents(data)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("error %v, want %v", gerr, werr)
	}
	if werr != nil {
		return false
	}
	sameDecoded(t, got, want)
	return true
}

// fastRecord decodes one record on the fast path only, reporting whether it took it.
func fastPath(data []byte) bool {
	d := newFastDecoder()
	_, ok := d.decode(nil, data)
	return ok
}

func mustWire(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wireSamples are requests covering the fast path, every fallback and bad records.
func wireSamples(t testing.TB) map[string][]byte {
	events, _ := typicalSpanEvents(trace.SpanKindServer, testParentID, true, testStreamID)
	mixed := treeEncodeEvents(sampleEvents()[:3])
	sl := mixed.ResourceLogs[0].ScopeLogs[0]
	sl.LogRecords = append(sl.LogRecords, &logspb.LogRecord{Body: stringValue("plain")})
	bad := treeEncodeEvents(events)
	bsl := bad.ResourceLogs[0].ScopeLogs[0]
	bsl.LogRecords = append(bsl.LogRecords,
		withAttr(goodRecord(9), AttrSequence, intValue(-3)),
		withAttr(goodRecord(10), AttrSequence, stringValue("x")),
		withoutAttr(goodRecord(11), AttrSequence),
		withAttr(encodeOne(&bridge.SpanOpen{Name: "x"}), AttrSpanKind, intValue(9)),
		withAttr(encodeOne(&bridge.SpanOpen{Name: "x"}), AttrLinks, arrayValue([]*commonpb.AnyValue{kvlistValue(nil)})),
		&logspb.LogRecord{EventName: "stw.unknown", TraceId: make([]byte, 3)},
		&logspb.LogRecord{EventName: EventSpanOpen, Body: stringValue("not a kvlist")},
		&logspb.LogRecord{EventName: EventLog, Body: intValue(3)},
	)
	scalars := treeEncodeEvents([]bridge.Event{{
		TraceID: testTraceID, SpanID: testSpanID, StreamID: testStreamID, Sequence: 1, Time: at(0),
		Body: &bridge.SpanOpen{Name: "s", Attributes: []attribute.KeyValue{
			attribute.Bool("b", true), attribute.Int("i", -7), attribute.Float64("f", 1.5),
			attribute.String("s", "v"), attribute.String("", ""),
		}},
	}})
	srec := scalars.ResourceLogs[0].ScopeLogs[0].LogRecords[0]
	srec.Attributes = append(srec.Attributes, &commonpb.KeyValue{Key: "novalue"}, &commonpb.KeyValue{Key: "empty", Value: &commonpb.AnyValue{}})
	srec.Body.GetKvlistValue().Values = append(srec.Body.GetKvlistValue().Values, &commonpb.KeyValue{Key: "novalue"})
	srec.SeverityText, srec.SeverityNumber, srec.ObservedTimeUnixNano, srec.DroppedAttributesCount = "INFO", 9, 77, 3
	emptyBody := proto.Clone(scalars).(*collogspb.ExportLogsServiceRequest)
	emptyBody.ResourceLogs[0].ScopeLogs[0].LogRecords[0].Body = &commonpb.AnyValue{}
	noResource := treeEncodeEvents(events)
	noResource.ResourceLogs[0].Resource, noResource.ResourceLogs[0].ScopeLogs[0].Scope = nil, nil
	return map[string][]byte{
		"sample":      mustWire(t, treeEncodeEvents(sampleEvents())),
		"typical":     mustWire(t, treeEncodeEvents(events)),
		"mixed":       mustWire(t, mixed),
		"bad":         mustWire(t, bad),
		"scalars":     mustWire(t, scalars),
		"empty body":  mustWire(t, emptyBody),
		"no resource": mustWire(t, noResource),
		"empty":       {},
		"one empty":   {0x0a, 0x02, 0x12, 0x00},
	}
}

func TestDecodeEventsWireMatchesReference(t *testing.T) {
	for name, data := range wireSamples(t) {
		t.Run(name, func(t *testing.T) { checkWire(t, data) })
	}
}

func TestDecodeEventsWireTakesFastPath(t *testing.T) {
	s := wireSamples(t)
	for _, name := range []string{"typical", "scalars", "empty body", "no resource", "bad", "sample"} {
		if !fastPath(s[name]) {
			t.Errorf("%s: took the generic path", name)
		}
	}
	// Non-STW records go to Other, which the generic path builds.
	if fastPath(s["mixed"]) {
		t.Error("mixed: a request with non-STW records took the fast path")
	}
}

// TestDecodeEventsWireFallbacks covers wire shapes the fast path hands to the generic
// one: unknown fields, repeated message fields, invalid UTF-8, truncation.
func TestDecodeEventsWireFallbacks(t *testing.T) {
	events, _ := typicalSpanEvents(trace.SpanKindClient, testParentID, false, testStreamID)
	base := mustWire(t, treeEncodeEvents(events))
	rec := mustWire(t, encodeOne(&bridge.SpanOpen{Name: "n"}))
	wrap := func(rec []byte) []byte {
		sl := protowire.AppendTag(nil, 2, protowire.BytesType)
		sl = protowire.AppendBytes(sl, rec)
		rl := protowire.AppendTag(nil, 2, protowire.BytesType)
		rl = protowire.AppendBytes(rl, sl)
		req := protowire.AppendTag(nil, 1, protowire.BytesType)
		return protowire.AppendBytes(req, rl)
	}
	unknown := protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), rec...), 99, protowire.VarintType), 5)
	badUTF8 := protowire.AppendBytes(protowire.AppendTag(append([]byte(nil), rec...), 3, protowire.BytesType), []byte{0xff})
	twoBodies := protowire.AppendBytes(protowire.AppendTag(append([]byte(nil), rec...), 5, protowire.BytesType),
		mustWire(t, kvlistValue([]*commonpb.KeyValue{kv("a", intValue(1))})))
	twoRes := append(append([]byte(nil), base...), wrap(nil)...)
	// A scope or resource with invalid UTF-8 in a group without records.
	badScope := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff})
	emptyBadScope := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), badScope)
	rlBadScope := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), emptyBadScope)
	rlBadRes := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType),
		protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType),
			mustWire(t, kv("k", stringValue("v")))))
	rlBadRes = append(rlBadRes[:len(rlBadRes)-1], 0xff)
	cases := map[string][]byte{
		"unknown record field": wrap(unknown),
		"invalid utf8":         wrap(badUTF8),
		"two bodies":           wrap(twoBodies),
		"truncated":            base[:len(base)-3],
		"two requests":         twoRes,
		"bad scope, no records": append(append([]byte(nil), base...),
			protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rlBadScope)...),
		"bad resource, no records": append(append([]byte(nil), base...),
			protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rlBadRes)...),
		"garbage": {0xff, 0xff, 0xff},
		"group":   {0x0b, 0x0c},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { checkWire(t, data) })
	}
}

// TestDecodeEventsWireKeepsNoDecoderMemory checks that events stay intact after the
// pooled decoder decodes other requests.
func TestDecodeEventsWireKeepsNoDecoderMemory(t *testing.T) {
	s := wireSamples(t)
	first, err := DecodeEvents(s["typical"])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := referenceDecode(s["typical"])
	for range 5 {
		if _, err := DecodeEvents(s["scalars"]); err != nil {
			t.Fatal(err)
		}
	}
	sameDecoded(t, first, want)
}

// FuzzDecodeEventsWire checks that for any bytes DecodeEvents equals
// proto.Unmarshal + DecodeEventsRequest: events, rejections, pass-through and errors.
func FuzzDecodeEventsWire(f *testing.F) {
	for _, data := range wireSamples(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkWire(t, data) })
}

// BenchmarkDecodeEventsWire decodes requests of 64 spans: as stw.span_open and
// stw.span_end records (protocol 1.0), and as stw.span records (1.1) in streams of
// four spans or alone in their streams; generic is proto.Unmarshal and
// DecodeEventsRequest on the first.
func BenchmarkDecodeEventsWire(b *testing.B) {
	events := loadLikeEvents(64)
	data := mustWire(b, treeEncodeEvents(events))
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := referenceDecode(data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
	for _, c := range []struct {
		name   string
		events []bridge.Event
	}{
		{"wire", events},
		{"span", completeSpanEvents(events, 4)},
		{"span-alone", completeSpanEvents(events, 1)},
	} {
		data := mustWire(b, treeEncodeEvents(c.events))
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if d, err := DecodeEvents(data); err != nil || len(d.Events) != len(c.events) {
					b.Fatalf("%d events, error %v", len(d.Events), err)
				}
			}
			b.ReportMetric(float64(b.N*len(c.events))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// completeSpanEvents turns the span_open events of loadLikeEvents into stw.span
// events, perStream to a stream, each but the first a child of the stream's first
// span; with perStream 1 each span is alone in its stream.
func completeSpanEvents(events []bridge.Event, perStream int) []bridge.Event {
	var out []bridge.Event
	for _, e := range events {
		open, ok := e.Body.(*bridge.SpanOpen)
		if !ok {
			continue
		}
		n := len(out)
		o := *open
		e.Body = &bridge.CompleteSpan{Start: e.Time, Open: &o, End: &bridge.SpanEndData{}, Alone: perStream == 1}
		e.Time = e.Time.Add(time.Millisecond)
		if perStream == 1 {
			e.StreamID = bridge.AloneStreamID(e.TraceID, e.SpanID)
		} else {
			first := out[n-n%perStream:]
			if len(first) > 0 {
				e.TraceID, e.StreamID = first[0].TraceID, first[0].StreamID
				o.Parent, o.SpanKind = first[0].SpanID, trace.SpanKindClient
			}
			e.Sequence = uint64(n % perStream)
		}
		out = append(out, e)
	}
	return out
}

// loadLikeEvents are n spans' open and end events shaped like cmd/stwload's.
func loadLikeEvents(n int) []bridge.Event {
	var out []bridge.Event
	for i := range n {
		tid := trace.TraceID{1, byte(i), 15: 1}
		sid := trace.SpanID{2, byte(i), 7: 1}
		st := bridge.StreamID{3, byte(i), 15: 1}
		out = append(out,
			bridge.Event{TraceID: tid, SpanID: sid, StreamID: st, Time: at(0), Body: &bridge.SpanOpen{
				Name: "GET /checkout/{id}", SpanKind: trace.SpanKindServer, TraceFlags: trace.FlagsSampled,
				Attributes: []attribute.KeyValue{
					attribute.String("http.request.method", "GET"), attribute.String("http.route", "/checkout/{id}"),
					attribute.String("url.path", fmt.Sprintf("/checkout/%d", i)), attribute.String("server.address", "shop.example.com"),
					attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"),
					attribute.Int("server.port", 443),
				}}},
			bridge.Event{TraceID: tid, SpanID: sid, StreamID: st, Sequence: 1, Time: at(1),
				Body: &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Int("http.response.status_code", 200)}}})
	}
	return out
}

// TestDecodeEventsWireSharesResources checks that requests from one producer share
// one resource and scope pointer, and that a different schema URL or more producers
// than the cache holds still decode right.
func TestDecodeEventsWireSharesResources(t *testing.T) {
	d := newFastDecoder()
	req := func(res *resource.Resource) []byte {
		events, _ := typicalSpanEvents(trace.SpanKindServer, testParentID, false, testStreamID)
		for i := range events {
			events[i].Resource = res
		}
		return mustWire(t, treeEncodeEvents(events))
	}
	a, ok1 := d.decode(nil, req(testResource))
	b, ok2 := d.decode(nil, req(testResource))
	if !ok1 || !ok2 || a.Events[0].Resource != b.Events[0].Resource || a.Events[0].Scope != b.Events[0].Scope {
		t.Fatal("two requests with one resource and scope got different pointers")
	}
	other := resource.NewWithAttributes("https://other/schema", testResource.Attributes()...)
	c, _ := d.decode(nil, req(other))
	if c.Events[0].Resource == a.Events[0].Resource || c.Events[0].Resource.SchemaURL() != other.SchemaURL() {
		t.Fatal("a resource with another schema URL was taken from the cache")
	}
	for i := range 2*groupCacheMax + 1 {
		checkWire(t, req(resource.NewSchemaless(attribute.Int("n", i))))
	}
}

// TestDecodeEventsWireKeepsNoInputMemory checks that decoded events do not change when
// the caller reuses the request's buffer.
func TestDecodeEventsWireKeepsNoInputMemory(t *testing.T) {
	for name, data := range wireSamples(t) {
		want, werr := referenceDecode(data)
		buf := append([]byte(nil), data...)
		got, err := DecodeEvents(buf)
		for i := range buf {
			buf[i] = 0xff
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("%s: error %v, want %v", name, err, werr)
		}
		if err == nil {
			sameDecoded(t, got, want)
		}
	}
}

// TestDecodeEventsWireAllocations bounds what decoding costs in allocations: a
// stw.span record takes its bodies, attributes and strings from chunks shared with
// other such records; a stw.span_open takes one allocation for its body, one for its
// attributes and one for its strings, which it may keep for hours.
func TestDecodeEventsWireAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	const n = 64
	complete := make([]bridge.Event, 0, n)
	opens := make([]bridge.Event, 0, n)
	for _, e := range loadLikeEvents(n) {
		switch b := e.Body.(type) {
		case *bridge.SpanOpen:
			opens = append(opens, e)
			e.Time, e.Body = at(1), &bridge.CompleteSpan{Start: e.Time, Open: b, End: &bridge.SpanEndData{}}
			complete = append(complete, e)
		}
	}
	for _, tc := range []struct {
		name   string
		events []bridge.Event
		max    float64 // allocations per record
	}{
		{"stw.span", complete, 0.2},
		{"stw.span_open", opens, 3.2},
	} {
		data := AppendEvents(nil, tc.events)
		if _, err := DecodeEvents(data); err != nil { // warms the decoder pool up
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(20, func() {
			if d, err := DecodeEvents(data); err != nil || len(d.Events) != n {
				t.Fatalf("%s: %d events, error %v", tc.name, len(d.Events), err)
			}
		}) / n
		if allocs > tc.max {
			t.Errorf("%s: %.2f allocations per record, want at most %.1f", tc.name, allocs, tc.max)
		}
	}
}

// TestDecodeEventsWireSharedChunksStayApart checks that the events whose attributes
// share a chunk cannot change one another: appending to one's attributes leaves the
// others as decoded.
func TestDecodeEventsWireSharedChunksStayApart(t *testing.T) {
	events := completeSpanEvents(loadLikeEvents(16), 4)
	data := AppendEvents(nil, append(events, loadLikeEvents(4)...))
	want, err := referenceDecode(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEvents(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got.Events {
		var a *[]attribute.KeyValue
		switch b := e.Body.(type) {
		case *bridge.CompleteSpan:
			a = &b.Open.Attributes
		case *bridge.SpanEndData:
			a = &b.Attributes
		default:
			continue
		}
		_ = append(*a, attribute.String("appended", "x"))
	}
	sameDecoded(t, got, want)
}

// TestDecodeEventsIntoReusesRoom checks that DecodeEventsInto decodes as DecodeEvents
// does, into the room it is given when it is large enough.
func TestDecodeEventsIntoReusesRoom(t *testing.T) {
	data := AppendEvents(nil, loadLikeEvents(8))
	want, err := DecodeEvents(data)
	if err != nil {
		t.Fatal(err)
	}
	room := make([]bridge.Event, 3, 64)
	got, err := DecodeEventsInto(room, data)
	if err != nil {
		t.Fatal(err)
	}
	sameDecoded(t, got, want)
	if &got.Events[0] != &room[:1][0] {
		t.Error("the events were not decoded into the room given")
	}
	small, err := DecodeEventsInto(make([]bridge.Event, 0, 2), data)
	if err != nil {
		t.Fatal(err)
	}
	sameDecoded(t, small, want)
}
