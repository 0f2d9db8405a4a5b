package otlpexport

// This file pins the package's API so that other packages can be built against it
// while it is implemented (issue 4). The implementation replaces it.

import (
	"context"
	"crypto/tls"
	"time"

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

// Mode selects what the exporter sends.
type Mode int

const (
	// ModeEvents sends lifecycle events as OTLP logs (the default).
	ModeEvents Mode = iota
	// ModeSpans sends only complete spans, assembled from the events, as OTLP traces.
	ModeSpans
	// ModeBoth sends both.
	ModeBoth
)

// Option configures an Exporter.
type Option func(*config)

type config struct{}

// WithEndpoint sets host:port of the OTLP/gRPC receiver.
func WithEndpoint(hostport string) Option { panic("not implemented yet") }

// WithInsecure sends without TLS.
func WithInsecure() Option { panic("not implemented yet") }

// WithTLSConfig sends over TLS with this configuration (mTLS with client certificates).
func WithTLSConfig(c *tls.Config) Option { panic("not implemented yet") }

// WithHeaders adds gRPC metadata to every request.
func WithHeaders(h map[string]string) Option { panic("not implemented yet") }

// WithCompression selects "gzip" or "none".
func WithCompression(name string) Option { panic("not implemented yet") }

// WithTimeout bounds each export request.
func WithTimeout(d time.Duration) Option { panic("not implemented yet") }

// WithMode selects events, spans or both.
func WithMode(m Mode) Option { panic("not implemented yet") }

// Exporter is a bridge.Tail that sends events (and, by mode, assembled spans) over
// OTLP/gRPC from its own bounded queue, with retry.
type Exporter struct{}

var (
	_ bridge.Tail         = (*Exporter)(nil)
	_ bridge.Flusher      = (*Exporter)(nil)
	_ bridge.Shutdowner   = (*Exporter)(nil)
	_ bridge.SpanConsumer = (*Exporter)(nil)
)

// New returns an exporter. With no options it reads the OTEL_EXPORTER_OTLP_* variables.
func New(ctx context.Context, opts ...Option) (*Exporter, error) { panic("not implemented yet") }

// Consume queues events for export without blocking; what does not fit is dropped and counted.
func (e *Exporter) Consume(ctx context.Context, events []bridge.Event) error {
	panic("not implemented yet")
}

// ConsumeSpans queues complete spans for export as OTLP traces.
func (e *Exporter) ConsumeSpans(ctx context.Context, spans []bridge.Span) error {
	panic("not implemented yet")
}

// ExportLogs queues a raw OTLP logs request (pass-through of non-STW logs).
func (e *Exporter) ExportLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) error {
	panic("not implemented yet")
}

// ExportTraces queues a raw OTLP traces request (pass-through of plain spans).
func (e *Exporter) ExportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) error {
	panic("not implemented yet")
}

// ForceFlush sends everything queued before the call.
func (e *Exporter) ForceFlush(ctx context.Context) error { panic("not implemented yet") }

// Shutdown flushes and closes the connection.
func (e *Exporter) Shutdown(ctx context.Context) error { panic("not implemented yet") }
