// Package limits applies the forwarder's per-event limits before events enter the
// pipeline: attribute values longer than a bound are cut (at a UTF-8 boundary), and a
// producer (a stream) cannot hold more than a bound of spans open at once. What is cut
// or refused is counted. A refused event is replaced by a StreamDiagnostic at its
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
)

// Options configure a Limiter. Zero fields take the defaults; negative means no limit.
type Options struct {
	// MaxAttributeValueLength is the longest string value kept, in bytes. Default
	// DefaultMaxAttributeValueLength.
	MaxAttributeValueLength int
	// MaxOpenSpansPerStream bounds the spans one producer stream holds open. Default
	// DefaultMaxOpenSpansPerStream.
	MaxOpenSpansPerStream int
}

// Option changes Options.
type Option func(*Options)

// WithMaxAttributeValueLength sets the longest string value kept, in bytes; n < 0
// means no limit.
func WithMaxAttributeValueLength(n int) Option {
	return func(o *Options) { o.MaxAttributeValueLength = n }
}

// WithMaxOpenSpansPerStream bounds the spans one producer stream holds open; n < 0
// means no limit.
func WithMaxOpenSpansPerStream(n int) Option {
	return func(o *Options) { o.MaxOpenSpansPerStream = n }
}

// Stats count what the limits cut.
type Stats struct {
	TruncatedValues uint64 // attribute values cut to MaxAttributeValueLength
	RefusedSpans    uint64 // spans refused because their stream had MaxOpenSpansPerStream open
	RefusedEvents   uint64 // events of refused spans (their open included) replaced by a diagnostic
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

	truncated, refusedSpans, refusedEvents atomic.Uint64
}

type streamSpan struct {
	stream bridge.StreamID
	span   trace.SpanID
}

// streamCount counts a stream's spans in Limiter.open and Limiter.refused.
type streamCount struct{ open, refused int }

// New returns a Limiter.
func New(options ...Option) *Limiter {
	var opts Options
	for _, o := range options {
		o(&opts)
	}
	if opts.MaxAttributeValueLength == 0 {
		opts.MaxAttributeValueLength = DefaultMaxAttributeValueLength
	}
	if opts.MaxOpenSpansPerStream == 0 {
		opts.MaxOpenSpansPerStream = DefaultMaxOpenSpansPerStream
	}
	return &Limiter{opts: opts, open: map[streamSpan]struct{}{}, refused: map[streamSpan]struct{}{},
		streams: map[bridge.StreamID]streamCount{}}
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	return Stats{TruncatedValues: l.truncated.Load(), RefusedSpans: l.refusedSpans.Load(), RefusedEvents: l.refusedEvents.Load()}
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
	if l.opts.MaxAttributeValueLength > 0 {
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

// truncate returns e with string values cut; e itself is shared and left alone.
func (l *Limiter) truncate(e bridge.Event) bridge.Event {
	switch b := e.Body.(type) {
	case *bridge.SpanOpen:
		if attrs, ok := l.cut(b.Attributes); ok {
			c := *b
			c.Attributes = attrs
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
		if changed || events != nil {
			c := *b
			if changed {
				c.Attributes = attrs
			}
			if events != nil {
				c.Events = events
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

// cut returns attrs with long string values cut, and whether anything changed (attrs is
// then a copy).
func (l *Limiter) cut(attrs []attribute.KeyValue) ([]attribute.KeyValue, bool) {
	maxLen := l.opts.MaxAttributeValueLength
	var out []attribute.KeyValue
	for i, kv := range attrs {
		var nv attribute.Value
		switch kv.Value.Type() {
		case attribute.STRING:
			s := kv.Value.AsString()
			if len(s) <= maxLen {
				continue
			}
			nv = attribute.StringValue(cutUTF8(s, maxLen))
			l.truncated.Add(1)
		case attribute.STRINGSLICE:
			ss := kv.Value.AsStringSlice()
			long := false
			for j, s := range ss {
				if len(s) > maxLen {
					ss[j] = cutUTF8(s, maxLen) // AsStringSlice returns a copy
					long = true
				}
			}
			if !long {
				continue
			}
			nv = attribute.StringSliceValue(ss)
			l.truncated.Add(1)
		default:
			continue
		}
		if out == nil {
			out = append([]attribute.KeyValue(nil), attrs...)
		}
		out[i] = attribute.KeyValue{Key: kv.Key, Value: nv}
	}
	if out == nil {
		return attrs, false
	}
	return out, true
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
