package processor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// recorder is a sink that keeps every event it receives, in delivery order.
type recorder struct {
	mu        sync.Mutex
	events    []bridge.Event
	batches   []int
	flushes   int
	shutdowns int
	block     chan struct{} // when set, Consume waits for it to close (or ctx)
}

func (r *recorder) Consume(ctx context.Context, events []bridge.Event) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
	r.batches = append(r.batches, len(events))
	return nil
}

func (r *recorder) ForceFlush(context.Context) error {
	r.mu.Lock()
	r.flushes++
	r.mu.Unlock()
	return nil
}

func (r *recorder) Shutdown(context.Context) error {
	r.mu.Lock()
	r.shutdowns++
	r.mu.Unlock()
	return nil
}

func (r *recorder) counts() (flushes, shutdowns int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushes, r.shutdowns
}

func (r *recorder) all() []bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Event(nil), r.events...)
}

// waitFor polls until cond holds for the events received so far, failing after 10 s.
func (r *recorder) waitFor(t testing.TB, what string, cond func([]bridge.Event) bool) []bridge.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := r.all()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; received:\n%s", what, dump(evs))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testResource is shared by the providers of the tests.
var testResource = resource.NewSchemaless(attribute.String("service.name", "processor-test"))

// setup returns a processor publishing to a recorder, registered with a new SDK
// provider, both shut down at the end of the test. Unless opts say otherwise, the
// flush interval is short, the scan and heartbeats are off, and spans are announced
// at once (protocol 1.0 events: see announce_test.go for the delay).
func setup(t testing.TB, opts ...Option) (*Processor, *sdktrace.TracerProvider, *recorder) {
	t.Helper()
	rec := &recorder{}
	base := []Option{WithFlushInterval(2 * time.Millisecond), WithScanInterval(-1), WithHeartbeatInterval(-1), WithAnnounceDelay(0)}
	p := New(rec, append(base, opts...)...)
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p), sdktrace.WithResource(testResource))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sdk.Shutdown(ctx)
	})
	return p, sdk, rec
}

func flush(t testing.TB, p *Processor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
}

// ofSpan returns the events about span id (Outcome and Heartbeat included when id is
// a stream's root).
func ofSpan(evs []bridge.Event, id trace.SpanID) []bridge.Event {
	var out []bridge.Event
	for _, e := range evs {
		if e.SpanID == id {
			out = append(out, e)
		}
	}
	return out
}

func kinds(evs []bridge.Event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Kind().String())
	}
	return b.String()
}

func count(evs []bridge.Event, k bridge.Kind) int {
	n := 0
	for _, e := range evs {
		if e.Kind() == k {
			n++
		}
	}
	return n
}

func find[B bridge.Body](evs []bridge.Event, id trace.SpanID) (bridge.Event, B, bool) {
	var zero B
	for _, e := range evs {
		if b, ok := e.Body.(B); ok && e.SpanID == id {
			return e, b, true
		}
	}
	return bridge.Event{}, zero, false
}

func dump(evs []bridge.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  stream=%s seq=%d span=%s %s", e.StreamID.String()[:8], e.Sequence, e.SpanID, e.Kind())
		switch body := e.Body.(type) {
		case *bridge.SpanOpen:
			fmt.Fprintf(&b, " name=%q parent=%s", body.Name, body.Parent)
		case *bridge.UpdateName:
			fmt.Fprintf(&b, " name=%q", body.Name)
		case *bridge.SpanEndData:
			fmt.Fprintf(&b, " unfinished=%v continues=%v", body.Unfinished, body.StreamContinues)
		case *bridge.CompleteSpan:
			fmt.Fprintf(&b, " name=%q parent=%s unfinished=%v continues=%v", body.Open.Name, body.Open.Parent, body.End.Unfinished, body.End.StreamContinues)
		case *bridge.Outcome:
			fmt.Fprintf(&b, " outcome=%s", body.Outcome)
		case *bridge.StreamDiagnostic:
			fmt.Fprintf(&b, " dropped=%d", body.DroppedEvents)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// checkStreams verifies the stream rules over everything a sink received: per stream,
// sequence numbers from 0 in delivery order without gaps (dropped runs accounted for
// by StreamDiagnostic), SpanOpen first for each span and nothing of it after its
// SpanEndData, and nothing after the stream's end: its Outcome, or the end of its root
// (the span of its first SpanOpen, or of a CompleteSpan without a local parent) while
// no other span of it whose SpanOpen arrived is open, unless it says StreamContinues. It returns the streams that ended, each with the Outcome
// that ended it ("" when its root's end did).
func checkStreams(t testing.TB, evs []bridge.Event) map[bridge.StreamID]string {
	t.Helper()
	type spanKey struct {
		s  bridge.StreamID
		id trace.SpanID
	}
	next := map[bridge.StreamID]uint64{}
	ended := map[bridge.StreamID]string{}
	roots := map[bridge.StreamID]trace.SpanID{}
	open := map[bridge.StreamID]int{}
	opened := map[spanKey]bool{}
	spanEnded := map[spanKey]bool{}
	for _, e := range evs {
		if how, ok := ended[e.StreamID]; ok {
			if how == "" {
				how = "its root's end"
			}
			t.Fatalf("event after the stream's end (%s): %s seq %d\n%s", how, e.Kind(), e.Sequence, dump(evs))
		}
		if d, ok := e.Body.(*bridge.StreamDiagnostic); ok {
			if e.Sequence+1 != next[e.StreamID]+d.DroppedEvents {
				t.Fatalf("diagnostic of %d drops ends at %d, want %d\n%s", d.DroppedEvents, e.Sequence, next[e.StreamID]+d.DroppedEvents-1, dump(evs))
			}
			next[e.StreamID] = e.Sequence + 1
			continue
		}
		if e.Sequence != next[e.StreamID] {
			t.Fatalf("stream %s: sequence %d, want %d\n%s", e.StreamID, e.Sequence, next[e.StreamID], dump(evs))
		}
		next[e.StreamID]++
		k := spanKey{e.StreamID, e.SpanID}
		switch b := e.Body.(type) {
		case *bridge.SpanOpen:
			if opened[k] {
				t.Fatalf("second SpanOpen for %s", e.SpanID)
			}
			opened[k] = true
			open[e.StreamID]++
			if _, ok := roots[e.StreamID]; !ok {
				roots[e.StreamID] = e.SpanID
			}
		case *bridge.CompleteSpan:
			if opened[k] {
				t.Fatalf("CompleteSpan for %s, whose SpanOpen came earlier\n%s", e.SpanID, dump(evs))
			}
			opened[k], spanEnded[k] = true, true
			if _, ok := roots[e.StreamID]; !ok && (!b.Open.Parent.IsValid() || b.Open.RemoteParent) {
				roots[e.StreamID] = e.SpanID
			}
			if roots[e.StreamID] == e.SpanID && open[e.StreamID] == 0 && !b.End.StreamContinues {
				ended[e.StreamID] = ""
			}
		case *bridge.Outcome:
			ended[e.StreamID] = b.Outcome
		case *bridge.Heartbeat:
		default:
			if !opened[k] {
				t.Fatalf("%s of span %s before (or without) its SpanOpen\n%s", e.Kind(), e.SpanID, dump(evs))
			}
			if spanEnded[k] {
				t.Fatalf("%s of span %s after its SpanEndData\n%s", e.Kind(), e.SpanID, dump(evs))
			}
			if end, ok := e.Body.(*bridge.SpanEndData); ok {
				spanEnded[k] = true
				open[e.StreamID]--
				if root, ok := roots[e.StreamID]; ok && root == e.SpanID && open[e.StreamID] == 0 && !end.StreamContinues {
					ended[e.StreamID] = ""
				}
			}
		}
	}
	return ended
}
