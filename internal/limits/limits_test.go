package limits

import (
	"strings"
	"testing"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

var stream = bridge.StreamID{1}

func ev(seq uint64, span byte, body bridge.Body) bridge.Event {
	return bridge.Event{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{span}, StreamID: stream, Sequence: seq, Body: body}
}

func isDiag(e bridge.Event) bool {
	d, ok := e.Body.(*bridge.StreamDiagnostic)
	return ok && d.DroppedEvents == 1
}

func TestOpenSpansPerStream(t *testing.T) {
	l := New(Options{MaxOpenSpansPerStream: 2, MaxAttributeValueLength: -1})
	for i, tc := range []struct {
		e       bridge.Event
		refused bool
	}{
		{ev(0, 1, &bridge.SpanOpen{}), false},
		{ev(1, 2, &bridge.SpanOpen{}), false},
		{ev(2, 1, &bridge.SpanOpen{}), false}, // duplicate open: passes, the assembler drops it
		{ev(3, 3, &bridge.SpanOpen{}), true},  // third open span
		{ev(4, 3, &bridge.Attributes{}), true},
		{ev(5, 3, &bridge.SpanEndData{}), true},
		{ev(6, 1, &bridge.SpanEndData{}), false},
		{ev(7, 4, &bridge.SpanOpen{}), false}, // room again
		{ev(8, 5, &bridge.Onset{}), true},
		{ev(9, 5, &bridge.Outcome{}), true},
	} {
		out := l.Apply(tc.e)
		if isDiag(out) != tc.refused {
			t.Fatalf("event %d: refused %v, want %v", i, isDiag(out), tc.refused)
		}
		if tc.refused && (out.Sequence != tc.e.Sequence || out.StreamID != stream) {
			t.Fatalf("event %d: diagnostic lost its place: %+v", i, out)
		}
	}
	if st := l.Stats(); st.RefusedSpans != 2 || st.RefusedEvents != 5 {
		t.Fatalf("stats %+v", st)
	}
	if n := l.OpenSpans(); n != 2 {
		t.Fatalf("OpenSpans %d, want 2", n)
	}
	l.Release([]bridge.Span{{SpanID: trace.SpanID{2}, StreamID: stream}, {SpanID: trace.SpanID{4}, StreamID: stream}})
	if n := l.OpenSpans(); n != 0 || len(l.streams) != 0 || len(l.refused) != 0 {
		t.Fatalf("after release: %d open, %d streams, %d refused", n, len(l.streams), len(l.refused))
	}
	// Events without a stream are never limited.
	if out := l.Apply(bridge.Event{SpanID: trace.SpanID{9}, Body: &bridge.SpanOpen{}}); isDiag(out) {
		t.Fatal("stream-less event refused")
	}
}

func TestNoLimits(t *testing.T) {
	l := New(Options{MaxOpenSpansPerStream: -1, MaxAttributeValueLength: -1, MaxAttributesBytes: -1})
	long := strings.Repeat("x", 1<<20)
	for i := 0; i < 100; i++ {
		e := l.Apply(ev(uint64(i), byte(i), &bridge.SpanOpen{Attributes: []attribute.KeyValue{attribute.String("k", long)}}))
		if isDiag(e) || len(e.Body.(*bridge.SpanOpen).Attributes[0].Value.AsString()) != 1<<20 {
			t.Fatal("limited with limits off")
		}
	}
	d := New(Options{})
	if d.opts.MaxAttributeValueLength != DefaultMaxAttributeValueLength || d.opts.MaxOpenSpansPerStream != DefaultMaxOpenSpansPerStream ||
		d.opts.MaxAttributesBytes != DefaultMaxAttributesBytes {
		t.Fatalf("defaults %+v", d.opts)
	}
}

func TestTruncate(t *testing.T) {
	l := New(Options{MaxAttributeValueLength: 4, MaxOpenSpansPerStream: -1})
	orig := []attribute.KeyValue{
		attribute.String("short", "abc"),
		attribute.String("long", "abcdefgh"),
		attribute.String("utf8", "ab€"), // € is 3 bytes: cut before it
		attribute.StringSlice("slice", []string{"ok", "toolong"}),
		attribute.Int("n", 123456789),
	}
	open := &bridge.SpanOpen{Name: "s", Attributes: orig}
	out := l.Apply(ev(0, 1, open)).Body.(*bridge.SpanOpen)
	got := map[string]string{}
	for _, kv := range out.Attributes {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	want := map[string]string{"short": "abc", "long": "abcd", "utf8": "ab", "slice": `["ok","tool"]`, "n": "123456789"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if open.Attributes[1].Value.AsString() != "abcdefgh" || out.Name != "s" {
		t.Fatal("the original event was modified, or the copy lost fields")
	}
	if st := l.Stats(); st.TruncatedValues != 3 {
		t.Fatalf("TruncatedValues %d, want 3", st.TruncatedValues)
	}
	// Other bodies.
	a := l.Apply(ev(1, 1, &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.String("k", "123456")}})).Body.(*bridge.Attributes)
	if a.Attributes[0].Value.AsString() != "1234" {
		t.Fatalf("Attributes body: %v", a.Attributes)
	}
	endIn := &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.String("k", "ok")},
		Events: []bridge.SpanEvent{{Name: "e", Attributes: []attribute.KeyValue{attribute.String("m", "message")}}}}
	end := l.Apply(ev(2, 1, endIn)).Body.(*bridge.SpanEndData)
	if end.Events[0].Attributes[0].Value.AsString() != "mess" || endIn.Events[0].Attributes[0].Value.AsString() != "message" {
		t.Fatalf("SpanEndData events: %v (original %v)", end.Events, endIn.Events)
	}
	on := l.Apply(ev(3, 2, &bridge.Onset{ScriptName: "w", Attributes: []attribute.KeyValue{attribute.String("k", "xxxxxx")}})).Body.(*bridge.Onset)
	if on.Attributes[0].Value.AsString() != "xxxx" || on.ScriptName != "w" {
		t.Fatalf("Onset: %+v", on)
	}
	// Nothing long: the very same body.
	same := &bridge.SpanOpen{Attributes: []attribute.KeyValue{attribute.String("k", "ok")}}
	if l.Apply(ev(4, 3, same)).Body != bridge.Body(same) {
		t.Fatal("body copied without need")
	}
}

// A duplicate open counts once; a duplicate end does not count twice.
func TestDuplicatesCountOnce(t *testing.T) {
	l := New(Options{MaxOpenSpansPerStream: 3, MaxAttributeValueLength: -1})
	for i, e := range []bridge.Event{ev(0, 1, &bridge.SpanOpen{}), ev(0, 1, &bridge.SpanOpen{}), ev(1, 2, &bridge.SpanOpen{})} {
		if isDiag(l.Apply(e)) {
			t.Fatalf("event %d refused", i)
		}
	}
	if n := l.OpenSpans(); n != 2 || l.streams[stream].open != 2 {
		t.Fatalf("%d open (stream count %d), want 2", n, l.streams[stream].open)
	}
	l.Apply(ev(2, 1, &bridge.SpanEndData{}))
	l.Apply(ev(2, 1, &bridge.SpanEndData{}))
	if n := l.OpenSpans(); n != 1 || l.streams[stream].open != 1 {
		t.Fatalf("%d open (stream count %d), want 1", n, l.streams[stream].open)
	}
}

// Every string and byte value is cut, however deep it sits in arrays and maps, and the
// original values are left alone.
func TestTruncateNested(t *testing.T) {
	l := New(Options{MaxAttributeValueLength: 4, MaxOpenSpansPerStream: -1})
	long := strings.Repeat("y", 2<<20)
	orig := []attribute.KeyValue{
		attribute.Map("map", attribute.String("inner", long), attribute.Int("n", 7),
			attribute.Map("deeper", attribute.Slice("mixed", attribute.StringValue(long), attribute.Int64Value(1), attribute.ByteSliceValue([]byte(long))))),
		attribute.Slice("mixed", attribute.StringValue("ok"), attribute.StringValue("abcdefgh"), attribute.BoolValue(true)),
		attribute.ByteSlice("bytes", []byte("0123456789")),
		attribute.String("short", "abc"),
	}
	out := l.Apply(ev(0, 1, &bridge.SpanOpen{Attributes: orig})).Body.(*bridge.SpanOpen)
	got := map[string]string{}
	for _, kv := range out.Attributes {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	want := map[string]string{
		"map":   `{"deeper":{"mixed":["yyyy",1,"eXl5eQ=="]},"inner":"yyyy","n":7}`,
		"mixed": `["ok","abcd",true]`,
		"bytes": "MDEyMw==",
		"short": "abc",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	if st := l.Stats(); st.TruncatedValues != 5 {
		t.Errorf("TruncatedValues %d, want 5", st.TruncatedValues)
	}
	if len(orig[0].Value.AsMap()[1].Value.AsString()) != 2<<20 || // sorted: deeper, inner, n
		len(orig[2].Value.AsByteSlice()) != 10 {
		t.Fatal("the original values were modified")
	}
	// Links carry attributes too.
	end := l.Apply(ev(1, 1, &bridge.SpanEndData{Links: []bridge.Link{{Attributes: []attribute.KeyValue{attribute.String("k", long)}}}})).Body.(*bridge.SpanEndData)
	if v := end.Links[0].Attributes[0].Value.AsString(); v != "yyyy" {
		t.Fatalf("link attribute %d bytes, want 4", len(v))
	}
}

// The attributes past MaxAttributesBytes are dropped and counted.
func TestMaxAttributesBytes(t *testing.T) {
	l := New(Options{MaxAttributeValueLength: 100, MaxAttributesBytes: 250, MaxOpenSpansPerStream: -1})
	var attrs []attribute.KeyValue
	for i := range 10 {
		attrs = append(attrs, attribute.String(string(rune('a'+i)), strings.Repeat("x", 1000))) // 1+100 bytes after the cut
	}
	out := l.Apply(ev(0, 1, &bridge.Attributes{Attributes: attrs})).Body.(*bridge.Attributes)
	if len(out.Attributes) != 2 {
		t.Fatalf("%d attributes kept, want 2 (202 of 250 bytes)", len(out.Attributes))
	}
	if st := l.Stats(); st.DroppedAttributes != 8 || st.TruncatedValues != 10 {
		t.Fatalf("stats %+v, want 8 dropped and 10 truncated", st)
	}
	if len(attrs) != 10 || len(attrs[9].Value.AsString()) != 1000 {
		t.Fatal("the original attributes were modified")
	}
}
