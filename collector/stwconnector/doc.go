// Package stwconnector is the Collector connector `stw`: it assembles STW lifecycle
// records (stw.* log records, docs/PROTOCOL.md) into spans with stwbridge's
// bridge.Assembler, exactly as the standalone forwarder does, and hands them to a
// traces pipeline; spans that never end are exported unfinished (status Error,
// stw.unfinished=true). Used as the exporter of a logs pipeline and the receiver of a
// traces pipeline; on a logs → logs route it hands on the records that are not
// lifecycle events.
//
// Streams are spread over Config.Shards assemblers by stream id, so concurrent
// ConsumeLogs calls rarely wait on each other. A sweep goroutine (Start to Shutdown)
// reports spans whose producer went silent (stream_timeout) or that stayed open too
// long (orphan_after). At Shutdown the spans still open are exported unfinished; with
// `storage:` naming a storage extension (file_storage), their events are kept there
// instead and fed to the assemblers at the next start, where the spans go on.
//
// ConsumeLogs acknowledges the sender once the records are assembled: a refusal of the
// traces pipeline is counted (otelcol_connector_stw_spans_lost) and logged, not passed
// back, since the sender's retry would only bring back records already assembled. Put
// a sending_queue on the traces exporter instead.
package stwconnector
