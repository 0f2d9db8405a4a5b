package stwotlp

import (
	"bytes"
	"testing"

	"github.com/stwbridge/stwbridge/bridge"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

func mustMarshal(f *testing.F, m proto.Message) []byte {
	b, err := deterministic.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzDecodeEvents feeds arbitrary bytes through proto.Unmarshal and DecodeEvents:
// it must not panic, must account for every record, and what it accepts must encode
// and decode again to the same thing.
func FuzzDecodeEvents(f *testing.F) {
	f.Add(mustMarshal(f, treeEncodeEvents(sampleEvents())))
	events, _ := typicalSpanEvents(0, testParentID, true, testStreamID)
	f.Add(mustMarshal(f, treeEncodeEvents(events)))
	mixed := treeEncodeEvents(sampleEvents()[:3])
	sl := mixed.ResourceLogs[0].ScopeLogs[0]
	sl.LogRecords = append(sl.LogRecords,
		&logspb.LogRecord{Body: stringValue("plain")},
		withAttr(goodRecord(9), AttrSequence, intValue(-3)),
		withAttr(encodeOne(&bridge.SpanOpen{Name: "x"}), AttrLinks, arrayValue([]*commonpb.AnyValue{kvlistValue(nil)})),
		&logspb.LogRecord{EventName: "stw.unknown"})
	f.Add(mustMarshal(f, mixed))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})

	f.Fuzz(func(t *testing.T, data []byte) {
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return
		}
		d := DecodeEventsRequest(&req)
		records, other := 0, 0
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.GetScopeLogs() {
				records += len(sl.GetLogRecords())
			}
		}
		for _, rl := range d.Other.GetResourceLogs() {
			for _, sl := range rl.ScopeLogs {
				other += len(sl.LogRecords)
			}
		}
		if got := len(d.Events) + len(d.Rejected) + other; got != records {
			t.Fatalf("%d records, but %d events + %d rejected + %d other", records, len(d.Events), len(d.Rejected), other)
		}
		enc1 := treeEncodeEvents(d.Events)
		d2 := DecodeEventsRequest(enc1)
		if len(d2.Rejected) > 0 || d2.Other != nil || len(d2.Events) != len(d.Events) {
			t.Fatalf("re-decoding accepted events: %d events, rejected %v", len(d2.Events), d2.Rejected)
		}
		b1, err := deterministic.Marshal(enc1)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := deterministic.Marshal(treeEncodeEvents(d2.Events))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encode/decode is not stable")
		}
	})
}

// FuzzDecodeSpans is FuzzDecodeEvents for traces requests.
func FuzzDecodeSpans(f *testing.F) {
	unfinished := sampleSpan()
	unfinished.Unfinished = true
	f.Add(mustMarshal(f, treeEncodeSpans([]bridge.Span{sampleSpan(), unfinished})))
	_, plain := typicalSpanEvents(0, testParentID, true, testStreamID)
	f.Add(mustMarshal(f, treeEncodeSpans([]bridge.Span{plain})))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return
		}
		spans, errs := DecodeSpans(&req)
		n := 0
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.GetScopeSpans() {
				n += len(ss.GetSpans())
			}
		}
		if len(spans)+len(errs) != n {
			t.Fatalf("%d spans, but %d decoded + %d rejected", n, len(spans), len(errs))
		}
		enc1 := treeEncodeSpans(spans)
		spans2, errs2 := DecodeSpans(enc1)
		if len(errs2) > 0 || len(spans2) != len(spans) {
			t.Fatalf("re-decoding accepted spans: %d spans, errors %v", len(spans2), errs2)
		}
		b1, err := deterministic.Marshal(enc1)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := deterministic.Marshal(treeEncodeSpans(spans2))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encode/decode is not stable")
		}
	})
}

// FuzzDecodeRecord reaches the decoder's field checks faster than random protobuf
// bytes do: it sets one field of a valid record of any event type (a record attribute
// or the body) to a value of any type, and checks what FuzzDecodeEvents checks.
func FuzzDecodeRecord(f *testing.F) {
	for i, key := range []string{AttrSequence, AttrStreamID, AttrSpanName, AttrParentSpanID, AttrSpanKind, AttrTraceState,
		AttrLinks, AttrEvents, AttrStatusCode, AttrOnsetInfo, AttrOnsetScriptTags, AttrDiagnosticDropped, AttrProtocolVersion, "body"} {
		f.Add(uint8(i), key, uint8(i), "00f067aa0ba902b7", int64(i-2))
	}
	samples := sampleEvents()
	f.Fuzz(func(t *testing.T, which uint8, key string, typ uint8, s string, n int64) {
		rec := treeEncodeEvents(samples[int(which)%len(samples):][:1]).ResourceLogs[0].ScopeLogs[0].LogRecords[0]
		var v *commonpb.AnyValue
		switch typ % 8 {
		case 0:
			v = stringValue(s)
		case 1:
			v = intValue(n)
		case 2:
			v = boolValue(n%2 == 0)
		case 3:
			v = arrayValue([]*commonpb.AnyValue{stringValue(s), intValue(n)})
		case 4:
			v = kvlistValue([]*commonpb.KeyValue{kv(s, intValue(n)), kv("trace_id", stringValue(s)), kv("span_id", stringValue(s))})
		case 5:
			v = arrayValue([]*commonpb.AnyValue{kvlistValue([]*commonpb.KeyValue{kv("trace_id", stringValue(s)), kv("span_id", stringValue(s)), kv(s, intValue(n))})})
		case 6:
			v = &commonpb.AnyValue{}
		case 7:
			v = nil
		}
		if key == "body" {
			rec.Body = v
		} else {
			rec.Attributes = append(rec.Attributes, kv(key, v))
		}
		req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{rec}}}}}}
		d := DecodeEventsRequest(req)
		if len(d.Events)+len(d.Rejected) != 1 {
			t.Fatalf("%d events, %d rejected", len(d.Events), len(d.Rejected))
		}
		d2 := DecodeEventsRequest(treeEncodeEvents(d.Events))
		if len(d2.Rejected) > 0 || len(d2.Events) != len(d.Events) {
			t.Fatalf("re-decoding an accepted record: rejected %v", d2.Rejected)
		}
		if len(d.Events) == 1 {
			eventsEqual(t, d2.Events, d.Events)
		}
	})
}
