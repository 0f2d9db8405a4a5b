package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

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

// tailQueue is one tail's bounded queue and its worker. Its fields are laid out by
// cache line (see Queue layout in doc.go): keep that order.
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
	nudged   bool // Nudge was called: deliver without waiting for the batch to fill

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
	ok := q.admitLocked(e, size, opening)
	q.mu.Unlock()
	return ok
}

// admitLocked is publishLocked without the unlock.
func (q *tailQueue) admitLocked(e *Event, size *int, opening bool) bool {
	if q.journal.pending() {
		q.drainJournalLocked() // drops of e's stream may wait there
	}
	if q.closed {
		q.dropped++
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
	return true
}

// fitsLocked reports whether all of events (of estimated sizes) fit at once, with
// the diagnostics of the drop runs pending on their streams; opening events hold the
// whole batch to the reserve's limit (see the drop policy).
func (q *tailQueue) fitsLocked(events []Event, sizes []int) bool {
	if q.journal.pending() {
		q.drainJournalLocked()
	}
	if q.closed {
		return false
	}
	limitEvents, limitBytes := q.maxEvents, q.maxBytes
	needEvents, needBytes := len(events), 0
	var runs []StreamID // streams of the batch with a pending drop run: few
	for i := range events {
		needBytes += sizes[i]
		if k := events[i].Kind(); k == KindSpanOpen || k == KindOnset {
			limitEvents, limitBytes = q.softEvents, q.softBytes
		}
		if id := events[i].StreamID; q.runs.len() > 0 && q.runs.has(id) && !slices.Contains(runs, id) {
			runs = append(runs, id)
			needEvents++
			needBytes += diagnosticSize
		}
	}
	return q.heldLocked()+needEvents <= limitEvents && q.bytes+needBytes <= limitBytes
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
		if len(q.buf) < q.batchSize && q.fillSet == fillRoom && !q.closed && len(q.flushes) == 0 && !q.nudged {
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
		q.nudged = false
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
