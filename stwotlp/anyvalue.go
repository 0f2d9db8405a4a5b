package stwotlp

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// This file maps OTel attribute values to OTLP AnyValue and back (docs/PROTOCOL.md,
// "Attribute values"). Every attribute.Value type has an AnyValue form; the only
// information OTLP cannot carry is whether an array came from a typed slice or from
// attribute.SliceValue, so decoding picks the typed slice when every element has the
// same scalar type and SLICE otherwise.

// arena hands out the OTLP messages of one request from chunks, so that encoding makes
// a few allocations per chunk instead of three per attribute value. A nil *arena
// allocates each message alone.
type arena struct {
	kvs   []commonpb.KeyValue
	vals  []commonpb.AnyValue
	strs  []commonpb.AnyValue_StringValue
	ints  []commonpb.AnyValue_IntValue
	chunk int
}

// grow returns the size of the next chunk: chunks double from 16 up to 256, so a small
// request wastes little and a large one allocates rarely.
func (a *arena) grow() int {
	switch {
	case a.chunk == 0:
		a.chunk = 16
	case a.chunk < 256:
		a.chunk *= 2
	}
	return a.chunk
}

func (a *arena) keyValue(key string, v *commonpb.AnyValue) *commonpb.KeyValue {
	if a == nil {
		return &commonpb.KeyValue{Key: key, Value: v}
	}
	if len(a.kvs) == 0 {
		a.kvs = make([]commonpb.KeyValue, a.grow())
	}
	p := &a.kvs[0]
	a.kvs = a.kvs[1:]
	p.Key, p.Value = key, v
	return p
}

func (a *arena) value() *commonpb.AnyValue {
	if a == nil {
		return &commonpb.AnyValue{}
	}
	if len(a.vals) == 0 {
		a.vals = make([]commonpb.AnyValue, a.grow())
	}
	p := &a.vals[0]
	a.vals = a.vals[1:]
	return p
}

func (a *arena) str(s string) *commonpb.AnyValue {
	v := a.value()
	if a == nil {
		v.Value = &commonpb.AnyValue_StringValue{StringValue: s}
		return v
	}
	if len(a.strs) == 0 {
		a.strs = make([]commonpb.AnyValue_StringValue, a.grow())
	}
	w := &a.strs[0]
	a.strs = a.strs[1:]
	w.StringValue = s
	v.Value = w
	return v
}

func (a *arena) int(n int64) *commonpb.AnyValue {
	v := a.value()
	if a == nil {
		v.Value = &commonpb.AnyValue_IntValue{IntValue: n}
		return v
	}
	if len(a.ints) == 0 {
		a.ints = make([]commonpb.AnyValue_IntValue, a.grow())
	}
	w := &a.ints[0]
	a.ints = a.ints[1:]
	w.IntValue = n
	v.Value = w
	return v
}

func (a *arena) bool(b bool) *commonpb.AnyValue {
	v := a.value()
	v.Value = &commonpb.AnyValue_BoolValue{BoolValue: b}
	return v
}

func (a *arena) double(f float64) *commonpb.AnyValue {
	v := a.value()
	v.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: f}
	return v
}

func (a *arena) array(vals []*commonpb.AnyValue) *commonpb.AnyValue {
	v := a.value()
	v.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}
	return v
}

func (a *arena) kvlist(kvs []*commonpb.KeyValue) *commonpb.AnyValue {
	v := a.value()
	v.Value = &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: kvs}}
	return v
}

// anyValue returns the OTLP form of v.
func (a *arena) anyValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return a.bool(v.AsBool())
	case attribute.INT64:
		return a.int(v.AsInt64())
	case attribute.FLOAT64:
		return a.double(v.AsFloat64())
	case attribute.STRING:
		return a.str(v.AsString())
	case attribute.BYTESLICE:
		av := a.value()
		av.Value = &commonpb.AnyValue_BytesValue{BytesValue: v.AsByteSlice()}
		return av
	case attribute.BOOLSLICE:
		return a.array(mapValues(v.AsBoolSlice(), a.bool))
	case attribute.INT64SLICE:
		return a.array(mapValues(v.AsInt64Slice(), a.int))
	case attribute.FLOAT64SLICE:
		return a.array(mapValues(v.AsFloat64Slice(), a.double))
	case attribute.STRINGSLICE:
		return a.array(mapValues(v.AsStringSlice(), a.str))
	case attribute.SLICE:
		return a.array(mapValues(v.AsSlice(), a.anyValue))
	case attribute.MAP:
		return a.kvlist(a.keyValues(v.AsMap()))
	default: // attribute.EMPTY
		return a.value()
	}
}

// keyValues returns the OTLP form of attrs, nil when attrs is empty.
func (a *arena) keyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(attrs) == 0 {
		return nil
	}
	kvs := make([]*commonpb.KeyValue, len(attrs))
	for i, kv := range attrs {
		kvs[i] = a.keyValue(string(kv.Key), a.anyValue(kv.Value))
	}
	return kvs
}

// Plain constructors, for messages made outside a request's arena.

func kv(key string, v *commonpb.AnyValue) *commonpb.KeyValue { return (*arena)(nil).keyValue(key, v) }
func anyValue(v attribute.Value) *commonpb.AnyValue          { return (*arena)(nil).anyValue(v) }
func keyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	return (*arena)(nil).keyValues(attrs)
}
func stringValue(s string) *commonpb.AnyValue                 { return (*arena)(nil).str(s) }
func intValue(n int64) *commonpb.AnyValue                     { return (*arena)(nil).int(n) }
func boolValue(b bool) *commonpb.AnyValue                     { return (*arena)(nil).bool(b) }
func arrayValue(vals []*commonpb.AnyValue) *commonpb.AnyValue { return (*arena)(nil).array(vals) }
func kvlistValue(kvs []*commonpb.KeyValue) *commonpb.AnyValue { return (*arena)(nil).kvlist(kvs) }

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
		s := make([]bool, len(vals))
		for i, v := range vals {
			s[i] = v.GetBoolValue()
		}
		return attribute.BoolSliceValue(s)
	case attribute.INT64:
		s := make([]int64, len(vals))
		for i, v := range vals {
			s[i] = v.GetIntValue()
		}
		return attribute.Int64SliceValue(s)
	case attribute.FLOAT64:
		s := make([]float64, len(vals))
		for i, v := range vals {
			s[i] = v.GetDoubleValue()
		}
		return attribute.Float64SliceValue(s)
	case attribute.STRING:
		s := make([]string, len(vals))
		for i, v := range vals {
			s[i] = v.GetStringValue()
		}
		return attribute.StringSliceValue(s)
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

// resourceProto returns the OTLP form of r and its schema URL; nil for a nil r.
func resourceProto(r *resource.Resource) (*resourcepb.Resource, string) {
	if r == nil {
		return nil, ""
	}
	return &resourcepb.Resource{Attributes: keyValues(r.Attributes())}, r.SchemaURL()
}

// resourceFromProto is the reverse of resourceProto.
func resourceFromProto(r *resourcepb.Resource, schemaURL string) *resource.Resource {
	if r == nil {
		return nil
	}
	return resource.NewWithAttributes(schemaURL, attrs(r.Attributes)...)
}

// scopeProto returns the OTLP form of s and its schema URL; nil for a nil s.
func scopeProto(s *instrumentation.Scope) (*commonpb.InstrumentationScope, string) {
	if s == nil {
		return nil, ""
	}
	return &commonpb.InstrumentationScope{
		Name:       s.Name,
		Version:    s.Version,
		Attributes: keyValues(s.Attributes.ToSlice()),
	}, s.SchemaURL
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

// groupKey identifies a resource and scope by content, so that events whose producers
// hold equal but distinct pointers still share one ResourceLogs/ScopeLogs.
type groupKey struct {
	hasResource bool
	resSchema   string
	resAttrs    attribute.Distinct
	hasScope    bool
	name        string
	version     string
	scopeSchema string
	scopeAttrs  attribute.Distinct
}

func makeGroupKey(r *resource.Resource, s *instrumentation.Scope) groupKey {
	k := groupKey{hasResource: r != nil, hasScope: s != nil}
	if r != nil {
		k.resSchema, k.resAttrs = r.SchemaURL(), r.Equivalent()
	}
	if s != nil {
		k.name, k.version, k.scopeSchema, k.scopeAttrs = s.Name, s.Version, s.SchemaURL, s.Attributes.Equivalent()
	}
	return k
}

// resourceKey is the resource part of a groupKey.
func (k groupKey) resourceKey() groupKey {
	return groupKey{hasResource: k.hasResource, resSchema: k.resSchema, resAttrs: k.resAttrs}
}

// grouper finds the resource group R and scope group S (ResourceLogs/ScopeLogs or
// ResourceSpans/ScopeSpans) of each item of a request, creating them on first use.
type grouper[R, S any] struct {
	resources map[groupKey]*R
	scopes    map[groupKey]*S
	lastRes   *resource.Resource
	lastScope *instrumentation.Scope
	last      *S
	newRes    func(*resource.Resource) *R         // creates a resource group in the request
	newScope  func(*R, *instrumentation.Scope) *S // creates a scope group in a resource group
}

func newGrouper[R, S any](newRes func(*resource.Resource) *R, newScope func(*R, *instrumentation.Scope) *S) grouper[R, S] {
	return grouper[R, S]{
		resources: make(map[groupKey]*R),
		scopes:    make(map[groupKey]*S),
		newRes:    newRes,
		newScope:  newScope,
	}
}

// group returns the scope group of an item with resource r and scope s. Items with
// equal resources and scopes share one group, whether or not their pointers are equal.
func (g *grouper[R, S]) group(r *resource.Resource, s *instrumentation.Scope) *S {
	if g.last != nil && r == g.lastRes && s == g.lastScope {
		return g.last
	}
	key := makeGroupKey(r, s)
	sg := g.scopes[key]
	if sg == nil {
		rg := g.resources[key.resourceKey()]
		if rg == nil {
			rg = g.newRes(r)
			g.resources[key.resourceKey()] = rg
		}
		sg = g.newScope(rg, s)
		g.scopes[key] = sg
	}
	g.last, g.lastRes, g.lastScope = sg, r, s
	return sg
}

// mapValues converts each element of a typed attribute slice to an AnyValue.
func mapValues[T any](s []T, conv func(T) *commonpb.AnyValue) []*commonpb.AnyValue {
	vals := make([]*commonpb.AnyValue, len(s))
	for i, x := range s {
		vals[i] = conv(x)
	}
	return vals
}
