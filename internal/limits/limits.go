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

// Options configure a Limiter. Zero takes the default; negative means no limit.
type Options struct {
	MaxAttributeValueLength int
	MaxOpenSpansPerStream   int
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

	mu      sync.Mutex
	streams map[bridge.StreamID]*streamSpans

	truncated, refusedSpans, refusedEvents atomic.Uint64
}

type streamSpans struct {
	open    map[trace.SpanID]struct{}
	refused map[trace.SpanID]struct{}
}

// New returns a Limiter.
func New(opts Options) *Limiter {
	if opts.MaxAttributeValueLength == 0 {
		opts.MaxAttributeValueLength = DefaultMaxAttributeValueLength
	}
	if opts.MaxOpenSpansPerStream == 0 {
		opts.MaxOpenSpansPerStream = DefaultMaxOpenSpansPerStream
	}
	return &Limiter{opts: opts, streams: map[bridge.StreamID]*streamSpans{}}
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
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.streams[e.StreamID]
	if s == nil {
		if k != bridge.KindSpanOpen && k != bridge.KindOnset {
			return false
		}
		s = &streamSpans{open: map[trace.SpanID]struct{}{}}
		l.streams[e.StreamID] = s
	}
	_, refused := s.refused[e.SpanID]
	switch k {
	case bridge.KindSpanOpen, bridge.KindOnset:
		if refused {
			return true
		}
		if _, ok := s.open[e.SpanID]; ok {
			return false // a duplicate: the assembler drops it
		}
		if len(s.open) >= l.opts.MaxOpenSpansPerStream {
			// Remember refused spans (bounded) so their later events go too.
			if len(s.refused) < l.opts.MaxOpenSpansPerStream {
				if s.refused == nil {
					s.refused = map[trace.SpanID]struct{}{}
				}
				s.refused[e.SpanID] = struct{}{}
			}
			l.refusedSpans.Add(1)
			return true
		}
		s.open[e.SpanID] = struct{}{}
	case bridge.KindSpanEnd, bridge.KindOutcome:
		if refused {
			delete(s.refused, e.SpanID)
			l.gc(e.StreamID, s)
			return true
		}
		delete(s.open, e.SpanID)
		l.gc(e.StreamID, s)
	default:
		return refused
	}
	return false
}

func (l *Limiter) gc(id bridge.StreamID, s *streamSpans) {
	if len(s.open) == 0 && len(s.refused) == 0 {
		delete(l.streams, id)
	}
}

// Release forgets spans the assembler emitted (complete or unfinished), so spans that
// never got an end stop counting against their stream.
func (l *Limiter) Release(spans []bridge.Span) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range spans {
		if s := l.streams[spans[i].StreamID]; s != nil {
			delete(s.open, spans[i].SpanID)
			l.gc(spans[i].StreamID, s)
		}
	}
}

// OpenSpans returns the spans counted open across streams.
func (l *Limiter) OpenSpans() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.streams {
		n += len(s.open)
	}
	return n
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
