package processor

import (
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// limits are the attribute limits applied to every event the processor publishes.
type limits struct {
	maxAttrs  int // < 0: no limit
	maxLength int // bytes; < 0: no limit
}

// apply returns attrs within the limits, how many attributes it dropped and how many
// values it cut. It returns attrs itself when nothing is over a limit, and a sub-slice
// when only the count is: both safe because callers pass slices nobody writes again.
// Only a value over the length limit costs a copy.
func (l limits) apply(attrs []attribute.KeyValue) (out []attribute.KeyValue, dropped, cut int) {
	if l.maxAttrs >= 0 && len(attrs) > l.maxAttrs {
		dropped = len(attrs) - l.maxAttrs
		attrs = attrs[:l.maxAttrs:l.maxAttrs]
	}
	if l.maxLength < 0 {
		return attrs, dropped, 0
	}
	for i := range attrs {
		// tooLong by hand: this loop runs for every attribute of every span.
		if v := &attrs[i].Value; v.Type() == attribute.STRING {
			if len(v.AsString()) <= l.maxLength {
				continue
			}
		} else if !l.tooLong(v) {
			continue
		}
		out = make([]attribute.KeyValue, len(attrs))
		copy(out, attrs)
		for j := i; j < len(out); j++ {
			if l.tooLong(&out[j].Value) {
				out[j].Value = l.truncate(out[j].Value)
				cut++
			}
		}
		return out, dropped, cut
	}
	return attrs, dropped, 0
}

// tooLong reports whether v holds a string or bytes longer than the limit. The common
// case, a string, stays cheap enough to inline.
func (l limits) tooLong(v *attribute.Value) bool {
	if t := v.Type(); t != attribute.STRING {
		return (t == attribute.STRINGSLICE || t == attribute.BYTESLICE) && l.sliceTooLong(v)
	}
	return len(v.AsString()) > l.maxLength
}

func (l limits) sliceTooLong(v *attribute.Value) bool {
	if v.Type() == attribute.BYTESLICE {
		return len(v.AsByteSlice()) > l.maxLength
	}
	for _, s := range v.AsStringSlice() {
		if len(s) > l.maxLength {
			return true
		}
	}
	return false
}

// truncate cuts the strings or bytes of v to the limit.
func (l limits) truncate(v attribute.Value) attribute.Value {
	switch v.Type() {
	case attribute.STRING:
		return attribute.StringValue(truncateUTF8(v.AsString(), l.maxLength))
	case attribute.STRINGSLICE:
		ss := v.AsStringSlice()
		for i, s := range ss {
			ss[i] = truncateUTF8(s, l.maxLength)
		}
		return attribute.StringSliceValue(ss)
	case attribute.BYTESLICE:
		return attribute.ByteSliceValue(v.AsByteSlice()[:l.maxLength])
	}
	return v
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	// Step back over continuation bytes (at most UTFMax-1 of them) to the start of
	// the rune that straddles n.
	for cut > 0 && cut > n-utf8.UTFMax+1 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = n // not UTF-8 here: cut where asked
	}
	return s[:cut]
}

// changedAttrs returns the attributes of end that are not in open with the same value:
// those added or changed since the span opened. Both slices are deduplicated, as the
// SDK hands them out.
func changedAttrs(open, end []attribute.KeyValue) []attribute.KeyValue {
	if len(end) == 0 {
		return nil
	}
	// The SDK copies its attribute slice before any change once it has handed it out,
	// so the same backing array with the same length means nothing changed.
	if len(open) == len(end) && &open[0] == &end[0] {
		return nil
	}
	if len(open) == 0 {
		return end
	}
	var out []attribute.KeyValue
	if len(open)*len(end) <= 256 {
		for i, kv := range end {
			if !containsKV(open, kv) {
				if out == nil {
					out = make([]attribute.KeyValue, 0, len(end)-i)
				}
				out = append(out, kv)
			}
		}
		return out
	}
	known := make(map[attribute.Key]attribute.Value, len(open))
	for _, kv := range open {
		known[kv.Key] = kv.Value
	}
	for _, kv := range end {
		if v, ok := known[kv.Key]; !ok || v != kv.Value {
			out = append(out, kv)
		}
	}
	return out
}

func containsKV(attrs []attribute.KeyValue, kv attribute.KeyValue) bool {
	for _, a := range attrs {
		if a.Key == kv.Key {
			return a.Value == kv.Value
		}
	}
	return false
}

// links converts SDK links, applying the limits to their attributes.
func (p *Processor) links(in []sdktrace.Link) []bridge.Link {
	if len(in) == 0 {
		return nil
	}
	out := make([]bridge.Link, len(in))
	for i, l := range in {
		attrs, dropped := p.limitAttrs(l.Attributes)
		out[i] = bridge.Link{
			SpanContext:           l.SpanContext,
			Attributes:            attrs,
			DroppedAttributeCount: l.DroppedAttributeCount + dropped,
		}
	}
	return out
}

// events converts SDK span events, applying the limits to their attributes.
func (p *Processor) events(in []sdktrace.Event) []bridge.SpanEvent {
	if len(in) == 0 {
		return nil
	}
	out := make([]bridge.SpanEvent, len(in))
	for i, e := range in {
		attrs, dropped := p.limitAttrs(e.Attributes)
		out[i] = bridge.SpanEvent{
			Name:                  e.Name,
			Time:                  e.Time,
			Attributes:            attrs,
			DroppedAttributeCount: e.DroppedAttributeCount + dropped,
		}
	}
	return out
}

// limitAttrs applies the limits and counts what they cost.
func (p *Processor) limitAttrs(attrs []attribute.KeyValue) ([]attribute.KeyValue, int) {
	out, dropped, cut := p.limits.apply(attrs)
	if dropped > 0 {
		p.attrsDropped.Add(uint64(dropped))
	}
	if cut > 0 {
		p.attrsTruncated.Add(uint64(cut))
	}
	return out, dropped
}
