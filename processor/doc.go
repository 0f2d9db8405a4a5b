// Package processor is a drop-in OpenTelemetry SDK SpanProcessor that streams the
// lifecycle of spans the moment it happens, in the event model of Cloudflare's
// Streaming Tail Workers (package bridge), instead of exporting each span once it ends.
//
//	exp, err := otlpexport.New(ctx)          // or any bridge.Tail
//	p := processor.New(exp)
//	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
//	tp := p.Wrap(sdk)                        // SetName streams UpdateName at once
//	defer sdk.Shutdown(ctx)                  // spans still open are sent as unfinished
//
// # Events
//
// OnStart publishes SpanOpen with everything known at start (name, kind, ids, parent,
// trace state and flags, start time, attributes, links, resource and scope). OnEnd
// publishes SpanEndData: end time, status, the attributes added or changed since
// SpanOpen, all span events, the links added after start, the dropped counts and the
// child count. Between them come UpdateName (renames), and, for spans of Wrap,
// Attributes and StatusUpdate. Every event of a span shares its Resource and Scope
// pointers with the others.
//
// Sampling follows the BatchSpanProcessor: only sampled spans are published (the SDK
// calls OnStart only for recording spans; recording but unsampled ones are skipped, as
// the BatchSpanProcessor skips them in OnEnd).
//
// # Streams
//
// A stream is one local root span (no parent, or a remote parent) and its local
// descendants: the local counterpart of an STW invocation. Its events are numbered
// from 0 by Sequence and published in sequence order, whichever goroutines start,
// rename and end its spans.
//
// Every stream has a random 128-bit StreamID of its own, carried on each of its
// events. It is not the trace id, which a trace shares across processes (and a
// custom IDGenerator may repeat).
//
// As docs/PROTOCOL.md says, a stream ends with its root's SpanEndData when no other
// span of it is open then, the common case: no event follows, not even an Outcome.
// When a descendant outlives the root, an Outcome "ok" ends the stream after the last
// of them ends (and so it does when the root's own SpanOpen or SpanEndData was
// dropped). At Shutdown, the spans still open are sent as unfinished, roots first: a
// stream with other spans open then ends with an Outcome "canceled" after their
// SpanEndData. A span started under a parent whose stream has already ended (work
// outliving its request, say) opens a stream of its own; so does a span whose parent
// ended before it started, unless that parent was a span of Wrap. SpanOpen always
// names the real parent, so the trace is whole either way.
//
// # Renames
//
// The SDK tells no processor about SetName, so renames reach the stream three ways,
// and none is lost or reported after the span's SpanEndData:
//
//   - Spans of Wrap publish UpdateName inside SetName.
//   - A background scan (every Options.ScanInterval) compares the name of each open
//     span with the last one published, for renames through spans Wrap did not wrap.
//   - OnEnd publishes a last UpdateName when the ending name differs from the last one
//     published.
//
// # Liveness
//
// While a stream has open spans, a stream that published nothing for
// Options.HeartbeatInterval gets a Heartbeat event (within one scan period after), so
// a receiver can tell a slow span from a crashed producer: a stream without an event
// for a few heartbeat intervals has lost its producer. One goroutine does the scan
// and the heartbeats; the hot path only records which period it last published in.
//
// # Never blocking the application
//
// OnStart, OnEnd and the methods of wrapped spans do no I/O and never wait: events go
// to a bounded bridge.Pipeline whose Publish drops rather than blocks. A dropped event
// still takes its sequence number and the pipeline reports the run of dropped numbers
// to the sink in a StreamDiagnostic; when a SpanOpen is dropped, the later events of
// that span are not published at all (counted in Stats.Suppressed), so an end never
// arrives without its open. The per-stream lock held while publishing covers a copy
// into the queue only.
//
// That queue is the one place where events wait and can be dropped: the sink may take
// its time (otlpexport waits for room among a few requests in flight rather than
// queueing again), which slows the pipeline's worker while the queue absorbs a burst.
// Stats.Dropped counts the queue's drops, Stats.Lost what the sink gave up after it:
// together, the whole path.
//
// # Shutdown and ForceFlush
//
// Shutdown publishes every span still open as SpanEndData with Unfinished set, status
// Error (UnfinishedDescription) and end time now, then shuts the pipeline down, which
// delivers what is queued and shuts the sink down. ForceFlush publishes pending
// renames (when the scan is on) and delivers everything published so far, then
// flushes the sink; with otlpexport both return once the receiver acknowledged it all.
// Both honour their context's deadline, and then, or when events were lost meanwhile,
// return an error that says how many events were not delivered (queued, in flight, or
// given up). Shutdown may be called twice (the second call returns nil), and after it
// ForceFlush returns nil and new spans are ignored.
//
// # Configuration
//
// Options (see Options for every field and its default) set the queue bounds, batch
// size, flush interval, export timeout, scan and heartbeat intervals, and attribute
// limits (MaxAttributes per event, MaxAttributeValueLength in bytes: longer values
// are cut at a UTF-8 boundary, and both are counted in Stats). When an option is not
// given, the BatchSpanProcessor's environment variables apply, with the same meaning:
//
//   - OTEL_BSP_MAX_QUEUE_SIZE: the queue bound, counted in events, not spans (a span
//     takes one when it ends within the announce delay, else at least two, its open
//     and its end, and a stream whose root does not end last one more, its Outcome). A count above DefaultMaxQueueEvents also raises
//     the byte bound in proportion, unless WithMaxQueueBytes is given.
//   - OTEL_BSP_SCHEDULE_DELAY: the flush interval, in milliseconds.
//   - OTEL_BSP_MAX_EXPORT_BATCH_SIZE: the batch size, in events (at most the queue size).
//   - OTEL_BSP_EXPORT_TIMEOUT: the bound of one delivery to the sink, in milliseconds
//     (default 2 min, not the BatchSpanProcessor's 30 s: see DefaultExportTimeout).
//
// and one of stwbridge's own:
//
//   - STWBRIDGE_ANNOUNCE_DELAY: how long a span's SpanOpen is held back, in
//     milliseconds (default: the flush interval). A span that ends sooner is sent as
//     one CompleteSpan event (protocol 1.1, docs/PROTOCOL.md; a root with nothing else
//     in its stream travels alone, without stream id or sequence); one still open then is
//     announced as it stands. 0 announces every span the moment it starts, as a
//     protocol 1.0 producer does (for a receiver that speaks only 1.0).
//
// Invalid values are logged and ignored.
package processor
