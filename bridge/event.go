package bridge

import (
	"encoding/hex"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// StreamID identifies one stream (an STW invocation id): 128 bits, written as 32 hex digits.
type StreamID [16]byte

// String returns the id as 32 lower-case hex digits.
func (id StreamID) String() string { return hex.EncodeToString(id[:]) }

// IsValid reports whether the id is not all zeros.
func (id StreamID) IsValid() bool { return id != StreamID{} }

// AloneStreamID returns the stream id of a span alone in its stream (protocol 1.1: a
// CompleteSpan with Alone set travels without a stream id or sequence): the trace id
// with the span id folded into its last 8 bytes. It differs from the trace id itself,
// which stands for a missing stream id in version 1, since a span id is never zero.
func AloneStreamID(t trace.TraceID, s trace.SpanID) StreamID {
	id := StreamID(t)
	for i, b := range s {
		id[8+i] ^= b
	}
	return id
}

// Event is the envelope of every STW event: which span and stream it concerns, where it
// stands in its stream, when it happened, and its typed Body.
//
// An Event is a value; its Body and the slices it holds are never modified after the
// event is published, so tails may keep events after their Consume call returns.
type Event struct {
	// TraceID and SpanID name the span the event concerns (for SpanOpen, the new span).
	TraceID trace.TraceID
	SpanID  trace.SpanID
	// StreamID and Sequence place the event in its stream; Sequence starts at 0.
	StreamID StreamID
	Sequence uint64
	// Time is when the event happened: the start time for SpanOpen, the end time for
	// SpanEndData.
	Time time.Time
	// Resource and Scope describe the producer; either may be nil when unknown.
	// Producers share one pointer between the events of a span.
	Resource *resource.Resource
	Scope    *instrumentation.Scope
	// Body is one of the types of this file, always as a pointer (*SpanOpen, ...).
	Body Body
}

// Kind names the type of an event body.
type Kind uint8

// The event kinds. Their wire names are in docs/PROTOCOL.md.
const (
	KindUnknown Kind = iota
	KindSpanOpen
	KindUpdateName
	KindAttributes
	KindStatus
	KindSpanEnd
	KindHeartbeat
	KindOnset
	KindOutcome
	KindLog
	KindException
	KindReturn
	KindStreamDiagnostic
	KindDiagnosticChannel
	KindCompleteSpan
)

var kindNames = [...]string{
	KindUnknown:           "unknown",
	KindSpanOpen:          "span_open",
	KindUpdateName:        "update_name",
	KindAttributes:        "attributes",
	KindStatus:            "status",
	KindSpanEnd:           "span_end",
	KindHeartbeat:         "heartbeat",
	KindOnset:             "onset",
	KindOutcome:           "outcome",
	KindLog:               "log",
	KindException:         "exception",
	KindReturn:            "return",
	KindStreamDiagnostic:  "diagnostic",
	KindDiagnosticChannel: "diagnostic_channel",
	KindCompleteSpan:      "span",
}

// String returns the kind's short name, as used after "stw." on the wire.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Body is the typed payload of an Event. The set of bodies is closed: the types below.
type Body interface {
	Kind() Kind
	isBody()
}

// Link is a link from a span to another span.
type Link struct {
	SpanContext           trace.SpanContext
	Attributes            []attribute.KeyValue
	DroppedAttributeCount int
}

// SpanEvent is an event recorded on a span (span.AddEvent, RecordError).
type SpanEvent struct {
	Name                  string
	Time                  time.Time
	Attributes            []attribute.KeyValue
	DroppedAttributeCount int
}

// Status is a span's status.
type Status struct {
	Code        codes.Code
	Description string
}

// SpanOpen reports a span the moment it starts: everything known at start.
// The envelope's SpanID is the new span, its Time the start time.
type SpanOpen struct {
	Name       string
	SpanKind   trace.SpanKind
	Parent     trace.SpanID // zero for a root span
	TraceState trace.TraceState
	TraceFlags trace.TraceFlags
	// RemoteParent is true when the parent span lives in another process.
	RemoteParent bool
	Attributes   []attribute.KeyValue
	Links        []Link
}

// UpdateName reports a rename (OTel's Span.UpdateName): Name supersedes the name given
// at start and every earlier UpdateName.
type UpdateName struct {
	Name string
}

// Attributes reports attributes set on a span after it opened. Later values of a key
// replace earlier ones.
type Attributes struct {
	Attributes []attribute.KeyValue
}

// StatusUpdate reports a status set on a span while it is open.
type StatusUpdate struct {
	Status Status
}

// SpanEndData reports a span's end: the envelope's Time is the end time. Attributes
// holds the attributes added or changed since SpanOpen (merged over the earlier ones),
// Events and Links all events and the links added after start.
type SpanEndData struct {
	Status     Status
	Attributes []attribute.KeyValue
	Events     []SpanEvent
	Links      []Link

	DroppedAttributes int
	DroppedEvents     int
	DroppedLinks      int
	ChildSpanCount    int

	// Unfinished is true when the span did not really end: its producer shut down,
	// crashed, or sent no end within the orphan timeout. Such a span is exported with
	// status Error and the attribute stw.unfinished=true.
	Unfinished bool

	// StreamContinues, on a stream root's end, says that the stream does not end
	// there although no announced span of it is open: spans held back by the announce
	// delay are, and an Outcome will close the stream (protocol 1.1).
	StreamContinues bool

	// Outcome is workerd's spanClose outcome ("ok", "exception", "canceled", ...) when
	// the end came from workerd; empty otherwise.
	Outcome string
}

// Heartbeat tells receivers that the producer of a stream is alive while the stream
// has open spans and nothing else was sent on it for a while.
type Heartbeat struct{}

// Onset opens an STW invocation: the stream's root span (envelope SpanID), what
// triggered it and which script ran.
type Onset struct {
	Parent         trace.SpanID // the span context the invocation continues, if any
	ExecutionModel string
	ScriptName     string
	ScriptVersion  string
	Entrypoint     string
	ScriptTags     []string
	Info           TriggerInfo
	// DispatchNamespace is the Workers for Platforms namespace of the script, if any.
	DispatchNamespace string
	// Attributes are attributes workerd attaches to the invocation itself.
	Attributes []attribute.KeyValue
	// Unsampled is true when the onset carried trace flags without the sampled bit:
	// an upstream decided not to sample the trace. Absent flags mean no decision.
	Unsampled bool
}

// TriggerInfo describes what started an invocation (workerd's onset "info"). Type is
// the trigger ("fetch", "jsrpc", "scheduled", "alarm", "queue", "email", "trace",
// "custom", ...); the fields used depend on it.
type TriggerInfo struct {
	Type string
	// fetch
	Method  string
	URL     string
	Headers []Header
	CfJSON  string // raw JSON of the request's cf object, if any
	// jsrpc
	MethodName string
	// scheduled, alarm
	Cron          string
	ScheduledTime time.Time
	// queue
	QueueName string
	BatchSize int
	// email
	MailFrom string
	RcptTo   string
	RawSize  int
	// Raw holds the info's raw JSON for trigger types and fields not modelled above.
	Raw string
}

// Header is one HTTP header.
type Header struct {
	Name  string
	Value string
}

// Outcome closes an STW invocation (and a local stream): no event follows it.
type Outcome struct {
	Outcome  string // "ok", or why not: "exception", "exceededCpu", "canceled", ...
	CPUTime  time.Duration
	WallTime time.Duration
}

// Log is a console log line of an invocation, concerning the envelope's span.
type Log struct {
	Level   string // "debug", "info", "log", "warn", "error"
	Message string // JSON of the logged values, as workerd sends it
	// Truncated is true when workerd cut the message to its event size limit; the
	// message is then the start of the JSON text, not valid JSON.
	Truncated bool
}

// Exception is an uncaught exception of an invocation.
type Exception struct {
	Name    string
	Message string
	Stack   string
}

// Return reports what an invocation returned (for fetch, the response status).
type Return struct {
	StatusCode int // 0 when not a fetch response
}

// DiagnosticChannel is a message an invocation published on a diagnostics channel
// (node:diagnostics_channel), concerning the envelope's span.
type DiagnosticChannel struct {
	Channel string
	Message string // JSON of the published value
}

// StreamDiagnostic reports that events of the stream were dropped before reaching the
// tail, as workerd's streamDiagnostic droppedEvents.
type StreamDiagnostic struct {
	DroppedEvents uint64
}

// CompleteSpan reports in one event a span that ended before it was announced
// (protocol 1.1): what its SpanOpen and SpanEndData would have carried. The envelope's
// Time is the end time; Open.Name is the span's final name.
//
// Alone marks a span that is its stream's only event: a root (no parent, or a remote
// one) that ended before its announcement while no other event of its stream was
// sent. Such an event has sequence 0 and the stream id AloneStreamID, and travels
// without either (docs/PROTOCOL.md, "A span alone in its stream").
type CompleteSpan struct {
	Start time.Time
	Open  *SpanOpen
	End   *SpanEndData
	Alone bool
}

func (*SpanOpen) Kind() Kind          { return KindSpanOpen }
func (*UpdateName) Kind() Kind        { return KindUpdateName }
func (*Attributes) Kind() Kind        { return KindAttributes }
func (*StatusUpdate) Kind() Kind      { return KindStatus }
func (*SpanEndData) Kind() Kind       { return KindSpanEnd }
func (*Heartbeat) Kind() Kind         { return KindHeartbeat }
func (*Onset) Kind() Kind             { return KindOnset }
func (*Outcome) Kind() Kind           { return KindOutcome }
func (*Log) Kind() Kind               { return KindLog }
func (*Exception) Kind() Kind         { return KindException }
func (*Return) Kind() Kind            { return KindReturn }
func (*StreamDiagnostic) Kind() Kind  { return KindStreamDiagnostic }
func (*DiagnosticChannel) Kind() Kind { return KindDiagnosticChannel }
func (*CompleteSpan) Kind() Kind      { return KindCompleteSpan }

func (*SpanOpen) isBody()          {}
func (*UpdateName) isBody()        {}
func (*Attributes) isBody()        {}
func (*StatusUpdate) isBody()      {}
func (*SpanEndData) isBody()       {}
func (*Heartbeat) isBody()         {}
func (*Onset) isBody()             {}
func (*Outcome) isBody()           {}
func (*Log) isBody()               {}
func (*Exception) isBody()         {}
func (*Return) isBody()            {}
func (*StreamDiagnostic) isBody()  {}
func (*DiagnosticChannel) isBody() {}
func (*CompleteSpan) isBody()      {}

// Kind returns the kind of the event's body, KindUnknown when it has none.
func (e *Event) Kind() Kind {
	if e.Body == nil {
		return KindUnknown
	}
	return e.Body.Kind()
}

// Span is a complete span, as the Assembler builds it from a span's events.
type Span struct {
	TraceID      trace.TraceID
	SpanID       trace.SpanID
	Parent       trace.SpanID
	RemoteParent bool
	TraceState   trace.TraceState
	TraceFlags   trace.TraceFlags
	Name         string
	SpanKind     trace.SpanKind
	Start, End   time.Time
	Attributes   []attribute.KeyValue
	Events       []SpanEvent
	Links        []Link
	Status       Status

	DroppedAttributes int
	DroppedEvents     int
	DroppedLinks      int
	ChildSpanCount    int

	Resource *resource.Resource
	Scope    *instrumentation.Scope
	StreamID StreamID

	// Unfinished marks a span whose end never came; see SpanEndData.Unfinished.
	Unfinished bool
}
