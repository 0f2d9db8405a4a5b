package bridge_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// everyKind holds an attribute of every value type, with values at the edges of
// their encodings.
var everyKind = []attribute.KeyValue{
	{Key: "empty"},
	attribute.Bool("false", false),
	attribute.Bool("true", true),
	attribute.Int64("min", -1<<63),
	attribute.Int64("max", 1<<63-1),
	attribute.Int("zero", 0),
	attribute.Float64("float", -0.1),
	attribute.String("string", "héllo\x00"),
	attribute.String("", "empty key"),
	attribute.String(strings.Repeat("long key ", 20), "v"),
	attribute.String("long", string(make([]byte, 300))),
	{Key: "bytes", Value: attribute.ByteSliceValue([]byte{0, 1, 0xff})},
	attribute.BoolSlice("bools", []bool{true, false}),
	attribute.Int64Slice("ints", []int64{-1, 0, 1 << 40}),
	attribute.Float64Slice("floats", []float64{1.5, -2}),
	attribute.StringSlice("strings", []string{"a", "", "c"}),
	attribute.StringSlice("no strings", []string{}),
	{Key: "slice", Value: attribute.SliceValue(attribute.IntValue(1), attribute.StringValue("x"),
		attribute.SliceValue(attribute.BoolValue(true)))},
	{Key: "map", Value: attribute.MapValue(attribute.String("k", "v"), attribute.Int("n", 2),
		attribute.KeyValue{Key: "inner", Value: attribute.MapValue(attribute.Float64("f", 3))})},
}

// A span that stays open across calls is kept packed: it must come out exactly as
// one opened and ended in one call (whose attributes are never packed), whatever its
// attributes and the kind of its times.
func TestOpenSpanPackedKeepsEverything(t *testing.T) {
	ts, err := trace.ParseTraceState("k=v,x=y")
	if err != nil {
		t.Fatal(err)
	}
	starts := map[string]time.Time{
		"utc":       t0,
		"local":     t0.Local(),
		"zone":      t0.In(time.FixedZone("X", 3600)),
		"monotonic": time.Now(),
		"zero":      {},
	}
	for name, start := range starts {
		t.Run(name, func(t *testing.T) {
			evs := func() []bridge.Event {
				s := &stream{id: sid}
				link := bridge.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: spanID(7)}),
					Attributes: []attribute.KeyValue{attribute.String("l", "1")}}
				s.add(1, 0, &bridge.SpanOpen{Name: "open", SpanKind: trace.SpanKindProducer, Parent: spanID(9), RemoteParent: true,
					TraceState: ts, TraceFlags: trace.FlagsSampled, Attributes: everyKind, Links: []bridge.Link{link}})
				s.add(1, 1, &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("zero", 1), attribute.String("new", "n")}})
				s.add(1, 2, &bridge.UpdateName{Name: "renamed"})
				s.add(1, 3, &bridge.StatusUpdate{Status: bridge.Status{Code: codes.Ok}})
				s.add(1, 4, &bridge.Heartbeat{})
				s.add(1, 5, &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Bool("end", true)},
					Events: []bridge.SpanEvent{{Name: "e"}}, Links: []bridge.Link{link}, ChildSpanCount: 2})
				s.evs[0].Time = start
				return s.evs
			}
			whole, wholeCol := newAssembler(t, newClock())
			consume(t, whole, evs()...)
			apart, apartCol := newAssembler(t, newClock())
			for _, e := range evs() {
				consume(t, apart, e)
			}
			want, got := wholeCol.all(), apartCol.all()
			if len(want) != 1 || len(got) != 1 {
				t.Fatalf("spans %d and %d, want 1", len(want), len(got))
			}
			if !reflect.DeepEqual(got[0], want[0]) {
				t.Fatalf("packed across calls:\n%+v\nin one call:\n%+v", got[0], want[0])
			}
			if got[0].Start != start || len(got[0].Attributes) != len(everyKind)+2 || got[0].Name != "renamed" {
				t.Fatalf("span %+v", got[0])
			}
			for i, kv := range everyKind {
				if kv.Key != "zero" && !reflect.DeepEqual(got[0].Attributes[i], kv) {
					t.Errorf("attribute %d: %#v, want %#v", i, got[0].Attributes[i], kv)
				}
			}
		})
	}
}

// A span left open is emitted unfinished with its attributes, and its late end
// yields the real span: both from its packed form.
func TestOpenSpanPackedUnfinishedThenLate(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c)
	s := &stream{id: sid}
	consume(t, a, s.add(1, 0, &bridge.SpanOpen{Name: "long", Attributes: everyKind}))
	c.Add(45 * time.Second) // past StreamTimeout, not so long that the stream is forgotten
	if err := a.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	consume(t, a, s.add(1, time.Hour, &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Int("zero", 5)}}))
	spans := col.all()
	if len(spans) != 2 || !spans[0].Unfinished || spans[1].Unfinished {
		t.Fatalf("spans %+v", spans)
	}
	if !reflect.DeepEqual(spans[0].Attributes, everyKind) {
		t.Errorf("unfinished attributes %v", spans[0].Attributes)
	}
	late := spans[1].Attributes
	if len(late) != len(everyKind) || late[5] != attribute.Int("zero", 5) || !reflect.DeepEqual(late[:5], everyKind[:5]) {
		t.Errorf("late attributes %v", late)
	}
}

// Distinct keys past what the packer numbers are packed whole.
func TestOpenSpanPackedManyKeys(t *testing.T) {
	const spans = 6000
	a, col := newAssembler(t, newClock(), bridge.WithMaxOpenSpansPerStream(-1))
	var opens, ends []bridge.Event
	for i := range spans {
		id := trace.SpanID{1, byte(i >> 8), byte(i)}
		attrs := []attribute.KeyValue{attribute.Int(fmt.Sprintf("key %d", i), i), attribute.String("shared", "v")}
		opens = append(opens, bridge.Event{TraceID: tid, SpanID: id, Time: t0, Body: &bridge.SpanOpen{Name: "s", Attributes: attrs}})
		ends = append(ends, bridge.Event{TraceID: tid, SpanID: id, Time: t0, Body: &bridge.SpanEndData{}})
	}
	consume(t, a, opens...)
	consume(t, a, ends...)
	got := col.all()
	if len(got) != spans {
		t.Fatalf("%d spans, want %d", len(got), spans)
	}
	for i, sp := range got {
		want := []attribute.KeyValue{attribute.Int(fmt.Sprintf("key %d", i), i), attribute.String("shared", "v")}
		if !reflect.DeepEqual(sp.Attributes, want) {
			t.Fatalf("span %d: attributes %v, want %v", i, sp.Attributes, want)
		}
	}
}

// An unfinished span ends at the latest time of its stream, kept exactly whatever its
// kind (the stream packs it when it can).
func TestUnfinishedEndsAtStreamsLatestTimeExactly(t *testing.T) {
	lasts := map[string]time.Time{
		"utc":       t0.Add(time.Hour),
		"local":     t0.Add(time.Hour).Local(),
		"zone":      t0.Add(time.Hour).In(time.FixedZone("X", -7200)),
		"monotonic": time.Now(),
	}
	for name, last := range lasts {
		t.Run(name, func(t *testing.T) {
			a, col := newAssembler(t, newClock())
			s := &stream{id: sid}
			consume(t, a, s.add(1, 0, &bridge.SpanOpen{Name: "open"}), s.add(2, 0, &bridge.SpanOpen{Name: "other"}))
			hb := s.add(2, 0, &bridge.Heartbeat{})
			hb.Time = last
			consume(t, a, hb)
			if err := a.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			spans := col.all()
			if len(spans) != 2 || spans[0].End != last || spans[1].End != last {
				t.Fatalf("spans %+v, want both ended at %v", spans, last)
			}
		})
	}
}
