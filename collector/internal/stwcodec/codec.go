// Package stwcodec converts between the Collector's pdata and stwbridge's events and
// spans. It holds every call of this module into the STW ↔ OTLP codec, so that when
// the codec's package moves only the import below changes.
package stwcodec

import (
	"fmt"

	"github.com/stwbridge/stwbridge/bridge"
	stwotlp "github.com/stwbridge/stwbridge/otlpexport"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/proto"
)

// Decoded is what DecodeLogs found: the stw.* events (Events), the records that are
// not lifecycle events (Other), and one error per rejected stw.* record (Rejected).
type Decoded = stwotlp.DecodedLogs

var (
	logsMarshaler     plog.ProtoMarshaler
	logsUnmarshaler   plog.ProtoUnmarshaler
	tracesUnmarshaler ptrace.ProtoUnmarshaler
)

// DecodeLogs decodes the lifecycle records of ld; a bad record is rejected alone.
func DecodeLogs(ld plog.Logs) (Decoded, error) {
	data, err := logsMarshaler.MarshalLogs(ld)
	if err != nil {
		return Decoded{}, fmt.Errorf("serialising logs: %w", err)
	}
	return DecodeWire(data)
}

// DecodeWire decodes a serialised ExportLogsServiceRequest.
func DecodeWire(data []byte) (Decoded, error) { return stwotlp.DecodeEventsWire(data) }

// EncodeWire serialises events as an ExportLogsServiceRequest of stw.* records.
func EncodeWire(events []bridge.Event) ([]byte, error) {
	if wire, ok := stwotlp.AppendEventsWire(nil, events); ok {
		return wire, nil
	}
	// The tree encoder names what is wrong (invalid UTF-8, say).
	wire, err := proto.Marshal(stwotlp.EncodeEvents(events))
	if err != nil {
		return nil, fmt.Errorf("encoding %d events: %w", len(events), err)
	}
	return wire, nil
}

// EventsToLogs turns events into stw.* log records.
func EventsToLogs(events []bridge.Event) (plog.Logs, error) {
	wire, err := EncodeWire(events)
	if err != nil {
		return plog.Logs{}, err
	}
	return logsUnmarshaler.UnmarshalLogs(wire)
}

// SpansToTraces turns assembled spans into pdata traces; unfinished spans get status
// Error and stw.unfinished=true, as the forwarder exports them.
func SpansToTraces(spans []bridge.Span) (ptrace.Traces, error) {
	wire, ok := stwotlp.AppendSpansWire(make([]byte, 0, 256*len(spans)), spans)
	if !ok {
		var err error
		if wire, err = proto.Marshal(stwotlp.EncodeSpans(spans)); err != nil {
			return ptrace.Traces{}, fmt.Errorf("encoding %d spans: %w", len(spans), err)
		}
	}
	return tracesUnmarshaler.UnmarshalTraces(wire)
}
