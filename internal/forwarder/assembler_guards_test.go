package forwarder

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// spanEv is an event of span n (up to 65535 spans) of stream st.
func spanEv(st bridge.StreamID, seq uint64, n int, at time.Time, body bridge.Body) bridge.Event {
	return bridge.Event{TraceID: tid, SpanID: trace.SpanID{0x51, 6: byte(n >> 8), 7: byte(n)}, StreamID: st,
		Sequence: seq, Time: at, Resource: res, Body: body}
}

// waitOpen waits until the assembler holds n open spans.
func waitOpen(t *testing.T, r *running, n int) bridge.AssemblerStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.f.asm.Stats()
		if st.OpenSpans == n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spans open, want %d: %+v", st.OpenSpans, n, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Issue 13, item 6: spans refused because the assembler was full (and that never end)
// do not count against their stream's max_open_spans_per_stream afterwards.
func TestOverflowedSpansDoNotCountAgainstTheirStream(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.Assembler.MaxOpenSpans = 100
		c.Limits.MaxOpenSpansPerStream = 100
	})
	now := time.Now()
	a, b := stream(0x61), stream(0x62)
	var evs []bridge.Event
	for i := range 50 { // b takes half of the assembler
		evs = append(evs, spanEv(b, uint64(i), 1000+i, now, &bridge.SpanOpen{Name: "b"}))
	}
	for i := range 100 { // a: 50 open, 50 refused on overflow, never ended
		evs = append(evs, spanEv(a, uint64(i), i, now, &bridge.SpanOpen{Name: "a"}))
	}
	sendEvents(t, r.conn, evs...)
	if st := waitOpen(t, r, 100); st.Overflow != 50 {
		t.Fatalf("overflow %d, want 50", st.Overflow)
	}
	evs = evs[:0]
	for i := range 50 {
		evs = append(evs, spanEv(b, uint64(50+i), 1000+i, now, &bridge.SpanEndData{}),
			spanEv(a, uint64(100+i), i, now, &bridge.SpanEndData{}))
	}
	sendEvents(t, r.conn, evs...)
	waitOpen(t, r, 0)
	// a has no span open: it may open its full share again.
	evs = evs[:0]
	for i := range 100 {
		evs = append(evs, spanEv(a, uint64(150+i), 200+i, now, &bridge.SpanOpen{Name: "a2"}))
	}
	sendEvents(t, r.conn, evs...)
	waitOpen(t, r, 100)
	if body := scrape(t, r.f.HTTPAddr()); metricValue(body, "stwbridge_limits_refused_spans_total") != "0" {
		t.Errorf("spans refused for the stream's bound:\n%s", body)
	}
}

// Issue 13, item 2: spans reported unfinished with large (map) attributes, remembered
// for a late end, push the heap over the memory limit; the limiter lets them go and
// accepts requests again within seconds, rather than refusing everything for good.
func TestMemoryLimiterRecoversFromLateSpans(t *testing.T) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limitMiB := int(ms.HeapAlloc>>20) + 48
	r := start(t, func(c *config.Config) {
		c.MemoryLimiter.LimitMiB = limitMiB
		c.MemoryLimiter.CheckInterval = config.Duration(50 * time.Millisecond)
		c.Receivers.OTLP.GRPC.MaxRecvMsgSizeMiB = 16
		// The spans keep their 4 MiB maps: no attribute limit cuts them.
		c.Limits.MaxAttributeValueLength = -1
		c.Limits.MaxAttributesBytes = -1
		// Only the memory limiter can free them: no bound of their own would.
		c.Assembler.MaxLateBytes = 1 << 40
		c.Assembler.ForgetLateAfter = config.Duration(time.Hour)
	})
	client := collogspb.NewLogsServiceClient(r.conn)
	export := func(events ...bridge.Event) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := client.Export(ctx, stwotlp.EventsRequest(events))
		return err
	}
	chunk := strings.Repeat("m", 1<<20)
	now := time.Now()
	refused := 0
	for i := range 40 { // 40 × 4 MiB, far over the limit if kept
		st := bridge.StreamID{0x71, 15: byte(i)}
		m := attribute.Map("payload", attribute.String("a", chunk+"a"), attribute.String("b", chunk+"b"),
			attribute.String("c", chunk+"c"), attribute.String("d", chunk+"d"))
		err := export(spanEv(st, 0, i, now, &bridge.SpanOpen{Name: "big", Attributes: []attribute.KeyValue{m}}),
			spanEv(st, 1, i, now, &bridge.SpanEndData{Unfinished: true}))
		if status.Code(err) == codes.Unavailable {
			refused++
			time.Sleep(50 * time.Millisecond)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Recovery: a small request gets in within seconds.
	small := stream(0x72)
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := export(spanEv(small, 0, 1, now, &bridge.SpanOpen{Name: "small"}), spanEv(small, 1, 1, now, &bridge.SpanEndData{}))
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("still refused 15s after the flood (%d refused during it): %v; late spans %+v",
				refused, err, r.f.asm.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	body := scrape(t, r.f.HTTPAddr())
	if metricValue(body, "stwbridge_memory_limiter_reclaims_total") == "0" {
		t.Errorf("the limit was never reached (reclaims 0): the test proves nothing\n%s", body)
	}
	t.Logf("refused during the flood: %d; reclaims %s, late spans forgotten %s", refused,
		metricValue(body, "stwbridge_memory_limiter_reclaims_total"), metricValue(body, "stwbridge_assembler_late_forgotten_total"))
}

// The assembler.max_late_* keys reach the assembler.
func TestLateSpanKeysAreHonoured(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*config.Assembler)
		want int
	}{
		"defaults":               {func(*config.Assembler) {}, 3},
		"max_late_spans 2":       {func(a *config.Assembler) { a.MaxLateSpans = 2 }, 2},
		"max_late_bytes 1":       {func(a *config.Assembler) { a.MaxLateBytes = 1 }, 0},
		"forget_late_after -1ns": {func(a *config.Assembler) { a.ForgetLateAfter = -1 }, 0},
	} {
		t.Run(name, func(t *testing.T) {
			r := start(t, func(c *config.Config) { tc.edit(&c.Assembler) })
			now := time.Now()
			st := stream(0x81)
			var evs []bridge.Event
			for i := range 3 {
				evs = append(evs, spanEv(st, uint64(2*i), i, now, &bridge.SpanOpen{Name: "x"}),
					spanEv(st, uint64(2*i+1), i, now, &bridge.SpanEndData{Unfinished: true}))
			}
			sendEvents(t, r.conn, evs...)
			deadline := time.Now().Add(10 * time.Second)
			for r.f.asm.Stats().Unfinished < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("stats %+v", r.f.asm.Stats())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := r.f.asm.Stats().LateSpans; got != tc.want {
				t.Errorf("%d late spans remembered, want %d", got, tc.want)
			}
		})
	}
}
