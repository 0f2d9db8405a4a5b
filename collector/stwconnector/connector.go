package stwconnector

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/collector/internal/stwcodec"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// overflowLogEvery bounds how often refusals past max_open_spans are logged.
const overflowLogEvery = time.Minute

// tracesConnector assembles the stw.* records of the logs it consumes into spans and
// hands them to the traces pipeline. Records that are not lifecycle events are left
// to the logs → logs route (passThrough).
type tracesConnector struct {
	cfg    *Config
	id     component.ID
	tset   component.TelemetrySettings
	log    *zap.Logger
	next   consumer.Traces
	shards []*bridge.Assembler
	tel    *telemetry
	store  *store // nil without storage

	rejected   atomic.Uint64 // stw.* records that did not decode
	dropped    atomic.Uint64 // spans the traces pipeline refused or that did not encode
	lastRefuse atomic.Int64  // unix nanoseconds of the last downstream refusal logged

	started  atomic.Bool
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

var _ connector.Logs = (*tracesConnector)(nil)

func newTracesConnector(set connector.Settings, cfg *Config, next consumer.Traces) (*tracesConnector, error) {
	c := &tracesConnector{
		cfg:  cfg,
		id:   set.ID,
		tset: set.TelemetrySettings,
		log:  set.Logger,
		next: next,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	n := cfg.shards()
	c.shards = make([]*bridge.Assembler, n)
	for i := range c.shards {
		c.shards[i] = bridge.NewAssembler(bridge.SpanConsumerFunc(c.consumeSpans), cfg.assemblerOptions(n)...)
	}
	return c, nil
}

// Capabilities: the logs are read, never changed.
func (c *tracesConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// Start restores the open spans kept at the last shutdown (with storage) and starts
// the sweep.
func (c *tracesConnector) Start(ctx context.Context, host component.Host) error {
	if c.cfg.Storage != nil {
		s, err := openStore(ctx, host, *c.cfg.Storage, c.id, c.cfg.MaxOpenSpans)
		if err != nil {
			return err
		}
		c.store = s
		events, err := s.restore(ctx)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			c.log.Info("restoring open spans kept at the last shutdown", zap.Int("events", len(events)))
			if err := c.consume(ctx, events); err != nil {
				return fmt.Errorf("stw connector: restoring open spans: %w", err)
			}
		}
	}
	// Registered once the store is settled, since the metrics callback reads it.
	tel, err := newTelemetry(c.tset, c)
	if err != nil {
		return fmt.Errorf("stw connector: registering its metrics: %w", err)
	}
	c.tel = tel
	c.started.Store(true)
	go c.sweepLoop()
	return nil
}

// Shutdown stops the sweep, then reports the spans still open as unfinished, or, with
// storage, keeps them there for the next start.
func (c *tracesConnector) Shutdown(ctx context.Context) error {
	var err error
	c.stopOnce.Do(func() {
		close(c.stop)
		if c.started.Load() {
			<-c.done
		}
		err = c.stopAssembly(ctx)
		if c.tel != nil {
			c.tel.close()
		}
	})
	return err
}

func (c *tracesConnector) stopAssembly(ctx context.Context) error {
	var errs []error
	if c.store == nil {
		for _, a := range c.shards {
			errs = append(errs, a.Shutdown(ctx))
		}
		return errors.Join(errs...)
	}
	for _, a := range c.shards {
		errs = append(errs, a.Suspend(ctx))
	}
	if err := c.store.keep(ctx); err != nil {
		c.log.Error("the open spans could not be kept in storage: reporting them unfinished", zap.Error(err))
		errs = append(errs, c.store.reportUnfinished(ctx, c.cfg.assemblerOptions(1), bridge.SpanConsumerFunc(c.consumeSpans)))
	}
	errs = append(errs, c.store.close(ctx))
	return errors.Join(errs...)
}

// ConsumeLogs assembles the stw.* records of ld. It returns an error only when ld
// cannot be read or the connector is shutting down: what the traces pipeline does with
// the spans is its own business (its sending_queue retries), and an error here would
// make the sender retry records already assembled.
func (c *tracesConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	dec, err := stwcodec.DecodeLogs(ld)
	if err != nil {
		c.rejected.Add(uint64(ld.LogRecordCount()))
		return consumererror.NewPermanent(fmt.Errorf("stw connector: the logs do not decode: %w", err))
	}
	if n := len(dec.Rejected); n > 0 {
		c.rejected.Add(uint64(n))
		c.log.Debug("stw records rejected", zap.Int("rejected", n), zap.Int("accepted", len(dec.Events)),
			zap.String("first_error", dec.Rejected[0].Error()))
	}
	if len(dec.Events) == 0 {
		return nil
	}
	return c.consume(ctx, dec.Events)
}

// consume hands events to their shards' assemblers.
func (c *tracesConnector) consume(ctx context.Context, events []bridge.Event) error {
	if c.store != nil {
		c.store.observe(events)
	}
	if len(c.shards) == 1 {
		return c.shardErr(c.shards[0].Consume(ctx, events))
	}
	first := c.shardOf(&events[0])
	same := true
	for i := 1; i < len(events) && same; i++ {
		same = c.shardOf(&events[i]) == first
	}
	if same {
		return c.shardErr(c.shards[first].Consume(ctx, events))
	}
	buckets := make([][]bridge.Event, len(c.shards))
	for i := range events {
		k := c.shardOf(&events[i])
		buckets[k] = append(buckets[k], events[i])
	}
	var errs []error
	for k, b := range buckets {
		if len(b) > 0 {
			errs = append(errs, c.shardErr(c.shards[k].Consume(ctx, b)))
		}
	}
	return errors.Join(errs...)
}

// shardOf picks the assembler of an event's stream (of its trace, for an event of no
// stream), so that a stream's events always meet in one assembler.
func (c *tracesConnector) shardOf(e *bridge.Event) int {
	key := e.StreamID[:8]
	if !e.StreamID.IsValid() {
		key = e.TraceID[:8]
	}
	return int(binary.LittleEndian.Uint64(key) % uint64(len(c.shards)))
}

// shardErr maps an assembler's error: after Shutdown the sender may retry elsewhere.
func (c *tracesConnector) shardErr(err error) error {
	if errors.Is(err, bridge.ErrAssemblerShutdown) {
		return errors.New("stw connector: shutting down: retry the request")
	}
	return err // consumeSpans never fails, so nothing else comes back
}

// consumeSpans hands assembled spans to the traces pipeline. A refusal is counted and
// logged (rate-limited), not returned: see ConsumeLogs.
func (c *tracesConnector) consumeSpans(ctx context.Context, spans []bridge.Span) error {
	if c.store != nil {
		c.store.release(spans)
	}
	td, err := stwcodec.SpansToTraces(spans)
	if err == nil {
		err = c.next.ConsumeTraces(ctx, td)
	}
	if err != nil {
		c.dropped.Add(uint64(len(spans)))
		now := time.Now().UnixNano()
		if last := c.lastRefuse.Load(); now-last >= int64(overflowLogEvery) && c.lastRefuse.CompareAndSwap(last, now) {
			c.log.Warn("assembled spans lost: the traces pipeline refused them; give its exporter a sending_queue",
				zap.Int("spans", len(spans)), zap.Uint64("lost_total", c.dropped.Load()), zap.Error(err))
		}
	}
	return nil
}

// sweepLoop exports as unfinished the spans whose producer went silent or that stayed
// open too long, and reports refusals past max_open_spans, rate-limited.
func (c *tracesConnector) sweepLoop() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.sweepEvery())
	defer t.Stop()
	var lastOverflow uint64
	var lastLog time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		var overflow uint64
		for _, a := range c.shards {
			_ = a.Sweep(context.Background()) // consumeSpans never fails
			overflow += a.Stats().Overflow
		}
		if c.store != nil {
			c.store.forgetIdle(2 * (c.cfg.OrphanAfter + c.cfg.StreamTimeout))
		}
		if overflow > lastOverflow && time.Since(lastLog) >= overflowLogEvery {
			c.log.Warn("open span limit reached: spans refused",
				zap.Uint64("refused", overflow-lastOverflow), zap.Uint64("refused_total", overflow),
				zap.Int("max_open_spans", c.cfg.MaxOpenSpans),
				zap.String("hint", "raise max_open_spans or lower orphan_after"))
			lastOverflow, lastLog = overflow, time.Now()
		}
	}
}

// stats sums the shards' counters.
func (c *tracesConnector) stats() bridge.AssemblerStats {
	var sum bridge.AssemblerStats
	for _, a := range c.shards {
		st := a.Stats()
		sum.Events += st.Events
		sum.Spans += st.Spans
		sum.Unfinished += st.Unfinished
		sum.Duplicates += st.Duplicates
		sum.Gaps += st.Gaps
		sum.Rejected += st.Rejected
		sum.Overflow += st.Overflow
		sum.Late += st.Late
		sum.OpenSpans += st.OpenSpans
		sum.Streams += st.Streams
	}
	return sum
}
