package bridge

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/otel/attribute"
)

// packedAttrs holds the attributes of an open span in a compact private encoding, in
// one string: 64 bytes per attribute.KeyValue and a slice header become the bytes of
// its value and a few more. An open span is mostly waiting; its attributes are
// unpacked when it ends, or when an event changes them.
//
// The encoding: the count (uvarint), then each attribute as its key and its value.
// A key is a uvarint: 2i+1 for the key numbered i in the packer's table, else 2n and
// the key's n bytes. A value is a type byte (attribute.Type) and then, by type,
// nothing (EMPTY), one byte (BOOL), a zigzag varint (INT64), 8 bytes little-endian
// (FLOAT64), a string (uvarint length, bytes: STRING, BYTESLICE), or a count and that
// many elements (the slices; MAP elements are key and value). Unpacked strings are
// substrings of the packed one, or keys of the table.
type packedAttrs string

// Bounds of a packer's key table: keys repeat from span to span (http.request.method,
// url.path), but a producer could send any number of distinct ones; those past the
// bounds are packed whole.
const (
	maxTableKeys   = 1 << 12
	maxTableKeyLen = 128
)

// packer packs and unpacks attributes. It numbers the keys it packs (up to
// maxTableKeys of up to maxTableKeyLen bytes), so that a packed key takes a byte or
// two; it never forgets one, as packed attributes refer to it.
type packer struct {
	buf   []byte // scratch space
	index map[attribute.Key]uint64
	keys  []attribute.Key
}

// pack packs kvs.
func (pk *packer) pack(kvs []attribute.KeyValue) packedAttrs {
	if len(kvs) == 0 {
		return ""
	}
	b := binary.AppendUvarint(pk.buf[:0], uint64(len(kvs)))
	for _, kv := range kvs {
		b = pk.appendKeyValue(b, kv)
	}
	pk.buf = b
	return packedAttrs(b)
}

func (pk *packer) appendKey(b []byte, k attribute.Key) []byte {
	i, ok := pk.index[k]
	if !ok && len(pk.keys) < maxTableKeys && len(k) <= maxTableKeyLen {
		if pk.index == nil {
			pk.index = make(map[attribute.Key]uint64)
		}
		i, ok = uint64(len(pk.keys)), true
		pk.index[k] = i
		pk.keys = append(pk.keys, k)
	}
	if ok {
		return binary.AppendUvarint(b, 2*i+1)
	}
	b = binary.AppendUvarint(b, 2*uint64(len(k)))
	return append(b, k...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (pk *packer) appendKeyValue(b []byte, kv attribute.KeyValue) []byte {
	return pk.appendValue(pk.appendKey(b, kv.Key), kv.Value)
}

func (pk *packer) appendValue(b []byte, v attribute.Value) []byte {
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
		return appendSlice(b, v.AsSlice(), pk.appendValue)
	case attribute.MAP:
		return appendSlice(b, v.AsMap(), pk.appendKeyValue)
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

// unpack returns the attributes p packs, in a new slice with room for extra more.
func (pk *packer) unpack(p packedAttrs, extra int) []attribute.KeyValue {
	if p == "" && extra == 0 {
		return nil
	}
	return pk.appendTo(nil, p, extra)
}

// appendTo appends the attributes p packs to dst, with room for extra more.
func (pk *packer) appendTo(dst []attribute.KeyValue, p packedAttrs, extra int) []attribute.KeyValue {
	if p == "" {
		return growKeyValues(dst, extra)
	}
	u := unpacker{p: string(p), keys: pk.keys}
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

// unpacker reads a packedAttrs from its start, with the keys of its packer. The
// packed form is the packer's own, so it is never malformed.
type unpacker struct {
	p    string
	i    int
	keys []attribute.Key
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

func (u *unpacker) key() attribute.Key {
	x := u.uvarint()
	if x&1 != 0 {
		return u.keys[x>>1]
	}
	n := int(x >> 1)
	k := u.p[u.i : u.i+n]
	u.i += n
	return attribute.Key(k)
}

func (u *unpacker) keyValue() attribute.KeyValue {
	k := u.key()
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
