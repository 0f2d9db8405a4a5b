// Package demo is the instrumented app of the compose demo (cmd/stwdemo): a small HTTP
// service whose spans show what stwbridge adds to OpenTelemetry: a slow request that is
// visible while it is still open, a span renamed to its route after routing, and a
// background job that crashes mid-span and still shows up, as unfinished.
package demo

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Tracer name of the demo's own spans.
const tracerName = "github.com/stwbridge/stwbridge/internal/demo"

// Handler returns the demo's HTTP handler, instrumented with otelhttp on tp:
//
//	GET /hello          an ordinary request
//	GET /slow?for=5s    stays open for the given time (default 5s, at most 1m)
//	GET /users/{id}     renames its span to the route "GET /users/{id}" after routing
//	GET /healthz        liveness, not traced
func Handler(tp trace.TracerProvider) http.Handler {
	tracer := tp.Tracer(tracerName)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		_, span := tracer.Start(r.Context(), "render greeting")
		span.SetAttributes(attribute.String("demo.greeting", "hello"))
		span.End()
		fmt.Fprintln(w, "hello")
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d <= 0 || d > time.Minute {
			d = 5 * time.Second
		}
		ctx, span := tracer.Start(r.Context(), "slow work")
		span.SetAttributes(attribute.String("demo.duration", d.String()))
		defer span.End()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			span.SetStatus(codes.Error, "client went away")
		}
		fmt.Fprintf(w, "slept %s\n", d)
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		// The route is known only now, after routing: the span started as "GET".
		span := trace.SpanFromContext(r.Context())
		span.SetName("GET /users/{id}")
		span.SetAttributes(attribute.String("http.route", "/users/{id}"))
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			span.SetStatus(codes.Error, "user id is not a number")
			http.Error(w, "user id must be a number", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "user %d\n", id)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	// Spans start as the bare method (the route is unknown before routing); once
	// routed, otelhttp names them after the route pattern, as /users does itself.
	return otelhttp.NewHandler(mux, "GET", otelhttp.WithTracerProvider(tp),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}))
}

// RunJob runs the demo's background job: a root span "nightly-import" with one child
// span per step. After crashAfter steps (0: never) it calls crash while the root span
// and one step are still open, as a process that dies mid-span does.
func RunJob(ctx context.Context, tp trace.TracerProvider, steps, crashAfter int, step time.Duration, crash func()) {
	tracer := tp.Tracer(tracerName)
	ctx, root := tracer.Start(ctx, "nightly-import", trace.WithNewRoot())
	defer root.End()
	for i := 1; i <= steps; i++ {
		_, s := tracer.Start(ctx, "import batch", trace.WithAttributes(attribute.Int("demo.batch", i)))
		if crashAfter > 0 && i == crashAfter {
			root.SetAttributes(attribute.Bool("demo.crashing", true))
			crash()
			return // only reached when crash returns (tests)
		}
		select {
		case <-time.After(step):
		case <-ctx.Done():
			s.End()
			return
		}
		s.End()
	}
}
