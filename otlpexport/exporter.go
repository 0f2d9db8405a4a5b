package otlpexport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ErrNoRoom is returned (wrapped) by Consume, ConsumeSpans, ExportLogs and
// ExportTraces when the requests in flight had no room before the call's context
// ended: the data was dropped and counted.
var ErrNoRoom = errors.New("otlpexport: no room among the requests in flight before the deadline, data dropped (the receiver is slower than the input: check that it keeps up, or give the call a longer deadline)")

// ErrShutdown is returned (wrapped) when data comes after Shutdown; it was dropped.
var ErrShutdown = errors.New("otlpexport: exporter is shut down, data dropped")

// SignalStats count the items (log records, or spans) of one signal.
type SignalStats struct {
	Sent     uint64 // accepted by the receiver
	Rejected uint64 // refused by the receiver in a partial success (not retried)
	Failed   uint64 // given up: non-retryable error, retries exhausted, or Shutdown's deadline
	Dropped  uint64 // never sent: no room in flight before the caller's deadline, or after Shutdown
	Requests uint64 // requests the receiver accepted, fully or partly
}

// Stats are the exporter's counters since New.
type Stats struct {
	Logs    SignalStats // log records: lifecycle events and pass-through logs
	Traces  SignalStats // spans: assembled and pass-through
	Retries uint64      // failed attempts that were tried again
	// InFlight, InFlightItems and InFlightBytes are the requests handed to the
	// senders and not finished now, their items and their protobuf size.
	InFlight      int
	InFlightItems int
	InFlightBytes int
}

// Exporter is a bridge.Tail that sends events (and, by mode, assembled spans) over
// OTLP/gRPC, with retry, from a few sender goroutines.
//
// It keeps no queue: Consume, ConsumeSpans, ExportLogs and ExportTraces encode at
// once, wait (within their ctx) until the requests in flight have room, and hand the
// requests to a sender. A slow receiver thus slows the caller, whose own queue (the
// pipeline's) absorbs a burst. The events of one stream always go through the same
// sender, so they leave in sequence order.
type Exporter struct {
	mode            Mode
	maxRequestBytes int
	log             *rateLog
	logs, traces    *signalState
	conns           []*grpc.ClientConn
	retry           retrier
	retries         atomic.Uint64

	flight *inFlight
	shards []*sender // one per sender goroutine; shardOf picks a stream's
	handMu sync.RWMutex
	rr     atomic.Uint64 // round robin for requests of no stream

	// asm assembles spans in ModeSpans and ModeBoth; it hands them to ConsumeSpans.
	asm *bridge.AssemblerTail

	// ctx is cancelled when Shutdown's deadline passes: senders then stop retrying and
	// give up what is left.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once
}

var (
	_ bridge.Tail             = (*Exporter)(nil)
	_ bridge.Flusher          = (*Exporter)(nil)
	_ bridge.Shutdowner       = (*Exporter)(nil)
	_ bridge.SpanConsumer     = (*Exporter)(nil)
	_ bridge.DeliveryReporter = (*Exporter)(nil)
)

// New returns an exporter. Options win over the environment: what no option sets is
// read from the OTEL_EXPORTER_OTLP_* variables (the _LOGS_ variants for the events,
// the _TRACES_ variants for the spans, as the OTel exporters do), so New with no
// options works from the environment alone. A bad option or variable is an error
// that names it. No connection is made yet: the first request connects.
func New(ctx context.Context, opts ...Option) (*Exporter, error) {
	_ = ctx // nothing in New waits; the parameter keeps the OTel exporters' shape
	cfg := newConfig(opts)
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	logsCfg, tracesCfg, err := resolve(cfg, nil)
	if err != nil {
		return nil, err
	}
	e := &Exporter{
		mode:            cfg.mode,
		maxRequestBytes: cfg.maxRequestBytes,
		log:             newRateLog(cfg.logger),
		flight:          newInFlight(cfg.maxInFlight, cfg.maxInFlightBytes),
	}
	e.retry = retrier{cfg: cfg.retry, onRetry: func(error, time.Duration) { e.retries.Add(1) }}

	e.logs, e.traces = &signalState{cfg: logsCfg}, &signalState{cfg: tracesCfg}
	// Each sender has connections of its own: requests sent at once over one HTTP/2
	// connection share its flow-control window, which slows them all down.
	for range cfg.senders {
		// Room for every request in flight, so that handing one over never waits.
		snd := &sender{in: make(chan *request, cfg.maxInFlight)}
		logsConn, err := dial(logsCfg, cfg.dialOptions)
		if err != nil {
			e.closeConns()
			return nil, err
		}
		e.conns = append(e.conns, logsConn)
		tracesConn := logsConn
		if tracesCfg.connKey != logsCfg.connKey {
			if tracesConn, err = dial(tracesCfg, cfg.dialOptions); err != nil {
				e.closeConns()
				return nil, err
			}
			e.conns = append(e.conns, tracesConn)
		}
		snd.logs, snd.traces = newClient(e.logs, logsConn), newClient(e.traces, tracesConn)
		e.shards = append(e.shards, snd)
	}

	if cfg.mode.spans() {
		e.asm = bridge.NewAssemblerTail(e, cfg.sweepInterval, func(err error) {
			e.log.log(slog.LevelWarn, "sweep", "otlpexport: sweeping the assembler failed", slog.Any("error", err))
		}, cfg.assemblerOptions...)
	}

	e.ctx, e.cancel = context.WithCancel(context.Background())
	for _, snd := range e.shards {
		e.wg.Add(1)
		go e.runSender(snd)
	}
	return e, nil
}

func (e *Exporter) closeConns() {
	for _, c := range e.conns {
		_ = c.Close()
	}
}

// Mode returns what the exporter sends.
func (e *Exporter) Mode() Mode { return e.mode }

// Stats returns the counters so far.
func (e *Exporter) Stats() Stats {
	return Stats{
		Logs:          e.logs.counters.stats(),
		Traces:        e.traces.counters.stats(),
		Retries:       e.retries.Load(),
		InFlight:      int(e.flight.requests.Load()),
		InFlightItems: int(e.flight.items.Load()),
		InFlightBytes: int(e.flight.nbytes.Load()),
	}
}

// Delivery reports the items (log records and spans) in flight and those given up:
// rejected, failed or dropped.
func (e *Exporter) Delivery() bridge.Delivery {
	l, t := e.logs.counters.stats(), e.traces.counters.stats()
	return bridge.Delivery{
		Pending: uint64(max(e.flight.items.Load(), 0)),
		Lost:    l.Rejected + l.Failed + l.Dropped + t.Rejected + t.Failed + t.Dropped,
	}
}

// Consume encodes events and hands them to the senders, waiting within ctx for room
// among the requests in flight; what finds none is dropped and counted. In
// ModeEvents and ModeBoth the events leave as OTLP log records; in ModeSpans and
// ModeBoth they also go through the assembler, and the spans they complete leave as
// OTLP spans. The events slice is not kept.
func (e *Exporter) Consume(ctx context.Context, events []bridge.Event) error {
	if len(events) == 0 {
		return nil
	}
	if e.closed.Load() {
		if e.mode.events() {
			e.logs.counters.dropped.Add(uint64(len(events)))
		}
		return fmt.Errorf("%w (%d events)", ErrShutdown, len(events))
	}
	var errs []error
	if e.mode.events() {
		errs = append(errs, e.queueEvents(ctx, events))
	}
	if e.mode.spans() {
		if err := e.asm.Consume(ctx, events); err != nil {
			errs = append(errs, fmt.Errorf("otlpexport: assembling spans: %w", err))
		}
	}
	return errors.Join(errs...)
}

// shardOf maps a stream to its sender, the same one for all of its events.
func (e *Exporter) shardOf(id bridge.StreamID) int {
	return int(binary.LittleEndian.Uint64(id[:8]) % uint64(len(e.shards)))
}

// nextShard picks a sender for data bound to no stream.
func (e *Exporter) nextShard() int { return int(e.rr.Add(1) % uint64(len(e.shards))) }

// ConsumeSpans hands complete spans to a sender as OTLP traces, whatever the mode,
// waiting within ctx for room among the requests in flight.
func (e *Exporter) ConsumeSpans(ctx context.Context, spans []bridge.Span) error {
	if len(spans) == 0 {
		return nil
	}
	if e.closed.Load() {
		e.traces.counters.dropped.Add(uint64(len(spans)))
		return fmt.Errorf("%w (%d spans)", ErrShutdown, len(spans))
	}
	return e.queueSpans(ctx, spans, e.nextShard())
}

// ExportLogs hands a raw OTLP logs request (pass-through of non-STW logs) to a
// sender, waiting within ctx for room. The exporter keeps req until it is sent: do
// not change it after the call.
func (e *Exporter) ExportLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) error {
	if e.closed.Load() {
		n := countLogRecords(req)
		e.logs.counters.dropped.Add(uint64(n))
		return fmt.Errorf("%w (%d log records)", ErrShutdown, n)
	}
	return e.queueLogs(ctx, req, e.nextShard())
}

// ExportTraces hands a raw OTLP traces request (pass-through of plain spans) to a
// sender, waiting within ctx for room. The exporter keeps req until it is sent: do
// not change it after the call.
func (e *Exporter) ExportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) error {
	if e.closed.Load() {
		n := countSpans(req)
		e.traces.counters.dropped.Add(uint64(n))
		return fmt.Errorf("%w (%d spans)", ErrShutdown, n)
	}
	return e.queueTraces(ctx, req, e.nextShard())
}

// signalKind holds what queueRequest needs to know about one signal's requests.
type signalKind[R proto.Message] struct {
	what     string                                 // its items, in errors: "log records", "spans"
	split    func(req R, limit int) []R             // splitLogs, splitTraces
	count    func(req R) int                        // countLogRecords, countSpans
	request  func(req R, items, bytes int) *request // wraps req for a sender
	counters func(e *Exporter) *signalCounters
}

var (
	logsKind = signalKind[*collogspb.ExportLogsServiceRequest]{
		what:  "log records",
		split: splitLogs,
		count: countLogRecords,
		request: func(req *collogspb.ExportLogsServiceRequest, items, bytes int) *request {
			return &request{signal: signalLogs, logs: req, items: items, bytes: bytes}
		},
		counters: func(e *Exporter) *signalCounters { return &e.logs.counters },
	}
	tracesKind = signalKind[*coltracepb.ExportTraceServiceRequest]{
		what:  "spans",
		split: splitTraces,
		count: countSpans,
		request: func(req *coltracepb.ExportTraceServiceRequest, items, bytes int) *request {
			return &request{signal: signalTraces, traces: req, items: items, bytes: bytes}
		},
		counters: func(e *Exporter) *signalCounters { return &e.traces.counters },
	}
)

func (e *Exporter) queueLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest, k int) error {
	return queueRequest(ctx, e, &logsKind, req, k)
}

func (e *Exporter) queueTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest, k int) error {
	return queueRequest(ctx, e, &tracesKind, req, k)
}

// queueRequest hands req to sender k, split into parts of at most maxRequestBytes
// when it is larger; an empty request is not sent.
func queueRequest[R proto.Message](ctx context.Context, e *Exporter, kind *signalKind[R], req R, k int) error {
	c := kind.counters(e)
	size := proto.Size(req)
	if size > e.maxRequestBytes {
		var dropped int
		for _, part := range kind.split(req, e.maxRequestBytes) {
			n := kind.count(part)
			if !e.push(ctx, k, kind.request(part, n, proto.Size(part)), c) {
				dropped += n
			}
		}
		return e.dropError(dropped, kind.what)
	}
	n := kind.count(req)
	if n == 0 {
		return nil
	}
	if !e.push(ctx, k, kind.request(req, n, size), c) {
		return e.dropError(n, kind.what)
	}
	return nil
}

// push waits within ctx for room among the requests in flight, then hands r to
// sender k; false (and r counted as dropped) when ctx ended first or the exporter is
// shut down.
func (e *Exporter) push(ctx context.Context, k int, r *request, c *signalCounters) bool {
	if err := e.flight.acquire(ctx, r); err != nil {
		c.dropped.Add(uint64(r.items))
		return false
	}
	e.handMu.RLock()
	defer e.handMu.RUnlock()
	if e.closed.Load() {
		e.flight.release(r)
		c.dropped.Add(uint64(r.items))
		return false
	}
	e.shards[k].in <- r // never waits: the channel holds every request in flight
	return true
}

func (e *Exporter) dropError(n int, what string) error {
	if n == 0 {
		return nil
	}
	if e.closed.Load() {
		return fmt.Errorf("%w (%d %s)", ErrShutdown, n, what)
	}
	return fmt.Errorf("%w (%d %s)", ErrNoRoom, n, what)
}

// runSender sends the requests handed to snd until its input is closed and drained.
func (e *Exporter) runSender(snd *sender) {
	defer e.wg.Done()
	var batch []*request
	for {
		batch = snd.nextBatch(e.maxRequestBytes, batch)
		if len(batch) == 0 {
			return
		}
		delivered := e.send(snd, batch)
		for _, r := range batch {
			e.flight.release(r)
			if delivered {
				r.buf.delivered()
			}
		}
		clear(batch)
	}
}

// send exports a batch of requests of one signal as one request, with retries, and
// counts the outcome; it reports whether the receiver acknowledged it.
func (e *Exporter) send(snd *sender, batch []*request) bool {
	sig := batch[0].signal
	c, what := snd.logs, "log records"
	if sig == signalTraces {
		c, what = snd.traces, "spans"
	}
	st := c.sig
	items := 0
	for _, r := range batch {
		items += r.items
	}
	if e.ctx.Err() != nil {
		// Shutdown's deadline passed: what is left is given up, not sent.
		st.counters.failed.Add(uint64(items))
		return false
	}
	wire, err := encodeBatch(batch)
	if err != nil {
		st.counters.failed.Add(uint64(items))
		e.log.log(slog.LevelError, "encode:"+st.cfg.signal, "otlpexport: a request could not be encoded, "+what+" lost",
			slog.Int(what, items), slog.Any("error", err))
		return false
	}
	var p partial
	attempts, err := e.retry.do(e.ctx, func(ctx context.Context) error {
		var err error
		p, err = c.export(ctx, sig, wire)
		return err
	})
	if err != nil {
		st.counters.failed.Add(uint64(items))
		reason := refusalHint(err)
		if e.ctx.Err() != nil {
			reason = "Shutdown's deadline passed while they were being sent"
		} else if retry, _, _ := retryable(err); retry && !e.retry.cfg.Enabled {
			reason = "the receiver could not be reached and retries are off (WithRetry); check that it is up and reachable"
		} else if retry {
			reason = "retries were exhausted; check that the receiver is up and reachable, or raise WithRetry's MaxElapsedTime"
		}
		e.log.log(slog.LevelError, "failed:"+st.cfg.signal, "otlpexport: export failed, "+what+" lost",
			slog.String("endpoint", st.cfg.endpoint),
			slog.Int(what, items),
			slog.Int("attempts", attempts),
			slog.String("why", reason),
			slog.Any("error", err))
		return false
	}
	st.counters.requests.Add(1)
	rejected := min(max(p.rejected, 0), int64(items))
	st.counters.sent.Add(uint64(int64(items) - rejected))
	if rejected > 0 || p.message != "" {
		st.counters.rejected.Add(uint64(rejected))
		e.log.log(slog.LevelWarn, "partial:"+st.cfg.signal, "otlpexport: the receiver rejected part of a request (not retried)",
			slog.String("endpoint", st.cfg.endpoint),
			slog.Int64("rejected_"+what, rejected),
			slog.Int(what, items),
			slog.String("message", p.message))
	}
	return true
}

// refusalHint says what to do about a non-retryable refusal.
func refusalHint(err error) string {
	const prefix = "the receiver refused them with an error that is not retryable"
	switch status.Code(err) {
	case codes.ResourceExhausted:
		return prefix + "; if the request is larger than the receiver accepts, lower WithMaxRequestBytes or raise the receiver's limit (the Collector's max_recv_msg_size_mib)"
	case codes.Unauthenticated, codes.PermissionDenied:
		return prefix + "; check the credentials sent (WithHeaders, OTEL_EXPORTER_OTLP_HEADERS) and the client certificate"
	case codes.Unimplemented:
		return prefix + "; the endpoint does not serve this OTLP service: check that it is an OTLP/gRPC receiver with this signal enabled"
	}
	return prefix + "; check the receiver's configuration and logs"
}

// ForceFlush waits until every request handed over before the call has been
// acknowledged by the receiver (or given up), or ctx ends; then the error says how
// many requests and items are still in flight.
func (e *Exporter) ForceFlush(ctx context.Context) error {
	if err := e.flight.drain(ctx); err != nil {
		return fmt.Errorf("otlpexport: ForceFlush: %w", err)
	}
	return nil
}

// Shutdown emits the spans still open as unfinished (ModeSpans, ModeBoth), sends what
// is in flight, and closes the connections. When ctx ends first, the requests left
// are given up and counted as failed, and an error says how many. Later calls do
// nothing.
func (e *Exporter) Shutdown(ctx context.Context) error {
	var err error
	e.once.Do(func() { err = e.shutdown(ctx) })
	return err
}

func (e *Exporter) shutdown(ctx context.Context) error {
	if e.asm != nil {
		if err := e.asm.Shutdown(ctx); err != nil {
			e.log.log(slog.LevelWarn, "shutdown", "otlpexport: shutting down the assembler", slog.Any("error", err))
		}
	}
	e.handMu.Lock()
	e.closed.Store(true)
	for _, snd := range e.shards {
		close(snd.in)
	}
	e.handMu.Unlock()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n, items := e.flight.requests.Load(), e.flight.items.Load()
		err = fmt.Errorf("otlpexport: Shutdown: %d requests (%d items) not sent before the deadline, given up: %w", n, items, ctx.Err())
		e.cancel()
		<-done
	}
	e.cancel()
	e.closeConns()
	return err
}
