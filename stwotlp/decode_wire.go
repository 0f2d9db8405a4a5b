package stwotlp

import (
	"math"
	"slices"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/stwbridge/stwbridge/bridge"
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

// sharedArenaChunk is the size of the buffers that hold the strings of the records
// that end a span (see fastDecoder.ownStrings).
const sharedArenaChunk = 16 << 10

// fastDecoder decodes one request at a time. Each record's fields are parsed into
// reusable generated messages (rec and the pools below), which decodeRecord reads as
// it reads a fully unmarshaled record; only scalar values take this path, so nothing
// the decoded event keeps points into them. Their string values point into the
// request while the record is parsed, then into a copy (ownStrings).
type fastDecoder struct {
	rec    logspb.LogRecord
	body   commonpb.AnyValue
	bodyKV commonpb.AnyValue_KvlistValue
	bodyKL commonpb.KeyValueList

	kvs     []*commonpb.KeyValue
	attrs   []*commonpb.KeyValue // what rec.Attributes is
	bodyKVs []*commonpb.KeyValue // what bodyKL.Values is
	vals    []*commonpb.AnyValue
	strs    []*commonpb.AnyValue_StringValue
	bools   []*commonpb.AnyValue_BoolValue
	ints    []*commonpb.AnyValue_IntValue
	doubles []*commonpb.AnyValue_DoubleValue

	nkv, nval, nstr, nbool, nint, ndouble int
	// copyStr[i] says that strs[i] is kept by the event and must be copied out of the
	// request; copyBytes is their total size.
	copyStr   []bool
	copyBytes int
	// recs holds the request's records, in order, for the groups of decode (which
	// refer to them by index): kept from request to request.
	recs [][]byte
	// shared holds the strings of records that end a span, one chunk for many
	// records: such events are held only until their span is emitted.
	shared []byte

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
	d := &fastDecoder{resources: make(map[string]cachedResource), scopes: make(map[string]cachedScope)}
	d.bodyKV.KvlistValue = &d.bodyKL
	return d
}

// reset drops what the last record left, so the pooled decoder keeps nothing of a
// request (above all no string aliasing its bytes) beyond its caches.
func (d *fastDecoder) reset() {
	d.resetRecord()
	clear(d.recs)
	d.recs = d.recs[:0]
}

func (d *fastDecoder) resetRecord() {
	for _, kv := range d.kvs[:d.nkv] {
		kv.Key, kv.Value = "", nil
	}
	for _, s := range d.strs[:d.nstr] {
		s.StringValue = ""
	}
	for _, v := range d.vals[:d.nval] {
		v.Value = nil
	}
	d.nkv, d.nval, d.nstr, d.nbool, d.nint, d.ndouble = 0, 0, 0, 0, 0, 0
	d.copyBytes = 0
	d.rec.TimeUnixNano, d.rec.ObservedTimeUnixNano = 0, 0
	d.rec.SeverityNumber, d.rec.SeverityText = 0, ""
	d.rec.Body, d.rec.Attributes, d.rec.DroppedAttributesCount = nil, nil, 0
	d.rec.Flags, d.rec.TraceId, d.rec.SpanId, d.rec.EventName = 0, nil, nil, ""
	d.body.Value = nil
	d.bodyKL.Values = nil
	clear(d.attrs)
	clear(d.bodyKVs)
	d.attrs, d.bodyKVs = d.attrs[:0], d.bodyKVs[:0]
}

func (d *fastDecoder) newKV() *commonpb.KeyValue {
	if d.nkv == len(d.kvs) {
		d.kvs = append(d.kvs, &commonpb.KeyValue{})
	}
	kv := d.kvs[d.nkv]
	d.nkv++
	return kv
}

func (d *fastDecoder) newValue() *commonpb.AnyValue {
	if d.nval == len(d.vals) {
		d.vals = append(d.vals, &commonpb.AnyValue{})
	}
	v := d.vals[d.nval]
	d.nval++
	return v
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

// field reads one tag and its value's extent: for bytes fields v is the payload, for
// varint and fixed fields x is the value. ok is false on anything malformed.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, v []byte, x uint64, rest []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num > protowire.MaxValidNumber {
		return 0, 0, nil, 0, nil, false
	}
	b = b[n:]
	switch typ {
	case protowire.VarintType:
		x, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		x, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var y uint32
		y, n = protowire.ConsumeFixed32(b)
		x = uint64(y)
	case protowire.BytesType:
		v, n = protowire.ConsumeBytes(b)
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
				d.resetRecord()
				rec := &d.rec
				if d.parseRecord(rb) {
					d.ownStrings()
				} else {
					rec = &logspb.LogRecord{}
					if proto.Unmarshal(rb, rec) != nil {
						return out, false
					}
				}
				if !isSTW(rec.EventName) {
					return out, false
				}
				e, err := decodeRecord(rec)
				if err != nil {
					out.Rejected = append(out.Rejected, &RecordError{ri, si, i, rec.EventName, err})
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

// ownStrings copies the string values of the record just parsed out of the request,
// so that the events never share the caller's memory. The strings of a record that
// ends a span (stw.span, stw.span_end) go into a chunk shared with other such
// records: a receiver holds these events only until the span is emitted. Those of
// the other records, which may stay open for hours, get an allocation of their own,
// so that a long-lived span keeps only its own strings alive.
func (d *fastDecoder) ownStrings() {
	if d.copyBytes == 0 {
		return
	}
	var buf []byte
	if name := d.rec.EventName; name == EventSpan || name == EventSpanEnd {
		if cap(d.shared)-len(d.shared) < d.copyBytes {
			d.shared = make([]byte, 0, max(sharedArenaChunk, d.copyBytes))
		}
		n := len(d.shared)
		d.shared = d.shared[:n+d.copyBytes]
		buf = d.shared[n:]
	} else {
		buf = make([]byte, d.copyBytes)
	}
	for i, s := range d.strs[:d.nstr] {
		if !d.copyStr[i] || s.StringValue == "" {
			continue
		}
		n := copy(buf, s.StringValue)
		s.StringValue = unsafe.String(&buf[0], n)
		buf = buf[n:]
	}
}

// parseRecord parses a LogRecord into d.rec; false means it needs the generic path.
func (d *fastDecoder) parseRecord(b []byte) bool {
	bodySeen := false
	for len(b) > 0 {
		num, typ, v, x, rest, ok := nextField(b)
		if !ok {
			return false
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			d.rec.TimeUnixNano = x
		case num == 11 && typ == protowire.Fixed64Type:
			d.rec.ObservedTimeUnixNano = x
		case num == 2 && typ == protowire.VarintType:
			d.rec.SeverityNumber = logspb.SeverityNumber(int32(x))
		case num == 3 && typ == protowire.BytesType:
			if !utf8.Valid(v) {
				return false
			}
			d.rec.SeverityText = d.str(v)
		case num == 5 && typ == protowire.BytesType:
			if bodySeen || !d.parseBody(v) {
				return false
			}
			bodySeen = true
		case num == 6 && typ == protowire.BytesType:
			kv, ok := d.parseKeyValue(v, true)
			if !ok {
				return false
			}
			d.attrs = append(d.attrs, kv)
		case num == 7 && typ == protowire.VarintType:
			d.rec.DroppedAttributesCount = uint32(x)
		case num == 8 && typ == protowire.Fixed32Type:
			d.rec.Flags = uint32(x)
		case num == 9 && typ == protowire.BytesType:
			d.rec.TraceId = v
		case num == 10 && typ == protowire.BytesType:
			d.rec.SpanId = v
		case num == 12 && typ == protowire.BytesType:
			if !utf8.Valid(v) {
				return false
			}
			d.rec.EventName = d.str(v)
		default:
			return false
		}
	}
	if len(d.attrs) > 0 {
		d.rec.Attributes = d.attrs
	}
	return true
}

// parseBody parses a record's body: empty, a scalar, or a kvlist of scalars.
func (d *fastDecoder) parseBody(b []byte) bool {
	d.rec.Body = &d.body
	if len(b) == 0 {
		return true
	}
	num, typ, v, _, rest, ok := nextField(b)
	if !ok || len(rest) != 0 {
		return false
	}
	if num != 6 || typ != protowire.BytesType {
		return d.parseScalar(&d.body, b, false)
	}
	for len(v) > 0 {
		num, typ, kvb, _, rest, ok := nextField(v)
		if !ok || num != 1 || typ != protowire.BytesType {
			return false
		}
		kv, ok := d.parseKeyValue(kvb, false)
		if !ok {
			return false
		}
		d.bodyKVs = append(d.bodyKVs, kv)
		v = rest
	}
	if len(d.bodyKVs) > 0 {
		d.bodyKL.Values = d.bodyKVs
	}
	d.body.Value = &d.bodyKV
	return true
}

// parseKeyValue parses a KeyValue whose value is absent or a scalar. record says it
// is a record attribute: the values of stw.stream_id and stw.parent_span_id, which
// decodeRecord only reads into ids, then alias data rather than being copied.
func (d *fastDecoder) parseKeyValue(b []byte, record bool) (*commonpb.KeyValue, bool) {
	var key, value []byte
	valueSeen := false
	for len(b) > 0 {
		num, typ, v, _, rest, ok := nextField(b)
		if !ok || typ != protowire.BytesType {
			return nil, false
		}
		switch num {
		case 1:
			// Every occurrence must be valid UTF-8, as proto.Unmarshal checks each,
			// though the last one wins.
			if !utf8.Valid(v) {
				return nil, false
			}
			key = v
		case 2:
			if valueSeen {
				return nil, false
			}
			value, valueSeen = v, true
		default:
			return nil, false
		}
		b = rest
	}
	kv := d.newKV()
	kv.Key = d.str(key)
	if valueSeen {
		val := d.newValue()
		transient := record && (kv.Key == AttrStreamID || kv.Key == AttrParentSpanID)
		if !d.parseScalar(val, value, transient) {
			return nil, false
		}
		kv.Value = val
	}
	return kv, true
}

// parseScalar parses an AnyValue of at most one field holding a string, bool, int or
// double into val. Its string aliases b: ownStrings copies it unless it is transient
// (read by decodeRecord, not kept in the event).
func (d *fastDecoder) parseScalar(val *commonpb.AnyValue, b []byte, transient bool) bool {
	if len(b) == 0 {
		return true
	}
	num, typ, v, x, rest, ok := nextField(b)
	if !ok || len(rest) != 0 {
		return false
	}
	switch {
	case num == 1 && typ == protowire.BytesType:
		if !utf8.Valid(v) {
			return false
		}
		if d.nstr == len(d.strs) {
			d.strs = append(d.strs, &commonpb.AnyValue_StringValue{})
			d.copyStr = append(d.copyStr, false)
		}
		s := d.strs[d.nstr]
		d.copyStr[d.nstr] = !transient
		d.nstr++
		if len(v) > 0 {
			s.StringValue = unsafe.String(&v[0], len(v))
			if !transient {
				d.copyBytes += len(v)
			}
		}
		val.Value = s
	case num == 2 && typ == protowire.VarintType:
		if d.nbool == len(d.bools) {
			d.bools = append(d.bools, &commonpb.AnyValue_BoolValue{})
		}
		s := d.bools[d.nbool]
		d.nbool++
		s.BoolValue = x != 0
		val.Value = s
	case num == 3 && typ == protowire.VarintType:
		if d.nint == len(d.ints) {
			d.ints = append(d.ints, &commonpb.AnyValue_IntValue{})
		}
		s := d.ints[d.nint]
		d.nint++
		s.IntValue = int64(x)
		val.Value = s
	case num == 4 && typ == protowire.Fixed64Type:
		if d.ndouble == len(d.doubles) {
			d.doubles = append(d.doubles, &commonpb.AnyValue_DoubleValue{})
		}
		s := d.doubles[d.ndouble]
		d.ndouble++
		s.DoubleValue = math.Float64frombits(x)
		val.Value = s
	default:
		return false
	}
	return true
}
