// Package forwarder wires the stwbridge forwarder together and runs its lifecycle:
// receivers → bridge.Pipeline → tails (the Assembler, optionally the exporter's event
// stream, the live hub), the Assembler → the exporter (or the stdout printer), the
// periodic sweep for unfinished spans, self-metrics, and the graceful shutdown.
package forwarder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/auth"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/live"
	"github.com/stwbridge/stwbridge/internal/metrics"
	"github.com/stwbridge/stwbridge/internal/receiver"
	"github.com/stwbridge/stwbridge/internal/stwingest"
	"github.com/stwbridge/stwbridge/internal/webui"
	"github.com/stwbridge/stwbridge/otlpexport"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// overflowLogEvery rate-limits the warning about spans refused past max_open_spans.
const overflowLogEvery = 10 * time.Second

// forwardEventsFlushInterval replaces the default pipeline batch timeout when events
// are forwarded as they come (open visibility): at 10k spans/s it cuts the p99 from a
// span's start to its stw.span_open downstream from ~30 ms to ~13 ms, for ~15% more
// CPU (scripts/loadbench.sh). A timeout set in the configuration is kept.
const forwardEventsFlushInterval = 5 * time.Millisecond

// downstream is where assembled spans and passed-through data go: the exporter or the
// stdout printer.
type downstream interface {
	bridge.SpanConsumer
	Consume(ctx context.Context, events []bridge.Event) error
	ExportLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) error
	ExportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) error
	ForceFlush(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// Forwarder is a configured, listening stwbridge. New binds the listeners; Run serves
// until its context ends, then shuts down gracefully.
type Forwarder struct {
	cfg config.Config
	log *slog.Logger

	down     downstream
	exporter *otlpexport.Exporter // nil when printing to stdout
	asm      *bridge.Assembler
	pipe     *bridge.Pipeline
	hub      *live.Hub
	ingest   *stwingest.Handler
	recv     *receiver.Receiver
	reg      *metrics.Registry
	health   *health.Server
	guards   *guards      // persistent queue, memory limiter, auth, TLS, limits (guards.go)
	dataHTTP http.Handler // the HTTP data paths without the guards, for the queue's replay

	grpcSrv          *grpc.Server
	httpSrv          *http.Server
	grpcLis, httpLis net.Listener

	forwardedSpans metrics.Counter // spans handed downstream by the assembler
	forwardErrors  metrics.Counter // ConsumeSpans calls downstream that failed

	stopSweep func() // set by Run: stops the periodic sweep (bridge.Every)
	// Owned by sweep: the overflow count last logged, and when.
	lastOverflow    uint64
	lastOverflowLog time.Time
	shutOnce        sync.Once
	shutErr         error
}

// New builds the forwarder from cfg and binds its listeners; stdout receives the span
// tree when cfg has no exporter endpoint. Nothing is served until Run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Forwarder{cfg: cfg, log: log, reg: metrics.NewRegistry(), stopSweep: func() {}}
	var err error
	if f.guards, err = newGuards(cfg, log, func() { f.asm.ReleaseMemory() }); err != nil {
		return nil, err
	}

	if cfg.Exporter.Endpoint == "" {
		f.down = newStdout(stdout, cfg, log)
	} else {
		opts, err := exporterOptions(cfg, log)
		if err != nil {
			_ = f.guards.close()
			return nil, err
		}
		exp, err := otlpexport.New(ctx, opts...)
		if err != nil {
			_ = f.guards.close()
			return nil, fmt.Errorf("exporter: %w", err)
		}
		f.exporter, f.down = exp, exp
	}

	f.asm = bridge.NewAssembler(bridge.SpanConsumerFunc(f.consumeSpans), assemblerOptions(cfg)...)
	f.hub = live.NewHub(live.WithMaxWatchers(cfg.Receivers.OTLP.HTTP.MaxLiveWatchers))
	// The pipeline shuts its tails down when it stops; the assembler and the exporter
	// are wrapped so that Shutdown stays ours to call in the right order (assembler
	// first, its unfinished spans then flushed by the exporter).
	tails := []bridge.Tail{f.assemblerTail()}
	if cfg.ForwardEvents {
		tails = append(tails, bridge.TailFunc(f.down.Consume))
	}
	tails = append(tails, f.hub)
	f.pipe = bridge.NewPipeline(tails,
		bridge.WithMaxQueueEvents(cfg.Pipeline.Queue.MaxEvents),
		bridge.WithMaxQueueBytes(cfg.Pipeline.Queue.MaxBytes),
		bridge.WithBatchSize(cfg.Pipeline.Batch.Size),
		bridge.WithFlushInterval(pipelineFlushInterval(cfg)),
		bridge.WithConsumeTimeout(consumeTimeout(cfg)),
		bridge.WithLogger(log),
	)
	f.ingest = stwingest.NewHandler(consumer{f}, stwingest.WithMaxBodyBytes(cfg.Receivers.OTLP.HTTP.MaxRequestBodySize), stwingest.WithLogger(log),
		stwingest.WithService(bridge.ServiceName{Name: cfg.Workerd.ServiceName, Prefix: cfg.Workerd.ServiceNamePrefix}),
		stwingest.WithExportUnsampled(cfg.Workerd.ExportUnsampled))
	f.recv = receiver.New(consumer{f},
		receiver.WithMaxRecvMsgSize(cfg.Receivers.OTLP.GRPC.MaxRecvMsgSizeMiB<<20),
		receiver.WithMaxRequestBodySize(cfg.Receivers.OTLP.HTTP.MaxRequestBodySize))

	grpcOpts := append(f.recv.ServerOptions(), f.guards.grpcServerOptions()...)
	f.grpcSrv = grpc.NewServer(append(grpcOpts, grpcConnOptions(cfg.Receivers.OTLP.GRPC)...)...)
	f.recv.RegisterGRPC(f.grpcSrv)
	f.health = health.NewServer()
	healthpb.RegisterHealthServer(f.grpcSrv, f.health)

	data := http.NewServeMux()
	f.recv.Mount(data)
	data.Handle("/v1/stw", f.ingest)
	f.dataHTTP = data
	guarded := f.guards.wrapData(data)
	mux := http.NewServeMux()
	for _, p := range []string{receiver.TracesPath, receiver.LogsPath, "/v1/stw"} {
		mux.Handle(p, guarded)
	}
	mux.Handle("/v1/live", f.guards.wrapAuth(f.hub))
	webui.Mount(mux) // the page holds no data; the stream it reads is guarded
	mux.Handle("/metrics", f.reg)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	f.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ReadTimeout: cfg.Receivers.OTLP.HTTP.ReadTimeout.D(), IdleTimeout: cfg.Receivers.OTLP.HTTP.IdleTimeout.D()}
	f.registerMetrics()
	f.registerGuardMetrics()

	if f.grpcLis, err = net.Listen("tcp", cfg.Receivers.OTLP.GRPC.Endpoint); err != nil {
		f.abort()
		return nil, fmt.Errorf("--listen %s: %w", cfg.Receivers.OTLP.GRPC.Endpoint, err)
	}
	if f.httpLis, err = net.Listen("tcp", cfg.Receivers.OTLP.HTTP.Endpoint); err != nil {
		f.grpcLis.Close()
		f.abort()
		return nil, fmt.Errorf("--http-listen %s: %w", cfg.Receivers.OTLP.HTTP.Endpoint, err)
	}
	f.grpcLis = limitConns(f.grpcLis, cfg.Receivers.OTLP.GRPC.MaxConnections, 0)
	f.httpLis = f.guards.httpListener(limitConns(f.httpLis, cfg.Receivers.OTLP.HTTP.MaxConnections, httpSendBuffer))
	return f, nil
}

// pipelineFlushInterval is the pipeline's batch timeout: the configured one, except
// that forward_events with the default timeout takes forwardEventsFlushInterval.
func pipelineFlushInterval(cfg config.Config) time.Duration {
	d := cfg.Pipeline.Batch.Timeout.D()
	if cfg.ForwardEvents && d == config.DefaultBatchTimeout {
		return forwardEventsFlushInterval
	}
	return d
}

// consumeTimeout bounds a tail's Consume: long enough for the exporter's push-back
// (room among its requests in flight frees once one of them is done: its retries and
// a last attempt), so that a slow downstream slows the pipeline without failing it.
func consumeTimeout(cfg config.Config) time.Duration {
	e := cfg.Exporter
	retries := e.RetryOnFailure.MaxElapsedTime.D()
	if !e.RetryOnFailure.Enabled {
		retries = 0
	} else if retries <= 0 {
		retries = otlpexport.DefaultRetryMaxElapsedTime
	}
	return max(bridge.DefaultConsumeTimeout, retries+2*e.Timeout.D())
}

// abort releases what New built when it fails half-way.
func (f *Forwarder) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = f.pipe.Shutdown(ctx)
	_ = f.down.Shutdown(ctx)
	_ = f.guards.close()
}

// GRPCAddr is the address the OTLP/gRPC receiver listens on.
func (f *Forwarder) GRPCAddr() string { return f.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTP receiver listens on.
func (f *Forwarder) HTTPAddr() string { return f.httpLis.Addr().String() }

// Metrics returns the registry served at /metrics.
func (f *Forwarder) Metrics() *metrics.Registry { return f.reg }

// Run serves until ctx ends, then shuts down within the configured shutdown timeout.
// It returns nil after a clean shutdown.
func (f *Forwarder) Run(ctx context.Context) error {
	f.stopSweep = bridge.Every(f.cfg.SweepEvery(), f.sweep)
	// What the persistent queue holds goes through before any new request.
	if err := f.startGuards(ctx); err != nil {
		f.log.Error("stwbridge cannot start", "err", err)
		_ = f.grpcLis.Close()
		_ = f.httpLis.Close()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.ShutdownTimeout.D())
		defer cancel()
		return errors.Join(err, f.Shutdown(sctx))
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- f.grpcSrv.Serve(f.grpcLis) }()
	go func() {
		if err := f.httpSrv.Serve(f.httpLis); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	dest := "stdout"
	if f.cfg.Exporter.Endpoint != "" {
		dest = f.cfg.Exporter.Endpoint
	}
	f.log.Info("stwbridge listening",
		"otlp_grpc", f.GRPCAddr(), "http", f.HTTPAddr(), "forward", dest,
		"orphan_after", f.cfg.Assembler.OrphanAfter.D().String(),
		"stream_timeout", f.cfg.Assembler.StreamTimeout.D().String(),
		"forward_events", f.cfg.ForwardEvents, "config", f.cfg.File)
	f.logGettingStarted()

	var runErr error
	select {
	case <-ctx.Done():
		f.log.Info("stwbridge shutting down", "deadline", f.cfg.ShutdownTimeout.D().String())
	case err := <-serveErr:
		runErr = fmt.Errorf("listener failed: %w", err)
		f.log.Error("stwbridge listener failed, shutting down", "err", err)
	}
	timeout := f.cfg.ShutdownTimeout.D()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Shutdown(sctx) }()
	// A part that ignores the deadline must not keep the process alive past it.
	grace := time.NewTimer(timeout + time.Second)
	defer grace.Stop()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case <-grace.C:
		f.log.Error("stwbridge shutdown did not finish within its deadline; exiting anyway", "deadline", timeout.String())
		return fmt.Errorf("shutdown did not finish within shutdown_timeout %s", timeout)
	}
	return runErr
}

// Shutdown stops accepting, delivers what the pipeline holds, exports the spans still
// open as unfinished, and flushes downstream, within ctx's deadline.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.shutOnce.Do(func() { f.shutErr = f.shutdown(ctx) })
	return f.shutErr
}

func (f *Forwarder) shutdown(ctx context.Context) error {
	start := time.Now()
	var errs []error
	note := func(step string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", step, err))
		}
	}
	// 1. Stop accepting: health says NOT_SERVING, live watchers are ended (their
	// streams never finish by themselves), in-flight requests complete.
	f.health.Shutdown()
	_ = f.hub.Shutdown(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		note("http server", f.httpSrv.Shutdown(ctx))
	}()
	go func() {
		defer wg.Done()
		stopped := make(chan struct{})
		go func() { f.grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			f.grpcSrv.Stop()
			note("grpc server", ctx.Err())
		}
	}()
	wg.Wait()
	// 2. Stop sweeping, then drain the pipeline into the assembler and tails.
	f.stopSweep()
	note("pipeline", f.pipe.Shutdown(ctx))
	// 3. What is still open is kept in the persistent queue for the next start, or
	// else reported as unfinished rather than lost.
	open := f.asm.Stats().OpenSpans
	kept := f.keepOpenSpans(ctx, open)
	if kept {
		note("assembler", f.asm.Suspend(ctx))
	} else {
		note("assembler", f.asm.Shutdown(ctx))
	}
	// 4. Flush downstream.
	note("downstream", f.down.Shutdown(ctx))
	// 5. With everything delivered and nothing kept open, the persistent queue is
	// emptied; otherwise it is kept for the next start.
	note("persistent queue", f.stopGuards(len(errs) == 0, kept))
	err := errors.Join(errs...)
	if err != nil {
		f.log.Error("stwbridge shutdown incomplete", "err", err, "took", time.Since(start).String())
	} else if kept {
		f.log.Info("stwbridge stopped", "open_spans_kept", open, "took", time.Since(start).String())
	} else {
		f.log.Info("stwbridge stopped", "unfinished_at_shutdown", open, "took", time.Since(start).String())
	}
	return err
}

// consumeSpans takes the assembler's complete (and unfinished) spans downstream.
func (f *Forwarder) consumeSpans(ctx context.Context, spans []bridge.Span) error {
	// Live watchers learn of spans the assembler ended as unfinished (a crashed
	// producer sends no end of its own).
	_ = f.hub.ConsumeSpans(ctx, spans)
	if err := f.down.ConsumeSpans(ctx, spans); err != nil {
		f.forwardErrors.Inc()
		return err
	}
	f.forwardedSpans.Add(uint64(len(spans)))
	return nil
}

// sweep exports as unfinished the spans whose producer went silent or that stayed
// open too long, and reports refusals past max_open_spans, rate-limited.
func (f *Forwarder) sweep() {
	if err := f.asm.Sweep(context.Background()); err != nil {
		f.log.Warn("sweeping open spans failed", "err", err)
	}
	if st := f.asm.Stats(); st.Overflow > f.lastOverflow && time.Since(f.lastOverflowLog) >= overflowLogEvery {
		f.log.Warn("open span limit reached: spans refused",
			"refused", st.Overflow-f.lastOverflow, "refused_total", st.Overflow,
			"open_spans", st.OpenSpans, "max_open_spans", f.cfg.Assembler.MaxOpenSpans,
			"hint", "raise assembler.max_open_spans or lower assembler.orphan_after")
		f.lastOverflow, f.lastOverflowLog = st.Overflow, time.Now()
	}
}

// consumer is what the receivers (OTLP and workerd ingest) hand their data to; events
// go into the pipeline through the guards.
type consumer struct{ f *Forwarder }

func (c consumer) Publish(e bridge.Event) bool { return c.f.guards.publish(c.f.pipe.Publish, e) }
func (c consumer) PublishBatch(events []bridge.Event) bool {
	return c.f.guards.publishBatch(c.f.pipe.PublishBatch, events)
}
func (c consumer) ExportLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) error {
	return c.f.down.ExportLogs(ctx, req)
}
func (c consumer) ExportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) error {
	return c.f.down.ExportTraces(ctx, req)
}

func assemblerOptions(cfg config.Config) []bridge.AssemblerOption {
	a := cfg.Assembler
	opts := []bridge.AssemblerOption{
		bridge.WithOrphanAfter(a.OrphanAfter.D()),
		bridge.WithStreamTimeout(a.StreamTimeout.D()),
		bridge.WithMaxOpenSpans(a.MaxOpenSpans),
		bridge.WithMaxOpenSpansPerStream(cfg.Limits.MaxOpenSpansPerStream),
		bridge.WithReorderWindow(a.ReorderWindow),
		bridge.WithMaxAttributesPerSpan(a.MaxAttributesPerSpan),
		bridge.WithMaxEventsPerSpan(a.MaxEventsPerSpan),
		bridge.WithMaxLateSpans(a.MaxLateSpans),
		bridge.WithMaxLateBytes(a.MaxLateBytes),
		bridge.WithForgetLateAfter(a.ForgetLateAfter.D()),
	}
	if cfg.Persistence.DataDir != "" {
		opts = append(opts, bridge.WithKeepEvents()) // the persistent queue's snapshots
	}
	return opts
}

// exporterOptions translates the exporter section into otlpexport options.
func exporterOptions(cfg config.Config, log *slog.Logger) ([]otlpexport.Option, error) {
	e := cfg.Exporter
	fw, err := config.ParseForward(e.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("exporter.endpoint: %w", err)
	}
	opts := []otlpexport.Option{
		otlpexport.WithEndpoint(fw.HostPort),
		otlpexport.WithCompression(e.Compression),
		otlpexport.WithTimeout(e.Timeout.D()),
		otlpexport.WithHeaders(e.Headers),
		otlpexport.WithMode(otlpexport.ModeEvents),
		otlpexport.WithLogger(log),
	}
	if fw.TLS {
		t := e.TLS
		tc, err := auth.ClientTLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
			ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("exporter.tls: %w", err)
		}
		opts = append(opts, otlpexport.WithTLSConfig(tc))
	} else {
		opts = append(opts, otlpexport.WithInsecure())
	}
	r := otlpexport.RetryConfig{Enabled: e.RetryOnFailure.Enabled, InitialInterval: otlpexport.DefaultRetryInitialInterval,
		MaxInterval: otlpexport.DefaultRetryMaxInterval, MaxElapsedTime: otlpexport.DefaultRetryMaxElapsedTime}
	if d := e.RetryOnFailure.InitialInterval.D(); d > 0 {
		r.InitialInterval = d
	}
	if d := e.RetryOnFailure.MaxInterval.D(); d > 0 {
		r.MaxInterval = d
	}
	if d := e.RetryOnFailure.MaxElapsedTime.D(); d > 0 {
		r.MaxElapsedTime = d
	}
	r.MaxInterval = max(r.MaxInterval, r.InitialInterval)
	opts = append(opts, otlpexport.WithRetry(r))
	if n := e.SendingQueue.QueueSize; n > 0 {
		opts = append(opts, otlpexport.WithMaxInFlight(n))
	}
	if n := e.SendingQueue.QueueBytes; n > 0 {
		opts = append(opts, otlpexport.WithMaxInFlightBytes(n))
	}
	if n := e.SendingQueue.NumConsumers; n > 0 {
		opts = append(opts, otlpexport.WithSenders(n))
	}
	if n := e.MaxRequestBytes; n > 0 {
		opts = append(opts, otlpexport.WithMaxRequestBytes(n))
	}
	return opts, nil
}
