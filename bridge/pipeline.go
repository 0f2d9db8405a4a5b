package bridge

import (
	"context"
	"log/slog"
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

// PipelineOptions configure a Pipeline. Zero fields take the defaults above.
type PipelineOptions struct {
	MaxQueueEvents int
	MaxQueueBytes  int
	BatchSize      int
	FlushInterval  time.Duration
	ConsumeTimeout time.Duration
	Logger         *slog.Logger
}

// PipelineOption changes PipelineOptions.
type PipelineOption func(*PipelineOptions)

// WithMaxQueueEvents bounds each tail's queue by event count.
func WithMaxQueueEvents(n int) PipelineOption { return func(o *PipelineOptions) { o.MaxQueueEvents = n } }

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

// PipelineStats are the pipeline's counters, summed over its tails.
type PipelineStats struct {
	Published  uint64 // events accepted by Publish, counted once per tail
	Dropped    uint64 // events dropped because a tail's queue was full
	Delivered  uint64 // events handed to a tail's Consume
	Failed     uint64 // events in batches whose Consume returned an error
	QueueDepth int    // events waiting now
}

// Pipeline is the streaming tail pipeline: producers Publish events, each tail gets
// them in batches from its own bounded queue and worker, so a slow tail never stalls
// a fast one and Publish never blocks.
type Pipeline struct {
	// implementation: see issue 2
}

// NewPipeline starts a pipeline delivering to tails.
func NewPipeline(tails []Tail, opts ...PipelineOption) *Pipeline {
	panic("not implemented yet")
}

// Publish enqueues e for every tail without blocking. It reports false when at least
// one tail dropped the event (its queue was full, or the pipeline is shut down).
func (p *Pipeline) Publish(e Event) bool { panic("not implemented yet") }

// ForceFlush delivers every event published before the call, then calls ForceFlush of
// the tails that implement Flusher; it returns ctx.Err() if the deadline passes first.
func (p *Pipeline) ForceFlush(ctx context.Context) error { panic("not implemented yet") }

// Shutdown stops accepting events, delivers what is queued, then shuts down the tails
// that implement Shutdowner. It honours ctx's deadline; later calls return nil.
func (p *Pipeline) Shutdown(ctx context.Context) error { panic("not implemented yet") }

// Stats returns the counters so far.
func (p *Pipeline) Stats() PipelineStats { panic("not implemented yet") }
