package stwotlp

import (
	"errors"
	"fmt"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
)

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

// DecodeEventsRequest is DecodeEvents for a request already unmarshalled (OTLP/HTTP
// JSON, a message from a gRPC client); Other shares its records, resources and scopes
// with req.
func DecodeEventsRequest(req *collogspb.ExportLogsServiceRequest) DecodedLogs {
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
	logTruncated, diagChannel, unsampled, continues                   *commonpb.AnyValue
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
		case AttrStreamContinues:
			f.continues = v
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
	case bridge.KindSpanOpen, bridge.KindUpdateName, bridge.KindAttributes, bridge.KindStatus, bridge.KindSpanEnd, bridge.KindCompleteSpan:
		return true
	}
	return false
}

// decodeRecord decodes one stw.* record, or says what is wrong with it.
func decodeRecord(rec *logspb.LogRecord) (bridge.Event, error) {
	var e bridge.Event
	kind, ok := eventKinds[rec.EventName]
	if !ok {
		return e, fmt.Errorf("unknown event name %q: STW over OTLP version 1 defines stw.span_open, stw.update_name, stw.attributes, stw.status, stw.span_end, stw.heartbeat, stw.onset, stw.outcome, stw.log, stw.exception, stw.return, stw.diagnostic, stw.diagnostic_channel and, since 1.1, stw.span (docs/PROTOCOL.md); a newer producer may need a newer receiver", rec.EventName)
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
	alone := kind == bridge.KindCompleteSpan && f.streamID == nil && f.sequence == nil
	switch {
	case alone:
		e.StreamID = bridge.AloneStreamID(e.TraceID, e.SpanID)
	case f.streamID != nil:
		e.StreamID = r.streamID(AttrStreamID, f.streamID)
	case e.TraceID.IsValid():
		e.StreamID = bridge.StreamID(e.TraceID)
	default:
		return e, fmt.Errorf("%s is missing and the record has no trace_id to stand for it", AttrStreamID)
	}
	switch {
	case alone:
	case f.sequence == nil:
		return e, fmt.Errorf("%s is missing: every stw.* record needs its int sequence number in its stream, but a stw.span alone in its stream, which has neither it nor %s", AttrSequence, AttrStreamID)
	default:
		e.Sequence = uint64(r.count(AttrSequence, f.sequence))
	}
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
		b := new(bridge.SpanOpen)
		r.spanOpen(b, rec, &f)
		e.Body = b
	case bridge.KindCompleteSpan:
		if f.name == nil {
			return e, fmt.Errorf("%s is missing: stw.span needs the span's name", AttrSpanName)
		}
		if rec.TimeUnixNano == 0 {
			return e, errors.New("time_unix_nano is missing: stw.span carries the span's start there (and its end in observed_time_unix_nano)")
		}
		if rec.ObservedTimeUnixNano == 0 {
			return e, errors.New("observed_time_unix_nano is missing: stw.span carries the span's end there (and its start in time_unix_nano)")
		}
		if rec.ObservedTimeUnixNano < rec.TimeUnixNano {
			return e, errors.New("observed_time_unix_nano (the span's end) is before time_unix_nano (its start) on a stw.span")
		}
		// The record's attributes and links are all the Open's: it has one list of each.
		// The three bodies are one allocation.
		parts := new(completeSpanParts)
		b := &parts.span
		*b = bridge.CompleteSpan{Start: e.Time, Open: &parts.open, End: &parts.end, Alone: alone}
		r.spanOpen(b.Open, rec, &f)
		r.spanEnd(b.End, nil, &f)
		e.Time = timeFromUnixNano(rec.ObservedTimeUnixNano)
		if alone && ((b.Open.Parent.IsValid() && !b.Open.RemoteParent) || b.End.StreamContinues) {
			return e, fmt.Errorf("a stw.span without %s and %s stands alone in its stream, so it must be a root (no parent, or a remote one) that does not continue: give it its stream's id and sequence", AttrStreamID, AttrSequence)
		}
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
		b := new(bridge.SpanEndData)
		r.spanEnd(b, rec, &f)
		e.Body = b
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

// completeSpanParts holds the bodies of a decoded stw.span, allocated together.
type completeSpanParts struct {
	span bridge.CompleteSpan
	open bridge.SpanOpen
	end  bridge.SpanEndData
}

// spanOpen reads the fields of a span's opening (stw.span_open, stw.span) into b.
func (r *fieldReader) spanOpen(b *bridge.SpanOpen, rec *logspb.LogRecord, f *recordFields) {
	*b = bridge.SpanOpen{
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
}

// spanEnd reads the fields of a span's end (stw.span_end, stw.span) into b; with rec
// nil (a stw.span, whose attributes and links its opening holds) it leaves those out.
func (r *fieldReader) spanEnd(b *bridge.SpanEndData, rec *logspb.LogRecord, f *recordFields) {
	*b = bridge.SpanEndData{
		Status:            r.status(f.statusCode, f.statusMessage),
		Events:            r.spanEvents(AttrEvents, f.events),
		DroppedAttributes: r.count(AttrDroppedAttributes, f.droppedAttrs),
		DroppedEvents:     r.count(AttrDroppedEvents, f.droppedEvents),
		DroppedLinks:      r.count(AttrDroppedLinks, f.droppedLinks),
		ChildSpanCount:    r.count(AttrChildSpanCount, f.childCount),
		Unfinished:        r.boolean(AttrUnfinished, f.unfinished),
		StreamContinues:   r.boolean(AttrStreamContinues, f.continues),
		Outcome:           r.str(AttrSpanOutcome, f.spanOutcome),
	}
	if rec != nil {
		b.Attributes = r.attributesBody(rec.Body)
		b.Links = r.links(AttrLinks, f.links)
	}
}
