package bridge

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/otel/attribute"
)

// packedAttrs holds the attributes of an open span in a compact private encoding, in
// one string: 64 bytes per attribute.KeyValue and a slice header become the bytes of
// its key and value and a few more. An open span is mostly waiting; its attributes are
// unpacked when it ends, or when an event changes them.
//
// The encoding: the count (uvarint), then each attribute as its key (uvarint length,
// bytes) and its value: a type byte (attribute.Type) and then, by type, nothing
// (EMPTY), one byte (BOOL), a zigzag varint (INT64), 8 bytes little-endian (FLOAT64),
// a string (STRING, BYTESLICE), or a count and that many elements (the slices; MAP
// elements are key and value). Unpacked strings are substrings of the packed one.
type packedAttrs string

// packAttrs packs kvs, appending to buf (scratch space, returned for reuse).
func packAttrs(buf []byte, kvs []attribute.KeyValue) (packedAttrs, []byte) {
	if len(kvs) == 0 {
		return "", buf
	}
	buf = binary.AppendUvarint(buf[:0], uint64(len(kvs)))
	for _, kv := range kvs {
		buf = appendKeyValue(buf, kv)
	}
	return packedAttrs(buf), buf
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendKeyValue(b []byte, kv attribute.KeyValue) []byte {
	return appendValue(appendString(b, string(kv.Key)), kv.Value)
}

func appendValue(b []byte, v attribute.Value) []byte {
	t := v.Type()
	b = append(b, byte(t))
	switch t {
	case attribute.BOOL:
		return append(b, boolByte(v.AsBool()))
	case attribute.INT64:
		return binary.AppendVarint(b, v.AsInt64())
	case attribute.FLOAT64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		return appendString(b, v.AsString())
	case attribute.BYTESLICE:
		return appendString(b, string(v.AsByteSlice()))
	case attribute.BOOLSLICE:
		return appendSlice(b, v.AsBoolSlice(), func(b []byte, x bool) []byte { return append(b, boolByte(x)) })
	case attribute.INT64SLICE:
		return appendSlice(b, v.AsInt64Slice(), binary.AppendVarint)
	case attribute.FLOAT64SLICE:
		return appendSlice(b, v.AsFloat64Slice(), func(b []byte, x float64) []byte {
			return binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		})
	case attribute.STRINGSLICE:
		return appendSlice(b, v.AsStringSlice(), appendString)
	case attribute.SLICE:
		return appendSlice(b, v.AsSlice(), appendValue)
	case attribute.MAP:
		return appendSlice(b, v.AsMap(), appendKeyValue)
	}
	return b // EMPTY: the type says it all
}

func appendSlice[T any](b []byte, xs []T, add func([]byte, T) []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(xs)))
	for _, x := range xs {
		b = add(b, x)
	}
	return b
}

func boolByte(x bool) byte {
	if x {
		return 1
	}
	return 0
}

// unpack returns the attributes, in a new slice with room for extra more.
func (p packedAttrs) unpack(extra int) []attribute.KeyValue {
	if p == "" && extra == 0 {
		return nil
	}
	return p.appendTo(nil, extra)
}

// appendTo appends the attributes to dst, with room for extra more.
func (p packedAttrs) appendTo(dst []attribute.KeyValue, extra int) []attribute.KeyValue {
	if p == "" {
		return growKeyValues(dst, extra)
	}
	u := unpacker{p: string(p)}
	n := int(u.uvarint())
	dst = growKeyValues(dst, n+extra)
	for range n {
		dst = append(dst, u.keyValue())
	}
	return dst
}

func growKeyValues(kvs []attribute.KeyValue, n int) []attribute.KeyValue {
	if cap(kvs)-len(kvs) >= n {
		return kvs
	}
	grown := make([]attribute.KeyValue, len(kvs), len(kvs)+n)
	copy(grown, kvs)
	return grown
}

// unpacker reads a packedAttrs from its start. The packed form is the assembler's own
// (packAttrs), so it is never malformed.
type unpacker struct {
	p string
	i int
}

func (u *unpacker) uvarint() uint64 {
	var x uint64
	for shift := 0; ; shift += 7 {
		c := u.p[u.i]
		u.i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
}

func (u *unpacker) varint() int64 {
	x := u.uvarint()
	return int64(x>>1) ^ -int64(x&1) // zigzag, as binary.AppendVarint
}

func (u *unpacker) byte() byte {
	c := u.p[u.i]
	u.i++
	return c
}

func (u *unpacker) float() float64 {
	var x uint64
	for i := range 8 {
		x |= uint64(u.p[u.i+i]) << (8 * i)
	}
	u.i += 8
	return math.Float64frombits(x) // as binary.LittleEndian
}

func (u *unpacker) string() string {
	n := int(u.uvarint())
	s := u.p[u.i : u.i+n]
	u.i += n
	return s
}

func (u *unpacker) keyValue() attribute.KeyValue {
	k := attribute.Key(u.string())
	return attribute.KeyValue{Key: k, Value: u.value()}
}

func (u *unpacker) value() attribute.Value {
	switch attribute.Type(u.byte()) {
	case attribute.BOOL:
		return attribute.BoolValue(u.byte() != 0)
	case attribute.INT64:
		return attribute.Int64Value(u.varint())
	case attribute.FLOAT64:
		return attribute.Float64Value(u.float())
	case attribute.STRING:
		return attribute.StringValue(u.string())
	case attribute.BYTESLICE:
		return attribute.ByteSliceValue([]byte(u.string()))
	case attribute.BOOLSLICE:
		return attribute.BoolSliceValue(unpackSlice(u, func() bool { return u.byte() != 0 }))
	case attribute.INT64SLICE:
		return attribute.Int64SliceValue(unpackSlice(u, u.varint))
	case attribute.FLOAT64SLICE:
		return attribute.Float64SliceValue(unpackSlice(u, u.float))
	case attribute.STRINGSLICE:
		return attribute.StringSliceValue(unpackSlice(u, u.string))
	case attribute.SLICE:
		return attribute.SliceValue(unpackSlice(u, u.value)...)
	case attribute.MAP:
		return attribute.MapValue(unpackSlice(u, u.keyValue)...)
	}
	return attribute.Value{}
}

func unpackSlice[T any](u *unpacker, next func() T) []T {
	xs := make([]T, u.uvarint())
	for i := range xs {
		xs[i] = next()
	}
	return xs
}
