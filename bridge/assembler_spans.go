package bridge

import (
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// apply applies one event, in order, to the state of its span or stream.
func (a *Assembler) apply(s *streamState, e Event) {
	key := spanKey{e.TraceID, e.SpanID}
	switch b := e.Body.(type) {
	case *SpanOpen:
		a.chooseRoot(s, key, b)
		a.openSpan(s, e, b)
	case *UpdateName:
		if sp := a.find(key, e); sp != nil {
			sp.name = b.Name
		}
	case *Attributes:
		if sp := a.find(key, e); sp != nil {
			a.mergeAttrs(sp, b.Attributes)
		}
	case *StatusUpdate:
		if sp := a.find(key, e); sp != nil && b.Status.Code != codes.Unset {
			sp.setStatus(b.Status)
		}
	case *SpanEndData:
		a.endSpan(s, e, b)
		if !b.StreamContinues {
			a.closeIfRootEnded(s, key)
		}
	case *CompleteSpan:
		if b.Open == nil || b.End == nil {
			a.stats.Rejected++
			break
		}
		// A whole span takes the root only when nothing can precede it: no local
		// parent (protocol 1.1).
		if !b.Open.Parent.IsValid() || b.Open.RemoteParent {
			a.chooseRoot(s, key, b.Open)
		}
		a.completeSpan(s, e, b)
		if !b.End.StreamContinues {
			a.closeIfRootEnded(s, key)
		}
	case *Heartbeat:
		// Liveness only: receive has noted the time.
	case *Onset:
		a.onset(s, e, b)
	case *Outcome:
		a.outcome(s, e, b)
	case *Log:
		a.log(s, e, b)
	case *DiagnosticChannel:
		a.diagnosticChannel(s, e, b)
	case *Exception:
		a.exception(s, e, b)
	case *Return:
		a.ret(s, e, b)
	case *StreamDiagnostic:
		a.diagnostic(s, e, b)
	default:
		a.stats.Rejected++
		return
	}
	if a.opts.KeepEvents {
		a.keepEvent(s, key, e)
	}
}

// find returns the open span an event concerns and notes when it was seen; it counts
// the event as rejected when the span is not open.
func (a *Assembler) find(key spanKey, e Event) *openSpan {
	sp := a.open.get(key)
	if sp == nil {
		a.stats.Rejected++
		return nil
	}
	sp.seen(e.Time)
	return sp
}

// refusal returns the counter of the reason why a span of key cannot open in stream s,
// or nil when it can.
func (a *Assembler) refusal(s *streamState, key spanKey) *uint64 {
	if a.open.get(key) != nil {
		return &a.stats.Rejected // opened twice under different sequence numbers
	}
	if n := a.opts.MaxOpenSpansPerStream; n > 0 && int(s.nOpen) >= n && s.id.IsValid() {
		return &a.stats.StreamOverflow
	}
	if a.open.len() >= a.opts.MaxOpenSpans {
		return &a.stats.Overflow
	}
	return nil
}

// newSpan opens a span in stream s, or returns nil (counted) when it cannot.
func (a *Assembler) newSpan(s *streamState, e Event) *openSpan {
	key := spanKey{e.TraceID, e.SpanID}
	if c := a.refusal(s, key); c != nil {
		*c++
		return nil
	}
	var sp *openSpan
	if n := len(a.free); n > 0 {
		sp = a.free[n-1]
		a.free[n-1] = nil
		a.free = a.free[:n-1]
	} else {
		sp = new(openSpan)
	}
	*sp = openSpan{
		trace:    e.TraceID,
		id:       e.SpanID,
		openedAt: a.now.Sub(a.epoch),
		origin:   a.originOf(resourceOf(s, e), e.Scope),
		stream:   s,
	}
	sp.setTimes(e.Time, e.Time)
	a.open.put(sp)
	s.nOpen++
	sp.next = s.spans
	if s.spans != nil {
		s.spans.prev = sp
	}
	s.spans = sp
	return sp
}

func (a *Assembler) openSpan(s *streamState, e Event, b *SpanOpen) {
	sp := a.newSpan(s, e)
	if sp == nil {
		return
	}
	span, owned, subrequest := a.spanOf(s, e, b)
	fresh := !owned && len(span.Attributes) > 0
	if fresh {
		span.Attributes = nil // the event's: packed when the call returns (settle)
	}
	sp.pack(&span, &a.packer)
	if fresh {
		sp.open = b
		a.fresh = append(a.fresh, sp)
	}
	if subrequest {
		sp.flags |= spanSubrequest
	}
}

// spanOf returns the span a SpanOpen (in e) opens, its attributes those of the event
// unless they had to be cut or deduplicated (owned then), and whether it is workerd's
// fetch subrequest span.
func (a *Assembler) spanOf(s *streamState, e Event, b *SpanOpen) (span Span, owned, subrequest bool) {
	span = Span{
		TraceID:      e.TraceID,
		SpanID:       e.SpanID,
		Parent:       b.Parent,
		RemoteParent: b.RemoteParent,
		TraceState:   b.TraceState,
		TraceFlags:   b.TraceFlags,
		Name:         b.Name,
		SpanKind:     b.SpanKind,
		Start:        e.Time,
		Links:        b.Links,
		Resource:     resourceOf(s, e),
		Scope:        e.Scope,
		StreamID:     e.StreamID,
	}
	if span.SpanKind == trace.SpanKindUnspecified {
		span.SpanKind = trace.SpanKindInternal // OTel's default; workerd sends no kind
		if s.inv != nil && b.Name == subrequestSpanName {
			span.SpanKind = trace.SpanKindClient
			subrequest = true
		}
	}
	if len(b.Attributes) <= a.opts.MaxAttributesPerSpan && !hasDuplicateKeys(b.Attributes) {
		span.Attributes = b.Attributes
		return span, false, subrequest
	}
	return span, a.mergeSpanAttrs(&span, false, b.Attributes), subrequest
}

func hasDuplicateKeys(attrs []attribute.KeyValue) bool {
	if len(attrs) > 16 {
		seen := make(map[attribute.Key]struct{}, len(attrs))
		for _, kv := range attrs {
			if _, dup := seen[kv.Key]; dup {
				return true
			}
			seen[kv.Key] = struct{}{}
		}
		return false
	}
	for i := range attrs {
		for j := i + 1; j < len(attrs); j++ {
			if attrs[i].Key == attrs[j].Key {
				return true
			}
		}
	}
	return false
}

// mergeAttributes sets attrs on kvs: a key already there takes the new value in place,
// a new key is appended while there are fewer than MaxAttributesPerSpan, the others are
// dropped (counted). kvs is copied first unless owned (ours to change). It returns
// the attributes and the number dropped.
func (a *Assembler) mergeAttributes(kvs []attribute.KeyValue, owned bool, attrs []attribute.KeyValue) ([]attribute.KeyValue, int) {
	if !owned {
		kvs = append(make([]attribute.KeyValue, 0, len(kvs)+len(attrs)), kvs...)
	}
	dropped := 0
	for _, kv := range attrs {
		i := slices.IndexFunc(kvs, func(x attribute.KeyValue) bool { return x.Key == kv.Key })
		switch {
		case i >= 0:
			kvs[i].Value = kv.Value
		case len(kvs) < a.opts.MaxAttributesPerSpan:
			kvs = append(kvs, kv)
		default:
			dropped++
		}
	}
	a.stats.AttributesDropped += uint64(dropped)
	return kvs, dropped
}

// mergeSpanAttrs merges attrs into the attributes of span (see mergeAttributes); it
// returns whether they are now span's own.
func (a *Assembler) mergeSpanAttrs(span *Span, owned bool, attrs []attribute.KeyValue) bool {
	if len(attrs) == 0 {
		return owned
	}
	var dropped int
	span.Attributes, dropped = a.mergeAttributes(span.Attributes, owned, attrs)
	span.DroppedAttributes += dropped
	return true
}

// mergeAttrs merges attrs into the attributes of an open span (see mergeAttributes).
func (a *Assembler) mergeAttrs(sp *openSpan, attrs []attribute.KeyValue) {
	if len(attrs) == 0 {
		return
	}
	kvs := sp.appendAttrs(a.kvBuf[:0], len(attrs), &a.packer)
	kvs, dropped := a.mergeAttributes(kvs, true, attrs)
	sp.attrs = a.packer.pack(kvs)
	sp.open = nil
	clear(kvs) // the scratch space keeps no strings
	a.kvBuf = kvs[:0]
	if dropped > 0 {
		sp.more().droppedAttributes += dropped
	}
}

// appendEvent appends ev to events while they are fewer than MaxEventsPerSpan, else
// counts it dropped.
func (a *Assembler) appendEvent(events []SpanEvent, dropped *int, ev SpanEvent) []SpanEvent {
	if len(events) >= a.opts.MaxEventsPerSpan {
		*dropped++
		a.stats.EventsDropped++
		return events
	}
	return append(events, ev)
}

// addEvent adds a span event to an open span.
func (a *Assembler) addEvent(sp *openSpan, ev SpanEvent) {
	x := sp.more()
	x.events = a.appendEvent(x.events, &x.droppedEvents, ev)
}

// applyEnd applies what a SpanEndData brings to span; owned tells whether its
// attributes are its own, and it returns whether they are now.
func (a *Assembler) applyEnd(span *Span, owned bool, b *SpanEndData) bool {
	owned = a.mergeSpanAttrs(span, owned, b.Attributes)
	for _, ev := range b.Events {
		span.Events = a.appendEvent(span.Events, &span.DroppedEvents, ev)
	}
	if len(b.Links) > 0 {
		span.Links = append(slices.Clip(span.Links), b.Links...)
	}
	if b.Status.Code != codes.Unset {
		span.Status = b.Status
	}
	span.DroppedAttributes += b.DroppedAttributes
	span.DroppedEvents += b.DroppedEvents
	span.DroppedLinks += b.DroppedLinks
	span.ChildSpanCount = b.ChildSpanCount
	return owned
}

func (a *Assembler) endSpan(s *streamState, e Event, b *SpanEndData) {
	key := spanKey{e.TraceID, e.SpanID}
	sp := a.open.get(key)
	late := sp == nil
	if late {
		// Its unfinished form went out already: emit the real one too.
		if sp = a.takeLate(key); sp == nil {
			a.stats.Rejected++
			return
		}
	}
	sp.seen(e.Time)
	span, owned := sp.unpack(len(b.Attributes), &a.packer)
	owned = a.applyEnd(&span, owned, b)
	subrequest := sp.flags&spanSubrequest != 0
	switch {
	case late:
		a.stats.Late++
		span.End = e.Time
		a.emitSpan(&span, subrequest, owned)
	case b.Unfinished:
		// The producer's own words when it gave any.
		desc := neverEnded("its producer shut down while it was open")
		if b.Status.Code == codes.Error && b.Status.Description != "" {
			desc = b.Status.Description
		}
		sp.pack(&span, &a.packer) // remembered with what its end brought
		a.emitUnfinished(sp, desc, e.Time)
	default:
		a.unlink(sp)
		span.End = e.Time
		a.emitSpan(&span, subrequest, owned)
		// Nothing refers to it any more (an unfinished span is remembered, not recycled).
		if len(a.free) < maxFreeSpans {
			*sp = openSpan{}
			a.free = append(a.free, sp)
		}
	}
}

// completeSpan applies a CompleteSpan. The span, whole already, is emitted without
// being opened, unless it is more than a SpanOpen and a SpanEndData applied at once:
// when it cannot open (that is counted, and its end applies to what is open or
// remembered under its key), or comes unfinished (to be remembered).
func (a *Assembler) completeSpan(s *streamState, e Event, b *CompleteSpan) {
	open, end := e, e
	open.Time, open.Body, end.Body = b.Start, b.Open, b.End
	key := spanKey{e.TraceID, e.SpanID}
	if b.End.Unfinished || a.refusal(s, key) != nil {
		a.openSpan(s, open, b.Open)
		a.endSpan(s, end, b.End)
		return
	}
	span, owned, subrequest := a.spanOf(s, open, b.Open)
	owned = a.applyEnd(&span, owned, b.End)
	span.End = e.Time
	a.emitSpan(&span, subrequest, owned)
}

// unlink removes an open span from the open set and its stream's list.
func (a *Assembler) unlink(sp *openSpan) {
	a.open.del(sp)
	s := sp.stream
	s.nOpen--
	if sp.extra != nil {
		sp.extra.kept = nil
	}
	if sp.prev != nil {
		sp.prev.next = sp.next
	} else if s.spans == sp {
		s.spans = sp.next
	}
	if sp.next != nil {
		sp.next.prev = sp.prev
	}
	sp.prev, sp.next = nil, nil
	if s.inv != nil && s.inv.root == sp {
		s.inv.root = nil
	}
}

// finish emits an open span that really ended at end.
func (a *Assembler) finish(sp *openSpan, end time.Time) {
	span, owned := sp.unpack(0, &a.packer)
	a.unlink(sp)
	span.End = end
	a.emitSpan(&span, sp.flags&spanSubrequest != 0, owned)
}

// emitSpan emits a span that left the open set: a subrequest normalized, its end not
// before its start. owned tells whether its attributes are its own.
func (a *Assembler) emitSpan(span *Span, subrequest, owned bool) {
	if subrequest {
		a.normalizeSubrequest(span, owned)
	}
	span.End = later(span.End, span.Start)
	a.appendOut(*span)
	a.stats.Spans++
}

// appendOut adds a completed span to those the current call emits, in the storage the
// last emit handed back when there is one.
func (a *Assembler) appendOut(sp Span) {
	if a.out == nil {
		a.spareMu.Lock()
		a.out, a.spare = a.spare, nil
		a.spareMu.Unlock()
	}
	a.out = append(a.out, sp)
}

// later returns the later of two times: an end is never before its start, whatever
// the producers' clocks say.
func later(t, u time.Time) time.Time {
	if t.Before(u) {
		return u
	}
	return t
}

// neverEnded is the status description of an unfinished span.
func neverEnded(reason string) string { return "span never ended: " + reason }

// emitUnfinished emits an open span as unfinished, with status Error and description
// desc, and remembers it for a late end. end is the time to report; zero means the
// last time the span or its stream was seen.
func (a *Assembler) emitUnfinished(sp *openSpan, desc string, end time.Time) {
	if end.IsZero() {
		end = sp.lastSeenTime()
		if t := sp.stream.latest(); t.After(end) {
			end = t
		}
	}
	span, owned := sp.unpack(0, &a.packer)
	a.unlink(sp)
	span.End = end
	span.Unfinished = true
	span.Status = Status{Code: codes.Error, Description: desc}
	a.emitSpan(&span, sp.flags&spanSubrequest != 0, owned)
	a.stats.Unfinished++
	a.remember(sp)
}
