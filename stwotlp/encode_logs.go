package stwotlp

import (
	"encoding/hex"
	"slices"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

func stringFieldSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
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
	lrObservedTime   = 11
	lrEventName      = 12
)

// appendRecordWire appends e as field 2 (log_records) of a ScopeLogs, fields in
// field-number order.
func appendRecordWire(b []byte, e *bridge.Event) []byte {
	b, m := beginMsg(b, 2)
	// A stw.span's time is its start; its end travels as the observed time.
	recordTime, observed := e.Time, time.Time{}
	if c, ok := e.Body.(*bridge.CompleteSpan); ok {
		recordTime, observed = c.Start, e.Time
	}
	if t := unixNano(recordTime); t != 0 {
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
	case *bridge.CompleteSpan:
		bodyAttrs, flags = mergeAttributes(x.Open.Attributes, x.End.Attributes), uint32(x.Open.TraceFlags)
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
		b = appendBodyKVs(b, bodyAttrs)
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
	if t := unixNano(observed); t != 0 {
		b = protowire.AppendTag(b, lrObservedTime, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, t)
	}
	b = appendString(b, lrEventName, EventName(e.Kind()))
	return endMsg(b, m)
}

// appendBodyKVs appends attrs as the KeyValues of a record body's kvlist, as
// appendKeyValues would: string values, the common case, by their known sizes
// (appendStringKV), without reserving lengths to patch.
func appendBodyKVs(b []byte, attrs []attribute.KeyValue) []byte {
	for _, kv := range attrs {
		if kv.Value.Type() == attribute.STRING {
			b = appendStringKV(b, 1, validUTF8(string(kv.Key)), kv.Value.AsString())
		} else {
			b = appendKeyValue(b, 1, string(kv.Key), kv.Value)
		}
	}
	return b
}

// appendRecordAttrs appends the record attributes of e (field 6), envelope first.
func appendRecordAttrs(b []byte, e *bridge.Event) []byte {
	if c, ok := e.Body.(*bridge.CompleteSpan); !ok || !c.Alone {
		// On every record but a span alone in its stream (version 1.1).
		b = appendHexKV(b, lrAttributes, AttrStreamID, e.StreamID[:])
		b = appendIntKV(b, lrAttributes, AttrSequence, int64(e.Sequence))
	}
	switch x := e.Body.(type) {
	case *bridge.SpanOpen:
		b = appendSpanOpenKVs(b, x, x.Links)
	case *bridge.UpdateName:
		b = appendStringKV(b, lrAttributes, AttrSpanName, x.Name)
	case *bridge.StatusUpdate:
		b = appendIntKV(b, lrAttributes, AttrStatusCode, statusCodeWire(x.Status.Code))
		b = appendNonEmptyKV(b, AttrStatusMessage, x.Status.Description)
	case *bridge.SpanEndData:
		b = appendSpanEndKVs(b, x, x.Links)
	case *bridge.CompleteSpan:
		b = appendSpanOpenKVs(b, x.Open, nil)
		b = appendSpanEndKVs(b, x.End, concatLinks(x.Open.Links, x.End.Links))
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

// appendSpanOpenKVs appends the record attributes of a span's opening: its name,
// parent, kind, trace state, remote parent, and links.
func appendSpanOpenKVs(b []byte, x *bridge.SpanOpen, links []bridge.Link) []byte {
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
	if len(links) > 0 {
		b = appendLinksKV(b, links)
	}
	return b
}

// appendSpanEndKVs appends the record attributes of a span's end: status, events,
// links, counts, and the unfinished, outcome and stream-continues marks.
func appendSpanEndKVs(b []byte, x *bridge.SpanEndData, links []bridge.Link) []byte {
	if x.Status.Code != codes.Unset {
		b = appendIntKV(b, lrAttributes, AttrStatusCode, statusCodeWire(x.Status.Code))
	}
	b = appendNonEmptyKV(b, AttrStatusMessage, x.Status.Description)
	if len(x.Events) > 0 {
		b = appendSpanEventsKV(b, x.Events)
	}
	if len(links) > 0 {
		b = appendLinksKV(b, links)
	}
	b = appendNonZeroKV(b, lrAttributes, AttrDroppedAttributes, int64(x.DroppedAttributes))
	b = appendNonZeroKV(b, lrAttributes, AttrDroppedEvents, int64(x.DroppedEvents))
	b = appendNonZeroKV(b, lrAttributes, AttrDroppedLinks, int64(x.DroppedLinks))
	b = appendNonZeroKV(b, lrAttributes, AttrChildSpanCount, int64(x.ChildSpanCount))
	if x.Unfinished {
		b = appendKeyValue(b, lrAttributes, AttrUnfinished, attribute.BoolValue(true))
	}
	b = appendNonEmptyKV(b, AttrSpanOutcome, x.Outcome)
	if x.StreamContinues {
		b = appendKeyValue(b, lrAttributes, AttrStreamContinues, attribute.BoolValue(true))
	}
	return b
}

// mergeAttributes returns the attributes of later merged over those of earlier (a key
// of later replaces the same key of earlier, in place); one of them when the other is
// empty.
func mergeAttributes(earlier, later []attribute.KeyValue) []attribute.KeyValue {
	if len(later) == 0 {
		return earlier
	}
	if len(earlier) == 0 {
		return later
	}
	out := make([]attribute.KeyValue, len(earlier), len(earlier)+len(later))
	copy(out, earlier)
	for _, kv := range later {
		i := slices.IndexFunc(out, func(o attribute.KeyValue) bool { return o.Key == kv.Key })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// concatLinks returns the links of a span's opening followed by those added later.
func concatLinks(open, added []bridge.Link) []bridge.Link {
	if len(added) == 0 {
		return open
	}
	if len(open) == 0 {
		return added
	}
	return append(slices.Clip(open), added...)
}

// appendStringKV appends KeyValue{key, string s} as field num; sizes are known, so no
// length is reserved and patched. key must be valid UTF-8.
func appendStringKV(b []byte, num protowire.Number, key, s string) []byte {
	s = validUTF8(s)
	val := 1 + protowire.SizeBytes(len(s))
	kv := stringFieldSize(key) + 1 + protowire.SizeBytes(val)
	if kv < 0x80 && num < 16 && key != "" {
		// The common short pair: every tag and length is one byte.
		b = append(b, byte(num)<<3|byte(protowire.BytesType), byte(kv), 1<<3|byte(protowire.BytesType), byte(len(key)))
		b = append(b, key...)
		b = append(b, 2<<3|byte(protowire.BytesType), byte(val), 1<<3|byte(protowire.BytesType), byte(len(s)))
		return append(b, s...)
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kv))
	b = appendRawString(b, 1, key)
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
	b = appendRawString(b, 1, key)
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
	b = appendRawString(b, 1, key)
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

// appendLinksKV appends the stw.span.links attribute: an array of kvlists.
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

// appendSpanEventsKV appends the stw.span.events attribute.
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

// appendTriggerInfoKV appends stw.onset.info, a kvlist of the trigger's non-zero
// fields; nothing when every field is zero.
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
			b = appendStringKV(b, 1, validUTF8(h.Name), h.Value)
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
