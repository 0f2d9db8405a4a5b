package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/stwbridge/stwbridge/internal/options"
)

// AssemblerStats are the assembler's counters.
type AssemblerStats struct {
	Events     uint64 // events accepted
	Spans      uint64 // complete spans emitted
	Unfinished uint64 // spans emitted as unfinished
	Duplicates uint64 // events dropped as duplicates
	Reordered  uint64 // events that arrived out of sequence and were put back in order
	Gaps       uint64 // sequence numbers never received
	Rejected   uint64 // events that could not be used (e.g. end without open past the window)
	Overflow   uint64 // spans refused because MaxOpenSpans was reached
	OpenSpans  int    // spans open now

	StreamOverflow uint64 // spans refused because their stream had MaxOpenSpansPerStream open
	LateSpans      int    // spans emitted unfinished, remembered now for a late end
	LateBytes      int    // their estimated memory, in bytes
	LateForgotten  uint64 // spans forgotten before a late end came (bounds, ReleaseMemory)

	Late              uint64 // real ends of spans already emitted unfinished (emitted again, real)
	Dropped           uint64 // events producers reported dropped (StreamDiagnostic), not counted as gaps
	NoOnset           uint64 // invocation events (log, exception, return) of a stream without onset
	AttributesDropped uint64 // attributes over MaxAttributesPerSpan
	EventsDropped     uint64 // span events over MaxEventsPerSpan
	Streams           int    // streams tracked now
	Held              int    // events held back now, waiting for a missing sequence number
}

// ErrAssemblerShutdown is returned by Consume after Shutdown.
var ErrAssemblerShutdown = errors.New("bridge: assembler is shut down")

// Assembler turns events back into complete spans (and reports those that never end
// as unfinished); it is a Tail, and hands spans to its SpanConsumer as they complete.
// Safe for concurrent use; see the package documentation, "Assembler", for the rules.
type Assembler struct {
	next SpanConsumer
	opts AssemblerOptions

	mu      sync.Mutex
	emitMu  sync.Mutex // held while handing spans to next, to keep their order
	streams map[StreamID]*streamState
	// recent is the stream of the last event received (the next event is often of the
	// same stream); Sweep, which takes streams out of a.streams, clears it.
	recent *streamState
	// parked holds the streams with nothing open or held back, in a form without
	// pointers (see park): most streams spend most of their remembered time so, and
	// the garbage collector then has nothing to scan in them.
	parked  map[StreamID]parkedStream
	epoch   time.Time // the clock's first reading; parked arrival times count from it
	now     time.Time // the clock's reading at the start of the current call
	open    spanTable
	late    lateSpans   // emitted unfinished, kept for a late end
	free    []*openSpan // finished spans' records, zeroed, for newSpan to reuse
	stats   AssemblerStats
	out     []Span               // spans completed by the current call
	packer  packer               // of the open spans' attributes
	origins map[origin]*origin   // shared by open spans (originOf)
	kvBuf   []attribute.KeyValue // scratch space of mergeAttrs
	// fresh are the spans opened by the current call, their attributes not packed yet.
	fresh    []*openSpan
	shutdown bool

	spareMu sync.Mutex // guards spare; taken last, under mu or emitMu
	spare   []Span     // out's storage, handed back by emit for the next call
}

// Bounds of what the assembler keeps for reuse: the records of finished spans, and
// the capacity of a slice of emitted (or opened) spans (a larger one, as a shutdown or
// a sweep of many unfinished spans makes, is left to the garbage collector).
const (
	maxFreeSpans = 1024
	maxSpareOut  = 4096
)

var (
	_ Tail       = (*Assembler)(nil)
	_ Shutdowner = (*Assembler)(nil)
)

// NewAssembler returns an assembler that hands complete spans to next.
func NewAssembler(next SpanConsumer, opts ...AssemblerOption) *Assembler {
	o := options.Apply(opts)
	options.Positive(&o.OrphanAfter, DefaultOrphanAfter)
	options.Positive(&o.StreamTimeout, DefaultStreamTimeout)
	options.Positive(&o.ReorderWindow, DefaultReorderWindow)
	options.Positive(&o.ReorderTimeout, DefaultReorderTimeout)
	options.Positive(&o.MaxOpenSpans, DefaultMaxOpenSpans)
	options.Positive(&o.MaxAttributesPerSpan, DefaultMaxAttributesPerSpan)
	options.Positive(&o.MaxEventsPerSpan, DefaultMaxEventsPerSpan)
	options.NonZero(&o.MaxOpenSpansPerStream, DefaultMaxOpenSpansPerStream)
	options.NonZero(&o.MaxLateSpans, DefaultMaxLateSpans)
	options.NonZero(&o.MaxLateBytes, DefaultMaxLateBytes)
	options.NonZero(&o.ForgetLateAfter, DefaultForgetLateAfter)
	if o.RequestHeaders == nil {
		o.RequestHeaders = DefaultRequestHeaders
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Assembler{
		next:    next,
		opts:    o,
		streams: make(map[StreamID]*streamState),
		parked:  make(map[StreamID]parkedStream),
		epoch:   o.Now(),
		open:    newSpanTable(),
		late:    lateSpans{spans: make(map[spanKey]lateSpan)},
	}
}

// Consume adds events and emits the spans they complete.
func (a *Assembler) Consume(ctx context.Context, events []Event) error {
	a.mu.Lock()
	if a.shutdown {
		a.mu.Unlock()
		return ErrAssemblerShutdown
	}
	now := a.opts.Now()
	a.now = now
	var last *streamState
	for i := range events {
		s := a.receive(events[i], now)
		// A stream whose wait for a gap has lasted long enough goes on without it.
		if s != nil && s != last && len(s.pending) > 0 {
			a.expireWait(s, now)
		}
		last = s
	}
	if last != nil {
		a.expireWait(last, now)
	}
	return a.emit(ctx)
}

// Sweep emits as unfinished the spans open longer than OrphanAfter and those of
// streams silent longer than StreamTimeout, stops waiting for sequence numbers missing
// longer than ReorderTimeout, and forgets idle streams and late spans past their time
// (package documentation). Run it periodically, about every ReorderTimeout/2.
func (a *Assembler) Sweep(ctx context.Context) error {
	a.mu.Lock()
	now := a.opts.Now()
	a.now = now
	a.recent = nil
	for _, s := range a.streams {
		a.expireWait(s, now)
	}
	sinceEpoch := now.Sub(a.epoch)
	for _, s := range a.streams {
		silent := sinceEpoch - s.lastArrival
		if s.spans != nil && silent > a.opts.StreamTimeout && s.id.IsValid() {
			reason := fmt.Sprintf("no event from its producer for %s", a.opts.StreamTimeout)
			for s.spans != nil {
				a.emitUnfinished(s.spans, neverEnded(reason), time.Time{})
			}
		}
		// A stream is remembered a while after its last event, to recognise retried
		// duplicates: StreamTimeout once ended, twice that otherwise (it may resume).
		keep := a.opts.StreamTimeout
		if !s.ended {
			keep *= 2
		}
		if s.spans == nil && len(s.pending) == 0 && silent > keep {
			delete(a.streams, s.id)
		} else {
			a.park(s)
		}
	}
	for id, p := range a.parked {
		keep := a.opts.StreamTimeout
		if p.flags&parkedEnded == 0 {
			keep *= 2
		}
		if sinceEpoch-p.lastArrival > keep {
			delete(a.parked, id)
		}
	}
	reason := fmt.Sprintf("still open after %s", a.opts.OrphanAfter)
	for sp := range a.open.all() {
		if sinceEpoch-sp.openedAt > a.opts.OrphanAfter {
			a.emitUnfinished(sp, neverEnded(reason), time.Time{})
		}
	}
	a.expireLate(now)
	return a.emit(ctx)
}

// Shutdown applies the events still held back for ordering, then emits every span
// still open as unfinished. Later calls of Consume return ErrAssemblerShutdown.
func (a *Assembler) Shutdown(ctx context.Context) error { return a.stop(ctx, true) }

// Suspend is Shutdown for a caller that has kept the open spans' events (Snapshot) and
// feeds them to a new Assembler later: the spans still open are let go unreported.
func (a *Assembler) Suspend(ctx context.Context) error { return a.stop(ctx, false) }

func (a *Assembler) stop(ctx context.Context, reportOpen bool) error {
	a.mu.Lock()
	if a.shutdown {
		a.mu.Unlock()
		return nil
	}
	a.shutdown = true
	a.now = a.opts.Now()
	for _, s := range a.streams {
		for len(s.pending) > 0 {
			a.skipGap(s)
			a.drain(s)
		}
	}
	if reportOpen {
		for sp := range a.open.all() {
			a.emitUnfinished(sp, neverEnded("the assembler shut down while it was open"), time.Time{})
		}
	}
	return a.emit(ctx)
}

// settle packs the attributes of the spans the current call opened that are still
// open (the others have been recycled or packed already).
func (a *Assembler) settle() {
	for _, sp := range a.fresh {
		sp.settle(&a.packer)
	}
	if cap(a.fresh) > maxSpareOut {
		a.fresh = nil // a large call's; kept, it would hold their records
		return
	}
	clear(a.fresh)
	a.fresh = a.fresh[:0]
}

// Stats returns the counters so far.
func (a *Assembler) Stats() AssemblerStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.stats
	st.OpenSpans = a.open.len()
	st.LateSpans, st.LateBytes = len(a.late.spans), a.late.bytes
	st.Streams = len(a.streams) + len(a.parked)
	for _, s := range a.streams {
		st.Held += len(s.pending)
	}
	return st
}

// emit hands the spans completed so far to next. It is called with a.mu held and
// releases it, holding emitMu so that spans leave in the order they were completed.
func (a *Assembler) emit(ctx context.Context) error {
	a.settle()
	spans := a.out
	a.out = nil
	if len(spans) == 0 {
		a.mu.Unlock()
		return nil
	}
	a.emitMu.Lock()
	a.mu.Unlock()
	defer a.emitMu.Unlock()
	err := a.next.ConsumeSpans(ctx, spans)
	if cap(spans) <= maxSpareOut {
		clear(spans) // let go of what the spans refer to
		a.spareMu.Lock()
		a.spare = spans[:0]
		a.spareMu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("bridge: assembler: handing %d spans on: %w", len(spans), err)
	}
	return nil
}
