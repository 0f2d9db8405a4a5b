package persist

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/receiver"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// rig is a forwarder in miniature: receiver → pipeline → assembler → collected spans,
// with the assembler's snapshot kept by the queue as the forwarder does.
type rig struct {
	q    *Queue
	pipe *bridge.Pipeline
	asm  *bridge.Assembler
	mux  *http.ServeMux
	srv  *httptest.Server

	mu    sync.Mutex
	spans map[trace.SpanID]bridge.Span
	count int
}

type rigConsumer struct{ r *rig }

func (c rigConsumer) Publish(e bridge.Event) bool { return c.r.pipe.Publish(e) }
func (c rigConsumer) ExportLogs(context.Context, *collogspb.ExportLogsServiceRequest) error {
	return nil
}
func (c rigConsumer) ExportTraces(context.Context, *coltracepb.ExportTraceServiceRequest) error {
	return nil
}

func newRig(t *testing.T, dir string, opts ...Option) *rig {
	t.Helper()
	q, err := Open(dir, append([]Option{WithLogger(quietLog())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{q: q, spans: map[trace.SpanID]bridge.Span{}}
	r.asm = bridge.NewAssembler(bridge.SpanConsumerFunc(func(_ context.Context, spans []bridge.Span) error {
		r.mu.Lock()
		for _, s := range spans {
			r.spans[s.SpanID] = s
			r.count++
		}
		r.mu.Unlock()
		return nil
	}), bridge.WithReorderTimeout(50*time.Millisecond), bridge.WithKeepEvents())
	r.pipe = bridge.NewPipeline([]bridge.Tail{bridge.TailFunc(r.asm.Consume)}, bridge.WithFlushInterval(5*time.Millisecond))
	r.mux = http.NewServeMux()
	receiver.New(rigConsumer{r}).Mount(r.mux)
	r.srv = httptest.NewServer(q.Middleware(r.mux))
	t.Cleanup(r.srv.Close)
	return r
}

// crash drops the rig without any shutdown: the log stays as it is on disk.
func (r *rig) crash(t *testing.T) {
	r.srv.Close()
	if err := r.q.wal.Close(); err != nil {
		t.Fatal(err)
	}
	r.q.stopOnce.Do(func() { close(r.q.stop) })
}

func (r *rig) hooks() Hooks {
	return Hooks{FlushPipeline: r.pipe.ForceFlush, FlushDownstream: func(context.Context) error { return nil },
		Snapshot: r.asm.Snapshot}
}

func (r *rig) span(id trace.SpanID) (bridge.Span, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.spans[id]
	return s, ok
}

func (r *rig) waitSpan(t *testing.T, id trace.SpanID) bridge.Span {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s, ok := r.span(id); ok {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("span %s never emitted", id)
		}
		r.pipe.ForceFlush(context.Background())
		r.asm.Sweep(context.Background()) // as the forwarder's sweep loop: gives up on waits for gaps
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	traceID = trace.TraceID{1, 2, 3}
	stream  = bridge.StreamID{9, 9}
	spanA   = trace.SpanID{0xa}
	spanB   = trace.SpanID{0xb}
	t0      = time.Unix(1_700_000_000, 0)
)

func open(seq uint64, id trace.SpanID, name string) bridge.Event {
	return bridge.Event{TraceID: traceID, SpanID: id, StreamID: stream, Sequence: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond),
		Body: &bridge.SpanOpen{Name: name}}
}

func end(seq uint64, id trace.SpanID) bridge.Event {
	return bridge.Event{TraceID: traceID, SpanID: id, StreamID: stream, Sequence: seq, Time: t0.Add(time.Duration(seq) * time.Millisecond),
		Body: &bridge.SpanEndData{}}
}

func post(t *testing.T, url string, events ...bridge.Event) *http.Response {
	t.Helper()
	body := stwotlp.AppendEvents(nil, events)
	resp, err := http.Post(url+"/v1/logs", contentProtobuf, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestCrashReplaysEverythingKept: without any checkpoint, a crash loses nothing: the
// complete span comes again, the open one is open again and completes later.
func TestCrashReplaysEverythingKept(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir)
	if resp := post(t, r.srv.URL, open(0, spanA, "a"), end(1, spanA), open(2, spanB, "b")); resp.StatusCode != 200 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	r.waitSpan(t, spanA)
	r.crash(t)

	r2 := newRig(t, dir)
	if err := r2.q.Replay(context.Background(), r2.mux, r2.pipe.ForceFlush); err != nil {
		t.Fatal(err)
	}
	if st := r2.q.Stats(); st.Replayed != 1 || st.ReplayFailed != 0 {
		t.Fatalf("stats after replay %+v", st)
	}
	if s := r2.waitSpan(t, spanA); s.Name != "a" {
		t.Fatalf("span a replayed as %+v", s)
	}
	post(t, r2.srv.URL, end(3, spanB))
	if s := r2.waitSpan(t, spanB); s.Name != "b" || s.Unfinished {
		t.Fatalf("span b after restart: %+v", s)
	}
	r2.q.Close(false)
}

// TestCheckpointCutsTheLog: after a checkpoint, a restart restores only the open span
// (from the snapshot), not the span already handed downstream.
func TestCheckpointCutsTheLog(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, WithMaxBytes(64<<10))
	r.q.Start(r.hooks())
	for i := 0; i < 50; i++ { // several segments' worth
		post(t, r.srv.URL, open(uint64(2*i), trace.SpanID{0xc, byte(i)}, "c"), end(uint64(2*i+1), trace.SpanID{0xc, byte(i)}))
	}
	post(t, r.srv.URL, open(100, spanA, "a"), end(101, spanA), open(102, spanB, "b"))
	r.waitSpan(t, spanA)
	before := r.q.Stats().WAL
	if err := r.q.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := r.q.Stats()
	if st.Checkpoints != 1 || st.SnapshotEvents != 1 || st.WAL.Committed != before.LastIndex {
		t.Fatalf("after checkpoint: %+v (before %+v)", st, before)
	}
	if st.WAL.Bytes >= before.Bytes {
		t.Fatalf("checkpoint freed nothing: %d bytes before, %d after", before.Bytes, st.WAL.Bytes)
	}
	if err := r.q.Checkpoint(context.Background()); err != nil || r.q.Stats().Checkpoints != 1 {
		t.Fatalf("idle checkpoint: %v, %d checkpoints (want it skipped)", err, r.q.Stats().Checkpoints)
	}
	r.crash(t)

	r2 := newRig(t, dir, WithMaxBytes(64<<10))
	if err := r2.q.Replay(context.Background(), r2.mux, r2.pipe.ForceFlush); err != nil {
		t.Fatal(err)
	}
	if st := r2.q.Stats(); st.Replayed != 1 {
		t.Fatalf("replayed %d records, want the snapshot only", st.Replayed)
	}
	post(t, r2.srv.URL, end(103, spanB))
	if s := r2.waitSpan(t, spanB); s.Name != "b" || s.Unfinished {
		t.Fatalf("restored span b: %+v", s)
	}
	if _, ok := r2.span(spanA); ok {
		t.Fatal("span a, committed before the crash, was sent again")
	}
	r2.q.Close(false)
}

func TestCheckpointWaitsForDownstream(t *testing.T) {
	r := newRig(t, t.TempDir())
	down := errors.New("collector down")
	var losses uint64
	h := r.hooks()
	h.FlushDownstream = func(context.Context) error { return down }
	h.Losses = func() uint64 { return losses }
	r.q.Start(h)
	post(t, r.srv.URL, open(0, spanA, "a"), end(1, spanA))
	if err := r.q.Checkpoint(context.Background()); !errors.Is(err, down) {
		t.Fatalf("checkpoint with the downstream failing: %v", err)
	}
	if st := r.q.Stats(); st.WAL.Committed != 0 || st.CheckpointFailures != 1 {
		t.Fatalf("stats %+v: want nothing committed", st)
	}
	h.FlushDownstream = func(context.Context) error { losses++; return nil }
	r.q.hooks = h
	post(t, r.srv.URL, open(2, spanB, "b"))
	if err := r.q.Checkpoint(context.Background()); err == nil {
		t.Fatal("checkpoint during which the downstream lost data committed")
	}
	h.FlushDownstream = func(context.Context) error { return nil }
	r.q.hooks = h
	post(t, r.srv.URL, end(3, spanB))
	if err := r.q.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := r.q.Stats(); st.WAL.Committed == 0 || st.CheckpointFailures != 2 {
		t.Fatalf("stats %+v", st)
	}
	if err := r.q.Close(true); err != nil {
		t.Fatal(err)
	}
}

func TestCloseDeliveredEmptiesTheLog(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir)
	post(t, r.srv.URL, open(0, spanA, "a"))
	if err := r.q.Close(true); err != nil {
		t.Fatal(err)
	}
	r2 := newRig(t, dir)
	defer r2.q.Close(false)
	if err := r2.q.Replay(context.Background(), r2.mux, nil); err != nil {
		t.Fatal(err)
	}
	if n := r2.q.Stats().Replayed; n != 0 {
		t.Fatalf("replayed %d after a delivered close", n)
	}
}

func TestFullRefusesRetryably(t *testing.T) {
	r := newRig(t, t.TempDir(), WithMaxBytes(8<<10), WithRetryAfter(2*time.Second))
	defer r.q.Close(false)
	var resp *http.Response
	for i := 0; i < 100; i++ {
		resp = post(t, r.srv.URL, open(uint64(i), trace.SpanID{1, byte(i)}, "padding-padding-padding-padding-padding"))
		if resp.StatusCode != 200 {
			break
		}
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("at the bound: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := r.q.Stats(); st.Refused != 1 || st.WAL.Bytes > 8<<10 {
		t.Fatalf("stats %+v", st)
	}
	// gRPC: Unavailable with RetryInfo.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.UnaryInterceptor(r.q.UnaryServerInterceptor()))
	collogspb.RegisterLogsServiceServer(gs, logsServer{})
	go gs.Serve(lis)
	defer gs.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = collogspb.NewLogsServiceClient(cc).Export(context.Background(), stwotlp.EventsRequest([]bridge.Event{open(1000, spanA, "a")}))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || len(st.Details()) != 1 {
		t.Fatalf("gRPC at the bound: %v", err)
	}
	if ri, ok := st.Details()[0].(*errdetails.RetryInfo); !ok || ri.RetryDelay.AsDuration() != 2*time.Second {
		t.Fatalf("details %v", st.Details())
	}
}

type logsServer struct {
	collogspb.UnimplementedLogsServiceServer
}

func (logsServer) Export(context.Context, *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	return &collogspb.ExportLogsServiceResponse{}, nil
}

// TestGRPCKeptAndReplayed: a gRPC request (a proto message here) is kept and replayed
// through the HTTP handler.
func TestGRPCKeptAndReplayed(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir)
	ic := r.q.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/opentelemetry.proto.collector.logs.v1.LogsService/Export"}
	req := stwotlp.EventsRequest([]bridge.Event{open(0, spanA, "a"), end(1, spanA)})
	called := false
	if _, err := ic(context.Background(), req, info, func(context.Context, any) (any, error) { called = true; return nil, nil }); err != nil || !called {
		t.Fatalf("interceptor: %v called %v", err, called)
	}
	// Raw bytes offered by the request are taken as they are.
	raw := stwotlp.AppendEvents(nil, []bridge.Event{open(2, spanB, "b"), end(3, spanB)})
	if _, err := ic(context.Background(), rawReq(raw), info, func(context.Context, any) (any, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	// Other methods pass untouched.
	if _, err := ic(context.Background(), struct{}{}, &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"},
		func(context.Context, any) (any, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if n := r.q.Stats().Kept; n != 2 {
		t.Fatalf("kept %d, want 2", n)
	}
	r.crash(t)
	r2 := newRig(t, dir)
	defer r2.q.Close(false)
	if err := r2.q.Replay(context.Background(), r2.mux, r2.pipe.ForceFlush); err != nil {
		t.Fatal(err)
	}
	r2.waitSpan(t, spanA)
	r2.waitSpan(t, spanB)
}

type rawReq []byte

func (r rawReq) Bytes() []byte { return r }

// TestIdleCheckpoint: with no new request, a checkpoint is skipped while the open spans
// stay as they were, and written once one has left without a request (reported
// unfinished), so that a restart does not restore it.
func TestIdleCheckpoint(t *testing.T) {
	r := newRig(t, t.TempDir())
	defer r.q.Close(false)
	r.q.Start(r.hooks())
	post(t, r.srv.URL, open(0, spanA, "a"), open(1, spanB, "b"))
	if err := r.q.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.q.Checkpoint(context.Background()); err != nil || r.q.Stats().Checkpoints != 1 {
		t.Fatalf("idle checkpoint: %v, %d checkpoints (want it skipped)", err, r.q.Stats().Checkpoints)
	}
	post(t, r.srv.URL, end(2, spanA))
	r.waitSpan(t, spanA)
	if err := r.q.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := r.q.Stats(); st.Checkpoints != 2 || st.SnapshotEvents != 1 {
		t.Fatalf("after span a ended: %+v", st)
	}
	if err := r.asm.Shutdown(context.Background()); err != nil { // b comes out unfinished
		t.Fatal(err)
	}
	if err := r.q.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := r.q.Stats(); st.Checkpoints != 3 || st.SnapshotEvents != 0 {
		t.Fatalf("after span b was reported unfinished: %+v", st)
	}
}

func TestReplaySkipsBadRecords(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir)
	r.q.wal.Append([]byte{99, 1, 2}) // unknown version
	b, _ := Record{Path: "/v1/logs", ContentType: contentProtobuf, Body: []byte("not protobuf")}.encode(nil)
	r.q.wal.Append(b) // refused by the receiver
	post(t, r.srv.URL, open(0, spanA, "a"), end(1, spanA))
	r.crash(t)
	r2 := newRig(t, dir)
	defer r2.q.Close(false)
	if err := r2.q.Replay(context.Background(), r2.mux, r2.pipe.ForceFlush); err != nil {
		t.Fatal(err)
	}
	if st := r2.q.Stats(); st.Replayed != 1 || st.ReplayFailed != 2 {
		t.Fatalf("stats %+v", st)
	}
	r2.waitSpan(t, spanA)
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("no directory: no error")
	}
	q, err := Open(t.TempDir(), WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Checkpoint(context.Background()); err == nil {
		t.Fatal("Checkpoint before Start: no error")
	}
	q.Close(false)
}

func FuzzDecodeRecord(f *testing.F) {
	b, _ := Record{Path: "/v1/stw", ContentType: "application/json", ContentEncoding: "gzip", Body: []byte("[]")}.encode(nil)
	f.Add(b)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err != nil {
			return
		}
		again, err := r.encode(nil)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("round trip: %v, %x != %x", err, again, data)
		}
	})
}

// The periodic checkpoint runs every CheckpointInterval: three of them take less than
// two default intervals.
func TestCheckpointInterval(t *testing.T) {
	r := newRig(t, t.TempDir(), WithCheckpointInterval(10*time.Millisecond))
	r.q.Start(r.hooks())
	t.Cleanup(func() { _ = r.q.Close(false) })
	start := time.Now()
	for i := range 3 {
		if resp := post(t, r.srv.URL, open(uint64(i+1), trace.SpanID{byte(i + 1)}, "a")); resp.StatusCode != http.StatusOK {
			t.Fatalf("post: %d", resp.StatusCode)
		}
		for r.q.Stats().Checkpoints <= int64(i) {
			if time.Since(start) > 2*DefaultCheckpointInterval {
				t.Fatalf("%d checkpoints after %v: %+v", i, time.Since(start), r.q.Stats())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// A checkpoint gives up after CheckpointTimeout when the downstream does not flush
// (the default timeout is longer than the test's deadline).
func TestCheckpointTimeout(t *testing.T) {
	r := newRig(t, t.TempDir(), WithCheckpointInterval(10*time.Millisecond), WithCheckpointTimeout(20*time.Millisecond))
	if resp := post(t, r.srv.URL, open(1, spanA, "a")); resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	h := r.hooks()
	h.FlushDownstream = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	r.q.Start(h)
	t.Cleanup(func() { _ = r.q.Close(false) })
	deadline := time.Now().Add(DefaultCheckpointTimeout / 3)
	for r.q.Stats().CheckpointFailures < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no timed-out checkpoint: %+v", r.q.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	r := newRig(t, t.TempDir(), WithMaxBodyBytes(64))
	events := []bridge.Event{open(1, spanA, strings.Repeat("long name ", 20))}
	if resp := post(t, r.srv.URL, events...); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("body over MaxBodyBytes: status %d, want 413", resp.StatusCode)
	}
	if st := r.q.Stats(); st.Kept != 0 {
		t.Fatalf("a refused body was kept: %+v", st)
	}
}
