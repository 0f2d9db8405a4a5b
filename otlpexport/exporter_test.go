package otlpexport_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestExportLogsAndTraces(t *testing.T) {
	sink := exSink(t)
	e := exNew(t, sink.Addr())
	if err := e.ExportLogs(context.Background(), rawLogs("log", 5, 10)); err != nil {
		t.Fatal(err)
	}
	if err := e.ExportTraces(context.Background(), rawTraces("span", 3)); err != nil {
		t.Fatal(err)
	}
	flush(t, e)
	if got := len(sink.LogRecords()); got != 5 {
		t.Errorf("log records: got %d, want 5", got)
	}
	if got := len(sink.Spans()); got != 3 {
		t.Errorf("spans: got %d, want 3", got)
	}
	st := e.Stats()
	if st.Logs.Sent != 5 || st.Traces.Sent != 3 || st.Logs.Requests != 1 || st.Traces.Requests != 1 {
		t.Errorf("stats: %+v", st)
	}
	if st.InFlight != 0 || st.InFlightItems != 0 || st.InFlightBytes != 0 {
		t.Errorf("requests still in flight after ForceFlush: %+v", st)
	}
}

// TestConsumeEventsInOrder sends the events of several streams through two senders
// and checks that they all arrive, decode to what was sent, and keep sequence order
// per stream.
func TestConsumeEventsInOrder(t *testing.T) {
	sink := exSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithSenders(2))
	want := map[bridge.StreamID][]bridge.Event{}
	seq := map[bridge.StreamID]uint64{}
	for batch := range 20 {
		var events []bridge.Event
		for s := range 4 {
			id := streamID(byte(16 * s))
			evs := spanEvents(id, trace.TraceID{byte(s + 1)}, 3, seq[id])
			seq[id] += uint64(len(evs))
			want[id] = append(want[id], evs...)
			events = append(events, evs...)
		}
		if err := e.Consume(context.Background(), events); err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		clear(events) // the caller reuses its slice; the exporter must not care
	}
	flush(t, e)

	got := map[bridge.StreamID][]bridge.Event{}
	for _, req := range sink.LogRequests() {
		dec := stwotlp.DecodeEventsRequest(req)
		if len(dec.Rejected) > 0 {
			t.Fatalf("rejected records: %v", dec.Rejected)
		}
		for _, ev := range dec.Events {
			got[ev.StreamID] = append(got[ev.StreamID], ev)
		}
	}
	for id, evs := range want {
		g := got[id]
		if len(g) != len(evs) {
			t.Fatalf("stream %s: got %d events, want %d", id, len(g), len(evs))
		}
		for i := range evs {
			if g[i].Sequence != uint64(i) {
				t.Fatalf("stream %s: event %d has sequence %d: out of order", id, i, g[i].Sequence)
			}
			if g[i].Kind() != evs[i].Kind() || g[i].SpanID != evs[i].SpanID || !g[i].Time.Equal(evs[i].Time) {
				t.Fatalf("stream %s: event %d: got %+v, want %+v", id, i, g[i], evs[i])
			}
		}
	}
	if st := e.Stats(); st.Logs.Sent != uint64(20*4*9) {
		t.Errorf("sent %d log records, want %d", st.Logs.Sent, 20*4*9)
	}
}

func TestRetryUnavailableThenSuccess(t *testing.T) {
	sink := exSink(t)
	var calls atomic.Int32
	sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error {
		if calls.Add(1) <= 3 {
			return status.Error(codes.Unavailable, "warming up")
		}
		return nil
	}
	e := exNew(t, sink.Addr())
	if err := e.ExportLogs(context.Background(), rawLogs("r", 10, 0)); err != nil {
		t.Fatal(err)
	}
	flush(t, e)
	st := e.Stats()
	if got := len(sink.LogRecords()); got != 10 {
		t.Fatalf("got %d records, want 10", got)
	}
	if st.Retries != 3 || st.Logs.Sent != 10 || st.Logs.Failed != 0 {
		t.Errorf("stats: %+v, want 3 retries, 10 sent, 0 failed", st)
	}
}

// TestRetryableCodes checks each code of the OTLP spec's list is retried, and the
// others are not.
func TestRetryableCodes(t *testing.T) {
	for _, tc := range []struct {
		code  codes.Code
		retry bool
	}{
		{codes.Canceled, true}, {codes.DeadlineExceeded, true}, {codes.Aborted, true},
		{codes.OutOfRange, true}, {codes.Unavailable, true}, {codes.DataLoss, true},
		{codes.ResourceExhausted, false}, {codes.InvalidArgument, false},
		{codes.Unauthenticated, false}, {codes.PermissionDenied, false},
		{codes.Internal, false}, {codes.Unimplemented, false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			sink := exSink(t)
			var calls atomic.Int32
			sink.OnTraces = func(*coltracepb.ExportTraceServiceRequest) error {
				if calls.Add(1) == 1 {
					return status.Error(tc.code, "first attempt fails")
				}
				return nil
			}
			e := exNew(t, sink.Addr())
			_ = e.ExportTraces(context.Background(), rawTraces("s", 2))
			flush(t, e)
			st := e.Stats()
			if tc.retry && (st.Traces.Sent != 2 || st.Retries != 1 || calls.Load() != 2) {
				t.Errorf("retryable: stats %+v, calls %d", st, calls.Load())
			}
			if !tc.retry && (st.Traces.Failed != 2 || st.Retries != 0 || calls.Load() != 1) {
				t.Errorf("not retryable: stats %+v, calls %d", st, calls.Load())
			}
		})
	}
}

func retryInfoError(code codes.Code, delay time.Duration) error {
	st, err := status.New(code, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// TestRetryInfoHonoured: the server's retry_delay replaces the 10 ms backoff, and makes
// ResourceExhausted retryable.
func TestRetryInfoHonoured(t *testing.T) {
	for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted} {
		t.Run(code.String(), func(t *testing.T) {
			sink := exSink(t)
			var mu sync.Mutex
			var times []time.Time
			sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error {
				mu.Lock()
				defer mu.Unlock()
				times = append(times, time.Now())
				if len(times) == 1 {
					return retryInfoError(code, 400*time.Millisecond)
				}
				return nil
			}
			e := exNew(t, sink.Addr())
			_ = e.ExportLogs(context.Background(), rawLogs("r", 1, 0))
			flush(t, e)
			mu.Lock()
			defer mu.Unlock()
			if len(times) != 2 {
				t.Fatalf("%d attempts, want 2", len(times))
			}
			if gap := times[1].Sub(times[0]); gap < 400*time.Millisecond || gap > 3*time.Second {
				t.Errorf("waited %v between attempts, want the server's 400ms (at most 3s)", gap)
			}
			if st := e.Stats(); st.Logs.Sent != 1 || st.Retries != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestNonRetryableDroppedCountedLogged(t *testing.T) {
	sink := exSink(t)
	var calls atomic.Int32
	sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error {
		calls.Add(1)
		return status.Error(codes.InvalidArgument, "bad data")
	}
	logs := &logBuffer{t: t}
	e := exNew(t, sink.Addr(), logs.logger())
	_ = e.ExportLogs(context.Background(), rawLogs("r", 4, 0))
	_ = e.ExportLogs(context.Background(), rawLogs("r", 4, 0))
	flush(t, e)
	st := e.Stats()
	// The second request may leave with the first, merged: one or two calls.
	if st.Logs.Failed != 8 || st.Logs.Sent != 0 || st.Retries != 0 || calls.Load() < 1 || calls.Load() > 2 {
		t.Errorf("stats %+v, calls %d", st, calls.Load())
	}
	out := logs.String()
	if !strings.Contains(out, "not retryable") || !strings.Contains(out, "bad data") {
		t.Errorf("log does not explain the failure:\n%s", out)
	}
	if n := strings.Count(out, "export failed"); n != 1 {
		t.Errorf("%d log lines for two failures within the rate limit, want 1", n)
	}
}

func TestRetriesExhausted(t *testing.T) {
	sink := exSink(t)
	sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error {
		return status.Error(codes.Unavailable, "down")
	}
	logs := &logBuffer{t: t}
	e := exNew(t, sink.Addr(), logs.logger(), otlpexport.WithRetry(otlpexport.RetryConfig{
		Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
		MaxElapsedTime: 200 * time.Millisecond,
	}))
	start := time.Now()
	_ = e.ExportLogs(context.Background(), rawLogs("r", 3, 0))
	flush(t, e)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %v, want about 200ms", d)
	}
	st := e.Stats()
	if st.Logs.Failed != 3 || st.Retries == 0 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "retries were exhausted") {
		t.Errorf("log does not say retries were exhausted:\n%s", logs.String())
	}
}

func TestRetryDisabled(t *testing.T) {
	sink := exSink(t)
	var calls atomic.Int32
	sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error {
		calls.Add(1)
		return status.Error(codes.Unavailable, "down")
	}
	e := exNew(t, sink.Addr(), otlpexport.WithRetry(otlpexport.RetryConfig{Enabled: false}))
	_ = e.ExportLogs(context.Background(), rawLogs("r", 1, 0))
	flush(t, e)
	if calls.Load() != 1 || e.Stats().Logs.Failed != 1 {
		t.Errorf("calls %d, stats %+v", calls.Load(), e.Stats())
	}
}

func TestPartialSuccess(t *testing.T) {
	sink := exSink(t)
	sink.PartialLogs = func(*collogspb.ExportLogsServiceRequest) *collogspb.ExportLogsPartialSuccess {
		return &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: 2, ErrorMessage: "two records too old"}
	}
	sink.PartialTraces = func(*coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTracePartialSuccess {
		return &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1, ErrorMessage: "one span refused"}
	}
	var calls atomic.Int32
	sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error { calls.Add(1); return nil }
	logs := &logBuffer{t: t}
	e := exNew(t, sink.Addr(), logs.logger())
	_ = e.ExportLogs(context.Background(), rawLogs("r", 5, 0))
	_ = e.ExportTraces(context.Background(), rawTraces("s", 4))
	flush(t, e)
	st := e.Stats()
	if st.Logs.Sent != 3 || st.Logs.Rejected != 2 || st.Traces.Sent != 3 || st.Traces.Rejected != 1 {
		t.Errorf("stats %+v", st)
	}
	if calls.Load() != 1 || st.Retries != 0 {
		t.Errorf("a partial success was retried: %d calls, %d retries", calls.Load(), st.Retries)
	}
	if out := logs.String(); !strings.Contains(out, "two records too old") || !strings.Contains(out, "one span refused") {
		t.Errorf("the receiver's messages are not logged:\n%s", out)
	}
}

// incoming records the headers and the compression of each request the server saw.
type incoming struct {
	mu   sync.Mutex
	mds  []metadata.MD
	comp []string
}

func (in *incoming) interceptor() grpc.ServerOption { return grpc.StatsHandler(in) }

func (in *incoming) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (in *incoming) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (in *incoming) HandleConn(context.Context, stats.ConnStats) {}
func (in *incoming) HandleRPC(_ context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.InHeader); ok {
		in.mu.Lock()
		in.mds = append(in.mds, h.Header.Copy())
		in.comp = append(in.comp, h.Compression)
		in.mu.Unlock()
	}
}

// last returns the headers of the last request and its compression ("" for none).
func (in *incoming) last(t *testing.T) (metadata.MD, string) {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.mds) == 0 {
		t.Fatal("no request arrived")
	}
	return in.mds[len(in.mds)-1], in.comp[len(in.comp)-1]
}

func TestCompressionHeadersDialOptions(t *testing.T) {
	for _, comp := range []string{"gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			var in incoming
			sink := exSink(t, in.interceptor())
			e := exNew(t, sink.Addr(),
				otlpexport.WithCompression(comp),
				otlpexport.WithHeaders(map[string]string{"Authorization": "Bearer s3cret", "x-tenant": "blue"}),
				otlpexport.WithDialOptions(grpc.WithUserAgent("stwbridge-test/1")),
			)
			_ = e.ExportLogs(context.Background(), rawLogs("r", 50, 100))
			flush(t, e)
			waitRecords(t, sink, 50)
			md, enc := in.last(t)
			if comp == "gzip" && enc != "gzip" || comp == "none" && enc != "" {
				t.Errorf("grpc-encoding %q with compression %s", enc, comp)
			}
			if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer s3cret" {
				t.Errorf("authorization: %v", got)
			}
			if got := md.Get("x-tenant"); len(got) != 1 || got[0] != "blue" {
				t.Errorf("x-tenant: %v", got)
			}
			if ua := strings.Join(md.Get("user-agent"), " "); !strings.Contains(ua, "stwbridge-test/1") {
				t.Errorf("user-agent %q: the dial option was not used", ua)
			}
		})
	}
}

func TestRequestSplitting(t *testing.T) {
	sink := exSink(t)
	const max = 4096
	e := exNew(t, sink.Addr(), otlpexport.WithMaxRequestBytes(max), otlpexport.WithSenders(1))
	req := rawLogs("split", 200, 150) // about 34 KB
	if proto.Size(req) < 8*max {
		t.Fatalf("test request too small: %d bytes", proto.Size(req))
	}
	if err := e.ExportLogs(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// A single record above the limit is sent alone.
	if err := e.ExportLogs(context.Background(), rawLogs("big", 1, 2*max)); err != nil {
		t.Fatal(err)
	}
	flush(t, e)
	reqs := sink.LogRequests()
	if len(reqs) < 9 {
		t.Fatalf("%d requests, want the batch split into at least 8, plus one", len(reqs))
	}
	var names []string
	for i, r := range reqs {
		if n := proto.Size(r); n > max && i != len(reqs)-1 {
			t.Errorf("request %d is %d bytes, above the %d limit", i, n, max)
		}
		for _, rl := range r.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				if sl.Scope.GetName() != "test" {
					t.Errorf("request %d lost its scope", i)
				}
				for _, rec := range sl.LogRecords {
					names = append(names, rec.EventName)
				}
			}
		}
	}
	if len(names) != 201 {
		t.Fatalf("%d records arrived, want 201", len(names))
	}
	for i := range 200 {
		if names[i] != fmt.Sprintf("split-%d", i) {
			t.Fatalf("record %d is %s: order lost", i, names[i])
		}
	}
}

// blockingSink answers nothing until released (or the test ends).
func blockingSink(t *testing.T) (*otlpsink.Sink, func()) {
	sink := exSink(t)
	release := make(chan struct{})
	var once sync.Once
	rel := func() { once.Do(func() { close(release) }) }
	t.Cleanup(rel)
	sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error { <-release; return nil }
	sink.OnTraces = func(*coltracepb.ExportTraceServiceRequest) error { <-release; return nil }
	return sink, rel
}

// TestPushBack: with the requests in flight at their bound, a call waits for room
// within its context; one whose deadline passes first is dropped and counted, one
// that waits long enough goes through once the receiver answers.
func TestPushBack(t *testing.T) {
	sink, release := blockingSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithMaxInFlight(2), otlpexport.WithSenders(1))
	for range 2 {
		if err := e.ExportLogs(context.Background(), rawLogs("q", 3, 0)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.ExportLogs(ctx, rawLogs("late", 3, 0)); !errors.Is(err, otlpexport.ErrNoRoom) {
		t.Fatalf("ExportLogs with the bound reached: %v, want ErrNoRoom after the deadline", err)
	}
	if st := e.Stats(); st.Logs.Dropped != 3 || st.InFlight != 2 || st.InFlightItems != 6 {
		t.Errorf("stats %+v, want 3 dropped and 2 requests (6 records) in flight", st)
	}
	waited := make(chan error, 1)
	go func() { waited <- e.ExportLogs(context.Background(), rawLogs("w", 3, 0)) }()
	select {
	case err := <-waited:
		t.Fatalf("ExportLogs returned (%v) while nothing in flight finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	if err := <-waited; err != nil {
		t.Fatalf("ExportLogs that waited for room: %v", err)
	}
	flush(t, e)
	if st := e.Stats(); st.Logs.Sent != 9 || st.Logs.Dropped != 3 {
		t.Errorf("stats %+v, want 9 sent and 3 dropped", st)
	}
	if d := e.Delivery(); d.Pending != 0 || d.Lost != 3 {
		t.Errorf("delivery %+v, want nothing pending and 3 lost", d)
	}
}

func TestInFlightBytesBound(t *testing.T) {
	sink, release := blockingSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithMaxInFlightBytes(10_000), otlpexport.WithSenders(1))
	var refused int
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if err := e.ExportLogs(ctx, rawLogs("q", 1, 3000)); errors.Is(err, otlpexport.ErrNoRoom) {
			refused++
		}
		cancel()
	}
	if refused != 2 {
		t.Errorf("%d requests of 3 KB refused with 10 KB in flight, want 2", refused)
	}
	release()
	flush(t, e)
	if st := e.Stats(); st.Logs.Sent != 3 {
		t.Errorf("sent %d, want 3", st.Logs.Sent)
	}
}

func TestTimeoutPerRequest(t *testing.T) {
	sink, _ := blockingSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithTimeout(150*time.Millisecond), otlpexport.WithRetry(otlpexport.RetryConfig{}))
	start := time.Now()
	_ = e.ExportLogs(context.Background(), rawLogs("t", 1, 0))
	flush(t, e)
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("the request ended after %v, want about 150ms", d)
	}
	if e.Stats().Logs.Failed != 1 {
		t.Errorf("stats %+v", e.Stats())
	}
}

func TestForceFlushDeadline(t *testing.T) {
	sink, release := blockingSink(t)
	e := exNew(t, sink.Addr())
	_ = e.ExportLogs(context.Background(), rawLogs("f", 1, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.ForceFlush(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ForceFlush: %v, want the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ForceFlush returned after %v, past its 200ms deadline", d)
	}
	release()
	flush(t, e)
}

func TestShutdownDeadline(t *testing.T) {
	sink, _ := blockingSink(t)
	e := exNew(t, sink.Addr(), otlpexport.WithSenders(1))
	for range 3 {
		_ = e.ExportLogs(context.Background(), rawLogs("s", 2, 0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown returned after %v, past its 300ms deadline", d)
	}
	if st := e.Stats(); st.Logs.Failed != 6 || st.InFlight != 0 {
		t.Errorf("stats after Shutdown: %+v, want the 6 records failed and none in flight", st)
	}
	if err := e.ExportLogs(context.Background(), rawLogs("late", 1, 0)); !errors.Is(err, otlpexport.ErrShutdown) {
		t.Errorf("ExportLogs after Shutdown: %v", err)
	}
	if err := e.Consume(context.Background(), spanEvents(streamID(1), trace.TraceID{1}, 1, 0)); !errors.Is(err, otlpexport.ErrShutdown) {
		t.Errorf("Consume after Shutdown: %v", err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestShutdownSendsQueued(t *testing.T) {
	sink := exSink(t)
	e := exNew(t, sink.Addr())
	for range 5 {
		_ = e.ExportLogs(context.Background(), rawLogs("s", 2, 0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.LogRecords()); got != 10 {
		t.Errorf("%d records sent by Shutdown, want 10", got)
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, opt := range map[string]otlpexport.Option{
		"WithCompression": otlpexport.WithCompression("zstd"),
		"WithTimeout":     otlpexport.WithTimeout(0),
		"WithMode":        otlpexport.WithMode(otlpexport.Mode(7)),
		"WithRetry": otlpexport.WithRetry(otlpexport.RetryConfig{
			Enabled: true, InitialInterval: time.Second, MaxInterval: time.Millisecond,
		}),
		"WithMaxInFlight":      otlpexport.WithMaxInFlight(0),
		"WithMaxInFlightBytes": otlpexport.WithMaxInFlightBytes(-1),
		"WithMaxRequestBytes":  otlpexport.WithMaxRequestBytes(10),
		"WithSenders":          otlpexport.WithSenders(0),
		"WithSweepInterval":    otlpexport.WithSweepInterval(0),
		"WithEndpoint":         otlpexport.WithEndpoint("ftp://x:1"),
	} {
		_, err := otlpexport.New(context.Background(), otlpexport.WithInsecure(), opt)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v, want an error naming the option", name, err)
		}
	}
}

func TestModeString(t *testing.T) {
	for m, s := range map[otlpexport.Mode]string{otlpexport.ModeEvents: "events", otlpexport.ModeSpans: "spans", otlpexport.ModeBoth: "both"} {
		if m.String() != s {
			t.Errorf("%d: %s", m, m.String())
		}
	}
	e := exNew(t, "127.0.0.1:1")
	if e.Mode() != otlpexport.ModeEvents {
		t.Errorf("default mode %v, want events", e.Mode())
	}
}

// TestRetryBackoffGrows: waits grow exponentially from InitialInterval, with jitter of
// ±50%, and stop growing at MaxInterval.
func TestRetryBackoffGrows(t *testing.T) {
	sink := exSink(t)
	var mu sync.Mutex
	var times []time.Time
	sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) <= 6 {
			return status.Error(codes.Unavailable, "down")
		}
		return nil
	}
	const initial, maxInterval = 40 * time.Millisecond, 150 * time.Millisecond
	e := exNew(t, sink.Addr(), otlpexport.WithRetry(otlpexport.RetryConfig{
		Enabled: true, InitialInterval: initial, MaxInterval: maxInterval, MaxElapsedTime: time.Minute,
	}))
	_ = e.ExportLogs(context.Background(), rawLogs("b", 1, 0))
	flush(t, e)
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 7 {
		t.Fatalf("%d attempts, want 7", len(times))
	}
	want := float64(initial)
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		if low := time.Duration(0.5 * want); gap < low {
			t.Errorf("wait %d was %v, want at least %v", i, gap, low)
		}
		want = min(want*1.5, float64(maxInterval))
	}
	if e.Stats().Retries != 6 {
		t.Errorf("retries %d, want 6", e.Stats().Retries)
	}
}

// TestBacklogMerged: requests that wait behind a slow one leave together, as one
// request of at most WithMaxRequestBytes, in order; logs and traces never mix.
func TestBacklogMerged(t *testing.T) {
	sink := exSink(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	sink.OnLogs = func(*collogspb.ExportLogsServiceRequest) error {
		first.Do(func() {
			close(entered)
			<-release
		})
		return nil
	}
	e := exNew(t, sink.Addr(), otlpexport.WithSenders(1), otlpexport.WithMaxRequestBytes(4096), otlpexport.WithMaxInFlight(16))
	_ = e.ExportLogs(context.Background(), rawLogs("first", 1, 0))
	select {
	case <-entered: // the first request is at the receiver, which holds it
	case <-time.After(10 * time.Second):
		t.Fatal("the first request did not reach the receiver")
	}
	for i := range 6 { // 6 × ~1.1 KB: at most 3 fit in 4 KB
		_ = e.ExportLogs(context.Background(), rawLogs(fmt.Sprint("backlog", i), 1, 1000))
	}
	_ = e.ExportTraces(context.Background(), rawTraces("t", 1))
	_ = e.ExportLogs(context.Background(), rawLogs("last", 1, 0))
	close(release)
	flush(t, e)

	reqs := sink.LogRequests()
	var names []string
	for _, r := range reqs {
		if n := proto.Size(r); n > 4096 {
			t.Errorf("a merged request is %d bytes, above the 4096 limit", n)
		}
		for _, rl := range r.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, rec := range sl.LogRecords {
					names = append(names, strings.TrimSuffix(rec.EventName, "-0"))
				}
			}
		}
	}
	want := "first backlog0 backlog1 backlog2 backlog3 backlog4 backlog5 last"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("records arrived as %q, want %q", got, want)
	}
	// first | backlog0-2 | backlog3-5 | (traces) | last
	if len(reqs) != 4 || e.Stats().Logs.Requests != 4 || len(sink.TraceRequests()) != 1 {
		t.Errorf("%d logs requests (stats %+v), %d traces requests; want 4 and 1", len(reqs), e.Stats(), len(sink.TraceRequests()))
	}
}

// connCounter counts the connections a server accepted.
type connCounter struct{ n atomic.Int32 }

func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                         {}
func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnBegin); ok {
		c.n.Add(1)
	}
}

// TestSendersOwnConnections: each sender has its own connection (requests sent at
// once over one HTTP/2 connection would share its flow-control window).
func TestSendersOwnConnections(t *testing.T) {
	var conns connCounter
	sink := exSink(t, grpc.StatsHandler(&conns))
	e := exNew(t, sink.Addr(), otlpexport.WithSenders(3))
	for range 9 {
		_ = e.ExportLogs(context.Background(), rawLogs("c", 1, 0))
	}
	flush(t, e)
	if n := conns.n.Load(); n != 3 {
		t.Errorf("%d connections for 3 senders", n)
	}
}
