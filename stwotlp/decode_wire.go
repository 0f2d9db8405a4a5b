package stwotlp

import (
	"math/bits"
	"slices"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// DecodeEvents decodes the STW lifecycle records of a serialized
// ExportLogsServiceRequest; err is proto.Unmarshal's error for a malformed request. A
// bad record is rejected alone; the good records beside it are kept. Records with an
// event_name outside the stw.* namespace (or none) are returned in Other, untouched.
// Events of one ResourceLogs share one *resource.Resource, events of one ScopeLogs one
// *instrumentation.Scope.
//
// It reads the common shape of STW traffic (stw.* records with scalar attributes)
// straight from the wire, and anything else through proto.Unmarshal and
// DecodeEventsRequest; both read each record with the same decodeRecord.
func DecodeEvents(data []byte) (DecodedLogs, error) { return DecodeEventsInto(nil, data) }

// DecodeEventsInto is DecodeEvents with the events appended to events[:0] when they fit
// there, so that a caller done with the events of one request (a bridge.Pipeline
// copies those it takes) reuses their room for the next.
func DecodeEventsInto(events []bridge.Event, data []byte) (DecodedLogs, error) {
	d := decoderPool.Get().(*fastDecoder)
	out, ok := d.decode(events, data)
	d.reset()
	decoderPool.Put(d)
	if ok {
		return out, nil
	}
	req := &collogspb.ExportLogsServiceRequest{}
	if err := proto.Unmarshal(data, req); err != nil {
		return DecodedLogs{}, err
	}
	return DecodeEventsRequest(req), nil
}

var decoderPool = sync.Pool{New: func() any { return newFastDecoder() }}

// A decoder's string cache: attribute keys and event names repeat across records
// (http.request.method, stw.sequence), so each is allocated once. It is direct-mapped:
// a string evicts the one in its slot.
const (
	internSlots  = 1024
	internMaxLen = 64
	// groupCacheMax bounds the resources and scopes a decoder remembers, by wire bytes.
	groupCacheMax = 64
)

// The sizes of the chunks that hold the strings, attributes and bodies of the
// records that end a span (see fastDecoder.ownStrings).
const (
	sharedArenaChunk = 16 << 10
	sharedAttrChunk  = 256
	sharedPartsChunk = 64
)

// keyValue is an attribute of a body read from the wire.
type keyValue struct {
	key string
	val value
}

// fastDecoder decodes one request at a time. Each record is parsed straight into a
// flatRecord (rec), which decodeRecord reads as it reads one filled from a fully
// unmarshaled record; only scalar values take this path, so nothing the decoded event
// keeps points into rec. Its string values point into the request while the record
// is parsed, then into a copy (ownStrings).
type fastDecoder struct {
	rec flatRecord
	// bodyKVs is the kvlist of rec's body as parsed: its keys interned, its string
	// values aliasing the request until ownStrings copies them.
	bodyKVs []keyValue
	// recs holds the request's records, in order, for the groups of decode (which
	// refer to them by index): kept from request to request.
	recs [][]byte
	// shared, sharedAttrs and sharedParts hold the strings, attributes and bodies
	// of records that end a span, one chunk for many records: such events are held
	// only until their span is emitted.
	shared      []byte
	sharedAttrs []attribute.KeyValue
	sharedParts []completeSpanParts

	intern [internSlots]string
	// Resources and scopes decoded before, by wire bytes: events of every request
	// from one producer share one pointer (and so one group downstream).
	resources map[string]cachedResource
	scopes    map[string]cachedScope
}

type cachedResource struct {
	schema string
	res    *resource.Resource
}

type cachedScope struct {
	schema string
	scope  *instrumentation.Scope
}

func newFastDecoder() *fastDecoder {
	return &fastDecoder{resources: make(map[string]cachedResource), scopes: make(map[string]cachedScope)}
}

// reset drops what the last request left, so the pooled decoder keeps nothing of it
// (above all no string aliasing its bytes) beyond its caches.
func (d *fastDecoder) reset() {
	d.rec.reset()
	clear(d.rec.fields.vals[:])
	clear(d.bodyKVs[:cap(d.bodyKVs)])
	d.bodyKVs = d.bodyKVs[:0]
	clear(d.recs)
	d.recs = d.recs[:0]
}

// str is b as a string, shared with earlier equal strings when short.
func (d *fastDecoder) str(b []byte) string {
	n := len(b)
	if n == 0 || n > internMaxLen {
		return string(b)
	}
	h := uint(n)*0x9e37 ^ uint(b[0])*0x85eb ^ uint(b[n-1])*0xc2b2 ^ uint(b[n/2])*0x27d4 ^ uint(b[n*3/4])*0x1656
	slot := &d.intern[(h^h>>10)%internSlots]
	if *slot == string(b) {
		return *slot
	}
	*slot = string(b)
	return *slot
}

// nextField reads one tag and its value's extent: for bytes fields v is the payload,
// for varint and fixed fields x is the value. ok is false on anything malformed. Tags,
// lengths and varints of one byte, the common case, are read inline.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, v []byte, x uint64, rest []byte, ok bool) {
	var tag uint64
	if len(b) > 0 && b[0] < 0x80 {
		tag, b = uint64(b[0]), b[1:]
	} else {
		t, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, 0, nil, 0, nil, false
		}
		tag, b = t, b[n:]
	}
	if tag>>3 < uint64(protowire.MinValidNumber) || tag>>3 > uint64(protowire.MaxValidNumber) {
		return 0, 0, nil, 0, nil, false
	}
	num, typ = protowire.Number(tag>>3), protowire.Type(tag&7)
	n := 0
	switch typ {
	case protowire.BytesType:
		if len(b) > 0 && b[0] < 0x80 {
			m := int(b[0])
			if len(b) <= m {
				return 0, 0, nil, 0, nil, false
			}
			return num, typ, b[1 : 1+m], 0, b[1+m:], true
		}
		v, n = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		if len(b) > 0 && b[0] < 0x80 {
			return num, typ, nil, uint64(b[0]), b[1:], true
		}
		x, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		x, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var y uint32
		y, n = protowire.ConsumeFixed32(b)
		x = uint64(y)
	default:
		return 0, 0, nil, 0, nil, false
	}
	if n < 0 {
		return 0, 0, nil, 0, nil, false
	}
	return num, typ, v, x, b[n:], true
}

// group is one ResourceLogs or ScopeLogs header: its message (resource or scope)
// bytes, whether it was present, and its schema URL.
type group struct {
	msg     []byte
	present bool
	schema  string
}

// decode decodes data, appending its events to events[:0]; ok is false when the
// request needs the generic path (it is malformed, carries non-STW records, unknown
// fields or repeated message fields).
func (d *fastDecoder) decode(events []bridge.Event, data []byte) (out DecodedLogs, ok bool) {
	var rls [][]byte
	for b := data; len(b) > 0; {
		num, typ, v, _, rest, ok := nextField(b)
		if !ok || num != 1 || typ != protowire.BytesType {
			return out, false
		}
		rls = append(rls, v)
		b = rest
	}
	// A first pass checks the request's skeleton and counts its records.
	type scopeLogs struct {
		hdr      group
		from, to int // its records: d.recs[from:to]
	}
	type resourceLogs struct {
		hdr    group
		scopes []scopeLogs
	}
	parsed := make([]resourceLogs, len(rls))
	for i, rl := range rls {
		p := &parsed[i]
		for b := rl; len(b) > 0; {
			num, typ, v, _, rest, ok := nextField(b)
			if !ok || typ != protowire.BytesType {
				return out, false
			}
			switch num {
			case 1:
				if p.hdr.present {
					return out, false
				}
				p.hdr.msg, p.hdr.present = v, true
			case 2:
				sl := scopeLogs{from: len(d.recs)}
				for c := v; len(c) > 0; {
					num, typ, v, _, rest, ok := nextField(c)
					if !ok || typ != protowire.BytesType {
						return out, false
					}
					switch num {
					case 1:
						if sl.hdr.present {
							return out, false
						}
						sl.hdr.msg, sl.hdr.present = v, true
					case 2:
						d.recs = append(d.recs, v)
					case 3:
						if !utf8.Valid(v) {
							return out, false
						}
						sl.hdr.schema = string(v)
					default:
						return out, false
					}
					c = rest
				}
				sl.to = len(d.recs)
				p.scopes = append(p.scopes, sl)
			case 3:
				if !utf8.Valid(v) {
					return out, false
				}
				p.hdr.schema = string(v)
			default:
				return out, false
			}
			b = rest
		}
	}
	if n := len(d.recs); n > 0 {
		out.Events = slices.Grow(events[:0], n)
	}
	for ri := range parsed {
		rl := &parsed[ri]
		// Headers are decoded even for groups without good records: proto.Unmarshal
		// validates them all, and the fast path must refuse what it refuses.
		res, ok := d.resource(rl.hdr)
		if !ok {
			return out, false
		}
		for si := range rl.scopes {
			sl := &rl.scopes[si]
			scope, ok := d.scope(sl.hdr)
			if !ok {
				return out, false
			}
			for i, rb := range d.recs[sl.from:sl.to] {
				rec := &d.rec
				if d.parseRecord(rb) {
					d.ownStrings()
				} else {
					pb := &logspb.LogRecord{}
					if proto.Unmarshal(rb, pb) != nil {
						return out, false
					}
					rec.fromProto(pb)
				}
				if !isSTW(rec.eventName) {
					return out, false
				}
				e, err := decodeRecord(rec)
				if err != nil {
					out.Rejected = append(out.Rejected, &RecordError{ri, si, i, rec.eventName, err})
					continue
				}
				e.Resource, e.Scope = res, scope
				out.Events = append(out.Events, e)
			}
		}
	}
	return out, true
}

// resource decodes a ResourceLogs' resource, or returns the one decoded before from
// the same bytes and schema URL.
func (d *fastDecoder) resource(g group) (*resource.Resource, bool) {
	if !g.present {
		return nil, true
	}
	if c, ok := d.resources[string(g.msg)]; ok && c.schema == g.schema {
		return c.res, true
	}
	r := &resourcepb.Resource{}
	if proto.Unmarshal(g.msg, r) != nil {
		return nil, false
	}
	res := resourceFromProto(r, g.schema)
	if len(d.resources) >= groupCacheMax {
		clear(d.resources)
	}
	d.resources[string(g.msg)] = cachedResource{g.schema, res}
	return res, true
}

// scope is resource's counterpart for a ScopeLogs' scope.
func (d *fastDecoder) scope(g group) (*instrumentation.Scope, bool) {
	if !g.present {
		return nil, true
	}
	if c, ok := d.scopes[string(g.msg)]; ok && c.schema == g.schema {
		return c.scope, true
	}
	s := &commonpb.InstrumentationScope{}
	if proto.Unmarshal(g.msg, s) != nil {
		return nil, false
	}
	scope := scopeFromProto(s, g.schema)
	if len(d.scopes) >= groupCacheMax {
		clear(d.scopes)
	}
	d.scopes[string(g.msg)] = cachedScope{g.schema, scope}
	return scope, true
}

// transientFields are the record fields decodeRecord only reads into ids: their
// strings may alias the request, as nothing keeps them.
const transientFields = 1<<fStreamID | 1<<fParent

// ownStrings copies the string values of the record just parsed out of the request,
// so that the events never share the caller's memory, and makes its body's
// attributes. The strings, attributes and bodies of a record that ends a span
// (stw.span, stw.span_end) go into chunks shared with other such records: a receiver
// holds these events only until the span is emitted. Those of the other records,
// which may stay open for hours, get allocations of their own, so that a long-lived
// span keeps only its own memory alive.
func (d *fastDecoder) ownStrings() {
	r := &d.rec
	kept := r.fields.set &^ transientFields
	size := len(r.body.s)
	for set := kept; set != 0; set &= set - 1 {
		size += len(r.fields.vals[bits.TrailingZeros64(set)].s)
	}
	for i := range d.bodyKVs {
		size += len(d.bodyKVs[i].val.s)
	}
	endsSpan := r.eventName == EventSpan || r.eventName == EventSpanEnd
	if r.eventName == EventSpan {
		if len(d.sharedParts) == 0 {
			d.sharedParts = make([]completeSpanParts, sharedPartsChunk)
		}
		r.spanParts, d.sharedParts = &d.sharedParts[0], d.sharedParts[1:]
	}
	if n := len(d.bodyKVs); n > 0 {
		r.bodyAttrs = d.attributes(n, endsSpan)
	}
	var buf []byte
	switch {
	case size == 0:
	case endsSpan:
		if cap(d.shared)-len(d.shared) < size {
			d.shared = make([]byte, 0, max(sharedArenaChunk, size))
		}
		n := len(d.shared)
		d.shared = d.shared[:n+size]
		buf = d.shared[n:]
	default:
		buf = make([]byte, size)
	}
	buf = own(&r.body.s, buf)
	for set := kept; set != 0; set &= set - 1 {
		buf = own(&r.fields.vals[bits.TrailingZeros64(set)].s, buf)
	}
	for i := range d.bodyKVs {
		kv := &d.bodyKVs[i]
		buf = own(&kv.val.s, buf)
		r.bodyAttrs[i] = attribute.KeyValue{Key: attribute.Key(kv.key), Value: kv.val.attr()}
	}
}

// attributes returns room for n attributes, in the shared chunk when shared.
func (d *fastDecoder) attributes(n int, shared bool) []attribute.KeyValue {
	if !shared {
		return make([]attribute.KeyValue, n)
	}
	if len(d.sharedAttrs) < n {
		d.sharedAttrs = make([]attribute.KeyValue, max(sharedAttrChunk, n))
	}
	a := d.sharedAttrs[:n:n]
	d.sharedAttrs = d.sharedAttrs[n:]
	return a
}

// own copies *s to the start of buf, points *s at the copy and returns the rest of buf.
func own(s *string, buf []byte) []byte {
	if *s == "" {
		return buf
	}
	n := copy(buf, *s)
	*s = unsafe.String(&buf[0], n)
	return buf[n:]
}

// parseRecord parses a LogRecord into d.rec; false means it needs the generic path.
func (d *fastDecoder) parseRecord(b []byte) bool {
	r := &d.rec
	r.reset()
	d.bodyKVs = d.bodyKVs[:0]
	bodySeen := false
	for len(b) > 0 {
		num, typ, v, x, rest, ok := nextField(b)
		if !ok {
			return false
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			r.timeUnixNano = x
		case num == 11 && typ == protowire.Fixed64Type:
			r.observedTimeUnixNano = x
		case num == 2 && typ == protowire.VarintType,
			num == 7 && typ == protowire.VarintType:
			// severity_number and dropped_attributes_count: decodeRecord reads neither.
		case num == 3 && typ == protowire.BytesType:
			if !utf8.Valid(v) {
				return false
			}
			r.severityText = d.str(v)
		case num == 5 && typ == protowire.BytesType:
			if bodySeen || !d.parseBody(v) {
				return false
			}
			bodySeen = true
		case num == 6 && typ == protowire.BytesType:
			if !d.parseAttribute(v) {
				return false
			}
		case num == 8 && typ == protowire.Fixed32Type:
			r.flags = uint32(x)
		case num == 9 && typ == protowire.BytesType:
			r.traceID = v
		case num == 10 && typ == protowire.BytesType:
			r.spanID = v
		case num == 12 && typ == protowire.BytesType:
			if !utf8.Valid(v) {
				return false
			}
			r.eventName = d.str(v)
		default:
			return false
		}
	}
	return true
}

// parseAttribute parses a record attribute whose value is absent or a scalar into
// the record's fields; attributes the protocol does not define are checked, then
// dropped.
func (d *fastDecoder) parseAttribute(b []byte) bool {
	key, val, ok := parseKeyValue(b)
	if !ok {
		return false
	}
	if f, known := fieldOf(unsafeString(key)); known {
		d.rec.fields.put(f, val)
	}
	return true
}

// parseBody parses a record's body: empty, a scalar, or a kvlist of scalars.
func (d *fastDecoder) parseBody(b []byte) bool {
	r := &d.rec
	if len(b) == 0 {
		r.body = value{kind: valueEmpty}
		return true
	}
	num, typ, v, _, rest, ok := nextField(b)
	if !ok || len(rest) != 0 {
		return false
	}
	if num != 6 || typ != protowire.BytesType {
		r.body, ok = parseScalar(b)
		return ok
	}
	for len(v) > 0 {
		num, typ, kvb, _, rest, ok := nextField(v)
		if !ok || num != 1 || typ != protowire.BytesType {
			return false
		}
		key, val, ok := parseKeyValue(kvb)
		if !ok {
			return false
		}
		d.bodyKVs = append(d.bodyKVs, keyValue{d.str(key), val})
		v = rest
	}
	r.body = value{kind: valueKvlist}
	return true
}

// parseKeyValue parses a KeyValue whose value is absent or a scalar. The key and a
// string value alias b.
func parseKeyValue(b []byte) (key []byte, val value, ok bool) {
	var raw []byte
	valueSeen := false
	for len(b) > 0 {
		num, typ, v, _, rest, ok := nextField(b)
		if !ok || typ != protowire.BytesType {
			return nil, value{}, false
		}
		switch num {
		case 1:
			// Every occurrence must be valid UTF-8, as proto.Unmarshal checks each,
			// though the last one wins.
			if !utf8.Valid(v) {
				return nil, value{}, false
			}
			key = v
		case 2:
			if valueSeen {
				return nil, value{}, false
			}
			raw, valueSeen = v, true
		default:
			return nil, value{}, false
		}
		b = rest
	}
	val, ok = parseScalar(raw)
	return key, val, ok
}

// parseScalar parses an AnyValue of at most one field holding a string, bool, int or
// double; empty (or absent) b is an empty value. A string aliases b.
func parseScalar(b []byte) (value, bool) {
	if len(b) == 0 {
		return value{kind: valueEmpty}, true
	}
	num, typ, v, x, rest, ok := nextField(b)
	if !ok || len(rest) != 0 {
		return value{}, false
	}
	switch {
	case num == 1 && typ == protowire.BytesType:
		if !utf8.Valid(v) {
			return value{}, false
		}
		return value{kind: valueString, s: unsafeString(v)}, true
	case num == 2 && typ == protowire.VarintType:
		if x != 0 {
			x = 1
		}
		return value{kind: valueBool, n: x}, true
	case num == 3 && typ == protowire.VarintType:
		return value{kind: valueInt, n: x}, true
	case num == 4 && typ == protowire.Fixed64Type:
		return value{kind: valueDouble, n: x}, true
	}
	return value{}, false
}

// unsafeString is b as a string sharing its bytes.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
