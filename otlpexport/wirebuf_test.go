package otlpexport_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/otlpexport"
	"go.opentelemetry.io/otel/trace"
)

// Encoded requests are cut from buffers that are reused once delivered: many batches
// from several goroutines, each with its own names, must all arrive intact, none
// overwritten by a later encoding into a reused buffer.
func TestReusedWireBuffersKeepEveryRequest(t *testing.T) {
	sink := exSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithMaxInFlight(2))
	const goroutines, batches, spans = 4, 50, 8
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for b := range batches {
				stream := streamID(byte(g*batches + b))
				events := spanEvents(stream, trace.TraceID(stream), spans, 0)
				for i := range events {
					if u, ok := events[i].Body.(*bridge.UpdateName); ok {
						u.Name = fmt.Sprintf("g%d-b%d-%s", g, b, u.Name)
					}
				}
				if err := e.Consume(context.Background(), events); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	flush(t, e)
	want := map[string]bool{}
	for g := range goroutines {
		for b := range batches {
			for i := range spans {
				want[fmt.Sprintf("g%d-b%d-renamed-%d", g, b, i)] = true
			}
		}
	}
	records := sink.LogRecords()
	if len(records) != goroutines*batches*spans*3 {
		t.Fatalf("the sink got %d records, want %d", len(records), goroutines*batches*spans*3)
	}
	for _, r := range records {
		for _, kv := range r.Attributes {
			if kv.Key == "stw.span.name" && r.EventName == "stw.update_name" {
				if !want[kv.Value.GetStringValue()] {
					t.Fatalf("unexpected or repeated name %q: a reused buffer was overwritten", kv.Value.GetStringValue())
				}
				delete(want, kv.Value.GetStringValue())
			}
		}
	}
	if len(want) != 0 {
		t.Fatalf("%d renames did not arrive", len(want))
	}
}
