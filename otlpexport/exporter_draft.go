package otlpexport

// Pinned API of the exporter (issue 4); the implementation replaces this file.

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

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
