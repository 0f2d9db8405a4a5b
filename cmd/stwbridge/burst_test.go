package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// burstSpansEnv sets the size of TestBurstThroughBridge (default 20,000 spans; the
// issue's figure is 100,000).
const burstSpansEnv = "STWBRIDGE_BURST_SPANS"

// TestBurstThroughBridge: an app ends a burst of spans as fast as GOMAXPROCS
// goroutines can, into stwbridge, whose downstream is slower than the burst and
// whose pipeline queue is small. stwbridge pushes back (retryable refusals), the
// app's queue absorbs the burst, and every span arrives. The counts on /metrics add
// up: every event received is delivered to each tail or counted.
func TestBurstThroughBridge(t *testing.T) {
	n := 20_000
	if v := os.Getenv(burstSpansEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number of spans", burstSpansEnv, v)
		}
	}
	sink := startSink(t)
	var arrived atomic.Int64
	sink.OnTraces = func(req *coltracepb.ExportTraceServiceRequest) error {
		time.Sleep(20 * time.Millisecond) // slower than the burst
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				arrived.Add(int64(len(ss.Spans)))
			}
		}
		return nil
	}
	cfg := filepath.Join(t.TempDir(), "stwbridge.yaml")
	if err := os.WriteFile(cfg, []byte("pipeline:\n  queue:\n    max_events: 2048\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBridge(t, "--forward", "http://"+sink.Addr(), "--config", cfg)

	// The app: the processor with the queue large enough for the burst, as
	// OTEL_BSP_MAX_QUEUE_SIZE=1000000 would set it.
	exp, err := otlpexport.New(context.Background(), otlpexport.WithEndpoint(b.grpc), otlpexport.WithInsecure(),
		otlpexport.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	p := processor.New(exp, processor.WithMaxQueueEvents(1_000_000))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := tp.Tracer("burst")
	attrs := make([]attribute.KeyValue, 10)
	for i := range attrs {
		attrs[i] = attribute.String(fmt.Sprintf("attribute.key.%d", i), strings.Repeat("v", 20))
	}
	start := time.Now()
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for g := range procs {
		wg.Go(func() {
			for i := g; i < n; i += procs {
				_, s := tr.Start(context.Background(), "burst")
				s.SetAttributes(attrs...)
				s.End()
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("the app's Shutdown: %v (stats %+v)", err, p.Stats())
	}
	// Until the sink has them all and stwbridge counted their acknowledgement.
	deadline := time.Now().Add(2 * time.Minute)
	var m map[string]float64
	for {
		m = scrapeMetrics(t, b.http)
		if arrived.Load() >= int64(n) && m[`stwbridge_exporter_sent_total{signal="traces"}`] >= float64(n) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	st := p.Stats()
	t.Logf("%d spans in %v: %d arrived; app: %d dropped, %d lost; stwbridge: %v requests refused (%v events), pipeline %v published, %v delivered, %v dropped",
		n, took.Round(time.Millisecond), arrived.Load(), st.Dropped, st.Lost, m["stwbridge_receiver_refused_total"],
		m["stwbridge_receiver_refused_events_total"], m["stwbridge_pipeline_published_total"],
		m["stwbridge_pipeline_delivered_total"], m["stwbridge_pipeline_dropped_total"])
	if got := arrived.Load(); got != int64(n) || st.Dropped+st.Lost != 0 {
		t.Fatalf("%d of %d spans arrived; the app dropped %d and lost %d events", got, n, st.Dropped, st.Lost)
	}
	// Every event was received once (refused requests came again), reached every
	// tail (assembler and live hub) or was counted, and every span went downstream.
	received := m["stwbridge_received_events_total"]
	if sent := st.Pipeline.Published; received != float64(sent) || sent < uint64(n) {
		t.Errorf("received %v events, want the %d the app published (at least one per span)", received, sent)
	}
	published, delivered, dropped := m["stwbridge_pipeline_published_total"], m["stwbridge_pipeline_delivered_total"], m["stwbridge_pipeline_dropped_total"]
	if published != 2*received || delivered+dropped+m["stwbridge_pipeline_queue_depth"] != published {
		t.Errorf("pipeline: %v published (2 tails × %v received), %v delivered + %v dropped + %v queued",
			published, received, delivered, dropped, m["stwbridge_pipeline_queue_depth"])
	}
	// The downstream is slower than the burst: stwbridge must have pushed back.
	if m["stwbridge_receiver_refused_events_total"] == 0 {
		t.Errorf("no request was refused: the test did not push back (is the sink slower than the burst?)")
	}
	if m["stwbridge_pipeline_refused_total"] != 2*m["stwbridge_receiver_refused_events_total"] {
		t.Errorf("pipeline refused %v events (2 tails), the receiver %v", m["stwbridge_pipeline_refused_total"], m["stwbridge_receiver_refused_events_total"])
	}
	if m["stwbridge_assembled_spans_total"] != float64(n) || m["stwbridge_forwarded_spans_total"] != float64(n) ||
		m[`stwbridge_exporter_sent_total{signal="traces"}`] != float64(n) {
		t.Errorf("assembled %v, forwarded %v, exporter sent %v spans; want %d each", m["stwbridge_assembled_spans_total"],
			m["stwbridge_forwarded_spans_total"], m[`stwbridge_exporter_sent_total{signal="traces"}`], n)
	}
}

// scrapeMetrics reads stwbridge's /metrics into a map from series (name and labels,
// as written) to value.
func scrapeMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
