package forwarder

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
)

// waitOutput polls until s holds want.
func waitOutput(t *testing.T, s interface{ String() string }, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after 10s in:\n%s", want, s.String())
		}
	}
}

// TestStdoutReportsSpansStillOpen: with no --forward, a span from a real SDK app that
// stays open is printed while it is open, then as a tree once it ends.
func TestStdoutReportsSpansStillOpen(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.Stdout.GroupWait = config.Duration(50 * time.Millisecond)
		c.Stdout.OpenAfter = config.Duration(300 * time.Millisecond)
	})
	ctx := context.Background()
	exp, err := otlpexport.New(ctx, otlpexport.WithEndpoint(r.f.GRPCAddr()), otlpexport.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	p := processor.New(exp, processor.WithFlushInterval(20*time.Millisecond))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p),
		sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", "stwdemo"))))
	defer sdk.Shutdown(ctx)
	_, span := p.Wrap(sdk).Tracer("test").Start(ctx, "GET")
	span.SetName("GET /slow")

	waitOutput(t, r.out, "still open  GET /slow  open ")
	line := r.out.String()
	if !strings.Contains(line, "service=stwdemo") || !strings.Contains(line, "trace="+span.SpanContext().TraceID().String()) {
		t.Errorf("the report lacks the service or the trace:\n%s", line)
	}
	if strings.Contains(line, "trace "+span.SpanContext().TraceID().String()) {
		t.Errorf("the tree was printed before the span ended:\n%s", line)
	}
	if n := strings.Count(line, "still open"); n != 1 {
		t.Errorf("%d reports before the 10s mark, want 1:\n%s", n, line)
	}
	span.End()
	waitOutput(t, r.out, "trace "+span.SpanContext().TraceID().String()+"  service=stwdemo  1 span")
}

// TestStartupLogSaysWhereToLook: the first lines say where to point an app, where the
// live view is, and how to try it.
func TestStartupLogSaysWhereToLook(t *testing.T) {
	r := start(t, nil)
	ui := "http://" + r.f.HTTPAddr() + "/ui/"
	waitOutput(t, r.logs, "ui="+ui)
	for _, want := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT=\"http://" + r.f.GRPCAddr(), "http://" + r.f.HTTPAddr(), "go run ./cmd/stwdemo"} {
		if !strings.Contains(r.logs.String(), want) {
			t.Errorf("the startup log lacks %q:\n%s", want, r.logs.String())
		}
	}
	resp, err := http.Get(ui)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET %s: %s %s", ui, resp.Status, resp.Header.Get("Content-Type"))
	}
}
