package bridge

// How the assembler maps STW invocation events (workerd's tail events) to spans.
//
//   - Onset opens the invocation's root span (the envelope's SpanID, parent
//     Onset.Parent, a remote parent when set). Its name and attributes follow the OTel
//     semantic conventions for the trigger: see invocationName and onsetAttributes.
//   - Return sets http.response.status_code on the root; a 5xx makes its status Error.
//   - Exception adds a span event "exception" (exception.type, exception.message,
//     exception.stacktrace) to the span it concerns (the root when that span is not
//     open) and sets that span's status to Error.
//   - Log becomes a span event "log" (log.level, log.message) on the span it concerns,
//     or the root. A span event, not an OTLP log record, because the assembler's output
//     is spans: the line stays in its span's timeline in any trace backend. The message
//     (workerd's JSON array of the logged values) reads as console.log prints it: the
//     values joined by spaces, strings unquoted; it is cut to MaxLogMessageBytes. A
//     message workerd truncated adds log.truncated=true.
//   - DiagnosticChannel becomes a span event "diagnostic_channel"
//     (diagnostic_channel.name, diagnostic_channel.message: the published value's
//     JSON, cut to MaxLogMessageBytes) on the span it concerns, or the root.
//   - StreamDiagnostic adds its count to stw.dropped_events on the root.
//   - Outcome ends the root span (End = the outcome's time) with cloudflare.outcome,
//     cloudflare.cpu_time_ms and cloudflare.wall_time_ms; its status is Ok for "ok"
//     (unless already Error, e.g. a 5xx) and otherwise Error, described by the outcome
//     unless an exception described it already. Spans of the stream still open then
//     come out unfinished. A local stream has no Onset: its Outcome only ends the stream.
//   - workerd's fetch subrequest span (a SpanOpen named "fetch" with no kind in an
//     invocation) becomes an HTTP client span: kind Client, the integer attributes
//     workerd sends as strings (http.response.status_code, the body sizes, ports)
//     made int64, server.address and server.port taken from url.full when missing,
//     and a status code of 400 or more (or one outside 100-599) sets status Error and
//     error.type, as the HTTP client semantic conventions say. See
//     normalizeSubrequest. The workerd codec keeps the values as workerd sent them.
//
// The invocation's spans carry its Resource (InvocationResource): the onset event's
// when it has one (stwingest stamps every event of an invocation), else one made from
// the onset with the default service name. Events that carry their own keep it.
//
// Events of an invocation whose onset never came are still assembled (spans with a
// parent that is never seen) and counted in AssemblerStats.NoOnset.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// Resource attributes of an invocation. The OTel semantic conventions (v1.43) define
// no cloud.provider or cloud.platform value for Cloudflare; these follow the form of
// the values they do define, and are the only values not taken from them.
const (
	CloudProvider = "cloudflare"
	CloudPlatform = "cloudflare.workers"
	// UnknownService is service.name when neither a script name nor an override is
	// known, as the OTel SDKs write it ("unknown_service:" + executable name).
	UnknownService = "unknown_service:workerd"
)

// ServiceName says how an invocation's service.name is made: Name when set, else the
// onset's script name; Prefix goes before either.
type ServiceName struct {
	Name   string
	Prefix string
}

// InvocationResource returns the OTel Resource of the Worker an onset describes:
// service.name (see ServiceName; UnknownService when there is none), service.version
// and faas.version from the script version, service.namespace from the dispatch
// namespace, faas.name from the script name, cloud.provider and cloud.platform.
func InvocationResource(o *Onset, svc ServiceName) *resource.Resource {
	name := svc.Name
	if name == "" {
		name = o.ScriptName
	}
	if name == "" {
		name = UnknownService
	} else {
		name = svc.Prefix + name
	}
	attrs := []attribute.KeyValue{
		attribute.String("service.name", name),
		attribute.String("cloud.provider", CloudProvider),
		attribute.String("cloud.platform", CloudPlatform),
	}
	for _, kv := range [...]struct{ key, value string }{
		{"service.version", o.ScriptVersion}, {"service.namespace", o.DispatchNamespace},
		{"faas.name", o.ScriptName}, {"faas.version", o.ScriptVersion},
	} {
		if kv.value != "" {
			attrs = append(attrs, attribute.String(kv.key, kv.value))
		}
	}
	return resource.NewSchemaless(attrs...)
}

// resourceOf is the Resource of a span opened by e: e's own, else its invocation's.
func resourceOf(s *streamState, e Event) *resource.Resource {
	if e.Resource == nil && s.inv != nil {
		return s.inv.resource
	}
	return e.Resource
}

// subrequestSpanName is the name workerd gives the span of a fetch() subrequest.
const subrequestSpanName = "fetch"

// subrequestIntKeys are the integer attributes of the HTTP client semantic
// conventions that workerd sends as decimal strings on its fetch span.
var subrequestIntKeys = map[attribute.Key]bool{
	"http.response.status_code": true,
	"http.request.body.size":    true,
	"http.response.body.size":   true,
	"http.request.size":         true,
	"http.response.size":        true,
	"http.request.resend_count": true,
	"server.port":               true,
	"network.peer.port":         true,
	"network.local.port":        true,
	"client.port":               true,
}

// normalizeSubrequest applies the HTTP client semantic conventions to workerd's fetch
// subrequest span as it is emitted (its attributes come in several events); it does
// nothing more when applied twice. owned tells whether span's attributes are its own.
func (a *Assembler) normalizeSubrequest(span *Span, owned bool) {
	var status int64
	var haveAddr, havePort, haveErrType bool
	urlFull := ""
	var add []attribute.KeyValue // to set: numbers sent as strings, and what is missing
	for _, kv := range span.Attributes {
		switch kv.Key {
		case "server.address":
			haveAddr = true
		case "error.type":
			haveErrType = true
		case "url.full":
			urlFull = kv.Value.AsString()
		}
		if !subrequestIntKeys[kv.Key] {
			continue
		}
		n, isInt := kv.Value.AsInt64(), kv.Value.Type() == attribute.INT64
		if kv.Value.Type() == attribute.STRING {
			v, err := strconv.ParseInt(kv.Value.AsString(), 10, 64)
			if err != nil {
				continue // not a number: kept as sent
			}
			add = append(add, attribute.Int64(string(kv.Key), v))
			n, isInt = v, true
		}
		switch {
		case !isInt:
		case kv.Key == "http.response.status_code":
			status = n
		case kv.Key == "server.port":
			havePort = true
		}
	}
	if u, err := url.Parse(urlFull); urlFull != "" && err == nil && u.Hostname() != "" {
		if !haveAddr {
			add = append(add, attribute.String("server.address", u.Hostname()))
		}
		if !havePort {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				add = append(add, attribute.Int("server.port", p))
			} else if p := defaultPorts[u.Scheme]; u.Port() == "" && p != 0 {
				add = append(add, attribute.Int("server.port", p))
			}
		}
	}
	// 4xx and 5xx are errors for a client; so is a code it cannot interpret.
	if failed := status != 0 && (status >= 400 || status < 100 || status > 599); failed {
		if span.Status.Code != codes.Error {
			span.Status = Status{Code: codes.Error} // the code says it all
		}
		if !haveErrType {
			add = append(add, attribute.String("error.type", strconv.FormatInt(status, 10)))
		}
	}
	a.mergeSpanAttrs(span, owned, add) // within MaxAttributesPerSpan, as any attribute
}

var defaultPorts = map[string]int{"http": 80, "https": 443, "ws": 80, "wss": 443}

// MaxLogMessageBytes bounds log.message of a "log" span event and the name and
// message of a "diagnostic_channel" one, in bytes.
const MaxLogMessageBytes = 8 << 10

// invocation is the STW state of a stream that began with an Onset.
type invocation struct {
	root     *openSpan // nil once ended
	resource *resource.Resource
}

func (a *Assembler) onset(s *streamState, e Event, b *Onset) {
	if s.inv != nil {
		a.stats.Rejected++ // a second onset
		return
	}
	s.inv = &invocation{resource: e.Resource}
	if s.inv.resource == nil {
		s.inv.resource = InvocationResource(b, ServiceName{})
	}
	sp := a.newSpan(s, e)
	if sp == nil {
		return
	}
	s.inv.root = sp
	sp.name = invocationName(&b.Info)
	sp.kind = uint8(invocationKind(b.Info.Type))
	sp.parent = b.Parent
	if b.Parent.IsValid() {
		sp.flags |= spanRemoteParent
	}
	a.mergeAttrs(sp, append(onsetAttributes(b, a.opts.RequestHeaders), b.Attributes...))
}

// invocationName names an invocation's root span as the OTel semantic conventions do
// for its trigger: the HTTP method for fetch (workerd knows no route), the RPC method
// for jsrpc, "process {queue}" for a queue batch, else the trigger type.
func invocationName(t *TriggerInfo) string {
	switch t.Type {
	case "fetch":
		if t.Method != "" {
			return t.Method
		}
		return "HTTP"
	case "jsrpc":
		if t.MethodName != "" {
			return t.MethodName
		}
	case "queue":
		if t.QueueName != "" {
			return "process " + t.QueueName
		}
	case "":
		return "invocation"
	}
	return t.Type
}

func invocationKind(typ string) trace.SpanKind {
	switch typ {
	case "fetch", "jsrpc", "hibernatableWebSocket", "connect":
		return trace.SpanKindServer
	case "queue", "email", "trace":
		return trace.SpanKindConsumer
	}
	return trace.SpanKindInternal
}

// onsetAttributes returns the root span's attributes for an onset.
func onsetAttributes(b *Onset, headers []string) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	str := func(k, v string) {
		if v != "" {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	str("cloudflare.script_name", b.ScriptName)
	str("cloudflare.script_version", b.ScriptVersion)
	str("cloudflare.entrypoint", b.Entrypoint)
	str("cloudflare.execution_model", b.ExecutionModel)
	str("cloudflare.dispatch_namespace", b.DispatchNamespace)
	if len(b.ScriptTags) > 0 {
		attrs = append(attrs, attribute.StringSlice("cloudflare.script_tags", b.ScriptTags))
	}
	t := &b.Info
	str("cloudflare.trigger", t.Type)
	switch t.Type {
	case "fetch":
		str("faas.trigger", "http")
		str("http.request.method", t.Method)
		if u, err := url.Parse(t.URL); err == nil && t.URL != "" {
			u.User = nil // never credentials
			str("url.full", u.String())
			str("url.scheme", u.Scheme)
			str("url.path", u.Path)
			str("server.address", u.Hostname())
			if p := u.Port(); p != "" {
				var n int
				if _, err := fmt.Sscan(p, &n); err == nil {
					attrs = append(attrs, attribute.Int("server.port", n))
				}
			}
		}
		for _, h := range t.Headers {
			name := strings.ToLower(h.Name)
			if name == "user-agent" {
				str("user_agent.original", h.Value)
			}
			for _, allowed := range headers {
				if strings.EqualFold(allowed, name) {
					attrs = append(attrs, attribute.StringSlice("http.request.header."+name, []string{h.Value}))
				}
			}
		}
	case "jsrpc":
		str("rpc.method", t.MethodName)
	case "scheduled", "alarm":
		str("faas.trigger", "timer")
		str("faas.cron", t.Cron)
		if !t.ScheduledTime.IsZero() {
			str("faas.time", t.ScheduledTime.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		}
	case "queue":
		str("faas.trigger", "pubsub")
		str("messaging.operation.type", "process")
		str("messaging.destination.name", t.QueueName)
		if t.BatchSize > 0 {
			attrs = append(attrs, attribute.Int("messaging.batch.message_count", t.BatchSize))
		}
	case "email":
		str("faas.trigger", "other")
		if t.RawSize > 0 {
			attrs = append(attrs, attribute.Int("cloudflare.email.raw_size", t.RawSize))
		}
	default:
		str("faas.trigger", "other")
	}
	return attrs
}

// target returns the span an invocation event concerns: its own span when open, else
// the invocation's root; nil (counted) when neither is open.
func (a *Assembler) target(s *streamState, e Event) *openSpan {
	if s.inv == nil {
		a.stats.NoOnset++
	}
	sp := a.open.get(spanKey{e.TraceID, e.SpanID})
	if sp == nil && s.inv != nil {
		sp = s.inv.root
	}
	if sp == nil {
		a.stats.Rejected++
		return nil
	}
	sp.seen(e.Time)
	return sp
}

func (a *Assembler) log(s *streamState, e Event, b *Log) {
	sp := a.target(s, e)
	if sp == nil {
		return
	}
	msg := b.Message
	if !b.Truncated {
		msg = logText(msg)
	}
	attrs := []attribute.KeyValue{
		attribute.String("log.level", b.Level),
		attribute.String("log.message", cutText(msg)),
	}
	if b.Truncated {
		attrs = append(attrs, attribute.Bool("log.truncated", true))
	}
	a.addEvent(sp, SpanEvent{Name: "log", Time: e.Time, Attributes: attrs})
}

func (a *Assembler) diagnosticChannel(s *streamState, e Event, b *DiagnosticChannel) {
	sp := a.target(s, e)
	if sp == nil {
		return
	}
	a.addEvent(sp, SpanEvent{Name: "diagnostic_channel", Time: e.Time, Attributes: []attribute.KeyValue{
		attribute.String("diagnostic_channel.name", cutText(b.Channel)),
		attribute.String("diagnostic_channel.message", cutText(b.Message)),
	}})
}

// cutText cuts s to MaxLogMessageBytes, on a rune boundary, marking the cut with "…".
func cutText(s string) string {
	if len(s) <= MaxLogMessageBytes {
		return s
	}
	return strings.ToValidUTF8(s[:MaxLogMessageBytes], "") + "…"
}

func (a *Assembler) exception(s *streamState, e Event, b *Exception) {
	sp := a.target(s, e)
	if sp == nil {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String("exception.type", b.Name),
		attribute.String("exception.message", b.Message),
	}
	if b.Stack != "" {
		attrs = append(attrs, attribute.String("exception.stacktrace", b.Stack))
	}
	a.addEvent(sp, SpanEvent{Name: "exception", Time: e.Time, Attributes: attrs})
	desc := b.Message
	if b.Name != "" {
		desc = b.Name + ": " + b.Message
	}
	sp.setStatus(Status{Code: codes.Error, Description: desc})
}

func (a *Assembler) ret(s *streamState, e Event, b *Return) {
	if s.inv == nil {
		a.stats.NoOnset++
	}
	sp := (*openSpan)(nil)
	if s.inv != nil {
		sp = s.inv.root
	}
	if sp == nil {
		sp = a.open.get(spanKey{e.TraceID, e.SpanID})
	}
	if sp == nil {
		a.stats.Rejected++
		return
	}
	sp.seen(e.Time)
	if b.StatusCode == 0 {
		return
	}
	a.mergeAttrs(sp, []attribute.KeyValue{attribute.Int("http.response.status_code", b.StatusCode)})
	if b.StatusCode >= 500 && sp.status().Code != codes.Error {
		// The status code says it all: no description (HTTP semantic conventions).
		sp.setStatus(Status{Code: codes.Error})
	}
}

func (a *Assembler) diagnostic(s *streamState, e Event, b *StreamDiagnostic) {
	r := s.more()
	r.droppedN = addSat(r.droppedN, b.DroppedEvents)
	a.stats.Dropped = addSat(a.stats.Dropped, b.DroppedEvents)
	if s.inv != nil && s.inv.root != nil {
		s.inv.root.seen(e.Time)
		a.mergeAttrs(s.inv.root, []attribute.KeyValue{attribute.Int64("stw.dropped_events", int64(min(r.droppedN, 1<<62)))})
	}
}

func (a *Assembler) outcome(s *streamState, e Event, b *Outcome) {
	if s.inv != nil && s.inv.root != nil {
		root := s.inv.root
		root.seen(e.Time)
		a.mergeAttrs(root, []attribute.KeyValue{
			attribute.String("cloudflare.outcome", b.Outcome),
			attribute.Float64("cloudflare.cpu_time_ms", b.CPUTime.Seconds()*1000),
			attribute.Float64("cloudflare.wall_time_ms", b.WallTime.Seconds()*1000),
		})
		switch st := root.status(); {
		case b.Outcome == "ok" && st.Code == codes.Unset:
			root.setStatus(Status{Code: codes.Ok})
		case b.Outcome != "ok" && (st.Code != codes.Error || st.Description == ""):
			root.setStatus(Status{Code: codes.Error, Description: b.Outcome})
		}
		a.finish(root, e.Time)
	}
	a.endStream(s, fmt.Sprintf("its stream ended (outcome %q) before its end", b.Outcome))
}

// logText renders workerd's log message, a JSON array of the logged values, as
// console.log prints it; anything else is returned as it is.
func logText(msg string) string {
	var vals []json.RawMessage
	if json.Unmarshal([]byte(msg), &vals) != nil {
		return msg
	}
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(' ')
		}
		var str string
		if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &str) == nil {
			b.WriteString(str)
		} else {
			b.Write(v)
		}
	}
	return b.String()
}
