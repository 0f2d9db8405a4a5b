package live

import (
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/codes"
)

// completeEv is a CompleteSpan (protocol 1.1) of span s of trace t.
func completeEv(t, s byte, name string, start time.Time) bridge.Event {
	e := openEv(resCheckout, t, s, 0, name, start)
	e.Time = start.Add(time.Millisecond)
	e.Body = &bridge.CompleteSpan{Start: start, Open: e.Body.(*bridge.SpanOpen), End: &bridge.SpanEndData{Status: bridge.Status{Code: codes.Ok}}}
	return e
}

// A CompleteSpan reaches watchers as the span_open and span_end it stands for. With
// nobody watching it costs the hub nothing (no allocation) and leaves its table of open
// spans as it was: a watcher that connects later is replayed only the spans still open.
func TestCompleteSpan(t *testing.T) {
	h := NewHub()
	start := time.Now()
	batch := []bridge.Event{completeEv(2, 2, "cache hit", start), completeEv(3, 3, "cache miss", start)}
	if n := testing.AllocsPerRun(100, func() { h.Consume(t.Context(), batch) }); n != 0 {
		t.Errorf("Consume of CompleteSpans with no watcher: %v allocations, want 0", n)
	}
	h.Consume(t.Context(), []bridge.Event{openEv(resCheckout, 1, 1, 0, "GET /slow", start)})

	srv := newServer(t, h)
	_, lines := watch(t, t.Context(), srv.URL, "")
	if e := nextEvent(t, lines); e.Type != "span_open" || !e.Replay || e.Name != "GET /slow" {
		t.Fatalf("replayed %+v, want only the open GET /slow", e)
	}
	h.Consume(t.Context(), []bridge.Event{completeEv(4, 4, "SELECT", start)})
	open, end := nextEvent(t, lines), nextEvent(t, lines)
	if open.Type != "span_open" || open.Replay || open.Name != "SELECT" || end.Type != "span_end" || end.Name != "SELECT" || end.Status.Code != StatusOK {
		t.Fatalf("CompleteSpan reached the watcher as %+v then %+v, want its span_open and span_end", open, end)
	}
}
