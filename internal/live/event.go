package live

import (
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// Types of the lines GET /v1/live writes besides the bridge's event kinds
// (bridge.Kind.String(): span_open, update_name, attributes, status, span_end,
// heartbeat, onset, outcome, log, exception, return, diagnostic).
const (
	// TypeKeepAlive is written when nothing else was for the keep-alive interval, so
	// a client can tell a quiet stream from a dead connection.
	TypeKeepAlive = "keepalive"
	// TypeSkipped tells a watcher that it fell behind and Skipped events were not sent.
	TypeSkipped = "skipped"
)

// Event is the JSON form of one line of GET /v1/live: a bridge.Event, enriched with
// what the hub knows of its span (current name, parent, start, service), so that each
// line can be read alone. Fields that do not apply to a type are omitted.
type Event struct {
	// Type is the event kind (span_open, update_name, span_end, ...) or one of
	// TypeKeepAlive and TypeSkipped.
	Type string `json:"type"`
	// Time is when the event happened (RFC 3339, nanoseconds): the start time for
	// span_open, the end time for span_end.
	Time string `json:"time,omitempty"`

	TraceID      string `json:"trace_id,omitempty"`       // 32 hex digits
	SpanID       string `json:"span_id,omitempty"`        // 16 hex digits
	ParentSpanID string `json:"parent_span_id,omitempty"` // 16 hex digits; absent for a root span
	StreamID     string `json:"stream_id,omitempty"`      // 32 hex digits
	Sequence     uint64 `json:"sequence"`                 // place in the stream, from 0

	// Service is service.name of the producer's Resource.
	Service string `json:"service,omitempty"`
	// Scope is the instrumentation scope's name.
	Scope string `json:"scope,omitempty"`

	// Name is the span's name as of this event (after renames).
	Name string `json:"name,omitempty"`
	// OldName is, on update_name, the name it replaced.
	OldName string `json:"old_name,omitempty"`
	// Kind is the span kind: internal, server, client, producer or consumer.
	Kind string `json:"kind,omitempty"`
	// Start is the span's start time when the hub saw it open (RFC 3339).
	Start string `json:"start,omitempty"`
	// DurationNS is, on span_end, the span's duration in nanoseconds, when its start is known.
	DurationNS int64 `json:"duration_ns,omitempty"`
	// Replay marks a span_open sent at connection time for a span that opened earlier
	// and is still open.
	Replay bool `json:"replay,omitempty"`

	// Attributes: on span_open those given at start, on attributes those set since,
	// on span_end those added or changed since span_open.
	Attributes map[string]any `json:"attributes,omitempty"`
	// Status is set on status and span_end.
	Status *Status `json:"status,omitempty"`
	// Unfinished is true on the span_end of a span that never really ended.
	Unfinished bool        `json:"unfinished,omitempty"`
	Events     []SpanEvent `json:"events,omitempty"`
	Links      []Link      `json:"links,omitempty"`

	// Level and Message are those of a log line.
	Level   string `json:"level,omitempty"`
	Message string `json:"message,omitempty"`
	// Exception is set on exception.
	Exception *Exception `json:"exception,omitempty"`
	// StatusCode is what a fetch invocation returned (return).
	StatusCode int `json:"status_code,omitempty"`
	// Outcome, CPUTimeNS and WallTimeNS close an invocation (outcome); Outcome is
	// also workerd's spanClose outcome on the span_end of a workerd span.
	Outcome    string `json:"outcome,omitempty"`
	CPUTimeNS  int64  `json:"cpu_time_ns,omitempty"`
	WallTimeNS int64  `json:"wall_time_ns,omitempty"`
	// Trigger, Script and Entrypoint describe an invocation (onset).
	Trigger    *Trigger `json:"trigger,omitempty"`
	Script     string   `json:"script,omitempty"`
	Entrypoint string   `json:"entrypoint,omitempty"`
	// DroppedEvents is what the producer dropped (diagnostic).
	DroppedEvents uint64 `json:"dropped_events,omitempty"`
	// Skipped is how many events this watcher missed because it fell behind (skipped).
	Skipped uint64 `json:"skipped,omitempty"`
}

// Status is a span status: code is "unset", "ok" or "error".
type Status struct {
	Code        string `json:"code"`
	Description string `json:"description,omitempty"`
}

// SpanEvent is an event recorded on a span (span.AddEvent, RecordError).
type SpanEvent struct {
	Name       string         `json:"name"`
	Time       string         `json:"time"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Link is a link to another span.
type Link struct {
	TraceID    string         `json:"trace_id"`
	SpanID     string         `json:"span_id"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Exception is an uncaught exception of an invocation.
type Exception struct {
	Name    string `json:"name,omitempty"`
	Message string `json:"message,omitempty"`
	Stack   string `json:"stack,omitempty"`
}

// Trigger is what started an invocation; the fields used depend on Type.
type Trigger struct {
	Type       string `json:"type"`
	Method     string `json:"method,omitempty"`
	URL        string `json:"url,omitempty"`
	MethodName string `json:"method_name,omitempty"`
	Cron       string `json:"cron,omitempty"`
	Queue      string `json:"queue,omitempty"`
}

// Status codes of Status.Code.
const (
	StatusUnset = "unset"
	StatusOK    = "ok"
	StatusError = "error"
)

// IsError reports whether the event reports a failure: a span ended with status error
// or unfinished, a status set to error, an exception, or an invocation outcome other
// than ok.
func (e *Event) IsError() bool {
	switch e.Type {
	case bridge.KindSpanEnd.String():
		return e.Unfinished || (e.Status != nil && e.Status.Code == StatusError)
	case bridge.KindStatus.String():
		return e.Status != nil && e.Status.Code == StatusError
	case bridge.KindException.String():
		return true
	case bridge.KindOutcome.String():
		return e.Outcome != "" && e.Outcome != "ok"
	}
	return false
}

// spanInfo is what the hub knew of an event's span when the event passed.
type spanInfo struct {
	known   bool
	name    string
	oldName string // update_name: the name before
	parent  trace.SpanID
	start   time.Time
	kind    trace.SpanKind
	service string
}

// toJSON builds the JSON form of e.
func toJSON(e *bridge.Event, si *spanInfo) Event {
	j := Event{
		Type:     e.Kind().String(),
		Sequence: e.Sequence,
		Service:  si.service,
	}
	if !e.Time.IsZero() {
		j.Time = formatTime(e.Time)
	}
	if e.TraceID.IsValid() {
		j.TraceID = e.TraceID.String()
	}
	if e.SpanID.IsValid() {
		j.SpanID = e.SpanID.String()
	}
	if e.StreamID.IsValid() {
		j.StreamID = e.StreamID.String()
	}
	if e.Scope != nil {
		j.Scope = e.Scope.Name
	}
	if si.known {
		j.Name = si.name
		if si.parent.IsValid() {
			j.ParentSpanID = si.parent.String()
		}
		if !si.start.IsZero() {
			j.Start = formatTime(si.start)
		}
		if si.kind != trace.SpanKindUnspecified {
			j.Kind = si.kind.String()
		}
	}
	switch b := e.Body.(type) {
	case *bridge.SpanOpen:
		j.Attributes = attrsJSON(b.Attributes)
		j.Links = linksJSON(b.Links)
		if !si.known {
			j.Name = b.Name
			j.Kind = b.SpanKind.String()
			if b.Parent.IsValid() {
				j.ParentSpanID = b.Parent.String()
			}
			j.Start = j.Time
		}
	case *bridge.UpdateName:
		j.Name = b.Name
		j.OldName = si.oldName
	case *bridge.Attributes:
		j.Attributes = attrsJSON(b.Attributes)
	case *bridge.StatusUpdate:
		j.Status = statusJSON(b.Status)
	case *bridge.SpanEndData:
		j.Status = statusJSON(b.Status)
		j.Attributes = attrsJSON(b.Attributes)
		j.Unfinished = b.Unfinished
		j.Outcome = b.Outcome
		j.Links = linksJSON(b.Links)
		for _, ev := range b.Events {
			j.Events = append(j.Events, SpanEvent{Name: ev.Name, Time: formatTime(ev.Time), Attributes: attrsJSON(ev.Attributes)})
		}
		if si.known && !si.start.IsZero() && !e.Time.IsZero() {
			j.DurationNS = int64(e.Time.Sub(si.start))
		}
	case *bridge.Onset:
		j.Script = b.ScriptName
		j.Entrypoint = b.Entrypoint
		j.Attributes = attrsJSON(b.Attributes)
		j.Trigger = &Trigger{
			Type: b.Info.Type, Method: b.Info.Method, URL: b.Info.URL,
			MethodName: b.Info.MethodName, Cron: b.Info.Cron, Queue: b.Info.QueueName,
		}
		if b.Parent.IsValid() && j.ParentSpanID == "" {
			j.ParentSpanID = b.Parent.String()
		}
		if j.Name == "" {
			j.Name = onsetName(b)
		}
	case *bridge.Outcome:
		j.Outcome = b.Outcome
		j.CPUTimeNS = int64(b.CPUTime)
		j.WallTimeNS = int64(b.WallTime)
		if si.known && !si.start.IsZero() && !e.Time.IsZero() {
			j.DurationNS = int64(e.Time.Sub(si.start))
		}
	case *bridge.Log:
		j.Level = b.Level
		j.Message = b.Message
	case *bridge.DiagnosticChannel:
		j.Message = b.Channel + ": " + b.Message
	case *bridge.Exception:
		j.Exception = &Exception{Name: b.Name, Message: b.Message, Stack: b.Stack}
	case *bridge.Return:
		j.StatusCode = b.StatusCode
	case *bridge.StreamDiagnostic:
		j.DroppedEvents = b.DroppedEvents
	}
	return j
}

// onsetName names the span an invocation opens, for display: "fetch GET /path".
func onsetName(b *bridge.Onset) string {
	parts := make([]string, 0, 3)
	if b.Info.Type != "" {
		parts = append(parts, b.Info.Type)
	}
	switch {
	case b.Info.Method != "" || b.Info.URL != "":
		parts = append(parts, strings.TrimSpace(b.Info.Method+" "+b.Info.URL))
	case b.Info.MethodName != "":
		parts = append(parts, b.Info.MethodName)
	case b.Info.Cron != "":
		parts = append(parts, b.Info.Cron)
	case b.Info.QueueName != "":
		parts = append(parts, b.Info.QueueName)
	}
	if len(parts) == 0 {
		parts = append(parts, b.ScriptName)
	}
	return strings.Join(parts, " ")
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func statusJSON(s bridge.Status) *Status {
	st := &Status{Code: StatusUnset, Description: s.Description}
	switch s.Code {
	case codes.Ok:
		st.Code = StatusOK
	case codes.Error:
		st.Code = StatusError
	}
	return st
}

func linksJSON(ls []bridge.Link) []Link {
	if len(ls) == 0 {
		return nil
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		out = append(out, Link{
			TraceID:    l.SpanContext.TraceID().String(),
			SpanID:     l.SpanContext.SpanID().String(),
			Attributes: attrsJSON(l.Attributes),
		})
	}
	return out
}

// attrsJSON turns attributes into JSON values; later values of a key win.
func attrsJSON(kvs []attribute.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = valueJSON(kv.Value)
	}
	return m
}

// valueJSON turns an attribute value into a value encoding/json can write: floats that
// JSON cannot hold (NaN, ±Inf) become strings, byte slices base64 (encoding/json's
// form of []byte).
func valueJSON(v attribute.Value) any {
	switch v.Type() {
	case attribute.BOOL:
		return v.AsBool()
	case attribute.INT64:
		return v.AsInt64()
	case attribute.FLOAT64:
		return floatJSON(v.AsFloat64())
	case attribute.STRING:
		return v.AsString()
	case attribute.BOOLSLICE:
		return v.AsBoolSlice()
	case attribute.INT64SLICE:
		return v.AsInt64Slice()
	case attribute.FLOAT64SLICE:
		fs := v.AsFloat64Slice()
		out := make([]any, len(fs))
		for i, f := range fs {
			out[i] = floatJSON(f)
		}
		return out
	case attribute.STRINGSLICE:
		return v.AsStringSlice()
	case attribute.BYTESLICE:
		return v.AsByteSlice()
	case attribute.SLICE:
		vs := v.AsSlice()
		out := make([]any, len(vs))
		for i, x := range vs {
			out[i] = valueJSON(x)
		}
		return out
	case attribute.MAP:
		return attrsJSON(v.AsMap())
	}
	return nil
}

func floatJSON(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}
