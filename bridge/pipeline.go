package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the pipeline.
const (
	// DefaultMaxQueueEvents is the number of events a tail's queue holds (4096: two
	// events per span of the BatchSpanProcessor's 2048-span queue).
	DefaultMaxQueueEvents = 4096
	// DefaultMaxQueueBytes bounds a tail's queue by the estimated size of its events, in bytes.
	DefaultMaxQueueBytes = 8 << 20
	// DefaultBatchSize is the largest batch handed to a tail, in events.
	DefaultBatchSize = 512
	// DefaultFlushInterval is how long an event waits at most for its batch to fill:
	// short, so a span is visible while it is open.
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultConsumeTimeout bounds one Consume call of a tail.
	DefaultConsumeTimeout = 30 * time.Second
)

const (
	// maxDropStreams bounds, per tail, the streams whose drops are remembered until
	// their StreamDiagnostic is delivered. Drops of further streams are counted in
	// PipelineStats.UntrackedDrops and reported by no diagnostic.
	maxDropStreams = 1024
	// errorLogInterval is the least time between two log lines about failed Consume
	// calls of one tail; the failures in between are counted in the next line.
	errorLogInterval = 10 * time.Second
)

// PipelineOptions configure a Pipeline. Zero or negative fields take the defaults above.
type PipelineOptions struct {
	MaxQueueEvents int           // events per tail queue; default DefaultMaxQueueEvents
	MaxQueueBytes  int           // estimated bytes (Event.Size) per tail queue; default DefaultMaxQueueBytes
	BatchSize      int           // largest batch per Consume, at most MaxQueueEvents; default DefaultBatchSize
	FlushInterval  time.Duration // longest wait for a batch to fill; default DefaultFlushInterval
	ConsumeTimeout time.Duration // deadline of each Consume call; default DefaultConsumeTimeout
	Logger         *slog.Logger  // where failed Consume calls are reported; default slog.Default()
}

// PipelineOption changes PipelineOptions.
type PipelineOption func(*PipelineOptions)

// WithMaxQueueEvents bounds each tail's queue by event count.
func WithMaxQueueEvents(n int) PipelineOption {
	return func(o *PipelineOptions) { o.MaxQueueEvents = n }
}

// WithMaxQueueBytes bounds each tail's queue by the estimated bytes of its events.
func WithMaxQueueBytes(n int) PipelineOption { return func(o *PipelineOptions) { o.MaxQueueBytes = n } }

// WithBatchSize sets the largest batch handed to a tail.
func WithBatchSize(n int) PipelineOption { return func(o *PipelineOptions) { o.BatchSize = n } }

// WithFlushInterval sets how long an event waits at most for its batch to fill.
func WithFlushInterval(d time.Duration) PipelineOption {
	return func(o *PipelineOptions) { o.FlushInterval = d }
}

// WithConsumeTimeout bounds each Consume call of a tail.
func WithConsumeTimeout(d time.Duration) PipelineOption {
	return func(o *PipelineOptions) { o.ConsumeTimeout = d }
}

// WithLogger sets the logger for delivery errors (default slog.Default()).
func WithLogger(l *slog.Logger) PipelineOption { return func(o *PipelineOptions) { o.Logger = l } }

func (o *PipelineOptions) setDefaults() {
	if o.MaxQueueEvents <= 0 {
		o.MaxQueueEvents = DefaultMaxQueueEvents
	}
	if o.MaxQueueBytes <= 0 {
		o.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	o.BatchSize = min(o.BatchSize, o.MaxQueueEvents)
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.ConsumeTimeout <= 0 {
		o.ConsumeTimeout = DefaultConsumeTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// PipelineStats are the pipeline's counters, summed over its tails.
type PipelineStats struct {
	Published uint64 // events accepted by Publish, counted once per tail
	// Dropped counts events a tail never received: its queue had no room (see the drop
	// policy of Pipeline), Publish came after Shutdown, or Shutdown's deadline passed
	// before they were delivered.
	Dropped     uint64
	Delivered   uint64 // events handed to a tail's Consume, diagnostics included
	Failed      uint64 // events in batches whose Consume returned an error
	QueueDepth  int    // events held now: queued or being delivered
	Diagnostics uint64 // StreamDiagnostic events the pipeline added to report drops
	// UntrackedDrops counts the drops of streams beyond the per-tail limit of streams
	// with unreported drops (1024); no StreamDiagnostic reports them.
	UntrackedDrops uint64
}

func (s *PipelineStats) add(o PipelineStats) {
	s.Published += o.Published
	s.Dropped += o.Dropped
	s.Delivered += o.Delivered
	s.Failed += o.Failed
	s.QueueDepth += o.QueueDepth
	s.Diagnostics += o.Diagnostics
	s.UntrackedDrops += o.UntrackedDrops
}

// Pipeline is the streaming tail pipeline: producers Publish events, each tail gets
// them in batches from its own bounded queue and worker, so a slow tail never stalls
// a fast one and Publish never blocks.
//
// A batch goes to a tail when it holds BatchSize events, when the queue is 90% full
// (by count or bytes), or FlushInterval after the tail's worker found the first event
// of the batch waiting. Per stream, a tail receives
// events in the order they were published.
//
// Drop policy. Each tail's queue holds at most MaxQueueEvents events and MaxQueueBytes
// estimated bytes (Event.Size), counting the events being delivered. When an event
// does not fit, that tail drops it; other tails are not affected. The last tenth of
// both bounds is kept for events of spans and invocations already announced: a new
// SpanOpen or Onset is dropped once the queue is 90% full, while UpdateName,
// Attributes, StatusUpdate, SpanEndData, Log, Outcome and the other events may use the
// queue to the end. So under pressure whole spans are shed, rather than the end of a
// span whose start went out.
//
// Every drop is counted (Stats, StatsByTail). Drops are also reported in the stream
// itself, as workerd's droppedEvents: for each run of consecutive dropped events of a
// stream, the tail later receives a StreamDiagnostic{DroppedEvents: n} whose envelope
// carries the stream's StreamID and TraceID and, as Sequence, the sequence number of
// the last event of the run. It comes in order: after the events of the stream
// delivered before the run, and before the next event of the stream, or as soon as
// the queue has room if the stream publishes nothing more. A receiver can therefore
// account for sequence numbers Sequence-n+1 through Sequence. The diagnostic's SpanID
// is zero, its Time that of the last dropped event, its Resource and Scope those of
// the first. A diagnostic takes room in the queue like any event, except that
// ForceFlush and Shutdown queue the pending ones even when the queue is full (at most
// 1024 small events more). A tail tracks unreported drops of at most 1024 streams at
// a time; drops of further streams are counted (UntrackedDrops) but not reported.
type Pipeline struct {
	tails    []*tailQueue
	shutdown atomic.Bool
}

// NewPipeline starts a pipeline delivering to tails, one worker goroutine per tail.
// Nil tails are ignored.
func NewPipeline(tails []Tail, opts ...PipelineOption) *Pipeline {
	var o PipelineOptions
	for _, opt := range opts {
		opt(&o)
	}
	o.setDefaults()
	p := &Pipeline{}
	for i, t := range tails {
		if t == nil {
			continue
		}
		q := newTailQueue(i, t, &o)
		p.tails = append(p.tails, q)
		go q.run()
	}
	return p
}

// Publish enqueues e for every tail without blocking. It reports false when at least
// one tail dropped the event (its queue was full, or the pipeline is shut down).
//
// Publish never waits on a tail and does no I/O: it holds each tail's queue lock for
// a copy of the event, and when a full queue's lock is busy it records the drop
// without it. It does not allocate. The event must not be modified afterwards.
func (p *Pipeline) Publish(e Event) bool {
	size := -1 // e.Size(), computed once it is needed
	k := e.Kind()
	opening := k == KindSpanOpen || k == KindOnset
	ok := true
	for _, q := range p.tails {
		if fill := q.fill.Load(); fill == fillFull || fill == fillReserve && opening {
			// e will be dropped: rather than wait for a busy lock, record the drop
			// in the journal (see dropJournal).
			if !q.mu.TryLock() {
				if q.journal.record(&e) {
					ok = false
					continue
				}
				q.mu.Lock()
			}
		} else {
			if size < 0 {
				size = e.Size() // likely needed: out of the critical section
			}
			q.mu.Lock()
		}
		if !q.publishLocked(&e, &size, opening) {
			ok = false
		}
	}
	return ok
}

// ForceFlush delivers every event published before the call, then calls ForceFlush of
// the tails that implement Flusher; it returns ctx.Err() if the deadline passes first.
// Flusher calls run on the tail's worker, so a tail never sees Consume and ForceFlush
// at the same time. After Shutdown, ForceFlush does nothing.
func (p *Pipeline) ForceFlush(ctx context.Context) error {
	reqs := make([]*flushRequest, 0, len(p.tails))
	for _, q := range p.tails {
		if r := q.requestFlush(ctx); r != nil {
			reqs = append(reqs, r)
		}
	}
	var errs []error
	for _, r := range reqs {
		select {
		case <-r.done:
			if r.err != nil {
				errs = append(errs, r.err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops accepting events, delivers what is queued, then shuts down the tails
// that implement Shutdowner. It honours ctx's deadline; later calls return nil.
//
// If the deadline passes first, Shutdown returns ctx.Err(); each tail's worker then
// finishes its Consume call in progress (bounded by ConsumeTimeout), counts what is
// left as dropped, calls Shutdown of the tail with the expired ctx, and exits.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	if !p.shutdown.CompareAndSwap(false, true) {
		return nil
	}
	for _, q := range p.tails {
		q.stop(ctx)
	}
	var errs []error
	for _, q := range p.tails {
		select {
		case <-q.done:
			if q.shutdownErr != nil {
				errs = append(errs, q.shutdownErr)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters so far.
func (p *Pipeline) Stats() PipelineStats {
	var s PipelineStats
	for _, q := range p.tails {
		s.add(q.stats())
	}
	return s
}

// StatsByTail returns the counters of each tail, in the order given to NewPipeline
// (nil tails left out).
func (p *Pipeline) StatsByTail() []PipelineStats {
	out := make([]PipelineStats, len(p.tails))
	for i, q := range p.tails {
		out[i] = q.stats()
	}
	return out
}

// workerState tells producers whether the worker needs a wake-up.
type workerState uint8

const (
	workerBusy   workerState = iota // delivering or about to look at the queue
	workerIdle                      // waiting for a first event
	workerTiming                    // waiting for a full batch or FlushInterval
	workerWoken                     // a wake-up token is in the channel
)

// flushRequest is one ForceFlush waiting for a tail's worker.
type flushRequest struct {
	ctx    context.Context
	target uint64 // flush done when handled reaches target
	done   chan struct{}
	err    error // set before done is closed
}

// tailQueue is one tail's bounded queue and its worker.
//
// Its fields are laid out for producers on several cores (a heap object this large
// starts on a cache line): what Publish writes (the lock, buf, bytes, accepted) shares
// the first cache line, what it only reads (fill, the bounds) has the second, so
// that a Publish takes one line of the queue from another core, besides the slot it
// fills, and the check of fill misses no cache while the queue is full. The third
// line holds what a drop writes.
type tailQueue struct {
	// Guarded by mu.
	mu       sync.Mutex
	fillSet  uint32 // the value last stored in fill
	state    workerState
	closed   bool
	buf      []Event // queued, in publish order
	bytes    int     // estimated size of the events held
	accepted uint64  // events appended to buf so far, diagnostics included
	// handled counts the events delivered, failed or discarded so far: the events
	// held (queued or being delivered) are accepted-handled.
	handled uint64

	// fill tells Publish, without the lock, when an event cannot fit: then it drops
	// the event through the journal. Never fillFull or fillReserve after Shutdown.
	fill atomic.Uint32
	// sizes[i] is the Event.Size of buf[i]. Its length is the capacity of buf, so
	// that Publish writes a slot and never the header. Guarded by mu.
	sizes                 []int
	maxEvents, softEvents int // softEvents: limit for opening events (90%)
	maxBytes, softBytes   int

	// Guarded by mu.
	dropped uint64   // events dropped (PipelineStats.Dropped)
	runs    dropRuns // Publish reads it to find a pending drop run of its stream

	index          int
	tail           Tail
	log            *slog.Logger
	batchSize      int
	flushInterval  time.Duration
	consumeTimeout time.Duration

	wake chan struct{} // capacity 1; at most one token, see workerWoken
	done chan struct{} // closed when the worker exits

	// Guarded by mu. counters.Published and counters.Dropped are not kept here: see
	// accepted and dropped.
	counters PipelineStats
	stopCtx  context.Context
	flushes  []*flushRequest

	// Worker-only state.
	spare       []Event
	spareSizes  []int
	lastErrLog  time.Time
	suppressed  int
	shutdownErr error // set before done is closed

	journal dropJournal // last: its head changes at every drop without the lock
}

func newTailQueue(index int, t Tail, o *PipelineOptions) *tailQueue {
	return &tailQueue{
		index:          index,
		tail:           t,
		log:            o.Logger,
		maxEvents:      o.MaxQueueEvents,
		softEvents:     o.MaxQueueEvents - o.MaxQueueEvents/10,
		maxBytes:       o.MaxQueueBytes,
		softBytes:      o.MaxQueueBytes - o.MaxQueueBytes/10,
		batchSize:      o.BatchSize,
		flushInterval:  o.FlushInterval,
		consumeTimeout: o.ConsumeTimeout,
		wake:           make(chan struct{}, 1),
		done:           make(chan struct{}),
		state:          workerBusy,
		buf:            make([]Event, 0, o.BatchSize),
		sizes:          make([]int, o.BatchSize),
		spare:          make([]Event, 0, o.BatchSize),
		spareSizes:     make([]int, o.BatchSize),
	}
}

// diagnosticSize is the estimated size of an injected StreamDiagnostic event.
var diagnosticSize = (&Event{Body: &StreamDiagnostic{}}).Size()

// publishLocked appends e to the queue if it fits (see the drop policy on Pipeline)
// and unlocks q.mu, which the caller took. *size is e.Size(), or -1 until someone
// needs it: a drop for lack of room by count does not.
func (q *tailQueue) publishLocked(e *Event, size *int, opening bool) bool {
	if q.journal.pending() {
		q.drainJournalLocked() // drops of e's stream may wait there
	}
	if q.closed {
		q.dropped++
		q.mu.Unlock()
		return false
	}
	limitEvents, limitBytes := q.maxEvents, q.maxBytes
	if opening {
		limitEvents, limitBytes = q.softEvents, q.softBytes
	}
	// A pending drop run of this stream is reported right before the stream's next
	// event, so that event needs room for the diagnostic too.
	hasRun := q.runs.has(e.StreamID)
	needEvents, needBytes := 1, 0
	if hasRun {
		needEvents, needBytes = 2, diagnosticSize
	}
	fits := q.heldLocked()+needEvents <= limitEvents
	if fits {
		if *size < 0 {
			*size = e.Size()
		}
		needBytes += *size
		fits = q.bytes+needBytes <= limitBytes
	}
	if !fits {
		q.dropLocked(e)
		if q.state == workerIdle {
			// Nothing is queued (the event alone exceeds the byte bound): let the
			// worker report the drop now rather than at the next delivery.
			q.wakeLocked()
		}
		q.mu.Unlock()
		return false
	}
	if hasRun {
		d := diagnosticEvent(e.StreamID, q.runs.take(e.StreamID))
		q.appendLocked(&d, diagnosticSize)
		q.counters.Diagnostics++
	}
	q.appendLocked(e, *size)
	if q.state == workerIdle || (q.state == workerTiming && (len(q.buf) >= q.batchSize || q.fillSet != fillRoom)) {
		q.wakeLocked()
	}
	q.mu.Unlock()
	return true
}

// appendLocked queues a copy of *e, of estimated size size.
func (q *tailQueue) appendLocked(e *Event, size int) {
	n := len(q.buf)
	if n == cap(q.buf) {
		// Grow by hand so the buffer never exceeds the queue bound, unless forced
		// diagnostics already fill it (see injectDiagnosticsLocked).
		c := min(max(2*n, 16), q.maxEvents)
		if c <= n {
			c = 2 * n
		}
		q.buf = append(make([]Event, 0, c), q.buf...)
		sizes := make([]int, c)
		copy(sizes, q.sizes[:n])
		q.sizes = sizes
	}
	q.buf = append(q.buf, *e)
	q.sizes[n] = size
	q.bytes += size
	q.accepted++
	q.updateFullLocked()
}

// heldLocked returns the number of events held: queued or being delivered.
func (q *tailQueue) heldLocked() int { return int(q.accepted - q.handled) }

// Values of tailQueue.fill.
const (
	fillRoom    uint32 = iota // any event may fit
	fillReserve               // in the reserve: opening events do not fit
	fillFull                  // no event fits
)

// updateFullLocked keeps fill in step with the events and bytes held.
func (q *tailQueue) updateFullLocked() {
	fill := fillRoom
	held := q.heldLocked()
	switch {
	case q.closed:
	case held >= q.maxEvents || q.bytes >= q.maxBytes:
		fill = fillFull
	case held >= q.softEvents || q.bytes >= q.softBytes:
		fill = fillReserve
	}
	if fill != q.fillSet {
		q.fillSet = fill
		q.fill.Store(fill)
	}
}

// drainJournalLocked counts the drops of the journal and extends their runs.
func (q *tailQueue) drainJournalLocked() {
	q.journal.drain(q.recordDropLocked)
}

// dropLocked counts a dropped event and extends its stream's drop run.
func (q *tailQueue) dropLocked(e *Event) {
	q.dropped++
	if !q.runs.addEvent(e) {
		q.counters.UntrackedDrops++
	}
}

// recordDropLocked is dropLocked for a drop recorded in the journal.
func (q *tailQueue) recordDropLocked(d *droppedEvent) {
	q.dropped++
	if !q.runs.addDropped(d) {
		q.counters.UntrackedDrops++
	}
}

// diagnosticEvent reports run: see the drop policy on Pipeline.
func diagnosticEvent(id StreamID, run dropRun) Event {
	e := Event{
		TraceID:  run.traceID,
		StreamID: id,
		Sequence: run.lastSeq,
		Resource: run.resource,
		Scope:    run.scope,
		Body:     &StreamDiagnostic{DroppedEvents: run.count},
	}
	if run.lastTime != 0 {
		e.Time = time.Unix(0, run.lastTime)
	}
	return e
}

// injectDiagnosticsLocked queues the diagnostics of pending drop runs: those that fit,
// or all of them when force is set (for ForceFlush and Shutdown, which may exceed the
// queue's bounds by at most maxDropStreams small events). It is in order for each
// stream: a run is pending only while no later event of its stream was accepted.
func (q *tailQueue) injectDiagnosticsLocked(force bool) {
	for q.runs.len() > 0 {
		if !force && (q.heldLocked()+1 > q.maxEvents || q.bytes+diagnosticSize > q.maxBytes) {
			return
		}
		id, run := q.runs.pop()
		d := diagnosticEvent(id, run)
		q.appendLocked(&d, diagnosticSize)
		q.counters.Diagnostics++
	}
}

// wakeLocked hands the worker a wake-up token if it waits. The state guarantees at
// most one token in the channel, so the send never blocks.
func (q *tailQueue) wakeLocked() {
	if q.state == workerIdle || q.state == workerTiming {
		q.state = workerWoken
		q.wake <- struct{}{}
	}
}

func (q *tailQueue) requestFlush(ctx context.Context) *flushRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	// The drops reported so far are part of what is flushed.
	q.drainJournalLocked()
	q.injectDiagnosticsLocked(true)
	r := &flushRequest{ctx: ctx, target: q.accepted, done: make(chan struct{})}
	q.flushes = append(q.flushes, r)
	q.wakeLocked()
	return r
}

func (q *tailQueue) stop(ctx context.Context) {
	q.mu.Lock()
	q.closed = true
	q.updateFullLocked() // clears fill: later drops take the locked path
	q.stopCtx = ctx
	q.wakeLocked()
	q.mu.Unlock()
}

func (q *tailQueue) stats() PipelineStats {
	q.mu.Lock()
	q.drainJournalLocked()
	s := q.counters
	s.Published = q.accepted - s.Diagnostics
	s.Dropped = q.dropped
	s.QueueDepth = q.heldLocked()
	q.mu.Unlock()
	return s
}

// run is the worker: it waits for a batch, delivers it, and answers flushes, until
// the pipeline shuts down and the queue is empty.
func (q *tailQueue) run() {
	defer close(q.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		q.mu.Lock()
		for {
			// Drops wake an idle worker too (an event larger than the byte bound):
			// their diagnostics are queued here.
			q.drainJournalLocked()
			if q.runs.len() > 0 {
				q.injectDiagnosticsLocked(q.closed)
			}
			if len(q.buf) > 0 || q.closed || len(q.flushes) > 0 {
				break
			}
			q.state = workerIdle
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		if len(q.buf) < q.batchSize && q.fillSet == fillRoom && !q.closed && len(q.flushes) == 0 {
			q.state = workerTiming
			q.mu.Unlock()
			timer.Reset(q.flushInterval)
			timedOut := false
			select {
			case <-q.wake:
			case <-timer.C:
				timedOut = true
			}
			timer.Stop()
			q.mu.Lock()
			if timedOut && q.state == workerWoken {
				<-q.wake // sent under the lock before we took it: take the token back
			}
		}
		q.state = workerBusy
		batch, sizes := q.buf, q.sizes
		q.buf, q.spare = q.spare, nil
		q.sizes, q.spareSizes = q.spareSizes, nil
		stopCtx := q.stopCtx
		q.mu.Unlock()

		q.deliver(batch, sizes[:len(batch)], stopCtx)
		clear(batch)
		q.spare, q.spareSizes = batch[:0], sizes

		q.mu.Lock()
		finished := false
		if q.closed {
			q.drainJournalLocked()
			if q.stopCtx.Err() != nil {
				q.discardLocked()
			}
			finished = len(q.buf) == 0 && q.runs.len() == 0 && !q.journal.pending()
		}
		stopCtx = q.stopCtx
		q.mu.Unlock()
		if finished {
			q.finish(stopCtx)
			return
		}
	}
}

// deliver hands batch to the tail in chunks of at most batchSize events, then frees
// their room and answers the flushes they complete. It also answers flushes when batch
// is empty. When stopCtx (set by Shutdown) has expired, the rest is discarded.
func (q *tailQueue) deliver(batch []Event, sizes []int, stopCtx context.Context) {
	for {
		chunk := batch[:min(len(batch), q.batchSize)]
		batch = batch[len(chunk):]
		size := 0
		for _, n := range sizes[:len(chunk)] {
			size += n
		}
		sizes = sizes[len(chunk):]
		discard := stopCtx != nil && stopCtx.Err() != nil
		var err error
		if len(chunk) > 0 && !discard {
			err = q.consume(chunk)
		}
		q.mu.Lock()
		q.bytes -= size
		q.handled += uint64(len(chunk))
		q.updateFullLocked()
		q.drainJournalLocked()
		switch {
		case discard:
			q.dropped += uint64(len(chunk))
		case err != nil:
			q.counters.Delivered += uint64(len(chunk))
			q.counters.Failed += uint64(len(chunk))
		default:
			q.counters.Delivered += uint64(len(chunk))
		}
		if q.runs.len() > 0 && !discard {
			q.injectDiagnosticsLocked(false)
		}
		stopCtx = q.stopCtx // Shutdown may have come during the Consume call
		var ready []*flushRequest
		if len(q.flushes) > 0 {
			ready = q.takeReadyFlushesLocked()
		}
		q.mu.Unlock()
		q.answerFlushes(ready)
		if len(batch) == 0 {
			return
		}
	}
}

// consume calls the tail with a ConsumeTimeout deadline, turns a panic into an error,
// and logs failures at most once per errorLogInterval.
func (q *tailQueue) consume(events []Event) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), q.consumeTimeout)
	defer cancel()
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("tail panicked: %v", r)
			}
		}()
		err = q.tail.Consume(ctx, events)
	}()
	if err != nil {
		q.logFailure(len(events), err)
	}
	return err
}

func (q *tailQueue) logFailure(events int, err error) {
	now := time.Now()
	if !q.lastErrLog.IsZero() && now.Sub(q.lastErrLog) < errorLogInterval {
		q.suppressed++
		return
	}
	q.log.Warn("bridge: a tail failed to consume a batch; its events are lost to that tail",
		"tail", q.index, "tail_type", fmt.Sprintf("%T", q.tail), "events", events,
		"error", err, "failures_not_logged", q.suppressed)
	q.lastErrLog, q.suppressed = now, 0
}

// takeReadyFlushesLocked removes the flushes whose events are all handled.
func (q *tailQueue) takeReadyFlushesLocked() []*flushRequest {
	var ready []*flushRequest
	kept := q.flushes[:0]
	for _, r := range q.flushes {
		if q.handled >= r.target {
			ready = append(ready, r)
		} else {
			kept = append(kept, r)
		}
	}
	clear(q.flushes[len(kept):])
	q.flushes = kept
	return ready
}

// answerFlushes calls the tail's ForceFlush for each ready flush and releases it.
func (q *tailQueue) answerFlushes(ready []*flushRequest) {
	for _, r := range ready {
		if f, ok := q.tail.(Flusher); ok {
			if err := r.ctx.Err(); err != nil {
				r.err = err
			} else if err := f.ForceFlush(r.ctx); err != nil {
				r.err = fmt.Errorf("tail %d (%T) ForceFlush: %w", q.index, q.tail, err)
			}
		}
		close(r.done)
	}
}

// discardLocked drops what is left once Shutdown's deadline has passed.
func (q *tailQueue) discardLocked() {
	n := len(q.buf)
	q.dropped += uint64(n)
	for _, size := range q.sizes[:n] {
		q.bytes -= size
	}
	clear(q.buf)
	q.buf = q.buf[:0]
	q.handled += uint64(n)
	q.updateFullLocked()
	q.runs.clear() // their drops are counted; nobody is left to tell
}

// finish shuts the tail down and releases flushes still waiting.
func (q *tailQueue) finish(ctx context.Context) {
	if s, ok := q.tail.(Shutdowner); ok {
		if err := s.Shutdown(ctx); err != nil {
			q.shutdownErr = fmt.Errorf("tail %d (%T) Shutdown: %w", q.index, q.tail, err)
		}
	}
	q.mu.Lock()
	rest := q.flushes
	q.flushes = nil
	q.mu.Unlock()
	for _, r := range rest {
		close(r.done)
	}
}
