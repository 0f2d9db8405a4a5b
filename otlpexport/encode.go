package otlpexport

import (
	"errors"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/stwotlp"
)

// errInvalidUTF8 tells queueEventsWire's caller to take the message path, whose
// encoding reports the bad string.
var errInvalidUTF8 = errors.New("otlpexport: a string is not valid UTF-8")

// queueEventsWire encodes events straight to wire format, one request per sender shard
// (by stream) and per WithMaxRequestBytes, and queues them. It returns errInvalidUTF8,
// having queued nothing, when a string of the events is not valid UTF-8.
func (e *Exporter) queueEventsWire(events []bridge.Event) error {
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
			keep = func(i int) bool { return shard[i] == uint16(k) }
		}
		buf, parts, ok := stwotlp.SplitEvents(events, e.maxRequestBytes, keep)
		if !ok {
			return errInvalidUTF8
		}
		dropped := 0
		for _, p := range parts {
			wire := buf[p.Start:p.End:p.End]
			if !e.push(k, &request{signal: signalLogs, wire: wire, items: p.Items, bytes: len(wire)}, &e.logs.counters) {
				dropped += p.Items
			}
		}
		errs = append(errs, e.dropError(dropped, "log records"))
	}
	return errors.Join(errs...)
}
