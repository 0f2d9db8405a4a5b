package processor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// Outcomes the processor sends when a stream ends otherwise than with its root's end
// (see the package documentation, Streams).
const (
	// OutcomeOK closes a stream whose spans all ended, the last of them after the root.
	OutcomeOK = "ok"
	// OutcomeCanceled closes a stream that still had open spans at Shutdown; they were
	// sent as unfinished.
	OutcomeCanceled = "canceled"
)

// UnfinishedDescription is the status description of a span reported as unfinished
// at Shutdown.
const UnfinishedDescription = "span not ended before the processor shut down"

// Processor is an sdktrace.SpanProcessor that streams the lifecycle of spans (see the
// package documentation). Create one with New.
type Processor struct {
	pipe   *bridge.Pipeline
	sink   bridge.Tail
	opts   Options
	limits limits
	reg    *registry
	scopes scopeCache

	// tick counts the periods of the background loop; streams remember the tick of
	// their last event, so telling an idle stream costs the hot path one atomic load.
	tick       atomic.Uint64
	period     time.Duration
	scanEvery  uint64 // rename scan every scanEvery ticks; 0: off
	hbTicks    uint64 // heartbeat when idle more than hbTicks ticks; 0: off
	stop, done chan struct{}

	shut         atomic.Bool
	shutdownOnce sync.Once

	// The counters change on drops and limits, from any goroutine: off the cache
	// lines of the fields above, which every span reads, so that counting on one core
	// does not take those lines from the others.
	_              [64]byte
	dropped        atomic.Uint64
	suppressed     atomic.Uint64
	heartbeats     atomic.Uint64
	announced      atomic.Uint64
	completeSpans  atomic.Uint64
	attrsDropped   atomic.Uint64
	attrsTruncated atomic.Uint64
	dropsLogged    uint64 // owned by the background loop
}

var _ sdktrace.SpanProcessor = (*Processor)(nil)

// New returns a Processor that publishes to sink through its own bridge.Pipeline
// (bounded, batched, never blocking the caller). The sink is typically an
// *otlpexport.Exporter; any bridge.Tail works. Register the processor with
// sdktrace.WithSpanProcessor, and use Wrap to stream renames at once.
func New(sink bridge.Tail, opts ...Option) *Processor {
	o := resolveOptions(opts)
	p := &Processor{
		opts:   o,
		limits: limits{maxAttrs: o.MaxAttributes, maxLength: o.MaxAttributeValueLength},
		reg:    newRegistry(),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	p.scopes.m = make(map[instrumentation.Scope]*instrumentation.Scope)
	if sink == nil {
		o.Logger.Warn("stwbridge processor: New called with a nil sink: events are discarded; pass an exporter or a bridge.Tail")
		sink = bridge.TailFunc(func(context.Context, []bridge.Event) error { return nil })
	}
	p.sink = sink
	p.pipe = bridge.NewPipeline([]bridge.Tail{sink}, o.pipelineOptions()...)

	scan, hb := o.ScanInterval, o.HeartbeatInterval
	switch {
	case scan > 0 && (hb <= 0 || scan <= hb):
		p.period = scan
	case hb > 0:
		p.period = hb
	}
	if p.period > 0 {
		if scan > 0 {
			p.scanEvery = max(1, uint64((scan+p.period/2)/p.period))
		}
		if hb > 0 {
			p.hbTicks = max(1, uint64((hb+p.period-1)/p.period))
		}
	}
	if p.period > 0 || o.AnnounceDelay > 0 {
		go p.run()
	} else {
		close(p.done)
	}
	return p
}

// Options returns the options in effect, after defaults and environment.
func (p *Processor) Options() Options { return p.opts }

// OnStart publishes SpanOpen for a sampled span. It never blocks: when the queue is
// full the SpanOpen is dropped and so are the span's later events, so that no end
// arrives without its open.
func (p *Processor) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) {
	sc := s.SpanContext()
	if !sc.IsSampled() {
		return
	}
	sh := p.reg.enter(keyOf(sc))
	defer sh.leave()
	if p.shut.Load() {
		return
	}
	st := &spanState{rw: s, spanID: sc.SpanID()}
	st.res = s.Resource()
	st.scope = p.scopes.intern(s.InstrumentationScope())
	psc := s.Parent()
	start := s.StartTime()
	attrs := s.Attributes()
	links := s.Links()
	if len(links) > 0 {
		st.openLinks = int32(len(links) + s.DroppedLinks())
	}
	st.openAttrs = attrs
	openAttrs, dropped := p.limitAttrs(attrs)
	st.openDropAttr = int32(dropped)
	st.lastName = s.Name()
	st.open = bridge.SpanOpen{
		Name:         st.lastName,
		SpanKind:     s.SpanKind(),
		Parent:       psc.SpanID(),
		TraceState:   sc.TraceState(),
		TraceFlags:   sc.TraceFlags(),
		RemoteParent: psc.IsRemote(),
		Attributes:   openAttrs,
		Links:        p.links(links),
	}

	if ps := p.parentState(parent, psc); ps != nil {
		str := ps.str
		str.mu.Lock()
		if !str.closed {
			st.str = str
			str.open++
			ps.children++
			due := p.openLocked(st, start)
			str.mu.Unlock()
			p.reg.put(st, due)
			return
		}
		// The stream already closed: the span is late (started under a parent whose
		// stream ended) and starts a stream of its own.
		str.mu.Unlock()
	}

	str := &st.own
	str.traceID = sc.TraceID() // its id is drawn when it first publishes (publishLocked)
	str.root = st
	str.open = 1
	st.str = str
	// No other goroutine can reach the new stream before reg.put, whose lock orders
	// these writes before any later reader: no need to lock it here.
	due := p.openLocked(st, start)
	p.reg.put(st, due)
}

// parentState returns the state of the span's local parent, if it is open (or
// reachable through a wrapped span in ctx).
func (p *Processor) parentState(ctx context.Context, psc trace.SpanContext) *spanState {
	if !psc.IsValid() || psc.IsRemote() {
		return nil
	}
	if w, ok := trace.SpanFromContext(ctx).(*span); ok && w.st != nil && w.tp.p == p && w.st.key() == keyOf(psc) {
		return w.st
	}
	return p.reg.get(keyOf(psc))
}

// openLocked publishes the SpanOpen of st, or, with an announce delay, holds it back
// and returns when it falls due (Unix nanoseconds; 0 when published). The caller holds
// st.str.mu (or owns a stream nobody else can see yet).
func (p *Processor) openLocked(st *spanState, start time.Time) int64 {
	if p.opts.AnnounceDelay > 0 {
		st.pending = true
		st.str.held++
		return max(start.Add(p.opts.AnnounceDelay).UnixNano(), 1)
	}
	p.publishOpenLocked(st, start)
	return 0
}

// publishOpenLocked publishes the SpanOpen of st. The caller holds st.str.mu.
func (p *Processor) publishOpenLocked(st *spanState, start time.Time) bool {
	if !p.publishLocked(st.str, st.envelope(start, &st.open)) {
		st.suppressed = true
		return false
	}
	st.str.shown++
	return true
}

// announceDue publishes the held-back SpanOpen of the spans due by now (of all of
// them when now is zero), oldest first, as the span stands: its name, and the
// attributes and status set since it started as Attributes and StatusUpdate events.
// It returns buf for reuse.
func (p *Processor) announceDue(now time.Time, buf []pendingOpen) (_ []pendingOpen, announced int) {
	var limit int64
	if !now.IsZero() {
		limit = now.UnixNano()
	}
	buf = p.reg.appendDue(buf[:0], limit)
	slices.SortFunc(buf, func(a, b pendingOpen) int { return cmp.Compare(a.due, b.due) })
	for _, po := range buf {
		st := po.st
		str := st.str
		str.mu.Lock()
		if st.pending && !st.ended {
			st.pending = false
			str.held--
			// The span's own lock is taken after the stream's, as everywhere.
			name, start := st.rw.Name(), st.rw.StartTime()
			st.open.Name, st.lastName = name, name
			if p.publishOpenLocked(st, start) {
				p.announced.Add(1)
				announced++
				t := time.Now()
				if changed := changedAttrs(st.openAttrs, st.rw.Attributes()); len(changed) > 0 {
					attrs, _ := p.limitAttrs(changed)
					p.publishLocked(str, st.envelope(t, &bridge.Attributes{Attributes: attrs}))
				}
				if cur := bridge.Status(st.rw.Status()); cur != (bridge.Status{}) {
					if body := (&bridge.StatusUpdate{Status: cur}); p.publishLocked(str, st.envelope(t, body)) {
						st.lastStatus = body
					}
				}
			}
		}
		str.mu.Unlock()
	}
	clear(buf)
	return buf[:0], announced
}

// OnEnd publishes the span's final UpdateName (when its name differs from the last
// one published) and its SpanEndData; when the span was the last open one of its
// stream and not its root, the stream's Outcome follows (a root ending last ends
// its stream by itself).
func (p *Processor) OnEnd(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	if !sc.IsSampled() {
		return
	}
	k := keyOf(sc)
	sh := p.reg.enter(k)
	defer sh.leave()
	st := p.reg.take(k)
	if st == nil {
		return // not published (started before New or after Shutdown), or reported at Shutdown
	}
	status := s.Status()
	links := s.Links()
	p.fillEnd(st, bridge.Status{Code: status.Code, Description: status.Description},
		s.Attributes(), s.Events(), links, s.DroppedAttributes(), s.DroppedEvents(), s.DroppedLinks(), s.ChildSpanCount())
	end := s.EndTime()
	name := s.Name()

	str := st.str
	str.mu.Lock()
	p.endLocked(st, name, end, OutcomeOK)
	str.mu.Unlock()
}

// fillEnd writes the SpanEndData body of st. Only the goroutine that took st out of
// the registry calls it, so the body needs no lock until it is published.
func (p *Processor) fillEnd(st *spanState, status bridge.Status, attrs []attribute.KeyValue,
	events []sdktrace.Event, links []sdktrace.Link, droppedAttrs, droppedEvents, droppedLinks, children int) {
	end := &st.end
	end.Status = status
	var dropped int
	end.Attributes, dropped = p.limitAttrs(changedAttrs(st.openAttrs, attrs))
	end.DroppedAttributes = droppedAttrs + dropped + int(st.openDropAttr)
	end.Events = p.events(events)
	end.DroppedEvents = droppedEvents
	// Links are kept first in, first out: the last `added` of them came after start.
	if added := len(links) + droppedLinks - int(st.openLinks); added > 0 {
		end.Links = p.links(links[len(links)-min(added, len(links)):])
	}
	end.DroppedLinks = droppedLinks
	end.ChildSpanCount = children
}

// endLocked publishes the end of st (with a final rename first) and accounts for it
// in its stream, which it may end. The caller holds st.str.mu.
func (p *Processor) endLocked(st *spanState, name string, end time.Time, outcome string) {
	if st.ended {
		return
	}
	st.ended = true
	// The SDK counts children only under its own span type; those started under a
	// wrapped span are counted here.
	st.end.ChildSpanCount = max(st.end.ChildSpanCount, int(st.children))
	str := st.str
	held := st.pending
	if held {
		st.pending = false
		str.held--
	}
	// A root ending while spans of its stream are held back tells receivers that the
	// stream goes on, to end with an Outcome: they do not know of those spans.
	st.end.StreamContinues = st == str.root && str.held > 0
	published, closes := false, false
	switch {
	case st.suppressed:
		p.suppressed.Add(1)
	case !held:
		str.shown--
		p.renameLocked(st, name, end)
		published = p.publishLocked(str, st.envelope(end, &st.end))
		closes = published
	default:
		// Ended before its announcement: open and end leave as one event. Receivers
		// take it for its stream's root only when it has no local parent.
		st.open.Name, st.lastName = name, name
		body := &bridge.CompleteSpan{Start: st.rw.StartTime(), Open: &st.open, End: &st.end}
		if st == str.root && str.next == 0 && str.shown == 0 && str.held == 0 &&
			(!st.open.Parent.IsValid() || st.open.RemoteParent) {
			// Nothing of the stream was sent and nothing will follow: the span travels
			// alone, without stream id or sequence, under the id receivers derive.
			body.Alone = true
			str.id = bridge.AloneStreamID(str.traceID, st.spanID)
		}
		if published = p.publishLocked(str, st.envelope(end, body)); published {
			p.completeSpans.Add(1)
		}
		closes = published && (!st.open.Parent.IsValid() || st.open.RemoteParent)
	}
	p.spanEndedLocked(st, closes, end, outcome)
}

// Shutdown reports every span still open as unfinished (SpanEndData with Unfinished
// set, status Error and end time now; roots first, so that a stream with other spans
// open ends with an Outcome "canceled" after them, while a stream whose root alone
// was open ends with its root's end), then shuts the pipeline down, which delivers
// what is queued and shuts the sink down. It returns once the sink delivered it all,
// or ctx's deadline passed; an error then says how many events were not delivered.
// Spans that start or end after Shutdown are not published. Later calls return nil.
func (p *Processor) Shutdown(ctx context.Context) error {
	first := false
	p.shutdownOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	lost := p.lost()
	p.shut.Store(true)
	close(p.stop)
	// Wait for OnStart calls that missed the flag to register their span, report what
	// is open, then wait for OnEnd calls that took a span first to publish its end:
	// all before the pipeline stops taking events.
	waitErr := p.reg.waitIdle(ctx)
	p.reportUnfinished(time.Now())
	if err := p.reg.waitIdle(ctx); waitErr == nil {
		waitErr = err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		if waitErr == nil {
			waitErr = ctx.Err()
		}
	}
	return p.undelivered("Shutdown", lost, errors.Join(p.pipe.Shutdown(ctx), waitErr))
}

// lost counts the events lost on the whole path so far: dropped by the pipeline, and
// lost by the sink (bridge.DeliveryReporter), or else in batches it failed to consume.
func (p *Processor) lost() uint64 {
	ps := p.pipe.Stats()
	if d, ok := p.sink.(bridge.DeliveryReporter); ok {
		return ps.Dropped + d.Delivery().Lost
	}
	return ps.Dropped + ps.Failed
}

// undelivered returns err (of ForceFlush or Shutdown), or nil when everything was
// delivered, with the count of events not delivered: queued, in flight, or lost since
// lostBefore.
func (p *Processor) undelivered(op string, lostBefore uint64, err error) error {
	n := p.lost() - lostBefore
	if err != nil {
		n += uint64(p.pipe.Stats().QueueDepth)
		if d, ok := p.sink.(bridge.DeliveryReporter); ok {
			n += d.Delivery().Pending
		}
	}
	if n == 0 && err == nil {
		return nil
	}
	if err == nil {
		err = errors.New("the sink gave them up (see its log)")
	}
	return fmt.Errorf("stwbridge processor: %s: %d events not delivered: %w", op, n, err)
}

// reportUnfinished publishes every open span as unfinished at now: the roots of
// streams first, then the other spans.
func (p *Processor) reportUnfinished(now time.Time) {
	open := p.reg.appendAll(nil)
	// str.root is written before the span is registered and never after.
	slices.SortStableFunc(open, func(a, b *spanState) int {
		return cmp.Compare(b2i(a.str.root != a), b2i(b.str.root != b))
	})
	for _, st := range open {
		if p.reg.take(st.key()) == nil {
			continue // ended meanwhile
		}
		s := st.rw
		p.fillEnd(st, bridge.Status{Code: codes.Error, Description: UnfinishedDescription},
			s.Attributes(), s.Events(), s.Links(), s.DroppedAttributes(), s.DroppedEvents(), s.DroppedLinks(), s.ChildSpanCount())
		st.end.Unfinished = true
		name := s.Name()
		str := st.str
		str.mu.Lock()
		p.endLocked(st, name, now, OutcomeCanceled)
		str.mu.Unlock()
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ForceFlush publishes renames made through unwrapped spans (when the scan is on),
// then delivers every event published so far to the sink and flushes it (when it
// implements bridge.Flusher: an exporter's flush waits until the receiver
// acknowledged them). When the deadline passes first, or events were lost meanwhile,
// the error says how many events were not delivered. After Shutdown it returns nil.
func (p *Processor) ForceFlush(ctx context.Context) error {
	if p.shut.Load() {
		return nil
	}
	lost := p.lost()
	if p.scanEvery > 0 {
		p.scan(0, time.Now(), true, nil)
	}
	if p.opts.AnnounceDelay > 0 {
		p.announceDue(time.Time{}, nil)
	}
	return p.undelivered("ForceFlush", lost, p.pipe.ForceFlush(ctx))
}

// Stats are the processor's counters.
type Stats struct {
	// OpenSpans is the number of spans the processor tracks that have not ended.
	OpenSpans int
	// Dropped counts events the pipeline refused because its queue was full (or it was
	// shut down). The pipeline reports them to the sink in StreamDiagnostic events.
	Dropped uint64
	// Lost counts events the sink accepted and gave up (refused by the receiver,
	// failed, or no room before ExportTimeout), as the sink reports them
	// (bridge.DeliveryReporter, which otlpexport implements), or else the events in
	// batches it failed to consume. Dropped + Lost is what the whole path lost.
	Lost uint64
	// Pending counts events the sink accepted and the receiver has not acknowledged
	// yet (0 for a sink that does not report it).
	Pending uint64
	// Suppressed counts events not published because their span's SpanOpen was
	// dropped: an end never arrives without its open.
	Suppressed uint64
	// Heartbeats counts the Heartbeat events published.
	Heartbeats uint64
	// LateAnnounced counts spans announced when their announce delay passed (or at
	// ForceFlush); CompleteSpans counts spans that ended first and left as one
	// CompleteSpan event.
	LateAnnounced uint64
	CompleteSpans uint64
	// AttributesDropped counts attributes dropped by the MaxAttributes limit.
	AttributesDropped uint64
	// AttributesTruncated counts attribute values cut by the MaxAttributeValueLength limit.
	AttributesTruncated uint64
	// Pipeline holds the pipeline's counters: Published counts the events it accepted.
	Pipeline bridge.PipelineStats
}

// Stats returns the counters so far.
func (p *Processor) Stats() Stats {
	ps := p.pipe.Stats()
	lost, pending := ps.Failed, uint64(0)
	if d, ok := p.sink.(bridge.DeliveryReporter); ok {
		dl := d.Delivery()
		lost, pending = dl.Lost, dl.Pending
	}
	return Stats{
		OpenSpans:           p.reg.len(),
		Lost:                lost,
		Pending:             pending,
		Dropped:             p.dropped.Load(),
		Suppressed:          p.suppressed.Load(),
		Heartbeats:          p.heartbeats.Load(),
		LateAnnounced:       p.announced.Load(),
		CompleteSpans:       p.completeSpans.Load(),
		AttributesDropped:   p.attrsDropped.Load(),
		AttributesTruncated: p.attrsTruncated.Load(),
		Pipeline:            ps,
	}
}

// scopeCache interns instrumentation scopes, so the events of all spans of a tracer
// share one *instrumentation.Scope and opening a span allocates none.
type scopeCache struct {
	last atomic.Pointer[instrumentation.Scope]
	mu   sync.RWMutex
	m    map[instrumentation.Scope]*instrumentation.Scope
}

// maxScopes bounds the cache; scopes beyond it get a pointer of their own per span.
const maxScopes = 1024

func (c *scopeCache) intern(s instrumentation.Scope) *instrumentation.Scope {
	if l := c.last.Load(); l != nil && *l == s {
		return l
	}
	c.mu.RLock()
	sp := c.m[s]
	c.mu.RUnlock()
	if sp == nil {
		c.mu.Lock()
		if sp = c.m[s]; sp == nil {
			sp = newScope(s)
			if len(c.m) < maxScopes {
				c.m[s] = sp
			}
		}
		c.mu.Unlock()
	}
	c.last.Store(sp)
	return sp
}

// newScope returns a pointer to a copy of s. Taking the address in a function of its
// own keeps intern's argument off the heap on the path that finds the scope cached.
func newScope(s instrumentation.Scope) *instrumentation.Scope { return &s }
