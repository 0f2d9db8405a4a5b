package receiver

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stwbridge/stwbridge/bridge"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// FuzzGRPCDecode feeds arbitrary bytes to both gRPC export handlers: each must answer
// (success, partial success, InvalidArgument) without panicking.
func FuzzGRPCDecode(f *testing.F) {
	logs, _ := proto.Marshal(mixedLogs())
	traces, _ := proto.Marshal(plainSpans(3))
	f.Add(logs)
	f.Add(traces)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	r := New(discard{})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := r.grpcLogs(ctx, &rawRequest{data: data}); err != nil && status.Code(err) != codes.InvalidArgument {
			t.Fatalf("logs: unexpected error %v", err)
		}
		if _, err := r.grpcTraces(ctx, &rawRequest{data: data}); err != nil && status.Code(err) != codes.InvalidArgument {
			t.Fatalf("traces: unexpected error %v", err)
		}
	})
}

// FuzzHTTPDecode feeds arbitrary bodies, as JSON and as protobuf, to both OTLP/HTTP
// handlers: each must answer 200 or 400 without panicking.
func FuzzHTTPDecode(f *testing.F) {
	logs, _ := proto.Marshal(mixedLogs())
	f.Add([]byte(jsonSpans), false)
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"stw.span_open","traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000001"}]}]}]}`), false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), false)
	f.Add(logs, true)
	r := New(discard{})
	f.Fuzz(func(t *testing.T, body []byte, asProtobuf bool) {
		ct := "application/json"
		if asProtobuf {
			ct = "application/x-protobuf"
		}
		for _, h := range []http.HandlerFunc{r.serveLogs, r.serveTraces} {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			rec := httptest.NewRecorder()
			h(rec, req)
			if rec.Code != 200 && rec.Code != 400 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

// discard is a Consumer that keeps nothing, so long fuzz runs stay small.
type discard struct{}

func (discard) Publish(bridge.Event) bool { return true }
func (discard) ExportLogs(context.Context, *collogspb.ExportLogsServiceRequest) error {
	return nil
}
func (discard) ExportTraces(context.Context, *coltracepb.ExportTraceServiceRequest) error {
	return nil
}
