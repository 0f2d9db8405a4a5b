package otlpexport

import (
	"context"
	"errors"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/stwotlp"
)

// queueEvents encodes events straight to wire format, one request per sender shard
// (by stream) and per WithMaxRequestBytes, and hands them to the senders, waiting (within ctx) for room among the requests
// in flight.
func (e *Exporter) queueEvents(ctx context.Context, events []bridge.Event) error {
	var shard []uint16
	if len(e.shards) > 1 {
		shard = make([]uint16, len(events))
		for i := range events {
			shard[i] = uint16(e.shardOf(events[i].StreamID))
		}
	}
	var errs []error
	for k := range e.shards {
		var keep func(i int) bool
		if shard != nil {
			keep = func(i int) bool { return int(shard[i]) == k }
		}
		w := getWireBuf()
		var parts []stwotlp.Part
		w.b, parts = stwotlp.SplitEvents(w.b, events, e.maxRequestBytes, keep)
		errs = append(errs, e.queueParts(ctx, k, signalLogs, w, parts))
	}
	return errors.Join(errs...)
}

// queueSpans encodes complete spans straight to wire format, as requests of at most
// WithMaxRequestBytes, and queues them on shard k.
func (e *Exporter) queueSpans(ctx context.Context, spans []bridge.Span, k int) error {
	w := getWireBuf()
	var parts []stwotlp.Part
	w.b, parts = stwotlp.SplitSpans(w.b, spans, e.maxRequestBytes)
	return e.queueParts(ctx, k, signalTraces, w, parts)
}

// queueParts queues the encoded requests parts of w on shard k.
func (e *Exporter) queueParts(ctx context.Context, k int, sig signal, w *wireBuf, parts []stwotlp.Part) error {
	c, what := &e.logs.counters, "log records"
	if sig == signalTraces {
		c, what = &e.traces.counters, "spans"
	}
	dropped := 0
	w.refs.Store(int32(len(parts)) + 1) // and one for this loop, so that no early delivery returns w
	defer w.delivered()
	for _, p := range parts {
		wire := w.b[p.Start:p.End:p.End]
		if !e.push(ctx, k, &request{signal: sig, wire: wire, buf: w, items: p.Items, bytes: len(wire)}, c) {
			dropped += p.Items
		}
	}
	return e.dropError(dropped, what)
}
