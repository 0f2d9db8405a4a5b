package stwconnector

import (
	"context"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestConfigValidate(t *testing.T) {
	if err := createDefaultConfig().(*Config).Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.OrphanAfter = 0
	cfg.MaxOpenSpans = -1
	cfg.Shards = 1000
	cfg.SweepInterval = -1
	err := cfg.Validate()
	if err == nil {
		t.Fatal("a config with four wrong keys validated")
	}
	for _, key := range []string{"orphan_after:", "max_open_spans:", "shards:", "sweep_interval:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("the error does not name %s: %v", key, err)
		}
	}
}

// Shards change nothing in what comes out.
func TestShardsGiveTheSameSpans(t *testing.T) {
	rec := record(t, 40)
	var got [][]spanRow
	for _, shards := range []int{1, 4} {
		cfg := createDefaultConfig().(*Config)
		cfg.Shards = shards
		in := newInstance(t, cfg)
		for _, batch := range rec {
			in.consume(t, batch)
		}
		in.shutdown(t)
		got = append(got, rows(in.sink))
	}
	if len(got[0]) != 120 || len(got[0]) != len(got[1]) {
		t.Fatalf("1 shard: %d spans, 4 shards: %d, want 120 each", len(got[0]), len(got[1]))
	}
	for i := range got[0] {
		if got[0][i] != got[1][i] {
			t.Fatalf("1 shard: %s, 4 shards: %s", got[0][i], got[1][i])
		}
	}
}

// With storage, a shutdown keeps the open spans instead of reporting them unfinished,
// and the next start goes on with them: their ends after the restart complete them.
func TestStorageKeepsOpenSpansAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	first, second := recordPhased(t, 20)
	extID := component.MustNewID("file_storage")
	startInstance := func() (*instance, func()) {
		f := filestorage.NewFactory()
		ecfg := f.CreateDefaultConfig().(*filestorage.Config)
		ecfg.Directory = dir
		ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), ecfg)
		if err != nil {
			t.Fatal(err)
		}
		host := nopHost{extID: ext}
		if err := ext.Start(context.Background(), host); err != nil {
			t.Fatal(err)
		}
		cfg := createDefaultConfig().(*Config)
		cfg.Storage = &extID
		sink := &consumertest.TracesSink{}
		set := connectortest.NewNopSettings(Type)
		set.ID = component.NewID(Type) // the storage client is the component's: same id across restarts
		c, err := NewFactory().CreateLogsToTraces(context.Background(), set, cfg, sink)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background(), host); err != nil {
			t.Fatal(err)
		}
		return &instance{c: c, sink: sink}, func() {
			if err := ext.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}

	a, stopA := startInstance()
	a.consume(t, first)
	a.shutdown(t)
	stopA()
	if n := a.sink.SpanCount(); n != 0 {
		t.Fatalf("the first run emitted %d spans at shutdown; with storage, open spans are kept", n)
	}

	b, stopB := startInstance()
	b.consume(t, second)
	b.shutdown(t)
	stopB()
	got := rows(b.sink)
	if len(got) != 60 {
		t.Fatalf("after the restart %d spans, want 60 (root, child, late child of 20 traces): %v", len(got), got)
	}
	for _, r := range got {
		if r.Unfinished {
			t.Errorf("span %s came out unfinished, though its end came after the restart", r)
		}
		if r.Name == "route pending" {
			t.Errorf("span %s lost its rename across the restart", r)
		}
	}
}

func TestStorageExtensionMissing(t *testing.T) {
	id := component.MustNewID("file_storage")
	cfg := createDefaultConfig().(*Config)
	cfg.Storage = &id
	c, err := NewFactory().CreateLogsToTraces(context.Background(), connectortest.NewNopSettings(Type), cfg, &consumertest.TracesSink{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Start(context.Background(), nopHost{})
	if err == nil || !strings.Contains(err.Error(), "service.extensions") {
		t.Fatalf("Start without the storage extension: %v, want an error saying where to declare it", err)
	}
}

// A bad stw.* record is rejected and counted in the connector's metrics; the good
// records beside it are assembled; records that are not lifecycle events go the logs
// route only.
func TestBadRecordsCountedGoodKept(t *testing.T) {
	rec := record(t, 1)
	var events = rec[0]
	for _, b := range rec[1:] {
		events = append(events, b...)
	}
	ld := logs(t, events)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	bad := recs.AppendEmpty()
	bad.SetEventName("stw.span_open")
	bad.Attributes().PutStr("stw.stream_id", "not hex")
	plain := recs.AppendEmpty()
	plain.Body().SetStr("an ordinary log line")

	reader := sdkmetric.NewManualReader()
	set := connectortest.NewNopSettings(Type)
	set.TelemetrySettings.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sink := &consumertest.TracesSink{}
	f := NewFactory()
	c, err := f.CreateLogsToTraces(context.Background(), set, f.CreateDefaultConfig(), sink)
	if err != nil {
		t.Fatal(err)
	}
	logsSink := &consumertest.LogsSink{}
	pass, err := f.CreateLogsToLogs(context.Background(), set, f.CreateDefaultConfig(), logsSink)
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range []interface {
		Start(context.Context, component.Host) error
		ConsumeLogs(context.Context, plog.Logs) error
	}{c, pass} {
		if err := comp.Start(context.Background(), nopHost{}); err != nil {
			t.Fatal(err)
		}
		if err := comp.ConsumeLogs(context.Background(), ld); err != nil {
			t.Fatalf("ConsumeLogs with one bad record: %v, want nil (the good ones are kept)", err)
		}
	}
	if n := sink.SpanCount(); n != 3 {
		t.Errorf("%d spans assembled, want the 3 of the good records", n)
	}
	if n := logsSink.LogRecordCount(); n != 1 {
		t.Errorf("the logs route got %d records, want the 1 ordinary one", n)
	} else if got := logsSink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str(); got != "an ordinary log line" {
		t.Errorf("the logs route got %q", got)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"otelcol_connector_stw_records_rejected": 1,
		"otelcol_connector_stw_spans_assembled":  3,
		"otelcol_connector_stw_spans_unfinished": 0,
		"otelcol_connector_stw_open_spans":       0,
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			w, ok := want[m.Name]
			if !ok {
				continue
			}
			delete(want, m.Name)
			var v int64
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				v = d.DataPoints[0].Value
			case metricdata.Gauge[int64]:
				v = d.DataPoints[0].Value
			}
			if v != w {
				t.Errorf("%s = %d, want %d", m.Name, v, w)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("metrics not reported: %v", want)
	}
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
