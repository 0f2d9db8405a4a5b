package stwotlp

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// Fixtures shared by the codec tests: one event of every kind with every field set.

var (
	testTraceID  = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	testSpanID   = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	testParentID = trace.SpanID{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
	testStreamID = bridge.StreamID{0x9c, 0x1e, 0x4a, 0x20, 0x8f, 0x07, 0x4b, 0x3e, 0xb1, 0x2d, 0x5a, 0x66, 0x0c, 0x71, 0x3f, 0x10}
	testStart    = time.Unix(1_767_225_600, 123_456_789).UTC() // 2026-01-01T00:00:00.123456789Z
	testResource = resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "checkout"),
		attribute.String("service.version", "1.4.2"))
	testScope = &instrumentation.Scope{Name: "github.com/acme/checkout", Version: "0.9.0"}
)

func at(d time.Duration) time.Time { return testStart.Add(d) }

// everyValue has one attribute of every attribute.Value type, in the form it has after
// a round trip (see TestAttributeValueCanonicalForms for the two forms that change).
func everyValue() []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Bool("bool", true),
		attribute.Int64("int64", -42),
		attribute.Float64("float64", 2.5),
		attribute.String("string", "héllo"),
		attribute.BoolSlice("boolslice", []bool{true, false}),
		attribute.Int64Slice("int64slice", []int64{1, -2, 3}),
		attribute.Float64Slice("float64slice", []float64{0.5, -1e300}),
		attribute.StringSlice("stringslice", []string{"a", "", "c"}),
		attribute.ByteSlice("byteslice", []byte{0, 1, 0xfe, 0xff}),
		attribute.Slice("slice", attribute.StringValue("x"), attribute.Int64Value(7),
			attribute.SliceValue(), attribute.MapValue(attribute.Bool("in", true))),
		attribute.Map("map", attribute.String("k", "v"), attribute.Int64Slice("n", []int64{1}),
			attribute.Map("nested", attribute.Float64("f", 1.5))),
		{Key: "empty"},
	}
}

func testLink() bridge.Link {
	ts, _ := trace.ParseTraceState("vendor=abc,other=1")
	return bridge.Link{
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
			SpanID:     trace.SpanID{8, 7, 6, 5, 4, 3, 2, 1},
			TraceFlags: trace.FlagsSampled,
			TraceState: ts,
			Remote:     true,
		}),
		Attributes:            []attribute.KeyValue{attribute.String("link.kind", "follows")},
		DroppedAttributeCount: 2,
	}
}

// sampleEvents returns one event of every kind, in a plausible stream order, each
// body with every field set.
func sampleEvents() []bridge.Event {
	ts, _ := trace.ParseTraceState("rojo=00f067aa0ba902b7")
	bodies := []bridge.Body{
		&bridge.Onset{
			Parent:         testParentID,
			ExecutionModel: "stateless",
			ScriptName:     "checkout-worker",
			ScriptVersion:  "v42",
			Entrypoint:     "default",
			ScriptTags:     []string{"env:prod", "team:payments"},
			Info: bridge.TriggerInfo{
				Type: "fetch", Method: "POST", URL: "https://shop.example/checkout",
				Headers:    []bridge.Header{{Name: "content-type", Value: "application/json"}, {Name: "accept", Value: "*/*"}, {Name: "accept", Value: "text/html"}},
				CfJSON:     `{"colo":"AMS"}`,
				MethodName: "charge", Cron: "*/5 * * * *", ScheduledTime: at(-time.Minute),
				QueueName: "orders", BatchSize: 10, MailFrom: "a@example.com", RcptTo: "b@example.com",
				RawSize: 2048, Raw: `{"extra":true}`,
			},
			DispatchNamespace: "customers",
			Attributes:        []attribute.KeyValue{attribute.String("cloudflare.colo", "AMS"), attribute.Int("retries", 0)},
			Unsampled:         true,
		},
		&bridge.SpanOpen{
			Name:         "POST /checkout",
			SpanKind:     trace.SpanKindServer,
			Parent:       testParentID,
			TraceState:   ts,
			TraceFlags:   trace.FlagsSampled,
			RemoteParent: true,
			Attributes:   everyValue(),
			Links:        []bridge.Link{testLink()},
		},
		&bridge.UpdateName{Name: "POST /checkout/{cart}"},
		&bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("http.response.status_code", 200), attribute.StringSlice("tags", []string{"a"})}},
		&bridge.StatusUpdate{Status: bridge.Status{Code: codes.Error, Description: "card declined"}},
		&bridge.Heartbeat{},
		&bridge.Log{Level: "warn", Message: `["retrying charge", 2]`, Truncated: true},
		&bridge.DiagnosticChannel{Channel: "undici:request:create", Message: `{"url":"https://x/"}`},
		&bridge.Exception{Name: "TypeError", Message: "x is undefined", Stack: "at charge (worker.js:10:3)\nat fetch (worker.js:2:1)"},
		&bridge.Return{StatusCode: 402},
		&bridge.StreamDiagnostic{DroppedEvents: 3},
		&bridge.SpanEndData{
			Status:     bridge.Status{Code: codes.Ok, Description: "partly done"},
			Attributes: []attribute.KeyValue{attribute.Bool("retried", true)},
			Events: []bridge.SpanEvent{
				{Name: "exception", Time: at(3 * time.Millisecond), Attributes: []attribute.KeyValue{attribute.String("exception.type", "TypeError")}, DroppedAttributeCount: 1},
				{Name: "bare", Time: at(4 * time.Millisecond)},
			},
			Links:             []bridge.Link{testLink()},
			DroppedAttributes: 4,
			DroppedEvents:     5,
			DroppedLinks:      6,
			ChildSpanCount:    7,
			Unfinished:        true,
			StreamContinues:   true,
			Outcome:           "canceled",
		},
		// A whole span in its canonical form: its attributes and links are all the Open's.
		&bridge.CompleteSpan{
			Start: at(-2 * time.Millisecond),
			Open: &bridge.SpanOpen{
				Name:         "SELECT orders",
				SpanKind:     trace.SpanKindClient,
				Parent:       testParentID,
				TraceState:   ts,
				TraceFlags:   trace.FlagsSampled,
				RemoteParent: true,
				Attributes:   everyValue(),
				Links:        []bridge.Link{testLink()},
			},
			End: &bridge.SpanEndData{
				Status:            bridge.Status{Code: codes.Error, Description: "deadlock"},
				Events:            []bridge.SpanEvent{{Name: "retry", Time: at(-time.Millisecond)}},
				DroppedAttributes: 1, DroppedEvents: 2, DroppedLinks: 3, ChildSpanCount: 4,
				Unfinished: true, StreamContinues: true, Outcome: "canceled",
			},
		},
		&bridge.Outcome{Outcome: "exceededCpu", CPUTime: 12 * time.Millisecond, WallTime: 340 * time.Millisecond},
	}
	events := make([]bridge.Event, len(bodies))
	for i, b := range bodies {
		events[i] = bridge.Event{
			TraceID:  testTraceID,
			SpanID:   testSpanID,
			StreamID: testStreamID,
			Sequence: uint64(i),
			Time:     at(time.Duration(i) * time.Millisecond),
			Resource: testResource,
			Scope:    testScope,
			Body:     b,
		}
	}
	// A span alone in its stream (version 1.1): a root of its own trace, sequence 0,
	// under the stream id receivers derive, since it travels without one.
	alone := bridge.Event{
		TraceID: testParentTraceID(), SpanID: testSpanID, Time: at(3 * time.Millisecond),
		Resource: testResource, Scope: testScope,
		Body: &bridge.CompleteSpan{Start: at(time.Millisecond), Alone: true,
			Open: &bridge.SpanOpen{Name: "GET /health", SpanKind: trace.SpanKindServer, TraceFlags: trace.FlagsSampled,
				Attributes: []attribute.KeyValue{attribute.String("http.request.method", "GET")}},
			End: &bridge.SpanEndData{Status: bridge.Status{Code: codes.Ok}}},
	}
	alone.StreamID = bridge.AloneStreamID(alone.TraceID, alone.SpanID)
	events = append(events, alone)
	// The diagnostic stands for three dropped events: its sequence is the last of them.
	for i := range events {
		if events[i].Kind() == bridge.KindStreamDiagnostic {
			for j := i; j < len(events)-1; j++ {
				events[j].Sequence += 3
			}
			break
		}
	}
	return events
}

// eventsEqual compares events field by field, resources and scopes by content.
func eventsEqual(t *testing.T, got, want []bridge.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Resource.Equal(w.Resource) || (g.Resource == nil) != (w.Resource == nil) {
			t.Errorf("event %d: resource %v, want %v", i, g.Resource, w.Resource)
		}
		if !scopesEqual(g.Scope, w.Scope) {
			t.Errorf("event %d: scope %+v, want %+v", i, g.Scope, w.Scope)
		}
		g.Resource, g.Scope, w.Resource, w.Scope = nil, nil, nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("event %d (%s) differs:\n got %s\nwant %s", i, w.Kind(), dump(g), dump(w))
		}
	}
}

func scopesEqual(a, b *instrumentation.Scope) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Name == b.Name && a.Version == b.Version && a.SchemaURL == b.SchemaURL && a.Attributes.Equals(&b.Attributes)
}

func dump(e bridge.Event) string {
	return fmt.Sprintf("%+v body=%+v", e, e.Body)
}

// testParentTraceID returns a trace id other than testTraceID, for a stream of its own.
func testParentTraceID() trace.TraceID {
	id := testTraceID
	id[0] ^= 0xff
	return id
}
