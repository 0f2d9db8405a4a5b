package bridge

import (
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

type spanKey struct {
	trace trace.TraceID
	span  trace.SpanID
}

// openSpan is a span being assembled. It is linked into its stream's list of open spans.
type openSpan struct {
	span       Span
	openedAt   time.Time // clock time it opened, for OrphanAfter
	lastSeen   time.Time // latest event time concerning it
	stream     *streamState
	prev, next *openSpan
	attrsOwned bool // span.Attributes is ours to change (else shared with an event)
	// subrequest marks workerd's fetch subrequest span (see normalizeSubrequest).
	subrequest bool
	// status is the span's own status, kept when it is emitted unfinished.
	status Status
	// events are the events applied to it, kept for Snapshot (KeepEvents).
	events []Event
}

// apply applies one event, in order, to the state of its span or stream.
func (a *Assembler) apply(s *streamState, e Event) {
	key := spanKey{e.TraceID, e.SpanID}
	switch b := e.Body.(type) {
	case *SpanOpen:
		a.chooseRoot(s, key, b)
		a.openSpan(s, e, b)
	case *UpdateName:
		if sp := a.find(key, e); sp != nil {
			sp.span.Name = b.Name
		}
	case *Attributes:
		if sp := a.find(key, e); sp != nil {
			a.mergeAttrs(sp, b.Attributes)
		}
	case *StatusUpdate:
		if sp := a.find(key, e); sp != nil && b.Status.Code != codes.Unset {
			sp.span.Status = b.Status
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
		open, end := e, e
		open.Time, open.Body, end.Body = b.Start, b.Open, b.End
		a.openSpan(s, open, b.Open)
		a.endSpan(s, end, b.End)
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
	sp := a.open[key]
	if sp == nil {
		a.stats.Rejected++
		return nil
	}
	sp.seen(e.Time)
	return sp
}

func (sp *openSpan) seen(t time.Time) {
	if t.After(sp.lastSeen) {
		sp.lastSeen = t
	}
}

// newSpan opens a span in stream s, or returns nil (counted) past MaxOpenSpans.
func (a *Assembler) newSpan(s *streamState, e Event) *openSpan {
	key := spanKey{e.TraceID, e.SpanID}
	if a.open[key] != nil {
		a.stats.Rejected++ // opened twice under different sequence numbers
		return nil
	}
	if n := a.opts.MaxOpenSpansPerStream; n > 0 && int(s.nOpen) >= n && s.id.IsValid() {
		a.stats.StreamOverflow++
		return nil
	}
	if len(a.open) >= a.opts.MaxOpenSpans {
		a.stats.Overflow++
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
		span: Span{
			TraceID:  e.TraceID,
			SpanID:   e.SpanID,
			Start:    e.Time,
			Resource: resourceOf(s, e),
			Scope:    e.Scope,
			StreamID: e.StreamID,
		},
		openedAt: a.now,
		lastSeen: e.Time,
		stream:   s,
	}
	a.open[key] = sp
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
	sp.span.Name = b.Name
	sp.span.SpanKind = b.SpanKind
	if sp.span.SpanKind == trace.SpanKindUnspecified {
		sp.span.SpanKind = trace.SpanKindInternal // OTel's default; workerd sends no kind
		if s.inv != nil && b.Name == subrequestSpanName {
			sp.span.SpanKind = trace.SpanKindClient
			sp.subrequest = true
		}
	}
	sp.span.Parent = b.Parent
	sp.span.RemoteParent = b.RemoteParent
	sp.span.TraceState = b.TraceState
	sp.span.TraceFlags = b.TraceFlags
	sp.span.Links = b.Links
	if len(b.Attributes) <= a.opts.MaxAttributesPerSpan && !hasDuplicateKeys(b.Attributes) {
		sp.span.Attributes = b.Attributes // shared with the event until changed
	} else {
		a.mergeAttrs(sp, b.Attributes)
	}
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

// mergeAttrs sets attrs on the span: a key already there takes the new value in place,
// a new key is appended while the span holds fewer than MaxAttributesPerSpan.
func (a *Assembler) mergeAttrs(sp *openSpan, attrs []attribute.KeyValue) {
	if len(attrs) == 0 {
		return
	}
	sp.ownAttrs(len(attrs))
	for _, kv := range attrs {
		i := slices.IndexFunc(sp.span.Attributes, func(x attribute.KeyValue) bool { return x.Key == kv.Key })
		switch {
		case i >= 0:
			sp.span.Attributes[i].Value = kv.Value
		case len(sp.span.Attributes) < a.opts.MaxAttributesPerSpan:
			sp.span.Attributes = append(sp.span.Attributes, kv)
		default:
			sp.span.DroppedAttributes++
			a.stats.AttributesDropped++
		}
	}
}

// ownAttrs makes the span's attribute slice its own (copied on first change, with room
// for extra more), so that changing it cannot touch the event it came from.
func (sp *openSpan) ownAttrs(extra int) {
	if sp.attrsOwned {
		return
	}
	owned := make([]attribute.KeyValue, len(sp.span.Attributes), len(sp.span.Attributes)+extra)
	copy(owned, sp.span.Attributes)
	sp.span.Attributes = owned
	sp.attrsOwned = true
}

func (a *Assembler) addEvent(sp *openSpan, ev SpanEvent) {
	if len(sp.span.Events) >= a.opts.MaxEventsPerSpan {
		sp.span.DroppedEvents++
		a.stats.EventsDropped++
		return
	}
	sp.span.Events = append(sp.span.Events, ev)
}

func (a *Assembler) endSpan(s *streamState, e Event, b *SpanEndData) {
	key := spanKey{e.TraceID, e.SpanID}
	sp := a.open[key]
	late := false
	if sp == nil {
		if sp = a.takeLate(key); sp == nil {
			a.stats.Rejected++
			return
		}
		// Its unfinished form went out already: emit the real one too, from a copy, as
		// the emitted span shares slices with it.
		cp := *sp
		cp.span.Attributes = slices.Clone(sp.span.Attributes)
		cp.span.Events = slices.Clip(sp.span.Events)
		cp.span.Links = slices.Clip(sp.span.Links)
		cp.attrsOwned = true
		cp.span.Unfinished = false
		cp.span.Status = sp.status
		sp = &cp
		late = true
	}
	sp.seen(e.Time)
	a.mergeAttrs(sp, b.Attributes)
	for _, ev := range b.Events {
		a.addEvent(sp, ev)
	}
	if len(b.Links) > 0 {
		sp.span.Links = append(slices.Clip(sp.span.Links), b.Links...)
	}
	if b.Status.Code != codes.Unset {
		sp.span.Status = b.Status
	}
	sp.span.DroppedAttributes += b.DroppedAttributes
	sp.span.DroppedEvents += b.DroppedEvents
	sp.span.DroppedLinks += b.DroppedLinks
	sp.span.ChildSpanCount = b.ChildSpanCount
	if late {
		a.stats.Late++
		a.normalizeSubrequest(sp)
		sp.span.End = later(e.Time, sp.span.Start)
		a.appendOut(sp.span)
		a.stats.Spans++
		return
	}
	if b.Unfinished {
		// The producer's own words when it gave any.
		desc := neverEnded("its producer shut down while it was open")
		if b.Status.Code == codes.Error && b.Status.Description != "" {
			desc = b.Status.Description
		}
		a.emitUnfinished(sp, desc, e.Time)
		return
	}
	sp.span.End = e.Time
	a.finish(sp)
	// Nothing refers to it any more (an unfinished span is remembered, not recycled).
	if len(a.free) < maxFreeSpans {
		*sp = openSpan{}
		a.free = append(a.free, sp)
	}
}

// unlink removes an open span from the open set and its stream's list.
func (a *Assembler) unlink(sp *openSpan) {
	delete(a.open, spanKey{sp.span.TraceID, sp.span.SpanID})
	s := sp.stream
	s.nOpen--
	sp.events = nil
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

// finish emits a span that really ended.
func (a *Assembler) finish(sp *openSpan) {
	a.unlink(sp)
	a.normalizeSubrequest(sp)
	sp.span.End = later(sp.span.End, sp.span.Start)
	a.appendOut(sp.span)
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
		end = sp.lastSeen
		if sp.stream.lastTime.After(end) {
			end = sp.stream.lastTime
		}
	}
	sp.span.End = end
	sp.span.Unfinished = true
	sp.status = sp.span.Status
	sp.span.Status = Status{Code: codes.Error, Description: desc}
	a.finish(sp)
	a.stats.Unfinished++
	a.remember(sp)
}
