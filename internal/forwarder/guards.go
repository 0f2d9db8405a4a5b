package forwarder

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/auth"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/limits"
	"github.com/stwbridge/stwbridge/internal/memlimit"
	"github.com/stwbridge/stwbridge/internal/persist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// guards are the forwarder's durability and security parts, each optional but the
// limits: the persistent queue, the memory limiter, bearer-token authentication, TLS
// on the listeners, and the per-event limits.
type guards struct {
	queue   *persist.Queue
	memlim  *memlimit.Limiter
	bearer  *auth.Bearer
	limits  *limits.Limiter
	grpcTLS *tls.Config
	httpTLS *tls.Config
}

// newGuards builds the guards cfg asks for; reclaim is what the memory limiter calls
// above its limit. Nothing is started yet.
func newGuards(cfg config.Config, log *slog.Logger, reclaim func()) (*guards, error) {
	g := &guards{limits: limits.New(
		limits.WithMaxAttributeValueLength(cfg.Limits.MaxAttributeValueLength),
		limits.WithMaxAttributesBytes(cfg.Limits.MaxAttributesBytes))}
	var err error
	rc := cfg.Receivers
	if g.grpcTLS, err = serverTLS(rc.OTLP.GRPC.TLS); err != nil {
		return nil, fmt.Errorf("receivers.otlp.grpc.tls: %w", err)
	}
	if g.httpTLS, err = serverTLS(rc.OTLP.HTTP.TLS); err != nil {
		return nil, fmt.Errorf("receivers.otlp.http.tls: %w", err)
	}
	if g.httpTLS != nil {
		g.httpTLS.NextProtos = []string{"http/1.1"}
	}
	if g.bearer, err = auth.LoadBearer(rc.Auth.BearerTokenFile, rc.Auth.BearerTokenEnv); err != nil {
		return nil, fmt.Errorf("receivers.auth: %w", err)
	}
	if m := cfg.MemoryLimiter; m.LimitMiB > 0 || m.LimitPercentage > 0 {
		opts := []memlimit.Option{memlimit.WithLogger(log), memlimit.WithReclaim(reclaim)}
		if m.LimitMiB > 0 {
			opts = append(opts, memlimit.WithLimitMiB(uint64(m.LimitMiB)))
		} else {
			opts = append(opts, memlimit.WithLimitPercent(float64(m.LimitPercentage)))
		}
		if m.CheckInterval > 0 {
			opts = append(opts, memlimit.WithCheckInterval(m.CheckInterval.D()))
		}
		if m.RetryAfter > 0 {
			opts = append(opts, memlimit.WithRetryAfter(m.RetryAfter.D()))
		}
		if g.memlim, err = memlimit.New(opts...); err != nil {
			return nil, fmt.Errorf("memory_limiter: %w", err)
		}
	}
	if p := cfg.Persistence; p.DataDir != "" {
		g.queue, err = persist.Open(p.DataDir,
			persist.WithMaxBytes(p.MaxBytes),
			persist.WithCheckpointInterval(p.CheckpointInterval.D()),
			persist.WithMaxBodyBytes(rc.OTLP.HTTP.MaxRequestBodySize),
			persist.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("persistence.data_dir: %w", err)
		}
	}
	return g, nil
}

func serverTLS(t config.ServerTLS) (*tls.Config, error) {
	return auth.TLSFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}.ServerConfig()
}

// grpcServerOptions chains the interceptors (authentication first, then the memory
// limiter, then the persistent queue, so that only admitted requests are kept) and
// the TLS credentials.
func (g *guards) grpcServerOptions() []grpc.ServerOption {
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if g.bearer != nil {
		unary = append(unary, g.bearer.UnaryServerInterceptor())
		stream = append(stream, g.bearer.StreamServerInterceptor())
	}
	if g.memlim != nil {
		unary = append(unary, g.memlim.UnaryServerInterceptor())
		stream = append(stream, g.memlim.StreamServerInterceptor())
	}
	if g.queue != nil {
		unary = append(unary, g.queue.UnaryServerInterceptor())
	}
	var opts []grpc.ServerOption
	if len(unary) > 0 {
		opts = append(opts, grpc.ChainUnaryInterceptor(unary...))
	}
	if len(stream) > 0 {
		opts = append(opts, grpc.ChainStreamInterceptor(stream...))
	}
	if g.grpcTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(g.grpcTLS)))
	}
	return opts
}

// wrapData guards the HTTP data paths (OTLP/HTTP, /v1/stw) in the same order as gRPC.
func (g *guards) wrapData(h http.Handler) http.Handler {
	if g.queue != nil {
		h = g.queue.Middleware(h)
	}
	if g.memlim != nil {
		h = g.memlim.Middleware(h)
	}
	return g.wrapAuth(h)
}

// wrapAuth guards a path with authentication only (/v1/live).
func (g *guards) wrapAuth(h http.Handler) http.Handler {
	if g.bearer != nil {
		h = g.bearer.Middleware(h)
	}
	return h
}

// httpListener wraps the HTTP listener in TLS when configured.
func (g *guards) httpListener(l net.Listener) net.Listener {
	if g.httpTLS != nil {
		return tls.NewListener(l, g.httpTLS)
	}
	return l
}

// publish applies the limits and publishes the event.
func (g *guards) publish(pub func(bridge.Event) bool, e bridge.Event) bool {
	return pub(g.limits.Apply(e))
}

// publishBatch is publish for the events of one request, all or none (PublishBatch).
func (g *guards) publishBatch(pub func([]bridge.Event) bool, events []bridge.Event) bool {
	for i := range events {
		events[i] = g.limits.Apply(events[i])
	}
	return pub(events)
}

// startGuards starts the memory limiter, replays the persistent queue through the
// receivers (before any listener serves) and starts its checkpoints.
func (f *Forwarder) startGuards(ctx context.Context) error {
	g := f.guards
	if g.memlim != nil {
		g.memlim.Start()
	}
	if g.queue == nil {
		return nil
	}
	if err := g.queue.Replay(ctx, f.dataHTTP, f.pipe.ForceFlush); err != nil {
		return fmt.Errorf("replaying the persistent queue: %w", err)
	}
	hooks := persist.Hooks{FlushPipeline: f.pipe.ForceFlush, FlushDownstream: f.down.ForceFlush, Snapshot: f.asm.Snapshot}
	if f.exporter != nil {
		hooks.Losses = func() uint64 {
			st := f.exporter.Stats()
			return st.Traces.Failed + st.Traces.Dropped + st.Logs.Failed + st.Logs.Dropped
		}
	}
	g.queue.Start(hooks)
	return nil
}

// keepOpenSpans, at a graceful stop with the persistent queue, snapshots the spans
// still open into the log (a checkpoint) so that the next start restores them, rather
// than reporting them unfinished: a restart for an upgrade is no crash. It reports
// whether they were kept; when the checkpoint fails the caller reports them as
// unfinished, so nothing is lost.
func (f *Forwarder) keepOpenSpans(ctx context.Context, open int) bool {
	q := f.guards.queue
	if q == nil || open == 0 {
		return false
	}
	if err := q.Checkpoint(ctx); err != nil {
		f.log.Warn("could not keep the open spans in the persistent queue; reporting them as unfinished",
			"open_spans", open, "err", err)
		return false
	}
	return true
}

// stopGuards stops the memory limiter and closes the persistent queue. delivered says
// whether the shutdown handed everything downstream, keptOpen whether the open spans
// were kept in the log for the next start; the log is emptied only when delivered and
// nothing was kept.
func (f *Forwarder) stopGuards(delivered, keptOpen bool) error {
	g := f.guards
	if g.memlim != nil {
		g.memlim.Stop()
	}
	if g.queue == nil {
		return nil
	}
	if err := g.queue.Close(delivered && !keptOpen); err != nil {
		return err
	}
	if !delivered {
		f.log.Warn("persistent queue kept: what was not delivered is sent again at the next start",
			"data_dir", f.cfg.Persistence.DataDir)
	} else if keptOpen {
		f.log.Info("persistent queue kept: the spans still open are restored at the next start",
			"data_dir", f.cfg.Persistence.DataDir)
	}
	return nil
}

// closeGuards releases what newGuards opened when New fails half-way.
func (g *guards) close() error {
	if g == nil || g.queue == nil {
		return nil
	}
	return errors.Join(g.queue.Close(false))
}

// registerGuardMetrics exposes the guards' counters.
func (f *Forwarder) registerGuardMetrics() {
	r := f.reg
	c := func(name, help string, v func() float64) { r.CounterFunc(name, help, v) }
	gauge := func(name, help string, v func() float64) { r.GaugeFunc(name, help, v) }
	g := f.guards

	ls := g.limits.Stats
	c("stwbridge_limits_truncated_values_total", "String and byte values (at any depth) cut to limits.max_attribute_value_length.", func() float64 { return float64(ls().TruncatedValues) })
	c("stwbridge_limits_dropped_attributes_total", "Attributes dropped because their list was over limits.max_attributes_bytes.", func() float64 { return float64(ls().DroppedAttributes) })
	as := f.asm.Stats
	c("stwbridge_limits_refused_spans_total", "Spans refused because their stream had limits.max_open_spans_per_stream open.", func() float64 { return float64(as().StreamOverflow) })
	gauge("stwbridge_assembler_late_spans", "Spans reported unfinished, remembered for a late end.", func() float64 { return float64(as().LateSpans) })
	gauge("stwbridge_assembler_late_bytes", "Estimated bytes of the spans remembered for a late end.", func() float64 { return float64(as().LateBytes) })
	c("stwbridge_assembler_late_forgotten_total", "Spans reported unfinished and forgotten before a late end (bounds, memory limiter).", func() float64 { return float64(as().LateForgotten) })
	c("stwbridge_assembler_attributes_dropped_total", "Attributes over assembler.max_attributes_per_span.", func() float64 { return float64(as().AttributesDropped) })
	c("stwbridge_assembler_span_events_dropped_total", "Span events over assembler.max_events_per_span.", func() float64 { return float64(as().EventsDropped) })

	if g.bearer != nil {
		c("stwbridge_auth_refused_total", "Requests refused as unauthenticated (gRPC Unauthenticated / HTTP 401).", func() float64 { return float64(g.bearer.Refused()) })
	}
	if m := g.memlim; m != nil {
		c("stwbridge_memory_limiter_refused_total", "Requests refused above the memory limit (gRPC Unavailable / HTTP 503).", func() float64 { return float64(m.Refused()) })
		c("stwbridge_memory_limiter_forced_gcs_total", "Garbage collections forced above the memory limit.", func() float64 { return float64(m.ForcedGCs()) })
		c("stwbridge_memory_limiter_reclaims_total", "Times reclaimable memory (late spans, idle streams) was let go above the memory limit.", func() float64 { return float64(m.Reclaims()) })
		gauge("stwbridge_memory_limiter_used_bytes", "Heap in use at the last sample.", func() float64 { return float64(m.Used()) })
		gauge("stwbridge_memory_limiter_limit_bytes", "The memory limiter's soft limit.", func() float64 { return float64(m.Limit()) })
		gauge("stwbridge_memory_limiter_refusing", "1 while requests are refused for memory, else 0.", func() float64 {
			if m.Over() {
				return 1
			}
			return 0
		})
	}
	if q := g.queue; q != nil {
		qs := q.Stats
		c("stwbridge_persist_kept_total", "Requests written durably to the persistent queue before being acknowledged.", func() float64 { return float64(qs().Kept) })
		c("stwbridge_persist_refused_total", "Requests refused because the persistent queue was at persistence.max_bytes.", func() float64 { return float64(qs().Refused) })
		c("stwbridge_persist_fsyncs_total", "fsyncs of the persistent queue (shared by concurrent requests).", func() float64 { return float64(qs().WAL.Syncs) })
		c("stwbridge_persist_checkpoints_total", "Checkpoints that committed the persistent queue.", func() float64 { return float64(qs().Checkpoints) })
		c("stwbridge_persist_checkpoint_failures_total", "Checkpoints that could not commit (downstream not flushed or losing data).", func() float64 { return float64(qs().CheckpointFailures) })
		c("stwbridge_persist_replayed_total", "Records replayed from the persistent queue at start.", func() float64 { return float64(qs().Replayed) })
		c("stwbridge_persist_replay_refused_total", "Replayed records the receivers refused.", func() float64 { return float64(qs().ReplayFailed) })
		c("stwbridge_persist_corrupt_total", "Corrupt regions found in the persistent queue and skipped.", func() float64 { return float64(qs().WAL.CorruptRecords) })
		c("stwbridge_persist_torn_total", "Torn records cut from the end of the persistent queue (crash during a write).", func() float64 { return float64(qs().WAL.TruncatedTails) })
		gauge("stwbridge_persist_bytes", "Bytes of the persistent queue on disk.", func() float64 { return float64(qs().WAL.Bytes) })
		gauge("stwbridge_persist_snapshot_events", "Events of the open spans in the last snapshot.", func() float64 { return float64(qs().SnapshotEvents) })
	}
}
