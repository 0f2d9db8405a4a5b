// Package workerd reads the events of workerd's Streaming Tail Workers in
// the JSON form a tail worker's tailStream handler receives them (and, serialised with
// JSON.stringify, posts them on), and maps them to bridge events.
//
// The envelope {spanContext{traceId, spanId?, traceFlags?}, invocationId, timestamp,
// sequence, event} becomes the bridge.Event envelope: invocationId is the StreamID,
// sequence the Sequence, timestamp the Time. spanContext.spanId means two things in
// workerd: for onset and spanOpen it is the PARENT of the span the event opens (whose
// own id is event.spanId); for every other event it is the span the event concerns.
// Decode puts the opened span in Event.SpanID and the parent in Onset.Parent or
// SpanOpen.Parent, so that Event.SpanID always names the span concerned.
//
// Event types and their bodies:
//
//	onset             *bridge.Onset (info: fetch, jsrpc, scheduled, alarm, queue, email
//	                  modelled; other trigger types kept as raw JSON in Info.Raw;
//	                  Unsampled from spanContext.traceFlags without the sampled bit)
//	spanOpen          *bridge.SpanOpen (info of type "attributes" becomes Attributes; a
//	                  fetch info becomes http.request.method and url.full attributes)
//	spanUpdate        *bridge.UpdateName (info type "name") or *bridge.StatusUpdate
//	                  (info type "status", code unset|ok|error and message)
//	attributes        *bridge.Attributes
//	spanClose         *bridge.SpanEndData (Outcome kept; status Error unless "ok")
//	log               *bridge.Log (Message holds the message's JSON, compacted; a
//	                  truncated message is the text workerd kept, Truncated set)
//	exception         *bridge.Exception
//	diagnosticChannel *bridge.DiagnosticChannel (Message holds the message's JSON)
//	return            *bridge.Return
//	outcome           *bridge.Outcome (cpuTime and wallTime are milliseconds)
//	streamDiagnostic  *bridge.StreamDiagnostic (diagnostic droppedEvents)
//
// Other types (hibernate, link and any added later), spanUpdate infos of another type
// and streamDiagnostic of another kind are reported with an error that matches
// ErrUnknownType, so that a receiver can count and skip them.
//
// Times, given as RFC 3339 strings or numbers of milliseconds since 1970, must lie
// within MaxTimeOffset of 1970 either way.
//
// Ids are hex: trace and invocation ids 32 digits (workerd prints an id whose high half
// is zero with 16 digits; those are accepted and widened), span ids 16 digits.
package workerd

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// ErrUnknownType is matched (errors.Is) by the error Decode returns for an event type
// this package does not map. Such events are expected as workerd grows: count and skip.
var ErrUnknownType = errors.New("workerd: unknown event type")

// ErrNotRepresentable is matched by the error Encode returns for a body that workerd's
// format has no event for (UpdateName, StatusUpdate, Heartbeat).
var ErrNotRepresentable = errors.New("workerd: event has no workerd form")

// ItemError is an error about one item of a DecodeStream input.
type ItemError struct {
	// Index is the item's position among the items of the input, from 0.
	Index int
	// Line is the item's line in an NDJSON input, from 1; 0 for a JSON array.
	Line int
	Err  error
}

// Error names the item ("line N: ..." or "item N: ...") and the problem.
func (e *ItemError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("item %d: %v", e.Index, e.Err)
}

// Unwrap returns the cause.
func (e *ItemError) Unwrap() error { return e.Err }

// MaxTimeOffset bounds how far from 1970 a timestamp may be, in either form: half of
// what int64 nanoseconds hold, so about the years 1824 to 2116.
const MaxTimeOffset = time.Duration(math.MaxInt64 / 2)

// maxDurationMillis bounds a cpuTime or wallTime (about 104 days, where nanoseconds
// stop being exact in a float64).
const maxDurationMillis = float64(1<<53) / float64(time.Millisecond)

// The range of timestamps, as times and as milliseconds.
var (
	minTime   = time.Unix(0, -int64(MaxTimeOffset)).UTC()
	maxTime   = time.Unix(0, int64(MaxTimeOffset)).UTC()
	maxMillis = float64(MaxTimeOffset / time.Millisecond)
)

type wireSpanContext struct {
	TraceID    string           `json:"traceId"`
	SpanID     string           `json:"spanId,omitempty"`
	TraceFlags *json.RawMessage `json:"traceFlags,omitempty"`
}

type wireEnvelope struct {
	SpanContext  *wireSpanContext `json:"spanContext"`
	InvocationID string           `json:"invocationId"`
	Timestamp    json.RawMessage  `json:"timestamp"`
	Sequence     json.RawMessage  `json:"sequence"`
	Event        json.RawMessage  `json:"event"`
}

type wireAttr struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

type wireHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type wireScriptVersion struct {
	ID      string `json:"id,omitempty"`
	Tag     string `json:"tag,omitempty"`
	Message string `json:"message,omitempty"`
}

// wireBody has every field of every event type; each type reads the ones it uses.
type wireBody struct {
	Type string `json:"type"`
	// onset
	ExecutionModel    string             `json:"executionModel"`
	SpanID            string             `json:"spanId"`
	DispatchNamespace string             `json:"dispatchNamespace"`
	Entrypoint        string             `json:"entrypoint"`
	ScriptName        string             `json:"scriptName"`
	ScriptTags        []string           `json:"scriptTags"`
	ScriptVersion     *wireScriptVersion `json:"scriptVersion"`
	Info              json.RawMessage    `json:"info"`
	Attributes        []wireAttr         `json:"attributes"`
	// spanOpen, exception
	Name string `json:"name"`
	// diagnosticChannel
	Channel string `json:"channel"`
	// log
	Truncated bool `json:"truncated"`
	// spanClose, outcome
	Outcome  string      `json:"outcome"`
	CPUTime  json.Number `json:"cpuTime"`
	WallTime json.Number `json:"wallTime"`
	// log, exception
	Level   string          `json:"level"`
	Message json.RawMessage `json:"message"`
	Stack   string          `json:"stack"`
	// streamDiagnostic
	Diagnostic *struct {
		DiagnosticsType string      `json:"diagnosticsType"`
		Count           json.Number `json:"count"`
	} `json:"diagnostic"`
}

type wireInfo struct {
	Type          string          `json:"type"`
	Method        string          `json:"method"`
	URL           string          `json:"url"`
	CfJSON        json.RawMessage `json:"cfJson"`
	Headers       []wireHeader    `json:"headers"`
	MethodName    string          `json:"methodName"`
	ScheduledTime json.RawMessage `json:"scheduledTime"`
	Cron          string          `json:"cron"`
	QueueName     string          `json:"queueName"`
	BatchSize     json.Number     `json:"batchSize"`
	MailFrom      string          `json:"mailFrom"`
	RcptTo        string          `json:"rcptTo"`
	RawSize       json.Number     `json:"rawSize"`
	StatusCode    json.Number     `json:"statusCode"`
	Info          json.RawMessage `json:"info"` // spanOpen info of type "attributes"
	// spanUpdate
	Name   *string `json:"name"`
	Status *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
}

// Decode decodes one workerd tail event.
func Decode(data []byte) (bridge.Event, error) {
	var env wireEnvelope
	if err := strictUnmarshal(data, &env); err != nil {
		return bridge.Event{}, fmt.Errorf("workerd: not a tail event object: %w", err)
	}
	var e bridge.Event
	if env.SpanContext == nil {
		return e, errors.New("workerd: spanContext missing: every tail event has spanContext.traceId")
	}
	var err error
	if e.TraceID, err = parseTraceID(env.SpanContext.TraceID); err != nil {
		return bridge.Event{}, fmt.Errorf("workerd: spanContext.traceId: %w", err)
	}
	if e.TraceID == (trace.TraceID{}) {
		return bridge.Event{}, errors.New("workerd: spanContext.traceId is all zeros")
	}
	var ctxSpan trace.SpanID
	if env.SpanContext.SpanID != "" {
		if ctxSpan, err = parseSpanID(env.SpanContext.SpanID); err != nil {
			return bridge.Event{}, fmt.Errorf("workerd: spanContext.spanId: %w", err)
		}
	}
	var flags trace.TraceFlags
	haveFlags := env.SpanContext.TraceFlags != nil
	if haveFlags {
		n, err := parseUint(json.Number(bytes.TrimSpace(*env.SpanContext.TraceFlags)), 255)
		if err != nil {
			return bridge.Event{}, fmt.Errorf("workerd: spanContext.traceFlags: %w", err)
		}
		flags = trace.TraceFlags(n)
	}
	if env.InvocationID == "" {
		return bridge.Event{}, errors.New("workerd: invocationId missing")
	}
	tid, err := parseTraceID(env.InvocationID)
	if err != nil {
		return bridge.Event{}, fmt.Errorf("workerd: invocationId: %w", err)
	}
	e.StreamID = bridge.StreamID(tid)
	if !e.StreamID.IsValid() {
		return bridge.Event{}, errors.New("workerd: invocationId is all zeros")
	}
	if len(env.Timestamp) == 0 {
		return bridge.Event{}, errors.New("workerd: timestamp missing")
	}
	if e.Time, err = parseTime(env.Timestamp); err != nil {
		return bridge.Event{}, fmt.Errorf("workerd: timestamp: %w", err)
	}
	if len(env.Sequence) == 0 {
		return bridge.Event{}, errors.New("workerd: sequence missing")
	}
	if e.Sequence, err = parseUint(json.Number(env.Sequence), math.MaxUint64); err != nil {
		return bridge.Event{}, fmt.Errorf("workerd: sequence: %w", err)
	}
	if len(env.Event) == 0 || string(env.Event) == "null" {
		return bridge.Event{}, errors.New("workerd: event missing")
	}
	var b wireBody
	if err := strictUnmarshal(env.Event, &b); err != nil {
		return bridge.Event{}, fmt.Errorf("workerd: event is not an object of the expected shape: %w", err)
	}
	if b.Type == "" {
		return bridge.Event{}, errors.New("workerd: event.type missing")
	}
	e.SpanID = ctxSpan
	if e.Body, err = decodeBody(&b, &e, ctxSpan, flags); err != nil {
		return bridge.Event{}, err
	}
	if o, ok := e.Body.(*bridge.Onset); ok {
		o.Unsampled = haveFlags && !flags.IsSampled()
	}
	return e, nil
}

func decodeBody(b *wireBody, e *bridge.Event, ctxSpan trace.SpanID, flags trace.TraceFlags) (bridge.Body, error) {
	switch b.Type {
	case "onset":
		return decodeOnset(b, e, ctxSpan)
	case "spanOpen":
		id, err := parseSpanID(b.SpanID)
		if err != nil {
			return nil, fmt.Errorf("workerd: spanOpen event.spanId: %w", err)
		}
		e.SpanID = id
		o := &bridge.SpanOpen{Name: b.Name, Parent: ctxSpan, TraceFlags: flags}
		if len(b.Info) > 0 && string(b.Info) != "null" {
			if o.Attributes, err = decodeSpanOpenInfo(b.Info); err != nil {
				return nil, fmt.Errorf("workerd: spanOpen info: %w", err)
			}
		}
		return o, nil
	case "spanUpdate":
		if ctxSpan == (trace.SpanID{}) {
			return nil, errors.New("workerd: spanUpdate event without spanContext.spanId (the span it updates)")
		}
		return decodeSpanUpdate(b.Info)
	case "attributes":
		if ctxSpan == (trace.SpanID{}) {
			return nil, errors.New("workerd: attributes event without spanContext.spanId (the span they belong to)")
		}
		var infoAttrs []wireAttr
		if err := strictUnmarshal(orNull(b.Info), &infoAttrs); err != nil {
			return nil, fmt.Errorf("workerd: attributes info must be an array of {name, value}: %w", err)
		}
		attrs, err := decodeAttrs(infoAttrs)
		if err != nil {
			return nil, fmt.Errorf("workerd: attributes: %w", err)
		}
		return &bridge.Attributes{Attributes: attrs}, nil
	case "spanClose":
		if ctxSpan == (trace.SpanID{}) {
			return nil, errors.New("workerd: spanClose event without spanContext.spanId (the span it closes)")
		}
		if b.Outcome == "" {
			return nil, errors.New("workerd: spanClose outcome missing")
		}
		end := &bridge.SpanEndData{Outcome: b.Outcome}
		if b.Outcome != "ok" {
			end.Status = bridge.Status{Code: codes.Error, Description: b.Outcome}
		}
		return end, nil
	case "log":
		if len(b.Message) == 0 {
			return nil, errors.New("workerd: log message missing")
		}
		if b.Truncated {
			// workerd cut the JSON text and sends what it kept as a string.
			var kept string
			if err := json.Unmarshal(b.Message, &kept); err != nil {
				return nil, fmt.Errorf("workerd: truncated log message must be a string: %w", err)
			}
			return &bridge.Log{Level: b.Level, Message: kept, Truncated: true}, nil
		}
		msg, err := compactJSON(b.Message)
		if err != nil {
			return nil, fmt.Errorf("workerd: log message: %w", err)
		}
		return &bridge.Log{Level: b.Level, Message: msg}, nil
	case "diagnosticChannel":
		if b.Channel == "" {
			return nil, errors.New("workerd: diagnosticChannel event without its channel")
		}
		msg, err := compactJSON(orNull(b.Message))
		if err != nil {
			return nil, fmt.Errorf("workerd: diagnosticChannel message: %w", err)
		}
		return &bridge.DiagnosticChannel{Channel: b.Channel, Message: msg}, nil
	case "exception":
		var msg string
		if len(b.Message) > 0 {
			if err := json.Unmarshal(b.Message, &msg); err != nil {
				return nil, fmt.Errorf("workerd: exception message must be a string: %w", err)
			}
		}
		return &bridge.Exception{Name: b.Name, Message: msg, Stack: b.Stack}, nil
	case "return":
		r := &bridge.Return{}
		if len(b.Info) > 0 && string(b.Info) != "null" {
			var info wireInfo
			if err := strictUnmarshal(b.Info, &info); err != nil {
				return nil, fmt.Errorf("workerd: return info: %w", err)
			}
			if info.StatusCode != "" {
				n, err := parseUint(info.StatusCode, 999)
				if err != nil {
					return nil, fmt.Errorf("workerd: return info.statusCode: %w", err)
				}
				r.StatusCode = int(n)
			}
		}
		return r, nil
	case "outcome":
		if b.Outcome == "" {
			return nil, errors.New("workerd: outcome event without its outcome")
		}
		cpu, err := parseMillis(b.CPUTime)
		if err != nil {
			return nil, fmt.Errorf("workerd: outcome cpuTime: %w", err)
		}
		wall, err := parseMillis(b.WallTime)
		if err != nil {
			return nil, fmt.Errorf("workerd: outcome wallTime: %w", err)
		}
		return &bridge.Outcome{Outcome: b.Outcome, CPUTime: cpu, WallTime: wall}, nil
	case "streamDiagnostic":
		d := b.Diagnostic
		if d == nil {
			return nil, errors.New("workerd: streamDiagnostic without its diagnostic")
		}
		if d.DiagnosticsType != "droppedEvents" {
			return nil, fmt.Errorf("%w: streamDiagnostic of type %q", ErrUnknownType, d.DiagnosticsType)
		}
		n, err := parseUint(d.Count, math.MaxUint64)
		if err != nil {
			return nil, fmt.Errorf("workerd: streamDiagnostic count: %w", err)
		}
		return &bridge.StreamDiagnostic{DroppedEvents: n}, nil
	}
	return nil, fmt.Errorf("%w %q (not mapped; skip it)", ErrUnknownType, b.Type)
}

// decodeSpanUpdate maps the info of a spanUpdate (workerd PR #7348).
func decodeSpanUpdate(raw json.RawMessage) (bridge.Body, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("workerd: spanUpdate without its info")
	}
	var w wireInfo
	if err := strictUnmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("workerd: spanUpdate info: %w", err)
	}
	switch w.Type {
	case "name":
		if w.Name == nil {
			return nil, errors.New("workerd: spanUpdate of type name without the name")
		}
		return &bridge.UpdateName{Name: *w.Name}, nil
	case "status":
		if w.Status == nil {
			return nil, errors.New("workerd: spanUpdate of type status without the status")
		}
		st := bridge.Status{}
		switch w.Status.Code {
		case "unset":
		case "ok":
			st.Code = codes.Ok
		case "error":
			// OTel keeps a description for Error only.
			st = bridge.Status{Code: codes.Error, Description: w.Status.Message}
		default:
			return nil, fmt.Errorf("workerd: spanUpdate status code %q: use unset, ok or error", truncate(w.Status.Code))
		}
		return &bridge.StatusUpdate{Status: st}, nil
	case "":
		return nil, errors.New("workerd: spanUpdate info.type missing")
	}
	return nil, fmt.Errorf("%w: spanUpdate of type %q", ErrUnknownType, truncate(w.Type))
}

func decodeOnset(b *wireBody, e *bridge.Event, ctxSpan trace.SpanID) (bridge.Body, error) {
	id, err := parseSpanID(b.SpanID)
	if err != nil {
		return nil, fmt.Errorf("workerd: onset event.spanId: %w", err)
	}
	e.SpanID = id
	o := &bridge.Onset{
		Parent:            ctxSpan,
		ExecutionModel:    b.ExecutionModel,
		ScriptName:        b.ScriptName,
		Entrypoint:        b.Entrypoint,
		DispatchNamespace: b.DispatchNamespace,
	}
	if len(b.ScriptTags) > 0 {
		o.ScriptTags = b.ScriptTags
	}
	if b.ScriptVersion != nil {
		o.ScriptVersion = b.ScriptVersion.ID
	}
	if o.Attributes, err = decodeAttrs(b.Attributes); err != nil {
		return nil, fmt.Errorf("workerd: onset attributes: %w", err)
	}
	if len(b.Info) > 0 && string(b.Info) != "null" {
		if o.Info, err = decodeTrigger(b.Info); err != nil {
			return nil, fmt.Errorf("workerd: onset info: %w", err)
		}
	}
	return o, nil
}

func decodeTrigger(raw json.RawMessage) (bridge.TriggerInfo, error) {
	var w wireInfo
	if err := strictUnmarshal(raw, &w); err != nil {
		return bridge.TriggerInfo{}, err
	}
	t := bridge.TriggerInfo{Type: w.Type}
	var err error
	switch w.Type {
	case "":
		return t, errors.New("type missing")
	case "fetch":
		t.Method, t.URL = w.Method, w.URL
		for _, h := range w.Headers {
			t.Headers = append(t.Headers, bridge.Header(h))
		}
		if len(w.CfJSON) > 0 && string(w.CfJSON) != "null" {
			if t.CfJSON, err = decodeCfJSON(w.CfJSON); err != nil {
				return t, fmt.Errorf("cfJson: %w", err)
			}
		}
	case "jsrpc":
		t.MethodName = w.MethodName
	case "scheduled", "alarm":
		t.Cron = w.Cron
		if len(w.ScheduledTime) > 0 && string(w.ScheduledTime) != "null" {
			if t.ScheduledTime, err = parseTime(w.ScheduledTime); err != nil {
				return t, fmt.Errorf("scheduledTime: %w", err)
			}
		}
	case "queue":
		t.QueueName = w.QueueName
		if w.BatchSize != "" {
			n, err := parseUint(w.BatchSize, math.MaxInt32)
			if err != nil {
				return t, fmt.Errorf("batchSize: %w", err)
			}
			t.BatchSize = int(n)
		}
	case "email":
		t.MailFrom, t.RcptTo = w.MailFrom, w.RcptTo
		if w.RawSize != "" {
			n, err := parseUint(w.RawSize, math.MaxInt32)
			if err != nil {
				return t, fmt.Errorf("rawSize: %w", err)
			}
			t.RawSize = int(n)
		}
	default:
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return t, err
		}
		t.Raw = buf.String()
	}
	return t, nil
}

// decodeCfJSON returns the request's cf object as compact JSON. workerd sends the
// object; older versions sent a string holding its JSON.
func decodeCfJSON(raw json.RawMessage) (string, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		if json.Valid([]byte(s)) {
			raw = json.RawMessage(s)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func decodeSpanOpenInfo(raw json.RawMessage) ([]attribute.KeyValue, error) {
	var w wireInfo
	if err := strictUnmarshal(raw, &w); err != nil {
		return nil, err
	}
	switch w.Type {
	case "attributes":
		var infoAttrs []wireAttr
		if err := strictUnmarshal(orNull(w.Info), &infoAttrs); err != nil {
			return nil, fmt.Errorf("info of type attributes must hold an array of {name, value}: %w", err)
		}
		return decodeAttrs(infoAttrs)
	case "fetch":
		var attrs []attribute.KeyValue
		if w.Method != "" {
			attrs = append(attrs, attribute.String("http.request.method", w.Method))
		}
		if w.URL != "" {
			attrs = append(attrs, attribute.String("url.full", w.URL))
		}
		return attrs, nil
	}
	return nil, nil
}

func decodeAttrs(ws []wireAttr) ([]attribute.KeyValue, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	attrs := make([]attribute.KeyValue, 0, len(ws))
	for i, w := range ws {
		if w.Name == "" {
			return nil, fmt.Errorf("attribute %d has no name", i)
		}
		v, err := decodeValue(w.Value)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", w.Name, err)
		}
		attrs = append(attrs, attribute.KeyValue{Key: attribute.Key(w.Name), Value: v})
	}
	return attrs, nil
}

var errValueType = errors.New("value must be a string, number or boolean, or an array of one of them")

// decodeValue maps a JSON attribute value to a typed one: an integer literal (3) is an
// int64, any other number (0.5, 1e3) a float64; an array takes the type of its
// elements, a float64 slice when integers and other numbers mix.
func decodeValue(raw json.RawMessage) (attribute.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return attribute.Value{}, errors.New("value missing")
	}
	switch raw[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return attribute.Value{}, err
		}
		return decodeArray(items)
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return attribute.Value{}, err
		}
		return attribute.StringValue(s), nil
	case 't', 'f':
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return attribute.Value{}, err
		}
		return attribute.BoolValue(v), nil
	case 'n', '{':
		return attribute.Value{}, errValueType
	}
	return decodeNumber(raw)
}

func decodeNumber(raw json.RawMessage) (attribute.Value, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return attribute.Value{}, err
	}
	if isIntLiteral(string(n)) {
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return attribute.Int64Value(i), nil
		}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return attribute.Value{}, fmt.Errorf("number %s does not fit a float64", n)
	}
	return attribute.Float64Value(f), nil
}

func isIntLiteral(s string) bool { return !strings.ContainsAny(s, ".eE") }

func decodeArray(items []json.RawMessage) (attribute.Value, error) {
	if len(items) == 0 {
		return attribute.StringSliceValue(nil), nil
	}
	vals := make([]attribute.Value, len(items))
	for i, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) > 0 && it[0] == '[' {
			return attribute.Value{}, errValueType
		}
		v, err := decodeValue(it)
		if err != nil {
			return attribute.Value{}, fmt.Errorf("array item %d: %w", i, err)
		}
		vals[i] = v
	}
	typ := vals[0].Type()
	for _, v := range vals[1:] {
		switch {
		case v.Type() == typ:
		case isNumber(v.Type()) && isNumber(typ):
			typ = attribute.FLOAT64
		default:
			return attribute.Value{}, fmt.Errorf("array mixes %s and %s; arrays must be of one type", typ, v.Type())
		}
	}
	switch typ {
	case attribute.STRING:
		s := make([]string, len(vals))
		for i, v := range vals {
			s[i] = v.AsString()
		}
		return attribute.StringSliceValue(s), nil
	case attribute.BOOL:
		s := make([]bool, len(vals))
		for i, v := range vals {
			s[i] = v.AsBool()
		}
		return attribute.BoolSliceValue(s), nil
	case attribute.INT64:
		s := make([]int64, len(vals))
		for i, v := range vals {
			s[i] = v.AsInt64()
		}
		return attribute.Int64SliceValue(s), nil
	default:
		s := make([]float64, len(vals))
		for i, v := range vals {
			if v.Type() == attribute.INT64 {
				s[i] = float64(v.AsInt64())
			} else {
				s[i] = v.AsFloat64()
			}
		}
		return attribute.Float64SliceValue(s), nil
	}
}

func isNumber(t attribute.Type) bool { return t == attribute.INT64 || t == attribute.FLOAT64 }

// DecodeStream decodes a JSON array of tail events or NDJSON (one event a line; blank
// lines are skipped). A bad item is rejected alone with an *ItemError naming it; the
// good items beside it are returned, in input order.
func DecodeStream(data []byte) ([]bridge.Event, []error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '[' {
		return decodeArrayStream(trimmed)
	}
	var events []bridge.Event
	var errs []error
	index := 0
	for lineNo := 1; len(data) > 0; lineNo++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		e, err := Decode(line)
		if err != nil {
			errs = append(errs, &ItemError{Index: index, Line: lineNo, Err: err})
		} else {
			events = append(events, e)
		}
		index++
	}
	return events, errs
}

func decodeArrayStream(data []byte) ([]bridge.Event, []error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, []error{&ItemError{Err: fmt.Errorf("reading the array: %w", err)}}
	}
	var events []bridge.Event
	var errs []error
	for index := 0; ; index++ {
		if !dec.More() {
			if _, err := dec.Token(); err != nil {
				errs = append(errs, &ItemError{Index: index, Err: fmt.Errorf("the array does not end properly: %w", err)})
			}
			return events, errs
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			errs = append(errs, &ItemError{Index: index, Err: fmt.Errorf("malformed JSON; the rest of the array is unreadable: %w", err)})
			return events, errs
		}
		e, err := Decode(raw)
		if err != nil {
			errs = append(errs, &ItemError{Index: index, Err: err})
			continue
		}
		events = append(events, e)
	}
}

// strictUnmarshal decodes one JSON value; trailing data is an error (json.Unmarshal
// checks that). Numbers land in json.Number or json.RawMessage fields, never float64.
func strictUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func compactJSON(raw json.RawMessage) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func parseHex(s string, n int) ([]byte, error) {
	if len(s) != 2*n {
		return nil, fmt.Errorf("%q has %d characters, want %d hex digits", truncate(s), len(s), 2*n)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not hex", truncate(s))
	}
	return b, nil
}

// parseTraceID reads a 128-bit id: 32 hex digits, or 16 when the high half is zero
// (workerd's TraceId::toGoString prints it so).
func parseTraceID(s string) (trace.TraceID, error) {
	var id trace.TraceID
	if len(s) == 16 {
		b, err := parseHex(s, 8)
		if err != nil {
			return id, err
		}
		copy(id[8:], b)
		return id, nil
	}
	b, err := parseHex(s, 16)
	if err != nil {
		return id, err
	}
	copy(id[:], b)
	return id, nil
}

func parseSpanID(s string) (trace.SpanID, error) {
	var id trace.SpanID
	if s == "" {
		return id, errors.New("missing")
	}
	b, err := parseHex(s, 8)
	if err != nil {
		return id, err
	}
	copy(id[:], b)
	if !id.IsValid() {
		return id, errors.New("is all zeros")
	}
	return id, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func parseUint(n json.Number, max uint64) (uint64, error) {
	s := string(n)
	if s == "" {
		return 0, errors.New("missing")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%q is not an integer from 0 to %d", truncate(s), max)
	}
	return v, nil
}

func parseMillis(n json.Number) (time.Duration, error) {
	if n == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f < 0 || f > maxDurationMillis || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a number of milliseconds from 0 to %g", truncate(string(n)), maxDurationMillis)
	}
	return time.Duration(math.Round(f * float64(time.Millisecond))), nil
}

// parseTime reads a JavaScript Date as JSON.stringify writes it (RFC 3339, UTC,
// milliseconds) or as a number of milliseconds since the Unix epoch.
func parseTime(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", truncate(s))
		}
		if t.Before(minTime) || t.After(maxTime) {
			return time.Time{}, fmt.Errorf("%q is outside the usable years %d to %d", truncate(s), minTime.Year(), maxTime.Year())
		}
		return t.UTC(), nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, errors.New("must be an RFC 3339 string or a number of milliseconds since 1970")
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.Abs(f) > maxMillis || math.IsNaN(f) {
		return time.Time{}, fmt.Errorf("%q is not a number of milliseconds since 1970 within the usable years %d to %d", truncate(string(n)), minTime.Year(), maxTime.Year())
	}
	ms := math.Floor(f)
	return time.UnixMilli(int64(ms)).Add(time.Duration(math.Round((f - ms) * 1e6))).UTC(), nil
}
