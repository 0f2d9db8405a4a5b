package otlpexport_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"
)

// TestEventsWireSplitAndMerged sends events through the wire-format path with several
// senders, a small WithMaxRequestBytes and a receiver that holds the first request, so
// that events are split into several requests and the backlog leaves merged: every
// event arrives once, decodes to what was sent, each stream in sequence order, and no
// request is above the limit.
func TestEventsWireSplitAndMerged(t *testing.T) {
	const limit = 2048
	sink := exSink(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	var mu sync.Mutex
	var sizes []int
	sink.OnLogs = func(req *collogspb.ExportLogsServiceRequest) error {
		mu.Lock()
		sizes = append(sizes, proto.Size(req))
		mu.Unlock()
		first.Do(func() {
			close(entered)
			<-release
		})
		return nil
	}
	e := exNew(t, sink.Addr(), otlpexport.WithSenders(2), otlpexport.WithMaxRequestBytes(limit), otlpexport.WithMaxInFlight(64))
	var sent []bridge.Event
	consume := func(events []bridge.Event) {
		t.Helper()
		sent = append(sent, events...)
		if err := e.Consume(context.Background(), events); err != nil {
			t.Fatal(err)
		}
	}
	consume(spanEvents(streamID(1), trace.TraceID(streamID(1)), 1, 0))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request did not reach the receiver")
	}
	nextSeq := func(id bridge.StreamID) uint64 {
		seq := uint64(0)
		for _, ev := range sent {
			if ev.StreamID == id {
				seq = ev.Sequence + 1
			}
		}
		return seq
	}
	// Behind the held request, on its sender: small calls (room for all of them in
	// flight), which leave merged.
	const small = 16
	for range small {
		consume(spanEvents(streamID(1), trace.TraceID(streamID(1)), 1, nextSeq(streamID(1))))
	}
	close(release)
	flush(t, e)
	mu.Lock()
	if n := len(sizes); n > 1+small/2 {
		t.Errorf("%d requests for 1+%d calls held back: the backlog was not merged", n, small)
	}
	mu.Unlock()
	// Large calls over four streams, one of them compact (stream id = trace id),
	// and both senders: each call is split.
	for range 4 {
		var batch []bridge.Event
		for s := byte(1); s <= 4; s++ {
			tid := trace.TraceID{s, 0xee}
			if s == 1 {
				tid = trace.TraceID(streamID(1))
			}
			batch = append(batch, spanEvents(streamID(s), tid, 12, nextSeq(streamID(s)))...)
		}
		consume(batch)
	}
	flush(t, e)

	var got []bridge.Event
	for _, req := range sink.LogRequests() {
		d := stwotlp.DecodeEventsRequest(req)
		if len(d.Rejected) > 0 || d.Other != nil {
			t.Fatalf("rejected: %v; other: %v", d.Rejected, d.Other)
		}
		got = append(got, d.Events...)
	}
	if len(got) != len(sent) {
		t.Fatalf("%d events arrived, %d sent", len(got), len(sent))
	}
	want := map[[2]any]bridge.Event{}
	for _, ev := range sent {
		want[[2]any{ev.StreamID, ev.Sequence}] = ev
	}
	next := map[bridge.StreamID]uint64{}
	for _, ev := range got {
		w, ok := want[[2]any{ev.StreamID, ev.Sequence}]
		if !ok {
			t.Fatalf("unexpected event %v #%d", ev.StreamID, ev.Sequence)
		}
		if ev.Sequence != next[ev.StreamID] {
			t.Fatalf("stream %v: #%d arrived, want #%d next", ev.StreamID, ev.Sequence, next[ev.StreamID])
		}
		next[ev.StreamID]++
		if ev.Kind() != w.Kind() || ev.SpanID != w.SpanID || ev.TraceID != w.TraceID || !ev.Time.Equal(w.Time) {
			t.Errorf("event %v #%d arrived as %v %v, sent %v %v", ev.StreamID, ev.Sequence, ev.Kind(), ev.SpanID, w.Kind(), w.SpanID)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range sizes {
		if n > limit {
			t.Errorf("request %d is %d bytes, above the %d limit", i, n, limit)
		}
	}
	st := e.Stats().Logs
	if st.Sent != uint64(len(sent)) || st.Requests != uint64(len(sizes)) {
		t.Errorf("stats %+v: want %d sent in %d requests", st, len(sent), len(sizes))
	}
	if len(sizes) < 1+small/8+4*4*2 {
		t.Errorf("%d requests: the large calls were not split", len(sizes))
	}
}

// TestSpansSplitAndSanitised sends more spans than one request of WithMaxRequestBytes
// holds, one of them with a name that is not valid UTF-8: they leave as several
// requests within the limit, in order, all of them (the bad name as U+FFFD), where
// a request with the bad string used to be refused whole.
func TestSpansSplitAndSanitised(t *testing.T) {
	const limit, n = 4096, 60
	sink := exSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithSenders(1), otlpexport.WithMaxRequestBytes(limit))
	spans := make([]bridge.Span, n)
	for i := range spans {
		spans[i] = bridge.Span{TraceID: trace.TraceID{1, byte(i)}, SpanID: trace.SpanID{2, byte(i)},
			Name: fmt.Sprintf("span-%02d-%s", i, strings.Repeat("x", 200)), Start: time.Unix(1, 0), End: time.Unix(2, 0)}
	}
	spans[7].Name = "bad-\xff"
	if err := e.ConsumeSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	flush(t, e)
	var names []string
	reqs := sink.TraceRequests()
	for i, r := range reqs {
		if size := proto.Size(r); size > limit {
			t.Errorf("request %d is %d bytes, above the limit %d", i, size, limit)
		}
		for _, rs := range r.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					names = append(names, sp.Name)
				}
			}
		}
	}
	if len(reqs) < 3 || len(names) != n || names[7] != "bad-\uFFFD" || names[n-1] != spans[n-1].Name {
		t.Fatalf("%d requests, %d spans (want %d), span 7 %q", len(reqs), len(names), n, names[min(7, len(names)-1)])
	}
	if st := e.Stats().Traces; st.Sent != n || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}
