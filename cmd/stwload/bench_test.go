package main

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/stwotlp"
)

// BenchmarkOpenSpanMemory reports the heap the forwarder's assembler holds per open
// span, for the realistic spans of the load generator as the receiver decodes them
// from the wire (their SpanOpen attributes included, the request itself not). One op
// opens one span.
func BenchmarkOpenSpanMemory(b *testing.B) {
	const spans = 40_000
	gen := newGenerator(7, 4, false)
	discard := bridge.SpanConsumerFunc(func(context.Context, []bridge.Span) error { return nil })
	open := func(a *bridge.Assembler, n int) {
		for n > 0 {
			var batch []bridge.Event
			for len(batch) < min(n, 256) {
				batch = append(batch, gen.request(time.Now(), time.Millisecond).opens...)
			}
			n -= len(batch)
			decoded, err := stwotlp.DecodeEvents(stwotlp.AppendEvents(nil, batch))
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Consume(context.Background(), decoded.Events); err != nil {
				b.Fatal(err)
			}
		}
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := bridge.NewAssembler(discard, bridge.WithMaxOpenSpans(2*spans))
	open(a, spans)
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := a.Stats().OpenSpans
	if held < spans {
		b.Fatalf("%d spans open, want %d", held, spans)
	}
	perSpan := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(held)
	runtime.KeepAlive(a)

	b.ResetTimer()
	asm := bridge.NewAssembler(discard, bridge.WithMaxOpenSpans(b.N+256))
	open(asm, b.N)
	b.StopTimer()
	b.ReportMetric(perSpan, "B/open-span")
}
