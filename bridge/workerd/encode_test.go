package workerd

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

type outEnvelope struct {
	SpanContext  outSpanContext `json:"spanContext"`
	InvocationID string         `json:"invocationId"`
	Timestamp    string         `json:"timestamp"`
	Sequence     uint64         `json:"sequence"`
	Event        any            `json:"event"`
}

type outSpanContext struct {
	TraceID    string `json:"traceId"`
	SpanID     string `json:"spanId,omitempty"`
	TraceFlags *uint8 `json:"traceFlags,omitempty"`
}

type outAttr struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

type outOnset struct {
	Type              string             `json:"type"`
	ExecutionModel    string             `json:"executionModel"`
	SpanID            string             `json:"spanId"`
	DispatchNamespace string             `json:"dispatchNamespace,omitempty"`
	Entrypoint        string             `json:"entrypoint,omitempty"`
	ScriptName        string             `json:"scriptName,omitempty"`
	ScriptTags        []string           `json:"scriptTags"`
	ScriptVersion     *wireScriptVersion `json:"scriptVersion,omitempty"`
	Info              any                `json:"info,omitempty"`
	Attributes        []outAttr          `json:"attributes,omitempty"`
}

type outFetchInfo struct {
	Type    string          `json:"type"`
	Method  string          `json:"method"`
	URL     string          `json:"url"`
	CfJSON  json.RawMessage `json:"cfJson,omitempty"`
	Headers []wireHeader    `json:"headers"`
}

type outJsRPCInfo struct {
	Type       string `json:"type"`
	MethodName string `json:"methodName,omitempty"`
}

type outScheduledInfo struct {
	Type          string `json:"type"`
	ScheduledTime string `json:"scheduledTime,omitempty"`
	Cron          string `json:"cron,omitempty"`
}

type outQueueInfo struct {
	Type      string `json:"type"`
	QueueName string `json:"queueName"`
	BatchSize int    `json:"batchSize"`
}

type outEmailInfo struct {
	Type     string `json:"type"`
	MailFrom string `json:"mailFrom"`
	RcptTo   string `json:"rcptTo"`
	RawSize  int    `json:"rawSize"`
}

type outSpanOpen struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	SpanID string `json:"spanId"`
	Info   *struct {
		Type string    `json:"type"`
		Info []outAttr `json:"info"`
	} `json:"info,omitempty"`
}

type outAttributes struct {
	Type string    `json:"type"`
	Info []outAttr `json:"info"`
}

type outSpanClose struct {
	Type    string `json:"type"`
	Outcome string `json:"outcome"`
}

type outLog struct {
	Type      string          `json:"type"`
	Level     string          `json:"level"`
	Message   json.RawMessage `json:"message"`
	Truncated bool            `json:"truncated,omitempty"`
}

type outDiagnosticChannel struct {
	Type    string          `json:"type"`
	Channel string          `json:"channel"`
	Message json.RawMessage `json:"message"`
}

type outSpanUpdate struct {
	Type string `json:"type"`
	Info struct {
		Type   string `json:"type"`
		Name   string `json:"name,omitempty"`
		Status *struct {
			Code    string `json:"code"`
			Message string `json:"message,omitempty"`
		} `json:"status,omitempty"`
	} `json:"info"`
}

type outException struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
}

type outReturn struct {
	Type string `json:"type"`
	Info *struct {
		Type       string `json:"type"`
		StatusCode int    `json:"statusCode"`
	} `json:"info,omitempty"`
}

type outOutcome struct {
	Type     string          `json:"type"`
	Outcome  string          `json:"outcome"`
	CPUTime  json.RawMessage `json:"cpuTime"`
	WallTime json.RawMessage `json:"wallTime"`
}

type outDiagnostic struct {
	Type       string `json:"type"`
	Diagnostic struct {
		DiagnosticsType string `json:"diagnosticsType"`
		Count           uint64 `json:"count"`
	} `json:"diagnostic"`
}

// errNotRepresentable is matched by the error encodeEvent returns for a body that
// workerd's format has no event for (Heartbeat).
var errNotRepresentable = errors.New("workerd: event has no workerd form")

// encodeEvent writes e as one workerd tail event, the inverse of Decode, for the
// round-trip tests. Fields workerd's format has no place for (SpanOpen.SpanKind and
// Links, SpanEndData.Attributes and Events, Resource, Scope, ...) are left out.
// Heartbeat has no workerd event: encodeEvent returns errNotRepresentable.
func encodeEvent(e bridge.Event) ([]byte, error) {
	env := outEnvelope{
		SpanContext:  outSpanContext{TraceID: hex.EncodeToString(e.TraceID[:])},
		InvocationID: e.StreamID.String(),
		Timestamp:    formatTime(e.Time),
		Sequence:     e.Sequence,
	}
	ctxSpan := e.SpanID
	var err error
	switch b := e.Body.(type) {
	case *bridge.Onset:
		ctxSpan = b.Parent
		if b.Unsampled {
			env.SpanContext.TraceFlags = new(uint8)
		}
		env.Event, err = encodeOnset(b, e.SpanID)
	case *bridge.UpdateName:
		u := outSpanUpdate{Type: "spanUpdate"}
		u.Info.Type, u.Info.Name = "name", b.Name
		env.Event = u
	case *bridge.StatusUpdate:
		u := outSpanUpdate{Type: "spanUpdate"}
		u.Info.Type = "status"
		u.Info.Status = &struct {
			Code    string `json:"code"`
			Message string `json:"message,omitempty"`
		}{Code: [...]string{codes.Unset: "unset", codes.Ok: "ok", codes.Error: "error"}[b.Status.Code], Message: b.Status.Description}
		env.Event = u
	case *bridge.DiagnosticChannel:
		env.Event = outDiagnosticChannel{Type: "diagnosticChannel", Channel: b.Channel, Message: json.RawMessage(b.Message)}
	case *bridge.SpanOpen:
		ctxSpan = b.Parent
		if b.TraceFlags != 0 {
			f := uint8(b.TraceFlags)
			env.SpanContext.TraceFlags = &f
		}
		o := outSpanOpen{Type: "spanOpen", Name: b.Name, SpanID: spanHex(e.SpanID)}
		if len(b.Attributes) > 0 {
			o.Info = &struct {
				Type string    `json:"type"`
				Info []outAttr `json:"info"`
			}{Type: "attributes"}
			o.Info.Info, err = encodeAttrs(b.Attributes)
		}
		env.Event = o
	case *bridge.Attributes:
		a := outAttributes{Type: "attributes"}
		a.Info, err = encodeAttrs(b.Attributes)
		if a.Info == nil {
			a.Info = []outAttr{}
		}
		env.Event = a
	case *bridge.SpanEndData:
		outcome := b.Outcome
		if outcome == "" {
			outcome = "ok"
			if b.Status.Code == codes.Error {
				outcome = "exception"
			}
		}
		env.Event = outSpanClose{Type: "spanClose", Outcome: outcome}
	case *bridge.Log:
		msg := json.RawMessage(b.Message)
		if b.Truncated || !json.Valid(msg) {
			if msg, err = json.Marshal(b.Message); err != nil {
				return nil, err
			}
		}
		env.Event = outLog{Type: "log", Level: b.Level, Message: msg, Truncated: b.Truncated}
	case *bridge.Exception:
		env.Event = outException{Type: "exception", Name: b.Name, Message: b.Message, Stack: b.Stack}
	case *bridge.Return:
		r := outReturn{Type: "return"}
		if b.StatusCode != 0 {
			r.Info = &struct {
				Type       string `json:"type"`
				StatusCode int    `json:"statusCode"`
			}{"fetch", b.StatusCode}
		}
		env.Event = r
	case *bridge.Outcome:
		env.Event = outOutcome{
			Type: "outcome", Outcome: b.Outcome,
			CPUTime: formatMillis(b.CPUTime), WallTime: formatMillis(b.WallTime),
		}
	case *bridge.StreamDiagnostic:
		d := outDiagnostic{Type: "streamDiagnostic"}
		d.Diagnostic.DiagnosticsType = "droppedEvents"
		d.Diagnostic.Count = b.DroppedEvents
		env.Event = d
	case nil:
		return nil, errors.New("workerd: event has no body")
	default:
		return nil, fmt.Errorf("%w: %s", errNotRepresentable, b.Kind())
	}
	if err != nil {
		return nil, err
	}
	if ctxSpan != (trace.SpanID{}) {
		env.SpanContext.SpanID = spanHex(ctxSpan)
	}
	// As JSON.stringify: no HTML escaping, so that raw JSON kept from the input (log
	// messages, cfJson, unmodelled trigger info) goes out byte for byte.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		return nil, fmt.Errorf("workerd: encoding a %s event: %w", e.Body.Kind(), err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func encodeOnset(b *bridge.Onset, id trace.SpanID) (outOnset, error) {
	o := outOnset{
		Type:              "onset",
		ExecutionModel:    b.ExecutionModel,
		SpanID:            spanHex(id),
		DispatchNamespace: b.DispatchNamespace,
		Entrypoint:        b.Entrypoint,
		ScriptName:        b.ScriptName,
		ScriptTags:        b.ScriptTags,
	}
	if o.ScriptTags == nil {
		o.ScriptTags = []string{}
	}
	if b.ScriptVersion != "" {
		o.ScriptVersion = &wireScriptVersion{ID: b.ScriptVersion}
	}
	var err error
	if o.Attributes, err = encodeAttrs(b.Attributes); err != nil {
		return o, err
	}
	o.Info, err = encodeTrigger(&b.Info)
	return o, err
}

func encodeTrigger(t *bridge.TriggerInfo) (any, error) {
	switch t.Type {
	case "":
		return nil, nil
	case "fetch":
		f := outFetchInfo{Type: "fetch", Method: t.Method, URL: t.URL, Headers: []wireHeader{}}
		for _, h := range t.Headers {
			f.Headers = append(f.Headers, wireHeader(h))
		}
		if t.CfJSON != "" {
			if !json.Valid([]byte(t.CfJSON)) {
				return nil, fmt.Errorf("workerd: onset info.cfJson is not JSON: %q", truncate(t.CfJSON))
			}
			f.CfJSON = json.RawMessage(t.CfJSON)
		}
		return f, nil
	case "jsrpc":
		return outJsRPCInfo{Type: "jsrpc", MethodName: t.MethodName}, nil
	case "scheduled", "alarm":
		s := outScheduledInfo{Type: t.Type, Cron: t.Cron}
		if !t.ScheduledTime.IsZero() {
			s.ScheduledTime = formatTime(t.ScheduledTime)
		}
		return s, nil
	case "queue":
		return outQueueInfo{Type: "queue", QueueName: t.QueueName, BatchSize: t.BatchSize}, nil
	case "email":
		return outEmailInfo{Type: "email", MailFrom: t.MailFrom, RcptTo: t.RcptTo, RawSize: t.RawSize}, nil
	}
	if t.Raw != "" {
		if !json.Valid([]byte(t.Raw)) {
			return nil, fmt.Errorf("workerd: onset info.Raw is not JSON: %q", truncate(t.Raw))
		}
		return json.RawMessage(t.Raw), nil
	}
	return struct {
		Type string `json:"type"`
	}{t.Type}, nil
}

func encodeAttrs(attrs []attribute.KeyValue) ([]outAttr, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	out := make([]outAttr, 0, len(attrs))
	for _, kv := range attrs {
		v, err := encodeValue(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("workerd: attribute %q: %w", kv.Key, err)
		}
		out = append(out, outAttr{Name: string(kv.Key), Value: v})
	}
	return out, nil
}

func encodeValue(v attribute.Value) (json.RawMessage, error) {
	switch v.Type() {
	case attribute.BOOL, attribute.STRING, attribute.BOOLSLICE, attribute.STRINGSLICE:
		return json.Marshal(v.AsInterface())
	case attribute.INT64:
		return strconv.AppendInt(nil, v.AsInt64(), 10), nil
	case attribute.FLOAT64:
		return appendFloat(nil, v.AsFloat64())
	case attribute.INT64SLICE:
		buf := []byte{'['}
		for i, n := range v.AsInt64Slice() {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, n, 10)
		}
		return append(buf, ']'), nil
	case attribute.FLOAT64SLICE:
		buf := []byte{'['}
		var err error
		for i, f := range v.AsFloat64Slice() {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendFloat(buf, f); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	}
	return nil, fmt.Errorf("a %s value has no workerd form (string, number, boolean or an array of one)", v.Type())
}

// appendFloat writes f so that it reads back as a float: with a fraction or exponent.
func appendFloat(buf []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%v cannot be written in JSON", f)
	}
	start := len(buf)
	buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
	if !bytes.ContainsAny(buf[start:], ".eE") {
		buf = append(buf, '.', '0')
	}
	return buf, nil
}

func formatMillis(d time.Duration) json.RawMessage {
	ms := float64(d) / float64(time.Millisecond)
	return strconv.AppendFloat(nil, ms, 'f', -1, 64)
}

// formatTime writes t as JSON.stringify writes a Date, with more digits only when t
// has a finer part than milliseconds.
func formatTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()%int(time.Millisecond) == 0 {
		return t.Format("2006-01-02T15:04:05.000Z07:00")
	}
	return t.Format(time.RFC3339Nano)
}

func spanHex(id trace.SpanID) string { return hex.EncodeToString(id[:]) }
