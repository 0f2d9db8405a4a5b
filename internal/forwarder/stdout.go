package forwarder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/treeprint"
	"github.com/stwbridge/stwbridge/internal/webui"
	"github.com/stwbridge/stwbridge/stwotlp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// stdoutDown prints instead of exporting: span trees per trace, and one line per
// passed-through log record or forwarded lifecycle event.
type stdoutDown struct {
	p   *treeprint.Printer
	log *slog.Logger
}

func newStdout(w io.Writer, cfg config.Config, log *slog.Logger) *stdoutDown {
	openAfter := cfg.Stdout.OpenAfter.D()
	if openAfter == 0 {
		openAfter = -1 // off
	}
	return &stdoutDown{p: treeprint.New(w, treeprint.WithGroupWait(cfg.Stdout.GroupWait.D()), treeprint.WithOpenAfter(openAfter)), log: log}
}

// assemblerTail is the pipeline's tail into the assembler; when printing to stdout,
// the printer sees the same events, to report spans still open.
func (f *Forwarder) assemblerTail() bridge.Tail {
	s, ok := f.down.(*stdoutDown)
	if !ok {
		return bridge.TailFunc(f.asm.Consume)
	}
	return bridge.TailFunc(func(ctx context.Context, events []bridge.Event) error {
		s.p.ObserveEvents(events)
		return f.asm.Consume(ctx, events)
	})
}

func (s *stdoutDown) ConsumeSpans(ctx context.Context, spans []bridge.Span) error {
	return s.p.ConsumeSpans(ctx, spans)
}

// Consume prints lifecycle events (with forward_events) one line each.
func (s *stdoutDown) Consume(_ context.Context, events []bridge.Event) error {
	for i := range events {
		e := &events[i]
		line := fmt.Sprintf("event stw.%s trace=%s span=%s seq=%d", e.Kind(), e.TraceID, e.SpanID, e.Sequence)
		switch b := e.Body.(type) {
		case *bridge.SpanOpen:
			line += fmt.Sprintf(" name=%q", b.Name)
		case *bridge.CompleteSpan:
			line += fmt.Sprintf(" name=%q duration=%s", b.Open.Name, e.Time.Sub(b.Start))
		case *bridge.UpdateName:
			line += fmt.Sprintf(" name=%q", b.Name)
		}
		s.p.Println(line)
	}
	return nil
}

func (s *stdoutDown) ExportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) error {
	spans, errs := stwotlp.DecodeSpans(req)
	if len(errs) > 0 {
		s.log.Debug("spans not printable", "count", len(errs), "first", errs[0])
	}
	return s.p.ConsumeSpans(ctx, spans)
}

func (s *stdoutDown) ExportLogs(_ context.Context, req *collogspb.ExportLogsServiceRequest) error {
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, r := range sl.GetLogRecords() {
				sev := r.SeverityText
				if sev == "" {
					sev = strings.TrimPrefix(r.SeverityNumber.String(), "SEVERITY_NUMBER_")
				}
				line := fmt.Sprintf("log %s %s", sev, anyString(r.Body))
				if len(r.TraceId) == 16 {
					line += fmt.Sprintf(" trace=%x", r.TraceId)
				}
				s.p.Println(line)
			}
		}
	}
	return nil
}

func (s *stdoutDown) ForceFlush(ctx context.Context) error { return s.p.ForceFlush(ctx) }
func (s *stdoutDown) Shutdown(ctx context.Context) error   { return s.p.Shutdown(ctx) }

// anyString renders a log body briefly.
func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case nil:
		return `""`
	case *commonpb.AnyValue_StringValue:
		return fmt.Sprintf("%q", x.StringValue)
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_BytesValue:
		return fmt.Sprintf("<%d bytes>", len(x.BytesValue))
	case *commonpb.AnyValue_ArrayValue:
		return fmt.Sprintf("<array of %d>", len(x.ArrayValue.GetValues()))
	case *commonpb.AnyValue_KvlistValue:
		parts := make([]string, 0, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			parts = append(parts, kv.Key+"="+anyString(kv.Value))
		}
		return "{" + strings.Join(parts, " ") + "}"
	}
	return "?"
}

// logGettingStarted logs where to point an app, where to watch, and the one command
// that shows it working.
func (f *Forwarder) logGettingStarted() {
	scheme := "http"
	if f.guards.httpTLS != nil {
		scheme = "https"
	}
	f.log.Info("point an app's OTLP exporter here",
		"OTEL_EXPORTER_OTLP_ENDPOINT", scheme+"://"+f.GRPCAddr()+" (gRPC, with stwbridge's processor or any SDK)",
		"or", scheme+"://"+f.HTTPAddr()+" (OTLP/HTTP, workerd tail events at /v1/stw)")
	f.log.Info("watch spans live", "ui", scheme+"://"+f.HTTPAddr()+webui.Path, "tail", "go run ./cmd/stwbridge tail --from "+scheme+"://"+f.HTTPAddr(), "try", "go run ./cmd/stwdemo")
}
