package receiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// recorder is a Consumer that keeps what it gets; full makes Publish refuse.
type recorder struct {
	mu      sync.Mutex
	events  []bridge.Event
	logs    []*collogspb.ExportLogsServiceRequest
	traces  []*coltracepb.ExportTraceServiceRequest
	full    bool
	passErr error
}

func (c *recorder) Publish(e bridge.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return false
	}
	c.events = append(c.events, e)
	return true
}

func (c *recorder) ExportLogs(_ context.Context, req *collogspb.ExportLogsServiceRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passErr != nil {
		return c.passErr
	}
	c.logs = append(c.logs, req)
	return nil
}

func (c *recorder) ExportTraces(_ context.Context, req *coltracepb.ExportTraceServiceRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passErr != nil {
		return c.passErr
	}
	c.traces = append(c.traces, req)
	return nil
}

func (c *recorder) nSpans() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.traces {
		for _, rs := range r.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				n += len(ss.Spans)
			}
		}
	}
	return n
}

var (
	traceID  = trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	streamID = bridge.StreamID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}
)

// lifecycle returns SpanOpen, UpdateName and SpanEnd of one span.
func lifecycle(span byte) []bridge.Event {
	now := time.Unix(1_700_000_000, 0)
	base := bridge.Event{TraceID: traceID, SpanID: trace.SpanID{7: span}, StreamID: streamID}
	open, rename, end := base, base, base
	open.Sequence, open.Time = 3*uint64(span), now
	open.Body = &bridge.SpanOpen{Name: "work", Attributes: []attribute.KeyValue{attribute.String("k", "v")}}
	rename.Sequence, rename.Time = 3*uint64(span)+1, now
	rename.Body = &bridge.UpdateName{Name: "GET /x"}
	end.Sequence, end.Time = 3*uint64(span)+2, now.Add(time.Millisecond)
	end.Body = &bridge.SpanEndData{}
	return []bridge.Event{open, rename, end}
}

// mixedLogs is a logs request with three lifecycle events and one ordinary log record.
func mixedLogs() *collogspb.ExportLogsServiceRequest {
	req := stwotlp.EventsRequest(lifecycle(1))
	sl := req.ResourceLogs[0].ScopeLogs[0]
	sl.LogRecords = append(sl.LogRecords, &logspb.LogRecord{
		Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "plain log"}},
	})
	return req
}

func plainSpans(n int) *coltracepb.ExportTraceServiceRequest {
	ss := &tracepb.ScopeSpans{}
	for i := range n {
		ss.Spans = append(ss.Spans, &tracepb.Span{TraceId: traceID[:], SpanId: []byte{0, 0, 0, 0, 0, 0, 1, byte(i + 1)}, Name: fmt.Sprint("s", i)})
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{ss}}}}
}

func startGRPC(t *testing.T, c Consumer, opts ...Option) (*Receiver, *grpc.ClientConn) {
	t.Helper()
	r := New(c, opts...)
	srv := grpc.NewServer(r.ServerOptions()...)
	r.RegisterGRPC(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return r, conn
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGRPCLogs(t *testing.T) {
	c := &recorder{}
	r, conn := startGRPC(t, c)
	resp, err := collogspb.NewLogsServiceClient(conn).Export(ctxT(t), mixedLogs())
	if err != nil {
		t.Fatal(err)
	}
	if resp.PartialSuccess != nil {
		t.Errorf("unexpected partial success %v", resp.PartialSuccess)
	}
	if len(c.events) != 3 || c.events[0].Kind() != bridge.KindSpanOpen || c.events[2].Kind() != bridge.KindSpanEnd {
		t.Fatalf("events published: %v", c.events)
	}
	if len(c.logs) != 1 || c.logs[0].ResourceLogs[0].ScopeLogs[0].LogRecords[0].Body.GetStringValue() != "plain log" {
		t.Fatalf("plain log not passed through: %v", c.logs)
	}
	if st := r.Stats(); st.Events != 3 || st.Logs != 1 || st.Requests != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestGRPCLogsBuffersReused sends requests of one frame and of many (their bytes
// live in gRPC's buffers or in recycled ones, and their events in a recycled slice),
// alternating, the smaller one of many frames after the larger (it reuses its
// buffer), and checks that every event published keeps what was sent.
func TestGRPCLogsBuffersReused(t *testing.T) {
	c := &recorder{}
	_, conn := startGRPC(t, c)
	client := collogspb.NewLogsServiceClient(conn)
	var want []bridge.Event
	for i, spans := range []int{1, 300, 2, 200, 3} {
		var events []bridge.Event
		for s := range spans {
			for _, e := range lifecycle(byte(s%255 + 1)) {
				e.TraceID[0], e.StreamID[0] = byte(i), byte(i)
				if o, ok := e.Body.(*bridge.SpanOpen); ok {
					o.Attributes = []attribute.KeyValue{attribute.String("request", fmt.Sprintf("%d-%d %s", i, s, strings.Repeat("x", 100)))}
				}
				events = append(events, e)
			}
		}
		if _, err := client.Export(ctxT(t), stwotlp.EventsRequest(events)); err != nil {
			t.Fatal(err)
		}
		want = append(want, events...)
	}
	if len(c.events) != len(want) {
		t.Fatalf("%d events published, want %d", len(c.events), len(want))
	}
	for i := range want {
		got, w := c.events[i], want[i]
		if got.TraceID != w.TraceID || got.SpanID != w.SpanID || got.Sequence != w.Sequence {
			t.Fatalf("event %d: %v, want %v", i, got, w)
		}
		if o, ok := w.Body.(*bridge.SpanOpen); ok {
			g := got.Body.(*bridge.SpanOpen)
			if g.Name != o.Name || len(g.Attributes) != 1 || g.Attributes[0] != o.Attributes[0] {
				t.Fatalf("event %d: %+v, want %+v", i, g, o)
			}
		}
	}
}

func TestGRPCTraces(t *testing.T) {
	c := &recorder{}
	r, conn := startGRPC(t, c)
	req := plainSpans(2)
	resp, err := coltracepb.NewTraceServiceClient(conn).Export(ctxT(t), req)
	if err != nil || resp.PartialSuccess != nil {
		t.Fatalf("export: %v %v", resp, err)
	}
	if !proto.Equal(c.traces[0], req) {
		t.Error("spans were not passed through unchanged")
	}
	if r.Stats().Spans != 2 {
		t.Errorf("stats %+v", r.Stats())
	}
}

func TestGRPCPartialSuccess(t *testing.T) {
	c := &recorder{}
	r, conn := startGRPC(t, c)
	logs := stwotlp.EventsRequest(append(lifecycle(1), lifecycle(2)...))
	logs.ResourceLogs[0].ScopeLogs[0].LogRecords[1].SpanId = []byte{1, 2, 3} // a bad update_name
	resp, err := collogspb.NewLogsServiceClient(conn).Export(ctxT(t), logs)
	if err != nil {
		t.Fatal(err)
	}
	if ps := resp.PartialSuccess; ps == nil || ps.RejectedLogRecords != 1 || !strings.Contains(ps.ErrorMessage, "log_records[1]") {
		t.Fatalf("partial success = %v, want 1 rejected naming log_records[1]", resp.PartialSuccess)
	}
	if len(c.events) != 5 {
		t.Errorf("the good events beside the bad one were not all kept: %d", len(c.events))
	}

	spans := plainSpans(3)
	spans.ResourceSpans[0].ScopeSpans[0].Spans[1].TraceId = []byte{1}
	tresp, err := coltracepb.NewTraceServiceClient(conn).Export(ctxT(t), spans)
	if err != nil {
		t.Fatal(err)
	}
	if ps := tresp.PartialSuccess; ps == nil || ps.RejectedSpans != 1 || !strings.Contains(ps.ErrorMessage, "trace_id") {
		t.Fatalf("partial success = %v, want 1 rejected span", tresp.PartialSuccess)
	}
	if got := c.nSpans(); got != 2 {
		t.Errorf("%d good spans passed through, want 2", got)
	}
	if st := r.Stats(); st.Rejected != 2 {
		t.Errorf("rejected = %d, want 2", st.Rejected)
	}
}

// rawCodecClient sends *[]byte as is, to put malformed protobuf on the wire.
type rawCodecClient struct{}

func (rawCodecClient) Name() string { return "proto" }
func (rawCodecClient) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*(v.(*[]byte)))}, nil
}
func (rawCodecClient) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func TestGRPCMalformed(t *testing.T) {
	c := &recorder{}
	r, conn := startGRPC(t, c)
	bad := []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f} // field 1, length far past the end
	for _, method := range []string{
		"/opentelemetry.proto.collector.logs.v1.LogsService/Export",
		"/opentelemetry.proto.collector.trace.v1.TraceService/Export",
	} {
		var out []byte
		err := conn.Invoke(ctxT(t), method, &bad, &out, grpc.ForceCodecV2(rawCodecClient{}))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "malformed OTLP") {
			t.Errorf("%s: err = %v, want InvalidArgument naming the problem", method, err)
		}
	}
	if r.Stats().Malformed != 2 {
		t.Errorf("malformed = %d", r.Stats().Malformed)
	}
}

func TestGRPCOversize(t *testing.T) {
	c := &recorder{}
	r, conn := startGRPC(t, c, WithMaxRecvMsgSize(1024))
	client := coltracepb.NewTraceServiceClient(conn)
	_, err := client.Export(ctxT(t), plainSpans(100))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "vs. 1024") {
		t.Fatalf("err = %v, want ResourceExhausted naming the limit", err)
	}
	var events []bridge.Event
	for i := range 40 {
		events = append(events, lifecycle(byte(i+1))...)
	}
	_, err = collogspb.NewLogsServiceClient(conn).Export(ctxT(t), stwotlp.EventsRequest(events))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("logs: err = %v, want ResourceExhausted", err)
	}
	if len(c.traces) != 0 || len(c.logs) != 0 {
		t.Error("an oversize request got through")
	}
	// A good request beside them goes through on the same connection.
	if _, err := client.Export(ctxT(t), plainSpans(1)); err != nil {
		t.Fatalf("good request after the oversize ones: %v", err)
	}
	if len(c.traces) != 1 {
		t.Errorf("got %d trace requests, want the good one", len(c.traces))
	}
	if st := r.Stats(); st.Oversize != 2 || st.Malformed != 0 {
		t.Errorf("stats %+v, want 2 oversize", st)
	}
}

func TestGRPCQueueFullIsRetryable(t *testing.T) {
	c := &recorder{full: true}
	r, conn := startGRPC(t, c, WithRetryAfter(2*time.Second))
	_, err := collogspb.NewLogsServiceClient(conn).Export(ctxT(t), mixedLogs())
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "queue full") {
		t.Fatalf("err = %v, want Unavailable: queue full", err)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.RetryDelay.AsDuration()
		}
	}
	if delay != 2*time.Second {
		t.Errorf("RetryInfo delay = %v, want 2s", delay)
	}
	if len(c.logs) != 0 {
		t.Error("plain logs were passed on although the request was refused: the retry would duplicate them")
	}
	if st := r.Stats(); st.Dropped != 3 || st.RetryableFails != 1 {
		t.Errorf("stats %+v", st)
	}
}

// batchRecorder takes a request's events all or none (BatchPublisher).
type batchRecorder struct {
	recorder
	batches int
}

func (c *batchRecorder) PublishBatch(events []bridge.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return false
	}
	c.batches++
	c.events = append(c.events, events...)
	return true
}

// TestGRPCBatchRefusedWhole: with a BatchPublisher, a request whose events do not fit
// is refused whole as retryable and its events counted as refused, not dropped; one
// that fits is published in one batch.
func TestGRPCBatchRefusedWhole(t *testing.T) {
	c := &batchRecorder{recorder: recorder{full: true}}
	r, conn := startGRPC(t, c)
	_, err := collogspb.NewLogsServiceClient(conn).Export(ctxT(t), mixedLogs())
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "3 lifecycle events refused") {
		t.Fatalf("err = %v, want Unavailable: 3 lifecycle events refused", err)
	}
	if st := r.Stats(); st.Refused != 3 || st.Dropped != 0 || st.Events != 0 || len(c.logs) != 0 {
		t.Errorf("stats %+v (%d plain log requests passed), want 3 refused, nothing dropped or passed", st, len(c.logs))
	}
	c.mu.Lock()
	c.full = false
	c.mu.Unlock()
	if _, err := collogspb.NewLogsServiceClient(conn).Export(ctxT(t), mixedLogs()); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Events != 3 || c.batches != 1 || len(c.logs) != 1 {
		t.Errorf("stats %+v, %d batches, %d plain log requests; want 3 events in 1 batch and the plain logs passed", st, c.batches, len(c.logs))
	}
}

func TestGRPCPassThroughFailureIsRetryable(t *testing.T) {
	c := &recorder{passErr: errors.New("downstream queue full")}
	_, conn := startGRPC(t, c)
	_, err := coltracepb.NewTraceServiceClient(conn).Export(ctxT(t), plainSpans(1))
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "downstream queue full") {
		t.Fatalf("err = %v, want Unavailable with the cause", err)
	}
}

// --- HTTP ---

func startHTTP(t *testing.T, c Consumer, opts ...Option) (*Receiver, string) {
	t.Helper()
	r := New(c, opts...)
	mux := http.NewServeMux()
	r.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func post(t *testing.T, url, contentType string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func TestHTTPProtobuf(t *testing.T) {
	c := &recorder{}
	_, url := startHTTP(t, c)
	body, _ := proto.Marshal(mixedLogs())
	resp, data := post(t, url+LogsPath, "application/x-protobuf", body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("status %d %s", resp.StatusCode, data)
	}
	var out collogspb.ExportLogsServiceResponse
	if err := proto.Unmarshal(data, &out); err != nil || out.PartialSuccess != nil {
		t.Fatalf("response %v %v", &out, err)
	}
	if len(c.events) != 3 || len(c.logs) != 1 {
		t.Fatalf("events %d logs %d", len(c.events), len(c.logs))
	}
	tbody, _ := proto.Marshal(plainSpans(2))
	if resp, data := post(t, url+TracesPath, "application/x-protobuf", tbody); resp.StatusCode != 200 {
		t.Fatalf("traces: %d %s", resp.StatusCode, data)
	}
	if c.nSpans() != 2 {
		t.Errorf("spans passed: %d", c.nSpans())
	}
}

func TestHTTPGzip(t *testing.T) {
	c := &recorder{}
	_, url := startHTTP(t, c)
	body, _ := proto.Marshal(plainSpans(3))
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(body)
	zw.Close()
	if resp, data := post(t, url+TracesPath, "application/x-protobuf", zb.Bytes(), "Content-Encoding", "gzip"); resp.StatusCode != 200 {
		t.Fatalf("gzip: %d %s", resp.StatusCode, data)
	}
	if c.nSpans() != 3 {
		t.Errorf("spans %d", c.nSpans())
	}
	resp, data := post(t, url+TracesPath, "application/x-protobuf", body, "Content-Encoding", "gzip")
	if resp.StatusCode != 400 || !strings.Contains(string(data), "gzip") {
		t.Errorf("bad gzip: %d %s", resp.StatusCode, data)
	}
	resp, data = post(t, url+TracesPath, "application/x-protobuf", body, "Content-Encoding", "br")
	if resp.StatusCode != 400 || !strings.Contains(string(data), "Content-Encoding") {
		t.Errorf("unknown encoding: %d %s", resp.StatusCode, data)
	}
}

// jsonSpans is OTLP/JSON as the spec writes it: hex ids, string timestamps, enum numbers.
const jsonSpans = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
 "scopeSpans":[{"scope":{"name":"t"},"spans":[
  {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000011","parentSpanId":"0000000000000001",
   "name":"GET /","kind":2,"startTimeUnixNano":"1700000000000000001","endTimeUnixNano":1700000000000000002,
   "links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000002"}],
   "unknownField":true}]}]}]}`

func TestHTTPJSON(t *testing.T) {
	c := &recorder{}
	_, url := startHTTP(t, c)
	resp, data := post(t, url+TracesPath, "application/json", []byte(jsonSpans))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s", resp.StatusCode, data)
	}
	s := c.traces[0].ResourceSpans[0].ScopeSpans[0].Spans[0]
	if hex.EncodeToString(s.TraceId) != "0102030405060708090a0b0c0d0e0f10" || hex.EncodeToString(s.SpanId) != "0000000000000011" ||
		hex.EncodeToString(s.ParentSpanId) != "0000000000000001" || hex.EncodeToString(s.Links[0].SpanId) != "0000000000000002" {
		t.Errorf("ids not decoded as hex: %x %x %x", s.TraceId, s.SpanId, s.ParentSpanId)
	}
	if s.StartTimeUnixNano != 1700000000000000001 || s.EndTimeUnixNano != 1700000000000000002 {
		t.Errorf("timestamps lost precision: %d %d", s.StartTimeUnixNano, s.EndTimeUnixNano)
	}

	// Lifecycle events as OTLP/JSON, written by protojson then with hex ids.
	logsJSON := toOTLPJSON(t, mixedLogs())
	if resp, data := post(t, url+LogsPath, "application/json", logsJSON); resp.StatusCode != 200 {
		t.Fatalf("logs: %d %s", resp.StatusCode, data)
	}
	if len(c.events) != 3 || c.events[0].TraceID != traceID {
		t.Fatalf("events from JSON: %v", c.events)
	}
}

// toOTLPJSON writes a request as OTLP/JSON (hex ids instead of protojson's base64).
func toOTLPJSON(t *testing.T, m proto.Message) []byte {
	data, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, rec := range m.(*collogspb.ExportLogsServiceRequest).ResourceLogs[0].ScopeLogs[0].LogRecords {
		for _, id := range [][]byte{rec.TraceId, rec.SpanId} {
			if len(id) > 0 {
				b64, _ := protojson.Marshal(&commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: id}})
				enc := strings.TrimSuffix(strings.TrimPrefix(strings.ReplaceAll(string(b64), " ", ""), `{"bytesValue":`), "}")
				s = strings.ReplaceAll(s, enc, `"`+hex.EncodeToString(id)+`"`)
			}
		}
	}
	return []byte(s)
}

func TestHTTPBadInput(t *testing.T) {
	c := &recorder{}
	r, url := startHTTP(t, c, WithMaxRequestBodySize(2048))
	big, _ := proto.Marshal(plainSpans(200))
	var zbig bytes.Buffer
	zw := gzip.NewWriter(&zbig)
	zw.Write(bytes.Repeat([]byte{0}, 1<<20)) // a small body that inflates past the limit
	zw.Close()
	cases := []struct {
		name, path, ct string
		body           []byte
		header         []string
		status         int
		want           string
	}{
		{"bad protobuf", TracesPath, "application/x-protobuf", []byte{0x0a, 0xff, 0xff}, nil, 400, "malformed OTLP traces"},
		{"bad JSON", LogsPath, "application/json", []byte(`{"resourceLogs":[`), nil, 400, "invalid JSON"},
		{"JSON of the wrong shape", TracesPath, "application/json", []byte(`{"resourceSpans":{"x":1}}`), nil, 400, "malformed OTLP traces"},
		{"two JSON values", TracesPath, "application/json", []byte(`{} {}`), nil, 400, "more than one"},
		{"oversize", TracesPath, "application/x-protobuf", big, nil, 413, "max_request_body_size"},
		{"oversize after gzip", TracesPath, "application/x-protobuf", zbig.Bytes(), []string{"Content-Encoding", "gzip"}, 413, "limit"},
		{"content type", TracesPath, "text/plain", []byte("x"), nil, 415, "Content-Type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := post(t, url+tc.path, tc.ct, tc.body, tc.header...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, data)
			}
			var st spb.Status
			if tc.ct == "application/json" {
				err := protojson.Unmarshal(data, &st)
				if err != nil {
					t.Fatalf("error body is not a JSON Status: %v %s", err, data)
				}
			} else if err := proto.Unmarshal(data, &st); err != nil {
				t.Fatalf("error body is not a Status: %v", err)
			}
			if !strings.Contains(st.Message, tc.want) {
				t.Errorf("message %q does not mention %q", st.Message, tc.want)
			}
		})
	}
	if len(c.traces)+len(c.logs)+len(c.events) != 0 {
		t.Error("bad requests got through")
	}
	if st := r.Stats(); st.Oversize != 2 || st.Malformed != 5 {
		t.Errorf("stats %+v", st)
	}
	resp, err := http.Get(url + TracesPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: status %d", resp.StatusCode)
	}
}

func TestHTTPPartialSuccessAndRetry(t *testing.T) {
	c := &recorder{}
	_, url := startHTTP(t, c, WithRetryAfter(1500*time.Millisecond))
	spans := plainSpans(2)
	spans.ResourceSpans[0].ScopeSpans[0].Spans[0].SpanId = nil
	body, _ := proto.Marshal(spans)
	resp, data := post(t, url+TracesPath, "application/x-protobuf", body)
	var out coltracepb.ExportTraceServiceResponse
	if resp.StatusCode != 200 || proto.Unmarshal(data, &out) != nil || out.PartialSuccess.GetRejectedSpans() != 1 {
		t.Fatalf("want 200 with 1 rejected span, got %d %v", resp.StatusCode, &out)
	}
	c.full = true
	body, _ = proto.Marshal(mixedLogs())
	resp, data = post(t, url+LogsPath, "application/x-protobuf", body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("queue full: status %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
}

// A bad id in OTLP/JSON rejects its record only, as a record of the wrong id length
// does in protobuf: the good records beside it are kept, and the response says which
// id was wrong.
func TestHTTPJSONBadIDPartialSuccess(t *testing.T) {
	c := &recorder{}
	_, url := startHTTP(t, c)
	bad := strings.Replace(jsonSpans, `"spans":[`, `"spans":[{"traceId":"not hex","spanId":"0000000000000012","name":"bad"},`, 1)
	resp, data := post(t, url+TracesPath, "application/json", []byte(bad))
	var out coltracepb.ExportTraceServiceResponse
	if resp.StatusCode != 200 || protojson.Unmarshal(data, &out) != nil || out.PartialSuccess.GetRejectedSpans() != 1 {
		t.Fatalf("want 200 with 1 rejected span, got %d %s", resp.StatusCode, data)
	}
	if msg := out.PartialSuccess.GetErrorMessage(); !strings.Contains(msg, `resourceSpans[0].scopeSpans[0].spans[0].traceId: "not hex" is not 32 hex digits`) {
		t.Errorf("message %q does not name the bad id", msg)
	}
	if len(c.traces) != 1 || len(c.traces[0].ResourceSpans[0].ScopeSpans[0].Spans) != 1 || c.traces[0].ResourceSpans[0].ScopeSpans[0].Spans[0].Name != "GET /" {
		t.Fatalf("the good span was not kept: %v", c.traces)
	}

	// Logs: one lifecycle record with a bad span id, as JSON and as protobuf.
	req := mixedLogs()
	good := hex.EncodeToString(req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].SpanId)
	js := strings.Replace(string(toOTLPJSON(t, req)), `"`+good+`"`, `"12345"`, 1)
	req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].SpanId = []byte{1, 2}
	pb, _ := proto.Marshal(req)
	for _, tc := range []struct {
		ct   string
		body []byte
	}{{"application/json", []byte(js)}, {"application/x-protobuf", pb}} {
		c := &recorder{}
		_, url := startHTTP(t, c)
		resp, data := post(t, url+LogsPath, tc.ct, tc.body)
		var out collogspb.ExportLogsServiceResponse
		var err error
		if tc.ct == "application/json" {
			err = protojson.Unmarshal(data, &out)
		} else {
			err = proto.Unmarshal(data, &out)
		}
		if resp.StatusCode != 200 || err != nil || out.PartialSuccess.GetRejectedLogRecords() != 1 {
			t.Fatalf("%s: want 200 with 1 rejected record, got %d %s", tc.ct, resp.StatusCode, data)
		}
		if len(c.events) != 2 || len(c.logs) != 1 {
			t.Fatalf("%s: %d events and %d pass-through requests kept, want 2 and 1", tc.ct, len(c.events), len(c.logs))
		}
	}
}

// A non-STW log record or a span link with an id of a length no receiver accepts is
// rejected, not passed on to break the downstream request.
func TestBadIDLengthsRejected(t *testing.T) {
	c := &recorder{}
	_, url := startHTTP(t, c)
	req := mixedLogs()
	recs := req.ResourceLogs[0].ScopeLogs[0].LogRecords
	plain := recs[len(recs)-1]
	req.ResourceLogs[0].ScopeLogs[0].LogRecords = append(recs, &logspb.LogRecord{TraceId: []byte{1}, Body: plain.Body})
	pb, _ := proto.Marshal(req)
	resp, data := post(t, url+LogsPath, "application/x-protobuf", pb)
	var out collogspb.ExportLogsServiceResponse
	if resp.StatusCode != 200 || proto.Unmarshal(data, &out) != nil || out.PartialSuccess.GetRejectedLogRecords() != 1 {
		t.Fatalf("want 200 with 1 rejected record, got %d %v", resp.StatusCode, &out)
	}
	if n := len(c.logs[0].ResourceLogs[0].ScopeLogs[0].LogRecords); n != 1 {
		t.Fatalf("%d plain records passed on, want 1", n)
	}
	spans := plainSpans(2)
	spans.ResourceSpans[0].ScopeSpans[0].Spans[1].Links = []*tracepb.Span_Link{{TraceId: traceID[:], SpanId: []byte{1}}}
	pb, _ = proto.Marshal(spans)
	resp, data = post(t, url+TracesPath, "application/x-protobuf", pb)
	var tout coltracepb.ExportTraceServiceResponse
	if resp.StatusCode != 200 || proto.Unmarshal(data, &tout) != nil || tout.PartialSuccess.GetRejectedSpans() != 1 {
		t.Fatalf("want 200 with 1 rejected span, got %d %v", resp.StatusCode, &tout)
	}
}

// nestedJSONSpans is an OTLP/JSON request whose one span has an attribute nested depth
// kvlists deep, with a bad span id at the bottom of it (a link's).
func nestedJSONSpans(depth int) []byte {
	var b strings.Builder
	b.WriteString(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000011","name":"deep","attributes":[`)
	for range depth {
		b.WriteString(`{"key":"k","value":{"kvlistValue":{"values":[`)
	}
	b.WriteString(`{"key":"leaf","value":{"stringValue":"x"}}`)
	for range depth {
		b.WriteString(`]}}}`)
	}
	b.WriteString(`],"links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"bad"}]}]}]}]}`)
	return []byte(b.String())
}

// Rewriting the ids of a deeply nested OTLP/JSON body costs allocations in proportion
// to its size, not to the square of its depth (before, every node built its path: a
// body 2,000 deep allocated over 100 MiB).
func TestJSONNestingAllocations(t *testing.T) {
	r := New(discard{})
	body := nestedJSONSpans(2000)
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		r.serveTraces(rec, req)
		return rec
	}
	serve() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rec := serve()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	if limit := uint64(200 * len(body)); allocated > limit {
		t.Fatalf("one request of %d bytes allocated %d bytes, want at most %d", len(body), allocated, limit)
	}
	t.Logf("%d-byte body, nested 2000 deep: %d bytes allocated", len(body), allocated)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `links[0].spanId`) {
		t.Fatalf("status %d %s, want partial success naming the link's span id", rec.Code, rec.Body)
	}
}

// TestRawCodecMarshalsResponses checks the shortcut for full successes against the
// standard codec: an empty response is zero bytes, anything else proto's encoding.
func TestRawCodecMarshalsResponses(t *testing.T) {
	c := rawCodec{proto: encoding.GetCodecV2(grpcproto.Name)}
	for _, resp := range []proto.Message{
		&collogspb.ExportLogsServiceResponse{},
		&coltracepb.ExportTraceServiceResponse{},
		&collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: 2, ErrorMessage: "bad"}},
		&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1}},
	} {
		got, err := c.Marshal(resp)
		if err != nil {
			t.Fatalf("%T: %v", resp, err)
		}
		want, _ := proto.Marshal(resp)
		if !bytes.Equal(got.Materialize(), want) {
			t.Errorf("%v: marshalled %x, want %x", resp, got.Materialize(), want)
		}
	}
}
