// Package limits applies the forwarder's per-event limits before events enter the
// pipeline: string and byte values longer than a bound are cut (at a UTF-8 boundary),
// at any depth of arrays and maps, and the attributes of one list (a span's, a span
// event's or a link's) past a total size are dropped. What is cut is counted. The
// limits are stateless; the bound of open spans per stream is the assembler's
// (bridge.WithMaxOpenSpansPerStream).
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
	// DefaultMaxAttributesBytes bounds the total size of one event's attributes (keys,
	// strings and bytes at any depth, 8 per number), in bytes (1 MiB).
	DefaultMaxAttributesBytes = 1 << 20
)

// Options configure a Limiter. Zero fields take the defaults; negative means no limit.
type Options struct {
	// MaxAttributeValueLength cuts every string and byte value, at any depth of
	// arrays and maps, to this many bytes. Default DefaultMaxAttributeValueLength.
	MaxAttributeValueLength int
	// MaxAttributesBytes bounds the total size of one event's attributes (after the
	// cut above); the attributes past it are dropped. Default DefaultMaxAttributesBytes.
	MaxAttributesBytes int
}

// Option changes Options.
type Option func(*Options)

// WithMaxAttributeValueLength sets the longest string or byte value kept, in bytes;
// n < 0 means no limit.
func WithMaxAttributeValueLength(n int) Option {
	return func(o *Options) { o.MaxAttributeValueLength = n }
}

// WithMaxAttributesBytes bounds the total size of one attribute list, in bytes; n < 0
// means no limit.
func WithMaxAttributesBytes(n int) Option {
	return func(o *Options) { o.MaxAttributesBytes = n }
}

// Stats count what the limits cut.
type Stats struct {
	TruncatedValues   uint64 // string and byte values cut to MaxAttributeValueLength, at any depth
	DroppedAttributes uint64 // attributes dropped because their list was over MaxAttributesBytes
}

// Limiter applies the limits. It is safe for concurrent use.
type Limiter struct {
	opts                    Options
	truncated, droppedAttrs atomic.Uint64
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
	if opts.MaxAttributesBytes == 0 {
		opts.MaxAttributesBytes = DefaultMaxAttributesBytes
	}
	return &Limiter{opts: opts}
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	return Stats{TruncatedValues: l.truncated.Load(), DroppedAttributes: l.droppedAttrs.Load()}
}

// Apply returns e within the limits: unchanged, or with long values cut and
// attributes past the size bound dropped (a copy; e is not modified).
func (l *Limiter) Apply(e bridge.Event) bridge.Event {
	if l.opts.MaxAttributeValueLength > 0 || l.opts.MaxAttributesBytes > 0 {
		e = l.truncate(e)
	}
	return e
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
	case *bridge.CompleteSpan:
		if b.Open == nil || b.End == nil {
			break
		}
		open := l.truncate(bridge.Event{Body: b.Open}).Body.(*bridge.SpanOpen)
		end := l.truncate(bridge.Event{Body: b.End}).Body.(*bridge.SpanEndData)
		if open != b.Open || end != b.End {
			c := *b
			c.Open, c.End = open, end
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
