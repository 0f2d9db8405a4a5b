package stwotlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/protocol/*.json from the encoder")

// protocolExamples are the examples of docs/PROTOCOL.md, made by the encoder: one
// full logs request, one record per event type, one unfinished span.
func protocolExamples() []struct {
	name string
	msg  proto.Message
} {
	ts, _ := trace.ParseTraceState("vendor=abc")
	link := bridge.Link{
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
			SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
			TraceFlags: trace.FlagsSampled,
			Remote:     true,
		}),
		Attributes: []attribute.KeyValue{attribute.String("messaging.message.id", "m-17")},
	}
	ev := func(seq uint64, d time.Duration, b bridge.Body) bridge.Event {
		return bridge.Event{TraceID: testTraceID, SpanID: testSpanID, StreamID: testStreamID, Sequence: seq, Time: at(d),
			Resource: testResource, Scope: testScope, Body: b}
	}
	record := func(e bridge.Event) proto.Message {
		return EventsRequest([]bridge.Event{e}).ResourceLogs[0].ScopeLogs[0].LogRecords[0]
	}
	open := ev(1, 0, &bridge.SpanOpen{
		Name: "POST /checkout", SpanKind: trace.SpanKindServer, Parent: testParentID, TraceFlags: trace.FlagsSampled,
		TraceState: ts, RemoteParent: true,
		Attributes: []attribute.KeyValue{attribute.String("http.request.method", "POST"), attribute.String("url.path", "/checkout"), attribute.Int("cart.items", 3)},
		Links:      []bridge.Link{link},
	})
	end := ev(7, 40*time.Millisecond, &bridge.SpanEndData{
		Status:     bridge.Status{Code: codes.Error, Description: "card declined"},
		Attributes: []attribute.KeyValue{attribute.Int("http.response.status_code", 402)},
		Events: []bridge.SpanEvent{{Name: "exception", Time: at(35 * time.Millisecond),
			Attributes: []attribute.KeyValue{attribute.String("exception.type", "CardError")}}},
		DroppedAttributes: 1,
		ChildSpanCount:    2,
	})
	diagnostic := ev(6, 31*time.Millisecond, &bridge.StreamDiagnostic{DroppedEvents: 2})
	diagnostic.SpanID = trace.SpanID{} // the pipeline's diagnostics concern the stream, not a span
	rootOpen := bridge.Event{TraceID: testTraceID, SpanID: testSpanID, StreamID: bridge.StreamID(testTraceID), Time: at(0),
		Resource: testResource, Scope: testScope, Body: &bridge.SpanOpen{Name: "nightly-report", SpanKind: trace.SpanKindInternal, TraceFlags: trace.FlagsSampled}}
	rootEnd := rootOpen
	rootEnd.Sequence, rootEnd.Time, rootEnd.Body = 1, at(2*time.Second), &bridge.SpanEndData{}

	alone := bridge.Event{TraceID: testTraceID, SpanID: testSpanID, Time: at(3 * time.Millisecond),
		Resource: testResource, Scope: testScope,
		Body: &bridge.CompleteSpan{Start: at(time.Millisecond), Alone: true,
			Open: &bridge.SpanOpen{Name: "GET /health", SpanKind: trace.SpanKindServer, TraceFlags: trace.FlagsSampled,
				Attributes: []attribute.KeyValue{attribute.String("http.request.method", "GET")}},
			End: &bridge.SpanEndData{}}}
	alone.StreamID = bridge.AloneStreamID(alone.TraceID, alone.SpanID)

	unfinished := bridge.Span{TraceID: testTraceID, SpanID: testSpanID, Parent: testParentID, TraceFlags: trace.FlagsSampled,
		Name: "POST /checkout", SpanKind: trace.SpanKindServer, Start: at(0), End: at(30 * time.Second),
		Attributes: []attribute.KeyValue{attribute.String("http.request.method", "POST")},
		Status:     bridge.Status{Description: "producer went away: no span end within 30s"},
		Resource:   testResource, Scope: testScope, Unfinished: true}

	return []struct {
		name string
		msg  proto.Message
	}{
		{"request", EventsRequest([]bridge.Event{rootOpen, rootEnd})},
		{"span_open", record(open)},
		{"update_name", record(ev(2, 5*time.Millisecond, &bridge.UpdateName{Name: "POST /checkout/{cart}"}))},
		{"attributes", record(ev(3, 6*time.Millisecond, &bridge.Attributes{Attributes: everyValue()}))},
		{"status", record(ev(4, 30*time.Millisecond, &bridge.StatusUpdate{Status: bridge.Status{Code: codes.Error, Description: "card declined"}}))},
		{"heartbeat", record(ev(5, 10*time.Second, &bridge.Heartbeat{}))},
		{"diagnostic", record(diagnostic)},
		{"span_end", record(end)},
		{"onset", record(ev(0, 0, &bridge.Onset{
			Parent: testParentID, ExecutionModel: "stateless", ScriptName: "checkout-worker", ScriptVersion: "v42",
			Entrypoint: "default", ScriptTags: []string{"env:prod"},
			Info: bridge.TriggerInfo{Type: "fetch", Method: "POST", URL: "https://shop.example/checkout",
				Headers: []bridge.Header{{Name: "content-type", Value: "application/json"}}},
		}))},
		{"log", record(ev(8, 12*time.Millisecond, &bridge.Log{Level: "warn", Message: `["retrying charge",2]`}))},
		{"exception", record(ev(9, 35*time.Millisecond, &bridge.Exception{Name: "CardError", Message: "card declined", Stack: "at charge (worker.js:10:3)"}))},
		{"return", record(ev(10, 41*time.Millisecond, &bridge.Return{StatusCode: 402}))},
		{"outcome", record(ev(11, 45*time.Millisecond, &bridge.Outcome{Outcome: "exceededCpu", CPUTime: 3 * time.Millisecond, WallTime: 45 * time.Millisecond}))},
		{"span", record(ev(12, 9*time.Millisecond, &bridge.CompleteSpan{
			Start: at(5 * time.Millisecond),
			Open: &bridge.SpanOpen{Name: "SELECT orders", SpanKind: trace.SpanKindClient, Parent: testParentID, TraceFlags: trace.FlagsSampled,
				Attributes: []attribute.KeyValue{attribute.String("db.system.name", "postgresql"), attribute.String("db.operation.name", "SELECT")}},
			End: &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Int("db.response.returned_rows", 3)}},
		}))},
		{"span_alone", record(alone)},
		{"unfinished_span", SpansRequest([]bridge.Span{unfinished})},
	}
}

var idField = regexp.MustCompile(`"(traceId|spanId|parentSpanId)":"([^"]*)"`)

// otlpJSON renders m in OTLP/JSON: protojson with enums as numbers, trace and span
// ids as hex (where protojson writes base64), indented by two spaces.
func otlpJSON(m proto.Message) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseEnumNumbers: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return nil, err
	}
	var convErr error
	hexed := idField.ReplaceAllFunc(compact.Bytes(), func(match []byte) []byte {
		sub := idField.FindSubmatch(match)
		raw, err := base64.StdEncoding.DecodeString(string(sub[2]))
		if err != nil {
			convErr = err
		}
		return []byte(`"` + string(sub[1]) + `":"` + hex.EncodeToString(raw) + `"`)
	})
	if convErr != nil {
		return nil, convErr
	}
	var out bytes.Buffer
	if err := json.Indent(&out, hexed, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// TestProtocolExamples keeps the examples of docs/PROTOCOL.md equal to what the
// encoder writes: testdata/protocol holds them (go test -run TestProtocolExamples
// -update rewrites it), and the document must contain each one.
func TestProtocolExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatalf("reading the protocol document: %v", err)
	}
	for _, ex := range protocolExamples() {
		got, err := otlpJSON(ex.msg)
		if err != nil {
			t.Fatalf("%s: %v", ex.name, err)
		}
		path := filepath.Join("testdata", "protocol", ex.name+".json")
		if *updateGolden {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test -run TestProtocolExamples -update)", ex.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the encoder no longer writes %s; if the change is meant, run go test -run TestProtocolExamples -update and update docs/PROTOCOL.md\ngot:\n%s", ex.name, path, got)
		}
		if !bytes.Contains(doc, []byte("```json\n"+string(want)+"```")) {
			t.Errorf("docs/PROTOCOL.md lacks the example %s as a json block; paste it from %s", ex.name, path)
		}
		// Examples are OTLP/JSON that parses back into what was encoded.
		back := ex.msg.ProtoReflect().New().Interface()
		if err := protojson.Unmarshal(hexToBase64(t, want), back); err != nil {
			t.Errorf("%s: %v", ex.name, err)
		} else if !proto.Equal(back, ex.msg) {
			t.Errorf("%s: parses back as %v", ex.name, back)
		}
	}
}

// hexToBase64 undoes otlpJSON's hex ids, for protojson.
func hexToBase64(t *testing.T, b []byte) []byte {
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatal(err)
	}
	return idField.ReplaceAllFunc(compact.Bytes(), func(match []byte) []byte {
		sub := idField.FindSubmatch(match)
		raw, err := hex.DecodeString(string(sub[2]))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(`"` + string(sub[1]) + `":"` + base64.StdEncoding.EncodeToString(raw) + `"`)
	})
}

// TestProtocolDocNamesEveryField checks that docs/PROTOCOL.md names every wire name the
// codec uses.
func TestProtocolDocNamesEveryField(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("wire.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`= "([a-z_.]+)"`).FindAllSubmatch(src, -1)
	if len(names) < 40 {
		t.Fatalf("found only %d wire names in wire.go", len(names))
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "`"+string(n[1])+"`") {
			t.Errorf("docs/PROTOCOL.md does not name `%s`", n[1])
		}
	}
	for _, field := range []string{"trace_id", "span_id", "trace_state", "flags", "attributes", "dropped_attributes_count", "name", "time_unix_nano",
		"type", "method", "url", "headers", "cf_json", "method_name", "cron", "scheduled_time_unix_nano", "queue_name", "batch_size", "mail_from", "rcpt_to", "raw_size", "raw"} {
		if !strings.Contains(string(doc), "`"+field+"`") {
			t.Errorf("docs/PROTOCOL.md does not name the kvlist field `%s`", field)
		}
	}
}
