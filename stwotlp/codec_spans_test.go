package stwotlp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func sampleSpan() bridge.Span {
	ts, _ := trace.ParseTraceState("rojo=00f067aa0ba902b7")
	return bridge.Span{
		TraceID: testTraceID, SpanID: testSpanID, Parent: testParentID, RemoteParent: true,
		TraceState: ts, TraceFlags: trace.FlagsSampled,
		Name: "POST /checkout", SpanKind: trace.SpanKindServer,
		Start: testStart, End: testStart.Add(40 * time.Millisecond),
		Attributes: everyValue(),
		Events: []bridge.SpanEvent{{Name: "exception", Time: testStart.Add(time.Millisecond),
			Attributes: []attribute.KeyValue{attribute.String("exception.type", "E")}, DroppedAttributeCount: 1}},
		Links:             []bridge.Link{testLink()},
		Status:            bridge.Status{Code: codes.Error, Description: "boom"},
		DroppedAttributes: 2, DroppedEvents: 3, DroppedLinks: 4,
		Resource: testResource, Scope: testScope,
	}
}

func spanWire(t *testing.T, req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var out coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func spansEqual(t *testing.T, got, want []bridge.Span) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d spans, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Resource.Equal(w.Resource) || !scopesEqual(g.Scope, w.Scope) {
			t.Errorf("span %d: resource/scope %v %+v, want %v %+v", i, g.Resource, g.Scope, w.Resource, w.Scope)
		}
		g.Resource, g.Scope, w.Resource, w.Scope = nil, nil, nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("span %d differs:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestSpansRoundTrip(t *testing.T) {
	root := bridge.Span{TraceID: testTraceID, SpanID: trace.SpanID{9}, Name: "root", SpanKind: trace.SpanKindInternal,
		Start: testStart, End: testStart.Add(time.Second), Resource: testResource, Scope: testScope}
	spans := []bridge.Span{sampleSpan(), root}
	got, errs := DecodeSpans(spanWire(t, treeEncodeSpans(spans)))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	spansEqual(t, got, spans)
	if got[0].Resource != got[1].Resource || got[0].Scope != got[1].Scope {
		t.Errorf("spans of one group got distinct pointers")
	}
}

func TestEncodeSpanFields(t *testing.T) {
	s := sampleSpan()
	sp := treeEncodeSpans([]bridge.Span{s}).ResourceSpans[0].ScopeSpans[0].Spans[0]
	if sp.Flags != 0x301 {
		t.Errorf("flags %#x, want sampled + has-is-remote + is-remote (0x301)", sp.Flags)
	}
	if sp.Kind != tracepb.Span_SPAN_KIND_SERVER || sp.Status.Code != tracepb.Status_STATUS_CODE_ERROR || sp.Status.Message != "boom" {
		t.Errorf("kind %v status %v", sp.Kind, sp.Status)
	}
	if string(sp.ParentSpanId) != string(testParentID[:]) || sp.TraceState != "rojo=00f067aa0ba902b7" {
		t.Errorf("parent %x trace state %q", sp.ParentSpanId, sp.TraceState)
	}
	if sp.DroppedAttributesCount != 2 || sp.DroppedEventsCount != 3 || sp.DroppedLinksCount != 4 {
		t.Errorf("dropped counts %d %d %d", sp.DroppedAttributesCount, sp.DroppedEventsCount, sp.DroppedLinksCount)
	}
	if l := sp.Links[0]; l.Flags != 0x301 || l.TraceState != "vendor=abc,other=1" || l.DroppedAttributesCount != 2 {
		t.Errorf("link %v", l)
	}
	if sp.StartTimeUnixNano != uint64(s.Start.UnixNano()) || sp.EndTimeUnixNano != uint64(s.End.UnixNano()) {
		t.Errorf("times %d %d", sp.StartTimeUnixNano, sp.EndTimeUnixNano)
	}
	s.Status.Code = codes.Ok
	if c := treeEncodeSpans([]bridge.Span{s}).ResourceSpans[0].ScopeSpans[0].Spans[0].Status.Code; c != tracepb.Status_STATUS_CODE_OK {
		t.Errorf("ok maps to %v", c)
	}
	s.DroppedEvents = -1
	s.DroppedLinks = 1 << 40
	sp = treeEncodeSpans([]bridge.Span{s}).ResourceSpans[0].ScopeSpans[0].Spans[0]
	if sp.DroppedEventsCount != 0 || sp.DroppedLinksCount != 1<<32-1 {
		t.Errorf("counts out of range: %d %d", sp.DroppedEventsCount, sp.DroppedLinksCount)
	}
}

func TestUnfinishedSpan(t *testing.T) {
	s := sampleSpan()
	s.Status = bridge.Status{Code: codes.Unset}
	s.Unfinished = true
	sp := treeEncodeSpans([]bridge.Span{s}).ResourceSpans[0].ScopeSpans[0].Spans[0]
	if sp.Status.Code != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("unfinished span has status %v, want Error", sp.Status.Code)
	}
	last := sp.Attributes[len(sp.Attributes)-1]
	if last.Key != AttrUnfinished || !last.Value.GetBoolValue() {
		t.Errorf("last attribute %v, want stw.unfinished=true", last)
	}
	got, errs := DecodeSpans(spanWire(t, treeEncodeSpans([]bridge.Span{s})))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	// Decoding gives back the span with the status it was exported with.
	s.Status.Code = codes.Error
	spansEqual(t, got, []bridge.Span{s})

	// A span that already holds the attribute does not get it twice.
	s.Attributes = append(s.Attributes, attribute.Bool(AttrUnfinished, true))
	sp = treeEncodeSpans([]bridge.Span{s}).ResourceSpans[0].ScopeSpans[0].Spans[0]
	n := 0
	for _, a := range sp.Attributes {
		if a.Key == AttrUnfinished {
			n++
		}
	}
	if n != 1 {
		t.Errorf("stw.unfinished appears %d times", n)
	}
}

func TestSpansGrouping(t *testing.T) {
	other := resource.NewSchemaless(attribute.String("service.name", "other"))
	scope2 := &instrumentation.Scope{Name: "two"}
	mk := func(id byte, r *resource.Resource, s *instrumentation.Scope) bridge.Span {
		return bridge.Span{TraceID: testTraceID, SpanID: trace.SpanID{id}, Name: "s", Resource: r, Scope: s}
	}
	spans := []bridge.Span{mk(1, testResource, testScope), mk(2, other, testScope), mk(3, testResource, scope2), mk(4, testResource, testScope), mk(5, nil, nil)}
	req := treeEncodeSpans(spans)
	if len(req.ResourceSpans) != 3 || len(req.ResourceSpans[0].ScopeSpans) != 2 || len(req.ResourceSpans[0].ScopeSpans[0].Spans) != 2 {
		t.Fatalf("grouping: %v", req)
	}
	if req.ResourceSpans[0].SchemaUrl != testResource.SchemaURL() || req.ResourceSpans[2].Resource != nil {
		t.Errorf("resource fields: %v", req.ResourceSpans)
	}
	got, errs := DecodeSpans(spanWire(t, req))
	if len(errs) > 0 || len(got) != 5 {
		t.Fatalf("spans %v errs %v", got, errs)
	}
	if got[0].Resource != got[1].Resource || got[0].Scope != got[1].Scope || got[4].Resource != nil || got[4].Scope != nil {
		t.Errorf("pointers: %v", got)
	}
}

func TestDecodeSpansRejectsBadSpansAlone(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*tracepb.Span)
		want   string
	}{
		{"short trace id", func(s *tracepb.Span) { s.TraceId = s.TraceId[:8] }, "trace_id has 8 bytes"},
		{"no span id", func(s *tracepb.Span) { s.SpanId = nil }, "span_id has 0 bytes"},
		{"zero span id", func(s *tracepb.Span) { s.SpanId = make([]byte, 8) }, "all zero"},
		{"bad parent", func(s *tracepb.Span) { s.ParentSpanId = []byte{1} }, "parent_span_id has 1 bytes"},
		{"bad trace state", func(s *tracepb.Span) { s.TraceState = "=,=" }, "trace_state"},
		{"bad kind", func(s *tracepb.Span) { s.Kind = 9 }, "kind is 9"},
		{"bad status", func(s *tracepb.Span) { s.Status = &tracepb.Status{Code: 7} }, "status code is 7"},
		{"bad link", func(s *tracepb.Span) { s.Links[0].SpanId = []byte{1, 2} }, "links[0]: trace_id has 16 bytes and span_id 2"},
		{"bad link trace state", func(s *tracepb.Span) { s.Links[0].TraceState = "=,=" }, "links[0].trace_state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := treeEncodeSpans([]bridge.Span{sampleSpan(), sampleSpan(), sampleSpan()})
			bad := req.ResourceSpans[0].ScopeSpans[0].Spans[1]
			tc.mutate(bad)
			got, errs := DecodeSpans(spanWire(t, req))
			if len(errs) != 1 || len(got) != 2 {
				t.Fatalf("%d spans, errors %v", len(got), errs)
			}
			var se *SpanError
			if !errors.As(errs[0], &se) || se.Span != 1 || se.Name != "POST /checkout" {
				t.Errorf("error %#v does not name the span", errs[0])
			}
			if msg := errs[0].Error(); !strings.HasPrefix(msg, `resource_spans[0].scope_spans[0].spans[1] ("POST /checkout"): `) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want %q", msg, tc.want)
			}
		})
	}
	if _, errs := DecodeSpans(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{nil}}}}}}); len(errs) != 1 {
		t.Errorf("null span: %v", errs)
	}
	if s, errs := DecodeSpans(nil); s != nil || errs != nil {
		t.Errorf("nil request: %v %v", s, errs)
	}
}

func BenchmarkEncodeSpans(b *testing.B) {
	_, span := typicalSpanEvents(trace.SpanKindServer, testParentID, false, bridge.StreamID(testTraceID))
	spans := []bridge.Span{span}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = AppendSpans(buf[:0], spans)
	}
}
