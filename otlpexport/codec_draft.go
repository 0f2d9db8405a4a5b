package otlpexport

// Pinned API of the codec (issue 4); the implementation replaces this file.

import (
	"github.com/stwbridge/stwbridge/bridge"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// Wire names of STW over OTLP, version 1 (docs/PROTOCOL.md).
const (
	EventSpanOpen   = "stw.span_open"
	EventUpdateName = "stw.update_name"
	EventSpanEnd    = "stw.span_end"

	AttrStreamID     = "stw.stream_id"
	AttrSequence     = "stw.sequence"
	AttrParentSpanID = "stw.parent_span_id"
	AttrSpanName     = "stw.span.name"
	AttrUnfinished   = "stw.unfinished"
)

// EncodeEvents encodes events as one OTLP logs request, one LogRecord per event,
// grouped by resource and scope.
func EncodeEvents(events []bridge.Event) *collogspb.ExportLogsServiceRequest {
	panic("not implemented yet")
}

// DecodedLogs is what DecodeEvents found in a logs request.
type DecodedLogs struct {
	// Events are the stw.* records that decoded, in request order.
	Events []bridge.Event
	// Other holds the records that are not STW lifecycle events (no stw.* event
	// name), with their resource and scope, for pass-through; nil when there are none.
	Other *collogspb.ExportLogsServiceRequest
	// Rejected has one error per bad stw.* record, naming the record and the problem.
	Rejected []error
}

// DecodeEvents decodes the STW lifecycle records of a logs request. A bad record is
// rejected alone; the good records beside it are kept.
func DecodeEvents(req *collogspb.ExportLogsServiceRequest) DecodedLogs {
	panic("not implemented yet")
}

// EncodeSpans encodes complete spans as one OTLP traces request, grouped by resource
// and scope. Unfinished spans get status Error and stw.unfinished=true.
func EncodeSpans(spans []bridge.Span) *coltracepb.ExportTraceServiceRequest {
	panic("not implemented yet")
}

// DecodeSpans decodes the spans of a traces request; bad spans are rejected alone.
func DecodeSpans(req *coltracepb.ExportTraceServiceRequest) ([]bridge.Span, []error) {
	panic("not implemented yet")
}
