package otlpexport_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/trace"
)

// decodedSpans decodes every span the sink got.
func decodedSpans(t *testing.T, sink *otlpsink.Sink) []bridge.Span {
	t.Helper()
	var out []bridge.Span
	for _, req := range sink.TraceRequests() {
		spans, errs := stwotlp.DecodeSpans(req)
		if len(errs) > 0 {
			t.Fatalf("rejected spans: %v", errs)
		}
		out = append(out, spans...)
	}
	return out
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		mode          otlpexport.Mode
		records, span int
	}{
		{otlpexport.ModeEvents, 30, 0},
		{otlpexport.ModeSpans, 0, 10},
		{otlpexport.ModeBoth, 30, 10},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			sink := exSink(t)
			e := exNew(t, sink.Addr(), otlpexport.WithMode(tc.mode))
			events := spanEvents(streamID(1), trace.TraceID{7}, 10, 0)
			// Two batches: spans complete across Consume calls.
			if err := e.Consume(context.Background(), events[:16]); err != nil {
				t.Fatal(err)
			}
			if err := e.Consume(context.Background(), events[16:]); err != nil {
				t.Fatal(err)
			}
			flush(t, e)
			if got := len(sink.LogRecords()); got != tc.records {
				t.Errorf("%d log records, want %d", got, tc.records)
			}
			spans := decodedSpans(t, sink)
			if len(spans) != tc.span {
				t.Fatalf("%d spans, want %d", len(spans), tc.span)
			}
			for _, s := range spans {
				if s.Unfinished || len(s.Name) < 8 || s.Name[:8] != "renamed-" {
					t.Errorf("span %+v: want a finished span with its last name", s)
				}
			}
			if st := e.Stats(); st.Logs.Sent != uint64(tc.records) || st.Traces.Sent != uint64(tc.span) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestModeSpansUnfinished: spans still open are exported as unfinished by Shutdown,
// and by the periodic sweep once they are open longer than the orphan timeout.
func TestModeSpansUnfinished(t *testing.T) {
	sink := exSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithMode(otlpexport.ModeSpans),
		otlpexport.WithSweepInterval(20*time.Millisecond),
		otlpexport.WithAssemblerOptions(bridge.WithOrphanAfter(100*time.Millisecond)))
	// Open one span and never end it.
	open := spanEvents(streamID(2), trace.TraceID{8}, 1, 0)[:1]
	open[0].Time = time.Now()
	if err := e.Consume(context.Background(), open); err != nil {
		t.Fatal(err)
	}
	if !sink.WaitFor(10*time.Second, func(s *otlpsink.Sink) bool { return len(s.Spans()) == 1 }) {
		t.Fatal("the orphaned span was not exported by the sweep")
	}
	if s := decodedSpans(t, sink); !s[0].Unfinished {
		t.Errorf("orphan exported as %+v, want unfinished", s[0])
	}

	sink2 := exSink(t)
	e2 := exNew(t, sink2.Addr(), otlpexport.WithMode(otlpexport.ModeBoth))
	if err := e2.Consume(context.Background(), spanEvents(streamID(3), trace.TraceID{9}, 2, 0)[:4]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := decodedSpans(t, sink2)
	if len(spans) != 2 {
		t.Fatalf("%d spans after Shutdown, want 2 (one complete, one unfinished)", len(spans))
	}
	unfinished := 0
	for _, s := range spans {
		if s.Unfinished {
			unfinished++
		}
	}
	if unfinished != 1 {
		t.Errorf("%d unfinished spans, want 1: %+v", unfinished, spans)
	}
	if err := e2.ConsumeSpans(context.Background(), spans); err == nil {
		t.Error("ConsumeSpans after Shutdown succeeded")
	}
}

// TestConcurrentUse drives every entry point at once (run it with -race): nothing is
// lost or counted twice.
func TestConcurrentUse(t *testing.T) {
	sink := exSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithMode(otlpexport.ModeBoth), otlpexport.WithSenders(3))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			id := streamID(byte(50 * (g + 1)))
			seq := uint64(0)
			for range 10 {
				evs := spanEvents(id, trace.TraceID{byte(g + 1)}, 5, seq)
				seq += uint64(len(evs))
				if err := e.Consume(context.Background(), evs); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			_ = e.ExportLogs(context.Background(), rawLogs("raw", 3, 10))
			_ = e.ExportTraces(context.Background(), rawTraces("raw", 2))
			_ = e.Stats()
		}
	})
	wg.Go(func() {
		for range 5 {
			flush(t, e)
		}
	})
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	const records, spans = 4*10*15 + 30, 4*10*5 + 20
	st := e.Stats()
	if st.Logs.Sent != records || st.Traces.Sent != spans || len(sink.LogRecords()) != records || len(sink.Spans()) != spans {
		t.Errorf("stats %+v; sink %d records %d spans; want %d and %d", st, len(sink.LogRecords()), len(sink.Spans()), records, spans)
	}
}
