package stwotlp

import (
	"encoding/hex"
	"fmt"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// fieldReader reads typed fields out of AnyValues. It keeps the first problem it meets
// and returns zero values after it, so that a decoder reads every field in a row and
// checks err once.
type fieldReader struct{ err error }

func (r *fieldReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *fieldReader) wrongType(key, want string, v *commonpb.AnyValue) {
	r.fail(fmt.Errorf("%s must be %s, not %s", key, want, valueTypeName(v)))
}

// valueTypeName names the type an AnyValue holds, for errors.
func valueTypeName(v *commonpb.AnyValue) string {
	switch v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return "a string"
	case *commonpb.AnyValue_BoolValue:
		return "a bool"
	case *commonpb.AnyValue_IntValue:
		return "an int"
	case *commonpb.AnyValue_DoubleValue:
		return "a double"
	case *commonpb.AnyValue_BytesValue:
		return "bytes"
	case *commonpb.AnyValue_ArrayValue:
		return "an array"
	case *commonpb.AnyValue_KvlistValue:
		return "a kvlist"
	default:
		return "empty"
	}
}

// str reads a string field; absent is "".
func (r *fieldReader) str(key string, v *commonpb.AnyValue) string {
	if v == nil {
		return ""
	}
	x, ok := v.Value.(*commonpb.AnyValue_StringValue)
	if !ok {
		r.wrongType(key, "a string", v)
		return ""
	}
	return x.StringValue
}

// int reads an int field; absent is 0.
func (r *fieldReader) int(key string, v *commonpb.AnyValue) int64 {
	if v == nil {
		return 0
	}
	x, ok := v.Value.(*commonpb.AnyValue_IntValue)
	if !ok {
		r.wrongType(key, "an int", v)
		return 0
	}
	return x.IntValue
}

// count reads an int field that may not be negative; absent is 0.
func (r *fieldReader) count(key string, v *commonpb.AnyValue) int {
	n := r.int(key, v)
	if n < 0 {
		r.fail(fmt.Errorf("%s is %d, want 0 or more", key, n))
		return 0
	}
	return int(n)
}

// boolean reads a bool field; absent is false.
func (r *fieldReader) boolean(key string, v *commonpb.AnyValue) bool {
	if v == nil {
		return false
	}
	x, ok := v.Value.(*commonpb.AnyValue_BoolValue)
	if !ok {
		r.wrongType(key, "a bool", v)
		return false
	}
	return x.BoolValue
}

// kvlist reads a kvlist field; absent is nil.
func (r *fieldReader) kvlist(key string, v *commonpb.AnyValue) []*commonpb.KeyValue {
	if v == nil {
		return nil
	}
	x, ok := v.Value.(*commonpb.AnyValue_KvlistValue)
	if !ok {
		r.wrongType(key, "a kvlist", v)
		return nil
	}
	return x.KvlistValue.GetValues()
}

// array reads an array field; absent is nil.
func (r *fieldReader) array(key string, v *commonpb.AnyValue) []*commonpb.AnyValue {
	if v == nil {
		return nil
	}
	x, ok := v.Value.(*commonpb.AnyValue_ArrayValue)
	if !ok {
		r.wrongType(key, "an array", v)
		return nil
	}
	return x.ArrayValue.GetValues()
}

// strings reads an array of strings; absent is nil.
func (r *fieldReader) strings(key string, v *commonpb.AnyValue) []string {
	arr := r.array(key, v)
	if len(arr) == 0 {
		return nil
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		x, ok := e.GetValue().(*commonpb.AnyValue_StringValue)
		if !ok {
			r.fail(fmt.Errorf("%s[%d] must be a string, not %s", key, i, valueTypeName(e)))
			return nil
		}
		out[i] = x.StringValue
	}
	return out
}

// hexBytes reads a string of exactly 2*len(dst) hex digits into dst.
func (r *fieldReader) hexBytes(dst []byte, key string, v *commonpb.AnyValue) {
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

func (r *fieldReader) streamID(key string, v *commonpb.AnyValue) (id bridge.StreamID) {
	r.hexBytes(id[:], key, v)
	return id
}

func (r *fieldReader) traceID(key string, v *commonpb.AnyValue) (id trace.TraceID) {
	r.hexBytes(id[:], key, v)
	return id
}

func (r *fieldReader) spanID(key string, v *commonpb.AnyValue) (id trace.SpanID) {
	r.hexBytes(id[:], key, v)
	return id
}

// parentSpanID reads a span id that must not be all zero (a zero parent is sent by
// leaving the field out).
func (r *fieldReader) parentSpanID(key string, v *commonpb.AnyValue) trace.SpanID {
	id := r.spanID(key, v)
	if r.err == nil && !id.IsValid() {
		r.fail(fmt.Errorf("%s is all zero; leave it out for a span without a parent", key))
	}
	return id
}

func (r *fieldReader) traceState(key string, v *commonpb.AnyValue) trace.TraceState {
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
// or a kvlist of attributes. An empty AnyValue counts as absent: the Collector's pdata
// re-encodes an absent body that way.
func (r *fieldReader) attributesBody(body *commonpb.AnyValue) []attribute.KeyValue {
	if body == nil || body.Value == nil {
		return nil
	}
	x, ok := body.Value.(*commonpb.AnyValue_KvlistValue)
	if !ok {
		r.fail(fmt.Errorf("body must be a kvlist of attributes, not %s", valueTypeName(body)))
		return nil
	}
	return attrs(x.KvlistValue.GetValues())
}

func (r *fieldReader) status(code, msg *commonpb.AnyValue) bridge.Status {
	n := r.int(AttrStatusCode, code)
	c, ok := statusCodeFromWire(n)
	if !ok {
		r.fail(fmt.Errorf("%s is %d, want 0 (unset), 1 (ok) or 2 (error)", AttrStatusCode, n))
	}
	return bridge.Status{Code: c, Description: r.str(AttrStatusMessage, msg)}
}

// elements reads an array of kvlists and calls fn with each element's fields and a
// reader whose errors are reported as key[i].
func (r *fieldReader) elements(key string, v *commonpb.AnyValue, fn func(i int, sub *fieldReader, fields []*commonpb.KeyValue)) {
	for i, e := range r.array(key, v) {
		x, ok := e.GetValue().(*commonpb.AnyValue_KvlistValue)
		if !ok {
			r.fail(fmt.Errorf("%s[%d] must be a kvlist, not %s", key, i, valueTypeName(e)))
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

// field returns the value of key in kvs (the last, if repeated), nil when absent and
// emptyValue when present without a value.
func field(kvs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	var v *commonpb.AnyValue
	for _, kv := range kvs {
		if kv != nil && kv.Key == key {
			v = kv.Value
			if v == nil {
				v = emptyValue
			}
		}
	}
	return v
}

func (r *fieldReader) links(key string, v *commonpb.AnyValue) []bridge.Link {
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
	if tid == nil || sid == nil {
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

func (r *fieldReader) attrsField(key string, v *commonpb.AnyValue) []attribute.KeyValue {
	return attrs(r.kvlist(key, v))
}

func (r *fieldReader) spanEvents(key string, v *commonpb.AnyValue) []bridge.SpanEvent {
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
func (r *fieldReader) triggerInfo(key string, v *commonpb.AnyValue) bridge.TriggerInfo {
	var ti bridge.TriggerInfo
	sub := &fieldReader{}
	for _, kv := range r.kvlist(key, v) {
		if kv == nil {
			continue
		}
		v := kv.Value
		if v == nil {
			v = emptyValue
		}
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
				ti.Headers = append(ti.Headers, bridge.Header{Name: h.Key, Value: sub.str("headers."+h.Key, h.Value)})
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
