// Package stwcodec converts between the Collector's pdata and stwbridge's events and
// spans, through the project's STW ↔ OTLP codec (stwotlp): pdata is serialised to
// OTLP protobuf and read by the codec's wire decoder, and the codec's wire encoder's
// output is read back as pdata.
package stwcodec

import (
	"fmt"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
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
func DecodeWire(data []byte) (Decoded, error) { return stwotlp.DecodeEvents(data) }

// EncodeWire serialises events as an ExportLogsServiceRequest of stw.* records
// (strings that are not valid UTF-8 are sanitised by the encoder).
func EncodeWire(events []bridge.Event) ([]byte, error) {
	return stwotlp.AppendEvents(nil, events), nil
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
	return tracesUnmarshaler.UnmarshalTraces(stwotlp.AppendSpans(make([]byte, 0, 256*len(spans)), spans))
}
