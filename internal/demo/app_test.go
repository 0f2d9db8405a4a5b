package demo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/processor"
)

// recorder is a tail that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []bridge.Event
}

func (r *recorder) Consume(_ context.Context, events []bridge.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
	return nil
}

func (r *recorder) snapshot() []bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Event(nil), r.events...)
}

func newProvider(t *testing.T) (*recorder, *sdktrace.TracerProvider, *processor.Processor) {
	t.Helper()
	rec := &recorder{}
	p := processor.New(rec, processor.WithFlushInterval(10*time.Millisecond), processor.WithAnnounceDelay(0)) // every event
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	return rec, sdk, p
}

func TestUsersRouteRenamesSpanWhileOpen(t *testing.T) {
	rec, sdk, p := newProvider(t)
	srv := httptest.NewServer(Handler(p.Wrap(sdk)))
	defer srv.Close()
	for _, path := range []string{"/users/7", "/healthz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
	}
	if err := sdk.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var opened, renamed, ended bool
	var spans int
	for _, e := range rec.snapshot() {
		switch b := e.Body.(type) {
		case *bridge.SpanOpen:
			spans++
			opened = b.Name == "GET"
		case *bridge.UpdateName:
			if b.Name == "GET /users/{id}" && opened && !ended {
				renamed = true
			}
		case *bridge.SpanEndData:
			ended = true
		}
	}
	if spans != 1 {
		t.Errorf("want one traced request (/healthz is not traced), got %d SpanOpen", spans)
	}
	if !opened || !renamed || !ended {
		t.Errorf("want span opened as GET, renamed to its route before its end, then ended: opened=%v renamed=%v ended=%v", opened, renamed, ended)
	}
}

func TestJobCrashesWithSpansOpen(t *testing.T) {
	rec, sdk, p := newProvider(t)
	crashed := 0
	RunJob(context.Background(), p.Wrap(sdk), 5, 2, time.Millisecond, func() {
		crashed++
		_ = sdk.ForceFlush(context.Background())
		opened, ends := map[string]int{}, 0
		for _, e := range rec.snapshot() {
			switch b := e.Body.(type) {
			case *bridge.SpanOpen:
				opened[b.Name]++
			case *bridge.SpanEndData:
				ends++
			}
		}
		if opened["nightly-import"] != 1 || opened["import batch"] != 2 || ends != 1 {
			t.Errorf("at the crash (step 2) the root and two batches should be announced and one batch ended; opened %v, ended %d", opened, ends)
		}
	})
	if crashed != 1 {
		t.Fatalf("crash called %d times, want once at step 2", crashed)
	}
}
