package bridge

import "time"

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
	// DefaultMaxOpenSpansPerStream bounds the spans one stream (one producer's local
	// trace) holds open at once, so that one producer cannot take all of MaxOpenSpans.
	DefaultMaxOpenSpansPerStream = 10_000
	// DefaultMaxAttributesPerSpan bounds the distinct attribute keys kept per span;
	// further keys are dropped and counted (the span's DroppedAttributes).
	DefaultMaxAttributesPerSpan = 128
	// DefaultMaxEventsPerSpan bounds the span events (logs, exceptions) kept per span;
	// further ones are dropped and counted (the span's DroppedEvents).
	DefaultMaxEventsPerSpan = 128
	// DefaultMaxLateSpans is how many spans emitted as unfinished are remembered, so
	// that their real end, if it comes late, still yields the real span.
	DefaultMaxLateSpans = 10_000
	// DefaultMaxLateBytes bounds the estimated memory of those spans, in bytes (32 MiB).
	DefaultMaxLateBytes = 32 << 20
	// DefaultForgetLateAfter is how long a span emitted as unfinished is remembered.
	DefaultForgetLateAfter = 10 * time.Minute
)

// DefaultRequestHeaders are the request headers of a workerd fetch invocation recorded
// as http.request.header.<name> attributes (names match case-insensitively; see
// WithRequestHeaders). Headers that may hold secrets (authorization, cookie, ...) are
// not among them.
var DefaultRequestHeaders = []string{"accept", "content-type", "content-length", "x-request-id"}

// AssemblerOptions configure an Assembler. Zero fields take the defaults above.
type AssemblerOptions struct {
	// OrphanAfter: see DefaultOrphanAfter.
	OrphanAfter time.Duration
	// StreamTimeout: see DefaultStreamTimeout.
	StreamTimeout time.Duration
	// ReorderWindow: see DefaultReorderWindow.
	ReorderWindow int
	// MaxOpenSpans: see DefaultMaxOpenSpans.
	MaxOpenSpans int
	// MaxOpenSpansPerStream: see DefaultMaxOpenSpansPerStream; negative means no bound
	// but MaxOpenSpans.
	MaxOpenSpansPerStream int
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
	// MaxLateBytes: see DefaultMaxLateBytes; negative keeps none.
	MaxLateBytes int
	// ForgetLateAfter: see DefaultForgetLateAfter; negative keeps none.
	ForgetLateAfter time.Duration
	// KeepEvents keeps the events of each open span (and those held back for order),
	// so that Snapshot can return them; off by default, as it costs their memory.
	KeepEvents bool
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

// WithMaxOpenSpansPerStream bounds the spans one stream holds open at once; further
// SpanOpens of the stream are refused and counted (StreamOverflow). n < 0: no bound.
func WithMaxOpenSpansPerStream(n int) AssemblerOption {
	return func(o *AssemblerOptions) { o.MaxOpenSpansPerStream = n }
}

// WithMaxLateSpans sets how many unfinished-emitted spans are remembered for a late end.
func WithMaxLateSpans(n int) AssemblerOption {
	return func(o *AssemblerOptions) { o.MaxLateSpans = n }
}

// WithMaxLateBytes bounds the estimated bytes of the spans remembered for a late end.
func WithMaxLateBytes(n int) AssemblerOption {
	return func(o *AssemblerOptions) { o.MaxLateBytes = n }
}

// WithForgetLateAfter sets how long an unfinished-emitted span is remembered for a
// late end.
func WithForgetLateAfter(d time.Duration) AssemblerOption {
	return func(o *AssemblerOptions) { o.ForgetLateAfter = d }
}

// WithKeepEvents keeps the open spans' events for Snapshot.
func WithKeepEvents() AssemblerOption {
	return func(o *AssemblerOptions) { o.KeepEvents = true }
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
