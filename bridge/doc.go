// Package bridge holds the STW event model, the streaming tail pipeline that carries
// events from producers to tails, and the assembler that turns events back into
// complete spans.
//
// The model follows workerd's Streaming Tail Workers: one envelope (Event) around a
// closed union of bodies. A stream is the local counterpart of an STW invocation: one
// local root span and its local descendants, numbered by Sequence from 0 without gaps.
//
// # Pipeline
//
// A Pipeline gives each tail its own bounded queue and worker goroutine. A batch goes
// to a tail when it holds BatchSize events, when the queue is 90% full (by count or
// bytes), or FlushInterval after the tail's worker found the first event of the batch
// waiting. Each Consume call gets a ConsumeTimeout deadline. A tail that delivers
// elsewhere may take its time: a slow Consume slows the worker, and the queue absorbs
// what comes meanwhile (the back-pressure of otlpexport). The queue is then the one
// place on the path where events wait and can be dropped.
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
// Diagnostics. Every drop is counted (Stats, StatsByTail). Drops are also reported in
// the stream itself, as workerd's droppedEvents: for each run of consecutive dropped
// events of a stream, the tail later receives a StreamDiagnostic{DroppedEvents: n}
// whose envelope carries the stream's StreamID and TraceID and, as Sequence, the
// sequence number of the last event of the run. It comes in order: after the events
// of the stream delivered before the run, and before the next event of the stream, or
// as soon as the queue has room if the stream publishes nothing more. A receiver can
// therefore account for sequence numbers Sequence-n+1 through Sequence. The
// diagnostic's SpanID is zero, its Time that of the last dropped event, its Resource
// and Scope those of the first. A diagnostic takes room in the queue like any event,
// except that ForceFlush and Shutdown queue the pending ones even when the queue is
// full (at most 1024 small events more). A tail tracks unreported drops of at most
// 1024 streams at a time; drops of further streams are counted (UntrackedDrops) but
// not reported.
//
// Queue layout. A tailQueue's fields are laid out for producers on several cores (a
// heap object this large starts on a cache line): what Publish writes (the lock, buf,
// bytes, accepted) shares the first cache line, what it only reads (fill, the bounds)
// has the second, so that a Publish takes one line of the queue from another core,
// besides the slot it fills, and the check of fill misses no cache while the queue is
// full. The third line holds what a drop writes.
package bridge
