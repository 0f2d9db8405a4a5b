package stwotlp

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// This file maps OTLP AnyValue to OTel attribute values (docs/PROTOCOL.md, "Attribute
// values"; appendAnyValue is the other way). Every attribute.Value type has an
// AnyValue form; the only information OTLP cannot carry is whether an array came from
// a typed slice or from attribute.SliceValue, so decoding picks the typed slice when
// every element has the same scalar type and SLICE otherwise.

// attrValue returns the attribute form of v. A nil v, or one with no value set, is EMPTY.
func attrValue(v *commonpb.AnyValue) attribute.Value {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_BoolValue:
		return attribute.BoolValue(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return attribute.Int64Value(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return attribute.Float64Value(x.DoubleValue)
	case *commonpb.AnyValue_StringValue:
		return attribute.StringValue(x.StringValue)
	case *commonpb.AnyValue_BytesValue:
		return attribute.ByteSliceValue(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		return arrayAttrValue(x.ArrayValue.GetValues())
	case *commonpb.AnyValue_KvlistValue:
		return attribute.MapValue(attrs(x.KvlistValue.GetValues())...)
	default:
		return attribute.Value{}
	}
}

// arrayAttrValue decodes an array: a typed slice when it is not empty and all its
// elements have one scalar type (bool, int, double, string), SLICE otherwise.
func arrayAttrValue(vals []*commonpb.AnyValue) attribute.Value {
	switch scalarArrayType(vals) {
	case attribute.BOOL:
		return attribute.BoolSliceValue(mapValues(vals, (*commonpb.AnyValue).GetBoolValue))
	case attribute.INT64:
		return attribute.Int64SliceValue(mapValues(vals, (*commonpb.AnyValue).GetIntValue))
	case attribute.FLOAT64:
		return attribute.Float64SliceValue(mapValues(vals, (*commonpb.AnyValue).GetDoubleValue))
	case attribute.STRING:
		return attribute.StringSliceValue(mapValues(vals, (*commonpb.AnyValue).GetStringValue))
	}
	out := make([]attribute.Value, len(vals))
	for i, v := range vals {
		out[i] = attrValue(v)
	}
	return attribute.SliceValue(out...)
}

// scalarArrayType returns the scalar type shared by every element of vals, EMPTY
// when vals is empty or its elements are not all of one scalar type.
func scalarArrayType(vals []*commonpb.AnyValue) attribute.Type {
	t := attribute.EMPTY
	for i, v := range vals {
		var et attribute.Type
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_BoolValue:
			et = attribute.BOOL
		case *commonpb.AnyValue_IntValue:
			et = attribute.INT64
		case *commonpb.AnyValue_DoubleValue:
			et = attribute.FLOAT64
		case *commonpb.AnyValue_StringValue:
			et = attribute.STRING
		default:
			return attribute.EMPTY
		}
		if i == 0 {
			t = et
		} else if et != t {
			return attribute.EMPTY
		}
	}
	return t
}

// attrs returns the attribute form of kvs, nil when kvs is empty. Nil entries are skipped.
func attrs(kvs []*commonpb.KeyValue) []attribute.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]attribute.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		if kv == nil {
			continue
		}
		out = append(out, attribute.KeyValue{Key: attribute.Key(kv.Key), Value: attrValue(kv.Value)})
	}
	return out
}

// resourceFromProto is the reverse of resourceProto.
func resourceFromProto(r *resourcepb.Resource, schemaURL string) *resource.Resource {
	if r == nil {
		return nil
	}
	return resource.NewWithAttributes(schemaURL, attrs(r.Attributes)...)
}

// scopeFromProto is the reverse of scopeProto.
func scopeFromProto(s *commonpb.InstrumentationScope, schemaURL string) *instrumentation.Scope {
	if s == nil {
		return nil
	}
	return &instrumentation.Scope{
		Name:       s.Name,
		Version:    s.Version,
		SchemaURL:  schemaURL,
		Attributes: attribute.NewSet(attrs(s.Attributes)...),
	}
}

// mapValues returns conv of each element of s, in a new slice.
func mapValues[S, T any](s []S, conv func(S) T) []T {
	out := make([]T, len(s))
	for i, x := range s {
		out[i] = conv(x)
	}
	return out
}
