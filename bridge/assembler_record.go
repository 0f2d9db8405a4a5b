package bridge

import (
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

type spanKey struct {
	trace trace.TraceID
	span  trace.SpanID
}

// openSpan is a span being assembled, kept compact since a long-running span may stay
// open for minutes: what its Span needs and no more, its times packed (packTime), its
// attributes packed (packedAttrs) once the call that opened it returns (a span that
// ends in the same call is never packed), and what few spans have (status, events,
// links, trace state, ...) in extra. unpack gives the Span. It is linked into its
// stream's list of open spans.
type openSpan struct {
	trace    trace.TraceID
	id       trace.SpanID
	parent   trace.SpanID
	name     string
	attrs    packedAttrs
	start    int64         // packed, with startFlags (unless spanExactTimes)
	lastSeen int64         // latest event time concerning it, packed, with seenFlags
	openedAt time.Duration // clock time it opened, since Assembler.epoch, for OrphanAfter
	origin   *origin       // its Resource and Scope; nil when it has neither
	stream   *streamState
	extra    *spanExtra // nil while the span has none of it
	// open, while the span is fresh (opened by the current call), is its SpanOpen,
	// whose attributes are the span's, not packed yet (see settle).
	open *SpanOpen
	prev *openSpan
	next *openSpan

	kind       uint8 // trace.SpanKind
	traceFlags trace.TraceFlags
	flags      uint8 // spanRemoteParent, ...
	startFlags uint8 // packTime's flags of start
	seenFlags  uint8 // packTime's flags of lastSeen
}

// openSpan flags.
const (
	spanRemoteParent = 1 << iota
	// spanSubrequest marks workerd's fetch subrequest span (see normalizeSubrequest).
	spanSubrequest
	// spanExactTimes: start and lastSeen do not pack exactly and are in extra.
	spanExactTimes
)

// origin is the Resource and Scope of open spans: producers share them between many
// spans, and a span refers to both with one pointer (see Assembler.originOf).
type origin struct {
	resource *resource.Resource
	scope    *instrumentation.Scope
}

// maxOrigins bounds the origins an Assembler shares; past it, it starts afresh (spans
// keep theirs).
const maxOrigins = 1024

// originOf returns the shared origin of a span with this resource and scope.
func (a *Assembler) originOf(res *resource.Resource, scope *instrumentation.Scope) *origin {
	if res == nil && scope == nil {
		return nil
	}
	k := origin{res, scope}
	if o := a.origins[k]; o != nil {
		return o
	}
	if len(a.origins) >= maxOrigins || a.origins == nil {
		a.origins = make(map[origin]*origin)
	}
	o := &k
	a.origins[k] = o
	return o
}

// spanExtra is what an open span holds beyond what most spans have.
type spanExtra struct {
	traceState trace.TraceState
	// status is the span's own status (an unfinished span's emitted one is Error).
	status            Status
	links             []Link
	events            []SpanEvent
	droppedAttributes int
	droppedEvents     int
	droppedLinks      int
	childSpanCount    int
	// start and lastSeen, when spanExactTimes.
	start, lastSeen time.Time
	// kept are the events applied to the span, kept for Snapshot (KeepEvents).
	kept []Event
}

// more returns the span's extra, made when it has none.
func (sp *openSpan) more() *spanExtra {
	if sp.extra == nil {
		sp.extra = new(spanExtra)
	}
	return sp.extra
}

func (sp *openSpan) key() spanKey { return spanKey{sp.trace, sp.id} }

// status returns the span's own status.
func (sp *openSpan) status() Status {
	if sp.extra == nil {
		return Status{}
	}
	return sp.extra.status
}

func (sp *openSpan) setStatus(st Status) {
	if st != (Status{}) || sp.extra != nil {
		sp.more().status = st
	}
}

// pack stores the content of span (all but its ids, times, resource, scope and
// stream, which newSpan sets) in sp, its attributes packed by pk.
func (sp *openSpan) pack(span *Span, pk *packer) {
	sp.open = nil
	sp.parent = span.Parent
	sp.name = span.Name
	sp.attrs = pk.pack(span.Attributes)
	sp.kind = uint8(span.SpanKind)
	sp.traceFlags = span.TraceFlags
	sp.flags &^= spanRemoteParent
	if span.RemoteParent {
		sp.flags |= spanRemoteParent
	}
	x := spanExtra{
		traceState:        span.TraceState,
		status:            span.Status,
		links:             span.Links,
		events:            span.Events,
		droppedAttributes: span.DroppedAttributes,
		droppedEvents:     span.DroppedEvents,
		droppedLinks:      span.DroppedLinks,
		childSpanCount:    span.ChildSpanCount,
	}
	if old := sp.extra; old != nil {
		x.start, x.lastSeen, x.kept = old.start, old.lastSeen, old.kept
	}
	if x.isEmpty() && sp.flags&spanExactTimes == 0 {
		sp.extra = nil
	} else {
		*sp.more() = x
	}
}

// isEmpty reports whether x holds nothing but exact times.
func (x *spanExtra) isEmpty() bool {
	return x.traceState.Len() == 0 && x.status == (Status{}) && len(x.links) == 0 && len(x.events) == 0 &&
		x.droppedAttributes == 0 && x.droppedEvents == 0 && x.droppedLinks == 0 && x.childSpanCount == 0 &&
		len(x.kept) == 0
}

// unpack returns the span, its End zero, and whether its attributes are its own: in
// a new slice with room for extra more, unless the span is fresh (then those of its
// SpanOpen). pk is the packer of its attributes.
func (sp *openSpan) unpack(extra int, pk *packer) (Span, bool) {
	span := Span{
		TraceID:      sp.trace,
		SpanID:       sp.id,
		Parent:       sp.parent,
		RemoteParent: sp.flags&spanRemoteParent != 0,
		TraceFlags:   sp.traceFlags,
		Name:         sp.name,
		SpanKind:     trace.SpanKind(sp.kind),
		Start:        sp.startTime(),
		StreamID:     sp.stream.id,
	}
	if sp.origin != nil {
		span.Resource, span.Scope = sp.origin.resource, sp.origin.scope
	}
	if x := sp.extra; x != nil {
		span.TraceState = x.traceState
		span.Status = x.status
		// Clipped: what is added to the span's copy must not land in sp's arrays.
		span.Links = slices.Clip(x.links)
		span.Events = slices.Clip(x.events)
		span.DroppedAttributes = x.droppedAttributes
		span.DroppedEvents = x.droppedEvents
		span.DroppedLinks = x.droppedLinks
		span.ChildSpanCount = x.childSpanCount
	}
	if sp.open != nil {
		span.Attributes = sp.open.Attributes
		return span, false
	}
	span.Attributes = pk.unpack(sp.attrs, extra)
	return span, true
}

// appendAttrs appends the span's attributes to dst, with room for extra more.
func (sp *openSpan) appendAttrs(dst []attribute.KeyValue, extra int, pk *packer) []attribute.KeyValue {
	if sp.open != nil {
		return append(growKeyValues(dst, len(sp.open.Attributes)+extra), sp.open.Attributes...)
	}
	return pk.appendTo(dst, sp.attrs, extra)
}

// settle packs the attributes of a fresh span with pk.
func (sp *openSpan) settle(pk *packer) {
	if sp.open != nil {
		sp.attrs = pk.pack(sp.open.Attributes)
		sp.open = nil
	}
}

// setTimes sets the span's start and the latest time an event concerned it: packed
// when both pack exactly, else (and from then on) in extra.
func (sp *openSpan) setTimes(start, lastSeen time.Time) {
	s, sf, okS := packTime(start)
	l, lf, okL := packTime(lastSeen)
	if okS && okL && sp.flags&spanExactTimes == 0 {
		sp.start, sp.startFlags, sp.lastSeen, sp.seenFlags = s, sf, l, lf
		return
	}
	x := sp.more()
	x.start, x.lastSeen = start, lastSeen
	sp.flags |= spanExactTimes
}

func (sp *openSpan) startTime() time.Time {
	if sp.flags&spanExactTimes != 0 {
		return sp.extra.start
	}
	return unpackTime(sp.start, sp.startFlags)
}

func (sp *openSpan) lastSeenTime() time.Time {
	if sp.flags&spanExactTimes != 0 {
		return sp.extra.lastSeen
	}
	return unpackTime(sp.lastSeen, sp.seenFlags)
}

// seen notes an event time concerning the span.
func (sp *openSpan) seen(t time.Time) {
	if !t.After(sp.lastSeenTime()) {
		return
	}
	if sp.flags&spanExactTimes == 0 {
		if ns, f, ok := packTime(t); ok {
			sp.lastSeen, sp.seenFlags = ns, f
			return
		}
	}
	sp.setTimes(sp.startTime(), t)
}
