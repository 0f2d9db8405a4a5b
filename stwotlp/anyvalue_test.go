package stwotlp

import (
	"math"
	"reflect"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// TestAttributeValueRoundTrip sends every attribute.Value type through its OTLP form
// and back, and checks the OTLP form is the one docs/PROTOCOL.md names.
func TestAttributeValueRoundTrip(t *testing.T) {
	wantCase := map[attribute.Type]string{
		attribute.BOOL: "bool_value", attribute.INT64: "int_value", attribute.FLOAT64: "double_value",
		attribute.STRING: "string_value", attribute.BOOLSLICE: "array_value", attribute.INT64SLICE: "array_value",
		attribute.FLOAT64SLICE: "array_value", attribute.STRINGSLICE: "array_value", attribute.BYTESLICE: "bytes_value",
		attribute.SLICE: "array_value", attribute.MAP: "kvlist_value", attribute.EMPTY: "",
	}
	seen := map[attribute.Type]bool{}
	values := everyValue()
	values = append(values,
		attribute.Float64("nan", math.NaN()), attribute.Float64("inf", math.Inf(-1)),
		attribute.Int64("min", math.MinInt64), attribute.String("empty string", ""),
		attribute.ByteSlice("empty bytes", []byte{}),
		attribute.Map("empty map"),
		attribute.Slice("nested", attribute.SliceValue(attribute.SliceValue(attribute.Int64Value(1), attribute.StringValue("a")))),
	)
	for _, kv := range values {
		seen[kv.Value.Type()] = true
		av := anyValue(kv.Value)
		if got := oneofName(av); got != wantCase[kv.Value.Type()] {
			t.Errorf("%s (%s): OTLP %q, want %q", kv.Key, kv.Value.Type(), got, wantCase[kv.Value.Type()])
		}
		// Through the wire, as the codec sends it.
		b, err := proto.Marshal(av)
		if err != nil {
			t.Fatal(err)
		}
		var back commonpb.AnyValue
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got := attrValue(&back)
		if got.Type() != kv.Value.Type() || got.Emit() != kv.Value.Emit() {
			t.Errorf("%s: got %s %s, want %s %s", kv.Key, got.Type(), got.Emit(), kv.Value.Type(), kv.Value.Emit())
		}
		if kv.Key != "nan" && !reflect.DeepEqual(got, kv.Value) {
			t.Errorf("%s: got %#v, want %#v", kv.Key, got, kv.Value)
		}
	}
	for typ := range wantCase {
		if !seen[typ] {
			t.Errorf("type %s not covered", typ)
		}
	}
	if math.Float64bits(attrValue(anyValue(attribute.Float64Value(math.NaN()))).AsFloat64()) != math.Float64bits(math.NaN()) {
		t.Errorf("NaN bits changed")
	}
}

// TestAttributeValueCanonicalForms: OTLP has one array type, so the two array values
// that OTel Go spells in two ways arrive in one spelling (docs/PROTOCOL.md).
func TestAttributeValueCanonicalForms(t *testing.T) {
	cases := []struct {
		name      string
		sent, got attribute.Value
	}{
		{"slice of one scalar type", attribute.SliceValue(attribute.BoolValue(true), attribute.BoolValue(false)), attribute.BoolSliceValue([]bool{true, false})},
		{"slice of ints", attribute.SliceValue(attribute.Int64Value(1)), attribute.Int64SliceValue([]int64{1})},
		{"slice of doubles", attribute.SliceValue(attribute.Float64Value(1)), attribute.Float64SliceValue([]float64{1})},
		{"slice of strings", attribute.SliceValue(attribute.StringValue("a")), attribute.StringSliceValue([]string{"a"})},
		{"empty typed slice", attribute.StringSliceValue(nil), attribute.SliceValue()},
		{"mixed slice stays", attribute.SliceValue(attribute.BoolValue(true), attribute.Int64Value(1)), attribute.SliceValue(attribute.BoolValue(true), attribute.Int64Value(1))},
		{"slice with bytes stays", attribute.SliceValue(attribute.ByteSliceValue([]byte("a"))), attribute.SliceValue(attribute.ByteSliceValue([]byte("a")))},
		{"slice with empty stays", attribute.SliceValue(attribute.Value{}), attribute.SliceValue(attribute.Value{})},
	}
	for _, tc := range cases {
		if got := attrValue(anyValue(tc.sent)); !reflect.DeepEqual(got, tc.got) {
			t.Errorf("%s: got %s %s, want %s %s", tc.name, got.Type(), got.Emit(), tc.got.Type(), tc.got.Emit())
		}
	}
}

func oneofName(v *commonpb.AnyValue) string {
	switch v.GetValue().(type) {
	case *commonpb.AnyValue_BoolValue:
		return "bool_value"
	case *commonpb.AnyValue_IntValue:
		return "int_value"
	case *commonpb.AnyValue_DoubleValue:
		return "double_value"
	case *commonpb.AnyValue_StringValue:
		return "string_value"
	case *commonpb.AnyValue_BytesValue:
		return "bytes_value"
	case *commonpb.AnyValue_ArrayValue:
		return "array_value"
	case *commonpb.AnyValue_KvlistValue:
		return "kvlist_value"
	}
	return ""
}

func TestResourceAndScopeRoundTrip(t *testing.T) {
	res := resource.NewWithAttributes("https://s", everyValue()...)
	pb, schema := resourceProto(res)
	back := resourceFromProto(pb, schema)
	if !back.Equal(res) || back.SchemaURL() != "https://s" {
		t.Errorf("resource %v, want %v", back, res)
	}
	if r, _ := resourceProto(nil); r != nil || resourceFromProto(nil, "") != nil {
		t.Errorf("nil resource")
	}
	if empty := resourceFromProto(&resourcepb.Resource{}, ""); empty == nil || empty.Len() != 0 {
		t.Errorf("present resource decoded as nil")
	}
	sp, schema := scopeProto(testScope)
	if s := scopeFromProto(sp, schema); !scopesEqual(s, testScope) {
		t.Errorf("scope %+v", s)
	}
}
