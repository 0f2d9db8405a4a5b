package live

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/stwbridge/stwbridge/bridge"
)

func TestNDJSONLifecycle(t *testing.T) {
	h := NewHub()
	srv := newServer(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, lines := watch(t, ctx, srv.URL, "")
	if ct := resp.Header.Get("Content-Type"); ct != ContentTypeNDJSON {
		t.Fatalf("Content-Type = %q, want %q", ct, ContentTypeNDJSON)
	}
	waitFor(t, "the watcher", func() bool { return h.Stats().Watchers == 1 })

	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	h.Consume(ctx, []bridge.Event{
		openEv(resCheckout, 1, 1, 0, "GET", start, attribute.String("http.method", "GET"), attribute.Int("n", 3)),
		openEv(resCheckout, 1, 2, 1, "db.query", start.Add(time.Millisecond)),
	})
	h.Consume(ctx, []bridge.Event{renameEv(resCheckout, 1, 1, "GET /users/:id")})
	h.Consume(ctx, []bridge.Event{endEv(resCheckout, 1, 1, start.Add(1500*time.Millisecond), codes.Ok, false)})

	o := nextEvent(t, lines)
	if o.Type != "span_open" || o.Name != "GET" || o.Service != "checkout" || o.Kind != "server" ||
		o.TraceID != tid(1).String() || o.SpanID != sid(1).String() || o.ParentSpanID != "" ||
		o.StreamID == "" || o.Start != "2026-01-02T03:04:05.000000006Z" || o.Time != o.Start {
		t.Fatalf("span_open = %+v", o)
	}
	if o.Attributes["http.method"] != "GET" || o.Attributes["n"] != float64(3) {
		t.Fatalf("span_open attributes = %v", o.Attributes)
	}
	c := nextEvent(t, lines)
	if c.Type != "span_open" || c.ParentSpanID != sid(1).String() || c.Name != "db.query" {
		t.Fatalf("child span_open = %+v", c)
	}
	r := nextEvent(t, lines)
	if r.Type != "update_name" || r.Name != "GET /users/:id" || r.OldName != "GET" || r.Start != o.Start || r.Service != "checkout" {
		t.Fatalf("update_name = %+v", r)
	}
	e := nextEvent(t, lines)
	if e.Type != "span_end" || e.Name != "GET /users/:id" || e.DurationNS != int64(1500*time.Millisecond) ||
		e.Status == nil || e.Status.Code != StatusOK || e.Unfinished {
		t.Fatalf("span_end = %+v", e)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		t.Fatalf("time %q: %v", e.Time, err)
	}
	waitFor(t, "Sent to count 4", func() bool { return h.Stats().Sent == 4 })
	if st := h.Stats(); st.OpenSpans != 1 || st.Skipped != 0 {
		t.Fatalf("stats = %+v, want 1 open span (db.query), nothing skipped", st)
	}
}

func TestSSE(t *testing.T) {
	h := NewHub()
	srv := newServer(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, lines := watch(t, ctx, srv.URL+"?keepalive=30ms", "text/html;q=0.5, text/event-stream")
	if ct := resp.Header.Get("Content-Type"); ct != ContentTypeSSE {
		t.Fatalf("Content-Type = %q, want %q", ct, ContentTypeSSE)
	}
	waitFor(t, "the watcher", func() bool { return h.Stats().Watchers == 1 })
	h.Consume(ctx, []bridge.Event{openEv(resCheckout, 1, 1, 0, "GET", time.Now())})

	var sawKeepAlive bool
	var event, data string
	deadline := time.After(10 * time.Second)
	for event == "" || !sawKeepAlive {
		select {
		case l := <-lines:
			switch {
			case l == ": keepalive":
				sawKeepAlive = true
			case hasPrefix(l, "event: "):
				event = strings.TrimPrefix(l, "event: ")
				data = strings.TrimPrefix(<-lines, "data: ")
				if blank := <-lines; blank != "" {
					t.Fatalf("SSE message not ended by a blank line: %q", blank)
				}
			}
		case <-deadline:
			t.Fatalf("no SSE event and keep-alive within 10s (event %q, keepalive %v)", event, sawKeepAlive)
		}
	}
	var e Event
	if err := json.Unmarshal([]byte(data), &e); err != nil || event != "span_open" || e.Type != "span_open" || e.Name != "GET" {
		t.Fatalf("SSE event %q data %q (%v)", event, data, err)
	}
}

func TestNDJSONKeepAlive(t *testing.T) {
	h := NewHub(withKeepAlive(20 * time.Millisecond))
	srv := newServer(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, lines := watch(t, ctx, srv.URL, "")
	for range 2 {
		select {
		case l := <-lines:
			var e Event
			if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type != TypeKeepAlive || e.Time == "" {
				t.Fatalf("line %q, want a keepalive (%v)", l, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no keep-alive within 10s")
		}
	}
}

func TestReplayOpenSpansAtConnect(t *testing.T) {
	h := NewHub()
	start := time.Now().Add(-time.Minute)
	h.Consume(t.Context(), []bridge.Event{
		openEv(resCheckout, 1, 1, 0, "GET", start),
		openEv(resCheckout, 1, 2, 1, "ended", start),
		renameEv(resCheckout, 1, 1, "GET /slow"),
		endEv(resCheckout, 1, 2, start.Add(time.Second), codes.Unset, false),
	})
	srv := newServer(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, lines := watch(t, ctx, srv.URL, "")
	e := nextEvent(t, lines)
	if e.Type != "span_open" || !e.Replay || e.Name != "GET /slow" || e.SpanID != sid(1).String() || e.Service != "checkout" {
		t.Fatalf("replayed = %+v, want span_open of the open span under its current name", e)
	}
	h.Consume(ctx, []bridge.Event{endEv(resCheckout, 1, 1, time.Now(), codes.Error, false)})
	e = nextEvent(t, lines)
	if e.Type != "span_end" || e.Replay || e.Name != "GET /slow" || e.DurationNS < int64(time.Minute) || e.Status.Code != StatusError {
		t.Fatalf("after replay = %+v, want the span_end of GET /slow", e)
	}
}

func TestBadRequests(t *testing.T) {
	h := NewHub()
	srv := newServer(t, h)
	for _, tc := range []struct{ query, want string }{
		{"?status=maybe", "status"},
		{"?trace_id=xyz", "trace_id"},
		{"?trace_id=00000000000000000000000000000000", "all zeros"},
		{"?min_open=soon", "min_open"},
		{"?min_open=-1s", "min_open"},
		{"?keepalive=1ms", "keepalive"},
		{"?servce=x", "unknown query parameter"},
		{"?service=a&service=b", "once"},
	} {
		resp, err := http.Get(srv.URL + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: %d %q, want 400 mentioning %q", tc.query, resp.StatusCode, body, tc.want)
		}
	}
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
		t.Fatalf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if h.Stats().Watchers != 0 {
		t.Fatalf("refused requests left watchers: %+v", h.Stats())
	}
}

func TestHTTPFilterAndMinOpen(t *testing.T) {
	h := NewHub()
	srv := newServer(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, byTrace := watch(t, ctx, srv.URL+"?trace_id="+tid(2).String()+"&service=billing", "")
	_, slow := watch(t, ctx, srv.URL+"?min_open=300ms", "")
	waitFor(t, "the watchers", func() bool { return h.Stats().Watchers == 2 })

	now := time.Now()
	h.Consume(ctx, []bridge.Event{
		openEv(resCheckout, 1, 1, 0, "quick", now),
		openEv(resBilling, 2, 2, 0, "billing", now),
		openEv(resCheckout, 2, 3, 0, "other service", now),
		openEv(resCheckout, 3, 4, 0, "slow", now),
		endEv(resCheckout, 1, 1, now.Add(10*time.Millisecond), codes.Ok, false),
	})
	if e := nextEvent(t, byTrace); e.Name != "billing" {
		t.Fatalf("trace_id+service watcher got %+v", e)
	}
	e := nextEvent(t, slow)
	if e.Type != "span_open" || time.Since(now) < 300*time.Millisecond {
		t.Fatalf("min_open watcher got %+v after %v, want a span_open after 300ms", e, time.Since(now))
	}
	if e.Name != "billing" && e.Name != "other service" && e.Name != "slow" {
		t.Fatalf("min_open watcher got %q, which ended after 10ms", e.Name)
	}
}

// pipe runs events through a hub and returns the entries a watcher would read.
func pipe(t *testing.T, events []bridge.Event) (*Hub, []entry) {
	t.Helper()
	h := NewHub()
	pos, _ := h.register()
	h.Consume(t.Context(), events)
	got, _, _ := h.read(pos, make([]entry, len(events)))
	return h, got
}

// through passes entries through a filter and decodes what the watcher writes.
func through(h *Hub, f Filter, entries []entry, now time.Time) []Event {
	wt := &watcher{hub: h, f: f, pending: map[spanKey]*pendingSpan{}}
	for i := range entries {
		wt.take(&entries[i], now)
	}
	wt.releaseDue(now)
	return decodeAll(wt.out.String())
}

func decodeAll(s string) []Event {
	var out []Event
	for l := range strings.Lines(s) {
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			panic(fmt.Sprintf("line %q: %v", l, err))
		}
		out = append(out, e)
	}
	return out
}

func describe(es []Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s:%s ", e.Type, e.Name)
	}
	return strings.TrimSpace(b.String())
}

func TestFilters(t *testing.T) {
	now := time.Now()
	events := []bridge.Event{
		openEv(resCheckout, 1, 1, 0, "GET", now),
		openEv(resCheckout, 1, 2, 1, "SELECT users", now),
		renameEv(resCheckout, 1, 1, "GET /Users/:id"),
		{TraceID: tid(1), SpanID: sid(2), Time: now, Body: &bridge.Log{Level: "info", Message: "cache miss"}},
		endEv(resCheckout, 1, 2, now.Add(time.Millisecond), codes.Error, false),
		endEv(resCheckout, 1, 1, now.Add(2*time.Millisecond), codes.Ok, false),
		openEv(resBilling, 2, 3, 0, "charge", now),
		{TraceID: tid(2), SpanID: sid(3), Time: now, Resource: resBilling, Body: &bridge.Exception{Name: "Error", Message: "card declined"}},
		endEv(resBilling, 2, 3, now.Add(time.Millisecond), codes.Unset, true),
	}
	h, entries := pipe(t, events)
	for _, tc := range []struct {
		name string
		f    Filter
		want string
	}{
		{"none", Filter{}, "span_open:GET span_open:SELECT users update_name:GET /Users/:id log:SELECT users span_end:SELECT users span_end:GET /Users/:id span_open:charge exception:charge span_end:charge"},
		{"service", Filter{Service: "billing"}, "span_open:charge exception:charge span_end:charge"},
		{"trace", Filter{TraceID: tid(1)}, "span_open:GET span_open:SELECT users update_name:GET /Users/:id log:SELECT users span_end:SELECT users span_end:GET /Users/:id"},
		{"search after rename, any case", Filter{Search: "users/"}, "update_name:GET /Users/:id span_end:GET /Users/:id"},
		{"search log text", Filter{Search: "MISS"}, "log:SELECT users"},
		{"search exception text", Filter{Search: "declined"}, "exception:charge"},
		{"status error", Filter{Status: FilterError}, "span_end:SELECT users exception:charge span_end:charge"},
		{"status ok", Filter{Status: FilterOK}, "span_end:GET /Users/:id"},
		{"status unfinished", Filter{Status: FilterUnfinished}, "span_end:charge"},
		{"service and status", Filter{Service: "checkout", Status: FilterError}, "span_end:SELECT users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(through(h, tc.f, entries, now)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMinOpen(t *testing.T) {
	now := time.Now()
	events := []bridge.Event{
		openEv(resCheckout, 1, 1, 0, "old", now.Add(-2*time.Second)), // open 2s already
		openEv(resCheckout, 1, 2, 1, "quick", now),
		openEv(resCheckout, 1, 3, 1, "hanging", now),
		renameEv(resCheckout, 1, 3, "hanging /x"),
		{TraceID: tid(1), SpanID: sid(3), Time: now, Body: &bridge.Log{Level: "warn", Message: "waiting"}},
		endEv(resCheckout, 1, 2, now.Add(100*time.Millisecond), codes.Ok, false), // ends before 1s
		endEv(resCheckout, 1, 1, now.Add(time.Second), codes.Ok, false),
	}
	h, entries := pipe(t, events)
	f := Filter{MinOpen: time.Second}
	wt := &watcher{hub: h, f: f, pending: map[spanKey]*pendingSpan{}}
	for i := range entries {
		wt.take(&entries[i], now)
	}
	wt.releaseDue(now)
	if got, want := describe(decodeAll(wt.out.String())), "span_open:old span_end:old"; got != want {
		t.Fatalf("at once: got %q, want %q", got, want)
	}
	if len(wt.pending) != 1 || wt.queue[0].deadline != now.Add(time.Second) {
		t.Fatalf("pending = %v, want hanging held until %v", wt.pending, now.Add(time.Second))
	}
	wt.out.Reset()
	wt.releaseDue(now.Add(999 * time.Millisecond))
	if wt.out.Len() != 0 {
		t.Fatalf("released too early: %s", wt.out.String())
	}
	wt.releaseDue(now.Add(time.Second))
	if got, want := describe(decodeAll(wt.out.String())), "span_open:hanging update_name:hanging /x log:hanging /x"; got != want {
		t.Fatalf("released: got %q, want %q", got, want)
	}
	// Once released, the span's later events pass at once.
	_, more := pipe(t, []bridge.Event{openEv(resCheckout, 1, 3, 1, "hanging /x", now), endEv(resCheckout, 1, 3, now.Add(3*time.Second), codes.Ok, false)})
	wt.out.Reset()
	wt.take(&more[1], now.Add(3*time.Second))
	if got := describe(decodeAll(wt.out.String())); got != "span_end:hanging /x" {
		t.Fatalf("after release: got %q", got)
	}
}

func TestJSONForm(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	attrs := []attribute.KeyValue{
		attribute.Bool("b", true), attribute.Int64("i", -4), attribute.Float64("f", 1.5),
		attribute.Float64("nan", nanFloat()), attribute.String("s", "x"),
		attribute.BoolSlice("bs", []bool{true}), attribute.Int64Slice("is", []int64{1, 2}),
		attribute.Float64Slice("fs", []float64{0.5, infFloat()}), attribute.StringSlice("ss", []string{"a"}),
	}
	h, entries := pipe(t, []bridge.Event{
		{TraceID: tid(9), SpanID: sid(9), Time: now, Body: &bridge.Onset{ScriptName: "worker", Entrypoint: "default",
			Attributes: []attribute.KeyValue{attribute.String("cf.colo", "AMS")},
			Info:       bridge.TriggerInfo{Type: "fetch", Method: "GET", URL: "https://x/y"}}},
		{TraceID: tid(9), SpanID: sid(9), Time: now, Body: &bridge.Attributes{Attributes: attrs}},
		{TraceID: tid(9), SpanID: sid(9), Time: now, Body: &bridge.StatusUpdate{Status: bridge.Status{Code: codes.Error, Description: "bad"}}},
		{TraceID: tid(9), SpanID: sid(9), Time: now, Body: &bridge.Return{StatusCode: 503}},
		{TraceID: tid(9), SpanID: sid(9), Time: now, Body: &bridge.StreamDiagnostic{DroppedEvents: 7}},
		{TraceID: tid(9), SpanID: sid(9), Time: now, Body: &bridge.Heartbeat{}},
		{TraceID: tid(9), SpanID: sid(9), Time: now.Add(time.Second), Body: &bridge.Outcome{Outcome: "exception", CPUTime: time.Millisecond, WallTime: time.Second}},
	})
	got := through(h, Filter{}, entries, now)
	if len(got) != 7 {
		t.Fatalf("got %d events: %s", len(got), describe(got))
	}
	on := got[0]
	if on.Type != "onset" || on.Name != "fetch GET https://x/y" || on.Script != "worker" || on.Entrypoint != "default" ||
		on.Trigger == nil || on.Trigger.URL != "https://x/y" || on.Attributes["cf.colo"] != "AMS" {
		t.Fatalf("onset = %+v", on)
	}
	a := got[1].Attributes
	if a["b"] != true || a["i"] != float64(-4) || a["f"] != 1.5 || a["nan"] != "NaN" || a["s"] != "x" ||
		fmt.Sprint(a["bs"]) != "[true]" || fmt.Sprint(a["is"]) != "[1 2]" || fmt.Sprint(a["fs"]) != "[0.5 +Inf]" || fmt.Sprint(a["ss"]) != "[a]" {
		t.Fatalf("attributes = %#v", a)
	}
	if s := got[2]; s.Type != "status" || s.Status.Code != StatusError || s.Status.Description != "bad" || !s.IsError() {
		t.Fatalf("status = %+v", s)
	}
	if got[3].StatusCode != 503 || got[4].DroppedEvents != 7 || got[5].Type != "heartbeat" {
		t.Fatalf("return/diagnostic/heartbeat = %+v %+v %+v", got[3], got[4], got[5])
	}
	out := got[6]
	if out.Type != "outcome" || out.Outcome != "exception" || out.CPUTimeNS != int64(time.Millisecond) ||
		out.WallTimeNS != int64(time.Second) || out.DurationNS != int64(time.Second) || !out.IsError() {
		t.Fatalf("outcome = %+v", out)
	}
	if h.Stats().OpenSpans != 0 {
		t.Fatalf("the outcome did not end the onset's span: %+v", h.Stats())
	}
}

func TestEviction(t *testing.T) {
	h := NewHub(WithMaxOpenSpans(2))
	now := time.Now()
	h.Consume(t.Context(), []bridge.Event{
		openEv(resCheckout, 1, 1, 0, "a", now), openEv(resCheckout, 1, 2, 0, "b", now), openEv(resCheckout, 1, 3, 0, "c", now),
	})
	_, rp := h.register()
	replay, done := h.replayChunk(rp, make([]entry, 8))
	var names []string
	for _, en := range replay {
		names = append(names, en.span.name)
	}
	slices.Sort(names)
	if st := h.Stats(); st.OpenSpans != 2 || st.Evicted != 1 || !done || !slices.Equal(names, []string{"b", "c"}) {
		t.Fatalf("stats %+v, replay %v, want the oldest span forgotten", st, names)
	}
}

// stalledConn opens a watcher connection that never reads, with a small receive
// buffer so that the server's writes stall soon.
func stalledConn(t *testing.T, addr, query string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).SetReadBuffer(128 << 10); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /%s HTTP/1.1\r\nHost: %s\r\n\r\n", query, addr)
	return c
}

// bigBatch is n span_open events carrying a 4 KiB attribute, numbered from first.
func bigBatch(n, first int) []bridge.Event {
	pad := attribute.String("pad", strings.Repeat("x", 4096))
	out := make([]bridge.Event, n)
	for i := range out {
		k := first + i
		e := openEv(resCheckout, 1, 1, 0, fmt.Sprintf("span-%d", k), time.Now(), pad)
		e.SpanID = [8]byte{1, byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
		out[i] = e
	}
	return out
}

func TestStalledWatcherSkipsAheadAndNeverSlowsConsume(t *testing.T) {
	h := NewHub(withBuffer(64), WithMaxOpenSpans(100), withWriteTimeout(time.Minute))
	srv := smallBufServer(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	const fast = 3
	var received [fast]atomic.Int64
	var skippedFast atomic.Int64
	var wg sync.WaitGroup
	for i := range fast {
		_, lines := watch(t, ctx, srv.URL, "")
		wg.Go(func() {
			for l := range lines {
				var e Event
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Errorf("fast watcher: %v", err)
					return
				}
				switch e.Type {
				case "span_open":
					received[i].Add(1)
				case TypeSkipped:
					skippedFast.Add(1)
				}
			}
		})
	}
	stalled := stalledConn(t, srv.Listener.Addr().String(), "")
	waitFor(t, "4 watchers", func() bool { return h.Stats().Watchers == fast+1 })

	// Publish in batches smaller than the ring, letting the fast watchers keep up,
	// until the stalled one has fallen a whole ring behind.
	const batch = 32
	var published int
	var slowest time.Duration
	deadline := time.Now().Add(60 * time.Second)
	for h.Stats().MaxLag <= 64 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled watcher never fell a ring behind after %d events: %+v", published, h.Stats())
		}
		events := bigBatch(batch, published)
		t0 := time.Now()
		h.Consume(ctx, events)
		slowest = max(slowest, time.Since(t0))
		published += batch
		for i := range fast {
			waitFor(t, "a fast watcher to keep up", func() bool { return received[i].Load() == int64(published) })
		}
	}
	// Consume copies a batch into the ring: microseconds (a GC pause or a busy
	// machine under -race can make it milliseconds). A Consume that waited on the
	// stalled socket would block here for the whole write timeout, a minute.
	if slowest > time.Second {
		t.Fatalf("slowest Consume of %d events took %v with a stalled watcher", batch, slowest)
	}
	if skippedFast.Load() != 0 {
		t.Fatalf("fast watchers were told they skipped")
	}
	t.Logf("stalled watcher a ring behind after %d events (%d KiB); slowest Consume %v; %+v", published, published*4, slowest, h.Stats())

	// The stalled watcher, reading at last, finds a skipped line with the count.
	rd := bufio.NewReaderSize(stalled, 1<<20)
	stalled.SetReadDeadline(time.Now().Add(30 * time.Second))
	var sawSkipped bool
	var nread, nlines int
	for !sawSkipped {
		l, err := rd.ReadString('\n')
		nread += len(l)
		nlines++
		if err != nil {
			t.Fatalf("reading the stalled stream: %v after %d bytes, %d lines; last %.200q; %+v", err, nread, nlines, l, h.Stats())
		}
		if strings.Contains(l, `"type":"skipped"`) {
			var e Event
			if err := json.Unmarshal([]byte(l[strings.Index(l, "{"):]), &e); err != nil || e.Skipped == 0 {
				t.Fatalf("skipped line %q: %v", l, err)
			}
			sawSkipped = true
		}
	}
	if h.Stats().Skipped == 0 {
		t.Fatalf("skips not counted: %+v", h.Stats())
	}
	cancel()
	stalled.Close()
	waitFor(t, "watchers to leave", func() bool { return h.Stats().Watchers == 0 })
	wg.Wait()
}

func TestStalledWatcherCutOff(t *testing.T) {
	h := NewHub(withBuffer(1024), withWriteTimeout(100*time.Millisecond), WithMaxOpenSpans(100))
	srv := smallBufServer(t, h)
	stalledConn(t, srv.Listener.Addr().String(), "")
	waitFor(t, "the watcher", func() bool { return h.Stats().Watchers == 1 })
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; h.Stats().CutOff == 0; n += 32 {
		if time.Now().After(deadline) {
			t.Fatalf("never cut off: %+v", h.Stats())
		}
		h.Consume(t.Context(), bigBatch(32, n))
		if h.Stats().Watchers == 0 {
			waitFor(t, "the cut-off count", func() bool { return h.Stats().CutOff == 1 })
		}
		runtime.Gosched()
	}
	waitFor(t, "the watcher to be gone", func() bool { return h.Stats().Watchers == 0 })
}

func TestDisconnectCleanupAndShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	h := NewHub()
	srv := newServer(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	var streams []<-chan string
	for range 5 {
		_, lines := watch(t, ctx, srv.URL+"?min_open=1h", "")
		streams = append(streams, lines)
	}
	waitFor(t, "5 watchers", func() bool { return h.Stats().Watchers == 5 })
	h.Consume(ctx, []bridge.Event{openEv(resCheckout, 1, 1, 0, "held back", time.Now())})
	cancel()
	for _, s := range streams {
		for range s {
		}
	}
	waitFor(t, "watchers to leave", func() bool { return h.Stats().Watchers == 0 })

	// Shutdown ends the streams still open and refuses new ones.
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	_, lines := watch(t, ctx2, srv.URL, "")
	waitFor(t, "a watcher", func() bool { return h.Stats().Watchers == 1 })
	if err := h.Shutdown(ctx2); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	waitFor(t, "the watcher to leave", func() bool { return h.Stats().Watchers == 0 })
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Shutdown: %d, want 503", resp.StatusCode)
	}

	srv.Close()
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"", "service=checkout", "trace_id=0af7651916cd43dd8448eb211c80319c", "search=GET&status=error",
		"min_open=2s&keepalive=1s", "status=unfinished", "x=1", "min_open=-1", "trace_id=zz", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw)
		if err != nil {
			return
		}
		fl, err := ParseFilter(q)
		if err != nil {
			return
		}
		again, err := ParseFilter(fl.Query())
		if err != nil || again != fl {
			t.Fatalf("%q: filter %+v does not round-trip: %+v, %v", raw, fl, again, err)
		}
	})
}

func BenchmarkConsume(b *testing.B) {
	for _, watchers := range []int{0, 1} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			h := NewHub()
			for range watchers {
				h.register()
			}
			now := time.Now()
			batch := make([]bridge.Event, 0, 128)
			for i := range 64 {
				e := openEv(resCheckout, 1, byte(i), 0, "op", now)
				batch = append(batch, e, endEv(resCheckout, 1, byte(i), now, codes.Ok, false))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.Consume(context.Background(), batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
		})
	}
}

func TestConsumeSpansReportsUnfinished(t *testing.T) {
	h := NewHub()
	start := time.Now().Add(-time.Minute)
	h.Consume(t.Context(), []bridge.Event{openEv(resCheckout, 1, 1, 0, "GET", start), openEv(resCheckout, 1, 2, 1, "ok", start)})
	h.Consume(t.Context(), []bridge.Event{renameEv(resCheckout, 1, 1, "GET /hang")})
	pos, _ := h.register()
	crashed := bridge.Span{TraceID: tid(1), SpanID: sid(1), Name: "GET /hang", Start: start, End: start.Add(time.Minute),
		Resource: resCheckout, Unfinished: true, Status: bridge.Status{Code: codes.Error, Description: "producer gone"}}
	h.ConsumeSpans(t.Context(), []bridge.Span{
		crashed,
		{TraceID: tid(1), SpanID: sid(2), Name: "ok", Start: start, End: start}, // ended normally: its events tell
		{TraceID: tid(7), SpanID: sid(7), Unfinished: true},                     // never seen open
	})
	h.ConsumeSpans(t.Context(), []bridge.Span{crashed}) // reported again: already ended
	got, _, _ := h.read(pos, make([]entry, 10))
	es := through(h, Filter{}, got, time.Now())
	if len(es) != 1 || es[0].Type != "span_end" || !es[0].Unfinished || es[0].Name != "GET /hang" ||
		es[0].DurationNS != int64(time.Minute) || es[0].Status.Code != StatusError || es[0].Service != "checkout" {
		t.Fatalf("got %+v, want one unfinished span_end of GET /hang", es)
	}
	if st := h.Stats(); st.OpenSpans != 1 {
		t.Fatalf("open spans %d, want 1 (the span that ended normally is still open here)", st.OpenSpans)
	}
}

func TestOptionDefaults(t *testing.T) {
	h := NewHub(withBuffer(0), withKeepAlive(-time.Second), withWriteTimeout(0), WithMaxOpenSpans(-1), WithMaxWatchers(0), nil)
	if len(h.ring) != DefaultBuffer || h.opts.keepAlive != DefaultKeepAlive || h.opts.writeTimeout != DefaultWriteTimeout ||
		h.opts.MaxOpenSpans != DefaultMaxOpenSpans || h.opts.MaxWatchers != DefaultMaxWatchers {
		t.Fatalf("options out of range did not keep the defaults: %+v, ring %d", h.opts, len(h.ring))
	}
	h = NewHub(withBuffer(8), withKeepAlive(time.Second), withWriteTimeout(2*time.Second), WithMaxOpenSpans(3), WithMaxWatchers(5))
	if len(h.ring) != 8 || h.opts.keepAlive != time.Second || h.opts.writeTimeout != 2*time.Second || h.opts.MaxOpenSpans != 3 || h.opts.MaxWatchers != 5 {
		t.Fatalf("options not applied: %+v, ring %d", h.opts, len(h.ring))
	}
}

func TestSpanEndOutcome(t *testing.T) {
	now := time.Now()
	end := endEv(resCheckout, 1, 1, now.Add(time.Second), codes.Error, false)
	end.Body.(*bridge.SpanEndData).Outcome = "canceled"
	h, entries := pipe(t, []bridge.Event{openEv(resCheckout, 1, 1, 0, "fetch", now), end})
	got := through(h, Filter{Status: FilterError}, entries, now)
	if len(got) != 1 || got[0].Outcome != "canceled" || !got[0].IsError() {
		t.Fatalf("got %+v, want the span_end with its workerd outcome", got)
	}
}

// Watchers that connect and never read, while many spans are open, hold a bounded
// amount of memory each: the replay is read from the open spans a chunk at a time and
// written within flushSize, and nothing is buffered once a write fails. Events keep
// flowing to a watcher that reads.
func TestStalledWatchersBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap with 20 stalled watchers")
	}
	const (
		openSpans = 30000
		stalled   = 20
	)
	h := NewHub(WithMaxWatchers(stalled+1), WithMaxOpenSpans(openSpans), withWriteTimeout(time.Second))
	srv := smallBufServer(t, h)
	pad := attribute.String("pad", strings.Repeat("p", 200))
	now := time.Now()
	for first := 0; first < openSpans; first += 1000 {
		batch := make([]bridge.Event, 1000)
		for i := range batch {
			k := first + i
			batch[i] = openEv(resCheckout, 1, 1, 0, fmt.Sprintf("open-%d", k), now, pad)
			batch[i].SpanID = [8]byte{1, byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
		}
		h.Consume(t.Context(), batch)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// A watcher that reads, asking only for spans that open from now on.
	_, lines := watch(t, ctx, srv.URL+"?search=fresh", "")
	waitFor(t, "the reading watcher", func() bool { return h.Stats().Watchers == 1 })

	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	for range stalled {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	// On a busy machine the first may be cut off before the last connects.
	waitFor(t, "the stalled watchers", func() bool { st := h.Stats(); return st.Watchers-1+int(st.CutOff) == stalled })

	// Ingest goes on, and the reading watcher gets it.
	h.Consume(ctx, []bridge.Event{openEv(resCheckout, 2, 1, 0, "fresh", time.Now())})
	if e := nextEvent(t, lines); e.Name != "fresh" {
		t.Fatalf("reading watcher got %+v, want the fresh span", e)
	}
	waitFor(t, "the stalled watchers to be cut off", func() bool { return h.Stats().CutOff == stalled })
	close(stop)
	<-sampled
	growth := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("%d open spans, %d stalled watchers: heap %d MiB, peak growth %d KiB; %+v",
		openSpans, stalled, base.HeapAlloc>>20, growth>>10, h.Stats())
	// Each watcher holds readBatch entries and flushSize bytes of output: about 150
	// KiB. Copying the open spans for each (7 MiB) or buffering its whole replay
	// (10 MiB) would pass the bound many times over.
	if limit := int64(32 << 20); growth > limit {
		t.Fatalf("heap grew by %d MiB with %d stalled watchers, want at most %d MiB", growth>>20, stalled, limit>>20)
	}
}

// Watchers past MaxWatchers are refused with 503 and Retry-After, and counted.
func TestMaxWatchers(t *testing.T) {
	h := NewHub(WithMaxWatchers(1))
	srv := smallBufServer(t, h)
	stalledConn(t, srv.Listener.Addr().String(), "")
	waitFor(t, "the first watcher", func() bool { return h.Stats().Watchers == 1 })
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || h.Stats().Refused != 1 {
		t.Fatalf("watcher past the cap: status %d, Retry-After %q, %+v", resp.StatusCode, resp.Header.Get("Retry-After"), h.Stats())
	}
}
