package stwotlp

import (
	"math"
	"slices"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/encoding/protowire"
)

// appendSpanWire appends s as field 2 (spans) of a ScopeSpans.
func appendSpanWire(b []byte, s *bridge.Span) []byte {
	b, m := beginMsg(b, 2)
	b = appendBytesField(b, 1, s.TraceID[:])
	b = appendBytesField(b, 2, s.SpanID[:])
	b = appendString(b, 3, s.TraceState.String())
	if s.Parent.IsValid() {
		b = appendBytesField(b, 4, s.Parent[:])
	}
	b = appendString(b, 5, s.Name)
	if k := int32(s.SpanKind); k != 0 {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(k)))
	}
	b = appendFixed64(b, 7, unixNano(s.Start))
	b = appendFixed64(b, 8, unixNano(s.End))
	b = appendKeyValues(b, 9, s.Attributes)
	if s.Unfinished && !slices.ContainsFunc(s.Attributes, isUnfinishedAttr) {
		b = appendKeyValue(b, 9, AttrUnfinished, attribute.BoolValue(true))
	}
	b = appendUint32(b, 10, clampUint32(s.DroppedAttributes))
	for i := range s.Events {
		ev := &s.Events[i]
		var e int
		b, e = beginMsg(b, 11)
		b = appendFixed64(b, 1, unixNano(ev.Time))
		b = appendString(b, 2, ev.Name)
		b = appendKeyValues(b, 3, ev.Attributes)
		b = appendUint32(b, 4, clampUint32(ev.DroppedAttributeCount))
		b = endMsg(b, e)
	}
	b = appendUint32(b, 12, clampUint32(s.DroppedEvents))
	for i := range s.Links {
		l := &s.Links[i]
		sc := l.SpanContext
		tid, sid := sc.TraceID(), sc.SpanID()
		var e int
		b, e = beginMsg(b, 13)
		b = appendBytesField(b, 1, tid[:])
		b = appendBytesField(b, 2, sid[:])
		b = appendString(b, 3, sc.TraceState().String())
		b = appendKeyValues(b, 4, l.Attributes)
		b = appendUint32(b, 5, clampUint32(l.DroppedAttributeCount))
		if f := spanFlags(sc.TraceFlags(), sc.IsRemote()); f != 0 {
			b = protowire.AppendTag(b, 6, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, f)
		}
		b = endMsg(b, e)
	}
	b = appendUint32(b, 14, clampUint32(s.DroppedLinks))
	var st int
	b, st = beginMsg(b, 15)
	b = appendString(b, 2, s.Status.Description)
	code := statusCodeWire(s.Status.Code)
	if s.Unfinished {
		code = 2
	}
	if code != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(code))
	}
	b = endMsg(b, st)
	if f := spanFlags(s.TraceFlags, s.RemoteParent); f != 0 {
		b = protowire.AppendTag(b, 16, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, f)
	}
	return endMsg(b, m)
}

// beginMsg appends the tag of a length-delimited field and one byte reserved for its
// length; endMsg, given the returned mark, writes the length (widening it if needed).
func beginMsg(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return append(b, 0), len(b)
}

func endMsg(b []byte, mark int) []byte {
	n := len(b) - mark - 1
	size := protowire.SizeVarint(uint64(n))
	if size == 1 {
		b[mark] = byte(n)
		return b
	}
	b = slices.Grow(b, size-1)[:len(b)+size-1]
	copy(b[mark+size:], b[mark+1:len(b)-size+1])
	protowire.AppendVarint(b[mark:mark], uint64(n))
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	return appendRawString(b, num, validUTF8(s))
}

// appendRawString is appendString for a string known to be valid UTF-8.
func appendRawString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendUint32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendKeyValues appends attrs as repeated KeyValue field num.
func appendKeyValues(b []byte, num protowire.Number, attrs []attribute.KeyValue) []byte {
	for _, kv := range attrs {
		b = appendKeyValue(b, num, string(kv.Key), kv.Value)
	}
	return b
}

func appendKeyValue(b []byte, num protowire.Number, key string, v attribute.Value) []byte {
	b, m := beginMsg(b, num)
	b = appendString(b, 1, key)
	b = appendAnyValue(b, 2, v)
	return endMsg(b, m)
}

// appendAnyValue appends v as AnyValue field num, in the form docs/PROTOCOL.md gives
// for its type.
func appendAnyValue(b []byte, num protowire.Number, v attribute.Value) []byte {
	b, m := beginMsg(b, num)
	switch v.Type() {
	case attribute.BOOL:
		b = appendBoolValue(b, v.AsBool())
	case attribute.INT64:
		b = appendIntValue(b, v.AsInt64())
	case attribute.FLOAT64:
		b = appendDoubleValue(b, v.AsFloat64())
	case attribute.STRING:
		b = appendStringValue(b, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE:
		b = appendArrayValue(b, v.AsBoolSlice(), appendBoolValue)
	case attribute.INT64SLICE:
		b = appendArrayValue(b, v.AsInt64Slice(), appendIntValue)
	case attribute.FLOAT64SLICE:
		b = appendArrayValue(b, v.AsFloat64Slice(), appendDoubleValue)
	case attribute.STRINGSLICE:
		b = appendArrayValue(b, v.AsStringSlice(), appendStringValue)
	case attribute.SLICE:
		var a int
		b, a = beginMsg(b, 5)
		for _, x := range v.AsSlice() {
			b = appendAnyValue(b, 1, x)
		}
		b = endMsg(b, a)
	case attribute.MAP:
		var l int
		b, l = beginMsg(b, 6)
		b = appendKeyValues(b, 1, v.AsMap())
		b = endMsg(b, l)
	}
	return endMsg(b, m)
}

func appendBoolValue(b []byte, x bool) []byte {
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeBool(x))
}

func appendIntValue(b []byte, x int64) []byte {
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(x))
}

func appendDoubleValue(b []byte, x float64) []byte {
	b = protowire.AppendTag(b, 4, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(x))
}

func appendStringValue(b []byte, x string) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendString(b, validUTF8(x))
}

// appendArrayValue appends AnyValue.array_value (field 5) holding one AnyValue per
// element of a typed attribute slice, each written by appendElem.
func appendArrayValue[T any](b []byte, xs []T, appendElem func([]byte, T) []byte) []byte {
	b, a := beginMsg(b, 5)
	for _, x := range xs {
		var e int
		b, e = beginMsg(b, 1)
		b = endMsg(appendElem(b, x), e)
	}
	return endMsg(b, a)
}
