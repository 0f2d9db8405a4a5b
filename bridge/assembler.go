package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of the assembler.
const (
	// DefaultOrphanAfter is how long a span may stay open before it is exported as
	// unfinished.
	DefaultOrphanAfter = 10 * time.Minute
	// DefaultStreamTimeout is how long a stream with open spans may stay silent (no
	// event, no heartbeat) before its producer is taken for dead and its open spans are
	// exported as unfinished.
	DefaultStreamTimeout = 30 * time.Second
	// DefaultReorderWindow is how many events per stream are held back to put late
	// events in sequence order.
	DefaultReorderWindow = 256
	// DefaultReorderTimeout is how long a stream waits at most for a missing sequence
	// number before going on without it (a stream first seen mid-way, or a lost event).
	DefaultReorderTimeout = 2 * time.Second
	// DefaultMaxOpenSpans bounds the spans held open at once.
	DefaultMaxOpenSpans = 100_000
	// DefaultMaxAttributesPerSpan bounds the distinct attribute keys kept per span;
	// further keys are dropped and counted (the span's DroppedAttributes).
	DefaultMaxAttributesPerSpan = 128
	// DefaultMaxEventsPerSpan bounds the span events (logs, exceptions) kept per span;
	// further ones are dropped and counted (the span's DroppedEvents).
	DefaultMaxEventsPerSpan = 128
	// DefaultMaxLateSpans is how many spans emitted as unfinished are remembered, so
	// that their real end, if it comes late, still yields the real span.
	DefaultMaxLateSpans = 10_000
)

// DefaultRequestHeaders are the request headers of a workerd fetch invocation recorded
// as http.request.header.<name> attributes (names match case-insensitively; see
// WithRequestHeaders). Headers that may hold secrets (authorization, cookie, ...) are
// not among them.
var DefaultRequestHeaders = []string{"accept", "content-type", "content-length", "x-request-id"}

// AssemblerOptions configure an Assembler. Zero fields take the defaults above.
type AssemblerOptions struct {
	OrphanAfter   time.Duration
	StreamTimeout time.Duration
	ReorderWindow int
	MaxOpenSpans  int
	// Now returns the current time (tests set it); default time.Now.
	Now func() time.Time
	// ReorderTimeout: see DefaultReorderTimeout.
	ReorderTimeout time.Duration
	// MaxAttributesPerSpan: see DefaultMaxAttributesPerSpan.
	MaxAttributesPerSpan int
	// MaxEventsPerSpan: see DefaultMaxEventsPerSpan.
	MaxEventsPerSpan int
	// MaxLateSpans: see DefaultMaxLateSpans; negative keeps none.
	MaxLateSpans int
	// RequestHeaders lists the request headers recorded on the root span of a workerd
	// fetch invocation, matched case-insensitively; nil means DefaultRequestHeaders,
	// empty none.
	RequestHeaders []string
}

// AssemblerOption changes AssemblerOptions.
type AssemblerOption func(*AssemblerOptions)

// WithOrphanAfter sets how long a span may stay open before it is emitted unfinished.
func WithOrphanAfter(d time.Duration) AssemblerOption {
	return func(o *AssemblerOptions) { o.OrphanAfter = d }
}

// WithStreamTimeout sets how long a stream may stay silent before its open spans are
// emitted unfinished.
func WithStreamTimeout(d time.Duration) AssemblerOption {
	return func(o *AssemblerOptions) { o.StreamTimeout = d }
}

// WithReorderWindow sets how many events per stream are held back to restore order.
func WithReorderWindow(n int) AssemblerOption {
	return func(o *AssemblerOptions) { o.ReorderWindow = n }
}

// WithReorderTimeout sets how long a stream waits at most for a missing sequence number.
func WithReorderTimeout(d time.Duration) AssemblerOption {
	return func(o *AssemblerOptions) { o.ReorderTimeout = d }
}

// WithMaxOpenSpans bounds the spans held open at once; further SpanOpens are refused
// and counted (Overflow).
func WithMaxOpenSpans(n int) AssemblerOption {
	return func(o *AssemblerOptions) { o.MaxOpenSpans = n }
}

// WithMaxAttributesPerSpan bounds the distinct attribute keys kept per span.
func WithMaxAttributesPerSpan(n int) AssemblerOption {
	return func(o *AssemblerOptions) { o.MaxAttributesPerSpan = n }
}

// WithMaxEventsPerSpan bounds the span events kept per span.
func WithMaxEventsPerSpan(n int) AssemblerOption {
	return func(o *AssemblerOptions) { o.MaxEventsPerSpan = n }
}

// WithMaxLateSpans sets how many unfinished-emitted spans are remembered for a late end.
func WithMaxLateSpans(n int) AssemblerOption {
	return func(o *AssemblerOptions) { o.MaxLateSpans = n }
}

// WithRequestHeaders sets the request headers recorded on the root span of a workerd
// fetch invocation, as http.request.header.<name> (name in lower case, value a
// one-string array), in place of DefaultRequestHeaders (accept, content-type,
// content-length, x-request-id). Names match case-insensitively ("X-Request-Id" and
// "x-request-id" are one header); WithRequestHeaders() with no name records none.
func WithRequestHeaders(names ...string) AssemblerOption {
	return func(o *AssemblerOptions) { o.RequestHeaders = append([]string{}, names...) }
}

// WithNow sets the clock (tests use a fake one).
func WithNow(now func() time.Time) AssemblerOption {
	return func(o *AssemblerOptions) { o.Now = now }
}

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

// Assembler turns events back into complete spans: SpanOpen + UpdateName* +
// Attributes* + StatusUpdate* + SpanEndData make one span with the last name and the
// merged attributes (a later value of a key wins; SpanEndData's attributes are merged
// last). It is a Tail; complete spans go to its SpanConsumer as soon as they end.
//
// Per stream, events are put back in Sequence order within ReorderWindow events and
// ReorderTimeout; duplicates are dropped. A StreamDiagnostic{DroppedEvents: n} stands
// for the n sequence numbers up to and including its own: they are not waited for.
// (workerd numbers its streamDiagnostic after the events it dropped, so for a workerd
// stream with drops the missing numbers are waited for ReorderTimeout, then counted as
// gaps.)
//
// A stream ends with its Outcome, or with no Outcome when the SpanEndData of its root
// is applied while no other span of the stream is open (docs/PROTOCOL.md, "Streams,
// order and sequence numbers"). Its root is the span of its first SpanOpen whose
// parent is zero, remote, or not a span of the stream (in practice its first
// SpanOpen). A workerd invocation (a stream with an Onset) ends at its Outcome only.
// An ended stream holds no span but is remembered a while (see Sweep), so that retried
// duplicates are recognised rather than assembled twice; events that follow its end in
// sequence are still applied (nothing is lost when a receiver that missed the real
// root took another span for it), a SpanOpen among them choosing a new root. A stream
// whose root ended while a descendant was open ends at its Outcome; if none comes,
// Sweep forgets it like any silent stream.
//
// Spans that never end come out unfinished (Unfinished set, status Error with the
// reason, End the last time anything was seen of the span or its stream): when their
// stream ends (Outcome), when Sweep finds them open longer than OrphanAfter or their
// stream silent longer than StreamTimeout, at Shutdown, or when the producer reports
// them so (SpanEndData.Unfinished). The stw.unfinished attribute is the exporter's job.
//
// The STW invocation events (Onset, Return, Exception, Log, Outcome) are mapped as
// invocation.go describes: Onset opens the invocation's root span, Outcome ends it,
// and Log and Exception become span events ("log", "exception") of their span. A span
// opened with no kind (workerd gives none) is Internal, OTel's default.
//
// Consume, Sweep, Shutdown and Stats are safe to call concurrently; spans reach the
// SpanConsumer from one call at a time, in order. Emitted spans may share slices with
// the events they came from: consumers must not modify them. The slice of spans handed
// to the SpanConsumer is reused once ConsumeSpans returns: consumers keep the spans
// (copies of the values), not the slice.
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
	parked   map[StreamID]parkedStream
	epoch    time.Time // the clock's first reading; parked arrival times count from it
	now      time.Time // the clock's reading at the start of the current call
	open     map[spanKey]*openSpan
	late     map[spanKey]*openSpan // emitted unfinished, kept for a late end
	lateFIFO []spanKey
	free     []*openSpan // finished spans' records, zeroed, for newSpan to reuse
	stats    AssemblerStats
	out      []Span // spans completed by the current call
	shutdown bool

	spareMu sync.Mutex // guards spare; taken last, under mu or emitMu
	spare   []Span     // out's storage, handed back by emit for the next call
}

// Bounds of what the assembler keeps for reuse: the records of finished spans, and
// the capacity of a slice of emitted spans (a larger one, as a shutdown or a sweep of
// many unfinished spans makes, is left to the garbage collector).
const (
	maxFreeSpans = 1024
	maxSpareOut  = 4096
)

var (
	_ Tail       = (*Assembler)(nil)
	_ Shutdowner = (*Assembler)(nil)
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
	// status is the span's own status, kept when it is emitted unfinished.
	status Status
	// subrequest marks workerd's fetch subrequest span (see normalizeSubrequest).
	subrequest bool
}

// seqRange is a closed range of sequence numbers accounted for by a StreamDiagnostic.
type seqRange struct{ lo, hi uint64 }

// held is an event held back for ordering, with the clock time it arrived.
type held struct {
	Event
	at time.Time
}

type streamState struct {
	id          StreamID
	next        uint64 // next sequence number to apply
	pending     []held // held back, sorted by Sequence, all > next
	dropped     []seqRange
	skipped     map[uint64]struct{} // gap numbers given up on; applied if they come late
	lastArrival time.Time           // clock time of the last event, heartbeats included
	lastTime    time.Time           // latest event time
	spans       *openSpan           // open spans of the stream (linked list)
	ended       bool
	droppedN    uint64 // events reported dropped by StreamDiagnostic events
	inv         *invocation
	// root is the stream's local root span once its first SpanOpen is applied
	// (hasRoot); its end closes the stream when no other span of it is open.
	root    spanKey
	hasRoot bool
}

// parkedStream is a stream with nothing open, held back or waited for, kept without
// pointers: what receive and Sweep need of it, and nothing else (a parked stream's
// gaps, drops and pending events are empty by construction).
type parkedStream struct {
	next        uint64
	droppedN    uint64
	lastArrival time.Duration // since Assembler.epoch
	lastTime    int64         // Unix nanoseconds; see packTime
	root        spanKey
	flags       uint8
}

// parkedStream flags.
const (
	parkedEnded = 1 << iota
	parkedHasRoot
	parkedInvocation // a workerd invocation whose root has ended
	parkedTimeZero   // lastTime is the zero Time
	parkedTimeLocal  // lastTime is in time.Local (else UTC)
)

// packTime packs t into Unix nanoseconds and flags, and reports whether unpackTime
// gives back exactly t (not so for a monotonic reading, another location, or a time
// out of the int64 nanosecond range).
func packTime(t time.Time) (ns int64, flags uint8, ok bool) {
	switch {
	case t.IsZero():
		flags = parkedTimeZero
	case t.Location() == time.Local:
		flags = parkedTimeLocal
		ns = t.UnixNano()
	default:
		ns = t.UnixNano()
	}
	return ns, flags, unpackTime(ns, flags) == t
}

func unpackTime(ns int64, flags uint8) time.Time {
	switch {
	case flags&parkedTimeZero != 0:
		return time.Time{}
	case flags&parkedTimeLocal != 0:
		return time.Unix(0, ns)
	}
	return time.Unix(0, ns).UTC()
}

// park moves s to a.parked when it holds nothing but what recognises duplicates and
// ends it (nothing open, held back, skipped or reported dropped ahead), and its times
// can be packed exactly; it leaves it alone otherwise.
func (a *Assembler) park(s *streamState) {
	if s.spans != nil || len(s.pending) > 0 || len(s.skipped) > 0 || len(s.dropped) > 0 ||
		!s.id.IsValid() || (s.inv != nil && s.inv.root != nil) {
		return
	}
	ns, flags, ok := packTime(s.lastTime)
	arrival := s.lastArrival.Sub(a.epoch)
	if !ok || !a.epoch.Add(arrival).Equal(s.lastArrival) {
		return
	}
	p := parkedStream{next: s.next, droppedN: s.droppedN, lastArrival: arrival, lastTime: ns, root: s.root, flags: flags}
	if s.ended {
		p.flags |= parkedEnded
	}
	if s.hasRoot {
		p.flags |= parkedHasRoot
	}
	if s.inv != nil {
		p.flags |= parkedInvocation
	}
	delete(a.streams, s.id)
	a.parked[s.id] = p
}

// unpark returns the state of stream id taken out of a.parked, or a new one.
func (a *Assembler) unpark(id StreamID) *streamState {
	p, ok := a.parked[id]
	if !ok {
		return &streamState{id: id}
	}
	delete(a.parked, id)
	s := &streamState{
		id:          id,
		next:        p.next,
		droppedN:    p.droppedN,
		lastArrival: a.epoch.Add(p.lastArrival),
		lastTime:    unpackTime(p.lastTime, p.flags),
		root:        p.root,
		ended:       p.flags&parkedEnded != 0,
		hasRoot:     p.flags&parkedHasRoot != 0,
	}
	if p.flags&parkedInvocation != 0 {
		s.inv = &invocation{}
	}
	return s
}

// NewAssembler returns an assembler that hands complete spans to next.
func NewAssembler(next SpanConsumer, opts ...AssemblerOption) *Assembler {
	o := AssemblerOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.OrphanAfter <= 0 {
		o.OrphanAfter = DefaultOrphanAfter
	}
	if o.StreamTimeout <= 0 {
		o.StreamTimeout = DefaultStreamTimeout
	}
	if o.ReorderWindow <= 0 {
		o.ReorderWindow = DefaultReorderWindow
	}
	if o.ReorderTimeout <= 0 {
		o.ReorderTimeout = DefaultReorderTimeout
	}
	if o.MaxOpenSpans <= 0 {
		o.MaxOpenSpans = DefaultMaxOpenSpans
	}
	if o.MaxAttributesPerSpan <= 0 {
		o.MaxAttributesPerSpan = DefaultMaxAttributesPerSpan
	}
	if o.MaxEventsPerSpan <= 0 {
		o.MaxEventsPerSpan = DefaultMaxEventsPerSpan
	}
	if o.MaxLateSpans == 0 {
		o.MaxLateSpans = DefaultMaxLateSpans
	}
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
		open:    make(map[spanKey]*openSpan),
		late:    make(map[spanKey]*openSpan),
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
// streams silent longer than StreamTimeout. It also stops waiting for sequence numbers
// missing longer than ReorderTimeout and forgets idle streams (no open span, nothing
// held back): an ended one StreamTimeout after its last event, another after twice
// that. Callers run it periodically, about every ReorderTimeout/2.
func (a *Assembler) Sweep(ctx context.Context) error {
	a.mu.Lock()
	now := a.opts.Now()
	a.now = now
	a.recent = nil
	for _, s := range a.streams {
		a.expireWait(s, now)
	}
	for _, s := range a.streams {
		silent := now.Sub(s.lastArrival)
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
	sinceEpoch := now.Sub(a.epoch)
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
	for _, sp := range a.open {
		if now.Sub(sp.openedAt) > a.opts.OrphanAfter {
			a.emitUnfinished(sp, neverEnded(reason), time.Time{})
		}
	}
	return a.emit(ctx)
}

// Shutdown applies the events still held back for ordering, then emits every span
// still open as unfinished. Later calls of Consume return ErrAssemblerShutdown.
func (a *Assembler) Shutdown(ctx context.Context) error { return a.stop(ctx, true) }

// Suspend is Shutdown for a caller that has kept the open spans' events elsewhere and
// feeds them to a new Assembler later (the forwarder's persistent queue): the spans
// still open are let go without being reported.
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
		for _, sp := range a.open {
			a.emitUnfinished(sp, neverEnded("the assembler shut down while it was open"), time.Time{})
		}
	}
	return a.emit(ctx)
}

// Stats returns the counters so far.
func (a *Assembler) Stats() AssemblerStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.stats
	st.OpenSpans = len(a.open)
	st.Streams = len(a.streams) + len(a.parked)
	for _, s := range a.streams {
		st.Held += len(s.pending)
	}
	return st
}

// emit hands the spans completed so far to next. It is called with a.mu held and
// releases it, holding emitMu so that spans leave in the order they were completed.
func (a *Assembler) emit(ctx context.Context) error {
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

// receive places one event in its stream's order and applies what has become ready.
func (a *Assembler) receive(e Event, now time.Time) *streamState {
	if e.Body == nil {
		a.stats.Rejected++
		return nil
	}
	s := a.recent
	if s == nil || s.id != e.StreamID {
		if s = a.streams[e.StreamID]; s == nil {
			s = a.unpark(e.StreamID)
			a.streams[e.StreamID] = s
		}
		a.recent = s
	}
	s.lastArrival = now
	if e.Time.After(s.lastTime) {
		s.lastTime = e.Time
	}
	if !e.StreamID.IsValid() {
		// No stream: no order to restore and no duplicates to recognise.
		a.stats.Events++
		a.apply(s, e)
		return nil
	}
	seq := e.Sequence
	if seq < s.next {
		if _, ok := s.skipped[seq]; ok {
			// A gap given up on was filled after all: apply it late rather than lose it.
			delete(s.skipped, seq)
			a.stats.Gaps--
			a.stats.Reordered++
			a.stats.Events++
			a.apply(s, e)
			return s
		}
		a.stats.Duplicates++
		return s
	}
	i, found := slices.BinarySearchFunc(s.pending, seq, func(p held, q uint64) int {
		switch {
		case p.Sequence < q:
			return -1
		case p.Sequence > q:
			return 1
		}
		return 0
	})
	if found {
		a.stats.Duplicates++
		return s
	}
	a.stats.Events++
	if seq == s.next && len(s.pending) == 0 {
		s.next++
		a.apply(s, e)
		a.drain(s)
		return s
	}
	if i < len(s.pending) {
		a.stats.Reordered++
	}
	s.pending = slices.Insert(s.pending, i, held{e, now})
	if d, ok := e.Body.(*StreamDiagnostic); ok {
		a.accountDropped(s, seq, d.DroppedEvents)
	}
	a.drain(s)
	for len(s.pending) > a.opts.ReorderWindow {
		a.skipGap(s)
		a.drain(s)
	}
	return s
}

// accountDropped records that the n sequence numbers up to and including seq (the
// StreamDiagnostic's own) were dropped by the producer: they are not waited for.
func (a *Assembler) accountDropped(s *streamState, seq, n uint64) {
	if n < 2 {
		return // the diagnostic's own number is all there is
	}
	lo := uint64(0)
	if seq >= n-1 {
		lo = seq - (n - 1)
	}
	if seq == 0 {
		return
	}
	hi := seq - 1
	if hi < s.next {
		return
	}
	lo = max(lo, s.next)
	s.dropped = append(s.dropped, seqRange{lo, hi})
}

// drain applies the held-back events that are next in order, skipping the numbers
// accounted for by StreamDiagnostic events.
func (a *Assembler) drain(s *streamState) {
	for {
		if len(s.pending) > 0 && s.pending[0].Sequence == s.next {
			e := s.pending[0].Event
			s.pending[0] = held{}
			s.pending = s.pending[1:]
			s.next++
			a.apply(s, e)
			continue
		}
		if !a.skipDropped(s) {
			break
		}
	}
	if len(s.pending) == 0 {
		s.pending = nil
	}
}

// skipDropped moves past sequence numbers a StreamDiagnostic accounted for.
func (a *Assembler) skipDropped(s *streamState) bool {
	for i := 0; i < len(s.dropped); i++ {
		r := s.dropped[i]
		if r.hi < s.next {
			s.dropped = slices.Delete(s.dropped, i, i+1)
			i--
			continue
		}
		if r.lo > s.next {
			continue
		}
		to := r.hi + 1
		if len(s.pending) > 0 && s.pending[0].Sequence < to {
			to = s.pending[0].Sequence
		}
		if to == s.next {
			return false
		}
		s.next = to
		return true
	}
	return false
}

// expireWait gives up on missing numbers once an event has been held back for them
// ReorderTimeout: it is applied with everything before it, so that a run of lost
// numbers costs one wait, not one each.
func (a *Assembler) expireWait(s *streamState, now time.Time) {
	upTo, expired := uint64(0), false
	for _, h := range s.pending {
		if now.Sub(h.at) >= a.opts.ReorderTimeout {
			upTo, expired = h.Sequence, true
		}
	}
	for expired && len(s.pending) > 0 && s.pending[0].Sequence <= upTo {
		a.skipGap(s)
		a.drain(s)
	}
}

// skipGap gives up on the numbers missing before the first held-back event, counting
// them as gaps and remembering (a bounded number of) them in case they come late.
func (a *Assembler) skipGap(s *streamState) {
	if len(s.pending) == 0 {
		return
	}
	to := s.pending[0].Sequence
	if to < s.next {
		// Cannot happen (receive keeps held-back events above next); never loop on it.
		s.pending = s.pending[1:]
		a.stats.Duplicates++
		return
	}
	if to == s.next {
		return // drain applies it
	}
	a.stats.Gaps += to - s.next
	if s.skipped == nil {
		s.skipped = make(map[uint64]struct{})
	}
	from := s.next
	if to-from > uint64(a.opts.ReorderWindow) {
		from = to - uint64(a.opts.ReorderWindow)
	}
	for q := from; q < to; q++ {
		s.skipped[q] = struct{}{}
	}
	// Keep the memory of given-up numbers bounded: forget the oldest.
	if over := len(s.skipped) - a.opts.ReorderWindow; over > 0 {
		keys := make([]uint64, 0, len(s.skipped))
		for q := range s.skipped {
			keys = append(keys, q)
		}
		slices.Sort(keys)
		for _, q := range keys[:over] {
			delete(s.skipped, q)
		}
	}
	s.next = to
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
		a.closeIfRootEnded(s, key)
	case *Heartbeat:
		// Liveness only: receive has noted the time.
	case *Onset:
		a.onset(s, e, b)
	case *Outcome:
		a.outcome(s, e, b)
	case *Log:
		a.log(s, e, b)
	case *Exception:
		a.exception(s, e, b)
	case *Return:
		a.ret(s, e, b)
	case *StreamDiagnostic:
		a.diagnostic(s, e, b)
	case *DiagnosticChannel:
		a.diagnosticChannel(s, e, b)
	default:
		a.stats.Rejected++
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
		if sp = a.late[key]; sp == nil {
			a.stats.Rejected++
			return
		}
		// Its unfinished form went out already: emit the real one too, from a copy, as
		// the emitted span shares slices with it.
		a.forgetLate(key)
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

func (a *Assembler) remember(sp *openSpan) {
	if a.opts.MaxLateSpans < 0 {
		return
	}
	key := spanKey{sp.span.TraceID, sp.span.SpanID}
	if _, ok := a.late[key]; !ok {
		a.lateFIFO = append(a.lateFIFO, key)
	}
	a.late[key] = sp
	for len(a.late) > a.opts.MaxLateSpans && len(a.lateFIFO) > 0 {
		old := a.lateFIFO[0]
		a.lateFIFO = a.lateFIFO[1:]
		delete(a.late, old)
	}
	if len(a.lateFIFO) > 2*a.opts.MaxLateSpans+16 {
		a.compactLate()
	}
}

func (a *Assembler) forgetLate(key spanKey) {
	delete(a.late, key)
	if len(a.lateFIFO) > 2*len(a.late)+16 {
		a.compactLate()
	}
}

// compactLate drops from the FIFO the keys already forgotten.
func (a *Assembler) compactLate() {
	kept := a.lateFIFO[:0]
	seen := make(map[spanKey]struct{}, len(a.late))
	for _, k := range a.lateFIFO {
		if _, ok := a.late[k]; !ok {
			continue
		}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		kept = append(kept, k)
	}
	a.lateFIFO = slices.Clip(kept)
}

// chooseRoot makes the span a SpanOpen opens the root of its stream when the stream
// has none yet and its parent is zero, remote or not a span of the stream. Streams
// without an id (no order) and workerd invocations (their Onset opens the root) have
// none.
func (a *Assembler) chooseRoot(s *streamState, key spanKey, b *SpanOpen) {
	if s.hasRoot || s.inv != nil || !s.id.IsValid() {
		return
	}
	if b.Parent.IsValid() && !b.RemoteParent {
		if p := a.open[spanKey{key.trace, b.Parent}]; p != nil && p.stream == s {
			return
		}
	}
	s.root, s.hasRoot = key, true
}

// closeIfRootEnded ends a stream whose root's SpanEndData (key) has just been applied
// while no other span of the stream is open: its producer sends no Outcome then.
func (a *Assembler) closeIfRootEnded(s *streamState, key spanKey) {
	if !s.hasRoot || s.root != key || s.spans != nil || s.inv != nil {
		return
	}
	a.endStream(s, "its root ended")
}

// endStream handles the end of a stream (its Outcome, or its root's end): its spans
// still open come out unfinished. What it keeps for ordering stays, bounded, until
// Sweep forgets the stream: the next sequence number (to recognise duplicates), the
// gaps given up on (an event that fills one late is still applied) and the drops a
// StreamDiagnostic reported ahead of it.
func (a *Assembler) endStream(s *streamState, reason string) {
	s.ended = true
	s.hasRoot = false
	for s.spans != nil {
		a.emitUnfinished(s.spans, neverEnded(reason), time.Time{})
	}
	s.dropped = slices.DeleteFunc(s.dropped, func(r seqRange) bool { return r.hi < s.next })
	if len(s.dropped) == 0 {
		s.dropped = nil
	}
}
