package stwotlp

import (
	"strings"

	"github.com/stwbridge/stwbridge/bridge"
)

// Wire names of STW over OTLP, version 1 (docs/PROTOCOL.md). Every lifecycle event is
// one OTLP LogRecord whose event_name is one of the Event names.
const (
	EventSpanOpen   = "stw.span_open"
	EventUpdateName = "stw.update_name"
	EventAttributes = "stw.attributes"
	EventStatus     = "stw.status"
	EventSpanEnd    = "stw.span_end"
	EventHeartbeat  = "stw.heartbeat"
	EventOnset      = "stw.onset"
	EventOutcome    = "stw.outcome"
	EventLog        = "stw.log"
	EventException  = "stw.exception"
	EventReturn     = "stw.return"
	EventDiagnostic = "stw.diagnostic"
	// EventDiagnosticChannel carries a diagnostics channel message: the channel in
	// AttrDiagnosticChannel, the message's JSON as the body.
	EventDiagnosticChannel = "stw.diagnostic_channel"
	// EventSpan carries a whole span that ended before it was announced (version
	// 1.1): what its stw.span_open and stw.span_end would have carried.
	EventSpan = "stw.span"
)

// Record attributes of the envelope, present on every record (stw.stream_id may be
// left out when the stream id equals the record's trace id).
const (
	AttrStreamID = "stw.stream_id"
	AttrSequence = "stw.sequence"
	// AttrProtocolVersion is absent in version 1; a record that carries it with any
	// value other than 1 is rejected by version 1 receivers.
	AttrProtocolVersion = "stw.protocol_version"
)

// Record attributes of the span events (stw.span_open, stw.update_name, stw.status,
// stw.span_end). AttrParentSpanID also names the parent on stw.onset, and
// AttrUnfinished is also the span attribute of unfinished spans exported as OTLP spans.
const (
	AttrParentSpanID      = "stw.parent_span_id"
	AttrSpanName          = "stw.span.name"
	AttrSpanKind          = "stw.span.kind"
	AttrTraceState        = "stw.span.trace_state"
	AttrRemoteParent      = "stw.span.remote_parent"
	AttrLinks             = "stw.span.links"
	AttrEvents            = "stw.span.events"
	AttrStatusCode        = "stw.span.status.code"
	AttrStatusMessage     = "stw.span.status.message"
	AttrDroppedAttributes = "stw.span.dropped_attributes_count"
	AttrDroppedEvents     = "stw.span.dropped_events_count"
	AttrDroppedLinks      = "stw.span.dropped_links_count"
	AttrChildSpanCount    = "stw.span.child_span_count"
	AttrSpanOutcome       = "stw.span.outcome"
	AttrUnfinished        = "stw.unfinished"
	// AttrStreamContinues, true on a stream root's stw.span_end or stw.span, says that
	// the stream does not end there: spans the producer has not announced are open.
	AttrStreamContinues = "stw.stream.continues"
)

// Record attributes of stw.onset; the trigger info is a kvlist under AttrOnsetInfo.
const (
	AttrOnsetExecModel     = "stw.onset.execution_model"
	AttrOnsetScriptName    = "stw.onset.script_name"
	AttrOnsetScriptVersion = "stw.onset.script_version"
	AttrOnsetEntrypoint    = "stw.onset.entrypoint"
	AttrOnsetScriptTags    = "stw.onset.script_tags"
	AttrOnsetDispatchNS    = "stw.onset.dispatch_namespace"
	AttrOnsetInfo          = "stw.onset.info"
	AttrOnsetUnsampled     = "stw.onset.unsampled"
)

// Record attributes of stw.outcome, stw.exception (OTel semantic-convention names),
// stw.return and stw.diagnostic.
const (
	AttrOutcomeResult     = "stw.outcome.result"
	AttrOutcomeCPUTime    = "stw.outcome.cpu_time_ns"
	AttrOutcomeWallTime   = "stw.outcome.wall_time_ns"
	AttrExceptionType     = "exception.type"
	AttrExceptionMessage  = "exception.message"
	AttrExceptionStack    = "exception.stacktrace"
	AttrReturnStatusCode  = "stw.return.status_code"
	AttrDiagnosticChannel = "stw.diagnostic_channel.name"
	// AttrLogTruncated is true on a stw.log whose message workerd truncated.
	AttrLogTruncated      = "stw.log.truncated"
	AttrDiagnosticDropped = "stw.diagnostic.dropped_events"
)

// EventName returns the wire name of an event kind ("stw." followed by k.String()),
// "" for KindUnknown and for values outside the closed set of kinds.
func EventName(k bridge.Kind) string {
	if int(k) >= len(eventNames) {
		return ""
	}
	return eventNames[k]
}

var eventNames = [...]string{
	bridge.KindSpanOpen:          EventSpanOpen,
	bridge.KindUpdateName:        EventUpdateName,
	bridge.KindAttributes:        EventAttributes,
	bridge.KindStatus:            EventStatus,
	bridge.KindSpanEnd:           EventSpanEnd,
	bridge.KindHeartbeat:         EventHeartbeat,
	bridge.KindOnset:             EventOnset,
	bridge.KindOutcome:           EventOutcome,
	bridge.KindLog:               EventLog,
	bridge.KindException:         EventException,
	bridge.KindReturn:            EventReturn,
	bridge.KindStreamDiagnostic:  EventDiagnostic,
	bridge.KindDiagnosticChannel: EventDiagnosticChannel,
	bridge.KindCompleteSpan:      EventSpan,
}

var eventKinds = func() map[string]bridge.Kind {
	m := make(map[string]bridge.Kind, len(eventNames))
	for k, name := range eventNames {
		if name != "" {
			m[name] = bridge.Kind(k)
		}
	}
	return m
}()

// isSTW reports whether an event_name belongs to the protocol's namespace.
func isSTW(eventName string) bool { return strings.HasPrefix(eventName, "stw.") }
