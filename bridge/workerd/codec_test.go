package workerd

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

func sampleLines(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile("../../testdata/workerd-stw-sample.ndjson")
	if err != nil {
		t.Fatalf("reading the sample: %v", err)
	}
	var lines [][]byte
	for _, l := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	if len(lines) != 44 {
		t.Fatalf("sample has %d events, want 44", len(lines))
	}
	return lines
}

func semantic(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, data)
	}
	return v
}

func TestSampleRoundTrip(t *testing.T) {
	for i, line := range sampleLines(t) {
		e, err := Decode(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		out, err := encodeEvent(e)
		if err != nil {
			t.Fatalf("line %d: encode: %v", i+1, err)
		}
		if want, got := semantic(t, line), semantic(t, out); !reflect.DeepEqual(want, got) {
			t.Errorf("line %d re-encodes differently\n in: %s\nout: %s", i+1, line, out)
		}
		e2, err := Decode(out)
		if err != nil {
			t.Fatalf("line %d: decode of re-encoded: %v", i+1, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Errorf("line %d: event differs after round trip\n%+v\n%+v", i+1, e, e2)
		}
	}
}

func mustSpan(s string) trace.SpanID {
	id, err := parseSpanID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func TestSampleMapping(t *testing.T) {
	lines := sampleLines(t)
	dec := func(i int) bridge.Event {
		t.Helper()
		e, err := Decode(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// onset: the envelope has no spanId (no parent); event.spanId is the root span.
	e := dec(0)
	on, ok := e.Body.(*bridge.Onset)
	if !ok {
		t.Fatalf("line 1 body %T, want *Onset", e.Body)
	}
	if e.SpanID != mustSpan("a3ce54d35191e6ae") || on.Parent.IsValid() {
		t.Errorf("onset span %s parent %s", e.SpanID, on.Parent)
	}
	if e.StreamID.String() != "36ea23f65aa0585be81336c1f2b06c87" || e.Sequence != 0 {
		t.Errorf("stream %s seq %d", e.StreamID, e.Sequence)
	}
	if want := time.Date(2026, 11, 23, 18, 31, 8, 884e6, time.UTC); !e.Time.Equal(want) {
		t.Errorf("time %v want %v", e.Time, want)
	}
	if on.ExecutionModel != "stateless" || on.Info.Type != "fetch" || on.Info.Method != "GET" ||
		on.Info.URL != "http://127.0.0.1:18080/a" || len(on.Info.Headers) != 3 ||
		on.Info.CfJSON != `{"clientIp":"127.0.0.1:39792"}` {
		t.Errorf("onset %+v", on)
	}
	// spanOpen: spanContext.spanId is the parent; event.spanId the new span.
	e = dec(3)
	so := e.Body.(*bridge.SpanOpen)
	if e.SpanID != mustSpan("c73bf177c1f5c449") || so.Parent != mustSpan("4e667ec42c103d0b") || so.Name != "inner" {
		t.Errorf("spanOpen span %s parent %s name %q", e.SpanID, so.Parent, so.Name)
	}
	// attributes: spanContext.spanId is the span itself; typed values.
	e = dec(7)
	at := e.Body.(*bridge.Attributes)
	want := []attribute.KeyValue{
		attribute.String("app.user", "alice"), attribute.Int64("app.count", 3),
		attribute.Bool("app.ok", true), attribute.Float64("app.ratio", 0.5),
	}
	if e.SpanID != mustSpan("4e667ec42c103d0b") || !reflect.DeepEqual(at.Attributes, want) {
		t.Errorf("attributes on %s: %v", e.SpanID, at.Attributes)
	}
	e = dec(8)
	if end := e.Body.(*bridge.SpanEndData); end.Outcome != "ok" || end.Status.Code != codes.Unset || e.SpanID != mustSpan("4e667ec42c103d0b") {
		t.Errorf("spanClose %+v on %s", end, e.SpanID)
	}
	if l := dec(1).Body.(*bridge.Log); l.Level != "log" || l.Message != `["hello from main","http://127.0.0.1:18080/a"]` {
		t.Errorf("log %+v", l)
	}
	if r := dec(12).Body.(*bridge.Return); r.StatusCode != 200 {
		t.Errorf("return %+v", r)
	}
	if x := dec(24).Body.(*bridge.Exception); x.Name != "Error" || x.Message != "boom" || !strings.Contains(x.Stack, "main:13:42") {
		t.Errorf("exception %+v", x)
	}
	if o := dec(25).Body.(*bridge.Outcome); o.Outcome != "exception" {
		t.Errorf("outcome %+v", o)
	}
}

const env = `{"spanContext":{"traceId":"983a4641c7fed86130cb5bf175732ce5","spanId":"a3ce54d35191e6ae"},"invocationId":"36ea23f65aa0585be81336c1f2b06c87","timestamp":"2026-11-23T18:31:08.885Z","sequence":1,"event":`

func TestDecodeBodies(t *testing.T) {
	cases := []struct {
		name, event string
		want        bridge.Body
	}{
		{"spanClose error", `{"type":"spanClose","outcome":"exception"}`,
			&bridge.SpanEndData{Outcome: "exception", Status: bridge.Status{Code: codes.Error, Description: "exception"}}},
		{"arrays", `{"type":"attributes","info":[{"name":"s","value":["a","b"]},{"name":"i","value":[1,2]},{"name":"f","value":[1,2.5]},{"name":"b","value":[true]},{"name":"e","value":[]},{"name":"x","value":1e3},{"name":"big","value":100000000000000000000}]}`,
			&bridge.Attributes{Attributes: []attribute.KeyValue{
				attribute.StringSlice("s", []string{"a", "b"}), attribute.Int64Slice("i", []int64{1, 2}),
				attribute.Float64Slice("f", []float64{1, 2.5}), attribute.BoolSlice("b", []bool{true}),
				attribute.StringSlice("e", nil), attribute.Float64("x", 1000), attribute.Float64("big", 1e20),
			}}},
		{"outcome times", `{"type":"outcome","outcome":"ok","cpuTime":1.5,"wallTime":12}`,
			&bridge.Outcome{Outcome: "ok", CPUTime: 1500 * time.Microsecond, WallTime: 12 * time.Millisecond}},
		{"diagnostic", `{"type":"streamDiagnostic","diagnostic":{"diagnosticsType":"droppedEvents","count":7}}`,
			&bridge.StreamDiagnostic{DroppedEvents: 7}},
		{"return without info", `{"type":"return"}`, &bridge.Return{}},
		{"rename", `{"type":"spanUpdate","info":{"type":"name","name":"after"}}`, &bridge.UpdateName{Name: "after"}},
		{"status error", `{"type":"spanUpdate","info":{"type":"status","status":{"code":"error","message":"bad thing"}}}`,
			&bridge.StatusUpdate{Status: bridge.Status{Code: codes.Error, Description: "bad thing"}}},
		{"status ok", `{"type":"spanUpdate","info":{"type":"status","status":{"code":"ok"}}}`,
			&bridge.StatusUpdate{Status: bridge.Status{Code: codes.Ok}}},
		{"status unset", `{"type":"spanUpdate","info":{"type":"status","status":{"code":"unset"}}}`,
			&bridge.StatusUpdate{}},
		{"diagnosticChannel", `{"type":"diagnosticChannel","channel":"my.channel","message":{"hello": "world","n":3}}`,
			&bridge.DiagnosticChannel{Channel: "my.channel", Message: `{"hello":"world","n":3}`}},
		{"diagnosticChannel without message", `{"type":"diagnosticChannel","channel":"c"}`,
			&bridge.DiagnosticChannel{Channel: "c", Message: "null"}},
		{"truncated log", `{"type":"log","level":"log","message":"[\"xxxx","truncated":true}`,
			&bridge.Log{Level: "log", Message: `["xxxx`, Truncated: true}},
		{"log not truncated", `{"type":"log","level":"warn","message":["a", 1],"truncated":false}`,
			&bridge.Log{Level: "warn", Message: `["a",1]`}},
		{"scheduled", `{"type":"onset","executionModel":"stateless","spanId":"0000000000000001","info":{"type":"scheduled","scheduledTime":"2026-01-02T03:04:05.000Z","cron":"*/5 * * * *"}}`,
			&bridge.Onset{Parent: mustSpan("a3ce54d35191e6ae"), ExecutionModel: "stateless", Info: bridge.TriggerInfo{Type: "scheduled", Cron: "*/5 * * * *", ScheduledTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}},
		{"queue", `{"type":"onset","executionModel":"stateless","spanId":"0000000000000001","scriptName":"w","info":{"type":"queue","queueName":"q","batchSize":4}}`,
			&bridge.Onset{Parent: mustSpan("a3ce54d35191e6ae"), ExecutionModel: "stateless", ScriptName: "w", Info: bridge.TriggerInfo{Type: "queue", QueueName: "q", BatchSize: 4}}},
		{"unmodelled trigger", `{"type":"onset","executionModel":"durableObject","spanId":"0000000000000001","info":{"type":"hibernatableWebSocket","info":{"type":"close","code":1000,"wasClean":true}}}`,
			&bridge.Onset{Parent: mustSpan("a3ce54d35191e6ae"), ExecutionModel: "durableObject", Info: bridge.TriggerInfo{Type: "hibernatableWebSocket", Raw: `{"type":"hibernatableWebSocket","info":{"type":"close","code":1000,"wasClean":true}}`}}},
		{"cfJson as a string", `{"type":"onset","executionModel":"stateless","spanId":"0000000000000001","info":{"type":"fetch","method":"POST","url":"http://x/","cfJson":"{\"a\": 1}","headers":[]}}`,
			&bridge.Onset{Parent: mustSpan("a3ce54d35191e6ae"), ExecutionModel: "stateless", Info: bridge.TriggerInfo{Type: "fetch", Method: "POST", URL: "http://x/", CfJSON: `{"a":1}`}}},
		{"spanOpen with attributes info", `{"type":"spanOpen","name":"n","spanId":"0000000000000002","info":{"type":"attributes","info":[{"name":"k","value":"v"}]}}`,
			&bridge.SpanOpen{Name: "n", Parent: mustSpan("a3ce54d35191e6ae"), Attributes: []attribute.KeyValue{attribute.String("k", "v")}}},
		{"spanOpen with fetch info", `{"type":"spanOpen","name":"fetch","spanId":"0000000000000002","info":{"type":"fetch","method":"GET","url":"http://u/","headers":[]}}`,
			&bridge.SpanOpen{Name: "fetch", Parent: mustSpan("a3ce54d35191e6ae"), Attributes: []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.String("url.full", "http://u/")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := Decode([]byte(env + c.event + "}"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e.Body, c.want) {
				t.Errorf("body\n got %#v\nwant %#v", e.Body, c.want)
			}
			out, err := encodeEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := Decode(out)
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !reflect.DeepEqual(e, e2) {
				t.Errorf("round trip differs: %s", out)
			}
		})
	}
}

func TestDecodeEnvelopeVariants(t *testing.T) {
	// A numeric timestamp (ms since 1970), 16-digit ids (high half zero), traceFlags.
	line := `{"spanContext":{"traceId":"30cb5bf175732ce5","spanId":"a3ce54d35191e6ae","traceFlags":1},"invocationId":"e81336c1f2b06c87","timestamp":1795458668884.5,"sequence":3,"event":{"type":"spanOpen","name":"x","spanId":"00000000000000ff"}}`
	e, err := Decode([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if e.TraceID.String() != "000000000000000030cb5bf175732ce5" || e.StreamID.String() != "0000000000000000e81336c1f2b06c87" {
		t.Errorf("ids %s %s", e.TraceID, e.StreamID)
	}
	if want := time.UnixMilli(1795458668884).Add(500 * time.Microsecond); !e.Time.Equal(want) {
		t.Errorf("time %v want %v", e.Time, want)
	}
	if so := e.Body.(*bridge.SpanOpen); so.TraceFlags != 1 {
		t.Errorf("flags %v", so.TraceFlags)
	}
	out, err := encodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"timestamp":"2026-11-23T18:31:08.8845Z"`)) || !bytes.Contains(out, []byte(`"traceFlags":1`)) {
		t.Errorf("encoded %s", out)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := sampleLines(t)[5]
	replace := func(old, new string) string { return strings.Replace(string(good), old, new, 1) }
	cases := []struct{ name, in, want string }{
		{"not JSON", `{"spanContext":`, "not a tail event object"},
		{"array", `[]`, "not a tail event object"},
		{"no spanContext", `{"invocationId":"36ea23f65aa0585be81336c1f2b06c87"}`, "spanContext missing"},
		{"short trace id", replace("983a4641c7fed86130cb5bf175732ce5", "983a4641"), "traceId: \"983a4641\" has 8 characters, want 32 hex digits"},
		{"non-hex trace id", replace("983a4641c7fed86130cb5bf175732ce5", "983a4641c7fed86130cb5bf175732cZZ"), "is not hex"},
		{"zero trace id", replace("983a4641c7fed86130cb5bf175732ce5", "00000000000000000000000000000000"), "all zeros"},
		{"long span id", replace("c73bf177c1f5c449", "c73bf177c1f5c44900"), "spanContext.spanId: \"c73bf177c1f5c44900\" has 18 characters, want 16"},
		{"bad invocation id", replace("36ea23f65aa0585be81336c1f2b06c87", "36ea23f6-5aa0-585b-e813-36c1f2b06c87"), "invocationId"},
		{"bad timestamp", replace("2026-11-23T18:31:08.897Z", "yesterday"), "timestamp: \"yesterday\" is not an RFC 3339 time"},
		{"negative sequence", replace(`"sequence":5`, `"sequence":-5`), "sequence: \"-5\" is not an integer"},
		{"fractional sequence", replace(`"sequence":5`, `"sequence":5.5`), "sequence"},
		{"no event", replace(`"event":{"type":"attributes","info":[{"name":"inner.k","value":"v"}]}`, `"event":null`), "event missing"},
		{"no type", replace(`"type":"attributes",`, ``), "event.type missing"},
		{"null value", replace(`"value":"v"`, `"value":null`), `attribute "inner.k": value must be`},
		{"object value", replace(`"value":"v"`, `"value":{"a":1}`), `value must be`},
		{"mixed array", replace(`"value":"v"`, `"value":["a",1]`), `array mixes`},
		{"nested array", replace(`"value":"v"`, `"value":[[1]]`), `value must be`},
		{"nameless attribute", replace(`"name":"inner.k",`, ``), `has no name`},
		{"trailing garbage", string(good) + "x", "not a tail event object"},
		{"spanOpen without its id", env + `{"type":"spanOpen","name":"x"}}`, "spanOpen event.spanId: missing"},
		{"attributes without span", replace(`,"spanId":"c73bf177c1f5c449"`, ``), "without spanContext.spanId"},
		{"huge cpuTime", env + `{"type":"outcome","outcome":"ok","cpuTime":1e300,"wallTime":0}}`, "cpuTime"},
		{"outcome without outcome", env + `{"type":"outcome","cpuTime":0,"wallTime":0}}`, "without its outcome"},
		{"bad status code", env + `{"type":"return","info":{"type":"fetch","statusCode":"x"}}}`, "return info"},
		{"spanUpdate without info", env + `{"type":"spanUpdate"}}`, "spanUpdate without its info"},
		{"spanUpdate without span", replace(`,"spanId":"c73bf177c1f5c449"`, ``)[:strings.Index(string(good), `"event":`)-len(`,"spanId":"c73bf177c1f5c449"`)] +
			`"event":{"type":"spanUpdate","info":{"type":"name","name":"x"}}}`, "spanUpdate event without spanContext.spanId"},
		{"spanUpdate without info.type", env + `{"type":"spanUpdate","info":{"name":"x"}}}`, "info.type missing"},
		{"rename without name", env + `{"type":"spanUpdate","info":{"type":"name"}}}`, "without the name"},
		{"status without status", env + `{"type":"spanUpdate","info":{"type":"status"}}}`, "without the status"},
		{"unknown status code", env + `{"type":"spanUpdate","info":{"type":"status","status":{"code":"maybe"}}}}`, `status code "maybe"`},
		{"diagnosticChannel without channel", env + `{"type":"diagnosticChannel","message":1}}`, "without its channel"},
		{"truncated log not a string", env + `{"type":"log","level":"log","message":["x"],"truncated":true}}`, "must be a string"},
		{"year 0000", replace("2026-11-23T18:31:08.897Z", "0000-01-01T00:00:00.000Z"), "outside the usable years 1823 to 2116"},
		{"year 9999", replace("2026-11-23T18:31:08.897Z", "9999-12-31T23:59:59.999Z"), "outside the usable years"},
		{"huge numeric timestamp", replace(`"2026-11-23T18:31:08.897Z"`, `253402300799999`), "within the usable years 1823 to 2116"},
		{"far negative numeric timestamp", replace(`"2026-11-23T18:31:08.897Z"`, `-62167219200000`), "within the usable years"},
		{"scheduledTime year 9999", env + `{"type":"onset","executionModel":"stateless","spanId":"0000000000000001","info":{"type":"scheduled","scheduledTime":"9999-01-01T00:00:00Z"}}}`, "scheduledTime"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("no error for %s", c.in)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if errors.Is(err, ErrUnknownType) {
				t.Errorf("bad input reported as an unknown type: %v", err)
			}
		})
	}
}

// A timestamp is taken or refused by one rule, whether it comes as RFC 3339 or as
// milliseconds: within MaxTimeOffset of 1970.
func TestTimeBoundsOneRule(t *testing.T) {
	edge := time.Unix(0, int64(MaxTimeOffset)).UTC().Truncate(time.Millisecond)
	for _, tm := range []time.Time{edge, edge.Add(time.Millisecond), time.Unix(0, -int64(MaxTimeOffset)).UTC().Truncate(time.Millisecond).Add(-time.Millisecond)} {
		inRange := !tm.Before(minTime) && !tm.After(maxTime)
		rfc := `"` + tm.Format("2006-01-02T15:04:05.000Z") + `"`
		num := strconv.FormatInt(tm.UnixMilli(), 10)
		for _, raw := range []string{rfc, num} {
			got, err := parseTime(json.RawMessage(raw))
			if (err == nil) != inRange {
				t.Errorf("%s: error %v, in range %v", raw, err, inRange)
			}
			if err == nil && !got.Equal(tm) {
				t.Errorf("%s: %v, want %v", raw, got, tm)
			}
		}
	}
}

// Every outcome workerd's types/defines/trace.d.ts lists ends a span with status Error
// described by the outcome, except "ok".
func TestSpanCloseOutcomes(t *testing.T) {
	for _, o := range []string{"ok", "canceled", "exception", "unknown", "killSwitch", "daemonDown",
		"exceededCpu", "exceededMemory", "loadShed", "responseStreamDisconnected", "scriptNotFound",
		"internalError", "exceededWallTime", "aborted"} {
		e, err := Decode([]byte(env + `{"type":"spanClose","outcome":"` + o + `"}}`))
		if err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		want := bridge.Status{Code: codes.Error, Description: o}
		if o == "ok" {
			want = bridge.Status{}
		}
		if got := e.Body.(*bridge.SpanEndData); got.Status != want || got.Outcome != o {
			t.Errorf("%s: %+v, want status %+v", o, got, want)
		}
	}
}

// The onset's spanContext.traceFlags: absent means no upstream decision (sampled);
// present without the sampled bit, unsampled.
func TestOnsetTraceFlags(t *testing.T) {
	const onset = `"invocationId":"36ea23f65aa0585be81336c1f2b06c87","timestamp":"2026-11-23T18:31:08.885Z","sequence":0,"event":{"type":"onset","executionModel":"stateless","spanId":"0000000000000001","info":{"type":"fetch","method":"GET","url":"http://x/","headers":[]}}}`
	for flags, want := range map[string]bool{``: false, `,"traceFlags":1`: false, `,"traceFlags":0`: true, `,"traceFlags":2`: true} {
		e, err := Decode([]byte(`{"spanContext":{"traceId":"983a4641c7fed86130cb5bf175732ce5"` + flags + `},` + onset))
		if err != nil {
			t.Fatalf("%q: %v", flags, err)
		}
		if got := e.Body.(*bridge.Onset).Unsampled; got != want {
			t.Errorf("traceFlags %q: Unsampled %v, want %v", flags, got, want)
		}
	}
}

func TestUnknownTypes(t *testing.T) {
	for _, ev := range []string{
		`{"type":"spanUpdate","info":{"type":"links","links":[]}}`,
		`{"type":"hibernate"}`,
		`{"type":"somethingNew","x":1}`,
		`{"type":"streamDiagnostic","diagnostic":{"diagnosticsType":"somethingNew","count":1}}`,
	} {
		_, err := Decode([]byte(env + ev + "}"))
		if !errors.Is(err, ErrUnknownType) {
			t.Errorf("%s: error %v does not match ErrUnknownType", ev, err)
		}
	}
}

func TestEncodeNotRepresentable(t *testing.T) {
	for _, b := range []bridge.Body{&bridge.Heartbeat{}} {
		if _, err := encodeEvent(bridge.Event{Body: b}); !errors.Is(err, errNotRepresentable) {
			t.Errorf("%T: %v", b, err)
		}
	}
	if _, err := encodeEvent(bridge.Event{}); err == nil {
		t.Error("no error for an event without body")
	}
	bad := bridge.Event{Body: &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Float64("f", nanf())}}}
	if _, err := encodeEvent(bad); err == nil || !strings.Contains(err.Error(), `attribute "f"`) {
		t.Errorf("NaN attribute: %v", err)
	}
}

func nanf() float64 { return math.NaN() }

func TestEncodeFloatStaysFloat(t *testing.T) {
	e := bridge.Event{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, StreamID: bridge.StreamID{1},
		Time: time.Unix(1, 0),
		Body: &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Float64("f", 3), attribute.Float64Slice("fs", []float64{1, 2})}},
	}
	out, err := encodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.Body, e2.Body) {
		t.Errorf("%s decodes to %v", out, e2.Body)
	}
}

func TestDecodeStream(t *testing.T) {
	lines := sampleLines(t)
	t.Run("ndjson with bad lines", func(t *testing.T) {
		in := string(lines[0]) + "\n\n{broken\n" + string(lines[1]) + "\n" + env + `{"type":"hibernate"}}` + "\r\n" + string(lines[2])
		events, errs := DecodeStream([]byte(in))
		if len(events) != 3 || len(errs) != 2 {
			t.Fatalf("%d events, errors %v", len(events), errs)
		}
		var ie *ItemError
		if !errors.As(errs[0], &ie) || ie.Line != 3 || ie.Index != 1 || !strings.HasPrefix(errs[0].Error(), "line 3: ") {
			t.Errorf("first error %v", errs[0])
		}
		if !errors.Is(errs[1], ErrUnknownType) || !strings.HasPrefix(errs[1].Error(), "line 5: ") {
			t.Errorf("second error %v", errs[1])
		}
		if events[2].Sequence != 2 {
			t.Errorf("order lost: %d", events[2].Sequence)
		}
	})
	t.Run("array with a bad item", func(t *testing.T) {
		in := "[" + string(lines[0]) + `,{"spanContext":{"traceId":"x"}},` + string(lines[1]) + "]"
		events, errs := DecodeStream([]byte(in))
		if len(events) != 2 || len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "item 1: ") {
			t.Fatalf("%d events, errors %v", len(events), errs)
		}
	})
	t.Run("truncated array keeps what came before", func(t *testing.T) {
		in := "[" + string(lines[0]) + "," + string(lines[1][:40])
		events, errs := DecodeStream([]byte(in))
		if len(events) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "item 1") {
			t.Fatalf("%d events, errors %v", len(events), errs)
		}
	})
	t.Run("whole sample", func(t *testing.T) {
		data, _ := os.ReadFile("../../testdata/workerd-stw-sample.ndjson")
		events, errs := DecodeStream(data)
		if len(events) != 44 || errs != nil {
			t.Fatalf("%d events, %v", len(events), errs)
		}
		arr := "[" + string(bytes.Join(lines, []byte(","))) + "]"
		events2, errs := DecodeStream([]byte(arr))
		if errs != nil || !reflect.DeepEqual(events, events2) {
			t.Fatalf("array form differs: %v", errs)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if ev, errs := DecodeStream([]byte("  \n")); ev != nil || errs != nil {
			t.Errorf("%v %v", ev, errs)
		}
	})
}

func FuzzDecodeStream(f *testing.F) {
	lines := sampleLines(f)
	for _, l := range lines {
		f.Add(l)
		f.Add(l[:len(l)/2])
		f.Add(bytes.Replace(l, []byte(`"sequence":`), []byte(`"sequence":-`), 1))
		f.Add(bytes.Replace(l, []byte(`"value":`), []byte(`"value":[1,`), 1))
	}
	f.Add([]byte("[" + string(bytes.Join(lines[:5], []byte(","))) + "]"))
	f.Add(bytes.Join(lines, []byte("\n")))
	f.Add([]byte(env + `{"type":"outcome","outcome":"ok","cpuTime":1.25,"wallTime":3e2}}`))
	f.Add([]byte(env + `{"type":"attributes","info":[{"name":"a","value":[1.5,2]},{"name":"b","value":-0.0}]}}`))
	f.Add([]byte(env + `{"type":"spanUpdate","info":{"type":"status","status":{"code":"error","message":"m"}}}}`))
	f.Add([]byte(env + `{"type":"diagnosticChannel","channel":"c","message":[1,{"a":"b"}]}}`))
	f.Add([]byte(env + `{"type":"log","level":"log","message":"[\"cut","truncated":true}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, _ := DecodeStream(data)
		for _, e := range events {
			out, err := encodeEvent(e)
			if err != nil {
				t.Fatalf("decoded event does not encode: %v\n%+v", err, e)
			}
			e2, err := Decode(out)
			if err != nil {
				t.Fatalf("re-encoded event does not decode: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(e, e2) {
				t.Fatalf("round trip differs\n%+v\n%+v\n%s", e, e2, out)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	line := sampleLines(b)[7]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(line); err != nil {
			b.Fatal(err)
		}
	}
}
