package otlpexport

import (
	"encoding/hex"
	"errors"
	"sync"
	"unicode/utf8"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// AppendEventsWire appends to buf the ExportLogsServiceRequest that EncodeEvents(events)
// builds, in protobuf wire format, without building the message tree: the same
// grouping by resource and scope, the same records and fields. ok is false, and buf
// returned unchanged, when a string is not valid UTF-8: proto.Marshal refuses such a
// request, and so does this encoder.
func AppendEventsWire(buf []byte, events []bridge.Event) (_ []byte, ok bool) {
	if !eventsUTF8(events) {
		return buf, false
	}
	enc := logsEncoders.Get().(*logsEncoder)
	defer enc.release()
	enc.group(events, nil, 0)
	buf, _ = enc.write(buf, events, 0)
	return buf, true
}

// logsPart is one request written by logsEncoder.write: its bytes are
// buf[start:end] of the buffer returned, and it holds items log records.
type logsPart struct{ start, end, items int }

// logsEncoder writes log requests straight from events. Its slices are kept between
// uses (through logsEncoders), so that encoding allocates little besides the output.
type logsEncoder struct {
	resources map[groupKey]int
	scopes    map[groupKey]int
	res       []fastResGroup
	scp       []fastScopeGroup
	next      []int32 // per event: the next event of its scope group, -1 at the end
	shard     []uint16
	parts     []logsPart
	// hint is the bytes per record of the last request written, for sizing the next.
	hint int
}

type fastResGroup struct {
	res    *resource.Resource
	scopes []int // indexes in logsEncoder.scp
}

type fastScopeGroup struct {
	scope       *instrumentation.Scope
	first, last int32
	items       int
}

var logsEncoders = sync.Pool{New: func() any {
	return &logsEncoder{resources: make(map[groupKey]int), scopes: make(map[groupKey]int)}
}}

// release returns the encoder to the pool, without the pointers it held.
func (enc *logsEncoder) release() {
	clear(enc.resources)
	clear(enc.scopes)
	for i := range enc.res {
		enc.res[i] = fastResGroup{scopes: enc.res[i].scopes[:0]}
	}
	clear(enc.scp)
	enc.res, enc.scp, enc.parts = enc.res[:0], enc.scp[:0], enc.parts[:0]
	logsEncoders.Put(enc)
}

// group groups the events with a body (those of shard k only, when shard is not nil)
// by resource and scope, as EncodeEvents does, and returns how many there are.
func (enc *logsEncoder) group(events []bridge.Event, shard []uint16, k uint16) (items int) {
	clear(enc.resources)
	clear(enc.scopes)
	enc.res, enc.scp = enc.res[:0], enc.scp[:0]
	if cap(enc.next) < len(events) {
		enc.next = make([]int32, len(events))
	}
	enc.next = enc.next[:len(events)]
	var (
		lastRes   *resource.Resource
		lastScope *instrumentation.Scope
		last      = -1
	)
	for i := range events {
		e := &events[i]
		if e.Body == nil || (shard != nil && shard[i] != k) {
			continue
		}
		if last < 0 || e.Resource != lastRes || e.Scope != lastScope {
			key := makeGroupKey(e.Resource, e.Scope)
			sg, found := enc.scopes[key]
			if !found {
				rg, found := enc.resources[key.resourceKey()]
				if !found {
					rg = len(enc.res)
					enc.resources[key.resourceKey()] = rg
					if len(enc.res) < cap(enc.res) {
						enc.res = enc.res[:rg+1]
						enc.res[rg].res, enc.res[rg].scopes = e.Resource, enc.res[rg].scopes[:0]
					} else {
						enc.res = append(enc.res, fastResGroup{res: e.Resource})
					}
				}
				sg = len(enc.scp)
				enc.scopes[key] = sg
				enc.scp = append(enc.scp, fastScopeGroup{scope: e.Scope, first: -1, last: -1})
				enc.res[rg].scopes = append(enc.res[rg].scopes, sg)
			}
			last, lastRes, lastScope = sg, e.Resource, e.Scope
		}
		g := &enc.scp[last]
		enc.next[i] = -1
		if g.last < 0 {
			g.first = int32(i)
		} else {
			enc.next[g.last] = int32(i)
		}
		g.last = int32(i)
		g.items++
		items++
	}
	return items
}

// write appends the grouped events to b as requests of at most limit bytes each (one
// request when limit is 0); a record too big on its own goes alone. It returns b
// grown and the requests' places in it.
func (enc *logsEncoder) write(b []byte, events []bridge.Event, limit int) ([]byte, []logsPart) {
	enc.parts = enc.parts[:0]
	cur := logsPart{start: len(b)}
	for _, rg := range enc.res {
		var resTail int // what the resource adds after its scope groups
		if rg.res != nil {
			resTail = stringFieldSize(rg.res.SchemaURL())
		}
		resStart, resItems := len(b), 0 // where the group starts in the request, its records there
		var rm int
		b, rm = beginResourceLogs(b, rg.res)
		for _, si := range rg.scopes {
			sg := &enc.scp[si]
			var tail int
			if sg.scope != nil {
				tail = stringFieldSize(sg.scope.SchemaURL)
			}
			// Two lengths may widen by up to 4 bytes each when the groups close.
			tail += resTail + 8
			scopeStart, scopeItems := len(b), 0
			var sm int
			b, sm = beginScopeLogs(b, sg.scope)
			for i := sg.first; i >= 0; i = enc.next[i] {
				pos := len(b)
				b = appendRecordWire(b, &events[i])
				if limit > 0 && cur.items > 0 && len(b)-cur.start+tail > limit {
					// The record does not fit: close this request before it (without
					// the groups it opened and left empty), and write it again at the
					// start of the next one.
					switch {
					case resItems == 0:
						b = b[:resStart]
					case scopeItems == 0:
						b = endResourceLogs(b[:scopeStart], rm, rg.res)
					default:
						b = endResourceLogs(endScopeLogs(b[:pos], sm, sg.scope), rm, rg.res)
					}
					cur.end = len(b)
					enc.parts = append(enc.parts, cur)
					cur = logsPart{start: len(b)}
					resStart, resItems, scopeStart, scopeItems = len(b), 0, len(b), 0
					b, rm = beginResourceLogs(b, rg.res)
					b, sm = beginScopeLogs(b, sg.scope)
					b = appendRecordWire(b, &events[i])
				}
				cur.items++
				resItems++
				scopeItems++
			}
			b = endScopeLogs(b, sm, sg.scope)
		}
		b = endResourceLogs(b, rm, rg.res)
	}
	if cur.items > 0 {
		cur.end = len(b)
		enc.parts = append(enc.parts, cur)
	}
	return b, enc.parts
}

func stringFieldSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

// beginResourceLogs opens a ResourceLogs (field 1 of the request) and writes its resource.
func beginResourceLogs(b []byte, r *resource.Resource) ([]byte, int) {
	b, m := beginMsg(b, 1)
	if r != nil {
		var rm int
		b, rm = beginMsg(b, 1)
		b = appendKeyValues(b, 1, r.Attributes())
		b = endMsg(b, rm)
	}
	return b, m
}

func endResourceLogs(b []byte, m int, r *resource.Resource) []byte {
	if r != nil {
		b = appendString(b, 3, r.SchemaURL())
	}
	return endMsg(b, m)
}

// beginScopeLogs opens a ScopeLogs (field 2 of a ResourceLogs) and writes its scope.
func beginScopeLogs(b []byte, s *instrumentation.Scope) ([]byte, int) {
	b, m := beginMsg(b, 2)
	if s != nil {
		var sm int
		b, sm = beginMsg(b, 1)
		b = appendString(b, 1, s.Name)
		b = appendString(b, 2, s.Version)
		b = appendKeyValues(b, 3, s.Attributes.ToSlice())
		b = endMsg(b, sm)
	}
	return b, m
}

func endScopeLogs(b []byte, m int, s *instrumentation.Scope) []byte {
	if s != nil {
		b = appendString(b, 3, s.SchemaURL)
	}
	return endMsg(b, m)
}

// LogRecord field numbers.
const (
	lrTime           = 1
	lrSeverityNumber = 2
	lrSeverityText   = 3
	lrBody           = 5
	lrAttributes     = 6
	lrFlags          = 8
	lrTraceID        = 9
	lrSpanID         = 10
	lrEventName      = 12
)

// appendRecordWire appends e as field 2 (log_records) of a ScopeLogs, as
// arena.encodeRecord builds it, fields in field-number order.
func appendRecordWire(b []byte, e *bridge.Event) []byte {
	b, m := beginMsg(b, 2)
	if t := unixNano(e.Time); t != 0 {
		b = protowire.AppendTag(b, lrTime, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, t)
	}
	var (
		bodyAttrs []attribute.KeyValue
		flags     uint32
	)
	switch x := e.Body.(type) {
	case *bridge.SpanOpen:
		bodyAttrs, flags = x.Attributes, uint32(x.TraceFlags)
	case *bridge.Attributes:
		bodyAttrs = x.Attributes
	case *bridge.SpanEndData:
		bodyAttrs = x.Attributes
	case *bridge.Onset:
		bodyAttrs = x.Attributes
	case *bridge.Log:
		if sev := logSeverity(x.Level); sev != 0 {
			b = protowire.AppendTag(b, lrSeverityNumber, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(sev))
		}
		b = appendString(b, lrSeverityText, x.Level)
		var bm int
		b, bm = beginMsg(b, lrBody)
		b = endMsg(appendStringValue(b, x.Message), bm)
	case *bridge.DiagnosticChannel:
		var bm int
		b, bm = beginMsg(b, lrBody)
		b = endMsg(appendStringValue(b, x.Message), bm)
	case *bridge.Exception:
		b = protowire.AppendTag(b, lrSeverityNumber, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(17)) // SEVERITY_NUMBER_ERROR
	}
	if len(bodyAttrs) > 0 {
		var bm, lm int
		b, bm = beginMsg(b, lrBody)
		b, lm = beginMsg(b, 6) // kvlist_value
		b = appendKeyValues(b, 1, bodyAttrs)
		b = endMsg(endMsg(b, lm), bm)
	}
	b = appendRecordAttrs(b, e)
	if flags != 0 {
		b = protowire.AppendTag(b, lrFlags, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, flags)
	}
	if e.TraceID.IsValid() {
		b = protowire.AppendTag(b, lrTraceID, protowire.BytesType)
		b = protowire.AppendBytes(b, e.TraceID[:])
	}
	if e.SpanID.IsValid() {
		b = protowire.AppendTag(b, lrSpanID, protowire.BytesType)
		b = protowire.AppendBytes(b, e.SpanID[:])
	}
	b = appendString(b, lrEventName, EventName(e.Kind()))
	return endMsg(b, m)
}

// appendRecordAttrs appends the record attributes of e (field 6), in encodeRecord's order.
func appendRecordAttrs(b []byte, e *bridge.Event) []byte {
	b = appendHexKV(b, lrAttributes, AttrStreamID, e.StreamID[:]) // on every record (version 1)
	b = appendIntKV(b, lrAttributes, AttrSequence, int64(e.Sequence))
	switch x := e.Body.(type) {
	case *bridge.SpanOpen:
		b = appendStringKV(b, lrAttributes, AttrSpanName, x.Name)
		if x.Parent.IsValid() {
			b = appendHexKV(b, lrAttributes, AttrParentSpanID, x.Parent[:])
		}
		if x.SpanKind != trace.SpanKindInternal {
			b = appendIntKV(b, lrAttributes, AttrSpanKind, int64(x.SpanKind))
		}
		if x.TraceState.Len() > 0 {
			b = appendStringKV(b, lrAttributes, AttrTraceState, x.TraceState.String())
		}
		if x.RemoteParent {
			b = appendKeyValue(b, lrAttributes, AttrRemoteParent, attribute.BoolValue(true))
		}
		if len(x.Links) > 0 {
			b = appendLinksKV(b, x.Links)
		}
	case *bridge.UpdateName:
		b = appendStringKV(b, lrAttributes, AttrSpanName, x.Name)
	case *bridge.StatusUpdate:
		b = appendIntKV(b, lrAttributes, AttrStatusCode, statusCodeWire(x.Status.Code))
		b = appendNonEmptyKV(b, AttrStatusMessage, x.Status.Description)
	case *bridge.SpanEndData:
		if x.Status.Code != codes.Unset {
			b = appendIntKV(b, lrAttributes, AttrStatusCode, statusCodeWire(x.Status.Code))
		}
		b = appendNonEmptyKV(b, AttrStatusMessage, x.Status.Description)
		if len(x.Events) > 0 {
			b = appendSpanEventsKV(b, x.Events)
		}
		if len(x.Links) > 0 {
			b = appendLinksKV(b, x.Links)
		}
		b = appendNonZeroKV(b, lrAttributes, AttrDroppedAttributes, int64(x.DroppedAttributes))
		b = appendNonZeroKV(b, lrAttributes, AttrDroppedEvents, int64(x.DroppedEvents))
		b = appendNonZeroKV(b, lrAttributes, AttrDroppedLinks, int64(x.DroppedLinks))
		b = appendNonZeroKV(b, lrAttributes, AttrChildSpanCount, int64(x.ChildSpanCount))
		if x.Unfinished {
			b = appendKeyValue(b, lrAttributes, AttrUnfinished, attribute.BoolValue(true))
		}
		b = appendNonEmptyKV(b, AttrSpanOutcome, x.Outcome)
	case *bridge.Onset:
		if x.Parent.IsValid() {
			b = appendHexKV(b, lrAttributes, AttrParentSpanID, x.Parent[:])
		}
		b = appendNonEmptyKV(b, AttrOnsetExecModel, x.ExecutionModel)
		b = appendNonEmptyKV(b, AttrOnsetScriptName, x.ScriptName)
		b = appendNonEmptyKV(b, AttrOnsetScriptVersion, x.ScriptVersion)
		b = appendNonEmptyKV(b, AttrOnsetEntrypoint, x.Entrypoint)
		if len(x.ScriptTags) > 0 {
			b = appendKeyValue(b, lrAttributes, AttrOnsetScriptTags, attribute.StringSliceValue(x.ScriptTags))
		}
		b = appendNonEmptyKV(b, AttrOnsetDispatchNS, x.DispatchNamespace)
		if x.Unsampled {
			b = appendKeyValue(b, lrAttributes, AttrOnsetUnsampled, attribute.BoolValue(true))
		}
		b = appendTriggerInfoKV(b, &x.Info)
	case *bridge.Outcome:
		if x.Outcome != "ok" {
			b = appendStringKV(b, lrAttributes, AttrOutcomeResult, x.Outcome)
		}
		b = appendNonZeroKV(b, lrAttributes, AttrOutcomeCPUTime, int64(x.CPUTime))
		b = appendNonZeroKV(b, lrAttributes, AttrOutcomeWallTime, int64(x.WallTime))
	case *bridge.Exception:
		b = appendNonEmptyKV(b, AttrExceptionType, x.Name)
		b = appendNonEmptyKV(b, AttrExceptionMessage, x.Message)
		b = appendNonEmptyKV(b, AttrExceptionStack, x.Stack)
	case *bridge.Return:
		b = appendNonZeroKV(b, lrAttributes, AttrReturnStatusCode, int64(x.StatusCode))
	case *bridge.StreamDiagnostic:
		b = appendIntKV(b, lrAttributes, AttrDiagnosticDropped, int64(x.DroppedEvents))
	case *bridge.Log:
		if x.Truncated {
			b = appendKeyValue(b, lrAttributes, AttrLogTruncated, attribute.BoolValue(true))
		}
	case *bridge.DiagnosticChannel:
		b = appendNonEmptyKV(b, AttrDiagnosticChannel, x.Channel)
	}
	return b
}

// appendStringKV appends KeyValue{key, string s} as field num; sizes are known, so no
// length is reserved and patched.
func appendStringKV(b []byte, num protowire.Number, key, s string) []byte {
	val := 1 + protowire.SizeBytes(len(s))
	kv := stringFieldSize(key) + 1 + protowire.SizeBytes(val)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kv))
	b = appendString(b, 1, key)
	b = append(b, 2<<3|byte(protowire.BytesType))
	b = protowire.AppendVarint(b, uint64(val))
	b = append(b, 1<<3|byte(protowire.BytesType))
	return protowire.AppendString(b, s)
}

func appendNonEmptyKV(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendStringKV(b, lrAttributes, key, s)
}

// appendHexKV appends KeyValue{key, string hex(id)} as field num.
func appendHexKV(b []byte, num protowire.Number, key string, id []byte) []byte {
	n := 2 * len(id)
	val := 1 + protowire.SizeBytes(n)
	kv := stringFieldSize(key) + 1 + protowire.SizeBytes(val)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kv))
	b = appendString(b, 1, key)
	b = append(b, 2<<3|byte(protowire.BytesType))
	b = protowire.AppendVarint(b, uint64(val))
	b = append(b, 1<<3|byte(protowire.BytesType))
	b = protowire.AppendVarint(b, uint64(n))
	return hex.AppendEncode(b, id)
}

// appendIntKV appends KeyValue{key, int n} as field num.
func appendIntKV(b []byte, num protowire.Number, key string, n int64) []byte {
	val := 1 + protowire.SizeVarint(uint64(n))
	kv := stringFieldSize(key) + 1 + protowire.SizeBytes(val)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kv))
	b = appendString(b, 1, key)
	b = append(b, 2<<3|byte(protowire.BytesType))
	b = protowire.AppendVarint(b, uint64(val))
	b = append(b, 3<<3|byte(protowire.VarintType))
	return protowire.AppendVarint(b, uint64(n))
}

func appendNonZeroKV(b []byte, num protowire.Number, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return appendIntKV(b, num, key, n)
}

// beginKV opens KeyValue{key, value: AnyValue} as field num, up to the value's content;
// endKV closes both.
func beginKV(b []byte, num protowire.Number, key string) ([]byte, [2]int) {
	b, kv := beginMsg(b, num)
	b = appendString(b, 1, key)
	b, v := beginMsg(b, 2)
	return b, [2]int{kv, v}
}

func endKV(b []byte, m [2]int) []byte { return endMsg(endMsg(b, m[1]), m[0]) }

// appendLinksKV appends the stw.span.links attribute: an array of kvlists, as
// arena.linksValue builds it.
func appendLinksKV(b []byte, links []bridge.Link) []byte {
	b, m := beginKV(b, lrAttributes, AttrLinks)
	b, arr := beginMsg(b, 5) // array_value
	for i := range links {
		l := &links[i]
		sc := l.SpanContext
		tid, sid := sc.TraceID(), sc.SpanID()
		var el, kl int
		b, el = beginMsg(b, 1) // values
		b, kl = beginMsg(b, 6) // kvlist_value
		b = appendHexKV(b, 1, "trace_id", tid[:])
		b = appendHexKV(b, 1, "span_id", sid[:])
		if sc.TraceState().Len() > 0 {
			b = appendStringKV(b, 1, "trace_state", sc.TraceState().String())
		}
		b = appendIntKV(b, 1, "flags", int64(spanFlags(sc.TraceFlags(), sc.IsRemote())))
		if len(l.Attributes) > 0 {
			b = appendKvlistKV(b, "attributes", l.Attributes)
		}
		b = appendNonZeroKV(b, 1, "dropped_attributes_count", int64(l.DroppedAttributeCount))
		b = endMsg(endMsg(b, kl), el)
	}
	return endKV(endMsg(b, arr), m)
}

// appendKvlistKV appends KeyValue{key, kvlist of attrs} as field 1 of a KeyValueList.
func appendKvlistKV(b []byte, key string, attrs []attribute.KeyValue) []byte {
	b, m := beginKV(b, 1, key)
	b, l := beginMsg(b, 6)
	b = appendKeyValues(b, 1, attrs)
	return endKV(endMsg(b, l), m)
}

// appendSpanEventsKV appends the stw.span.events attribute, as arena.spanEventsValue
// builds it.
func appendSpanEventsKV(b []byte, events []bridge.SpanEvent) []byte {
	b, m := beginKV(b, lrAttributes, AttrEvents)
	b, arr := beginMsg(b, 5)
	for i := range events {
		ev := &events[i]
		var el, kl int
		b, el = beginMsg(b, 1)
		b, kl = beginMsg(b, 6)
		b = appendStringKV(b, 1, "name", ev.Name)
		b = appendIntKV(b, 1, "time_unix_nano", int64(unixNano(ev.Time)))
		if len(ev.Attributes) > 0 {
			b = appendKvlistKV(b, "attributes", ev.Attributes)
		}
		b = appendNonZeroKV(b, 1, "dropped_attributes_count", int64(ev.DroppedAttributeCount))
		b = endMsg(endMsg(b, kl), el)
	}
	return endKV(endMsg(b, arr), m)
}

// appendTriggerInfoKV appends stw.onset.info, as arena.triggerInfoValue builds it;
// nothing when every field is zero.
func appendTriggerInfoKV(b []byte, ti *bridge.TriggerInfo) []byte {
	start := len(b)
	b, m := beginKV(b, lrAttributes, AttrOnsetInfo)
	b, l := beginMsg(b, 6)
	fields := len(b)
	str := func(b []byte, key, s string) []byte {
		if s == "" {
			return b
		}
		return appendStringKV(b, 1, key, s)
	}
	b = str(b, "type", ti.Type)
	b = str(b, "method", ti.Method)
	b = str(b, "url", ti.URL)
	if len(ti.Headers) > 0 {
		var hm [2]int
		var hl int
		b, hm = beginKV(b, 1, "headers")
		b, hl = beginMsg(b, 6)
		for _, h := range ti.Headers {
			b = appendStringKV(b, 1, h.Name, h.Value)
		}
		b = endKV(endMsg(b, hl), hm)
	}
	b = str(b, "cf_json", ti.CfJSON)
	b = str(b, "method_name", ti.MethodName)
	b = str(b, "cron", ti.Cron)
	if !ti.ScheduledTime.IsZero() {
		b = appendIntKV(b, 1, "scheduled_time_unix_nano", int64(unixNano(ti.ScheduledTime)))
	}
	b = str(b, "queue_name", ti.QueueName)
	b = appendNonZeroKV(b, 1, "batch_size", int64(ti.BatchSize))
	b = str(b, "mail_from", ti.MailFrom)
	b = str(b, "rcpt_to", ti.RcptTo)
	b = appendNonZeroKV(b, 1, "raw_size", int64(ti.RawSize))
	b = str(b, "raw", ti.Raw)
	if len(b) == fields {
		return b[:start]
	}
	return endKV(endMsg(b, l), m)
}

// eventUTF8 reports whether every string e's record carries is valid UTF-8 (resource
// and scope aside: scopeUTF8 checks those once per group).
func eventUTF8(e *bridge.Event) bool {
	switch x := e.Body.(type) {
	case *bridge.SpanOpen:
		return utf8.ValidString(x.Name) && attrsUTF8(x.Attributes) && linksUTF8(x.Links)
	case *bridge.UpdateName:
		return utf8.ValidString(x.Name)
	case *bridge.Attributes:
		return attrsUTF8(x.Attributes)
	case *bridge.StatusUpdate:
		return utf8.ValidString(x.Status.Description)
	case *bridge.SpanEndData:
		if !utf8.ValidString(x.Status.Description) || !utf8.ValidString(x.Outcome) ||
			!attrsUTF8(x.Attributes) || !linksUTF8(x.Links) {
			return false
		}
		for i := range x.Events {
			if !utf8.ValidString(x.Events[i].Name) || !attrsUTF8(x.Events[i].Attributes) {
				return false
			}
		}
	case *bridge.Onset:
		ti := &x.Info
		for _, s := range [...]string{x.ExecutionModel, x.ScriptName, x.ScriptVersion, x.Entrypoint,
			x.DispatchNamespace, ti.Type, ti.Method, ti.URL, ti.CfJSON, ti.MethodName, ti.Cron,
			ti.QueueName, ti.MailFrom, ti.RcptTo, ti.Raw} {
			if !utf8.ValidString(s) {
				return false
			}
		}
		for _, s := range x.ScriptTags {
			if !utf8.ValidString(s) {
				return false
			}
		}
		for _, h := range ti.Headers {
			if !utf8.ValidString(h.Name) || !utf8.ValidString(h.Value) {
				return false
			}
		}
		return attrsUTF8(x.Attributes)
	case *bridge.Outcome:
		return utf8.ValidString(x.Outcome)
	case *bridge.Log:
		return utf8.ValidString(x.Level) && utf8.ValidString(x.Message)
	case *bridge.DiagnosticChannel:
		return utf8.ValidString(x.Channel) && utf8.ValidString(x.Message)
	case *bridge.Exception:
		return utf8.ValidString(x.Name) && utf8.ValidString(x.Message) && utf8.ValidString(x.Stack)
	}
	return true
}

// eventsUTF8 reports whether every string the records of events carry, resources and
// scopes included, is valid UTF-8.
func eventsUTF8(events []bridge.Event) bool {
	var (
		lastRes   *resource.Resource
		lastScope *instrumentation.Scope
		checked   bool
	)
	for i := range events {
		e := &events[i]
		if e.Body == nil {
			continue
		}
		if !eventUTF8(e) {
			return false
		}
		if !checked || e.Resource != lastRes || e.Scope != lastScope {
			if !scopeUTF8(e.Resource, e.Scope) {
				return false
			}
			lastRes, lastScope, checked = e.Resource, e.Scope, true
		}
	}
	return true
}

func linksUTF8(links []bridge.Link) bool {
	for i := range links {
		if !attrsUTF8(links[i].Attributes) {
			return false
		}
	}
	return true
}

// errInvalidUTF8 tells queueEventsWire's caller to take the message path, whose
// encoding reports the bad string.
var errInvalidUTF8 = errors.New("otlpexport: a string is not valid UTF-8")

// queueEventsWire encodes events straight to wire format, one request per sender shard
// (by stream) and per WithMaxRequestBytes, and queues them. It returns errInvalidUTF8,
// having queued nothing, when a string of the events is not valid UTF-8.
func (e *Exporter) queueEventsWire(events []bridge.Event) error {
	if !eventsUTF8(events) {
		return errInvalidUTF8
	}
	enc := logsEncoders.Get().(*logsEncoder)
	defer enc.release()
	var shard []uint16
	if len(e.shards) > 1 {
		if cap(enc.shard) < len(events) {
			enc.shard = make([]uint16, len(events))
		}
		shard = enc.shard[:len(events)]
		for i := range events {
			shard[i] = uint16(e.shardOf(events[i].StreamID))
		}
	}
	var errs []error
	for k := range e.shards {
		items := enc.group(events, shard, uint16(k))
		if items == 0 {
			continue
		}
		if enc.hint == 0 {
			enc.hint = 256
		}
		buf, parts := enc.write(make([]byte, 0, items*enc.hint+256), events, e.maxRequestBytes)
		// Room for an eighth more next time: growing the buffer copies it all.
		enc.hint = len(buf)/items + len(buf)/items/8 + 1
		dropped := 0
		for _, p := range parts {
			wire := buf[p.start:p.end:p.end]
			if !e.push(k, &request{signal: signalLogs, wire: wire, items: p.items, bytes: len(wire)}, &e.logs.counters) {
				dropped += p.items
			}
		}
		errs = append(errs, e.dropError(dropped, "log records"))
	}
	return errors.Join(errs...)
}
