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

func TestNoLimits(t *testing.T) {
	l := New(WithMaxAttributeValueLength(-1))
	long := strings.Repeat("x", 1<<20)
	for i := 0; i < 100; i++ {
		e := l.Apply(ev(uint64(i), byte(i), &bridge.SpanOpen{Attributes: []attribute.KeyValue{attribute.String("k", long)}}))
		if len(e.Body.(*bridge.SpanOpen).Attributes[0].Value.AsString()) != 1<<20 {
			t.Fatal("limited with limits off")
		}
	}
	d := New()
	if d.opts.MaxAttributeValueLength != DefaultMaxAttributeValueLength {
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
