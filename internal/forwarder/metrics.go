package forwarder

import (
	"github.com/stwbridge/stwbridge/internal/metrics"
	"github.com/stwbridge/stwbridge/otlpexport"
)

// registerMetrics exposes every part's counters on /metrics. Values are read at scrape
// time from the parts' own Stats.
func (f *Forwarder) registerMetrics() {
	r := f.reg
	c := func(name, help string, v func() uint64) {
		r.CounterFunc(name, help, func() float64 { return float64(v()) })
	}
	g := func(name, help string, v func() int) {
		r.GaugeFunc(name, help, func() float64 { return float64(v()) })
	}

	// Receivers.
	rs := f.recv.Stats
	c("stwbridge_receiver_requests_total", "OTLP export requests received (gRPC and HTTP).", func() uint64 { return rs().Requests })
	c("stwbridge_received_events_total", "STW lifecycle events received over OTLP and published to the pipeline.", func() uint64 { return rs().Events })
	c("stwbridge_received_spans_total", "Plain OTLP spans received and passed through.", func() uint64 { return rs().Spans })
	c("stwbridge_received_logs_total", "Non-STW OTLP log records received and passed through.", func() uint64 { return rs().Logs })
	c("stwbridge_receiver_rejected_total", "Log records and spans rejected as bad (answered with partial success).", func() uint64 { return rs().Rejected })
	c("stwbridge_receiver_malformed_requests_total", "Requests refused as undecodable (InvalidArgument / HTTP 400 or 415).", func() uint64 { return rs().Malformed })
	c("stwbridge_receiver_oversize_requests_total", "Requests refused as over the size limit (HTTP 413, gRPC ResourceExhausted).", func() uint64 { return rs().Oversize })
	c("stwbridge_receiver_refused_total", "Requests refused as retryable (queue full or downstream refused): Unavailable / HTTP 503.", func() uint64 { return rs().RetryableFails })
	c("stwbridge_receiver_refused_events_total", "Lifecycle events of requests refused whole (queue full): the sender retries them.", func() uint64 { return rs().Refused })
	c("stwbridge_receiver_dropped_events_total", "Lifecycle events the pipeline refused (queue full); their requests were refused as retryable.", func() uint64 { return rs().Dropped })

	// workerd ingest.
	is := f.ingest.Stats
	c("stwbridge_stwingest_requests_total", "POST /v1/stw requests received.", func() uint64 { return is().Requests })
	c("stwbridge_stwingest_events_total", "workerd tail events decoded and published.", func() uint64 { return is().Events })
	c("stwbridge_stwingest_rejected_total", "workerd tail events that did not decode.", func() uint64 { return is().Rejected })
	c("stwbridge_stwingest_unknown_total", "workerd tail events of an unknown type, skipped.", func() uint64 { return is().Unknown })
	c("stwbridge_stwingest_refused_total", "workerd tail events of requests refused whole (queue full, HTTP 503): the sender retries them.", func() uint64 { return is().Refused })
	c("stwbridge_stwingest_dropped_total", "workerd tail events the pipeline refused (queue full).", func() uint64 { return is().Dropped })
	c("stwbridge_stwingest_unsampled_total", "workerd tail events of invocations an upstream did not sample, not exported.", func() uint64 { return is().Unsampled })
	c("stwbridge_stwingest_forgotten_total", "workerd invocations whose Resource was forgotten before their outcome (too many at once).", func() uint64 { return is().Forgotten })

	// Pipeline.
	ps := f.pipe.Stats
	c("stwbridge_pipeline_published_total", "Events accepted by the pipeline, counted once per tail.", func() uint64 { return ps().Published })
	c("stwbridge_pipeline_dropped_total", "Events dropped because a tail's queue was full.", func() uint64 { return ps().Dropped })
	c("stwbridge_pipeline_delivered_total", "Events handed to tails.", func() uint64 { return ps().Delivered })
	c("stwbridge_pipeline_refused_total", "Events of requests refused whole because a tail's queue could not take them all, counted once per tail.", func() uint64 { return ps().Refused })
	c("stwbridge_pipeline_failed_total", "Events in batches a tail failed to consume.", func() uint64 { return ps().Failed })
	g("stwbridge_pipeline_queue_depth", "Events waiting in the pipeline's queues now.", func() int { return ps().QueueDepth })

	// Assembler.
	as := f.asm.Stats
	c("stwbridge_assembler_events_total", "Events the assembler accepted.", func() uint64 { return as().Events })
	c("stwbridge_assembled_spans_total", "Spans assembled complete (ended normally).", func() uint64 { return as().Spans })
	c("stwbridge_unfinished_spans_total", "Spans exported as unfinished (producer gone, orphan timeout, or shutdown).", func() uint64 { return as().Unfinished })
	c("stwbridge_assembler_duplicates_total", "Events dropped as duplicates.", func() uint64 { return as().Duplicates })
	c("stwbridge_assembler_reordered_total", "Events put back in sequence order.", func() uint64 { return as().Reordered })
	c("stwbridge_assembler_gaps_total", "Sequence numbers never received.", func() uint64 { return as().Gaps })
	c("stwbridge_assembler_rejected_total", "Events the assembler could not use.", func() uint64 { return as().Rejected })
	c("stwbridge_assembler_overflow_total", "Spans refused because assembler.max_open_spans was reached.", func() uint64 { return as().Overflow })
	g("stwbridge_open_spans", "Spans open now in the assembler.", func() int { return as().OpenSpans })

	// Downstream.
	c("stwbridge_forwarded_spans_total", "Spans handed downstream by the assembler (exporter or stdout).", f.forwardedSpans.Load)
	c("stwbridge_forward_errors_total", "Hand-overs of assembled spans downstream that failed.", f.forwardErrors.Load)
	if f.exporter != nil {
		f.registerExporterMetrics()
	}

	// Live hub.
	hs := f.hub.Stats
	g("stwbridge_live_watchers", "Live watchers (GET /v1/live) connected now.", func() int { return hs().Watchers })
	c("stwbridge_live_sent_total", "Events written to live watchers.", func() uint64 { return hs().Sent })
	c("stwbridge_live_skipped_total", "Events slow live watchers skipped.", func() uint64 { return hs().Skipped })
	c("stwbridge_live_cutoff_total", "Live watchers disconnected because a write stalled.", func() uint64 { return hs().CutOff })
	c("stwbridge_live_refused_total", "Live watchers refused (503) because receivers.otlp.http.max_live_watchers were connected.", func() uint64 { return hs().Refused })
}

// registerExporterMetrics exposes the exporter's counters, per signal.
func (f *Forwarder) registerExporterMetrics() {
	es := f.exporter.Stats
	perSignal := func(name, help string, v func(otlpexport.SignalStats) uint64) {
		f.reg.Register(metrics.Family{Name: name, Help: help, Type: metrics.CounterType, Labels: []string{"signal"}, Collect: func() []metrics.Sample {
			st := es()
			return []metrics.Sample{
				{LabelValues: []string{"traces"}, Value: float64(v(st.Traces))},
				{LabelValues: []string{"logs"}, Value: float64(v(st.Logs))},
			}
		}})
	}
	perSignal("stwbridge_exporter_sent_total", "Spans and log records the downstream accepted.", func(s otlpexport.SignalStats) uint64 { return s.Sent })
	perSignal("stwbridge_exporter_rejected_total", "Spans and log records the downstream rejected (partial success).", func(s otlpexport.SignalStats) uint64 { return s.Rejected })
	perSignal("stwbridge_exporter_failed_total", "Spans and log records given up after errors or retries.", func(s otlpexport.SignalStats) uint64 { return s.Failed })
	perSignal("stwbridge_exporter_dropped_total", "Spans and log records dropped before sending (no room in flight before the deadline, or after shutdown).", func(s otlpexport.SignalStats) uint64 { return s.Dropped })
	f.reg.CounterFunc("stwbridge_exporter_retries_total", "Export attempts that failed and were tried again.", func() float64 { return float64(es().Retries) })
	f.reg.GaugeFunc("stwbridge_exporter_in_flight_requests", "Export requests in flight now (being sent, retried, or next in line).", func() float64 { return float64(es().InFlight) })
	f.reg.GaugeFunc("stwbridge_exporter_in_flight_bytes", "Protobuf bytes of the export requests in flight now.", func() float64 { return float64(es().InFlightBytes) })
}
