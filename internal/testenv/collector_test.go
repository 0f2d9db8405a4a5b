package testenv_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/internal/testenv"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func logsRequest(body string) *collogspb.ExportLogsServiceRequest {
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{EventName: body, TimeUnixNano: 1}}}},
	}}}
}

// TestCollectorRelaysAndRestarts sends a log record through the Collector to a sink,
// restarts the Collector on the same port, and sends another.
func TestCollectorRelaysAndRestarts(t *testing.T) {
	sink, err := otlpsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	col := testenv.StartCollector(t, testenv.CollectorConfig{ForwardTo: sink.Addr()})

	conn, err := grpc.NewClient(col.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := collogspb.NewLogsServiceClient(conn)
	send := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.Export(ctx, logsRequest(name), grpc.WaitForReady(true)); err != nil {
			t.Fatalf("export %s: %v", name, err)
		}
	}
	has := func(name string) func(*otlpsink.Sink) bool {
		return func(s *otlpsink.Sink) bool {
			for _, r := range s.LogRecords() {
				if r.GetEventName() == name {
					return true
				}
			}
			return false
		}
	}

	send("first")
	if !sink.WaitFor(20*time.Second, has("first")) {
		t.Fatal("the first record did not reach the sink through the Collector")
	}
	col.Restart()
	send("second")
	if !sink.WaitFor(20*time.Second, has("second")) {
		t.Fatal("the second record did not reach the sink after a restart")
	}
	if !strings.Contains(col.Output(), "==== stopped") {
		t.Errorf("the output does not record the restart:\n%s", col.Output())
	}
}

// TestCollectorTinyReceiveSize checks that MaxRecvMsgSizeMiB makes the receiver refuse
// a larger request.
func TestCollectorTinyReceiveSize(t *testing.T) {
	col := testenv.StartCollector(t, testenv.CollectorConfig{MaxRecvMsgSizeMiB: 1})
	conn, err := grpc.NewClient(col.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = collogspb.NewLogsServiceClient(conn).Export(ctx, logsRequest(strings.Repeat("x", 2<<20)), grpc.WaitForReady(true))
	if err == nil || !strings.Contains(err.Error(), "larger than max") {
		t.Fatalf("a 2 MiB request to a 1 MiB receiver: got %v, want a size refusal", err)
	}
}
