package stwotlp

import (
	"fmt"
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

// checkSpansWire fails t unless AppendSpans's bytes decode to treeEncodeSpans(spans),
// and, split with a limit, to requests of at most that size holding the same spans.
func checkSpansWire(t testing.TB, spans []bridge.Span) {
	t.Helper()
	want := treeEncodeSpans(spans)
	checkAppendWire(t, "AppendSpans", func(buf []byte) []byte { return AppendSpans(buf, spans) },
		want, &coltracepb.ExportTraceServiceRequest{})
	limit := proto.Size(want)/3 + 1
	buf, parts := SplitSpans(nil, spans, limit)
	checkSplit(t, buf, parts, len(spans), limit, want, func(req *coltracepb.ExportTraceServiceRequest) (out []proto.Message) {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					out = append(out, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
						Resource: rs.Resource, SchemaUrl: rs.SchemaUrl,
						ScopeSpans: []*tracepb.ScopeSpans{{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: []*tracepb.Span{sp}}},
					}}})
				}
			}
		}
		return out
	})
}

// checkAppendWire fails t unless appendWire, given a buffer holding a prefix, keeps
// the prefix and appends bytes that decode (into got) to want, the oracle's request.
// It returns those bytes.
func checkAppendWire(t testing.TB, name string, appendWire func([]byte) []byte, want, got proto.Message) []byte {
	t.Helper()
	prefix := []byte("prefix")
	b := appendWire(append([]byte(nil), prefix...))
	if string(b[:len(prefix)]) != string(prefix) {
		t.Fatal("the prefix in buf changed")
	}
	if err := proto.Unmarshal(b[len(prefix):], got); err != nil {
		t.Fatalf("the bytes do not decode: %v", err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("%s differs from the oracle:\n got %v\nwant %v", name, got, want)
	}
	return b[len(prefix):]
}

func TestAppendSpansMatchesOracle(t *testing.T) {
	other := resource.NewWithAttributes("https://schema/1", attribute.String("service.name", "other"))
	scope2 := &instrumentation.Scope{Name: "two", Version: "2", SchemaURL: "https://s", Attributes: attribute.NewSet(attribute.Int("a", 1))}
	mk := func(id byte, r *resource.Resource, s *instrumentation.Scope) bridge.Span {
		return bridge.Span{TraceID: testTraceID, SpanID: trace.SpanID{id}, Name: "s", Resource: r, Scope: s,
			Start: at(0), End: at(time.Millisecond)}
	}
	unfinished := sampleSpan()
	unfinished.Unfinished, unfinished.Status = true, bridge.Status{}
	unfinishedAttr := sampleSpan()
	unfinishedAttr.Unfinished = true
	unfinishedAttr.Attributes = append(unfinishedAttr.Attributes, attribute.Bool(AttrUnfinished, true))
	ok := sampleSpan()
	ok.Status, ok.SpanKind, ok.Parent = bridge.Status{Code: codes.Ok}, trace.SpanKindInternal, trace.SpanID{}
	// A message over 127 bytes (and one over 16383) needs a wider length prefix.
	long := mk(9, testResource, testScope)
	long.Name = strings.Repeat("n", 200)
	long.Attributes = []attribute.KeyValue{attribute.String("big", strings.Repeat("x", 20000))}
	many := make([]bridge.Span, 300)
	for i := range many {
		many[i] = mk(byte(i), []*resource.Resource{testResource, other, nil}[i%3], []*instrumentation.Scope{testScope, scope2, nil}[i%2])
	}
	cases := map[string][]bridge.Span{
		"none":        nil,
		"sample":      {sampleSpan()},
		"unfinished":  {unfinished, unfinishedAttr},
		"ok":          {ok},
		"grouping":    {mk(1, testResource, testScope), mk(2, other, testScope), mk(3, testResource, scope2), mk(4, testResource, testScope), mk(5, nil, nil)},
		"long":        {long},
		"many groups": many,
		"zero":        {{}},
		"bad utf8":    {mk(1, testResource, testScope), {Name: "\xff"}},
		"bad attr":    {{Attributes: []attribute.KeyValue{attribute.StringSlice("s", []string{"ok", "\xfe"})}}},
		"bad scope":   {mk(1, nil, &instrumentation.Scope{Name: "\xff"})},
	}
	for name, spans := range cases {
		t.Run(name, func(t *testing.T) { checkSpansWire(t, spans) })
	}
}

// FuzzAppendSpans builds spans from arbitrary strings and numbers and checks
// AppendSpans against EncodeSpans.
func FuzzAppendSpans(f *testing.F) {
	f.Add("GET /", "k", "v", int64(3), 1.5, uint8(2), 1, true)
	f.Add("", "", "\xff", int64(-1), -0.0, uint8(0), 0, false)
	f.Add(strings.Repeat("x", 300), "a.b", "", int64(1<<40), 1e300, uint8(7), 2, true)
	f.Fuzz(func(t *testing.T, name, key, val string, n int64, x float64, flags uint8, code int, unfinished bool) {
		s := sampleSpan()
		s.Name, s.TraceFlags, s.Unfinished = name, trace.TraceFlags(flags), unfinished
		s.Status = bridge.Status{Code: codes.Code(code % 3), Description: val}
		s.DroppedAttributes, s.DroppedEvents = int(n), int(n>>8)
		s.Attributes = append(s.Attributes, attribute.String(key, val), attribute.Int64(key, n),
			attribute.Float64(key, x), attribute.StringSlice(key, []string{val, name}),
			attribute.Map(key, attribute.String(val, name)))
		s.Events = append(s.Events, bridge.SpanEvent{Name: val, Time: time.Unix(0, n).UTC(), DroppedAttributeCount: int(n)})
		other := s
		other.Resource = resource.NewSchemaless(attribute.String(key, val))
		other.Scope = &instrumentation.Scope{Name: name, Version: val}
		checkSpansWire(t, []bridge.Span{s, other, s})
	})
}

func BenchmarkAppendSpans(b *testing.B) {
	spans := make([]bridge.Span, 128)
	for i := range spans {
		spans[i] = bridge.Span{TraceID: testTraceID, SpanID: trace.SpanID{byte(i), 1}, Parent: testParentID,
			Name: "GET /checkout/{id}", SpanKind: trace.SpanKindServer, Start: at(0), End: at(time.Millisecond),
			TraceFlags: trace.FlagsSampled, Resource: testResource, Scope: testScope,
			Attributes: []attribute.KeyValue{
				attribute.String("http.request.method", "GET"), attribute.String("http.route", "/checkout/{id}"),
				attribute.String("url.path", fmt.Sprintf("/checkout/%d", i)), attribute.String("server.address", "shop.example.com"),
				attribute.Int("http.response.status_code", 200),
			}}
	}
	b.Run("tree+Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(treeEncodeSpans(spans)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
	})
	b.Run("AppendSpans", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendSpans(buf[:0], spans)
		}
		b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
	})
}
