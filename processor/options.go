package processor

import (
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
)

// Defaults of the processor. Options override them; the OTEL_BSP_* environment
// variables (see the package documentation) override the pipeline defaults when the
// matching option is not given.
const (
	// DefaultMaxQueueEvents is the number of events the queue holds, in events (6144:
	// three per span of the BatchSpanProcessor's 2048-span queue, its open and end
	// with room for renames, heartbeats and Outcomes).
	DefaultMaxQueueEvents = 6144
	// DefaultMaxQueueBytes bounds the queue by the estimated size of its events, in
	// bytes (12 MiB: the pipeline's 8 MiB per 4096 events, for 6144).
	DefaultMaxQueueBytes = 12 << 20
	// DefaultBatchSize is the largest batch handed to the sink, in events.
	DefaultBatchSize = bridge.DefaultBatchSize
	// DefaultFlushInterval is how long an event waits at most for its batch to fill
	// (100 ms): short, so that a span is visible while it is open.
	DefaultFlushInterval = bridge.DefaultFlushInterval
	// DefaultExportTimeout bounds one delivery to the sink (2 min): longer than the
	// BatchSpanProcessor's 30 s because a delivery to otlpexport waits for room among
	// its requests in flight, one of which may retry for up to a minute plus a 10 s
	// attempt; a slow receiver thus slows the delivery without failing it.
	DefaultExportTimeout = 2 * time.Minute
	// DefaultScanInterval is how often the open spans are scanned for renames made
	// through spans that Wrap did not wrap (200 ms).
	DefaultScanInterval = 200 * time.Millisecond
	// DefaultHeartbeatInterval is how long a stream with open spans stays silent before
	// the processor sends a Heartbeat on it (5 s).
	DefaultHeartbeatInterval = 5 * time.Second
	// DefaultAnnounceDelay is how long a span's SpanOpen is held back: a span that ends
	// sooner travels as one CompleteSpan event (protocol 1.1). It is the flush interval
	// (100 ms), so a span is announced about when its SpanOpen would have left anyway.
	DefaultAnnounceDelay = DefaultFlushInterval
	// DefaultMaxAttributes is the largest number of attributes one event carries (128,
	// the SDK's default span attribute limit); more are dropped and counted.
	DefaultMaxAttributes = 128
	// DefaultMaxAttributeValueLength is the longest string or byte value an attribute
	// keeps, in bytes (16 KiB); longer values are cut at a UTF-8 boundary and counted.
	DefaultMaxAttributeValueLength = 16 << 10
)

// Environment variables of the BatchSpanProcessor that the processor honours when the
// matching option is not given.
const (
	envMaxQueueSize   = "OTEL_BSP_MAX_QUEUE_SIZE"
	envScheduleDelay  = "OTEL_BSP_SCHEDULE_DELAY"
	envMaxExportBatch = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
	envExportTimeout  = "OTEL_BSP_EXPORT_TIMEOUT"
	// envAnnounceDelay is stwbridge's own: the announce delay in milliseconds, 0 to
	// announce every span the moment it starts.
	envAnnounceDelay = "STWBRIDGE_ANNOUNCE_DELAY"
)

// Options configure a Processor. Zero fields take the defaults (or the environment).
type Options struct {
	// MaxQueueEvents bounds the queue by event count. Default DefaultMaxQueueEvents,
	// or OTEL_BSP_MAX_QUEUE_SIZE.
	MaxQueueEvents int
	// MaxQueueBytes bounds the queue by the estimated bytes of its events. Default
	// DefaultMaxQueueBytes, raised in proportion when MaxQueueEvents is larger than
	// DefaultMaxQueueEvents.
	MaxQueueBytes int
	// BatchSize is the largest batch handed to the sink, in events. Default
	// DefaultBatchSize, or OTEL_BSP_MAX_EXPORT_BATCH_SIZE; never more than MaxQueueEvents.
	BatchSize int
	// FlushInterval is how long an event waits at most for its batch to fill. Default
	// DefaultFlushInterval, or OTEL_BSP_SCHEDULE_DELAY (milliseconds).
	FlushInterval time.Duration
	// ExportTimeout bounds one delivery to the sink. Default DefaultExportTimeout, or
	// OTEL_BSP_EXPORT_TIMEOUT (milliseconds).
	ExportTimeout time.Duration
	// ScanInterval is the period of the rename scan. Default DefaultScanInterval;
	// negative turns the scan off (renames through unwrapped spans are then reported at
	// the span's end only).
	ScanInterval time.Duration
	// HeartbeatInterval is how long a stream with open spans may stay silent before a
	// Heartbeat is sent on it. Default DefaultHeartbeatInterval; negative turns
	// heartbeats off.
	HeartbeatInterval time.Duration
	// AnnounceDelay is how long SpanOpen is held back; a span that ends within it is
	// sent as one CompleteSpan event. Default: the FlushInterval in effect, or
	// STWBRIDGE_ANNOUNCE_DELAY (milliseconds); negative (or 0 in the variable)
	// announces every span at once, as protocol 1.0 producers do.
	AnnounceDelay time.Duration
	// MaxAttributes is the largest number of attributes one event carries. Default
	// DefaultMaxAttributes; negative means no limit.
	MaxAttributes int
	// MaxAttributeValueLength is the longest string or byte value kept, in bytes.
	// Default DefaultMaxAttributeValueLength; negative means no limit.
	MaxAttributeValueLength int
	// Logger receives configuration warnings and delivery errors. Default slog.Default().
	Logger *slog.Logger
}

// Option changes Options.
type Option func(*Options)

// WithMaxQueueEvents bounds the queue by event count (overrides OTEL_BSP_MAX_QUEUE_SIZE).
func WithMaxQueueEvents(n int) Option { return func(o *Options) { o.MaxQueueEvents = n } }

// WithMaxQueueBytes bounds the queue by the estimated bytes of its events.
func WithMaxQueueBytes(n int) Option { return func(o *Options) { o.MaxQueueBytes = n } }

// WithBatchSize sets the largest batch handed to the sink, in events (overrides
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE).
func WithBatchSize(n int) Option { return func(o *Options) { o.BatchSize = n } }

// WithFlushInterval sets how long an event waits at most for its batch to fill
// (overrides OTEL_BSP_SCHEDULE_DELAY).
func WithFlushInterval(d time.Duration) Option { return func(o *Options) { o.FlushInterval = d } }

// WithExportTimeout bounds one delivery to the sink (overrides OTEL_BSP_EXPORT_TIMEOUT).
func WithExportTimeout(d time.Duration) Option { return func(o *Options) { o.ExportTimeout = d } }

// WithScanInterval sets the period of the rename scan; d < 0 turns it off.
func WithScanInterval(d time.Duration) Option { return func(o *Options) { o.ScanInterval = d } }

// WithHeartbeatInterval sets how long a stream with open spans may stay silent before
// a Heartbeat is sent on it; d < 0 turns heartbeats off.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(o *Options) { o.HeartbeatInterval = d }
}

// WithAnnounceDelay sets how long SpanOpen is held back (overrides
// STWBRIDGE_ANNOUNCE_DELAY); d <= 0 announces every span the moment it starts.
func WithAnnounceDelay(d time.Duration) Option {
	return func(o *Options) {
		if d <= 0 {
			d = -1 // resolved form of "at once": zero means the default
		}
		o.AnnounceDelay = d
	}
}

// WithMaxAttributes sets the largest number of attributes one event carries; n < 0
// means no limit.
func WithMaxAttributes(n int) Option { return func(o *Options) { o.MaxAttributes = n } }

// WithMaxAttributeValueLength sets the longest string or byte attribute value kept, in
// bytes; n < 0 means no limit.
func WithMaxAttributeValueLength(n int) Option {
	return func(o *Options) { o.MaxAttributeValueLength = n }
}

// WithLogger sets the logger for configuration warnings and delivery errors.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// resolveOptions applies opts over the environment and the defaults.
func resolveOptions(opts []Option) Options {
	var o Options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxQueueEvents <= 0 {
		o.MaxQueueEvents = envInt(o.Logger, envMaxQueueSize, DefaultMaxQueueEvents)
	}
	if o.MaxQueueBytes <= 0 {
		o.MaxQueueBytes = DefaultMaxQueueBytes
		if o.MaxQueueEvents > DefaultMaxQueueEvents {
			// A larger queue holds proportionally more bytes: the byte bound must not
			// silently undo a count the user raised.
			o.MaxQueueBytes = int(int64(DefaultMaxQueueBytes) * int64(o.MaxQueueEvents) / DefaultMaxQueueEvents)
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = envInt(o.Logger, envMaxExportBatch, DefaultBatchSize)
	}
	if o.BatchSize > o.MaxQueueEvents {
		o.BatchSize = o.MaxQueueEvents
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = envMillis(o.Logger, envScheduleDelay, DefaultFlushInterval)
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = envMillis(o.Logger, envExportTimeout, DefaultExportTimeout)
	}
	if o.ScanInterval == 0 {
		o.ScanInterval = DefaultScanInterval
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.AnnounceDelay == 0 {
		o.AnnounceDelay = envAnnounce(o.Logger, o.FlushInterval)
	}
	if o.MaxAttributes == 0 {
		o.MaxAttributes = DefaultMaxAttributes
	}
	if o.MaxAttributeValueLength == 0 {
		o.MaxAttributeValueLength = DefaultMaxAttributeValueLength
	}
	return o
}

// envInt reads a positive integer from the environment; a bad value is logged and the
// default used, as the SDK does.
func envInt(log *slog.Logger, name string, def int) int {
	s, ok := os.LookupEnv(name)
	if !ok || s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		log.Warn("stwbridge processor: ignoring environment variable: want a positive integer",
			"name", name, "value", s, "default", def)
		return def
	}
	return n
}

// envMillis reads a positive number of milliseconds from the environment.
func envMillis(log *slog.Logger, name string, def time.Duration) time.Duration {
	s, ok := os.LookupEnv(name)
	if !ok || s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		log.Warn("stwbridge processor: ignoring environment variable: want a positive number of milliseconds",
			"name", name, "value", s, "default", def)
		return def
	}
	return time.Duration(n) * time.Millisecond
}

// envAnnounce reads STWBRIDGE_ANNOUNCE_DELAY: milliseconds, 0 for at once (returned
// as -1, the resolved form of "off").
func envAnnounce(log *slog.Logger, def time.Duration) time.Duration {
	s, ok := os.LookupEnv(envAnnounceDelay)
	if !ok || s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		log.Warn("stwbridge processor: ignoring environment variable: want a number of milliseconds, 0 to announce spans at once",
			"name", envAnnounceDelay, "value", s, "default", def)
		return def
	}
	if n == 0 {
		return -1
	}
	return time.Duration(n) * time.Millisecond
}

// pipelineOptions turns the resolved Options into the pipeline's.
func (o *Options) pipelineOptions() []bridge.PipelineOption {
	return []bridge.PipelineOption{
		bridge.WithMaxQueueEvents(o.MaxQueueEvents),
		bridge.WithMaxQueueBytes(o.MaxQueueBytes),
		bridge.WithBatchSize(o.BatchSize),
		bridge.WithFlushInterval(o.FlushInterval),
		bridge.WithConsumeTimeout(o.ExportTimeout),
		bridge.WithLogger(o.Logger),
	}
}
