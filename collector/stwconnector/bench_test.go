package stwconnector

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

// BenchmarkConsumeLogs feeds recorded lifecycle streams (real SDK + processor: 2,000
// traces of 3 spans, one renamed, one in four left open) to a fresh connector per op,
// as the otlp receiver hands them on, and reports spans per CPU-second of the process:
// serialising, decoding, assembly and encoding to pdata (the downstream is a nop).
func BenchmarkConsumeLogs(b *testing.B) {
	rec := record(&testing.T{}, 2000)
	batches := make([]plog.Logs, len(rec))
	for i, batch := range rec {
		batches[i] = logs(b, batch)
	}
	cfg := createDefaultConfig().(*Config)
	var spans int
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		sink := &consumertest.TracesSink{}
		c, err := NewFactory().CreateLogsToTraces(context.Background(), connectortest.NewNopSettings(Type), cfg, sink)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(context.Background(), nopHost{}); err != nil {
			b.Fatal(err)
		}
		for _, ld := range batches {
			if err := c.ConsumeLogs(context.Background(), ld); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		spans += sink.SpanCount()
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(spans)/cpu.Seconds(), "spans/cpu-s")
	b.ReportMetric(cpu.Seconds()*1e6/float64(spans), "cpu-µs/span")
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
