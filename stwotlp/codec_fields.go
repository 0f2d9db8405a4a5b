package stwotlp

import (
	"encoding/hex"
	"fmt"
	"math"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// valueKind is the type of a value.
type valueKind uint8

const (
	valueAbsent valueKind = iota // not sent at all (a field without its attribute)
	valueEmpty                   // sent without a value (an empty AnyValue)
	valueString
	valueBool
	valueInt
	valueDouble
	valueBytes
	valueArray
	valueKvlist
)

// value is an attribute value as decodeRecord reads it: a scalar held here, or an
// array, kvlist or bytes value held as its AnyValue (from the generic path; a body
// kvlist is read beforehand, see flatRecord.bodyAttrs). Both decoding paths describe
// a record with values, so that one decodeRecord reads both.
type value struct {
	s    string // a string
	n    uint64 // a bool (0 or 1), an int, or a double's bits
	pb   *commonpb.AnyValue
	kind valueKind
}

// pbValue is v as a value: a nil v, or one with nothing set, is present and empty.
func pbValue(v *commonpb.AnyValue) value {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return value{kind: valueString, s: x.StringValue}
	case *commonpb.AnyValue_BoolValue:
		var n uint64
		if x.BoolValue {
			n = 1
		}
		return value{kind: valueBool, n: n}
	case *commonpb.AnyValue_IntValue:
		return value{kind: valueInt, n: uint64(x.IntValue)}
	case *commonpb.AnyValue_DoubleValue:
		return value{kind: valueDouble, n: math.Float64bits(x.DoubleValue)}
	case *commonpb.AnyValue_BytesValue:
		return value{kind: valueBytes, pb: v}
	case *commonpb.AnyValue_ArrayValue:
		return value{kind: valueArray, pb: v}
	case *commonpb.AnyValue_KvlistValue:
		return value{kind: valueKvlist, pb: v}
	default:
		return value{kind: valueEmpty}
	}
}

// optValue is pbValue(v), but absent when v is nil.
func optValue(v *commonpb.AnyValue) value {
	if v == nil {
		return value{}
	}
	return pbValue(v)
}

// attr is the attribute form of v (see attrValue).
func (v value) attr() attribute.Value {
	switch v.kind {
	case valueString:
		return attribute.StringValue(v.s)
	case valueBool:
		return attribute.BoolValue(v.n != 0)
	case valueInt:
		return attribute.Int64Value(int64(v.n))
	case valueDouble:
		return attribute.Float64Value(math.Float64frombits(v.n))
	case valueBytes, valueArray, valueKvlist:
		return attrValue(v.pb)
	default:
		return attribute.Value{}
	}
}

// fieldReader reads typed fields out of values. It keeps the first problem it meets
// and returns zero values after it, so that a decoder reads every field in a row and
// checks err once.
type fieldReader struct{ err error }

func (r *fieldReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *fieldReader) wrongType(key, want string, v value) {
	r.fail(fmt.Errorf("%s must be %s, not %s", key, want, valueTypeName(v)))
}

// valueTypeName names the type a value holds, for errors.
func valueTypeName(v value) string {
	switch v.kind {
	case valueString:
		return "a string"
	case valueBool:
		return "a bool"
	case valueInt:
		return "an int"
	case valueDouble:
		return "a double"
	case valueBytes:
		return "bytes"
	case valueArray:
		return "an array"
	case valueKvlist:
		return "a kvlist"
	default:
		return "empty"
	}
}

// str reads a string field; absent is "".
func (r *fieldReader) str(key string, v value) string {
	if v.kind == valueAbsent {
		return ""
	}
	if v.kind != valueString {
		r.wrongType(key, "a string", v)
		return ""
	}
	return v.s
}

// int reads an int field; absent is 0.
func (r *fieldReader) int(key string, v value) int64 {
	if v.kind == valueAbsent {
		return 0
	}
	if v.kind != valueInt {
		r.wrongType(key, "an int", v)
		return 0
	}
	return int64(v.n)
}

// count reads an int field that may not be negative; absent is 0.
func (r *fieldReader) count(key string, v value) int {
	n := r.int(key, v)
	if n < 0 {
		r.fail(fmt.Errorf("%s is %d, want 0 or more", key, n))
		return 0
	}
	return int(n)
}

// boolean reads a bool field; absent is false.
func (r *fieldReader) boolean(key string, v value) bool {
	if v.kind == valueAbsent {
		return false
	}
	if v.kind != valueBool {
		r.wrongType(key, "a bool", v)
		return false
	}
	return v.n != 0
}

// kvlist reads a kvlist field of the generic path; absent is nil.
func (r *fieldReader) kvlist(key string, v value) []*commonpb.KeyValue {
	if v.kind == valueAbsent {
		return nil
	}
	if v.kind != valueKvlist {
		r.wrongType(key, "a kvlist", v)
		return nil
	}
	return v.pb.GetKvlistValue().GetValues()
}

// array reads an array field; absent is nil.
func (r *fieldReader) array(key string, v value) []*commonpb.AnyValue {
	if v.kind == valueAbsent {
		return nil
	}
	if v.kind != valueArray {
		r.wrongType(key, "an array", v)
		return nil
	}
	return v.pb.GetArrayValue().GetValues()
}

// strings reads an array of strings; absent is nil.
func (r *fieldReader) strings(key string, v value) []string {
	arr := r.array(key, v)
	if len(arr) == 0 {
		return nil
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		x, ok := e.GetValue().(*commonpb.AnyValue_StringValue)
		if !ok {
			r.fail(fmt.Errorf("%s[%d] must be a string, not %s", key, i, valueTypeName(pbValue(e))))
			return nil
		}
		out[i] = x.StringValue
	}
	return out
}

// hexBytes reads a string of exactly 2*len(dst) hex digits into dst.
func (r *fieldReader) hexBytes(dst []byte, key string, v value) {
	s := r.str(key, v)
	if r.err != nil {
		return
	}
	if len(s) != 2*len(dst) {
		r.fail(fmt.Errorf("%s is %q, want %d hex digits", key, s, 2*len(dst)))
		return
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		r.fail(fmt.Errorf("%s is %q, want %d hex digits: %v", key, s, 2*len(dst), err))
	}
}

func (r *fieldReader) streamID(key string, v value) (id bridge.StreamID) {
	r.hexBytes(id[:], key, v)
	return id
}

func (r *fieldReader) traceID(key string, v value) (id trace.TraceID) {
	r.hexBytes(id[:], key, v)
	return id
}

func (r *fieldReader) spanID(key string, v value) (id trace.SpanID) {
	r.hexBytes(id[:], key, v)
	return id
}

// parentSpanID reads a span id that must not be all zero (a zero parent is sent by
// leaving the field out).
func (r *fieldReader) parentSpanID(key string, v value) trace.SpanID {
	id := r.spanID(key, v)
	if r.err == nil && !id.IsValid() {
		r.fail(fmt.Errorf("%s is all zero; leave it out for a span without a parent", key))
	}
	return id
}

func (r *fieldReader) traceState(key string, v value) trace.TraceState {
	s := r.str(key, v)
	if s == "" {
		return trace.TraceState{}
	}
	ts, err := trace.ParseTraceState(s)
	if err != nil {
		r.fail(fmt.Errorf("%s is not a W3C tracestate: %v", key, err))
	}
	return ts
}

// attributesBody reads the body of span_open, attributes, span_end and onset: absent,
// or a kvlist of attributes (attrs, which the decoder read beforehand). An empty
// AnyValue counts as absent: the Collector's pdata re-encodes an absent body that way.
func (r *fieldReader) attributesBody(body value, attrs []attribute.KeyValue) []attribute.KeyValue {
	switch body.kind {
	case valueAbsent, valueEmpty:
		return nil
	case valueKvlist:
		return attrs
	}
	r.fail(fmt.Errorf("body must be a kvlist of attributes, not %s", valueTypeName(body)))
	return nil
}

func (r *fieldReader) status(code, msg value) bridge.Status {
	n := r.int(AttrStatusCode, code)
	c, ok := statusCodeFromWire(n)
	if !ok {
		r.fail(fmt.Errorf("%s is %d, want 0 (unset), 1 (ok) or 2 (error)", AttrStatusCode, n))
	}
	return bridge.Status{Code: c, Description: r.str(AttrStatusMessage, msg)}
}

// elements reads an array of kvlists and calls fn with each element's fields and a
// reader whose errors are reported as key[i].
func (r *fieldReader) elements(key string, v value, fn func(i int, sub *fieldReader, fields []*commonpb.KeyValue)) {
	for i, e := range r.array(key, v) {
		x, ok := e.GetValue().(*commonpb.AnyValue_KvlistValue)
		if !ok {
			r.fail(fmt.Errorf("%s[%d] must be a kvlist, not %s", key, i, valueTypeName(pbValue(e))))
			return
		}
		var sub fieldReader
		fn(i, &sub, x.KvlistValue.GetValues())
		if sub.err != nil {
			r.fail(fmt.Errorf("%s[%d]: %w", key, i, sub.err))
			return
		}
	}
}

// field returns the value of key in kvs (the last, if repeated).
func field(kvs []*commonpb.KeyValue, key string) value {
	var v value
	for _, kv := range kvs {
		if kv != nil && kv.Key == key {
			v = pbValue(kv.Value)
		}
	}
	return v
}

func (r *fieldReader) links(key string, v value) []bridge.Link {
	n := len(r.array(key, v))
	if n == 0 {
		return nil
	}
	links := make([]bridge.Link, n)
	r.elements(key, v, func(i int, sub *fieldReader, f []*commonpb.KeyValue) {
		links[i] = sub.link(f)
	})
	if r.err != nil {
		return nil
	}
	return links
}

// link reads one link: trace_id, span_id (hex), trace_state, flags (OTLP span flags),
// attributes, dropped_attributes_count.
func (r *fieldReader) link(f []*commonpb.KeyValue) bridge.Link {
	flags := r.int("flags", field(f, "flags"))
	if flags < 0 || flags > 0xffffffff {
		r.fail(fmt.Errorf("flags is %d, want OTLP span flags (32 bits)", flags))
	}
	tid := field(f, "trace_id")
	sid := field(f, "span_id")
	if tid.kind == valueAbsent || sid.kind == valueAbsent {
		r.fail(fmt.Errorf("trace_id and span_id are required"))
		return bridge.Link{}
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    r.traceID("trace_id", tid),
		SpanID:     r.spanID("span_id", sid),
		TraceFlags: trace.TraceFlags(flags & 0xff),
		TraceState: r.traceState("trace_state", field(f, "trace_state")),
		Remote:     flags&flagsIsRemote != 0,
	})
	return bridge.Link{
		SpanContext:           sc,
		Attributes:            r.attrsField("attributes", field(f, "attributes")),
		DroppedAttributeCount: r.count("dropped_attributes_count", field(f, "dropped_attributes_count")),
	}
}

func (r *fieldReader) attrsField(key string, v value) []attribute.KeyValue {
	return attrs(r.kvlist(key, v))
}

func (r *fieldReader) spanEvents(key string, v value) []bridge.SpanEvent {
	n := len(r.array(key, v))
	if n == 0 {
		return nil
	}
	events := make([]bridge.SpanEvent, n)
	r.elements(key, v, func(i int, sub *fieldReader, f []*commonpb.KeyValue) {
		t := sub.int("time_unix_nano", field(f, "time_unix_nano"))
		events[i] = bridge.SpanEvent{
			Name:                  sub.str("name", field(f, "name")),
			Time:                  timeFromUnixNano(uint64(t)),
			Attributes:            sub.attrsField("attributes", field(f, "attributes")),
			DroppedAttributeCount: sub.count("dropped_attributes_count", field(f, "dropped_attributes_count")),
		}
	})
	if r.err != nil {
		return nil
	}
	return events
}

// triggerInfo reads an onset's trigger info: absent, or a kvlist of its fields.
func (r *fieldReader) triggerInfo(key string, v value) bridge.TriggerInfo {
	var ti bridge.TriggerInfo
	sub := &fieldReader{}
	for _, kv := range r.kvlist(key, v) {
		if kv == nil {
			continue
		}
		v := pbValue(kv.Value)
		switch kv.Key {
		case "type":
			ti.Type = sub.str(kv.Key, v)
		case "method":
			ti.Method = sub.str(kv.Key, v)
		case "url":
			ti.URL = sub.str(kv.Key, v)
		case "headers":
			ti.Headers = nil
			for _, h := range sub.kvlist(kv.Key, v) {
				if h == nil {
					continue
				}
				ti.Headers = append(ti.Headers, bridge.Header{Name: h.Key, Value: sub.str("headers."+h.Key, optValue(h.Value))})
			}
		case "cf_json":
			ti.CfJSON = sub.str(kv.Key, v)
		case "method_name":
			ti.MethodName = sub.str(kv.Key, v)
		case "cron":
			ti.Cron = sub.str(kv.Key, v)
		case "scheduled_time_unix_nano":
			ti.ScheduledTime = timeFromUnixNano(uint64(sub.int(kv.Key, v)))
		case "queue_name":
			ti.QueueName = sub.str(kv.Key, v)
		case "batch_size":
			ti.BatchSize = sub.count(kv.Key, v)
		case "mail_from":
			ti.MailFrom = sub.str(kv.Key, v)
		case "rcpt_to":
			ti.RcptTo = sub.str(kv.Key, v)
		case "raw_size":
			ti.RawSize = sub.count(kv.Key, v)
		case "raw":
			ti.Raw = sub.str(kv.Key, v)
		}
	}
	if sub.err != nil {
		r.fail(fmt.Errorf("%s: %w", key, sub.err))
	}
	return ti
}
