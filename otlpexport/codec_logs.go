package otlpexport

import (
	"errors"
	"fmt"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
)

// EncodeEvents encodes events as one OTLP logs request, one LogRecord per event,
// grouped by resource and scope (events whose resources and scopes are equal share a
// group). Within a group, records keep the order of events. Events without a body
// carry nothing to encode and are skipped.
//
// The request shares no memory with events, so the caller may reuse the slice.
func EncodeEvents(events []bridge.Event) *collogspb.ExportLogsServiceRequest {
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
	a = append(a, ar.keyValue(AttrStreamID, ar.str(e.StreamID.String())))
	a = append(a, ar.keyValue(AttrSequence, ar.int(int64(e.Sequence))))

	switch b := e.Body.(type) {
	case *bridge.SpanOpen:
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
		if len(b.Links) > 0 {
			a = append(a, ar.keyValue(AttrLinks, ar.linksValue(b.Links)))
		}
		rec.Flags = uint32(b.TraceFlags)
		rec.Body = ar.attributesBody(b.Attributes)
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
		rec.SeverityText = b.Level
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
	return ar.appendString(a, AttrSpanOutcome, b.Outcome)
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

// unixNano is t in nanoseconds since the Unix epoch, 0 for the zero time.
func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// timeFromUnixNano is the reverse of unixNano.
func timeFromUnixNano(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

// statusCodeWire maps an OTel Go status code to OTLP's numbering (0 unset, 1 ok, 2 error).
func statusCodeWire(c codes.Code) int64 {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	default:
		return 0
	}
}

func statusCodeFromWire(n int64) (codes.Code, bool) {
	switch n {
	case 0:
		return codes.Unset, true
	case 1:
		return codes.Ok, true
	case 2:
		return codes.Error, true
	default:
		return codes.Unset, false
	}
}

// OTLP span flags: bits 0-7 are the W3C trace flags; bit 8 says whether bit 9 (the
// context is remote) is known.
const (
	flagsHasIsRemote = 0x100
	flagsIsRemote    = 0x200
)

func spanFlags(tf trace.TraceFlags, remote bool) uint32 {
	f := uint32(tf) | flagsHasIsRemote
	if remote {
		f |= flagsIsRemote
	}
	return f
}

// logSeverity maps a workerd console level to an OTLP severity number.
func logSeverity(level string) logspb.SeverityNumber {
	switch level {
	case "debug":
		return logspb.SeverityNumber_SEVERITY_NUMBER_DEBUG
	case "info", "log":
		return logspb.SeverityNumber_SEVERITY_NUMBER_INFO
	case "warn":
		return logspb.SeverityNumber_SEVERITY_NUMBER_WARN
	case "error":
		return logspb.SeverityNumber_SEVERITY_NUMBER_ERROR
	default:
		return logspb.SeverityNumber_SEVERITY_NUMBER_UNSPECIFIED
	}
}

// DecodedLogs is what DecodeEvents found in a logs request.
type DecodedLogs struct {
	// Events are the stw.* records that decoded, in request order.
	Events []bridge.Event
	// Other holds the records that are not STW lifecycle events (no stw.* event
	// name), with their resource and scope, for pass-through; nil when there are none.
	// It shares its records, resources and scopes with the decoded request.
	Other *collogspb.ExportLogsServiceRequest
	// Rejected has one error per bad stw.* record, naming the record and the problem.
	// Each is a *RecordError.
	Rejected []error
}

// RecordError is why DecodeEvents rejected one log record.
type RecordError struct {
	// Resource, Scope and Record are the indexes of the record in the request's
	// resource_logs, that resource's scope_logs and that scope's log_records.
	Resource, Scope, Record int
	// EventName is the record's event_name.
	EventName string
	// Err is the problem.
	Err error
}

// Error names the record and the problem.
func (e *RecordError) Error() string {
	return fmt.Sprintf("resource_logs[%d].scope_logs[%d].log_records[%d] (%s): %v",
		e.Resource, e.Scope, e.Record, e.EventName, e.Err)
}

// Unwrap returns the problem.
func (e *RecordError) Unwrap() error { return e.Err }

// DecodeEvents decodes the STW lifecycle records of a logs request. A bad record is
// rejected alone; the good records beside it are kept. Records with an event_name
// outside the stw.* namespace (or none) are returned in Other, untouched. Events of
// one ResourceLogs share one *resource.Resource, events of one ScopeLogs one
// *instrumentation.Scope.
func DecodeEvents(req *collogspb.ExportLogsServiceRequest) DecodedLogs {
	var out DecodedLogs
	n := 0
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			n += len(sl.GetLogRecords())
		}
	}
	if n > 0 {
		out.Events = make([]bridge.Event, 0, n)
	}
	for ri, rl := range req.GetResourceLogs() {
		var (
			res     *resource.Resource
			resDone bool
			otherRL *logspb.ResourceLogs
		)
		for si, sl := range rl.GetScopeLogs() {
			var (
				scope     *instrumentation.Scope
				scopeDone bool
				otherSL   *logspb.ScopeLogs
			)
			for i, rec := range sl.GetLogRecords() {
				if rec == nil {
					out.Rejected = append(out.Rejected, &RecordError{ri, si, i, "", errors.New("the record is null")})
					continue
				}
				if !isSTW(rec.EventName) {
					if otherSL == nil {
						if otherRL == nil {
							otherRL = &logspb.ResourceLogs{Resource: rl.Resource, SchemaUrl: rl.SchemaUrl}
							if out.Other == nil {
								out.Other = &collogspb.ExportLogsServiceRequest{}
							}
							out.Other.ResourceLogs = append(out.Other.ResourceLogs, otherRL)
						}
						otherSL = &logspb.ScopeLogs{Scope: sl.Scope, SchemaUrl: sl.SchemaUrl}
						otherRL.ScopeLogs = append(otherRL.ScopeLogs, otherSL)
					}
					otherSL.LogRecords = append(otherSL.LogRecords, rec)
					continue
				}
				e, err := decodeRecord(rec)
				if err != nil {
					out.Rejected = append(out.Rejected, &RecordError{ri, si, i, rec.EventName, err})
					continue
				}
				if !resDone {
					res, resDone = resourceFromProto(rl.Resource, rl.SchemaUrl), true
				}
				if !scopeDone {
					scope, scopeDone = scopeFromProto(sl.Scope, sl.SchemaUrl), true
				}
				e.Resource, e.Scope = res, scope
				out.Events = append(out.Events, e)
			}
		}
	}
	return out
}

// recordFields holds the record attributes the protocol defines, as found; a field
// present with no value holds emptyValue.
type recordFields struct {
	streamID, sequence, version                                       *commonpb.AnyValue
	name, parent, kind, traceState, remoteParent, links, events       *commonpb.AnyValue
	statusCode, statusMessage                                         *commonpb.AnyValue
	droppedAttrs, droppedEvents, droppedLinks, childCount, unfinished *commonpb.AnyValue
	execModel, scriptName, scriptVersion, entrypoint, scriptTags      *commonpb.AnyValue
	dispatchNS, info, spanOutcome                                     *commonpb.AnyValue
	outcome, cpuTime, wallTime                                        *commonpb.AnyValue
	excType, excMessage, excStack, returnStatus, diagDropped          *commonpb.AnyValue
	logTruncated, diagChannel, unsampled                              *commonpb.AnyValue
}

var emptyValue = &commonpb.AnyValue{}

// collect finds the protocol's fields among a record's attributes; unknown ones are
// ignored, and of repeated keys the last wins.
func (f *recordFields) collect(kvs []*commonpb.KeyValue) {
	for _, a := range kvs {
		if a == nil {
			continue
		}
		v := a.Value
		if v == nil {
			v = emptyValue
		}
		switch a.Key {
		case AttrStreamID:
			f.streamID = v
		case AttrSequence:
			f.sequence = v
		case AttrProtocolVersion:
			f.version = v
		case AttrSpanName:
			f.name = v
		case AttrParentSpanID:
			f.parent = v
		case AttrSpanKind:
			f.kind = v
		case AttrTraceState:
			f.traceState = v
		case AttrRemoteParent:
			f.remoteParent = v
		case AttrLinks:
			f.links = v
		case AttrEvents:
			f.events = v
		case AttrStatusCode:
			f.statusCode = v
		case AttrStatusMessage:
			f.statusMessage = v
		case AttrDroppedAttributes:
			f.droppedAttrs = v
		case AttrDroppedEvents:
			f.droppedEvents = v
		case AttrDroppedLinks:
			f.droppedLinks = v
		case AttrChildSpanCount:
			f.childCount = v
		case AttrUnfinished:
			f.unfinished = v
		case AttrOnsetExecModel:
			f.execModel = v
		case AttrOnsetScriptName:
			f.scriptName = v
		case AttrOnsetScriptVersion:
			f.scriptVersion = v
		case AttrOnsetEntrypoint:
			f.entrypoint = v
		case AttrOnsetScriptTags:
			f.scriptTags = v
		case AttrOnsetDispatchNS:
			f.dispatchNS = v
		case AttrOnsetUnsampled:
			f.unsampled = v
		case AttrOnsetInfo:
			f.info = v
		case AttrSpanOutcome:
			f.spanOutcome = v
		case AttrOutcomeResult:
			f.outcome = v
		case AttrOutcomeCPUTime:
			f.cpuTime = v
		case AttrOutcomeWallTime:
			f.wallTime = v
		case AttrExceptionType:
			f.excType = v
		case AttrExceptionMessage:
			f.excMessage = v
		case AttrExceptionStack:
			f.excStack = v
		case AttrReturnStatusCode:
			f.returnStatus = v
		case AttrDiagnosticDropped:
			f.diagDropped = v
		case AttrLogTruncated:
			f.logTruncated = v
		case AttrDiagnosticChannel:
			f.diagChannel = v
		}
	}
}

// isSpanEvent reports whether events of kind k concern one span, which must be named
// by the record's trace_id and span_id.
func isSpanEvent(k bridge.Kind) bool {
	switch k {
	case bridge.KindSpanOpen, bridge.KindUpdateName, bridge.KindAttributes, bridge.KindStatus, bridge.KindSpanEnd:
		return true
	}
	return false
}

// decodeRecord decodes one stw.* record, or says what is wrong with it.
func decodeRecord(rec *logspb.LogRecord) (bridge.Event, error) {
	var e bridge.Event
	kind, ok := eventKinds[rec.EventName]
	if !ok {
		return e, fmt.Errorf("unknown event name %q: STW over OTLP version 1 defines stw.span_open, stw.update_name, stw.attributes, stw.status, stw.span_end, stw.heartbeat, stw.onset, stw.outcome, stw.log, stw.exception, stw.return and stw.diagnostic (docs/PROTOCOL.md); a newer producer may need a newer receiver", rec.EventName)
	}
	switch len(rec.TraceId) {
	case 0:
	case len(e.TraceID):
		copy(e.TraceID[:], rec.TraceId)
	default:
		return e, fmt.Errorf("trace_id has %d bytes, want 16", len(rec.TraceId))
	}
	switch len(rec.SpanId) {
	case 0:
	case len(e.SpanID):
		copy(e.SpanID[:], rec.SpanId)
	default:
		return e, fmt.Errorf("span_id has %d bytes, want 8", len(rec.SpanId))
	}
	if isSpanEvent(kind) {
		if !e.TraceID.IsValid() {
			return e, errors.New("trace_id is missing or all zero: a span event needs the trace id of its span")
		}
		if !e.SpanID.IsValid() {
			return e, errors.New("span_id is missing or all zero: a span event needs the id of its span")
		}
	}
	e.Time = timeFromUnixNano(rec.TimeUnixNano)

	var f recordFields
	f.collect(rec.Attributes)
	r := &fieldReader{}
	if f.version != nil {
		if v := r.int(AttrProtocolVersion, f.version); r.err == nil && v != 1 {
			return e, fmt.Errorf("%s is %d: this receiver speaks version 1 only", AttrProtocolVersion, v)
		}
	}
	switch {
	case f.streamID != nil:
		e.StreamID = r.streamID(AttrStreamID, f.streamID)
	case e.TraceID.IsValid():
		e.StreamID = bridge.StreamID(e.TraceID)
	default:
		return e, fmt.Errorf("%s is missing and the record has no trace_id to stand for it", AttrStreamID)
	}
	if f.sequence == nil {
		return e, fmt.Errorf("%s is missing: every stw.* record needs its int sequence number in its stream", AttrSequence)
	}
	e.Sequence = uint64(r.count(AttrSequence, f.sequence))
	if r.err != nil {
		return e, r.err
	}
	if !e.StreamID.IsValid() {
		return e, fmt.Errorf("%s is all zero", AttrStreamID)
	}

	switch kind {
	case bridge.KindSpanOpen:
		if f.name == nil {
			return e, fmt.Errorf("%s is missing: stw.span_open needs the span's name", AttrSpanName)
		}
		b := &bridge.SpanOpen{
			Name:         r.str(AttrSpanName, f.name),
			SpanKind:     trace.SpanKindInternal,
			TraceFlags:   trace.TraceFlags(rec.Flags & 0xff),
			RemoteParent: r.boolean(AttrRemoteParent, f.remoteParent),
			Attributes:   r.attributesBody(rec.Body),
			Links:        r.links(AttrLinks, f.links),
		}
		if f.parent != nil {
			b.Parent = r.parentSpanID(AttrParentSpanID, f.parent)
		}
		if f.kind != nil {
			k := r.int(AttrSpanKind, f.kind)
			if k < int64(trace.SpanKindUnspecified) || k > int64(trace.SpanKindConsumer) {
				r.fail(fmt.Errorf("%s is %d, want an OTLP span kind from 0 to 5", AttrSpanKind, k))
			}
			b.SpanKind = trace.SpanKind(k)
		}
		b.TraceState = r.traceState(AttrTraceState, f.traceState)
		e.Body = b
	case bridge.KindUpdateName:
		if f.name == nil {
			return e, fmt.Errorf("%s is missing: stw.update_name needs the new name", AttrSpanName)
		}
		e.Body = &bridge.UpdateName{Name: r.str(AttrSpanName, f.name)}
	case bridge.KindAttributes:
		e.Body = &bridge.Attributes{Attributes: r.attributesBody(rec.Body)}
	case bridge.KindStatus:
		e.Body = &bridge.StatusUpdate{Status: r.status(f.statusCode, f.statusMessage)}
	case bridge.KindSpanEnd:
		e.Body = &bridge.SpanEndData{
			Status:            r.status(f.statusCode, f.statusMessage),
			Attributes:        r.attributesBody(rec.Body),
			Events:            r.spanEvents(AttrEvents, f.events),
			Links:             r.links(AttrLinks, f.links),
			DroppedAttributes: r.count(AttrDroppedAttributes, f.droppedAttrs),
			DroppedEvents:     r.count(AttrDroppedEvents, f.droppedEvents),
			DroppedLinks:      r.count(AttrDroppedLinks, f.droppedLinks),
			ChildSpanCount:    r.count(AttrChildSpanCount, f.childCount),
			Unfinished:        r.boolean(AttrUnfinished, f.unfinished),
			Outcome:           r.str(AttrSpanOutcome, f.spanOutcome),
		}
	case bridge.KindHeartbeat:
		e.Body = &bridge.Heartbeat{}
	case bridge.KindOnset:
		b := &bridge.Onset{
			ExecutionModel:    r.str(AttrOnsetExecModel, f.execModel),
			ScriptName:        r.str(AttrOnsetScriptName, f.scriptName),
			ScriptVersion:     r.str(AttrOnsetScriptVersion, f.scriptVersion),
			Entrypoint:        r.str(AttrOnsetEntrypoint, f.entrypoint),
			ScriptTags:        r.strings(AttrOnsetScriptTags, f.scriptTags),
			Info:              r.triggerInfo(AttrOnsetInfo, f.info),
			DispatchNamespace: r.str(AttrOnsetDispatchNS, f.dispatchNS),
			Unsampled:         r.boolean(AttrOnsetUnsampled, f.unsampled),
			Attributes:        r.attributesBody(rec.Body),
		}
		if f.parent != nil {
			b.Parent = r.parentSpanID(AttrParentSpanID, f.parent)
		}
		e.Body = b
	case bridge.KindOutcome:
		b := &bridge.Outcome{
			Outcome:  "ok",
			CPUTime:  time.Duration(r.count(AttrOutcomeCPUTime, f.cpuTime)),
			WallTime: time.Duration(r.count(AttrOutcomeWallTime, f.wallTime)),
		}
		if f.outcome != nil {
			b.Outcome = r.str(AttrOutcomeResult, f.outcome)
		}
		e.Body = b
	case bridge.KindLog:
		e.Body = &bridge.Log{Level: rec.SeverityText, Message: r.str("body", rec.Body), Truncated: r.boolean(AttrLogTruncated, f.logTruncated)}
	case bridge.KindDiagnosticChannel:
		e.Body = &bridge.DiagnosticChannel{Channel: r.str(AttrDiagnosticChannel, f.diagChannel), Message: r.str("body", rec.Body)}
	case bridge.KindException:
		e.Body = &bridge.Exception{
			Name:    r.str(AttrExceptionType, f.excType),
			Message: r.str(AttrExceptionMessage, f.excMessage),
			Stack:   r.str(AttrExceptionStack, f.excStack),
		}
	case bridge.KindReturn:
		e.Body = &bridge.Return{StatusCode: int(r.int(AttrReturnStatusCode, f.returnStatus))}
	case bridge.KindStreamDiagnostic:
		if f.diagDropped == nil {
			return e, fmt.Errorf("%s is missing: a diagnostic says how many events were dropped", AttrDiagnosticDropped)
		}
		e.Body = &bridge.StreamDiagnostic{DroppedEvents: uint64(r.count(AttrDiagnosticDropped, f.diagDropped))}
	}
	if r.err != nil {
		return bridge.Event{}, r.err
	}
	return e, nil
}
