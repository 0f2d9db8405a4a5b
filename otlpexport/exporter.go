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

// ErrQueueFull is returned (wrapped) by Consume, ConsumeSpans, ExportLogs and
// ExportTraces when the queue had no room: the data was dropped and counted.
var ErrQueueFull = errors.New("otlpexport: queue full, data dropped (raise WithQueueSize or WithQueueBytes, or check that the receiver keeps up)")

// ErrShutdown is returned (wrapped) when data comes after Shutdown; it was dropped.
var ErrShutdown = errors.New("otlpexport: exporter is shut down, data dropped")

// SignalStats count the items (log records, or spans) of one signal.
type SignalStats struct {
	Sent     uint64 // accepted by the receiver
	Rejected uint64 // refused by the receiver in a partial success (not retried)
	Failed   uint64 // given up: non-retryable error, retries exhausted, or Shutdown's deadline
	Dropped  uint64 // never sent: the queue was full, or they came after Shutdown
	Requests uint64 // requests the receiver accepted, fully or partly
}

// Stats are the exporter's counters since New.
type Stats struct {
	Logs    SignalStats // log records: lifecycle events and pass-through logs
	Traces  SignalStats // spans: assembled and pass-through
	Retries uint64      // failed attempts that were tried again
	// QueueRequests and QueueBytes are the requests queued or being sent now, and
	// their protobuf size.
	QueueRequests int
	QueueBytes    int
}

// Exporter is a bridge.Tail that sends events (and, by mode, assembled spans) over
// OTLP/gRPC from its own bounded queue, with retry.
//
// Consume, ConsumeSpans, ExportLogs and ExportTraces encode at once and queue the
// requests; they never wait for the network. A few sender goroutines send from the
// queue; the events of one stream always go through the same sender, so they leave
// in sequence order.
type Exporter struct {
	mode            Mode
	maxRequestBytes int
	log             *rateLog
	logs, traces    *signalState
	conns           []*grpc.ClientConn
	retry           retrier
	retries         atomic.Uint64

	budget  budget
	shards  []*shard
	senders []*sender
	rr      atomic.Uint64 // round robin for requests of no stream

	// ctx is cancelled when Shutdown's deadline passes: senders then stop retrying and
	// drop what is left.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	// The assembler of ModeSpans and ModeBoth, guarded by asmMu; the spans it emits
	// collect in spanBuf (guarded by spanMu) and leave as one request per call.
	asmMu     sync.Mutex
	asm       *bridge.Assembler
	asmClosed bool
	spanMu    sync.Mutex
	spanBuf   []bridge.Span
	sweepStop chan struct{}
	sweepDone chan struct{}
}

var (
	_ bridge.Tail         = (*Exporter)(nil)
	_ bridge.Flusher      = (*Exporter)(nil)
	_ bridge.Shutdowner   = (*Exporter)(nil)
	_ bridge.SpanConsumer = (*Exporter)(nil)
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
		budget:          budget{maxCount: cfg.queueSize, maxBytes: cfg.queueBytes},
	}
	e.retry = retrier{cfg: cfg.retry, onRetry: func(error, time.Duration) { e.retries.Add(1) }}

	e.logs, e.traces = &signalState{cfg: logsCfg}, &signalState{cfg: tracesCfg}
	// Each sender has connections of its own: requests sent at once over one HTTP/2
	// connection share its flow-control window, which slows them all down.
	for range cfg.senders {
		snd := &sender{shard: newShard()}
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
		e.senders = append(e.senders, snd)
		e.shards = append(e.shards, snd.shard)
	}

	if cfg.mode.spans() {
		e.asm = bridge.NewAssembler(bridge.SpanConsumerFunc(e.collectSpans), cfg.assemblerOptions...)
		e.sweepStop, e.sweepDone = make(chan struct{}), make(chan struct{})
		go e.sweep(cfg.sweepInterval)
	}

	e.ctx, e.cancel = context.WithCancel(context.Background())
	for _, snd := range e.senders {
		e.wg.Add(1)
		go e.runSender(snd)
	}
	return e, nil
}

// sender is one sending goroutine's queue and connections.
type sender struct {
	shard        *shard
	logs, traces *client
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
	n, b := e.budget.depth()
	return Stats{
		Logs:          e.logs.counters.stats(),
		Traces:        e.traces.counters.stats(),
		Retries:       e.retries.Load(),
		QueueRequests: n,
		QueueBytes:    b,
	}
}

// Consume queues events for export without blocking; what does not fit is dropped and
// counted. In ModeEvents and ModeBoth the events leave as OTLP log records; in
// ModeSpans and ModeBoth they also go through the assembler, and the spans they
// complete leave as OTLP spans. The events slice is not kept.
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
		errs = append(errs, e.queueEvents(events))
	}
	if e.mode.spans() {
		e.asmMu.Lock()
		if !e.asmClosed {
			if err := e.asm.Consume(ctx, events); err != nil {
				errs = append(errs, fmt.Errorf("otlpexport: assembling spans: %w", err))
			}
		}
		e.asmMu.Unlock()
		errs = append(errs, e.flushSpans())
	}
	return errors.Join(errs...)
}

// shardOf maps a stream to its sender, the same one for all of its events.
func (e *Exporter) shardOf(id bridge.StreamID) int {
	return int(binary.LittleEndian.Uint64(id[:8]) % uint64(len(e.shards)))
}

// nextShard picks a sender for data bound to no stream.
func (e *Exporter) nextShard() int { return int(e.rr.Add(1) % uint64(len(e.shards))) }

// ConsumeSpans queues complete spans for export as OTLP traces, whatever the mode.
func (e *Exporter) ConsumeSpans(ctx context.Context, spans []bridge.Span) error {
	if len(spans) == 0 {
		return nil
	}
	if e.closed.Load() {
		e.traces.counters.dropped.Add(uint64(len(spans)))
		return fmt.Errorf("%w (%d spans)", ErrShutdown, len(spans))
	}
	return e.queueSpans(spans, e.nextShard())
}

// ExportLogs queues a raw OTLP logs request (pass-through of non-STW logs). The
// exporter keeps req until it is sent: do not change it after the call.
func (e *Exporter) ExportLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) error {
	if e.closed.Load() {
		n := countLogRecords(req)
		e.logs.counters.dropped.Add(uint64(n))
		return fmt.Errorf("%w (%d log records)", ErrShutdown, n)
	}
	return e.queueLogs(req, e.nextShard())
}

// ExportTraces queues a raw OTLP traces request (pass-through of plain spans). The
// exporter keeps req until it is sent: do not change it after the call.
func (e *Exporter) ExportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) error {
	if e.closed.Load() {
		n := countSpans(req)
		e.traces.counters.dropped.Add(uint64(n))
		return fmt.Errorf("%w (%d spans)", ErrShutdown, n)
	}
	return e.queueTraces(req, e.nextShard())
}

// signalKind holds what queueRequest needs to know about one signal's requests.
type signalKind[R proto.Message] struct {
	what     string                                 // its items, in errors: "log records", "spans"
	split    func(req R, limit int) []R             // splitLogs, splitTraces
	count    func(req R) int                        // countLogRecords, countSpans
	request  func(req R, items, bytes int) *request // wraps req for the queue
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

func (e *Exporter) queueLogs(req *collogspb.ExportLogsServiceRequest, k int) error {
	return queueRequest(e, &logsKind, req, k)
}

func (e *Exporter) queueTraces(req *coltracepb.ExportTraceServiceRequest, k int) error {
	return queueRequest(e, &tracesKind, req, k)
}

// queueRequest queues req on shard k, split into parts of at most maxRequestBytes
// when it is larger; an empty request is not queued.
func queueRequest[R proto.Message](e *Exporter, kind *signalKind[R], req R, k int) error {
	c := kind.counters(e)
	size := proto.Size(req)
	if size > e.maxRequestBytes {
		var dropped int
		for _, part := range kind.split(req, e.maxRequestBytes) {
			n := kind.count(part)
			if !e.push(k, kind.request(part, n, proto.Size(part)), c) {
				dropped += n
			}
		}
		return e.dropError(dropped, kind.what)
	}
	n := kind.count(req)
	if n == 0 {
		return nil
	}
	if !e.push(k, kind.request(req, n, size), c) {
		return e.dropError(n, kind.what)
	}
	return nil
}

// push queues r on shard k; false (and r counted as dropped) when there is no room.
func (e *Exporter) push(k int, r *request, c *signalCounters) bool {
	if !e.budget.take(r.bytes) {
		c.dropped.Add(uint64(r.items))
		return false
	}
	if !e.shards[k].push(r) {
		e.budget.give(r.bytes)
		c.dropped.Add(uint64(r.items))
		return false
	}
	return true
}

func (e *Exporter) dropError(n int, what string) error {
	if n == 0 {
		return nil
	}
	if e.closed.Load() {
		return fmt.Errorf("%w (%d %s)", ErrShutdown, n, what)
	}
	return fmt.Errorf("%w (%d %s)", ErrQueueFull, n, what)
}

// collectSpans is the assembler's SpanConsumer: it keeps the spans until the call
// that produced them ends, so that they leave as one request.
func (e *Exporter) collectSpans(_ context.Context, spans []bridge.Span) error {
	e.spanMu.Lock()
	e.spanBuf = append(e.spanBuf, spans...)
	e.spanMu.Unlock()
	return nil
}

// flushSpans queues the spans the assembler emitted.
func (e *Exporter) flushSpans() error {
	e.spanMu.Lock()
	spans := e.spanBuf
	e.spanBuf = nil
	e.spanMu.Unlock()
	if len(spans) == 0 {
		return nil
	}
	return e.queueSpans(spans, e.nextShard())
}

// sweep runs the assembler's Sweep periodically, until Shutdown.
func (e *Exporter) sweep(every time.Duration) {
	defer close(e.sweepDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.sweepStop:
			return
		case <-t.C:
			e.asmMu.Lock()
			if !e.asmClosed {
				if err := e.asm.Sweep(context.Background()); err != nil {
					e.log.log(slog.LevelWarn, "sweep", "otlpexport: sweeping the assembler failed", slog.Any("error", err))
				}
			}
			e.asmMu.Unlock()
			_ = e.flushSpans()
		}
	}
}

// runSender sends the requests of one shard until it is closed and drained.
func (e *Exporter) runSender(snd *sender) {
	defer e.wg.Done()
	var batch []*request
	for {
		batch = snd.shard.popBatch(e.maxRequestBytes, batch)
		if len(batch) == 0 {
			return
		}
		e.send(snd, batch)
		for _, r := range batch {
			e.budget.give(r.bytes)
		}
		snd.shard.finish(len(batch))
		clear(batch)
	}
}

// send exports a batch of requests of one signal as one request, with retries, and
// counts the outcome.
func (e *Exporter) send(snd *sender, batch []*request) {
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
		return
	}
	wire, err := encodeBatch(batch)
	if err != nil {
		st.counters.failed.Add(uint64(items))
		e.log.log(slog.LevelError, "encode:"+st.cfg.signal, "otlpexport: a request could not be encoded, "+what+" lost",
			slog.Int(what, items), slog.Any("error", err))
		return
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
		return
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

// ForceFlush waits until every request queued before the call has been sent (or given
// up), or ctx ends.
func (e *Exporter) ForceFlush(ctx context.Context) error {
	if e.mode.spans() {
		if err := e.flushSpans(); err != nil && !errors.Is(err, ErrShutdown) {
			e.log.log(slog.LevelWarn, "flush", "otlpexport: ForceFlush could not queue spans", slog.Any("error", err))
		}
	}
	marks := make([]uint64, len(e.shards))
	for i, s := range e.shards {
		marks[i] = s.mark()
	}
	for i, s := range e.shards {
		if err := s.waitDone(ctx, marks[i]); err != nil {
			n, _ := e.budget.depth()
			return fmt.Errorf("otlpexport: ForceFlush: %d requests still queued or in flight: %w", n, err)
		}
	}
	return nil
}

// Shutdown emits the spans still open as unfinished (ModeSpans, ModeBoth), sends what
// is queued, and closes the connections. When ctx ends first, the requests left are
// given up and counted as failed, and ctx's error is returned. Later calls do nothing.
func (e *Exporter) Shutdown(ctx context.Context) error {
	var err error
	e.once.Do(func() { err = e.shutdown(ctx) })
	return err
}

func (e *Exporter) shutdown(ctx context.Context) error {
	if e.asm != nil {
		close(e.sweepStop)
		<-e.sweepDone
		e.asmMu.Lock()
		e.asmClosed = true
		asmErr := e.asm.Shutdown(ctx)
		e.asmMu.Unlock()
		if asmErr != nil {
			e.log.log(slog.LevelWarn, "shutdown", "otlpexport: shutting down the assembler", slog.Any("error", asmErr))
		}
		_ = e.flushSpans()
	}
	e.closed.Store(true)
	for _, s := range e.shards {
		s.close()
	}
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n, _ := e.budget.depth()
		err = fmt.Errorf("otlpexport: Shutdown: %d requests not sent before the deadline, given up: %w", n, ctx.Err())
		e.cancel()
		<-done
	}
	e.cancel()
	e.closeConns()
	return err
}
