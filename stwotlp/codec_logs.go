package stwotlp

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
	fr := new(flatRecord)
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
				fr.fromProto(rec)
				e, err := decodeRecord(fr)
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

// A recordField is a record attribute the protocol defines.
type recordField uint8

const (
	fStreamID recordField = iota
	fSequence
	fVersion
	fName
	fParent
	fKind
	fTraceState
	fRemoteParent
	fLinks
	fEvents
	fStatusCode
	fStatusMessage
	fDroppedAttrs
	fDroppedEvents
	fDroppedLinks
	fChildCount
	fUnfinished
	fContinues
	fExecModel
	fScriptName
	fScriptVersion
	fEntrypoint
	fScriptTags
	fDispatchNS
	fUnsampled
	fInfo
	fSpanOutcome
	fOutcome
	fCPUTime
	fWallTime
	fExcType
	fExcMessage
	fExcStack
	fReturnStatus
	fDiagDropped
	fLogTruncated
	fDiagChannel
	numRecordFields
)

// fieldOf returns the record field named key; ok is false for attributes the
// protocol does not define, which decoding ignores.
func fieldOf(key string) (f recordField, ok bool) {
	switch key {
	case AttrStreamID:
		return fStreamID, true
	case AttrSequence:
		return fSequence, true
	case AttrProtocolVersion:
		return fVersion, true
	case AttrSpanName:
		return fName, true
	case AttrParentSpanID:
		return fParent, true
	case AttrSpanKind:
		return fKind, true
	case AttrTraceState:
		return fTraceState, true
	case AttrRemoteParent:
		return fRemoteParent, true
	case AttrLinks:
		return fLinks, true
	case AttrEvents:
		return fEvents, true
	case AttrStatusCode:
		return fStatusCode, true
	case AttrStatusMessage:
		return fStatusMessage, true
	case AttrDroppedAttributes:
		return fDroppedAttrs, true
	case AttrDroppedEvents:
		return fDroppedEvents, true
	case AttrDroppedLinks:
		return fDroppedLinks, true
	case AttrChildSpanCount:
		return fChildCount, true
	case AttrUnfinished:
		return fUnfinished, true
	case AttrStreamContinues:
		return fContinues, true
	case AttrOnsetExecModel:
		return fExecModel, true
	case AttrOnsetScriptName:
		return fScriptName, true
	case AttrOnsetScriptVersion:
		return fScriptVersion, true
	case AttrOnsetEntrypoint:
		return fEntrypoint, true
	case AttrOnsetScriptTags:
		return fScriptTags, true
	case AttrOnsetDispatchNS:
		return fDispatchNS, true
	case AttrOnsetUnsampled:
		return fUnsampled, true
	case AttrOnsetInfo:
		return fInfo, true
	case AttrSpanOutcome:
		return fSpanOutcome, true
	case AttrOutcomeResult:
		return fOutcome, true
	case AttrOutcomeCPUTime:
		return fCPUTime, true
	case AttrOutcomeWallTime:
		return fWallTime, true
	case AttrExceptionType:
		return fExcType, true
	case AttrExceptionMessage:
		return fExcMessage, true
	case AttrExceptionStack:
		return fExcStack, true
	case AttrReturnStatusCode:
		return fReturnStatus, true
	case AttrDiagnosticDropped:
		return fDiagDropped, true
	case AttrLogTruncated:
		return fLogTruncated, true
	case AttrDiagnosticChannel:
		return fDiagChannel, true
	}
	return 0, false
}

// recordFields holds the record attributes the protocol defines, as found: of
// repeated keys the last wins. Only the fields in set are meaningful, so that
// clearing set empties it.
type recordFields struct {
	set  uint64
	vals [numRecordFields]value
}

// put sets field f to v.
func (fs *recordFields) put(f recordField, v value) {
	fs.vals[f] = v
	fs.set |= 1 << f
}

// get returns field f, absent when it was not found.
func (fs *recordFields) get(f recordField) value {
	if fs.set&(1<<f) == 0 {
		return value{}
	}
	return fs.vals[f]
}

// has reports whether field f was found.
func (fs *recordFields) has(f recordField) bool { return fs.set&(1<<f) != 0 }

// flatRecord is a LogRecord as decodeRecord reads it, filled from a
// *logspb.LogRecord (fromProto) or straight from the wire (fastDecoder.parseRecord).
type flatRecord struct {
	eventName            string
	timeUnixNano         uint64
	observedTimeUnixNano uint64
	severityText         string
	flags                uint32
	traceID, spanID      []byte
	body                 value
	// bodyAttrs are the attributes of a kvlist body.
	bodyAttrs []attribute.KeyValue
	fields    recordFields
	// spanParts, when not nil, is where a stw.span's bodies go instead of a new
	// completeSpanParts.
	spanParts *completeSpanParts
}

// reset empties fr for the next record. It leaves the values of fields unset rather
// than zeroing them, so that it costs little per record.
func (fr *flatRecord) reset() {
	fr.eventName, fr.severityText = "", ""
	fr.timeUnixNano, fr.observedTimeUnixNano, fr.flags = 0, 0, 0
	fr.traceID, fr.spanID = nil, nil
	fr.body, fr.bodyAttrs = value{}, nil
	fr.fields.set = 0
	fr.spanParts = nil
}

// fromProto fills fr from rec.
func (fr *flatRecord) fromProto(rec *logspb.LogRecord) {
	fr.reset()
	fr.eventName, fr.severityText = rec.EventName, rec.SeverityText
	fr.timeUnixNano, fr.observedTimeUnixNano, fr.flags = rec.TimeUnixNano, rec.ObservedTimeUnixNano, rec.Flags
	fr.traceID, fr.spanID = rec.TraceId, rec.SpanId
	fr.body = optValue(rec.Body)
	if kvs := rec.Body.GetKvlistValue(); kvs != nil {
		fr.bodyAttrs = attrs(kvs.Values)
	}
	for _, a := range rec.Attributes {
		if a == nil {
			continue
		}
		if f, ok := fieldOf(a.Key); ok {
			fr.fields.put(f, pbValue(a.Value))
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
func decodeRecord(fr *flatRecord) (bridge.Event, error) {
	var e bridge.Event
	kind, ok := eventKinds[fr.eventName]
	if !ok {
		return e, fmt.Errorf("unknown event name %q: STW over OTLP version 1 defines stw.span_open, stw.update_name, stw.attributes, stw.status, stw.span_end, stw.heartbeat, stw.onset, stw.outcome, stw.log, stw.exception, stw.return, stw.diagnostic, stw.diagnostic_channel and, since 1.1, stw.span (docs/PROTOCOL.md); a newer producer may need a newer receiver", fr.eventName)
	}
	switch len(fr.traceID) {
	case 0:
	case len(e.TraceID):
		copy(e.TraceID[:], fr.traceID)
	default:
		return e, fmt.Errorf("trace_id has %d bytes, want 16", len(fr.traceID))
	}
	switch len(fr.spanID) {
	case 0:
	case len(e.SpanID):
		copy(e.SpanID[:], fr.spanID)
	default:
		return e, fmt.Errorf("span_id has %d bytes, want 8", len(fr.spanID))
	}
	if isSpanEvent(kind) {
		if !e.TraceID.IsValid() {
			return e, errors.New("trace_id is missing or all zero: a span event needs the trace id of its span")
		}
		if !e.SpanID.IsValid() {
			return e, errors.New("span_id is missing or all zero: a span event needs the id of its span")
		}
	}
	e.Time = timeFromUnixNano(fr.timeUnixNano)

	f := &fr.fields
	r := &fieldReader{}
	if f.has(fVersion) {
		if v := r.int(AttrProtocolVersion, f.get(fVersion)); r.err == nil && v != 1 {
			return e, fmt.Errorf("%s is %d: this receiver speaks version 1 only", AttrProtocolVersion, v)
		}
	}
	alone := kind == bridge.KindCompleteSpan && !f.has(fStreamID) && !f.has(fSequence)
	switch {
	case alone:
		e.StreamID = bridge.AloneStreamID(e.TraceID, e.SpanID)
	case f.has(fStreamID):
		e.StreamID = r.streamID(AttrStreamID, f.get(fStreamID))
	case e.TraceID.IsValid():
		e.StreamID = bridge.StreamID(e.TraceID)
	default:
		return e, fmt.Errorf("%s is missing and the record has no trace_id to stand for it", AttrStreamID)
	}
	switch {
	case alone:
	case !f.has(fSequence):
		return e, fmt.Errorf("%s is missing: every stw.* record needs its int sequence number in its stream, but a stw.span alone in its stream, which has neither it nor %s", AttrSequence, AttrStreamID)
	default:
		e.Sequence = uint64(r.count(AttrSequence, f.get(fSequence)))
	}
	if r.err != nil {
		return e, r.err
	}
	if !e.StreamID.IsValid() {
		return e, fmt.Errorf("%s is all zero", AttrStreamID)
	}

	switch kind {
	case bridge.KindSpanOpen:
		if !f.has(fName) {
			return e, fmt.Errorf("%s is missing: stw.span_open needs the span's name", AttrSpanName)
		}
		b := new(bridge.SpanOpen)
		r.spanOpen(b, fr)
		e.Body = b
	case bridge.KindCompleteSpan:
		if !f.has(fName) {
			return e, fmt.Errorf("%s is missing: stw.span needs the span's name", AttrSpanName)
		}
		if fr.timeUnixNano == 0 {
			return e, errors.New("time_unix_nano is missing: stw.span carries the span's start there (and its end in observed_time_unix_nano)")
		}
		if fr.observedTimeUnixNano == 0 {
			return e, errors.New("observed_time_unix_nano is missing: stw.span carries the span's end there (and its start in time_unix_nano)")
		}
		if fr.observedTimeUnixNano < fr.timeUnixNano {
			return e, errors.New("observed_time_unix_nano (the span's end) is before time_unix_nano (its start) on a stw.span")
		}
		// The record's attributes and links are all the Open's: it has one list of each.
		// The three bodies are one allocation, or room the decoder gives.
		parts := fr.spanParts
		if parts == nil {
			parts = new(completeSpanParts)
		}
		b := &parts.span
		*b = bridge.CompleteSpan{Start: e.Time, Open: &parts.open, End: &parts.end, Alone: alone}
		r.spanOpen(b.Open, fr)
		r.spanEnd(b.End, fr, false)
		e.Time = timeFromUnixNano(fr.observedTimeUnixNano)
		if alone && ((b.Open.Parent.IsValid() && !b.Open.RemoteParent) || b.End.StreamContinues) {
			return e, fmt.Errorf("a stw.span without %s and %s stands alone in its stream, so it must be a root (no parent, or a remote one) that does not continue: give it its stream's id and sequence", AttrStreamID, AttrSequence)
		}
		e.Body = b
	case bridge.KindUpdateName:
		if !f.has(fName) {
			return e, fmt.Errorf("%s is missing: stw.update_name needs the new name", AttrSpanName)
		}
		e.Body = &bridge.UpdateName{Name: r.str(AttrSpanName, f.get(fName))}
	case bridge.KindAttributes:
		e.Body = &bridge.Attributes{Attributes: r.attributesBody(fr.body, fr.bodyAttrs)}
	case bridge.KindStatus:
		e.Body = &bridge.StatusUpdate{Status: r.status(f.get(fStatusCode), f.get(fStatusMessage))}
	case bridge.KindSpanEnd:
		b := new(bridge.SpanEndData)
		r.spanEnd(b, fr, true)
		e.Body = b
	case bridge.KindHeartbeat:
		e.Body = &bridge.Heartbeat{}
	case bridge.KindOnset:
		b := &bridge.Onset{
			ExecutionModel:    r.str(AttrOnsetExecModel, f.get(fExecModel)),
			ScriptName:        r.str(AttrOnsetScriptName, f.get(fScriptName)),
			ScriptVersion:     r.str(AttrOnsetScriptVersion, f.get(fScriptVersion)),
			Entrypoint:        r.str(AttrOnsetEntrypoint, f.get(fEntrypoint)),
			ScriptTags:        r.strings(AttrOnsetScriptTags, f.get(fScriptTags)),
			Info:              r.triggerInfo(AttrOnsetInfo, f.get(fInfo)),
			DispatchNamespace: r.str(AttrOnsetDispatchNS, f.get(fDispatchNS)),
			Unsampled:         r.boolean(AttrOnsetUnsampled, f.get(fUnsampled)),
			Attributes:        r.attributesBody(fr.body, fr.bodyAttrs),
		}
		if f.has(fParent) {
			b.Parent = r.parentSpanID(AttrParentSpanID, f.get(fParent))
		}
		e.Body = b
	case bridge.KindOutcome:
		b := &bridge.Outcome{
			Outcome:  "ok",
			CPUTime:  time.Duration(r.count(AttrOutcomeCPUTime, f.get(fCPUTime))),
			WallTime: time.Duration(r.count(AttrOutcomeWallTime, f.get(fWallTime))),
		}
		if f.has(fOutcome) {
			b.Outcome = r.str(AttrOutcomeResult, f.get(fOutcome))
		}
		e.Body = b
	case bridge.KindLog:
		e.Body = &bridge.Log{Level: fr.severityText, Message: r.str("body", fr.body), Truncated: r.boolean(AttrLogTruncated, f.get(fLogTruncated))}
	case bridge.KindDiagnosticChannel:
		e.Body = &bridge.DiagnosticChannel{Channel: r.str(AttrDiagnosticChannel, f.get(fDiagChannel)), Message: r.str("body", fr.body)}
	case bridge.KindException:
		e.Body = &bridge.Exception{
			Name:    r.str(AttrExceptionType, f.get(fExcType)),
			Message: r.str(AttrExceptionMessage, f.get(fExcMessage)),
			Stack:   r.str(AttrExceptionStack, f.get(fExcStack)),
		}
	case bridge.KindReturn:
		e.Body = &bridge.Return{StatusCode: int(r.int(AttrReturnStatusCode, f.get(fReturnStatus)))}
	case bridge.KindStreamDiagnostic:
		if !f.has(fDiagDropped) {
			return e, fmt.Errorf("%s is missing: a diagnostic says how many events were dropped", AttrDiagnosticDropped)
		}
		e.Body = &bridge.StreamDiagnostic{DroppedEvents: uint64(r.count(AttrDiagnosticDropped, f.get(fDiagDropped)))}
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
func (r *fieldReader) spanOpen(b *bridge.SpanOpen, fr *flatRecord) {
	f := &fr.fields
	*b = bridge.SpanOpen{
		Name:         r.str(AttrSpanName, f.get(fName)),
		SpanKind:     trace.SpanKindInternal,
		TraceFlags:   trace.TraceFlags(fr.flags & 0xff),
		RemoteParent: r.boolean(AttrRemoteParent, f.get(fRemoteParent)),
		Attributes:   r.attributesBody(fr.body, fr.bodyAttrs),
		Links:        r.links(AttrLinks, f.get(fLinks)),
	}
	if f.has(fParent) {
		b.Parent = r.parentSpanID(AttrParentSpanID, f.get(fParent))
	}
	if f.has(fKind) {
		k := r.int(AttrSpanKind, f.get(fKind))
		if k < int64(trace.SpanKindUnspecified) || k > int64(trace.SpanKindConsumer) {
			r.fail(fmt.Errorf("%s is %d, want an OTLP span kind from 0 to 5", AttrSpanKind, k))
		}
		b.SpanKind = trace.SpanKind(k)
	}
	b.TraceState = r.traceState(AttrTraceState, f.get(fTraceState))
}

// spanEnd reads the fields of a span's end (stw.span_end, stw.span) into b; without
// withLists (a stw.span, whose attributes and links its opening holds) it leaves
// those out.
func (r *fieldReader) spanEnd(b *bridge.SpanEndData, fr *flatRecord, withLists bool) {
	f := &fr.fields
	*b = bridge.SpanEndData{
		Status:            r.status(f.get(fStatusCode), f.get(fStatusMessage)),
		Events:            r.spanEvents(AttrEvents, f.get(fEvents)),
		DroppedAttributes: r.count(AttrDroppedAttributes, f.get(fDroppedAttrs)),
		DroppedEvents:     r.count(AttrDroppedEvents, f.get(fDroppedEvents)),
		DroppedLinks:      r.count(AttrDroppedLinks, f.get(fDroppedLinks)),
		ChildSpanCount:    r.count(AttrChildSpanCount, f.get(fChildCount)),
		Unfinished:        r.boolean(AttrUnfinished, f.get(fUnfinished)),
		StreamContinues:   r.boolean(AttrStreamContinues, f.get(fContinues)),
		Outcome:           r.str(AttrSpanOutcome, f.get(fSpanOutcome)),
	}
	if withLists {
		b.Attributes = r.attributesBody(fr.body, fr.bodyAttrs)
		b.Links = r.links(AttrLinks, f.get(fLinks))
	}
}
