package bridge

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// plBenchEvent is a pre-built SpanOpen of a typical server span.
func plBenchEvent() Event {
	return Event{
		TraceID:  trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:   trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		StreamID: StreamID{9, 9, 9},
		Time:     time.Unix(1_700_000_000, 0),
		Body: &SpanOpen{
			Name:     "GET /api/users/{id}",
			SpanKind: trace.SpanKindServer,
			Parent:   trace.SpanID{8, 7, 6, 5, 4, 3, 2, 1},
			Attributes: []attribute.KeyValue{
				attribute.String("http.request.method", "GET"),
				attribute.String("url.path", "/api/users/42"),
				attribute.Int("http.response.status_code", 200),
				attribute.Bool("internal", false),
			},
		},
	}
}

// plBenchSpan is the ended span of plBenchEvent, as the BatchSpanProcessor gets it.
func plBenchSpan() sdktrace.ReadOnlySpan {
	return tracetest.SpanStub{
		Name: "GET /api/users/{id}",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
			SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
			TraceFlags: trace.FlagsSampled,
		}),
		SpanKind:  trace.SpanKindServer,
		StartTime: time.Unix(1_700_000_000, 0),
		EndTime:   time.Unix(1_700_000_001, 0),
		Attributes: []attribute.KeyValue{
			attribute.String("http.request.method", "GET"),
			attribute.String("url.path", "/api/users/42"),
			attribute.Int("http.response.status_code", 200),
			attribute.Bool("internal", false),
		},
	}.Snapshot()
}

// BenchmarkPublish measures Publish of a pre-built event into a pipeline with one tail
// that does nothing, the counterpart of BenchmarkBSPOnEnd. A producer that does
// nothing but publish outruns any worker, so some events are dropped (cheaper than
// queueing them); drops/op says how many, for both benchmarks.
func BenchmarkPublish(b *testing.B) {
	run := func(b *testing.B, parallel bool) {
		p := NewPipeline([]Tail{TailFunc(func(context.Context, []Event) error { return nil })})
		e := plBenchEvent()
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.Publish(e)
				}
			})
		} else {
			for b.Loop() {
				p.Publish(e)
			}
		}
		b.StopTimer()
		_ = p.Shutdown(context.Background())
		b.ReportMetric(float64(p.Stats().Dropped)/float64(b.N), "drops/op")
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}

// plCountingExporter counts the spans it is given and does nothing else.
type plCountingExporter struct{ spans atomic.Int64 }

func (c *plCountingExporter) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	c.spans.Add(int64(len(s)))
	return nil
}
func (*plCountingExporter) Shutdown(context.Context) error { return nil }

// BenchmarkBSPOnEnd is the baseline: the OTel SDK's BatchSpanProcessor enqueueing a
// pre-built ended span, with an exporter that does nothing.
func BenchmarkBSPOnEnd(b *testing.B) {
	run := func(b *testing.B, parallel bool) {
		exp := &plCountingExporter{}
		bsp := sdktrace.NewBatchSpanProcessor(exp)
		s := plBenchSpan()
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bsp.OnEnd(s)
				}
			})
		} else {
			for b.Loop() {
				bsp.OnEnd(s)
			}
		}
		b.StopTimer()
		// Shutdown exports what is queued: the rest was dropped by OnEnd.
		_ = bsp.Shutdown(context.Background())
		b.ReportMetric(float64(int64(b.N)-exp.spans.Load())/float64(b.N), "drops/op")
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}

// BenchmarkPublishFull measures the drop path: the only tail is stuck, so its queue
// is full and every Publish drops (and counts) the event. Its counterpart is
// BenchmarkBSPOnEndFull.
func BenchmarkPublishFull(b *testing.B) {
	run := func(b *testing.B, parallel bool) {
		release := make(chan struct{})
		p := NewPipeline([]Tail{TailFunc(func(context.Context, []Event) error { <-release; return nil })},
			WithMaxQueueEvents(64))
		e := plBenchEvent()
		for p.Publish(e) {
		}
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.Publish(e)
				}
			})
		} else {
			for b.Loop() {
				p.Publish(e)
			}
		}
		b.StopTimer()
		close(release)
		_ = p.Shutdown(context.Background())
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}

// stuckExporter blocks in ExportSpans until released.
type stuckExporter struct{ release chan struct{} }

func (s stuckExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	<-s.release
	return nil
}
func (stuckExporter) Shutdown(context.Context) error { return nil }

// BenchmarkBSPOnEndFull is the baseline of BenchmarkPublishFull: the
// BatchSpanProcessor's exporter is stuck, its queue full, and every OnEnd drops.
func BenchmarkBSPOnEndFull(b *testing.B) {
	run := func(b *testing.B, parallel bool) {
		exp := stuckExporter{release: make(chan struct{})}
		bsp := sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithMaxQueueSize(64), sdktrace.WithMaxExportBatchSize(64))
		s := plBenchSpan()
		for range 1000 { // fill the queue, and the batch the worker holds
			bsp.OnEnd(s)
		}
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bsp.OnEnd(s)
				}
			})
		} else {
			for b.Loop() {
				bsp.OnEnd(s)
			}
		}
		b.StopTimer()
		close(exp.release)
		_ = bsp.Shutdown(context.Background())
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}

// BenchmarkPublishPaired runs Publish and the BatchSpanProcessor's OnEnd in
// alternating chunks of 4096 calls (from 1 or GOMAXPROCS goroutines), timing each
// chunk, so that both see the same load of a shared machine. It reports the median
// time per call of each (publish-ns/op, bsp-ns/op) and the median of the chunk pairs'
// ratios (ratio); ns/op is the time of one Publish plus one OnEnd.
func BenchmarkPublishPaired(b *testing.B) {
	run := func(b *testing.B, goroutines int) {
		p := NewPipeline([]Tail{TailFunc(func(context.Context, []Event) error { return nil })})
		bsp := sdktrace.NewBatchSpanProcessor(&plCountingExporter{})
		e, s := plBenchEvent(), plBenchSpan()
		const chunk = 4096
		per := chunk / goroutines
		timed := func(call func()) float64 {
			start := time.Now()
			if goroutines == 1 {
				call()
			} else {
				var wg sync.WaitGroup
				for range goroutines {
					wg.Go(call)
				}
				wg.Wait()
			}
			return float64(time.Since(start).Nanoseconds()) / float64(per*goroutines)
		}
		publish := func() {
			for range per {
				p.Publish(e)
			}
		}
		onEnd := func() {
			for range per {
				bsp.OnEnd(s)
			}
		}
		var pub, base, ratio []float64
		b.ReportAllocs()
		b.ResetTimer()
		for done := 0; done < b.N; done += chunk {
			tp, tb := timed(publish), timed(onEnd)
			pub, base, ratio = append(pub, tp), append(base, tb), append(ratio, tp/tb)
		}
		b.StopTimer()
		_ = p.Shutdown(context.Background())
		_ = bsp.Shutdown(context.Background())
		b.ReportMetric(plMedian(pub), "publish-ns/op")
		b.ReportMetric(plMedian(base), "bsp-ns/op")
		b.ReportMetric(plMedian(ratio), "ratio")
	}
	b.Run("serial", func(b *testing.B) { run(b, 1) })
	b.Run("parallel", func(b *testing.B) { run(b, runtime.GOMAXPROCS(0)) })
}

func plMedian(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = append([]float64(nil), v...)
	slices.Sort(v)
	return v[len(v)/2]
}
