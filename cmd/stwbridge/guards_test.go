package main

// Fault tests of the binary (issue 8): kill -9 with the persistent queue, and a sender
// flooding past the memory limit. Each prints its figures: spans sent, acknowledged,
// delivered, dropped.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/faultload"
	"github.com/stwbridge/stwbridge/internal/faultproxy"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"github.com/stwbridge/stwbridge/otlpexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stwbridge.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// metric reads one unlabelled sample from the bridge's /metrics (-1 if absent).
func metric(t *testing.T, b *bridgeProc, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + b.http + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	body := string(raw)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestKill9LosesNothingAcknowledged: with a persistent queue, stwbridge is killed with
// SIGKILL in the middle of a steady load, while spans it acknowledged are still on
// their way (the downstream link is down for the last moments), and started again on
// the same data directory. Every span acknowledged before, during or after is
// delivered complete, including spans opened before the kill and ended after the
// restart (their open state is restored from the queue's snapshot).
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	sink := startSink(t)
	proxy, err := faultproxy.New(sink.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	grpcAddr, httpAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	args := []string{"--forward", "http://" + proxy.Addr(), "--data-dir", t.TempDir(),
		"--config", writeConfig(t, "persistence:\n  checkpoint_interval: 200ms\n")}
	b := startBridgeOn(t, grpcAddr, httpAddr, args...)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	load := faultload.New(conn, 5, nil)
	long := load.Open(20) // ended only after the restart
	stop := make(chan struct{})
	wg := load.Run(10, 20*time.Millisecond, stop)
	// Kill after a few checkpoints: the opens of the long spans live in a snapshot by then.
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, b, "stwbridge_persist_checkpoints_total") < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoints before the kill")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Cut the downstream until 50 more spans are acknowledged: they are on disk only.
	proxy.Down()
	goal := load.Figures(sink).Acked + 50
	for load.Figures(sink).Acked < goal {
		if time.Now().After(deadline) {
			t.Fatal("load stalled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown at all
		t.Fatal(err)
	}
	<-b.done
	atKill := load.Figures(sink)
	proxy.Up()
	b2 := startBridgeOn(t, grpcAddr, httpAddr, args...)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	load.End(long)
	f := faultload.Wait(t, "kill -9 mid-stream with the persistent queue", sink, time.Minute, load)
	t.Logf("at the kill: %d spans acknowledged, %d of them delivered; after the restart: %.0f records replayed, %.0f torn records cut",
		atKill.Acked, atKill.Delivered, metric(t, b2, "stwbridge_persist_replayed_total"), metric(t, b2, "stwbridge_persist_torn_total"))
	if f.Acked <= atKill.Acked {
		t.Fatal("nothing was acknowledged after the restart")
	}
	if atKill.Acked-atKill.Delivered < 50 {
		t.Fatalf("only %d acknowledged spans were undelivered at the kill: the test proves little", atKill.Acked-atKill.Delivered)
	}
	for _, id := range long {
		if sp := spanByID(sink, id); sp == nil || unfinished(sp) {
			t.Fatalf("span %s opened before the kill and ended after it: %v, want it complete", faultload.Name(id), sp)
		}
	}
}

func spanByID(s *otlpsink.Sink, id trace.SpanID) *tracepb.Span {
	var found *tracepb.Span
	for _, sp := range s.Spans() {
		if trace.SpanID(sp.SpanId) == id && (found == nil || unfinished(found)) {
			found = sp
		}
	}
	return found
}

// TestMemoryFloodRefusedThenDelivered: a sender (otlpexport, retrying as it does)
// floods a stwbridge whose downstream is unreachable for a while, so what the bridge
// holds pushes its heap past the memory limit; the bridge refuses with Unavailable and
// RetryInfo, the sender backs off and retries, and once the downstream is back (slow)
// nothing is lost.
func TestMemoryFloodRefusedThenDelivered(t *testing.T) {
	sink := startSink(t)
	proxy, err := faultproxy.New(sink.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Down() // the bridge must hold what it accepts: its heap grows
	proxy.SetDelay(2 * time.Millisecond)
	b := startBridge(t, "--forward", "http://"+proxy.Addr(), "--memory-limit-mib", "24", "--config", writeConfig(t, `
memory_limiter:
  check_interval: 20ms
  retry_after: 200ms
exporter:
  sending_queue: {queue_size: 100000, queue_bytes: 1073741824}
  retry_on_failure: {enabled: true, initial_interval: 100ms, max_interval: 1s, max_elapsed_time: 5m}
`))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sender, err := otlpexport.New(ctx, otlpexport.WithEndpoint(b.grpc), otlpexport.WithInsecure(),
		otlpexport.WithMode(otlpexport.ModeEvents), otlpexport.WithMaxInFlight(100000), otlpexport.WithMaxInFlightBytes(1<<30),
		otlpexport.WithRetry(otlpexport.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond,
			MaxInterval: time.Second, MaxElapsedTime: 5 * time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	const spans, batch = 6000, 100
	pad := strings.Repeat("x", 8<<10)
	st := bridge.StreamID{0xf1, 0x0d, 15: 1}
	tid := trace.TraceID{0xf1, 15: 1}
	now := time.Now()
	for i := 0; i < spans; i += batch {
		events := make([]bridge.Event, 0, 2*batch)
		for j := i; j < i+batch; j++ {
			id := trace.SpanID{0xf1, 4: byte(j >> 24), 5: byte(j >> 16), 6: byte(j >> 8), 7: byte(j)}
			events = append(events,
				bridge.Event{TraceID: tid, SpanID: id, StreamID: st, Sequence: uint64(2 * j), Time: now,
					Body: &bridge.SpanOpen{Name: fmt.Sprintf("flood-%d", j), Attributes: []attribute.KeyValue{attribute.String("pad", pad)}}},
				bridge.Event{TraceID: tid, SpanID: id, StreamID: st, Sequence: uint64(2*j + 1), Time: now, Body: &bridge.SpanEndData{}})
		}
		if err := sender.Consume(ctx, events); err != nil {
			t.Fatalf("sender refused batch %d locally: %v", i/batch, err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for metric(t, b, "stwbridge_memory_limiter_refused_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the flood never passed the memory limit")
		}
		time.Sleep(20 * time.Millisecond)
	}
	proxy.Up()
	if err := sender.ForceFlush(ctx); err != nil {
		t.Fatalf("sender ForceFlush: %v", err)
	}
	ss := sender.Stats()
	_ = sender.Shutdown(ctx)
	delivered := func() int {
		n := 0
		for _, sp := range sink.Spans() {
			if strings.HasPrefix(sp.Name, "flood-") && !unfinished(sp) {
				n++
			}
		}
		return n
	}
	sink.WaitFor(2*time.Minute, func(*otlpsink.Sink) bool { return delivered() >= spans })
	got := delivered()
	refused := metric(t, b, "stwbridge_memory_limiter_refused_total")
	t.Logf("FIGURES memory flood (%d spans of 8 KiB, limit 24 MiB, downstream down then slow): spans sent %d, acknowledged (log records) %d, delivered %d, dropped %d; refusals by the bridge %.0f, sender retries %d, sender failed %d dropped %d",
		spans, spans, ss.Logs.Sent/2, got, spans-got, refused, ss.Retries, ss.Logs.Failed, ss.Logs.Dropped)
	if refused < 1 || ss.Retries < 1 {
		t.Fatalf("the flood never passed the memory limit (refused %.0f, retries %d): the test proves nothing", refused, ss.Retries)
	}
	if ss.Logs.Failed+ss.Logs.Dropped > 0 || got != spans {
		t.Fatalf("lost: %d of %d spans delivered; sender failed %d, dropped %d", got, spans, ss.Logs.Failed, ss.Logs.Dropped)
	}
}
