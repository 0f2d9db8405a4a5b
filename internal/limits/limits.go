// Package limits applies the forwarder's per-event limits before events enter the
// pipeline: string and byte values longer than a bound are cut (at a UTF-8 boundary),
// at any depth of arrays and maps; the attributes of one list (a span's, a span
// event's or a link's) past a total size are dropped; and a producer (a stream) cannot
// hold more than a bound of spans open at once. What is cut or refused is counted. A refused event is replaced by a StreamDiagnostic at its
// sequence number, so the stream stays gapless and the drop is reported in the stream
// itself, as workerd's droppedEvents.
package limits

import (
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Defaults.
const (
	// DefaultMaxAttributeValueLength is the longest string value kept, in bytes (16 KiB,
	// as the SDK-side processor's default).
	DefaultMaxAttributeValueLength = 16 << 10
	// DefaultMaxOpenSpansPerStream bounds the spans one producer stream holds open.
	DefaultMaxOpenSpansPerStream = 10_000
	// DefaultMaxAttributesBytes bounds the total size of one event's attributes (keys,
	// strings and bytes at any depth, 8 per number), in bytes (1 MiB).
	DefaultMaxAttributesBytes = 1 << 20
)

// Options configure a Limiter. Zero takes the default; negative means no limit.
type Options struct {
	// MaxAttributeValueLength cuts every string and byte value, at any depth of
	// arrays and maps, to this many bytes. Default DefaultMaxAttributeValueLength.
	MaxAttributeValueLength int
	// MaxOpenSpansPerStream bounds the spans one stream holds open. Default
	// DefaultMaxOpenSpansPerStream.
	MaxOpenSpansPerStream int
	// MaxAttributesBytes bounds the total size of one event's attributes (after the
	// cut above); the attributes past it are dropped. Default DefaultMaxAttributesBytes.
	MaxAttributesBytes int
}

// Stats count what the limits cut.
type Stats struct {
	TruncatedValues   uint64 // string and byte values cut to MaxAttributeValueLength, at any depth
	DroppedAttributes uint64 // attributes dropped because their event was over MaxAttributesBytes
	RefusedSpans      uint64 // spans refused because their stream had MaxOpenSpansPerStream open
	RefusedEvents     uint64 // events of refused spans (their open included) replaced by a diagnostic
}

// Limiter applies the limits. It is safe for concurrent use.
type Limiter struct {
	opts Options

	// One set of open spans and one of refused spans for all streams, and a count of
	// each per stream: no allocation per stream or span once the maps have grown.
	mu      sync.Mutex
	open    map[streamSpan]struct{}
	refused map[streamSpan]struct{}
	streams map[bridge.StreamID]streamCount // absent when both counts are zero

	truncated, droppedAttrs, refusedSpans, refusedEvents atomic.Uint64
}

type streamSpan struct {
	stream bridge.StreamID
	span   trace.SpanID
}

// streamCount counts a stream's spans in Limiter.open and Limiter.refused.
type streamCount struct{ open, refused int }

// New returns a Limiter.
func New(opts Options) *Limiter {
	if opts.MaxAttributeValueLength == 0 {
		opts.MaxAttributeValueLength = DefaultMaxAttributeValueLength
	}
	if opts.MaxOpenSpansPerStream == 0 {
		opts.MaxOpenSpansPerStream = DefaultMaxOpenSpansPerStream
	}
	if opts.MaxAttributesBytes == 0 {
		opts.MaxAttributesBytes = DefaultMaxAttributesBytes
	}
	return &Limiter{opts: opts, open: map[streamSpan]struct{}{}, refused: map[streamSpan]struct{}{},
		streams: map[bridge.StreamID]streamCount{}}
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	return Stats{TruncatedValues: l.truncated.Load(), DroppedAttributes: l.droppedAttrs.Load(), RefusedSpans: l.refusedSpans.Load(), RefusedEvents: l.refusedEvents.Load()}
}

// Apply returns e within the limits: unchanged, with long values cut (a copy; e is
// not modified), or replaced by a StreamDiagnostic when its span was refused.
func (l *Limiter) Apply(e bridge.Event) bridge.Event {
	if l.opts.MaxOpenSpansPerStream > 0 && e.StreamID.IsValid() && e.SpanID.IsValid() {
		if l.refuse(e) {
			l.refusedEvents.Add(1)
			return bridge.Event{TraceID: e.TraceID, SpanID: e.SpanID, StreamID: e.StreamID, Sequence: e.Sequence,
				Time: e.Time, Resource: e.Resource, Scope: e.Scope, Body: &bridge.StreamDiagnostic{DroppedEvents: 1}}
		}
	}
	if l.opts.MaxAttributeValueLength > 0 || l.opts.MaxAttributesBytes > 0 {
		e = l.truncate(e)
	}
	return e
}

// refuse tracks open spans per stream and reports whether e belongs to a refused span.
func (l *Limiter) refuse(e bridge.Event) bool {
	k := e.Kind()
	key := streamSpan{e.StreamID, e.SpanID}
	opening := k == bridge.KindSpanOpen || k == bridge.KindOnset
	l.mu.Lock()
	defer l.mu.Unlock()
	was, known := l.streams[e.StreamID]
	if !known && !opening {
		return false
	}
	c := was
	refused := false
	if c.refused > 0 {
		_, refused = l.refused[key]
	}
	switch {
	case opening && !refused:
		if c.open < l.opts.MaxOpenSpansPerStream {
			if l.track(key, k) {
				c.open++
			} // else a duplicate: the assembler drops it
			break
		}
		if _, dup := l.open[key]; !dup {
			// Remember refused spans (bounded) so their later events go too.
			if c.refused < l.opts.MaxOpenSpansPerStream {
				l.refused[key] = struct{}{}
				c.refused++
			}
			l.refusedSpans.Add(1)
			refused = true
		}
	case k == bridge.KindSpanEnd || k == bridge.KindOutcome:
		if refused {
			delete(l.refused, key)
			c.refused--
		} else if l.track(key, k) {
			c.open--
		}
	}
	if c != was || !known {
		l.setCount(e.StreamID, c)
	}
	return refused
}

// track adds an opening span to the open set or takes an ending one out, with one map
// operation, and reports whether the set changed (not so for a duplicate open, or the
// end of a span not open). Called with l.mu held.
func (l *Limiter) track(key streamSpan, k bridge.Kind) bool {
	n := len(l.open)
	switch k {
	case bridge.KindSpanOpen, bridge.KindOnset:
		l.open[key] = struct{}{}
	case bridge.KindSpanEnd, bridge.KindOutcome:
		delete(l.open, key)
	}
	return len(l.open) != n
}

// setCount stores the counts of a stream, forgetting it when both are zero. Called
// with l.mu held.
func (l *Limiter) setCount(id bridge.StreamID, c streamCount) {
	if c.open == 0 && c.refused == 0 {
		delete(l.streams, id)
		return
	}
	l.streams[id] = c
}

// Release forgets spans the assembler emitted (complete or unfinished), so spans that
// never got an end stop counting against their stream.
func (l *Limiter) Release(spans []bridge.Span) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range spans {
		key := streamSpan{spans[i].StreamID, spans[i].SpanID}
		if l.track(key, bridge.KindSpanEnd) {
			c := l.streams[key.stream]
			c.open--
			l.setCount(key.stream, c)
		}
	}
}

// OpenSpans returns the spans counted open across streams.
func (l *Limiter) OpenSpans() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// truncate returns e with its attributes within the limits; e itself is shared and
// left alone.
func (l *Limiter) truncate(e bridge.Event) bridge.Event {
	switch b := e.Body.(type) {
	case *bridge.SpanOpen:
		attrs, changed := l.cut(b.Attributes)
		links := l.cutLinks(b.Links)
		if changed || links != nil {
			c := *b
			c.Attributes = attrs
			if links != nil {
				c.Links = links
			}
			e.Body = &c
		}
	case *bridge.Attributes:
		if attrs, ok := l.cut(b.Attributes); ok {
			e.Body = &bridge.Attributes{Attributes: attrs}
		}
	case *bridge.SpanEndData:
		attrs, changed := l.cut(b.Attributes)
		var events []bridge.SpanEvent
		for i, ev := range b.Events {
			if ea, ok := l.cut(ev.Attributes); ok {
				if events == nil {
					events = append([]bridge.SpanEvent(nil), b.Events...)
				}
				events[i].Attributes = ea
			}
		}
		links := l.cutLinks(b.Links)
		if changed || events != nil || links != nil {
			c := *b
			c.Attributes = attrs
			if events != nil {
				c.Events = events
			}
			if links != nil {
				c.Links = links
			}
			e.Body = &c
		}
	case *bridge.Onset:
		if attrs, ok := l.cut(b.Attributes); ok {
			c := *b
			c.Attributes = attrs
			e.Body = &c
		}
	}
	return e
}

// cutLinks returns a copy of links with their attributes within the limits, nil when
// none changed.
func (l *Limiter) cutLinks(links []bridge.Link) []bridge.Link {
	var out []bridge.Link
	for i, ln := range links {
		if la, ok := l.cut(ln.Attributes); ok {
			if out == nil {
				out = append([]bridge.Link(nil), links...)
			}
			out[i].Attributes = la
		}
	}
	return out
}

// cut returns attrs within the limits, and whether anything changed (attrs is then a
// copy): every string and byte value, at any depth of arrays and maps, is cut to
// MaxAttributeValueLength, and the attributes past MaxAttributesBytes are dropped.
func (l *Limiter) cut(attrs []attribute.KeyValue) ([]attribute.KeyValue, bool) {
	var out []attribute.KeyValue
	if maxLen := l.opts.MaxAttributeValueLength; maxLen > 0 {
		for i, kv := range attrs {
			nv, cuts := cutValue(kv.Value, maxLen)
			if cuts == 0 {
				continue
			}
			l.truncated.Add(uint64(cuts))
			if out == nil {
				out = append([]attribute.KeyValue(nil), attrs...)
			}
			out[i] = attribute.KeyValue{Key: kv.Key, Value: nv}
		}
	}
	if out != nil {
		attrs = out
	}
	if budget := l.opts.MaxAttributesBytes; budget > 0 {
		total := 0
		for i, kv := range attrs {
			total += len(kv.Key) + valueSize(kv.Value)
			if total > budget {
				l.droppedAttrs.Add(uint64(len(attrs) - i))
				return attrs[:i:i], true
			}
		}
	}
	return attrs, out != nil
}

// cutValue returns v with every string and byte value in it cut to maxLen bytes, and
// how many values were cut (v itself when none).
func cutValue(v attribute.Value, maxLen int) (attribute.Value, int) {
	switch v.Type() {
	case attribute.STRING:
		if s := v.AsString(); len(s) > maxLen {
			return attribute.StringValue(cutUTF8(s, maxLen)), 1
		}
	case attribute.BYTESLICE:
		if b := v.AsByteSlice(); len(b) > maxLen { // AsByteSlice returns a copy
			return attribute.ByteSliceValue(b[:maxLen]), 1
		}
	case attribute.STRINGSLICE:
		ss := v.AsStringSlice() // a copy
		cuts := 0
		for j, s := range ss {
			if len(s) > maxLen {
				ss[j] = cutUTF8(s, maxLen)
				cuts++
			}
		}
		if cuts > 0 {
			return attribute.StringSliceValue(ss), cuts
		}
	case attribute.SLICE:
		vs := v.AsSlice() // a copy
		cuts := 0
		for j := range vs {
			var n int
			vs[j], n = cutValue(vs[j], maxLen)
			cuts += n
		}
		if cuts > 0 {
			return attribute.SliceValue(vs...), cuts
		}
	case attribute.MAP:
		kvs := v.AsMap() // a copy
		cuts := 0
		for j := range kvs {
			var n int
			kvs[j].Value, n = cutValue(kvs[j].Value, maxLen)
			cuts += n
		}
		if cuts > 0 {
			return attribute.MapValue(kvs...), cuts
		}
	}
	return v, 0
}

// valueSize estimates the bytes v holds: its strings and bytes, 8 per number.
func valueSize(v attribute.Value) int {
	switch v.Type() {
	case attribute.STRING:
		return len(v.AsString())
	case attribute.BYTESLICE:
		return len(v.AsByteSlice())
	case attribute.STRINGSLICE:
		n := 0
		for _, s := range v.AsStringSlice() {
			n += len(s)
		}
		return n
	case attribute.BOOLSLICE:
		return len(v.AsBoolSlice())
	case attribute.INT64SLICE:
		return 8 * len(v.AsInt64Slice())
	case attribute.FLOAT64SLICE:
		return 8 * len(v.AsFloat64Slice())
	case attribute.SLICE:
		n := 0
		for _, e := range v.AsSlice() {
			n += valueSize(e)
		}
		return n
	case attribute.MAP:
		n := 0
		for _, kv := range v.AsMap() {
			n += len(kv.Key) + valueSize(kv.Value)
		}
		return n
	}
	return 8
}

// cutUTF8 cuts s to at most n bytes without splitting a rune.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
