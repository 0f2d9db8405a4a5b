package bridge

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/stwbridge/stwbridge/internal/options"
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
	options.Positive(&o.MaxQueueEvents, DefaultMaxQueueEvents)
	options.Positive(&o.MaxQueueBytes, DefaultMaxQueueBytes)
	options.Positive(&o.BatchSize, DefaultBatchSize)
	o.BatchSize = min(o.BatchSize, o.MaxQueueEvents)
	options.Positive(&o.FlushInterval, DefaultFlushInterval)
	options.Positive(&o.ConsumeTimeout, DefaultConsumeTimeout)
	options.NonZero(&o.Logger, slog.Default())
}

// PipelineStats are the pipeline's counters, summed over its tails.
type PipelineStats struct {
	Published uint64 // events accepted by Publish, counted once per tail
	// Dropped counts events a tail never received: its queue had no room (see the drop
	// policy of Pipeline), Publish came after Shutdown, or Shutdown's deadline passed
	// before they were delivered.
	Dropped   uint64
	Delivered uint64 // events handed to a tail's Consume, diagnostics included
	Failed    uint64 // events in batches whose Consume returned an error
	// Refused counts events of PublishBatch calls refused as a whole (a queue could
	// not take them all): not taken, so neither dropped nor reported in the stream.
	Refused     uint64
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
	s.Refused += o.Refused
	s.QueueDepth += o.QueueDepth
	s.Diagnostics += o.Diagnostics
	s.UntrackedDrops += o.UntrackedDrops
}

// Pipeline is the streaming tail pipeline: producers Publish events, each tail gets
// them in batches from its own bounded queue and worker, so a slow tail never stalls
// a fast one and Publish never blocks. Per stream, a tail receives events in publish
// order. When a tail's queue is full, that tail drops the event, counts it, and later
// reports the run of drops in the stream as a StreamDiagnostic (see the package
// documentation: batching, drop policy, diagnostics).
type Pipeline struct {
	tails    []*tailQueue
	shutdown atomic.Bool
}

// NewPipeline starts a pipeline delivering to tails, one worker goroutine per tail.
// Nil tails are ignored.
func NewPipeline(tails []Tail, opts ...PipelineOption) *Pipeline {
	o := options.Apply(opts)
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

// PublishBatch enqueues all of events for every tail, or none of them: when a tail's
// queue cannot take them all (or the pipeline is shut down) it reports false and
// counts them as Refused, for the caller to refuse its sender's request as a whole
// (who retries: nothing is lost and no StreamDiagnostic is made). Like Publish it
// never waits on a tail; it takes every tail's lock at once. It copies the events: the
// caller may reuse the slice when it returns, but their bodies must not be modified
// afterwards.
func (p *Pipeline) PublishBatch(events []Event) bool {
	if len(events) == 0 {
		return true
	}
	sizes := make([]int, len(events))
	for i := range events {
		sizes[i] = events[i].Size()
	}
	for _, q := range p.tails {
		q.mu.Lock()
	}
	ok := true
	for _, q := range p.tails {
		if !q.fitsLocked(events, sizes) {
			ok = false
			break
		}
	}
	for _, q := range p.tails {
		if ok {
			for i := range events {
				k := events[i].Kind()
				q.admitLocked(&events[i], &sizes[i], k == KindSpanOpen || k == KindOnset)
			}
		} else {
			q.counters.Refused += uint64(len(events))
		}
		q.mu.Unlock()
	}
	return ok
}

// Nudge asks every tail's worker to deliver what it holds now, without waiting for
// its batch to fill or its flush interval to pass. It does not wait for the delivery.
func (p *Pipeline) Nudge() {
	for _, q := range p.tails {
		q.mu.Lock()
		q.nudged = true
		if q.state == workerTiming {
			q.wakeLocked()
		}
		q.mu.Unlock()
	}
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
