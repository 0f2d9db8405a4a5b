// Package bridge holds the STW event model, the streaming tail pipeline that carries
// events from producers to tails, and the assembler that turns events back into
// complete spans.
//
// The model follows workerd's Streaming Tail Workers: one envelope (Event) around a
// closed union of bodies. A stream is the local counterpart of an STW invocation: one
// local root span and its local descendants, numbered by Sequence from 0 without gaps.
//
// # Assembler
//
// The Assembler turns events back into complete spans: SpanOpen + UpdateName* +
// Attributes* + StatusUpdate* + SpanEndData make one span with the last name and the
// merged attributes (a later value of a key wins; SpanEndData's attributes are merged
// last). Its code is split by job: assembler.go (lifecycle: Consume, Sweep, Shutdown),
// assembler_order.go (the per-stream reorder buffer), assembler_streams.go (stream
// state and idle-stream parking), assembler_spans.go (span merging and emission),
// assembler_record.go, assembler_pack.go and assembler_table.go (an open span's
// compact record, its packed attributes, the table of open spans),
// assembler_late.go (spans remembered after their unfinished report, and
// ReleaseMemory), assembler_snapshot.go (Snapshot) and invocation.go (workerd events).
//
// Memory. A span may stay open for minutes, and a forwarder holds many: an open span
// is kept compact (about 200 bytes for a span with a few short attributes), its
// attributes packed in one string once the call that opened it returns. A span that
// opens and ends in one call (a CompleteSpan always) is never packed.
//
// Order. Per stream, events are put back in Sequence order within ReorderWindow events
// and ReorderTimeout; duplicates are dropped. A StreamDiagnostic{DroppedEvents: n}
// stands for the n sequence numbers up to and including its own: they are not waited
// for. (workerd numbers its streamDiagnostic after the events it dropped, so for a
// workerd stream with drops the missing numbers are waited for ReorderTimeout, then
// counted as gaps.) A sequence number above MaxSequence cannot be real and its event is
// rejected, so the count of gaps stays meaningful.
//
// Streams. A stream ends with its Outcome, or with no Outcome when the SpanEndData of
// its root is applied while no other span of the stream is open (docs/PROTOCOL.md,
// "Streams, order and sequence numbers"). Its root is the span of its first SpanOpen
// whose parent is zero, remote, or not a span of the stream (in practice its first
// SpanOpen). A workerd invocation (a stream with an Onset) ends at its Outcome only.
// An ended stream holds no span but is remembered a while (see Sweep), so that retried
// duplicates are recognised rather than assembled twice; events that follow its end in
// sequence are still applied (nothing is lost when a receiver that missed the real
// root took another span for it), a SpanOpen among them choosing a new root. A stream
// whose root ended while a descendant was open ends at its Outcome; if none comes,
// Sweep forgets it like any silent stream. Streams with nothing open or held back are
// parked in a form without pointers, which the garbage collector need not scan.
//
// Bounds. At most MaxOpenSpans spans are open at once, and at most
// MaxOpenSpansPerStream of one stream; SpanOpens past either are refused and counted
// (Overflow, StreamOverflow), and the later events of a refused span are rejected. The
// open-span table is the Assembler's alone: with KeepEvents it also keeps each open
// span's events, and Snapshot returns them (with the events held back for order) for a
// caller that persists them and feeds them to a new Assembler after a restart.
//
// Unfinished spans. Spans that never end come out unfinished (Unfinished set, status
// Error with the reason) when their stream ends (Outcome), when Sweep finds them open
// longer than OrphanAfter or their stream silent longer than StreamTimeout, at
// Shutdown, or when the producer reports them so (SpanEndData.Unfinished, which gives
// their end). Their End is the last moment the assembler knew them alive: the latest
// time of an event of the span or of its stream, heartbeats included; never their
// Start unless nothing came after it. The stw.unfinished attribute is the exporter's
// job. Such a span is remembered (MaxLateSpans, MaxLateBytes, ForgetLateAfter, the
// oldest forgotten first) so that a real end arriving late still yields the real span;
// ReleaseMemory forgets them all at once, with the parked streams, when memory is
// short.
//
// Invocations. The STW invocation events (Onset, Return, Exception, Log, Outcome) are
// mapped as invocation.go describes: Onset opens the invocation's root span, Outcome
// ends it, and Log and Exception become span events ("log", "exception") of their span.
// A span opened with no kind (workerd gives none) is Internal, OTel's default.
//
// Concurrency. Consume, Sweep, Shutdown, Snapshot and Stats are safe to call
// concurrently; spans reach the SpanConsumer from one call at a time, in order.
// Emitted spans may share slices with the events they came from: consumers must not
// modify them. The slice of spans handed to the SpanConsumer is reused once
// ConsumeSpans returns: consumers keep the spans (copies of the values), not the slice.
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
