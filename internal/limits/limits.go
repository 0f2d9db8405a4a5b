// Package limits applies the forwarder's per-event limits before events enter the
// pipeline: attribute values longer than a bound are cut (at a UTF-8 boundary), and
// counted. The limits are stateless; the bound of open spans per stream is the
// assembler's (bridge.WithMaxOpenSpansPerStream).
package limits

import (
	"sync/atomic"
	"unicode/utf8"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
)

// Defaults.
const (
	// DefaultMaxAttributeValueLength is the longest string value kept, in bytes (16 KiB,
	// as the SDK-side processor's default).
	DefaultMaxAttributeValueLength = 16 << 10
)

// Options configure a Limiter. Zero fields take the defaults; negative means no limit.
type Options struct {
	// MaxAttributeValueLength is the longest string value kept, in bytes. Default
	// DefaultMaxAttributeValueLength.
	MaxAttributeValueLength int
}

// Option changes Options.
type Option func(*Options)

// WithMaxAttributeValueLength sets the longest string value kept, in bytes; n < 0
// means no limit.
func WithMaxAttributeValueLength(n int) Option {
	return func(o *Options) { o.MaxAttributeValueLength = n }
}

// Stats count what the limits cut.
type Stats struct {
	TruncatedValues uint64 // attribute values cut to MaxAttributeValueLength
}

// Limiter applies the limits. It is safe for concurrent use.
type Limiter struct {
	opts      Options
	truncated atomic.Uint64
}

// New returns a Limiter.
func New(options ...Option) *Limiter {
	var opts Options
	for _, o := range options {
		o(&opts)
	}
	if opts.MaxAttributeValueLength == 0 {
		opts.MaxAttributeValueLength = DefaultMaxAttributeValueLength
	}
	return &Limiter{opts: opts}
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	return Stats{TruncatedValues: l.truncated.Load()}
}

// Apply returns e within the limits: unchanged, or with long values cut (a copy; e is
// not modified).
func (l *Limiter) Apply(e bridge.Event) bridge.Event {
	if l.opts.MaxAttributeValueLength > 0 {
		e = l.truncate(e)
	}
	return e
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
