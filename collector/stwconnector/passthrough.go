package stwconnector

import (
	"context"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// passThrough is the logs → logs route: it hands on the records that are not STW
// lifecycle events (no stw.* event name), with their resource and scope.
type passThrough struct {
	component.StartFunc
	component.ShutdownFunc
	next consumer.Logs
	log  *zap.Logger

	lost atomic.Uint64
}

var _ connector.Logs = (*passThrough)(nil)

func isLifecycle(r plog.LogRecord) bool { return strings.HasPrefix(r.EventName(), "stw.") }

// Capabilities: the logs are read, never changed.
func (p *passThrough) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeLogs hands on the records of ld that are not lifecycle events. As on the
// traces route, a downstream refusal is logged, not returned (see tracesConnector).
func (p *passThrough) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	other, all := countOther(ld)
	if other == 0 {
		return nil
	}
	out := ld
	if !all {
		out = plog.NewLogs()
		copyOther(ld, out)
	}
	if err := p.next.ConsumeLogs(ctx, out); err != nil {
		p.lost.Add(uint64(other))
		p.log.Warn("log records lost: the logs pipeline refused them; give its exporter a sending_queue",
			zap.Int("records", other), zap.Error(err))
	}
	return nil
}

// countOther returns how many records of ld are not lifecycle events, and whether
// that is all of them.
func countOther(ld plog.Logs) (int, bool) {
	n, total := 0, 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			recs := sls.At(j).LogRecords()
			total += recs.Len()
			for k := 0; k < recs.Len(); k++ {
				if !isLifecycle(recs.At(k)) {
					n++
				}
			}
		}
	}
	return n, n == total
}

// copyOther copies into out the records of ld that are not lifecycle events, under
// copies of their resource and scope.
func copyOther(ld, out plog.Logs) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		var orl plog.ResourceLogs
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			var osl plog.ScopeLogs
			recs := sl.LogRecords()
			for k := 0; k < recs.Len(); k++ {
				r := recs.At(k)
				if isLifecycle(r) {
					continue
				}
				if osl == (plog.ScopeLogs{}) {
					if orl == (plog.ResourceLogs{}) {
						orl = out.ResourceLogs().AppendEmpty()
						rl.Resource().CopyTo(orl.Resource())
						orl.SetSchemaUrl(rl.SchemaUrl())
					}
					osl = orl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(osl.Scope())
					osl.SetSchemaUrl(sl.SchemaUrl())
				}
				r.CopyTo(osl.LogRecords().AppendEmpty())
			}
		}
	}
}
