package bridge

import (
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

func TestSizeGrowsWithContent(t *testing.T) {
	size := func(b Body) int { e := Event{Body: b}; return e.Size() }
	long := strings.Repeat("x", 1000)
	for _, c := range []struct {
		name         string
		small, large Body
	}{
		{"SpanOpen name", &SpanOpen{}, &SpanOpen{Name: long}},
		{"SpanOpen attributes", &SpanOpen{}, &SpanOpen{Attributes: []attribute.KeyValue{attribute.String("k", long)}}},
		{"SpanOpen links", &SpanOpen{}, &SpanOpen{Links: []Link{{Attributes: []attribute.KeyValue{attribute.String(long, "")}}}}},
		{"UpdateName", &UpdateName{}, &UpdateName{Name: long}},
		{"Attributes", &Attributes{}, &Attributes{Attributes: []attribute.KeyValue{attribute.Int("k", 1)}}},
		{"StatusUpdate", &StatusUpdate{}, &StatusUpdate{Status: Status{Description: long}}},
		{"SpanEndData events", &SpanEndData{}, &SpanEndData{Events: []SpanEvent{{Name: long}}}},
		{"SpanEndData event attributes", &SpanEndData{Events: []SpanEvent{{}}},
			&SpanEndData{Events: []SpanEvent{{Attributes: []attribute.KeyValue{attribute.Bool("b", true)}}}}},
		{"Onset", &Onset{}, &Onset{ScriptName: long}},
		{"Onset tags", &Onset{}, &Onset{ScriptTags: []string{long}}},
		{"Onset headers", &Onset{}, &Onset{Info: TriggerInfo{Headers: []Header{{Name: "a", Value: long}}}}},
		{"Onset raw info", &Onset{}, &Onset{Info: TriggerInfo{Raw: long}}},
		{"Onset namespace", &Onset{}, &Onset{DispatchNamespace: long}},
		{"Onset attributes", &Onset{}, &Onset{Attributes: []attribute.KeyValue{attribute.String("k", "v")}}},
		{"SpanEndData outcome", &SpanEndData{}, &SpanEndData{Outcome: long}},
		{"Outcome", &Outcome{}, &Outcome{Outcome: long}},
		{"Log", &Log{}, &Log{Message: long}},
		{"Exception", &Exception{}, &Exception{Stack: long}},
		{"no body", nil, &Return{}},
	} {
		if s, l := size(c.small), size(c.large); l <= s {
			t.Errorf("%s: size %d with more content, %d without", c.name, l, s)
		}
	}
	for _, b := range []Body{&Return{}, &StreamDiagnostic{}} {
		if s := size(b); s <= sizeEvent {
			t.Errorf("%T: size %d, want more than the envelope's %d", b, s, sizeEvent)
		}
	}
}

func TestSizeOfTraceState(t *testing.T) {
	ts, err := trace.ParseTraceState("a=1,b=2")
	if err != nil {
		t.Fatal(err)
	}
	small, large := Event{Body: &SpanOpen{}}, Event{Body: &SpanOpen{TraceState: ts}}
	if large.Size() != small.Size()+2*sizeTraceStateMember {
		t.Fatalf("trace state of 2 members adds %d bytes, want %d", large.Size()-small.Size(), 2*sizeTraceStateMember)
	}
}

// TestSizeOfCompositeValues guards the reflect-based reading of attribute.Value: if a
// new version of the attribute package changes its layout, this fails.
func TestSizeOfCompositeValues(t *testing.T) {
	if !valueLayout.ok {
		t.Fatal("the layout of attribute.Value changed: update compositeValueSize")
	}
	long := strings.Repeat("y", 500)
	for _, c := range []struct {
		name        string
		small, more attribute.Value
		atLeast     int
	}{
		{"string slice", attribute.StringSliceValue([]string{"a"}), attribute.StringSliceValue([]string{"a", long}), 500},
		{"long string slice", attribute.StringSliceValue([]string{"a", "b", "c", "d"}),
			attribute.StringSliceValue([]string{"a", "b", "c", "d", long}), 500},
		{"int slice", attribute.Int64SliceValue([]int64{1}), attribute.Int64SliceValue(make([]int64, 100)), 99 * 8},
		{"float slice", attribute.Float64SliceValue(nil), attribute.Float64SliceValue(make([]float64, 10)), 80},
		{"bool slice", attribute.BoolSliceValue(nil), attribute.BoolSliceValue(make([]bool, 10)), 10},
		{"bytes", attribute.ByteSliceValue(nil), attribute.ByteSliceValue([]byte(long)), 500},
		{"slice", attribute.SliceValue(attribute.IntValue(1)),
			attribute.SliceValue(attribute.IntValue(1), attribute.StringValue(long)), 500},
		{"map", attribute.MapValue(attribute.Int("a", 1)),
			attribute.MapValue(attribute.Int("a", 1), attribute.String(long, long)), 1000},
		{"nested", attribute.SliceValue(attribute.MapValue()),
			attribute.SliceValue(attribute.MapValue(attribute.StringSlice("k", []string{long}))), 500},
	} {
		small := Event{Body: &Attributes{Attributes: []attribute.KeyValue{{Key: "k", Value: c.small}}}}
		more := Event{Body: &Attributes{Attributes: []attribute.KeyValue{{Key: "k", Value: c.more}}}}
		if d := more.Size() - small.Size(); d < c.atLeast {
			t.Errorf("%s: %d bytes more, want at least %d", c.name, d, c.atLeast)
		}
	}
}

func TestSizeDoesNotAllocate(t *testing.T) {
	e := Event{Body: &SpanEndData{
		Attributes: []attribute.KeyValue{
			attribute.String("s", "v"),
			attribute.StringSlice("ss", []string{"a", "b", "c", "d", "e"}),
			attribute.Int64Slice("is", []int64{1, 2}),
			attribute.Map("m", attribute.String("k", "v")),
		},
		Events: []SpanEvent{{Name: "e", Attributes: []attribute.KeyValue{attribute.Int("i", 1)}}},
		Links:  []Link{{Attributes: []attribute.KeyValue{attribute.Bool("b", true)}}},
	}}
	if n := testing.AllocsPerRun(100, func() { _ = e.Size() }); n != 0 && !plRaceEnabled {
		t.Fatalf("Size allocates %v times", n)
	}
}

func TestSizeIsStable(t *testing.T) {
	e := plBenchEvent()
	if a, b := e.Size(), e.Size(); a != b || a <= sizeEvent {
		t.Fatalf("sizes %d and %d", a, b)
	}
}

func BenchmarkEventSize(b *testing.B) {
	e := plBenchEvent()
	b.ReportAllocs()
	for b.Loop() {
		_ = e.Size()
	}
}

// TestSizeCountsEveryField fills, one at a time, each string and slice field of each
// body (and of the structs inside it) and checks that Size sees it, so a field added
// to the event model later is not left out of the byte bound.
func TestSizeCountsEveryField(t *testing.T) {
	bodies := []Body{&SpanOpen{}, &UpdateName{}, &Attributes{}, &StatusUpdate{}, &SpanEndData{},
		&Heartbeat{}, &Onset{}, &Outcome{}, &Log{}, &Exception{}, &Return{}, &StreamDiagnostic{}, &DiagnosticChannel{}}
	for _, b := range bodies {
		typ := reflect.TypeOf(b).Elem()
		empty := Event{Body: b}
		base := empty.Size()
		var visit func(path string, index []int, ft reflect.Type)
		visit = func(path string, index []int, ft reflect.Type) {
			for i := range ft.NumField() {
				f := ft.Field(i)
				idx := append(append([]int(nil), index...), i)
				name := path + "." + f.Name
				if !f.IsExported() {
					continue
				}
				nb := reflect.New(typ)
				v := nb.Elem().FieldByIndex(idx)
				switch f.Type.Kind() {
				case reflect.String:
					v.SetString("some text")
				case reflect.Slice:
					v.Set(reflect.MakeSlice(f.Type, 1, 1))
				case reflect.Struct:
					if f.Type.PkgPath() == typ.PkgPath() {
						visit(name, idx, f.Type)
					}
					continue
				default:
					continue
				}
				e := Event{Body: nb.Interface().(Body)}
				if e.Size() <= base {
					t.Errorf("%s: Size ignores the field", name)
				}
			}
		}
		visit(typ.Name(), nil, typ)
	}
}
