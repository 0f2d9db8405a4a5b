package limits

import (
	"strings"
	"testing"
	"time"

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

func TestNoLimits(t *testing.T) {
	l := New(WithMaxAttributeValueLength(-1), WithMaxAttributesBytes(-1))
	long := strings.Repeat("x", 1<<20)
	for i := 0; i < 100; i++ {
		e := l.Apply(ev(uint64(i), byte(i), &bridge.SpanOpen{Attributes: []attribute.KeyValue{attribute.String("k", long)}}))
		if isDiag(e) || len(e.Body.(*bridge.SpanOpen).Attributes[0].Value.AsString()) != 1<<20 {
			t.Fatal("limited with limits off")
		}
	}
	d := New()
	if d.opts.MaxAttributeValueLength != DefaultMaxAttributeValueLength ||
		d.opts.MaxAttributesBytes != DefaultMaxAttributesBytes {
		t.Fatalf("defaults %+v", d.opts)
	}
}

func TestTruncate(t *testing.T) {
	l := New(WithMaxAttributeValueLength(4))
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

// Every string and byte value is cut, however deep it sits in arrays and maps, and the
// original values are left alone.
func TestTruncateNested(t *testing.T) {
	l := New(WithMaxAttributeValueLength(4))
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
	l := New(WithMaxAttributeValueLength(100), WithMaxAttributesBytes(250))
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

// A CompleteSpan (protocol 1.1) is cut as its SpanOpen and SpanEndData would be, and
// keeps its other fields (start, alone in its stream).
func TestTruncateCompleteSpan(t *testing.T) {
	l := New(WithMaxAttributeValueLength(4))
	orig := &bridge.CompleteSpan{
		Start: time.Unix(1, 0),
		Alone: true,
		Open:  &bridge.SpanOpen{Attributes: []attribute.KeyValue{attribute.String("k", "abcdefgh")}},
		End:   &bridge.SpanEndData{Events: []bridge.SpanEvent{{Name: "e", Attributes: []attribute.KeyValue{attribute.String("m", "123456")}}}},
	}
	got := l.Apply(ev(0, 1, orig)).Body.(*bridge.CompleteSpan)
	if !got.Alone || !got.Start.Equal(orig.Start) {
		t.Fatalf("cut CompleteSpan lost its fields: %+v", got)
	}
	if v := got.Open.Attributes[0].Value.AsString(); v != "abcd" {
		t.Fatalf("open attribute %q", v)
	}
	if v := got.End.Events[0].Attributes[0].Value.AsString(); v != "1234" {
		t.Fatalf("event attribute %q", v)
	}
	if orig.Open.Attributes[0].Value.AsString() != "abcdefgh" {
		t.Fatal("the original event was modified")
	}
	if st := l.Stats(); st.TruncatedValues != 2 {
		t.Fatalf("stats %+v", st)
	}
}
