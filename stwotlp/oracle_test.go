package stwotlp

import (
	"slices"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// The tree encoder: bridge events and spans to OTLP messages, built field by field with
// the generated types. It is the oracle the wire encoder (encode.go) is checked against
// (the same requests, byte for byte once marshalled), and lives only in tests.

// EncodeEvents encodes events as one OTLP logs request, one LogRecord per event,
// grouped by resource and scope (events whose resources and scopes are equal share a
// group). Within a group, records keep the order of events. Events without a body
// carry nothing to encode and are skipped.
//
// The request shares no memory with events, so the caller may reuse the slice.
func treeEncodeEvents(events []bridge.Event) *collogspb.ExportLogsServiceRequest {
	req := &collogspb.ExportLogsServiceRequest{}
	g := newGrouper(func(r *resource.Resource) *logspb.ResourceLogs {
		rl := &logspb.ResourceLogs{}
		rl.Resource, rl.SchemaUrl = resourceProto(r)
		req.ResourceLogs = append(req.ResourceLogs, rl)
		return rl
	}, func(rl *logspb.ResourceLogs, s *instrumentation.Scope) *logspb.ScopeLogs {
		sl := &logspb.ScopeLogs{}
		sl.Scope, sl.SchemaUrl = scopeProto(s)
		rl.ScopeLogs = append(rl.ScopeLogs, sl)
		return sl
	})
	// One buffer holds every trace and span id of the request, one slab its records.
	ids := make([]byte, 0, 24*len(events))
	records := make([]logspb.LogRecord, len(events))
	ar := &arena{}
	for i := range events {
		e := &events[i]
		if e.Body == nil {
			continue
		}
		sl := g.group(e.Resource, e.Scope)
		rec := &records[i]
		ids = ar.encodeRecord(rec, e, ids)
		sl.LogRecords = append(sl.LogRecords, rec)
	}
	return req
}

// encodeRecord encodes one event; ids is the request's id buffer, returned grown.
func (ar *arena) encodeRecord(rec *logspb.LogRecord, e *bridge.Event, ids []byte) []byte {
	rec.EventName = EventName(e.Kind())
	rec.TimeUnixNano = unixNano(e.Time)
	if e.TraceID.IsValid() {
		n := len(ids)
		ids = append(ids, e.TraceID[:]...)
		rec.TraceId = ids[n:len(ids):len(ids)]
	}
	if e.SpanID.IsValid() {
		n := len(ids)
		ids = append(ids, e.SpanID[:]...)
		rec.SpanId = ids[n:len(ids):len(ids)]
	}
	a := make([]*commonpb.KeyValue, 0, 4)
	// Version 1 requires stw.stream_id on every record, even where it equals the
	// trace id (the stream of a new trace); receivers tolerate its absence.
	// A span alone in its stream (version 1.1) travels without either.
	if c, ok := e.Body.(*bridge.CompleteSpan); !ok || !c.Alone {
		a = append(a, ar.keyValue(AttrStreamID, ar.str(e.StreamID.String())))
		a = append(a, ar.keyValue(AttrSequence, ar.int(int64(e.Sequence))))
	}

	switch b := e.Body.(type) {
	case *bridge.SpanOpen:
		a = ar.appendSpanOpen(a, b, b.Links)
		rec.Flags = uint32(b.TraceFlags)
		rec.Body = ar.attributesBody(b.Attributes)
	case *bridge.CompleteSpan:
		a = ar.appendSpanOpen(a, b.Open, nil)
		rec.TimeUnixNano, rec.ObservedTimeUnixNano = unixNano(b.Start), unixNano(e.Time)
		end := *b.End
		end.Links = concatLinks(b.Open.Links, b.End.Links)
		a = ar.appendSpanEnd(a, &end)
		rec.Flags = uint32(b.Open.TraceFlags)
		rec.Body = ar.attributesBody(mergeAttributes(b.Open.Attributes, b.End.Attributes))
	case *bridge.UpdateName:
		a = append(a, ar.keyValue(AttrSpanName, ar.str(b.Name)))
	case *bridge.Attributes:
		rec.Body = ar.attributesBody(b.Attributes)
	case *bridge.StatusUpdate:
		a = append(a, ar.keyValue(AttrStatusCode, ar.int(statusCodeWire(b.Status.Code))))
		if b.Status.Description != "" {
			a = append(a, ar.keyValue(AttrStatusMessage, ar.str(b.Status.Description)))
		}
	case *bridge.SpanEndData:
		a = ar.appendSpanEnd(a, b)
		rec.Body = ar.attributesBody(b.Attributes)
	case *bridge.Heartbeat:
	case *bridge.Onset:
		if b.Parent.IsValid() {
			a = append(a, ar.keyValue(AttrParentSpanID, ar.str(b.Parent.String())))
		}
		a = ar.appendString(a, AttrOnsetExecModel, b.ExecutionModel)
		a = ar.appendString(a, AttrOnsetScriptName, b.ScriptName)
		a = ar.appendString(a, AttrOnsetScriptVersion, b.ScriptVersion)
		a = ar.appendString(a, AttrOnsetEntrypoint, b.Entrypoint)
		if len(b.ScriptTags) > 0 {
			a = append(a, ar.keyValue(AttrOnsetScriptTags, ar.anyValue(attribute.StringSliceValue(b.ScriptTags))))
		}
		a = ar.appendString(a, AttrOnsetDispatchNS, b.DispatchNamespace)
		if b.Unsampled {
			a = append(a, ar.keyValue(AttrOnsetUnsampled, ar.bool(true)))
		}
		if info := ar.triggerInfoValue(&b.Info); info != nil {
			a = append(a, ar.keyValue(AttrOnsetInfo, info))
		}
		rec.Body = ar.attributesBody(b.Attributes)
	case *bridge.Outcome:
		// "ok", what nearly every stream ends with, is the default and left out.
		if b.Outcome != "ok" {
			a = append(a, ar.keyValue(AttrOutcomeResult, ar.str(b.Outcome)))
		}
		a = ar.appendInt(a, AttrOutcomeCPUTime, int64(b.CPUTime))
		a = ar.appendInt(a, AttrOutcomeWallTime, int64(b.WallTime))
	case *bridge.Log:
		rec.SeverityText = validUTF8(b.Level)
		rec.SeverityNumber = logSeverity(b.Level)
		rec.Body = ar.str(b.Message)
		if b.Truncated {
			a = append(a, ar.keyValue(AttrLogTruncated, ar.bool(true)))
		}
	case *bridge.DiagnosticChannel:
		a = ar.appendString(a, AttrDiagnosticChannel, b.Channel)
		rec.Body = ar.str(b.Message)
	case *bridge.Exception:
		rec.SeverityNumber = logspb.SeverityNumber_SEVERITY_NUMBER_ERROR
		a = ar.appendString(a, AttrExceptionType, b.Name)
		a = ar.appendString(a, AttrExceptionMessage, b.Message)
		a = ar.appendString(a, AttrExceptionStack, b.Stack)
	case *bridge.Return:
		a = ar.appendInt(a, AttrReturnStatusCode, int64(b.StatusCode))
	case *bridge.StreamDiagnostic:
		a = append(a, ar.keyValue(AttrDiagnosticDropped, ar.int(int64(b.DroppedEvents))))
	}
	rec.Attributes = a
	return ids
}

// appendSpanEnd appends the record attributes of a span's end; each is left out when
// it holds its zero value.
func (ar *arena) appendSpanOpen(a []*commonpb.KeyValue, b *bridge.SpanOpen, links []bridge.Link) []*commonpb.KeyValue {
	a = append(a, ar.keyValue(AttrSpanName, ar.str(b.Name)))
	if b.Parent.IsValid() {
		a = append(a, ar.keyValue(AttrParentSpanID, ar.str(b.Parent.String())))
	}
	if b.SpanKind != trace.SpanKindInternal {
		a = append(a, ar.keyValue(AttrSpanKind, ar.int(int64(b.SpanKind))))
	}
	if b.TraceState.Len() > 0 {
		a = append(a, ar.keyValue(AttrTraceState, ar.str(b.TraceState.String())))
	}
	if b.RemoteParent {
		a = append(a, ar.keyValue(AttrRemoteParent, ar.bool(true)))
	}
	if len(links) > 0 {
		a = append(a, ar.keyValue(AttrLinks, ar.linksValue(links)))
	}
	return a
}

func (ar *arena) appendSpanEnd(a []*commonpb.KeyValue, b *bridge.SpanEndData) []*commonpb.KeyValue {
	if b.Status.Code != codes.Unset {
		a = append(a, ar.keyValue(AttrStatusCode, ar.int(statusCodeWire(b.Status.Code))))
	}
	a = ar.appendString(a, AttrStatusMessage, b.Status.Description)
	if len(b.Events) > 0 {
		a = append(a, ar.keyValue(AttrEvents, ar.spanEventsValue(b.Events)))
	}
	if len(b.Links) > 0 {
		a = append(a, ar.keyValue(AttrLinks, ar.linksValue(b.Links)))
	}
	a = ar.appendInt(a, AttrDroppedAttributes, int64(b.DroppedAttributes))
	a = ar.appendInt(a, AttrDroppedEvents, int64(b.DroppedEvents))
	a = ar.appendInt(a, AttrDroppedLinks, int64(b.DroppedLinks))
	a = ar.appendInt(a, AttrChildSpanCount, int64(b.ChildSpanCount))
	if b.Unfinished {
		a = append(a, ar.keyValue(AttrUnfinished, ar.bool(true)))
	}
	a = ar.appendString(a, AttrSpanOutcome, b.Outcome)
	if b.StreamContinues {
		a = append(a, ar.keyValue(AttrStreamContinues, ar.bool(true)))
	}
	return a
}

func (ar *arena) appendString(a []*commonpb.KeyValue, key, s string) []*commonpb.KeyValue {
	if s == "" {
		return a
	}
	return append(a, ar.keyValue(key, ar.str(s)))
}

func (ar *arena) appendInt(a []*commonpb.KeyValue, key string, n int64) []*commonpb.KeyValue {
	if n == 0 {
		return a
	}
	return append(a, ar.keyValue(key, ar.int(n)))
}

// attributesBody is the body of span_open, attributes, span_end and onset: a kvlist
// of the span's (or invocation's) attributes, nil when there are none.
func (ar *arena) attributesBody(attrs []attribute.KeyValue) *commonpb.AnyValue {
	if len(attrs) == 0 {
		return nil
	}
	return ar.kvlist(ar.keyValues(attrs))
}

func (ar *arena) linksValue(links []bridge.Link) *commonpb.AnyValue {
	vals := make([]*commonpb.AnyValue, len(links))
	for i, l := range links {
		sc := l.SpanContext
		f := make([]*commonpb.KeyValue, 0, 5)
		tid, sid := sc.TraceID(), sc.SpanID()
		f = append(f,
			ar.keyValue("trace_id", ar.str(tid.String())),
			ar.keyValue("span_id", ar.str(sid.String())))
		if sc.TraceState().Len() > 0 {
			f = append(f, ar.keyValue("trace_state", ar.str(sc.TraceState().String())))
		}
		f = append(f, ar.keyValue("flags", ar.int(int64(spanFlags(sc.TraceFlags(), sc.IsRemote())))))
		if len(l.Attributes) > 0 {
			f = append(f, ar.keyValue("attributes", ar.kvlist(ar.keyValues(l.Attributes))))
		}
		f = ar.appendInt(f, "dropped_attributes_count", int64(l.DroppedAttributeCount))
		vals[i] = ar.kvlist(f)
	}
	return ar.array(vals)
}

func (ar *arena) spanEventsValue(events []bridge.SpanEvent) *commonpb.AnyValue {
	vals := make([]*commonpb.AnyValue, len(events))
	for i, ev := range events {
		f := make([]*commonpb.KeyValue, 0, 4)
		f = append(f,
			ar.keyValue("name", ar.str(ev.Name)),
			ar.keyValue("time_unix_nano", ar.int(int64(unixNano(ev.Time)))))
		if len(ev.Attributes) > 0 {
			f = append(f, ar.keyValue("attributes", ar.kvlist(ar.keyValues(ev.Attributes))))
		}
		f = ar.appendInt(f, "dropped_attributes_count", int64(ev.DroppedAttributeCount))
		vals[i] = ar.kvlist(f)
	}
	return ar.array(vals)
}

// triggerInfoValue is the trigger info of an onset as a kvlist of its non-zero
// fields, nil when every field is zero.
func (ar *arena) triggerInfoValue(ti *bridge.TriggerInfo) *commonpb.AnyValue {
	var f []*commonpb.KeyValue
	f = ar.appendString(f, "type", ti.Type)
	f = ar.appendString(f, "method", ti.Method)
	f = ar.appendString(f, "url", ti.URL)
	if len(ti.Headers) > 0 {
		h := make([]*commonpb.KeyValue, len(ti.Headers))
		for i, hd := range ti.Headers {
			h[i] = ar.keyValue(hd.Name, ar.str(hd.Value))
		}
		f = append(f, ar.keyValue("headers", ar.kvlist(h)))
	}
	f = ar.appendString(f, "cf_json", ti.CfJSON)
	f = ar.appendString(f, "method_name", ti.MethodName)
	f = ar.appendString(f, "cron", ti.Cron)
	if !ti.ScheduledTime.IsZero() {
		f = append(f, ar.keyValue("scheduled_time_unix_nano", ar.int(int64(unixNano(ti.ScheduledTime)))))
	}
	f = ar.appendString(f, "queue_name", ti.QueueName)
	f = ar.appendInt(f, "batch_size", int64(ti.BatchSize))
	f = ar.appendString(f, "mail_from", ti.MailFrom)
	f = ar.appendString(f, "rcpt_to", ti.RcptTo)
	f = ar.appendInt(f, "raw_size", int64(ti.RawSize))
	f = ar.appendString(f, "raw", ti.Raw)
	if len(f) == 0 {
		return nil
	}
	return ar.kvlist(f)
}

// EncodeSpans encodes complete spans as one OTLP traces request, grouped by resource
// and scope. Unfinished spans get status Error and stw.unfinished=true.
//
// The request shares no memory with spans.
func treeEncodeSpans(spans []bridge.Span) *coltracepb.ExportTraceServiceRequest {
	req := &coltracepb.ExportTraceServiceRequest{}
	g := newGrouper(func(r *resource.Resource) *tracepb.ResourceSpans {
		rs := &tracepb.ResourceSpans{}
		rs.Resource, rs.SchemaUrl = resourceProto(r)
		req.ResourceSpans = append(req.ResourceSpans, rs)
		return rs
	}, func(rs *tracepb.ResourceSpans, s *instrumentation.Scope) *tracepb.ScopeSpans {
		ss := &tracepb.ScopeSpans{}
		ss.Scope, ss.SchemaUrl = scopeProto(s)
		rs.ScopeSpans = append(rs.ScopeSpans, ss)
		return ss
	})
	ids := make([]byte, 0, 32*len(spans))
	slab := make([]tracepb.Span, len(spans))
	ar := &arena{}
	for i := range spans {
		s := &spans[i]
		ss := g.group(s.Resource, s.Scope)
		sp := &slab[i]
		ids = ar.encodeSpan(sp, s, ids)
		ss.Spans = append(ss.Spans, sp)
	}
	return req
}

func (ar *arena) encodeSpan(sp *tracepb.Span, s *bridge.Span, ids []byte) []byte {
	n := len(ids)
	ids = append(ids, s.TraceID[:]...)
	ids = append(ids, s.SpanID[:]...)
	sp.TraceId = ids[n : n+16 : n+16]
	sp.SpanId = ids[n+16 : n+24 : n+24]
	sp.TraceState = s.TraceState.String()
	sp.Flags = spanFlags(s.TraceFlags, s.RemoteParent)
	sp.Name = validUTF8(s.Name)
	sp.Kind = tracepb.Span_SpanKind(s.SpanKind)
	sp.StartTimeUnixNano = unixNano(s.Start)
	sp.EndTimeUnixNano = unixNano(s.End)
	sp.Attributes = ar.keyValues(s.Attributes)
	sp.DroppedAttributesCount = clampUint32(s.DroppedAttributes)
	sp.DroppedEventsCount = clampUint32(s.DroppedEvents)
	sp.DroppedLinksCount = clampUint32(s.DroppedLinks)
	sp.Status = &tracepb.Status{
		Code:    tracepb.Status_StatusCode(statusCodeWire(s.Status.Code)),
		Message: validUTF8(s.Status.Description),
	}
	if s.Parent.IsValid() {
		ids = append(ids, s.Parent[:]...)
		sp.ParentSpanId = ids[n+24 : n+32 : n+32]
	}
	if s.Unfinished {
		sp.Status.Code = tracepb.Status_STATUS_CODE_ERROR
		if !slices.ContainsFunc(s.Attributes, isUnfinishedAttr) {
			sp.Attributes = append(sp.Attributes, ar.keyValue(AttrUnfinished, ar.bool(true)))
		}
	}
	if len(s.Events) > 0 {
		sp.Events = make([]*tracepb.Span_Event, len(s.Events))
		for i, ev := range s.Events {
			sp.Events[i] = &tracepb.Span_Event{
				TimeUnixNano:           unixNano(ev.Time),
				Name:                   validUTF8(ev.Name),
				Attributes:             ar.keyValues(ev.Attributes),
				DroppedAttributesCount: clampUint32(ev.DroppedAttributeCount),
			}
		}
	}
	if len(s.Links) > 0 {
		sp.Links = make([]*tracepb.Span_Link, len(s.Links))
		for i, l := range s.Links {
			tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			sp.Links[i] = &tracepb.Span_Link{
				TraceId:                append([]byte(nil), tid[:]...),
				SpanId:                 append([]byte(nil), sid[:]...),
				TraceState:             l.SpanContext.TraceState().String(),
				Attributes:             ar.keyValues(l.Attributes),
				DroppedAttributesCount: clampUint32(l.DroppedAttributeCount),
				Flags:                  spanFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()),
			}
		}
	}
	return ids
}

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
		return &commonpb.KeyValue{Key: validUTF8(key), Value: v}
	}
	if len(a.kvs) == 0 {
		a.kvs = make([]commonpb.KeyValue, a.grow())
	}
	p := &a.kvs[0]
	a.kvs = a.kvs[1:]
	p.Key, p.Value = validUTF8(key), v
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
	s = validUTF8(s)
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

func kv(key string, v *commonpb.AnyValue) *commonpb.KeyValue { return (*arena)(nil).keyValue(key, v) }

func anyValue(v attribute.Value) *commonpb.AnyValue { return (*arena)(nil).anyValue(v) }

func keyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	return (*arena)(nil).keyValues(attrs)
}

func stringValue(s string) *commonpb.AnyValue { return (*arena)(nil).str(s) }

func intValue(n int64) *commonpb.AnyValue { return (*arena)(nil).int(n) }

func boolValue(b bool) *commonpb.AnyValue { return (*arena)(nil).bool(b) }

func arrayValue(vals []*commonpb.AnyValue) *commonpb.AnyValue { return (*arena)(nil).array(vals) }

func kvlistValue(kvs []*commonpb.KeyValue) *commonpb.AnyValue { return (*arena)(nil).kvlist(kvs) }

// resourceProto returns the OTLP form of r and its schema URL; nil for a nil r.
func resourceProto(r *resource.Resource) (*resourcepb.Resource, string) {
	if r == nil {
		return nil, ""
	}
	return &resourcepb.Resource{Attributes: keyValues(r.Attributes())}, validUTF8(r.SchemaURL())
}

// scopeProto returns the OTLP form of s and its schema URL; nil for a nil s.
func scopeProto(s *instrumentation.Scope) (*commonpb.InstrumentationScope, string) {
	if s == nil {
		return nil, ""
	}
	return &commonpb.InstrumentationScope{
		Name:       validUTF8(s.Name),
		Version:    validUTF8(s.Version),
		Attributes: keyValues(s.Attributes.ToSlice()),
	}, validUTF8(s.SchemaURL)
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
