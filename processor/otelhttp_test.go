package processor

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// serve runs an HTTP server on 127.0.0.1 until the test ends and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	return string(body)
}

// A real otelhttp server whose handler renames its span to the route, through a
// wrapped provider: the UpdateName reaches the sink while the request is still being
// served, before the SpanEndData.
func TestOtelHTTPRenameWrapped(t *testing.T) {
	p, sdk, rec := setup(t)
	var id trace.SpanID
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span := trace.SpanFromContext(r.Context())
		id = span.SpanContext().SpanID()
		span.SetName("GET /users/{id}")
		// Still inside the handler: the rename must already be deliverable.
		if err := p.ForceFlush(r.Context()); err != nil {
			t.Errorf("ForceFlush: %v", err)
		}
		evs := rec.all()
		if got := kinds(ofSpan(evs, id)); got != "span_open update_name" {
			t.Errorf("inside the handler the sink has: %s", got)
		}
		_, _ = io.WriteString(w, "ok")
	})
	url := serve(t, otelhttp.NewHandler(handler, "GET", otelhttp.WithTracerProvider(p.Wrap(sdk))))
	get(t, url+"/users/42")
	evs := rec.waitFor(t, "the request's SpanEndData", func(evs []bridge.Event) bool { return count(evs, bridge.KindSpanEnd) == 1 })
	if ends := checkStreams(t, evs); len(ends) != 1 {
		t.Fatalf("stream ends %v: the server span's end must end its stream", ends)
	}
	if got := kinds(ofSpan(evs, id)); got != "span_open update_name attributes status span_end" &&
		got != "span_open update_name attributes span_end" {
		t.Fatalf("server span events: %s\n%s", got, dump(evs))
	}
	_, open, _ := find[*bridge.SpanOpen](evs, id)
	_, u, _ := find[*bridge.UpdateName](evs, id)
	if open.Name != "GET" || u.Name != "GET /users/{id}" || open.SpanKind != trace.SpanKindServer {
		t.Fatalf("open %q (%v), rename %q", open.Name, open.SpanKind, u.Name)
	}
}

// The same server with the plain SDK provider: the rename is still reported, before
// the SpanEndData, by the scan or at the end.
func TestOtelHTTPRenameUnwrapped(t *testing.T) {
	for _, scan := range []time.Duration{-1, time.Millisecond} {
		t.Run("scan="+scan.String(), func(t *testing.T) {
			_, sdk, rec := setup(t, WithScanInterval(scan))
			var id trace.SpanID
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				span := trace.SpanFromContext(r.Context())
				id = span.SpanContext().SpanID()
				span.SetName("GET /items/{id}")
				if scan > 0 {
					rec.waitFor(t, "the scan's rename", func(evs []bridge.Event) bool { return count(evs, bridge.KindUpdateName) == 1 })
				}
				_, _ = io.WriteString(w, "ok")
			})
			url := serve(t, otelhttp.NewHandler(handler, "GET", otelhttp.WithTracerProvider(sdk)))
			get(t, url+"/items/7")
			evs := rec.waitFor(t, "the request's SpanEndData", func(evs []bridge.Event) bool { return count(evs, bridge.KindSpanEnd) == 1 })
			if ends := checkStreams(t, evs); len(ends) != 1 {
				t.Fatalf("stream ends %v: the server span's end must end its stream", ends)
			}
			if got := kinds(ofSpan(evs, id)); got != "span_open update_name span_end" {
				t.Fatalf("server span events: %s", got)
			}
			if _, u, _ := find[*bridge.UpdateName](evs, id); u.Name != "GET /items/{id}" {
				t.Fatalf("rename %q", u.Name)
			}
		})
	}
}
