package stwconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
)

// scopeName is the instrumentation scope of the connector's own metrics.
const scopeName = "github.com/stwbridge/stwbridge/collector/stwconnector"

// telemetry reports the connector's counters through the Collector's MeterProvider
// (service.telemetry.metrics), read when the metrics are collected.
type telemetry struct {
	reg metric.Registration
}

func newTelemetry(set component.TelemetrySettings, c *tracesConnector) (*telemetry, error) {
	m := set.MeterProvider.Meter(scopeName)
	gauge := func(name, desc, unit string) (metric.Int64ObservableGauge, error) {
		return m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
	}
	counter := func(name, desc, unit string) (metric.Int64ObservableCounter, error) {
		return m.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
	}
	var errs []error
	must := func(inst metric.Int64Observable, err error) metric.Int64Observable {
		errs = append(errs, err)
		return inst
	}
	open := must(gauge("otelcol_connector_stw_open_spans", "Spans open now (their end not yet seen).", "{span}"))
	streams := must(gauge("otelcol_connector_stw_streams", "Lifecycle streams remembered now.", "{stream}"))
	assembled := must(counter("otelcol_connector_stw_spans_assembled", "Spans emitted, complete or unfinished.", "{span}"))
	unfinished := must(counter("otelcol_connector_stw_spans_unfinished", "Spans emitted unfinished (never ended, producer silent, or shutdown).", "{span}"))
	late := must(counter("otelcol_connector_stw_spans_late", "Real ends of spans already emitted unfinished (emitted again).", "{span}"))
	overflow := must(counter("otelcol_connector_stw_spans_refused", "Spans refused because max_open_spans was reached.", "{span}"))
	lost := must(counter("otelcol_connector_stw_spans_lost", "Assembled spans the traces pipeline refused.", "{span}"))
	events := must(counter("otelcol_connector_stw_events", "Lifecycle events accepted.", "{event}"))
	gaps := must(counter("otelcol_connector_stw_gaps", "Sequence numbers never received.", "{event}"))
	dups := must(counter("otelcol_connector_stw_duplicates", "Events dropped as duplicates.", "{event}"))
	unusable := must(counter("otelcol_connector_stw_events_unusable", "Events the assembler could not use (an end without open, say).", "{event}"))
	rejected := must(counter("otelcol_connector_stw_records_rejected", "stw.* log records that did not decode.", "{record}"))
	untracked := must(counter("otelcol_connector_stw_storage_untracked", "Open spans left out of the storage snapshot (max_open_spans reached, or idle past twice orphan_after + stream_timeout).", "{span}"))
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := c.stats()
		o.ObserveInt64(open, int64(st.OpenSpans))
		o.ObserveInt64(streams, int64(st.Streams))
		o.ObserveInt64(assembled, int64(st.Spans))
		o.ObserveInt64(unfinished, int64(st.Unfinished))
		o.ObserveInt64(late, int64(st.Late))
		o.ObserveInt64(overflow, int64(st.Overflow))
		o.ObserveInt64(lost, int64(c.dropped.Load()))
		o.ObserveInt64(events, int64(st.Events))
		o.ObserveInt64(gaps, int64(st.Gaps))
		o.ObserveInt64(dups, int64(st.Duplicates))
		o.ObserveInt64(unusable, int64(st.Rejected))
		o.ObserveInt64(rejected, int64(c.rejected.Load()))
		if s := c.store; s != nil {
			o.ObserveInt64(untracked, int64(s.untracked.Load()+s.forgotten.Load()))
		}
		return nil
	}, open, streams, assembled, unfinished, late, overflow, lost, events, gaps, dups, unusable, rejected, untracked)
	if err != nil {
		return nil, err
	}
	return &telemetry{reg: reg}, nil
}

func (t *telemetry) close() { _ = t.reg.Unregister() }
